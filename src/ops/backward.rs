//! The gradients: recorded into the caller's encoder, or as an async call.

use super::{expect_len, geometry, output_shape};
use crate::context::GpuContext;
use crate::error::{Error, Limit, Result};
use crate::grads::{Conv2dGrads, RawGrads, Wanted};
use crate::kernels::conv2d_bias_grad;
use crate::kernels::{Algorithm, Op};
use crate::options::{Conv2dGeometry, Conv2dOptions};
use crate::runtime::encode::Prepared;
use crate::runtime::readback::Pending;
use crate::split;
use crate::tensor::{GpuTensor, Tensor};

/// A backward pass's operands on the device, the gradients it writes (each where given), and
/// what the planner needs to know of the data.
pub(crate) struct BackwardIo<'a> {
    pub x: &'a GpuTensor,
    pub w: &'a GpuTensor,
    pub gy: &'a GpuTensor,
    pub gw: Option<&'a GpuTensor>,
    pub gx: Option<&'a GpuTensor>,
    pub gb: Option<&'a GpuTensor>,
    /// Every weight is finite (where not, the input gradient takes the direct kernel).
    pub weights_finite: bool,
}

impl GpuContext {
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
        let io = BackwardIo {
            x,
            w,
            gy,
            gw,
            gx,
            gb,
            weights_finite: true,
        };
        self.record_backward_io(encoder, g, &io, algorithm)
    }

    /// Records the gradients of `io`.
    fn record_backward_io(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        g: &Conv2dGeometry,
        io: &BackwardIo,
        algorithm: Algorithm,
    ) -> Result<()> {
        self.scoped("record_backward", || {
            let prepared = self.prepare_backward(g, io, algorithm)?;
            for p in &prepared {
                p.encode(&self.rt, encoder);
            }
            Ok(())
        })
    }

    /// The wanted gradients bound to their operands (weight, input, bias, in that order), to
    /// be recorded once or many times.
    pub(crate) fn prepare_backward(
        &self,
        g: &Conv2dGeometry,
        io: &BackwardIo,
        algorithm: Algorithm,
    ) -> Result<Vec<Prepared>> {
        let BackwardIo {
            x,
            w,
            gy,
            gw,
            gx,
            gb,
            weights_finite,
        } = *io;
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
            let plan = crate::planner::weight_grad_piece(g, &self.profile(), algorithm)?;
            let io = [&x.buffer, &gy.buffer, &gw.buffer];
            prepared.push(crate::runtime::encode::prepare(
                &self.rt,
                &self.profile(),
                &plan,
                &io,
                &[],
            )?);
        }
        if let Some(gx) = gx {
            expect_len(gx, g.input_shape(), "grad_input")?;
            let algorithm = self.tuned_algorithm(Op::InputGrad, g, false, algorithm)?;
            let plan =
                crate::planner::input_grad_piece(g, &self.profile(), algorithm, weights_finite)?;
            let io = [&w.buffer, &gy.buffer, &gx.buffer];
            prepared.push(crate::runtime::encode::prepare(
                &self.rt,
                &self.profile(),
                &plan,
                &io,
                &[],
            )?);
        }
        if let Some(gb) = gb {
            expect_len(gb, [g.oc, 1, 1, 1], "grad_bias")?;
            let plan = conv2d_bias_grad::plan(g, &self.profile())?;
            prepared.push(crate::runtime::encode::prepare(
                &self.rt,
                &self.profile(),
                &plan,
                &[&gy.buffer, &gb.buffer],
                &[],
            )?);
        }
        Ok(prepared)
    }

    /// Submits the wanted gradients from operands on the device, with their copies for
    /// reading; returns what to read and each wanted gradient's length.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward_submit(
        &self,
        g: &Conv2dGeometry,
        xg: &GpuTensor,
        wg: &GpuTensor,
        gyg: &GpuTensor,
        wanted: Wanted,
        weights_finite: bool,
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
        let io = BackwardIo {
            x: xg,
            w: wg,
            gy: gyg,
            gw: gw.as_ref(),
            gx: gx.as_ref(),
            gb: gb.as_ref(),
            weights_finite,
        };
        self.record_backward_io(&mut enc, g, &io, algorithm)?;
        let targets: Vec<&GpuTensor> = [&gw, &gx, &gb].into_iter().flatten().collect();
        let bufs: Vec<&wgpu::Buffer> = targets.iter().map(|t| &t.buffer).collect();
        let lens = [&gw, &gx, &gb].map(|t| t.as_ref().map(GpuTensor::len));
        Ok((self.rt.submit_for_read(enc, &bufs), lens))
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
            check_grad_output(&g, x, grad_output)?;
            let finite = w.data().iter().all(|v| v.is_finite());
            let submitted = self.scoped("conv2d_backward", || {
                let label = "conv2d_backward_async";
                let xg = self.upload_slice(&g.input_shape(), x.data(), label)?;
                let wg = self.upload_slice(&g.weight_shape(), w.data(), label)?;
                let gyg = self.upload_slice(&g.output_shape(), grad_output.data(), label)?;
                self.backward_submit(&g, &xg, &wg, &gyg, wanted, finite, Algorithm::Auto)
            })?;
            Ok((submitted, x.shape().to_vec(), w.shape().to_vec(), g.oc))
        })();
        async move {
            let ((pending, lens), x_shape, w_shape, oc) = submitted?;
            let raw = raw_grads(pending.read().await?, lens);
            Conv2dGrads::from_raw(raw, &x_shape, &w_shape, oc)
        }
    }
}

/// Checks that `grad_output` has the output's shape (in the input's rank).
pub(super) fn check_grad_output(
    g: &Conv2dGeometry,
    x: &Tensor,
    grad_output: &Tensor,
) -> Result<()> {
    let out_shape = output_shape(x.shape().len(), g);
    if grad_output.shape() != out_shape.as_slice() {
        return Err(Error::shape(format!(
            "grad_output has shape {:?}, the output has {:?}",
            grad_output.shape(),
            out_shape
        )));
    }
    Ok(())
}

/// Data read back for the wanted gradients (in the order weight, input, bias), each cut to its
/// length.
pub(super) fn raw_grads(data: Vec<Vec<f32>>, lens: [Option<usize>; 3]) -> RawGrads {
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
