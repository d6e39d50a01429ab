//! How plans run: the wgpu objects of one device and what is kept for it, with no knowledge of
//! the context above it. A [`Runtime`] owns the device and queue, their limits, the compiled
//! pipelines, the buffer pool, the bound-plan cache and the open GPU-time measurement; the
//! modules bind a plan to buffers and encode it (`encode`), compile pipelines (`pipelines`),
//! pool buffers (`pool`), read results back (`readback`) and write timestamps (`timing`).

pub(crate) mod encode;
pub(crate) mod pipelines;
pub(crate) mod pool;
pub(crate) mod readback;
pub(crate) mod timing;

use std::sync::{Arc, Mutex};

use crate::kernels::Plan;

/// One device's wgpu objects and state.
pub(crate) struct Runtime {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) limits: wgpu::Limits,
    pub(crate) pipelines: pipelines::Pipelines,
    /// Set by the device-lost callback: why the device is gone.
    pub(crate) lost: Arc<Mutex<Option<String>>>,
    /// Idle buffers for blocking calls to reuse, and the counters.
    pub(crate) pool: pool::Pool,
    /// Small plans bound to the pooled buffers of earlier blocking calls.
    pub(crate) prepared_cache: encode::PreparedCache,
    /// Copies of the plans bound while the log is on (the context's `keep_recorded_plans`).
    pub(crate) plan_log: Mutex<Option<Vec<Plan>>>,
    /// The open GPU-time measurement, if any.
    pub(crate) stamps: Mutex<Option<timing::Stamps>>,
    /// Signalled when a measurement closes.
    pub(crate) stamps_free: std::sync::Condvar,
    /// Fill scratch buffers with NaN before each plan that uses them (the context's
    /// `set_scratch_poison`).
    pub(crate) poison_scratch: std::sync::atomic::AtomicBool,
}

impl Runtime {
    pub(crate) fn new(
        device: wgpu::Device,
        queue: wgpu::Queue,
        limits: wgpu::Limits,
        lost: Arc<Mutex<Option<String>>>,
        checked: bool,
    ) -> Self {
        let pipelines = pipelines::Pipelines::new(&device, checked);
        Self {
            device,
            queue,
            limits,
            pipelines,
            lost,
            pool: pool::Pool::default(),
            prepared_cache: Default::default(),
            plan_log: Mutex::new(None),
            stamps: Mutex::new(None),
            stamps_free: std::sync::Condvar::new(),
            poison_scratch: Default::default(),
        }
    }

    /// The device-lost flag, shared with pending reads.
    pub(crate) fn lost_flag(&self) -> Arc<Mutex<Option<String>>> {
        Arc::clone(&self.lost)
    }

    /// Keeps a copy of `plan` where the log is on.
    pub(crate) fn log_plan(&self, plan: &Plan) {
        if let Some(log) = self
            .plan_log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            log.push(plan.clone());
        }
    }
}
