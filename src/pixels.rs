//! Pixels and gray levels without an image decoder: 8-bit RGBA (a browser canvas's
//! `ImageData`, a decoded file) to a gray tensor in `[0, 1]`, and a filter's response back to
//! 8-bit levels. The `images` module (feature `image`) reads and writes files with these same
//! formulas, so that every front end (the CLI, Python, the browser) gives the same picture.

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// What transparent pixels are composited over: white (1.0), so that a transparent shape on
/// an opaque dark ground has an edge.
pub const BACKGROUND: f32 = 1.0;

/// How a response becomes 8-bit levels ([`levels`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Map {
    /// `|r|` scaled so the 99.5th percentile of `|r|` is white: edges white on black.
    Abs,
    /// Zero is mid-gray, positive lighter, negative darker, scaled by the 99.5th percentile
    /// of `|r|`.
    Signed,
    /// `r` clamped to `[0, 1]` (the input's range): for blurs and other kernels with no
    /// negative weight.
    Clamp,
}

impl Map {
    /// [`Map::Clamp`] for a kernel with no negative weight (it keeps the input's range),
    /// [`Map::Abs`] otherwise.
    pub fn for_kernel(kernel: &Tensor) -> Map {
        if kernel.data().iter().all(|&v| v >= 0.0) {
            Map::Clamp
        } else {
            Map::Abs
        }
    }
}

/// Rec. 709 luma of linear-coded `[r, g, b]` in `[0, 1]`.
pub(crate) fn luma([r, g, b]: [f32; 3]) -> f32 {
    0.2126 * r + 0.7152 * g + 0.0722 * b
}

/// `c` with coverage `alpha`, composited over [`BACKGROUND`].
pub(crate) fn over(c: f32, alpha: f32) -> f32 {
    c * alpha + BACKGROUND * (1.0 - alpha)
}

/// The gray levels `[H, W]` in `[0, 1]` of `width` x `height` RGBA pixels, 8 bits a sample in
/// row order (a canvas's `ImageData`): Rec. 709 luma, alpha composited over [`BACKGROUND`].
pub fn gray_from_rgba8(rgba: &[u8], width: usize, height: usize) -> Result<Tensor> {
    let pixels = width
        .checked_mul(height)
        .ok_or_else(|| Error::shape(format!("a {width}x{height} image is too large")))?;
    if pixels.checked_mul(4) != Some(rgba.len()) {
        return Err(Error::InvalidShape(format!(
            "{width}x{height} RGBA pixels are {} bytes, got {}",
            pixels.saturating_mul(4),
            rgba.len()
        )));
    }
    let v = |b: u8| f32::from(b) / 255.0;
    let data = rgba
        .chunks_exact(4)
        .map(|p| over(luma([v(p[0]), v(p[1]), v(p[2])]), v(p[3])))
        .collect();
    Tensor::new(vec![height, width], data)
}

/// The 99.5th percentile of `|v|` over the finite values (their largest if that is 0; 1 if
/// all are 0): the scale [`Map::Abs`] and [`Map::Signed`] divide by.
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

/// 8-bit levels of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Levels {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Samples a pixel: 1 (gray) or 3 (RGB).
    pub planes: usize,
    /// The samples, pixel by pixel in row order, `planes` each.
    pub data: Vec<u8>,
}

impl Levels {
    /// The levels as RGBA, 4 bytes a pixel (gray repeated), opaque: a canvas's `ImageData`.
    pub fn to_rgba8(&self) -> Vec<u8> {
        self.data
            .chunks_exact(self.planes)
            .flat_map(|p| match *p {
                [g] => [g, g, g, 255],
                [r, g, b] => [r, g, b, 255],
                _ => [0, 0, 0, 255],
            })
            .collect()
    }
}

/// A response `[H, W]` (or `[3, H, W]`) as 8-bit gray (or RGB) levels, each value mapped by
/// `map` (one scale for all planes). NaN maps to 0.
pub fn levels(t: &Tensor, map: Map) -> Result<Levels> {
    let (planes, height, width) = match *t.shape() {
        [h, w] => (1, h, w),
        [3, h, w] => (3, h, w),
        ref s => {
            return Err(Error::InvalidShape(format!(
                "an image is [H, W] or [3, H, W], got {s:?}"
            )))
        }
    };
    let s = match map {
        Map::Clamp => 1.0,
        _ => scale_of(t.data()),
    };
    let to_u8 = |v: f32| {
        let v = match map {
            Map::Abs => v.abs() / s,
            Map::Signed => 0.5 + 0.5 * v / s,
            Map::Clamp => v,
        };
        // NaN maps to 0, as `as u8` does
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    };
    let d = t.data();
    let plane = height * width;
    let data = (0..plane * planes)
        .map(|i| to_u8(d[(i % planes) * plane + i / planes]))
        .collect();
    Ok(Levels {
        width,
        height,
        planes,
        data,
    })
}
