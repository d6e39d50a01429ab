//! Tensors to and from the device: uploads, outputs and scratch from the pool, downloads, encoders.

use crate::context::GpuContext;
use crate::error::{Error, Limit, Result};
use crate::runtime::readback::Pending;
use crate::tensor::{GpuTensor, Tensor};

impl GpuContext {
    pub(crate) fn check_binding(&self, len: usize, what: &str) -> Result<u64> {
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
        let buffer = self.rt.pooled(
            label,
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            contents.len() as u64,
        );
        self.rt.write_counted(&buffer, contents);
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
        let buffer = self.rt.dedicated(
            label,
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            (data.len() as u64) * 4,
        );
        if !data.is_empty() {
            self.rt.write_counted(&buffer, bytemuck::cast_slice(data));
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
            buffer: self.rt.dedicated(label, usage, bytes),
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
        Ok(self.rt.pooled(
            label,
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            size,
        ))
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
    pub(crate) fn download_submit(
        &self,
        tensors: &[&GpuTensor],
    ) -> Result<(Pending, Vec<Vec<usize>>)> {
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
        Ok((self.rt.submit_for_read(encoder, &bufs), shapes))
    }

    /// A new command encoder for recording several operations into one submission.
    pub fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.rt
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }
}

/// The tensors of a submitted download, once read.
pub(super) async fn finish_download(
    pending: Pending,
    shapes: Vec<Vec<usize>>,
) -> Result<Vec<Tensor>> {
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
