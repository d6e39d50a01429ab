//! Receptive fields of stacked convolution layers.

use crate::error::{Error, Result};
use crate::options::{Conv2dOptions, Padding};

/// Along one axis: output element `i` of the stack sees input positions within
/// `start + i*jump ..= start + i*jump + size - 1` (positions below 0 or past the input are
/// padding). This is the span of the field: with dilation some positions inside it may be
/// skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Number of input positions one output element depends on.
    pub size: usize,
    /// Distance in the input between neighbouring outputs.
    pub jump: usize,
    /// Input position of the first element of output 0's field (negative inside the padding).
    pub start: isize,
}

impl Field {
    /// The input range seen by output element `i`, clipped to an input of length `n`.
    pub fn range(&self, i: usize, n: usize) -> std::ops::Range<usize> {
        let lo = self.start + (i * self.jump) as isize;
        let hi = lo + self.size as isize;
        (lo.max(0) as usize)..(hi.clamp(0, n as isize) as usize)
    }
}

/// The receptive field (height, width) of the last of `layers`, each given by its kernel size
/// `(KH, KW)` and options (stride, padding, dilation; `same` padding resolved as PyTorch does).
/// Recurrence per axis: `size += (d*(k-1)) * jump`, `start -= pad_before * jump`, `jump *= stride`.
pub fn receptive_field(layers: &[((usize, usize), Conv2dOptions)]) -> Result<(Field, Field)> {
    let mut fh = Field {
        size: 1,
        jump: 1,
        start: 0,
    };
    let mut fw = fh;
    for ((kh, kw), o) in layers {
        if *kh == 0
            || *kw == 0
            || o.stride.h == 0
            || o.stride.w == 0
            || o.dilation.h == 0
            || o.dilation.w == 0
        {
            return Err(Error::InvalidOption(
                "kernel, stride and dilation must be at least 1".into(),
            ));
        }
        let (pt, pl) = match o.padding {
            Padding::Valid => (0, 0),
            Padding::Explicit { top, left, .. } => (top, left),
            Padding::Same => ((o.dilation.h * (kh - 1)) / 2, (o.dilation.w * (kw - 1)) / 2),
        };
        for (f, k, s, d, p) in [
            (&mut fh, *kh, o.stride.h, o.dilation.h, pt),
            (&mut fw, *kw, o.stride.w, o.dilation.w, pl),
        ] {
            f.size += d * (k - 1) * f.jump;
            f.start -= (p * f.jump) as isize;
            f.jump *= s;
        }
    }
    Ok((fh, fw))
}
