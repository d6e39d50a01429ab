//! Misuse, tried as a hostile user would: every case is a right answer or a typed error, never
//! a wrong number, a panic or a hang. Resident layers under early reads, dropped encoders and
//! threads; tensors of another context; aliased operands; validation errors; operands of a few
//! bytes under every algorithm; the autotuning cache file; sizes past every limit; timing from
//! threads; non-finite hyper-parameters; and the command line's smaller cases.
//!
//! Its own test binary: it points `WGPU_CONV_CACHE_DIR` at a directory of its own (once, before
//! any context exists), and its cache tests take turns on that file.

mod common;

use std::process::Command;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use common::{assert_within, Rng};
use wgpu_conv::{
    cpu, Algorithm, Conv2d, Conv2dGeometry, Conv2dOptions, Error, GpuContext, GpuTensor, Limit, Op,
    PaddingMode, Sgd, Tensor, Trainer,
};

/// The cache directory of this binary, set before anything else runs.
fn cache_dir() -> std::path::PathBuf {
    static SET: Once = Once::new();
    let dir = std::env::temp_dir().join(format!("wgpu-conv-misuse-{}", std::process::id()));
    SET.call_once(|| {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // every test calls this first, so no thread is in a driver yet
        std::env::set_var("WGPU_CONV_CACHE_DIR", &dir);
    });
    dir
}

/// The context the tests share.
fn ctx() -> &'static GpuContext {
    cache_dir();
    common::ctx()
}

/// A context of its own (fresh autotuning table, its own device).
fn new_context() -> GpuContext {
    cache_dir();
    GpuContext::new().expect("a GPU adapter (install mesa-vulkan-drivers)")
}

/// The cache tests take turns: they replace the one file.
static CACHE_TURN: Mutex<()> = Mutex::new(());

fn cache_turn() -> std::sync::MutexGuard<'static, ()> {
    CACHE_TURN.lock().unwrap_or_else(|e| e.into_inner())
}

fn random(rng: &mut Rng, shape: &[usize]) -> Tensor {
    Tensor::new(shape.to_vec(), rng.vec(shape.iter().product())).unwrap()
}

/// The five kinds of layer the resident bug showed on: many channels (GEMM), depthwise, one
/// plane 5x5, reflect + stride 2 + dilation 2, circular + groups 3.
fn five_layers() -> Vec<(Conv2d, [usize; 4])> {
    let o = Conv2dOptions::new;
    vec![
        (
            Conv2d::new(8, 8, 3, true, o().padding(1), 1).unwrap(),
            [2, 8, 11, 12],
        ),
        (
            Conv2d::new(6, 6, 3, true, o().padding(1).groups(6), 2).unwrap(),
            [1, 6, 13, 9],
        ),
        (
            Conv2d::new(1, 1, 5, false, o().padding(2), 3).unwrap(),
            [1, 1, 24, 20],
        ),
        (
            Conv2d::new(
                2,
                4,
                3,
                true,
                o().padding(2)
                    .stride(2)
                    .dilation(2)
                    .padding_mode(PaddingMode::Reflect),
                4,
            )
            .unwrap(),
            [1, 2, 15, 14],
        ),
        (
            Conv2d::new(
                6,
                6,
                3,
                true,
                o().padding(1).groups(3).padding_mode(PaddingMode::Circular),
                5,
            )
            .unwrap(),
            [2, 6, 7, 10],
        ),
    ]
}

/// The CPU twin of `layer` on `x`.
fn reference(layer: &Conv2d, x: &Tensor) -> cpu::Reference {
    let g = layer.geometry(x.shape()).unwrap();
    cpu::conv2d_forward(
        &g,
        x.data(),
        layer.weight().data(),
        layer.bias().map(Tensor::data),
    )
}

// ---- 1. resident state that matches what ran ----------------------------------------------

/// One of [`five_layers`] with its input (host and device), the CPU twin's answer and an
/// output tensor for `record_forward`.
struct LayerCase {
    layer: Conv2d,
    x: Tensor,
    want: cpu::Reference,
    xg: GpuTensor,
    yg: GpuTensor,
}

fn layer_cases(ctx: &GpuContext, seed: u64) -> Vec<LayerCase> {
    let mut rng = Rng::new(seed);
    five_layers()
        .into_iter()
        .map(|(layer, xs)| {
            let x = random(&mut rng, &xs);
            let want = reference(&layer, &x);
            let g = layer.geometry(&xs).unwrap();
            let xg = ctx.upload(&x).unwrap();
            let yg = ctx.empty(&g.output_shape(), "misuse: y").unwrap();
            LayerCase {
                layer,
                x,
                want,
                xg,
                yg,
            }
        })
        .collect()
}

/// `layer.forward_gpu` of `x`, read back.
fn forward_gpu_read(ctx: &GpuContext, layer: &Conv2d, x: &GpuTensor) -> Tensor {
    let y = layer.forward_gpu(ctx, x).unwrap();
    ctx.download(&[&y]).unwrap().remove(0)
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn a_layer_read_before_its_recorded_packing_ran_is_right() {
    let ctx = new_context();
    for (i, c) in layer_cases(&ctx, 1).iter().enumerate() {
        let mut enc = ctx.encoder("misuse: recorded first");
        c.layer
            .record_forward(&ctx, &mut enc, &c.xg, &c.yg)
            .unwrap();
        // before `enc` is submitted
        let early = c.layer.forward(&ctx, &c.x).unwrap();
        assert_within(
            early.data(),
            &c.want,
            &format!("layer {i}: forward before submit"),
        );
        let gpu = forward_gpu_read(&ctx, &c.layer, &c.xg);
        assert_within(
            gpu.data(),
            &c.want,
            &format!("layer {i}: forward_gpu before submit"),
        );
        ctx.submit_and_wait(enc).unwrap();
        let recorded = ctx.download(&[&c.yg]).unwrap().remove(0);
        assert_within(
            recorded.data(),
            &c.want,
            &format!("layer {i}: the recorded pass"),
        );
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn a_layer_whose_packing_encoder_was_dropped_is_right() {
    let ctx = new_context();
    for (i, c) in layer_cases(&ctx, 2).iter().enumerate() {
        {
            // an early `?` in the caller's code: the encoder never reaches the queue
            let mut enc = ctx.encoder("misuse: dropped");
            c.layer
                .record_forward(&ctx, &mut enc, &c.xg, &c.yg)
                .unwrap();
        }
        for round in 0..2 {
            let y = c.layer.forward(&ctx, &c.x).unwrap();
            assert_within(y.data(), &c.want, &format!("layer {i}: forward {round}"));
            let y = forward_gpu_read(&ctx, &c.layer, &c.xg);
            assert_within(
                y.data(),
                &c.want,
                &format!("layer {i}: forward_gpu {round}"),
            );
        }
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn a_layer_whose_packing_submission_failed_is_right() {
    // wgpu completes a submission that failed validation too (and runs its callbacks): the
    // packing it held never ran
    let ctx = new_context();
    let junk = ctx.empty(&[8], "misuse: junk").unwrap();
    for (i, c) in layer_cases(&ctx, 11).iter().enumerate() {
        let mut enc = ctx.encoder("misuse: failing");
        c.layer
            .record_forward(&ctx, &mut enc, &c.xg, &c.yg)
            .unwrap();
        enc.copy_buffer_to_buffer(junk.buffer(), 0, junk.buffer(), 0, 16);
        let r = ctx.submit_and_wait(enc);
        assert!(
            matches!(r, Err(Error::Validation { .. })),
            "layer {i}: {r:?}"
        );
        let y = c.layer.forward(&ctx, &c.x).unwrap();
        assert_within(y.data(), &c.want, &format!("layer {i}: forward after"));
        let y = forward_gpu_read(&ctx, &c.layer, &c.xg);
        assert_within(y.data(), &c.want, &format!("layer {i}: forward_gpu after"));
    }
}

/// How long the thread mix runs (`MISUSE_THREAD_SECONDS`, default 20).
fn mix_duration() -> Duration {
    let s = std::env::var("MISUSE_THREAD_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20u64);
    Duration::from_secs(s)
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn eight_threads_share_layers_over_many_shapes_without_a_wrong_result() {
    // 5 layers shared by 8 threads over 22 input shapes (more than the 8 plans a layer keeps,
    // so plans are evicted all along), through forward, forward_gpu and record_forward, each
    // result compared with the CPU twin
    let ctx = new_context();
    let layers: Vec<Conv2d> = five_layers().into_iter().map(|(l, _)| l).collect();
    let shapes: Vec<(usize, [usize; 4])> = (0..22)
        .map(|i| {
            let l = i % layers.len();
            let c = layers[l].weight().shape()[1] * layers[l].options().groups;
            (l, [1 + i % 2, c, 5 + i % 7, 6 + (i * 5) % 9])
        })
        .collect();
    let mut inputs = Vec::new();
    let mut rng = Rng::new(3);
    for (l, xs) in &shapes {
        let x = random(&mut rng, xs);
        let want = reference(&layers[*l], &x);
        inputs.push((*l, x, want));
    }
    let until = Instant::now() + mix_duration();
    let (calls, wrong) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let (ctx, layers, inputs) = (&ctx, &layers, &inputs);
                s.spawn(move || {
                    let (mut calls, mut wrong) = (0u64, Vec::new());
                    let mut k = t * 7;
                    while Instant::now() < until {
                        let (l, x, want) = &inputs[k % inputs.len()];
                        let layer = &layers[*l];
                        let got = match (k / inputs.len() + t) % 3 {
                            0 => layer.forward(ctx, x).unwrap(),
                            1 => {
                                let xg = ctx.upload(x).unwrap();
                                let y = layer.forward_gpu(ctx, &xg).unwrap();
                                ctx.download(&[&y]).unwrap().remove(0)
                            }
                            _ => {
                                let g = layer.geometry(x.shape()).unwrap();
                                let xg = ctx.upload(x).unwrap();
                                let y = ctx.empty(&g.output_shape(), "misuse: y").unwrap();
                                let mut enc = ctx.encoder("misuse: thread");
                                layer.record_forward(ctx, &mut enc, &xg, &y).unwrap();
                                ctx.submit_and_wait(enc).unwrap();
                                ctx.download(&[&y]).unwrap().remove(0)
                            }
                        };
                        let c = cpu::compare(got.data(), want);
                        if !c.ok() {
                            wrong.push(format!("thread {t}, input {:?}: {c}", x.shape()));
                        }
                        calls += 1;
                        k += 1;
                    }
                    (calls, wrong)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).fold(
            (0, Vec::new()),
            |(n, mut w), (c, ws)| {
                w.extend(ws);
                (n + c, w)
            },
        )
    });
    eprintln!("thread mix: {calls} calls, {} wrong", wrong.len());
    assert!(calls >= 8, "only {calls} calls ran");
    assert!(
        wrong.is_empty(),
        "{} of {calls} wrong: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn a_layer_moving_between_contexts_is_right_on_each() {
    let (a, b) = (new_context(), new_context());
    let mut rng = Rng::new(4);
    let (layer, xs) = five_layers().remove(0);
    let x = random(&mut rng, &xs);
    let want = reference(&layer, &x);
    for round in 0..3 {
        for (name, c) in [("a", &a), ("b", &b)] {
            let y = forward_gpu_read(c, &layer, &c.upload(&x).unwrap());
            assert_within(y.data(), &want, &format!("context {name}, round {round}"));
        }
    }
}

// ---- 2. tensors know their context --------------------------------------------------------

fn wrong_context(r: Result<impl std::fmt::Debug, Error>, operand: &str) {
    match r {
        Err(Error::WrongContext { operand: o }) => assert_eq!(o, operand),
        other => panic!("expected WrongContext {{ {operand} }}, got {other:?}"),
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn a_tensor_of_another_context_is_refused_by_every_call() {
    let (c1, c2) = (new_context(), new_context());
    let ones = Tensor::new(vec![1, 1, 2, 2], vec![7.0; 4]).unwrap();
    let mine = c1.upload(&ones).unwrap();
    let theirs = c2
        .upload(&Tensor::new(vec![1, 1, 2, 2], vec![3.0; 4]).unwrap())
        .unwrap();
    wrong_context(c1.download(&[&mine, &theirs]), "downloaded");
    wrong_context(
        pollster::block_on(c1.download_async(&[&theirs])),
        "downloaded",
    );

    let layer = Conv2d::from_weight(
        Tensor::new(vec![1, 1, 1, 1], vec![1.0]).unwrap(),
        None,
        Conv2dOptions::new(),
    )
    .unwrap();
    wrong_context(layer.forward_gpu(&c1, &theirs), "input");
    let mut enc = c1.encoder("misuse: contexts");
    wrong_context(
        layer.record_forward(&c1, &mut enc, &mine, &theirs),
        "output",
    );
    let g = layer.geometry(&[1, 1, 2, 2]).unwrap();
    let w1 = c1.upload(layer.weight()).unwrap();
    let w2 = c2.upload(layer.weight()).unwrap();
    let y1 = c1.empty(&[1, 1, 2, 2], "misuse: y").unwrap();
    wrong_context(
        c1.record_forward(&mut enc, &g, &mine, &w1, None, &theirs),
        "output",
    );
    wrong_context(
        c1.record_forward(&mut enc, &g, &theirs, &w1, None, &y1),
        "input",
    );
    wrong_context(
        c1.record_forward(&mut enc, &g, &mine, &w2, None, &y1),
        "weight",
    );
    wrong_context(
        c1.record_backward(&mut enc, &g, &mine, &w1, &theirs, None, Some(&y1), None),
        "grad_output",
    );
    wrong_context(
        c1.record_backward(&mut enc, &g, &mine, &w1, &y1, Some(&w2), None, None),
        "grad_weight",
    );
    c1.submit_and_wait(enc).unwrap();
    // nothing of either context was touched
    assert_eq!(c1.download(&[&mine]).unwrap()[0].data(), &[7.0; 4]);
    assert_eq!(c2.download(&[&theirs]).unwrap()[0].data(), &[3.0; 4]);
}

// ---- 3. aliasing ----------------------------------------------------------------------------

fn aliased(r: Result<(), Error>, written: &str, role: &str) {
    match r {
        Err(Error::Aliased {
            written: w,
            other: o,
        }) => {
            assert_eq!((w.as_str(), o.as_str()), (written, role))
        }
        other => panic!("expected Aliased {{ {written}, {role} }}, got {other:?}"),
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn aliased_operands_are_refused_and_name_both_roles() {
    let ctx = ctx();
    let mut rng = Rng::new(5);
    let opts = Conv2dOptions::new().padding(1);
    let g = opts.resolve([1, 2, 6, 6], [2, 2, 3, 3]).unwrap();
    let x = ctx.upload(&random(&mut rng, &[1, 2, 6, 6])).unwrap();
    let w = ctx.upload(&random(&mut rng, &[2, 2, 3, 3])).unwrap();
    let gy = ctx.upload(&random(&mut rng, &[1, 2, 6, 6])).unwrap();
    let b = ctx.upload(&random(&mut rng, &[2, 1, 1, 1])).unwrap();
    let gx = ctx.empty(&[1, 2, 6, 6], "misuse: gx").unwrap();
    let mut enc = ctx.encoder("misuse: aliasing");
    aliased(
        ctx.record_forward(&mut enc, &g, &x, &w, None, &x),
        "output",
        "input",
    );
    aliased(
        ctx.record_forward(&mut enc, &g, &x, &w, Some(&b), &b),
        "output",
        "bias",
    );
    aliased(
        ctx.record_forward(&mut enc, &g, &x, &w, None, &w),
        "output",
        "weight",
    );
    aliased(
        ctx.record_backward(&mut enc, &g, &x, &w, &gy, Some(&w), Some(&gx), None),
        "grad_weight",
        "weight",
    );
    aliased(
        ctx.record_backward(&mut enc, &g, &x, &w, &gy, None, Some(&gy), None),
        "grad_input",
        "grad_output",
    );
    aliased(
        ctx.record_backward(&mut enc, &g, &x, &w, &gy, None, Some(&gx), Some(&gx)),
        "grad_input",
        "grad_bias",
    );
    aliased(
        ctx.record_backward(&mut enc, &g, &x, &w, &gy, None, Some(&x), None),
        "grad_input",
        "input",
    );
    let layer = Conv2d::new(2, 2, 3, false, opts, 1).unwrap();
    aliased(
        layer.record_forward(ctx, &mut enc, &x, &x),
        "output",
        "input",
    );
    // nothing was recorded: the encoder still submits cleanly
    ctx.submit_and_wait(enc).unwrap();
}

// ---- 4. validation errors are typed, never panics -----------------------------------------

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn validation_errors_of_downloads_and_submissions_are_typed() {
    let ctx = new_context();
    let t = ctx
        .upload(&Tensor::new(vec![4], vec![1.0; 4]).unwrap())
        .unwrap();
    t.buffer().destroy();
    let r = ctx.download(&[&t]);
    assert!(
        matches!(r, Err(Error::Validation { .. })),
        "download: {r:?}"
    );
    let r = pollster::block_on(ctx.download_async(&[&t]));
    assert!(r.is_err(), "download_async of a destroyed buffer: {r:?}");

    // an encoder holding an invalid copy
    let a = ctx.empty(&[8], "misuse: a").unwrap();
    let mut enc = ctx.encoder("misuse: bad copy");
    enc.copy_buffer_to_buffer(a.buffer(), 0, a.buffer(), 0, 16);
    let r = ctx.submit_and_wait(enc);
    assert!(
        matches!(r, Err(Error::Validation { .. })),
        "submit_and_wait: {r:?}"
    );

    // an error the caller causes on the device outside any call is returned by the next call
    let _ = ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("misuse: mapped storage"),
        size: 16,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let r = ctx.download(&[&a]);
    assert!(
        matches!(r, Err(Error::Validation { .. })),
        "the escaped error: {r:?}"
    );
    // then the context works on
    let back = ctx.download(&[&a]).unwrap();
    assert_eq!(back[0].data(), &[0.0; 8]);
}

// ---- 5. small operands under every algorithm ----------------------------------------------

const ALGORITHMS: [Algorithm; 5] = [
    Algorithm::Auto,
    Algorithm::Direct,
    Algorithm::Tiled,
    Algorithm::Gemm,
    Algorithm::Gpu,
];

/// Tiny shapes: `(input, weight, options)`.
fn tiny_cases() -> Vec<([usize; 4], [usize; 4], Conv2dOptions)> {
    let o = Conv2dOptions::new;
    vec![
        ([1, 1, 1, 1], [1, 1, 1, 1], o()),
        ([1, 1, 3, 3], [1, 1, 3, 3], o()),
        ([1, 2, 1, 1], [2, 1, 1, 1], o().groups(2)),
        ([1, 1, 1, 3], [1, 1, 1, 1], o()),
        ([1, 1, 1, 2], [1, 1, 1, 2], o()),
        ([1, 1, 2, 1], [3, 1, 1, 1], o().padding(1)),
        (
            [2, 1, 1, 1],
            [1, 1, 1, 1],
            o().padding(1).padding_mode(PaddingMode::Replicate),
        ),
        ([1, 3, 2, 2], [3, 1, 2, 2], o().groups(3).stride(2)),
    ]
}

/// Every op of `g` under `algorithm` through `record_*` on exact-size buffers, checked
/// against the CPU twin.
fn sweep_one(
    ctx: &GpuContext,
    g: &Conv2dGeometry,
    algorithm: Algorithm,
    rng: &mut Rng,
    what: &str,
) {
    let x = rng.vec(g.input_shape().iter().product());
    let w = rng.vec(g.weight_shape().iter().product());
    let b = rng.vec(g.oc);
    let gy = rng.vec(g.output_shape().iter().product());
    let up = |shape: [usize; 4], d: &[f32]| {
        ctx.upload(&Tensor::new(shape.to_vec(), d.to_vec()).unwrap())
            .unwrap()
    };
    let (xg, wg, bg) = (
        up(g.input_shape(), &x),
        up(g.weight_shape(), &w),
        up([g.oc, 1, 1, 1], &b),
    );
    let gyg = up(g.output_shape(), &gy);
    let y = ctx.empty(&g.output_shape(), "tiny: y").unwrap();
    let yb = ctx.empty(&g.output_shape(), "tiny: y with bias").unwrap();
    let gw = ctx.empty(&g.weight_shape(), "tiny: gw").unwrap();
    let gx = ctx.empty(&g.input_shape(), "tiny: gx").unwrap();
    let gb = ctx.empty(&[g.oc, 1, 1, 1], "tiny: gb").unwrap();
    for t in [&xg, &wg, &bg, &gyg, &y, &gw, &gx, &gb] {
        // exact size (at least the one vec4 a kernel binds)
        let bytes = (t.len() as u64 * 4).max(16);
        assert_eq!(t.buffer().size(), bytes, "{what}: not an exact-size buffer");
    }
    let mut enc = ctx.encoder("tiny sweep");
    let r = ctx
        .record_forward_with(&mut enc, g, &xg, &wg, None, &y, algorithm)
        .and_then(|()| ctx.record_forward_with(&mut enc, g, &xg, &wg, Some(&bg), &yb, algorithm))
        .and_then(|()| {
            ctx.record_backward_with(
                &mut enc,
                g,
                &xg,
                &wg,
                &gyg,
                Some(&gw),
                Some(&gx),
                Some(&gb),
                algorithm,
            )
        })
        .and_then(|()| ctx.submit_and_wait(enc));
    r.unwrap_or_else(|e| panic!("{what}: {e}"));
    let got = ctx.download(&[&y, &yb, &gw, &gx, &gb]).unwrap();
    assert_within(
        got[0].data(),
        &cpu::conv2d_forward(g, &x, &w, None),
        &format!("{what}: forward"),
    );
    assert_within(
        got[1].data(),
        &cpu::conv2d_forward(g, &x, &w, Some(&b)),
        &format!("{what}: forward with bias"),
    );
    assert_within(
        got[2].data(),
        &cpu::conv2d_weight_grad(g, &x, &gy),
        &format!("{what}: weight_grad"),
    );
    assert_within(
        got[3].data(),
        &cpu::conv2d_input_grad(g, &w, &gy),
        &format!("{what}: input_grad"),
    );
    assert_within(
        got[4].data(),
        &cpu::conv2d_bias_grad(g, &gy),
        &format!("{what}: bias_grad"),
    );
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn tiny_operands_work_under_every_algorithm_and_op_on_exact_size_buffers() {
    let ctx = new_context();
    let mut rng = Rng::new(6);
    for (xs, ws, o) in tiny_cases() {
        let g = o.resolve(xs, ws).unwrap();
        for a in ALGORITHMS {
            sweep_one(&ctx, &g, a, &mut rng, &format!("x {xs:?} w {ws:?} {a:?}"));
        }
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn tiny_operands_work_under_the_autotuner() {
    let _turn = cache_turn();
    let ctx = new_context();
    ctx.set_autotune(true);
    let mut rng = Rng::new(7);
    for (xs, ws, o) in tiny_cases() {
        let g = o.resolve(xs, ws).unwrap();
        sweep_one(
            &ctx,
            &g,
            Algorithm::Auto,
            &mut rng,
            &format!("autotuned x {xs:?} w {ws:?}"),
        );
        // and the layer's own path (forward_gpu, record_forward)
        let layer = Conv2d::new(xs[1], ws[0], (ws[2], ws[3]), true, o, 3).unwrap();
        let x = random(&mut rng, &xs);
        let xg = ctx.upload(&x).unwrap();
        let y = layer.forward_gpu(&ctx, &xg).unwrap();
        let y = ctx.download(&[&y]).unwrap().remove(0);
        assert_within(
            y.data(),
            &reference(&layer, &x),
            &format!("autotuned layer x {xs:?}"),
        );
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn tiny_layers_train_under_every_algorithm() {
    let ctx = ctx();
    let mut rng = Rng::new(8);
    for (xs, ws, o) in tiny_cases() {
        let layer = Conv2d::new(xs[1], ws[0], (ws[2], ws[3]), true, o, 9).unwrap();
        let g = layer.geometry(&xs).unwrap();
        let x = random(&mut rng, &xs);
        let target = random(&mut rng, &g.output_shape());
        let sgd = Sgd::new(0.05).momentum(0.5);
        let (want, _) = wgpu_conv::train_cpu(&layer, &x, &target, sgd, 3).unwrap();
        for a in ALGORITHMS {
            let what = format!("x {xs:?} w {ws:?} {a:?}");
            let mut t = Trainer::new_with(ctx, &layer, &x, &target, sgd, a)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            for _ in 0..3 {
                t.step(false).unwrap_or_else(|e| panic!("{what}: {e}"));
            }
            let got = t.layer().unwrap();
            for (name, a, b) in [
                ("weight", got.weight().data(), want.weight().data()),
                (
                    "bias",
                    got.bias().unwrap().data(),
                    want.bias().unwrap().data(),
                ),
            ] {
                let worst = a
                    .iter()
                    .zip(b)
                    .map(|(p, q)| (p - q).abs())
                    .fold(0f32, f32::max);
                assert!(worst <= 1e-4, "{what}: {name} {a:?} vs the CPU's {b:?}");
            }
        }
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn a_wrapped_buffer_under_one_vec4_is_refused() {
    let ctx = ctx();
    let small = ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("misuse: 4 bytes"),
        size: 4,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let r = GpuTensor::from_buffer(small, &[1]);
    assert!(matches!(r, Err(Error::UnusableBuffer(_))), "{r:?}");
}

// ---- 6. a cache file that cannot hurt ------------------------------------------------------

/// The cache file, emptied.
fn cache_file() -> std::path::PathBuf {
    let f = cache_dir().join("autotune.tsv");
    let _ = std::fs::remove_file(&f);
    f
}

/// A tiny shape of its own per `i` (`1 + i` channels: the cache's shape buckets keep channel
/// counts exact), for entries that differ.
fn tune_shape(i: usize) -> Conv2dGeometry {
    Conv2dOptions::new()
        .resolve([1, 1 + i, 4, 4], [1, 1 + i, 2, 2])
        .unwrap()
}

/// `f` on another thread; fails (rather than hangs) past `limit`.
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what}: no answer within {limit:?}"))
}

/// Lines of the cache file that hold an entry.
fn entries(file: &std::path::Path) -> std::collections::BTreeSet<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.rsplitn(3, '\t').nth(2).unwrap_or("").to_string())
        .collect()
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn a_fifo_or_a_device_as_the_cache_file_neither_hangs_nor_fills_memory() {
    let _turn = cache_turn();
    let file = cache_file();
    let status = Command::new("mkfifo").arg(&file).status().expect("mkfifo");
    assert!(status.success());
    let g = tune_shape(0);
    let t = within(
        Duration::from_secs(120),
        "autotuning with a FIFO as the cache",
        move || {
            let ctx = new_context();
            ctx.set_autotune(true);
            ctx.autotuned(Op::Forward, &g, false)
        },
    );
    assert!(t.unwrap().is_some_and(|t| !t.from_cache));
    assert!(
        std::os::unix::fs::FileTypeExt::is_fifo(&std::fs::metadata(&file).unwrap().file_type()),
        "the FIFO was replaced"
    );

    let _ = std::fs::remove_file(&file);
    std::os::unix::fs::symlink("/dev/zero", &file).unwrap();
    let t = within(
        Duration::from_secs(120),
        "autotuning with /dev/zero as the cache",
        move || {
            let ctx = new_context();
            ctx.set_autotune(true);
            ctx.autotuned(Op::Forward, &g, false)
        },
    );
    assert!(t.unwrap().is_some_and(|t| !t.from_cache));
    let _ = std::fs::remove_file(&file);
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn a_huge_or_garbled_cache_file_is_started_afresh() {
    let _turn = cache_turn();
    let file = cache_file();
    for (what, bytes) in [
        ("a 3 MB file", vec![b'x'; 3 << 20]),
        (
            "bytes that are not text",
            vec![0xff, 0xfe, 0x00, 0x80, b'\n', 0xc3],
        ),
    ] {
        std::fs::write(&file, &bytes).unwrap();
        let g = tune_shape(1);
        let ctx = new_context();
        ctx.set_autotune(true);
        let t = ctx.autotuned(Op::Forward, &g, false).unwrap().unwrap();
        assert!(!t.from_cache, "{what}");
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            text.len() < 4096,
            "{what}: the file was not started afresh ({} bytes)",
            text.len()
        );
        assert_eq!(entries(&file).len(), 1, "{what}: {text}");
        // and the next context reads the choice back
        let again = new_context();
        again.set_autotune(true);
        assert!(
            again
                .autotuned(Op::Forward, &g, false)
                .unwrap()
                .unwrap()
                .from_cache,
            "{what}"
        );
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn concurrent_tuning_threads_keep_every_entry() {
    let _turn = cache_turn();
    let file = cache_file();
    let ctx = new_context();
    ctx.set_autotune(true);
    std::thread::scope(|s| {
        for t in 0..8 {
            let ctx = &ctx;
            s.spawn(move || {
                for i in 0..3 {
                    let g = tune_shape(t * 3 + i);
                    ctx.autotuned(Op::Forward, &g, false).unwrap().unwrap();
                }
            });
        }
    });
    assert_eq!(
        entries(&file).len(),
        24,
        "{}",
        std::fs::read_to_string(&file).unwrap()
    );
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn concurrent_tuning_processes_keep_every_entry() {
    let _turn = cache_turn();
    let dir = cache_dir().join("processes");
    let _ = std::fs::remove_dir_all(&dir);
    // 4 processes at a time, 3 rounds: 12 shapes, each tuned by a `plan` of its own
    for round in 0..3 {
        let children: Vec<_> = (0..4)
            .map(|p| {
                let c = tune_shape(round * 4 + p).c;
                Command::new(env!("CARGO_BIN_EXE_wgpu-conv"))
                    .args([
                        "plan",
                        "--input",
                        &format!("1,{c},4,4"),
                        "--weight",
                        &format!("1,{c},2,2"),
                    ])
                    .env("WGPU_CONV_AUTOTUNE", "1")
                    .env("WGPU_CONV_CACHE_DIR", &dir)
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
    }
    let file = dir.join("autotune.tsv");
    assert_eq!(
        entries(&file).len(),
        12,
        "{}",
        std::fs::read_to_string(&file).unwrap()
    );
}

// ---- 7. sizes checked before work ----------------------------------------------------------

#[test]
fn shapes_whose_element_count_overflows_are_errors() {
    let big = 1usize << (usize::BITS / 2);
    for r in [
        Tensor::zeros([big, big]),
        Tensor::from_fn([big, big, 2], |_| 0.0),
    ] {
        assert!(
            matches!(
                r,
                Err(Error::TooLarge {
                    limit: Limit::Elements,
                    ..
                })
            ),
            "{r:?}"
        );
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn empty_of_an_overflowing_shape_is_an_error() {
    let big = 1usize << (usize::BITS / 2);
    let r = ctx().empty(&[big, big], "misuse: huge");
    assert!(matches!(r, Err(Error::TooLarge { .. })), "{r:?}");
}

#[test]
fn a_plan_past_the_dispatch_budget_stops_with_an_error() {
    // the direct input gradient of a 4000x4000 kernel over an 8000x8000 image: millions of
    // dispatches under the loop budget
    let g = Conv2dOptions::new()
        .resolve([1, 1, 8000, 8000], [1, 1, 4000, 4000])
        .unwrap();
    let profile = wgpu_conv::DeviceProfile::webgpu_defaults();
    let r = wgpu_conv::plan_input_grad(&g, &profile, Algorithm::Direct);
    assert!(
        matches!(
            r,
            Err(Error::TooLarge {
                limit: Limit::Dispatches,
                ..
            })
        ),
        "{:?}",
        r.map(|p| p.dispatches())
    );
}

// ---- 8. time_on_gpu from threads -----------------------------------------------------------

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn time_on_gpu_from_many_threads_is_never_an_internal_error() {
    let ctx = new_context();
    let mut rng = Rng::new(10);
    let g = Conv2dOptions::new()
        .resolve([1, 2, 9, 9], [2, 2, 3, 3])
        .unwrap();
    let x = ctx.upload(&random(&mut rng, &[1, 2, 9, 9])).unwrap();
    let w = ctx.upload(&random(&mut rng, &[2, 2, 3, 3])).unwrap();
    std::thread::scope(|s| {
        for _ in 0..6 {
            let (ctx, x, w, g) = (&ctx, &x, &w, &g);
            s.spawn(move || {
                for _ in 0..15 {
                    let y = ctx.empty(&g.output_shape(), "misuse: timed y").unwrap();
                    let t = ctx
                        .time_on_gpu(|enc| ctx.record_forward(enc, g, x, w, None, &y))
                        .unwrap();
                    if ctx.has_timestamps() {
                        assert!(t.is_some(), "no time measured");
                    }
                }
            });
        }
    });
    // nested: refused, typed
    let y = ctx.empty(&g.output_shape(), "misuse: timed y").unwrap();
    let r = ctx.time_on_gpu(|enc| {
        ctx.record_forward(enc, &g, &x, &w, None, &y)?;
        ctx.time_on_gpu(|_| Ok(())).map(|_| ())
    });
    if ctx.has_timestamps() {
        assert!(matches!(r, Err(Error::Busy(_))), "{r:?}");
    }
}

// ---- 9. non-finite hyper-parameters --------------------------------------------------------

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn non_finite_hyper_parameters_are_refused() {
    let layer = Conv2d::new(1, 1, (1, 2), false, Conv2dOptions::new(), 0).unwrap();
    let x = Tensor::zeros([1, 1, 6, 8]).unwrap();
    let y = Tensor::zeros([1, 1, 6, 7]).unwrap();
    for (what, sgd) in [
        ("NaN momentum", Sgd::new(0.03).momentum(f32::NAN)),
        ("infinite learning rate", Sgd::new(f32::INFINITY)),
        ("NaN learning rate", Sgd::new(f32::NAN)),
        (
            "infinite weight decay",
            Sgd::new(0.03).weight_decay(f32::NEG_INFINITY),
        ),
    ] {
        let r = Trainer::new(ctx(), &layer, &x, &y, sgd).map(|_| ());
        assert!(matches!(r, Err(Error::InvalidOption(_))), "{what}: {r:?}");
        let r = wgpu_conv::train_cpu(&layer, &x, &y, sgd, 1).map(|_| ());
        assert!(
            matches!(r, Err(Error::InvalidOption(_))),
            "{what} (CPU): {r:?}"
        );
    }
}

// ---- 7 and 10. the command line ------------------------------------------------------------

fn cli(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wgpu-conv"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn refused(out: &std::process::Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{what}: exit 0");
    assert_ne!(out.status.code(), Some(101), "{what}: panicked: {err}");
    assert!(out.status.code().is_some(), "{what}: killed: {err}");
    err
}

#[test]
fn bench_runs_past_the_bound_are_refused_before_work() {
    for runs in ["18446744073709551615", "100000000000", "0", "10001"] {
        let out = cli(&["bench", "--shapes", "d2l_fig", "--runs", runs], &[]);
        let err = refused(&out, &format!("--runs {runs}"));
        assert!(err.contains("--runs"), "--runs {runs}: {err}");
    }
}

#[test]
fn plan_of_a_named_shape_refuses_options_it_would_ignore() {
    for flag in [
        ["--stride", "2"],
        ["--padding", "1"],
        ["--groups", "2"],
        ["--dilation", "2"],
    ] {
        let out = cli(
            &["plan", "--shape", "d2l_fig", "--webgpu", flag[0], flag[1]],
            &[],
        );
        let err = refused(&out, flag[0]);
        assert!(err.contains(flag[0]), "{}: {err}", flag[0]);
    }
}

#[test]
fn plan_of_a_loss_prints_nothing_before_its_error() {
    let out = cli(
        &[
            "plan", "--input", "1,1,4,4", "--weight", "1,1,2,2", "--op", "mse_loss", "--webgpu",
        ],
        &[],
    );
    let err = refused(&out, "plan --op mse_loss");
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(err.contains("mse_loss"), "{err}");
}

#[test]
fn a_long_or_non_utf8_environment_value_is_an_error_of_one_short_line() {
    let long = "x".repeat(5000);
    let out = cli(
        &["info"],
        &[("WGPU_CONV_KERNELS", std::ffi::OsStr::new(&long))],
    );
    let err = refused(&out, "a 5000-character WGPU_CONV_KERNELS");
    assert!(
        err.len() < 400 && err.contains("WGPU_CONV_KERNELS"),
        "{} bytes: {err}",
        err.len()
    );

    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"gp\xffu");
    for var in ["WGPU_CONV_KERNELS", "WGPU_CONV_AUTOTUNE"] {
        let out = cli(&["info"], &[(var, bad)]);
        let err = refused(&out, var);
        assert!(err.contains(var) && err.contains("UTF-8"), "{var}: {err}");
    }
}
