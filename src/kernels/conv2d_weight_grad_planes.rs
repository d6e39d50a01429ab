//! `conv2d_weight_grad_planes`: the weight gradient of layers with one input and one output
//! channel per group at stride 1 and dilation 1: a strip of 4 output columns down one slice of
//! rows of one plane per invocation, the kernel size fixed per pipeline by override constants.

use super::budget::{self, LOOP_BUDGET};
use super::conv2d_forward_planes::Read;
use super::grid::{fits, runs};
use super::plan::{Buf, Pass};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms::GemmParams;
use crate::error::Result;
use crate::options::Conv2dGeometry;

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "conv2d_weight_grad_planes",
    preludes: &[
        "conv2d_common",
        "conv2d_gemm_common",
        "conv2d_planes_common",
    ],
    source: shader!(
        "conv2d_common",
        "conv2d_gemm_common",
        "conv2d_planes_common",
        "conv2d_weight_grad_planes"
    ),
    workgroup: [64, 1, 1],
    bindings: &[
        Access::Read,
        Access::Read,
        Access::Write,
        Access::Read,
        Access::Read,
    ],
    uniform: Uniform::Gemm,
    required: false,
    trusted: false,
};

/// Output columns per invocation.
const COLUMNS: usize = 4;

/// Invocations its slicing aims for, on every device: on the H200 the GPU profile's target
/// (2^18) made blur_img's weight gradient 3.2x slower (23.8 ms against 7.4: 30 times the slices,
/// and a tree of reduce passes), depthwise's 3.1x, edge_img's 1.4x.
const TARGET_INVOCATIONS: usize = 8192;

/// `(strips, row slices, rows per slice)`: slices fixed by the shape, never by timing. Loop
/// iterations per invocation: one per output row of its slice (the rest is written out).
pub(crate) fn slicing(
    g: &Conv2dGeometry,
    profile: &DeviceProfile,
) -> Result<Result<(usize, usize, usize), String>> {
    let strips = g.ow.div_ceil(COLUMNS);
    let want = TARGET_INVOCATIONS
        .div_ceil(strips * g.n * g.c)
        .clamp(1, g.oh);
    let slice_rows = g.oh.div_ceil(want).min(LOOP_BUDGET as usize);
    let row_slices = g.oh.div_ceil(slice_rows);
    let xy = [strips.div_ceil(SPEC.workgroup[0] as usize), row_slices];
    if !fits(&xy, profile.max_workgroups_per_dimension) {
        return Ok(Err(format!("grid {xy:?} too large")));
    }
    budget::check(SPEC.name, slice_rows as u64)?;
    Ok(Ok((strips, row_slices, slice_rows)))
}

/// The pass over `[x, dy, partials]`: the input as `read` says, dy as vec4s of its rows or,
/// where `float_dy` (rows that are not whole vec4s), as floats; one plane per z item.
pub(crate) fn pass(
    g: &Conv2dGeometry,
    gp: &GemmParams,
    (read, dy, partials): (Read, Buf, Buf),
    float_dy: bool,
    (strips, row_slices, slice_rows): (usize, usize, usize),
    profile: &DeviceProfile,
) -> Result<Pass> {
    let [direct, floats] = read.constants();
    let bindings = [
        read.buffer().into(),
        dy.into(),
        partials.into(),
        dy.into(),
        read.buffer().into(),
    ];
    let mut pass = Pass::new(&SPEC, bindings, slice_rows as u64).with_constants(&[
        ("KH", g.kh as u32),
        ("KW", g.kw as u32),
        direct,
        floats,
        ("FLOAT_DY", u32::from(float_dy)),
    ]);
    let xy = [strips.div_ceil(SPEC.workgroup[0] as usize), row_slices];
    let per_plane = 2.0 * (g.oh * g.ow * g.kh * g.kw) as f64;
    let mut gp = *gp;
    for (first, grid) in runs(SPEC.name, Some(2), g.n * g.c, 1, xy, per_plane, profile)? {
        gp.base = first as u32;
        pass.dispatch(&gp, grid)?;
    }
    Ok(pass)
}
