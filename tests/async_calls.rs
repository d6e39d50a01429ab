//! Non-blocking calls (their own test binary and context: one test lowers the binding limit):
//! `download_async` and `conv2d_async` submit at once and resolve on any executor, without the
//! caller polling the device; several can be in flight and awaited in any order; results match
//! the CPU reference; operands past the binding limit are a typed error from `conv2d_async`.

mod common;

use common::{assert_within, Rng};
use wgpu_conv::{cpu, Conv2dOptions, Error, GpuContext, Limit, Tensor};

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn async_calls_resolve_in_any_order_and_match_the_reference() {
    let ctx = GpuContext::new().expect("a GPU adapter (install mesa-vulkan-drivers)");
    let mut rng = Rng::new(3);
    let shapes = [
        ([1usize, 1, 3, 3], [1usize, 1, 2, 2], Conv2dOptions::new()),
        (
            [2, 3, 17, 19],
            [5, 3, 3, 3],
            Conv2dOptions::new().padding(1).stride(2),
        ),
        (
            [1, 4, 9, 12],
            [4, 1, 3, 5],
            Conv2dOptions::new().groups(4).padding((1, 2)),
        ),
    ];
    let mut inputs = Vec::new();
    let mut futures = Vec::new();
    for (xs, ws, opts) in &shapes {
        let x = Tensor::new(xs.to_vec(), rng.vec(xs.iter().product())).unwrap();
        let w = Tensor::new(ws.to_vec(), rng.vec(ws.iter().product())).unwrap();
        futures.push(ctx.conv2d_async(&x, &w, None, opts));
        inputs.push((x, w, *opts));
    }
    // the last submitted first
    for (f, (x, w, opts)) in futures.into_iter().zip(&inputs).rev() {
        let y = pollster::block_on(f).unwrap();
        let g = opts.resolve(x.shape().try_into().unwrap(), w.shape().try_into().unwrap());
        let g = g.unwrap();
        assert_eq!(y.shape(), g.output_shape());
        let reference = cpu::conv2d_forward(&g, x.data(), w.data(), None);
        assert_within(y.data(), &reference, "conv2d_async");
    }

    // download_async: two in flight, the second awaited first
    let a = ctx.upload(&inputs[1].0).unwrap();
    let b = ctx.upload(&inputs[2].0).unwrap();
    let fa = ctx.download_async(&[&a]);
    let fb = ctx.download_async(&[&b, &a]);
    let got_b = pollster::block_on(fb).unwrap();
    let got_a = pollster::block_on(fa).unwrap();
    assert_eq!(got_a[0].data(), inputs[1].0.data());
    assert_eq!(got_b[0].data(), inputs[2].0.data());
    assert_eq!(got_b[1].data(), inputs[1].0.data());

    // the chapter's figure, async
    let x = Tensor::from_rows(&[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]);
    let k = Tensor::from_rows(&[[0.0, 1.0], [2.0, 3.0]]);
    let y = pollster::block_on(ctx.conv2d_async(&x, &k, None, &Conv2dOptions::new())).unwrap();
    assert_eq!(y.data(), &[19.0, 25.0, 37.0, 43.0]);

    // bad input fails before anything runs; past the binding limit is a typed error
    let bad = ctx.conv2d_async(
        &x,
        &Tensor::from_rows(&[[1.0; 4]; 4]),
        None,
        &Conv2dOptions::new(),
    );
    assert!(matches!(
        pollster::block_on(bad),
        Err(Error::InvalidShape(_))
    ));
    ctx.set_binding_limit(Some(16));
    let big = ctx.conv2d_async(&x, &k, None, &Conv2dOptions::new());
    match pollster::block_on(big) {
        Err(Error::TooLarge {
            limit: Limit::Binding,
            ..
        }) => {}
        other => panic!("not a binding-limit error: {other:?}"),
    }
    ctx.set_binding_limit(None);
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn async_gradients_and_training_equal_the_blocking_calls() {
    use wgpu_conv::{Conv2d, Sgd, Trainer, Wanted};
    let ctx = GpuContext::new().expect("a GPU adapter (install mesa-vulkan-drivers)");
    let mut rng = Rng::new(4);
    let opts = Conv2dOptions::new()
        .padding((1, 2))
        .stride((2, 1))
        .groups(2);
    let x = Tensor::new(vec![2, 4, 11, 9], rng.vec(2 * 4 * 11 * 9)).unwrap();
    let w = Tensor::new(vec![6, 2, 3, 4], rng.vec(6 * 2 * 3 * 4)).unwrap();
    let g = opts.resolve([2, 4, 11, 9], [6, 2, 3, 4]).unwrap();
    let gy = Tensor::new(
        g.output_shape().to_vec(),
        rng.vec(g.output_shape().iter().product()),
    )
    .unwrap();
    let pending = ctx.conv2d_backward_async(&x, &w, &gy, &opts, Wanted::ALL);
    let blocking = ctx
        .conv2d_backward(&x, &w, &gy, &opts, Wanted::ALL)
        .unwrap();
    assert_eq!(pollster::block_on(pending).unwrap(), blocking);
    let reference = cpu::conv2d_input_grad(&g, w.data(), gy.data());
    assert_within(blocking.input.unwrap().data(), &reference, "input gradient");
    let bad = Tensor::zeros(vec![1, 2, 3]).unwrap();
    assert!(matches!(
        pollster::block_on(ctx.conv2d_backward_async(&x, &w, &bad, &opts, Wanted::ALL)),
        Err(Error::InvalidShape(_))
    ));

    // a trainer stepped through the futures ends where the blocking one does
    let init = Conv2d::new(4, 6, (3, 4), true, opts, 5).unwrap();
    let sgd = Sgd::new(1e-2).momentum(0.9);
    let mut a = Trainer::new(&ctx, &init, &x, &gy, sgd).unwrap();
    let mut b = Trainer::new(&ctx, &init, &x, &gy, sgd).unwrap();
    for i in 0..5 {
        let read = i % 2 == 1;
        let la = pollster::block_on(a.step_async(read)).unwrap();
        assert_eq!(la, b.step(read).unwrap());
    }
    assert_eq!(
        pollster::block_on(a.layer_async()).unwrap(),
        b.layer().unwrap()
    );
}
