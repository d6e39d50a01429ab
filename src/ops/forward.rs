//! The forward convolution: recorded into the caller's encoder, or as an async call.

use super::{expect_len, geometry, output_shape};
use crate::context::GpuContext;
use crate::error::{Error, Limit, Result};
use crate::kernels::{Algorithm, Op};
use crate::options::{Conv2dGeometry, Conv2dOptions};
use crate::runtime::encode::Prepared;
use crate::split;
use crate::tensor::{GpuTensor, Tensor};

impl GpuContext {
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
                .encode(&self.rt, encoder);
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
        let plan = crate::planner::forward_piece(g, bias.is_some(), &self.profile(), algorithm)?;
        let bias = bias.map_or(&self.rt.pipelines.zeros, |b| &b.buffer);
        crate::runtime::encode::prepare(
            &self.rt,
            &self.profile(),
            &plan,
            &[&x.buffer, &w.buffer, bias, &y.buffer],
            &[],
        )
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
                Ok(self.rt.submit_for_read(enc, &[&y.buffer]))
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
