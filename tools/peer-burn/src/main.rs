//! Times burn's 2-D convolution ops on the shapes of wgpu-conv's `bench`, one JSON line per
//! shape and op: `{"peer":"burn","shape":..,"op":..,"flops":..,"median_s":..,"gflops":..}`.
//! Each run submits `BATCH` ops and waits for the device; the time of a run over `BATCH` is
//! one op's, and the median of the runs is reported, after a first run (burn autotunes its
//! kernels there) and a warm-up of the same work (`PEER_WARM_UP_S` seconds, default 1).
//!
//!   wgpu-conv-peer-burn [shape,...] [forward,weight_grad] [runs]
//!
//! The shapes are those of wgpu-conv's src/shapes.rs (input, weight, stride, padding).

use burn::tensor::module::{conv2d, conv2d_weight_backward};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, DeviceKind, Distribution, Tensor};
use std::time::Instant;

const BATCH: usize = 8;

struct Shape {
    name: &'static str,
    input: [usize; 4],
    weight: [usize; 4],
    stride: usize,
    padding: usize,
    groups: usize,
}

const SHAPES: &[Shape] = &[
    Shape {
        name: "resnet_3x3",
        input: [8, 64, 56, 56],
        weight: [64, 64, 3, 3],
        stride: 1,
        padding: 1,
        groups: 1,
    },
    Shape {
        name: "resnet_1x1",
        input: [8, 256, 28, 28],
        weight: [128, 256, 1, 1],
        stride: 1,
        padding: 0,
        groups: 1,
    },
    Shape {
        name: "stem_7x7",
        input: [8, 3, 224, 224],
        weight: [64, 3, 7, 7],
        stride: 2,
        padding: 3,
        groups: 1,
    },
];

fn out_side(i: usize, k: usize, s: usize, p: usize) -> usize {
    (i + 2 * p - k) / s + 1
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let list = |i: usize, all: &[&str]| -> Vec<String> {
        args.get(i)
            .map(|a| a.split(',').map(str::to_string).collect())
            .unwrap_or_else(|| all.iter().map(|s| s.to_string()).collect())
    };
    let names = list(1, &SHAPES.iter().map(|s| s.name).collect::<Vec<_>>());
    // (burn's tensor API has no input gradient on its own, outside autodiff)
    let ops = list(2, &["forward", "weight_grad"]);
    let runs: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(5);
    // seconds of the same work before the timed runs (after the first run, which autotunes)
    let warm_up: f64 = std::env::var("PEER_WARM_UP_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let device = Device::wgpu(DeviceKind::DefaultDevice);
    for s in SHAPES.iter().filter(|s| names.iter().any(|n| n == s.name)) {
        let [n, c, h, w] = s.input;
        let [oc, cpg, kh, kw] = s.weight;
        let (oh, ow) = (
            out_side(h, kh, s.stride, s.padding),
            out_side(w, kw, s.stride, s.padding),
        );
        let flops = 2.0 * (n * oc * oh * ow * cpg * kh * kw) as f64;
        let opts = || ConvOptions::new([s.stride; 2], [s.padding; 2], [1, 1], s.groups);
        let d = Distribution::Uniform(-1.0, 1.0);
        let x = Tensor::<4>::random([n, c, h, w], d, &device);
        let wt = Tensor::<4>::random([oc, cpg, kh, kw], d, &device);
        let gy = Tensor::<4>::random([n, oc, oh, ow], d, &device);
        for op in &ops {
            let once = || -> Tensor<4> {
                match op.as_str() {
                    "forward" => conv2d(x.clone(), wt.clone(), None, opts()),
                    "weight_grad" => {
                        conv2d_weight_backward(x.clone(), wt.clone(), gy.clone(), opts())
                    }
                    other => panic!("unknown op {other}"),
                }
            };
            let run = || {
                let outs: Vec<_> = (0..BATCH).map(|_| once()).collect();
                device.sync().expect("burn's device failed");
                drop(outs);
            };
            // warm-up: autotuning and pipelines, then the clocks
            run();
            let t = Instant::now();
            while t.elapsed().as_secs_f64() < warm_up {
                run();
            }
            let mut times: Vec<f64> = (0..runs)
                .map(|_| {
                    let t = Instant::now();
                    run();
                    t.elapsed().as_secs_f64() / BATCH as f64
                })
                .collect();
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            println!(
                "{{\"peer\":\"burn 0.22.0\",\"shape\":\"{}\",\"op\":\"{op}\",\"flops\":{flops},\"median_s\":{median},\"gflops\":{}}}",
                s.name,
                flops / median / 1e9
            );
        }
    }
}
