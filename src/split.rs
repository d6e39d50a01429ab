//! Work too large for one binding (or one dispatch) is cut into pieces that fit: batch slices,
//! bands of output rows (the input band is cut with its halo and padded on the host, so every
//! padding mode stays exact), and output-channel blocks (one group only). Pieces are run in a
//! fixed order and their gradients added in that order, so results stay deterministic.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::Algorithm;
use crate::ops::{RawGrads, Wanted};
use crate::options::{Conv2dGeometry, Conv2dOptions, Padding, PaddingMode};
use crate::tensor::try_zeros;

/// One piece: batch items `n0..n0+nb`, output channels `o0..o0+ob`, output rows `r0..r0+rb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    n0: usize,
    nb: usize,
    o0: usize,
    ob: usize,
    r0: usize,
    rb: usize,
}

fn padded_width(g: &Conv2dGeometry) -> usize {
    g.w + g.pad_left + g.pad_right
}

/// Input rows (padded) that `rb` output rows read.
fn band_rows(g: &Conv2dGeometry, rb: usize) -> usize {
    (rb - 1) * g.stride.h + g.dilation.h * (g.kh - 1) + 1
}

fn bytes(elements: usize) -> u64 {
    elements as u64 * 4
}

/// True when some operand of `g` does not fit one binding of the device.
pub(crate) fn needed(ctx: &GpuContext, g: &Conv2dGeometry) -> bool {
    let limit = ctx.binding_limit();
    [g.input_shape(), g.weight_shape(), g.output_shape()]
        .iter()
        .any(|s| bytes(s.iter().product()) > limit)
}

/// Chooses the piece sizes (batch slice, channel block, row band), halving the batch first,
/// then the rows, then the channels, until every operand of a piece fits.
fn plan(ctx: &GpuContext, g: &Conv2dGeometry) -> Result<(usize, usize, usize)> {
    let limit = ctx.binding_limit();
    let wp = padded_width(g);
    let fits = |nb: usize, ob: usize, rb: usize| {
        bytes(nb * g.c * band_rows(g, rb) * wp) <= limit
            && bytes(nb * ob * rb * g.ow) <= limit
            && bytes(ob * g.cpg() * g.kh * g.kw) <= limit
    };
    let (mut nb, mut ob, mut rb) = (g.n, g.oc, g.oh);
    while bytes(ob * g.cpg() * g.kh * g.kw) > limit {
        if g.groups != 1 || ob == 1 {
            return Err(Error::TooLarge(format!(
                "the weight {:?} does not fit the device's largest binding ({limit} bytes) and cannot be split{}",
                g.weight_shape(),
                if g.groups != 1 { " with groups > 1" } else { "" }
            )));
        }
        ob = ob.div_ceil(2);
    }
    while !fits(nb, ob, rb) {
        if nb > 1 {
            nb = nb.div_ceil(2);
        } else if rb > 1 {
            rb = rb.div_ceil(2);
        } else if ob > 1 && g.groups == 1 {
            ob = ob.div_ceil(2);
        } else {
            return Err(Error::TooLarge(format!(
                "one output row of {:?} does not fit the device's largest binding ({limit} bytes)",
                g.output_shape()
            )));
        }
    }
    Ok((nb, ob, rb))
}

fn pieces(ctx: &GpuContext, g: &Conv2dGeometry) -> Result<Vec<Piece>> {
    let (nb, ob, rb) = plan(ctx, g)?;
    let mut out = Vec::new();
    for n0 in (0..g.n).step_by(nb) {
        for o0 in (0..g.oc).step_by(ob) {
            for r0 in (0..g.oh).step_by(rb) {
                out.push(Piece {
                    n0,
                    nb: nb.min(g.n - n0),
                    o0,
                    ob: ob.min(g.oc - o0),
                    r0,
                    rb: rb.min(g.oh - r0),
                });
            }
        }
    }
    Ok(out)
}

/// The geometry of a piece: its padded band, no padding, the same stride, dilation, groups, mode.
fn piece_geometry(g: &Conv2dGeometry, p: &Piece) -> Result<Conv2dGeometry> {
    let opts = Conv2dOptions {
        stride: g.stride,
        padding: Padding::Valid,
        dilation: g.dilation,
        groups: g.groups,
        padding_mode: PaddingMode::Zeros,
        mode: g.mode,
    };
    let pg = opts.resolve(
        [p.nb, g.c, band_rows(g, p.rb), padded_width(g)],
        [p.ob, g.cpg(), g.kh, g.kw],
    )?;
    debug_assert_eq!((pg.oh, pg.ow), (p.rb, g.ow));
    Ok(pg)
}

/// Calls `f(n, c, band_row, band_col, source_index)` for every element of a piece's padded
/// input band whose value comes from the input (not a zero of the padding).
fn for_band(g: &Conv2dGeometry, p: &Piece, mut f: impl FnMut(usize, usize, usize, usize, usize)) {
    let rows = band_rows(g, p.rb);
    let wp = padded_width(g);
    let row0 = p.r0 * g.stride.h;
    for n in 0..p.nb {
        for c in 0..g.c {
            for r in 0..rows {
                let Some(sy) = g
                    .padding_mode
                    .source((row0 + r) as isize - g.pad_top as isize, g.h)
                else {
                    continue;
                };
                for q in 0..wp {
                    let Some(sx) = g.padding_mode.source(q as isize - g.pad_left as isize, g.w)
                    else {
                        continue;
                    };
                    f(n, c, r, q, (((p.n0 + n) * g.c + c) * g.h + sy) * g.w + sx);
                }
            }
        }
    }
}

fn band_input(g: &Conv2dGeometry, p: &Piece, x: &[f32]) -> Result<Vec<f32>> {
    let (rows, wp) = (band_rows(g, p.rb), padded_width(g));
    let mut band = try_zeros(p.nb * g.c * rows * wp, "split: input band")?;
    for_band(g, p, |n, c, r, q, src| {
        band[((n * g.c + c) * rows + r) * wp + q] = x[src]
    });
    Ok(band)
}

/// Copies the `[nb, ob, rb, OW]` block of a full `[N, OC, OH, OW]` tensor out, or back in.
fn block_indices(g: &Conv2dGeometry, p: &Piece) -> impl Iterator<Item = (usize, usize)> {
    let (g, p) = (*g, *p);
    (0..p.nb).flat_map(move |n| {
        (0..p.ob).flat_map(move |o| {
            (0..p.rb).map(move |r| {
                let local = ((n * p.ob + o) * p.rb + r) * g.ow;
                let full = (((p.n0 + n) * g.oc + p.o0 + o) * g.oh + p.r0 + r) * g.ow;
                (local, full)
            })
        })
    })
}

fn weight_block<'a>(g: &Conv2dGeometry, p: &Piece, w: &'a [f32]) -> &'a [f32] {
    let per = g.cpg() * g.kh * g.kw;
    &w[p.o0 * per..(p.o0 + p.ob) * per]
}

/// The forward pass, piece by piece.
pub(crate) fn forward(
    ctx: &GpuContext,
    g: &Conv2dGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    algorithm: Algorithm,
) -> Result<Vec<f32>> {
    let mut y = try_zeros(g.output_shape().iter().product(), "split: output")?;
    for p in pieces(ctx, g)? {
        let pg = piece_geometry(g, &p)?;
        let out = ctx.forward_raw(
            &pg,
            &band_input(g, &p, x)?,
            weight_block(g, &p, w),
            bias.map(|b| &b[p.o0..p.o0 + p.ob]),
            algorithm,
        )?;
        for (local, full) in block_indices(g, &p) {
            y[full..full + g.ow].copy_from_slice(&out[local..local + g.ow]);
        }
    }
    Ok(y)
}

/// The gradients, piece by piece: weight and bias gradients added up in piece order, the input
/// gradient of each padded band folded back onto the pixels it was read from.
pub(crate) fn backward(
    ctx: &GpuContext,
    g: &Conv2dGeometry,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    wanted: Wanted,
    algorithm: Algorithm,
) -> Result<RawGrads> {
    let per = g.cpg() * g.kh * g.kw;
    let mut gw = wanted
        .weight
        .then(|| try_zeros(g.oc * per, "split: weight gradient"))
        .transpose()?;
    let mut gx = wanted
        .input
        .then(|| try_zeros(g.input_shape().iter().product(), "split: input gradient"))
        .transpose()?;
    let mut gb = wanted
        .bias
        .then(|| try_zeros(g.oc, "split: bias gradient"))
        .transpose()?;
    for p in pieces(ctx, g)? {
        let pg = piece_geometry(g, &p)?;
        let mut gy_piece = try_zeros(p.nb * p.ob * p.rb * g.ow, "split: output gradient piece")?;
        for (local, full) in block_indices(g, &p) {
            gy_piece[local..local + g.ow].copy_from_slice(&gy[full..full + g.ow]);
        }
        let (pw, px, pb) = ctx.backward_raw(
            &pg,
            &band_input(g, &p, x)?,
            weight_block(g, &p, w),
            &gy_piece,
            wanted,
            algorithm,
        )?;
        if let (Some(acc), Some(part)) = (gw.as_mut(), pw) {
            for (a, v) in acc[p.o0 * per..(p.o0 + p.ob) * per].iter_mut().zip(part) {
                *a += v;
            }
        }
        if let (Some(acc), Some(part)) = (gb.as_mut(), pb) {
            for (a, v) in acc[p.o0..p.o0 + p.ob].iter_mut().zip(part) {
                *a += v;
            }
        }
        if let (Some(acc), Some(part)) = (gx.as_mut(), px) {
            let (rows, wp) = (band_rows(g, p.rb), padded_width(g));
            for_band(g, &p, |n, c, r, q, src| {
                acc[src] += part[((n * g.c + c) * rows + r) * wp + q]
            });
        }
    }
    Ok((gw, gx, gb))
}
