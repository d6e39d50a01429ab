//! `mse_loss`: `loss = scale * sum (pred - target)^2` and its gradient
//! `grad = 2 * scale * (pred - target)`, one workgroup per slice, then the sum of the slices.

use super::grid::spread;
use super::plan::{Buf, Op, Pass, Plan};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::{conv2d_weight_grad, reduce_partials, uniforms};
use crate::error::Result;

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "mse_loss",
    preludes: &[],
    source: shader!("mse_loss"),
    workgroup: [64, 1, 1],
    bindings: &[Access::Read, Access::Read, Access::Write, Access::Write],
    uniform: Uniform::Own(std::mem::size_of::<LossParams>()),
    required: true,
    trusted: false,
};

/// Uniform of `mse_loss` (`struct Params` in its shader).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct LossParams {
    /// Elements.
    pub count: u32,
    /// Elements per workgroup.
    pub slice_len: u32,
    /// Workgroups.
    pub slices: u32,
    /// Loss scale (1 for the chapter's sum).
    pub scale: f32,
}

/// The plan over operands `[pred, target, grad, loss]` for `count` elements.
pub(crate) fn plan(count: usize, scale: f32, profile: &DeviceProfile) -> Result<Plan> {
    let mut plan = Plan::new(Op::MseLoss);
    let (slice, slices) = conv2d_weight_grad::slicing(profile, 1, count)?;
    // one slice: its partial sum is the loss
    let partials = if slices == 1 {
        Buf::Operand(3)
    } else {
        plan.scratch_floats(profile, "mse_loss: partials", slices)?
    };
    let p = LossParams {
        count: uniforms::to_u32(count, "loss elements")?,
        slice_len: slice as u32,
        slices: slices as u32,
        scale,
    };
    let io = [Buf::Operand(0), Buf::Operand(1), Buf::Operand(2), partials];
    let mut pass = Pass::new(
        &SPEC,
        io.map(Into::into),
        conv2d_weight_grad::iterations(slice),
    );
    pass.dispatch(
        &p,
        spread(slices, profile.max_workgroups_per_dimension, SPEC.name)?,
    )?;
    plan.passes.push(pass);
    if slices > 1 {
        reduce_partials::passes(&mut plan, profile, partials, Buf::Operand(3), 1, slices)?;
    }
    Ok(plan)
}
