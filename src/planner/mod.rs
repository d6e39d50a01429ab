//! What will run and why: pure functions from a geometry, a [`DeviceProfile`] and an
//! [`Algorithm`] to a [`Plan`], with no device. Each op of a convolution is an ordered list of
//! candidates (`forward`, `weight_grad`, `input_grad`; the protocol in `candidates`), each
//! taking the geometry or declining with its reason, all of which the plan keeps. [`plan`] is
//! the one entry for every op; where an operand passes the binding limit, the operation is
//! split (see `split`) and its plan is that of the first piece, with the split as its first
//! reason.

mod candidates;
pub(crate) mod forward;
pub(crate) mod input_grad;
pub(crate) mod train;
pub(crate) mod tuned;
pub(crate) mod weight_grad;

use crate::error::{Error, Result};
use crate::kernels::{self, Algorithm, DeviceProfile, Op, Plan};
use crate::options::Conv2dGeometry;
use crate::split;

pub(crate) use forward::plan_forward as forward_piece;
pub(crate) use input_grad::plan_input_grad as input_grad_piece;
pub(crate) use weight_grad::plan_weight_grad as weight_grad_piece;

/// The plan of `op` (forward, weight_grad, input_grad or bias_grad; `bias`: the forward pass
/// adds one) for `g` on a device described by `profile`, with `algorithm`'s kernels: which
/// kernels, grids, scratch buffers, and why. Pure: no GPU needed.
pub fn plan(
    op: Op,
    g: &Conv2dGeometry,
    bias: bool,
    profile: &DeviceProfile,
    algorithm: Algorithm,
) -> Result<Plan> {
    match op {
        Op::Forward => plan_forward(g, bias, profile, algorithm),
        Op::WeightGrad => plan_weight_grad(g, profile, algorithm),
        Op::InputGrad => plan_input_grad(g, profile, algorithm),
        Op::BiasGrad => plan_bias_grad(g, profile),
        other => Err(Error::InvalidOption(format!(
            "{} is not a convolution op: forward, weight_grad, input_grad or bias_grad",
            other.name()
        ))),
    }
}

/// The order in which `op`'s candidates are asked (forward, weight_grad and input_grad; empty
/// for the others, which have one way each): each candidate's name and the algorithms that may
/// take it. The first of those an algorithm may take that accepts the geometry runs.
pub fn candidates(op: Op) -> Vec<(&'static str, &'static [Algorithm])> {
    match op {
        Op::Forward => candidates::order(forward::CANDIDATES),
        Op::WeightGrad => candidates::order(weight_grad::CANDIDATES),
        Op::InputGrad => candidates::order(input_grad::CANDIDATES),
        _ => Vec::new(),
    }
}

fn with_split(
    g: &Conv2dGeometry,
    profile: &DeviceProfile,
    plan: impl FnOnce(&Conv2dGeometry) -> Result<Plan>,
) -> Result<Plan> {
    let limit = profile.max_binding_bytes;
    let Some(why) = split::describe(g, limit)? else {
        return plan(g);
    };
    let first = split::pieces(g, limit)?;
    let piece = split::piece_geometry(g, &first[0])?;
    let mut p = plan(&piece)?;
    p.reasons
        .insert(0, format!("{why}; the plan of the first piece follows"));
    Ok(p)
}

/// The plan of the forward convolution of `g` (with a bias where `bias`) on a device described
/// by `profile`: which kernels, grids, scratch buffers, and why. Pure: no GPU needed.
pub fn plan_forward(
    g: &Conv2dGeometry,
    bias: bool,
    profile: &DeviceProfile,
    algorithm: Algorithm,
) -> Result<Plan> {
    with_split(g, profile, |g| {
        forward::plan_forward(g, bias, profile, algorithm)
    })
}

/// The plan of the weight gradient of `g` on `profile` (see [`plan_forward`]).
pub fn plan_weight_grad(
    g: &Conv2dGeometry,
    profile: &DeviceProfile,
    algorithm: Algorithm,
) -> Result<Plan> {
    with_split(g, profile, |g| {
        weight_grad::plan_weight_grad(g, profile, algorithm)
    })
}

/// The plan of the input gradient of `g` on `profile` (see [`plan_forward`]).
pub fn plan_input_grad(
    g: &Conv2dGeometry,
    profile: &DeviceProfile,
    algorithm: Algorithm,
) -> Result<Plan> {
    with_split(g, profile, |g| {
        input_grad::plan_input_grad(g, profile, algorithm, true)
    })
}

/// The plan of the bias gradient of `g` on `profile` (see [`plan_forward`]).
pub fn plan_bias_grad(g: &Conv2dGeometry, profile: &DeviceProfile) -> Result<Plan> {
    with_split(g, profile, |g| kernels::conv2d_bias_grad::plan(g, profile))
}
