use super::conv2d_weight_grad::slicing;
use super::{reduce_partials, LossParams};
use crate::context::GpuContext;
use crate::error::Result;

/// Records `loss[0] = scale * sum (pred - target)^2` and `grad = 2 * scale * (pred - target)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn encode(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    pred: &wgpu::Buffer,
    target: &wgpu::Buffer,
    grad: &wgpu::Buffer,
    loss: &wgpu::Buffer,
    count: usize,
    scale: f32,
) -> Result<()> {
    let (slice, slices) = slicing(ctx, 1, count)?;
    let partials = ctx.scratch_buffer("mse_loss: partials", slices)?;
    let p = LossParams {
        count: count as u32,
        slice_len: slice as u32,
        slices: slices as u32,
        scale,
    };
    ctx.kernels.mse_loss.dispatch(
        &ctx.device,
        &ctx.limits,
        encoder,
        bytemuck::bytes_of(&p),
        &[pred, target, grad, &partials],
        slices as u32,
    )?;
    reduce_partials::encode(ctx, encoder, &partials, loss, 1, slices)
}
