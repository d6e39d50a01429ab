//! Reading results back without blocking: the copies into staging buffers are submitted, each
//! staging buffer's `map_async` reports through a futures-intrusive oneshot channel, and a
//! future awaits them. On native backends mapping completes only when the device is polled, so
//! the future polls it (without waiting) each time it is polled and wakes itself until the
//! maps are done: it runs on any executor. The blocking calls wait on the device once and then
//! resolve the same future at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_intrusive::channel::shared::{oneshot_channel, OneshotReceiver};

use super::Runtime;
use crate::error::{Error, Result};

/// Submitted copies waiting to be mapped and read.
pub(crate) struct Pending {
    device: wgpu::Device,
    lost: Arc<Mutex<Option<String>>>,
    staging: Vec<(wgpu::Buffer, u64)>,
    receivers: Vec<OneshotReceiver<std::result::Result<(), wgpu::BufferAsyncError>>>,
}

/// `inner`, with the device polled (without waiting) before each poll of it, and a wake-up
/// asked for while it is pending.
struct DevicePolled<'a, F> {
    device: &'a wgpu::Device,
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for DevicePolled<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // errors (a lost device) show in the lost flag and in the map's own result
        let _ = self.device.poll(wgpu::PollType::Poll);
        match self.inner.as_mut().poll(cx) {
            Poll::Ready(v) => Poll::Ready(v),
            // a browser maps on its event loop, and the map's callback wakes this future;
            // waking it here would keep the loop from ever getting there
            Poll::Pending if cfg!(target_arch = "wasm32") => Poll::Pending,
            Poll::Pending => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}

impl Runtime {
    /// Copies each of `outputs` into a staging buffer at the end of `encoder`, submits it, and
    /// asks for the staging buffers to be mapped; nothing waits.
    pub(crate) fn submit_for_read(
        &self,
        mut encoder: wgpu::CommandEncoder,
        outputs: &[&wgpu::Buffer],
    ) -> Pending {
        let staging: Vec<(wgpu::Buffer, u64)> = outputs
            .iter()
            .map(|b| {
                let s = self.pooled(
                    "wgpu-conv: readback staging",
                    wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    b.size(),
                );
                encoder.copy_buffer_to_buffer(b, 0, &s, 0, b.size());
                (s, b.size())
            })
            .collect();
        self.queue.submit([encoder.finish()]);
        let receivers = staging
            .iter()
            .map(|(s, len)| {
                let (tx, rx) = oneshot_channel();
                s.slice(..*len).map_async(wgpu::MapMode::Read, move |r| {
                    let _ = tx.send(r);
                });
                rx
            })
            .collect();
        Pending {
            device: self.device.clone(),
            lost: self.lost_flag(),
            staging,
            receivers,
        }
    }
}

impl Pending {
    /// The staging buffers' contents, once mapped.
    pub(crate) async fn read(self) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(self.staging.len());
        for ((s, len), rx) in self.staging.iter().zip(&self.receivers) {
            let mapped = DevicePolled {
                device: &self.device,
                inner: Box::pin(rx.receive()),
            }
            .await;
            if let Some(reason) = self.lost.lock().ok().and_then(|g| g.clone()) {
                return Err(Error::DeviceLost(reason));
            }
            match mapped {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(Error::Readback(e.to_string())),
                None => return Err(Error::Readback("the map callback never ran".into())),
            }
            let view = s
                .slice(..*len)
                .get_mapped_range()
                .map_err(|e| Error::Readback(e.to_string()))?;
            let floats = bytemuck::cast_slice::<u8, f32>(&view);
            let mut host = Vec::new();
            host.try_reserve_exact(floats.len()).map_err(|_| {
                Error::HostOutOfMemory(format!("readback: {} bytes do not fit", view.len()))
            })?;
            host.extend_from_slice(floats);
            out.push(host);
            drop(view);
            s.unmap();
        }
        Ok(out)
    }
}
