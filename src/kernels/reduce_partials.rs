use super::{groups_for, ReduceParams};
use crate::context::GpuContext;
use crate::error::Result;

/// Records `out[i] = sum_s partials[i * slices + s]`, in slice order.
pub(crate) fn encode(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    partials: &wgpu::Buffer,
    out: &wgpu::Buffer,
    count: usize,
    slices: usize,
) -> Result<()> {
    let p = ReduceParams {
        count: count as u32,
        slices: slices as u32,
        _pad0: 0,
        _pad1: 0,
    };
    ctx.kernels.reduce_partials.dispatch(
        &ctx.device,
        &ctx.limits,
        encoder,
        bytemuck::bytes_of(&p),
        &[partials, out],
        groups_for(count)?,
    )
}
