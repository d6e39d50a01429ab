use super::{dispatch_chunks, groups_for, Algorithm, ConvParams, WORKGROUP_SIZE};
use crate::context::GpuContext;
use crate::error::Result;
use crate::options::Conv2dGeometry;

/// Records the input gradient `gx` of `sum(y * gy)`: the channel-blocked kernel on a 3-D grid,
/// or one invocation per input element (the direct kernel, also the fallback where the grid
/// would not fit).
pub(crate) fn encode(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    g: &Conv2dGeometry,
    w: &wgpu::Buffer,
    gy: &wgpu::Buffer,
    gx: &wgpu::Buffer,
    algorithm: Algorithm,
) -> Result<()> {
    let mut p = ConvParams::new(g);
    let grid = [
        g.w.div_ceil(8),
        g.h.div_ceil(8),
        g.n * g.groups * g.cpg().div_ceil(4),
    ];
    let max = ctx.limits.max_compute_workgroups_per_dimension as usize;
    let per_tap = 2.0 * (g.ocpg() * g.kh * g.kw) as f64;
    if algorithm.resolve(g) == Algorithm::Tiled && grid[0] <= max && grid[1] <= max {
        for (first, count) in dispatch_chunks(grid[2], 4.0 * (g.h * g.w) as f64 * per_tap, 1) {
            p.base = first as u32;
            ctx.kernels.conv2d_input_grad_tiled.dispatch_grid(
                &ctx.device,
                &ctx.limits,
                encoder,
                bytemuck::bytes_of(&p),
                &[w, gy, gx],
                [grid[0] as u32, grid[1] as u32, count as u32],
            )?;
        }
        return Ok(());
    }
    let total: usize = g.input_shape().iter().product();
    p.total = total as u32;
    for (first, count) in dispatch_chunks(total, per_tap, WORKGROUP_SIZE as usize) {
        p.base = first as u32;
        ctx.kernels.conv2d_input_grad.dispatch(
            &ctx.device,
            &ctx.limits,
            encoder,
            bytemuck::bytes_of(&p),
            &[w, gy, gx],
            groups_for(count)?,
        )?;
    }
    Ok(())
}
