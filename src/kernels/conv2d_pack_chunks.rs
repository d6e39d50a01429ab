//! `conv2d_pack_chunks`: packs a weight into the uniform chunks of `conv2d_forward_gemm` (each
//! chunk: [`conv2d_forward_gemm::CHUNK_TAPS`] taps of one block of 8 output channels, with the
//! taps' offsets into the padded copies).

use super::grid::spread;
use super::plan::{Buf, Pass};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms::GemmParams;
use crate::error::Result;

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "conv2d_pack_chunks",
    preludes: &["conv2d_common", "conv2d_gemm_common"],
    source: shader!("conv2d_common", "conv2d_gemm_common", "conv2d_pack_chunks"),
    workgroup: [64, 1, 1],
    bindings: &[Access::Read, Access::Write],
    uniform: Uniform::Gemm,
    required: false,
    trusted: false,
};

/// The pass writing `chunks` (`words` u32s) from the weight `w`: one invocation per word, no
/// loops.
pub(crate) fn pass(
    gp: &GemmParams,
    w: Buf,
    chunks: Buf,
    words: usize,
    profile: &DeviceProfile,
) -> Result<Pass> {
    let mut pass = Pass::new(&SPEC, [w.into(), chunks.into()], 0);
    // one dispatch: the kernel reads no base, so its grid is spread over x and y
    let wg = SPEC.workgroup[0] as usize;
    let grid = spread(
        words.div_ceil(wg),
        profile.max_workgroups_per_dimension,
        SPEC.name,
    )?;
    pass.dispatch(gp, grid)?;
    Ok(pass)
}
