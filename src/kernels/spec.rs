//! What each kernel is, in one place: its entry point, its complete WGSL source, its workgroup
//! size, its bindings and its uniform. Every kernel module defines one [`KernelSpec`] named
//! `SPEC`, and [`SPECS`] lists them all: pipeline creation, the naga tests and the device's
//! storage-buffer requirement all read this list.

use super::uniforms::{ConvParams, GemmParams};
use super::{
    conv2d_bias_grad, conv2d_core, conv2d_forward, conv2d_forward_gemm, conv2d_forward_mm,
    conv2d_forward_planes, conv2d_forward_rows, conv2d_forward_tiled, conv2d_input_grad,
    conv2d_input_grad_phase, conv2d_input_grad_tiled, conv2d_pack_chunks, conv2d_pack_core,
    conv2d_pack_planes, conv2d_pad_copies, conv2d_unpad_output, conv2d_weight_grad,
    conv2d_weight_grad_core, conv2d_weight_grad_gemm, conv2d_weight_grad_mm,
    conv2d_weight_grad_planes, conv2d_weight_grad_tiled, conv2d_zero_phase, mse_loss,
    reduce_partials, sgd_step, train_step_small,
};

/// The complete source of a kernel: the `shaders/*.wgsl` files named, in order (WGSL has no
/// includes, so the shared preludes are prepended).
macro_rules! shader {
    ($($file:literal),+ $(,)?) => {
        concat!($(include_str!(concat!("../../shaders/", $file, ".wgsl"))),+)
    };
}
pub(crate) use shader;

/// A binding after the uniform at binding 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Read-only storage.
    Read,
    /// Read-write storage.
    Write,
    /// A uniform block bound at a dynamic offset (one block per dispatch).
    Block,
}

/// Which uniform struct a kernel's binding 0 holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Uniform {
    /// `Params` of `conv2d_common.wgsl`: [`ConvParams`].
    Conv,
    /// `Gemm` of `conv2d_gemm_common.wgsl`: [`GemmParams`].
    Gemm,
    /// The kernel's own `Params`, of this many bytes.
    Own(usize),
}

impl Uniform {
    /// Bytes of the uniform.
    pub(crate) const fn bytes(self) -> usize {
        match self {
            Uniform::Conv => std::mem::size_of::<ConvParams>(),
            Uniform::Gemm => std::mem::size_of::<GemmParams>(),
            Uniform::Own(b) => b,
        }
    }
}

/// One kernel entry point.
#[derive(Debug)]
pub(crate) struct KernelSpec {
    /// Entry point, and the stem of its own `.wgsl` file.
    pub name: &'static str,
    /// The shared `*_common.wgsl` files its source starts with, in order (read by the naga
    /// test, which checks `source` against the files).
    #[cfg_attr(not(test), allow(dead_code))]
    pub preludes: &'static [&'static str],
    /// Complete source (the preludes, then its own file).
    pub source: &'static str,
    /// `@workgroup_size`.
    pub workgroup: [u32; 3],
    /// Its bindings after the uniform at 0, in order.
    pub bindings: &'static [Access],
    /// Its uniform.
    pub uniform: Uniform,
    /// Whether every device must run it: the kernels of `Algorithm::Direct` and the
    /// reductions, with which every operation can be planned. The others are chosen only where
    /// the device's limits allow them.
    pub required: bool,
    /// Whether every read and write of the kernel is in bounds by construction (masked
    /// gathers, padded packed operands, grids the plan checks), every integer division is by a
    /// non-zero value, every loop is bounded by the loop budget, and every workgroup-memory
    /// word is written before it is read. Such a kernel is compiled without the runtime checks
    /// naga would add (bounds clamps, division guards, loop counters) and without zeroing its
    /// workgroup memory, unless the context was created with `WGPU_CONV_CHECKED=1`.
    pub trusted: bool,
}

/// Occurrences of `needle` in `hay`, at compile time.
const fn occurrences(hay: &str, needle: &str) -> u32 {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let (mut i, mut count) = (0, 0);
    while i + n.len() <= h.len() {
        let mut j = 0;
        while j < n.len() && h[i + j] == n[j] {
            j += 1;
        }
        if j == n.len() {
            count += 1;
        }
        i += 1;
    }
    count
}

impl KernelSpec {
    /// Storage buffers the kernel binds, counted in its source (`var<storage`; the naga test
    /// checks the count against the module's globals and [`KernelSpec::bindings`]).
    pub(crate) fn storage_buffers(&self) -> u32 {
        // counted once per kernel: every plan's validation asks, on every call
        static COUNTS: std::sync::OnceLock<Vec<(&'static str, u32)>> = std::sync::OnceLock::new();
        let counts = COUNTS.get_or_init(|| {
            SPECS
                .iter()
                .map(|s| (s.name, occurrences(s.source, "var<storage")))
                .collect()
        });
        counts
            .iter()
            .find(|(name, _)| *name == self.name)
            .map_or_else(|| occurrences(self.source, "var<storage"), |c| c.1)
    }

    /// Invocations per workgroup.
    pub(crate) const fn invocations_per_workgroup(&self) -> u32 {
        self.workgroup[0] * self.workgroup[1] * self.workgroup[2]
    }
}

/// Every kernel. To add one: its shader, its module (with its `SPEC`), and a line here.
pub(crate) const SPECS: &[&KernelSpec] = &[
    &conv2d_forward::SPEC,
    &conv2d_forward_rows::SPEC,
    &conv2d_forward_tiled::SPEC,
    &conv2d_pad_copies::SPEC,
    &conv2d_pack_chunks::SPEC,
    &conv2d_forward_gemm::SPEC,
    &conv2d_forward_mm::SPEC,
    &conv2d_pack_core::SPEC,
    &conv2d_core::SPEC,
    &conv2d_unpad_output::SPEC,
    &conv2d_pack_planes::SPEC,
    &conv2d_forward_planes::SPEC,
    &conv2d_input_grad::SPEC,
    &conv2d_input_grad_phase::SPEC,
    &conv2d_input_grad_tiled::SPEC,
    &conv2d_zero_phase::SPEC,
    &conv2d_weight_grad::SPEC,
    &conv2d_weight_grad_tiled::SPEC,
    &conv2d_weight_grad_gemm::SPEC,
    &conv2d_weight_grad_core::SPEC,
    &conv2d_weight_grad_mm::SPEC,
    &conv2d_weight_grad_planes::SPEC,
    &conv2d_bias_grad::SPEC,
    &reduce_partials::SPEC,
    &mse_loss::SPEC,
    &sgd_step::SPEC,
    &train_step_small::SPEC,
];

/// The name of every kernel entry point (as [`crate::Pass::kernel`] and `plan` name them), in
/// the order of `SPECS`.
pub fn kernel_names() -> Vec<&'static str> {
    SPECS.iter().map(|s| s.name).collect()
}

/// The kernel set's version: a hash (64-bit FNV-1a) of every kernel's name and source, so that
/// autotuning's cached choices are dropped whenever a kernel changes.
pub(crate) fn kernel_set_version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for spec in SPECS {
            for b in spec.name.bytes().chain(spec.source.bytes()) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        format!("kernels-{h:016x}")
    })
}

/// Storage buffers per shader stage a device must allow: the most any required kernel binds.
pub(crate) fn required_storage_buffers() -> u32 {
    SPECS
        .iter()
        .filter(|s| s.required)
        .map(|s| s.storage_buffers())
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    //! CPU-only: every kernel parses and validates with naga (wgpu's own front end), is listed
    //! once, is built from the files its spec names, and has the entry point, workgroup size,
    //! bindings and uniform layout its spec and the Rust structs say.

    use super::*;
    use crate::kernels::uniforms::ConvShape;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");

    fn module(name: &str, src: &str) -> naga::Module {
        let module = naga::front::wgsl::parse_str(src)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        module
    }

    #[test]
    fn every_shader_file_is_a_listed_kernel_built_from_its_files() {
        let mut files: Vec<String> = std::fs::read_dir(DIR)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "wgsl"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .filter(|stem| !stem.ends_with("_common"))
            .collect();
        files.sort();
        let mut listed: Vec<String> = SPECS.iter().map(|s| s.name.to_string()).collect();
        listed.sort();
        assert_eq!(files, listed, "shaders/ and SPECS disagree");
        for spec in SPECS {
            let mut expected = String::new();
            for f in spec.preludes.iter().chain([&spec.name]) {
                expected += &std::fs::read_to_string(format!("{DIR}/{f}.wgsl")).unwrap();
            }
            assert_eq!(expected, spec.source, "{}: source", spec.name);
            let own = std::fs::read_to_string(format!("{DIR}/{}.wgsl", spec.name)).unwrap();
            assert!(
                !own.contains("struct Shape") && !own.contains("struct Gemm {"),
                "{}: shared structs belong in the preludes",
                spec.name
            );
        }
    }

    #[test]
    fn entry_points_workgroups_and_bindings_match_the_specs() {
        for spec in SPECS {
            let m = module(spec.name, spec.source);
            let ep = m
                .entry_points
                .iter()
                .find(|e| e.name == spec.name)
                .unwrap_or_else(|| panic!("{}: no entry point named like the file", spec.name));
            assert_eq!(
                ep.workgroup_size, spec.workgroup,
                "{}: workgroup",
                spec.name
            );
            let mut bound: Vec<(u32, naga::AddressSpace)> = m
                .global_variables
                .iter()
                .filter_map(|(_, v)| v.binding.as_ref().map(|b| (b.binding, v.space)))
                .collect();
            bound.sort_by_key(|b| b.0);
            let want: Vec<(u32, naga::AddressSpace)> = std::iter::once(naga::AddressSpace::Uniform)
                .chain(spec.bindings.iter().map(|a| match a {
                    Access::Read => naga::AddressSpace::Storage {
                        access: naga::StorageAccess::LOAD,
                    },
                    Access::Write => naga::AddressSpace::Storage {
                        access: naga::StorageAccess::LOAD | naga::StorageAccess::STORE,
                    },
                    Access::Block => naga::AddressSpace::Uniform,
                }))
                .enumerate()
                .map(|(i, s)| (i as u32, s))
                .collect();
            assert_eq!(bound, want, "{}: bindings", spec.name);
            let storage = bound
                .iter()
                .filter(|b| matches!(b.1, naga::AddressSpace::Storage { .. }))
                .count() as u32;
            assert_eq!(
                storage,
                spec.storage_buffers(),
                "{}: storage count",
                spec.name
            );
        }
    }

    /// The members of struct `name` in `m`: names and byte offsets, and its size.
    fn members(m: &naga::Module, name: &str) -> (Vec<(String, u32)>, u32) {
        let ty = m
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no struct {name}"))
            .1;
        match &ty.inner {
            naga::TypeInner::Struct { members, span } => (
                members
                    .iter()
                    .map(|m| (m.name.clone().unwrap_or_default(), m.offset))
                    .collect(),
                *span,
            ),
            _ => panic!("{name} is not a struct"),
        }
    }

    fn field_names(debug: &str) -> Vec<String> {
        // `Struct { a: 1, b: 2, .. }` -> ["a", "b", ..] (the Rust side's field order)
        let inner = &debug[debug.find('{').unwrap() + 1..debug.rfind('}').unwrap()];
        let mut names = Vec::new();
        let mut depth = 0;
        let mut token = String::new();
        for ch in inner.chars() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                ':' if depth == 0 => names.push(token.trim().to_string()),
                ',' if depth == 0 => token.clear(),
                _ if depth == 0 => token.push(ch),
                _ => {}
            }
        }
        names
    }

    #[test]
    fn uniform_structs_match_the_rust_side() {
        let forward = module("conv2d_forward", conv2d_forward::SPEC.source);
        let gemm = module("conv2d_forward_gemm", conv2d_forward_gemm::SPEC.source);
        let zero_shape = ConvShape::default();
        let cases: [(&naga::Module, &str, String, usize); 3] = [
            (
                &forward,
                "Shape",
                format!("{zero_shape:?}"),
                std::mem::size_of::<ConvShape>(),
            ),
            (
                &forward,
                "Params",
                format!("{:?}", ConvParams::default()),
                std::mem::size_of::<ConvParams>(),
            ),
            (
                &gemm,
                "Gemm",
                format!("{:?}", GemmParams::default()),
                std::mem::size_of::<GemmParams>(),
            ),
        ];
        for (m, name, debug, size) in cases {
            let (wgsl, span) = members(m, name);
            let names: Vec<String> = wgsl.iter().map(|(n, _)| n.clone()).collect();
            let rust: Vec<String> = field_names(&debug)
                .into_iter()
                .map(|n| if n == "shape" { "s".into() } else { n })
                .collect();
            assert_eq!(names, rust, "{name}: member names and order");
            assert_eq!(span as usize, size, "{name}: size");
        }
        for spec in SPECS {
            let m = module(spec.name, spec.source);
            let uniform = m
                .global_variables
                .iter()
                .find(|(_, v)| v.binding.as_ref().is_some_and(|b| b.binding == 0))
                .unwrap()
                .1;
            let span = m.types[uniform.ty].inner.size(m.to_ctx());
            assert_eq!(
                span as usize,
                spec.uniform.bytes(),
                "{}: uniform size",
                spec.name
            );
        }
    }

    #[test]
    fn the_required_kernels_are_the_direct_ones_and_need_four_storage_buffers() {
        // every operation can be planned with these alone (Algorithm::Direct, the reductions)
        let direct = [
            "conv2d_forward",
            "conv2d_input_grad",
            "conv2d_weight_grad",
            "conv2d_bias_grad",
            "reduce_partials",
            "mse_loss",
            "sgd_step",
        ];
        for s in SPECS {
            assert_eq!(s.required, direct.contains(&s.name), "{}", s.name);
        }
        assert_eq!(required_storage_buffers(), 4);
        let most = SPECS.iter().map(|s| s.storage_buffers()).max();
        assert_eq!(most, Some(conv2d_forward_planes::SPEC.storage_buffers()));
        assert_eq!(most, Some(6));
    }

    /// A `u32` constant of a shader module, by name.
    fn shader_const(m: &naga::Module, kernel: &str, name: &str) -> u32 {
        let (_, c) = m
            .constants
            .iter()
            .find(|(_, c)| c.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{kernel}: no constant {name}"));
        match m.global_expressions[c.init] {
            naga::Expression::Literal(naga::Literal::U32(v)) => v,
            ref e => panic!("{kernel}: {name} is {e:?}, not a u32 literal"),
        }
    }

    #[test]
    fn tile_sizes_and_array_lengths_match_the_shaders() {
        use super::super::{conv2d_core as c, conv2d_weight_grad_core as cw};
        use super::super::{conv2d_forward_mm as f, conv2d_weight_grad_mm as w};
        for (spec, name, rust) in [
            (&f::SPEC, "TILE_M", f::TILE_M),
            (&f::SPEC, "TILE_N", f::TILE_N),
            (&f::SPEC, "TILE_K", f::TILE_K),
            (&w::SPEC, "TILE_M", w::TILE_M),
            (&w::SPEC, "TILE_N", w::TILE_N),
            (&w::SPEC, "TILE_P", w::TILE_P),
            (&c::SPEC, "TILE_M", c::TILE_M),
            (&c::SPEC, "TILE_N", c::TILE_N),
            (&c::SPEC, "TILE_K", c::TILE_K),
            (&c::SPEC, "SWIZZLE", c::SWIZZLE as usize),
            (&cw::SPEC, "TILE_M", c::TILE_M),
            (&cw::SPEC, "TILE_N", c::TILE_N),
            (&cw::SPEC, "TILE_K", c::TILE_K),
            (&cw::SPEC, "SWIZZLE", cw::SWIZZLE as usize),
            (&c::SPEC, "TILE_VEC4S", c::PACKED_TILE_FLOATS / 4),
            (
                &train_step_small::SPEC,
                "MAX_OUTPUTS",
                train_step_small::MAX_OUTPUTS,
            ),
        ] {
            let m = module(spec.name, spec.source);
            assert_eq!(
                shader_const(&m, spec.name, name) as usize,
                rust,
                "{}: {name}",
                spec.name
            );
        }
    }

    #[test]
    fn block_layouts_match_the_shaders() {
        // a chunk: CHUNK_TAPS taps of 8 weights and one offset, after a 16-byte head
        let src = conv2d_forward_gemm::SPEC.source;
        let m = module("conv2d_forward_gemm", src);
        let (names, chunk) = members(&m, "Chunk");
        let names: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["head", "offsets", "weights"]);
        let taps = conv2d_forward_gemm::CHUNK_TAPS;
        assert_eq!(chunk as usize, 16 + taps * 4 + taps * 8 * 4);
        let bytes = conv2d_forward_gemm::CHUNK_BYTES;
        assert!(u64::from(chunk) <= bytes && bytes.is_multiple_of(256));
        assert!(src.contains(&format!("const CHUNK_TAPS: u32 = {taps}u;")));
        assert!(conv2d_pack_chunks::SPEC
            .source
            .contains(&format!("const CHUNK_WORDS: u32 = {}u;", bytes / 4)));
        // the forward kernel writes out one call per tap of a chunk
        for t in 0..taps {
            assert!(
                src.contains(&format!("    tap({t}u, xb, &acc);")),
                "tap {t}"
            );
        }
        assert!(!src.contains(&format!("tap({taps}u")));

        let src = conv2d_forward_planes::SPEC.source;
        let m = module("conv2d_forward_planes", src);
        let (names, plane) = members(&m, "Plane");
        let names: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["head", "weights"]);
        let bytes = conv2d_forward_planes::PLANE_BYTES;
        assert_eq!(u64::from(plane), bytes);
        // every weight of the largest kernel fits the block, and the code is written out for it
        let (kh, kw) = conv2d_forward_planes::MAX_KERNEL;
        assert!(16 + kh * kw * 4 <= bytes as usize);
        assert!(src.contains(&format!("if {}u < ROWS + KH - 1u", 4 + kh - 2)));
        assert!(src.contains(&format!("if KW > {}u", kw - 1)));
        assert!(conv2d_pack_planes::SPEC
            .source
            .contains(&format!("const PLANE_WORDS: u32 = {}u;", bytes / 4)));
    }
}
