//! Training on the GPU: the chapter's kernel learning, and agreement with the CPU-reference
//! training (same seed, same steps).

mod common;

use common::{ctx, Rng};
use wgpu_conv::{
    cpu, train_cpu, Algorithm, Conv2d, Conv2dOptions, PaddingMode, Sgd, Tensor, Trainer,
};

fn chapter_data() -> (Tensor, Tensor) {
    let x = Tensor::from_fn(
        [1, 1, 6, 8],
        |i| if (2..6).contains(&i[3]) { 0.0 } else { 1.0 },
    )
    .unwrap();
    // Y = corr2d(X, [[1, -1]]), written out from the chapter's definition on the CPU
    let y = Tensor::from_fn([1, 1, 6, 7], |i| {
        x.at(&[0, 0, i[2], i[3]]) - x.at(&[0, 0, i[2], i[3] + 1])
    })
    .unwrap();
    (x, y)
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn learns_the_chapters_kernel_from_any_seed() {
    let (x, y) = chapter_data();
    for seed in 0..12 {
        let init = Conv2d::new(1, 1, (1, 2), false, Conv2dOptions::new(), seed).unwrap();
        let sgd = Sgd::new(3e-2);
        let mut t = Trainer::new(ctx(), &init, &x, &y, sgd).unwrap();
        let mut losses = Vec::new();
        for i in 0..10 {
            let l = t.step((i + 1) % 2 == 0).unwrap();
            assert_eq!(
                l.is_some(),
                (i + 1) % 2 == 0,
                "the loss is read only when asked for"
            );
            losses.extend(l);
        }
        assert_eq!(losses.len(), 5);
        assert!(
            losses.windows(2).all(|w| w[1] < w[0]),
            "seed {seed}: loss does not fall: {losses:?}"
        );
        let k = t.layer().unwrap().weight().data().to_vec();
        assert!(
            (k[0] - 1.0).abs() <= 0.1 && (k[1] + 1.0).abs() <= 0.1,
            "seed {seed}: learned {k:?}"
        );
        let (cpu_layer, cpu_losses) = train_cpu(&init, &x, &y, sgd, 10).unwrap();
        for (g, c) in k.iter().zip(cpu_layer.weight().data()) {
            assert!(
                (g - c).abs() <= 1e-5,
                "seed {seed}: GPU {k:?} CPU {:?}",
                cpu_layer.weight().data()
            );
        }
        for (i, l) in losses.iter().enumerate() {
            let c = cpu_losses[2 * i + 1];
            assert!(
                (*l as f64 - c).abs() <= 1e-5 * (1.0 + c),
                "seed {seed}: loss {l} vs CPU {c}"
            );
        }
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn gpu_training_matches_cpu_training_with_bias_momentum_and_decay() {
    let mut rng = Rng::new(5);
    let opts = Conv2dOptions::new()
        .padding(1)
        .stride(2)
        .groups(2)
        .padding_mode(PaddingMode::Reflect);
    let x = Tensor::new(vec![2, 4, 9, 7], rng.vec(2 * 4 * 9 * 7)).unwrap();
    let init = Conv2d::new(4, 6, (3, 2), true, opts, 11).unwrap();
    let g = opts.resolve([2, 4, 9, 7], [6, 2, 3, 2]).unwrap();
    let y = Tensor::new(
        g.output_shape().to_vec(),
        rng.vec(g.output_shape().iter().product()),
    )
    .unwrap();
    let sgd = Sgd::new(1e-2).momentum(0.9).weight_decay(1e-3);
    let mut t = Trainer::new(ctx(), &init, &x, &y, sgd).unwrap();
    let first = t.step(true).unwrap().unwrap();
    // the loss before any update is the CPU loss of the initial layer
    let y0 = cpu::conv2d_forward(
        &g,
        x.data(),
        init.weight().data(),
        Some(init.bias().unwrap().data()),
    )
    .to_f32();
    let (l0, _) = cpu::mse_loss(&y0, y.data(), 1.0);
    assert!(
        (first as f64 - l0.values[0]).abs() <= l0.bound(0) + 1e-4 * l0.values[0],
        "{first} vs {}",
        l0.values[0]
    );
    for _ in 1..20 {
        t.step(false).unwrap();
    }
    let gpu = t.layer().unwrap();
    let (cpu_layer, _) = train_cpu(&init, &x, &y, sgd, 20).unwrap();
    for (a, b) in gpu.weight().data().iter().zip(cpu_layer.weight().data()) {
        assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "weight {a} vs {b}");
    }
    for (a, b) in gpu
        .bias()
        .unwrap()
        .data()
        .iter()
        .zip(cpu_layer.bias().unwrap().data())
    {
        assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "bias {a} vs {b}");
    }
}

#[test]
fn cpu_sgd_step_follows_torch_semantics() {
    // one step with momentum from a zero buffer equals plain SGD on g + wd*w
    let mut w = [1.0f32, -2.0];
    let mut v = [0.0f32; 2];
    cpu::sgd_step(&mut w, &[0.5, 0.25], &mut v, 0.1, 0.9, 0.01);
    assert_eq!(v, [0.5 + 0.01, 0.25 - 0.02]);
    assert!((w[0] - (1.0 - 0.1 * 0.51)).abs() < 1e-7 && (w[1] - (-2.0 - 0.1 * 0.23)).abs() < 1e-7);
}

/// Small integers in `[-m, m]`.
fn ints(rng: &mut Rng, n: usize, m: i64) -> Vec<f32> {
    (0..n)
        .map(|_| ((rng.uniform() * (m as f32 + 0.5)).round() as i64).clamp(-m, m) as f32)
        .collect()
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn the_one_dispatch_step_and_the_separate_operations_agree_with_the_cpu() {
    // awkward small layers: every option the one-dispatch step reads
    let mut rng = Rng::new(6);
    let cases = [
        ([1, 1, 6, 8], (1, 1), (1, 2), false, Conv2dOptions::new()),
        (
            [2, 4, 9, 7],
            (4, 6),
            (3, 2),
            true,
            Conv2dOptions::new()
                .padding(1)
                .stride(2)
                .groups(2)
                .padding_mode(PaddingMode::Reflect),
        ),
        (
            [1, 3, 11, 10],
            (3, 5),
            (2, 3),
            true,
            Conv2dOptions::new()
                .dilation((2, 1))
                .padding((2, 1))
                .padding_mode(PaddingMode::Circular)
                .mode(wgpu_conv::ConvMode::Convolution),
        ),
        (
            [3, 2, 5, 13],
            (2, 2),
            (1, 4),
            false,
            Conv2dOptions::new()
                .stride((1, 3))
                .padding((0, 2))
                .padding_mode(PaddingMode::Replicate),
        ),
    ];
    let sgd = Sgd::new(1e-2).momentum(0.8).weight_decay(1e-2);
    for (i, (xs, (c, oc), k, bias, opts)) in cases.into_iter().enumerate() {
        let x = Tensor::new(xs.to_vec(), rng.vec(xs.iter().product())).unwrap();
        let init = Conv2d::new(c, oc, k, bias, opts, i as u64).unwrap();
        let g = init.geometry(&xs).unwrap();
        let y = Tensor::new(
            g.output_shape().to_vec(),
            rng.vec(g.output_shape().iter().product()),
        )
        .unwrap();
        let (cpu_layer, cpu_losses) = train_cpu(&init, &x, &y, sgd, 6).unwrap();
        for algorithm in [Algorithm::Auto, Algorithm::Direct, Algorithm::Gpu] {
            let mut t = Trainer::new_with(ctx(), &init, &x, &y, sgd, algorithm).unwrap();
            assert_eq!(
                t.fused(),
                algorithm == Algorithm::Auto,
                "case {i}: a small layer under Auto takes the one-dispatch step"
            );
            for (step, &c) in cpu_losses.iter().enumerate() {
                let l = f64::from(t.step(true).unwrap().unwrap());
                assert!(
                    (l - c).abs() <= 1e-4 * (1.0 + c),
                    "case {i} {algorithm:?} step {step}: loss {l} vs CPU {c}"
                );
            }
            let gpu = t.layer().unwrap();
            let pairs = gpu.weight().data().iter().zip(cpu_layer.weight().data());
            let bias_pairs = gpu
                .bias()
                .into_iter()
                .flat_map(|b| b.data().iter().zip(cpu_layer.bias().unwrap().data()));
            for (a, b) in pairs.chain(bias_pairs) {
                assert!(
                    (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                    "case {i} {algorithm:?}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn the_one_dispatch_step_is_exact_on_small_integers() {
    // 2,025 outputs (near the step's limit): each weight's gradient sums 2,025 terms and the
    // loss 2,025 squares, all small integers, so any correct order of f32 additions is exact
    // and a sum cut short shows
    let mut rng = Rng::new(7);
    let xs = [1usize, 1, 46, 46];
    let x = Tensor::new(xs.to_vec(), ints(&mut rng, 46 * 46, 4)).unwrap();
    let w = Tensor::new(vec![1, 1, 2, 2], ints(&mut rng, 4, 2)).unwrap();
    let b = Tensor::new(vec![1], vec![1.0]).unwrap();
    let layer = Conv2d::from_weight(w.clone(), Some(b.clone()), Conv2dOptions::new()).unwrap();
    let g = layer.geometry(&xs).unwrap();
    let t = Tensor::new(g.output_shape().to_vec(), ints(&mut rng, 45 * 45, 8)).unwrap();
    let mut trainer = Trainer::new(ctx(), &layer, &x, &t, Sgd::new(1.0)).unwrap();
    assert!(trainer.fused());
    let loss = trainer.step(true).unwrap().unwrap();
    let learned = trainer.layer().unwrap();

    let y = cpu::conv2d_forward(&g, x.data(), w.data(), Some(b.data())).to_f32();
    let (l, gy) = cpu::mse_loss(&y, t.data(), 1.0);
    assert_eq!(f64::from(loss), l.values[0], "loss");
    let gy = gy.to_f32();
    let gw = cpu::conv2d_weight_grad(&g, x.data(), &gy);
    let gb = cpu::conv2d_bias_grad(&g, &gy);
    for (i, (&got, &grad)) in learned.weight().data().iter().zip(&gw.values).enumerate() {
        assert_eq!(f64::from(got), f64::from(w.data()[i]) - grad, "weight {i}");
    }
    assert_eq!(
        f64::from(learned.bias().unwrap().data()[0]),
        1.0 - gb.values[0],
        "bias"
    );
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn a_layer_past_the_one_dispatch_limit_runs_as_separate_operations() {
    let (x, _) = chapter_data();
    let big = Tensor::from_fn([1, 1, 60, 60], |i| x.at(&[0, 0, i[2] % 6, i[3] % 8])).unwrap();
    let init = Conv2d::new(1, 1, (1, 2), false, Conv2dOptions::new(), 0).unwrap();
    let y = Tensor::from_fn([1, 1, 60, 59], |i| {
        big.at(&[0, 0, i[2], i[3]]) - big.at(&[0, 0, i[2], i[3] + 1])
    })
    .unwrap();
    let mut t = Trainer::new(ctx(), &init, &big, &y, Sgd::new(1e-3)).unwrap();
    assert!(
        !t.fused(),
        "3,540 outputs are past the one-dispatch step's 2,048"
    );
    let (cpu_layer, cpu_losses) = train_cpu(&init, &big, &y, Sgd::new(1e-3), 3).unwrap();
    for c in cpu_losses {
        let l = f64::from(t.step(true).unwrap().unwrap());
        assert!((l - c).abs() <= 1e-4 * (1.0 + c), "{l} vs {c}");
    }
    for (a, b) in t
        .layer()
        .unwrap()
        .weight()
        .data()
        .iter()
        .zip(cpu_layer.weight().data())
    {
        assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn unread_steps_gather_and_all_of_them_run() {
    // more unread steps than a trainer gathers before it submits, then the layer
    let (x, y) = chapter_data();
    let init = Conv2d::new(1, 1, (1, 2), false, Conv2dOptions::new(), 3).unwrap();
    let steps = 2 * wgpu_conv::MAX_PENDING_STEPS + 5;
    let sgd = Sgd::new(1e-2).momentum(0.5);
    for algorithm in [Algorithm::Auto, Algorithm::Direct] {
        let mut t = Trainer::new_with(ctx(), &init, &x, &y, sgd, algorithm).unwrap();
        for _ in 0..steps {
            assert_eq!(t.step(false).unwrap(), None);
        }
        let gpu = t.layer().unwrap();
        let (cpu_layer, _) = train_cpu(&init, &x, &y, sgd, steps).unwrap();
        for (a, b) in gpu.weight().data().iter().zip(cpu_layer.weight().data()) {
            assert!(
                (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                "{algorithm:?}: {a} vs {b}"
            );
        }
        // and one more read step sees the loss of the layer after all of them
        let l = t.step(true).unwrap().unwrap();
        let (_, losses) = train_cpu(&init, &x, &y, sgd, steps + 1).unwrap();
        let c = losses[steps];
        assert!((f64::from(l) - c).abs() <= 1e-4 * (1.0 + c), "{l} vs {c}");
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn kept_losses_are_every_steps_loss_read_at_once() {
    // more steps than the log's first size (it grows while steps are recorded), read in two
    // parts, against the CPU reference's loss of every step; both step kinds
    let (x, y) = chapter_data();
    let init = Conv2d::new(1, 1, (1, 2), false, Conv2dOptions::new(), 5).unwrap();
    let sgd = Sgd::new(1e-2).momentum(0.5);
    let (first, second) = (3 * wgpu_conv::MAX_PENDING_STEPS + 7, 11);
    let (_, cpu_losses) = train_cpu(&init, &x, &y, sgd, first + second).unwrap();
    for algorithm in [Algorithm::Auto, Algorithm::Direct] {
        let mut t = Trainer::new_with(ctx(), &init, &x, &y, sgd, algorithm).unwrap();
        assert!(
            t.losses().is_err(),
            "{algorithm:?}: losses without keep_losses is an error"
        );
        t.keep_losses().unwrap();
        assert_eq!(t.losses().unwrap(), Vec::<f32>::new(), "no step yet");
        for _ in 0..first {
            t.step(false).unwrap();
        }
        let mut got = t.losses().unwrap();
        assert_eq!(got.len(), first, "{algorithm:?}: one loss per step");
        for i in 0..second {
            // a read step in between is logged as well
            t.step(i == 4).unwrap();
        }
        got.extend(t.losses().unwrap());
        assert_eq!(got.len(), first + second);
        for (i, (&g, &c)) in got.iter().zip(&cpu_losses).enumerate() {
            assert!(
                (f64::from(g) - c).abs() <= 1e-4 * (1.0 + c),
                "{algorithm:?} step {i}: {g} vs {c}"
            );
        }
        assert!(t.losses().unwrap().is_empty(), "a read empties the log");
    }
}
