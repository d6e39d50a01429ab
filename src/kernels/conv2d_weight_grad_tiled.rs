//! `conv2d_weight_grad_tiled`: 4 output channels x 4 taps of one slice of the `N*OH*OW`
//! reduction per invocation, on a grid (slices, tap blocks, channel blocks).

use super::budget::{self, LOOP_BUDGET};
use super::conv2d_weight_grad;
use super::grid::{fits, runs};
use super::plan::{Buf, Pass};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms::ConvParams;
use crate::error::Result;
use crate::options::Conv2dGeometry;

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "conv2d_weight_grad_tiled",
    preludes: &["conv2d_common"],
    source: shader!("conv2d_common", "conv2d_weight_grad_tiled"),
    workgroup: [64, 1, 1],
    bindings: &[Access::Read, Access::Read, Access::Write],
    uniform: Uniform::Conv,
    required: false,
    trusted: false,
};

/// Output channels and taps per invocation.
const CHANNELS: usize = 4;
const TAPS: usize = 4;
/// Loop iterations besides one per term: the 4 x 4 stores and their 4 rows.
const STORES: u64 = (CHANNELS + CHANNELS * TAPS) as u64;
/// Longest slice: one iteration per term, then the stores.
const MAX_SLICE: usize = (LOOP_BUDGET - STORES) as usize;
/// Shortest slice it aims for.
const MIN_SLICE: usize = 16;

/// The grid's tap blocks and channel blocks.
fn blocks(g: &Conv2dGeometry) -> [usize; 2] {
    [
        g.taps().div_ceil(TAPS),
        g.groups * g.ocpg().div_ceil(CHANNELS),
    ]
}

/// Whether the grid's y and z fit (x, the slices, is cut into dispatches).
pub(crate) fn applies(g: &Conv2dGeometry, profile: &DeviceProfile) -> bool {
    fits(&blocks(g), profile.max_workgroups_per_dimension)
}

/// As many slices as keep about the profile's target of invocations in flight, each at least
/// `MIN_SLICE` long. Depends only on the shape (and the binding limit), never on timing.
pub(crate) fn slicing(g: &Conv2dGeometry, profile: &DeviceProfile) -> Result<(usize, usize)> {
    let len = g.n * g.oh * g.ow;
    let [tb, ocb] = blocks(g);
    let want = profile
        .target_invocations()
        .div_ceil(tb * ocb)
        .clamp(1, len.div_ceil(MIN_SLICE).max(1));
    let elements = g.weight_shape().iter().product();
    let (slice, slices) =
        conv2d_weight_grad::slices_from(profile, elements, len, len.div_ceil(want), MAX_SLICE)?;
    budget::check(SPEC.name, slice as u64 + STORES)?;
    Ok((slice, slices))
}

/// The pass over `io` = `[x, gy, partials]`. Loop iterations per invocation: one per term of
/// its slice, then the stores.
pub(crate) fn pass(
    g: &Conv2dGeometry,
    io: [Buf; 3],
    (slice, slices): (usize, usize),
    profile: &DeviceProfile,
) -> Result<Pass> {
    let mut p = ConvParams::new(g)?;
    p.slice_len = slice as u32;
    p.slices = slices as u32;
    let [tb, ocb] = blocks(g);
    let mut pass = Pass::new(&SPEC, io.map(Into::into), slice as u64 + STORES);
    let per_slice = 2.0 * (CHANNELS * TAPS) as f64 * slice as f64 * (tb * ocb) as f64;
    let wg = SPEC.workgroup[0] as usize;
    for (first, grid) in runs(
        SPEC.name,
        Some(0),
        slices,
        wg,
        [tb, ocb],
        per_slice,
        profile,
    )? {
        p.base = first as u32;
        pass.dispatch(&p, grid)?;
    }
    Ok(pass)
}
