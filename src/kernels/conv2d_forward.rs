//! `conv2d_forward`: one invocation per output element, the reference forward kernel.

use super::budget;
use super::grid::runs;
use super::plan::{Buf, Pass};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms::to_u32;
use super::uniforms::ConvParams;
use crate::error::Result;
use crate::options::Conv2dGeometry;

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "conv2d_forward",
    preludes: &["conv2d_common"],
    source: shader!("conv2d_common", "conv2d_forward"),
    workgroup: [64, 1, 1],
    bindings: &[Access::Read, Access::Read, Access::Read, Access::Write],
    uniform: Uniform::Conv,
    required: true,
    trusted: false,
};

/// The pass over `io` = `[x, w, bias, y]`. Loop iterations per invocation: the nest input
/// channels x kernel rows x kernel columns, `cpg + cpg*kh + cpg*kh*kw`; longer nests run as
/// pieces, each dispatch adding to the output of the one before (see [`budget`]).
pub(crate) fn pass(
    g: &Conv2dGeometry,
    io: [Buf; 4],
    has_bias: bool,
    profile: &DeviceProfile,
) -> Result<Pass> {
    let mut p = ConvParams::new(g)?;
    let total: usize = g.output_shape().iter().product();
    p.total = to_u32(total, "output elements")?;
    let pieces = budget::split_nest(&[g.cpg(), g.kh, g.kw], 0);
    let mut pass = Pass::new(&SPEC, io.map(Into::into), budget::worst(&pieces, 0));
    let wg = SPEC.workgroup[0] as usize;
    let flops = 2.0 * g.taps() as f64;
    for (i, piece) in pieces.iter().enumerate() {
        p.set_piece(i, piece);
        p.has_bias = u32::from(has_bias && i == 0);
        for (first, grid) in runs(SPEC.name, None, total, wg, [0, 0], flops, profile)? {
            p.base = first as u32;
            pass.dispatch(&p, grid)?;
        }
    }
    Ok(pass)
}
