//! Weight, input and bias gradients on the GPU against the CPU reference (within the f32
//! bound), the adjoint identity, finite differences, bitwise determinism of the reductions,
//! and backpropagation through a stack of layers.

mod common;

use common::{assert_exact, assert_within, case_data, cases, ctx, Rng};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// Terms per slice of the direct reductions (the library's fixed slice length).
const DIRECT_SLICE: usize = 1024;
use wgpu_conv::{
    cpu, Algorithm, Conv2d, Conv2dGrads, Conv2dOptions, ConvMode, PaddingMode, Sequential, Tensor,
    Wanted,
};

fn backward(
    x_shape: [usize; 4],
    w_shape: [usize; 4],
    opts: &Conv2dOptions,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
) -> Conv2dGrads {
    backward_with(x_shape, w_shape, opts, x, w, gy, Algorithm::Auto)
}

fn backward_with(
    x_shape: [usize; 4],
    w_shape: [usize; 4],
    opts: &Conv2dOptions,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    algorithm: Algorithm,
) -> Conv2dGrads {
    ctx()
        .conv2d_backward_with(
            &Tensor::new(x_shape.to_vec(), x.to_vec()).unwrap(),
            &Tensor::new(w_shape.to_vec(), w.to_vec()).unwrap(),
            &Tensor::new(
                opts.resolve(x_shape, w_shape)
                    .unwrap()
                    .output_shape()
                    .to_vec(),
                gy.to_vec(),
            )
            .unwrap(),
            opts,
            Wanted::ALL,
            algorithm,
        )
        .unwrap()
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn infinity_reaches_only_the_taps_that_read_it() {
    // Output rows of 5 (not whole vec4s): the padded pixels 5..7 of the GEMM and planes weight
    // gradients must not multiply the input at columns 5 and 6 into tap 0 (0 * inf would be
    // NaN). Two output channels of two input channels (GEMM), and one of one (planes).
    // Output rows of 5, 6 and 7 (every short last vec4: ow = 1, 2, 3 mod 4).
    for (xs, ws, infinite_taps) in [
        ([1usize, 2, 3, 7], [4usize, 2, 1, 3], 4),
        ([1, 1, 3, 7], [1, 1, 1, 3], 1),
        ([1, 2, 3, 8], [4, 2, 1, 3], 4),
        ([1, 1, 3, 8], [1, 1, 1, 3], 1),
        ([1, 2, 3, 9], [4, 2, 1, 3], 4),
        ([1, 1, 3, 9], [1, 1, 1, 3], 1),
    ] {
        let mut x = vec![0.5f32; xs.iter().product()];
        // c 0, row 0, last column: read by tap 2 of the last output column only
        x[xs[3] - 1] = f32::INFINITY;
        let w = vec![1.0f32; ws.iter().product()];
        let opts = Conv2dOptions::new();
        let g = opts.resolve(xs, ws).unwrap();
        let gy = vec![1.0f32; g.output_shape().iter().product()];
        let reference = cpu::conv2d_weight_grad(&g, &x, &gy);
        for a in Algorithm::ALL {
            let grads = backward_with(xs, ws, &opts, &x, &w, &gy, a);
            let gw = grads.weight.unwrap();
            let what = format!("weight grad with inf ({a:?}, {xs:?})");
            assert_within(gw.data(), &reference, &what);
            let infinite = gw.data().iter().filter(|v| v.is_infinite()).count();
            assert_eq!(infinite, infinite_taps, "{what}: tap 2 of channel 0 only");
            assert!(gw.data().iter().all(|v| !v.is_nan()), "{what}");
        }
    }
}

fn check_gradients(
    x_shape: [usize; 4],
    w_shape: [usize; 4],
    opts: &Conv2dOptions,
    seed: u64,
    what: &str,
) {
    let g = opts.resolve(x_shape, w_shape).unwrap();
    let mut rng = Rng::new(seed);
    let x = rng.vec(x_shape.iter().product());
    let w = rng.vec(w_shape.iter().product());
    let gy = rng.vec(g.output_shape().iter().product());
    for algorithm in Algorithm::ALL {
        let grads = backward_with(x_shape, w_shape, opts, &x, &w, &gy, algorithm);
        check_grads(
            &g,
            x_shape,
            w_shape,
            &x,
            &w,
            &gy,
            grads,
            &format!("{what} ({algorithm:?})"),
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn check_grads(
    g: &wgpu_conv::Conv2dGeometry,
    x_shape: [usize; 4],
    w_shape: [usize; 4],
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    grads: Conv2dGrads,
    what: &str,
) {
    let (x, w, gy) = (x.to_vec(), w.to_vec(), gy.to_vec());
    let g = *g;
    let gw = grads.weight.unwrap();
    let gx = grads.input.unwrap();
    let gb = grads.bias.unwrap();
    assert_eq!(gw.shape(), w_shape);
    assert_eq!(gx.shape(), x_shape);
    assert_eq!(gb.shape(), [w_shape[0]]);
    assert_within(
        gw.data(),
        &cpu::conv2d_weight_grad(&g, &x, &gy),
        &format!("{what}: weight_grad"),
    );
    assert_within(
        gx.data(),
        &cpu::conv2d_input_grad(&g, &w, &gy),
        &format!("{what}: input_grad"),
    );
    assert_within(
        gb.data(),
        &cpu::conv2d_bias_grad(&g, &gy),
        &format!("{what}: bias_grad"),
    );
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn gradients_match_cpu_reference_on_every_case() {
    for (i, case) in cases().iter().enumerate() {
        check_gradients(case.x, case.w, &case.opts, 100 + i as u64, case.name);
    }
}

/// `<conv(x,w), g> = <x, input_grad(g,w)> = <w, weight_grad(x,g)>`, each side from the GPU,
/// agreeing within the accumulated f32 bound.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn adjoint_identity() {
    for (i, case) in cases().iter().enumerate() {
        let g = case.opts.resolve(case.x, case.w).unwrap();
        let (x, w, _) = case_data(case, 200 + i as u64);
        let gy = Rng::new(300 + i as u64).vec(g.output_shape().iter().product());
        let y = ctx()
            .conv2d(
                &Tensor::new(case.x.to_vec(), x.clone()).unwrap(),
                &Tensor::new(case.w.to_vec(), w.clone()).unwrap(),
                None,
                &case.opts,
            )
            .unwrap();
        let grads = backward(case.x, case.w, &case.opts, &x, &w, &gy);
        let dot = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(&p, &q)| p as f64 * q as f64)
                .sum::<f64>()
        };
        let lhs = dot(y.data(), &gy);
        let via_x = dot(&x, grads.input.unwrap().data());
        let via_w = dot(&w, grads.weight.unwrap().data());
        // All three are sums of the same products x*w*g. Each GPU element is a sum of at most L
        // terms (L: the longest reduction feeding any element), so each side is off by at most
        // about L * 2^-24 * sum|x*w*g| from the exact value; the host sums are in f64.
        let l = (g.taps() + g.n * g.oh * g.ow + g.oc) as f64;
        let triple: f64 = cpu::conv2d_forward(&g, &x, &w, None)
            .magnitude
            .iter()
            .zip(&gy)
            .map(|(m, q)| m * (*q as f64).abs())
            .sum();
        let bound = 2.0 * l * f64::from(f32::EPSILON) * triple;
        assert!(
            (lhs - via_x).abs() <= bound,
            "{}: <y,g>={lhs} <x,gx>={via_x} bound {bound}",
            case.name
        );
        assert!(
            (lhs - via_w).abs() <= bound,
            "{}: <y,g>={lhs} <w,gw>={via_w} bound {bound}",
            case.name
        );
    }
}

/// Central differences of `L = sum(conv(x, w) + b) * g)` through the GPU forward pass match
/// the GPU gradients. L is linear in each of x, w and b, so the difference quotient is exact up
/// to rounding.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn finite_differences() {
    let tiny = [
        ([1, 1, 3, 3], [1, 1, 2, 2], Conv2dOptions::new()),
        (
            [1, 2, 4, 3],
            [2, 1, 2, 2],
            Conv2dOptions::new()
                .groups(2)
                .padding(1)
                .padding_mode(PaddingMode::Reflect),
        ),
        (
            [1, 1, 4, 4],
            [1, 1, 3, 2],
            Conv2dOptions::new()
                .stride(2)
                .padding((1, 2))
                .padding_mode(PaddingMode::Circular)
                .mode(ConvMode::Convolution),
        ),
        (
            [2, 1, 3, 4],
            [1, 1, 2, 2],
            Conv2dOptions::new()
                .padding([2, 0, 0, 1])
                .padding_mode(PaddingMode::Replicate),
        ),
    ];
    for (k, (xs, ws, opts)) in tiny.into_iter().enumerate() {
        let g = opts.resolve(xs, ws).unwrap();
        let mut rng = Rng::new(400 + k as u64);
        let x = rng.vec(xs.iter().product());
        let w = rng.vec(ws.iter().product());
        let b = rng.vec(ws[0]);
        let gy = rng.vec(g.output_shape().iter().product());
        let loss = |x: &[f32], w: &[f32], b: &[f32]| -> f64 {
            let y = ctx()
                .conv2d(
                    &Tensor::new(xs.to_vec(), x.to_vec()).unwrap(),
                    &Tensor::new(ws.to_vec(), w.to_vec()).unwrap(),
                    Some(&Tensor::new(vec![b.len()], b.to_vec()).unwrap()),
                    &opts,
                )
                .unwrap();
            y.data()
                .iter()
                .zip(&gy)
                .map(|(&p, &q)| p as f64 * q as f64)
                .sum()
        };
        let grads = backward(xs, ws, &opts, &x, &w, &gy);
        let h = 0.25f32;
        let fd = |f: &dyn Fn(f32) -> f64| (f(h) - f(-h)) / (2.0 * h as f64);
        let tol = 1e-4;
        for i in 0..x.len() {
            let d = fd(&|e| {
                let mut xp = x.clone();
                xp[i] += e;
                loss(&xp, &w, &b)
            });
            let got = grads.input.as_ref().unwrap().data()[i] as f64;
            assert!(
                (d - got).abs() <= tol * (1.0 + d.abs()),
                "case {k} input {i}: fd {d} gpu {got}"
            );
        }
        for i in 0..w.len() {
            let d = fd(&|e| {
                let mut wp = w.clone();
                wp[i] += e;
                loss(&x, &wp, &b)
            });
            let got = grads.weight.as_ref().unwrap().data()[i] as f64;
            assert!(
                (d - got).abs() <= tol * (1.0 + d.abs()),
                "case {k} weight {i}: fd {d} gpu {got}"
            );
        }
        for i in 0..b.len() {
            let d = fd(&|e| {
                let mut bp = b.clone();
                bp[i] += e;
                loss(&x, &w, &bp)
            });
            let got = grads.bias.as_ref().unwrap().data()[i] as f64;
            assert!(
                (d - got).abs() <= tol * (1.0 + d.abs()),
                "case {k} bias {i}: fd {d} gpu {got}"
            );
        }
    }
}

/// The weight and bias gradients are reductions without atomics: two runs give the same bits.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn weight_grad_is_bitwise_deterministic() {
    for ((xs, ws, opts), algorithm) in [
        (
            [4usize, 2, 96, 80],
            [3usize, 2, 3, 3],
            Conv2dOptions::new().padding(1),
        ),
        ([1, 1, 512, 512], [1, 1, 1, 2], Conv2dOptions::new()),
    ]
    .into_iter()
    .flat_map(|c| Algorithm::ALL.map(|a| (c, a)))
    {
        let g = opts.resolve(xs, ws).unwrap();
        assert!(g.n * g.oh * g.ow > 16 * DIRECT_SLICE, "a long reduction");
        let mut rng = Rng::new(9);
        let x = rng.vec(xs.iter().product());
        let w = rng.vec(ws.iter().product());
        let gy = rng.vec(g.output_shape().iter().product());
        let a = backward_with(xs, ws, &opts, &x, &w, &gy, algorithm);
        let b = backward_with(xs, ws, &opts, &x, &w, &gy, algorithm);
        let bits = |t: &Tensor| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(a.weight.as_ref().unwrap()),
            bits(b.weight.as_ref().unwrap())
        );
        assert_eq!(
            bits(a.bias.as_ref().unwrap()),
            bits(b.bias.as_ref().unwrap())
        );
        assert_within(
            a.weight.unwrap().data(),
            &cpu::conv2d_weight_grad(&g, &x, &gy),
            "long reduction weight_grad",
        );
        assert_within(
            a.bias.unwrap().data(),
            &cpu::conv2d_bias_grad(&g, &gy),
            "long reduction bias_grad",
        );
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn two_stacked_layers_see_the_whole_3x3_input() {
    let ctx = ctx();
    let l1 = Conv2d::new(1, 1, 2, true, Conv2dOptions::new(), 1).unwrap();
    let l2 = Conv2d::new(1, 1, 2, true, Conv2dOptions::new(), 2).unwrap();
    // keep the weights away from zero so no gradient cancels by accident
    let mut l1 = l1;
    let mut l2 = l2;
    l1.set_weight(Tensor::new(vec![1, 1, 2, 2], vec![0.5, 1.0, 1.5, 2.0]).unwrap())
        .unwrap();
    l2.set_weight(Tensor::new(vec![1, 1, 2, 2], vec![1.0, 0.25, 0.75, 0.5]).unwrap())
        .unwrap();
    let stack = Sequential::new(vec![l1.clone(), l2.clone()]);
    let x = Tensor::from_fn([1, 1, 3, 3], |i| (i[2] * 3 + i[3]) as f32).unwrap();
    let grads = stack
        .backward(ctx, &x, &Tensor::new(vec![1, 1, 1, 1], vec![1.0]).unwrap())
        .unwrap();
    assert!(
        grads.input.data().iter().all(|&v| v != 0.0),
        "{:?}",
        grads.input.data()
    );
    // against the chain rule through the CPU reference
    let g1 = l1.options().resolve([1, 1, 3, 3], [1, 1, 2, 2]).unwrap();
    let g2 = l2.options().resolve([1, 1, 2, 2], [1, 1, 2, 2]).unwrap();
    let h = cpu::conv2d_forward(
        &g1,
        x.data(),
        l1.weight().data(),
        Some(l1.bias().unwrap().data()),
    )
    .to_f32();
    let gh = cpu::conv2d_input_grad(&g2, l2.weight().data(), &[1.0]).to_f32();
    assert_within(
        grads.layers[1].weight.as_ref().unwrap().data(),
        &cpu::conv2d_weight_grad(&g2, &h, &[1.0]),
        "layer 2 weight",
    );
    assert_within(
        grads.layers[0].weight.as_ref().unwrap().data(),
        &cpu::conv2d_weight_grad(&g1, x.data(), &gh),
        "layer 1 weight",
    );
    assert_within(
        grads.input.data(),
        &cpu::conv2d_input_grad(&g1, l1.weight().data(), &gh),
        "input",
    );
    assert_eq!(grads.layers[1].bias.as_ref().unwrap().data(), [1.0]);
}

proptest! {
    // failures are saved beside this file (tests/gradients.proptest-regressions) and replayed
    // first; the ranges reach every kernel path (kernels up to 7x8 and one past, dilation up to
    // 5, stride up to 4, every padding mode)
    #![proptest_config(ProptestConfig {
        cases: 32,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]
    #[test]
    #[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
    fn gradients_match_cpu_reference_on_random_shapes(
        (n, cpg, ocpg, groups) in (1usize..3, 1usize..4, 1usize..3, 1usize..3),
        (eh, ew, kh, kw) in (0usize..6, 0usize..6, 1usize..9, 1usize..10),
        (sh, sw, dh, dw) in (1usize..5, 1usize..5, 1usize..6, 1usize..6),
        (pt, pl, pb, pr) in (0usize..3, 0usize..3, 0usize..3, 0usize..3),
        (mode, conv, seed) in (0usize..4, any::<bool>(), any::<u64>()),
    ) {
        let opts = Conv2dOptions::new()
            .stride((sh, sw))
            .dilation((dh, dw))
            .padding([pt, pl, pb, pr])
            .groups(groups)
            .padding_mode([PaddingMode::Zeros, PaddingMode::Reflect, PaddingMode::Replicate, PaddingMode::Circular][mode])
            .mode(if conv { ConvMode::Convolution } else { ConvMode::CrossCorrelation });
        let (h, w) = ((kh - 1) * dh + 1 + eh, (kw - 1) * dw + 1 + ew);
        let xs = [n, cpg * groups, h, w];
        let ws = [ocpg * groups, cpg, kh, kw];
        prop_assume!(opts.resolve(xs, ws).is_ok());
        check_gradients(xs, ws, &opts, seed, &format!("{xs:?} {ws:?} {opts:?}"));
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn every_plane_kernel_size_weight_grad_matches_the_reference() {
    // conv2d_weight_grad_planes writes out the code for each of up to 7 kernel rows: every
    // height and width it takes, on a depthwise layer and a single plane, all three gradients
    let (max_kh, max_kw) = common::PLANES_MAX_KERNEL;
    let sizes: Vec<(usize, usize)> = (1..=max_kh)
        .flat_map(|kh| [(kh, kh), (kh, max_kw + 1 - kh)])
        .collect();
    let mut seed = 700;
    for (kh, kw) in sizes {
        for c in [1usize, 3] {
            let xs = [2usize, c, 6 + kh, 9 + kw];
            let ws = [c, 1, kh, kw];
            let opts = Conv2dOptions::new()
                .groups(c)
                .padding([kh / 2, kw / 2, 0, 1]);
            seed += 1;
            check_gradients(
                xs,
                ws,
                &opts,
                seed,
                &format!("planes {kh}x{kw}, {c} channels"),
            );
        }
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn an_infinite_weight_leaves_untouched_input_gradients_finite() {
    // Tap (0, 0) is infinite; with padding 1 the input's last row and column are never read
    // through it, so their exact gradient is finite (a padded zero times inf is no term of it).
    // (outputs of 400 elements and more, so that Auto picks the fast kernels too)
    for (xs, ws) in [
        ([1usize, 1, 20, 20], [1usize, 1, 3, 3]),
        ([1, 2, 20, 21], [3, 2, 3, 3]),
    ] {
        let opts = Conv2dOptions::new().padding(1);
        let g = opts.resolve(xs, ws).unwrap();
        let x = vec![0.5f32; xs.iter().product()];
        let mut w = vec![0.25f32; ws.iter().product()];
        w[0] = f32::INFINITY;
        let gy = vec![1.0f32; g.output_shape().iter().product()];
        let reference = cpu::conv2d_input_grad(&g, &w, &gy);
        assert!(reference.values.iter().any(|v| v.is_finite()));
        for a in [
            Algorithm::Auto,
            Algorithm::Direct,
            Algorithm::Tiled,
            Algorithm::Gemm,
            Algorithm::Gpu,
        ] {
            let grads = backward_with(xs, ws, &opts, &x, &w, &gy, a);
            let gx = grads.input.unwrap();
            let what = format!("input grad with an infinite weight {xs:?} ({a:?})");
            assert_within(gx.data(), &reference, &what);
            for (got, exact) in gx.data().iter().zip(&reference.values) {
                assert_eq!(
                    got.is_nan(),
                    exact.is_nan(),
                    "{what}: {got} where exactly {exact}"
                );
            }
        }
    }
}

/// The input gradient of strided layers with few input channels by phases
/// (`conv2d_input_grad_phase`, the GPU family): every phase offset (strides 2 and 3, paddings
/// that are and are not multiples of them, strides that differ by axis, a kernel smaller than
/// the stride, so that some phases have no taps) equals the reference exactly on small
/// integers, in the GPU family and in the CPU family (strides of 2x2 or more, all of these).
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn strided_input_gradients_by_phase_are_exact() {
    let mut rng = Rng::new(23);
    let mut ints = |n: usize| common::ints(&mut rng, n);
    for (x_shape, w_shape, stride, padding, groups) in [
        ([2, 3, 17, 19], [5, 3, 7, 7], (2, 2), (3, 3), 1),
        ([1, 2, 13, 11], [4, 2, 3, 3], (3, 3), (1, 1), 1),
        ([1, 1, 12, 14], [3, 1, 5, 4], (3, 2), (2, 1), 1),
        ([1, 4, 9, 9], [2, 4, 1, 1], (2, 2), (0, 0), 1),
        ([1, 6, 10, 12], [4, 3, 4, 5], (2, 3), (0, 2), 2),
    ] {
        let opts = Conv2dOptions::new()
            .stride(stride)
            .padding(padding)
            .groups(groups);
        let g = opts.resolve(x_shape, w_shape).unwrap();
        let x = ints(x_shape.iter().product());
        let w = ints(w_shape.iter().product());
        let gy = ints(g.output_shape().iter().product());
        let reference = cpu::conv2d_input_grad(&g, &w, &gy);
        for algorithm in [Algorithm::Gpu, Algorithm::Gemm] {
            let plan = ctx()
                .plan(wgpu_conv::Op::InputGrad, &g, false, algorithm)
                .unwrap();
            assert_eq!(plan.kernels(), ["conv2d_input_grad_phase"], "{plan}");
            let grads = backward_with(x_shape, w_shape, &opts, &x, &w, &gy, algorithm);
            assert_exact(
                grads.input.as_ref().unwrap().data(),
                &reference,
                &format!("{x_shape:?} {w_shape:?} {stride:?} {algorithm:?}"),
            );
        }
    }
}

/// The input gradient of strided layers with 4 or more input channels per group through the
/// GEMM core, a pass per phase (the GPU family): strides 2 and 3 and ones that differ by axis,
/// a 1x1 kernel and one smaller than the stride (phases no tap reaches: zeros), dilations that
/// share a factor with the stride (zero phases again) and that do not, strict convolution,
/// groups, a long reduction (300 output channels x 4 taps), channels past one block of 64, K
/// split into slices (with zero phases too) and not; all equal the reference exactly on small
/// integers. The CPU family (`Algorithm::Gemm`) runs every one of them (strides of 2x2 or more)
/// the same way without a split K, exact too. Padding past half the kernel (3x3 at stride 2
/// with padding 2, 5x3 at strides 2x3 with padding 4x3, dilation 2 with padding 6) gives
/// phases whose first position reads gy from a later row or column than its first: the core
/// skips those. Reflect padding takes another kernel, also exact.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn strided_input_gradients_through_the_core_are_exact() {
    let mut rng = Rng::new(31);
    let mut ints = |n: usize| common::ints(&mut rng, n);
    let cc = ConvMode::CrossCorrelation;
    let (mut split, mut split_with_zeros, mut skipping) = (0, 0, 0);
    for (x_shape, w_shape, stride, padding, dilation, groups, mode, zeros) in [
        (
            [2, 8, 13, 11],
            [12, 8, 3, 3],
            (2, 2),
            (1, 1),
            (1, 1),
            1,
            cc,
            false,
        ),
        (
            [1, 6, 9, 8],
            [200, 6, 1, 1],
            (2, 2),
            (0, 0),
            (1, 1),
            1,
            cc,
            true,
        ),
        (
            [1, 12, 10, 13],
            [8, 6, 4, 5],
            (2, 3),
            (0, 2),
            (1, 1),
            2,
            cc,
            false,
        ),
        (
            [1, 5, 15, 14],
            [6, 5, 3, 3],
            (2, 2),
            (2, 2),
            (2, 2),
            1,
            cc,
            true,
        ),
        (
            [1, 8, 16, 15],
            [4, 8, 3, 2],
            (2, 2),
            (3, 0),
            (3, 3),
            1,
            cc,
            false,
        ),
        (
            [1, 6, 11, 9],
            [7, 6, 5, 3],
            (3, 2),
            (2, 1),
            (1, 1),
            1,
            ConvMode::Convolution,
            false,
        ),
        (
            [1, 5, 10, 10],
            [6, 5, 2, 2],
            (3, 3),
            (0, 0),
            (1, 1),
            1,
            cc,
            true,
        ),
        (
            [1, 8, 10, 10],
            [300, 8, 3, 3],
            (2, 2),
            (1, 1),
            (1, 1),
            1,
            cc,
            false,
        ),
        (
            [1, 8, 9, 9],
            [4, 8, 3, 3],
            (2, 2),
            (2, 2),
            (1, 1),
            1,
            cc,
            false,
        ),
        (
            [1, 6, 12, 11],
            [5, 6, 5, 3],
            (2, 3),
            (4, 3),
            (1, 1),
            1,
            ConvMode::Convolution,
            false,
        ),
        (
            [1, 8, 13, 13],
            [4, 8, 3, 3],
            (2, 2),
            (6, 6),
            (2, 2),
            1,
            cc,
            true,
        ),
        (
            [1, 70, 9, 9],
            [16, 70, 3, 3],
            (2, 2),
            (1, 1),
            (1, 1),
            1,
            cc,
            false,
        ),
    ] {
        let opts = Conv2dOptions::new()
            .stride(stride)
            .padding(padding)
            .dilation(dilation)
            .groups(groups)
            .mode(mode);
        let g = opts.resolve(x_shape, w_shape).unwrap();
        let x = ints(x_shape.iter().product());
        let w = ints(w_shape.iter().product());
        let gy = ints(g.output_shape().iter().product());
        for algorithm in [Algorithm::Gpu, Algorithm::Gemm] {
            let plan = ctx()
                .plan(wgpu_conv::Op::InputGrad, &g, false, algorithm)
                .unwrap();
            let kernels = plan.kernels();
            assert!(kernels.contains(&"conv2d_core"), "{plan}");
            assert_eq!(kernels.contains(&"conv2d_zero_phase"), zeros, "{plan}");
            assert!(!kernels.contains(&"conv2d_forward_mm"), "{plan}");
            // a phase that skips gy rows or columns: PT or PL negative (two's complement)
            skipping += usize::from(plan.passes().iter().any(|p| {
                p.kernel() == "conv2d_core"
                    && p.constant_values()
                        .iter()
                        .any(|&(k, v)| (k == "PT" || k == "PL") && v > i32::MAX as u32)
            }));
            let sliced = kernels.contains(&"reduce_partials");
            if algorithm == Algorithm::Gemm {
                assert!(!sliced, "{plan}");
            } else if sliced {
                split += 1;
                split_with_zeros += usize::from(zeros);
            }
            let grads = backward_with(x_shape, w_shape, &opts, &x, &w, &gy, algorithm);
            assert_exact(
                grads.input.as_ref().unwrap().data(),
                &cpu::conv2d_input_grad(&g, &w, &gy),
                &format!(
                    "{x_shape:?} {w_shape:?} {stride:?} {padding:?} {dilation:?} {algorithm:?}"
                ),
            );
        }
    }
    assert!(
        (2..12).contains(&split) && split_with_zeros >= 1,
        "{split} {split_with_zeros}"
    );
    // the three cases padded past half the kernel, in both families
    assert_eq!(skipping, 6);
    // reflect padding at stride 2: not the core (a phase's padding would not be zeros), exact
    // too
    let (x_shape, w_shape) = ([1, 8, 9, 9], [4, 8, 3, 3]);
    let opts = Conv2dOptions::new()
        .stride(2)
        .padding(1)
        .padding_mode(PaddingMode::Reflect);
    let g = opts.resolve(x_shape, w_shape).unwrap();
    let plan = ctx()
        .plan(wgpu_conv::Op::InputGrad, &g, false, Algorithm::Gpu)
        .unwrap();
    assert!(!plan.kernels().contains(&"conv2d_core"), "{plan}");
    let w = ints(w_shape.iter().product());
    let gy = ints(g.output_shape().iter().product());
    let x = ints(x_shape.iter().product());
    let grads = backward_with(x_shape, w_shape, &opts, &x, &w, &gy, Algorithm::Gpu);
    assert_exact(
        grads.input.as_ref().unwrap().data(),
        &cpu::conv2d_input_grad(&g, &w, &gy),
        "reflect padding at stride 2",
    );
}

/// The GEMM core's edge tiles: a tile whose second half of channels, pixels or taps is past
/// the end runs its first half only (`wide_a` / `wide_b` in the shaders), so every tile runs one
/// of four FMA loops. Channels per group of 20 and 12 (half), 40 (full), 70 (a full block, then
/// a half one), pixels and taps whose last tile is full and half: forward, weight and input
/// gradients equal the reference exactly on small integers, with the core in every plan, and
/// each of the four loops runs.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn the_cores_half_tiles_are_exact() {
    let mut rng = Rng::new(29);
    let mut ints = |n: usize| common::ints(&mut rng, n);
    for (x_shape, w_shape, padding, groups) in [
        // 147 taps (tiles of 64, 64, 19), 20 channels, 80 pixels (tiles of 64 and 16): the
        // forward pass runs loops a0 and a0b0
        ([1, 3, 10, 10], [20, 3, 7, 7], 1, 1),
        // 40 channels, 90 pixels (64 and 26): the forward pass runs the full loop and b0
        ([1, 4, 9, 10], [40, 4, 3, 3], 1, 1),
        // 70 channels (64 and 6), 147 taps, 2 images: the weight gradient runs all four
        ([2, 3, 9, 7], [70, 3, 7, 7], 3, 1),
        // groups of 12 channels, 108 taps (64 and 44)
        ([1, 24, 6, 6], [24, 12, 3, 3], 1, 2),
    ] {
        let opts = Conv2dOptions::new().padding(padding).groups(groups);
        let g = opts.resolve(x_shape, w_shape).unwrap();
        for (op, kernel) in [
            (wgpu_conv::Op::Forward, "conv2d_core"),
            (wgpu_conv::Op::WeightGrad, "conv2d_weight_grad_core"),
            (wgpu_conv::Op::InputGrad, "conv2d_core"),
        ] {
            // (the input gradient's channels are the layer's input channels: 4 or more for
            // the core)
            if op == wgpu_conv::Op::InputGrad && g.cpg() < 4 {
                continue;
            }
            let plan = ctx().plan(op, &g, false, Algorithm::Gpu).unwrap();
            assert!(plan.kernels().contains(&kernel), "{plan}");
        }
        let x = ints(x_shape.iter().product());
        let w = ints(w_shape.iter().product());
        let gy = ints(g.output_shape().iter().product());
        let t = |s: &[usize], v: &[f32]| Tensor::new(s.to_vec(), v.to_vec()).unwrap();
        let y = ctx()
            .conv2d_with(
                &t(&x_shape, &x),
                &t(&w_shape, &w),
                None,
                &opts,
                Algorithm::Gpu,
            )
            .unwrap();
        let grads = backward_with(x_shape, w_shape, &opts, &x, &w, &gy, Algorithm::Gpu);
        for (what, got, reference) in [
            ("forward", y.data(), cpu::conv2d_forward(&g, &x, &w, None)),
            (
                "weight",
                grads.weight.as_ref().unwrap().data(),
                cpu::conv2d_weight_grad(&g, &x, &gy),
            ),
            (
                "input",
                grads.input.as_ref().unwrap().data(),
                cpu::conv2d_input_grad(&g, &w, &gy),
            ),
        ] {
            assert_exact(got, &reference, &format!("{x_shape:?} {w_shape:?} {what}"));
        }
    }
}

/// A device with 8 KiB of workgroup memory (capped with `set_workgroup_storage_limit` on a
/// context of its own): the GPU family plans the older `mm` GEMM kernels instead of the core,
/// and they match the reference on every case of the table, forward and gradients.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn less_workgroup_memory_takes_the_older_gemm_kernels() {
    let ctx = wgpu_conv::GpuContext::new().unwrap();
    ctx.set_workgroup_storage_limit(Some(8192));
    let mut mm = 0;
    for case in cases() {
        let g = case.opts.resolve(case.x, case.w).unwrap();
        for op in [wgpu_conv::Op::Forward, wgpu_conv::Op::WeightGrad] {
            let plan = ctx.plan(op, &g, false, Algorithm::Gpu).unwrap();
            assert!(
                !plan.kernels().iter().any(|k| k.ends_with("core")),
                "{plan}"
            );
            mm += usize::from(plan.kernels().iter().any(|k| k.ends_with("_mm")));
        }
        let (x, w, b) = case_data(&case, 5);
        let gy = Rng::new(9).vec(g.output_shape().iter().product());
        let t = |s: &[usize], v: &[f32]| Tensor::new(s.to_vec(), v.to_vec()).unwrap();
        let y = ctx
            .conv2d_with(
                &t(&case.x, &x),
                &t(&case.w, &w),
                b.as_ref().map(|b| t(&[case.w[0]], b)).as_ref(),
                &case.opts,
                Algorithm::Gpu,
            )
            .unwrap();
        let reference = cpu::conv2d_forward(&g, &x, &w, b.as_deref());
        assert_within(y.data(), &reference, &format!("{} forward", case.name));
        let grads = ctx
            .conv2d_backward_with(
                &t(&case.x, &x),
                &t(&case.w, &w),
                &t(&g.output_shape(), &gy),
                &case.opts,
                Wanted::ALL,
                Algorithm::Gpu,
            )
            .unwrap();
        let r = cpu::conv2d_weight_grad(&g, &x, &gy);
        assert_within(
            grads.weight.as_ref().unwrap().data(),
            &r,
            &format!("{} weight", case.name),
        );
        let r = cpu::conv2d_input_grad(&g, &w, &gy);
        assert_within(
            grads.input.as_ref().unwrap().data(),
            &r,
            &format!("{} input", case.name),
        );
    }
    assert!(mm > 0, "no case took an mm kernel");
}
