use super::{groups_for, ConvParams};
use crate::context::GpuContext;
use crate::error::Result;
use crate::options::Conv2dGeometry;

/// Records the input gradient `gx` of `sum(y * gy)`, one invocation per input element.
pub(crate) fn encode(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    g: &Conv2dGeometry,
    w: &wgpu::Buffer,
    gy: &wgpu::Buffer,
    gx: &wgpu::Buffer,
) -> Result<()> {
    let total: usize = g.input_shape().iter().product();
    let mut p = ConvParams::new(g);
    p.total = total as u32;
    ctx.kernels.conv2d_input_grad.dispatch(
        &ctx.device,
        &ctx.limits,
        encoder,
        bytemuck::bytes_of(&p),
        &[w, gy, gx],
        groups_for(total)?,
    )
}
