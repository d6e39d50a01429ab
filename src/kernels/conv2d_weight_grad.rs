use super::budget::{self, LOOP_BUDGET};
use super::{dispatch_chunks, gemm, reduce_partials, Algorithm, ConvParams};
use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::options::Conv2dGeometry;

/// Length of one slice of the `N*OH*OW` reduction behind the direct weight and bias gradients
/// (and the loss). Fixed, so the summation order depends only on the shape; raised only where
/// the partials would not fit the device's largest binding.
pub const REDUCTION_SLICE: usize = 1024;

/// Invocations the tiled weight gradient aims for: enough to keep every core's SIMD lanes busy.
const TILED_TARGET_INVOCATIONS: usize = 8192;

fn partial_budget(ctx: &GpuContext) -> usize {
    ((ctx.binding_limit() / 4) as usize).min(1 << 24)
}

/// Slice length and slice count for `elements` reductions of length `len` each, slices of
/// `slice` or longer (doubled until the partials fit the budget), but no longer than
/// `max_slice` (what keeps the kernel within the loop budget).
fn slices_from(
    ctx: &GpuContext,
    elements: usize,
    len: usize,
    slice: usize,
    max_slice: usize,
) -> Result<(usize, usize)> {
    let budget = partial_budget(ctx);
    let mut slice = slice.clamp(1, max_slice.max(1));
    while elements.saturating_mul(len.div_ceil(slice)) > budget && slice < len {
        slice *= 2;
    }
    let slice = slice.min(len.max(1));
    if slice > max_slice {
        return Err(Error::TooLarge(format!(
            "{elements} reductions of {len} terms: slices short enough for the loop budget \
             ({max_slice} terms) do not fit the device's partial-sum budget"
        )));
    }
    let slices = len.div_ceil(slice).max(1);
    if elements.saturating_mul(slices) > budget && slices > 1 {
        return Err(Error::TooLarge(format!(
            "{elements} reductions do not fit the device's partial-sum budget"
        )));
    }
    Ok((slice, slices))
}

/// Longest slice of the direct reductions (weight and bias gradients, the loss): 64 lanes walk
/// a slice, `slice / 64` iterations each, then a 6-level tree.
const MAX_DIRECT_SLICE: usize = 64 * (LOOP_BUDGET as usize - 6);

/// Longest slice of the tiled weight gradient: one iteration per term, then 4 x 4 stores.
const MAX_TILED_SLICE: usize = LOOP_BUDGET as usize - 20;

/// Slicing of the direct reductions (fixed slice length). Loop iterations per invocation:
/// `slice.div_ceil(64) + 6`, at most [`LOOP_BUDGET`].
pub(crate) fn slicing(ctx: &GpuContext, elements: usize, len: usize) -> Result<(usize, usize)> {
    let (slice, slices) = slices_from(ctx, elements, len, REDUCTION_SLICE, MAX_DIRECT_SLICE)?;
    budget::check("direct reduction", (slice.div_ceil(64) + 6) as u64)?;
    Ok((slice, slices))
}

/// Slicing of the tiled weight gradient: as many slices as keep about
/// `TILED_TARGET_INVOCATIONS` invocations in flight, each at least 16 long. Depends only on
/// the shape (and the binding limit), never on timing.
fn tiled_slicing(ctx: &GpuContext, g: &Conv2dGeometry, blocks: usize) -> Result<(usize, usize)> {
    let len = g.n * g.oh * g.ow;
    let want = TILED_TARGET_INVOCATIONS
        .div_ceil(blocks)
        .clamp(1, len.div_ceil(16).max(1));
    let (slice, slices) = slices_from(
        ctx,
        g.weight_shape().iter().product(),
        len,
        len.div_ceil(want),
        MAX_TILED_SLICE,
    )?;
    // loop iterations per invocation: one per term of its slice, then 4 x 4 stores
    budget::check("conv2d_weight_grad_tiled", slice as u64 + 20)?;
    Ok((slice, slices))
}

/// Records the weight gradient `gw` of `sum(y * gy)`: partial sums per slice of the reduction,
/// then their fixed-order sum.
#[allow(clippy::too_many_arguments)]
pub(crate) fn encode(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    g: &Conv2dGeometry,
    x: &wgpu::Buffer,
    gy: &wgpu::Buffer,
    gw: &wgpu::Buffer,
    algorithm: Algorithm,
) -> Result<()> {
    if algorithm.resolve(g) == Algorithm::Gemm {
        if gemm::encode_weight_grad_planes(ctx, encoder, g, x, gy, gw)? {
            return Ok(());
        }
        if g.ocpg() > 1 && gemm::encode_weight_grad(ctx, encoder, g, x, gy, gw)? {
            return Ok(());
        }
    }
    let elements: usize = g.weight_shape().iter().product();
    let mut p = ConvParams::new(g);
    let max = ctx.limits.max_compute_workgroups_per_dimension as usize;
    let (tb, ocb) = (g.taps().div_ceil(4), g.groups * g.ocpg().div_ceil(4));
    let tiled = algorithm.resolve(g) != Algorithm::Direct && tb <= max && ocb <= max;
    let (slice, slices) = if tiled {
        tiled_slicing(ctx, g, tb * ocb)?
    } else {
        slicing(ctx, elements, g.n * g.oh * g.ow)?
    };
    let partials = ctx.scratch_buffer("conv2d_weight_grad: partials", elements * slices)?;
    p.slice_len = slice as u32;
    p.slices = slices as u32;
    if tiled {
        let per_slice = 2.0 * 16.0 * slice as f64 * (tb * ocb) as f64;
        for (first, count) in dispatch_chunks(slices, per_slice, 64) {
            p.base = first as u32;
            ctx.kernels.conv2d_weight_grad_tiled.dispatch_grid(
                &ctx.device,
                &ctx.limits,
                encoder,
                bytemuck::bytes_of(&p),
                &[x, gy, &partials],
                [count.div_ceil(64) as u32, tb as u32, ocb as u32],
            )?;
        }
    } else {
        let jobs = elements * slices;
        u32::try_from(jobs)
            .map_err(|_| Error::TooLarge("weight gradient: too many workgroups".into()))?;
        for (first, count) in dispatch_chunks(jobs, 2.0 * slice as f64, 1) {
            p.base = first as u32;
            ctx.kernels.conv2d_weight_grad.dispatch(
                &ctx.device,
                &ctx.limits,
                encoder,
                bytemuck::bytes_of(&p),
                &[x, gy, &partials],
                count as u32,
            )?;
        }
    }
    reduce_partials::encode(ctx, encoder, &partials, gw, elements, slices)
}
