//! The autotuning cache (no GPU here): the shape bucket a geometry falls in, the cache key, and
//! the file the choices live in (`autotune.tsv` in [`cache_dir`]), read once per context and
//! appended to. The measuring of candidates is `crate::autotune`'s, a client of the planner
//! and the runtime.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::kernels::Algorithm;
use crate::options::Conv2dGeometry;

/// The cache file's name inside the cache directory.
const CACHE_FILE: &str = "autotune.tsv";

/// What autotuning chose for an operation and shape, and where the choice came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Tuned {
    /// The algorithm every call of this shape bucket gets.
    pub algorithm: Algorithm,
    /// Whether the choice was read from the cache (this process's or the file's) rather than
    /// measured by this call.
    pub from_cache: bool,
    /// Each candidate's median time in seconds, as measured when the choice was made.
    pub times: Vec<(Algorithm, f64)>,
}

/// Each candidate's median seconds.
pub(crate) type Times = Vec<(Algorithm, f64)>;

/// The autotuner's state in a context.
pub(crate) struct Autotuner {
    pub(crate) enabled: Mutex<bool>,
    /// The cache, once read: key -> (algorithm, times).
    pub(crate) table: Mutex<Option<BTreeMap<String, (Algorithm, Times)>>>,
}

impl Autotuner {
    /// Off unless `WGPU_CONV_AUTOTUNE` is 1 (or true, on); an error for a value that is none of
    /// 0, 1, true, false, on, off.
    pub(crate) fn from_env() -> Result<Self> {
        let enabled = match crate::error::env_var("WGPU_CONV_AUTOTUNE")? {
            None => false,
            Some(v) => match v.trim().to_lowercase().as_str() {
                "" | "0" | "false" | "off" => false,
                "1" | "true" | "on" => true,
                _ => {
                    return Err(Error::InvalidOption(format!(
                        "WGPU_CONV_AUTOTUNE={}: use 1 (on) or 0 (off)",
                        crate::error::quoted(&v)
                    )))
                }
            },
        };
        Ok(Self {
            enabled: Mutex::new(enabled),
            table: Mutex::new(None),
        })
    }
}

/// The directory the cache file lives in: `WGPU_CONV_CACHE_DIR`, else `wgpu-conv` under
/// `XDG_CACHE_HOME`, `~/.cache` or `LOCALAPPDATA`; `None` where none is set (choices are then
/// kept for the process only).
pub fn cache_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var("WGPU_CONV_CACHE_DIR") {
        return Some(d);
    }
    let base = var("XDG_CACHE_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".cache")))
        .or_else(|| var("LOCALAPPDATA"))?;
    Some(base.join("wgpu-conv"))
}

/// The shape bucket of `g`: batch, height and width rounded up to powers of two; channels,
/// kernel, stride, dilation, groups, padding and mode exact.
pub(crate) fn bucket(g: &Conv2dGeometry, bias: bool) -> String {
    let p2 = |v: usize| v.next_power_of_two();
    format!(
        "n{}c{}h{}w{}oc{}k{}x{}s{}x{}d{}x{}g{}p{},{},{},{}m{:?}{:?}b{}",
        p2(g.n),
        g.c,
        p2(g.h),
        p2(g.w),
        g.oc,
        g.kh,
        g.kw,
        g.stride.h,
        g.stride.w,
        g.dilation.h,
        g.dilation.w,
        g.groups,
        g.pad_top,
        g.pad_left,
        g.pad_bottom,
        g.pad_right,
        g.padding_mode,
        g.mode,
        u8::from(bias)
    )
}

/// One field of the key: no tabs or line breaks.
pub(crate) fn field(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

fn parse_line(line: &str) -> Option<(String, (Algorithm, Times))> {
    let mut parts = line.rsplitn(3, '\t');
    let times = parts.next()?;
    let algorithm: Algorithm = parts.next()?.parse().ok()?;
    let key = parts.next()?.to_string();
    let times = times
        .split(',')
        .filter(|t| !t.is_empty())
        .map(|t| {
            let (a, s) = t.split_once('=')?;
            Some((a.parse().ok()?, s.parse().ok()?))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((key, (algorithm, times)))
}

/// The most bytes of cache file read: past this the file is left unread (with a warning) and
/// the next entry starts it afresh.
const MAX_CACHE_BYTES: u64 = 1 << 20;

/// The cache file's path, where there is a cache directory.
fn cache_path() -> Option<PathBuf> {
    cache_dir().map(|d| d.join(CACHE_FILE))
}

/// Says once per process, through `log`, why the cache file was not used.
fn warn_once(why: &str) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| log::warn!("wgpu-conv: autotuning cache not used: {why}"));
}

/// What the cache file holds.
enum CacheFile {
    /// No file yet.
    Missing,
    /// Its text (at most [`MAX_CACHE_BYTES`]).
    Text(String),
    /// A regular file that cannot be used (too large, not text, unreadable): written afresh.
    Bad(String),
    /// Not a regular file (a FIFO, a device, a directory): never opened, never written.
    Foreign(String),
}

/// Reads the cache file at `path`: only a regular file (checked before it is opened, so a FIFO
/// never blocks and a device is never read), and at most [`MAX_CACHE_BYTES`] of it.
fn read_file(path: &std::path::Path) -> CacheFile {
    use std::io::Read;
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return CacheFile::Missing,
        Err(e) => return CacheFile::Foreign(format!("{shown}: {e}")),
    };
    if !meta.is_file() {
        return CacheFile::Foreign(format!("{shown} is not a regular file"));
    }
    if meta.len() > MAX_CACHE_BYTES {
        return CacheFile::Bad(format!(
            "{shown} has {} bytes, more than the {MAX_CACHE_BYTES} read",
            meta.len()
        ));
    }
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| {
        // the path may have been replaced since it was looked at
        if !f.metadata()?.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        f.take(MAX_CACHE_BYTES + 1).read_to_end(&mut bytes)
    });
    match read {
        Err(e) => CacheFile::Foreign(format!("{shown}: {e}")),
        Ok(n) if n as u64 > MAX_CACHE_BYTES => {
            CacheFile::Bad(format!("{shown} grew past {MAX_CACHE_BYTES} bytes"))
        }
        Ok(_) => match String::from_utf8(bytes) {
            Ok(text) => CacheFile::Text(text),
            Err(_) => CacheFile::Bad(format!("{shown} is not text")),
        },
    }
}

/// The cache file's entries: one a line, appended; where a key shows more than once, the last
/// line counts. Lines that do not parse are skipped; a file that cannot be used is an empty
/// cache, with a warning.
pub(crate) fn read_cache() -> BTreeMap<String, (Algorithm, Times)> {
    let Some(path) = cache_path() else {
        return BTreeMap::new();
    };
    match read_file(&path) {
        CacheFile::Text(text) => text.lines().filter_map(parse_line).collect(),
        CacheFile::Missing => BTreeMap::new(),
        CacheFile::Bad(why) | CacheFile::Foreign(why) => {
            warn_once(&why);
            BTreeMap::new()
        }
    }
}

const CACHE_HEADER: &str = "# wgpu-conv autotuning cache: key (kernel set, adapter, driver, \
                            backend, op, shape bucket), algorithm, candidates' median seconds\n";

/// One entry as a line of the file.
fn entry_line(key: &str, algorithm: Algorithm, times: &[(Algorithm, f64)]) -> String {
    let t: Vec<String> = times
        .iter()
        .map(|(a, s)| format!("{}={s:e}", a.name()))
        .collect();
    format!("{key}\t{}\t{}\n", algorithm.name(), t.join(","))
}

/// Adds an entry to the cache file: one line appended in one write (so that writers in other
/// threads and processes keep theirs: appends to a regular file do not interleave). A file
/// that cannot be used is replaced through a temporary file of this writer's own and a rename;
/// a path that is not a regular file is left alone. Failing to write is not an error: the
/// choice still holds for this process.
pub(crate) fn write_entry(key: &str, algorithm: Algorithm, times: &[(Algorithm, f64)]) {
    use std::io::Write;
    let (Some(dir), Some(path)) = (cache_dir(), cache_path()) else {
        return;
    };
    let line = entry_line(key, algorithm, times);
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    match read_file(&path) {
        CacheFile::Foreign(why) => warn_once(&why),
        CacheFile::Missing | CacheFile::Text(_) => {
            let appended = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&path)
                .and_then(|mut f| {
                    let fresh = f.metadata()?.len() == 0;
                    let text = if fresh {
                        format!("{CACHE_HEADER}{line}")
                    } else {
                        line.clone()
                    };
                    f.write_all(text.as_bytes())
                });
            if let Err(e) = appended {
                warn_once(&format!("{}: {e}", path.display()));
            }
        }
        CacheFile::Bad(why) => {
            warn_once(&format!("{why}; starting it afresh"));
            static WRITERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = WRITERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tmp = dir.join(format!("{CACHE_FILE}.{}.{n}.tmp", std::process::id()));
            let written = std::fs::write(&tmp, format!("{CACHE_HEADER}{line}"))
                .and_then(|()| std::fs::rename(&tmp, &path));
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels;
    use crate::options::Conv2dOptions;

    #[test]
    fn cache_lines_round_trip_and_bad_lines_are_skipped() {
        let times = vec![(Algorithm::Gpu, 0.25), (Algorithm::Gemm, 1.5e-3)];
        let t: Vec<String> = times
            .iter()
            .map(|(a, s)| format!("{}={s:e}", a.name()))
            .collect();
        let line = format!(
            "k1\tadapter x\tdriver\tVulkan\tforward\tb\tgemm\t{}",
            t.join(",")
        );
        let (key, (a, back)) = parse_line(&line).unwrap();
        assert_eq!(key, "k1\tadapter x\tdriver\tVulkan\tforward\tb");
        assert_eq!(a, Algorithm::Gemm);
        assert_eq!(back, times);
        for bad in [
            "",
            "# comment",
            "key\tnonsense\tgpu=1",
            "key\tgpu\tgpu=x",
            "no tabs",
        ] {
            assert!(parse_line(bad).is_none(), "{bad:?} parsed");
        }
        assert_eq!(field("a\tb\nc"), "a b c");
    }

    #[test]
    fn buckets_round_batch_and_image_sizes_up_to_powers_of_two_only() {
        let o = Conv2dOptions::new().padding(1);
        let g = |x: [usize; 4], w: [usize; 4]| o.resolve(x, w).unwrap();
        let a = bucket(&g([3, 8, 12, 9], [4, 8, 3, 3]), false);
        assert_eq!(a, bucket(&g([4, 8, 16, 16], [4, 8, 3, 3]), false));
        assert_ne!(a, bucket(&g([4, 8, 17, 16], [4, 8, 3, 3]), false));
        assert_ne!(a, bucket(&g([3, 8, 12, 9], [5, 8, 3, 3]), false));
        assert_ne!(a, bucket(&g([3, 8, 12, 9], [4, 8, 3, 3]), true));
        let v = kernels::kernel_set_version();
        assert!(v.starts_with("kernels-") && v.len() == 24, "{v}");
        assert_eq!(v, kernels::kernel_set_version());
    }
}
