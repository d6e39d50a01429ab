use super::{groups_for, Algorithm, ConvParams};
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
    algorithm: Algorithm,
) -> Result<()> {
    let mut p = ConvParams::new(g);
    p.has_bias = u32::from(bias.is_some());
    let bias = bias.unwrap_or(&ctx.kernels.placeholder);
    let (kernel, total) = match algorithm.resolve(g) {
        Algorithm::Tiled => {
            let blocks = g.n * g.groups * g.ocpg().div_ceil(4) * g.oh * g.ow.div_ceil(4);
            (&ctx.kernels.conv2d_forward_tiled, blocks)
        }
        _ => (
            &ctx.kernels.conv2d_forward,
            g.output_shape().iter().product(),
        ),
    };
    p.total = u32::try_from(total)
        .map_err(|_| crate::Error::TooLarge("forward: too many invocations".into()))?;
    kernel.dispatch(
        &ctx.device,
        &ctx.limits,
        encoder,
        bytemuck::bytes_of(&p),
        &[x, w, bias, y],
        groups_for(total)?,
    )
}
