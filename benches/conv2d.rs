//! Criterion benchmarks: one group per kernel, shapes in the ids, throughput in FLOPs
//! (`2 * outputs * taps`; criterion prints it as "elem/s" = FLOP/s), the CPU reference in the
//! same group as the baseline. The GPU figures time recorded work from submit to the device
//! being idle; uploads and readback are outside the timed region.

#![allow(missing_docs)]

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wgpu_conv::BenchShape;
use wgpu_conv::{cpu, Conv2dGeometry, Conv2dOptions, GpuContext, GpuTensor, Tensor};

/// Shapes small enough for criterion's repeated runs (the `bench` command has the large ones).
fn shapes() -> Vec<BenchShape> {
    let s = |name, input, weight, options| BenchShape {
        name,
        input,
        weight,
        options,
    };
    vec![
        s(
            "d2l_fig_1x1x3x3_k2x2",
            [1, 1, 3, 3],
            [1, 1, 2, 2],
            Conv2dOptions::new(),
        ),
        s(
            "edge_img_1x1x1024x1024_k1x2",
            [1, 1, 1024, 1024],
            [1, 1, 1, 2],
            Conv2dOptions::new(),
        ),
        s(
            "small_3x3_2x16x28x28_k16x16x3x3_pad1",
            [2, 16, 28, 28],
            [16, 16, 3, 3],
            Conv2dOptions::new().padding(1),
        ),
        s(
            "small_down_2x16x28x28_k32x16x3x3_s2_pad1",
            [2, 16, 28, 28],
            [32, 16, 3, 3],
            Conv2dOptions::new().stride(2).padding(1),
        ),
    ]
}

fn data(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

struct Prepared {
    g: Conv2dGeometry,
    x: Vec<f32>,
    w: Vec<f32>,
    gy: Vec<f32>,
    xg: GpuTensor,
    wg: GpuTensor,
    gyg: GpuTensor,
    out: GpuTensor,
    gw: GpuTensor,
    gx: GpuTensor,
}

fn prepare(ctx: &GpuContext, s: &BenchShape) -> Prepared {
    let g = s.options.resolve(s.input, s.weight).unwrap();
    let x = data(s.input.iter().product());
    let w = data(s.weight.iter().product());
    let gy = data(g.output_shape().iter().product());
    Prepared {
        xg: ctx
            .upload(&Tensor::new(s.input.to_vec(), x.clone()).unwrap())
            .unwrap(),
        wg: ctx
            .upload(&Tensor::new(s.weight.to_vec(), w.clone()).unwrap())
            .unwrap(),
        gyg: ctx
            .upload(&Tensor::new(g.output_shape().to_vec(), gy.clone()).unwrap())
            .unwrap(),
        out: ctx.empty(&g.output_shape(), "bench: output").unwrap(),
        gw: ctx.empty(&g.weight_shape(), "bench: grad_weight").unwrap(),
        gx: ctx.empty(&g.input_shape(), "bench: grad_input").unwrap(),
        g,
        x,
        w,
        gy,
    }
}

fn time_gpu(
    ctx: &GpuContext,
    iters: u64,
    mut record: impl FnMut(&mut wgpu::CommandEncoder),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let mut enc = ctx.encoder("bench");
        record(&mut enc);
        let t = Instant::now();
        ctx.submit_and_wait(enc).unwrap();
        total += t.elapsed();
    }
    total
}

fn benches(c: &mut Criterion) {
    let ctx = GpuContext::new().expect("benchmarks need an adapter (install mesa-vulkan-drivers)");
    eprintln!("adapter: {}", ctx.describe());
    let prepared: Vec<(BenchShape, Prepared)> = shapes()
        .into_iter()
        .map(|s| {
            let p = prepare(&ctx, &s);
            (s, p)
        })
        .collect();
    for op in ["conv2d_forward", "conv2d_weight_grad", "conv2d_input_grad"] {
        let mut group = c.benchmark_group(op);
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_millis(500));
        for (s, p) in &prepared {
            group.throughput(Throughput::Elements(p.g.flops() as u64));
            group.bench_function(
                BenchmarkId::new(format!("gpu/{}", ctx.adapter_info().name), s.name),
                |b| {
                    b.iter_custom(|iters| {
                        time_gpu(&ctx, iters, |enc| match op {
                            "conv2d_forward" => ctx
                                .record_forward(enc, &p.g, &p.xg, &p.wg, None, &p.out)
                                .unwrap(),
                            "conv2d_weight_grad" => ctx
                                .record_backward(
                                    enc,
                                    &p.g,
                                    &p.xg,
                                    &p.wg,
                                    &p.gyg,
                                    Some(&p.gw),
                                    None,
                                    None,
                                )
                                .unwrap(),
                            _ => ctx
                                .record_backward(
                                    enc,
                                    &p.g,
                                    &p.xg,
                                    &p.wg,
                                    &p.gyg,
                                    None,
                                    Some(&p.gx),
                                    None,
                                )
                                .unwrap(),
                        })
                    })
                },
            );
            group.bench_function(BenchmarkId::new("cpu_reference", s.name), |b| {
                b.iter(|| match op {
                    "conv2d_forward" => cpu::conv2d_forward(&p.g, &p.x, &p.w, None),
                    "conv2d_weight_grad" => cpu::conv2d_weight_grad(&p.g, &p.x, &p.gy),
                    _ => cpu::conv2d_input_grad(&p.g, &p.w, &p.gy),
                })
            });
        }
        group.finish();
    }
}

/// The chapter's training: 10 steps of a (1, 2) kernel on the 6x8 image, the loss read back every
/// 2 steps (as the chapter prints it), the learned kernel read at the end.
fn training(c: &mut Criterion) {
    let ctx = GpuContext::new().expect("benchmarks need an adapter (install mesa-vulkan-drivers)");
    let x = Tensor::from_fn(
        [1, 1, 6, 8],
        |i| if (2..6).contains(&i[3]) { 0.0 } else { 1.0 },
    )
    .unwrap();
    let y = Tensor::from_fn([1, 1, 6, 7], |i| {
        x.at(&[0, 0, i[2], i[3]]) - x.at(&[0, 0, i[2], i[3] + 1])
    })
    .unwrap();
    let init = wgpu_conv::Conv2d::new(1, 1, (1, 2), false, Conv2dOptions::new(), 0).unwrap();
    let mut group = c.benchmark_group("train");
    group.sample_size(20);
    group.bench_function(
        BenchmarkId::new(
            format!("gpu/{}", ctx.adapter_info().name),
            "chapter_10_steps",
        ),
        |b| {
            b.iter(|| {
                let mut t = wgpu_conv::Trainer::new(&ctx, &init, &x, &y, wgpu_conv::Sgd::new(3e-2))
                    .unwrap();
                for i in 0..10 {
                    t.step((i + 1) % 2 == 0).unwrap();
                }
                t.layer().unwrap()
            })
        },
    );
    group.bench_function(BenchmarkId::new("cpu_reference", "chapter_10_steps"), |b| {
        b.iter(|| wgpu_conv::train_cpu(&init, &x, &y, wgpu_conv::Sgd::new(3e-2), 10).unwrap())
    });
    group.finish();
}

criterion_group!(conv2d, benches, training);
criterion_main!(conv2d);
