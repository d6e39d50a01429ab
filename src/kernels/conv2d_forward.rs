use super::{groups_for, Algorithm, ConvParams};
use crate::context::GpuContext;
use crate::error::Result;
use crate::options::Conv2dGeometry;

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
    let mut p = ConvParams::new(g);
    p.has_bias = u32::from(bias.is_some());
    let bias = bias.unwrap_or(&ctx.kernels.placeholder);
    let tiled_grid = [
        g.ow.div_ceil(4).div_ceil(8) as u64,
        g.oh.div_ceil(8) as u64,
        (g.n * g.groups * g.ocpg().div_ceil(8)) as u64,
    ];
    let max = u64::from(ctx.limits.max_compute_workgroups_per_dimension);
    match algorithm.resolve(g) {
        Algorithm::Tiled if tiled_grid.iter().all(|&d| d <= max) => {
            ctx.kernels.conv2d_forward_tiled.dispatch_grid(
                &ctx.device,
                &ctx.limits,
                encoder,
                bytemuck::bytes_of(&p),
                &[x, w, bias, y],
                tiled_grid.map(|d| d as u32),
            )
        }
        _ => {
            let total: usize = g.output_shape().iter().product();
            p.total = total as u32;
            ctx.kernels.conv2d_forward.dispatch(
                &ctx.device,
                &ctx.limits,
                encoder,
                bytemuck::bytes_of(&p),
                &[x, w, bias, y],
                groups_for(total)?,
            )
        }
    }
}
