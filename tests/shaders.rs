//! CPU-only: every kernel (for `conv2d_*`, `conv2d_common.wgsl` followed by its own file; for
//! the GEMM kernels, `conv2d_gemm_common.wgsl` in between, and for the planes kernels also
//! `conv2d_planes_common.wgsl`) parses and validates with naga
//! (wgpu's own front end), has an entry point named like the file with the `@workgroup_size` of
//! `kernels::workgroup_size`, and its `Params` and `Gemm` uniforms have the size and member
//! order of the Rust structs they mirror.

use std::mem::size_of;

use wgpu_conv::kernels::{
    workgroup_size, ConvParams, GemmParams, LossParams, ReduceParams, SgdParams, CHUNK_BYTES,
    CHUNK_TAPS, PLANES_MAX_KERNEL, PLANE_BYTES, SHADERS,
};

/// The kernels built on `conv2d_planes_common.wgsl` too.
const PLANES_KERNELS: [&str; 2] = ["conv2d_forward_planes", "conv2d_weight_grad_planes"];

/// The kernels built on `conv2d_gemm_common.wgsl`.
const GEMM_KERNELS: [&str; 8] = [
    "conv2d_pad_copies",
    "conv2d_pack_chunks",
    "conv2d_forward_gemm",
    "conv2d_unpad_output",
    "conv2d_weight_grad_gemm",
    "conv2d_forward_planes",
    "conv2d_pack_planes",
    "conv2d_weight_grad_planes",
];

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
        .filter(|stem| !stem.ends_with("_common"))
        .collect();
    files.sort();
    let common = std::fs::read_to_string(format!("{dir}/conv2d_common.wgsl")).unwrap();
    let gemm_common = std::fs::read_to_string(format!("{dir}/conv2d_gemm_common.wgsl")).unwrap();
    let planes_common =
        std::fs::read_to_string(format!("{dir}/conv2d_planes_common.wgsl")).unwrap();
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
            on_disk = if PLANES_KERNELS.contains(name) {
                format!("{common}{gemm_common}{planes_common}{on_disk}")
            } else if GEMM_KERNELS.contains(name) {
                format!("{common}{gemm_common}{on_disk}")
            } else {
                format!("{common}{on_disk}")
            };
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
        let (_, wgsl_size) = struct_members(name, src, "Params");
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
        "accumulate",
        "lo0",
        "hi0",
        "lo1",
        "hi1",
        "lo2",
        "hi2",
        "lo3",
        "hi3",
        "lo4",
        "hi4",
        "_pad0",
        "_pad1",
    ];
    assert_eq!(rust.len() * 4, size_of::<ConvParams>());
    for (name, src) in SHADERS.iter().filter(|(n, _)| n.starts_with("conv2d_")) {
        let (names, _) = struct_members(name, src, "Params");
        assert_eq!(names, rust, "{name}: Params members");
    }
}

/// The member names of the struct `ty` in `src`'s module, and its size in bytes.
fn struct_members(name: &str, src: &str, ty: &str) -> (Vec<String>, usize) {
    let (m, _) = module(name, src);
    let (handle, t) = m
        .types
        .iter()
        .find(|(_, t)| t.name.as_deref() == Some(ty))
        .unwrap_or_else(|| panic!("{name}: no {ty} struct"));
    let naga::TypeInner::Struct { members, .. } = &t.inner else {
        panic!("{name}: {ty} is not a struct")
    };
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(m.to_ctx()).unwrap();
    (
        members
            .iter()
            .map(|m| m.name.clone().unwrap_or_default())
            .collect(),
        layouter[handle].size as usize,
    )
}

#[test]
fn gemm_structs_match_the_rust_side() {
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
        "pad_right",
        "pad_mode",
        "hp",
        "wq",
        "ow4",
        "copy_len",
        "has_bias",
        "taps",
        "ocb",
        "chunks",
        "flip",
        "base",
        "copy_mask",
        "zero_offset",
        "slices",
        "slice_rows",
        "transposed",
        "up_h",
        "up_w",
        "_pad0",
        "_pad1",
        "_pad2",
    ];
    assert_eq!(rust.len() * 4, size_of::<GemmParams>());
    for (name, src) in SHADERS.iter().filter(|(n, _)| GEMM_KERNELS.contains(n)) {
        let (names, size) = struct_members(name, src, "Gemm");
        assert_eq!(names, rust, "{name}: Gemm members");
        assert_eq!(size, size_of::<GemmParams>(), "{name}: Gemm size");
        // the chunk layout: CHUNK_TAPS taps of 8 weights and one offset, after a 16-byte head
        let (names, size) = struct_members(name, src, "Chunk");
        assert_eq!(
            names,
            ["head", "offsets", "weights"],
            "{name}: Chunk members"
        );
        assert_eq!(
            size,
            16 + CHUNK_TAPS * 4 + CHUNK_TAPS * 8 * 4,
            "{name}: Chunk size"
        );
        assert!(size as u64 <= CHUNK_BYTES && CHUNK_BYTES.is_multiple_of(256));
        assert!(src.contains(&format!("const CHUNK_TAPS: u32 = {CHUNK_TAPS}u;")));
    }
    let (_, pack) = SHADERS
        .iter()
        .find(|(n, _)| *n == "conv2d_pack_chunks")
        .unwrap();
    assert!(pack.contains(&format!("const CHUNK_WORDS: u32 = {}u;", CHUNK_BYTES / 4)));
    // the forward kernel writes out one call per tap of a chunk
    let (_, forward) = SHADERS
        .iter()
        .find(|(n, _)| *n == "conv2d_forward_gemm")
        .unwrap();
    for t in 0..CHUNK_TAPS {
        assert!(
            forward.contains(&format!("    tap({t}u, xb, &acc);")),
            "tap {t}"
        );
    }
    assert!(!forward.contains(&format!("tap({CHUNK_TAPS}u")));
}

#[test]
fn planes_layout_matches_the_rust_side() {
    let (_, src) = SHADERS
        .iter()
        .find(|(n, _)| *n == "conv2d_forward_planes")
        .unwrap();
    let (names, size) = struct_members("conv2d_forward_planes", src, "Plane");
    assert_eq!(names, ["head", "weights"]);
    assert_eq!(size as u64, PLANE_BYTES);
    let (kh, kw) = PLANES_MAX_KERNEL;
    // every weight of the largest kernel fits the block, and the code is written out for it
    assert!(16 + kh * kw * 4 <= PLANE_BYTES as usize);
    assert!(src.contains(&format!("if {}u < ROWS + KH - 1u", 4 + kh - 2)));
    assert!(src.contains(&format!("if KW > {}u", kw - 1)));
    let (_, pack) = SHADERS
        .iter()
        .find(|(n, _)| *n == "conv2d_pack_planes")
        .unwrap();
    assert!(pack.contains(&format!("const PLANE_WORDS: u32 = {}u;", PLANE_BYTES / 4)));
}
