//! `conv2d_pack_core`: packs a weight into the K-major, zero-padded tiles `conv2d_core` copies
//! (flipped for strict convolution, read across for an input gradient).

use super::conv2d_core::CoreShape;
use super::grid::runs;
use super::plan::{Buf, Pass};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms::{to_u32, ConvParams};
use crate::error::Result;
use crate::options::{Conv2dGeometry, ConvMode};

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "conv2d_pack_core",
    preludes: &["conv2d_common"],
    source: shader!("conv2d_common", "conv2d_pack_core"),
    workgroup: [64, 1, 1],
    bindings: &[Access::Read, Access::Write],
    uniform: Uniform::Conv,
    required: false,
    trusted: false,
};

/// The override constants (the shader's `override` declarations): `g`'s groups and channels,
/// its kernel, whether it is flipped, and whether `w` holds a layer's weight read across.
fn pack_constants(g: &Conv2dGeometry, transposed: bool) -> Result<Vec<(&'static str, u32)>> {
    Ok(vec![
        ("GROUPS", to_u32(g.groups, "groups")?),
        ("CPG", to_u32(g.cpg(), "input channels per group")?),
        ("OCPG", to_u32(g.ocpg(), "output channels per group")?),
        ("KH", to_u32(g.kh, "kernel height")?),
        ("KW", to_u32(g.kw, "kernel width")?),
        ("FLIP", u32::from(g.mode == ConvMode::Convolution)),
        ("TRANSPOSED", u32::from(transposed)),
    ])
}

/// The pass writing `packed` (the core's tiles for `g`, `s`) from the weight `w`: one invocation
/// per packed float, no loops. `transposed`: `w` is the weight of the layer whose input gradient
/// `g` is, `[groups * g.cpg(), g.ocpg(), KH, KW]`.
pub(crate) fn pass(
    g: &Conv2dGeometry,
    s: &CoreShape,
    w: Buf,
    packed: Buf,
    transposed: bool,
    profile: &DeviceProfile,
) -> Result<Pass> {
    let floats = s.packed_floats();
    to_u32(floats, "packed weight floats")?;
    let mut pass = Pass::new(&SPEC, [w.into(), packed.into()], 0)
        .with_constants(&pack_constants(g, transposed)?);
    let mut p = ConvParams::new(g)?;
    let wg = SPEC.workgroup[0] as usize;
    for (first, dims) in runs(SPEC.name, None, floats, wg, [1, 1], 1.0, profile)? {
        p.base = first as u32;
        pass.dispatch(&p, dims)?;
    }
    Ok(pass)
}
