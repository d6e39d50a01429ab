//! Which kernels run the input gradient, and why.

use super::plan::{Buf, Op, Plan};
use super::plan_forward::{forward_into, gemm, ForwardIo};
use super::profile::DeviceProfile;
use super::*;
use crate::error::Result;
use crate::options::{Conv2dOptions, ConvMode, Hw, Padding, PaddingMode};

/// Input channels per group (the transposed pass's output channels) from which the GPU
/// family's tiled GEMM is worth its idle lanes.
const MM_MIN_CHANNELS: usize = 4;

/// The plan of the input gradient of `g` (of `sum(y * gy)`) on `profile`, over operands
/// `[w, gy, gx]`.
pub(crate) fn plan_input_grad(
    g: &Conv2dGeometry,
    profile: &DeviceProfile,
    algorithm: Algorithm,
) -> Result<Plan> {
    let mut plan = Plan::new(Op::InputGrad);
    let a = resolved(&mut plan, g, profile, algorithm);
    let (w, gy, gx) = (Buf::Operand(0), Buf::Operand(1), Buf::Operand(2));
    if a != Algorithm::Direct {
        match as_forward(g) {
            Some((t, up)) => {
                let plain = up == Hw::new(1, 1);
                if plain && g.cpg() == 1 && g.ocpg() == 1 {
                    plan.reason(
                        "as forward: one channel in and out per group, stride 1, zero padding: \
                         the forward convolution of gy with the flipped kernel",
                    );
                    let io = ForwardIo {
                        x: gy,
                        w,
                        bias: None,
                        y: gx,
                    };
                    forward_into(&mut plan, &t, io, profile, a)?;
                    return Ok(plan);
                }
                if a == Algorithm::Gpu && t.ocpg() >= MM_MIN_CHANNELS {
                    match conv2d_forward_mm::applies(&t, profile) {
                        Ok(()) => {
                            plan.reason(format!(
                                "mm: as forward, one implicit GEMM over gy read with zero \
                                 insertion {}x{} in place (no upsampled copy), the weight read \
                                 transposed and flipped",
                                up.h, up.w
                            ));
                            let io = [gy, w, Buf::Zeros, gx];
                            plan.passes.push(conv2d_forward_mm::pass_as(
                                &t,
                                io,
                                false,
                                Some(up),
                                profile,
                            )?);
                            return Ok(plan);
                        }
                        Err(why) => plan.reason(format!("mm: not used: {why}")),
                    }
                }
                // the GPU family leaves strided layers' zero-inserted copies out (3/4 of their
                // reads and scratch are zeros): the tiled kernel reads gy as it is
                let copies_ok = a == Algorithm::Gemm || (a == Algorithm::Gpu && plain);
                if !copies_ok && a == Algorithm::Gpu && t.ocpg() > 1 {
                    plan.reason(format!(
                        "gemm: not used: stride {}x{} would need zero-inserted copies of gy",
                        up.h, up.w
                    ));
                }
                if copies_ok && t.ocpg() > 1 {
                    let io = ForwardIo {
                        x: gy,
                        w,
                        bias: None,
                        y: gx,
                    };
                    match gemm(&t, io, profile, true, up)? {
                        Ok(p) => {
                            plan.reason(format!(
                                "as forward: gy upsampled by the stride {}x{}, the weight \
                                 transposed and flipped",
                                up.h, up.w
                            ));
                            plan.append(p);
                            return Ok(plan);
                        }
                        Err(why) => plan.reason(format!("gemm: not used: {why}")),
                    }
                } else {
                    plan.reason(format!(
                        "as forward: not used: {} channel{} per group, stride {}x{}",
                        g.ocpg(),
                        if g.ocpg() == 1 { "" } else { "s" },
                        up.h,
                        up.w
                    ));
                }
            }
            None => plan.reason(format!(
                "as forward: not used: {} padding, or padding wider than the dilated kernel",
                g.padding_mode.name()
            )),
        }
        if conv2d_input_grad_tiled::applies(g, profile) {
            plan.reason("tiled: 4 input channels of a pixel per invocation");
            plan.passes
                .push(conv2d_input_grad_tiled::pass(g, [w, gy, gx], profile)?);
            return Ok(plan);
        }
        plan.reason("tiled: not used: its grid passes the dispatch limit");
    }
    plan.reason("direct: one invocation per input element");
    plan.passes
        .push(conv2d_input_grad::pass(g, [w, gy, gx], profile)?);
    Ok(plan)
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
