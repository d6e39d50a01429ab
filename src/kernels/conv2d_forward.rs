use wgpu::util::DeviceExt;

use super::{
    dispatch_chunks, groups_for, Algorithm, ConvParams, GemmParams, CHUNK_BYTES, CHUNK_TAPS,
    WORKGROUP_SIZE,
};
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
    let algorithm = algorithm.resolve(g);
    if algorithm == Algorithm::Gemm && g.ocpg() > 1 && encode_gemm(ctx, encoder, g, x, w, bias, y)?
    {
        return Ok(());
    }
    let mut p = ConvParams::new(g);
    p.has_bias = u32::from(bias.is_some());
    let bias = bias.unwrap_or(&ctx.kernels.placeholder);
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
    let tiled = match algorithm {
        Algorithm::Tiled | Algorithm::Gemm
            if g.ocpg() == 1 && rows_grid[..2].iter().all(|&d| d <= max) =>
        {
            Some((&ctx.kernels.conv2d_forward_rows, rows_grid, 1.0))
        }
        Algorithm::Tiled | Algorithm::Gemm if tiled_grid.iter().all(|&d| d <= max) => {
            Some((&ctx.kernels.conv2d_forward_tiled, tiled_grid, 8.0))
        }
        _ => None,
    };
    if let Some((kernel, grid, channels_per_z)) = tiled {
        let per_z = 2.0 * channels_per_z * (g.oh * g.ow) as f64 * taps;
        for (first, count) in dispatch_chunks(grid[2] as usize, per_z, 1) {
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
        return Ok(());
    }
    let total: usize = g.output_shape().iter().product();
    p.total = total as u32;
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
    Ok(())
}

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
        flip: u32::from(g.mode == crate::options::ConvMode::Convolution),
        base: 0,
        copy_mask,
        zero_offset: u(zero_offset)?,
    })
}

/// Records the forward pass as an implicit GEMM (see `shaders/conv2d_forward_gemm.wgsl`):
/// the padded input copies (none where the input itself is the one copy needed), the chunks of
/// weights and tap offsets, one dispatch per chunk, and (where output rows are not whole vec4s)
/// the copy into `y`. Returns `false`, recording nothing, where the path does not apply or a
/// scratch buffer would pass the binding limit.
#[allow(clippy::too_many_arguments)]
fn encode_gemm(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    g: &Conv2dGeometry,
    x: &wgpu::Buffer,
    w: &wgpu::Buffer,
    bias: Option<&wgpu::Buffer>,
    y: &wgpu::Buffer,
) -> Result<bool> {
    let Some(mut gp) = gemm_params(g) else {
        return Ok(false);
    };
    let max = ctx.limits.max_compute_workgroups_per_dimension as usize;
    let planes = g.n * g.c;
    let (wq, hp, ow4) = (gp.wq as usize, gp.hp as usize, gp.ow4 as usize);
    let (blocks, runs) = (g.groups * gp.ocb as usize, gp.chunks as usize);
    let grid = [g.ow.div_ceil(4).div_ceil(8), g.oh.div_ceil(8), g.n];
    if grid[0] > max || grid[1] > max || wq.div_ceil(32) > max || hp.div_ceil(8) > max {
        return Ok(false);
    }
    let storage = wgpu::BufferUsages::STORAGE;
    let slots = gp.copy_mask.count_ones() as u64;
    let copy_bytes = u64::from(gp.copy_len) * 4;
    let tail = !g.taps().is_multiple_of(CHUNK_TAPS);
    // the input is its own only copy where nothing is padded and rows are whole vec4s
    let input_is_copy = gp.copy_mask == 1 && hp == g.h && wq == g.w && !tail;
    let copies = if input_is_copy {
        None
    } else {
        let bytes = copy_bytes * (slots + u64::from(tail));
        let usage = storage | wgpu::BufferUsages::COPY_DST;
        let Some(b) = scratch(ctx, "wgpu-conv: padded copies", bytes, usage) else {
            return Ok(false);
        };
        Some(b)
    };
    let Some(chunks) = scratch(
        ctx,
        "wgpu-conv: chunks",
        (blocks * runs) as u64 * CHUNK_BYTES,
        storage | wgpu::BufferUsages::UNIFORM,
    ) else {
        return Ok(false);
    };
    let padded_out = if !g.ow.is_multiple_of(4) {
        let bytes = (g.n * g.oc * g.oh * ow4 * 4) as u64;
        match scratch(ctx, "wgpu-conv: padded output", bytes, storage) {
            Some(b) => Some(b),
            None => return Ok(false),
        }
    } else {
        None
    };
    gp.has_bias = u32::from(bias.is_some());

    if let Some(copies) = &copies {
        if tail {
            encoder.clear_buffer(copies, copy_bytes * slots, Some(copy_bytes));
        }
        let per_plane = (slots as usize * hp * wq) as f64;
        for (first, count) in dispatch_chunks(planes, per_plane, 1) {
            for f in (first..first + count).step_by(max) {
                gp.base = f as u32;
                ctx.kernels.conv2d_pad_copies.dispatch_grid(
                    &ctx.device,
                    &ctx.limits,
                    encoder,
                    bytemuck::bytes_of(&gp),
                    &[x, copies],
                    [
                        wq.div_ceil(32) as u32,
                        hp.div_ceil(8) as u32,
                        max.min(first + count - f) as u32,
                    ],
                )?;
            }
        }
    }
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

    let copies = copies.as_ref().unwrap_or(x);
    let out = padded_out.as_ref().unwrap_or(y);
    let bias = bias.unwrap_or(&ctx.kernels.placeholder);
    let kernel = &ctx.kernels.conv2d_forward_gemm;
    let per_batch = 2.0 * 8.0 * (g.oh * g.ow * CHUNK_TAPS) as f64;
    for (first, count) in dispatch_chunks(g.n, per_batch, 1) {
        for f in (first..first + count).step_by(max) {
            gp.base = f as u32;
            let params = ctx
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("conv2d_forward_gemm: params"),
                    contents: bytemuck::bytes_of(&gp),
                    usage: wgpu::BufferUsages::UNIFORM,
                });
            let chunk_binding = wgpu::BufferBinding {
                buffer: &chunks,
                offset: 0,
                size: wgpu::BufferSize::new(CHUNK_BYTES),
            };
            let bind_group = kernel.bind_resources(
                &ctx.device,
                &[
                    params.as_entire_binding(),
                    wgpu::BindingResource::Buffer(chunk_binding),
                    copies.as_entire_binding(),
                    bias.as_entire_binding(),
                    out.as_entire_binding(),
                ],
            );
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("conv2d_forward_gemm"),
                timestamp_writes: None,
            });
            pass.set_pipeline(kernel.pipeline());
            // run-major, so that the blocks sharing a run's input follow each other; each
            // block's runs still come in order (the first one starts its sums)
            for run in 0..runs {
                for block in 0..blocks {
                    let r = (block * runs + run) as u64;
                    pass.set_bind_group(0, &bind_group, &[(r * CHUNK_BYTES) as u32]);
                    pass.dispatch_workgroups(
                        grid[0] as u32,
                        grid[1] as u32,
                        max.min(first + count - f) as u32,
                    );
                }
            }
        }
    }
    if let Some(padded) = &padded_out {
        let planes = g.n * g.oc;
        for f in (0..planes).step_by(max) {
            gp.base = f as u32;
            ctx.kernels.conv2d_unpad_output.dispatch_grid(
                &ctx.device,
                &ctx.limits,
                encoder,
                bytemuck::bytes_of(&gp),
                &[padded, y],
                [
                    g.ow.div_ceil(8) as u32,
                    g.oh.div_ceil(8) as u32,
                    max.min(planes - f) as u32,
                ],
            )?;
        }
    }
    Ok(true)
}
