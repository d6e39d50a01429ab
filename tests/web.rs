//! The library in a browser: WebGPU in headless Chromium (its CPU adapter, SwiftShader), through
//! wasm-bindgen-test (`scripts/web.sh test`). Only the async API exists there. The chapter's
//! cases, a subset of the forward and backward table in both kernel families checked against
//! the CPU reference compiled to wasm, an exact long reduction, and the weight gradient's
//! determinism. Native builds compile this file to nothing.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use wgpu_conv::cpu::{self, compare};
use wgpu_conv::{
    kernel_names, plan_bias_grad, plan_forward, plan_input_grad, plan_weight_grad, train_cpu,
    Algorithm, Conv2d, Conv2dOptions, ConvMode, Family, GpuContext, PaddingMode, Sgd, Tensor,
    Trainer, Wanted,
};

wasm_bindgen_test_configure!(run_in_browser);

thread_local! {
    /// One context for every test, never dropped while they run (as the native tests share
    /// one): its compiled kernels serve them all.
    static CONTEXT: std::cell::RefCell<Option<std::rc::Rc<GpuContext>>> =
        const { std::cell::RefCell::new(None) };
}

async fn context() -> std::rc::Rc<GpuContext> {
    if let Some(ctx) = CONTEXT.with(|c| c.borrow().clone()) {
        ctx.set_family(Family::Auto);
        return ctx;
    }
    let ctx = GpuContext::new_async()
        .await
        .expect("WebGPU in this browser (Chromium: --enable-unsafe-webgpu)");
    web_sys_log(&format!("wgpu-conv web tests on {}", ctx.describe()));
    // NaN in every scratch buffer before each plan: a kernel that reads scratch its plan did
    // not write fails here, whatever the buffer pool hands it
    ctx.set_scratch_poison(true);
    let ctx = std::rc::Rc::new(ctx);
    CONTEXT.with(|c| *c.borrow_mut() = Some(std::rc::Rc::clone(&ctx)));
    ctx
}

fn web_sys_log(line: &str) {
    wasm_bindgen_test::console_log!("{line}");
}

/// Deterministic data in [-1, 1) (a 64-bit LCG), or small integers in [-m, m].
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn tensor(&mut self, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::new(shape.to_vec(), (0..n).map(|_| self.next()).collect()).unwrap()
    }
    fn ints(&mut self, shape: &[usize], m: f32) -> Tensor {
        let n = shape.iter().product();
        let v = (0..n)
            .map(|_| (self.next() * (m + 0.5)).round().clamp(-m, m))
            .collect();
        Tensor::new(shape.to_vec(), v).unwrap()
    }
}

fn chapter_image() -> Tensor {
    Tensor::from_fn([6, 8], |i| if (2..6).contains(&i[1]) { 0.0 } else { 1.0 }).unwrap()
}

#[wasm_bindgen_test]
async fn corr2d_of_the_figure() {
    let ctx = context().await;
    let x = Tensor::from_rows(&[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]);
    let k = Tensor::from_rows(&[[0.0, 1.0], [2.0, 3.0]]);
    let y = ctx.corr2d_async(&x, &k).await.unwrap();
    assert_eq!(y.shape(), &[2, 2]);
    assert_eq!(y.data(), &[19.0, 25.0, 37.0, 43.0]);
}

#[wasm_bindgen_test]
async fn edge_detection_and_its_transpose() {
    let ctx = context().await;
    let x = chapter_image();
    let k = Tensor::from_rows(&[[1.0, -1.0]]);
    let y = ctx.corr2d_async(&x, &k).await.unwrap();
    for row in y.rows() {
        assert_eq!(row, vec![0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0]);
    }
    let yt = ctx
        .corr2d_async(&x.transpose2().unwrap(), &k)
        .await
        .unwrap();
    assert!(yt.data().iter().all(|&v| v == 0.0), "{:?}", yt.data());
}

#[wasm_bindgen_test]
async fn learning_the_kernel() {
    let ctx = context().await;
    let x = Tensor::new(vec![1, 1, 6, 8], chapter_image().into_data()).unwrap();
    let y = Tensor::from_fn([1, 1, 6, 7], |i| {
        x.at(&[0, 0, i[2], i[3]]) - x.at(&[0, 0, i[2], i[3] + 1])
    })
    .unwrap();
    let init = Conv2d::new(1, 1, (1, 2), false, Conv2dOptions::new(), 0).unwrap();
    let sgd = Sgd::new(3e-2);
    let mut trainer = Trainer::new(&ctx, &init, &x, &y, sgd).unwrap();
    let mut losses = Vec::new();
    for i in 0..10 {
        if let Some(l) = trainer.step_async((i + 1) % 2 == 0).await.unwrap() {
            losses.push(l);
        }
    }
    assert_eq!(losses.len(), 5);
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
    let k = trainer
        .layer_async()
        .await
        .unwrap()
        .weight()
        .data()
        .to_vec();
    assert!(
        (k[0] - 1.0).abs() < 0.1 && (k[1] + 1.0).abs() < 0.1,
        "{k:?}"
    );
    let (cpu_layer, _) = train_cpu(&init, &x, &y, sgd, 10).unwrap();
    for (g, c) in k.iter().zip(cpu_layer.weight().data()) {
        assert!(
            (g - c).abs() <= 1e-5,
            "GPU {k:?}, CPU {:?}",
            cpu_layer.weight().data()
        );
    }
}

#[wasm_bindgen_test]
async fn strict_convolution_is_the_flipped_cross_correlation() {
    let ctx = context().await;
    let mut rng = Lcg(3);
    let x = rng.tensor(&[7, 9]);
    let k = rng.tensor(&[2, 3]);
    let flipped = Tensor::from_fn([2, 3], |i| k.at(&[1 - i[0], 2 - i[1]])).unwrap();
    let strict = Conv2dOptions::new().mode(ConvMode::Convolution);
    let a = ctx.conv2d_async(&x, &k, None, &strict).await.unwrap();
    let b = ctx.corr2d_async(&x, &flipped).await.unwrap();
    assert_eq!(a.data(), b.data());
}

/// Forward and all gradients of a case, in the context's kernel family, against the CPU.
async fn check_case(
    ctx: &GpuContext,
    rng: &mut Lcg,
    xs: [usize; 4],
    ws: [usize; 4],
    bias: bool,
    opts: Conv2dOptions,
) {
    let g = opts.resolve(xs, ws).unwrap();
    let x = rng.tensor(&xs);
    let w = rng.tensor(&ws);
    let b = bias.then(|| rng.tensor(&[ws[0]]));
    let gy = rng.tensor(&g.output_shape());
    let what = format!("{xs:?} {ws:?} {opts:?} family {:?}", ctx.family());
    web_sys_log(&format!("case {what}"));

    let y = ctx.conv2d_async(&x, &w, b.as_ref(), &opts).await.unwrap();
    let reference = cpu::conv2d_forward(&g, x.data(), w.data(), b.as_ref().map(Tensor::data));
    let c = compare(y.data(), &reference);
    assert!(c.ok(), "forward {what}: {c}");
    web_sys_log("  forward ok");

    let grads = ctx
        .conv2d_backward_async(&x, &w, &gy, &opts, Wanted::ALL)
        .await
        .unwrap();
    let reference = cpu::conv2d_weight_grad(&g, x.data(), gy.data());
    let c = compare(grads.weight.unwrap().data(), &reference);
    assert!(c.ok(), "weight gradient {what}: {c}");
    let reference = cpu::conv2d_input_grad(&g, w.data(), gy.data());
    let c = compare(grads.input.unwrap().data(), &reference);
    assert!(c.ok(), "input gradient {what}: {c}");
    let reference = cpu::conv2d_bias_grad(&g, gy.data());
    let c = compare(grads.bias.unwrap().data(), &reference);
    assert!(c.ok(), "bias gradient {what}: {c}");
}

/// A layer to test: input shape, weight shape, bias or not, options.
type Case = ([usize; 4], [usize; 4], bool, Conv2dOptions);

/// A part of the native table: awkward sizes, every padding mode, stride, dilation, groups,
/// strict convolution, a 1x1 layer.
fn table_cases() -> [Case; 4] {
    [
        (
            [2, 3, 17, 19],
            [5, 3, 3, 3],
            true,
            Conv2dOptions::new().padding(1),
        ),
        (
            [1, 4, 13, 11],
            [6, 2, 3, 2],
            false,
            Conv2dOptions::new()
                .groups(2)
                .stride((2, 1))
                .padding((1, 1))
                .padding_mode(PaddingMode::Reflect),
        ),
        (
            [2, 2, 15, 16],
            [3, 2, 2, 3],
            true,
            Conv2dOptions::new()
                .dilation(2)
                .padding((2, 1))
                .padding_mode(PaddingMode::Circular)
                .mode(ConvMode::Convolution),
        ),
        ([1, 16, 30, 30], [32, 16, 1, 1], false, Conv2dOptions::new()),
    ]
}

/// One channel per group: a depthwise layer with replicate padding, and a single-channel 5x5
/// stride-2 layer.
fn one_channel_cases() -> [Case; 2] {
    [
        (
            [1, 8, 20, 18],
            [8, 1, 3, 3],
            true,
            Conv2dOptions::new()
                .groups(8)
                .padding(1)
                .padding_mode(PaddingMode::Replicate),
        ),
        (
            [1, 1, 64, 64],
            [1, 1, 5, 5],
            false,
            Conv2dOptions::new().stride(2).padding(2),
        ),
    ]
}

#[wasm_bindgen_test]
async fn the_table_in_both_kernel_families() {
    let ctx = context().await;
    let mut rng = Lcg(11);
    for family in [Family::Cpu, Family::Gpu] {
        ctx.set_family(family);
        for (xs, ws, bias, opts) in table_cases() {
            check_case(&ctx, &mut rng, xs, ws, bias, opts).await;
        }
    }
}

#[wasm_bindgen_test]
async fn a_long_reduction_is_exact_on_small_integers() {
    // the weight gradient of a 1x1 kernel over 1 x 300 x 300: each sum has 90,000 terms of at
    // most 16, so any correct order of f32 additions is exact and a sum cut short shows
    let ctx = context().await;
    let mut rng = Lcg(12);
    let xs = [1, 1, 300, 300];
    let x = rng.ints(&xs, 4.0);
    let w = Tensor::new(vec![1, 1, 1, 1], vec![1.0]).unwrap();
    let gy = rng.ints(&xs, 4.0);
    let opts = Conv2dOptions::new();
    let g = opts.resolve(xs, [1, 1, 1, 1]).unwrap();
    let reference = cpu::conv2d_weight_grad(&g, x.data(), gy.data());
    for family in [Family::Cpu, Family::Gpu] {
        ctx.set_family(family);
        let wanted = Wanted {
            weight: true,
            input: false,
            bias: true,
        };
        let grads = ctx
            .conv2d_backward_async(&x, &w, &gy, &opts, wanted)
            .await
            .unwrap();
        let got = f64::from(grads.weight.unwrap().data()[0]);
        assert_eq!(
            got, reference.values[0],
            "weight gradient, family {family:?}"
        );
        let bias = cpu::conv2d_bias_grad(&g, gy.data());
        let got = f64::from(grads.bias.unwrap().data()[0]);
        assert_eq!(got, bias.values[0], "bias gradient, family {family:?}");
    }
}

#[wasm_bindgen_test]
async fn the_weight_gradient_is_deterministic() {
    let ctx = context().await;
    let mut rng = Lcg(13);
    let (xs, ws) = ([2, 16, 28, 28], [16, 16, 3, 3]);
    let opts = Conv2dOptions::new().padding(1);
    let x = rng.tensor(&xs);
    let w = rng.tensor(&ws);
    let g = opts.resolve(xs, ws).unwrap();
    let gy = rng.tensor(&g.output_shape());
    let wanted = Wanted {
        weight: true,
        input: false,
        bias: false,
    };
    for family in [Family::Cpu, Family::Gpu] {
        ctx.set_family(family);
        let a = ctx.conv2d_backward_async(&x, &w, &gy, &opts, wanted);
        let a = a.await.unwrap().weight.unwrap();
        let b = ctx.conv2d_backward_async(&x, &w, &gy, &opts, wanted);
        let b = b.await.unwrap().weight.unwrap();
        let bits = |t: &Tensor| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a), bits(&b), "family {family:?}");
    }
}

/// The kernels for one channel per group (planes, rows) in both families: a depthwise layer with
/// replicate padding and a single-channel 5x5 stride-2 layer. On SwiftShader these once took
/// minutes to compile and lost the device (see `pad_source` in shaders/conv2d_common.wgsl): a
/// slow compile shows here as the runner's time-out.
#[wasm_bindgen_test]
async fn one_channel_per_group_in_both_kernel_families() {
    let ctx = context().await;
    let mut rng = Lcg(14);
    for family in [Family::Cpu, Family::Gpu] {
        ctx.set_family(family);
        for (xs, ws, bias, opts) in one_channel_cases() {
            check_case(&ctx, &mut rng, xs, ws, bias, opts).await;
        }
    }
}

/// Forward and all gradients of a case with `algorithm` asked for (recorded into one encoder,
/// one submission), against the CPU; returns the kernels their plans ran.
async fn check_with(
    ctx: &GpuContext,
    rng: &mut Lcg,
    (xs, ws, bias, opts): Case,
    algorithm: Algorithm,
) -> Vec<&'static str> {
    let g = opts.resolve(xs, ws).unwrap();
    let profile = ctx.profile();
    let plans = [
        plan_forward(&g, bias, &profile, algorithm).unwrap(),
        plan_weight_grad(&g, &profile, algorithm).unwrap(),
        plan_input_grad(&g, &profile, algorithm).unwrap(),
        plan_bias_grad(&g, &profile).unwrap(),
    ];
    let kernels: Vec<_> = plans.iter().flat_map(|p| p.kernels()).collect();
    let what = format!("{xs:?} {ws:?} {opts:?} {algorithm:?}: {kernels:?}");
    web_sys_log(&format!("case {what}"));

    let x = rng.tensor(&xs);
    let w = rng.tensor(&ws);
    let b = bias.then(|| rng.tensor(&[ws[0]]));
    let gy = rng.tensor(&g.output_shape());
    let up = |t: &Tensor| ctx.upload(t).unwrap();
    let (x_d, w_d, gy_d) = (up(&x), up(&w), up(&gy));
    let b_d = b.as_ref().map(up);
    let y_d = ctx.empty(&g.output_shape(), "y").unwrap();
    let gw_d = ctx.empty(&ws, "grad_weight").unwrap();
    let gx_d = ctx.empty(&xs, "grad_input").unwrap();
    let gb_d = ctx.empty(&[ws[0]], "grad_bias").unwrap();
    let mut encoder = ctx.encoder("every kernel");
    ctx.record_forward_with(&mut encoder, &g, &x_d, &w_d, b_d.as_ref(), &y_d, algorithm)
        .unwrap();
    ctx.record_backward_with(
        &mut encoder,
        &g,
        &x_d,
        &w_d,
        &gy_d,
        Some(&gw_d),
        Some(&gx_d),
        Some(&gb_d),
        algorithm,
    )
    .unwrap();
    ctx.queue().submit([encoder.finish()]);
    let got = ctx
        .download_async(&[&y_d, &gw_d, &gx_d, &gb_d])
        .await
        .unwrap();
    let references = [
        cpu::conv2d_forward(&g, x.data(), w.data(), b.as_ref().map(Tensor::data)),
        cpu::conv2d_weight_grad(&g, x.data(), gy.data()),
        cpu::conv2d_input_grad(&g, w.data(), gy.data()),
        cpu::conv2d_bias_grad(&g, gy.data()),
    ];
    for (name, (t, reference)) in [
        "forward",
        "weight gradient",
        "input gradient",
        "bias gradient",
    ]
    .iter()
    .zip(got.iter().zip(&references))
    {
        let c = compare(t.data(), reference);
        assert!(c.ok(), "{name} {what}: {c}");
    }
    kernels
}

/// Every kernel of the library runs in the browser: the table's kinds of layer with each
/// algorithm asked for (each result against the CPU), and training by the fused step and by
/// separate operations; the kernels that ran (from the plans, and the trainer's mode) must be
/// all of `kernel_names()`, so a kernel added later without a case here fails this test.
#[wasm_bindgen_test]
async fn every_kernel_runs_in_the_browser() {
    let ctx = context().await;
    let mut rng = Lcg(15);
    // a filter bank on one channel (zero padding, rows of whole vec4s), besides the others
    let bank = (
        [1, 1, 24, 32],
        [2, 1, 3, 3],
        false,
        Conv2dOptions::new().padding(1),
    );
    // a ResNet downsampling shortcut (1x1, stride 2, more channels than the phase kernel
    // takes): its input gradient runs the GEMM core per phase, and the three phases no tap
    // reaches are zeroed
    let shortcut = (
        [1, 8, 7, 9],
        [4, 8, 1, 1],
        false,
        Conv2dOptions::new().stride(2),
    );
    let cases: Vec<Case> = table_cases()
        .into_iter()
        .chain(one_channel_cases())
        .chain([bank, shortcut])
        .collect();
    let mut ran = std::collections::BTreeSet::new();
    for family in [Family::Cpu, Family::Gpu] {
        ctx.set_family(family);
        for &case in &cases {
            for algorithm in [Algorithm::Auto].into_iter().chain(Algorithm::ALL) {
                ran.extend(check_with(&ctx, &mut rng, case, algorithm).await);
            }
        }
    }
    ctx.set_family(Family::Auto);
    // a device with 8 KiB of workgroup memory: the GPU family's older GEMM kernels (`mm`),
    // which the core (16 KiB) otherwise precedes
    ctx.set_workgroup_storage_limit(Some(8192));
    for &case in &cases {
        ran.extend(check_with(&ctx, &mut rng, case, Algorithm::Gpu).await);
    }
    ctx.set_workgroup_storage_limit(None);

    // training, a step as one kernel and as separate operations, against the CPU
    let x = rng.tensor(&[1, 1, 6, 8]);
    let target = rng.tensor(&[1, 1, 6, 7]);
    let init = Conv2d::new(1, 1, (1, 2), true, Conv2dOptions::new(), 5).unwrap();
    let sgd = Sgd::new(3e-2);
    let (cpu_layer, _) = train_cpu(&init, &x, &target, sgd, 4).unwrap();
    for algorithm in [Algorithm::Auto, Algorithm::Direct] {
        let mut trainer = Trainer::new_with(&ctx, &init, &x, &target, sgd, algorithm).unwrap();
        if trainer.fused() {
            ran.insert("train_step_small");
        } else {
            ran.extend(["mse_loss", "sgd_step"]);
        }
        for _ in 0..4 {
            trainer.step_async(false).await.unwrap();
        }
        let layer = trainer.layer_async().await.unwrap();
        for (g, c) in layer.weight().data().iter().zip(cpu_layer.weight().data()) {
            assert!((g - c).abs() <= 1e-5, "{algorithm:?}: GPU {g}, CPU {c}");
        }
    }

    web_sys_log(&format!("kernels that ran: {ran:?}"));
    let missing: Vec<_> = kernel_names()
        .into_iter()
        .filter(|k| !ran.contains(k))
        .collect();
    assert!(missing.is_empty(), "never ran in the browser: {missing:?}");
}
