//! `conv2d_forward_mm`: the forward pass as one implicit GEMM with tiles in workgroup memory
//! (the GPU family): 64 output channels x 64 pixels per workgroup of 256 invocations, taps in
//! slices of 16, gathered from the input on the fly (see its shader).

use super::budget;
use super::grid::{fits, runs};
use super::model::{input_at, mean_sectors, sectors, store_ways, KernelModel};
use super::plan::{Buf, Pass};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms::to_u32;
use super::uniforms::ConvParams;
use crate::error::Result;
use crate::options::Conv2dGeometry;

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "conv2d_forward_mm",
    preludes: &["conv2d_common"],
    source: shader!("conv2d_common", "conv2d_forward_mm"),
    workgroup: [16, 16, 1],
    bindings: &[Access::Read, Access::Read, Access::Read, Access::Write],
    uniform: Uniform::Conv,
    required: false,
    trusted: false,
};

/// Output channels and pixels of a workgroup's tile, and taps per slice (`TILE_M`, `TILE_N`,
/// `TILE_K` in the shader).
pub(crate) const TILE_M: usize = 64;
pub(crate) const TILE_N: usize = 64;
pub(crate) const TILE_K: usize = 16;

/// Loop iterations per slice of taps: the slice loop, 4 weight loads, 4 input loads, 16 taps.
const PER_SLICE: usize = 4 + 4 + TILE_K;
/// Loop iterations besides the slices: the 4 pixels decoded up front, and the stores (4
/// channel rows of 4 pixels).
const STORES: u64 = 4 + 4 + 16;

/// Workgroup memory it uses: two tiles of 16 taps x 64 floats.
pub(crate) const WORKGROUP_BYTES: u32 = (2 * TILE_K * TILE_M * 4) as u32;

/// The grid: pixel tiles (cut into runs from `base`) and groups x channel blocks.
fn grid(g: &Conv2dGeometry) -> (usize, usize) {
    let pixels = g.n * g.oh * g.ow;
    (
        pixels.div_ceil(TILE_N),
        g.groups * g.ocpg().div_ceil(TILE_M),
    )
}

/// Whether it applies on `profile`: its workgroup memory fits, and the grid's y dimension.
pub(crate) fn applies(g: &Conv2dGeometry, profile: &DeviceProfile) -> Result<(), String> {
    if WORKGROUP_BYTES > profile.max_workgroup_storage_bytes {
        return Err(format!(
            "it needs {WORKGROUP_BYTES} bytes of workgroup memory, the device has {}",
            profile.max_workgroup_storage_bytes
        ));
    }
    let (_, y) = grid(g);
    if !fits(&[y], profile.max_workgroups_per_dimension) {
        return Err(format!(
            "{y} groups x channel blocks pass the dispatch limit"
        ));
    }
    Ok(())
}

/// The pass over `io` = `[x, w, bias, y]`. Loop iterations per invocation: per slice of 16
/// taps, the slice loop, 4 + 4 loads and 16 taps; then the stores. Slices past the loop budget
/// run as pieces, each adding to the last.
pub(crate) fn pass(
    g: &Conv2dGeometry,
    io: [Buf; 4],
    has_bias: bool,
    profile: &DeviceProfile,
) -> Result<Pass> {
    pass_as(g, io, has_bias, None, profile)
}

/// The pass as an input gradient: `g` the forward pass over the output gradient (see
/// `plan_input_grad::as_forward`), the weight buffer the layer's (read transposed), the output
/// gradient read with zero insertion `up` (the layer's stride) instead of being upsampled.
pub(crate) fn pass_as(
    g: &Conv2dGeometry,
    io: [Buf; 4],
    has_bias: bool,
    transposed_up: Option<crate::options::Hw>,
    profile: &DeviceProfile,
) -> Result<Pass> {
    let mut p = ConvParams::new(g)?;
    if let Some(up) = transposed_up {
        p.transposed = 1;
        p.up_h = to_u32(up.h, "stride")?;
        p.up_w = to_u32(up.w, "stride")?;
    }
    let (tiles, y) = grid(g);
    p.total = to_u32(g.n * g.oh * g.ow, "output pixels")?;
    let slices = g.taps().div_ceil(TILE_K);
    // the inner level (one slice's loads and taps) never splits: only the slices do
    let pieces = budget::split_nest(&[slices, PER_SLICE], STORES);
    let mut pass = Pass::new(&SPEC, io.map(Into::into), budget::worst(&pieces, STORES))
        .with_model(model(g, transposed_up));
    let per_tile = 2.0 * (TILE_N * g.ocpg().min(TILE_M) * g.taps()) as f64 * y as f64;
    for (i, piece) in pieces.iter().enumerate() {
        p.set_piece(i, &piece[..1]);
        p.has_bias = u32::from(has_bias && i == 0);
        for (first, dims) in runs(SPEC.name, Some(0), tiles, 1, [y, 1], per_tile, profile)? {
            p.base = first as u32;
            pass.dispatch(&p, dims)?;
        }
    }
    Ok(pass)
}

/// The warp model of the pass: its loaders as the shader indexes them (invocation `tid` stores
/// tap `tid % 16` of channels and pixels `tid / 16 + 16 i`: 64 words apart down a column of the
/// `[tap][channel]` and `[tap][pixel]` tiles), the tile at the middle of an image
/// gathered in the middle slice of taps (not
/// modelled with zero insertion), 4 x 4 outputs from 2 vec4 reads a tap, two barriers a slice.
fn model(g: &Conv2dGeometry, up: Option<crate::options::Hw>) -> KernelModel {
    let word = |t: usize, i: usize| ((t % 16) * 64 + t / 16 + 16 * i) as u64;
    let ways = (0..4)
        .map(|i| store_ways(1, |t| word(t, i)))
        .max()
        .unwrap_or(1);
    let (tiles, y) = grid(g);
    let q0 = (g.oh * g.ow / 2).min(tiles * TILE_N - TILE_N) / TILE_N * TILE_N;
    let k0 = g.taps().div_ceil(TILE_K) / 2 * TILE_K;
    let loads = (0..4).map(|i| sectors(|t| input_at(g, 0, q0 + t / 16 + 16 * i, k0 + t % 16)));
    let (pixels, taps) = (g.n * g.oh * g.ow, g.taps());
    let zeros = up.map_or(1, |u| u.h * u.w);
    KernelModel {
        // with zero insertion, one tap in `zeros` multiplies a value
        useful_fmas: (pixels * g.oc * taps) as f64 / zeros as f64,
        issued_fmas: ((tiles * TILE_N) * (y * TILE_M) * taps.div_ceil(TILE_K) * TILE_K) as f64,
        fma_per_wgmem_word: Some(16.0 / 8.0),
        fma_per_barrier: Some((16 * TILE_K / 2) as f64),
        wgmem_store_conflict: Some(ways),
        gather_sectors_per_warp_load: if up.is_some() {
            None
        } else {
            mean_sectors(loads)
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The model of this kernel is what the GEMM core replaced: its loaders store 16-way
    /// bank-conflicted, 2 FMAs per workgroup-memory word, 128 FMAs per barrier.
    #[test]
    fn its_loaders_store_16_way_conflicted() {
        let g = crate::options::Conv2dOptions::new()
            .padding(1)
            .resolve([8, 64, 56, 56], [64, 64, 3, 3])
            .unwrap();
        let m = model(&g, None);
        assert_eq!(m.wgmem_store_conflict, Some(16));
        assert_eq!(m.fma_per_wgmem_word, Some(2.0));
        assert_eq!(m.fma_per_barrier, Some(128.0));
        // lanes along taps: 16 pixels x 2 taps a warp load, far more than 4 sectors
        assert!(m.gather_sectors_per_warp_load.unwrap() > 8.0, "{m:?}");
    }
}
