//! The plans of whole operations: where an operand passes the binding limit, the operation is
//! split (see `split`) and its plan is that of the first piece, with the split as its first
//! reason.

use crate::error::Result;
use crate::kernels::{self, Algorithm, DeviceProfile, Plan};
use crate::options::Conv2dGeometry;
use crate::split;

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
        kernels::plan_forward(g, bias, profile, algorithm)
    })
}

/// The plan of the weight gradient of `g` on `profile` (see [`plan_forward`]).
pub fn plan_weight_grad(
    g: &Conv2dGeometry,
    profile: &DeviceProfile,
    algorithm: Algorithm,
) -> Result<Plan> {
    with_split(g, profile, |g| {
        kernels::plan_weight_grad(g, profile, algorithm)
    })
}

/// The plan of the input gradient of `g` on `profile` (see [`plan_forward`]).
pub fn plan_input_grad(
    g: &Conv2dGeometry,
    profile: &DeviceProfile,
    algorithm: Algorithm,
) -> Result<Plan> {
    with_split(g, profile, |g| {
        kernels::plan_input_grad(g, profile, algorithm)
    })
}

/// The plan of the bias gradient of `g` on `profile` (see [`plan_forward`]).
pub fn plan_bias_grad(g: &Conv2dGeometry, profile: &DeviceProfile) -> Result<Plan> {
    with_split(g, profile, |g| kernels::conv2d_bias_grad::plan(g, profile))
}
