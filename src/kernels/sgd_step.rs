//! `sgd_step`: one step of SGD (with momentum and weight decay) on a parameter tensor.

use super::grid::spread;
use super::plan::{Buf, Op, Pass, Plan};
use super::profile::DeviceProfile;
use super::spec::{shader, Access, KernelSpec, Uniform};
use super::uniforms;
use crate::error::Result;

pub(crate) const SPEC: KernelSpec = KernelSpec {
    name: "sgd_step",
    preludes: &[],
    source: shader!("sgd_step"),
    workgroup: [64, 1, 1],
    bindings: &[Access::Read, Access::Write, Access::Write],
    uniform: Uniform::Own(std::mem::size_of::<SgdParams>()),
    required: true,
    trusted: false,
};

/// Uniform of `sgd_step` (`struct Params` in its shader).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct SgdParams {
    /// Parameters.
    pub count: u32,
    /// Learning rate.
    pub lr: f32,
    /// Momentum (0: plain SGD).
    pub momentum: f32,
    /// L2 weight decay.
    pub weight_decay: f32,
}

/// SGD hyper-parameters, as `torch.optim.SGD` (no dampening, no Nesterov).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sgd {
    /// Learning rate.
    pub lr: f32,
    /// Momentum; 0 for plain gradient descent.
    pub momentum: f32,
    /// L2 weight decay.
    pub weight_decay: f32,
}

impl Sgd {
    /// Plain gradient descent with learning rate `lr`.
    pub fn new(lr: f32) -> Self {
        Self {
            lr,
            momentum: 0.0,
            weight_decay: 0.0,
        }
    }
    /// With momentum.
    pub fn momentum(mut self, m: f32) -> Self {
        self.momentum = m;
        self
    }
    /// With weight decay.
    pub fn weight_decay(mut self, wd: f32) -> Self {
        self.weight_decay = wd;
        self
    }

    /// An error naming the first hyper-parameter that is not finite (NaN or infinite): the
    /// trainers refuse them rather than train on (the shaders' arithmetic and the CPU's would
    /// part ways).
    pub fn check(&self) -> crate::error::Result<()> {
        for (name, v) in [
            ("learning rate", self.lr),
            ("momentum", self.momentum),
            ("weight decay", self.weight_decay),
        ] {
            if !v.is_finite() {
                return Err(crate::error::Error::option(format!(
                    "the {name} is {v}: it must be a finite number"
                )));
            }
        }
        Ok(())
    }
}

/// The plan over operands `[grad, weight, velocity]` (the velocity used only with momentum)
/// for `count` parameters: one invocation each, no loops.
pub(crate) fn plan(count: usize, sgd: &Sgd, profile: &DeviceProfile) -> Result<Plan> {
    let p = SgdParams {
        count: uniforms::to_u32(count, "parameters")?,
        lr: sgd.lr,
        momentum: sgd.momentum,
        weight_decay: sgd.weight_decay,
    };
    let mut plan = Plan::new(Op::SgdStep);
    let io = [Buf::Operand(0), Buf::Operand(1), Buf::Operand(2)];
    let mut pass = Pass::new(&SPEC, io.map(Into::into), 0);
    let wg = SPEC.workgroup[0] as usize;
    pass.dispatch(
        &p,
        spread(
            count.div_ceil(wg),
            profile.max_workgroups_per_dimension,
            SPEC.name,
        )?,
    )?;
    plan.passes.push(pass);
    Ok(plan)
}
