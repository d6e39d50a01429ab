//! `conv2d_forward_tiled`: 8 output channels x 4 pixels per invocation, on a 3-D grid (columns,
//! rows, batch x channel blocks).

use super::budget;
use super::grid::{fits, runs};
use super::plan::{Buf, Pass};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms::ConvParams;
use crate::error::Result;
use crate::options::Conv2dGeometry;

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "conv2d_forward_tiled",
    preludes: &["conv2d_common"],
    source: shader!("conv2d_common", "conv2d_forward_tiled"),
    workgroup: [8, 8, 1],
    bindings: &[Access::Read, Access::Read, Access::Read, Access::Write],
    uniform: Uniform::Conv,
    required: false,
    trusted: false,
};

/// Output channels per invocation.
const CHANNELS: usize = 8;
/// Output pixels per invocation.
const PIXELS: usize = 4;
/// Loop iterations besides the nest: the 8 x 4 stores and their 8 channel rows.
const STORES: u64 = (CHANNELS + CHANNELS * PIXELS) as u64;

/// The grid `[columns, rows, batch x channel blocks]`.
pub(crate) fn grid(g: &Conv2dGeometry) -> [usize; 3] {
    let (tx, ty) = (SPEC.workgroup[0] as usize, SPEC.workgroup[1] as usize);
    [
        g.ow.div_ceil(PIXELS).div_ceil(tx),
        g.oh.div_ceil(ty),
        g.n * g.groups * g.ocpg().div_ceil(CHANNELS),
    ]
}

/// Whether the grid's x and y fit (z is cut into dispatches).
pub(crate) fn applies(g: &Conv2dGeometry, profile: &DeviceProfile) -> bool {
    fits(&grid(g)[..2], profile.max_workgroups_per_dimension)
}

/// The pass over `io` = `[x, w, bias, y]`.
pub(crate) fn pass(
    g: &Conv2dGeometry,
    io: [Buf; 4],
    has_bias: bool,
    profile: &DeviceProfile,
) -> Result<Pass> {
    blocked(&SPEC, g, grid(g), CHANNELS, STORES, io, has_bias, profile)
}

/// A pass of a blocked forward kernel (this one or `conv2d_forward_rows`) on `grid`, each z
/// item `channels` output planes. Loop iterations per invocation: the nest input channels x
/// kernel rows x kernel columns, plus `stores`; longer nests run as pieces, each adding to
/// the last.
#[allow(clippy::too_many_arguments)]
pub(crate) fn blocked(
    spec: &'static KernelSpec,
    g: &Conv2dGeometry,
    grid: [usize; 3],
    channels: usize,
    stores: u64,
    io: [Buf; 4],
    has_bias: bool,
    profile: &DeviceProfile,
) -> Result<Pass> {
    let mut p = ConvParams::new(g)?;
    let pieces = budget::split_nest(&[g.cpg(), g.kh, g.kw], stores);
    let mut pass = Pass::new(spec, io.map(Into::into), budget::worst(&pieces, stores));
    let per_z = 2.0 * channels as f64 * (g.oh * g.ow) as f64 * g.taps() as f64;
    for (i, piece) in pieces.iter().enumerate() {
        p.set_piece(i, piece);
        p.has_bias = u32::from(has_bias && i == 0);
        for (first, dims) in runs(
            spec.name,
            Some(2),
            grid[2],
            1,
            [grid[0], grid[1]],
            per_z,
            profile,
        )? {
            p.base = first as u32;
            pass.dispatch(&p, dims)?;
        }
    }
    Ok(pass)
}
