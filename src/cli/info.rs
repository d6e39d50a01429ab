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
    Ok(())
}
