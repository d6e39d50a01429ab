//! `conv2d_forward_planes`: layers with one input channel per group (images and their
//! filters, depthwise layers) at stride 1 and dilation 1: 4 x 4 output pixels of one plane per
//! invocation, the kernel size fixed per pipeline by override constants.

use super::conv2d_forward_gemm;
use super::grid::runs;
use super::plan::{Bind, Buf, Pass};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms::GemmParams;
use crate::error::Result;
use crate::options::Conv2dGeometry;

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "conv2d_forward_planes",
    preludes: &[
        "conv2d_common",
        "conv2d_gemm_common",
        "conv2d_planes_common",
    ],
    source: shader!(
        "conv2d_common",
        "conv2d_gemm_common",
        "conv2d_planes_common",
        "conv2d_forward_planes"
    ),
    workgroup: [8, 8, 1],
    bindings: &[
        Access::Block,
        Access::Read,
        Access::Read,
        Access::Write,
        Access::Read,
        Access::Write,
        Access::Read,
    ],
    uniform: Uniform::Gemm,
    required: false,
    trusted: false,
};

/// Bytes between two output channels' uniform blocks (`struct Plane`, `PLANE_WORDS` in the
/// shaders).
pub const PLANE_BYTES: u64 = 256;

/// Output channels from which the kernel loads weights per lane in one dispatch instead of
/// dispatching once per channel with the weights in a uniform block.
pub const PER_LANE_FROM: usize = 16;

/// Largest kernel (height, width) the kernel takes.
pub const MAX_KERNEL: (usize, usize) = (7, 8);

/// Output rows and columns per invocation.
const ROWS: usize = 4;
const COLUMNS: usize = 4;

/// Loop iterations per invocation: 4 rows of 4 stores, and 4 rows of input.
const LOOP_ITERATIONS: u64 = (ROWS + ROWS * COLUMNS + ROWS) as u64;

/// The value of DIRECT_PAD_LEFT that means "read copy 0" (no direct reads).
const FROM_COPY: u32 = 255;

/// Whether the planes kernels apply to `g`, or why not: one input channel per group (the
/// forward kernel; each output channel reads its group's input channel, so image filters of
/// one channel in and a few out run as planes too) and, where `one_out`, one output channel per
/// group (the weight-gradient kernel); stride 1, dilation 1, kernels up to [`MAX_KERNEL`].
pub(crate) fn applies(g: &Conv2dGeometry, one_out: bool) -> Result<(), String> {
    if g.cpg() != 1 || (one_out && g.ocpg() != 1) {
        return Err(format!(
            "{} input and {} output channels per group, not 1 and {}",
            g.cpg(),
            g.ocpg(),
            if one_out { "1" } else { "any" }
        ));
    }
    if g.stride.h != 1 || g.stride.w != 1 || g.dilation.h != 1 || g.dilation.w != 1 {
        return Err("a stride or dilation".into());
    }
    if g.kh > MAX_KERNEL.0 || g.kw > MAX_KERNEL.1 {
        return Err(format!(
            "kernel {}x{} past {}x{}",
            g.kh, g.kw, MAX_KERNEL.0, MAX_KERNEL.1
        ));
    }
    Ok(())
}

/// The GEMM uniform of the planes kernels for `g` (copy 0 only; rows may end early where
/// nothing is padded, since columns past a row feed only outputs that are not stored or are
/// masked), or `None` where a size passes `u32`.
pub(crate) fn params(g: &Conv2dGeometry) -> Option<GemmParams> {
    let mut gp = GemmParams::new(g, conv2d_forward_gemm::CHUNK_TAPS)?;
    gp.copy_mask = 1;
    if g.pad_left + g.pad_right == 0 && g.w.is_multiple_of(COLUMNS) {
        gp.wq = gp.shape.w;
    }
    gp.copy_len = u32::try_from((g.n * g.c).checked_mul(gp.hp as usize * gp.wq as usize)?).ok()?;
    Some(gp)
}

/// Zero padding, rows of whole vec4s and a kernel that fits the loaded row: the kernel reads
/// the input itself, with this many columns of padding on the left (no copy pass, which costs
/// more than the convolution on CPU adapters).
pub(crate) fn direct_pad_left(g: &Conv2dGeometry) -> Option<usize> {
    let padded = g.pad_top + g.pad_bottom + g.pad_left + g.pad_right > 0;
    (padded
        && g.padding_mode == crate::options::PaddingMode::Zeros
        && g.w.is_multiple_of(COLUMNS)
        && g.pad_left <= COLUMNS
        && g.kw <= COLUMNS + 1 + g.pad_left)
        .then_some(g.pad_left)
}

/// How a planes kernel reads its input (see `shaders/conv2d_planes_common.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Read {
    /// Copy 0 of the padded copies (see `shaders/conv2d_gemm_common.wgsl`), which the planner
    /// uses only where the input is its own copy (nothing padded, rows of whole vec4s).
    Copy(Buf),
    /// Vec4s of the unpadded input itself, with this much zero padding on the left.
    Direct { pad_left: usize, x: Buf },
    /// Floats of the unpadded input itself, through any padding.
    Floats(Buf),
}

impl Read {
    /// The buffer bound as `copies` and again as `xs` (both read-only: one buffer for the two,
    /// so that no placeholder is bound read-only beside its read-write use).
    pub(crate) fn buffer(self) -> Buf {
        match self {
            Read::Copy(b) | Read::Direct { x: b, .. } | Read::Floats(b) => b,
        }
    }

    /// The override constants `DIRECT_PAD_LEFT` and `FLOAT_IN`.
    pub(crate) fn constants(self) -> [(&'static str, u32); 2] {
        let pad = match self {
            Read::Direct { pad_left, .. } => pad_left as u32,
            _ => FROM_COPY,
        };
        [
            ("DIRECT_PAD_LEFT", pad),
            ("FLOAT_IN", u32::from(matches!(self, Read::Floats(_)))),
        ]
    }

    /// For the plan's reasons.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Read::Copy(_) => "the input itself (nothing to pad, rows of whole vec4s)",
            Read::Direct { .. } => "vec4s of the input itself (zero padding, rows of whole vec4s)",
            Read::Floats(_) => "floats of the input itself, through the padding (no copy)",
        }
    }
}

/// How a planes kernel over `gp` reads input `x`: vec4s of the input where
/// [`direct_pad_left`] allows, the input itself where it is its own copy (nothing padded, rows
/// of whole vec4s), else floats of it through the padding. No copy pass and no scratch: on
/// lavapipe the float reads beat the padded copy (edge_img's input gradient 11 ms against 33,
/// its weight gradient 8 ms against 29).
pub(crate) fn input_read(g: &Conv2dGeometry, gp: &GemmParams, x: Buf) -> Read {
    if let Some(pad_left) = direct_pad_left(g) {
        return Read::Direct { pad_left, x };
    }
    if gp.hp == gp.shape.h && gp.wq == gp.shape.w {
        return Read::Copy(x);
    }
    Read::Floats(x)
}

/// The pass: `planes` (the blocks, bound as uniform blocks and again as storage), the input
/// as `read` says, `bias`, and `y`. Many channels: one dispatch, weights per lane
/// (grid z: batch x channels); few: one dispatch per channel with its weights uniform (grid
/// z: batch). Rows that are not whole vec4s are stored as floats.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pass(
    g: &Conv2dGeometry,
    gp: &GemmParams,
    planes: Buf,
    read: Read,
    bias: Buf,
    y: Buf,
    profile: &DeviceProfile,
) -> Result<Pass> {
    let per_lane = g.oc >= PER_LANE_FROM;
    let float_out = !g.ow.is_multiple_of(COLUMNS);
    let (out, out_floats) = if float_out {
        (Buf::Discard, y)
    } else {
        (y, Buf::Discard)
    };
    let mut pass = Pass::new(
        &SPEC,
        [
            Bind {
                buf: planes,
                block: Some(PLANE_BYTES),
            },
            read.buffer().into(),
            bias.into(),
            out.into(),
            planes.into(),
            out_floats.into(),
            read.buffer().into(),
        ],
        LOOP_ITERATIONS,
    )
    .with_constants(&[
        ("KH", g.kh as u32),
        ("KW", g.kw as u32),
        ("PER_LANE_WEIGHTS", u32::from(per_lane)),
        ("FLOAT_OUT", u32::from(float_out)),
        read.constants()[0],
        read.constants()[1],
    ]);
    let (tx, ty) = (SPEC.workgroup[0] as usize, SPEC.workgroup[1] as usize);
    let xy = [
        g.ow.div_ceil(COLUMNS).div_ceil(tx),
        g.oh.div_ceil(ROWS).div_ceil(ty),
    ];
    let per_plane = 2.0 * (g.oh * g.ow * g.kh * g.kw) as f64;
    let z = if per_lane { g.n * g.oc } else { g.n };
    let mut gp = *gp;
    for (first, grid) in runs(SPEC.name, Some(2), z, 1, xy, per_plane, profile)? {
        gp.base = first as u32;
        if per_lane {
            pass.dispatch_block(&gp, grid, 0)?;
        } else {
            for o in 0..g.oc {
                pass.dispatch_block(&gp, grid, (o as u64 * PLANE_BYTES) as u32)?;
            }
        }
    }
    Ok(pass)
}

/// Whether the grid's x and y fit.
pub(crate) fn fits_grid(g: &Conv2dGeometry, profile: &DeviceProfile) -> bool {
    let (tx, ty) = (SPEC.workgroup[0] as usize, SPEC.workgroup[1] as usize);
    super::grid::fits(
        &[
            g.ow.div_ceil(COLUMNS).div_ceil(tx),
            g.oh.div_ceil(ROWS).div_ceil(ty),
        ],
        profile.max_workgroups_per_dimension,
    )
}
