use super::{groups_for, SgdParams};
use crate::context::GpuContext;
use crate::error::Result;

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
}

/// Records one SGD step on `weight` (and `velocity`, used only with momentum).
pub(crate) fn encode(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    grad: &wgpu::Buffer,
    weight: &wgpu::Buffer,
    velocity: &wgpu::Buffer,
    count: usize,
    sgd: &Sgd,
) -> Result<()> {
    let p = SgdParams {
        count: count as u32,
        lr: sgd.lr,
        momentum: sgd.momentum,
        weight_decay: sgd.weight_decay,
    };
    ctx.kernels.sgd_step.dispatch(
        &ctx.device,
        &ctx.limits,
        encoder,
        bytemuck::bytes_of(&p),
        &[grad, weight, velocity],
        groups_for(count)?,
    )
}
