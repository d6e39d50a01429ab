//! Hand-made kernels: the chapter's edge detector and its exercises (finite differences of any
//! order, the second derivative, the integral), the usual image kernels, and `flip`.
//!
//! Every kernel is a rank-2 [`Tensor`] `(KH, KW)` to be used with cross-correlation (the
//! layer's default), so `corr2d(x, k)[i, j] = sum_{a,b} x[i+a, j+b] k[a, b]`.

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// The chapter's edge detector `[[1, -1]]`: `y[i,j] = x[i,j] - x[i,j+1]`, non-zero where a row
/// changes (vertical edges).
pub fn edge() -> Tensor {
    Tensor::from_rows(&[[1.0, -1.0]])
}

/// Its transpose `[[1], [-1]]`: `y[i,j] = x[i,j] - x[i+1,j]`, horizontal edges.
pub fn edge_t() -> Tensor {
    Tensor::from_rows(&[[1.0], [-1.0]])
}

/// Binomial coefficient `C(n, k)` as `f64` (exact up to `n = 60` or so).
fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// The smallest kernel for the `d`-th derivative along a row: the forward difference
/// `Δ^d f(x) = sum_{k=0..d} (-1)^(d-k) C(d,k) f(x+k)`, a `1 x (d+1)` kernel (`d + 1` taps is the
/// fewest that can see a `d`-th derivative). For samples of a degree-`d` polynomial with leading
/// coefficient `a` on a grid of step `h` it gives the constant `d! a h^d`; for lower degrees, 0.
/// `d = 0` is the identity `[[1]]`.
pub fn finite_difference(d: usize) -> Tensor {
    let taps: Vec<f32> = (0..=d)
        .map(|k| {
            let sign = if (d - k).is_multiple_of(2) { 1.0 } else { -1.0 };
            (sign * binomial(d, k)) as f32
        })
        .collect();
    Tensor::new(vec![1, d + 1], taps).expect("1 x (d+1)")
}

/// The second derivative along a row, `[[1, -2, 1]]` (= `finite_difference(2)`).
pub fn second_derivative() -> Tensor {
    finite_difference(2)
}

/// The 2-D second derivative (Laplacian) `∂²/∂x² + ∂²/∂y²`, the 5-point stencil
/// `[[0,1,0],[1,-4,1],[0,1,0]]`.
pub fn laplacian() -> Tensor {
    Tensor::from_rows(&[[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
}

/// The integral over a window of `n` samples along a row, `[[1, 1, ..., 1]]` (`1 x n`): the
/// running sum `y[i,j] = sum_{b<n} x[i,j+b]`, the discrete inverse of the first difference
/// (`finite_difference(1)` of a running sum gives back the samples it added and dropped).
pub fn integral(n: usize) -> Result<Tensor> {
    if n == 0 {
        return Err(Error::InvalidOption(
            "integral needs a window of at least 1".into(),
        ));
    }
    Tensor::new(vec![1, n], vec![1.0; n])
}

/// A `k x k` box blur: the mean over the window, `1/k²` everywhere.
pub fn box_blur(k: usize) -> Result<Tensor> {
    if k == 0 {
        return Err(Error::InvalidOption(
            "box blur needs a size of at least 1".into(),
        ));
    }
    Tensor::new(vec![k, k], vec![1.0 / (k * k) as f32; k * k])
}

/// Sobel, horizontal gradient (responds to vertical edges): `[[-1,0,1],[-2,0,2],[-1,0,1]]`.
pub fn sobel_x() -> Tensor {
    Tensor::from_rows(&[[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
}

/// Sobel, vertical gradient (responds to horizontal edges): the transpose of [`sobel_x`].
pub fn sobel_y() -> Tensor {
    sobel_x().transpose2().expect("2-D")
}

/// Prewitt, horizontal gradient: `[[-1,0,1],[-1,0,1],[-1,0,1]]`.
pub fn prewitt_x() -> Tensor {
    Tensor::from_rows(&[[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]])
}

/// Prewitt, vertical gradient: the transpose of [`prewitt_x`].
pub fn prewitt_y() -> Tensor {
    prewitt_x().transpose2().expect("2-D")
}

/// A normalised `size x size` Gaussian blur, `exp(-(x²+y²)/(2σ²))` summing to 1; `size` odd.
pub fn gaussian(size: usize, sigma: f32) -> Result<Tensor> {
    if size == 0 || size.is_multiple_of(2) || sigma.is_nan() || sigma <= 0.0 || !sigma.is_finite() {
        return Err(Error::InvalidOption(format!(
            "gaussian needs an odd size and a positive sigma, got size {size}, sigma {sigma}"
        )));
    }
    let c = (size / 2) as f32;
    let raw = Tensor::from_fn([size, size], |i| {
        let (y, x) = (i[0] as f32 - c, i[1] as f32 - c);
        (-(x * x + y * y) / (2.0 * sigma * sigma)).exp()
    })?;
    let sum: f32 = raw.data().iter().sum();
    Tensor::new(
        vec![size, size],
        raw.data().iter().map(|v| v / sum).collect(),
    )
}

/// The kernel flipped on both spatial axes (the last two dimensions):
/// `convolution(x, k) = cross_correlation(x, flip(k))`.
pub fn flip(k: &Tensor) -> Tensor {
    let s = k.shape().to_vec();
    let r = s.len();
    Tensor::from_fn(s.clone(), |i| {
        let mut j = i.to_vec();
        if r >= 2 {
            j[r - 2] = s[r - 2] - 1 - i[r - 2];
        }
        j[r - 1] = s[r - 1] - 1 - i[r - 1];
        k.at(&j)
    })
    .expect("the shape of an existing tensor has a valid element count")
}

/// A kernel by name, as the CLI's `--kernel` takes it: `edge`, `edge-t`, `sobel` (= `sobel-x`),
/// `sobel-y`, `prewitt` (= `prewitt-x`), `prewitt-y`, `laplacian`, `second-derivative`,
/// `gaussian` (5x5, σ = 1), `box` (3x3).
pub fn by_name(name: &str) -> Result<Tensor> {
    match name {
        "edge" => Ok(edge()),
        "edge-t" => Ok(edge_t()),
        "sobel" | "sobel-x" => Ok(sobel_x()),
        "sobel-y" => Ok(sobel_y()),
        "prewitt" | "prewitt-x" => Ok(prewitt_x()),
        "prewitt-y" => Ok(prewitt_y()),
        "laplacian" => Ok(laplacian()),
        "second-derivative" => Ok(second_derivative()),
        "gaussian" => gaussian(5, 1.0),
        "box" => box_blur(3),
        _ => Err(Error::InvalidOption(format!(
            "unknown kernel {name:?}; one of: {}",
            NAMES.join(", ")
        ))),
    }
}

/// The names [`by_name`] knows.
pub const NAMES: &[&str] = &[
    "edge",
    "edge-t",
    "sobel",
    "sobel-x",
    "sobel-y",
    "prewitt",
    "prewitt-x",
    "prewitt-y",
    "laplacian",
    "second-derivative",
    "gaussian",
    "box",
];

/// The exercise's image with a diagonal edge: `n x n`, ones on and below the diagonal
/// (`x[i,j] = 1` for `j <= i`), zeros above.
pub fn diagonal_image(n: usize) -> Result<Tensor> {
    Tensor::from_fn([n, n], |i| if i[1] <= i[0] { 1.0 } else { 0.0 })
}

/// Cross-correlation as a matrix: the `(OH*OW) x (H*W)` matrix `M` with
/// `vec(corr2d(x, k)) = M vec(x)` for every `H x W` input `x` (row `i*OW + j` holds the kernel
/// at the window of output `(i, j)`; a doubly block-Toeplitz matrix).
pub fn corr2d_matrix(k: &Tensor, h: usize, w: usize) -> Result<Tensor> {
    let [kh, kw] = k.shape() else {
        return Err(Error::InvalidShape(format!(
            "corr2d_matrix needs a 2-D kernel, got {:?}",
            k.shape()
        )));
    };
    let (kh, kw) = (*kh, *kw);
    if kh == 0 || kw == 0 || kh > h || kw > w {
        return Err(Error::InvalidShape(format!(
            "a {kh}x{kw} kernel does not fit a {h}x{w} input"
        )));
    }
    let (oh, ow) = (h - kh + 1, w - kw + 1);
    let rows = oh
        .checked_mul(ow)
        .ok_or_else(|| Error::shape("the output is too large"))?;
    Tensor::from_fn([rows, h * w], |ix| {
        let (i, j) = (ix[0] / ow, ix[0] % ow);
        let (y, x) = (ix[1] / w, ix[1] % w);
        if y >= i && y < i + kh && x >= j && x < j + kw {
            k.at(&[y - i, x - j])
        } else {
            0.0
        }
    })
}

/// The weight `(OC, 1, KH, KW)` for an edge-map kernel name, as the CLI's `edges --kernel`
/// takes it: the x/y pair (two responses, combined into the gradient magnitude by [`apply`])
/// for `sobel` and `prewitt`, else the one kernel of [`by_name`].
pub fn edge_kernel(name: &str) -> Result<Tensor> {
    let pair = |a: Tensor, b: Tensor| {
        let mut d = a.into_data();
        d.extend_from_slice(b.data());
        Tensor::new(vec![2, 1, 3, 3], d)
    };
    match name {
        "sobel" => pair(sobel_x(), sobel_y()),
        "prewitt" => pair(prewitt_x(), prewitt_y()),
        other => {
            let k = by_name(other)?;
            let (kh, kw) = (k.shape()[0], k.shape()[1]);
            k.reshape(vec![1, 1, kh, kw])
        }
    }
}

/// Filters an image `[H, W]` (or each plane of `[C, H, W]`, colour say) with `kernel`
/// `(KH, KW)`, or `(OC, 1, KH, KW)` for several responses, on the GPU: a same-size output
/// (`same` padding, `mode` filling the border), in the image's shape. Several responses are
/// combined into their Euclidean norm per pixel (the gradient magnitude for an x/y pair, as
/// [`sobel_x`] and [`sobel_y`] stacked give). Blocking; see [`apply_async`].
#[cfg(not(target_arch = "wasm32"))]
pub fn apply(
    ctx: &crate::GpuContext,
    image: &Tensor,
    kernel: &Tensor,
    mode: crate::PaddingMode,
) -> Result<Tensor> {
    let job = Filtering::new(image, kernel, mode)?;
    let y = ctx.conv2d(&job.x, &job.weight, None, &job.options)?;
    job.finish(y)
}

/// [`apply`] without blocking (in a browser, the way to call it).
pub async fn apply_async(
    ctx: &crate::GpuContext,
    image: &Tensor,
    kernel: &Tensor,
    mode: crate::PaddingMode,
) -> Result<Tensor> {
    let job = Filtering::new(image, kernel, mode)?;
    let y = ctx
        .conv2d_async(&job.x, &job.weight, None, &job.options)
        .await?;
    job.finish(y)
}

/// An image filtering as one convolution: the planes as a batch, the responses as channels.
struct Filtering {
    x: Tensor,
    weight: Tensor,
    options: crate::Conv2dOptions,
    shape: Vec<usize>,
}

impl Filtering {
    fn new(image: &Tensor, kernel: &Tensor, mode: crate::PaddingMode) -> Result<Self> {
        let (planes, h, w) = match *image.shape() {
            [h, w] => (1, h, w),
            [c, h, w] => (c, h, w),
            ref s => {
                return Err(Error::InvalidShape(format!(
                    "an image is [H, W] or [C, H, W], got {s:?}"
                )))
            }
        };
        let weight = match *kernel.shape() {
            [kh, kw] => kernel.clone().reshape(vec![1, 1, kh, kw])?,
            [_, 1, _, _] => kernel.clone(),
            ref s => {
                return Err(Error::InvalidShape(format!(
                    "an image kernel is (KH, KW) or (OC, 1, KH, KW), got {s:?}"
                )))
            }
        };
        // each plane is one image of a batch, so one kernel serves them all
        Ok(Self {
            x: image.clone().reshape(vec![planes, 1, h, w])?,
            weight,
            options: crate::Conv2dOptions::new()
                .padding(crate::Padding::Same)
                .padding_mode(mode),
            shape: image.shape().to_vec(),
        })
    }

    /// The convolution's output `[planes, OC, H, W]` as the image's shape: several responses
    /// combined into their norm.
    fn finish(self, y: Tensor) -> Result<Tensor> {
        let [planes, oc, h, w] = *y.shape() else {
            return Err(Error::Internal("a filter's output is 4-D".into()));
        };
        let y = if oc == 1 {
            y
        } else {
            let plane = h * w;
            let d = y.data();
            Tensor::from_fn([planes, h, w], |i| {
                let base = i[0] * oc * plane + i[1] * w + i[2];
                (0..oc)
                    .map(|c| d[base + c * plane].powi(2))
                    .sum::<f32>()
                    .sqrt()
            })?
        };
        y.reshape(self.shape)
    }
}
