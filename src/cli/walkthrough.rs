//! The "Convolutions for Images" chapter, computed on the GPU, each result beside what the
//! chapter (or the CPU reference) expects.

use anyhow::{bail, Result};
use wgpu_conv::{
    cpu, geometry, train_cpu, Conv2d, Conv2dOptions, ConvMode, GpuContext, Sequential, Sgd, Tensor,
    Trainer,
};

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
}

/// Runs the walkthrough; an error if any result disagrees with its expected value.
pub fn run(ctx: &GpuContext) -> Result<()> {
    let mut r = Report {
        checks: 0,
        failures: Vec::new(),
    };
    println!("wgpu-conv walkthrough: \"Convolutions for Images\" (Dive into Deep Learning)");
    println!("adapter: {}\n", ctx.describe());

    // 1. corr2d
    println!("1. Cross-correlation of the figure's 3x3 input with its 2x2 kernel (corr2d)");
    let x = Tensor::from_fn([3, 3], |i| (i[0] * 3 + i[1]) as f32);
    let k = Tensor::from_fn([2, 2], |i| (i[0] * 2 + i[1]) as f32);
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

    println!("\n4. The transposed image: the horizontal kernel sees no vertical edges");
    let yt = ctx.corr2d(&img.transpose2()?, &edge)?;
    show("corr2d(X.T, K)", &yt);
    println!("   expected all zeros (8 x 5)");
    r.check(
        "zeros on the transposed image",
        yt.shape() == [8, 5] && yt.data().iter().all(|&v| v == 0.0),
    );

    // 5. Strict convolution
    println!("\n5. Strict convolution = cross-correlation with the kernel flipped both ways");
    let kr = Tensor::from_rows(&[[1.0, 2.0], [-3.0, 0.5]]);
    let conv = ctx.conv2d(
        &x,
        &kr,
        None,
        &Conv2dOptions::new().mode(ConvMode::Convolution),
    )?;
    let flipped = Tensor::from_fn([2, 2], |i| kr.at(&[1 - i[0], 1 - i[1]]));
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
    let xin = Tensor::from_fn([1, 1, 3, 3], |i| (i[2] * 3 + i[3]) as f32);
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

    println!();
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
