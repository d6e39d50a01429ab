//! `conv2d_zero_phase`: zeros for a phase of a strided layer's input gradient that no kernel tap
//! reaches (a 1x1 kernel at stride 2 reaches one phase of four).

use super::grid::runs;
use super::phases::Phase;
use super::plan::{Buf, Pass};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms::{to_u32, ConvParams};
use crate::error::Result;
use crate::options::Conv2dGeometry;

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "conv2d_zero_phase",
    preludes: &["conv2d_common"],
    source: shader!("conv2d_common", "conv2d_zero_phase"),
    workgroup: [64, 1, 1],
    bindings: &[Access::Write],
    uniform: Uniform::Conv,
    required: false,
    trusted: false,
};

/// The pass writing zeros to `phase` of `gx`, the input gradient of `g`, or of each of `slices`
/// copies of it laid end to end (the partial sums of a split K): one invocation per element
/// of the phase, no loops.
pub(crate) fn pass(
    g: &Conv2dGeometry,
    phase: &Phase,
    gx: Buf,
    slices: usize,
    profile: &DeviceProfile,
) -> Result<Pass> {
    let (rows, cols) = (phase.y.count, phase.x.count);
    let elements = slices * g.n * g.c * rows * cols;
    let u = |v: usize, what: &str| to_u32(v, what);
    u(elements, "elements of a phase")?;
    let constants = [
        ("PLANES", u(slices * g.n * g.c, "planes")?),
        ("H", u(g.h, "input height")?),
        ("W", u(g.w, "input width")?),
        ("FY", u(phase.y.first, "phase row")?),
        ("FX", u(phase.x.first, "phase column")?),
        ("SY", u(g.stride.h, "stride")?),
        ("SX", u(g.stride.w, "stride")?),
        ("ROWS", u(rows, "phase rows")?),
        ("COLS", u(cols, "phase columns")?),
    ];
    let mut pass = Pass::new(&SPEC, [gx.into()], 0).with_constants(&constants);
    let mut p = ConvParams::new(g)?;
    let wg = SPEC.workgroup[0] as usize;
    for (first, dims) in runs(SPEC.name, None, elements, wg, [1, 1], 0.0, profile)? {
        p.base = first as u32;
        pass.dispatch(&p, dims)?;
    }
    Ok(pass)
}
