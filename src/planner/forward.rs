//! Which kernels run the forward pass, and why: the candidates in their order of choice.

use super::candidates::{choose, Candidate, Outcome, BLOCKED, EVERY, GEMM_FAMILY, GPU_FAMILY};
use crate::error::Result;
use crate::kernels::conv2d_forward_gemm::{CHUNK_BYTES, CHUNK_TAPS};
use crate::kernels::grid::fits;
use crate::kernels::plan::{Buf, Op, Plan};
use crate::kernels::{
    conv2d_forward, conv2d_forward_gemm, conv2d_forward_mm, conv2d_forward_planes,
    conv2d_forward_rows, conv2d_forward_tiled, conv2d_pack_chunks, conv2d_pack_planes,
    conv2d_pad_copies, conv2d_unpad_output, resolved, uniforms, Algorithm, DeviceProfile,
    GemmParams,
};
use crate::options::{Conv2dGeometry, Hw};

/// Output channels per group from which the GPU family's tiled GEMM (64 channels a tile) is
/// worth its idle lanes; fewer go to the kernels that block pixels instead.
const MM_MIN_CHANNELS: usize = 4;

/// Where a forward pass reads and writes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ForwardIo {
    pub x: Buf,
    pub w: Buf,
    pub bias: Option<Buf>,
    pub y: Buf,
}

impl ForwardIo {
    /// The forward operation's own operands `[x, w, bias, y]`.
    pub(crate) fn operands(bias: bool) -> Self {
        Self {
            x: Buf::Operand(0),
            w: Buf::Operand(1),
            bias: bias.then_some(Buf::Operand(2)),
            y: Buf::Operand(3),
        }
    }

    fn all(&self) -> [Buf; 4] {
        [self.x, self.w, self.bias.unwrap_or(Buf::Zeros), self.y]
    }
}

/// What a forward candidate plans for (owned, so that the list is a plain `const`).
pub(crate) struct Forward {
    g: Conv2dGeometry,
    io: ForwardIo,
    profile: DeviceProfile,
}

impl Forward {
    pub(crate) fn new(g: Conv2dGeometry, io: ForwardIo, profile: DeviceProfile) -> Self {
        Self { g, io, profile }
    }
}

/// The forward pass's candidates, in their order of choice.
pub(crate) const CANDIDATES: &[Candidate<Forward>] = &[
    Candidate {
        name: "planes",
        algorithms: GEMM_FAMILY,
        try_plan: |f| Ok(planes(&f.g, f.io, &f.profile)?.into()),
    },
    Candidate {
        name: "core",
        algorithms: GPU_FAMILY,
        try_plan: |f| core(f, false),
    },
    Candidate {
        name: "mm",
        algorithms: GPU_FAMILY,
        try_plan: mm,
    },
    Candidate {
        name: "gemm",
        algorithms: GEMM_FAMILY,
        try_plan: |f| {
            if f.g.ocpg() > 1 {
                Ok(gemm(&f.g, f.io, &f.profile, false, Hw::new(1, 1))?.into())
            } else {
                Ok(Outcome::Declined("one output channel per group".into()))
            }
        },
    },
    Candidate {
        name: "rows",
        algorithms: BLOCKED,
        try_plan: rows,
    },
    Candidate {
        name: "tiled",
        algorithms: BLOCKED,
        try_plan: tiled,
    },
    Candidate {
        name: "direct",
        algorithms: EVERY,
        try_plan: |f| {
            let mut plan = Plan::new(Op::Forward);
            plan.reason("direct: one invocation per output element");
            let has_bias = f.io.bias.is_some();
            plan.passes.push(conv2d_forward::pass(
                &f.g,
                f.io.all(),
                has_bias,
                &f.profile,
            )?);
            Ok(Outcome::Taken(plan))
        },
    },
];

/// The plan of the forward convolution of `g` (with a bias where `bias`) on `profile`, over
/// operands `[x, w, bias, y]`.
pub(crate) fn plan_forward(
    g: &Conv2dGeometry,
    bias: bool,
    profile: &DeviceProfile,
    algorithm: Algorithm,
) -> Result<Plan> {
    let mut plan = Plan::new(Op::Forward);
    forward_into(&mut plan, g, ForwardIo::operands(bias), profile, algorithm)?;
    Ok(plan)
}

/// Adds the forward pass of `g` over `io` to `plan`.
pub(crate) fn forward_into(
    plan: &mut Plan,
    g: &Conv2dGeometry,
    io: ForwardIo,
    profile: &DeviceProfile,
    algorithm: Algorithm,
) -> Result<()> {
    let a = resolved(plan, g, profile, algorithm);
    let input = Forward {
        g: *g,
        io,
        profile: profile.clone(),
    };
    choose(plan, a, CANDIDATES, &input)
}

/// The GEMM core over a packed weight (`transposed`: `f.io.w` is the weight of the layer whose
/// stride-1 input gradient `f.g` is, read across), or why not.
pub(crate) fn core(f: &Forward, transposed: bool) -> Result<Outcome> {
    use crate::kernels::{conv2d_core as k, conv2d_pack_core, reduce_partials};
    let (g, profile) = (&f.g, &f.profile);
    if g.ocpg() < MM_MIN_CHANNELS {
        return Ok(Outcome::Declined(format!(
            "{} output channels per group (< {MM_MIN_CHANNELS}) would leave most of a tile idle",
            g.ocpg()
        )));
    }
    if let Err(why) = k::applies(g, profile) {
        return Ok(Outcome::Declined(why));
    }
    let mut s = k::CoreShape::new(g);
    let mut plan = Plan::new(Op::Forward);
    let packed_bytes = s.packed_floats() as u64 * 4;
    let Some(packed) = plan.scratch(
        profile,
        "conv2d_pack_core: packed weight",
        packed_bytes,
        false,
    ) else {
        return Ok(Outcome::Declined(format!(
            "{packed_bytes} bytes of packed weight pass the binding limit"
        )));
    };
    let elements = g.n * g.oc * g.oh * g.ow;
    let partial_bytes = (s.slices * elements) as u64 * 4;
    let partials = if s.slices > 1 {
        let buf = plan.scratch(
            profile,
            "conv2d_core: slices of a split K",
            partial_bytes,
            false,
        );
        if buf.is_none() {
            s = s.unsplit();
        }
        buf
    } else {
        None
    };
    plan.reason(format!(
        "core: one implicit GEMM over a packed weight, tiles of {} channels x {} pixels, {} \
         steps of {} taps{}",
        k::TILE_M,
        k::TILE_N,
        s.steps,
        k::TILE_K,
        match partials {
            Some(_) => format!(
                ", split into {} slices of {} steps ({} workgroups < {} per SM of {})",
                s.slices,
                s.slice_steps,
                s.tiles * s.blocks,
                k::MIN_WORKGROUPS_PER_SM,
                k::REFERENCE_SMS
            ),
            None => String::new(),
        }
    ));
    plan.passes.push(conv2d_pack_core::pass(
        g,
        &s,
        [f.io.w, packed],
        &conv2d_pack_core::Taps::all(g),
        transposed,
        profile,
    )?);
    let bias = f.io.bias.unwrap_or(Buf::Zeros);
    let has_bias = f.io.bias.is_some();
    let out = partials.unwrap_or(f.io.y);
    plan.passes.push(k::pass(
        g,
        &s,
        [f.io.x, packed, bias, out],
        has_bias,
        &k::Placement::own(g),
        profile,
    )?);
    if let Some(partials) = partials {
        reduce_partials::sliced_passes(&mut plan, profile, partials, f.io.y, elements, s.slices)?;
    }
    Ok(Outcome::Taken(plan))
}

/// The GPU family's one implicit GEMM, or why not.
fn mm(f: &Forward) -> Result<Outcome> {
    let (g, profile) = (&f.g, &f.profile);
    if g.ocpg() < MM_MIN_CHANNELS {
        return Ok(Outcome::Declined(format!(
            "{} output channels per group (< {MM_MIN_CHANNELS}) would leave most of a tile idle",
            g.ocpg()
        )));
    }
    if let Err(why) = conv2d_forward_mm::applies(g, profile) {
        return Ok(Outcome::Declined(why));
    }
    let mut plan = Plan::new(Op::Forward);
    plan.reason(format!(
        "mm: one implicit GEMM, tiles of {} channels x {} pixels x {} taps in \
         workgroup memory, the input gathered in place",
        conv2d_forward_mm::TILE_M,
        conv2d_forward_mm::TILE_N,
        conv2d_forward_mm::TILE_K
    ));
    let has_bias = f.io.bias.is_some();
    plan.passes
        .push(conv2d_forward_mm::pass(g, f.io.all(), has_bias, profile)?);
    Ok(Outcome::Taken(plan))
}

/// 16 pixels of one output channel per invocation, or why not.
fn rows(f: &Forward) -> Result<Outcome> {
    if f.g.ocpg() != 1 {
        return Ok(Outcome::Declined(format!(
            "{} output channels per group: it computes one",
            f.g.ocpg()
        )));
    }
    if !conv2d_forward_rows::applies(&f.g, &f.profile) {
        return Ok(Outcome::Declined(format!(
            "grid {:?} past {} workgroups per dimension",
            &conv2d_forward_rows::grid(&f.g)[..2],
            f.profile.max_workgroups_per_dimension
        )));
    }
    let mut plan = Plan::new(Op::Forward);
    plan.reason("rows: one output channel per group: 16 pixels of a channel per invocation");
    let has_bias = f.io.bias.is_some();
    plan.passes.push(conv2d_forward_rows::pass(
        &f.g,
        f.io.all(),
        has_bias,
        &f.profile,
    )?);
    Ok(Outcome::Taken(plan))
}

/// 8 output channels x 4 pixels per invocation, or why not.
fn tiled(f: &Forward) -> Result<Outcome> {
    if !conv2d_forward_tiled::applies(&f.g, &f.profile) {
        return Ok(Outcome::Declined(format!(
            "grid {:?} past {} workgroups per dimension",
            &conv2d_forward_tiled::grid(&f.g)[..2],
            f.profile.max_workgroups_per_dimension
        )));
    }
    let mut plan = Plan::new(Op::Forward);
    plan.reason("tiled: 8 output channels x 4 pixels per invocation");
    let has_bias = f.io.bias.is_some();
    plan.passes.push(conv2d_forward_tiled::pass(
        &f.g,
        f.io.all(),
        has_bias,
        &f.profile,
    )?);
    Ok(Outcome::Taken(plan))
}

/// The planes kernels, or why not.
fn planes(
    g: &Conv2dGeometry,
    io: ForwardIo,
    profile: &DeviceProfile,
) -> Result<Result<Plan, String>> {
    use conv2d_forward_planes as k;
    if let Err(why) = k::applies(g, false) {
        return Ok(Err(why));
    }
    let storage = k::SPEC.storage_buffers();
    if storage > profile.max_storage_buffers_per_stage {
        return Ok(Err(format!(
            "it binds {storage} storage buffers, the device allows {}",
            profile.max_storage_buffers_per_stage
        )));
    }
    let Some(mut gp) = k::params(g) else {
        return Ok(Err("a size past u32".into()));
    };
    if !k::fits_grid(g, profile) {
        return Ok(Err("its grid passes the dispatch limit".into()));
    }
    gp.has_bias = u32::from(io.bias.is_some());
    let mut plan = Plan::new(Op::Forward);
    let bytes = g.oc as u64 * k::PLANE_BYTES;
    let Some(blocks) = plan.scratch(profile, "conv2d_forward_planes: weight blocks", bytes, true)
    else {
        return Ok(Err(format!(
            "{bytes} bytes of weight blocks pass the binding limit"
        )));
    };
    let read = k::input_read(g, &gp, io.x);
    plan.reason(format!(
        "planes: one input channel per group, stride 1, dilation 1, kernel {}x{} <= {}x{}; \
         weights {}; input read from {}",
        g.kh,
        g.kw,
        k::MAX_KERNEL.0,
        k::MAX_KERNEL.1,
        if g.oc >= k::PER_LANE_FROM {
            format!("per lane ({} channels >= {})", g.oc, k::PER_LANE_FROM)
        } else {
            format!(
                "uniform, one dispatch per channel ({} < {})",
                g.oc,
                k::PER_LANE_FROM
            )
        },
        read.describe()
    ));
    plan.passes
        .push(conv2d_pack_planes::pass(g, &gp, io.w, blocks, profile)?);
    let bias = io.bias.unwrap_or(Buf::Zeros);
    plan.passes
        .push(k::pass(g, &gp, blocks, read, bias, io.y, profile)?);
    Ok(Ok(plan))
}

/// The implicit GEMM (padded copies, weight chunks, one dispatch per chunk, and the copy into
/// `y` where output rows are not whole vec4s), or why not. `transposed` and `up`: the input
/// gradient as a forward pass over the output gradient upsampled by `up`, with the layer's
/// weight transposed.
pub(crate) fn gemm(
    g: &Conv2dGeometry,
    io: ForwardIo,
    profile: &DeviceProfile,
    transposed: bool,
    up: Hw,
) -> Result<Result<Plan, String>> {
    let Some(mut gp) = GemmParams::new(g, CHUNK_TAPS) else {
        return Ok(Err(format!(
            "a stride past {} or a size past u32",
            uniforms::MAX_COPY_STRIDE
        )));
    };
    gp.transposed = u32::from(transposed);
    (gp.up_h, gp.up_w) = (up.h as u32, up.w as u32);
    let (blocks, chunks) = (g.groups * gp.ocb as usize, gp.chunks as usize);
    let xy = conv2d_forward_gemm::xy(g);
    if !fits(&xy, profile.max_workgroups_per_dimension) {
        return Ok(Err(format!("grid {xy:?} too large")));
    }
    let mut plan = Plan::new(Op::Forward);
    let tail = !g.taps().is_multiple_of(CHUNK_TAPS);
    let Some(copies) = conv2d_pad_copies::copies(&mut plan, profile, &gp, io.x, tail)? else {
        return Ok(Err("the padded copies do not fit".into()));
    };
    let floats = match copies {
        Buf::Scratch(i) => plan.scratch[i].bytes / 4,
        _ => (g.n * g.c * g.h * g.w) as u64,
    };
    conv2d_forward_gemm::forward_reads_within(&gp, floats)?;
    let bytes = (blocks * chunks) as u64 * CHUNK_BYTES;
    let Some(chunk_buf) = plan.scratch(profile, "conv2d_forward_gemm: weight chunks", bytes, true)
    else {
        return Ok(Err(format!(
            "{bytes} bytes of weight chunks pass the binding limit"
        )));
    };
    // output rows that are not whole vec4s go to a padded scratch output, copied into y after
    let vec4 = uniforms::VEC4;
    let padded = if g.ow.is_multiple_of(vec4) {
        None
    } else {
        let floats = g.n * g.oc * g.oh * g.ow.div_ceil(vec4) * vec4;
        let bytes = floats as u64 * uniforms::FLOAT_BYTES;
        match plan.scratch(profile, "conv2d_forward_gemm: padded output", bytes, false) {
            Some(b) => Some(b),
            None => {
                return Ok(Err(format!(
                    "{bytes} bytes of padded output pass the binding limit"
                )))
            }
        }
    };
    gp.has_bias = u32::from(io.bias.is_some());
    plan.reason(format!(
        "gemm: {} output channels per group: {blocks} block{} of {} channels x {chunks} chunk{} \
         of {CHUNK_TAPS} taps{}{}",
        g.ocpg(),
        if blocks == 1 { "" } else { "s" },
        conv2d_forward_gemm::BLOCK_CHANNELS,
        if chunks == 1 { "" } else { "s" },
        match copies {
            Buf::Scratch(_) => format!(
                ", {} padded cop{} of the input",
                gp.copy_mask.count_ones(),
                if gp.copy_mask.count_ones() == 1 {
                    "y"
                } else {
                    "ies"
                }
            ),
            _ => ", reading the input itself".into(),
        },
        if padded.is_some() {
            ", output rows padded to whole vec4s"
        } else {
            ""
        },
    ));
    let words = (bytes / 4) as usize;
    plan.passes.push(conv2d_pack_chunks::pass(
        &gp, io.w, chunk_buf, words, profile,
    )?);
    let out = padded.unwrap_or(io.y);
    let bias = io.bias.unwrap_or(Buf::Zeros);
    plan.passes.push(conv2d_forward_gemm::pass(
        g,
        &gp,
        chunk_buf,
        copies,
        bias,
        out,
        (blocks, chunks),
        profile,
    )?);
    if let Some(p) = padded {
        plan.passes
            .push(conv2d_unpad_output::pass(g, &gp, p, io.y, profile)?);
    }
    Ok(Ok(plan))
}
