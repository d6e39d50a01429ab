//! The plans of every case of the test table and of limit-stressing cases, computed from device
//! profiles with no adapter, are valid for the profile's limits (no grid dimension over the
//! limit, no scratch buffer over the binding limit, no kernel binding more storage buffers than
//! allowed, no invocation over the loop budget) and use the kernels the rules say; the order of
//! choice is pinned; and (on the GPU) every plan shown is the plan the call records.

mod common;

use common::{case_data, cases, ctx, Rng, PLANES_MAX_KERNEL, PLANES_PER_LANE_FROM};
use wgpu_conv::{
    candidates, plan_bias_grad, plan_forward, plan_input_grad, plan_weight_grad, Algorithm,
    Conv2dGeometry, Conv2dOptions, DeviceProfile, Family, Hw, Op, PaddingMode, Plan, Tensor,
    Wanted, AUTO_BLOCKED_FROM,
};

/// A software adapter's limits as this crate asks for them (128 MiB bindings, storage buffers
/// without a practical limit), a large GPU's (2 GiB bindings), WebGPU's defaults, and a
/// downlevel device (4 storage buffers per stage).
fn profiles() -> Vec<(&'static str, DeviceProfile)> {
    let mut lavapipe = DeviceProfile::webgpu_defaults().with_device_type(wgpu::DeviceType::Cpu);
    lavapipe.max_binding_bytes = 1 << 27;
    lavapipe.max_storage_buffers_per_stage = 1 << 20;
    let mut large = lavapipe
        .clone()
        .with_device_type(wgpu::DeviceType::DiscreteGpu);
    large.max_binding_bytes = 1 << 31;
    let downlevel = DeviceProfile::from_limits(&wgpu_types_downlevel());
    vec![
        ("lavapipe-like", lavapipe),
        ("large-gpu", large),
        ("webgpu", DeviceProfile::webgpu_defaults()),
        ("downlevel", downlevel),
    ]
}

fn wgpu_types_downlevel() -> wgpu::Limits {
    wgpu::Limits::downlevel_defaults()
}

/// Every plan of `g` on `profile`, under every algorithm, labelled.
fn all_plans(g: &Conv2dGeometry, bias: bool, profile: &DeviceProfile) -> Vec<(String, Plan)> {
    let mut out = Vec::new();
    for a in [
        Algorithm::Auto,
        Algorithm::Direct,
        Algorithm::Tiled,
        Algorithm::Gemm,
        Algorithm::Gpu,
    ] {
        let ok = |r: wgpu_conv::Result<Plan>, what: &str| {
            r.unwrap_or_else(|e| panic!("{what} {a:?}: {e}"))
        };
        out.push((
            format!("forward {a:?}"),
            ok(plan_forward(g, bias, profile, a), "forward"),
        ));
        out.push((
            format!("weight_grad {a:?}"),
            ok(plan_weight_grad(g, profile, a), "weight_grad"),
        ));
        out.push((
            format!("input_grad {a:?}"),
            ok(plan_input_grad(g, profile, a), "input_grad"),
        ));
    }
    out.push(("bias_grad".into(), plan_bias_grad(g, profile).unwrap()));
    out
}

/// Whether the planes kernels take `g`'s geometry.
fn planes_apply(g: &Conv2dGeometry) -> bool {
    g.cpg() == 1
        && g.ocpg() == 1
        && g.stride == Hw::new(1, 1)
        && g.dilation == Hw::new(1, 1)
        && g.kh <= PLANES_MAX_KERNEL.0
        && g.kw <= PLANES_MAX_KERNEL.1
}

/// The forward kernel the rules give for `g` under `a` (grids that fit, operands that fit).
fn expected_forward(g: &Conv2dGeometry, a: Algorithm, profile: &DeviceProfile) -> &'static str {
    let a = match a {
        Algorithm::Auto if g.output_shape().iter().product::<usize>() < AUTO_BLOCKED_FROM => {
            Algorithm::Direct
        }
        Algorithm::Auto if profile.resolved_family() == Family::Cpu => Algorithm::Gemm,
        Algorithm::Auto => Algorithm::Gpu,
        a => a,
    };
    // the forward planes kernel takes one input channel per group and any number out
    let planes = g.cpg() == 1
        && g.stride == Hw::new(1, 1)
        && g.dilation == Hw::new(1, 1)
        && g.kh <= PLANES_MAX_KERNEL.0
        && g.kw <= PLANES_MAX_KERNEL.1
        && profile.max_storage_buffers_per_stage >= 6;
    match a {
        Algorithm::Direct => "conv2d_forward",
        Algorithm::Gpu if planes => "conv2d_forward_planes",
        // the core needs 16 KiB of workgroup memory
        Algorithm::Gpu if g.ocpg() >= 4 && profile.max_workgroup_storage_bytes >= 16384 => {
            "conv2d_core"
        }
        Algorithm::Gpu if g.ocpg() >= 4 => "conv2d_forward_mm",
        Algorithm::Gpu if g.ocpg() > 1 && g.stride.w <= 8 => "conv2d_forward_gemm",
        // the forward planes kernel binds 6 storage buffers
        Algorithm::Gemm if planes => "conv2d_forward_planes",
        Algorithm::Gemm if g.ocpg() > 1 && g.stride.w <= 8 => "conv2d_forward_gemm",
        _ if g.ocpg() == 1 => "conv2d_forward_rows",
        _ => "conv2d_forward_tiled",
    }
}

fn expected_weight_grad(g: &Conv2dGeometry, a: Algorithm, profile: &DeviceProfile) -> &'static str {
    let a = match a {
        Algorithm::Auto if g.output_shape().iter().product::<usize>() < AUTO_BLOCKED_FROM => {
            Algorithm::Direct
        }
        Algorithm::Auto if profile.resolved_family() == Family::Cpu => Algorithm::Gemm,
        Algorithm::Auto => Algorithm::Gpu,
        a => a,
    };
    let blocked = matches!(a, Algorithm::Gemm | Algorithm::Gpu);
    match a {
        Algorithm::Direct => "conv2d_weight_grad",
        // the weight-gradient planes kernel binds 5 storage buffers
        _ if blocked && planes_apply(g) && profile.max_storage_buffers_per_stage >= 5 => {
            "conv2d_weight_grad_planes"
        }
        // the core needs 16 KiB of workgroup memory
        Algorithm::Gpu if g.ocpg() >= 4 && profile.max_workgroup_storage_bytes >= 16384 => {
            "conv2d_weight_grad_core"
        }
        Algorithm::Gpu if g.ocpg() >= 4 => "conv2d_weight_grad_mm",
        _ if blocked && g.ocpg() > 1 && g.stride.w <= 8 => "conv2d_weight_grad_gemm",
        _ => "conv2d_weight_grad_tiled",
    }
}

#[test]
fn every_table_case_plans_validly_with_the_expected_kernels() {
    for (pname, profile) in profiles() {
        for case in cases() {
            let g = case.opts.resolve(case.x, case.w).unwrap();
            for (what, plan) in all_plans(&g, case.bias, &profile) {
                let label = format!("{pname} {} {what}", case.name);
                plan.validate(&profile)
                    .unwrap_or_else(|e| panic!("{label}: {e}\n{plan}"));
                assert!(!plan.passes().is_empty(), "{label}: no passes");
                assert!(!plan.reasons().is_empty(), "{label}: no reasons");
            }
            for a in [
                Algorithm::Auto,
                Algorithm::Direct,
                Algorithm::Tiled,
                Algorithm::Gemm,
                Algorithm::Gpu,
            ] {
                let f = plan_forward(&g, case.bias, &profile, a).unwrap();
                assert_eq!(
                    f.main_kernel(),
                    Some(expected_forward(&g, a, &profile)),
                    "{pname} {} forward {a:?}:\n{f}",
                    case.name
                );
                let w = plan_weight_grad(&g, &profile, a).unwrap();
                let want = expected_weight_grad(&g, a, &profile);
                // the GEMM weight gradient leaves rows too long for its loop budget to the
                // tiled kernel
                let got = w.main_kernel().unwrap();
                assert!(
                    got == want
                        || (want == "conv2d_weight_grad_gemm" && got == "conv2d_weight_grad_tiled"),
                    "{pname} {} weight_grad {a:?}: {got}, expected {want}\n{w}",
                    case.name
                );
                if a == Algorithm::Direct {
                    let i = plan_input_grad(&g, &profile, a).unwrap();
                    assert_eq!(i.kernels(), ["conv2d_input_grad"], "{}", case.name);
                }
            }
        }
    }
}

/// A depthwise layer of 70,000 channels (more than a grid dimension holds), stride 2, on a
/// 2x2 input: every algorithm's plan keeps every dimension within the limit.
#[test]
fn seventy_thousand_channels_plan_within_the_grid_limit() {
    let opts = Conv2dOptions::new().groups(70_000).stride(2);
    let g = opts.resolve([1, 70_000, 2, 2], [70_000, 1, 1, 1]).unwrap();
    let also = Conv2dOptions::new()
        .groups(70_000)
        .padding(1)
        .resolve([2, 70_000, 3, 3], [70_000, 1, 3, 3])
        .unwrap();
    for (pname, profile) in profiles() {
        for g in [g, also] {
            for (what, plan) in all_plans(&g, true, &profile) {
                plan.validate(&profile)
                    .unwrap_or_else(|e| panic!("{pname} {what}: {e}\n{plan}"));
                assert!(
                    plan.passes()
                        .iter()
                        .all(|p| p.largest_grid().iter().all(|&d| d <= 65_535)),
                    "{pname} {what}\n{plan}"
                );
            }
        }
    }
}

/// A 1 x 65,537 image (wider than a grid dimension of single columns), and a long column.
#[test]
fn a_row_wider_than_a_grid_dimension_plans_validly() {
    for (x, w, opts) in [
        ([1, 1, 1, 65_537], [1, 1, 1, 3], Conv2dOptions::new()),
        (
            [1, 1, 65_537, 1],
            [1, 1, 3, 1],
            Conv2dOptions::new().padding(1),
        ),
        (
            [1, 2, 1, 65_537],
            [4, 2, 1, 2],
            Conv2dOptions::new().stride((1, 3)),
        ),
    ] {
        let g = opts.resolve(x, w).unwrap();
        for (pname, profile) in profiles() {
            for (what, plan) in all_plans(&g, false, &profile) {
                plan.validate(&profile)
                    .unwrap_or_else(|e| panic!("{pname} {x:?} {what}: {e}\n{plan}"));
            }
        }
    }
}

/// Tiny binding limits: operands past them are split, scratch past them falls back to kernels
/// that need less, and every plan fits.
#[test]
fn tiny_binding_limits_split_and_fall_back() {
    let profile = DeviceProfile::webgpu_defaults().with_binding_limit(4096);
    for case in cases() {
        let g = case.opts.resolve(case.x, case.w).unwrap();
        let weight_bytes = g.weight_shape().iter().product::<usize>() * 4;
        if weight_bytes > 4096 && g.groups > 1 {
            continue; // a grouped weight past the limit cannot be split: a typed error
        }
        for (what, plan) in all_plans(&g, case.bias, &profile) {
            plan.validate(&profile)
                .unwrap_or_else(|e| panic!("{} {what}: {e}\n{plan}", case.name));
            let operand = [g.input_shape(), g.output_shape()]
                .iter()
                .any(|s| s.iter().product::<usize>() * 4 > 4096);
            if operand {
                assert!(
                    plan.reasons()[0].starts_with("split: "),
                    "{} {what}: {:?}",
                    case.name,
                    plan.reasons()
                );
            }
        }
    }
}

/// A device with 4 storage buffers per stage never gets the planes kernels (they bind 6 and 5),
/// and the plan says why.
#[test]
fn four_storage_buffers_rule_out_the_planes_kernel() {
    let mut profile = DeviceProfile::webgpu_defaults();
    profile.max_storage_buffers_per_stage = 4;
    let g = Conv2dOptions::new()
        .groups(8)
        .padding(1)
        .resolve([2, 8, 16, 16], [8, 1, 3, 3])
        .unwrap();
    let plan = plan_forward(&g, true, &profile, Algorithm::Gemm).unwrap();
    plan.validate(&profile).unwrap();
    assert_eq!(plan.main_kernel(), Some("conv2d_forward_rows"), "{plan}");
    assert!(
        plan.reasons().iter().any(|r| r.contains("storage buffers")),
        "{plan}"
    );
    profile.max_storage_buffers_per_stage = 8;
    let plan = plan_forward(&g, true, &profile, Algorithm::Gemm).unwrap();
    assert_eq!(plan.main_kernel(), Some("conv2d_forward_planes"), "{plan}");
}

/// The loop budget's repro (256 input channels, a 16 x 16 kernel): the direct and tiled
/// forward kernels run as pieces whose invocations stay within the budget.
#[test]
fn long_nests_are_planned_as_pieces_within_the_budget() {
    let g = Conv2dOptions::new()
        .resolve([1, 256, 20, 20], [2, 256, 16, 16])
        .unwrap();
    let profile = DeviceProfile::webgpu_defaults();
    for a in [Algorithm::Direct, Algorithm::Tiled] {
        let plan = plan_forward(&g, false, &profile, a).unwrap();
        plan.validate(&profile).unwrap();
        assert!(plan.passes()[0].dispatches() >= 4, "{plan}");
        assert!(plan.max_loop_iterations() <= 32_768);
    }
    // reflect padding of 28 on the input gradient: a scan of 57 x 57 candidates
    let g = Conv2dOptions::new()
        .padding(28)
        .padding_mode(PaddingMode::Reflect)
        .resolve([1, 2, 40, 40], [2, 2, 3, 3])
        .unwrap();
    for a in Algorithm::ALL {
        let plan = plan_input_grad(&g, &profile, a).unwrap();
        plan.validate(&profile).unwrap();
        assert!(plan.dispatches() > 1, "{plan}");
    }
}

/// The planes tests are built around `PLANES_MAX_KERNEL` and `PLANES_PER_LANE_FROM`: the
/// planner draws its lines there.
#[test]
fn the_planes_boundaries_are_where_the_tests_expect() {
    let profile = DeviceProfile::webgpu_defaults();
    let (kh, kw) = PLANES_MAX_KERNEL;
    let plan = |c: usize, kh: usize, kw: usize| {
        let g = Conv2dOptions::new()
            .groups(c)
            .resolve([1, c, 20, 20], [c, 1, kh, kw])
            .unwrap();
        plan_forward(&g, false, &profile, Algorithm::Gemm).unwrap()
    };
    let main = |p: &Plan| p.main_kernel().unwrap();
    assert_eq!(main(&plan(2, kh, kw)), "conv2d_forward_planes");
    assert_eq!(main(&plan(2, kh + 1, kw)), "conv2d_forward_rows");
    assert_eq!(main(&plan(2, kh, kw + 1)), "conv2d_forward_rows");
    let lanes = |c| {
        let p = plan(c, 3, 3);
        let pass = p
            .passes()
            .iter()
            .find(|p| p.kernel() == "conv2d_forward_planes")
            .unwrap();
        pass.constants().contains("PER_LANE_WEIGHTS=1")
    };
    assert!(lanes(PLANES_PER_LANE_FROM));
    assert!(!lanes(PLANES_PER_LANE_FROM - 1));
}

/// What `wgpu-conv plan` prints: choices, passes with grids and loop counts, scratch; the CPU
/// family on a software adapter's profile, the GPU family elsewhere (or when asked for).
#[test]
fn a_plan_reads_as_choices_passes_and_scratch() {
    let g = Conv2dOptions::new()
        .padding(1)
        .resolve([8, 64, 56, 56], [64, 64, 3, 3])
        .unwrap();
    let cpu = DeviceProfile::webgpu_defaults().with_device_type(wgpu::DeviceType::Cpu);
    let plan = plan_forward(&g, true, &cpu, Algorithm::Auto).unwrap();
    let text = plan.to_string();
    for part in [
        "forward plan",
        "choices:",
        "auto -> gemm",
        "cpu family",
        "passes:",
        "scratch:",
    ] {
        assert!(text.contains(part), "{part}:\n{text}");
    }
    assert_eq!(
        plan.kernels(),
        [
            "conv2d_pad_copies",
            "conv2d_pack_chunks",
            "conv2d_forward_gemm"
        ]
    );
    assert!(plan.scratch_bytes() > 0);
    // the GPU family: the weight packed (64 x 576 floats), then one dispatch of the core
    for profile in [
        DeviceProfile::webgpu_defaults(),
        cpu.clone().with_family(Family::Gpu),
    ] {
        let plan = plan_forward(&g, true, &profile, Algorithm::Auto).unwrap();
        assert!(plan.to_string().contains("auto -> gpu"), "{plan}");
        assert_eq!(plan.kernels(), ["conv2d_pack_core", "conv2d_core"]);
        assert_eq!(plan.dispatches(), 2);
        assert_eq!(plan.scratch_bytes(), 64 * 576 * 4, "{plan}");
        let w = plan_weight_grad(&g, &profile, Algorithm::Auto).unwrap();
        assert_eq!(
            w.kernels(),
            ["conv2d_weight_grad_core", "reduce_partials"],
            "{w}"
        );
        // 9 tap tiles x 37 slices of the pixels: 2.5 workgroups per SM of a 132-SM GPU
        assert!(w.passes()[0].model().workgroups >= 330, "{w}");
    }
}

/// The GPU family's structure on the named shapes (what predicts its speed on a GPU): the
/// forward pass of resnet_3x3 in at most 2 dispatches (the packing and the core), the core's
/// of at least 2.5 workgroups per SM of a 132-SM GPU; and every forward pass of 0.4 GFLOP or
/// more as many, split K or not; its weight gradient the core and the sum of its slices; its
/// input gradient the core's two passes, the packed weight its only scratch; stem_7x7's input
/// gradient without zero-inserted scratch; the GEMM kernels' scratch never larger than the
/// input.
#[test]
fn the_gpu_family_runs_each_op_as_one_large_dispatch() {
    let profile = DeviceProfile::webgpu_defaults()
        .with_device_type(wgpu::DeviceType::Cpu)
        .with_family(Family::Gpu);
    let profile = DeviceProfile {
        max_binding_bytes: 1 << 31,
        ..profile
    };
    for s in wgpu_conv::bench_shapes() {
        let g = s.options.resolve(s.input, s.weight).unwrap();
        let input = g.input_shape().iter().product::<usize>() as u64 * 4;
        for plan in [
            plan_forward(&g, false, &profile, Algorithm::Auto).unwrap(),
            plan_weight_grad(&g, &profile, Algorithm::Auto).unwrap(),
            plan_input_grad(&g, &profile, Algorithm::Auto).unwrap(),
        ] {
            plan.validate(&profile).unwrap();
            let mm = plan.kernels().iter().any(|k| k.ends_with("_mm"));
            if mm {
                assert!(plan.scratch_bytes() <= input, "{}: {plan}", s.name);
            }
        }
    }
    let shape = |name: &str| {
        let s = wgpu_conv::bench_shapes()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap();
        s.options.resolve(s.input, s.weight).unwrap()
    };
    let workgroups = |p: &wgpu_conv::Plan, kernel: &str| -> u64 {
        let pass = p.passes().iter().find(|q| q.kernel() == kernel).unwrap();
        pass.largest_grid().iter().map(|&d| u64::from(d)).product()
    };
    for s in wgpu_conv::bench_shapes() {
        let g = shape(s.name);
        let f = plan_forward(&g, false, &profile, Algorithm::Auto).unwrap();
        if g.flops() >= 0.4e9 && f.kernels().contains(&"conv2d_core") {
            assert!(workgroups(&f, "conv2d_core") as f64 >= 2.5 * 132.0, "{f}");
        }
    }
    let g = shape("resnet_3x3");
    let f = plan_forward(&g, false, &profile, Algorithm::Auto).unwrap();
    assert!(f.dispatches() <= 2, "{f}");
    assert_eq!(f.kernels(), ["conv2d_pack_core", "conv2d_core"], "{f}");
    let w = plan_weight_grad(&g, &profile, Algorithm::Auto).unwrap();
    assert!(w.dispatches() <= 3, "{w}");
    assert_eq!(
        w.kernels(),
        ["conv2d_weight_grad_core", "reduce_partials"],
        "{w}"
    );
    // stride 1: the core over gy, its only scratch the packed weight
    let i = plan_input_grad(&g, &profile, Algorithm::Auto).unwrap();
    assert_eq!(i.kernels(), ["conv2d_pack_core", "conv2d_core"], "{i}");
    assert_eq!(i.scratch_bytes(), 64 * 576 * 4);
    // stride 2, 3 input channels: the phases, one dispatch each piece, no scratch, no zeros
    let i = plan_input_grad(&shape("stem_7x7"), &profile, Algorithm::Auto).unwrap();
    assert_eq!(i.kernels(), ["conv2d_input_grad_phase"], "{i}");
    assert_eq!(i.scratch_bytes(), 0, "{i}");
    assert_eq!(i.passes()[0].model().wasted_fma_fraction, Some(0.0), "{i}");
}

/// The planes kernels read their input (and the weight gradient its dy) in place: on every
/// table case they take, in either family, no padded copy and no row-padded dy; and the table
/// reaches each way of reading, so the GPU tests run them all.
#[test]
fn planes_read_in_place_and_the_table_covers_every_read() {
    let profile = profiles().remove(0).1;
    let mut seen = std::collections::BTreeSet::new();
    for (case, a) in cases()
        .iter()
        .flat_map(|c| [(c, Algorithm::Gemm), (c, Algorithm::Gpu)])
    {
        let g = case.opts.resolve(case.x, case.w).unwrap();
        let plans = [
            plan_forward(&g, case.bias, &profile, a).unwrap(),
            plan_weight_grad(&g, &profile, a).unwrap(),
            plan_input_grad(&g, &profile, a).unwrap(),
        ];
        for plan in plans {
            let planes = plan.kernels().iter().any(|k| {
                k.starts_with("conv2d_forward_planes") || k.starts_with("conv2d_weight_grad_planes")
            });
            if !planes {
                continue;
            }
            assert!(
                !plan.kernels().contains(&"conv2d_pad_copies"),
                "{} ({a:?}): a copy pass in a planes plan\n{plan}",
                case.name
            );
            for r in plan.reasons() {
                for way in [
                    "floats of the input itself",
                    "vec4s of the input itself",
                    "the input itself (nothing to pad",
                    "as floats of dy itself",
                    "as vec4s of dy itself",
                ] {
                    if r.contains(way) {
                        seen.insert(format!("{:?} {way}", plan.op()));
                    }
                }
            }
        }
    }
    for want in [
        "Forward floats of the input itself",
        "Forward vec4s of the input itself",
        "WeightGrad floats of the input itself",
        "WeightGrad vec4s of the input itself",
        "WeightGrad as floats of dy itself",
        "WeightGrad as vec4s of dy itself",
    ] {
        assert!(
            seen.contains(want),
            "no table case reads {want:?}; seen: {seen:?}"
        );
    }
}

/// The order in which each op's candidates are asked, and the algorithms that may take each:
/// printed as a table and pinned (a new kernel is one line in a list, and one line here).
#[test]
fn the_order_of_choice_is_pinned() {
    let table: String = [Op::Forward, Op::WeightGrad, Op::InputGrad]
        .into_iter()
        .map(|op| {
            let row: Vec<String> = candidates(op)
                .iter()
                .map(|(name, algorithms)| {
                    let a: Vec<&str> = algorithms.iter().map(|a| a.name()).collect();
                    format!("{name} ({})", a.join(" "))
                })
                .collect();
            format!("{:<12} {}\n", op.name(), row.join(" > "))
        })
        .collect();
    println!("{table}");
    assert_eq!(
        table,
        "forward      planes (gemm gpu) > core (gpu) > mm (gpu) > gemm (gemm gpu) > rows (tiled gemm gpu) > \
         tiled (tiled gemm gpu) > direct (direct tiled gemm gpu)\n\
         weight_grad  planes (gemm gpu) > core (gpu) > mm (gpu) > gemm (gemm gpu) > tiled (tiled gemm gpu) > \
         direct (direct tiled gemm gpu)\n\
         input_grad   as forward (tiled gemm gpu) > core (gpu) > phase (gemm gpu) > core phases (gemm gpu) > mm (gpu) > \
         gemm (gemm gpu) > \
         tiled (tiled gemm gpu) > direct (direct tiled gemm gpu)\n"
    );
    assert!(candidates(Op::BiasGrad).is_empty());
}

/// The context's plan log is one for the whole binary: the tests that read it take turns.
static PLAN_LOG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// For every table case and algorithm, the plan `GpuContext::plan` shows (what `wgpu-conv
/// plan` prints) is, text for text, the plan the call binds and records: one forward plan for
/// `conv2d`, the three gradients' for `conv2d_backward`.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn every_shown_plan_is_the_plan_the_call_records() {
    let _log = PLAN_LOG.lock().unwrap_or_else(|e| e.into_inner());
    let ctx = ctx();
    for case in cases() {
        let g = case.opts.resolve(case.x, case.w).unwrap();
        let (x, w, b) = case_data(&case, 3);
        let x = Tensor::new(case.x.to_vec(), x).unwrap();
        let w = Tensor::new(case.w.to_vec(), w).unwrap();
        let b = b.map(|b| Tensor::new(vec![case.w[0]], b).unwrap());
        let out = g.output_shape();
        let gy = Tensor::new(out.to_vec(), Rng::new(4).vec(out.iter().product())).unwrap();
        for a in [
            Algorithm::Auto,
            Algorithm::Direct,
            Algorithm::Tiled,
            Algorithm::Gemm,
            Algorithm::Gpu,
        ] {
            let label = format!("{} {a:?}", case.name);
            ctx.keep_recorded_plans(true);
            ctx.conv2d_with(&x, &w, b.as_ref(), &case.opts, a).unwrap();
            let recorded = ctx.recorded_plans();
            let shown = ctx.plan(Op::Forward, &g, case.bias, a).unwrap();
            assert_eq!(
                recorded.len(),
                1,
                "{label}: {} forward plans recorded",
                recorded.len()
            );
            assert_eq!(
                recorded[0].to_string(),
                shown.to_string(),
                "{label} forward"
            );
            ctx.keep_recorded_plans(true);
            ctx.conv2d_backward_with(&x, &w, &gy, &case.opts, Wanted::ALL, a)
                .unwrap();
            let recorded: Vec<String> = ctx.recorded_plans().iter().map(Plan::to_string).collect();
            assert_eq!(
                recorded.len(),
                3,
                "{label}: backward recorded {recorded:#?}"
            );
            for op in [Op::WeightGrad, Op::InputGrad, Op::BiasGrad] {
                let shown = ctx.plan(op, &g, false, a).unwrap().to_string();
                assert!(
                    recorded.contains(&shown),
                    "{label} {}: shown\n{shown}\nrecorded {recorded:#?}",
                    op.name()
                );
            }
        }
    }
    ctx.keep_recorded_plans(false);
}

/// A weight that is not finite is the planner's input too: the input gradient's recorded plan
/// says so and takes the direct kernel; the weight gradient, which never multiplies a weight,
/// keeps its own.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn non_finite_weights_are_a_planner_input() {
    let _log = PLAN_LOG.lock().unwrap_or_else(|e| e.into_inner());
    let ctx = ctx();
    let opts = Conv2dOptions::new().padding(1);
    let x = Tensor::new(vec![1, 8, 9, 9], Rng::new(5).vec(8 * 81)).unwrap();
    let mut wd = Rng::new(6).vec(8 * 8 * 9);
    wd[3] = f32::INFINITY;
    let w = Tensor::new(vec![8, 8, 3, 3], wd).unwrap();
    let gy = Tensor::new(vec![1, 8, 9, 9], Rng::new(7).vec(8 * 81)).unwrap();
    ctx.keep_recorded_plans(true);
    ctx.conv2d_backward_with(&x, &w, &gy, &opts, Wanted::ALL, Algorithm::Gemm)
        .unwrap();
    let recorded = ctx.recorded_plans();
    ctx.keep_recorded_plans(false);
    let input = recorded
        .iter()
        .find(|p| p.kernels().contains(&"conv2d_input_grad"))
        .unwrap_or_else(|| panic!("no direct input gradient among {recorded:#?}"));
    assert!(
        input
            .reasons()
            .iter()
            .any(|r| r.starts_with("non-finite weights")),
        "{input}"
    );
    let g = opts.resolve([1, 8, 9, 9], [8, 8, 3, 3]).unwrap();
    let weight = ctx
        .plan(Op::WeightGrad, &g, false, Algorithm::Gemm)
        .unwrap();
    assert!(
        recorded.iter().any(|p| p.to_string() == weight.to_string()),
        "the weight gradient's plan is its own: {weight}"
    );
}

/// The structural targets of the GPU family on the bench shapes, from the warp model of each
/// plan's passes on the reference GPU (132 SMs): every GEMM-core pass reads at least 4 FMAs'
/// worth per workgroup-memory word, stores with at most 2-way bank conflicts and wastes at most
/// 10 % of its FMAs; every op of 0.4 GFLOP or more gives its main pass at least 2.5 workgroups
/// per SM. The ops that do not yet meet the waste target are listed, with their figures, so
/// that a change to them shows here.
#[test]
fn the_gpu_family_meets_the_structural_targets() {
    let profile = DeviceProfile::webgpu_defaults()
        .with_device_type(wgpu::DeviceType::DiscreteGpu)
        .with_family(Family::Gpu);
    let profile = DeviceProfile {
        max_binding_bytes: 1 << 31,
        ..profile
    };
    // (shape, op, main kernel, its wasted FMA fraction): not yet within 10 %
    // (none now: the stem's weight gradient, 147 taps in tiles of 64, wasted 0.234 until the
    // last tile ran its live half only)
    let not_yet: &[(&str, &str, &str, Option<f64>)] = &[];
    let mut seen = Vec::new();
    for s in wgpu_conv::bench_shapes() {
        let g = s.options.resolve(s.input, s.weight).unwrap();
        for (op, plan) in [
            (
                "forward",
                plan_forward(&g, false, &profile, Algorithm::Auto).unwrap(),
            ),
            (
                "weight_grad",
                plan_weight_grad(&g, &profile, Algorithm::Auto).unwrap(),
            ),
            (
                "input_grad",
                plan_input_grad(&g, &profile, Algorithm::Auto).unwrap(),
            ),
        ] {
            let main = plan.main_kernel().unwrap();
            let pass = plan.passes().iter().find(|p| p.kernel() == main).unwrap();
            let m = pass.model();
            let at = format!("{} {op}: {plan}", s.name);
            if g.flops() >= 0.4e9 {
                assert!(m.workgroups_per_sm >= 2.5, "{at}");
            }
            if main.ends_with("_core") || main == "conv2d_core" {
                assert!(m.fma_per_wgmem_word.unwrap() >= 4.0, "{at}");
                assert!(m.wgmem_store_conflict.unwrap() <= 2, "{at}");
                assert!(m.fma_per_barrier.unwrap() >= 1024.0, "{at}");
            }
            let listed = not_yet.iter().find(|n| n.0 == s.name && n.1 == op);
            match listed {
                Some(&(_, _, kernel, waste)) => {
                    assert_eq!(main, kernel, "{at}");
                    match (waste, m.wasted_fma_fraction) {
                        (Some(w), Some(got)) => assert!((got - w).abs() < 5e-3, "{got}: {at}"),
                        (None, None) => {}
                        other => panic!("{other:?}: {at}"),
                    }
                    seen.push((s.name, op));
                }
                None => {
                    if let Some(w) = m.wasted_fma_fraction {
                        assert!(w <= 0.10, "{w}: {at}");
                    }
                }
            }
        }
    }
    assert_eq!(seen.len(), not_yet.len());
}

/// The CPU family (a software adapter) runs a stride-2x2 layer's input gradient through the
/// core per phase too, without a split K (no partials to sum: a few CPU cores are filled by
/// the phases' tiles), where gemm over the zero-inserted gy would spend 3/4 of its FMAs on
/// zeros; at stride 2x1 (half of them) it keeps gemm. Layers of few channels per group take
/// the phase kernel at stride 2x2.
#[test]
fn the_cpu_family_runs_stride_2x2_input_gradients_per_phase() {
    let profile = DeviceProfile::webgpu_defaults()
        .with_device_type(wgpu::DeviceType::Cpu)
        .with_family(Family::Auto);
    let profile = DeviceProfile {
        max_binding_bytes: 1 << 31,
        ..profile
    };
    let g = Conv2dOptions::new()
        .stride(2)
        .padding(1)
        .resolve([8, 128, 28, 28], [256, 128, 3, 3])
        .unwrap();
    let plan = plan_input_grad(&g, &profile, Algorithm::Auto).unwrap();
    assert_eq!(
        plan.kernels(),
        ["conv2d_pack_core", "conv2d_core"].repeat(4),
        "{plan}"
    );
    // the phases' packed weights only (about the weight's 1.2 MB; 8 slices of gx would be
    // 25.7 MB more)
    let weight_bytes = (256 * 128 * 9 * 4) as u64;
    assert!(plan.scratch_bytes() < 2 * weight_bytes, "{plan}");
    let g = Conv2dOptions::new()
        .stride((2, 1))
        .padding(1)
        .resolve([8, 128, 28, 28], [256, 128, 3, 3])
        .unwrap();
    let plan = plan_input_grad(&g, &profile, Algorithm::Auto).unwrap();
    assert_eq!(plan.main_kernel(), Some("conv2d_forward_gemm"), "{plan}");
    // few channels (the stem, a depthwise layer) at stride 2: the phase kernel, not tiled's
    // idle stride-parity lanes; at 2x1 the depthwise layer keeps tiled
    for (x, w, groups, stride, kernel) in [
        (
            [8, 3, 224, 224],
            [64, 3, 7, 7],
            1,
            (2, 2),
            "conv2d_input_grad_phase",
        ),
        (
            [8, 128, 56, 56],
            [128, 1, 3, 3],
            128,
            (2, 2),
            "conv2d_input_grad_phase",
        ),
        (
            [8, 128, 56, 56],
            [128, 1, 3, 3],
            128,
            (2, 1),
            "conv2d_input_grad_tiled",
        ),
    ] {
        let g = Conv2dOptions::new()
            .stride(stride)
            .padding(w[2] / 2)
            .groups(groups)
            .resolve(x, w)
            .unwrap();
        let plan = plan_input_grad(&g, &profile, Algorithm::Auto).unwrap();
        assert_eq!(plan.main_kernel(), Some(kernel), "{plan}");
    }
    assert!(
        plan.reasons()
            .iter()
            .any(|r| r.starts_with("core phases: not used: CPU family, stride 2x1")),
        "{plan}"
    );
}

/// A ResNet downsampling layer's input gradient (3x3 and 1x1 at stride 2, 128 and 256 input
/// channels): the GPU family runs the GEMM core per phase of gx (zeros for the phases a 1x1
/// kernel never reaches), not `mm` over gy with inserted zeros, and each core pass meets the
/// structural targets: at most 10 % of its FMAs wasted, 2.5 workgroups per SM or more (a K
/// split shared by the phases), 4 FMAs per workgroup-memory word, at most 2-way conflicts.
#[test]
fn downsampling_input_gradients_run_the_core_per_phase() {
    let profile = DeviceProfile::webgpu_defaults()
        .with_device_type(wgpu::DeviceType::DiscreteGpu)
        .with_family(Family::Gpu);
    let profile = DeviceProfile {
        max_binding_bytes: 1 << 31,
        ..profile
    };
    for (x, w, phases_with_taps) in [
        ([32, 128, 28, 28], [256, 128, 3, 3], 4),
        ([32, 256, 56, 56], [512, 256, 1, 1], 1),
    ] {
        let opts = Conv2dOptions::new()
            .stride(2)
            .padding(usize::from(w[2] == 3));
        let g = opts.resolve(x, w).unwrap();
        let plan = plan_input_grad(&g, &profile, Algorithm::Auto).unwrap();
        let kernels = plan.kernels();
        assert!(!kernels.contains(&"conv2d_forward_mm"), "{plan}");
        let cores: Vec<_> = plan
            .passes()
            .iter()
            .filter(|p| p.kernel() == "conv2d_core")
            .collect();
        assert_eq!(cores.len(), phases_with_taps, "{plan}");
        let zeros = kernels
            .iter()
            .filter(|k| **k == "conv2d_zero_phase")
            .count();
        assert_eq!(zeros, 4 - phases_with_taps, "{plan}");
        for p in cores {
            let m = p.model();
            assert!(m.wasted_fma_fraction.unwrap() <= 0.10, "{plan}");
            assert!(m.workgroups_per_sm >= 2.5, "{plan}");
            assert!(m.fma_per_wgmem_word.unwrap() >= 4.0, "{plan}");
            assert!(m.wgmem_store_conflict.unwrap() <= 2, "{plan}");
        }
    }
}
