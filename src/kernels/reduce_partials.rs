//! `reduce_partials`: the fixed-order sums of the partial sums the reductions write.

use super::budget::LOOP_BUDGET;
use super::grid::spread;
use super::plan::{Buf, Pass, Plan};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms;
use crate::error::Result;

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "reduce_partials",
    preludes: &[],
    source: shader!("reduce_partials"),
    workgroup: [64, 1, 1],
    bindings: &[Access::Read, Access::Write],
    uniform: Uniform::Own(std::mem::size_of::<ReduceParams>()),
    required: true,
};

/// Uniform of `reduce_partials` (`struct Params` in its shader).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ReduceParams {
    /// Sums to produce: elements x groups.
    pub count: u32,
    /// Partials per element.
    pub slices: u32,
    /// Consecutive partials per sum (`slices` in a single pass; fewer where the loop budget
    /// makes the reduction a tree of passes).
    pub group: u32,
    pub _pad1: u32,
}

/// Adds the passes of `out[i] = sum_s partials[i * slices + s]`, in slice order, to `plan`.
/// One invocation per sum walks its slices (loop iterations per invocation: `slices`); where
/// that passes the loop budget, consecutive groups of [`LOOP_BUDGET`] slices are summed first,
/// into scratch, and those sums summed again: a fixed tree, so the result still depends on the
/// shape alone.
pub(crate) fn passes(
    plan: &mut Plan,
    profile: &DeviceProfile,
    partials: Buf,
    out: Buf,
    count: usize,
    slices: usize,
) -> Result<()> {
    let budget = LOOP_BUDGET as usize;
    if slices > budget {
        let groups = slices.div_ceil(budget);
        let sums = plan.scratch_floats(profile, "reduce_partials: group sums", count * groups)?;
        plan.passes.push(pass(
            partials,
            sums,
            count * groups,
            slices,
            budget,
            profile,
        )?);
        return passes(plan, profile, sums, out, count, groups);
    }
    plan.passes
        .push(pass(partials, out, count, slices, slices, profile)?);
    Ok(())
}

fn pass(
    partials: Buf,
    out: Buf,
    sums: usize,
    slices: usize,
    group: usize,
    profile: &DeviceProfile,
) -> Result<Pass> {
    let p = ReduceParams {
        count: uniforms::to_u32(sums, "sums")?,
        slices: slices as u32,
        group: group.max(1) as u32,
        _pad1: 0,
    };
    let mut pass = Pass::new(&SPEC, [partials.into(), out.into()], group.max(1) as u64);
    let wg = SPEC.workgroup[0] as usize;
    pass.dispatch(
        &p,
        spread(
            sums.div_ceil(wg),
            profile.max_workgroups_per_dimension,
            SPEC.name,
        )?,
    )?;
    Ok(pass)
}
