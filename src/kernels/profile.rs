//! What the planner needs to know about a device, as a plain struct: plans can be computed and
//! tested with no GPU.

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
    /// after [`crate::GpuContext::set_binding_limit`]).
    pub max_binding_bytes: u64,
    /// Alignment of dynamic uniform offsets, bytes.
    pub min_uniform_offset_alignment: u32,
    /// Optional features the device has.
    pub features: wgpu::Features,
}

impl DeviceProfile {
    /// A profile from a device's description and limits.
    pub fn new(info: &wgpu::AdapterInfo, limits: &wgpu::Limits, features: wgpu::Features) -> Self {
        Self {
            name: info.name.clone(),
            device_type: info.device_type,
            vendor: info.vendor,
            backend: info.backend,
            features,
            ..Self::from_limits(limits)
        }
    }

    /// A profile with `limits` and nothing else known (device type `Other`).
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
            features: wgpu::Features::empty(),
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
