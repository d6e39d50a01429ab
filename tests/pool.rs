//! The buffer pool (its own test binary, with its own context, so that the counters are this
//! test's alone): blocking calls of mixed shapes reuse the buffers of earlier calls instead of
//! creating new ones, idle memory stays within the bound, results stay right, `trim` frees the
//! idle buffers, and the `record_*` API (whose submission the caller makes) never takes pooled
//! buffers.

mod common;

use common::{assert_within, Rng};
use wgpu_conv::{cpu, Conv2dOptions, GpuContext, Tensor, Wanted, MAX_IDLE_BYTES};

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn blocking_calls_reuse_pooled_buffers_within_the_bound() {
    let ctx = GpuContext::new().expect("a GPU adapter (install mesa-vulkan-drivers)");
    let shapes = [
        ([1, 1, 3, 3], [1, 1, 2, 2], Conv2dOptions::new()),
        (
            [2, 3, 17, 19],
            [5, 3, 3, 3],
            Conv2dOptions::new().padding(1),
        ),
        (
            [1, 4, 9, 12],
            [4, 1, 3, 5],
            Conv2dOptions::new().groups(4).padding((1, 2)),
        ),
    ];
    let mut rng = Rng::new(5);
    let data: Vec<_> = shapes
        .iter()
        .map(|(xs, ws, opts)| {
            let g = opts.resolve(*xs, *ws).unwrap();
            let x = Tensor::new(xs.to_vec(), rng.vec(xs.iter().product())).unwrap();
            let w = Tensor::new(ws.to_vec(), rng.vec(ws.iter().product())).unwrap();
            let gy = rng.vec(g.output_shape().iter().product());
            let gy = Tensor::new(g.output_shape().to_vec(), gy).unwrap();
            (g, x, w, gy, opts)
        })
        .collect();
    let round = |check: bool| {
        for (g, x, w, gy, opts) in &data {
            let y = ctx.conv2d(x, w, None, opts).unwrap();
            let grads = ctx.conv2d_backward(x, w, gy, opts, Wanted::ALL).unwrap();
            if check {
                let reference = cpu::conv2d_forward(g, x.data(), w.data(), None);
                assert_within(y.data(), &reference, "forward from pooled buffers");
                let reference = cpu::conv2d_weight_grad(g, x.data(), gy.data());
                let gw = grads.weight.as_ref().unwrap();
                assert_within(gw.data(), &reference, "weight gradient from pooled buffers");
                let reference = cpu::conv2d_input_grad(g, w.data(), gy.data());
                let gx = grads.input.as_ref().unwrap();
                assert_within(gx.data(), &reference, "input gradient from pooled buffers");
            }
        }
    };
    round(true);
    let warm = ctx.pool_stats();
    assert!(warm.created > 0 && warm.idle_bytes > 0, "{warm:?}");
    for _ in 0..50 {
        round(false);
    }
    round(true);
    let after = ctx.pool_stats();
    assert_eq!(
        after.created, warm.created,
        "calls kept creating buffers: {warm:?} -> {after:?}"
    );
    assert!(
        after.reused >= warm.reused + 51 * 6,
        "{warm:?} -> {after:?}"
    );
    assert_eq!(after.idle_bytes, warm.idle_bytes, "{warm:?} -> {after:?}");
    assert!(after.idle_bytes <= MAX_IDLE_BYTES);

    // the record API takes new buffers: the caller submits when it likes
    let (g, x, w, _, _) = &data[1];
    let xg = ctx.upload(x).unwrap();
    let wg = ctx.upload(w).unwrap();
    let y = ctx.empty(&g.output_shape(), "y").unwrap();
    let mut enc = ctx.encoder("outside the pool");
    ctx.record_forward(&mut enc, g, &xg, &wg, None, &y).unwrap();
    let outside = ctx.pool_stats();
    assert_eq!(outside.reused, after.reused, "{after:?} -> {outside:?}");
    assert!(
        outside.created >= after.created + 3,
        "{after:?} -> {outside:?}"
    );
    ctx.submit_and_wait(enc).unwrap();
    let got = ctx.download(&[&y]).unwrap().remove(0);
    let reference = cpu::conv2d_forward(g, x.data(), w.data(), None);
    assert_within(got.data(), &reference, "recorded forward");

    ctx.trim();
    assert_eq!(ctx.pool_stats().idle_bytes, 0);
    round(true);
}
