//! The GPU context: adapter, device and queue (from the environment or from the caller), the
//! compiled kernels, and readback.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::kernels::{required_storage_buffers, DeviceProfile, Family};

/// What a context runs on.
pub use wgpu::AdapterInfo;

/// A device, its queue and the kernels built for it. `Send + Sync`: share one between threads.
///
/// ```no_run
/// # fn main() -> Result<(), wgpu_conv::Error> {
/// let ctx = wgpu_conv::GpuContext::new()?;
/// println!("running on {}", ctx.describe());
/// # Ok(()) }
/// ```
pub struct GpuContext {
    /// The device, its queue and what runs on them.
    pub(crate) rt: crate::runtime::Runtime,
    info: AdapterInfo,
    /// An error that escaped every error scope (the uncaptured-error handler's catch; wgpu's
    /// own handler would panic): the next call returns it.
    uncaptured: Arc<Mutex<Option<Error>>>,
    /// Errors seen so far (caught by a scope or by the uncaptured-error handler): cached device
    /// state filled by a submission counts as filled only if none came after it was recorded
    /// (wgpu runs a failed submission's completion callbacks too).
    errors: Arc<AtomicU64>,
    binding_cap: AtomicU64,
    /// The most workgroup memory plans assume (`set_workgroup_storage_limit`).
    workgroup_cap: std::sync::atomic::AtomicU32,
    /// The kernel family asked for (`WGPU_CONV_KERNELS`, or [`GpuContext::set_family`]).
    family: Mutex<Family>,
    /// Held for the whole of each call on backends that cannot take calls from several threads
    /// at once (wgpu's GL backend shares one GL context and panics when it waits on it too
    /// long); `None` elsewhere.
    serial: Option<Mutex<()>>,
    /// Autotuning's switch and cache.
    pub(crate) tuner: crate::planner::tuned::Autotuner,
    /// This context's number in the process: a layer's resident weights belong to one.
    pub(crate) uid: u64,
    /// In a browser, the instance and adapter the device came from, kept alive with it.
    origin: Option<(wgpu::Instance, wgpu::Adapter)>,
}

/// A thread's turn on a context of a backend that takes one thread at a time.
pub(crate) struct Turn<'a> {
    _guard: std::sync::MutexGuard<'a, ()>,
    uid: u64,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        TURNS.with(|t| t.borrow_mut().retain(|&u| u != self.uid));
    }
}

thread_local! {
    /// The contexts whose turn this thread holds.
    static TURNS: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `s` on one line (wgpu's messages run over many), at most 600 characters.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn one_line(s: &str) -> String {
    let joined = s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let mut out: String = joined.chars().take(600).collect();
    if out.len() < joined.len() {
        out.push_str("...");
    }
    out
}

/// The next context's [`GpuContext::uid`].
static NEXT_CONTEXT: AtomicU64 = AtomicU64::new(1);

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.describe())
            .finish()
    }
}

/// An instance for `backends`, other settings from the environment.
fn instance_for(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

/// The instance for the backends `WGPU_BACKEND` names (all of them when it is unset).
#[cfg(not(target_arch = "wasm32"))]
fn instance_from_env() -> wgpu::Instance {
    instance_for(wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all()))
}

/// In a browser, the one adapter its WebGPU hands out.
#[cfg(target_arch = "wasm32")]
async fn candidate_adapters() -> (Option<wgpu::Instance>, Vec<wgpu::Adapter>) {
    let instance = instance_for(wgpu::Backends::BROWSER_WEBGPU);
    let adapter = instance
        .request_adapter(&wgpu::RequestAdapterOptions::default())
        .await
        .ok();
    (Some(instance), adapter.into_iter().collect())
}

/// The adapters to choose from: those of `WGPU_BACKEND` when set; otherwise Vulkan / Metal /
/// DX12 first and GL only when those have none (probing GL without a display makes some EGL
/// drivers print warnings).
#[cfg(not(target_arch = "wasm32"))]
async fn candidate_adapters() -> (Option<wgpu::Instance>, Vec<wgpu::Adapter>) {
    if let Some(b) = wgpu::Backends::from_env() {
        return (None, instance_for(b).enumerate_adapters(b).await);
    }
    let primary = instance_for(wgpu::Backends::PRIMARY)
        .enumerate_adapters(wgpu::Backends::PRIMARY)
        .await;
    if !primary.is_empty() {
        return (None, primary);
    }
    let secondary = instance_for(wgpu::Backends::SECONDARY)
        .enumerate_adapters(wgpu::Backends::SECONDARY)
        .await;
    (None, secondary)
}

/// The backend names `WGPU_BACKEND` takes (comma-separated, any case): those of wgpu 30's
/// `Backends::from_comma_list`, which skips any other name with only a log warning.
pub const BACKEND_NAMES: &[&str] = &[
    "vulkan", "vk", "metal", "mtl", "dx12", "d3d12", "gl", "opengl", "gles", "webgpu", "noop",
];

/// `WGPU_CONV_CHECKED`: 1 (or true) keeps naga's runtime checks on every kernel; 0, false or
/// unset leaves them off where the crate proves them unneeded.
fn checked_from_env() -> Result<bool> {
    match crate::error::env_var("WGPU_CONV_CHECKED")?
        .as_deref()
        .map(str::trim)
    {
        None | Some("" | "0" | "false") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(other) => Err(Error::option(format!(
            "WGPU_CONV_CHECKED={}: 1 or true (checks on), 0 or false (off where proven)",
            crate::error::quoted(other)
        ))),
    }
}

/// Checks `WGPU_BACKEND` (when set) names only backends wgpu knows: a typo is an error naming
/// the bad value, not "no adapter found".
pub fn check_backend_env() -> Result<()> {
    let Some(value) = crate::error::env_var("WGPU_BACKEND")? else {
        return Ok(());
    };
    let bad: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|b| !BACKEND_NAMES.contains(&b.to_lowercase().as_str()))
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    let shown: String = value.chars().take(60).collect();
    Err(Error::InvalidOption(format!(
        "WGPU_BACKEND={shown:?} names no backend ({}); use one of {}",
        bad.join(", ").chars().take(60).collect::<String>(),
        BACKEND_NAMES.join(", ")
    )))
}

/// Every adapter the environment's backends can see (not in a browser, whose WebGPU hands
/// out one adapter on request).
#[cfg(not(target_arch = "wasm32"))]
pub fn list_adapters() -> Vec<AdapterInfo> {
    let instance = instance_from_env();
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    pollster::block_on(instance.enumerate_adapters(backends))
        .iter()
        .map(|a| a.get_info())
        .collect()
}

/// Rank used to pick an adapter when `WGPU_ADAPTER_NAME` is unset: real GPUs before software
/// ones, then Vulkan, Metal, DX12 before GL. Lower is better.
fn adapter_rank(info: &AdapterInfo) -> (u8, u8) {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan => 0,
        wgpu::Backend::Metal => 0,
        wgpu::Backend::Dx12 => 1,
        wgpu::Backend::Gl => 2,
        _ => 3,
    };
    (kind, backend)
}

/// One line naming an adapter: name, backend, device type and driver.
pub fn describe_adapter(info: &AdapterInfo) -> String {
    let driver = [info.driver.as_str(), info.driver_info.as_str()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    // a browser's WebGPU keeps the adapter's name to itself
    let name = if info.name.is_empty() {
        "an unnamed adapter"
    } else {
        info.name.as_str()
    };
    format!(
        "{} ({:?}, {:?}{}{})",
        name,
        info.backend,
        info.device_type,
        if driver.is_empty() { "" } else { ", " },
        driver
    )
}

impl GpuContext {
    /// Picks an adapter from the environment (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`, else the best
    /// real GPUs before software ones, Vulkan, Metal and DX12 before GL) and builds a device on it. Blocks; see [`GpuContext::new_async`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new() -> Result<Self> {
        pollster::block_on(Self::new_async())
    }

    /// As [`GpuContext::new`], without blocking; in a browser, the only way to make a context
    /// (on the adapter its WebGPU hands out).
    pub async fn new_async() -> Result<Self> {
        check_backend_env()?;
        let (instance, mut adapters) = candidate_adapters().await;
        let detail = match std::env::var("WGPU_BACKEND") {
            Ok(b) => format!(" for WGPU_BACKEND={b}"),
            Err(_) => String::new(),
        };
        if adapters.is_empty() {
            return Err(Error::NoAdapter { detail });
        }
        let adapter = match crate::error::env_var("WGPU_ADAPTER_NAME")? {
            Some(name) if !name.is_empty() => {
                let want = name.to_lowercase();
                let pos = adapters
                    .iter()
                    .position(|a| a.get_info().name.to_lowercase().contains(&want));
                match pos {
                    Some(i) => adapters.swap_remove(i),
                    None => {
                        let available = adapters
                            .iter()
                            .map(|a| describe_adapter(&a.get_info()))
                            .collect::<Vec<_>>()
                            .join("; ");
                        return Err(Error::AdapterNotFound { name, available });
                    }
                }
            }
            _ => {
                adapters.sort_by_key(|a| adapter_rank(&a.get_info()));
                adapters.swap_remove(0)
            }
        };
        let info = adapter.get_info();
        // Ask for everything the adapter has: the largest bindings and dispatches it allows.
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wgpu-conv"),
                // timestamp queries, where the adapter has them, for `time_on_gpu` (and
                // inside compute passes, for `time_passes_on_gpu`)
                required_features: adapter.features()
                    & (wgpu::Features::TIMESTAMP_QUERY
                        | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES),
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::RequestDevice {
                adapter: info.name.clone(),
                reason: e.to_string(),
            })?;
        let mut ctx = Self::from_device(device, queue, info)?;
        // a browser loses the device ("no valid external Instance reference") once the
        // instance and adapter it came from are collected: the context keeps them
        ctx.origin = instance.map(|i| (i, adapter));
        Ok(ctx)
    }

    /// Whether the kernels this crate proves in bounds (see `WGPU_CONV_CHECKED` in the README)
    /// still run with naga's runtime checks (bounds clamps, division guards, loop counters)
    /// and zeroed workgroup memory on this context: set by `WGPU_CONV_CHECKED=1` when it was
    /// created.
    pub fn shader_checks(&self) -> bool {
        self.rt.pipelines.checked
    }

    /// Wraps a device the caller already has (for use inside another wgpu program). The
    /// required kernels need 4 storage buffers per stage (counted from their shaders), compute
    /// shaders and `f32` storage; the planner uses faster kernels that need more only where the
    /// device allows them. Other limits are read from the device.
    pub fn from_device(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: AdapterInfo,
    ) -> Result<Self> {
        let limits = device.limits();
        let need = required_storage_buffers();
        if limits.max_storage_buffers_per_shader_stage < need {
            return Err(Error::RequestDevice {
                adapter: info.name.clone(),
                reason: format!(
                    "the device allows {} storage buffers per stage, the kernels need {need}",
                    limits.max_storage_buffers_per_shader_stage
                ),
            });
        }
        let lost = Arc::new(Mutex::new(None));
        let flag = Arc::clone(&lost);
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut f) = flag.lock() {
                *f = Some(format!("{reason:?}: {message}"));
            }
        });
        // In a browser error scopes resolve only on the event loop, so no call can wait for
        // them: an error reaches this handler instead (wgpu's default panics), and every later
        // call on the context returns it.
        let errors = Arc::new(AtomicU64::new(0));
        #[cfg(target_arch = "wasm32")]
        {
            let flag = Arc::clone(&lost);
            let count = Arc::clone(&errors);
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                count.fetch_add(1, Ordering::AcqRel);
                if let Ok(mut f) = flag.lock() {
                    f.get_or_insert_with(|| format!("uncaptured WebGPU error: {e}"));
                }
            }));
        }
        // Natively every call runs in error scopes; anything that still escapes them (work the
        // caller recorded itself on this device, say) is kept here, not panicked on (wgpu's
        // default), and the next call on the context returns it.
        let uncaptured = Arc::new(Mutex::new(None));
        #[cfg(not(target_arch = "wasm32"))]
        {
            let slot = Arc::clone(&uncaptured);
            let count = Arc::clone(&errors);
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                count.fetch_add(1, Ordering::AcqRel);
                let label = "an earlier submission (outside any call's error scope)";
                let err = match &e {
                    wgpu::Error::OutOfMemory { .. } => Error::OutOfMemory(label.to_string()),
                    other => Error::Validation {
                        label: label.to_string(),
                        message: one_line(&other.to_string()),
                    },
                };
                if let Ok(mut f) = slot.lock() {
                    f.get_or_insert(err);
                }
            }));
        }
        Ok(Self {
            rt: crate::runtime::Runtime::new(device, queue, limits, lost, checked_from_env()?),
            uncaptured,
            errors,
            binding_cap: AtomicU64::new(u64::MAX),
            workgroup_cap: std::sync::atomic::AtomicU32::new(u32::MAX),
            family: Mutex::new(Family::from_env()?),
            serial: (info.backend == wgpu::Backend::Gl).then(|| Mutex::new(())),
            tuner: crate::planner::tuned::Autotuner::from_env()?,
            uid: NEXT_CONTEXT.fetch_add(1, Ordering::Relaxed),
            origin: None,
            info,
        })
    }

    /// The adapter's description.
    pub fn adapter_info(&self) -> &AdapterInfo {
        &self.info
    }

    /// One line: adapter name, backend, device type, driver.
    pub fn describe(&self) -> String {
        describe_adapter(&self.info)
    }

    /// Keeps (`true`) or stops keeping a copy of every plan this context binds to buffers
    /// from now on, each op of every call in the order recorded: what [`GpuContext::plan`]
    /// and `wgpu-conv plan` show can be checked against what ran.
    pub fn keep_recorded_plans(&self, on: bool) {
        *self.rt.plan_log.lock().unwrap_or_else(|e| e.into_inner()) = on.then(Vec::new);
    }

    /// The plans recorded since [`GpuContext::keep_recorded_plans`] or the last call of this
    /// (the log is then empty); none while it is off.
    pub fn recorded_plans(&self) -> Vec<crate::kernels::Plan> {
        let mut log = self.rt.plan_log.lock().unwrap_or_else(|e| e.into_inner());
        log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// How the buffer pool has served this context: buffers created and reused, idle bytes,
    /// uploads and weight packs.
    pub fn pool_stats(&self) -> crate::PoolStats {
        self.rt.pool_stats()
    }

    /// Frees every idle buffer of the pool (and the plans bound to them).
    pub fn trim(&self) {
        self.rt.trim();
    }

    /// The device.
    pub fn device(&self) -> &wgpu::Device {
        &self.rt.device
    }

    /// The queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.rt.queue
    }

    /// The largest storage binding this context uses: the device's limit, or less after
    /// [`GpuContext::set_binding_limit`]. Larger operands are split into pieces that fit.
    pub fn binding_limit(&self) -> u64 {
        let device = self
            .rt
            .limits
            .max_storage_buffer_binding_size
            .min(self.rt.limits.max_buffer_size);
        device.min(self.binding_cap.load(Ordering::Relaxed))
    }

    /// Caps the binding size below the device's (`None` lifts the cap), so that splitting can
    /// be exercised, or memory per call bounded, on small data.
    pub fn set_binding_limit(&self, bytes: Option<u64>) {
        self.binding_cap
            .store(bytes.unwrap_or(u64::MAX).max(16), Ordering::Relaxed);
    }

    /// The device's limits.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.rt.limits
    }

    /// What plans are made for: this device's type, vendor, limits and features, with the
    /// binding limit of [`GpuContext::binding_limit`].
    pub fn profile(&self) -> DeviceProfile {
        let mut p = DeviceProfile::new(&self.info, &self.rt.limits, self.rt.device.features())
            .with_binding_limit(self.binding_limit())
            .with_family(self.family());
        p.max_workgroup_storage_bytes = p
            .max_workgroup_storage_bytes
            .min(self.workgroup_cap.load(Ordering::Relaxed));
        p
    }

    /// Plans as if the device had at most `bytes` of workgroup memory per workgroup (`None`:
    /// the device's own): the kernels that need more are left out, as on a device that has
    /// less. Runs the plans of such devices (the GEMM core needs 16 KiB; the older `mm`
    /// kernels 8 KiB) on this one, to test them.
    pub fn set_workgroup_storage_limit(&self, bytes: Option<u32>) {
        self.workgroup_cap
            .store(bytes.unwrap_or(u32::MAX), Ordering::Relaxed);
    }

    /// Fills every scratch buffer with NaN (all bits set) before each plan that uses it, where
    /// `on`: a kernel that reads scratch its plan did not write first (a pooled buffer holds
    /// an earlier call's data, a new one zeros) then gives NaN, not a result that is right by
    /// chance. For tests; it costs a host-to-device copy of the scratch on every call. A
    /// resident layer's packed weight is not scratch of the call and is left alone.
    pub fn set_scratch_poison(&self, on: bool) {
        self.rt
            .poison_scratch
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// The kernel family asked for: `WGPU_CONV_KERNELS` (auto, cpu or gpu) when the context was
    /// made, or what [`GpuContext::set_family`] set.
    pub fn family(&self) -> Family {
        *self.family.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for a kernel family (`Auto`: by device type, CPU adapters get the CPU family).
    pub fn set_family(&self, family: Family) {
        *self.family.lock().unwrap_or_else(|e| e.into_inner()) = family;
    }

    /// The old name of [`GpuContext::family`].
    #[deprecated(
        since = "0.1.0",
        note = "renamed `family` (`Algorithm::Gpu` and `Family::Gpu` read alike)"
    )]
    pub fn kernels(&self) -> Family {
        self.family()
    }

    /// The old name of [`GpuContext::set_family`].
    #[deprecated(since = "0.1.0", note = "renamed `set_family`")]
    pub fn set_kernels(&self, family: Family) {
        self.set_family(family);
    }

    /// On backends that need it, waits for this thread's turn; the guard ends it. A thread
    /// that already has its turn (a call inside a call) gets no second guard.
    pub(crate) fn serialized(&self) -> Option<Turn<'_>> {
        let m = self.serial.as_ref()?;
        if TURNS.with(|t| t.borrow().contains(&self.uid)) {
            return None;
        }
        let guard = m.lock().unwrap_or_else(|e| e.into_inner());
        TURNS.with(|t| t.borrow_mut().push(self.uid));
        Some(Turn {
            _guard: guard,
            uid: self.uid,
        })
    }

    /// How many errors the context has seen (caught by a scope or by its handler).
    pub(crate) fn error_count(&self) -> u64 {
        self.errors.load(Ordering::Acquire)
    }

    /// An error if the device has been lost, or if an error escaped every error scope since
    /// the last call (that one is returned once).
    pub(crate) fn check_alive(&self) -> Result<()> {
        if let Some(reason) = self.rt.lost.lock().ok().and_then(|g| g.clone()) {
            return Err(Error::DeviceLost(reason));
        }
        match self.uncaptured.lock().ok().and_then(|mut g| g.take()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// In a browser: runs `record`, with the errors the uncaptured-error handler caught.
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn scoped<T>(&self, _label: &str, record: impl FnOnce() -> Result<T>) -> Result<T> {
        // no waiting for error scopes in a browser: see the uncaptured-error handler
        self.check_alive()?;
        let out = record();
        self.check_alive()?;
        out
    }

    /// Runs `record` inside validation and out-of-memory error scopes and returns what they
    /// caught as typed errors.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn scoped<T>(&self, label: &str, record: impl FnOnce() -> Result<T>) -> Result<T> {
        let _turn = self.serialized();
        self.check_alive()?;
        let oom = self
            .rt
            .device
            .push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self
            .rt
            .device
            .push_error_scope(wgpu::ErrorFilter::Validation);
        let out = record();
        let v = pollster::block_on(validation.pop());
        let o = pollster::block_on(oom.pop());
        if v.is_some() || o.is_some() {
            self.errors.fetch_add(1, Ordering::AcqRel);
        }
        self.check_alive()?;
        if let Some(e) = o {
            return Err(Error::OutOfMemory(format!(
                "{label}: {}",
                one_line(&e.to_string())
            )));
        }
        if let Some(e) = v {
            return Err(Error::Validation {
                label: label.to_string(),
                message: one_line(&e.to_string()),
            });
        }
        out
    }

    /// Submits `encoder`, copying each of `outputs` into a staging buffer in the same
    /// submission, waits, and returns their contents (blocking: the future of
    /// [`GpuContext::submit_for_read`], resolved after one wait).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn submit_and_read(
        &self,
        encoder: wgpu::CommandEncoder,
        outputs: &[&wgpu::Buffer],
    ) -> Result<Vec<Vec<f32>>> {
        self.wait_read(self.rt.submit_for_read(encoder, outputs))
    }

    /// Waits for the device, then reads what `pending` copied (blocking).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn wait_read(
        &self,
        pending: crate::runtime::readback::Pending,
    ) -> Result<Vec<Vec<f32>>> {
        self.wait_idle()?;
        self.check_alive()?;
        pollster::block_on(pending.read())
    }

    /// Blocks until the device has finished everything submitted.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn wait_idle(&self) -> Result<()> {
        self.rt
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| match e {
                wgpu::PollError::Timeout => Error::Readback("timed out waiting for the GPU".into()),
                other => Error::DeviceLost(other.to_string()),
            })
    }

    /// Submits `encoder` and waits for the device, inside error scopes.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn submit_scoped(&self, label: &str, encoder: wgpu::CommandEncoder) -> Result<()> {
        self.scoped(label, || {
            self.rt.queue.submit([encoder.finish()]);
            self.wait_idle()
        })
    }
}
