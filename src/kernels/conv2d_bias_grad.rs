use super::conv2d_weight_grad::slicing;
use super::{reduce_partials, ConvParams};
use crate::context::GpuContext;
use crate::error::Result;
use crate::options::Conv2dGeometry;

/// Records the bias gradient `gb[o] = sum gy[:, o, :, :]` as the same two-pass reduction as the
/// weight gradient.
pub(crate) fn encode(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    g: &Conv2dGeometry,
    gy: &wgpu::Buffer,
    gb: &wgpu::Buffer,
) -> Result<()> {
    let (slice, slices) = slicing(ctx, g.oc, g.n * g.oh * g.ow)?;
    let partials = ctx.scratch_buffer("conv2d_bias_grad: partials", g.oc * slices)?;
    let mut p = ConvParams::new(g);
    p.slice_len = slice as u32;
    p.slices = slices as u32;
    ctx.kernels.conv2d_bias_grad.dispatch(
        &ctx.device,
        &ctx.limits,
        encoder,
        bytemuck::bytes_of(&p),
        &[gy, &partials],
        (g.oc * slices) as u32,
    )?;
    reduce_partials::encode(ctx, encoder, &partials, gb, g.oc, slices)
}
