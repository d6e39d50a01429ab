//! Builds the compute pipelines of wgpu-conv's plans for the bench shapes on the first Vulkan
//! device, through the path wgpu takes: naga compiles the kernel's WGSL with its override
//! constants to SPIR-V (with naga's runtime checks, or without them for the kernels the crate
//! trusts, as wgpu-conv does), and the driver builds the pipeline. Nothing is dispatched, so
//! RADV on a null device (`RADV_FORCE_FAMILY`) serves; with `RADV_DEBUG=shaders,shaderstats`
//! it prints each pipeline's ISA and statistics. Before each pipeline this prints a line
//! `=== wgpu-conv-isa kernel=K shape=S op=O trusted=T` to stderr, where the driver prints too,
//! so that scripts/isa-report.sh can tell the pipelines apart.
//!
//! `wgpu-conv-isa [--shapes a,b] [--ops forward,weight_grad,input_grad] [--checked]`

use std::collections::HashSet;
use std::ffi::CString;
use std::io::Write;

use ash::vk;
use wgpu_conv::{bench_shapes, geometry, Algorithm, DeviceProfile, Op, Pass};

fn main() {
    if let Err(e) = run() {
        eprintln!("wgpu-conv-isa: {e}");
        std::process::exit(1);
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let checked = args.iter().any(|a| a == "--checked");
    let wanted_shapes = arg(&args, "--shapes");
    let ops: Vec<Op> = arg(&args, "--ops")
        .unwrap_or_else(|| "forward,weight_grad,input_grad".into())
        .split(',')
        .map(|o| match o {
            "forward" => Ok(Op::Forward),
            "weight_grad" => Ok(Op::WeightGrad),
            "input_grad" => Ok(Op::InputGrad),
            other => Err(format!("unknown op {other:?}")),
        })
        .collect::<Result<_, _>>()?;
    let vk = Vulkan::new()?;
    // the GPU family planned for a large GPU's limits
    let mut profile = DeviceProfile::webgpu_defaults();
    profile.max_binding_bytes = 1 << 31;
    profile.max_workgroup_storage_bytes = 49_152;
    let mut built = HashSet::new();
    for s in bench_shapes() {
        if let Some(w) = &wanted_shapes {
            if !w.split(',').any(|n| n == s.name) {
                continue;
            }
        }
        let g = geometry(&s.input, &s.weight, None, &s.options).map_err(|e| e.to_string())?;
        for &op in &ops {
            let plan = wgpu_conv::plan(op, &g, false, &profile, Algorithm::Gpu)
                .map_err(|e| e.to_string())?;
            for pass in plan.passes() {
                let key = (pass.kernel(), pass.constants());
                if !built.insert(key) {
                    continue;
                }
                let trusted = pass.trusted() && !checked;
                eprintln!(
                    "=== wgpu-conv-isa kernel={} shape={} op={} trusted={trusted}",
                    pass.kernel(),
                    s.name,
                    op.name()
                );
                std::io::stderr().flush().ok();
                let (spv, bindings) = spirv(pass, trusted)?;
                vk.build(&spv, &bindings, pass.kernel())?;
                std::io::stderr().flush().ok();
            }
        }
    }
    eprintln!("=== wgpu-conv-isa end");
    Ok(())
}

/// The pass's kernel as SPIR-V, its override constants applied, with or without naga's checks,
/// and the descriptor type of each binding of group 0, in binding order.
fn spirv(pass: &Pass, trusted: bool) -> Result<(Vec<u32>, Vec<vk::DescriptorType>), String> {
    use naga::back::spv;
    use naga::proc::{BoundsCheckPolicies, BoundsCheckPolicy};
    let module = naga::front::wgsl::parse_str(pass.source()).map_err(|e| e.to_string())?;
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .map_err(|e| format!("{}: {e:?}", pass.kernel()))?;
    let mut bindings: Vec<(u32, vk::DescriptorType)> = module
        .global_variables
        .iter()
        .filter_map(|(_, v)| {
            let b = v.binding.as_ref()?;
            let ty = match v.space {
                naga::AddressSpace::Uniform => vk::DescriptorType::UNIFORM_BUFFER_DYNAMIC,
                naga::AddressSpace::Storage { .. } => vk::DescriptorType::STORAGE_BUFFER,
                _ => return None,
            };
            Some((b.binding, ty))
        })
        .collect();
    bindings.sort_by_key(|b| b.0);
    let bindings = bindings.into_iter().map(|b| b.1).collect();
    let constants: naga::back::PipelineConstants = pass
        .constant_values()
        .iter()
        .map(|&(k, v)| (k.to_string(), f64::from(v)))
        .collect();
    let (module, info) = naga::back::pipeline_constants::process_overrides(
        &module,
        &info,
        Some((naga::ShaderStage::Compute, pass.kernel())),
        &constants,
    )
    .map_err(|e| format!("{}: {e}", pass.kernel()))?;
    let policy = if trusted {
        BoundsCheckPolicy::Unchecked
    } else {
        BoundsCheckPolicy::Restrict
    };
    let mut options = spv::Options {
        lang_version: (1, 3),
        bounds_check_policies: BoundsCheckPolicies {
            index: policy,
            buffer: policy,
            image_load: policy,
            binding_array: BoundsCheckPolicy::Unchecked,
        },
        force_loop_bounding: !trusted,
        emit_int_div_checks: !trusted,
        zero_initialize_workgroup_memory: if trusted {
            spv::ZeroInitializeWorkgroupMemoryMode::None
        } else {
            spv::ZeroInitializeWorkgroupMemoryMode::Polyfill
        },
        ..Default::default()
    };
    options.flags.remove(spv::WriterFlags::DEBUG);
    let pipeline = spv::PipelineOptions {
        shader_stage: naga::ShaderStage::Compute,
        entry_point: pass.kernel().to_string(),
    };
    let words =
        spv::write_vec(&module, &info, &options, Some(&pipeline)).map_err(|e| e.to_string())?;
    Ok((words, bindings))
}

/// A Vulkan device with one queue, for building pipelines only.
struct Vulkan {
    _entry: ash::Entry,
    instance: ash::Instance,
    device: ash::Device,
}

impl Vulkan {
    fn new() -> Result<Self, String> {
        // SAFETY: plain Vulkan object creation; every handle outlives its uses and is
        // destroyed in `Drop`.
        unsafe {
            let entry = ash::Entry::load().map_err(|e| format!("no Vulkan loader: {e}"))?;
            let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_2);
            let instance = entry
                .create_instance(
                    &vk::InstanceCreateInfo::default().application_info(&app),
                    None,
                )
                .map_err(|e| format!("vkCreateInstance: {e}"))?;
            let pd = *instance
                .enumerate_physical_devices()
                .map_err(|e| e.to_string())?
                .first()
                .ok_or("no Vulkan device")?;
            let name = instance.get_physical_device_properties(pd);
            let name = name
                .device_name_as_c_str()
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default();
            eprintln!("=== wgpu-conv-isa device={name}");
            let prio = [1.0f32];
            let queues = [vk::DeviceQueueCreateInfo::default()
                .queue_family_index(0)
                .queue_priorities(&prio)];
            let device = instance
                .create_device(
                    pd,
                    &vk::DeviceCreateInfo::default().queue_create_infos(&queues),
                    None,
                )
                .map_err(|e| format!("vkCreateDevice: {e}"))?;
            Ok(Self {
                _entry: entry,
                instance,
                device,
            })
        }
    }

    /// Builds the compute pipeline of `spv`'s entry point `entry`, whose group 0 has bindings
    /// 0, 1, ... of the types `bindings`.
    fn build(
        &self,
        spv: &[u32],
        bindings: &[vk::DescriptorType],
        entry: &str,
    ) -> Result<(), String> {
        // SAFETY: see `new`; the objects made here are destroyed before returning.
        unsafe {
            let d = &self.device;
            let module = d
                .create_shader_module(&vk::ShaderModuleCreateInfo::default().code(spv), None)
                .map_err(|e| format!("vkCreateShaderModule: {e}"))?;
            let bindings: Vec<vk::DescriptorSetLayoutBinding> = bindings
                .iter()
                .enumerate()
                .map(|(i, &ty)| {
                    vk::DescriptorSetLayoutBinding::default()
                        .binding(i as u32)
                        .descriptor_type(ty)
                        .descriptor_count(1)
                        .stage_flags(vk::ShaderStageFlags::COMPUTE)
                })
                .collect();
            let set = d
                .create_descriptor_set_layout(
                    &vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings),
                    None,
                )
                .map_err(|e| e.to_string())?;
            let sets = [set];
            let layout = d
                .create_pipeline_layout(
                    &vk::PipelineLayoutCreateInfo::default().set_layouts(&sets),
                    None,
                )
                .map_err(|e| e.to_string())?;
            let name = CString::new(entry).map_err(|e| e.to_string())?;
            let stage = vk::PipelineShaderStageCreateInfo::default()
                .stage(vk::ShaderStageFlags::COMPUTE)
                .module(module)
                .name(&name);
            let info = [vk::ComputePipelineCreateInfo::default()
                .stage(stage)
                .layout(layout)];
            let result = d.create_compute_pipelines(vk::PipelineCache::null(), &info, None);
            let out = match result {
                Ok(p) => {
                    for p in p {
                        d.destroy_pipeline(p, None);
                    }
                    Ok(())
                }
                Err((_, e)) => Err(format!("vkCreateComputePipelines({entry}): {e}")),
            };
            d.destroy_pipeline_layout(layout, None);
            d.destroy_descriptor_set_layout(set, None);
            d.destroy_shader_module(module, None);
            out
        }
    }
}

impl Drop for Vulkan {
    fn drop(&mut self) {
        // SAFETY: no object made from them is alive.
        unsafe {
            self.device.destroy_device(None);
            self.instance.destroy_instance(None);
        }
    }
}
