//! How a training step runs: one dispatch for the whole step (forward, loss, gradients and the
//! update, `train_step_small`) where the layer is small enough and the algorithm is `Auto`, or
//! the separate operations, each planned as its op.

use crate::error::Result;
use crate::kernels::{train_step_small, Algorithm, DeviceProfile, Plan, Sgd};
use crate::options::Conv2dGeometry;

/// The one-dispatch step of `g` (with a bias where `bias`; the loss scaled by `scale`, SGD by
/// `sgd`) over `[data, state, loss]`, or `None` where the step runs as separate operations: a
/// chosen algorithm (any but `Auto`) asks for those, and a layer past one workgroup's reach
/// needs them.
pub(crate) fn fused_step(
    g: &Conv2dGeometry,
    bias: bool,
    scale: f32,
    sgd: &Sgd,
    profile: &DeviceProfile,
    algorithm: Algorithm,
) -> Result<Option<Plan>> {
    match algorithm {
        Algorithm::Auto => train_step_small::plan(g, bias, scale, sgd, profile),
        _ => Ok(None),
    }
}
