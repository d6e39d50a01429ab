//! Which gradients to compute, and what comes back.

use crate::tensor::Tensor;

/// Which gradients [`crate::GpuContext::conv2d_backward`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// dL/dW.
    pub weight: bool,
    /// dL/dX.
    pub input: bool,
    /// dL/db.
    pub bias: bool,
}

impl Wanted {
    /// All three.
    pub const ALL: Wanted = Wanted {
        weight: true,
        input: true,
        bias: true,
    };
}

/// Gradients of `sum(y * grad_output)`; `None` where not asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2dGrads {
    /// dL/dW, shaped like the weight.
    pub weight: Option<Tensor>,
    /// dL/dX, shaped like the input.
    pub input: Option<Tensor>,
    /// dL/db, shape `[OC]`.
    pub bias: Option<Tensor>,
}

/// Weight, input and bias gradients as flat vectors, each if asked for.
pub(crate) type RawGrads = (Option<Vec<f32>>, Option<Vec<f32>>, Option<Vec<f32>>);

impl Conv2dGrads {
    /// The gradients from their flat vectors, shaped like the input `x_shape`, the weight
    /// `w_shape` and the bias (`oc`).
    pub(crate) fn from_raw(
        (gw, gx, gb): RawGrads,
        x_shape: &[usize],
        w_shape: &[usize],
        oc: usize,
    ) -> crate::error::Result<Self> {
        Ok(Conv2dGrads {
            weight: gw.map(|d| Tensor::new(w_shape.to_vec(), d)).transpose()?,
            input: gx.map(|d| Tensor::new(x_shape.to_vec(), d)).transpose()?,
            bias: gb.map(|d| Tensor::new(vec![oc], d)).transpose()?,
        })
    }
}
