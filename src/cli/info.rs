//! `info`: the adapters, the one chosen and why, and the limits that matter.

use anyhow::Result;

use super::context;

/// `wgpu-conv info`.
pub fn run() -> Result<()> {
    wgpu_conv::check_backend_env()?;
    let adapters = wgpu_conv::list_adapters();
    if adapters.is_empty() {
        println!("no adapters found");
    } else {
        println!("adapters found ({}):", adapters.len());
        for a in &adapters {
            println!("  {}", wgpu_conv::describe_adapter(a));
        }
    }
    let ctx = context()?;
    let why = match std::env::var("WGPU_ADAPTER_NAME") {
        Ok(n) if !n.is_empty() => format!("its name contains WGPU_ADAPTER_NAME={n:?}"),
        _ => "best ranked: Vulkan/Metal/DX12 before GL (GL only when they have none), then discrete > integrated > virtual > CPU"
            .to_string(),
    };
    println!("chosen: {} ({why})", ctx.describe());
    if let Ok(b) = std::env::var("WGPU_BACKEND") {
        println!("WGPU_BACKEND={b}");
    }
    let l = ctx.limits();
    println!("limits:");
    println!(
        "  max_storage_buffer_binding_size: {} bytes",
        l.max_storage_buffer_binding_size
    );
    println!("  max_buffer_size: {} bytes", l.max_buffer_size);
    println!(
        "  max_compute_workgroups_per_dimension: {}",
        l.max_compute_workgroups_per_dimension
    );
    println!(
        "  max_compute_workgroup_storage_size: {} bytes",
        l.max_compute_workgroup_storage_size
    );
    println!(
        "  max_compute_invocations_per_workgroup: {}",
        l.max_compute_invocations_per_workgroup
    );
    println!(
        "  max_storage_buffers_per_shader_stage: {}",
        l.max_storage_buffers_per_shader_stage
    );
    let info = ctx.adapter_info();
    println!(
        "subgroup size: {} to {}",
        info.subgroup_min_size, info.subgroup_max_size
    );
    println!("device features: {:?}", ctx.device().features());
    println!(
        "shader checks: {}",
        if ctx.shader_checks() {
            "on for every kernel (WGPU_CONV_CHECKED=1)"
        } else {
            "off for the kernels proven in bounds (WGPU_CONV_CHECKED=1 turns them on)"
        }
    );
    // the chosen adapter again, for what only the adapter tells
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backends;
    let instance = wgpu::Instance::new(desc);
    let adapters = pollster::block_on(instance.enumerate_adapters(backends));
    if let Some(a) = adapters
        .iter()
        .find(|a| a.get_info().name == info.name && a.get_info().backend == info.backend)
    {
        println!("adapter features: {:?}", a.features());
        let m = a.cooperative_matrix_properties();
        if m.is_empty() {
            println!("cooperative matrices: none");
        }
        for p in m {
            println!(
                "cooperative matrix: {}x{}x{} {:?} -> {:?}",
                p.m_size, p.n_size, p.k_size, p.ab_type, p.cr_type
            );
        }
    }
    Ok(())
}
