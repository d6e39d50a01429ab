//! `train_step_small`: a whole training step of a small layer (forward, squared-error loss and
//! its gradient, weight and bias gradients, SGD update) in one workgroup and one dispatch.
//! A step of five dispatches costs a software adapter about five times one dispatch's fixed
//! cost, which dwarfs a small layer's arithmetic (the chapter's: 84 multiply-adds).

use super::budget::{nest_iterations, LOOP_BUDGET};
use super::plan::{Buf, Op, Pass, Plan};
use super::profile::DeviceProfile;
use super::sgd_step::Sgd;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms::{to_u32, ConvShape};
use crate::error::Result;
use crate::options::Conv2dGeometry;

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "train_step_small",
    preludes: &["conv2d_common"],
    source: shader!("conv2d_common", "train_step_small"),
    workgroup: [64, 1, 1],
    bindings: &[Access::Read, Access::Write, Access::Write],
    uniform: Uniform::Own(std::mem::size_of::<StepParams>()),
    required: false,
    trusted: false,
};

/// Outputs the kernel's workgroup array holds (`MAX_OUTPUTS` in its shader).
pub(crate) const MAX_OUTPUTS: usize = 2048;

/// Loop iterations per invocation up to which one workgroup takes the whole step: a quarter of
/// the budget, so that the one workgroup's serial work stays below what the five dispatches
/// it replaces would cost.
pub(crate) const MAX_ITERATIONS: u64 = LOOP_BUDGET / 4;

/// Uniform of `train_step_small` (`struct StepParams` in its shader).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct StepParams {
    pub s: ConvShape,
    pub has_bias: u32,
    pub outputs: u32,
    pub weights: u32,
    pub x_len: u32,
    pub bias_at: u32,
    pub vw_at: u32,
    pub vb_at: u32,
    pub _pad0: u32,
    pub scale: f32,
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
}

/// Where a small step keeps its parameters: one `state` buffer holding the weight, the bias,
/// the weight's velocity and the bias's velocity, in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StateLayout {
    pub weights: usize,
    pub biases: usize,
}

impl StateLayout {
    pub(crate) fn bias_at(self) -> usize {
        self.weights
    }
    pub(crate) fn vw_at(self) -> usize {
        self.weights + self.biases
    }
    pub(crate) fn vb_at(self) -> usize {
        2 * self.weights + self.biases
    }
    pub(crate) fn len(self) -> usize {
        2 * (self.weights + self.biases)
    }
}

/// Worst-case loop iterations of one invocation for `g`.
fn iterations(g: &Conv2dGeometry, bias: bool) -> u64 {
    let lanes = SPEC.workgroup[0] as usize;
    let outputs: usize = g.output_shape().iter().product();
    let weights: usize = g.weight_shape().iter().product();
    let len = g.n * g.oh * g.ow;
    let forward = nest_iterations(&[outputs.div_ceil(lanes), g.cpg(), g.kh, g.kw], 0);
    let tree = u64::from(lanes.trailing_zeros());
    let weight_grad = nest_iterations(&[weights.div_ceil(lanes), len], 0);
    let bias_grad = if bias {
        nest_iterations(&[g.oc.div_ceil(lanes), len], 0)
    } else {
        0
    };
    forward + tree + weight_grad + bias_grad
}

/// The plan over operands `[data (input, then target), state, loss]`, or `None` where the layer
/// is too large for one workgroup or the buffers pass the profile's limits.
pub(crate) fn plan(
    g: &Conv2dGeometry,
    bias: bool,
    scale: f32,
    sgd: &Sgd,
    profile: &DeviceProfile,
) -> Result<Option<Plan>> {
    let outputs: usize = g.output_shape().iter().product();
    let x_len: usize = g.input_shape().iter().product();
    let layout = StateLayout {
        weights: g.weight_shape().iter().product(),
        biases: if bias { g.oc } else { 0 },
    };
    let bytes = |floats: usize| (floats as u64).saturating_mul(4);
    let iterations = iterations(g, bias);
    if outputs > MAX_OUTPUTS
        || iterations > MAX_ITERATIONS
        || bytes(x_len + outputs) > profile.max_binding_bytes
        || bytes(layout.len()) > profile.max_binding_bytes
        || SPEC.storage_buffers() > profile.max_storage_buffers_per_stage
    {
        return Ok(None);
    }
    let p = StepParams {
        s: ConvShape::new(g)?,
        has_bias: u32::from(bias),
        outputs: to_u32(outputs, "outputs")?,
        weights: to_u32(layout.weights, "weights")?,
        x_len: to_u32(x_len, "input")?,
        bias_at: to_u32(layout.bias_at(), "state")?,
        vw_at: to_u32(layout.vw_at(), "state")?,
        vb_at: to_u32(layout.vb_at(), "state")?,
        _pad0: 0,
        scale,
        lr: sgd.lr,
        momentum: sgd.momentum,
        weight_decay: sgd.weight_decay,
    };
    let mut plan = Plan::new(Op::TrainStep);
    let io = [Buf::Operand(0), Buf::Operand(1), Buf::Operand(2)];
    let mut pass = Pass::new(&SPEC, io.map(Into::into), iterations);
    pass.dispatch(&p, [1, 1, 1])?;
    plan.passes.push(pass);
    plan.reason(format!(
        "a small layer ({outputs} outputs, {} weights): the whole step in one workgroup, \
         <= {iterations} loop iterations per invocation",
        layout.weights
    ));
    Ok(Some(plan))
}
