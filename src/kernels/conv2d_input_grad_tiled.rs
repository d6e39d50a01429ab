//! `conv2d_input_grad_tiled`: 4 input channels of one pixel per invocation, on a 3-D grid
//! (columns, rows, batch x channel blocks); every padding mode.

use super::budget;
use super::conv2d_input_grad;
use super::grid::{fits, runs};
use super::plan::{Buf, Pass};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms::ConvParams;
use crate::error::Result;
use crate::options::Conv2dGeometry;

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "conv2d_input_grad_tiled",
    preludes: &["conv2d_common"],
    source: shader!("conv2d_common", "conv2d_input_grad_tiled"),
    workgroup: [8, 8, 1],
    bindings: &[Access::Read, Access::Read, Access::Write],
    uniform: Uniform::Conv,
    required: false,
    trusted: false,
};

/// Input channels per invocation.
const CHANNELS: usize = 4;

/// The grid `[columns, rows, batch x channel blocks]`.
fn grid(g: &Conv2dGeometry) -> [usize; 3] {
    let (tx, ty) = (SPEC.workgroup[0] as usize, SPEC.workgroup[1] as usize);
    [
        g.w.div_ceil(tx),
        g.h.div_ceil(ty),
        g.n * g.groups * g.cpg().div_ceil(CHANNELS),
    ]
}

/// Whether the grid's x and y fit (z is cut into dispatches).
pub(crate) fn applies(g: &Conv2dGeometry, profile: &DeviceProfile) -> bool {
    fits(&grid(g)[..2], profile.max_workgroups_per_dimension)
}

/// The pass over `io` = `[w, gy, gx]`. Loop iterations per invocation: the nest candidate rows
/// x columns x kernel rows x kernel columns x output channels (every candidate taken as a
/// match), plus 4 stores; longer scans run as pieces, each adding to the last.
pub(crate) fn pass(g: &Conv2dGeometry, io: [Buf; 3], profile: &DeviceProfile) -> Result<Pass> {
    let mut p = ConvParams::new(g)?;
    let (rows, cols) = conv2d_input_grad::candidates(g);
    let stores = CHANNELS as u64;
    let pieces = budget::split_nest(&[rows, cols, g.kh, g.kw, g.ocpg()], stores);
    let mut pass = Pass::new(&SPEC, io.map(Into::into), budget::worst(&pieces, stores));
    let grid = grid(g);
    let per_z = 2.0 * CHANNELS as f64 * (g.h * g.w * g.ocpg() * g.kh * g.kw) as f64;
    for (i, piece) in pieces.iter().enumerate() {
        p.set_piece(i, piece);
        for (first, dims) in runs(
            SPEC.name,
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
