use super::{groups_for, reduce_partials, Algorithm, ConvParams};
use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::options::Conv2dGeometry;

/// Length of one slice of the `N*OH*OW` reduction behind the weight and bias gradients (and the
/// loss). Fixed, so the summation order depends only on the shape; raised only where the
/// partials would not fit the device's largest binding.
pub const REDUCTION_SLICE: usize = 1024;

/// Slice length and slice count for `elements` reductions of length `len` each.
pub(crate) fn slicing(ctx: &GpuContext, elements: usize, len: usize) -> Result<(usize, usize)> {
    let budget = ((ctx.binding_limit() / 4) as usize).min(1 << 24);
    let mut slice = REDUCTION_SLICE;
    while elements.saturating_mul(len.div_ceil(slice)) > budget {
        slice *= 2;
        if slice >= len {
            break;
        }
    }
    let slices = len.div_ceil(slice).max(1);
    if elements.saturating_mul(slices) > budget && slices > 1 {
        return Err(Error::TooLarge(format!(
            "{elements} reductions do not fit the device's partial-sum budget"
        )));
    }
    Ok((slice, slices))
}

/// Records the weight gradient `gw` of `sum(y * gy)`: partial sums per slice of the reduction,
/// then their fixed-order sum.
pub(crate) fn encode(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    g: &Conv2dGeometry,
    x: &wgpu::Buffer,
    gy: &wgpu::Buffer,
    gw: &wgpu::Buffer,
    algorithm: Algorithm,
) -> Result<()> {
    let elements: usize = g.weight_shape().iter().product();
    let (slice, slices) = slicing(ctx, elements, g.n * g.oh * g.ow)?;
    let partials = ctx.scratch_buffer("conv2d_weight_grad: partials", elements * slices)?;
    let mut p = ConvParams::new(g);
    p.slice_len = slice as u32;
    p.slices = slices as u32;
    match algorithm.resolve(g) {
        Algorithm::Tiled => {
            let blocks = g.groups * g.ocpg().div_ceil(4) * g.taps().div_ceil(4) * slices;
            p.total = u32::try_from(blocks)
                .map_err(|_| Error::TooLarge("weight gradient: too many invocations".into()))?;
            ctx.kernels.conv2d_weight_grad_tiled.dispatch(
                &ctx.device,
                &ctx.limits,
                encoder,
                bytemuck::bytes_of(&p),
                &[x, gy, &partials],
                groups_for(blocks)?,
            )?;
        }
        _ => {
            let workgroups = u32::try_from(elements * slices)
                .map_err(|_| Error::TooLarge("weight gradient: too many workgroups".into()))?;
            ctx.kernels.conv2d_weight_grad.dispatch(
                &ctx.device,
                &ctx.limits,
                encoder,
                bytemuck::bytes_of(&p),
                &[x, gy, &partials],
                workgroups,
            )?;
        }
    }
    reduce_partials::encode(ctx, encoder, &partials, gw, elements, slices)
}
