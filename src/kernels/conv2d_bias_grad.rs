//! `conv2d_bias_grad`: the bias gradient `gb[o] = sum gy[:, o, :, :]`, the same two-pass
//! reduction as the direct weight gradient.

use super::grid::runs;
use super::plan::{Buf, Op, Pass, Plan};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms::ConvParams;
use super::{conv2d_weight_grad, reduce_partials};
use crate::error::Result;
use crate::options::Conv2dGeometry;

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "conv2d_bias_grad",
    preludes: &["conv2d_common"],
    source: shader!("conv2d_common", "conv2d_bias_grad"),
    workgroup: [64, 1, 1],
    bindings: &[Access::Read, Access::Write],
    uniform: Uniform::Conv,
    required: true,
    trusted: false,
};

/// The plan over operands `[gy, gb]`: partial sums per slice of `N*OH*OW`, then their
/// fixed-order sum.
pub(crate) fn plan(g: &Conv2dGeometry, profile: &DeviceProfile) -> Result<Plan> {
    let mut plan = Plan::new(Op::BiasGrad);
    let (slice, slices) = conv2d_weight_grad::slicing(profile, g.oc, g.n * g.oh * g.ow)?;
    // one slice: the kernel's partial sums are the gradient
    let partials = if slices == 1 {
        Buf::Operand(1)
    } else {
        plan.scratch_floats(profile, "conv2d_bias_grad: partials", g.oc * slices)?
    };
    let mut p = ConvParams::new(g)?;
    p.slice_len = slice as u32;
    p.slices = slices as u32;
    let mut pass = Pass::new(
        &SPEC,
        [Buf::Operand(0).into(), partials.into()],
        conv2d_weight_grad::iterations(slice),
    );
    for (first, grid) in runs(
        SPEC.name,
        None,
        g.oc * slices,
        1,
        [0, 0],
        2.0 * slice as f64,
        profile,
    )? {
        p.base = first as u32;
        pass.dispatch(&p, grid)?;
    }
    plan.passes.push(pass);
    plan.reason(format!(
        "bias gradient: {slices} slices of {slice} terms per channel, then their sum"
    ));
    if slices > 1 {
        reduce_partials::passes(&mut plan, profile, partials, Buf::Operand(1), g.oc, slices)?;
    }
    Ok(plan)
}
