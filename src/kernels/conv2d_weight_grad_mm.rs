//! `conv2d_weight_grad_mm`: the weight gradient as a split-K GEMM with tiles in workgroup
//! memory (the GPU family): 64 output channels x 64 taps per workgroup of 256 invocations, one
//! slice of the output pixels each, 16 pixels a step (see its shader); then `reduce_partials`.

use super::budget::{self, LOOP_BUDGET};
use super::conv2d_weight_grad;
use super::grid::{fits, runs};
use super::model::{input_at, mean_sectors, sectors, store_ways, KernelModel};
use super::plan::{Buf, Pass};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms::ConvParams;
use crate::error::Result;
use crate::options::Conv2dGeometry;

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "conv2d_weight_grad_mm",
    preludes: &["conv2d_common"],
    source: shader!("conv2d_common", "conv2d_weight_grad_mm"),
    workgroup: [16, 16, 1],
    bindings: &[Access::Read, Access::Read, Access::Write],
    uniform: Uniform::Conv,
    required: false,
    trusted: false,
};

/// Output channels and taps of a workgroup's tile, pixels per step (`TILE_M`, `TILE_N`,
/// `TILE_P` in the shader).
pub(crate) const TILE_M: usize = 64;
pub(crate) const TILE_N: usize = 64;
pub(crate) const TILE_P: usize = 16;

/// Loop iterations per step: the step loop, 4 loads of each tile, 16 pixels.
const PER_STEP: u64 = 1 + 4 + TILE_P as u64;
/// Loop iterations besides the steps: the 4 taps decoded up front, and the 4 x 4 stores.
const FIXED: u64 = 4 + 4 + 16;
/// Most steps one invocation may take.
const MAX_STEPS: usize = ((LOOP_BUDGET - FIXED) / PER_STEP) as usize;

/// Workgroup memory it uses: two tiles of 16 pixels x 64 floats.
const WORKGROUP_BYTES: u32 = (2 * TILE_P * TILE_M * 4) as u32;

/// The grid's tap tiles and groups x channel blocks.
fn xy(g: &Conv2dGeometry) -> [usize; 2] {
    [
        g.taps().div_ceil(TILE_N),
        g.groups * g.ocpg().div_ceil(TILE_M),
    ]
}

/// The slicing `(slice length, slices)` of the `N*OH*OW` output pixels, or why the kernel does
/// not apply: as many slices as bring the grid to the profile's target of invocations, each a
/// whole number of steps and within the loop budget, and no more partial sums than the
/// device's binding and [`conv2d_weight_grad::partial_budget`] allow, nor than the input has
/// elements (so the scratch never outgrows the input). Fixed by the shape and the profile,
/// never by timing.
pub(crate) fn slicing(
    g: &Conv2dGeometry,
    profile: &DeviceProfile,
) -> Result<Result<(usize, usize), String>> {
    if WORKGROUP_BYTES > profile.max_workgroup_storage_bytes {
        return Ok(Err(format!(
            "it needs {WORKGROUP_BYTES} bytes of workgroup memory, the device has {}",
            profile.max_workgroup_storage_bytes
        )));
    }
    let [tx, ty] = xy(g);
    if !fits(&[tx, ty], profile.max_workgroups_per_dimension) {
        return Ok(Err(format!("grid {:?} too large", [tx, ty])));
    }
    let pixels = g.n * g.oh * g.ow;
    let per_slice = tx * ty * SPEC.invocations_per_workgroup() as usize;
    let elements: usize = g.weight_shape().iter().product();
    let input: usize = g.input_shape().iter().product();
    let most = (conv2d_weight_grad::partial_budget(profile).min(input) / elements.max(1)).max(1);
    let fewest = pixels.div_ceil(MAX_STEPS * TILE_P);
    if fewest > most {
        return Ok(Err("its partial sums pass the binding limit".into()));
    }
    let want = profile
        .target_invocations()
        .div_ceil(per_slice)
        .clamp(fewest, most)
        .min(pixels.div_ceil(TILE_P))
        .max(1);
    let slice_len = pixels.div_ceil(want).next_multiple_of(TILE_P);
    let slices = pixels.div_ceil(slice_len);
    budget::check(SPEC.name, iterations(slice_len))?;
    Ok(Ok((slice_len, slices)))
}

/// Loop iterations per invocation for slices of `slice_len` pixels.
fn iterations(slice_len: usize) -> u64 {
    slice_len.div_ceil(TILE_P) as u64 * PER_STEP + FIXED
}

/// The pass over `io` = `[x, gy, partials]`, one slice per z item.
pub(crate) fn pass(
    g: &Conv2dGeometry,
    io: [Buf; 3],
    (slice_len, slices): (usize, usize),
    profile: &DeviceProfile,
) -> Result<Pass> {
    let mut p = ConvParams::new(g)?;
    p.slice_len = slice_len as u32;
    p.slices = slices as u32;
    let [tx, ty] = xy(g);
    let mut pass = Pass::new(&SPEC, io.map(Into::into), iterations(slice_len)).with_model(model(
        g,
        slice_len * slices,
        [tx, ty],
    ));
    let per_slice =
        2.0 * (slice_len * g.ocpg().min(TILE_M) * g.taps().min(TILE_N)) as f64 * (tx * ty) as f64;
    for (first, grid) in runs(SPEC.name, Some(2), slices, 1, [tx, ty], per_slice, profile)? {
        p.base = first as u32;
        pass.dispatch(&p, grid)?;
    }
    Ok(pass)
}

/// The warp model of the pass: its loaders as the shader indexes them (invocation `tid` stores
/// pixel `tid % 16` of channels and taps `tid / 16 + 16 i`: 64 words apart down a column of the
/// `[pixel][channel]` and `[pixel][tap]` tiles), the middle step's loads, 4 x 4 sums from 2
/// vec4 reads a pixel, two barriers a step. `padded`: the pixels its slices walk.
fn model(g: &Conv2dGeometry, padded: usize, [tx, ty]: [usize; 2]) -> KernelModel {
    let word = |t: usize, i: usize| ((t % 16) * 64 + t / 16 + 16 * i) as u64;
    let ways = (0..4)
        .map(|i| store_ways(1, |t| word(t, i)))
        .max()
        .unwrap_or(1);
    let (pixels, taps, plane) = (g.n * g.oh * g.ow, g.taps(), g.oh * g.ow);
    let q0 = plane / 2 / TILE_P * TILE_P;
    let dy_at = move |t: usize, i: usize| {
        let (q, m) = (q0 + t % 16, t / 16 + 16 * i);
        (q < pixels && m < g.ocpg()).then(|| ((q / plane * g.oc + m) * plane + q % plane) as u64)
    };
    let loads = (0..4).flat_map(|i| {
        [
            sectors(|t| dy_at(t, i)),
            sectors(|t| input_at(g, 0, q0 + t % 16, t / 16 + 16 * i)),
        ]
    });
    KernelModel {
        useful_fmas: (pixels * g.oc * taps) as f64,
        issued_fmas: (tx * TILE_N * ty * TILE_M * padded) as f64,
        fma_per_wgmem_word: Some(16.0 / 8.0),
        fma_per_barrier: Some((16 * TILE_P / 2) as f64),
        wgmem_store_conflict: Some(ways),
        gather_sectors_per_warp_load: mean_sectors(loads),
    }
}
