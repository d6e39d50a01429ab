//! Exact tests of long reductions: at least 70,000 terms per output element, for every kernel
//! family (direct, tiled, GEMM, planes) and every op (forward, weight, input and bias
//! gradients, the loss), on small-integer data.
//!
//! With inputs in {-2, ..., 2} every product is a small integer and every partial sum stays far
//! below 2^24, so any correct order of `f32` additions gives the exact result: the test asks
//! for equality with the `f64` reference, not for the worst-case bound. That bound,
//! `(L + 1) * 2^-24 * sum|ab|`, is about 0.4 % of `sum|ab|` at L = 70,000: wide enough to let a
//! sum that a driver silently cut short pass (Mesa's gallivm leaves every loop of an
//! invocation after 65,535 iterations in all). Here a single missing term fails the test.

mod common;

use common::{ctx, ints, Rng};
use wgpu_conv::{cpu, Algorithm, Conv2d, Conv2dOptions, PaddingMode, Sgd, Tensor, Trainer, Wanted};

/// Asserts `got` equals the reference exactly (`common::assert_exact`), over long reductions.
#[track_caller]
fn assert_exact(got: &[f32], reference: &cpu::Reference, what: &str) {
    assert!(
        reference.terms >= 70_000,
        "{what}: only {} terms per element; this test wants long reductions",
        reference.terms
    );
    common::assert_exact(got, reference, what);
}

/// The algorithms each case runs with: every explicit one and `Auto`.
fn algorithms() -> [Algorithm; 5] {
    [
        Algorithm::Direct,
        Algorithm::Tiled,
        Algorithm::Gemm,
        Algorithm::Gpu,
        Algorithm::Auto,
    ]
}

struct Long {
    name: &'static str,
    x: [usize; 4],
    w: [usize; 4],
    opts: Conv2dOptions,
}

fn forward_cases() -> Vec<Long> {
    let o = Conv2dOptions::new;
    vec![
        // 280 channels x 16 x 16 = 71,680 taps per output, 3 output channels (GEMM, tiled)
        Long {
            name: "channels",
            x: [1, 280, 16, 16],
            w: [3, 280, 16, 16],
            opts: o(),
        },
        // the same taps, 8 output channels: the GPU family's GEMM core, its K split into
        // slices summed in order, the bias added once
        Long {
            name: "channels_core_split",
            x: [1, 280, 16, 16],
            w: [8, 280, 16, 16],
            opts: o(),
        },
        // one plane, a 265 x 265 kernel: 70,225 taps (the rows kernel; too big for planes)
        Long {
            name: "big_kernel",
            x: [1, 1, 270, 270],
            w: [1, 1, 265, 265],
            opts: o(),
        },
        // depthwise, 1 x 70,001 kernel (one kernel row longer than the budget), with bias
        Long {
            name: "long_row_depthwise",
            x: [1, 2, 2, 70_003],
            w: [2, 1, 1, 70_001],
            opts: o().groups(2),
        },
    ]
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn forward_long_reductions_are_exact() {
    let mut rng = Rng::new(70_000);
    for c in forward_cases() {
        let x = ints(&mut rng, c.x.iter().product());
        let w = ints(&mut rng, c.w.iter().product());
        let b = ints(&mut rng, c.w[0]);
        let g = c.opts.resolve(c.x, c.w).unwrap();
        let reference = cpu::conv2d_forward(&g, &x, &w, Some(&b));
        let xt = Tensor::new(c.x.to_vec(), x).unwrap();
        let wt = Tensor::new(c.w.to_vec(), w).unwrap();
        let bt = Tensor::new(vec![c.w[0]], b).unwrap();
        for a in algorithms() {
            let y = ctx().conv2d_with(&xt, &wt, Some(&bt), &c.opts, a).unwrap();
            assert_exact(y.data(), &reference, &format!("forward {} ({a:?})", c.name));
        }
    }
}

fn backward_cases() -> Vec<(Long, bool, bool)> {
    let o = Conv2dOptions::new;
    vec![
        // weight and bias gradients over 298^2 = 88,804 output pixels: GEMM (several output
        // channels per group; the GPU family's core, its pixels in slices), tiled, direct
        (
            Long {
                name: "weight_channels",
                x: [1, 2, 300, 300],
                w: [4, 2, 3, 3],
                opts: o(),
            },
            true,
            false,
        ),
        // one plane: the planes weight gradient
        (
            Long {
                name: "weight_plane",
                x: [1, 1, 300, 300],
                w: [1, 1, 3, 3],
                opts: o(),
            },
            true,
            false,
        ),
        // one plane over a batch of 70 rows of 4,094 outputs: 286,580 terms, and 71,680
        // partial sums per weight (more than one reduce pass may loop over, and more than
        // gallivm's cap: a tree of passes)
        (
            Long {
                name: "weight_plane_many_partials",
                x: [70, 1, 3, 4096],
                w: [1, 1, 3, 3],
                opts: o(),
            },
            true,
            false,
        ),
        // depthwise over a batch: 2 x 199^2 = 79,202 terms
        (
            Long {
                name: "weight_depthwise_batch",
                x: [2, 2, 200, 200],
                w: [2, 1, 2, 2],
                opts: o().groups(2),
            },
            true,
            false,
        ),
        // input gradient: 1,100 output channels x 64 taps = 70,400 terms per input pixel (the
        // transposed forward GEMM, the tiled and the direct kernels)
        (
            Long {
                name: "input_channels",
                x: [1, 1, 8, 8],
                w: [1_100, 1, 8, 8],
                opts: o().padding(7),
            },
            false,
            true,
        ),
        // input gradient under padding far wider than the image: a corner pixel is copied into
        // 301^2 = 90,601 padded positions (the candidate scan)
        (
            Long {
                name: "input_wide_replicate",
                x: [1, 1, 2, 2],
                w: [1, 1, 1, 1],
                opts: o().padding(300).padding_mode(PaddingMode::Replicate),
            },
            false,
            true,
        ),
    ]
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn gradient_long_reductions_are_exact() {
    let mut rng = Rng::new(70_001);
    for (c, weight, input) in backward_cases() {
        let x = ints(&mut rng, c.x.iter().product());
        let w = ints(&mut rng, c.w.iter().product());
        let g = c.opts.resolve(c.x, c.w).unwrap();
        let gy = ints(&mut rng, g.output_shape().iter().product());
        let xt = Tensor::new(c.x.to_vec(), x.clone()).unwrap();
        let wt = Tensor::new(c.w.to_vec(), w.clone()).unwrap();
        let gyt = Tensor::new(g.output_shape().to_vec(), gy.clone()).unwrap();
        let wanted = Wanted {
            input,
            weight,
            bias: weight,
        };
        for a in algorithms() {
            let grads = ctx()
                .conv2d_backward_with(&xt, &wt, &gyt, &c.opts, wanted, a)
                .unwrap();
            if weight {
                let r = cpu::conv2d_weight_grad(&g, &x, &gy);
                let what = format!("weight grad {} ({a:?})", c.name);
                assert_exact(grads.weight.as_ref().unwrap().data(), &r, &what);
                let r = cpu::conv2d_bias_grad(&g, &gy);
                let what = format!("bias grad {} ({a:?})", c.name);
                assert_exact(grads.bias.as_ref().unwrap().data(), &r, &what);
            }
            if input {
                let r = cpu::conv2d_input_grad(&g, &w, &gy);
                let what = format!("input grad {} ({a:?})", c.name);
                assert_exact(grads.input.as_ref().unwrap().data(), &r, &what);
            }
        }
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn loss_over_a_long_reduction_is_exact() {
    // y = x exactly (a 1x1 kernel of weight 1): the loss sum (x - t)^2 over 300 x 300 = 90,000
    // terms, each at most 16.
    let mut rng = Rng::new(70_002);
    let shape = [1usize, 1, 300, 300];
    let x = ints(&mut rng, shape.iter().product());
    let t = ints(&mut rng, shape.iter().product());
    let layer = Conv2d::from_weight(
        Tensor::new(vec![1, 1, 1, 1], vec![1.0]).unwrap(),
        None,
        Conv2dOptions::new(),
    )
    .unwrap();
    let xt = Tensor::new(shape.to_vec(), x.clone()).unwrap();
    let tt = Tensor::new(shape.to_vec(), t.clone()).unwrap();
    let mut trainer = Trainer::new(ctx(), &layer, &xt, &tt, Sgd::new(0.0)).unwrap();
    let loss = trainer.step(true).unwrap().unwrap();
    let (reference, _) = cpu::mse_loss(&x, &t, 1.0);
    assert_exact(&[loss], &reference, "loss");
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn random_long_reductions_err_like_a_random_walk() {
    // Rounding errors of a correct sum of L terms behave like a random walk: their mean stays
    // near sqrt(L) * 2^-24 * sum|ab|, far inside the worst-case (L + 1) * 2^-24 * sum|ab|.
    // A sum cut short errs by a share of sum|ab| itself.
    let mut rng = Rng::new(70_003);
    let (xs, ws) = ([1usize, 280, 18, 18], [8usize, 280, 16, 16]);
    let x = rng.vec(xs.iter().product());
    let w = rng.vec(ws.iter().product());
    let opts = Conv2dOptions::new();
    let g = opts.resolve(xs, ws).unwrap();
    let reference = cpu::conv2d_forward(&g, &x, &w, None);
    let xt = Tensor::new(xs.to_vec(), x).unwrap();
    let wt = Tensor::new(ws.to_vec(), w).unwrap();
    let unit = f64::from(f32::EPSILON) / 2.0;
    let l = reference.terms as f64;
    for a in algorithms() {
        let y = ctx().conv2d_with(&xt, &wt, None, &opts, a).unwrap();
        let ratios: Vec<f64> = y
            .data()
            .iter()
            .zip(reference.values.iter().zip(&reference.magnitude))
            .map(|(&got, (&exact, &mag))| (f64::from(got) - exact).abs() / (l.sqrt() * unit * mag))
            .collect();
        let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
        assert!(
            mean < 1.0,
            "forward ({a:?}): mean error {mean:.3} x sqrt(L) * 2^-24 * sum|ab| over {} outputs",
            ratios.len()
        );
        crate::common::assert_within(y.data(), &reference, &format!("forward ({a:?})"));
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn a_reused_output_buffer_is_overwritten_not_added_to() {
    // The pieces of a long reduction add to what the piece before wrote; the first one must
    // overwrite whatever the buffer held (a layer's output is reused call after call).
    let mut rng = Rng::new(70_004);
    for (xs, ws) in [
        ([1usize, 280, 16, 16], [3usize, 280, 16, 16]),
        ([1, 2, 6, 6], [3, 2, 3, 3]),
    ] {
        let x = ints(&mut rng, xs.iter().product());
        let w = ints(&mut rng, ws.iter().product());
        let opts = Conv2dOptions::new();
        let g = opts.resolve(xs, ws).unwrap();
        let reference = cpu::conv2d_forward(&g, &x, &w, None);
        let ctx = ctx();
        let xg = ctx.upload(&Tensor::new(xs.to_vec(), x).unwrap()).unwrap();
        let wg = ctx.upload(&Tensor::new(ws.to_vec(), w).unwrap()).unwrap();
        for a in algorithms() {
            let y = ctx.empty(&g.output_shape(), "reused output").unwrap();
            for _ in 0..2 {
                let mut enc = ctx.encoder("twice");
                ctx.record_forward_with(&mut enc, &g, &xg, &wg, None, &y, a)
                    .unwrap();
                ctx.submit_and_wait(enc).unwrap();
            }
            let got = ctx.download(&[&y]).unwrap().remove(0);
            for (i, (&v, &r)) in got.data().iter().zip(&reference.values).enumerate() {
                assert_eq!(
                    f64::from(v),
                    r,
                    "{xs:?} ({a:?}): element {i} after two runs"
                );
            }
        }
    }
}
