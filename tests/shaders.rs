//! CPU-only: every kernel (for `conv2d_*`, `conv2d_common.wgsl` followed by its own file) parses
//! and validates with naga (wgpu's own front end), has an entry point named like the file with
//! the `@workgroup_size` of `kernels::workgroup_size`, and its `Params` uniform has the size and
//! member order of the Rust struct it mirrors.

use std::mem::size_of;

use wgpu_conv::kernels::{
    workgroup_size, ConvParams, LossParams, ReduceParams, SgdParams, SHADERS,
};

fn module(name: &str, src: &str) -> (naga::Module, naga::valid::ModuleInfo) {
    let module = naga::front::wgsl::parse_str(src)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::empty(),
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    (module, info)
}

#[test]
fn every_shader_file_is_listed_and_validates() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wgsl"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|stem| stem != "conv2d_common")
        .collect();
    files.sort();
    let common = std::fs::read_to_string(format!("{dir}/conv2d_common.wgsl")).unwrap();
    let mut listed: Vec<String> = SHADERS.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed, "shaders/ and kernels::SHADERS disagree");
    for (name, src) in SHADERS {
        let mut on_disk = std::fs::read_to_string(format!("{dir}/{name}.wgsl")).unwrap();
        if name.starts_with("conv2d_") {
            // the conv kernels are the shared prelude followed by their own file
            assert!(
                !on_disk.contains("struct Params"),
                "{name}: Params belongs in conv2d_common.wgsl"
            );
            on_disk = format!("{common}{on_disk}");
        }
        assert_eq!(
            &on_disk, src,
            "{name}: embedded source differs from the files"
        );
        let (m, _) = module(name, src);
        let ep = m
            .entry_points
            .iter()
            .find(|e| e.name == *name)
            .unwrap_or_else(|| panic!("{name}: no entry point named like the file"));
        assert_eq!(
            ep.workgroup_size,
            workgroup_size(name),
            "{name}: workgroup size"
        );
    }
}

#[test]
fn params_structs_match_the_rust_side() {
    for (name, src) in SHADERS {
        let (m, _) = module(name, src);
        let (handle, _) = m
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some("Params"))
            .unwrap_or_else(|| panic!("{name}: no Params struct"));
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(m.to_ctx()).unwrap();
        let wgsl_size = layouter[handle].size as usize;
        let rust_size = if name.starts_with("conv2d_") {
            size_of::<ConvParams>()
        } else {
            match *name {
                "reduce_partials" => size_of::<ReduceParams>(),
                "mse_loss" => size_of::<LossParams>(),
                "sgd_step" => size_of::<SgdParams>(),
                other => panic!("{other}: which Rust struct does it mirror?"),
            }
        };
        assert_eq!(
            wgsl_size, rust_size,
            "{name}: Params is {wgsl_size} bytes in WGSL, {rust_size} in Rust"
        );
    }
}

#[test]
fn conv_params_members_match_in_order() {
    // The conv kernels share one Params; its member names must be the Rust field names, in order.
    let rust = [
        "n",
        "c",
        "h",
        "w",
        "oc",
        "kh",
        "kw",
        "cpg",
        "oh",
        "ow",
        "groups",
        "ocpg",
        "stride_h",
        "stride_w",
        "dil_h",
        "dil_w",
        "pad_top",
        "pad_left",
        "pad_bottom",
        "pad_right",
        "pad_mode",
        "flip",
        "has_bias",
        "total",
        "slice_len",
        "slices",
        "base",
        "_pad1",
    ];
    assert_eq!(rust.len() * 4, size_of::<ConvParams>());
    for (name, src) in SHADERS.iter().filter(|(n, _)| n.starts_with("conv2d_")) {
        let (m, _) = module(name, src);
        let ty = m
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some("Params"))
            .unwrap()
            .1;
        let naga::TypeInner::Struct { members, .. } = &ty.inner else {
            panic!("{name}: Params is not a struct")
        };
        let names: Vec<&str> = members
            .iter()
            .map(|m| m.name.as_deref().unwrap_or(""))
            .collect();
        assert_eq!(names, rust, "{name}: Params members");
    }
}
