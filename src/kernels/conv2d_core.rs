//! `conv2d_core`: the GEMM core of the GPU family. One implicit GEMM per group over a weight
//! packed by `conv2d_pack_core`: tiles of 64 channels x 64 pixels on 64 invocations (8 x 8
//! outputs each), K in steps of 16 taps through double-buffered workgroup memory (one barrier a
//! step), the layer's shape in override constants, and a split K where the grid would leave a
//! large GPU idle (see its shader).

use super::budget;
use super::grid::{fits, runs};
use super::model::{input_at, mean_sectors, sectors, store_ways, KernelModel};
use super::plan::{Buf, Pass};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms::{layer_constants, to_u32, ConvParams};
use crate::error::Result;
use crate::options::{Conv2dGeometry, Hw};

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "conv2d_core",
    preludes: &["conv2d_common", "conv2d_layer_common", "conv2d_core_common"],
    source: shader!(
        "conv2d_common",
        "conv2d_layer_common",
        "conv2d_core_common",
        "conv2d_core"
    ),
    workgroup: [64, 1, 1],
    bindings: &[Access::Read, Access::Read, Access::Read, Access::Write],
    uniform: Uniform::Conv,
    required: false,
    trusted: true,
};

/// Output channels and pixels of a tile, and taps per K step (`TILE_M`, `TILE_N`, `TILE_K` in
/// the shader).
pub(crate) const TILE_M: usize = 64;
pub(crate) const TILE_N: usize = 64;
pub(crate) const TILE_K: usize = 16;
/// Floats of one packed tile (one K step of one channel block).
pub(crate) const PACKED_TILE_FLOATS: usize = TILE_M * TILE_K;

/// Workgroup memory: two buffers of a 16 x 64 weight tile and a 16 x 64 input tile.
pub(crate) const WORKGROUP_BYTES: u32 = (2 * 2 * TILE_K * TILE_M * 4) as u32;

/// The workgroups per SM a dispatch should give the reference device at least
/// ([`REFERENCE_SMS`]): below that, the K is split.
pub(crate) const MIN_WORKGROUPS_PER_SM: f64 = 2.5;
pub(crate) use super::model::REFERENCE_SMS;
/// The tiles' swizzle (`SWIZZLE` in the shader; see conv2d_core_common.wgsl): none, its
/// loaders' lanes run along the columns.
pub(crate) const SWIZZLE: u64 = 0;
/// Where the B tile starts in workgroup memory, in words (after the A tile's two buffers).
pub(crate) const B_TILE_WORDS: u64 = 2 * 256 * 4;

/// Where column vec4 `v` of row `k` of a tile is, with swizzle `mask` (`swz` in the shader).
pub(crate) fn swz(k: u64, v: u64, mask: u64) -> u64 {
    k * 16 + (v ^ (k & mask))
}
/// K steps a slice of a split K keeps at least (fewer would spend more on the second pass than
/// the split gains).
const MIN_SLICE_STEPS: usize = 4;

/// Loop iterations per K step: the step loop and its 8 iterations of 2 rows of FMAs (the loads and stores
/// are written out, without loops).
const PER_STEP: usize = 1 + TILE_K / 2;
/// Loop iterations besides the steps: the stores (16 accumulators x 4 pixels).
const STORES: u64 = 16 * 4;

/// How the core runs a layer: its grid and its split K.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CoreShape {
    /// Tiles of pixels (grid x).
    pub tiles: usize,
    /// Groups x channel blocks (grid y).
    pub blocks: usize,
    /// K steps of 16 taps.
    pub steps: usize,
    /// Slices of the split K (grid z; 1: none).
    pub slices: usize,
    /// K steps per slice.
    pub slice_steps: usize,
}

impl CoreShape {
    pub(crate) fn new(g: &Conv2dGeometry) -> Self {
        let tiles = (g.n * g.oh * g.ow).div_ceil(TILE_N);
        let blocks = g.groups * g.ocpg().div_ceil(TILE_M);
        let steps = g.taps().div_ceil(TILE_K);
        let workgroups = tiles * blocks;
        let wanted = (MIN_WORKGROUPS_PER_SM * REFERENCE_SMS as f64).ceil() as usize;
        let mut slices = 1;
        if workgroups < wanted {
            let most = (steps / MIN_SLICE_STEPS).max(1);
            slices = wanted.div_ceil(workgroups).min(most);
        }
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

    /// The same without a split K.
    pub(crate) fn unsplit(self) -> Self {
        Self {
            slices: 1,
            slice_steps: self.steps,
            ..self
        }
    }

    /// The same with `slices` slices of the K steps (at least 1 step each; where there are
    /// more slices than steps, the last slices have none and write zeros). The phases of a
    /// strided input gradient share one slice count, so that one sum of the slices serves all.
    pub(crate) fn with_slices(self, slices: usize) -> Self {
        Self {
            slices,
            slice_steps: self.steps.div_ceil(slices).max(1),
            ..self
        }
    }

    /// Floats of the packed weight.
    pub(crate) fn packed_floats(&self) -> usize {
        self.blocks * self.steps * PACKED_TILE_FLOATS
    }
}

/// Columns of an axis of `extent` elements (per group, `groups` of them) that a tiling of
/// `tile` issues FMAs for: a tile whose second half is past the end runs its first half only
/// (`wide_a`, `wide_b` in the shaders).
pub(crate) fn issued_extent(extent: usize, groups: usize, tile: usize) -> usize {
    let tiles = extent.div_ceil(tile);
    let full = (0..tiles).filter(|t| t * tile + tile / 2 < extent).count();
    groups * (full * tile + (tiles - full) * tile / 2)
}

/// Whether it applies on `profile`: its workgroup memory fits, and the grid's y and z.
pub(crate) fn applies(g: &Conv2dGeometry, profile: &DeviceProfile) -> Result<(), String> {
    if WORKGROUP_BYTES > profile.max_workgroup_storage_bytes {
        return Err(format!(
            "it needs {WORKGROUP_BYTES} bytes of workgroup memory, the device has {}",
            profile.max_workgroup_storage_bytes
        ));
    }
    let s = CoreShape::new(g);
    if !fits(&[s.blocks, s.slices], profile.max_workgroups_per_dimension) {
        return Err(format!(
            "{} groups x channel blocks or {} slices pass the dispatch limit",
            s.blocks, s.slices
        ));
    }
    Ok(())
}

/// Where a pass's output pixels go (`OUT_*` in the shader): pixel `(oy, ox)` to row
/// `y0 + oy * step.h` and column `x0 + ox * step.w` of an output plane of `plane`; and the
/// input rows and columns it skips (`skip`: its gather starts that far past its padding, as
/// a negative padding would; `PT` and `PL` then hold `pad - skip` in two's complement, which
/// the shader reads as an i32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    pub plane: Hw,
    pub first: Hw,
    pub step: Hw,
    pub skip: Hw,
}

impl Placement {
    /// The layer's own output.
    pub(crate) fn own(g: &Conv2dGeometry) -> Self {
        Self {
            plane: Hw::new(g.oh, g.ow),
            first: Hw::new(0, 0),
            step: Hw::new(1, 1),
            skip: Hw::new(0, 0),
        }
    }

    /// `PT` and `PL` of `g` less the skipped rows and columns (two's complement).
    fn origin(&self, g: &Conv2dGeometry) -> Result<[(&'static str, u32); 2]> {
        let at = |pad: usize, skip: usize| -> Result<u32> {
            let o = i64::from(to_u32(pad, "padding")?) - i64::from(to_u32(skip, "skip")?);
            i32::try_from(o)
                .map(|v| v as u32)
                .map_err(|_| crate::error::Error::Internal(format!("gather origin {o}")))
        };
        Ok([
            ("PT", at(g.pad_top, self.skip.h)?),
            ("PL", at(g.pad_left, self.skip.w)?),
        ])
    }

    fn constants(&self) -> Result<[(&'static str, u32); 6]> {
        let u = |v: usize| to_u32(v, "output placement");
        Ok([
            ("OUT_H", u(self.plane.h)?),
            ("OUT_W", u(self.plane.w)?),
            ("OUT_Y0", u(self.first.h)?),
            ("OUT_X0", u(self.first.w)?),
            ("OUT_SY", u(self.step.h)?),
            ("OUT_SX", u(self.step.w)?),
        ])
    }
}

/// The override constants of `g`: the layer's (conv2d_layer_common.wgsl), then the K steps of
/// a slice.
pub(crate) fn core_constants(
    g: &Conv2dGeometry,
    slice_steps: usize,
) -> Result<Vec<(&'static str, u32)>> {
    let mut c = layer_constants(g)?;
    c.push(("SLICE_STEPS", to_u32(slice_steps, "K steps")?));
    Ok(c)
}

/// The pass over `io` = `[x, packed, bias, out]`: `out` is `y` itself with one slice, or the
/// `[slice][element]` partials with more (each slice `place.plane` planes), its pixels placed
/// by `place`. Loop iterations per invocation: 9 per K step; then the
/// stores. Steps past the loop budget run as pieces, each adding to the last.
pub(crate) fn pass(
    g: &Conv2dGeometry,
    s: &CoreShape,
    io: [Buf; 4],
    has_bias: bool,
    place: &Placement,
    profile: &DeviceProfile,
) -> Result<Pass> {
    let mut p = ConvParams::new(g)?;
    p.total = to_u32(g.n * g.oh * g.ow, "output pixels")?;
    to_u32(
        s.slices * g.n * g.oc * place.plane.h * place.plane.w,
        "output elements x slices",
    )?;
    let pieces = budget::split_nest(&[s.slice_steps, PER_STEP], STORES);
    let mut constants = core_constants(g, s.slice_steps)?;
    for (name, v) in place.origin(g)? {
        if let Some(c) = constants.iter_mut().find(|c| c.0 == name) {
            c.1 = v;
        }
    }
    constants.extend(place.constants()?);
    let mut pass = Pass::new(&SPEC, io.map(Into::into), budget::worst(&pieces, STORES))
        .with_constants(&constants)
        .with_model(model(g, s));
    // FLOPs per tile of pixels, over every channel block and slice
    let per_tile = 2.0 * (TILE_N * g.ocpg().min(TILE_M) * g.taps()) as f64 * s.blocks as f64;
    for (i, piece) in pieces.iter().enumerate() {
        p.set_piece(i, &piece[..1]);
        p.has_bias = u32::from(has_bias && i == 0);
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

/// The warp model of the pass: the loaders' stores as the shader indexes them (the weight
/// tile's vec4s t + 64 i, the gathered taps' words), the gather of the tile at the middle of an
/// image in the middle K step, 8 x 8 outputs from 2 + 2 vec4 reads a row, one barrier a step.
pub(crate) fn model(g: &Conv2dGeometry, s: &CoreShape) -> KernelModel {
    let mut ways = 1;
    for i in 0..4 {
        ways = ways.max(store_ways(4, |t| {
            4 * swz((t / 16 + 4 * i) as u64, (t % 16) as u64, SWIZZLE)
        }));
    }
    for j in 0..TILE_K as u64 {
        ways = ways.max(store_ways(1, |t| {
            B_TILE_WORDS + 4 * swz(j, (t / 4) as u64, SWIZZLE) + (t % 4) as u64
        }));
    }
    // the tile at the middle of an image, the middle K step
    let plane = g.oh * g.ow;
    let q0 = (plane / 2).min(s.tiles * TILE_N - TILE_N) / TILE_N * TILE_N;
    let k0 = s.steps / 2 * TILE_K;
    let loads = (0..2).flat_map(|w| {
        (0..TILE_K).map(move |k| sectors(|l| input_at(g, 0, q0 + 32 * w + l, k0 + k)))
    });
    let (pixels, taps) = (g.n * g.oh * g.ow, g.taps());
    KernelModel {
        useful_fmas: (pixels * g.oc * taps) as f64,
        issued_fmas: (issued_extent(pixels, 1, TILE_N)
            * issued_extent(g.ocpg(), g.groups, TILE_M)
            * (s.steps * TILE_K)) as f64,
        // a row: 64 FMAs from 2 vec4s of A and 2 of B
        fma_per_wgmem_word: Some(64.0 / 16.0),
        fma_per_barrier: Some((64 * TILE_K) as f64),
        wgmem_store_conflict: Some(ways),
        gather_sectors_per_warp_load: mean_sectors(loads),
    }
}
