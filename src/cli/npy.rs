//! Reading and writing `.npy` files for the CLI.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

use anyhow::{bail, Context, Result};
use npyz::{Order, TypeChar, WriterBuilder};
use wgpu_conv::Tensor;

/// Reads a `.npy` file as `f32`. float32 is read as is; float64 and integer arrays are converted
/// (rounded to the nearest float32);
/// Fortran-order arrays are reordered to row-major.
pub fn read(path: &Path) -> Result<Tensor> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let npy = npyz::NpyFile::new(BufReader::new(file))
        .with_context(|| format!("{} is not a valid .npy file", path.display()))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let order = npy.order();
    let dtype = npy.dtype();
    let npyz::DType::Plain(ts) = &dtype else {
        bail!(
            "{}: structured or array dtypes are not supported, need float32",
            path.display()
        );
    };
    let desc = ts.to_string();
    if shape.is_empty() {
        bail!(
            "{}: a 0-d (scalar) array is not a tensor; give it at least one dimension",
            path.display()
        );
    }
    if shape.len() > 4 {
        bail!(
            "{}: rank {} is not supported (shape {shape:?}); expected rank 1 to 4",
            path.display(),
            shape.len()
        );
    }
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if count.is_none_or(|c| c > u32::MAX as usize) {
        bail!("{}: shape {shape:?} has too many elements", path.display());
    }
    let ctx = || {
        format!(
            "{}: data could not be read as {desc} (truncated file?)",
            path.display()
        )
    };
    let data: Vec<f32> = match (ts.type_char(), ts.size_field()) {
        (TypeChar::Float, 4) => npy.into_vec::<f32>().with_context(ctx)?,
        (TypeChar::Float, 8) => npy.into_vec::<f64>().with_context(ctx)?.into_iter().map(|v| v as f32).collect(),
        (TypeChar::Int, 4) => npy.into_vec::<i32>().with_context(ctx)?.into_iter().map(|v| v as f32).collect(),
        (TypeChar::Int, 8) => npy.into_vec::<i64>().with_context(ctx)?.into_iter().map(|v| v as f32).collect(),
        _ => bail!("{}: dtype {desc} is not supported; use float32 (float64 and int32/int64 are converted)", path.display()),
    };
    if data.len() != count.unwrap_or(0) {
        bail!(
            "{}: expected {} elements for shape {shape:?}, read {}",
            path.display(),
            count.unwrap_or(0),
            data.len()
        );
    }
    let data = match order {
        Order::C => data,
        Order::Fortran => fortran_to_c(&shape, &data),
    };
    Ok(Tensor::new(shape, data)?)
}

/// Column-major data to row-major, for any rank.
fn fortran_to_c(shape: &[usize], data: &[f32]) -> Vec<f32> {
    let t = Tensor::from_fn(shape.to_vec(), |idx| {
        let mut off = 0;
        for d in (0..shape.len()).rev() {
            off = off * shape[d] + idx[d];
        }
        data[off]
    });
    t.into_data()
}

/// Writes a float32 `.npy` file.
pub fn write(path: &Path, t: &Tensor) -> Result<()> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let shape: Vec<u64> = t.shape().iter().map(|&d| d as u64).collect();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(BufWriter::new(file))
        .begin_nd()
        .with_context(|| format!("cannot write {}", path.display()))?;
    w.extend(t.data().iter().copied())
        .with_context(|| format!("cannot write {}", path.display()))?;
    w.finish()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
