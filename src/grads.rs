//! Which gradients to compute, and what comes back.

use crate::tensor::Tensor;

/// Which gradients [`GpuContext::conv2d_backward`] computes.
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
