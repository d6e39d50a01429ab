//! Training on the GPU: the chapter's kernel learning, and agreement with the CPU-reference
//! training (same seed, same steps).

mod common;

use common::{ctx, Rng};
use wgpu_conv::{cpu, train_cpu, Conv2d, Conv2dOptions, PaddingMode, Sgd, Tensor, Trainer};

fn chapter_data() -> (Tensor, Tensor) {
    let x = Tensor::from_fn(
        [1, 1, 6, 8],
        |i| if (2..6).contains(&i[3]) { 0.0 } else { 1.0 },
    );
    // Y = corr2d(X, [[1, -1]]), written out from the chapter's definition on the CPU
    let y = Tensor::from_fn([1, 1, 6, 7], |i| {
        x.at(&[0, 0, i[2], i[3]]) - x.at(&[0, 0, i[2], i[3] + 1])
    });
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
