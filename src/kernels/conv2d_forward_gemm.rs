//! `conv2d_forward_gemm`: the forward pass as an implicit GEMM over the padded input copies,
//! 8 output channels x 4 pixels per invocation, the weights of one chunk of taps in a uniform
//! block (see `shaders/conv2d_forward_gemm.wgsl`).

use super::grid::runs;
use super::plan::{Bind, Buf, Pass};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms::GemmParams;
use crate::error::{Error, Result};
use crate::options::Conv2dGeometry;

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "conv2d_forward_gemm",
    preludes: &["conv2d_common", "conv2d_gemm_common"],
    source: shader!("conv2d_common", "conv2d_gemm_common", "conv2d_forward_gemm"),
    workgroup: [8, 8, 1],
    bindings: &[Access::Block, Access::Read, Access::Read, Access::Write],
    uniform: Uniform::Gemm,
    required: false,
    trusted: false,
};

/// Taps one dispatch adds (`CHUNK_TAPS` in the shaders).
pub(crate) const CHUNK_TAPS: usize = 64;

/// Bytes between two chunks' uniform blocks: `struct Chunk` (2320 bytes) rounded up to the
/// 256-byte uniform offset alignment that every adapter accepts (`CHUNK_WORDS` in the shaders).
pub(crate) const CHUNK_BYTES: u64 = 2560;

/// Output channels of one block.
pub(crate) const BLOCK_CHANNELS: usize = 8;
/// Output pixels per invocation.
const PIXELS: usize = 4;

/// The grid's columns and rows.
pub(crate) fn xy(g: &Conv2dGeometry) -> [usize; 2] {
    let (tx, ty) = (SPEC.workgroup[0] as usize, SPEC.workgroup[1] as usize);
    [g.ow.div_ceil(PIXELS).div_ceil(tx), g.oh.div_ceil(ty)]
}

/// The pass reading `copies` through the `chunks` of `blocks` blocks x `runs` chunks, writing
/// `out`: one dispatch per chunk and run of batch items (grid z), run-major so that the blocks
/// sharing a run's input follow each other; each block's chunks still come in order (the first
/// starts its sums). No loops: the chunk's taps are written out.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pass(
    g: &Conv2dGeometry,
    gp: &GemmParams,
    chunks: Buf,
    copies: Buf,
    bias: Buf,
    out: Buf,
    (blocks, chunks_per_block): (usize, usize),
    profile: &DeviceProfile,
) -> Result<Pass> {
    let mut pass = Pass::new(
        &SPEC,
        [
            Bind {
                buf: chunks,
                block: Some(CHUNK_BYTES),
            },
            copies.into(),
            bias.into(),
            out.into(),
        ],
        0,
    );
    let per_batch = 2.0 * BLOCK_CHANNELS as f64 * (g.oh * g.ow * CHUNK_TAPS) as f64;
    let mut gp = *gp;
    for (first, grid) in runs(SPEC.name, Some(2), g.n, 1, xy(g), per_batch, profile)? {
        gp.base = first as u32;
        for run in 0..chunks_per_block {
            for block in 0..blocks {
                let at = (block * chunks_per_block + run) as u64 * CHUNK_BYTES;
                pass.dispatch_block(&gp, grid, at as u32)?;
            }
        }
    }
    Ok(pass)
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
    let start_max = ((u(gp.shape.n) - 1) * u(gp.shape.c) * u(gp.hp)
        + (u(gp.shape.oh) - 1) * u(gp.shape.stride_h))
        * wq4
        + (u(gp.ow4) / 4 - 1);
    let slot = |bit: u32| u64::from((gp.copy_mask & ((1u32 << bit) - 1)).count_ones());
    let tap_max = (0..gp.shape.kw)
        .map(|b| {
            let shift = b * gp.shape.dil_w;
            let (q, r) = (shift / gp.shape.stride_w, shift % gp.shape.stride_w);
            let t = q % 4;
            (slot(r * 4 + t) * u(gp.copy_len)
                + ((u(gp.shape.c) - 1) * u(gp.hp) + (u(gp.shape.kh) - 1) * u(gp.shape.dil_h))
                    * u(gp.wq)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::GemmParams;
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
            let gp = GemmParams::new(&g, CHUNK_TAPS).unwrap();
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
