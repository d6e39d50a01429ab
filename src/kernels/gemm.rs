//! Host side of the GEMM kernels (`shaders/conv2d_gemm_common.wgsl` and the kernels built on
//! it): the padded input copies, the forward pass in uniform chunks, and the weight gradient.

use wgpu::util::DeviceExt;

use super::budget::{self, LOOP_BUDGET};
use super::{
    dispatch_chunks, groups_for, reduce_partials, GemmParams, Kernel, CHUNK_BYTES, CHUNK_TAPS,
    PLANES_MAX_KERNEL, PLANES_PER_LANE_FROM, PLANE_BYTES,
};
use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::options::{Conv2dGeometry, ConvMode, Hw, PaddingMode};

/// A scratch buffer of `bytes` bytes with `usage`, or `None` past the binding limit.
fn scratch(
    ctx: &GpuContext,
    label: &str,
    bytes: u64,
    usage: wgpu::BufferUsages,
) -> Option<wgpu::Buffer> {
    (bytes <= ctx.binding_limit()).then(|| {
        ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16),
            usage,
            mapped_at_creation: false,
        })
    })
}

/// The GEMM path's parameters for `g`, or `None` where it does not apply: a size past u32, or
/// a stride past 8 (more copies than `copy_mask` has bits).
pub(crate) fn gemm_params(g: &Conv2dGeometry) -> Option<GemmParams> {
    let u = |v: usize| u32::try_from(v).ok();
    let s = g.stride.w;
    if s > 8 {
        return None;
    }
    let ow4 = g.ow.div_ceil(4) * 4;
    // a copy's row must reach column ow4 - 1 + q for the widest tap shift q
    let q_max = (g.kw - 1) * g.dilation.w / s;
    let wq = (ow4 + q_max).div_ceil(4) * 4;
    let hp = g.h + g.pad_top + g.pad_bottom;
    let copy_len = g.n.checked_mul(g.c)?.checked_mul(hp)?.checked_mul(wq)?;
    let copy_mask = (0..g.kw).fold(0u32, |m, b| {
        let shift = b * g.dilation.w;
        m | 1 << ((shift % s) * 4 + (shift / s) % 4)
    });
    let zero_offset = copy_len.checked_mul(copy_mask.count_ones() as usize)? / 4;
    let chunks = g.taps().div_ceil(CHUNK_TAPS);
    Some(GemmParams {
        n: u(g.n)?,
        c: u(g.c)?,
        h: u(g.h)?,
        w: u(g.w)?,
        oc: u(g.oc)?,
        kh: u(g.kh)?,
        kw: u(g.kw)?,
        cpg: u(g.cpg())?,
        oh: u(g.oh)?,
        ow: u(g.ow)?,
        groups: u(g.groups)?,
        ocpg: u(g.ocpg())?,
        stride_h: u(g.stride.h)?,
        stride_w: u(s)?,
        dil_h: u(g.dilation.h)?,
        dil_w: u(g.dilation.w)?,
        pad_top: u(g.pad_top)?,
        pad_left: u(g.pad_left)?,
        pad_right: u(g.pad_right)?,
        pad_mode: g.padding_mode.code(),
        hp: u(hp)?,
        wq: u(wq)?,
        ow4: u(ow4)?,
        copy_len: u(copy_len)?,
        has_bias: 0,
        taps: u(g.taps())?,
        ocb: u(g.ocpg().div_ceil(8))?,
        chunks: u(chunks)?,
        flip: u32::from(g.mode == ConvMode::Convolution),
        base: 0,
        copy_mask,
        zero_offset: u(zero_offset)?,
        slices: 0,
        slice_rows: 0,
        transposed: 0,
        up_h: 1,
        up_w: 1,
        _pad0: 0,
        _pad1: 0,
        _pad2: 0,
    })
}

/// Records the forward pass as an implicit GEMM (see `shaders/conv2d_forward_gemm.wgsl`):
/// the padded input copies (none where the input itself is the one copy needed), the chunks of
/// weights and tap offsets, one dispatch per chunk, and (where output rows are not whole vec4s)
/// the copy into `y`. Returns `false`, recording nothing, where the path does not apply or a
/// scratch buffer would pass the binding limit.
#[allow(clippy::too_many_arguments)]
pub(crate) fn encode_forward(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    g: &Conv2dGeometry,
    x: &wgpu::Buffer,
    w: &wgpu::Buffer,
    bias: Option<&wgpu::Buffer>,
    y: &wgpu::Buffer,
    transposed: bool,
    up: Hw,
) -> Result<bool> {
    let Some(mut gp) = gemm_params(g) else {
        return Ok(false);
    };
    gp.transposed = u32::from(transposed);
    (gp.up_h, gp.up_w) = (up.h as u32, up.w as u32);
    let max = ctx.limits.max_compute_workgroups_per_dimension as usize;
    let (blocks, runs) = (g.groups * gp.ocb as usize, gp.chunks as usize);
    let grid = [g.ow.div_ceil(4).div_ceil(8), g.oh.div_ceil(8)];
    if grid[0] > max || grid[1] > max {
        return Ok(false);
    }
    let storage = wgpu::BufferUsages::STORAGE;
    let tail = !g.taps().is_multiple_of(CHUNK_TAPS);
    let Some(copies) = Copies::encode(ctx, encoder, &gp, x, tail)? else {
        return Ok(false);
    };
    let floats = match &copies.0 {
        Some(b) => b.size() / 4,
        None => (g.n * g.c * g.h * g.w) as u64,
    };
    forward_reads_within(&gp, floats)?;
    let Some(chunks) = scratch(
        ctx,
        "wgpu-conv: chunks",
        (blocks * runs) as u64 * CHUNK_BYTES,
        storage | wgpu::BufferUsages::UNIFORM,
    ) else {
        return Ok(false);
    };
    // output rows that are not whole vec4s go to a padded scratch output, copied into y after
    let padded_out = if g.ow.is_multiple_of(4) {
        None
    } else {
        let bytes = (g.n * g.oc * g.oh * g.ow.div_ceil(4) * 16) as u64;
        let Some(b) = scratch(
            ctx,
            "wgpu-conv: padded output",
            bytes,
            wgpu::BufferUsages::STORAGE,
        ) else {
            return Ok(false);
        };
        Some(b)
    };
    gp.has_bias = u32::from(bias.is_some());

    gp.base = 0;
    let words = blocks * runs * (CHUNK_BYTES / 4) as usize;
    ctx.kernels.conv2d_pack_chunks.dispatch(
        &ctx.device,
        &ctx.limits,
        encoder,
        bytemuck::bytes_of(&gp),
        &[w, &chunks],
        groups_for(words)?,
    )?;

    let per_batch = 2.0 * 8.0 * (g.oh * g.ow * CHUNK_TAPS) as f64;
    // run-major, so that the blocks sharing a run's input follow each other; each block's runs
    // still come in order (the first one starts its sums)
    let order = (0..runs).flat_map(|run| (0..blocks).map(move |block| block * runs + run));
    let blocks = Blocks {
        kernel: &ctx.kernels.conv2d_forward_gemm,
        buffer: &chunks,
        stride: CHUNK_BYTES,
        order: order.collect(),
        as_storage_too: false,
        out_floats: None,
    };
    let out = padded_out.as_ref().unwrap_or(y);
    blocks.dispatch(
        ctx,
        encoder,
        &mut gp,
        [grid[0], grid[1], g.n],
        per_batch,
        copies.buffer(x),
        bias,
        out,
    );
    unpad(ctx, encoder, g, &mut gp, padded_out.as_ref(), y)?;
    Ok(true)
}

/// Checks, on the host, that every read `conv2d_forward_gemm` makes lies inside the `floats`
/// floats of the buffer it reads (the padded copies, a zero region after them where a short last
/// chunk has padding taps, or the input itself): the largest vec4 index an invocation starts
/// from plus the largest tap offset `conv2d_pack_chunks` writes. A read past the end would
/// return zeros on some adapters and garbage (or a lost device) on others, so a plan that makes
/// one is an error, never run.
pub(crate) fn forward_reads_within(gp: &GemmParams, floats: u64) -> Result<()> {
    let u = |v: u32| u64::from(v);
    // a short last chunk has padding taps, which read the zero region
    let padding_taps = !gp.taps.is_multiple_of(CHUNK_TAPS as u32);
    let wq4 = u(gp.wq) / 4;
    let start_max = ((u(gp.n) - 1) * u(gp.c) * u(gp.hp) + (u(gp.oh) - 1) * u(gp.stride_h)) * wq4
        + (u(gp.ow4) / 4 - 1);
    let slot = |bit: u32| u64::from((gp.copy_mask & ((1u32 << bit) - 1)).count_ones());
    let tap_max = (0..gp.kw)
        .map(|b| {
            let shift = b * gp.dil_w;
            let (q, r) = (shift / gp.stride_w, shift % gp.stride_w);
            let t = q % 4;
            (slot(r * 4 + t) * u(gp.copy_len)
                + ((u(gp.c) - 1) * u(gp.hp) + (u(gp.kh) - 1) * u(gp.dil_h)) * u(gp.wq)
                + u(q - t))
                / 4
        })
        .max()
        .unwrap_or(0);
    let zero_max = if padding_taps { u(gp.zero_offset) } else { 0 };
    let last = start_max + tap_max.max(zero_max);
    if last >= floats / 4 {
        return Err(Error::Internal(format!(
            "conv2d_forward_gemm would read vec4 {last} of a buffer of {} (geometry {gp:?})",
            floats / 4
        )));
    }
    Ok(())
}

/// The padded copies of an input (see `conv2d_gemm_common.wgsl`): a scratch buffer, or the input
/// itself where it is its own only copy.
pub(crate) struct Copies(Option<wgpu::Buffer>);

impl Copies {
    /// Records the copies of `x` described by `gp`, with a zero region after them where `zeros`.
    /// `None` where they would not fit one binding or the grid one dispatch.
    fn encode(
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        gp: &GemmParams,
        x: &wgpu::Buffer,
        zeros: bool,
    ) -> Result<Option<Self>> {
        let max = ctx.limits.max_compute_workgroups_per_dimension as usize;
        let (wq, hp) = (gp.wq as usize, gp.hp as usize);
        if wq.div_ceil(32) > max || hp.div_ceil(8) > max {
            return Ok(None);
        }
        // the input is its own only copy where nothing is padded or inserted, the stride is 1
        // and rows are whole vec4s
        let plain = gp.stride_w == 1 && gp.up_h == 1 && gp.up_w == 1;
        if gp.copy_mask == 1 && plain && gp.hp == gp.h && gp.wq == gp.w && !zeros {
            return Ok(Some(Self(None)));
        }
        let slots = gp.copy_mask.count_ones() as u64;
        let copy_bytes = u64::from(gp.copy_len) * 4;
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
        let bytes = copy_bytes * (slots + u64::from(zeros));
        let Some(copies) = scratch(ctx, "wgpu-conv: padded copies", bytes, usage) else {
            return Ok(None);
        };
        if zeros {
            encoder.clear_buffer(&copies, copy_bytes * slots, Some(copy_bytes));
        }
        let mut gp = *gp;
        let kernel = ctx
            .kernels
            .pad_copies(&ctx.device, gp.up_h > 1 || gp.up_w > 1);
        let planes = (gp.n * gp.c) as usize;
        let per_plane = (slots as usize * hp * wq) as f64;
        for (first, count) in dispatch_chunks(planes, per_plane, 1) {
            for f in (first..first + count).step_by(max) {
                gp.base = f as u32;
                kernel.dispatch_grid(
                    &ctx.device,
                    &ctx.limits,
                    encoder,
                    bytemuck::bytes_of(&gp),
                    &[x, &copies],
                    [
                        wq.div_ceil(32) as u32,
                        hp.div_ceil(8) as u32,
                        max.min(first + count - f) as u32,
                    ],
                )?;
            }
        }
        Ok(Some(Self(Some(copies))))
    }

    fn buffer<'a>(&'a self, x: &'a wgpu::Buffer) -> &'a wgpu::Buffer {
        self.0.as_ref().unwrap_or(x)
    }
}

/// Invocations the GEMM-family weight gradients aim for: enough to keep every core's SIMD lanes
/// busy.
const WEIGHT_GRAD_TARGET_INVOCATIONS: usize = 8192;

/// Records the weight gradient with `conv2d_weight_grad_gemm` (partials per slice of output
/// rows, then their fixed-order sum). Returns `false`, recording nothing, where the path does
/// not apply or a buffer would pass the binding limit.
pub(crate) fn encode_weight_grad(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    g: &Conv2dGeometry,
    x: &wgpu::Buffer,
    gy: &wgpu::Buffer,
    gw: &wgpu::Buffer,
) -> Result<bool> {
    let Some(mut gp) = gemm_params(g) else {
        return Ok(false);
    };
    let tap_blocks = g.taps().div_ceil(8);
    let oc_blocks = g.groups * g.ocpg().div_ceil(4);
    let rows = g.n * g.oh;
    // slices depend only on the shape (and the binding limit), never on timing
    let elements: usize = g.weight_shape().iter().product();
    let want = WEIGHT_GRAD_TARGET_INVOCATIONS.div_ceil(tap_blocks * oc_blocks);
    let budget = (ctx.binding_limit() / 4) as usize / elements.max(1);
    // Loop iterations per invocation: per output row of its slice, 1 + ceil(OW / 4) (whole
    // vec4s and the tail), then 8 x 4 stores. Rows too long for one, or more slices than the
    // partials can hold, leave the pass to the tiled kernel.
    let per_row = 1 + g.ow.div_ceil(4);
    let max_rows = (LOOP_BUDGET as usize).saturating_sub(32) / per_row;
    if max_rows == 0 || rows.div_ceil(max_rows) > budget {
        return Ok(false);
    }
    let slices = want
        .min(rows)
        .min(budget)
        .max(rows.div_ceil(max_rows))
        .max(1);
    let slice_rows = rows.div_ceil(slices);
    let slices = rows.div_ceil(slice_rows);
    budget::check(
        "conv2d_weight_grad_gemm",
        (slice_rows * per_row + 32) as u64,
    )?;
    gp.slices = slices as u32;
    gp.slice_rows = slice_rows as u32;
    let per_slice = 2.0 * 32.0 * (slice_rows * gp.ow4 as usize * tap_blocks * oc_blocks) as f64;
    let pass = WeightGradPass {
        kernel: &ctx.kernels.conv2d_weight_grad_gemm,
        xy: [tap_blocks.div_ceil(8), oc_blocks.div_ceil(8)],
        z: slices,
        flops_per_z: per_slice,
        elements,
        slices,
    };
    pass.encode(ctx, encoder, &mut gp, x, gy, gw)
}

/// The passes of a GEMM-family weight gradient: the row-padded output gradient and the input
/// copies, the kernel on a grid `xy` x `z` (runs of z items of `flops_per_z` each, `gp.base`
/// the first), writing `elements * slices` partials, then their fixed-order sum into `gw`.
struct WeightGradPass<'a> {
    kernel: &'a Kernel,
    xy: [usize; 2],
    z: usize,
    flops_per_z: f64,
    elements: usize,
    slices: usize,
}

impl WeightGradPass<'_> {
    /// Records the passes; `false`, recording nothing, where a buffer would pass the binding
    /// limit or the grid the dispatch limit.
    fn encode(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        gp: &mut GemmParams,
        x: &wgpu::Buffer,
        gy: &wgpu::Buffer,
        gw: &wgpu::Buffer,
    ) -> Result<bool> {
        let max = ctx.limits.max_compute_workgroups_per_dimension as usize;
        if self.xy.iter().any(|&d| d > max) {
            return Ok(false);
        }
        let Some(partials) = scratch(
            ctx,
            "wgpu-conv: weight gradient partials",
            (self.elements as u64) * (self.slices as u64) * 4,
            wgpu::BufferUsages::STORAGE,
        ) else {
            return Ok(false);
        };
        let Some(dy) = Copies::encode(ctx, encoder, &row_padded(gp), gy, false)? else {
            return Ok(false);
        };
        let Some(copies) = Copies::encode(ctx, encoder, gp, x, false)? else {
            return Ok(false);
        };
        for (first, count) in dispatch_chunks(self.z, self.flops_per_z, 1) {
            for f in (first..first + count).step_by(max) {
                gp.base = f as u32;
                self.kernel.dispatch_grid(
                    &ctx.device,
                    &ctx.limits,
                    encoder,
                    bytemuck::bytes_of(gp),
                    &[copies.buffer(x), dy.buffer(gy), &partials],
                    [
                        self.xy[0] as u32,
                        self.xy[1] as u32,
                        max.min(first + count - f) as u32,
                    ],
                )?;
            }
        }
        reduce_partials::encode(ctx, encoder, &partials, gw, self.elements, self.slices)?;
        Ok(true)
    }
}

/// A kernel that runs once per uniform block (`conv2d_forward_gemm`'s chunks,
/// `conv2d_forward_planes`' channels), each block bound at its dynamic offset in `buffer`.
struct Blocks<'a> {
    kernel: &'a Kernel,
    buffer: &'a wgpu::Buffer,
    stride: u64,
    /// Blocks in dispatch order.
    order: Vec<usize>,
    /// Whether the whole buffer is bound once more, as storage, after `out`.
    as_storage_too: bool,
    /// Bound after that, where given (the planes kernel's float view of its output).
    out_floats: Option<&'a wgpu::Buffer>,
}

impl Blocks<'_> {
    /// One dispatch per block and per run of the `grid[2]` z items (`gp.base` is the run's
    /// first), each item `flops_per_z`, in one pass per run, with `gp`, the block, `copies`,
    /// `bias` (or the placeholder) and `out` bound.
    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        gp: &mut GemmParams,
        grid: [usize; 3],
        flops_per_z: f64,
        copies: &wgpu::Buffer,
        bias: Option<&wgpu::Buffer>,
        out: &wgpu::Buffer,
    ) {
        let max = ctx.limits.max_compute_workgroups_per_dimension as usize;
        let xy = [grid[0], grid[1]];
        let bias = bias.unwrap_or(&ctx.kernels.placeholder);
        for (first, count) in dispatch_chunks(grid[2], flops_per_z, 1) {
            for f in (first..first + count).step_by(max) {
                gp.base = f as u32;
                let params = ctx
                    .device
                    .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some("wgpu-conv: block kernel params"),
                        contents: bytemuck::bytes_of(gp),
                        usage: wgpu::BufferUsages::UNIFORM,
                    });
                let block = wgpu::BufferBinding {
                    buffer: self.buffer,
                    offset: 0,
                    size: wgpu::BufferSize::new(self.stride),
                };
                let mut resources = vec![
                    params.as_entire_binding(),
                    wgpu::BindingResource::Buffer(block),
                    copies.as_entire_binding(),
                    bias.as_entire_binding(),
                    out.as_entire_binding(),
                ];
                if self.as_storage_too {
                    resources.push(self.buffer.as_entire_binding());
                }
                if let Some(b) = self.out_floats {
                    resources.push(b.as_entire_binding());
                }
                let bind_group = self.kernel.bind_resources(&ctx.device, &resources);
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("wgpu-conv: block kernel"),
                    timestamp_writes: None,
                });
                pass.set_pipeline(self.kernel.pipeline());
                for &r in &self.order {
                    pass.set_bind_group(0, &bind_group, &[(r as u64 * self.stride) as u32]);
                    pass.dispatch_workgroups(
                        xy[0] as u32,
                        xy[1] as u32,
                        max.min(first + count - f) as u32,
                    );
                }
            }
        }
    }
}

/// Copies `padded` (output rows padded to whole vec4s), where there is one, into `y`.
fn unpad(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    g: &Conv2dGeometry,
    gp: &mut GemmParams,
    padded: Option<&wgpu::Buffer>,
    y: &wgpu::Buffer,
) -> Result<()> {
    let Some(padded) = padded else {
        return Ok(());
    };
    let max = ctx.limits.max_compute_workgroups_per_dimension as usize;
    let planes = g.n * g.oc;
    for f in (0..planes).step_by(max) {
        gp.base = f as u32;
        ctx.kernels.conv2d_unpad_output.dispatch_grid(
            &ctx.device,
            &ctx.limits,
            encoder,
            bytemuck::bytes_of(gp),
            &[padded, y],
            [
                g.ow.div_ceil(8) as u32,
                g.oh.div_ceil(8) as u32,
                max.min(planes - f) as u32,
            ],
        )?;
    }
    Ok(())
}

/// Records the forward pass of a layer with one input and one output channel per group
/// (`conv2d_forward_planes`): stride 1, dilation 1, kernels up to [`PLANES_MAX_KERNEL`].
/// Returns `false`, recording nothing, where the path does not apply or a scratch buffer would
/// pass the binding limit.
pub(crate) fn encode_forward_planes(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    g: &Conv2dGeometry,
    x: &wgpu::Buffer,
    w: &wgpu::Buffer,
    bias: Option<&wgpu::Buffer>,
    y: &wgpu::Buffer,
) -> Result<bool> {
    let Some(mut gp) = planes_params(g) else {
        return Ok(false);
    };
    gp.has_bias = u32::from(bias.is_some());
    let max = ctx.limits.max_compute_workgroups_per_dimension as usize;
    let xy = [g.ow.div_ceil(4).div_ceil(8), g.oh.div_ceil(4).div_ceil(8)];
    if xy[0] > max || xy[1] > max {
        return Ok(false);
    }
    let Some(planes) = scratch(
        ctx,
        "wgpu-conv: planes",
        g.oc as u64 * PLANE_BYTES,
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::UNIFORM,
    ) else {
        return Ok(false);
    };
    // zero padding, rows of whole vec4s and a kernel that fits the loaded row: the kernel reads
    // the input itself (no copy pass, which costs more than the convolution on CPU adapters)
    // (unpadded rows of whole vec4s need no copy either: copy 0 is the input)
    let padded = g.pad_top + g.pad_bottom + g.pad_left + g.pad_right > 0;
    let direct = padded
        && g.padding_mode == PaddingMode::Zeros
        && g.w.is_multiple_of(4)
        && g.pad_left <= 4
        && g.kw <= 5 + g.pad_left;
    let copies = if direct {
        Copies(None)
    } else {
        let Some(copies) = Copies::encode(ctx, encoder, &gp, x, false)? else {
            return Ok(false);
        };
        copies
    };
    ctx.kernels.conv2d_pack_planes.dispatch(
        &ctx.device,
        &ctx.limits,
        encoder,
        bytemuck::bytes_of(&gp),
        &[w, &planes],
        groups_for(g.oc * (PLANE_BYTES / 4) as usize)?,
    )?;
    // many channels: one dispatch, weights per lane; few: a dispatch per channel, weights
    // uniform
    let per_lane = g.oc >= PLANES_PER_LANE_FROM;
    // rows that are not whole vec4s: float stores straight into y (`out` a placeholder)
    let float_out = !g.ow.is_multiple_of(4);
    let kernel = ctx.kernels.forward_planes(
        &ctx.device,
        g.kh as u32,
        g.kw as u32,
        per_lane,
        float_out,
        direct.then_some(g.pad_left as u32),
    );
    let placeholder = &ctx.kernels.placeholder_out;
    let blocks = Blocks {
        kernel: &kernel,
        buffer: &planes,
        stride: PLANE_BYTES,
        order: if per_lane {
            vec![0]
        } else {
            (0..g.oc).collect()
        },
        as_storage_too: true,
        out_floats: Some(if float_out { y } else { placeholder }),
    };
    let out = if float_out { placeholder } else { y };
    let per_plane = 2.0 * (g.oh * g.ow * g.kh * g.kw) as f64;
    let z = if per_lane { g.n * g.oc } else { g.n };
    blocks.dispatch(
        ctx,
        encoder,
        &mut gp,
        [xy[0], xy[1], z],
        per_plane,
        copies.buffer(x),
        bias,
        out,
    );
    Ok(true)
}

/// The copy parameters that pad the rows of the output gradient `[N, OC, OH, OW]` to whole vec4s
/// (`ow4`): its first and only copy, with nothing else padded.
fn row_padded(gp: &GemmParams) -> GemmParams {
    GemmParams {
        n: gp.n,
        c: gp.oc,
        h: gp.oh,
        w: gp.ow,
        pad_top: 0,
        pad_left: 0,
        pad_right: 0,
        pad_mode: 0,
        stride_w: 1,
        hp: gp.oh,
        wq: gp.ow4,
        copy_len: gp.n * gp.oc * gp.oh * gp.ow4,
        copy_mask: 1,
        up_h: 1,
        up_w: 1,
        ..*gp
    }
}

/// The parameters of the planes kernels for `g` (copy 0 only; rows may end early where nothing
/// is padded, since columns past a row feed only outputs that are not stored or are masked),
/// or `None` where they do not apply: not one channel in and out per group, a stride or
/// dilation, a kernel past [`PLANES_MAX_KERNEL`], or a size past u32.
fn planes_params(g: &Conv2dGeometry) -> Option<GemmParams> {
    let one = Hw::new(1, 1);
    if g.cpg() != 1
        || g.ocpg() != 1
        || g.stride != one
        || g.dilation != one
        || g.kh > PLANES_MAX_KERNEL.0
        || g.kw > PLANES_MAX_KERNEL.1
    {
        return None;
    }
    let mut gp = gemm_params(g)?;
    gp.copy_mask = 1;
    if g.pad_left + g.pad_right == 0 && g.w.is_multiple_of(4) {
        gp.wq = gp.w;
    }
    gp.copy_len = u32::try_from((g.n * g.c).checked_mul(gp.hp as usize * gp.wq as usize)?).ok()?;
    Some(gp)
}

/// Records the weight gradient of a layer with one input and one output channel per group
/// (`conv2d_weight_grad_planes`, then the fixed-order sum of its partials). Returns `false`,
/// recording nothing, where the path does not apply or a buffer would pass the binding limit.
pub(crate) fn encode_weight_grad_planes(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    g: &Conv2dGeometry,
    x: &wgpu::Buffer,
    gy: &wgpu::Buffer,
    gw: &wgpu::Buffer,
) -> Result<bool> {
    let Some(mut gp) = planes_params(g) else {
        return Ok(false);
    };
    let strips = g.ow.div_ceil(4);
    let planes = g.n * g.c;
    // row slices (fixed by the shape and the binding limit, never by timing)
    let elements = g.c * g.taps();
    let want = WEIGHT_GRAD_TARGET_INVOCATIONS
        .div_ceil(strips * planes)
        .clamp(1, g.oh);
    // Loop iterations per invocation: one per output row of its slice (the rest is written
    // out), so slices of at most LOOP_BUDGET rows.
    let slice_rows = g.oh.div_ceil(want).min(LOOP_BUDGET as usize);
    let row_slices = g.oh.div_ceil(slice_rows);
    budget::check("conv2d_weight_grad_planes", slice_rows as u64)?;
    let slices = g.n * row_slices * strips;
    gp.slice_rows = slice_rows as u32;
    let kernel = ctx
        .kernels
        .weight_grad_planes(&ctx.device, g.kh as u32, g.kw as u32);
    let pass = WeightGradPass {
        kernel: &kernel,
        xy: [strips.div_ceil(64), row_slices],
        z: planes,
        flops_per_z: 2.0 * (g.oh * g.ow * g.kh * g.kw) as f64,
        elements,
        slices,
    };
    pass.encode(ctx, encoder, &mut gp, x, gy, gw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Conv2dOptions;

    /// Every read of the forward GEMM lies in its buffer for awkward shapes, and a plan whose
    /// padding taps had no zero region to read would be refused.
    #[test]
    fn forward_reads_stay_inside_their_buffers() {
        let o = Conv2dOptions::new;
        for (x, w, opts) in [
            ([1usize, 2, 40, 12], [4usize, 2, 3, 5], o().dilation((1, 2))),
            ([2, 9, 7, 6], [3, 9, 3, 3], o().padding(1)),
            (
                [1, 3, 31, 29],
                [7, 3, 5, 5],
                o().stride(3).padding(2).dilation(2),
            ),
            ([1, 2, 10, 11], [2, 2, 2, 2], o().stride((4, 5))),
            ([2, 16, 5, 5], [8, 16, 1, 1], o()),
            (
                [1, 4, 9, 13],
                [6, 2, 3, 4],
                o().groups(2).stride((1, 3)).padding([0, 2, 1, 1]),
            ),
        ] {
            let g = opts.resolve(x, w).unwrap();
            let gp = gemm_params(&g).unwrap();
            let tail = !g.taps().is_multiple_of(CHUNK_TAPS);
            let slots = u64::from(gp.copy_mask.count_ones());
            let copy = u64::from(gp.copy_len);
            assert!(
                forward_reads_within(&gp, copy * (slots + u64::from(tail))).is_ok(),
                "{x:?} {w:?} {opts:?}"
            );
            if tail {
                assert!(
                    forward_reads_within(&gp, copy * slots).is_err(),
                    "{x:?} {w:?}: padding taps without a zero region"
                );
            }
        }
    }
}
