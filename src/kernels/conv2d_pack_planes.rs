//! `conv2d_pack_planes`: packs a weight into the per-channel uniform blocks of
//! `conv2d_forward_planes`.

use super::conv2d_forward_planes;
use super::grid::spread;
use super::plan::{Buf, Pass};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms::GemmParams;
use crate::error::Result;
use crate::options::Conv2dGeometry;

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "conv2d_pack_planes",
    preludes: &["conv2d_common", "conv2d_gemm_common"],
    source: shader!("conv2d_common", "conv2d_gemm_common", "conv2d_pack_planes"),
    workgroup: [64, 1, 1],
    bindings: &[Access::Read, Access::Write],
    uniform: Uniform::Gemm,
    required: false,
    trusted: false,
};

/// The pass writing `planes` from the weight `w`: one invocation per word of the blocks, no
/// loops, in one dispatch (the kernel reads no base).
pub(crate) fn pass(
    g: &Conv2dGeometry,
    gp: &GemmParams,
    w: Buf,
    planes: Buf,
    profile: &DeviceProfile,
) -> Result<Pass> {
    let words = g.oc * (conv2d_forward_planes::PLANE_BYTES / 4) as usize;
    let mut pass = Pass::new(&SPEC, [w.into(), planes.into()], 0);
    let wg = SPEC.workgroup[0] as usize;
    let grid = spread(
        words.div_ceil(wg),
        profile.max_workgroups_per_dimension,
        SPEC.name,
    )?;
    pass.dispatch(gp, grid)?;
    Ok(pass)
}
