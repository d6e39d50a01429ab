//! The "Convolutions for Images" chapter, computed on the GPU, each result beside what the
//! chapter (or the CPU reference) expects.

use std::path::Path;

use anyhow::{bail, Context, Result};
use wgpu_conv::{
    cpu, filters, geometry, receptive_field, train_cpu, Conv2d, Conv2dOptions, ConvMode,
    GpuContext, Sequential, Sgd, Tensor, Trainer, Wanted,
};

use super::images::upscale;
use wgpu_conv::images::Map;

struct Report {
    checks: usize,
    failures: Vec<String>,
}

impl Report {
    fn check(&mut self, what: &str, ok: bool) {
        self.checks += 1;
        println!("   -> {}: {what}", if ok { "ok" } else { "MISMATCH" });
        if !ok {
            self.failures.push(what.to_string());
        }
    }
}

fn show(name: &str, t: &Tensor) {
    let rows = t.rows();
    println!("   {name} {:?} =", t.shape());
    for r in rows {
        let cells: Vec<String> = r.iter().map(|v| format!("{v:>7.3}")).collect();
        println!("     [{}]", cells.join(" "));
    }
}

/// Element-wise `|a - b| <= tol`.
fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
}

/// The chapter's 6x8 image: ones, with columns 2..6 black (zero).
pub fn edge_image() -> Tensor {
    Tensor::from_fn([6, 8], |i| if (2..6).contains(&i[1]) { 0.0 } else { 1.0 })
        .expect("a 6x8 image")
}

/// Runs the walkthrough; an error if any result disagrees with its expected value.
pub fn run(ctx: &GpuContext, save: Option<&Path>) -> Result<()> {
    let mut saved = Vec::new();
    let mut keep = |name: &str, t: &Tensor, map: Map| -> Result<()> {
        if let Some(dir) = save {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let path = dir.join(name);
            super::images::save(&path, &upscale(t, 24)?, map)?;
            saved.push(path);
        }
        Ok(())
    };
    let mut r = Report {
        checks: 0,
        failures: Vec::new(),
    };
    println!("wgpu-conv walkthrough: \"Convolutions for Images\" (Dive into Deep Learning)");
    println!("adapter: {}\n", ctx.describe());

    // 1. corr2d
    println!("1. Cross-correlation of the figure's 3x3 input with its 2x2 kernel (corr2d)");
    let x = Tensor::from_fn([3, 3], |i| (i[0] * 3 + i[1]) as f32)?;
    let k = Tensor::from_fn([2, 2], |i| (i[0] * 2 + i[1]) as f32)?;
    let y = ctx.corr2d(&x, &k)?;
    show("X", &x);
    show("K", &k);
    show("corr2d(X, K)", &y);
    println!("   expected [[19, 25], [37, 43]]; output size (nh-kh+1) x (nw-kw+1) = 2 x 2");
    r.check(
        "corr2d of the figure",
        y.data() == [19.0, 25.0, 37.0, 43.0] && y.shape() == [2, 2],
    );

    // 2. The layer
    println!("\n2. A Conv2D layer: random weight (seed 0, uniform +-1/sqrt(fan_in)) and a scalar bias (zero)");
    let layer = Conv2d::new(1, 1, (2, 2), true, Conv2dOptions::new(), 0)?;
    let y = layer.forward(ctx, &x)?;
    show("weight", &layer.weight().clone().reshape(vec![2, 2])?);
    println!(
        "   bias = {:?}",
        layer.bias().map(|b| b.data().to_vec()).unwrap_or_default()
    );
    show("layer(X)", &y);
    let g = geometry(x.shape(), layer.weight().shape(), Some(1), layer.options())?;
    let reference = cpu::conv2d_forward(
        &g,
        x.data(),
        layer.weight().data(),
        layer.bias().map(Tensor::data),
    );
    let cmp = cpu::compare(y.data(), &reference);
    println!("   expected (CPU reference, f64): {:?}", reference.values);
    r.check(
        "layer output within the f32 error bound of the CPU reference",
        cmp.ok(),
    );

    // 3. Edge detection
    println!("\n3. Edge detection: the 6x8 image (columns 2..6 black) with K = [[1, -1]]");
    let img = edge_image();
    let edge = Tensor::from_rows(&[[1.0, -1.0]]);
    let y_edges = ctx.corr2d(&img, &edge)?;
    show("X", &img);
    show("Y = corr2d(X, K)", &y_edges);
    println!("   expected every row [0, 1, 0, 0, 0, -1, 0]: 1 at the white-to-black edge, -1 at black-to-white");
    let row = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0];
    r.check(
        "edges at columns 1 and 5",
        y_edges.rows().iter().all(|rw| rw == &row),
    );
    keep("edge_input.png", &img, Map::Clamp)?;
    keep("edge_map.png", &y_edges, Map::Signed)?;

    println!("\n4. The transposed image: the horizontal kernel sees no vertical edges");
    let yt = ctx.corr2d(&img.transpose2()?, &edge)?;
    show("corr2d(X.T, K)", &yt);
    println!("   expected all zeros (8 x 5)");
    r.check(
        "zeros on the transposed image",
        yt.shape() == [8, 5] && yt.data().iter().all(|&v| v == 0.0),
    );
    keep("edge_map_transposed.png", &yt, Map::Signed)?;

    // 5. Strict convolution
    println!("\n5. Strict convolution = cross-correlation with the kernel flipped both ways");
    let kr = Tensor::from_rows(&[[1.0, 2.0], [-3.0, 0.5]]);
    let conv = ctx.conv2d(
        &x,
        &kr,
        None,
        &Conv2dOptions::new().mode(ConvMode::Convolution),
    )?;
    let flipped = Tensor::from_fn([2, 2], |i| kr.at(&[1 - i[0], 1 - i[1]]))?;
    let corr = ctx.corr2d(&x, &flipped)?;
    show("K", &kr);
    show("convolution(X, K)", &conv);
    show("corr2d(X, flip(K))", &corr);
    r.check(
        "convolution equals cross-correlation with the flipped kernel",
        conv.data() == corr.data(),
    );

    // 6. Learning the kernel
    println!("\n6. Learning the kernel: 1->1 channel, (1, 2) kernel, no bias, squared error, lr 3e-2, 10 steps");
    let x4 = img.clone().reshape(vec![1, 1, 6, 8])?;
    let y4 = y_edges.clone().reshape(vec![1, 1, 6, 7])?;
    let sgd = Sgd::new(3e-2);
    let init = Conv2d::new(1, 1, (1, 2), false, Conv2dOptions::new(), 0)?;
    println!("   initial kernel {:?}", init.weight().data());
    let mut trainer = Trainer::new(ctx, &init, &x4, &y4, sgd)?;
    let t0 = std::time::Instant::now();
    let mut losses = Vec::new();
    for i in 0..10 {
        let read = (i + 1) % 2 == 0;
        if let Some(l) = trainer.step(read)? {
            println!("   epoch {}, loss {l:.3}", i + 1);
            losses.push(l);
        }
    }
    let learned = trainer.layer()?;
    let took = t0.elapsed();
    let kl = learned.weight().data().to_vec();
    println!("   learned kernel [{:.4}, {:.4}]   expected close to [1, -1]   ({:.1} ms for 10 steps on the GPU)", kl[0], kl[1], took.as_secs_f64() * 1e3);
    r.check("the loss falls", losses.windows(2).all(|w| w[1] < w[0]));
    r.check(
        "learned kernel within 0.1 of [1, -1]",
        close(&kl, &[1.0, -1.0], 0.1),
    );
    let (cpu_layer, _) = train_cpu(&init, &x4, &y4, sgd, 10)?;
    println!(
        "   CPU reference training from the same start: {:?}",
        cpu_layer.weight().data()
    );
    r.check(
        "GPU training matches the CPU reference within 1e-4",
        close(&kl, cpu_layer.weight().data(), 1e-4),
    );

    println!("\n7. The same training under strict convolution learns the flipped kernel");
    let conv_opts = Conv2dOptions::new().mode(ConvMode::Convolution);
    let w0 = init.weight().data();
    let init_conv = Conv2d::from_weight(
        Tensor::new(vec![1, 1, 1, 2], vec![w0[1], w0[0]])?,
        None,
        conv_opts,
    )?;
    let mut trainer = Trainer::new(ctx, &init_conv, &x4, &y4, sgd)?;
    for _ in 0..10 {
        trainer.step(false)?;
    }
    let kc = trainer.layer()?.weight().data().to_vec();
    println!(
        "   learned (convolution)       [{:.4}, {:.4}]",
        kc[0], kc[1]
    );
    println!(
        "   flip of the learned (cross-correlation) kernel [{:.4}, {:.4}]",
        kl[1], kl[0]
    );
    r.check(
        "convolution kernel is the flip of the cross-correlation kernel",
        close(&kc, &[kl[1], kl[0]], 1e-5),
    );

    // 8. Receptive field
    println!("\n8. Feature maps and receptive fields: two stacked 2x2 layers on a 3x3 input");
    let l1 = Conv2d::from_weight(
        Tensor::from_rows(&[[0.5, 1.0], [1.5, 2.0]]),
        None,
        Conv2dOptions::new(),
    )?;
    let l2 = Conv2d::from_weight(
        Tensor::from_rows(&[[1.0, 0.25], [0.75, 0.5]]),
        None,
        Conv2dOptions::new(),
    )?;
    let stack = Sequential::new(vec![l1, l2]);
    let xin = Tensor::from_fn([1, 1, 3, 3], |i| (i[2] * 3 + i[3]) as f32)?;
    let out = stack.forward(ctx, &xin)?;
    let grads = stack.backward(ctx, &xin, &Tensor::new(vec![1, 1, 1, 1], vec![1.0])?)?;
    println!("   output {:?} = {:?}", out.shape(), out.data());
    show(
        "d output / d input",
        &grads.input.clone().reshape(vec![3, 3])?,
    );
    let nonzero = grads.input.data().iter().filter(|&&v| v != 0.0).count();
    println!("   {nonzero} of 9 inputs have a non-zero gradient: the receptive field is 3x3");
    r.check("two stacked 2x2 layers see all 9 inputs", nonzero == 9);

    exercises(ctx, &mut r, &mut keep)?;

    println!();
    if !saved.is_empty() {
        println!(
            "pictures written: {}",
            saved
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if r.failures.is_empty() {
        println!("all {} checks passed on {}", r.checks, ctx.describe());
        Ok(())
    } else {
        bail!(
            "{} check(s) failed: {}",
            r.failures.len(),
            r.failures.join("; ")
        )
    }
}

/// The chapter's exercises.
fn exercises(
    ctx: &GpuContext,
    r: &mut Report,
    keep: &mut impl FnMut(&str, &Tensor, Map) -> Result<()>,
) -> Result<()> {
    println!("\nExercises");
    // Diagonal edges
    println!(
        "\n9. An image with a diagonal edge (ones on and below the diagonal) and K = [[1, -1]]"
    );
    let d = filters::diagonal_image(6)?;
    let k = filters::edge();
    let kt = filters::edge_t();
    show("X", &d);
    let y = ctx.corr2d(&d, &k)?;
    show(
        "corr2d(X, K): +1 on the diagonal, where a row steps from 1 to 0",
        &y,
    );
    r.check(
        "diagonal edge found on the diagonal",
        (0..6).all(|i| (0..5).all(|j| y.at(&[i, j]) == if j == i { 1.0 } else { 0.0 })),
    );
    let y_xt = ctx.corr2d(&d.transpose2()?, &k)?;
    show(
        "corr2d(X.T, K): -1 just below the diagonal (the edge runs the other way)",
        &y_xt,
    );
    r.check(
        "transposed image: -1 below the diagonal",
        (0..6).all(|i| (0..5).all(|j| y_xt.at(&[i, j]) == if j + 1 == i { -1.0 } else { 0.0 })),
    );
    let y_kt = ctx.corr2d(&d, &kt)?;
    show(
        "corr2d(X, K.T): -1 just above the diagonal (vertical differences)",
        &y_kt,
    );
    r.check(
        "transposed kernel: -1 above the diagonal",
        (0..5).all(|i| (0..6).all(|j| y_kt.at(&[i, j]) == if j == i + 1 { -1.0 } else { 0.0 })),
    );
    r.check(
        "corr2d(X.T, K) = corr2d(X, K.T).T",
        y_xt.data() == y_kt.transpose2()?.data(),
    );
    keep("diagonal_input.png", &d, Map::Clamp)?;
    keep("diagonal_edges.png", &y, Map::Signed)?;

    // Hand-made kernels
    println!("\n10. Hand-made kernels on samples of polynomials (step h = 1)");
    let xs: Vec<f32> = (0..10).map(|i| i as f32).collect();
    let row = |f: &dyn Fn(f32) -> f32| {
        Tensor::new(
            vec![1, xs.len()],
            xs.iter().map(|&x| f(x)).collect::<Vec<_>>(),
        )
    };
    let sq = row(&|x| 3.0 * x * x)?;
    let d2 = ctx.corr2d(&sq, &filters::second_derivative())?;
    println!(
        "   second derivative [1, -2, 1] of 3x^2: {:?}  (expected 2*3 = 6 everywhere)",
        d2.data()
    );
    r.check(
        "second derivative of 3x^2 is 6",
        d2.data().iter().all(|&v| v == 6.0),
    );
    let ones = row(&|_| 2.0)?;
    let integ = ctx.corr2d(&ones, &filters::integral(4)?)?;
    println!(
        "   integral over 4 samples (kernel [1, 1, 1, 1]) of the constant 2: {:?}  (expected 8)",
        integ.data()
    );
    r.check(
        "integral of a constant over 4 samples",
        integ.data().iter().all(|&v| v == 8.0),
    );
    println!("   the smallest kernel for the d-th derivative has d+1 taps (binomial coefficients, alternating signs):");
    let mut all = true;
    for dd in 1..=4usize {
        let kd = filters::finite_difference(dd);
        let poly = row(&|x| x.powi(dd as i32))?;
        let out = ctx.corr2d(&poly, &kd)?;
        let fact: f32 = (1..=dd).map(|v| v as f32).product();
        let lower = row(&|x| if dd > 1 { x.powi(dd as i32 - 1) } else { 1.0 })?;
        let out_lower = ctx.corr2d(&lower, &kd)?;
        let ok =
            out.data().iter().all(|&v| v == fact) && out_lower.data().iter().all(|&v| v == 0.0);
        all &= ok && kd.len() == dd + 1;
        println!(
            "     d = {dd}: size {}, kernel {:?}; on x^{dd}: {} (expected d! = {fact}); on x^{}: 0",
            kd.len(),
            kd.data(),
            out.data()[0],
            dd - 1
        );
    }
    r.check(
        "d-th differences: d! on x^d, 0 on x^(d-1), for d = 1..4",
        all,
    );

    // Cross-correlation as a matrix multiplication
    println!("\n11. Cross-correlation as a matrix multiplication");
    let x = Tensor::from_fn([3, 3], |i| (i[0] * 3 + i[1]) as f32)?;
    let kf = Tensor::from_fn([2, 2], |i| (i[0] * 2 + i[1]) as f32)?;
    let m = filters::corr2d_matrix(&kf, 3, 3)?;
    show(
        "M (4 x 9): row i*OW+j holds K at output (i, j)'s window",
        &m,
    );
    // M vec(X) on the GPU: a 1x1 convolution with M as a (4, 9, 1, 1) weight on X as 9 channels.
    let mv = ctx.conv2d(
        &x.clone().reshape(vec![1, 9, 1, 1])?,
        &m.clone().reshape(vec![4, 9, 1, 1])?,
        None,
        &Conv2dOptions::new(),
    )?;
    println!(
        "   M vec(X) = {:?}; corr2d(X, K) = [19, 25, 37, 43]",
        mv.data()
    );
    r.check(
        "M vec(X) equals corr2d(X, K)",
        mv.data() == ctx.corr2d(&x, &kf)?.data(),
    );

    // Gradient check
    println!(
        "\n12. Our hand-written backward against finite differences (L = sum(conv(x, w) * g))"
    );
    let layer = Conv2d::new(
        2,
        2,
        (2, 3),
        true,
        Conv2dOptions::new().padding(1).stride((1, 2)),
        7,
    )?;
    let xg = Tensor::from_fn([1, 2, 4, 5], |i| {
        ((i[1] * 20 + i[2] * 5 + i[3]) % 7) as f32 / 7.0 - 0.5
    })?;
    let y0 = layer.forward(ctx, &xg)?;
    let gy = Tensor::from_fn(y0.shape().to_vec(), |i| {
        ((i[1] + 2 * i[2] + 3 * i[3]) % 5) as f32 / 5.0 - 0.4
    })?;
    let grads = ctx.conv2d_backward(&xg, layer.weight(), &gy, layer.options(), Wanted::ALL)?;
    let gw = grads
        .weight
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the backward pass returned no weight gradient"))?;
    let loss = |w: &Tensor| -> Result<f64> {
        let y = ctx.conv2d(&xg, w, layer.bias(), layer.options())?;
        Ok(y.data()
            .iter()
            .zip(gy.data())
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum())
    };
    let h = 0.25f32;
    let mut worst = 0f64;
    for i in 0..layer.weight().len() {
        let mut wp = layer.weight().clone();
        wp.data_mut()[i] += h;
        let mut wm = layer.weight().clone();
        wm.data_mut()[i] -= h;
        let fd = (loss(&wp)? - loss(&wm)?) / (2.0 * h as f64);
        worst = worst.max((fd - gw.data()[i] as f64).abs());
        if i < 3 {
            println!(
                "   dL/dw[{i}]: backward {:.6}, central difference {fd:.6}",
                gw.data()[i]
            );
        }
    }
    println!(
        "   largest difference over all {} weights: {worst:.2e}",
        layer.weight().len()
    );
    r.check(
        "backward agrees with finite differences (within 1e-4)",
        worst <= 1e-4,
    );

    // Receptive fields
    println!("\n13. Receptive fields as a library call, checked against backpropagation");
    let stack = [
        ((2, 2), Conv2dOptions::new()),
        ((3, 3), Conv2dOptions::new().stride(2)),
        ((2, 2), Conv2dOptions::new().dilation(2)),
    ];
    let (fh, fw) = receptive_field(&stack)?;
    println!(
        "   2x2, then 3x3 stride 2, then 2x2 dilation 2: field {}x{}, jump {}, start {}",
        fh.size, fw.size, fh.jump, fh.start
    );
    let layers: Vec<Conv2d> = stack
        .iter()
        .map(|((kh, kw), o)| {
            Conv2d::from_weight(Tensor::from_fn([1, 1, *kh, *kw], |_| 1.0)?, None, *o)
        })
        .collect::<Result<_, _>>()?;
    let seq = Sequential::new(layers);
    let xin = Tensor::from_fn([1, 1, 16, 16], |_| 1.0)?;
    let out = seq.forward(ctx, &xin)?;
    let (oh, ow) = (out.shape()[2], out.shape()[3]);
    let (i, j) = (oh / 2, ow / 2);
    let g = Tensor::from_fn(out.shape().to_vec(), |ix| {
        if ix[2] == i && ix[3] == j {
            1.0
        } else {
            0.0
        }
    })?;
    let back = seq.backward(ctx, &xin, &g)?;
    let seen: Vec<(usize, usize)> = (0..16 * 16)
        .filter(|&p| back.input.data()[p] != 0.0)
        .map(|p| (p / 16, p % 16))
        .collect();
    let (rr, rc) = (fh.range(i, 16), fw.range(j, 16));
    let expected: Vec<(usize, usize)> = rr
        .clone()
        .flat_map(|a| rc.clone().map(move |b| (a, b)))
        .collect();
    println!("   output ({i}, {j}) sees rows {rr:?} and columns {rc:?}: {} inputs; backpropagation reaches {}", expected.len(), seen.len());
    r.check(
        "receptive field equals the inputs reached by backpropagation",
        seen == expected,
    );
    Ok(())
}
