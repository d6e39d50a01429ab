//! Images for the CLI: standard input and output, the `--map` and `--kernel` names, and
//! writing PNG or JPEG; loading, mapping and filtering are the library's (`wgpu_conv::images`,
//! `wgpu_conv::filters::apply`).

use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use wgpu_conv::images::{self, Color};
use wgpu_conv::{filters, PaddingMode, Tensor};

use super::{check_outputs, context, is_stdio, npy, progress, EdgesArgs, FilterArgs, ImageFiles};

pub use wgpu_conv::images::DEFAULT_MAX_PIXELS;

/// How responses become gray levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Map {
    /// `clamp` for kernels with no negative weight (blurs), `abs` otherwise.
    Auto,
    /// `|r|` scaled so the 99.5th percentile is white: edges white on black.
    Abs,
    /// Zero is mid-gray, positive lighter, negative darker, scaled by the 99.5th percentile of `|r|`.
    Signed,
    /// `r` clamped to `[0, 1]` (the input's range).
    Clamp,
}

impl Map {
    /// The library's mapping, `auto` resolved for `kernel`.
    pub fn resolve(self, kernel: &Tensor) -> images::Map {
        match self {
            Map::Auto => images::Map::for_kernel(kernel),
            Map::Abs => images::Map::Abs,
            Map::Signed => images::Map::Signed,
            Map::Clamp => images::Map::Clamp,
        }
    }
}

/// Loads a PNG or JPEG (`-`: standard input) as gray `[H, W]` or colour `[3, H, W]`.
pub fn load(path: &Path, color: Color, max_pixels: u64) -> Result<Tensor> {
    let hint = |e: wgpu_conv::Error| {
        let msg = e.to_string();
        if msg.contains("over the limit") {
            anyhow::anyhow!("{msg} (raise it with --max-pixels)")
        } else {
            anyhow::Error::from(e)
        }
    };
    if is_stdio(path) {
        let bytes = super::read_stdin()?;
        return images::decode(&bytes, "standard input", color, max_pixels).map_err(hint);
    }
    images::load(path, color, max_pixels).map_err(hint)
}

/// Maps a response `[H, W]` (or `[3, H, W]`) to 8-bit levels and writes it as PNG or JPEG
/// (by the extension; `-`: PNG on standard output).
pub fn save(path: &Path, t: &Tensor, map: images::Map) -> Result<()> {
    let img = images::to_image(t, map)?;
    let format = output_format(path)?;
    if is_stdio(path) {
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), format)?;
        return super::write_stdout(&png);
    }
    super::write_atomic(path, |tmp| {
        img.save_with_format(tmp, format)
            .with_context(|| format!("cannot write {}", path.display()))
    })
}

/// The format an output image is written in, from its extension: PNG (`.png`) or JPEG (`.jpg`,
/// `.jpeg`); anything else is an error rather than PNG bytes under another name. (`-`, standard
/// output, is PNG.)
pub fn output_format(path: &Path) -> Result<images::image::ImageFormat> {
    use images::image::ImageFormat;
    if is_stdio(path) {
        return Ok(ImageFormat::Png);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("png") => Ok(ImageFormat::Png),
        Some("jpg" | "jpeg") => Ok(ImageFormat::Jpeg),
        _ => bail!(
            "{}: cannot tell the output format; name it .png or .jpg",
            path.display()
        ),
    }
}

/// Nearest-neighbour upscaling, so the chapter's 6x8 images can be seen.
pub fn upscale(t: &Tensor, f: usize) -> wgpu_conv::Result<Tensor> {
    let [h, w] = t.shape() else {
        return Ok(t.clone());
    };
    let w = *w;
    Tensor::from_fn([h * f, w * f], |i| t.data()[(i[0] / f) * w + i[1] / f])
}

/// Filters every input image of `files` with `weight` on one context and writes each result.
fn image_command(
    files: &ImageFiles,
    other_inputs: &[&Path],
    weight: &Tensor,
    color: Color,
    mode: PaddingMode,
    map: Map,
    max_pixels: u64,
) -> Result<()> {
    let pairs = files.pairs()?;
    let mut inputs: Vec<&Path> = pairs.iter().map(|p| p.0.as_path()).collect();
    inputs.extend(other_inputs);
    let outputs: Vec<&Path> = pairs.iter().map(|p| p.1.as_path()).collect();
    check_outputs(&inputs, &outputs)?;
    let map = map.resolve(weight);
    let ctx = context()?;
    let bar = if pairs.len() > 1 {
        progress(pairs.len() as u64, "images")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let t = std::time::Instant::now();
    for (input, output) in &pairs {
        let img = load(input, color, max_pixels)?;
        let y = filters::apply(&ctx, &img, weight, mode)?;
        save(output, &y, map)?;
        bar.inc(1);
        if pairs.len() == 1 {
            let r = img.shape().len();
            let (h, w) = (img.shape()[r - 2], img.shape()[r - 1]);
            eprintln!(
                "{w}x{h} image, kernel {:?}, {:.1} ms on {} -> {}",
                weight.shape(),
                t.elapsed().as_secs_f64() * 1e3,
                ctx.describe(),
                output.display()
            );
        }
    }
    bar.finish_and_clear();
    if let (true, Some(dir)) = (pairs.len() > 1, &files.out_dir) {
        eprintln!(
            "{} images, kernel {:?}, {:.2} s on {} -> {}",
            pairs.len(),
            weight.shape(),
            t.elapsed().as_secs_f64(),
            ctx.describe(),
            dir.display()
        );
    }
    Ok(())
}

/// `wgpu-conv edges`.
pub fn edges(args: EdgesArgs) -> Result<()> {
    let EdgesArgs {
        files,
        kernel,
        padding_mode,
        map,
        max_pixels,
    } = args;
    let weight = wgpu_conv::filters::edge_kernel(&kernel)?;
    image_command(
        &files,
        &[],
        &weight,
        Color::Gray,
        padding_mode,
        map,
        max_pixels,
    )
}

/// `wgpu-conv filter`.
pub fn filter(args: FilterArgs) -> Result<()> {
    let FilterArgs {
        files,
        weight,
        color,
        padding_mode,
        map,
        max_pixels,
    } = args;
    if is_stdio(&weight) && is_stdio(&files.input) {
        bail!("only one input can be standard input (-): the image or --weight");
    }
    let w = npy::read(&weight)?;
    let w = match w.shape() {
        [kh, kw] => {
            let (kh, kw) = (*kh, *kw);
            w.reshape(vec![1, 1, kh, kw])?
        }
        [_, 1, _, _] => w,
        s => bail!(
            "{}: a kernel is (KH, KW) or (OC, 1, KH, KW), got {s:?}",
            weight.display()
        ),
    };
    let color = if color { Color::Rgb } else { Color::Gray };
    image_command(&files, &[&weight], &w, color, padding_mode, map, max_pixels)
}
