//! The calls on a context, by op: transfers, the forward convolution, the gradients, and
//! the blocking calls (native targets only) over them.

mod backward;
#[cfg(not(target_arch = "wasm32"))]
mod blocking;
mod forward;
mod transfer;

pub use crate::tensor::GpuTensor;
pub(crate) use backward::BackwardIo;

use crate::error::{Error, Result};
use crate::options::{Conv2dGeometry, Conv2dOptions};

/// The fewest bytes any kernel binds an operand with (one `vec4<f32>`): every buffer the crate
/// makes has at least this many, and [`GpuTensor::from_buffer`] asks for as many.
pub(crate) const MIN_BINDING_BYTES: u64 = 16;

/// Checks a convolution's operands and resolves its geometry. The input is rank 4 `(N,C,H,W)`,
/// rank 3 `(C,H,W)` or rank 2 `(H,W)`; the weight rank 4 `(OC, C/groups, KH, KW)` or rank 2
/// `(KH, KW)` (one channel in, one out); the bias has `OC` elements.
pub fn geometry(
    x_shape: &[usize],
    w_shape: &[usize],
    bias_len: Option<usize>,
    opts: &Conv2dOptions,
) -> Result<Conv2dGeometry> {
    let x4 = dims4(x_shape, "input")?;
    let w4 = match w_shape {
        [kh, kw] => [1, 1, *kh, *kw],
        [o, c, kh, kw] => [*o, *c, *kh, *kw],
        _ => {
            return Err(Error::shape(format!(
                "the weight must be rank 4 (OC, C/groups, KH, KW) or rank 2 (KH, KW), got shape {w_shape:?}"
            )))
        }
    };
    if x_shape.len() == 2 && w4[0] != 1 {
        // the output would be rank 2 too, which holds one channel
        return Err(Error::shape(format!(
            "a rank-2 input (H, W) gives a rank-2 output, so its weight has one output channel, \
             (KH, KW) or (1, 1, KH, KW), got {w_shape:?}; give the input as (1, H, W) for more"
        )));
    }
    let g = opts.resolve(x4, w4)?;
    if let Some(b) = bias_len {
        if b != g.oc {
            return Err(Error::shape(format!(
                "the bias has {b} elements, the weight has {} output channels",
                g.oc
            )));
        }
    }
    Ok(g)
}

fn dims4(shape: &[usize], what: &str) -> Result<[usize; 4]> {
    match shape {
        [n, c, h, w] => Ok([*n, *c, *h, *w]),
        [c, h, w] => Ok([1, *c, *h, *w]),
        [h, w] => Ok([1, 1, *h, *w]),
        _ => Err(Error::shape(format!(
            "the {what} must be rank 2 (H, W), 3 (C, H, W) or 4 (N, C, H, W), got shape {shape:?}"
        ))),
    }
}

/// The output's shape in the input's rank.
pub(crate) fn output_shape(x_rank: usize, g: &Conv2dGeometry) -> Vec<usize> {
    match x_rank {
        2 => vec![g.oh, g.ow],
        3 => vec![g.oc, g.oh, g.ow],
        _ => g.output_shape().to_vec(),
    }
}

pub(super) fn expect_elements(len: usize, shape: [usize; 4], what: &str) -> Result<()> {
    let want: usize = shape.iter().product();
    if len != want {
        return Err(Error::shape(format!(
            "{what} has {len} elements, the geometry's {shape:?} has {want}"
        )));
    }
    Ok(())
}

pub(super) fn expect_len(t: &GpuTensor, shape: [usize; 4], what: &str) -> Result<()> {
    let want: usize = shape.iter().product();
    if t.len() != want {
        return Err(Error::shape(format!(
            "{what} has shape {:?} ({} elements), expected {shape:?}",
            t.shape,
            t.len()
        )));
    }
    Ok(())
}
