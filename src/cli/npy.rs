//! Reading and writing `.npy` files for the CLI.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{bail, Context, Result};
use npyz::{Order, TypeChar, WriterBuilder};
use wgpu_conv::Tensor;

/// The longest header accepted, in bytes: numpy's own default (`max_header_size` in
/// `numpy.lib.format`).
pub const MAX_HEADER: usize = 10_000;

/// How much of a file's text an error message quotes, at most.
const QUOTE: usize = 200;

/// `s` cut to about [`QUOTE`] characters, marked where it was cut.
pub fn clip(s: &str) -> String {
    if s.chars().count() <= QUOTE {
        return s.to_string();
    }
    let head: String = s.chars().take(QUOTE).collect();
    format!("{head}... ({} bytes in all)", s.len())
}

/// What a `.npy` header says: its dtype string, whether the data is column-major, its shape.
#[derive(Debug, PartialEq)]
pub struct Header {
    pub descr: String,
    pub fortran_order: bool,
    pub shape: Vec<u64>,
}

/// Checks the magic string, the version and the header length (at most [`MAX_HEADER`]), and
/// parses the header dict with [`parse_header`]: a file cannot make this take long.
fn check_header<R: Read + Seek>(name: &str, file: &mut R) -> Result<Header> {
    let mut start = [0u8; 12];
    let n = file.read(&mut start)?;
    if n < 10 || &start[..6] != b"\x93NUMPY" {
        bail!("{} is not a .npy file (no \\x93NUMPY magic string)", name);
    }
    let (len, at) = match start[6] {
        1 => (usize::from(u16::from_le_bytes([start[8], start[9]])), 10),
        2 | 3 if n == 12 => (
            u32::from_le_bytes([start[8], start[9], start[10], start[11]]) as usize,
            12,
        ),
        v => bail!("{}: .npy format version {v} is not supported", name),
    };
    if len > MAX_HEADER {
        bail!(
            "{}: the .npy header is {len} bytes, over the {MAX_HEADER} numpy itself accepts",
            name
        );
    }
    file.seek(SeekFrom::Start(at))?;
    let mut text = vec![0u8; len];
    file.read_exact(&mut text)
        .with_context(|| format!("{}: the .npy header is cut short", name))?;
    let text = String::from_utf8_lossy(&text);
    parse_header(&text).map_err(|e| anyhow::anyhow!("{}: bad .npy header: {e}", name))
}

/// Parses a `.npy` header, `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`, in one
/// pass over its bytes: exactly those three keys, a quoted string, `True`/`False` and a tuple of
/// integers, nothing nested. Errors quote at most [`QUOTE`] characters.
pub fn parse_header(text: &str) -> std::result::Result<Header, String> {
    let b = text.as_bytes();
    let mut i = 0;
    let ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    let near = |i: usize| clip(&text[i.min(text.len())..]);
    let expect = |i: &mut usize, c: u8| -> std::result::Result<(), String> {
        ws(i);
        if *i < b.len() && b[*i] == c {
            *i += 1;
            Ok(())
        } else {
            Err(format!(
                "expected '{}' at byte {}: {}",
                c as char,
                *i,
                near(*i)
            ))
        }
    };
    let string = |i: &mut usize| -> std::result::Result<String, String> {
        ws(i);
        let q = *b.get(*i).ok_or("unexpected end of header")?;
        if q != b'\'' && q != b'"' {
            return Err(format!(
                "expected a quoted string at byte {}: {}",
                *i,
                near(*i)
            ));
        }
        let end = b[*i + 1..]
            .iter()
            .position(|&c| c == q)
            .ok_or_else(|| format!("unterminated string at byte {}", *i))?;
        let s = text[*i + 1..*i + 1 + end].to_string();
        *i += end + 2;
        Ok(s)
    };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    expect(&mut i, b'{')?;
    loop {
        ws(&mut i);
        if i < b.len() && b[i] == b'}' {
            i += 1;
            break;
        }
        let key = string(&mut i)?;
        expect(&mut i, b':')?;
        ws(&mut i);
        match key.as_str() {
            "descr" => descr = Some(string(&mut i)?),
            "fortran_order" => {
                fortran = Some(if text[i..].starts_with("True") {
                    true
                } else if text[i..].starts_with("False") {
                    false
                } else {
                    return Err(format!("fortran_order must be True or False: {}", near(i)));
                });
                i += if fortran == Some(true) { 4 } else { 5 };
            }
            "shape" => {
                expect(&mut i, b'(')?;
                let mut dims = Vec::new();
                loop {
                    ws(&mut i);
                    if i < b.len() && b[i] == b')' {
                        i += 1;
                        break;
                    }
                    let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
                    if digits == 0 || digits > 19 {
                        return Err(format!("expected a dimension at byte {i}: {}", near(i)));
                    }
                    let d: u64 = text[i..i + digits]
                        .parse()
                        .map_err(|_| format!("dimension too large: {}", near(i)))?;
                    dims.push(d);
                    i += digits;
                    ws(&mut i);
                    if i < b.len() && b[i] == b',' {
                        i += 1;
                    } else if !(i < b.len() && b[i] == b')') {
                        return Err(format!("expected ',' or ')' at byte {i}: {}", near(i)));
                    }
                    if dims.len() > 32 {
                        return Err("more than 32 dimensions".into());
                    }
                }
                shape = Some(dims);
            }
            other => return Err(format!("unexpected key '{}'", clip(other))),
        }
        ws(&mut i);
        if i < b.len() && b[i] == b',' {
            i += 1;
        } else if !(i < b.len() && b[i] == b'}') {
            return Err(format!("expected ',' or '}}' at byte {i}: {}", near(i)));
        }
    }
    if !text[i..].trim().is_empty() {
        return Err(format!("text after the header dict: {}", near(i)));
    }
    Ok(Header {
        descr: descr.ok_or("no 'descr' key")?,
        fortran_order: fortran.ok_or("no 'fortran_order' key")?,
        shape: shape.ok_or("no 'shape' key")?,
    })
}

/// Reads a `.npy` file as `f32`. float32 is read as is; float16, float64, bool (0 or 1) and
/// signed or unsigned integer arrays of 1 to 8 bytes (an image saved by numpy is uint8) are
/// converted (rounded to the nearest float32; a finite float64 beyond float32's range is an
/// error);
/// Fortran-order arrays are reordered to row-major. The header is checked first by
/// [`check_header`], so no file can stall the reader.
/// `-` is standard input.
pub fn read(path: &Path) -> Result<Tensor> {
    if super::is_stdio(path) {
        let bytes = super::read_stdin()?;
        return read_from(std::io::Cursor::new(bytes), "standard input");
    }
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    read_from(BufReader::new(file), &path.display().to_string())
}

/// [`read`] from any source; `name` says what it is in errors.
fn read_from<R: Read + Seek>(mut file: R, name: &str) -> Result<Tensor> {
    check_header(name, &mut file)?;
    file.seek(SeekFrom::Start(0))?;
    let npy = npyz::NpyFile::new(file).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a valid .npy file: {}",
            name,
            clip(&e.to_string())
        )
    })?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let order = npy.order();
    let dtype = npy.dtype();
    let npyz::DType::Plain(ts) = &dtype else {
        bail!(
            "{}: structured or array dtypes are not supported, need float32",
            name
        );
    };
    let desc = ts.to_string();
    if shape.is_empty() {
        bail!(
            "{}: a 0-d (scalar) array is not a tensor; give it at least one dimension",
            name
        );
    }
    if shape.len() > 4 {
        bail!(
            "{}: rank {} is not supported (shape {shape:?}); expected rank 1 to 4",
            name,
            shape.len()
        );
    }
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if count.is_none_or(|c| c > u32::MAX as usize) {
        bail!("{}: shape {shape:?} has too many elements", name);
    }
    let ctx = || {
        format!(
            "{}: data could not be read as {desc} (truncated file?)",
            name
        )
    };
    let data: Vec<f32> = match (ts.type_char(), ts.size_field()) {
        (TypeChar::Float, 4) => npy.into_vec::<f32>().with_context(ctx)?,
        (TypeChar::Float, 8) => {
            let wide = npy.into_vec::<f64>().with_context(ctx)?;
            if let Some((i, v)) = wide.iter().enumerate().find(|(_, v)| v.is_finite() && (**v as f32).is_infinite()) {
                bail!("{}: element {i} ({v:e}) is beyond float32's range", name);
            }
            wide.into_iter().map(|v| v as f32).collect()
        }
        (TypeChar::Float, 2) => npy.into_vec::<half::f16>().with_context(ctx)?.into_iter().map(f32::from).collect(),
        (TypeChar::Int, 1) => npy.into_vec::<i8>().with_context(ctx)?.into_iter().map(f32::from).collect(),
        (TypeChar::Int, 2) => npy.into_vec::<i16>().with_context(ctx)?.into_iter().map(f32::from).collect(),
        (TypeChar::Int, 4) => npy.into_vec::<i32>().with_context(ctx)?.into_iter().map(|v| v as f32).collect(),
        (TypeChar::Int, 8) => npy.into_vec::<i64>().with_context(ctx)?.into_iter().map(|v| v as f32).collect(),
        (TypeChar::Uint, 1) => npy.into_vec::<u8>().with_context(ctx)?.into_iter().map(f32::from).collect(),
        (TypeChar::Uint, 2) => npy.into_vec::<u16>().with_context(ctx)?.into_iter().map(f32::from).collect(),
        (TypeChar::Uint, 4) => npy.into_vec::<u32>().with_context(ctx)?.into_iter().map(|v| v as f32).collect(),
        (TypeChar::Uint, 8) => npy.into_vec::<u64>().with_context(ctx)?.into_iter().map(|v| v as f32).collect(),
        (TypeChar::Bool, 1) => npy.into_vec::<bool>().with_context(ctx)?.into_iter().map(|v| f32::from(u8::from(v))).collect(),
        _ => bail!("{}: dtype {desc} is not supported; use float32 (float16/64, bool and 1- to 8-byte integers are converted)", name),
    };
    if data.len() != count.unwrap_or(0) {
        bail!(
            "{}: expected {} elements for shape {shape:?}, read {}",
            name,
            count.unwrap_or(0),
            data.len()
        );
    }
    let data = match order {
        Order::C => data,
        Order::Fortran => fortran_to_c(&shape, &data)?,
    };
    Ok(Tensor::new(shape, data)?)
}

/// Column-major data to row-major, for any rank.
fn fortran_to_c(shape: &[usize], data: &[f32]) -> wgpu_conv::Result<Vec<f32>> {
    let t = Tensor::from_fn(shape.to_vec(), |idx| {
        let mut off = 0;
        for d in (0..shape.len()).rev() {
            off = off * shape[d] + idx[d];
        }
        data[off]
    })?;
    Ok(t.into_data())
}

/// Writes a float32 `.npy` file (through a temporary file renamed into place); `-` is
/// standard output.
pub fn write(path: &Path, t: &Tensor) -> Result<()> {
    if super::is_stdio(path) {
        let mut bytes = Vec::new();
        encode(&mut std::io::Cursor::new(&mut bytes), t).context("cannot encode the .npy")?;
        return super::write_stdout(&bytes);
    }
    super::write_atomic(path, |tmp| {
        let file =
            File::create(tmp).with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = BufWriter::new(file);
        encode(&mut out, t).with_context(|| format!("cannot write {}", path.display()))?;
        std::io::Write::flush(&mut out).with_context(|| format!("cannot write {}", path.display()))
    })
}

/// `t` as a float32 `.npy` into `out`.
fn encode<W: std::io::Write>(out: W, t: &Tensor) -> std::io::Result<()> {
    let shape: Vec<u64> = t.shape().iter().map(|&d| d as u64).collect();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(out)
        .begin_nd()?;
    w.extend(t.data().iter().copied())?;
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse() {
        let h = parse_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }    \n")
            .unwrap();
        assert_eq!(
            h,
            Header {
                descr: "<f4".into(),
                fortran_order: false,
                shape: vec![2, 3]
            }
        );
        let h = parse_header("{\"shape\":(7,),\"fortran_order\":True,\"descr\":\"<f8\"}").unwrap();
        assert_eq!((h.shape, h.fortran_order), (vec![7], true));
        assert_eq!(
            parse_header("{'descr':'<f4','fortran_order':False,'shape':()}")
                .unwrap()
                .shape,
            Vec::<u64>::new()
        );
    }

    #[test]
    fn hostile_headers_fail_fast_with_short_messages() {
        let nested = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': {}}}",
            "[".repeat(5000)
        );
        let deep = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}), }}",
            "(".repeat(100_000)
        );
        for bad in [
            nested.as_str(),
            deep.as_str(),
            "{'descr': '<f4', 'fortran_order': False}",
            "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
            "{'descr': '<f4 ",
            "",
        ] {
            let e = parse_header(bad).unwrap_err();
            assert!(e.len() < 300, "{} bytes: {e}", e.len());
        }
    }
}
