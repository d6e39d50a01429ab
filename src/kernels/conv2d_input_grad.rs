//! `conv2d_input_grad`: one invocation per input element, the reference input-gradient kernel
//! (every padding mode: it scans the padded positions that may read its pixel).

use super::budget;
use super::grid::runs;
use super::plan::{Buf, Pass};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms::to_u32;
use super::uniforms::ConvParams;
use crate::error::Result;
use crate::options::Conv2dGeometry;
use crate::options::PaddingMode;

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "conv2d_input_grad",
    preludes: &["conv2d_common"],
    source: shader!("conv2d_common", "conv2d_input_grad"),
    workgroup: [64, 1, 1],
    bindings: &[Access::Read, Access::Read, Access::Write],
    uniform: Uniform::Conv,
    required: true,
    trusted: false,
};

/// The candidate positions that may read a pixel, as rows x columns: the pixel itself, and
/// for the padding modes other than zeros every border position.
pub(crate) fn candidates(g: &Conv2dGeometry) -> (usize, usize) {
    if g.padding_mode == PaddingMode::Zeros {
        (1, 1)
    } else {
        (1 + g.pad_top + g.pad_bottom, 1 + g.pad_left + g.pad_right)
    }
}

/// The pass over `io` = `[w, gy, gx]`. Loop iterations per invocation: the nest candidate
/// rows x columns x output channels x kernel rows x kernel columns (every candidate taken as
/// a match, no early exit); longer scans run as pieces, each adding to the last.
pub(crate) fn pass(g: &Conv2dGeometry, io: [Buf; 3], profile: &DeviceProfile) -> Result<Pass> {
    let mut p = ConvParams::new(g)?;
    let total: usize = g.input_shape().iter().product();
    p.total = to_u32(total, "input elements")?;
    let (rows, cols) = candidates(g);
    let pieces = budget::split_nest(&[rows, cols, g.ocpg(), g.kh, g.kw], 0);
    let mut pass = Pass::new(&SPEC, io.map(Into::into), budget::worst(&pieces, 0));
    let per_item = 2.0 * (g.ocpg() * g.kh * g.kw) as f64;
    let wg = SPEC.workgroup[0] as usize;
    for (i, piece) in pieces.iter().enumerate() {
        p.set_piece(i, piece);
        for (first, grid) in runs(SPEC.name, None, total, wg, [0, 0], per_item, profile)? {
            p.base = first as u32;
            pass.dispatch(&p, grid)?;
        }
    }
    Ok(pass)
}
