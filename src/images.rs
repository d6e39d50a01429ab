//! Images in and out of tensors (feature `image`): PNG and JPEG files or bytes to a gray
//! `[H, W]` or colour `[3, H, W]` tensor in `[0, 1]`, and a filter's response back to 8-bit
//! pixels. [`crate::filters::apply`] convolves such a tensor with any kernel.
//!
//! ```no_run
//! use wgpu_conv::images::{self, Color, Map};
//! use wgpu_conv::{filters, GpuContext, PaddingMode};
//!
//! # fn main() -> Result<(), wgpu_conv::Error> {
//! let ctx = GpuContext::new()?;
//! let photo = images::load("photo.jpg".as_ref(), Color::Rgb, images::DEFAULT_MAX_PIXELS)?;
//! let blurred = filters::apply(&ctx, &photo, &filters::gaussian(5, 1.5)?, PaddingMode::Replicate)?;
//! images::to_image(&blurred, Map::Clamp)?.save("blurred.png").map_err(images::error)?;
//! # Ok(()) }
//! ```

use std::io::Cursor;
use std::path::Path;

pub use image;
use image::{DynamicImage, ImageReader};

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Pixels an image may have unless the caller says otherwise: 64 megapixels (an 8192 x 8192
/// image), about 1 GiB of work at the most a filter needs per pixel.
pub const DEFAULT_MAX_PIXELS: u64 = 1 << 26;

use crate::pixels::{luma, over};
pub use crate::pixels::{Map, BACKGROUND};

/// The tensor an image becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    /// `[H, W]`: Rec. 709 luma.
    Gray,
    /// `[3, H, W]`: the red, green and blue planes.
    Rgb,
}

/// An [`Error::Image`] from the image crate's error.
pub fn error(e: image::ImageError) -> Error {
    Error::Image(e.to_string())
}

impl Tensor {
    /// The gray levels of `img`, `[H, W]` in `[0, 1]`: Rec. 709 luma of its colour, alpha
    /// composited over [`BACKGROUND`]. Every sample type (8 and 16 bits, float) is read.
    pub fn from_luma(img: &DynamicImage) -> Result<Tensor> {
        from_image(img, Color::Gray)
    }

    /// The colour planes of `img`, `[3, H, W]` in `[0, 1]` (red, green, blue), alpha
    /// composited over [`BACKGROUND`]; a gray image gives three equal planes.
    pub fn from_rgb(img: &DynamicImage) -> Result<Tensor> {
        from_image(img, Color::Rgb)
    }
}

fn from_image(img: &DynamicImage, color: Color) -> Result<Tensor> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let planes = match color {
        Color::Gray => 1,
        Color::Rgb => 3,
    };
    let len = crate::tensor::checked_len(&[planes, h, w])?;
    let mut data = Vec::new();
    data.try_reserve_exact(len)
        .map_err(|_| Error::HostOutOfMemory(format!("a {w}x{h} image as {planes} plane(s)")))?;
    data.resize(len, 0.0);
    // one conversion for every sample type, on the decoded image's own samples (no copy)
    let channels = usize::from(img.color().channel_count());
    if let Some(f) = img.as_flat_samples_u8() {
        fill(&mut data, f.samples, channels, 255.0, color);
    } else if let Some(f) = img.as_flat_samples_u16() {
        fill(&mut data, f.samples, channels, 65535.0, color);
    } else if let Some(f) = img.as_flat_samples_f32() {
        fill(&mut data, f.samples, channels, 1.0, color);
    } else {
        // a sample type the image crate may add: through f32 RGBA, 16 bytes a pixel
        fill(&mut data, img.to_rgba32f().as_raw(), 4, 1.0, color);
    }
    match color {
        Color::Gray => Tensor::new(vec![h, w], data),
        Color::Rgb => Tensor::new(vec![3, h, w], data),
    }
}

/// Writes the pixels of `samples` (`channels` per pixel: gray, gray and alpha, RGB or RGBA,
/// each out of `max`) into `out`, gray levels or three planes.
fn fill<T: Copy + Into<f32>>(
    out: &mut [f32],
    samples: &[T],
    channels: usize,
    max: f32,
    color: Color,
) {
    let plane = out.len() / if color == Color::Rgb { 3 } else { 1 };
    for (p, px) in samples.chunks_exact(channels).enumerate() {
        let v = |k: usize| px[k].into() / max;
        // a gray image's level is its own (luma's weights do not sum to exactly 1 in f32)
        let (rgb, gray, alpha) = match channels {
            1 => ([v(0); 3], Some(v(0)), 1.0),
            2 => ([v(0); 3], Some(v(0)), v(1)),
            3 => ([v(0), v(1), v(2)], None, 1.0),
            _ => ([v(0), v(1), v(2)], None, v(3)),
        };
        let composite = |c: f32| over(c, alpha);
        match color {
            Color::Gray => out[p] = composite(gray.unwrap_or_else(|| luma(rgb))),
            Color::Rgb => {
                for (k, c) in rgb.into_iter().enumerate() {
                    out[k * plane + p] = composite(c);
                }
            }
        }
    }
}

/// Loads a PNG or JPEG file as a `color` tensor in `[0, 1]` ([`Tensor::from_luma`],
/// [`Tensor::from_rgb`]). The size is checked against `max_pixels` from the header, before
/// the file is read whole or decoded; a JPEG cut short is an error (its decoder would fill
/// the rest with gray). Memory: the file, the decoded image in its own format (1 to 8 bytes a
/// pixel) and 4 bytes a pixel and plane for the result.
pub fn load(path: &Path, color: Color, max_pixels: u64) -> Result<Tensor> {
    let cannot = |what: &str, e: &dyn std::fmt::Display| {
        Error::Image(format!("cannot {what} {}: {e}", path.display()))
    };
    let reader = ImageReader::open(path)
        .map_err(|e| cannot("open", &e))?
        .with_guessed_format()
        .map_err(|e| cannot("read", &e))?;
    let (w, h) = reader
        .into_dimensions()
        .map_err(|_| not_image(&path.display()))?;
    check_size(&path.display(), w, h, max_pixels)?;
    let bytes = std::fs::read(path).map_err(|e| cannot("read", &e))?;
    decode_checked(&bytes, &path.display(), color, max_pixels)
}

/// [`load`] for an image already in memory (standard input, a download): `what` names it in
/// errors.
pub fn decode(bytes: &[u8], what: &str, color: Color, max_pixels: u64) -> Result<Tensor> {
    decode_checked(bytes, &what, color, max_pixels)
}

fn not_image(what: &dyn std::fmt::Display) -> Error {
    Error::Image(format!(
        "{what} is not a PNG or JPEG image this crate can decode"
    ))
}

fn check_size(what: &dyn std::fmt::Display, w: u32, h: u32, max_pixels: u64) -> Result<()> {
    let pixels = u64::from(w) * u64::from(h);
    if pixels > max_pixels {
        return Err(Error::Image(format!(
            "{what}: {w}x{h} is {pixels} pixels, over the limit of {max_pixels}"
        )));
    }
    Ok(())
}

fn decode_checked(
    bytes: &[u8],
    what: &dyn std::fmt::Display,
    color: Color,
    max_pixels: u64,
) -> Result<Tensor> {
    let reader = || {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|_| not_image(what))
    };
    let first = reader()?;
    let format = first.format();
    if !matches!(
        format,
        Some(image::ImageFormat::Png | image::ImageFormat::Jpeg)
    ) {
        return Err(not_image(what));
    }
    let (w, h) = first.into_dimensions().map_err(|_| not_image(what))?;
    check_size(what, w, h, max_pixels)?;
    if format == Some(image::ImageFormat::Jpeg) && !jpeg_complete(bytes) {
        return Err(Error::Image(format!(
            "{what}: the JPEG is truncated (its data ends before the end-of-image marker)"
        )));
    }
    let mut reader = reader()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    limits.max_alloc = Some((u64::from(w) * u64::from(h)).saturating_mul(8).max(1 << 20));
    reader.limits(limits);
    let img = reader.decode().map_err(|_| not_image(what))?;
    from_image(&img, color)
}

/// Whether a JPEG's markers, walked from the start, reach an end-of-image marker (FF D9).
/// Segments are skipped by their lengths; a scan's entropy-coded data runs to the next FF that
/// is not followed by 00 (a stuffed byte) or a restart marker. Anything after the end-of-image
/// marker (a phone's motion-photo video, say) is ignored.
pub fn jpeg_complete(bytes: &[u8]) -> bool {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let mut at = 2;
    loop {
        // a marker: FF (any fill FFs) then its code
        if bytes.get(at) != Some(&0xFF) {
            return false;
        }
        while bytes.get(at) == Some(&0xFF) {
            at += 1;
        }
        let Some(&code) = bytes.get(at) else {
            return false;
        };
        at += 1;
        match code {
            0xD9 => return true,
            // markers without a length
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let (Some(&hi), Some(&lo)) = (bytes.get(at), bytes.get(at + 1)) else {
            return false;
        };
        let len = usize::from(hi) << 8 | usize::from(lo);
        if len < 2 || at + len > bytes.len() {
            return false;
        }
        at += len;
        if code == 0xDA {
            // entropy-coded data: up to the next real marker
            loop {
                match (bytes.get(at), bytes.get(at + 1)) {
                    (Some(0xFF), Some(0x00 | 0xD0..=0xD7)) => at += 2,
                    (Some(0xFF), Some(_)) => break,
                    (Some(_), _) => at += 1,
                    (None, _) => return false,
                }
            }
        }
    }
}

/// A response `[H, W]` (or `[3, H, W]`) as an 8-bit gray (or RGB) image, each value mapped by
/// `map` (one scale for all planes): [`crate::pixels::levels`].
pub fn to_image(t: &Tensor, map: Map) -> Result<DynamicImage> {
    let l = crate::pixels::levels(t, map)?;
    let (Ok(w32), Ok(h32)) = (u32::try_from(l.width), u32::try_from(l.height)) else {
        return Err(Error::InvalidShape(format!(
            "{}x{} is too large for an image",
            l.width, l.height
        )));
    };
    let img = if l.planes == 1 {
        image::GrayImage::from_raw(w32, h32, l.data).map(DynamicImage::ImageLuma8)
    } else {
        image::RgbImage::from_raw(w32, h32, l.data).map(DynamicImage::ImageRgb8)
    };
    img.ok_or_else(|| Error::Internal("image buffer size".into()))
}
