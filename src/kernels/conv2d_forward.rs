use super::{
    budget, dispatch_chunks, gemm, groups_for, z_chunks, Algorithm, ConvParams, WORKGROUP_SIZE,
};
use crate::context::GpuContext;
use crate::error::Result;
use crate::options::{Conv2dGeometry, Hw};

/// Records the forward convolution `y = conv(x, w) + bias` with the tiled or the direct kernel.
#[allow(clippy::too_many_arguments)]
pub(crate) fn encode(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    g: &Conv2dGeometry,
    x: &wgpu::Buffer,
    w: &wgpu::Buffer,
    bias: Option<&wgpu::Buffer>,
    y: &wgpu::Buffer,
    algorithm: Algorithm,
) -> Result<()> {
    let algorithm = algorithm.resolve(g);
    if algorithm == Algorithm::Gemm && gemm::encode_forward_planes(ctx, encoder, g, x, w, bias, y)?
    {
        return Ok(());
    }
    if algorithm == Algorithm::Gemm
        && g.ocpg() > 1
        && gemm::encode_forward(ctx, encoder, g, x, w, bias, y, false, Hw::new(1, 1))?
    {
        return Ok(());
    }
    let mut p = ConvParams::new(g);
    let has_bias = bias.is_some();
    let bias = bias.unwrap_or(&ctx.kernels.placeholder);
    // Loop iterations per invocation, all three kernels: the nest input channels x kernel rows
    // x kernel columns, cpg + cpg*kh + cpg*kh*kw, plus the stores (rows: 4 + 16, tiled: 8 + 32,
    // direct: none). Longer reductions run as pieces of that nest, each dispatch adding to the
    // output of the one before (see `budget`).
    let nest = [g.cpg(), g.kh, g.kw];
    let tiled_grid = [
        g.ow.div_ceil(4).div_ceil(8) as u64,
        g.oh.div_ceil(8) as u64,
        (g.n * g.groups * g.ocpg().div_ceil(8)) as u64,
    ];
    let max = u64::from(ctx.limits.max_compute_workgroups_per_dimension);
    let taps = g.taps() as f64;
    let rows_grid = [
        g.ow.div_ceil(16).div_ceil(8) as u64,
        g.oh.div_ceil(8) as u64,
        (g.n * g.oc) as u64,
    ];
    // The tiled kernels: 16 pixels of one channel where each group has one output channel,
    // else 8 channels x 4 pixels; both on a 3-D grid whose z axis is cut into bounded dispatches.
    // only x and y are checked: z is cut into dispatches of at most `max` workgroups
    let tiled = match algorithm {
        Algorithm::Tiled | Algorithm::Gemm
            if g.ocpg() == 1 && rows_grid[..2].iter().all(|&d| d <= max) =>
        {
            Some((&ctx.kernels.conv2d_forward_rows, rows_grid, 1.0, 20))
        }
        Algorithm::Tiled | Algorithm::Gemm if tiled_grid[..2].iter().all(|&d| d <= max) => {
            Some((&ctx.kernels.conv2d_forward_tiled, tiled_grid, 8.0, 40))
        }
        _ => None,
    };
    if let Some((kernel, grid, channels_per_z, fixed)) = tiled {
        let per_z = 2.0 * channels_per_z * (g.oh * g.ow) as f64 * taps;
        for (i, piece) in budget::split_nest(&nest, fixed).iter().enumerate() {
            p.set_piece(i, piece);
            p.has_bias = u32::from(has_bias && i == 0);
            for (first, count) in z_chunks(grid[2] as usize, per_z, max as u32) {
                p.base = first as u32;
                kernel.dispatch_grid(
                    &ctx.device,
                    &ctx.limits,
                    encoder,
                    bytemuck::bytes_of(&p),
                    &[x, w, bias, y],
                    [grid[0] as u32, grid[1] as u32, count as u32],
                )?;
            }
        }
        return Ok(());
    }
    let total: usize = g.output_shape().iter().product();
    p.total = total as u32;
    for (i, piece) in budget::split_nest(&nest, 0).iter().enumerate() {
        p.set_piece(i, piece);
        p.has_bias = u32::from(has_bias && i == 0);
        for (first, count) in dispatch_chunks(total, 2.0 * taps, WORKGROUP_SIZE as usize) {
            p.base = first as u32;
            ctx.kernels.conv2d_forward.dispatch(
                &ctx.device,
                &ctx.limits,
                encoder,
                bytemuck::bytes_of(&p),
                &[x, w, bias, y],
                groups_for(count)?,
            )?;
        }
    }
    Ok(())
}
