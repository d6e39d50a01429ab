use super::{groups_for, ConvParams};
use crate::context::GpuContext;
use crate::error::Result;
use crate::options::Conv2dGeometry;

/// Records the forward convolution `y = conv(x, w) + bias`, one invocation per output element.
pub(crate) fn encode(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    g: &Conv2dGeometry,
    x: &wgpu::Buffer,
    w: &wgpu::Buffer,
    bias: Option<&wgpu::Buffer>,
    y: &wgpu::Buffer,
) -> Result<()> {
    let total: usize = g.output_shape().iter().product();
    let mut p = ConvParams::new(g);
    p.has_bias = u32::from(bias.is_some());
    p.total = total as u32;
    let bias = bias.unwrap_or(&ctx.kernels.placeholder);
    ctx.kernels.conv2d_forward.dispatch(
        &ctx.device,
        &ctx.limits,
        encoder,
        bytemuck::bytes_of(&p),
        &[x, w, bias, y],
        groups_for(total)?,
    )
}
