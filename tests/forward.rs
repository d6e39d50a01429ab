//! The forward pass on the GPU against the CPU reference, within the f32 bound
//! `(L+1) * 2^-24 * sum|x*w|` (STYLE habit 11).

mod common;

use common::{assert_within, case_data, cases, ctx, Rng};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use wgpu_conv::{
    cpu, geometry, Algorithm, Conv2d, Conv2dOptions, ConvMode, Error, GpuTensor, Padding,
    PaddingMode, Tensor,
};

const ALGORITHMS: [Algorithm; 4] = Algorithm::ALL;

#[allow(clippy::too_many_arguments)]
fn check_forward(
    x_shape: [usize; 4],
    w_shape: [usize; 4],
    opts: &Conv2dOptions,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    algorithm: Algorithm,
    what: &str,
) {
    let g = opts.resolve(x_shape, w_shape).unwrap();
    let xt = Tensor::new(x_shape.to_vec(), x.to_vec()).unwrap();
    let wt = Tensor::new(w_shape.to_vec(), w.to_vec()).unwrap();
    let bt = b.map(|b| Tensor::new(vec![b.len()], b.to_vec()).unwrap());
    let y = ctx()
        .conv2d_with(&xt, &wt, bt.as_ref(), opts, algorithm)
        .unwrap();
    assert_eq!(y.shape(), g.output_shape(), "{what}: shape");
    let reference = cpu::conv2d_forward(&g, x, w, b);
    assert_within(y.data(), &reference, &format!("{what} ({algorithm:?})"));
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn forward_matches_cpu_reference_on_every_case() {
    for (i, case) in cases().iter().enumerate() {
        let (x, w, b) = case_data(case, i as u64);
        for a in ALGORITHMS {
            check_forward(
                case.x,
                case.w,
                &case.opts,
                &x,
                &w,
                b.as_deref(),
                a,
                case.name,
            );
        }
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn exact_integer_cases_are_exact() {
    // Small integers: every product and partial sum is exact in f32, so the GPU must agree exactly.
    for case in cases() {
        let mut rng = Rng::new(7);
        let x: Vec<f32> = (0..case.x.iter().product())
            .map(|_| (rng.next_u64() % 7) as f32 - 3.0)
            .collect();
        let w: Vec<f32> = (0..case.w.iter().product())
            .map(|_| (rng.next_u64() % 5) as f32 - 2.0)
            .collect();
        let g = case.opts.resolve(case.x, case.w).unwrap();
        let y = ctx()
            .conv2d(
                &Tensor::new(case.x.to_vec(), x.clone()).unwrap(),
                &Tensor::new(case.w.to_vec(), w.clone()).unwrap(),
                None,
                &case.opts,
            )
            .unwrap();
        assert_eq!(
            y.data(),
            cpu::conv2d_forward(&g, &x, &w, None).to_f32(),
            "{}",
            case.name
        );
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn chapter_values() {
    let ctx = ctx();
    let x = Tensor::from_fn([3, 3], |i| (i[0] * 3 + i[1]) as f32).unwrap();
    let k = Tensor::from_fn([2, 2], |i| (i[0] * 2 + i[1]) as f32).unwrap();
    let y = ctx.corr2d(&x, &k).unwrap();
    assert_eq!(y.shape(), [2, 2]);
    assert_eq!(y.data(), [19.0, 25.0, 37.0, 43.0]);

    let img = Tensor::from_fn([6, 8], |i| if (2..6).contains(&i[1]) { 0.0 } else { 1.0 }).unwrap();
    let edge = Tensor::from_rows(&[[1.0, -1.0]]);
    let y = ctx.corr2d(&img, &edge).unwrap();
    assert_eq!(y.shape(), [6, 7]);
    for row in y.rows() {
        assert_eq!(row, [0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0]);
    }
    let yt = ctx.corr2d(&img.transpose2().unwrap(), &edge).unwrap();
    assert_eq!(yt.shape(), [8, 5]);
    assert!(yt.data().iter().all(|&v| v == 0.0));

    // strict convolution = cross-correlation with the flipped kernel
    let conv = ctx
        .conv2d(
            &x,
            &k,
            None,
            &Conv2dOptions::new().mode(ConvMode::Convolution),
        )
        .unwrap();
    let flipped = Tensor::from_fn([2, 2], |i| k.at(&[1 - i[0], 1 - i[1]])).unwrap();
    assert_eq!(conv.data(), ctx.corr2d(&x, &flipped).unwrap().data());
    assert_eq!(conv.data(), [5.0, 11.0, 23.0, 29.0]);

    // the layer: random weight, zero scalar bias, output = corr2d(X, weight)
    let layer = Conv2d::new(1, 1, (2, 2), true, Conv2dOptions::new(), 3).unwrap();
    assert_eq!(layer.bias().unwrap().data(), [0.0]);
    let bound = 1.0 / 2.0;
    assert!(layer.weight().data().iter().all(|v| v.abs() <= bound));
    let y = layer.forward(ctx, &x).unwrap();
    let g = geometry(x.shape(), layer.weight().shape(), Some(1), layer.options()).unwrap();
    assert_within(
        y.data(),
        &cpu::conv2d_forward(&g, x.data(), layer.weight().data(), Some(&[0.0])),
        "layer",
    );
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn nan_and_infinity_propagate() {
    let mut x = vec![1.0f32; 5 * 5];
    x[6] = f32::NAN; // row 1, col 1
    x[18] = f32::INFINITY; // row 3, col 3
    let w = vec![1.0f32; 4];
    let g = Conv2dOptions::new()
        .resolve([1, 1, 5, 5], [1, 1, 2, 2])
        .unwrap();
    let y = ctx()
        .conv2d(
            &Tensor::new(vec![5, 5], x.clone()).unwrap(),
            &Tensor::new(vec![2, 2], w.clone()).unwrap(),
            None,
            &Conv2dOptions::new(),
        )
        .unwrap();
    assert_within(y.data(), &cpu::conv2d_forward(&g, &x, &w, None), "nan/inf");
    assert!(y.data()[0].is_nan() && y.data()[15].is_infinite() && y.data()[3] == 4.0);
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn nan_and_infinity_propagate_through_every_kernel() {
    // Several output channels and 27 taps (not a whole GEMM chunk, whose padding taps must
    // not turn 0 * inf into NaN), odd widths, padding.
    let xs = [2usize, 3, 9, 11];
    let ws = [5usize, 3, 3, 3];
    let mut x = vec![0.5f32; xs.iter().product()];
    x[3 * 99 + 4 * 11 + 4] = f32::INFINITY; // n 1, c 0, row 4, col 4
    x[2 * 99 + 2 * 11 + 7] = f32::NAN; // n 0, c 2, row 2, col 7
    let w: Vec<f32> = (0..ws.iter().product())
        .map(|i| 0.25 + (i % 3) as f32)
        .collect();
    let opts = Conv2dOptions::new().padding(1);
    let g = opts.resolve(xs, ws).unwrap();
    let reference = cpu::conv2d_forward(&g, &x, &w, None);
    let (xt, wt) = (
        Tensor::new(xs.to_vec(), x.clone()).unwrap(),
        Tensor::new(ws.to_vec(), w.clone()).unwrap(),
    );
    for a in ALGORITHMS {
        let y = ctx().conv2d_with(&xt, &wt, None, &opts, a).unwrap();
        assert_within(y.data(), &reference, &format!("nan/inf ({a:?})"));
        let infinite = y.data().iter().filter(|v| v.is_infinite()).count();
        let nan = y.data().iter().filter(|v| v.is_nan()).count();
        assert_eq!((infinite, nan), (5 * 9, 5 * 9), "{a:?}");
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn every_plane_kernel_size_matches_the_reference() {
    // conv2d_forward_planes is specialised per kernel size and weight source: 14 sizes (each
    // pipeline costs a compile) that reach every height and width it takes, each with 2
    // channels (weights in uniform blocks) and with PLANES_PER_LANE_FROM channels (weights per
    // lane), on a depthwise layer with odd sizes, bias, and a padding mode per size
    let (max_kh, max_kw) = common::PLANES_MAX_KERNEL;
    let many = common::PLANES_PER_LANE_FROM;
    let modes = [
        PaddingMode::Zeros,
        PaddingMode::Reflect,
        PaddingMode::Replicate,
        PaddingMode::Circular,
    ];
    let mut rng = Rng::new(21);
    let sizes: Vec<(usize, usize)> = (1..=max_kh)
        .flat_map(|kh| [(kh, kh), (kh, max_kw + 1 - kh)])
        .collect();
    let widths: std::collections::BTreeSet<usize> = sizes.iter().map(|s| s.1).collect();
    assert_eq!(widths.len(), max_kw, "every width is reached");
    for (kh, kw) in sizes {
        for c in [2, many] {
            let xs = [2usize, c, 9 + kh, 11 + kw];
            let ws = [c, 1, kh, kw];
            let opts = Conv2dOptions::new()
                .groups(c)
                .padding([kh / 2, kw / 2, (kh - 1) / 2, (kw - 1) / 2])
                .padding_mode(modes[(kh + kw) % 4]);
            let x = rng.vec(xs.iter().product());
            let w = rng.vec(ws.iter().product());
            let b = rng.vec(c);
            let what = format!("{kh}x{kw}, {c} channels");
            check_forward(xs, ws, &opts, &x, &w, Some(&b), Algorithm::Gemm, &what);
        }
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn planes_reading_the_input_itself_match_the_reference() {
    // With zero padding, rows of whole vec4s, pad_left <= 4 and KW <= 5 + pad_left, the planes
    // kernel reads the input without a padded copy and masks what falls outside it: each
    // (KH, KW, top, left, bottom, right) here takes that path, with both weight sources.
    let many = common::PLANES_PER_LANE_FROM;
    let mut rng = Rng::new(33);
    for (kh, kw, pad) in [
        (3, 3, [1, 1, 1, 1]),
        (5, 5, [2, 2, 2, 2]),
        (1, 2, [0, 0, 0, 0]),
        (3, 5, [0, 0, 2, 4]),
        (7, 8, [3, 3, 3, 4]),
        (2, 6, [1, 1, 0, 0]),
        (4, 5, [3, 4, 0, 1]),
    ] {
        for (c, w) in [(2, 12), (many, 16)] {
            let xs = [2usize, c, 7 + kh, w];
            let ws = [c, 1, kh, kw];
            let opts = Conv2dOptions::new().groups(c).padding(pad);
            let x = rng.vec(xs.iter().product());
            let wt = rng.vec(ws.iter().product());
            let b = rng.vec(c);
            let what = format!("{kh}x{kw} padding {pad:?}, {c} channels");
            check_forward(xs, ws, &opts, &x, &wt, Some(&b), Algorithm::Gemm, &what);
        }
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn bad_operands_are_errors_not_panics() {
    let ctx = ctx();
    let x = Tensor::zeros([1, 3, 5, 5]).unwrap();
    let w = Tensor::zeros([2, 2, 3, 3]).unwrap();
    assert!(matches!(
        ctx.conv2d(&x, &w, None, &Conv2dOptions::new()),
        Err(Error::InvalidShape(_))
    ));
    let w = Tensor::zeros([2, 3, 3, 3]).unwrap();
    assert!(matches!(
        ctx.conv2d(
            &x,
            &w,
            Some(&Tensor::zeros([3]).unwrap()),
            &Conv2dOptions::new()
        ),
        Err(Error::InvalidShape(_))
    ));
    assert!(matches!(
        ctx.conv2d(&x, &w, None, &Conv2dOptions::new().stride(0)),
        Err(Error::InvalidOption(_))
    ));
    assert!(matches!(ctx.corr2d(&x, &w), Err(Error::InvalidShape(_))));
    assert!(matches!(
        ctx.conv2d(
            &x,
            &w,
            None,
            &Conv2dOptions::new()
                .padding(5)
                .padding_mode(PaddingMode::Reflect)
        ),
        Err(Error::InvalidOption(_))
    ));
    assert!(matches!(
        ctx.conv2d(
            &x,
            &w,
            None,
            &Conv2dOptions::new().padding(Padding::Same).stride(2)
        ),
        Err(Error::InvalidOption(_))
    ));
    // the context still works afterwards
    assert!(ctx.conv2d(&x, &w, None, &Conv2dOptions::new()).is_ok());
}

/// The GEMM kernels read stride phases of the input from padded copies: copy (r, t) holds
/// columns `(j + t) * s + r`, and `conv2d_pad_copies` stores, for each phase r, the copies t
/// some tap reads (a 4-bit pattern). Every one of the 15 patterns is reached here, forward and
/// weight gradient against the reference.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn every_stride_phase_pattern_matches_the_reference() {
    // the pattern of phase r for stride s, kernel width kw, dilation d (as the planner makes it)
    let pattern = |s: usize, kw: usize, d: usize, r: usize| {
        (0..kw)
            .map(|b| b * d)
            .filter(|shift| shift % s == r)
            .fold(0u32, |m, shift| m | 1 << ((shift / s) % 4))
    };
    let mut found: std::collections::BTreeMap<u32, (usize, usize, usize)> = Default::default();
    for s in 1..=4 {
        for d in 1..=5 {
            for kw in 1..=8 {
                for r in 0..s {
                    found.entry(pattern(s, kw, d, r)).or_insert((s, kw, d));
                }
            }
        }
    }
    found.remove(&0);
    assert_eq!(found.len(), 15, "patterns reached: {:?}", found.keys());
    let mut rng = Rng::new(15);
    let combos: std::collections::BTreeSet<(usize, usize, usize)> =
        found.values().copied().collect();
    for (s, kw, d) in combos {
        let xs = [1usize, 2, 5, (kw - 1) * d + 1 + 3 * s + 2];
        let ws = [3usize, 2, 2, kw];
        let opts = Conv2dOptions::new()
            .stride((1, s))
            .dilation((1, d))
            .padding([0, 1, 1, 2]);
        let x = rng.vec(xs.iter().product());
        let w = rng.vec(ws.iter().product());
        let what = format!("stride {s}, kernel width {kw}, dilation {d}");
        check_forward(xs, ws, &opts, &x, &w, None, Algorithm::Gemm, &what);
        let g = opts.resolve(xs, ws).unwrap();
        let gy = rng.vec(g.output_shape().iter().product());
        let grads = ctx()
            .conv2d_backward_with(
                &Tensor::new(xs.to_vec(), x.clone()).unwrap(),
                &Tensor::new(ws.to_vec(), w.clone()).unwrap(),
                &Tensor::new(g.output_shape().to_vec(), gy.clone()).unwrap(),
                &opts,
                wgpu_conv::Wanted::ALL,
                Algorithm::Gemm,
            )
            .unwrap();
        let reference = cpu::conv2d_weight_grad(&g, &x, &gy);
        assert_within(
            grads.weight.unwrap().data(),
            &reference,
            &format!("weight grad, {what}"),
        );
        let reference = cpu::conv2d_input_grad(&g, &w, &gy);
        assert_within(
            grads.input.unwrap().data(),
            &reference,
            &format!("input grad, {what}"),
        );
    }
}

/// Shapes that reach every kernel path: kernels up to 7x8 (the planes kernels' largest, and
/// one past it), dilation up to 5, stride up to 4, every padding mode; the input is at least
/// the dilated kernel's extent, plus 0..6 (padding may add more).
fn arb_case() -> impl Strategy<Value = ([usize; 4], [usize; 4], Conv2dOptions, bool, u64)> {
    (
        (1usize..3, 1usize..4, 1usize..4, 1usize..3),
        (0usize..6, 0usize..6, 1usize..9, 1usize..10),
        (1usize..5, 1usize..5, 1usize..6, 1usize..6),
        (0usize..3, 0usize..3, 0usize..3, 0usize..3),
        (0u8..4, any::<bool>(), any::<bool>(), any::<u64>()),
    )
        .prop_filter_map(
            "valid geometry",
            |(
                (n, cpg, ocpg, groups),
                (eh, ew, kh, kw),
                (sh, sw, dh, dw),
                (pt, pl, pb, pr),
                (mode, conv, bias, seed),
            )| {
                let padding_mode = [
                    PaddingMode::Zeros,
                    PaddingMode::Reflect,
                    PaddingMode::Replicate,
                    PaddingMode::Circular,
                ][mode as usize];
                let opts = Conv2dOptions::new()
                    .stride((sh, sw))
                    .dilation((dh, dw))
                    .padding([pt, pl, pb, pr])
                    .groups(groups)
                    .padding_mode(padding_mode)
                    .mode(if conv {
                        ConvMode::Convolution
                    } else {
                        ConvMode::CrossCorrelation
                    });
                let (h, w) = ((kh - 1) * dh + 1 + eh, (kw - 1) * dw + 1 + ew);
                let x = [n, cpg * groups, h, w];
                let wt = [ocpg * groups, cpg, kh, kw];
                opts.resolve(x, wt).ok().map(|_| (x, wt, opts, bias, seed))
            },
        )
}

proptest! {
    // failures are saved beside this file (tests/forward.proptest-regressions) and replayed first
    #![proptest_config(ProptestConfig {
        cases: 40,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]
    #[test]
    #[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
    fn forward_matches_cpu_reference_on_random_shapes((x_shape, w_shape, opts, bias, seed) in arb_case()) {
        let mut rng = Rng::new(seed);
        let x = rng.vec(x_shape.iter().product());
        let w = rng.vec(w_shape.iter().product());
        let b = bias.then(|| rng.vec(w_shape[0]));
        for a in ALGORITHMS {
            check_forward(x_shape, w_shape, &opts, &x, &w, b.as_deref(), a, &format!("{x_shape:?} {w_shape:?} {opts:?}"));
        }
    }
}

/// `time_on_gpu` records through the closure, runs it, and reports a positive GPU time where the
/// device has timestamp queries (every driver CI runs has them; `None` is checked elsewhere).
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn time_on_gpu_times_the_recorded_work_and_leaves_results_intact() {
    let c = ctx();
    let opts = Conv2dOptions::default();
    let g = opts.resolve([2, 3, 17, 19], [5, 3, 3, 3]).unwrap();
    let mut rng = Rng::new(41);
    let x = rng.vec(2 * 3 * 17 * 19);
    let w = rng.vec(5 * 3 * 3 * 3);
    let xg = c
        .upload(&Tensor::new(vec![2, 3, 17, 19], x.clone()).unwrap())
        .unwrap();
    let wg = c
        .upload(&Tensor::new(vec![5, 3, 3, 3], w.clone()).unwrap())
        .unwrap();
    let y = c.empty(&g.output_shape(), "y").unwrap();
    let timed = c
        .time_on_gpu(|enc| c.record_forward(enc, &g, &xg, &wg, None, &y))
        .unwrap();
    match timed {
        Some(t) => assert!(t.as_nanos() > 0, "a zero GPU time"),
        None => assert!(!c.has_timestamps(), "timestamps but no time"),
    }
    let got = c.download(&[&y]).unwrap().remove(0);
    let reference = cpu::conv2d_forward(&g, &x, &w, None);
    assert_within(got.data(), &reference, "forward recorded under time_on_gpu");
    // an error inside the closure comes back, and the next measurement starts afresh
    let bad = c.time_on_gpu(|enc| c.record_forward(enc, &g, &wg, &xg, None, &y));
    assert!(bad.is_err(), "mismatched operands were accepted");
    let again = c
        .time_on_gpu(|enc| c.record_forward(enc, &g, &xg, &wg, None, &y))
        .unwrap();
    assert_eq!(again.is_some(), c.has_timestamps());
}

/// `time_passes_on_gpu` times each pass of the plans recorded, where the device times inside
/// compute passes (lavapipe does): one figure per pass of the plan, each positive, summed over
/// the operations recorded (two here), together within the total; elsewhere none.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn time_passes_on_gpu_times_each_pass_of_the_plan() {
    let c = ctx();
    let g = Conv2dOptions::default()
        .resolve([2, 8, 17, 19], [16, 8, 3, 3])
        .unwrap();
    let plan = c
        .plan(wgpu_conv::Op::Forward, &g, false, Algorithm::Gpu)
        .unwrap();
    assert!(plan.passes().len() >= 2, "{plan}");
    let mut rng = Rng::new(43);
    let x = rng.vec(2 * 8 * 17 * 19);
    let w = rng.vec(16 * 8 * 3 * 3);
    let xg = c
        .upload(&Tensor::new(vec![2, 8, 17, 19], x.clone()).unwrap())
        .unwrap();
    let wg = c
        .upload(&Tensor::new(vec![16, 8, 3, 3], w.clone()).unwrap())
        .unwrap();
    let y = c.empty(&g.output_shape(), "y").unwrap();
    let record = |enc: &mut wgpu::CommandEncoder| {
        c.record_forward_with(enc, &g, &xg, &wg, None, &y, Algorithm::Gpu)
    };
    let timed = c
        .time_passes_on_gpu(|enc| {
            record(enc)?;
            record(enc)
        })
        .unwrap();
    match timed {
        Some(t) if c.has_pass_timestamps() => {
            assert_eq!(t.passes.len(), plan.passes().len(), "{t:?}\n{plan}");
            assert!(t.passes.iter().all(|p| p.as_nanos() > 0), "{t:?}");
            let sum: std::time::Duration = t.passes.iter().sum();
            assert!(
                sum <= t.total,
                "passes {sum:?} past the total {:?}",
                t.total
            );
        }
        Some(t) => assert!(t.passes.is_empty(), "{t:?}"),
        None => assert!(!c.has_timestamps(), "timestamps but no time"),
    }
    let got = c.download(&[&y]).unwrap().remove(0);
    let reference = cpu::conv2d_forward(&g, &x, &w, None);
    assert_within(
        got.data(),
        &reference,
        "forward recorded under time_passes_on_gpu",
    );
}

/// A wgpu program's own buffers: `GpuTensor::from_buffer` wraps them, and this crate's forward
/// pass records into the caller's encoder after the caller's own compute pass (which doubles
/// the input in place), in one submission; unusable buffers are typed errors.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn the_callers_buffers_and_encoder_carry_this_crates_pass() {
    use wgpu::BufferUsages as U;
    let c = ctx();
    let device = c.device();
    let (xs, ws) = ([1usize, 2, 7, 9], [3usize, 2, 3, 3]);
    let opts = Conv2dOptions::new().padding(1);
    let g = opts.resolve(xs, ws).unwrap();
    let mut rng = Rng::new(77);
    let x = rng.vec(xs.iter().product());
    let w = rng.vec(ws.iter().product());
    let buffer = |bytes: usize, usage| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("the caller's"),
            size: bytes as u64,
            usage,
            mapped_at_creation: false,
        })
    };
    let xb = buffer(x.len() * 4, U::STORAGE | U::COPY_DST);
    c.queue().write_buffer(&xb, 0, bytemuck::cast_slice(&x));
    let yb = buffer(
        g.output_shape().iter().product::<usize>() * 4,
        U::STORAGE | U::COPY_SRC,
    );
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("the caller's kernel"),
        source: wgpu::ShaderSource::Wgsl(
            "@group(0) @binding(0) var<storage, read_write> v: array<f32>;
             @compute @workgroup_size(64)
             fn main(@builtin(global_invocation_id) id: vec3<u32>) {
                 if id.x < arrayLength(&v) { v[id.x] = 2.0 * v[id.x]; }
             }"
            .into(),
        ),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: None,
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: xb.as_entire_binding(),
        }],
    });
    let xt = GpuTensor::from_buffer(xb.clone(), &xs).unwrap();
    let yt = GpuTensor::from_buffer(yb.clone(), &g.output_shape()).unwrap();
    let wt = c
        .upload(&Tensor::new(ws.to_vec(), w.clone()).unwrap())
        .unwrap();
    let mut enc = c.encoder("the caller's encoder");
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups((x.len() as u32).div_ceil(64), 1, 1);
    }
    c.record_forward(&mut enc, &g, &xt, &wt, None, &yt).unwrap();
    c.submit_and_wait(enc).unwrap();
    let got = c.download(&[&yt]).unwrap().remove(0);
    let doubled: Vec<f32> = x.iter().map(|v| 2.0 * v).collect();
    let reference = cpu::conv2d_forward(&g, &doubled, &w, None);
    assert_within(got.data(), &reference, "forward on the caller's buffers");

    // unusable buffers
    let no_storage = buffer(64, U::COPY_DST);
    let e = GpuTensor::from_buffer(no_storage, &[4]).unwrap_err();
    assert!(matches!(e, Error::UnusableBuffer(_)), "{e}");
    let e = GpuTensor::from_buffer(yb.clone(), &[1000]).unwrap_err();
    assert!(matches!(e, Error::UnusableBuffer(_)), "{e}");
    let e = c.download(&[&xt]).unwrap_err();
    assert!(matches!(e, Error::UnusableBuffer(_)), "{e}");
}
