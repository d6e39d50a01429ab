//! Convolution options with PyTorch's `nn.Conv2d` semantics, and the output-size arithmetic.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Limit, Result};

/// A (height, width) pair: `2.into()` is `(2, 2)`, `(1, 2).into()` is height 1, width 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hw {
    /// Along the height (rows).
    pub h: usize,
    /// Along the width (columns).
    pub w: usize,
}

impl Hw {
    /// A pair.
    pub const fn new(h: usize, w: usize) -> Self {
        Self { h, w }
    }
}

impl From<usize> for Hw {
    fn from(v: usize) -> Self {
        Self { h: v, w: v }
    }
}
impl From<(usize, usize)> for Hw {
    fn from((h, w): (usize, usize)) -> Self {
        Self { h, w }
    }
}
impl From<[usize; 2]> for Hw {
    fn from([h, w]: [usize; 2]) -> Self {
        Self { h, w }
    }
}

impl FromStr for Hw {
    type Err = Error;
    /// `"2"` or `"1,2"` (height, width).
    fn from_str(s: &str) -> Result<Self> {
        let v = parse_list(s)?;
        match v[..] {
            [a] => Ok(Hw::new(a, a)),
            [h, w] => Ok(Hw::new(h, w)),
            _ => Err(Error::option(format!("expected N or H,W, got {s:?}"))),
        }
    }
}

impl fmt::Display for Hw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.h, self.w)
    }
}

fn parse_list(s: &str) -> Result<Vec<usize>> {
    s.split(',')
        .map(|p| {
            p.trim()
                .parse::<usize>()
                .map_err(|_| Error::option(format!("{p:?} in {s:?} is not a non-negative integer")))
        })
        .collect()
}

/// How much padding, as `nn.Conv2d`'s `padding` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Padding {
    /// Explicit amounts on each side.
    Explicit {
        /// Rows added above.
        top: usize,
        /// Columns added on the left.
        left: usize,
        /// Rows added below.
        bottom: usize,
        /// Columns added on the right.
        right: usize,
    },
    /// Output the size of the input (stride 1 only): total `dilation*(k-1)` per axis, the odd
    /// one at the bottom/right, as PyTorch does.
    Same,
    /// No padding.
    #[default]
    Valid,
}

impl From<usize> for Padding {
    fn from(p: usize) -> Self {
        Padding::Explicit {
            top: p,
            left: p,
            bottom: p,
            right: p,
        }
    }
}
impl From<(usize, usize)> for Padding {
    fn from((h, w): (usize, usize)) -> Self {
        Padding::Explicit {
            top: h,
            left: w,
            bottom: h,
            right: w,
        }
    }
}
impl From<[usize; 4]> for Padding {
    /// `[top, left, bottom, right]`.
    fn from([top, left, bottom, right]: [usize; 4]) -> Self {
        Padding::Explicit {
            top,
            left,
            bottom,
            right,
        }
    }
}

impl FromStr for Padding {
    type Err = Error;
    /// `P`, `PH,PW`, `TOP,LEFT,BOTTOM,RIGHT`, `same` or `valid`.
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "same" => return Ok(Padding::Same),
            "valid" => return Ok(Padding::Valid),
            _ => {}
        }
        let v = parse_list(s)?;
        match v[..] {
            [p] => Ok(p.into()),
            [h, w] => Ok((h, w).into()),
            [t, l, b, r] => Ok([t, l, b, r].into()),
            _ => Err(Error::option(format!(
                "padding must be P, PH,PW, TOP,LEFT,BOTTOM,RIGHT, same or valid; got {s:?}"
            ))),
        }
    }
}

/// What fills the padding, as `nn.Conv2d`'s `padding_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PaddingMode {
    /// Zeros.
    #[default]
    Zeros,
    /// Mirror without repeating the edge: `d c b | a b c d | c b a`.
    Reflect,
    /// Repeat the edge: `a a | a b c d | d d`.
    Replicate,
    /// Wrap around: `c d | a b c d | a b`.
    Circular,
}

impl PaddingMode {
    /// The name `nn.Conv2d` and `--padding-mode` use.
    pub fn name(self) -> &'static str {
        match self {
            PaddingMode::Zeros => "zeros",
            PaddingMode::Reflect => "reflect",
            PaddingMode::Replicate => "replicate",
            PaddingMode::Circular => "circular",
        }
    }

    /// The code the shaders use (keep in sync with `pad_source` in the `.wgsl` files).
    pub(crate) fn code(self) -> u32 {
        match self {
            PaddingMode::Zeros => 0,
            PaddingMode::Reflect => 1,
            PaddingMode::Replicate => 2,
            PaddingMode::Circular => 3,
        }
    }

    /// Where padded coordinate `i` (relative to the unpadded input, may be negative or >= `n`)
    /// reads from in an axis of length `n`; `None` for a zero. The CPU twin of the shaders'
    /// `pad_source`.
    pub fn source(self, i: isize, n: usize) -> Option<usize> {
        let n = n as isize;
        if (0..n).contains(&i) {
            return Some(i as usize);
        }
        let s = match self {
            PaddingMode::Zeros => return None,
            PaddingMode::Reflect => {
                let r = i.abs();
                if r >= n {
                    2 * (n - 1) - r
                } else {
                    r
                }
            }
            PaddingMode::Replicate => i.clamp(0, n - 1),
            PaddingMode::Circular => i.rem_euclid(n),
        };
        debug_assert!((0..n).contains(&s), "padding source out of range");
        Some(s as usize)
    }
}

impl FromStr for PaddingMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "zeros" | "zero" => Ok(PaddingMode::Zeros),
            "reflect" => Ok(PaddingMode::Reflect),
            "replicate" => Ok(PaddingMode::Replicate),
            "circular" => Ok(PaddingMode::Circular),
            _ => Err(Error::option(format!(
                "padding mode must be zeros, reflect, replicate or circular; got {s:?}"
            ))),
        }
    }
}

/// Cross-correlation (what deep-learning "convolution" layers compute) or the strict
/// convolution of mathematics (the kernel flipped on both spatial axes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ConvMode {
    /// `y[i,j] = sum x[i+a, j+b] k[a,b]` — the default, as `nn.Conv2d`.
    #[default]
    CrossCorrelation,
    /// `y[i,j] = sum x[i+a, j+b] k[kh-1-a, kw-1-b]`.
    Convolution,
}

impl FromStr for ConvMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cross-correlation" | "cross_correlation" | "correlation" => {
                Ok(ConvMode::CrossCorrelation)
            }
            "convolution" => Ok(ConvMode::Convolution),
            _ => Err(Error::option(format!(
                "mode must be cross-correlation or convolution; got {s:?}"
            ))),
        }
    }
}

/// The options of a 2-D convolution, with `nn.Conv2d`'s meaning.
///
/// ```
/// use wgpu_conv::{Conv2dOptions, Padding, PaddingMode};
/// let opts = Conv2dOptions::new().stride(2).padding((1, 2)).padding_mode(PaddingMode::Reflect);
/// assert_eq!(opts.padding, Padding::Explicit { top: 1, left: 2, bottom: 1, right: 2 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dOptions {
    /// Step between output positions.
    pub stride: Hw,
    /// Padding amounts.
    pub padding: Padding,
    /// Spacing between kernel taps.
    pub dilation: Hw,
    /// Channel groups: input and output channels are split into this many independent sets.
    pub groups: usize,
    /// What fills the padding.
    pub padding_mode: PaddingMode,
    /// Cross-correlation or strict convolution.
    pub mode: ConvMode,
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Self {
            stride: Hw::new(1, 1),
            padding: Padding::Valid,
            dilation: Hw::new(1, 1),
            groups: 1,
            padding_mode: PaddingMode::Zeros,
            mode: ConvMode::CrossCorrelation,
        }
    }
}

impl Conv2dOptions {
    /// Stride 1, no padding, dilation 1, one group, cross-correlation.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the stride.
    pub fn stride(mut self, s: impl Into<Hw>) -> Self {
        self.stride = s.into();
        self
    }
    /// Sets the padding.
    pub fn padding(mut self, p: impl Into<Padding>) -> Self {
        self.padding = p.into();
        self
    }
    /// Sets the dilation.
    pub fn dilation(mut self, d: impl Into<Hw>) -> Self {
        self.dilation = d.into();
        self
    }
    /// Sets the number of groups.
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
    /// Sets the padding mode.
    pub fn padding_mode(mut self, m: PaddingMode) -> Self {
        self.padding_mode = m;
        self
    }
    /// Sets cross-correlation or convolution.
    pub fn mode(mut self, m: ConvMode) -> Self {
        self.mode = m;
        self
    }

    /// Checks the options against an input `[N, C, H, W]` and a weight `[OC, C/groups, KH, KW]`
    /// and works out the output size and the padding on each side.
    pub fn resolve(&self, input: [usize; 4], weight: [usize; 4]) -> Result<Conv2dGeometry> {
        let [n, c, h, w] = input;
        let [oc, cpg, kh, kw] = weight;
        if self.stride.h == 0 || self.stride.w == 0 {
            return Err(Error::option(format!(
                "stride must be at least 1, got {}",
                self.stride
            )));
        }
        if self.dilation.h == 0 || self.dilation.w == 0 {
            return Err(Error::option(format!(
                "dilation must be at least 1, got {}",
                self.dilation
            )));
        }
        if self.groups == 0 {
            return Err(Error::option("groups must be at least 1"));
        }
        if input.contains(&0) {
            return Err(Error::shape(format!(
                "input {input:?} has a zero dimension"
            )));
        }
        if weight.contains(&0) {
            return Err(Error::shape(format!(
                "weight {weight:?} has a zero dimension"
            )));
        }
        if !c.is_multiple_of(self.groups) {
            return Err(Error::option(format!(
                "groups={} does not divide the {c} input channels",
                self.groups
            )));
        }
        if !oc.is_multiple_of(self.groups) {
            return Err(Error::option(format!(
                "groups={} does not divide the {oc} output channels",
                self.groups
            )));
        }
        if cpg != c / self.groups {
            return Err(Error::shape(format!(
                "weight {weight:?} expects {} input channels (C/groups = {cpg}), input {input:?} has {c}",
                cpg * self.groups
            )));
        }
        let span_h = checked_span(self.dilation.h, kh)?;
        let span_w = checked_span(self.dilation.w, kw)?;
        let (top, left, bottom, right) = match self.padding {
            Padding::Valid => (0, 0, 0, 0),
            Padding::Explicit {
                top,
                left,
                bottom,
                right,
            } => (top, left, bottom, right),
            Padding::Same => {
                if self.stride.h != 1 || self.stride.w != 1 {
                    return Err(Error::option(format!(
                        "padding 'same' needs stride 1, got stride {}",
                        self.stride
                    )));
                }
                let th = span_h - 1;
                let tw = span_w - 1;
                (th / 2, tw / 2, th - th / 2, tw - tw / 2)
            }
        };
        for (name, p, len) in [
            ("top", top, h),
            ("bottom", bottom, h),
            ("left", left, w),
            ("right", right, w),
        ] {
            match self.padding_mode {
                PaddingMode::Reflect if p >= len => {
                    return Err(Error::option(format!(
                        "reflect padding {name}={p} must be less than the input size {len} on that axis"
                    )))
                }
                PaddingMode::Circular if p > len => {
                    return Err(Error::option(format!(
                        "circular padding {name}={p} must not exceed the input size {len} on that axis"
                    )))
                }
                _ => {}
            }
            if p > (1 << 24) {
                return Err(Error::option(format!(
                    "padding {name}={p} is absurdly large"
                )));
            }
        }
        let padded_h = h + top + bottom;
        let padded_w = w + left + right;
        if span_h > padded_h || span_w > padded_w {
            return Err(Error::shape(format!(
                "the dilated kernel ({span_h}x{span_w}) is larger than the padded input ({padded_h}x{padded_w})"
            )));
        }
        let oh = output_size(h, kh, self.stride.h, top + bottom, self.dilation.h);
        let ow = output_size(w, kw, self.stride.w, left + right, self.dilation.w);
        let g = Conv2dGeometry {
            n,
            c,
            h,
            w,
            oc,
            kh,
            kw,
            oh,
            ow,
            groups: self.groups,
            stride: self.stride,
            dilation: self.dilation,
            pad_top: top,
            pad_left: left,
            pad_bottom: bottom,
            pad_right: right,
            padding_mode: self.padding_mode,
            mode: self.mode,
        };
        for (what, count) in [
            ("input", g.input_len()),
            ("weight", g.weight_len()),
            ("output", g.output_len()),
        ] {
            match count {
                Some(v) if v <= u32::MAX as usize => {}
                _ => {
                    return Err(Error::too_large(
                        format!("the {what}'s elements"),
                        Limit::Index,
                        count.map_or(u64::MAX, |v| v as u64),
                        u64::from(u32::MAX),
                    ))
                }
            }
        }
        Ok(g)
    }
}

fn checked_span(dilation: usize, k: usize) -> Result<usize> {
    dilation
        .checked_mul(k - 1)
        .and_then(|v| v.checked_add(1))
        .ok_or_else(|| Error::option("dilation*(kernel-1) overflows"))
}

/// Output length along one axis, as PyTorch computes it:
/// `floor((input + total_padding - dilation*(kernel-1) - 1) / stride) + 1`.
///
/// The caller guarantees `dilation*(kernel-1) + 1 <= input + total_padding` and `stride >= 1`
/// ([`Conv2dOptions::resolve`] checks both). With no padding, stride and dilation 1 this is the
/// chapter's `n - k + 1`.
pub fn output_size(
    input: usize,
    kernel: usize,
    stride: usize,
    total_padding: usize,
    dilation: usize,
) -> usize {
    (input + total_padding - dilation * (kernel - 1) - 1) / stride + 1
}

/// A checked convolution: every size and option, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dGeometry {
    /// Batch.
    pub n: usize,
    /// Input channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub oc: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
    /// Groups.
    pub groups: usize,
    /// Stride.
    pub stride: Hw,
    /// Dilation.
    pub dilation: Hw,
    /// Rows of padding above.
    pub pad_top: usize,
    /// Columns of padding on the left.
    pub pad_left: usize,
    /// Rows of padding below.
    pub pad_bottom: usize,
    /// Columns of padding on the right.
    pub pad_right: usize,
    /// What fills the padding.
    pub padding_mode: PaddingMode,
    /// Cross-correlation or convolution.
    pub mode: ConvMode,
}

impl Conv2dGeometry {
    /// Input channels per group.
    pub fn cpg(&self) -> usize {
        self.c / self.groups
    }
    /// Output channels per group.
    pub fn ocpg(&self) -> usize {
        self.oc / self.groups
    }
    /// `[N, C, H, W]`.
    pub fn input_shape(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }
    /// `[OC, C/groups, KH, KW]`.
    pub fn weight_shape(&self) -> [usize; 4] {
        [self.oc, self.cpg(), self.kh, self.kw]
    }
    /// `[N, OC, OH, OW]`.
    pub fn output_shape(&self) -> [usize; 4] {
        [self.n, self.oc, self.oh, self.ow]
    }
    fn input_len(&self) -> Option<usize> {
        checked_product(&self.input_shape())
    }
    fn weight_len(&self) -> Option<usize> {
        checked_product(&self.weight_shape())
    }
    fn output_len(&self) -> Option<usize> {
        checked_product(&self.output_shape())
    }
    /// Multiply-adds per output element: `C/groups * KH * KW`.
    pub fn taps(&self) -> usize {
        self.cpg() * self.kh * self.kw
    }
    /// Floating-point operations of the forward pass (`2 * outputs * taps`); the same count holds
    /// for the weight and input gradients.
    pub fn flops(&self) -> f64 {
        2.0 * self.output_shape().iter().product::<usize>() as f64 * self.taps() as f64
    }
    /// The kernel index used at tap `(a, b)`: itself for cross-correlation, flipped for convolution.
    pub fn tap(&self, a: usize, b: usize) -> (usize, usize) {
        match self.mode {
            ConvMode::CrossCorrelation => (a, b),
            ConvMode::Convolution => (self.kh - 1 - a, self.kw - 1 - b),
        }
    }
}

fn checked_product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}
