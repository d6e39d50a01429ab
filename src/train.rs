//! Training a `Conv2d` layer by gradient descent on the squared error, on the GPU (a whole step
//! in one submission) and, as a reference, on the CPU.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::context::GpuContext;
use crate::cpu;
use crate::error::{Error, Result};
use crate::kernels::train_step_small::StateLayout;
use crate::kernels::{mse_loss, sgd_step, Algorithm, Plan, Sgd};
use crate::layer::Conv2d;
use crate::ops::{geometry, GpuTensor};
use crate::options::Conv2dGeometry;
use crate::runtime::encode::Prepared;
use crate::runtime::readback::Pending;
use crate::tensor::try_zeros;
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
/// Every [`Trainer::step`] records forward, loss, gradients and the update into one submission
/// and one compute pass, bound once when the trainer is made; the loss is read back only when
/// asked for. A small layer (such as the chapter's) takes the whole step in one dispatch
/// ([`Trainer::fused`]).
pub struct Trainer<'a> {
    ctx: &'a GpuContext,
    /// Where the weight and bias being trained live.
    params: Params,
    loss: GpuTensor,
    layer: Conv2d,
    /// A step's operations bound to their buffers, recorded every step.
    step: Vec<Prepared>,
    /// Steps taken but not yet submitted (they go with the next read, [`Trainer::flush`] or
    /// [`Trainer::layer`], or once [`MAX_PENDING_STEPS`] have gathered).
    pending: AtomicUsize,
    /// Each step's loss, kept on the device once [`Trainer::keep_losses`] was called.
    log: Mutex<Option<LossLog>>,
}

/// The losses of the steps taken since the last read, on the device: slot `i` is copied from
/// the loss buffer after the `i`-th step.
struct LossLog {
    buffer: GpuTensor,
    /// Slots recorded (steps submitted since the last read).
    len: usize,
}

/// Steps a trainer gathers, unread, before it submits them (in one compute pass).
pub const MAX_PENDING_STEPS: usize = 32;

/// The trained parameters' buffers.
enum Params {
    /// One buffer: weight, bias, and their velocities ([`StateLayout`]).
    Fused {
        state: GpuTensor,
        layout: StateLayout,
    },
    /// A buffer each (the other buffers of the step are held by its bind groups).
    Ops { w: GpuTensor, b: Option<GpuTensor> },
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
        Self::new_with(ctx, layer, x, target, sgd, Algorithm::Auto)
    }

    /// [`Trainer::new`] with a chosen convolution kernel: any but `Auto` runs the step as
    /// separate operations (forward, loss, gradients, update) with that kernel, even for a
    /// layer small enough for the one-dispatch step.
    pub fn new_with(
        ctx: &'a GpuContext,
        layer: &Conv2d,
        x: &Tensor,
        target: &Tensor,
        sgd: Sgd,
        algorithm: Algorithm,
    ) -> Result<Self> {
        sgd.check()?;
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
        let bias = layer.bias().is_some();
        let fused = crate::planner::train::fused_step(
            &g,
            bias,
            CHAPTER_LOSS_SCALE,
            &sgd,
            &ctx.profile(),
            algorithm,
        )?;
        ctx.scoped("train setup", || {
            let loss = ctx.empty(&[1], "train: loss")?;
            let (params, step) = match &fused {
                Some(plan) => Self::bind_fused(ctx, plan, layer, x, target, &loss)?,
                None => Self::bind_ops(ctx, &g, layer, x, target, &sgd, algorithm, &loss)?,
            };
            Ok(Self {
                ctx,
                params,
                loss,
                layer: layer.clone(),
                step,
                pending: AtomicUsize::new(0),
                log: Mutex::new(None),
            })
        })
    }

    /// The one-dispatch step over `[data, state, loss]`.
    fn bind_fused(
        ctx: &GpuContext,
        plan: &Plan,
        layer: &Conv2d,
        x: &Tensor,
        target: &Tensor,
        loss: &GpuTensor,
    ) -> Result<(Params, Vec<Prepared>)> {
        let layout = StateLayout {
            weights: layer.weight().len(),
            biases: layer.bias().map_or(0, Tensor::len),
        };
        let mut data = try_zeros(x.len() + target.len(), "train: data")?;
        data[..x.len()].copy_from_slice(x.data());
        data[x.len()..].copy_from_slice(target.data());
        let mut state = try_zeros(layout.len(), "train: state")?;
        state[..layout.weights].copy_from_slice(layer.weight().data());
        if let Some(b) = layer.bias() {
            state[layout.bias_at()..layout.vw_at()].copy_from_slice(b.data());
        }
        let data = ctx.upload_slice(&[data.len()], &data, "train: data")?;
        let state = ctx.upload_slice(&[state.len()], &state, "train: state")?;
        let io = [&data, &state, loss].map(GpuTensor::buffer);
        let step = vec![crate::runtime::encode::prepare(
            &ctx.rt,
            &ctx.profile(),
            plan,
            &io,
            &[],
        )?];
        Ok((Params::Fused { state, layout }, step))
    }

    /// The step as separate operations: forward, loss (before the update, as the chapter
    /// prints it), gradients, SGD update.
    #[allow(clippy::too_many_arguments)]
    fn bind_ops(
        ctx: &GpuContext,
        g: &Conv2dGeometry,
        layer: &Conv2d,
        x: &Tensor,
        target: &Tensor,
        sgd: &Sgd,
        algorithm: Algorithm,
        loss: &GpuTensor,
    ) -> Result<(Params, Vec<Prepared>)> {
        let profile = ctx.profile();
        let zeros = |shape: &[usize], label: &str| ctx.empty(shape, label);
        let (wshape, bshape) = (g.weight_shape(), [g.oc, 1, 1, 1]);
        let x = ctx.upload_slice(&g.input_shape(), x.data(), "train: input")?;
        let target = ctx.upload_slice(&g.output_shape(), target.data(), "train: target")?;
        let w = ctx.upload_slice(&wshape, layer.weight().data(), "train: weight")?;
        let b = layer
            .bias()
            .map(|b| ctx.upload_slice(&bshape, b.data(), "train: bias"))
            .transpose()?;
        let gw = zeros(&wshape, "train: grad_weight")?;
        let vw = zeros(&wshape, "train: velocity weight")?;
        let y = zeros(&g.output_shape(), "train: output")?;
        let gy = zeros(&g.output_shape(), "train: grad_output")?;

        let mut step = vec![ctx.prepare_forward(g, &x, &w, b.as_ref(), &y, algorithm)?];
        let plan = mse_loss::plan(y.len(), CHAPTER_LOSS_SCALE, &profile)?;
        let io = [&y, &target, &gy, loss].map(GpuTensor::buffer);
        step.push(crate::runtime::encode::prepare(
            &ctx.rt,
            &ctx.profile(),
            &plan,
            &io,
            &[],
        )?);
        let gb = b
            .as_ref()
            .map(|_| zeros(&bshape, "train: grad_bias"))
            .transpose()?;
        let io = crate::ops::BackwardIo {
            x: &x,
            w: &w,
            gy: &gy,
            gw: Some(&gw),
            gx: None,
            gb: gb.as_ref(),
            weights_finite: true,
        };
        let grads = ctx.prepare_backward(g, &io, algorithm)?;
        step.extend(grads);
        let plan = sgd_step::plan(w.len(), sgd, &profile)?;
        step.push(crate::runtime::encode::prepare(
            &ctx.rt,
            &ctx.profile(),
            &plan,
            &[&gw, &w, &vw].map(GpuTensor::buffer),
            &[],
        )?);
        if let (Some(b), Some(gb)) = (&b, &gb) {
            let vb = zeros(&bshape, "train: velocity bias")?;
            let plan = sgd_step::plan(b.len(), sgd, &profile)?;
            step.push(crate::runtime::encode::prepare(
                &ctx.rt,
                &ctx.profile(),
                &plan,
                &[gb, b, &vb].map(GpuTensor::buffer),
                &[],
            )?);
        }
        Ok((Params::Ops { w, b }, step))
    }

    /// Whether a step is one dispatch (a small layer, `Auto`) rather than separate operations.
    pub fn fused(&self) -> bool {
        matches!(self.params, Params::Fused { .. })
    }

    /// One step: forward, loss (before the update, as the chapter prints it), gradients, SGD
    /// update. Returns the loss when `read_loss`, after one submission of this step and those
    /// gathered since the last; else `None`, without waiting for the device and without
    /// submitting yet (up to [`MAX_PENDING_STEPS`] steps gather and go in one compute pass: on
    /// a software adapter each submission costs more than a small layer's whole step).
    /// Blocking; see [`Trainer::step_async`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn step(&mut self, read_loss: bool) -> Result<Option<f32>> {
        match self.submit_step(read_loss)? {
            Some(pending) => Ok(first_value(self.ctx.wait_read(pending)?)),
            None => Ok(None),
        }
    }

    /// Gathers one step without reading its loss, as `step(false)` does, on every target
    /// (nothing here waits): the steps go with the next read or once [`MAX_PENDING_STEPS`]
    /// have gathered.
    pub fn step_unread(&mut self) -> Result<()> {
        self.submit_step(false).map(|_| ())
    }

    /// [`Trainer::step`] without blocking: the future resolves to the loss (when `read_loss`)
    /// once the device has finished.
    pub fn step_async(
        &mut self,
        read_loss: bool,
    ) -> impl std::future::Future<Output = Result<Option<f32>>> + 'static {
        let submitted = self.submit_step(read_loss);
        async move {
            match submitted? {
                Some(pending) => Ok(first_value(pending.read().await?)),
                None => Ok(None),
            }
        }
    }

    /// Gathers the step, or submits the gathered steps (with the loss's copy when `read_loss`).
    fn submit_step(&mut self, read_loss: bool) -> Result<Option<Pending>> {
        let steps = self.pending.load(Ordering::Relaxed) + 1;
        if !read_loss && steps < MAX_PENDING_STEPS {
            self.pending.store(steps, Ordering::Relaxed);
            return Ok(None);
        }
        let ctx = self.ctx;
        ctx.scoped("train step", || {
            let enc = self.record_pending(steps)?;
            if read_loss {
                Ok(Some(ctx.rt.submit_for_read(enc, &[self.loss.buffer()])))
            } else {
                ctx.rt.queue.submit([enc.finish()]);
                Ok(None)
            }
        })
    }

    /// Submits the steps gathered so far (without waiting for them).
    pub fn flush(&self) -> Result<()> {
        let steps = self.pending.load(Ordering::Relaxed);
        if steps == 0 {
            return Ok(());
        }
        self.ctx.scoped("train steps", || {
            let enc = self.record_pending(steps)?;
            self.ctx.rt.queue.submit([enc.finish()]);
            Ok(())
        })
    }

    /// An encoder holding `steps` steps; nothing is pending after it. With a loss log, each
    /// step's pass is followed by the copy of its loss into the log.
    fn record_pending(&self, steps: usize) -> Result<wgpu::CommandEncoder> {
        self.pending.store(0, Ordering::Relaxed);
        let mut enc = self.ctx.encoder("train steps");
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(log) = log.as_mut() else {
            crate::runtime::encode::encode_repeated(&self.ctx.rt, &mut enc, &self.step, steps);
            return Ok(enc);
        };
        let need = log.len + steps;
        if need > log.buffer.len() {
            // grows by doubling; the slots recorded so far move with it
            let bigger = self
                .ctx
                .empty(&[need.max(2 * log.buffer.len())], "train: loss log")?;
            let used = (log.len * std::mem::size_of::<f32>()) as u64;
            if used > 0 {
                enc.copy_buffer_to_buffer(log.buffer.buffer(), 0, bigger.buffer(), 0, used);
            }
            log.buffer = bigger;
        }
        let f32_size = std::mem::size_of::<f32>() as u64;
        for _ in 0..steps {
            crate::runtime::encode::encode_repeated(&self.ctx.rt, &mut enc, &self.step, 1);
            let at = log.len as u64 * f32_size;
            enc.copy_buffer_to_buffer(self.loss.buffer(), 0, log.buffer.buffer(), at, f32_size);
            log.len += 1;
        }
        Ok(enc)
    }

    /// Keeps every step's loss on the device from now on, so that [`Trainer::losses`] reads
    /// the losses of many steps at once (each step then has its own compute pass and a 4-byte
    /// copy). Steps gathered but not yet submitted are logged too.
    pub fn keep_losses(&self) -> Result<()> {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        if log.is_none() {
            let buffer = self.ctx.empty(&[MAX_PENDING_STEPS], "train: loss log")?;
            *log = Some(LossLog { buffer, len: 0 });
        }
        Ok(())
    }

    /// The losses of the steps taken since [`Trainer::keep_losses`] or the previous read, in
    /// order, in one submission and one read; the log is then empty. Blocking; see
    /// [`Trainer::losses_async`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn losses(&self) -> Result<Vec<f32>> {
        match self.take_log(|log| self.ctx.download(&[log]))? {
            Some((read, len)) => Ok(logged(read?, len)),
            None => Ok(Vec::new()),
        }
    }

    /// [`Trainer::losses`] without blocking.
    pub fn losses_async(&self) -> impl std::future::Future<Output = Result<Vec<f32>>> + 'static {
        let read = self.take_log(|log| self.ctx.download_async(&[log]));
        async move {
            match read? {
                Some((read, len)) => Ok(logged(read.await?, len)),
                None => Ok(Vec::new()),
            }
        }
    }

    /// Submits the gathered steps into the log, starts `read` of its buffer and empties it:
    /// what `read` gave and how many slots were recorded (`None` when none were).
    fn take_log<R>(&self, read: impl FnOnce(&GpuTensor) -> R) -> Result<Option<(R, usize)>> {
        self.flush()?;
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(log) = log.as_mut() else {
            return Err(Error::InvalidOption(
                "the trainer keeps no losses: call keep_losses before the steps".into(),
            ));
        };
        Ok(match std::mem::take(&mut log.len) {
            0 => None,
            len => Some((read(&log.buffer), len)),
        })
    }

    /// The layer with its current (trained) weight and bias, read back from the device
    /// (blocking; see [`Trainer::layer_async`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn layer(&self) -> Result<Conv2d> {
        self.flush()?;
        self.layer_from(self.ctx.download(&self.param_tensors())?)
    }

    /// [`Trainer::layer`] without blocking.
    pub fn layer_async(&self) -> impl std::future::Future<Output = Result<Conv2d>> + 'static {
        let flushed = self.flush();
        let read = self.ctx.download_async(&self.param_tensors());
        let (layer, params) = (self.layer.clone(), self.params.layout());
        async move {
            flushed?;
            Params::into_layer(layer, params, read.await?)
        }
    }

    /// The tensors holding the trained parameters.
    fn param_tensors(&self) -> Vec<&GpuTensor> {
        match &self.params {
            Params::Fused { state, .. } => vec![state],
            Params::Ops { w, b } => std::iter::once(w).chain(b).collect(),
        }
    }

    /// The layer with the parameters read from [`Trainer::param_tensors`].
    #[cfg(not(target_arch = "wasm32"))]
    fn layer_from(&self, read: Vec<Tensor>) -> Result<Conv2d> {
        Params::into_layer(self.layer.clone(), self.params.layout(), read)
    }
}

impl Params {
    /// Where the parameters are in what [`Trainer::param_tensors`] reads: `Some` for the
    /// fused state buffer.
    fn layout(&self) -> Option<StateLayout> {
        match self {
            Params::Fused { layout, .. } => Some(*layout),
            Params::Ops { .. } => None,
        }
    }

    /// `layer` with the weight and bias from `read`.
    fn into_layer(
        mut layer: Conv2d,
        layout: Option<StateLayout>,
        read: Vec<Tensor>,
    ) -> Result<Conv2d> {
        let mut read = read.into_iter();
        match layout {
            Some(layout) => {
                let state = read.next().map(Tensor::into_data).unwrap_or_default();
                let w = state.get(..layout.weights).unwrap_or_default().to_vec();
                layer.set_weight(Tensor::new(vec![layout.weights], w)?)?;
                if layout.biases > 0 {
                    let b = state
                        .get(layout.bias_at()..layout.vw_at())
                        .unwrap_or_default()
                        .to_vec();
                    layer.set_bias(Tensor::new(vec![layout.biases], b)?)?;
                }
            }
            None => {
                if let Some(w) = read.next() {
                    layer.set_weight(w)?;
                }
                if let Some(b) = read.next() {
                    layer.set_bias(b)?;
                }
            }
        }
        Ok(layer)
    }
}

/// The first `len` values of the loss log read back.
fn logged(read: Vec<Tensor>, len: usize) -> Vec<f32> {
    let mut values = read
        .into_iter()
        .next()
        .map(Tensor::into_data)
        .unwrap_or_default();
    values.truncate(len);
    values
}

/// The first value read back (the loss).
fn first_value(data: Vec<Vec<f32>>) -> Option<f32> {
    data.first().and_then(|v| v.first().copied())
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
    sgd.check()?;
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
