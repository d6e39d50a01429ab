//! The blocking calls (native targets only): each submits its work and waits for it.

use super::backward::{check_grad_output, raw_grads};
use super::transfer::finish_download;
use super::{expect_elements, geometry, output_shape};
use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::grads::{Conv2dGrads, RawGrads, Wanted};
use crate::kernels::Algorithm;
use crate::options::{Conv2dGeometry, Conv2dOptions};
use crate::split;
use crate::tensor::{GpuTensor, Tensor};

impl GpuContext {
    /// Copies device tensors back (one submission, one wait; blocking:
    /// [`GpuContext::download_async`], waited on).
    pub fn download(&self, tensors: &[&GpuTensor]) -> Result<Vec<Tensor>> {
        self.rt.leased(|| {
            let (pending, shapes) = self.scoped("download", || {
                let submitted = self.download_submit(tensors)?;
                self.wait_idle()?;
                Ok(submitted)
            })?;
            pollster::block_on(finish_download(pending, shapes))
        })
    }

    /// Submits recorded work and blocks until the device has finished it (no readback).
    pub fn submit_and_wait(&self, encoder: wgpu::CommandEncoder) -> Result<()> {
        self.submit_scoped("submit_and_wait", encoder)
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
    pub fn conv2d(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        opts: &Conv2dOptions,
    ) -> Result<Tensor> {
        self.conv2d_with(x, w, bias, opts, Algorithm::Auto)
    }

    /// [`GpuContext::conv2d`] with a chosen kernel.
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
    pub(crate) fn forward_raw(
        &self,
        g: &Conv2dGeometry,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        algorithm: Algorithm,
    ) -> Result<Vec<f32>> {
        self.rt.leased(|| {
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
        check_grad_output(&g, x, grad_output)?;
        let finite = w.data().iter().all(|v| v.is_finite());
        let raw = if split::needed(&g, self.binding_limit()).is_some() {
            let run = |pg: &Conv2dGeometry, x: &[f32], w: &[f32], gy: &[f32]| {
                self.backward_raw(pg, x, w, gy, wanted, finite, algorithm)
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
                finite,
                algorithm,
            )?
        };
        Conv2dGrads::from_raw(raw, x.shape(), w.shape(), g.oc)
    }

    /// One submission: upload, the wanted gradients, read back. The operands must fit.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward_raw(
        &self,
        g: &Conv2dGeometry,
        x: &[f32],
        w: &[f32],
        gy: &[f32],
        wanted: Wanted,
        weights_finite: bool,
        algorithm: Algorithm,
    ) -> Result<RawGrads> {
        self.rt.leased(|| {
            self.scoped("conv2d_backward", || {
                let xg = self.upload_slice(&g.input_shape(), x, "conv2d_backward: input")?;
                let wg = self.upload_slice(&g.weight_shape(), w, "conv2d_backward: weight")?;
                let gyg =
                    self.upload_slice(&g.output_shape(), gy, "conv2d_backward: grad_output")?;
                self.backward_read(g, &xg, &wg, &gyg, wanted, weights_finite, algorithm)
            })
        })
    }

    /// One submission: the wanted gradients from operands on the device, read back.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward_read(
        &self,
        g: &Conv2dGeometry,
        xg: &GpuTensor,
        wg: &GpuTensor,
        gyg: &GpuTensor,
        wanted: Wanted,
        weights_finite: bool,
        algorithm: Algorithm,
    ) -> Result<RawGrads> {
        let (pending, lens) =
            self.backward_submit(g, xg, wg, gyg, wanted, weights_finite, algorithm)?;
        Ok(raw_grads(self.wait_read(pending)?, lens))
    }
}
