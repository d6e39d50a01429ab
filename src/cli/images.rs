//! Images for the CLI: grayscale loading, convolution with named or given kernels, and mapping
//! responses to a viewable PNG.

use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use wgpu_conv::{filters, Conv2dOptions, GpuContext, Padding, PaddingMode, Tensor};

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

/// Loads any PNG or JPEG as grayscale `[H, W]` in `[0, 1]`.
pub fn load_gray(path: &Path) -> Result<Tensor> {
    let img = image::ImageReader::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read {}", path.display()))?
        .decode()
        .with_context(|| {
            format!(
                "{} is not a PNG or JPEG image this tool can decode",
                path.display()
            )
        })?;
    let gray = img.to_luma32f();
    let (w, h) = (gray.width() as usize, gray.height() as usize);
    Ok(Tensor::new(vec![h, w], gray.into_raw())?)
}

fn scale_of(values: &[f32]) -> f32 {
    let mut mags: Vec<f32> = values
        .iter()
        .map(|v| v.abs())
        .filter(|v| v.is_finite())
        .collect();
    if mags.is_empty() {
        return 1.0;
    }
    let k = ((mags.len() - 1) as f64 * 0.995) as usize;
    let (_, q, _) = mags.select_nth_unstable_by(k, f32::total_cmp);
    let q = *q;
    if q > 0.0 {
        q
    } else {
        let m = mags.iter().copied().fold(0.0, f32::max);
        if m > 0.0 {
            m
        } else {
            1.0
        }
    }
}

/// Maps a response `[H, W]` to 8-bit gray and writes it as PNG.
pub fn save_gray(path: &Path, t: &Tensor, map: Map, kernel_nonnegative: bool) -> Result<()> {
    let [h, w] = t.shape() else {
        bail!("save_gray needs a 2-D tensor, got {:?}", t.shape())
    };
    let map = match map {
        Map::Auto if kernel_nonnegative => Map::Clamp,
        Map::Auto => Map::Abs,
        m => m,
    };
    let s = scale_of(t.data());
    let to_u8 = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let pixels: Vec<u8> = t
        .data()
        .iter()
        .map(|&v| match map {
            Map::Abs => to_u8(v.abs() / s),
            Map::Signed => to_u8(0.5 + 0.5 * v / s),
            _ => to_u8(v),
        })
        .collect();
    let img =
        image::GrayImage::from_raw(*w as u32, *h as u32, pixels).context("image buffer size")?;
    img.save_with_format(path, image::ImageFormat::Png)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Nearest-neighbour upscaling, so the chapter's 6x8 images can be seen.
pub fn upscale(t: &Tensor, f: usize) -> Tensor {
    let [h, w] = t.shape() else { return t.clone() };
    let w = *w;
    Tensor::from_fn([h * f, w * f], |i| t.data()[(i[0] / f) * w + i[1] / f])
}

/// The weight for an `edges --kernel` name: one output channel, or two (x and y) for the
/// gradient-magnitude kernels `sobel` and `prewitt`.
pub fn edge_weight(name: &str) -> Result<Tensor> {
    let pair = |a: Tensor, b: Tensor| -> Result<Tensor> {
        let mut d = a.into_data();
        d.extend_from_slice(b.data());
        Ok(Tensor::new(vec![2, 1, 3, 3], d)?)
    };
    match name {
        "sobel" => pair(filters::sobel_x(), filters::sobel_y()),
        "prewitt" => pair(filters::prewitt_x(), filters::prewitt_y()),
        other => {
            let k = filters::by_name(other)?;
            let (kh, kw) = (k.shape()[0], k.shape()[1]);
            Ok(k.reshape(vec![1, 1, kh, kw])?)
        }
    }
}

/// Convolves a grayscale image `[H, W]` with `weight` `(OC, 1, KH, KW)`, same-size output
/// (`same` padding, the given padding mode). Several output channels are combined into their
/// Euclidean norm (the gradient magnitude for x/y pairs).
pub fn apply(ctx: &GpuContext, img: &Tensor, weight: &Tensor, mode: PaddingMode) -> Result<Tensor> {
    let [h, w] = img.shape() else {
        bail!("expected a 2-D image")
    };
    let (h, w) = (*h, *w);
    let [oc, 1, _, _] = weight.shape() else {
        bail!(
            "an image kernel is (KH, KW) or (OC, 1, KH, KW), got {:?}",
            weight.shape()
        )
    };
    let oc = *oc;
    let x = img.clone().reshape(vec![1, 1, h, w])?;
    let opts = Conv2dOptions::new()
        .padding(Padding::Same)
        .padding_mode(mode);
    let y = ctx.conv2d(&x, weight, None, &opts)?;
    if oc == 1 {
        return Ok(y.reshape(vec![h, w])?);
    }
    let plane = h * w;
    let d = y.data();
    Ok(Tensor::from_fn([h, w], |i| {
        let p = i[0] * w + i[1];
        (0..oc)
            .map(|c| d[c * plane + p].powi(2))
            .sum::<f32>()
            .sqrt()
    }))
}
