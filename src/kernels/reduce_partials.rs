use super::budget::LOOP_BUDGET;
use super::{groups_for, ReduceParams};
use crate::context::GpuContext;
use crate::error::Result;

/// Records `out[i] = sum_s partials[i * slices + s]`, in slice order. One invocation per
/// element walks its slices (loop iterations per invocation: `slices`); where that passes the
/// loop budget, consecutive groups of [`LOOP_BUDGET`] slices are summed first, into scratch,
/// and those sums summed again: a fixed tree, so the result still depends on the shape alone.
pub(crate) fn encode(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    partials: &wgpu::Buffer,
    out: &wgpu::Buffer,
    count: usize,
    slices: usize,
) -> Result<()> {
    let budget = LOOP_BUDGET as usize;
    if slices > budget {
        let groups = slices.div_ceil(budget);
        let sums = ctx.scratch_buffer("reduce_partials: group sums", count * groups)?;
        pass(
            ctx,
            encoder,
            partials,
            &sums,
            count * groups,
            slices,
            budget,
        )?;
        return encode(ctx, encoder, &sums, out, count, groups);
    }
    pass(ctx, encoder, partials, out, count, slices, slices)
}

fn pass(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    partials: &wgpu::Buffer,
    out: &wgpu::Buffer,
    sums: usize,
    slices: usize,
    group: usize,
) -> Result<()> {
    let p = ReduceParams {
        count: sums as u32,
        slices: slices as u32,
        group: group.max(1) as u32,
        _pad1: 0,
    };
    ctx.kernels.reduce_partials.dispatch(
        &ctx.device,
        &ctx.limits,
        encoder,
        bytemuck::bytes_of(&p),
        &[partials, out],
        groups_for(sums)?,
    )
}
