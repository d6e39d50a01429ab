//! `conv2d_forward_rows`: 16 pixels of one output channel per invocation, for layers with one
//! output channel per group, on a 3-D grid (columns, rows, batch x channels).

use super::conv2d_forward_tiled;
use super::grid::fits;
use super::plan::{Buf, Pass};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use crate::error::Result;
use crate::options::Conv2dGeometry;

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "conv2d_forward_rows",
    preludes: &["conv2d_common"],
    source: shader!("conv2d_common", "conv2d_forward_rows"),
    workgroup: [8, 8, 1],
    bindings: &[Access::Read, Access::Read, Access::Read, Access::Write],
    uniform: Uniform::Conv,
    required: false,
    trusted: false,
};

/// Output pixels per invocation.
const PIXELS: usize = 16;
/// Loop iterations besides the nest: 4 vec4 stores of 4.
const STORES: u64 = 4 + 16;

/// The grid `[columns, rows, batch x channels]`.
pub(crate) fn grid(g: &Conv2dGeometry) -> [usize; 3] {
    let (tx, ty) = (SPEC.workgroup[0] as usize, SPEC.workgroup[1] as usize);
    [
        g.ow.div_ceil(PIXELS).div_ceil(tx),
        g.oh.div_ceil(ty),
        g.n * g.oc,
    ]
}

/// Where it applies: one output channel per group, and a grid whose x and y fit.
pub(crate) fn applies(g: &Conv2dGeometry, profile: &DeviceProfile) -> bool {
    g.ocpg() == 1 && fits(&grid(g)[..2], profile.max_workgroups_per_dimension)
}

/// The pass over `io` = `[x, w, bias, y]`.
pub(crate) fn pass(
    g: &Conv2dGeometry,
    io: [Buf; 4],
    has_bias: bool,
    profile: &DeviceProfile,
) -> Result<Pass> {
    conv2d_forward_tiled::blocked(&SPEC, g, grid(g), 1, STORES, io, has_bias, profile)
}
