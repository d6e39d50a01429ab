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
    trusted: false,
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
    /// 0: partial s of element e at `e * slices + s`; otherwise at `s * slice_stride + e`.
    pub slice_stride: u32,
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
    layout_passes(plan, profile, partials, out, count, slices, 0)
}

/// As [`passes`], for partials laid out `[slice][element]`: `out[i] = sum_s partials[s * count
/// + i]`, in slice order.
pub(crate) fn sliced_passes(
    plan: &mut Plan,
    profile: &DeviceProfile,
    partials: Buf,
    out: Buf,
    count: usize,
    slices: usize,
) -> Result<()> {
    let stride = uniforms::to_u32(count, "elements of a slice")?;
    layout_passes(plan, profile, partials, out, count, slices, stride)
}

fn layout_passes(
    plan: &mut Plan,
    profile: &DeviceProfile,
    partials: Buf,
    out: Buf,
    count: usize,
    slices: usize,
    slice_stride: u32,
) -> Result<()> {
    let budget = LOOP_BUDGET as usize;
    if slices > budget {
        let groups = slices.div_ceil(budget);
        let sums = plan.scratch_floats(profile, "reduce_partials: group sums", count * groups)?;
        let layout = (budget, slice_stride);
        plan.passes.push(pass(
            partials,
            sums,
            count * groups,
            slices,
            layout,
            profile,
        )?);
        // the group sums are laid out [element][group]
        return passes(plan, profile, sums, out, count, groups);
    }
    plan.passes.push(pass(
        partials,
        out,
        count,
        slices,
        (slices, slice_stride),
        profile,
    )?);
    Ok(())
}

fn pass(
    partials: Buf,
    out: Buf,
    sums: usize,
    slices: usize,
    (group, slice_stride): (usize, u32),
    profile: &DeviceProfile,
) -> Result<Pass> {
    let p = ReduceParams {
        count: uniforms::to_u32(sums, "sums")?,
        slices: slices as u32,
        group: group.max(1) as u32,
        slice_stride,
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
