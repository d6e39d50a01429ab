//! Work too large for one binding is cut into pieces that fit: batch slices, bands of output
//! rows (the input band is cut with its halo and padded on the host, so every padding mode
//! stays exact), and output-channel blocks (one group only). A planner: the pieces depend on
//! the geometry and the binding limit alone, and the caller runs each piece (`ops` on the GPU,
//! the tests with the CPU twins). Pieces run in a fixed order and their gradients are added in
//! that order, so results stay deterministic.

use crate::error::{Error, Limit, Result};
use crate::grads::{RawGrads, Wanted};
use crate::options::{Conv2dGeometry, Conv2dOptions, Padding, PaddingMode};
use crate::tensor::try_zeros;

/// One piece: batch items `n0..n0+nb`, output channels `o0..o0+ob`, output rows `r0..r0+rb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Piece {
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

/// The largest operand of `g` that does not fit one binding of `limit` bytes: its name and
/// bytes, or `None` where every operand fits.
pub(crate) fn needed(g: &Conv2dGeometry, limit: u64) -> Option<(&'static str, u64)> {
    [
        ("input", g.input_shape()),
        ("weight", g.weight_shape()),
        ("output", g.output_shape()),
    ]
    .into_iter()
    .map(|(what, s)| (what, bytes(s.iter().product())))
    .filter(|&(_, b)| b > limit)
    .max_by_key(|&(_, b)| b)
}

/// Chooses the piece sizes (batch slice, channel block, row band), halving the batch first,
/// then the rows, then the channels, until every operand of a piece fits `limit` bytes.
fn sizes(g: &Conv2dGeometry, limit: u64) -> Result<(usize, usize, usize)> {
    let wp = padded_width(g);
    let fits = |nb: usize, ob: usize, rb: usize| {
        bytes(nb * g.c * band_rows(g, rb) * wp) <= limit
            && bytes(nb * ob * rb * g.ow) <= limit
            && bytes(ob * g.cpg() * g.kh * g.kw) <= limit
    };
    let (mut nb, mut ob, mut rb) = (g.n, g.oc, g.oh);
    while bytes(ob * g.cpg() * g.kh * g.kw) > limit {
        if g.groups != 1 || ob == 1 {
            return Err(Error::too_large(
                format!(
                    "the weight {:?}, which cannot be split{}",
                    g.weight_shape(),
                    if g.groups != 1 {
                        " with groups > 1"
                    } else {
                        " further"
                    }
                ),
                Limit::Binding,
                bytes(ob * g.cpg() * g.kh * g.kw),
                limit,
            ));
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
            return Err(Error::too_large(
                format!(
                    "one output row of {:?} with its input band",
                    g.output_shape()
                ),
                Limit::Binding,
                bytes(g.c * band_rows(g, 1) * wp).max(bytes(g.ow)),
                limit,
            ));
        }
    }
    Ok((nb, ob, rb))
}

/// The pieces of `g` for a binding limit of `limit` bytes, in the order they run.
pub(crate) fn pieces(g: &Conv2dGeometry, limit: u64) -> Result<Vec<Piece>> {
    let (nb, ob, rb) = sizes(g, limit)?;
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
pub(crate) fn piece_geometry(g: &Conv2dGeometry, p: &Piece) -> Result<Conv2dGeometry> {
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

/// Why `g` is split for `limit`, and into what: one line for plans, or `None` where it is not.
pub(crate) fn describe(g: &Conv2dGeometry, limit: u64) -> Result<Option<String>> {
    let Some((what, b)) = needed(g, limit) else {
        return Ok(None);
    };
    let (nb, ob, rb) = sizes(g, limit)?;
    let count = g.n.div_ceil(nb) * g.oc.div_ceil(ob) * g.oh.div_ceil(rb);
    Ok(Some(format!(
        "split: the {what} ({b} bytes) passes the binding limit ({limit} bytes): {count} \
         piece{} of {nb} batch item{}, {ob} output channel{}, {rb} output row{}",
        if count == 1 { "" } else { "s" },
        if nb == 1 { "" } else { "s" },
        if ob == 1 { "" } else { "s" },
        if rb == 1 { "" } else { "s" },
    )))
}

/// The forward pass, piece by piece: `run(piece geometry, input band, weight block, bias
/// block)` computes each piece's output.
pub(crate) fn forward(
    g: &Conv2dGeometry,
    limit: u64,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    mut run: impl FnMut(&Conv2dGeometry, &[f32], &[f32], Option<&[f32]>) -> Result<Vec<f32>>,
) -> Result<Vec<f32>> {
    let mut y = try_zeros(g.output_shape().iter().product(), "split: output")?;
    for p in pieces(g, limit)? {
        let pg = piece_geometry(g, &p)?;
        let out = run(
            &pg,
            &band_input(g, &p, x)?,
            weight_block(g, &p, w),
            bias.map(|b| &b[p.o0..p.o0 + p.ob]),
        )?;
        for (local, full) in block_indices(g, &p) {
            y[full..full + g.ow].copy_from_slice(&out[local..local + g.ow]);
        }
    }
    Ok(y)
}

/// The gradients, piece by piece (`run(piece geometry, input band, weight block, output
/// gradient block)` computes each piece's): weight and bias gradients added up in piece order,
/// the input gradient of each padded band folded back onto the pixels it was read from.
pub(crate) fn backward(
    g: &Conv2dGeometry,
    limit: u64,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    wanted: Wanted,
    mut run: impl FnMut(&Conv2dGeometry, &[f32], &[f32], &[f32]) -> Result<RawGrads>,
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
    for p in pieces(g, limit)? {
        let pg = piece_geometry(g, &p)?;
        let mut gy_piece = try_zeros(p.nb * p.ob * p.rb * g.ow, "split: output gradient piece")?;
        for (local, full) in block_indices(g, &p) {
            gy_piece[local..local + g.ow].copy_from_slice(&gy[full..full + g.ow]);
        }
        let (pw, px, pb) = run(
            &pg,
            &band_input(g, &p, x)?,
            weight_block(g, &p, w),
            &gy_piece,
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

#[cfg(test)]
mod tests {
    //! The pieces, run with the CPU twins, give the CPU twin's result for the whole: no GPU.

    use super::*;
    use crate::cpu;

    fn data(len: usize, seed: usize) -> Vec<f32> {
        // small integers: every order of f32 additions is exact, so pieces must match exactly
        (0..len)
            .map(|i| ((i * 7 + seed * 13) % 9) as f32 - 4.0)
            .collect()
    }

    fn cases() -> Vec<(Conv2dGeometry, u64)> {
        let o = Conv2dOptions::new;
        let g = |x: [usize; 4], w: [usize; 4], opts: Conv2dOptions| opts.resolve(x, w).unwrap();
        vec![
            // batch slices
            (g([4, 2, 6, 7], [3, 2, 3, 3], o().padding(1)), 700),
            // row bands with every padding mode, stride and dilation
            (
                g(
                    [1, 2, 13, 9],
                    [2, 2, 3, 3],
                    o().padding(2).padding_mode(PaddingMode::Reflect),
                ),
                400,
            ),
            (
                g(
                    [1, 1, 17, 5],
                    [1, 1, 3, 2],
                    o().padding(1).padding_mode(PaddingMode::Circular).stride(2),
                ),
                100,
            ),
            (
                g(
                    [2, 1, 11, 6],
                    [2, 1, 2, 3],
                    o().padding((1, 2))
                        .padding_mode(PaddingMode::Replicate)
                        .dilation((2, 1)),
                ),
                120,
            ),
            // output-channel blocks
            (g([1, 3, 4, 4], [10, 3, 2, 2], o()), 200),
        ]
    }

    #[test]
    fn pieces_cover_every_output_once_and_fit() {
        for (g, limit) in cases() {
            assert!(
                needed(&g, limit).is_some(),
                "{g:?} needs no split at {limit}"
            );
            let mut seen = vec![0u8; g.output_shape().iter().product()];
            for p in pieces(&g, limit).unwrap() {
                let pg = piece_geometry(&g, &p).unwrap();
                assert!(needed(&pg, limit).is_none(), "{pg:?} does not fit {limit}");
                for (_, full) in block_indices(&g, &p) {
                    for s in &mut seen[full..full + g.ow] {
                        *s += 1;
                    }
                }
            }
            assert!(seen.iter().all(|&s| s == 1), "{g:?}");
            assert!(describe(&g, limit).unwrap().unwrap().starts_with("split: "));
        }
    }

    #[test]
    fn split_forward_and_gradients_match_the_whole_on_the_cpu() {
        for (g, limit) in cases() {
            let x = data(g.input_shape().iter().product(), 1);
            let w = data(g.weight_shape().iter().product(), 2);
            let b = data(g.oc, 3);
            let gy = data(g.output_shape().iter().product(), 4);
            let whole = cpu::conv2d_forward(&g, &x, &w, Some(&b)).to_f32();
            let split = forward(&g, limit, &x, &w, Some(&b), |pg, x, w, b| {
                Ok(cpu::conv2d_forward(pg, x, w, b).to_f32())
            })
            .unwrap();
            assert_eq!(split, whole, "forward {g:?}");
            let (gw, gx, gb) = backward(&g, limit, &x, &w, &gy, Wanted::ALL, |pg, x, w, gy| {
                Ok((
                    Some(cpu::conv2d_weight_grad(pg, x, gy).to_f32()),
                    Some(cpu::conv2d_input_grad(pg, w, gy).to_f32()),
                    Some(cpu::conv2d_bias_grad(pg, gy).to_f32()),
                ))
            })
            .unwrap();
            assert_eq!(
                gw.unwrap(),
                cpu::conv2d_weight_grad(&g, &x, &gy).to_f32(),
                "weight {g:?}"
            );
            assert_eq!(
                gx.unwrap(),
                cpu::conv2d_input_grad(&g, &w, &gy).to_f32(),
                "input {g:?}"
            );
            assert_eq!(
                gb.unwrap(),
                cpu::conv2d_bias_grad(&g, &gy).to_f32(),
                "bias {g:?}"
            );
        }
    }

    #[test]
    fn a_grouped_weight_past_the_limit_is_a_typed_error() {
        let g = Conv2dOptions::new()
            .groups(3)
            .resolve([1, 3, 6, 6], [6, 1, 5, 5])
            .unwrap();
        let err = pieces(&g, 64).unwrap_err();
        assert!(
            matches!(&err, Error::TooLarge { limit: Limit::Binding, what, .. } if what.contains("cannot be split")),
            "{err}"
        );
    }
}
