//! `conv2d_pack_core`: packs a weight into the K-major, zero-padded tiles `conv2d_core` copies
//! (flipped for strict convolution, read across for an input gradient, a phase's taps of a
//! strided layer's kernel for its input gradient).

use super::conv2d_core::CoreShape;
use super::grid::runs;
use super::plan::{Buf, Pass};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms::{to_u32, ConvParams};
use crate::error::Result;
use crate::options::{Conv2dGeometry, ConvMode, Hw};

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

/// Which of a layer's kernel taps each packed tap reads (`A0`, `AS`, ... in the shader): packed
/// tap `(j, i)` (counted from the last where `reverse`) reads the layer's row
/// `first.h + j * step.h` and column `first.w + i * step.w` (counted from the last where
/// `mirror`) of its `layer` kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Taps {
    pub layer: Hw,
    pub first: Hw,
    pub step: Hw,
    pub reverse: bool,
    pub mirror: bool,
}

impl Taps {
    /// Every tap of `g`'s kernel, flipped for a strict convolution.
    pub(crate) fn all(g: &Conv2dGeometry) -> Self {
        Self {
            layer: Hw::new(g.kh, g.kw),
            first: Hw::new(0, 0),
            step: Hw::new(1, 1),
            reverse: g.mode == ConvMode::Convolution,
            mirror: false,
        }
    }
}

/// The override constants (the shader's `override` declarations): `g`'s groups and channels,
/// its kernel, the layer taps it reads, and whether `w` holds a layer's weight read across.
fn pack_constants(
    g: &Conv2dGeometry,
    taps: &Taps,
    transposed: bool,
) -> Result<Vec<(&'static str, u32)>> {
    let u = |v: usize, what: &str| to_u32(v, what);
    Ok(vec![
        ("GROUPS", u(g.groups, "groups")?),
        ("CPG", u(g.cpg(), "input channels per group")?),
        ("OCPG", u(g.ocpg(), "output channels per group")?),
        ("KH", u(g.kh, "kernel height")?),
        ("KW", u(g.kw, "kernel width")?),
        ("LKH", u(taps.layer.h, "kernel height")?),
        ("LKW", u(taps.layer.w, "kernel width")?),
        ("A0", u(taps.first.h, "kernel row")?),
        ("AS", u(taps.step.h, "kernel row step")?),
        ("B0", u(taps.first.w, "kernel column")?),
        ("BS", u(taps.step.w, "kernel column step")?),
        ("REVERSE", u32::from(taps.reverse)),
        ("MIRROR", u32::from(taps.mirror)),
        ("TRANSPOSED", u32::from(transposed)),
    ])
}

/// The pass writing `packed` (the core's tiles for `g`, `s`) from the weight `w`'s `taps`: one
/// invocation per packed float, no loops. `transposed`: `w` is the weight of the layer whose
/// input gradient `g` is, `[groups * g.cpg(), g.ocpg(), LKH, LKW]`.
pub(crate) fn pass(
    g: &Conv2dGeometry,
    s: &CoreShape,
    [w, packed]: [Buf; 2],
    taps: &Taps,
    transposed: bool,
    profile: &DeviceProfile,
) -> Result<Pass> {
    let floats = s.packed_floats();
    to_u32(floats, "packed weight floats")?;
    let mut pass = Pass::new(&SPEC, [w.into(), packed.into()], 0)
        .with_constants(&pack_constants(g, taps, transposed)?);
    let mut p = ConvParams::new(g)?;
    let wg = SPEC.workgroup[0] as usize;
    for (first, dims) in runs(SPEC.name, None, floats, wg, [1, 1], 1.0, profile)? {
        p.base = first as u32;
        pass.dispatch(&p, dims)?;
    }
    Ok(pass)
}
