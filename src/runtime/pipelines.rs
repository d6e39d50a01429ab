//! Compute pipelines, built from the [`KernelSpec`]s on first use and kept per device, by
//! kernel and override constants.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::kernels::spec::{Access, KernelSpec};

/// A kernel's compute pipeline and bind group layout.
pub(crate) struct Pipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

type Key = (&'static str, Vec<(&'static str, u32)>);

/// The pipelines built so far on one device, and the placeholder buffers plans bind.
pub(crate) struct Pipelines {
    built: Mutex<HashMap<Key, Arc<Pipeline>>>,
    /// Whether trusted kernels keep naga's runtime checks and zeroed workgroup memory too
    /// (`WGPU_CONV_CHECKED=1`).
    pub checked: bool,
    /// Bound where a kernel's optional input (the bias) is absent.
    pub zeros: wgpu::Buffer,
    /// Bound to an output binding that a kernel's variant never writes.
    pub discard: wgpu::Buffer,
}

/// Bytes of the placeholder buffers.
const PLACEHOLDER_BYTES: u64 = 16;

impl Pipelines {
    pub(crate) fn new(device: &wgpu::Device, checked: bool) -> Self {
        let placeholder = |label| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: PLACEHOLDER_BYTES,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        };
        Self {
            built: Mutex::new(HashMap::new()),
            checked,
            zeros: placeholder("wgpu-conv: absent input"),
            discard: placeholder("wgpu-conv: unwritten output"),
        }
    }

    /// The pipeline of `spec` with `constants`, built on first use (inside its own error
    /// scopes, so a device that rejects it gives a typed error).
    pub(crate) fn get(
        &self,
        device: &wgpu::Device,
        spec: &'static KernelSpec,
        constants: &[(&'static str, u32)],
    ) -> Result<Arc<Pipeline>> {
        let key = (spec.name, constants.to_vec());
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = built.get(&key) {
            return Ok(Arc::clone(p));
        }
        // in a browser error scopes resolve only on the event loop: a rejected kernel reaches
        // the context's uncaptured-error handler instead
        #[cfg(target_arch = "wasm32")]
        let (v, o): (Option<wgpu::Error>, Option<wgpu::Error>) = (None, None);
        #[cfg(target_arch = "wasm32")]
        let pipeline = Arc::new(build(device, spec, constants, self.checked));
        #[cfg(not(target_arch = "wasm32"))]
        let (pipeline, v, o) = {
            let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
            let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
            let pipeline = Arc::new(build(device, spec, constants, self.checked));
            let v = pollster::block_on(validation.pop());
            let o = pollster::block_on(oom.pop());
            (pipeline, v, o)
        };
        if let Some(e) = o {
            return Err(Error::OutOfMemory(format!("building {}: {e}", spec.name)));
        }
        if let Some(e) = v {
            return Err(Error::Validation {
                label: format!("building {}", spec.name),
                message: e.to_string(),
            });
        }
        built.insert(key, Arc::clone(&pipeline));
        Ok(pipeline)
    }
}

fn build(
    device: &wgpu::Device,
    spec: &'static KernelSpec,
    constants: &[(&'static str, u32)],
    checked: bool,
) -> Pipeline {
    let name = spec.name;
    let desc = wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(spec.source.into()),
    };
    let trusted = spec.trusted && !checked;
    let module = if trusted {
        // SAFETY: a trusted kernel's reads and writes are in bounds by construction, its
        // divisors are non-zero and its loops bounded by the loop budget (`KernelSpec::trusted`
        // says what each kernel's module guarantees; the suite runs with and without checks).
        unsafe { device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked()) }
    } else {
        device.create_shader_module(desc)
    };
    let uniform = |dynamic| wgpu::BindingType::Buffer {
        ty: wgpu::BufferBindingType::Uniform,
        has_dynamic_offset: dynamic,
        min_binding_size: None,
    };
    let entries: Vec<wgpu::BindGroupLayoutEntry> = std::iter::once(uniform(true))
        .chain(spec.bindings.iter().map(|a| match a {
            Access::Block => uniform(true),
            Access::Read | Access::Write => wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage {
                    read_only: *a == Access::Read,
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
        }))
        .enumerate()
        .map(|(i, ty)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty,
            count: None,
        })
        .collect();
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(name),
        entries: &entries,
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(name),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let constants: Vec<(&str, f64)> = constants.iter().map(|&(k, v)| (k, f64::from(v))).collect();
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(name),
        layout: Some(&pipeline_layout),
        module: &module,
        entry_point: Some(name),
        compilation_options: wgpu::PipelineCompilationOptions {
            constants: &constants,
            // every word of a trusted kernel's workgroup memory is written before it is read
            zero_initialize_workgroup_memory: !trusted,
        },
        cache: None,
    });
    Pipeline { pipeline, layout }
}
