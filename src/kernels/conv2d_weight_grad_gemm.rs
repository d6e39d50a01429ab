//! `conv2d_weight_grad_gemm`: the weight gradient as a GEMM over the padded input copies and
//! the row-padded output gradient, 8 taps x 4 output channels per invocation, one slice of the
//! `N*OH` output rows each (see `shaders/conv2d_weight_grad_gemm.wgsl`).

use super::budget::{self, LOOP_BUDGET};
use super::grid::{fits, runs};
use super::plan::{Buf, Pass};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms;
use super::uniforms::GemmParams;
use crate::error::Result;
use crate::options::Conv2dGeometry;

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "conv2d_weight_grad_gemm",
    preludes: &["conv2d_common", "conv2d_gemm_common"],
    source: shader!(
        "conv2d_common",
        "conv2d_gemm_common",
        "conv2d_weight_grad_gemm"
    ),
    workgroup: [8, 8, 1],
    bindings: &[Access::Read, Access::Read, Access::Write],
    uniform: Uniform::Gemm,
    required: false,
    trusted: false,
};

/// Taps and output channels per invocation.
const TAPS: usize = 8;
const CHANNELS: usize = 4;
/// Loop iterations besides the rows: the 8 x 4 stores.
const STORES: u64 = (TAPS * CHANNELS) as u64;

/// The grid's tap blocks and channel blocks, in invocations.
fn blocks(g: &Conv2dGeometry) -> [usize; 2] {
    [
        g.taps().div_ceil(TAPS),
        g.groups * g.ocpg().div_ceil(CHANNELS),
    ]
}

/// The grid's x and y, in workgroups.
fn xy(g: &Conv2dGeometry) -> [usize; 2] {
    let [tb, ob] = blocks(g);
    [
        tb.div_ceil(SPEC.workgroup[0] as usize),
        ob.div_ceil(SPEC.workgroup[1] as usize),
    ]
}

/// The row slicing `(slices, rows per slice)`, or why the kernel does not apply. Loop
/// iterations per invocation: per output row of its slice, `1 + ceil(OW / 4)` (whole vec4s and
/// the tail), then the stores; rows too long for one, or more slices than the partials can
/// hold, leave the pass to another kernel. Depends only on the shape and the binding limit.
pub(crate) fn slicing(
    g: &Conv2dGeometry,
    profile: &DeviceProfile,
) -> Result<Result<(usize, usize), String>> {
    if !fits(&xy(g), profile.max_workgroups_per_dimension) {
        return Ok(Err(format!("grid {:?} too large", xy(g))));
    }
    let [tb, ob] = blocks(g);
    let rows = g.n * g.oh;
    let elements: usize = g.weight_shape().iter().product();
    let want = profile.target_invocations().div_ceil(tb * ob);
    let budget = (profile.max_binding_bytes / 4) as usize / elements.max(1);
    let per_row = 1 + g.ow.div_ceil(uniforms::VEC4);
    let max_rows = (LOOP_BUDGET as usize).saturating_sub(STORES as usize) / per_row;
    if max_rows == 0 {
        return Ok(Err(format!(
            "output rows of {} columns pass the loop budget",
            g.ow
        )));
    }
    if rows.div_ceil(max_rows) > budget {
        return Ok(Err("its partial sums pass the binding limit".into()));
    }
    let slices = want
        .min(rows)
        .min(budget)
        .max(rows.div_ceil(max_rows))
        .max(1);
    let slice_rows = rows.div_ceil(slices);
    budget::check(SPEC.name, iterations(g, slice_rows))?;
    Ok(Ok((rows.div_ceil(slice_rows), slice_rows)))
}

fn iterations(g: &Conv2dGeometry, slice_rows: usize) -> u64 {
    (slice_rows * (1 + g.ow.div_ceil(uniforms::VEC4))) as u64 + STORES
}

/// The pass over `io` = `[x copies, row-padded gy, partials]`, one slice per z item.
pub(crate) fn pass(
    g: &Conv2dGeometry,
    gp: &GemmParams,
    io: [Buf; 3],
    profile: &DeviceProfile,
) -> Result<Pass> {
    let (slices, slice_rows) = (gp.slices as usize, gp.slice_rows as usize);
    let mut pass = Pass::new(&SPEC, io.map(Into::into), iterations(g, slice_rows));
    let [tb, ob] = blocks(g);
    let per_slice = 2.0 * STORES as f64 * (slice_rows * gp.ow4 as usize * tb * ob) as f64;
    let mut gp = *gp;
    for (first, grid) in runs(SPEC.name, Some(2), slices, 1, xy(g), per_slice, profile)? {
        gp.base = first as u32;
        pass.dispatch(&gp, grid)?;
    }
    Ok(pass)
}
