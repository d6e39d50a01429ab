//! The two uniforms the `conv2d_*` kernels share: [`ConvParams`] (the direct and tiled
//! kernels) and [`GemmParams`] (the GEMM and planes kernels), both starting with the
//! convolution's [`ConvShape`]. Each mirrors a WGSL struct (`Shape` and `Params` in
//! `shaders/conv2d_common.wgsl`, `Gemm` in `shaders/conv2d_gemm_common.wgsl`); the naga test
//! in `spec.rs` checks names, order and sizes. The other kernels own their uniforms.

use crate::error::{Error, Limit, Result};
use crate::options::{Conv2dGeometry, ConvMode};

/// A size as the `u32` the kernels index with, or an error naming it.
pub(crate) fn to_u32(v: usize, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::TooLarge {
        what: what.to_string(),
        limit: Limit::Index,
        needed: v as u64,
        allowed: u64::from(u32::MAX),
    })
}

/// The shape of a convolution, as every `conv2d_*` kernel reads it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ConvShape {
    pub n: u32,
    pub c: u32,
    pub h: u32,
    pub w: u32,
    pub oc: u32,
    pub kh: u32,
    pub kw: u32,
    /// Input channels per group.
    pub cpg: u32,
    pub oh: u32,
    pub ow: u32,
    pub groups: u32,
    /// Output channels per group.
    pub ocpg: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub dil_h: u32,
    pub dil_w: u32,
    pub pad_top: u32,
    pub pad_left: u32,
    pub pad_bottom: u32,
    pub pad_right: u32,
    /// `PaddingMode::code`.
    pub pad_mode: u32,
    /// 1 for strict convolution (the kernel flipped).
    pub flip: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}

impl ConvShape {
    /// `g`'s shape; an error where a size passes `u32`.
    pub(crate) fn new(g: &Conv2dGeometry) -> Result<Self> {
        let u = |v: usize, what: &str| to_u32(v, what);
        Ok(Self {
            n: u(g.n, "batch")?,
            c: u(g.c, "input channels")?,
            h: u(g.h, "input height")?,
            w: u(g.w, "input width")?,
            oc: u(g.oc, "output channels")?,
            kh: u(g.kh, "kernel height")?,
            kw: u(g.kw, "kernel width")?,
            cpg: u(g.cpg(), "input channels per group")?,
            oh: u(g.oh, "output height")?,
            ow: u(g.ow, "output width")?,
            groups: u(g.groups, "groups")?,
            ocpg: u(g.ocpg(), "output channels per group")?,
            stride_h: u(g.stride.h, "stride")?,
            stride_w: u(g.stride.w, "stride")?,
            dil_h: u(g.dilation.h, "dilation")?,
            dil_w: u(g.dilation.w, "dilation")?,
            pad_top: u(g.pad_top, "padding")?,
            pad_left: u(g.pad_left, "padding")?,
            pad_bottom: u(g.pad_bottom, "padding")?,
            pad_right: u(g.pad_right, "padding")?,
            pad_mode: g.padding_mode.code(),
            flip: u32::from(g.mode == ConvMode::Convolution),
            _pad0: 0,
            _pad1: 0,
        })
    }
}

/// Uniform of the direct and tiled `conv2d_*` kernels (`struct Params`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ConvParams {
    pub shape: ConvShape,
    /// 1 when a bias is added.
    pub has_bias: u32,
    /// Invocations that do work (one per output or input element).
    pub total: u32,
    /// Length of one slice of a reduction.
    pub slice_len: u32,
    /// Number of slices of a reduction.
    pub slices: u32,
    /// First work item of this dispatch.
    pub base: u32,
    /// 1 where this piece of a loop nest adds to what the pieces before it wrote.
    pub accumulate: u32,
    /// Ranges of the five levels of this piece's loop nest (see [`super::budget`]).
    pub lo0: u32,
    pub hi0: u32,
    pub lo1: u32,
    pub hi1: u32,
    pub lo2: u32,
    pub hi2: u32,
    pub lo3: u32,
    pub hi3: u32,
    pub lo4: u32,
    pub hi4: u32,
    /// 1 where the weight buffer holds a layer's weight `[C, OC/groups, KH, KW]` whose
    /// transpose this pass applies (`conv2d_forward_mm` as an input gradient).
    pub transposed: u32,
    /// Zero insertion the input is read with: every `up_h`-th row of the `h` logical rows is a
    /// row of the buffer (1: none).
    pub up_h: u32,
    /// Likewise along the width.
    pub up_w: u32,
    pub _pad2: u32,
}

impl ConvParams {
    pub(crate) fn new(g: &Conv2dGeometry) -> Result<Self> {
        Ok(Self {
            shape: ConvShape::new(g)?,
            up_h: 1,
            up_w: 1,
            ..Self::default()
        })
    }

    /// Sets the loop ranges of piece `index` of a nest cut by [`super::budget::split_nest`]
    /// (up to five levels, outermost first); it adds to the pieces before it unless it is the
    /// first.
    pub(crate) fn set_piece(&mut self, index: usize, ranges: &[std::ops::Range<usize>]) {
        let mut r = ranges.iter().map(|r| (r.start as u32, r.end as u32));
        let mut next = || r.next().unwrap_or((0, 0));
        (self.lo0, self.hi0) = next();
        (self.lo1, self.hi1) = next();
        (self.lo2, self.hi2) = next();
        (self.lo3, self.hi3) = next();
        (self.lo4, self.hi4) = next();
        self.accumulate = u32::from(index > 0);
    }
}

/// Uniform of the GEMM and planes kernels (`struct Gemm`). The padded copies it describes are
/// explained in `shaders/conv2d_gemm_common.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct GemmParams {
    pub shape: ConvShape,
    /// Padded input rows.
    pub hp: u32,
    /// Row length of one padded copy (a multiple of 4).
    pub wq: u32,
    /// Output row length rounded up to a multiple of 4.
    pub ow4: u32,
    /// Floats in one padded copy (a multiple of 4).
    pub copy_len: u32,
    /// 1 when a bias is added.
    pub has_bias: u32,
    /// Taps per output channel: `cpg * kh * kw`.
    pub taps: u32,
    /// Blocks of 8 output channels per group.
    pub ocb: u32,
    /// Chunks of `CHUNK_TAPS` taps per block.
    pub chunks: u32,
    /// First z workgroup of this dispatch.
    pub base: u32,
    /// Bit `r * 4 + t` set: padded copy (r, t) is read by some tap and stored.
    pub copy_mask: u32,
    /// Offset, in vec4s, of the zero region that a short last chunk's padding taps read.
    pub zero_offset: u32,
    /// Weight gradient: slices of the `N * OH` output rows.
    pub slices: u32,
    /// Weight gradient: output rows per slice.
    pub slice_rows: u32,
    /// 1 where the weight buffer holds a layer's weight `[C, OC/groups, KH, KW]` whose
    /// transpose this pass applies (the input gradient as a forward pass).
    pub transposed: u32,
    /// Zero insertion along the height: the input holds every `up_h`-th of the `h` rows.
    pub up_h: u32,
    /// Zero insertion along the width (1: none).
    pub up_w: u32,
}

/// Floats in a vec4: the GEMM and planes kernels load and store rows as whole vec4s, and keep
/// one padded copy per vec4 phase (`t` of `copy_mask`'s bit `r * 4 + t`).
pub(crate) const VEC4: usize = 4;

/// Bytes in a float.
pub(crate) const FLOAT_BYTES: u64 = 4;

/// Bits of [`GemmParams::copy_mask`]: 4 column phases for each residue of the stride, so
/// strides up to 8.
pub(crate) const MAX_COPY_STRIDE: usize = 8;

impl GemmParams {
    /// The padded copies of `g`'s input and the rest of the GEMM uniform, or `None` where the
    /// GEMM kernels do not apply: a stride past [`MAX_COPY_STRIDE`] or a size past `u32`.
    pub(crate) fn new(g: &Conv2dGeometry, chunk_taps: usize) -> Option<Self> {
        let u = |v: usize| u32::try_from(v).ok();
        let s = g.stride.w;
        if s > MAX_COPY_STRIDE {
            return None;
        }
        let ow4 = g.ow.div_ceil(VEC4) * VEC4;
        // a copy's row must reach column ow4 - 1 + q for the widest tap shift q
        let q_max = (g.kw - 1) * g.dilation.w / s;
        let wq = (ow4 + q_max).div_ceil(VEC4) * VEC4;
        let hp = g.h + g.pad_top + g.pad_bottom;
        let copy_len = g.n.checked_mul(g.c)?.checked_mul(hp)?.checked_mul(wq)?;
        let copy_mask = (0..g.kw).fold(0u32, |m, b| {
            let shift = b * g.dilation.w;
            m | 1 << ((shift % s) * VEC4 + (shift / s) % VEC4)
        });
        let zero_offset = copy_len.checked_mul(copy_mask.count_ones() as usize)? / VEC4;
        Some(Self {
            shape: ConvShape::new(g).ok()?,
            hp: u(hp)?,
            wq: u(wq)?,
            ow4: u(ow4)?,
            copy_len: u(copy_len)?,
            has_bias: 0,
            taps: u(g.taps())?,
            ocb: u(g.ocpg().div_ceil(8))?,
            chunks: u(g.taps().div_ceil(chunk_taps))?,
            base: 0,
            copy_mask,
            zero_offset: u(zero_offset)?,
            slices: 0,
            slice_rows: 0,
            transposed: 0,
            up_h: 1,
            up_w: 1,
        })
    }

    /// The copy parameters that pad the rows of the output gradient `[N, OC, OH, OW]` to whole
    /// vec4s (`ow4`): its first and only copy, with nothing else padded (`None` past `u32`).
    pub(crate) fn row_padded(&self) -> Option<Self> {
        let s = self.shape;
        Some(Self {
            shape: ConvShape {
                c: s.oc,
                h: s.oh,
                w: s.ow,
                pad_top: 0,
                pad_left: 0,
                pad_bottom: 0,
                pad_right: 0,
                pad_mode: 0,
                stride_w: 1,
                ..s
            },
            hp: s.oh,
            wq: self.ow4,
            copy_len: s
                .n
                .checked_mul(s.oc)?
                .checked_mul(s.oh)?
                .checked_mul(self.ow4)?,
            copy_mask: 1,
            up_h: 1,
            up_w: 1,
            ..*self
        })
    }
}

/// The layer's shape as the override constants of `conv2d_layer_common.wgsl` (for the kernels
/// built per layer shape); each kernel adds its own.
pub(crate) fn layer_constants(g: &Conv2dGeometry) -> Result<Vec<(&'static str, u32)>> {
    let u = |v: usize, what: &str| to_u32(v, what);
    Ok(vec![
        ("N", u(g.n, "batch")?),
        ("C", u(g.c, "input channels")?),
        ("H", u(g.h, "input height")?),
        ("W", u(g.w, "input width")?),
        ("OC", u(g.oc, "output channels")?),
        ("CPG", u(g.cpg(), "input channels per group")?),
        ("OCPG", u(g.ocpg(), "output channels per group")?),
        ("KH", u(g.kh, "kernel height")?),
        ("KW", u(g.kw, "kernel width")?),
        ("OH", u(g.oh, "output height")?),
        ("OW", u(g.ow, "output width")?),
        ("SH", u(g.stride.h, "stride")?),
        ("SW", u(g.stride.w, "stride")?),
        ("DH", u(g.dilation.h, "dilation")?),
        ("DW", u(g.dilation.w, "dilation")?),
        ("PT", u(g.pad_top, "padding")?),
        ("PL", u(g.pad_left, "padding")?),
        ("PAD_MODE", g.padding_mode.code()),
    ])
}
