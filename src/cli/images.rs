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

/// Pixels an input image may have unless `--max-pixels` says otherwise: 64 megapixels (an
/// 8192 x 8192 image), about 1 GiB of work at the most this tool needs per pixel.
pub const DEFAULT_MAX_PIXELS: u64 = 1 << 26;

/// What transparent pixels are composited over: white (1.0), so that a transparent shape on
/// an opaque dark ground has an edge.
pub const BACKGROUND: f32 = 1.0;

/// Loads a PNG or JPEG as grayscale `[H, W]` in `[0, 1]`, alpha composited over
/// [`BACKGROUND`]. The size is checked against `max_pixels` from the header, before decoding; a
/// truncated file is an error. Memory: the decoded image in its own format (1 to 8 bytes a
/// pixel) and 4 bytes a pixel for the result.
pub fn load_gray(path: &Path, max_pixels: u64) -> Result<Tensor> {
    let open = || -> Result<_> {
        image::ImageReader::open(path)
            .with_context(|| format!("cannot open {}", path.display()))?
            .with_guessed_format()
            .with_context(|| format!("cannot read {}", path.display()))
    };
    let not_image = || {
        format!(
            "{} is not a PNG or JPEG image this tool can decode",
            path.display()
        )
    };
    let reader = open()?;
    let format = reader.format();
    let (w, h) = reader.into_dimensions().with_context(not_image)?;
    let pixels = u64::from(w) * u64::from(h);
    if pixels > max_pixels {
        bail!(
            "{}: {w}x{h} is {pixels} pixels, over the limit of {max_pixels} (raise it with --max-pixels)",
            path.display()
        );
    }
    if format == Some(image::ImageFormat::Jpeg) {
        check_jpeg_complete(path)?;
    }
    let mut reader = open()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    limits.max_alloc = Some(pixels.saturating_mul(8).max(1 << 20));
    reader.limits(limits);
    let img = reader.decode().with_context(not_image)?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut data = Vec::new();
    data.try_reserve_exact(w * h)
        .with_context(|| format!("{}: no memory for {w}x{h} pixels", path.display()))?;
    // one conversion for every sample type, in the decoded image's own samples (no copy)
    let channels = usize::from(img.color().channel_count());
    if let Some(f) = img.as_flat_samples_u8() {
        push_gray(&mut data, f.samples, channels, 255.0);
    } else if let Some(f) = img.as_flat_samples_u16() {
        push_gray(&mut data, f.samples, channels, 65535.0);
    } else if let Some(f) = img.as_flat_samples_f32() {
        push_gray(&mut data, f.samples, channels, 1.0);
    } else {
        // a sample type this crate does not know yet: through f32 RGBA, 16 bytes a pixel
        push_gray(&mut data, img.to_rgba32f().as_raw(), 4, 1.0);
    }
    drop(img);
    Ok(Tensor::new(vec![h, w], data)?)
}

/// Appends the gray level of each pixel of `samples` (`channels` per pixel: gray, gray and
/// alpha, RGB or RGBA, each out of `max`): Rec. 709 luma (the image crate's own gray
/// conversion uses), alpha composited over [`BACKGROUND`].
fn push_gray<T: Copy + Into<f32>>(data: &mut Vec<f32>, samples: &[T], channels: usize, max: f32) {
    let luma = |r: f32, g: f32, b: f32| 0.2126 * r + 0.7152 * g + 0.0722 * b;
    data.extend(samples.chunks_exact(channels).map(|px| {
        let v = |k: usize| px[k].into() / max;
        match channels {
            1 => v(0),
            2 => over(v(0), v(1)),
            3 => luma(v(0), v(1), v(2)),
            _ => over(luma(v(0), v(1), v(2)), v(3)),
        }
    }));
}

/// Gray `v` with opacity `a`, composited over [`BACKGROUND`].
fn over(v: f32, a: f32) -> f32 {
    v * a + BACKGROUND * (1.0 - a)
}

/// A JPEG cut short still decodes (the decoder fills the rest with gray): refuse one whose
/// markers, walked from the start, end before an end-of-image marker (FF D9). Segments are
/// skipped by their lengths; a scan's entropy-coded data runs to the next FF that is not
/// followed by 00 (a stuffed byte) or a restart marker. Anything after the end-of-image marker
/// (a phone's motion-photo video, say) is ignored.
fn check_jpeg_complete(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if jpeg_complete(&bytes) {
        return Ok(());
    }
    bail!(
        "{}: the JPEG is truncated (its data ends before the end-of-image marker)",
        path.display()
    )
}

/// Whether the marker walk of [`check_jpeg_complete`] reaches an end-of-image marker.
fn jpeg_complete(bytes: &[u8]) -> bool {
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
    if path == Path::new("-") {
        // standard output, as PNG
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
        std::io::Write::write_all(&mut std::io::stdout().lock(), &png)
            .context("cannot write the image to standard output")?;
        return Ok(());
    }
    let format = output_format(path)?;
    super::write_atomic(path, |tmp| {
        img.save_with_format(tmp, format)
            .with_context(|| format!("cannot write {}", path.display()))
    })
}

/// The format an output image is written in, from its extension: PNG (`.png`) or JPEG (`.jpg`,
/// `.jpeg`); anything else is an error rather than PNG bytes under another name. (`-`, standard
/// output, is PNG.)
pub fn output_format(path: &Path) -> Result<image::ImageFormat> {
    if path == Path::new("-") {
        return Ok(image::ImageFormat::Png);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("png") => Ok(image::ImageFormat::Png),
        Some("jpg" | "jpeg") => Ok(image::ImageFormat::Jpeg),
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
    })?)
}
