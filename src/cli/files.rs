//! Files for the commands: `-` as standard input or output, outputs checked before any work, and
//! writes that replace a file whole or not at all.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

/// Whether a file argument is `-`: standard input or output.
pub fn is_stdio(path: &Path) -> bool {
    path == Path::new("-")
}

/// All of standard input.
pub fn read_stdin() -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes)
        .context("cannot read standard input")?;
    Ok(bytes)
}

/// `bytes` to standard output (a closed pipe is an error, as for a file).
pub fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    std::io::Write::write_all(&mut out, bytes)
        .and_then(|()| std::io::Write::flush(&mut out))
        .context("cannot write to standard output")
}

/// Checks, before any work, that every output can be written: its folder exists, it is not a
/// folder itself, no two outputs are the same file and no output is one of the inputs.
pub fn check_outputs(inputs: &[&Path], outputs: &[&Path]) -> Result<()> {
    let key = |p: &Path| -> Option<PathBuf> {
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        Some(dir.canonicalize().ok()?.join(p.file_name()?))
    };
    let ins: Vec<PathBuf> = inputs
        .iter()
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    if inputs.iter().filter(|p| is_stdio(p)).count() > 1 {
        bail!("only one input can be standard input (-)");
    }
    if outputs.iter().filter(|p| is_stdio(p)).count() > 1 {
        bail!("only one output can be standard output (-)");
    }
    let mut seen: Vec<PathBuf> = Vec::new();
    for &out in outputs {
        if out == Path::new("-") {
            continue;
        }
        if out.is_dir() {
            bail!("{} is a folder; give a file name to write", out.display());
        }
        let Some(k) = key(out) else {
            bail!("cannot write {}: its folder does not exist", out.display());
        };
        let k = k.canonicalize().unwrap_or(k);
        if ins.contains(&k) {
            bail!(
                "{} is also an input; write the result elsewhere",
                out.display()
            );
        }
        if seen.contains(&k) {
            bail!("{} is given as two outputs", out.display());
        }
        seen.push(k);
    }
    Ok(())
}

/// Writes `path` safely: `write` fills a new temporary file in the same folder, which then
/// replaces `path` in one rename, so that a reader (or a second writer) sees the old file or
/// the whole new one, never a mix, and a failed write leaves no partial file.
pub fn write_atomic(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let suffix = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let mut builder = tempfile::Builder::new();
    builder.prefix(".wgpu-conv-").suffix(&suffix);
    // tempfile's files are 0600: ask for 0666 instead, which the umask then narrows (0644
    // under 022), as for any file a program creates
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let tmp = builder
        .tempfile_in(dir)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // a file that is replaced keeps its mode
    if let Ok(old) = std::fs::metadata(path) {
        if old.is_file() {
            let _ = std::fs::set_permissions(tmp.path(), old.permissions());
        }
    }
    write(tmp.path())?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| anyhow!("cannot write {}: {}", path.display(), e.error))?;
    Ok(())
}
