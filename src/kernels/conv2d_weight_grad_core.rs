//! `conv2d_weight_grad_core`: the weight gradient on the GEMM core (the GPU family): tiles of
//! 64 channels x 64 taps on 64 invocations (8 x 8 sums each), the output pixels in steps of 16
//! through the core's double-buffered, swizzled tiles, split into slices whose partial sums
//! `reduce_partials` adds in order (see its shader).

use super::budget;
use super::conv2d_core::{
    issued_extent, swz, B_TILE_WORDS, MIN_WORKGROUPS_PER_SM, REFERENCE_SMS, TILE_K, TILE_M, TILE_N,
};
use super::grid::{fits, runs};
use super::model::{input_at, mean_sectors, sectors, store_ways, KernelModel};
use super::plan::{Buf, Pass};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms::{to_u32, ConvParams};
use crate::error::Result;
use crate::options::{Conv2dGeometry, ConvMode};

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "conv2d_weight_grad_core",
    preludes: &["conv2d_common", "conv2d_layer_common", "conv2d_core_common"],
    source: shader!(
        "conv2d_common",
        "conv2d_layer_common",
        "conv2d_core_common",
        "conv2d_weight_grad_core"
    ),
    workgroup: [64, 1, 1],
    bindings: &[Access::Read, Access::Read, Access::Write],
    uniform: Uniform::Conv,
    required: false,
    trusted: true,
};

/// The tiles' swizzle (`SWIZZLE` in the shader): an XOR of the row's low 3 bits, its loaders'
/// lanes run along the rows.
pub(crate) const SWIZZLE: u64 = 7;

/// Steps of 16 pixels a slice keeps at least.
const MIN_SLICE_STEPS: usize = 4;
/// Loop iterations per step: the step loop and its 8 iterations of 2 rows of FMAs (the loads and stores are
/// written out, without loops).
const PER_STEP: usize = 1 + TILE_K / 2;
/// Loop iterations besides the steps: the 16 taps decoded up front and the stores (16
/// accumulators x 4 taps).
const STORES: u64 = 16 + 16 * 4;
/// The shader packs a tap's kernel row and column offsets in 16 bits each, and marks a tap past
/// K by a row offset that fails every bounds test: rows, columns and offsets stay below this.
const MAX_EXTENT: usize = 1 << 14;

/// How the weight-gradient core runs a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WeightGradShape {
    /// Tiles of taps (grid x).
    pub tiles: usize,
    /// Groups x channel blocks (grid y).
    pub blocks: usize,
    /// Steps of 16 output pixels.
    pub steps: usize,
    /// Slices of the pixels (grid z).
    pub slices: usize,
    /// Steps per slice.
    pub slice_steps: usize,
}

impl WeightGradShape {
    /// The shape for `g` with at most `most_slices` slices (what the partial sums' binding
    /// allows).
    pub(crate) fn new(g: &Conv2dGeometry, most_slices: usize) -> Self {
        let tiles = g.taps().div_ceil(TILE_N);
        let blocks = g.groups * g.ocpg().div_ceil(TILE_M);
        let steps = (g.n * g.oh * g.ow).div_ceil(TILE_K);
        let wanted = (MIN_WORKGROUPS_PER_SM * REFERENCE_SMS as f64).ceil() as usize;
        let slices = wanted
            .div_ceil(tiles * blocks)
            .min((steps / MIN_SLICE_STEPS).max(1))
            .min(most_slices.max(1));
        // whole slices of at least the wanted count (the last one shorter)
        let slice_steps = (steps / slices).max(1);
        Self {
            tiles,
            blocks,
            steps,
            slices: steps.div_ceil(slice_steps),
            slice_steps,
        }
    }
}

/// Whether it applies on `profile`: its workgroup memory fits, and the grid.
pub(crate) fn applies(
    g: &Conv2dGeometry,
    s: &WeightGradShape,
    profile: &DeviceProfile,
) -> Result<(), String> {
    let bytes = super::conv2d_core::WORKGROUP_BYTES;
    if bytes > profile.max_workgroup_storage_bytes {
        return Err(format!(
            "it needs {bytes} bytes of workgroup memory, the device has {}",
            profile.max_workgroup_storage_bytes
        ));
    }
    if !fits(
        &[s.tiles, s.blocks, s.slices],
        profile.max_workgroups_per_dimension,
    ) {
        return Err(format!(
            "grid {:?} passes the dispatch limit",
            [s.tiles, s.blocks, s.slices]
        ));
    }
    let extent = [
        g.h + g.pad_top,
        g.w + g.pad_left,
        (g.kh - 1) * g.dilation.h,
        (g.kw - 1) * g.dilation.w,
    ];
    if extent.iter().any(|&e| e >= MAX_EXTENT) {
        return Err(format!(
            "an input side with its padding, or a dilated kernel, of {MAX_EXTENT} or more"
        ));
    }
    Ok(())
}

/// The override constants of `g`: the core's, and whether the taps are flipped back.
fn weight_grad_constants(
    g: &Conv2dGeometry,
    slice_steps: usize,
) -> Result<Vec<(&'static str, u32)>> {
    let mut c = super::conv2d_core::core_constants(g, slice_steps)?;
    c.push(("FLIP", u32::from(g.mode == ConvMode::Convolution)));
    Ok(c)
}

/// The pass over `io` = `[x, gy, out]`: `out` the weight gradient itself with one slice, or the
/// `[slice][element]` partials with more. Loop iterations per invocation: 9 per step, then
/// the stores; steps past the loop budget run as pieces, each adding to the last.
pub(crate) fn pass(
    g: &Conv2dGeometry,
    s: &WeightGradShape,
    io: [Buf; 3],
    profile: &DeviceProfile,
) -> Result<Pass> {
    let mut p = ConvParams::new(g)?;
    let elements: usize = g.weight_shape().iter().product();
    to_u32(s.slices * elements, "weight elements x slices")?;
    to_u32(s.steps * TILE_K, "output pixels")?;
    let pieces = budget::split_nest(&[s.slice_steps, PER_STEP], STORES);
    let mut pass = Pass::new(&SPEC, io.map(Into::into), budget::worst(&pieces, STORES))
        .with_constants(&weight_grad_constants(g, s.slice_steps)?)
        .with_model(model(g, s));
    // FLOPs per tile of taps, over every channel block and slice
    let per_tile =
        2.0 * (TILE_N * g.ocpg().min(TILE_M) * g.n * g.oh * g.ow) as f64 * s.blocks as f64;
    for (i, piece) in pieces.iter().enumerate() {
        p.set_piece(i, &piece[..1]);
        for (first, dims) in runs(
            SPEC.name,
            Some(0),
            s.tiles,
            1,
            [s.blocks, s.slices],
            per_tile,
            profile,
        )? {
            p.base = first as u32;
            pass.dispatch(&p, dims)?;
        }
    }
    Ok(pass)
}

/// The warp model of the pass: the loaders' stores as the shader indexes them (lane t: row
/// t % 16, column element t / 16 + 4 j), the loads of the step at the middle of an image (dY
/// and the gathered input), 8 x 8 sums from 2 + 2 vec4 reads a row, one barrier a step.
pub(crate) fn model(g: &Conv2dGeometry, s: &WeightGradShape) -> KernelModel {
    let mut ways = 1;
    for j in 0..16u64 {
        ways = ways.max(store_ways(1, |t| {
            4 * swz((t % 16) as u64, j, SWIZZLE) + (t / 16) as u64
        }));
        ways = ways.max(store_ways(1, |t| {
            B_TILE_WORDS + 4 * swz((t % 16) as u64, j, SWIZZLE) + (t / 16) as u64
        }));
    }
    let (pixels, taps, plane) = (g.n * g.oh * g.ow, g.taps(), g.oh * g.ow);
    // the step at the middle of the first image
    let q0 = plane / 2 / TILE_K * TILE_K;
    let dy_at = move |l: usize, j: usize| {
        let (q, m) = (q0 + l % 16, l / 16 + 4 * j);
        (q < pixels && m < g.ocpg()).then(|| ((q / plane * g.oc + m) * plane + q % plane) as u64)
    };
    let loads = (0..16).flat_map(|j| {
        [
            sectors(|l| dy_at(l, j)),
            sectors(|l| input_at(g, 0, q0 + l % 16, l / 16 + 4 * j)),
        ]
    });
    KernelModel {
        useful_fmas: (pixels * g.oc * taps) as f64,
        issued_fmas: (issued_extent(taps, 1, TILE_N)
            * issued_extent(g.ocpg(), g.groups, TILE_M)
            * (s.steps * TILE_K)) as f64,
        fma_per_wgmem_word: Some(64.0 / 16.0),
        fma_per_barrier: Some((64 * TILE_K) as f64),
        wgmem_store_conflict: Some(ways),
        gather_sectors_per_warp_load: mean_sectors(loads),
    }
}
