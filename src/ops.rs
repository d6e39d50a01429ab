//! Tensors on the device and the blocking, one-submission-per-call operations.

use crate::context::GpuContext;
use crate::error::{Error, Limit, Result};
use crate::grads::{Conv2dGrads, RawGrads, Wanted};
use crate::kernels::conv2d_bias_grad;
use crate::kernels::{self, Algorithm, Op, Prepared};
use crate::options::{Conv2dGeometry, Conv2dOptions};
use crate::readback::Pending;
use crate::split;
use crate::tensor::Tensor;

/// A tensor living in a GPU storage buffer.
#[derive(Debug)]
pub struct GpuTensor {
    buffer: wgpu::Buffer,
    shape: Vec<usize>,
    /// The [`GpuContext::uid`] of the context that made it; 0 for a wrapped buffer of the
    /// caller's ([`GpuTensor::from_buffer`]), which any context takes.
    ctx: u64,
}

impl GpuTensor {
    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    /// True when it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The storage buffer (`f32`, row-major).
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// Another handle to the same buffer.
    pub(crate) fn handle(&self) -> GpuTensor {
        GpuTensor {
            buffer: self.buffer.clone(),
            shape: self.shape.clone(),
            ctx: self.ctx,
        }
    }

    /// Whether the two name one buffer.
    pub(crate) fn aliases(&self, other: &GpuTensor) -> bool {
        self.buffer == other.buffer
    }

    /// Wraps a buffer the caller already has (made on the same device as the context it is
    /// used with), so that a wgpu program can run this crate's kernels on its data without a
    /// trip through the CPU: the `record_*` API reads and writes it in the caller's own
    /// encoder. It must have `STORAGE` usage (and `COPY_SRC` for [`GpuContext::download`]) and
    /// hold at least the shape's `f32`s and at least 16 bytes; anything else is
    /// [`Error::UnusableBuffer`].
    ///
    /// What the caller guarantees: the buffer was made on the device of every context it is
    /// used with. wgpu cannot tell which device a buffer belongs to, so a wrapped buffer is not
    /// checked as the crate's own tensors are (those carry their context's id, and a call on
    /// another context is [`Error::WrongContext`]); a buffer of another device names an
    /// unrelated resource there.
    pub fn from_buffer(buffer: wgpu::Buffer, shape: &[usize]) -> Result<Self> {
        let usage = buffer.usage();
        if !usage.contains(wgpu::BufferUsages::STORAGE) {
            return Err(Error::UnusableBuffer(format!(
                "its usage {usage:?} lacks STORAGE, which the kernels bind"
            )));
        }
        let elements = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| Error::shape(format!("shape {shape:?} overflows")))?;
        let need = (elements as u64).saturating_mul(4);
        if buffer.size() < need {
            return Err(Error::UnusableBuffer(format!(
                "{} bytes hold fewer than the {elements} f32s of shape {shape:?} ({need} bytes)",
                buffer.size()
            )));
        }
        if buffer.size() < MIN_BINDING_BYTES {
            return Err(Error::UnusableBuffer(format!(
                "{} bytes are fewer than the {MIN_BINDING_BYTES} the kernels bind at least \
                 (one vec4); make the buffer at least {MIN_BINDING_BYTES} bytes",
                buffer.size()
            )));
        }
        Ok(GpuTensor {
            buffer,
            shape: shape.to_vec(),
            ctx: 0,
        })
    }
}

/// The fewest bytes any kernel binds an operand with (one `vec4<f32>`): every buffer the crate
/// makes has at least this many, and [`GpuTensor::from_buffer`] asks for as many.
pub(crate) const MIN_BINDING_BYTES: u64 = 16;

/// The tensors of a submitted download, once read.
async fn finish_download(pending: Pending, shapes: Vec<Vec<usize>>) -> Result<Vec<Tensor>> {
    let data = pending.read().await?;
    shapes
        .into_iter()
        .zip(data)
        .map(|(shape, mut d)| {
            d.truncate(shape.iter().product());
            Tensor::new(shape, d)
        })
        .collect()
}

/// Checks a convolution's operands and resolves its geometry. The input is rank 4 `(N,C,H,W)`,
/// rank 3 `(C,H,W)` or rank 2 `(H,W)`; the weight rank 4 `(OC, C/groups, KH, KW)` or rank 2
/// `(KH, KW)` (one channel in, one out); the bias has `OC` elements.
pub fn geometry(
    x_shape: &[usize],
    w_shape: &[usize],
    bias_len: Option<usize>,
    opts: &Conv2dOptions,
) -> Result<Conv2dGeometry> {
    let x4 = dims4(x_shape, "input")?;
    let w4 = match w_shape {
        [kh, kw] => [1, 1, *kh, *kw],
        [o, c, kh, kw] => [*o, *c, *kh, *kw],
        _ => {
            return Err(Error::shape(format!(
                "the weight must be rank 4 (OC, C/groups, KH, KW) or rank 2 (KH, KW), got shape {w_shape:?}"
            )))
        }
    };
    if x_shape.len() == 2 && w4[0] != 1 {
        // the output would be rank 2 too, which holds one channel
        return Err(Error::shape(format!(
            "a rank-2 input (H, W) gives a rank-2 output, so its weight has one output channel, \
             (KH, KW) or (1, 1, KH, KW), got {w_shape:?}; give the input as (1, H, W) for more"
        )));
    }
    let g = opts.resolve(x4, w4)?;
    if let Some(b) = bias_len {
        if b != g.oc {
            return Err(Error::shape(format!(
                "the bias has {b} elements, the weight has {} output channels",
                g.oc
            )));
        }
    }
    Ok(g)
}

fn dims4(shape: &[usize], what: &str) -> Result<[usize; 4]> {
    match shape {
        [n, c, h, w] => Ok([*n, *c, *h, *w]),
        [c, h, w] => Ok([1, *c, *h, *w]),
        [h, w] => Ok([1, 1, *h, *w]),
        _ => Err(Error::shape(format!(
            "the {what} must be rank 2 (H, W), 3 (C, H, W) or 4 (N, C, H, W), got shape {shape:?}"
        ))),
    }
}

/// The output's shape in the input's rank.
pub(crate) fn output_shape(x_rank: usize, g: &Conv2dGeometry) -> Vec<usize> {
    match x_rank {
        2 => vec![g.oh, g.ow],
        3 => vec![g.oc, g.oh, g.ow],
        _ => g.output_shape().to_vec(),
    }
}

impl GpuContext {
    fn check_binding(&self, len: usize, what: &str) -> Result<u64> {
        let bytes = (len.max(1) as u64).saturating_mul(4);
        let max = self.binding_limit();
        if bytes > max {
            return Err(Error::too_large(what, Limit::Binding, bytes, max));
        }
        Ok(bytes)
    }

    /// Copies a host tensor to the device.
    pub fn upload(&self, t: &Tensor) -> Result<GpuTensor> {
        self.upload_slice(t.shape(), t.data(), "wgpu-conv: tensor")
    }

    pub(crate) fn upload_slice(
        &self,
        shape: &[usize],
        data: &[f32],
        label: &str,
    ) -> Result<GpuTensor> {
        self.check_alive()?;
        self.check_binding(data.len(), label)?;
        let contents: &[u8] = if data.is_empty() {
            &[0u8; 4]
        } else {
            bytemuck::cast_slice(data)
        };
        let buffer = self.pooled(
            label,
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            contents.len() as u64,
        );
        self.write_counted(&buffer, contents);
        Ok(GpuTensor {
            buffer,
            shape: shape.to_vec(),
            ctx: self.uid,
        })
    }

    /// An upload into a buffer of its own, never pooled: a layer's resident weight.
    pub(crate) fn upload_resident(
        &self,
        shape: &[usize],
        data: &[f32],
        label: &str,
    ) -> Result<GpuTensor> {
        self.check_alive()?;
        self.check_binding(data.len(), label)?;
        let buffer = self.dedicated(
            label,
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            (data.len() as u64) * 4,
        );
        if !data.is_empty() {
            self.write_counted(&buffer, bytemuck::cast_slice(data));
        }
        Ok(GpuTensor {
            buffer,
            shape: shape.to_vec(),
            ctx: self.uid,
        })
    }

    /// A device tensor of its own (never pooled) for a result handed to the caller.
    pub(crate) fn output_tensor(&self, shape: &[usize], label: &str) -> Result<GpuTensor> {
        let len = crate::tensor::checked_len(shape)?;
        let bytes = self.check_binding(len, label)?;
        let usage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        Ok(GpuTensor {
            buffer: self.dedicated(label, usage, bytes),
            shape: shape.to_vec(),
            ctx: self.uid,
        })
    }

    /// A device tensor of the given shape (contents zero; inside the library's own blocking
    /// calls, a pooled buffer that the call overwrites).
    pub fn empty(&self, shape: &[usize], label: &str) -> Result<GpuTensor> {
        let len = crate::tensor::checked_len(shape)?;
        Ok(GpuTensor {
            buffer: self.scratch_buffer(label, len)?,
            shape: shape.to_vec(),
            ctx: self.uid,
        })
    }

    pub(crate) fn scratch_buffer(&self, label: &str, len: usize) -> Result<wgpu::Buffer> {
        let size = self.check_binding(len, label)?;
        Ok(self.pooled(
            label,
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            size,
        ))
    }

    /// Copies device tensors back (one submission, one wait; blocking:
    /// [`GpuContext::download_async`], waited on).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn download(&self, tensors: &[&GpuTensor]) -> Result<Vec<Tensor>> {
        self.leased(|| {
            let (pending, shapes) = self.scoped("download", || {
                let submitted = self.download_submit(tensors)?;
                self.wait_idle()?;
                Ok(submitted)
            })?;
            pollster::block_on(finish_download(pending, shapes))
        })
    }

    /// Copies device tensors back without blocking: the copies are submitted now, and the
    /// future resolves once the device has finished them. It polls the device itself (without
    /// waiting) whenever it is polled, so any executor runs it (`pollster::block_on`, tokio, a
    /// browser's event loop); it holds no borrow of the context.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), wgpu_conv::Error> {
    /// use wgpu_conv::{GpuContext, Tensor};
    /// let ctx = GpuContext::new()?;
    /// let t = ctx.upload(&Tensor::from_rows(&[[1.0, 2.0], [3.0, 4.0]]))?;
    /// let back = pollster::block_on(ctx.download_async(&[&t]))?;
    /// assert_eq!(back[0].data(), &[1.0, 2.0, 3.0, 4.0]);
    /// # Ok(()) }
    /// ```
    pub fn download_async(
        &self,
        tensors: &[&GpuTensor],
    ) -> impl std::future::Future<Output = Result<Vec<Tensor>>> + 'static {
        let submitted = self.scoped("download_async", || self.download_submit(tensors));
        async move {
            let (pending, shapes) = submitted?;
            finish_download(pending, shapes).await
        }
    }

    /// Submits the copies of `tensors` into staging buffers; returns what to read and the
    /// shapes.
    fn download_submit(&self, tensors: &[&GpuTensor]) -> Result<(Pending, Vec<Vec<usize>>)> {
        self.check_alive()?;
        for t in tensors {
            self.check_operands(&[], &[("downloaded", t)])?;
        }
        if let Some(t) = tensors
            .iter()
            .find(|t| !t.buffer.usage().contains(wgpu::BufferUsages::COPY_SRC))
        {
            return Err(Error::UnusableBuffer(format!(
                "a tensor of shape {:?} cannot be read back: its buffer lacks COPY_SRC usage",
                t.shape
            )));
        }
        let encoder = self.encoder("wgpu-conv: download");
        let bufs: Vec<&wgpu::Buffer> = tensors.iter().map(|t| &t.buffer).collect();
        let shapes = tensors.iter().map(|t| t.shape.clone()).collect();
        Ok((self.submit_for_read(encoder, &bufs), shapes))
    }

    /// Submits recorded work and blocks until the device has finished it (no readback).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn submit_and_wait(&self, encoder: wgpu::CommandEncoder) -> Result<()> {
        self.submit_scoped("submit_and_wait", encoder)
    }

    /// A new command encoder for recording several operations into one submission.
    pub fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    /// Records the forward convolution into `encoder`. Shapes must match `g`.
    pub fn record_forward(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        g: &Conv2dGeometry,
        x: &GpuTensor,
        w: &GpuTensor,
        bias: Option<&GpuTensor>,
        y: &GpuTensor,
    ) -> Result<()> {
        self.record_forward_with(encoder, g, x, w, bias, y, Algorithm::Auto)
    }

    /// [`GpuContext::record_forward`] with a chosen kernel.
    #[allow(clippy::too_many_arguments)]
    pub fn record_forward_with(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        g: &Conv2dGeometry,
        x: &GpuTensor,
        w: &GpuTensor,
        bias: Option<&GpuTensor>,
        y: &GpuTensor,
        algorithm: Algorithm,
    ) -> Result<()> {
        self.scoped("record_forward", || {
            self.prepare_forward(g, x, w, bias, y, algorithm)?
                .encode(self, encoder);
            Ok(())
        })
    }

    /// The forward pass bound to its operands, to be recorded once or many times.
    pub(crate) fn prepare_forward(
        &self,
        g: &Conv2dGeometry,
        x: &GpuTensor,
        w: &GpuTensor,
        bias: Option<&GpuTensor>,
        y: &GpuTensor,
        algorithm: Algorithm,
    ) -> Result<Prepared> {
        let mut read = vec![("input", x), ("weight", w)];
        read.extend(bias.map(|b| ("bias", b)));
        self.check_operands(&[("output", y)], &read)?;
        expect_len(x, g.input_shape(), "input")?;
        expect_len(y, g.output_shape(), "output")?;
        expect_len(w, g.weight_shape(), "weight")?;
        if let Some(b) = bias {
            expect_len(b, [g.oc, 1, 1, 1], "bias")?;
        }
        let algorithm = self.tuned_algorithm(Op::Forward, g, bias.is_some(), algorithm)?;
        let plan = kernels::plan_forward(g, bias.is_some(), &self.profile(), algorithm)?;
        let bias = bias.map_or(&self.pipelines.zeros, |b| &b.buffer);
        kernels::prepare(self, &plan, &[&x.buffer, &w.buffer, bias, &y.buffer], &[])
    }

    /// Checks a forward pass's input and output against its geometry and this context.
    pub(crate) fn check_forward_operands(
        &self,
        g: &Conv2dGeometry,
        x: &GpuTensor,
        y: &GpuTensor,
    ) -> Result<()> {
        self.check_operands(&[("output", y)], &[("input", x)])?;
        expect_len(x, g.input_shape(), "input")?;
        expect_len(y, g.output_shape(), "output")
    }

    /// Checks that every operand belongs to this context (or wraps a caller's buffer) and that
    /// no written one shares a buffer with another operand.
    pub(crate) fn check_operands(
        &self,
        written: &[(&str, &GpuTensor)],
        read: &[(&str, &GpuTensor)],
    ) -> Result<()> {
        for (role, t) in written.iter().chain(read) {
            if t.ctx != 0 && t.ctx != self.uid {
                return Err(Error::WrongContext {
                    operand: role.to_string(),
                });
            }
        }
        for (i, (role, t)) in written.iter().enumerate() {
            let others = written[i + 1..].iter().chain(read);
            if let Some((other, _)) = others.into_iter().find(|(_, o)| t.aliases(o)) {
                return Err(Error::Aliased {
                    written: role.to_string(),
                    other: other.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Records the gradients of `sum(y * gy)` into `encoder`, each where its target is given.
    #[allow(clippy::too_many_arguments)]
    pub fn record_backward(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        g: &Conv2dGeometry,
        x: &GpuTensor,
        w: &GpuTensor,
        gy: &GpuTensor,
        gw: Option<&GpuTensor>,
        gx: Option<&GpuTensor>,
        gb: Option<&GpuTensor>,
    ) -> Result<()> {
        self.record_backward_with(encoder, g, x, w, gy, gw, gx, gb, Algorithm::Auto)
    }

    /// [`GpuContext::record_backward`] with a chosen weight-gradient kernel.
    #[allow(clippy::too_many_arguments)]
    pub fn record_backward_with(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        g: &Conv2dGeometry,
        x: &GpuTensor,
        w: &GpuTensor,
        gy: &GpuTensor,
        gw: Option<&GpuTensor>,
        gx: Option<&GpuTensor>,
        gb: Option<&GpuTensor>,
        algorithm: Algorithm,
    ) -> Result<()> {
        self.scoped("record_backward", || {
            let prepared = self.prepare_backward(g, x, w, gy, gw, gx, gb, algorithm)?;
            for p in &prepared {
                p.encode(self, encoder);
            }
            Ok(())
        })
    }

    /// The wanted gradients bound to their operands (weight, input, bias, in that order), to
    /// be recorded once or many times.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn prepare_backward(
        &self,
        g: &Conv2dGeometry,
        x: &GpuTensor,
        w: &GpuTensor,
        gy: &GpuTensor,
        gw: Option<&GpuTensor>,
        gx: Option<&GpuTensor>,
        gb: Option<&GpuTensor>,
        algorithm: Algorithm,
    ) -> Result<Vec<Prepared>> {
        let mut written = Vec::new();
        written.extend(gw.map(|t| ("grad_weight", t)));
        written.extend(gx.map(|t| ("grad_input", t)));
        written.extend(gb.map(|t| ("grad_bias", t)));
        self.check_operands(
            &written,
            &[("input", x), ("weight", w), ("grad_output", gy)],
        )?;
        expect_len(x, g.input_shape(), "input")?;
        expect_len(w, g.weight_shape(), "weight")?;
        expect_len(gy, g.output_shape(), "grad_output")?;
        let mut prepared = Vec::new();
        if let Some(gw) = gw {
            expect_len(gw, g.weight_shape(), "grad_weight")?;
            let algorithm = self.tuned_algorithm(Op::WeightGrad, g, false, algorithm)?;
            let plan = kernels::plan_weight_grad(g, &self.profile(), algorithm)?;
            let io = [&x.buffer, &gy.buffer, &gw.buffer];
            prepared.push(kernels::prepare(self, &plan, &io, &[])?);
        }
        if let Some(gx) = gx {
            expect_len(gx, g.input_shape(), "grad_input")?;
            let algorithm = self.tuned_algorithm(Op::InputGrad, g, false, algorithm)?;
            let plan = kernels::plan_input_grad(g, &self.profile(), algorithm)?;
            let io = [&w.buffer, &gy.buffer, &gx.buffer];
            prepared.push(kernels::prepare(self, &plan, &io, &[])?);
        }
        if let Some(gb) = gb {
            expect_len(gb, [g.oc, 1, 1, 1], "grad_bias")?;
            let plan = conv2d_bias_grad::plan(g, &self.profile())?;
            prepared.push(kernels::prepare(
                self,
                &plan,
                &[&gy.buffer, &gb.buffer],
                &[],
            )?);
        }
        Ok(prepared)
    }

    /// The forward convolution on the GPU (one submission): `y = conv(x, w) + bias` with the
    /// options' stride, padding, dilation, groups, padding mode and mode. The output has the
    /// input's rank.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), wgpu_conv::Error> {
    /// use wgpu_conv::{Conv2dOptions, GpuContext, Tensor};
    /// let ctx = GpuContext::new()?;
    /// let x = Tensor::from_fn([1, 3, 32, 32], |i| (i[2] * 32 + i[3]) as f32)?;
    /// let w = Tensor::from_fn([8, 3, 3, 3], |_| 0.1)?;
    /// let y = ctx.conv2d(&x, &w, None, &Conv2dOptions::new().padding(1).stride(2))?;
    /// assert_eq!(y.shape(), &[1, 8, 16, 16]);
    /// # Ok(()) }
    /// ```
    #[cfg(not(target_arch = "wasm32"))]
    pub fn conv2d(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        opts: &Conv2dOptions,
    ) -> Result<Tensor> {
        self.conv2d_with(x, w, bias, opts, Algorithm::Auto)
    }

    /// [`GpuContext::conv2d`] without blocking: the operands are uploaded and the work
    /// submitted now; the future resolves to the output once the device has finished (see
    /// [`GpuContext::download_async`]). Operands past the binding limit are an
    /// [`Error::TooLarge`] here ([`GpuContext::conv2d`] splits them into several submissions).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), wgpu_conv::Error> {
    /// use wgpu_conv::{Conv2dOptions, GpuContext, Tensor};
    /// let ctx = GpuContext::new()?;
    /// let x = Tensor::from_rows(&[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]);
    /// let k = Tensor::from_rows(&[[0.0, 1.0], [2.0, 3.0]]);
    /// let y = ctx.conv2d_async(&x, &k, None, &Conv2dOptions::new());
    /// // ... other work while the device runs ...
    /// assert_eq!(pollster::block_on(y)?.data(), &[19.0, 25.0, 37.0, 43.0]);
    /// # Ok(()) }
    /// ```
    pub fn conv2d_async(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        opts: &Conv2dOptions,
    ) -> impl std::future::Future<Output = Result<Tensor>> + 'static {
        let submitted = (|| {
            let g = geometry(x.shape(), w.shape(), bias.map(Tensor::len), opts)?;
            if let Some((what, bytes)) = split::needed(&g, self.binding_limit()) {
                return Err(Error::too_large(
                    format!("conv2d_async's {what} (conv2d splits it; conv2d_async does not)"),
                    Limit::Binding,
                    bytes,
                    self.binding_limit(),
                ));
            }
            let pending = self.scoped("conv2d_forward", || {
                let xg = self.upload_slice(&g.input_shape(), x.data(), "conv2d_async: input")?;
                let wg = self.upload_slice(&g.weight_shape(), w.data(), "conv2d_async: weight")?;
                let bg = bias
                    .map(|b| self.upload_slice(&[g.oc, 1, 1, 1], b.data(), "conv2d_async: bias"))
                    .transpose()?;
                let y = self.empty(&g.output_shape(), "conv2d_async: output")?;
                let mut enc = self.encoder("conv2d_async");
                self.record_forward(&mut enc, &g, &xg, &wg, bg.as_ref(), &y)?;
                Ok(self.submit_for_read(enc, &[&y.buffer]))
            })?;
            Ok((pending, output_shape(x.shape().len(), &g)))
        })();
        async move {
            let (pending, shape) = submitted?;
            let mut data = pending.read().await?.pop().unwrap_or_default();
            data.truncate(shape.iter().product());
            Tensor::new(shape, data)
        }
    }

    /// [`GpuContext::conv2d`] with a chosen kernel.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn conv2d_with(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        opts: &Conv2dOptions,
        algorithm: Algorithm,
    ) -> Result<Tensor> {
        let g = geometry(x.shape(), w.shape(), bias.map(Tensor::len), opts)?;
        self.conv2d_resolved(&g, x, w, bias, algorithm)
    }

    /// [`GpuContext::conv2d_with`] for a geometry already resolved by [`geometry`] from these
    /// operands' shapes (a caller that checked the shapes first resolves them once).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn conv2d_resolved(
        &self,
        g: &Conv2dGeometry,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        algorithm: Algorithm,
    ) -> Result<Tensor> {
        let g = *g;
        expect_elements(x.len(), g.input_shape(), "input")?;
        expect_elements(w.len(), g.weight_shape(), "weight")?;
        if let Some(b) = bias {
            expect_elements(b.len(), [g.oc, 1, 1, 1], "bias")?;
        }
        let data = if split::needed(&g, self.binding_limit()).is_some() {
            let run = |pg: &Conv2dGeometry, x: &[f32], w: &[f32], b: Option<&[f32]>| {
                self.forward_raw(pg, x, w, b, algorithm)
            };
            let (x, w, b) = (x.data(), w.data(), bias.map(Tensor::data));
            split::forward(&g, self.binding_limit(), x, w, b, run)?
        } else {
            self.forward_raw(&g, x.data(), w.data(), bias.map(Tensor::data), algorithm)?
        };
        Tensor::new(output_shape(x.shape().len(), &g), data)
    }

    /// One submission: upload, forward, read back. The operands must fit the device.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn forward_raw(
        &self,
        g: &Conv2dGeometry,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        algorithm: Algorithm,
    ) -> Result<Vec<f32>> {
        self.leased(|| {
            self.scoped("conv2d_forward", || {
                let xg = self.upload_slice(&g.input_shape(), x, "conv2d_forward: input")?;
                let wg = self.upload_slice(&g.weight_shape(), w, "conv2d_forward: weight")?;
                let bg = bias
                    .map(|b| self.upload_slice(&[g.oc, 1, 1, 1], b, "conv2d_forward: bias"))
                    .transpose()?;
                let y = self.empty(&g.output_shape(), "conv2d_forward: output")?;
                let mut enc = self.encoder("conv2d_forward");
                self.record_forward_with(&mut enc, g, &xg, &wg, bg.as_ref(), &y, algorithm)?;
                let mut out = self.submit_and_read(enc, &[&y.buffer])?;
                let mut data = out.pop().unwrap_or_default();
                data.truncate(y.len());
                Ok(data)
            })
        })
    }

    /// The chapter's `corr2d(X, K)`: 2-D cross-correlation of a 2-D input with a 2-D kernel,
    /// output `(H-KH+1) x (W-KW+1)`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn corr2d(&self, x: &Tensor, k: &Tensor) -> Result<Tensor> {
        if x.shape().len() != 2 || k.shape().len() != 2 {
            return Err(Error::shape(format!(
                "corr2d takes 2-D tensors, got {:?} and {:?}",
                x.shape(),
                k.shape()
            )));
        }
        self.conv2d(x, k, None, &Conv2dOptions::new())
    }

    /// The gradients of `L = sum(conv(x, w) + bias) * grad_output)` with respect to the weight,
    /// the input and the bias (each only if `wanted`), in one submission. Ranks follow
    /// [`GpuContext::conv2d`]; `grad_output` has the output's shape.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn conv2d_backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        grad_output: &Tensor,
        opts: &Conv2dOptions,
        wanted: Wanted,
    ) -> Result<Conv2dGrads> {
        self.conv2d_backward_with(x, w, grad_output, opts, wanted, Algorithm::Auto)
    }

    /// [`GpuContext::conv2d_backward`] with a chosen weight-gradient kernel.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn conv2d_backward_with(
        &self,
        x: &Tensor,
        w: &Tensor,
        grad_output: &Tensor,
        opts: &Conv2dOptions,
        wanted: Wanted,
        algorithm: Algorithm,
    ) -> Result<Conv2dGrads> {
        let g = geometry(x.shape(), w.shape(), None, opts)?;
        self.conv2d_backward_resolved(&g, x, w, grad_output, wanted, algorithm)
    }

    /// [`GpuContext::conv2d_backward_with`] for a geometry already resolved by [`geometry`]
    /// from these operands' shapes.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn conv2d_backward_resolved(
        &self,
        g: &Conv2dGeometry,
        x: &Tensor,
        w: &Tensor,
        grad_output: &Tensor,
        wanted: Wanted,
        algorithm: Algorithm,
    ) -> Result<Conv2dGrads> {
        let g = *g;
        expect_elements(x.len(), g.input_shape(), "input")?;
        expect_elements(w.len(), g.weight_shape(), "weight")?;
        let algorithm = backward_algorithm(&g, x, w, grad_output, wanted, algorithm)?;
        let raw = if split::needed(&g, self.binding_limit()).is_some() {
            let run = |pg: &Conv2dGeometry, x: &[f32], w: &[f32], gy: &[f32]| {
                self.backward_raw(pg, x, w, gy, wanted, algorithm)
            };
            let (x, w, gy) = (x.data(), w.data(), grad_output.data());
            split::backward(&g, self.binding_limit(), x, w, gy, wanted, run)?
        } else {
            self.backward_raw(
                &g,
                x.data(),
                w.data(),
                grad_output.data(),
                wanted,
                algorithm,
            )?
        };
        Conv2dGrads::from_raw(raw, x.shape(), w.shape(), g.oc)
    }

    /// One submission: upload, the wanted gradients, read back. The operands must fit.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn backward_raw(
        &self,
        g: &Conv2dGeometry,
        x: &[f32],
        w: &[f32],
        gy: &[f32],
        wanted: Wanted,
        algorithm: Algorithm,
    ) -> Result<RawGrads> {
        self.leased(|| {
            self.scoped("conv2d_backward", || {
                let xg = self.upload_slice(&g.input_shape(), x, "conv2d_backward: input")?;
                let wg = self.upload_slice(&g.weight_shape(), w, "conv2d_backward: weight")?;
                let gyg =
                    self.upload_slice(&g.output_shape(), gy, "conv2d_backward: grad_output")?;
                self.backward_read(g, &xg, &wg, &gyg, wanted, algorithm)
            })
        })
    }

    /// One submission: the wanted gradients from operands on the device, read back.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn backward_read(
        &self,
        g: &Conv2dGeometry,
        xg: &GpuTensor,
        wg: &GpuTensor,
        gyg: &GpuTensor,
        wanted: Wanted,
        algorithm: Algorithm,
    ) -> Result<RawGrads> {
        let (pending, lens) = self.backward_submit(g, xg, wg, gyg, wanted, algorithm)?;
        Ok(raw_grads(self.wait_read(pending)?, lens))
    }

    /// Submits the wanted gradients from operands on the device, with their copies for
    /// reading; returns what to read and each wanted gradient's length.
    pub(crate) fn backward_submit(
        &self,
        g: &Conv2dGeometry,
        xg: &GpuTensor,
        wg: &GpuTensor,
        gyg: &GpuTensor,
        wanted: Wanted,
        algorithm: Algorithm,
    ) -> Result<(Pending, [Option<usize>; 3])> {
        let make = |on: bool, shape: &[usize], label: &str| {
            on.then(|| self.empty(shape, label)).transpose()
        };
        let gw = make(
            wanted.weight,
            &g.weight_shape(),
            "conv2d_backward: grad_weight",
        )?;
        let gx = make(
            wanted.input,
            &g.input_shape(),
            "conv2d_backward: grad_input",
        )?;
        let gb = make(wanted.bias, &[g.oc, 1, 1, 1], "conv2d_backward: grad_bias")?;
        let mut enc = self.encoder("conv2d_backward");
        self.record_backward_with(
            &mut enc,
            g,
            xg,
            wg,
            gyg,
            gw.as_ref(),
            gx.as_ref(),
            gb.as_ref(),
            algorithm,
        )?;
        let targets: Vec<&GpuTensor> = [&gw, &gx, &gb].into_iter().flatten().collect();
        let bufs: Vec<&wgpu::Buffer> = targets.iter().map(|t| &t.buffer).collect();
        let lens = [&gw, &gx, &gb].map(|t| t.as_ref().map(GpuTensor::len));
        Ok((self.submit_for_read(enc, &bufs), lens))
    }

    /// [`GpuContext::conv2d_backward`] without blocking: the operands are uploaded and the
    /// work submitted now; the future resolves to the gradients once the device has finished
    /// (see [`GpuContext::download_async`]). Operands past the binding limit are an
    /// [`Error::TooLarge`] here ([`GpuContext::conv2d_backward`] splits them).
    pub fn conv2d_backward_async(
        &self,
        x: &Tensor,
        w: &Tensor,
        grad_output: &Tensor,
        opts: &Conv2dOptions,
        wanted: Wanted,
    ) -> impl std::future::Future<Output = Result<Conv2dGrads>> + 'static {
        let submitted = (|| {
            let g = geometry(x.shape(), w.shape(), None, opts)?;
            if let Some((what, bytes)) = split::needed(&g, self.binding_limit()) {
                return Err(Error::too_large(
                    format!("conv2d_backward_async's {what} (conv2d_backward splits it)"),
                    Limit::Binding,
                    bytes,
                    self.binding_limit(),
                ));
            }
            let algorithm = backward_algorithm(&g, x, w, grad_output, wanted, Algorithm::Auto)?;
            let submitted = self.scoped("conv2d_backward", || {
                let label = "conv2d_backward_async";
                let xg = self.upload_slice(&g.input_shape(), x.data(), label)?;
                let wg = self.upload_slice(&g.weight_shape(), w.data(), label)?;
                let gyg = self.upload_slice(&g.output_shape(), grad_output.data(), label)?;
                self.backward_submit(&g, &xg, &wg, &gyg, wanted, algorithm)
            })?;
            Ok((submitted, x.shape().to_vec(), w.shape().to_vec(), g.oc))
        })();
        async move {
            let ((pending, lens), x_shape, w_shape, oc) = submitted?;
            let raw = raw_grads(pending.read().await?, lens);
            Conv2dGrads::from_raw(raw, &x_shape, &w_shape, oc)
        }
    }

    /// The chapter's `corr2d` without blocking (see [`GpuContext::conv2d_async`]).
    pub fn corr2d_async(
        &self,
        x: &Tensor,
        k: &Tensor,
    ) -> impl std::future::Future<Output = Result<Tensor>> + 'static {
        let two_d = x.shape().len() == 2 && k.shape().len() == 2;
        let shapes = (x.shape().to_vec(), k.shape().to_vec());
        let run = two_d.then(|| self.conv2d_async(x, k, None, &Conv2dOptions::new()));
        async move {
            match run {
                Some(run) => run.await,
                None => Err(Error::shape(format!(
                    "corr2d takes 2-D tensors, got {:?} and {:?}",
                    shapes.0, shapes.1
                ))),
            }
        }
    }
}

/// Checks that `grad_output` has the output's shape (in the input's rank) and returns the
/// algorithm a backward pass takes: the fast input-gradient kernels run a forward pass over the
/// zero-padded output gradient, where a padding position times an infinite weight is NaN and
/// the exact gradient, which has no such term, is finite; so non-finite weights take the direct
/// kernels, which skip those positions.
fn backward_algorithm(
    g: &Conv2dGeometry,
    x: &Tensor,
    w: &Tensor,
    grad_output: &Tensor,
    wanted: Wanted,
    algorithm: Algorithm,
) -> Result<Algorithm> {
    let out_shape = output_shape(x.shape().len(), g);
    if grad_output.shape() != out_shape.as_slice() {
        return Err(Error::shape(format!(
            "grad_output has shape {:?}, the output has {:?}",
            grad_output.shape(),
            out_shape
        )));
    }
    if wanted.input && w.data().iter().any(|v| !v.is_finite()) {
        return Ok(Algorithm::Direct);
    }
    Ok(algorithm)
}

/// Data read back for the wanted gradients (in the order weight, input, bias), each cut to its
/// length.
fn raw_grads(data: Vec<Vec<f32>>, lens: [Option<usize>; 3]) -> RawGrads {
    let mut data = data.into_iter();
    let [gw, gx, gb] = lens.map(|len| {
        len.map(|len| {
            let mut d = data.next().unwrap_or_default();
            d.truncate(len);
            d
        })
    });
    (gw, gx, gb)
}

fn expect_elements(len: usize, shape: [usize; 4], what: &str) -> Result<()> {
    let want: usize = shape.iter().product();
    if len != want {
        return Err(Error::shape(format!(
            "{what} has {len} elements, the geometry's {shape:?} has {want}"
        )));
    }
    Ok(())
}

fn expect_len(t: &GpuTensor, shape: [usize; 4], what: &str) -> Result<()> {
    let want: usize = shape.iter().product();
    if t.len() != want {
        return Err(Error::shape(format!(
            "{what} has shape {:?} ({} elements), expected {shape:?}",
            t.shape,
            t.len()
        )));
    }
    Ok(())
}
