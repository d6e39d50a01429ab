//! The phases of a strided layer's input gradient. Along an axis of stride `s`, the input
//! positions `i` with the same `(i + pad) % s` (a phase) are reached by the same kernel taps,
//! every `s / gcd(s, dilation)`-th one, and the output gradient they read moves by
//! `dilation / gcd` positions from one of those taps to the next: so each phase's gradient is a
//! dense stride-1 correlation of `gy` with a sub-kernel (its taps, reversed), with no inserted
//! zero. A phase no tap reaches has a zero gradient. Pure arithmetic, tested against a direct
//! enumeration of the layer's (input, tap, output) triples below.

use crate::options::{Conv2dGeometry, ConvMode, Hw, PaddingMode};

/// One axis of a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AxisPhase {
    /// The phase's first input position; the next ones follow at the layer's stride.
    pub first: usize,
    /// Input positions in the phase (within the axis).
    pub count: usize,
    /// Kernel taps that reach them (0: their gradient is zero).
    pub taps: usize,
    /// The first of those taps, and the step between them.
    pub tap0: usize,
    pub tap_step: usize,
    /// The dilation of the phase's correlation over `gy`.
    pub dilation: usize,
    /// Its padding before (negative: it would start past the first row of `gy`).
    pub pad: isize,
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The phases of an axis of `n` input positions, kernel `k`, stride `s`, dilation `dl` and
/// padding before `pad`, in the order of their first position (`0 .. s`).
///
/// Input position `i` and tap `a` meet output position `o = (i + pad - a * dl) / s` where the
/// division is exact. With `d = gcd(s, dl)`, `i + pad = r (mod s)` needs `a * dl = r (mod s)`:
/// none where `d` does not divide `r`, else the taps `a0 + j * (s / d)`, `a0 < s / d`. Then
/// `o = u - e - j * (dl / d)`, `u = (i + pad - r) / s`, `e = (a0 * dl - r) / s`; counting the
/// taps from the last (`j' = taps - 1 - j`) makes it a correlation over `o` with dilation
/// `dl / d` and padding `(taps - 1) * dl / d + e - u` at the phase's first position.
pub(crate) fn axis_phases(n: usize, k: usize, s: usize, dl: usize, pad: usize) -> Vec<AxisPhase> {
    let d = gcd(s, dl);
    let (step, dil) = (s / d, dl / d);
    (0..s)
        .map(|first| {
            let count = if first < n {
                (n - first).div_ceil(s)
            } else {
                0
            };
            let r = (first + pad) % s;
            let u = (first + pad - r) / s;
            let a0 = if r.is_multiple_of(d) {
                (0..step).find(|a| (a * dil) % step == (r / d) % step)
            } else {
                None
            };
            let (tap0, taps) = match a0 {
                Some(a0) if a0 < k => (a0, (k - a0).div_ceil(step)),
                _ => (0, 0),
            };
            let e = (tap0 * dl).saturating_sub(r) / s;
            let pad = (taps.saturating_sub(1) * dil + e) as isize - u as isize;
            AxisPhase {
                first,
                count,
                taps,
                tap0,
                tap_step: step,
                dilation: dil,
                pad,
            }
        })
        .collect()
}

/// A phase of both axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Phase {
    pub y: AxisPhase,
    pub x: AxisPhase,
}

impl Phase {
    /// Whether it has input positions.
    pub(crate) fn is_empty(&self) -> bool {
        self.y.count == 0 || self.x.count == 0
    }

    /// Whether a tap reaches it (else its gradient is zero).
    pub(crate) fn has_taps(&self) -> bool {
        self.y.taps > 0 && self.x.taps > 0
    }

    /// Its gradient as a forward convolution of `gy` (`[N, OC, OH, OW]`) to the phase's
    /// positions of `gx` (`[N, C, count_y, count_x]` as the core sees them), with the sub-kernel
    /// of `self.y.taps x self.x.taps` taps (the weight packed transposed, reversed and, for a
    /// strict convolution, mirrored): stride 1, the phase's dilation and padding; and the rows
    /// and columns of gy to skip before its first read, where that padding is negative (the
    /// phase's first position reads gy from a later row or column than the first: padding past
    /// half the kernel). `None` where it has no taps.
    pub(crate) fn as_forward(&self, g: &Conv2dGeometry) -> Option<(Conv2dGeometry, Hw)> {
        if !self.has_taps() || self.is_empty() {
            return None;
        }
        let part = |pad: isize| (pad.max(0) as usize, (-pad).max(0) as usize);
        let ((pt, skip_y), (pl, skip_x)) = (part(self.y.pad), part(self.x.pad));
        // padding after: whatever the last position's last tap reaches past gy (the core reads
        // none of it: its bounds test reads zeros there)
        let after = |count: usize, pad: isize, taps: usize, dil: usize, size: usize| {
            let reach = (count - 1 + (taps - 1) * dil + 1) as isize;
            (reach - pad - size as isize).max(0) as usize
        };
        let f = Conv2dGeometry {
            n: g.n,
            c: g.oc,
            h: g.oh,
            w: g.ow,
            oc: g.c,
            kh: self.y.taps,
            kw: self.x.taps,
            oh: self.y.count,
            ow: self.x.count,
            groups: g.groups,
            stride: Hw::new(1, 1),
            dilation: Hw::new(self.y.dilation, self.x.dilation),
            pad_top: pt,
            pad_left: pl,
            pad_bottom: after(self.y.count, self.y.pad, self.y.taps, self.y.dilation, g.oh),
            pad_right: after(self.x.count, self.x.pad, self.x.taps, self.x.dilation, g.ow),
            padding_mode: PaddingMode::Zeros,
            mode: ConvMode::CrossCorrelation,
        };
        Some((f, Hw::new(skip_y, skip_x)))
    }
}

/// Every phase of `g`'s input gradient, rows first (`first` of y, then of x).
pub(crate) fn phases(g: &Conv2dGeometry) -> Vec<Phase> {
    let ys = axis_phases(g.h, g.kh, g.stride.h, g.dilation.h, g.pad_top);
    let xs = axis_phases(g.w, g.kw, g.stride.w, g.dilation.w, g.pad_left);
    ys.iter()
        .flat_map(|&y| xs.iter().map(move |&x| Phase { y, x }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every (input, tap, output) triple of an axis, directly from the layer's definition.
    fn direct(
        n: usize,
        o: usize,
        k: usize,
        s: usize,
        dl: usize,
        pad: usize,
    ) -> BTreeSet<[usize; 3]> {
        let mut set = BTreeSet::new();
        for oo in 0..o {
            for a in 0..k {
                let i = (oo * s + a * dl) as isize - pad as isize;
                if i >= 0 && (i as usize) < n {
                    set.insert([i as usize, a, oo]);
                }
            }
        }
        set
    }

    /// The same triples from the phases' correlations: position `r` of a phase and its tap
    /// `j'` read `gy` at `r - pad + j' * dilation`.
    fn from_phases(
        n: usize,
        o: usize,
        k: usize,
        s: usize,
        dl: usize,
        pad: usize,
    ) -> BTreeSet<[usize; 3]> {
        let mut set = BTreeSet::new();
        for ph in axis_phases(n, k, s, dl, pad) {
            assert!(ph.first < s);
            for r in 0..ph.count {
                let i = ph.first + r * s;
                assert!(i < n);
                for jr in 0..ph.taps {
                    let a = ph.tap0 + (ph.taps - 1 - jr) * ph.tap_step;
                    assert!(a < k, "tap {a} of {k}");
                    let oo = r as isize - ph.pad + (jr * ph.dilation) as isize;
                    if oo >= 0 && (oo as usize) < o {
                        assert!(set.insert([i, a, oo as usize]), "twice: {i} {a} {oo}");
                    }
                }
            }
        }
        set
    }

    #[test]
    fn the_phases_meet_exactly_the_layers_triples() {
        let mut checked = 0;
        for s in 1..=4 {
            for dl in 1..=4 {
                for k in 1..=7 {
                    for pad in 0..=(dl * (k - 1)) {
                        for n in 1..=11 {
                            let reach = dl * (k - 1) + 1;
                            if n + 2 * pad < reach {
                                continue;
                            }
                            let o = (n + 2 * pad - reach) / s + 1;
                            assert_eq!(
                                from_phases(n, o, k, s, dl, pad),
                                direct(n, o, k, s, dl, pad),
                                "n {n} k {k} s {s} dl {dl} pad {pad}"
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 1000);
    }

    #[test]
    fn phases_cover_each_input_position_once() {
        for (n, s) in [(7, 2), (8, 3), (2, 4), (1, 3)] {
            let mut seen = vec![0; n];
            for ph in axis_phases(n, 3, s, 1, 1) {
                for r in 0..ph.count {
                    seen[ph.first + r * s] += 1;
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "{n} {s}: {seen:?}");
        }
    }

    #[test]
    fn a_1x1_kernel_at_stride_2_reaches_one_phase_of_four() {
        let opts = crate::Conv2dOptions {
            stride: Hw::new(2, 2),
            ..Default::default()
        };
        let g = opts.resolve([1, 8, 6, 6], [8, 8, 1, 1]).unwrap();
        let ph = phases(&g);
        assert_eq!(ph.len(), 4);
        assert_eq!(ph.iter().filter(|p| p.has_taps()).count(), 1);
        let (f, skip) = ph[0].as_forward(&g).unwrap();
        assert_eq!(
            (f.kh, f.kw, f.oh, f.ow, f.pad_top, f.pad_left),
            (1, 1, 3, 3, 0, 0)
        );
        assert_eq!(skip, Hw::new(0, 0));
    }
}
