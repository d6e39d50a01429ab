//! `conv2d_unpad_output`: copies an output whose rows were padded to whole vec4s into the
//! output.

use super::grid::runs;
use super::plan::{Buf, Pass};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms::GemmParams;
use crate::error::Result;
use crate::options::Conv2dGeometry;

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "conv2d_unpad_output",
    preludes: &["conv2d_common", "conv2d_gemm_common"],
    source: shader!("conv2d_common", "conv2d_gemm_common", "conv2d_unpad_output"),
    workgroup: [8, 8, 1],
    bindings: &[Access::Read, Access::Write],
    uniform: Uniform::Gemm,
    required: false,
    trusted: false,
};

/// The pass copying `padded` into `y`: one invocation per output element, no loops, on a grid
/// of columns x rows x planes.
pub(crate) fn pass(
    g: &Conv2dGeometry,
    gp: &GemmParams,
    padded: Buf,
    y: Buf,
    profile: &DeviceProfile,
) -> Result<Pass> {
    let mut pass = Pass::new(&SPEC, [padded.into(), y.into()], 0);
    let (tx, ty) = (SPEC.workgroup[0] as usize, SPEC.workgroup[1] as usize);
    let xy = [g.ow.div_ceil(tx), g.oh.div_ceil(ty)];
    let mut gp = *gp;
    for (first, grid) in runs(SPEC.name, Some(2), g.n * g.oc, 1, xy, 0.0, profile)? {
        gp.base = first as u32;
        pass.dispatch(&gp, grid)?;
    }
    Ok(pass)
}
