//! `conv2d_pad_copies`: the padded copies of an input that the GEMM and planes kernels read
//! (see `shaders/conv2d_gemm_common.wgsl`).

use super::grid::{fits, runs};
use super::plan::{Buf, Pass, Plan};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms;
use super::uniforms::GemmParams;
use crate::error::Result;

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "conv2d_pad_copies",
    preludes: &["conv2d_common", "conv2d_gemm_common"],
    source: shader!("conv2d_common", "conv2d_gemm_common", "conv2d_pad_copies"),
    workgroup: [8, 8, 1],
    bindings: &[Access::Read, Access::Write],
    uniform: Uniform::Gemm,
    required: false,
    trusted: false,
};

/// Columns of a padded row one workgroup writes: 4 per invocation, 8 invocations across.
const COLUMNS_PER_WORKGROUP: usize = 32;
/// Loop iterations per invocation: one per residue of the stride.
const LOOP_ITERATIONS: u64 = uniforms::MAX_COPY_STRIDE as u64;

/// Adds the copies of `src` that `gp` describes to `plan`, with a zero region after them where
/// `zeros`, and returns the buffer to read: `src` itself where it is its own only copy, else
/// the copies. `None` where they would pass the binding limit or the grid the dispatch limit.
pub(crate) fn copies(
    plan: &mut Plan,
    profile: &DeviceProfile,
    gp: &GemmParams,
    src: Buf,
    zeros: bool,
) -> Result<Option<Buf>> {
    let (wq, hp) = (gp.wq as usize, gp.hp as usize);
    let xy = [
        wq.div_ceil(COLUMNS_PER_WORKGROUP),
        hp.div_ceil(SPEC.workgroup[1] as usize),
    ];
    if !fits(&xy, profile.max_workgroups_per_dimension) {
        plan.reason(format!("padded copies: grid {xy:?} too wide"));
        return Ok(None);
    }
    // the input is its own only copy where nothing is padded or inserted, the stride is 1
    // and rows are whole vec4s
    let s = gp.shape;
    let plain = s.stride_w == 1 && gp.up_h == 1 && gp.up_w == 1;
    if gp.copy_mask == 1 && plain && gp.hp == s.h && gp.wq == s.w && !zeros {
        return Ok(Some(src));
    }
    let slots = u64::from(gp.copy_mask.count_ones());
    let copy_bytes = u64::from(gp.copy_len) * uniforms::FLOAT_BYTES;
    let bytes = copy_bytes * (slots + u64::from(zeros));
    let Some(buf) = plan.scratch(profile, "wgpu-conv: padded copies", bytes, false) else {
        plan.reason(format!(
            "padded copies: {bytes} bytes pass the binding limit of {}",
            profile.max_binding_bytes
        ));
        return Ok(None);
    };
    if zeros {
        if let Some(s) = plan.scratch.last_mut() {
            s.zero_from = Some(copy_bytes * slots);
        }
    }
    let upsampled = gp.up_h > 1 || gp.up_w > 1;
    let mut pass = Pass::new(&SPEC, [src.into(), buf.into()], LOOP_ITERATIONS)
        .with_constants(&[("UPSAMPLED", u32::from(upsampled))]);
    let planes = (s.n * s.c) as usize;
    let per_plane = (slots as usize * hp * wq) as f64;
    let mut gp = *gp;
    for (first, grid) in runs(SPEC.name, Some(2), planes, 1, xy, per_plane, profile)? {
        gp.base = first as u32;
        pass.dispatch(&gp, grid)?;
    }
    plan.passes.push(pass);
    Ok(Some(buf))
}
