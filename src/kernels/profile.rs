//! What the planner needs to know about a device, as a plain struct: plans can be computed and
//! tested with no GPU.

/// Which kernels a device gets: those shaped for CPU adapters (lavapipe, llvmpipe, WARP,
/// SwiftShader: few lanes, every storage and workgroup-memory load serialised) or those for
/// GPUs (one large dispatch per op, tiles in workgroup memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Family {
    /// By device type: CPU adapters get `Cpu`, every other device `Gpu`.
    #[default]
    Auto,
    /// The kernels shaped for CPU adapters.
    Cpu,
    /// The kernels shaped for GPUs.
    Gpu,
}

impl std::str::FromStr for Family {
    type Err = crate::error::Error;

    fn from_str(s: &str) -> crate::error::Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Family::Auto),
            "cpu" => Ok(Family::Cpu),
            "gpu" => Ok(Family::Gpu),
            _ => Err(crate::error::Error::option(format!(
                "WGPU_CONV_KERNELS={}: auto, cpu or gpu",
                crate::error::quoted(s)
            ))),
        }
    }
}

impl Family {
    /// The family `WGPU_CONV_KERNELS` (auto, cpu or gpu) asks for; `Auto` when it is unset.
    pub fn from_env() -> crate::error::Result<Self> {
        match crate::error::env_var("WGPU_CONV_KERNELS")? {
            Some(v) => v.parse(),
            None => Ok(Family::Auto),
        }
    }

    /// The name `WGPU_CONV_KERNELS` and `bench --family` take.
    pub fn name(self) -> &'static str {
        match self {
            Family::Auto => "auto",
            Family::Cpu => "cpu",
            Family::Gpu => "gpu",
        }
    }
}

/// Invocations the CPU family's reductions aim for: enough to keep every core's SIMD lanes
/// busy on a software adapter.
const CPU_TARGET_INVOCATIONS: usize = 8192;
/// Invocations the GPU family aims for: about what a large GPU keeps resident (an H100 holds
/// about 270,000 threads).
const GPU_TARGET_INVOCATIONS: usize = 1 << 18;
/// The most floating-point work one dispatch is given by the CPU family (about 0.1 s at the
/// 2.5 GFLOP/s its slowest kernels reach on a software adapter) and by the GPU family (a few
/// milliseconds on a GPU; software adapters have no watchdog), so that no dispatch runs long
/// enough for a driver watchdog to reset the device.
const CPU_DISPATCH_FLOPS: f64 = (1u64 << 28) as f64;
const GPU_DISPATCH_FLOPS: f64 = (1u64 << 36) as f64;

/// The facts about a device that plans depend on.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceProfile {
    /// Adapter name (for messages only).
    pub name: String,
    /// Discrete, integrated, virtual, CPU (software) or other.
    pub device_type: wgpu::DeviceType,
    /// PCI vendor id (0 where unknown).
    pub vendor: u32,
    /// The backend.
    pub backend: wgpu::Backend,
    /// Workgroups per dimension of one dispatch.
    pub max_workgroups_per_dimension: u32,
    /// Storage buffers one shader stage may bind.
    pub max_storage_buffers_per_stage: u32,
    /// Bytes of the largest storage binding this context uses (the device's limit, or less
    /// after the context's `set_binding_limit`).
    pub max_binding_bytes: u64,
    /// Alignment of dynamic uniform offsets, bytes.
    pub min_uniform_offset_alignment: u32,
    /// Bytes of workgroup memory one workgroup may use.
    pub max_workgroup_storage_bytes: u32,
    /// Optional features the device has.
    pub features: wgpu::Features,
    /// The kernel family asked for (`Auto`: by device type).
    pub family: Family,
    /// The most floating-point work one dispatch is given.
    pub max_dispatch_flops: f64,
}

impl DeviceProfile {
    /// A profile from a device's description and limits.
    pub fn new(info: &wgpu::AdapterInfo, limits: &wgpu::Limits, features: wgpu::Features) -> Self {
        Self {
            name: info.name.clone(),
            vendor: info.vendor,
            backend: info.backend,
            features,
            ..Self::from_limits(limits)
        }
        .with_device_type(info.device_type)
    }

    /// A profile with `limits` and nothing else known (device type `Other`: a GPU).
    pub fn from_limits(limits: &wgpu::Limits) -> Self {
        Self {
            name: String::new(),
            device_type: wgpu::DeviceType::Other,
            vendor: 0,
            backend: wgpu::Backend::Noop,
            max_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
            max_storage_buffers_per_stage: limits.max_storage_buffers_per_shader_stage,
            max_binding_bytes: limits
                .max_storage_buffer_binding_size
                .min(limits.max_buffer_size),
            min_uniform_offset_alignment: limits.min_uniform_buffer_offset_alignment,
            max_workgroup_storage_bytes: limits.max_compute_workgroup_storage_size,
            features: wgpu::Features::empty(),
            family: Family::Auto,
            max_dispatch_flops: GPU_DISPATCH_FLOPS,
        }
        .with_device_type(wgpu::DeviceType::Other)
    }

    /// The same profile for a device of `device_type` (which sets the family `Auto` means,
    /// and with it the dispatch cap).
    pub fn with_device_type(mut self, device_type: wgpu::DeviceType) -> Self {
        self.device_type = device_type;
        self.max_dispatch_flops = self.family_dispatch_flops();
        self
    }

    /// The same profile with the kernel family `family` asked for (and that family's dispatch
    /// cap).
    pub fn with_family(mut self, family: Family) -> Self {
        self.family = family;
        self.max_dispatch_flops = self.family_dispatch_flops();
        self
    }

    fn family_dispatch_flops(&self) -> f64 {
        match self.resolved_family() {
            Family::Cpu => CPU_DISPATCH_FLOPS,
            _ => GPU_DISPATCH_FLOPS,
        }
    }

    /// The family plans use: the one asked for, or by device type.
    pub fn resolved_family(&self) -> Family {
        match (self.family, self.device_type) {
            (Family::Auto, wgpu::DeviceType::Cpu) => Family::Cpu,
            (Family::Auto, _) => Family::Gpu,
            (f, _) => f,
        }
    }

    /// Invocations a reduction's slicing aims for with this profile's family.
    pub fn target_invocations(&self) -> usize {
        match self.resolved_family() {
            Family::Cpu => CPU_TARGET_INVOCATIONS,
            _ => GPU_TARGET_INVOCATIONS,
        }
    }

    /// WebGPU's default limits: what any WebGPU device offers.
    pub fn webgpu_defaults() -> Self {
        Self::from_limits(&wgpu::Limits::default())
    }

    /// The same profile with the largest binding capped at `bytes`.
    pub fn with_binding_limit(mut self, bytes: u64) -> Self {
        self.max_binding_bytes = self.max_binding_bytes.min(bytes);
        self
    }
}
