use super::{
    budget, dispatch_chunks, gemm, groups_for, z_chunks, Algorithm, ConvParams, WORKGROUP_SIZE,
};
use crate::context::GpuContext;
use crate::error::Result;
use crate::options::{Conv2dGeometry, Conv2dOptions, ConvMode, Hw, Padding, PaddingMode};

/// Records the input gradient `gx` of `sum(y * gy)`: the channel-blocked kernel on a 3-D grid,
/// or one invocation per input element (the direct kernel, also the fallback where the grid
/// would not fit).
pub(crate) fn encode(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    g: &Conv2dGeometry,
    w: &wgpu::Buffer,
    gy: &wgpu::Buffer,
    gx: &wgpu::Buffer,
    algorithm: Algorithm,
) -> Result<()> {
    let algorithm = algorithm.resolve(g);
    if algorithm != Algorithm::Direct {
        if let Some((t, up)) = as_forward(g) {
            let plain = up == Hw::new(1, 1);
            if plain && g.cpg() == 1 && g.ocpg() == 1 {
                // one channel in and out per group: the forward convolution of gy with the
                // flipped kernel, which the planes (Gemm) or rows (Tiled) kernel runs fast
                return super::encode_forward(ctx, encoder, &t, gy, w, None, gx, algorithm);
            }
            if algorithm == Algorithm::Gemm
                && t.ocpg() > 1
                && gemm::encode_forward(ctx, encoder, &t, gy, w, None, gx, true, up)?
            {
                return Ok(());
            }
        }
    }
    let mut p = ConvParams::new(g);
    let grid = [
        g.w.div_ceil(8),
        g.h.div_ceil(8),
        g.n * g.groups * g.cpg().div_ceil(4),
    ];
    let max = ctx.limits.max_compute_workgroups_per_dimension as usize;
    let per_tap = 2.0 * (g.ocpg() * g.kh * g.kw) as f64;
    // The candidates: the padded positions that may read a pixel (itself, and for the other
    // padding modes every border position), scanned as rows x columns.
    let (rows, cols) = if g.padding_mode == PaddingMode::Zeros {
        (1, 1)
    } else {
        (1 + g.pad_top + g.pad_bottom, 1 + g.pad_left + g.pad_right)
    };
    if algorithm != Algorithm::Direct && grid[0] <= max && grid[1] <= max {
        // Loop iterations per invocation: the nest candidate rows x columns x kernel rows x
        // kernel columns x output channels (every candidate taken as a match, no early exit),
        // plus 4 stores; longer scans run as pieces, each adding to the last.
        let nest = [rows, cols, g.kh, g.kw, g.ocpg()];
        for (i, piece) in budget::split_nest(&nest, 4).iter().enumerate() {
            p.set_piece(i, piece);
            let per_z = 4.0 * (g.h * g.w) as f64 * per_tap;
            for (first, count) in z_chunks(grid[2], per_z, max as u32) {
                p.base = first as u32;
                ctx.kernels.conv2d_input_grad_tiled.dispatch_grid(
                    &ctx.device,
                    &ctx.limits,
                    encoder,
                    bytemuck::bytes_of(&p),
                    &[w, gy, gx],
                    [grid[0] as u32, grid[1] as u32, count as u32],
                )?;
            }
        }
        return Ok(());
    }
    let total: usize = g.input_shape().iter().product();
    p.total = total as u32;
    // Loop iterations per invocation: candidate rows x columns x output channels x kernel rows
    // x kernel columns; longer scans run as pieces, each adding to the last.
    let nest = [rows, cols, g.ocpg(), g.kh, g.kw];
    for (i, piece) in budget::split_nest(&nest, 0).iter().enumerate() {
        p.set_piece(i, piece);
        for (first, count) in dispatch_chunks(total, per_tap, WORKGROUP_SIZE as usize) {
            p.base = first as u32;
            ctx.kernels.conv2d_input_grad.dispatch(
                &ctx.device,
                &ctx.limits,
                encoder,
                bytemuck::bytes_of(&p),
                &[w, gy, gx],
                groups_for(count)?,
            )?;
        }
    }
    Ok(())
}

/// Where the input gradient is itself a forward convolution (zero padding no wider than the
/// dilated kernel): its geometry and the zero insertion it reads `gy` `[N, OC, OH, OW]` with
/// (the stride: `gy` upsampled to `(OH - 1) * stride + 1` rows, and so on), the weight flipped
/// and transposed (`[C, OC/groups, KH, KW]`; with one channel in and out per group, the weight
/// as it is), writing `[N, C, H, W]`.
fn as_forward(g: &Conv2dGeometry) -> Option<(Conv2dGeometry, Hw)> {
    if g.padding_mode != PaddingMode::Zeros {
        return None;
    }
    let (eh, ew) = (g.dilation.h * (g.kh - 1), g.dilation.w * (g.kw - 1));
    let (hu, wu) = ((g.oh - 1) * g.stride.h + 1, (g.ow - 1) * g.stride.w + 1);
    // padding before: the dilated kernel's reach less the layer's; after: whatever makes the
    // output H x W again
    let before = |p: usize, e: usize| e.checked_sub(p);
    let after = |size: usize, up: usize, p: usize| (size + p).checked_sub(up);
    let opts = Conv2dOptions {
        stride: Hw::new(1, 1),
        padding: Padding::Explicit {
            top: before(g.pad_top, eh)?,
            left: before(g.pad_left, ew)?,
            bottom: after(g.h, hu, g.pad_top)?,
            right: after(g.w, wu, g.pad_left)?,
        },
        dilation: g.dilation,
        groups: g.groups,
        padding_mode: PaddingMode::Zeros,
        mode: match g.mode {
            ConvMode::CrossCorrelation => ConvMode::Convolution,
            ConvMode::Convolution => ConvMode::CrossCorrelation,
        },
    };
    let t = opts
        .resolve([g.n, g.oc, hu, wu], [g.c, g.ocpg(), g.kh, g.kw])
        .ok()?;
    (t.output_shape() == g.input_shape()).then_some((t, g.stride))
}
