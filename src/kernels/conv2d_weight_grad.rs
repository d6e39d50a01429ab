//! `conv2d_weight_grad`: one workgroup per weight element and slice of the `N*OH*OW`
//! reduction (64 lanes walk the slice, then a tree), the reference weight-gradient kernel.
//! Also the slicing every direct reduction (weight and bias gradients, the loss) shares.

use super::budget::{self, LOOP_BUDGET};
use super::grid::runs;
use super::plan::{Buf, Pass};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms;
use super::uniforms::ConvParams;
use crate::error::{Error, Limit, Result};
use crate::options::Conv2dGeometry;

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "conv2d_weight_grad",
    preludes: &["conv2d_common"],
    source: shader!("conv2d_common", "conv2d_weight_grad"),
    workgroup: [64, 1, 1],
    bindings: &[Access::Read, Access::Read, Access::Write],
    uniform: Uniform::Conv,
    required: true,
    trusted: false,
};

/// Length of one slice of the direct reductions. Fixed, so the summation order depends only
/// on the shape; raised only where the partials would not fit the device's largest binding.
pub const REDUCTION_SLICE: usize = 1024;

/// Most partial sums any reduction writes, whatever the binding limit (64 MiB of them).
const MAX_PARTIALS: usize = 1 << 24;

/// Lanes that walk one slice, then sum in a tree of `TREE_LEVELS` levels.
const LANES: usize = 64;
const TREE_LEVELS: u64 = LANES.ilog2() as u64;

/// Longest slice of the direct reductions: `slice / 64` iterations each, then the tree.
const MAX_DIRECT_SLICE: usize = LANES * (LOOP_BUDGET - TREE_LEVELS) as usize;

/// Partial sums a reduction may write on `profile`.
pub(crate) fn partial_budget(profile: &DeviceProfile) -> usize {
    ((profile.max_binding_bytes / 4) as usize).min(MAX_PARTIALS)
}

/// Slice length and slice count for `elements` reductions of length `len` each, slices of
/// `slice` or longer (doubled until the partials fit the budget), but no longer than
/// `max_slice` (what keeps the kernel within the loop budget).
pub(crate) fn slices_from(
    profile: &DeviceProfile,
    elements: usize,
    len: usize,
    slice: usize,
    max_slice: usize,
) -> Result<(usize, usize)> {
    let budget = partial_budget(profile);
    let mut slice = slice.clamp(1, max_slice.max(1));
    while elements.saturating_mul(len.div_ceil(slice)) > budget && slice < len {
        slice *= 2;
    }
    let slice = slice.min(len.max(1));
    let slices = len.div_ceil(slice).max(1);
    if slice > max_slice || (elements.saturating_mul(slices) > budget && slices > 1) {
        return Err(Error::too_large(
            format!("partial sums of {elements} reductions of {len} terms"),
            Limit::Binding,
            elements.saturating_mul(len.div_ceil(max_slice)) as u64 * uniforms::FLOAT_BYTES,
            budget as u64 * uniforms::FLOAT_BYTES,
        ));
    }
    Ok((slice, slices))
}

/// Slicing of the direct reductions (fixed slice length). Loop iterations per invocation:
/// `slice / 64 + 6`.
pub(crate) fn slicing(
    profile: &DeviceProfile,
    elements: usize,
    len: usize,
) -> Result<(usize, usize)> {
    let (slice, slices) = slices_from(profile, elements, len, REDUCTION_SLICE, MAX_DIRECT_SLICE)?;
    budget::check("direct reduction", iterations(slice))?;
    Ok((slice, slices))
}

/// Loop iterations per invocation of a direct reduction over slices of `slice`.
pub(crate) fn iterations(slice: usize) -> u64 {
    slice.div_ceil(LANES) as u64 + TREE_LEVELS
}

/// The pass over `io` = `[x, gy, partials]`: `elements x slices` workgroups, partial sums
/// `partials[element * slices + slice]`.
pub(crate) fn pass(
    g: &Conv2dGeometry,
    io: [Buf; 3],
    (slice, slices): (usize, usize),
    profile: &DeviceProfile,
) -> Result<Pass> {
    let mut p = ConvParams::new(g)?;
    p.slice_len = slice as u32;
    p.slices = slices as u32;
    let elements: usize = g.weight_shape().iter().product();
    let mut pass = Pass::new(&SPEC, io.map(Into::into), iterations(slice));
    for (first, grid) in runs(
        SPEC.name,
        None,
        elements * slices,
        1,
        [0, 0],
        2.0 * slice as f64,
        profile,
    )? {
        p.base = first as u32;
        pass.dispatch(&p, grid)?;
    }
    Ok(pass)
}
