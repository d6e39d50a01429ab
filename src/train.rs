//! Training a `Conv2d` layer by gradient descent on the squared error, on the GPU (a whole step
//! in one submission) and, as a reference, on the CPU.

use crate::context::GpuContext;
use crate::cpu;
use crate::error::{Error, Result};
use crate::kernels::{self, mse_loss, sgd_step, Sgd};
use crate::layer::Conv2d;
use crate::ops::{geometry, GpuTensor};
use crate::options::Conv2dGeometry;
use crate::tensor::Tensor;

/// Whether a target of shape `target` fits an output of shape `output`: the same shape, or it
/// less some of its leading 1s (a target `(6, 7)` for an output `(1, 1, 6, 7)`).
pub fn target_fits(target: &[usize], output: &[usize]) -> bool {
    target.len() <= output.len()
        && output[..output.len() - target.len()]
            .iter()
            .all(|&d| d == 1)
        && output[output.len() - target.len()..] == *target
}

/// The chapter's loss is the plain sum of squares.
const CHAPTER_LOSS_SCALE: f32 = 1.0;

/// Trains one layer to map `x` to `target` under the chapter's loss `sum (y - target)^2`.
/// Every [`Trainer::step`] records forward, loss, gradients and the update into one submission;
/// the loss is read back only when asked for.
pub struct Trainer<'a> {
    ctx: &'a GpuContext,
    g: Conv2dGeometry,
    x: GpuTensor,
    target: GpuTensor,
    w: GpuTensor,
    b: Option<GpuTensor>,
    gw: GpuTensor,
    gb: Option<GpuTensor>,
    vw: GpuTensor,
    vb: Option<GpuTensor>,
    y: GpuTensor,
    gy: GpuTensor,
    loss: GpuTensor,
    sgd: Sgd,
    layer: Conv2d,
}

impl<'a> Trainer<'a> {
    /// Uploads the layer, the data and the optimizer state. `target` must have the output's
    /// shape (leading 1s may be left out). The loss is the chapter's plain sum of squares (scale 1).
    pub fn new(
        ctx: &'a GpuContext,
        layer: &Conv2d,
        x: &Tensor,
        target: &Tensor,
        sgd: Sgd,
    ) -> Result<Self> {
        let g = geometry(
            x.shape(),
            layer.weight().shape(),
            layer.bias().map(Tensor::len),
            layer.options(),
        )?;
        if !target_fits(target.shape(), &g.output_shape()) {
            return Err(Error::shape(format!(
                "target has shape {:?}, the layer's output is {:?}",
                target.shape(),
                g.output_shape()
            )));
        }
        let zeros = |shape: &[usize], label: &str| ctx.empty(shape, label);
        let wshape = g.weight_shape();
        let bshape = [g.oc, 1, 1, 1];
        Ok(Self {
            ctx,
            x: ctx.upload_slice(&g.input_shape(), x.data(), "train: input")?,
            target: ctx.upload_slice(&g.output_shape(), target.data(), "train: target")?,
            w: ctx.upload_slice(&wshape, layer.weight().data(), "train: weight")?,
            b: layer
                .bias()
                .map(|b| ctx.upload_slice(&bshape, b.data(), "train: bias"))
                .transpose()?,
            gw: zeros(&wshape, "train: grad_weight")?,
            gb: layer
                .bias()
                .map(|_| zeros(&bshape, "train: grad_bias"))
                .transpose()?,
            vw: zeros(&wshape, "train: velocity weight")?,
            vb: layer
                .bias()
                .map(|_| zeros(&bshape, "train: velocity bias"))
                .transpose()?,
            y: zeros(&g.output_shape(), "train: output")?,
            gy: zeros(&g.output_shape(), "train: grad_output")?,
            loss: zeros(&[1], "train: loss")?,
            g,
            sgd,
            layer: layer.clone(),
        })
    }

    /// One step: forward, loss (before the update, as the chapter prints it), gradients, SGD
    /// update, in one submission. Returns the loss when `read_loss`, else `None` without
    /// waiting for the device.
    pub fn step(&mut self, read_loss: bool) -> Result<Option<f32>> {
        let ctx = self.ctx;
        ctx.scoped("train step", || {
            let mut enc = ctx.encoder("train step");
            let g = &self.g;
            ctx.record_forward(&mut enc, g, &self.x, &self.w, self.b.as_ref(), &self.y)?;
            let profile = ctx.profile();
            let loss = mse_loss::plan(self.y.len(), CHAPTER_LOSS_SCALE, &profile)?;
            let io = [&self.y, &self.target, &self.gy, &self.loss];
            kernels::record(ctx, &mut enc, &loss, &io.map(GpuTensor::buffer))?;
            ctx.record_backward(
                &mut enc,
                g,
                &self.x,
                &self.w,
                &self.gy,
                Some(&self.gw),
                None,
                self.gb.as_ref(),
            )?;
            let step = sgd_step::plan(self.w.len(), &self.sgd, &profile)?;
            let io = [&self.gw, &self.w, &self.vw];
            kernels::record(ctx, &mut enc, &step, &io.map(GpuTensor::buffer))?;
            if let (Some(b), Some(gb), Some(vb)) = (&self.b, &self.gb, &self.vb) {
                let step = sgd_step::plan(b.len(), &self.sgd, &profile)?;
                kernels::record(ctx, &mut enc, &step, &[gb, b, vb].map(GpuTensor::buffer))?;
            }
            if read_loss {
                let out = ctx.submit_and_read(enc, &[self.loss.buffer()])?;
                Ok(out.first().and_then(|v| v.first().copied()))
            } else {
                ctx.queue.submit([enc.finish()]);
                Ok(None)
            }
        })
    }

    /// The layer with its current (trained) weight and bias, read back from the device.
    pub fn layer(&self) -> Result<Conv2d> {
        let mut tensors = vec![&self.w];
        if let Some(b) = &self.b {
            tensors.push(b);
        }
        let mut read = self.ctx.download(&tensors)?.into_iter();
        let mut layer = self.layer.clone();
        if let Some(w) = read.next() {
            layer.set_weight(w)?;
        }
        if let Some(b) = read.next() {
            layer.set_bias(b)?;
        }
        Ok(layer)
    }
}

/// The CPU twin of [`Trainer`]: the same steps with the CPU reference (sums in `f64`, weights
/// kept in `f32` as on the GPU). Returns the trained layer and the loss of every step.
pub fn train_cpu(
    layer: &Conv2d,
    x: &Tensor,
    target: &Tensor,
    sgd: Sgd,
    steps: usize,
) -> Result<(Conv2d, Vec<f64>)> {
    let g = geometry(
        x.shape(),
        layer.weight().shape(),
        layer.bias().map(Tensor::len),
        layer.options(),
    )?;
    let mut w = layer.weight().data().to_vec();
    let mut b = layer.bias().map(|b| b.data().to_vec());
    let mut vw = vec![0f32; w.len()];
    let mut vb = vec![0f32; g.oc];
    let mut losses = Vec::with_capacity(steps);
    for _ in 0..steps {
        let y = cpu::conv2d_forward(&g, x.data(), &w, b.as_deref()).to_f32();
        let (loss, gy) = cpu::mse_loss(&y, target.data(), 1.0);
        losses.push(loss.values[0]);
        let gy = gy.to_f32();
        let gw = cpu::conv2d_weight_grad(&g, x.data(), &gy).to_f32();
        cpu::sgd_step(&mut w, &gw, &mut vw, sgd.lr, sgd.momentum, sgd.weight_decay);
        if let Some(b) = b.as_mut() {
            let gb = cpu::conv2d_bias_grad(&g, &gy).to_f32();
            cpu::sgd_step(b, &gb, &mut vb, sgd.lr, sgd.momentum, sgd.weight_decay);
        }
    }
    let mut out = layer.clone();
    out.set_weight(Tensor::new(layer.weight().shape().to_vec(), w)?)?;
    if let Some(b) = b {
        out.set_bias(Tensor::new(vec![g.oc], b)?)?;
    }
    Ok((out, losses))
}
