//! Which kernels run the input gradient, and why: the candidates in their order of choice.
//! Where the input gradient is itself a forward convolution (zero padding), the first three
//! run it as one, over the output gradient with the weight transposed and flipped.

use super::candidates::{choose, Candidate, Outcome, BLOCKED, EVERY, GEMM_FAMILY, GPU_FAMILY};
use super::forward::{forward_into, gemm, Forward, ForwardIo};
use crate::error::Result;
use crate::kernels::plan::{Buf, Op, Plan};
use crate::kernels::{
    conv2d_forward_mm, conv2d_input_grad, conv2d_input_grad_tiled, resolved, Algorithm,
    DeviceProfile,
};
use crate::options::{Conv2dGeometry, Conv2dOptions, ConvMode, Hw, Padding, PaddingMode};

/// Input channels per group (the transposed pass's output channels) from which the GPU
/// family's tiled GEMM is worth its idle lanes.
const MM_MIN_CHANNELS: usize = 4;

/// What an input-gradient candidate plans for, over operands `[w, gy, gx]`.
pub(crate) struct InputGrad {
    g: Conv2dGeometry,
    profile: DeviceProfile,
    /// The algorithm the plan resolved to (the forward pass it may become takes it too).
    algorithm: Algorithm,
    /// The input gradient as a forward convolution, and the zero insertion it reads gy with.
    as_forward: Option<(Conv2dGeometry, Hw)>,
}

const W: Buf = Buf::Operand(0);
const GY: Buf = Buf::Operand(1);
const GX: Buf = Buf::Operand(2);

/// The input gradient's candidates, in their order of choice.
pub(crate) const CANDIDATES: &[Candidate<InputGrad>] = &[
    Candidate {
        name: "as forward",
        algorithms: BLOCKED,
        try_plan: as_forward_plain,
    },
    Candidate {
        name: "core",
        algorithms: GPU_FAMILY,
        try_plan: core,
    },
    Candidate {
        name: "phase",
        algorithms: GEMM_FAMILY,
        try_plan: |i| {
            use crate::kernels::conv2d_input_grad_phase as k;
            if let Err(why) = k::applies(&i.g, &i.profile) {
                return Ok(Outcome::Declined(why));
            }
            if let Some(why) = cpu_family_keeps_zeros(i) {
                return Ok(Outcome::Declined(why));
            }
            let mut plan = Plan::new(Op::InputGrad);
            plan.reason(format!(
                "phase: stride {}x{}, {} input channel{} per group: {} dense correlations of gy \
                 with the kernel's phases in one dispatch, {} columns x every channel per \
                 invocation, no inserted zeros",
                i.g.stride.h,
                i.g.stride.w,
                i.g.cpg(),
                if i.g.cpg() == 1 { "" } else { "s" },
                i.g.stride.h * i.g.stride.w,
                k::PX
            ));
            plan.passes.push(k::pass(&i.g, [W, GY, GX], &i.profile)?);
            Ok(Outcome::Taken(plan))
        },
    },
    Candidate {
        name: "core phases",
        algorithms: GEMM_FAMILY,
        try_plan: core_phases,
    },
    Candidate {
        name: "mm",
        algorithms: GPU_FAMILY,
        try_plan: mm,
    },
    Candidate {
        name: "gemm",
        algorithms: GEMM_FAMILY,
        try_plan: gemm_upsampled,
    },
    Candidate {
        name: "tiled",
        algorithms: BLOCKED,
        try_plan: |i| {
            if !conv2d_input_grad_tiled::applies(&i.g, &i.profile) {
                return Ok(Outcome::Declined(
                    "its grid passes the dispatch limit".into(),
                ));
            }
            let mut plan = Plan::new(Op::InputGrad);
            plan.reason("tiled: 4 input channels of a pixel per invocation");
            plan.passes.push(conv2d_input_grad_tiled::pass(
                &i.g,
                [W, GY, GX],
                &i.profile,
            )?);
            Ok(Outcome::Taken(plan))
        },
    },
    Candidate {
        name: "direct",
        algorithms: EVERY,
        try_plan: |i| {
            let mut plan = Plan::new(Op::InputGrad);
            plan.reason("direct: one invocation per input element");
            plan.passes
                .push(conv2d_input_grad::pass(&i.g, [W, GY, GX], &i.profile)?);
            Ok(Outcome::Taken(plan))
        },
    },
];

/// The plan of the input gradient of `g` (of `sum(y * gy)`) on `profile`, over operands
/// `[w, gy, gx]`. Where a weight is not finite (`weights_finite` false), the direct kernel:
/// the others run a forward pass over the zero-padded output gradient, where a padding
/// position times an infinite weight is NaN and the exact gradient, which has no such term,
/// is finite; the direct kernel skips those positions.
pub(crate) fn plan_input_grad(
    g: &Conv2dGeometry,
    profile: &DeviceProfile,
    algorithm: Algorithm,
    weights_finite: bool,
) -> Result<Plan> {
    let mut plan = Plan::new(Op::InputGrad);
    let mut a = resolved(&mut plan, g, profile, algorithm);
    if !weights_finite && a != Algorithm::Direct {
        plan.reason(format!(
            "non-finite weights: direct instead of {}, which would multiply the zero padding \
             by them (NaN where the exact gradient is finite)",
            a.name()
        ));
        a = Algorithm::Direct;
    }
    let input = InputGrad {
        g: *g,
        profile: profile.clone(),
        algorithm: a,
        as_forward: as_forward(g),
    };
    choose(&mut plan, a, CANDIDATES, &input)?;
    Ok(plan)
}

/// Why the input gradient is no forward convolution.
fn no_forward(g: &Conv2dGeometry) -> Outcome {
    Outcome::Declined(format!(
        "{} padding, or padding wider than the dilated kernel",
        g.padding_mode.name()
    ))
}

/// One channel in and out per group, stride 1: the forward convolution of gy with the flipped
/// kernel, by the forward pass's own candidates.
fn as_forward_plain(i: &InputGrad) -> Result<Outcome> {
    let Some((t, up)) = &i.as_forward else {
        return Ok(no_forward(&i.g));
    };
    if *up != Hw::new(1, 1) || i.g.cpg() != 1 || i.g.ocpg() != 1 {
        return Ok(Outcome::Declined(format!(
            "{} channel{} per group, stride {}x{}",
            i.g.ocpg(),
            if i.g.ocpg() == 1 { "" } else { "s" },
            up.h,
            up.w
        )));
    }
    let mut plan = Plan::new(Op::InputGrad);
    plan.reason(
        "as forward: one channel in and out per group, stride 1, zero padding: the forward \
         convolution of gy with the flipped kernel",
    );
    let io = ForwardIo {
        x: GY,
        w: W,
        bias: None,
        y: GX,
    };
    forward_into(&mut plan, t, io, &i.profile, i.algorithm)?;
    Ok(Outcome::Taken(plan))
}

/// Stride 1: the GEMM core as forward over gy, the weight packed transposed and flipped, or why
/// not.
fn core(i: &InputGrad) -> Result<Outcome> {
    let Some((t, up)) = &i.as_forward else {
        return Ok(no_forward(&i.g));
    };
    if *up != Hw::new(1, 1) {
        return Ok(Outcome::Declined(format!(
            "stride {}x{}: the core multiplies no inserted zeros",
            up.h, up.w
        )));
    }
    let io = ForwardIo {
        x: GY,
        w: W,
        bias: None,
        y: GX,
    };
    let f = Forward::new(*t, io, i.profile.clone());
    let out = super::forward::core(&f, true)?;
    Ok(match out {
        Outcome::Taken(mut p) => {
            p.reasons.insert(
                0,
                "as forward over gy, the weight packed transposed and flipped:".into(),
            );
            Outcome::Taken(p)
        }
        declined => declined,
    })
}

/// A strided layer: per phase of gx a tap reaches, one GEMM core pass over gy with the phase's
/// sub-kernel (packed transposed and reversed, a pack per phase), writing the phase's rows and
/// columns of gx; zeros for the phases none reaches. No inserted zero is multiplied. Or why
/// not.
fn core_phases(i: &InputGrad) -> Result<Outcome> {
    use crate::kernels::conv2d_pack_core::{self as pack, Taps};
    use crate::kernels::{conv2d_core as k, conv2d_zero_phase, phases, reduce_partials};
    let g = &i.g;
    if g.stride == Hw::new(1, 1) {
        return Ok(Outcome::Declined("stride 1: one phase".into()));
    }
    let cpu_family = i.algorithm == Algorithm::Gemm;
    if let Some(why) = cpu_family_keeps_zeros(i) {
        return Ok(Outcome::Declined(why));
    }
    if g.padding_mode != PaddingMode::Zeros {
        return Ok(Outcome::Declined(format!(
            "{} padding",
            g.padding_mode.name()
        )));
    }
    if g.cpg() < MM_MIN_CHANNELS {
        return Ok(Outcome::Declined(format!(
            "{} input channels per group (< {MM_MIN_CHANNELS}) would leave most of a tile idle",
            g.cpg()
        )));
    }
    let all: Vec<_> = phases::phases(g)
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
    // each phase as a forward pass over gy, and the slices of K that fill the device best for
    // the phase that wants the most (the phases run one after another; one slice count for all,
    // so that one sum of the slices finishes them)
    let mut forwards = Vec::new();
    let mut slices = 1;
    for ph in &all {
        if !ph.has_taps() {
            forwards.push(None);
            continue;
        }
        let Some((f, skip)) = ph.as_forward(g) else {
            return Err(crate::error::Error::Internal(format!(
                "a phase with taps has no forward pass: {ph:?}"
            )));
        };
        if let Err(why) = k::applies(&f, &i.profile) {
            return Ok(Outcome::Declined(why));
        }
        if !cpu_family {
            slices = slices.max(k::CoreShape::new(&f).slices);
        }
        forwards.push(Some((f, skip)));
    }
    let mut plan = Plan::new(Op::InputGrad);
    let elements = g.n * g.c * g.h * g.w;
    let partials = if slices > 1 {
        let buf = plan.scratch(
            &i.profile,
            "conv2d_core: slices of a split K",
            (slices * elements) as u64 * 4,
            false,
        );
        if buf.is_none() {
            slices = 1;
        }
        buf
    } else {
        None
    };
    let out = partials.unwrap_or(GX);
    let mut shapes = Vec::new();
    let mut zeros = 0;
    for (ph, f) in all.iter().zip(&forwards) {
        let Some((f, skip)) = f else {
            plan.passes
                .push(conv2d_zero_phase::pass(g, ph, out, slices, &i.profile)?);
            zeros += 1;
            continue;
        };
        let s = k::CoreShape::new(f).with_slices(slices);
        let packed_bytes = s.packed_floats() as u64 * 4;
        let Some(packed) = plan.scratch(
            &i.profile,
            "conv2d_pack_core: a phase's packed weight",
            packed_bytes,
            false,
        ) else {
            return Ok(Outcome::Declined(format!(
                "{packed_bytes} bytes of a phase's packed weight pass the binding limit"
            )));
        };
        let taps = Taps {
            layer: Hw::new(g.kh, g.kw),
            first: Hw::new(ph.y.tap0, ph.x.tap0),
            step: Hw::new(ph.y.tap_step, ph.x.tap_step),
            reverse: true,
            mirror: g.mode == ConvMode::Convolution,
        };
        plan.passes
            .push(pack::pass(f, &s, [W, packed], &taps, true, &i.profile)?);
        let place = k::Placement {
            plane: Hw::new(g.h, g.w),
            first: Hw::new(ph.y.first, ph.x.first),
            step: g.stride,
            skip: *skip,
        };
        plan.passes.push(k::pass(
            f,
            &s,
            [GY, packed, Buf::Zeros, out],
            false,
            &place,
            &i.profile,
        )?);
        shapes.push(format!("{}x{}", f.kh, f.kw));
    }
    if let Some(partials) = partials {
        reduce_partials::sliced_passes(&mut plan, &i.profile, partials, GX, elements, slices)?;
    }
    plan.reasons.insert(
        0,
        format!(
            "core phases: stride {}x{}: {} phase{} of gx, one GEMM core pass over gy each with \
             its taps of the kernel (sub-kernels {}), packed transposed and reversed{}; no \
             inserted zero is multiplied{}",
            g.stride.h,
            g.stride.w,
            all.len(),
            if all.len() == 1 { "" } else { "s" },
            if shapes.is_empty() {
                "none".to_string()
            } else {
                shapes.join(", ")
            },
            match zeros {
                0 => String::new(),
                z => format!(
                    "; {z} phase{} no tap reaches, zeros",
                    if z == 1 { "" } else { "s" }
                ),
            },
            match slices {
                1 if cpu_family => "; no K split (the CPU family: the phases' tiles fill a \
                                    software adapter's cores, and no partials are summed)"
                    .to_string(),
                1 => String::new(),
                s => format!(
                    "; K split into {s} slices (alone, a phase would fill fewer than {} \
                     workgroups per SM of {}), summed in order",
                    k::MIN_WORKGROUPS_PER_SM,
                    k::REFERENCE_SMS
                ),
            }
        ),
    );
    Ok(Outcome::Taken(plan))
}

/// Why the CPU family keeps its kernels over the zero-inserted gy (gemm) or with idle
/// stride-parity lanes (tiled) instead of a phase split: below a stride of 2x2 they waste
/// less than 3/4 of their work. At 2x2 the phases measured 3.4-4.5x gemm's speed (resnet_down,
/// the core per phase) and 5.3x tiled's (stem_7x7, the phase kernel) on lavapipe and llvmpipe
/// GL. `None` where the phases are taken.
fn cpu_family_keeps_zeros(i: &InputGrad) -> Option<String> {
    let s = i.g.stride;
    (i.algorithm == Algorithm::Gemm && s.h * s.w < 4).then(|| {
        format!(
            "CPU family, stride {}x{}: its kernels over the zero-inserted gy waste less than 3/4 \
             of their work there",
            s.h, s.w
        )
    })
}

/// The GPU family's implicit GEMM over gy read with zero insertion in place, or why not.
fn mm(i: &InputGrad) -> Result<Outcome> {
    let Some((t, up)) = &i.as_forward else {
        return Ok(no_forward(&i.g));
    };
    if t.ocpg() < MM_MIN_CHANNELS {
        return Ok(Outcome::Declined(format!(
            "{} input channels per group (< {MM_MIN_CHANNELS}) would leave most of a tile idle",
            t.ocpg()
        )));
    }
    if let Err(why) = conv2d_forward_mm::applies(t, &i.profile) {
        return Ok(Outcome::Declined(why));
    }
    let mut plan = Plan::new(Op::InputGrad);
    plan.reason(format!(
        "mm: as forward, one implicit GEMM over gy read with zero insertion {}x{} in place \
         (no upsampled copy), the weight read transposed and flipped",
        up.h, up.w
    ));
    let io = [GY, W, Buf::Zeros, GX];
    plan.passes.push(conv2d_forward_mm::pass_as(
        t,
        io,
        false,
        Some(*up),
        &i.profile,
    )?);
    Ok(Outcome::Taken(plan))
}

/// The CPU family's implicit GEMM over gy upsampled by the stride, or why not. The GPU family
/// leaves strided layers' zero-inserted copies out (3/4 of their reads and scratch are zeros):
/// the tiled kernel reads gy as it is.
fn gemm_upsampled(i: &InputGrad) -> Result<Outcome> {
    let Some((t, up)) = &i.as_forward else {
        return Ok(no_forward(&i.g));
    };
    let plain = *up == Hw::new(1, 1);
    if i.algorithm == Algorithm::Gpu && !plain {
        return Ok(Outcome::Declined(format!(
            "stride {}x{} would need zero-inserted copies of gy",
            up.h, up.w
        )));
    }
    if t.ocpg() <= 1 {
        return Ok(Outcome::Declined("one input channel per group".into()));
    }
    let io = ForwardIo {
        x: GY,
        w: W,
        bias: None,
        y: GX,
    };
    match gemm(t, io, &i.profile, true, *up)? {
        Ok(p) => {
            let mut plan = Plan::new(Op::InputGrad);
            plan.reason(format!(
                "as forward: gy upsampled by the stride {}x{}, the weight transposed and flipped",
                up.h, up.w
            ));
            plan.append(p);
            Ok(Outcome::Taken(plan))
        }
        Err(why) => Ok(Outcome::Declined(why)),
    }
}

/// Where the input gradient is itself a forward convolution (zero padding no wider than the
/// dilated kernel): its geometry and the zero insertion it reads `gy` `[N, OC, OH, OW]` with
/// (the stride: `gy` upsampled to `(OH - 1) * stride + 1` rows, and so on), the weight flipped
/// and transposed (`[C, OC/groups, KH, KW]`; with one channel in and out per group, the weight
/// as it is), writing `[N, C, H, W]`.
fn as_forward(g: &Conv2dGeometry) -> Option<(Conv2dGeometry, Hw)> {
    if g.padding_mode != PaddingMode::Zeros {
        return None;
    }
    let (eh, ew) = (g.dilation.h * (g.kh - 1), g.dilation.w * (g.kw - 1));
    let (hu, wu) = ((g.oh - 1) * g.stride.h + 1, (g.ow - 1) * g.stride.w + 1);
    // padding before: the dilated kernel's reach less the layer's; after: whatever makes the
    // output H x W again
    let before = |p: usize, e: usize| e.checked_sub(p);
    let after = |size: usize, up: usize, p: usize| (size + p).checked_sub(up);
    let opts = Conv2dOptions {
        stride: Hw::new(1, 1),
        padding: Padding::Explicit {
            top: before(g.pad_top, eh)?,
            left: before(g.pad_left, ew)?,
            bottom: after(g.h, hu, g.pad_top)?,
            right: after(g.w, wu, g.pad_left)?,
        },
        dilation: g.dilation,
        groups: g.groups,
        padding_mode: PaddingMode::Zeros,
        mode: match g.mode {
            ConvMode::CrossCorrelation => ConvMode::Convolution,
            ConvMode::Convolution => ConvMode::CrossCorrelation,
        },
    };
    let t = opts
        .resolve([g.n, g.oc, hu, wu], [g.c, g.ocpg(), g.kh, g.kw])
        .ok()?;
    (t.output_shape() == g.input_shape()).then_some((t, g.stride))
}
