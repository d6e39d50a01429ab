//! `conv2d_input_grad_phase`: the input gradient of a strided layer with at most 4 input
//! channels per group (the GPU family), as stride x stride dense correlations of the output
//! gradient with the kernel's phases, in one dispatch with the phase as a grid axis: no
//! inserted zero is multiplied (see its shader).

use super::budget;
use super::grid::{fits, runs};
use super::model::KernelModel;
use super::plan::{Buf, Pass};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms::{layer_constants, to_u32, ConvParams};
use crate::error::Result;
use crate::options::{Conv2dGeometry, ConvMode, Hw, PaddingMode};

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "conv2d_input_grad_phase",
    preludes: &["conv2d_common", "conv2d_layer_common"],
    source: shader!(
        "conv2d_common",
        "conv2d_layer_common",
        "conv2d_input_grad_phase"
    ),
    workgroup: [64, 1, 1],
    bindings: &[Access::Read, Access::Read, Access::Write],
    uniform: Uniform::Conv,
    required: false,
    trusted: true,
};

/// Columns of a phase row per invocation (`PX` in the shader), and the most input channels per
/// group it holds sums for.
pub(crate) const PX: usize = 8;
pub(crate) const MAX_CPG: usize = 4;
/// Loop iterations besides the channel loop: the stores (8 columns of each channel).
const STORES: u64 = (PX * MAX_CPG) as u64;

/// The first index and the count of an axis of length `n` (padding `pad`, stride `s`) in phase
/// `r` (`first_of`, `count_of` in the shader).
fn phase_axis(r: usize, s: usize, pad: usize, n: usize) -> (usize, usize) {
    let f = (r + s - pad % s) % s;
    (f, if f < n { (n - f).div_ceil(s) } else { 0 })
}

/// Items (a row and a block of 8 columns) of the phase with the most.
fn most_items(g: &Conv2dGeometry) -> usize {
    let mut most = 0;
    for ry in 0..g.stride.h {
        for rx in 0..g.stride.w {
            let rows = phase_axis(ry, g.stride.h, g.pad_top, g.h).1;
            let cols = phase_axis(rx, g.stride.w, g.pad_left, g.w).1;
            most = most.max(rows * cols.div_ceil(PX));
        }
    }
    most
}

/// Whether it applies: a stride, few input channels per group, dilation 1, zero padding,
/// cross-correlation; the grid fits.
pub(crate) fn applies(g: &Conv2dGeometry, profile: &DeviceProfile) -> Result<(), String> {
    if g.stride == Hw::new(1, 1) {
        return Err("stride 1: no phases".into());
    }
    if g.cpg() > MAX_CPG {
        return Err(format!(
            "{} input channels per group (> {MAX_CPG})",
            g.cpg()
        ));
    }
    if g.dilation != Hw::new(1, 1)
        || g.padding_mode != PaddingMode::Zeros
        || g.mode != ConvMode::CrossCorrelation
    {
        return Err("a dilation, a padding mode other than zeros, or strict convolution".into());
    }
    let dims = [g.stride.h * g.stride.w, g.n * g.groups];
    if !fits(&dims, profile.max_workgroups_per_dimension) {
        return Err(format!("grid {dims:?} passes the dispatch limit"));
    }
    Ok(())
}

/// The pass over `io` = `[w, gy, gx]`. Loop iterations per invocation: per output channel of
/// the group, the phase's kernel rows and, per row, its columns; then the stores. Output
/// channels past the loop budget run as pieces, each adding to the last.
pub(crate) fn pass(g: &Conv2dGeometry, io: [Buf; 3], profile: &DeviceProfile) -> Result<Pass> {
    let mut p = ConvParams::new(g)?;
    to_u32(g.n * g.c * g.h * g.w, "input elements")?;
    let (a, b) = (g.kh.div_ceil(g.stride.h), g.kw.div_ceil(g.stride.w));
    let pieces = budget::split_nest(&[g.ocpg(), a + a * b], STORES);
    let mut pass = Pass::new(&SPEC, io.map(Into::into), budget::worst(&pieces, STORES))
        .with_constants(&layer_constants(g)?)
        .with_model(model(g));
    let items = most_items(g).div_ceil(64);
    // FLOPs per run of 64 items (8 columns x CPG sums x every tap of the phase and channel)
    let per =
        2.0 * (64 * PX * g.cpg() * g.ocpg() * a * b) as f64 * (g.stride.h * g.stride.w) as f64;
    for (i, piece) in pieces.iter().enumerate() {
        p.set_piece(i, &piece[..1]);
        for (first, dims) in runs(
            SPEC.name,
            Some(0),
            items,
            1,
            [g.stride.h * g.stride.w, g.n * g.groups],
            per,
            profile,
        )? {
            p.base = first as u32;
            pass.dispatch(&p, dims)?;
        }
    }
    Ok(pass)
}

/// The FMAs it issues: every phase's items x 8 columns x the phase's taps x the channels; the
/// op needs one per input element and tap that reads an output element.
fn model(g: &Conv2dGeometry) -> KernelModel {
    let mut issued = 0usize;
    for ry in 0..g.stride.h {
        for rx in 0..g.stride.w {
            let rows = phase_axis(ry, g.stride.h, g.pad_top, g.h).1;
            let cols = phase_axis(rx, g.stride.w, g.pad_left, g.w).1;
            let a = g.kh.saturating_sub(ry).div_ceil(g.stride.h);
            let b = g.kw.saturating_sub(rx).div_ceil(g.stride.w);
            issued += rows * cols.div_ceil(PX) * PX * a * b;
        }
    }
    let per_group = g.cpg() * g.ocpg() * g.n * g.groups;
    KernelModel {
        useful_fmas: (g.n * g.oc * g.oh * g.ow * g.taps()) as f64,
        issued_fmas: (issued * per_group) as f64,
        fma_per_wgmem_word: None,
        fma_per_barrier: None,
        wgmem_store_conflict: None,
        gather_sectors_per_warp_load: None,
    }
}
