//! Which kernels run the weight gradient, and why: the candidates in their order of choice.

use super::candidates::{choose, Candidate, Outcome, BLOCKED, EVERY, GEMM_FAMILY, GPU_FAMILY};
use crate::error::Result;
use crate::kernels::conv2d_forward_gemm::CHUNK_TAPS;
use crate::kernels::plan::{Buf, Op, Pass, Plan};
use crate::kernels::{
    conv2d_forward_planes, conv2d_pad_copies, conv2d_weight_grad, conv2d_weight_grad_gemm,
    conv2d_weight_grad_mm, conv2d_weight_grad_planes, conv2d_weight_grad_tiled, reduce_partials,
    resolved, Algorithm, DeviceProfile, GemmParams,
};
use crate::options::Conv2dGeometry;

/// What a weight-gradient candidate plans for, over operands `[x, gy, gw]`.
pub(crate) struct WeightGrad {
    g: Conv2dGeometry,
    profile: DeviceProfile,
}

/// The weight gradient's candidates, in their order of choice.
pub(crate) const CANDIDATES: &[Candidate<WeightGrad>] = &[
    Candidate {
        name: "planes",
        algorithms: GEMM_FAMILY,
        try_plan: |w| Ok(planes(&w.g, &w.profile)?.into()),
    },
    Candidate {
        name: "core",
        algorithms: GPU_FAMILY,
        try_plan: |w| Ok(core(&w.g, &w.profile)?.into()),
    },
    Candidate {
        name: "mm",
        algorithms: GPU_FAMILY,
        try_plan: |w| Ok(mm(&w.g, &w.profile)?.into()),
    },
    Candidate {
        name: "gemm",
        algorithms: GEMM_FAMILY,
        try_plan: |w| {
            if w.g.ocpg() > 1 {
                Ok(gemm(&w.g, &w.profile)?.into())
            } else {
                Ok(Outcome::Declined("one output channel per group".into()))
            }
        },
    },
    Candidate {
        name: "tiled",
        algorithms: BLOCKED,
        try_plan: |w| {
            if conv2d_weight_grad_tiled::applies(&w.g, &w.profile) {
                Ok(Outcome::Taken(sliced(&w.g, &w.profile, true)?))
            } else {
                Ok(Outcome::Declined(
                    "its grid passes the dispatch limit".into(),
                ))
            }
        },
    },
    Candidate {
        name: "direct",
        algorithms: EVERY,
        try_plan: |w| Ok(Outcome::Taken(sliced(&w.g, &w.profile, false)?)),
    },
];

/// The plan of the weight gradient of `g` (of `sum(y * gy)`) on `profile`, over operands
/// `[x, gy, gw]`: partial sums per slice of the reduction, then their fixed-order sum.
pub(crate) fn plan_weight_grad(
    g: &Conv2dGeometry,
    profile: &DeviceProfile,
    algorithm: Algorithm,
) -> Result<Plan> {
    let mut plan = Plan::new(Op::WeightGrad);
    let a = resolved(&mut plan, g, profile, algorithm);
    let input = WeightGrad {
        g: *g,
        profile: profile.clone(),
    };
    choose(&mut plan, a, CANDIDATES, &input)?;
    Ok(plan)
}

/// The tiled (`tiled`) or direct kernel over slices of the reduction, then the sum of the
/// slices' partials (none where the direct kernel has one slice).
fn sliced(g: &Conv2dGeometry, profile: &DeviceProfile, tiled: bool) -> Result<Plan> {
    let mut plan = Plan::new(Op::WeightGrad);
    let elements: usize = g.weight_shape().iter().product();
    let slicing = if tiled {
        conv2d_weight_grad_tiled::slicing(g, profile)?
    } else {
        conv2d_weight_grad::slicing(profile, elements, g.n * g.oh * g.ow)?
    };
    // the direct kernel writes `partials[element * slices + slice]`: with one slice, that is
    // the gradient itself, with no sum of partials to run
    let single = !tiled && slicing.1 == 1;
    let partials = if single {
        plan.reason("one slice: the direct kernel writes the gradient, no sum of partials");
        Buf::Operand(2)
    } else {
        plan.scratch_floats(
            profile,
            "conv2d_weight_grad: partials",
            elements * slicing.1,
        )?
    };
    let io = [Buf::Operand(0), Buf::Operand(1), partials];
    let (what, pass) = if tiled {
        let pass = conv2d_weight_grad_tiled::pass(g, io, slicing, profile)?;
        ("tiled: 4 output channels x 4 taps per invocation", pass)
    } else {
        let pass = conv2d_weight_grad::pass(g, io, slicing, profile)?;
        ("direct: one workgroup per weight element and slice", pass)
    };
    plan.reason(format!(
        "{what}, {} slices of {} terms",
        slicing.1, slicing.0
    ));
    plan.passes.push(pass);
    if !single {
        reduce_partials::passes(
            &mut plan,
            profile,
            partials,
            Buf::Operand(2),
            elements,
            slicing.1,
        )?;
    }
    Ok(plan)
}

/// Output channels per group from which the split-K GEMM (64 channels a tile) is worth its idle
/// lanes.
const MM_MIN_CHANNELS: usize = 4;

/// The GEMM core's weight gradient and the sum of its slices, or why not.
fn core(g: &Conv2dGeometry, profile: &DeviceProfile) -> Result<Result<Plan, String>> {
    use crate::kernels::conv2d_weight_grad_core as k;
    if g.ocpg() < MM_MIN_CHANNELS {
        return Ok(Err(format!(
            "{} output channels per group (< {MM_MIN_CHANNELS}) would leave most of a tile idle",
            g.ocpg()
        )));
    }
    let elements: usize = g.weight_shape().iter().product();
    let most = (profile.max_binding_bytes / (elements.max(1) as u64 * 4)) as usize;
    let s = k::WeightGradShape::new(g, most);
    if let Err(why) = k::applies(g, &s, profile) {
        return Ok(Err(why));
    }
    let mut plan = Plan::new(Op::WeightGrad);
    let out = if s.slices > 1 {
        match partials(&mut plan, profile, elements, s.slices) {
            Ok(b) => b,
            Err(why) => return Ok(Err(why)),
        }
    } else {
        Buf::Operand(2)
    };
    plan.reason(format!(
        "core: split-K GEMM, tiles of {} channels x {} taps, {} slice{} of {} steps of {} \
         output pixels{}",
        crate::kernels::conv2d_core::TILE_M,
        crate::kernels::conv2d_core::TILE_N,
        s.slices,
        if s.slices == 1 { "" } else { "s" },
        s.slice_steps,
        crate::kernels::conv2d_core::TILE_K,
        if s.slices > 1 {
            ", then their fixed-order sum"
        } else {
            ""
        }
    ));
    plan.passes.push(k::pass(
        g,
        &s,
        [Buf::Operand(0), Buf::Operand(1), out],
        profile,
    )?);
    if s.slices > 1 {
        reduce_partials::sliced_passes(
            &mut plan,
            profile,
            out,
            Buf::Operand(2),
            elements,
            s.slices,
        )?;
    }
    Ok(Ok(plan))
}

/// `conv2d_weight_grad_mm` and the sum of its partials, or why not.
fn mm(g: &Conv2dGeometry, profile: &DeviceProfile) -> Result<Result<Plan, String>> {
    if g.ocpg() < MM_MIN_CHANNELS {
        return Ok(Err(format!(
            "{} output channels per group (< {MM_MIN_CHANNELS}) would leave most of a tile idle",
            g.ocpg()
        )));
    }
    let (slice_len, slices) = match conv2d_weight_grad_mm::slicing(g, profile)? {
        Ok(s) => s,
        Err(why) => return Ok(Err(why)),
    };
    let elements: usize = g.weight_shape().iter().product();
    let mut plan = Plan::new(Op::WeightGrad);
    let partials = match partials(&mut plan, profile, elements, slices) {
        Ok(b) => b,
        Err(why) => return Ok(Err(why)),
    };
    plan.reason(format!(
        "mm: split-K GEMM, tiles of {} channels x {} taps in workgroup memory, {slices} \
         slices of {slice_len} output pixels, then their fixed-order sum",
        conv2d_weight_grad_mm::TILE_M,
        conv2d_weight_grad_mm::TILE_N
    ));
    let io = [Buf::Operand(0), Buf::Operand(1), partials];
    plan.passes.push(conv2d_weight_grad_mm::pass(
        g,
        io,
        (slice_len, slices),
        profile,
    )?);
    reduce_partials::passes(
        &mut plan,
        profile,
        partials,
        Buf::Operand(2),
        elements,
        slices,
    )?;
    Ok(Ok(plan))
}

/// `conv2d_weight_grad_gemm`, or why not.
fn gemm(g: &Conv2dGeometry, profile: &DeviceProfile) -> Result<Result<Plan, String>> {
    let Some(mut gp) = GemmParams::new(g, CHUNK_TAPS) else {
        return Ok(Err("a stride past 8 or a size past u32".into()));
    };
    let (slices, slice_rows) = match conv2d_weight_grad_gemm::slicing(g, profile)? {
        Ok(s) => s,
        Err(why) => return Ok(Err(why)),
    };
    gp.slices = slices as u32;
    gp.slice_rows = slice_rows as u32;
    let elements: usize = g.weight_shape().iter().product();
    let mut plan = Plan::new(Op::WeightGrad);
    plan.reason(format!(
        "gemm: {} output channels per group: 8 taps x 4 channels per invocation, {slices} \
         slices of {slice_rows} output rows",
        g.ocpg()
    ));
    let done = with_copies(&mut plan, profile, &gp, elements, slices, |io| {
        conv2d_weight_grad_gemm::pass(g, &gp, io, profile)
    })?;
    Ok(done.map(|()| plan))
}

/// `conv2d_weight_grad_planes`, or why not. The input is read as
/// [`conv2d_forward_planes::input_read`] decides, dy as vec4s of its rows where they are whole
/// vec4s, else as floats: no copies.
fn planes(g: &Conv2dGeometry, profile: &DeviceProfile) -> Result<Result<Plan, String>> {
    use conv2d_forward_planes as k;
    if let Err(why) = k::applies(g, true) {
        return Ok(Err(why));
    }
    let storage = conv2d_weight_grad_planes::SPEC.storage_buffers();
    if storage > profile.max_storage_buffers_per_stage {
        return Ok(Err(format!(
            "it binds {storage} storage buffers, the device allows {}",
            profile.max_storage_buffers_per_stage
        )));
    }
    let Some(mut gp) = k::params(g) else {
        return Ok(Err("a size past u32".into()));
    };
    let slicing = match conv2d_weight_grad_planes::slicing(g, profile)? {
        Ok(s) => s,
        Err(why) => return Ok(Err(why)),
    };
    let (strips, row_slices, slice_rows) = slicing;
    gp.slice_rows = slice_rows as u32;
    let slices = g.n * row_slices * strips;
    let elements = g.c * g.taps();
    let mut plan = Plan::new(Op::WeightGrad);
    let partials = match partials(&mut plan, profile, elements, slices) {
        Ok(b) => b,
        Err(why) => return Ok(Err(why)),
    };
    let float_dy = !g.ow.is_multiple_of(4);
    let dy = Buf::Operand(1);
    let read = k::input_read(g, &gp, Buf::Operand(0));
    plan.reason(format!(
        "planes: one channel in and out per group, stride 1, dilation 1, kernel {}x{}: \
         {slices} slices ({row_slices} of {slice_rows} rows x {strips} strips of 4 columns per \
         image); input read from {}; dy read {}",
        g.kh,
        g.kw,
        read.describe(),
        if float_dy {
            "as floats of dy itself"
        } else {
            "as vec4s of dy itself"
        }
    ));
    plan.passes.push(conv2d_weight_grad_planes::pass(
        g,
        &gp,
        (read, dy, partials),
        float_dy,
        slicing,
        profile,
    )?);
    reduce_partials::passes(
        &mut plan,
        profile,
        partials,
        Buf::Operand(2),
        elements,
        slices,
    )?;
    Ok(Ok(plan))
}

/// The passes around a GEMM-family weight-gradient kernel: the partials, the row-padded output
/// gradient and the input copies, the kernel (`kernel([copies, dy, partials])`), then the
/// fixed-order sum of `elements x slices` partials into operand 2. `Err(why)` where a buffer
/// would pass the binding limit.
fn with_copies(
    plan: &mut Plan,
    profile: &DeviceProfile,
    gp: &GemmParams,
    elements: usize,
    slices: usize,
    kernel: impl FnOnce([Buf; 3]) -> Result<Pass>,
) -> Result<Result<(), String>> {
    let partials = match partials(plan, profile, elements, slices) {
        Ok(b) => b,
        Err(why) => return Ok(Err(why)),
    };
    let Some(rows) = gp.row_padded() else {
        return Ok(Err("the row-padded output gradient passes u32".into()));
    };
    let Some(dy) = conv2d_pad_copies::copies(plan, profile, &rows, Buf::Operand(1), false)? else {
        return Ok(Err("the row-padded output gradient does not fit".into()));
    };
    let Some(copies) = conv2d_pad_copies::copies(plan, profile, gp, Buf::Operand(0), false)? else {
        return Ok(Err("the padded input copies do not fit".into()));
    };
    plan.passes.push(kernel([copies, dy, partials])?);
    reduce_partials::passes(plan, profile, partials, Buf::Operand(2), elements, slices)?;
    Ok(Ok(()))
}

/// The scratch buffer of `elements x slices` partial sums, or why it does not fit.
fn partials(
    plan: &mut Plan,
    profile: &DeviceProfile,
    elements: usize,
    slices: usize,
) -> Result<Buf, String> {
    let bytes = (elements as u64)
        .saturating_mul(slices as u64)
        .saturating_mul(4);
    plan.scratch(profile, "weight gradient partials", bytes, false)
        .ok_or_else(|| format!("{bytes} bytes of partial sums pass the binding limit"))
}
