//! Resident layers (their own test binary: each test makes its own context, so that the upload
//! and packing counters are that test's alone): repeated inference with one `Conv2d` uploads
//! only its input and packs its weight once, a changed weight is uploaded and packed again,
//! `forward_gpu` chains layers on the device into outputs that no later call overwrites, and a
//! layer moves between contexts.

mod common;

use common::{assert_within, Rng};
use wgpu_conv::{
    cpu, Conv2d, Conv2dOptions, GpuContext, Op, PoolStats, Sequential, Tensor, Wanted,
};

fn context() -> GpuContext {
    GpuContext::new().expect("a GPU adapter (install mesa-vulkan-drivers)")
}

fn random(rng: &mut Rng, shape: &[usize]) -> Tensor {
    Tensor::new(shape.to_vec(), rng.vec(shape.iter().product())).unwrap()
}

/// Counters after minus before.
fn delta(before: PoolStats, after: PoolStats) -> (u64, u64, u64) {
    (
        after.uploads - before.uploads,
        after.uploaded_bytes - before.uploaded_bytes,
        after.weight_packs - before.weight_packs,
    )
}

/// The plan's kernels include a weight-packing pass.
fn packs(ctx: &GpuContext, layer: &Conv2d, x: &[usize]) -> bool {
    let g = layer.geometry(x).unwrap();
    let plan = ctx
        .plan(Op::Forward, &g, layer.bias().is_some(), Default::default())
        .unwrap();
    plan.kernels().iter().any(|k| k.contains("pack"))
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn repeated_inference_uploads_only_the_input() {
    // the resnet_3x3 layer (64 -> 64 channels, 3x3, padding 1, with a bias), on one image
    let ctx = context();
    let mut rng = Rng::new(31);
    let opts = Conv2dOptions::new().padding(1);
    let layer = Conv2d::new(64, 64, 3, true, opts, 7).unwrap();
    let xs = [1usize, 64, 56, 56];
    let packed = packs(&ctx, &layer, &xs);
    let inputs: Vec<Tensor> = (0..3).map(|_| random(&mut rng, &xs)).collect();
    let x_bytes = (xs.iter().product::<usize>() * 4) as u64;

    let before = ctx.pool_stats();
    let first = layer.forward(&ctx, &inputs[0]).unwrap();
    let (uploads, bytes, packs_first) = delta(before, ctx.pool_stats());
    // the input, the weight and the bias
    assert_eq!(uploads, 3, "first call");
    assert_eq!(bytes, x_bytes + (64 * 64 * 9 + 64) * 4, "first call");
    assert_eq!(
        packs_first > 0,
        packed,
        "first call packs where the plan does"
    );

    let same = ctx
        .conv2d(&inputs[0], layer.weight(), layer.bias(), &opts)
        .unwrap();
    assert_eq!(first, same, "a resident layer runs the context's kernels");
    for x in &inputs[1..] {
        let before = ctx.pool_stats();
        let y = layer.forward(&ctx, x).unwrap();
        assert_eq!(
            delta(before, ctx.pool_stats()),
            (1, x_bytes, 0),
            "a repeated call uploads its input alone and packs nothing"
        );
        let expected = ctx.conv2d(x, layer.weight(), layer.bias(), &opts).unwrap();
        assert_eq!(y, expected);
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn a_packed_weight_is_packed_once_and_again_after_it_changes() {
    let ctx = context();
    let mut rng = Rng::new(32);
    // depthwise with a bias: the planes kernels, whose weights are packed into uniform blocks
    let opts = Conv2dOptions::new().groups(16).padding((1, 2));
    let mut layer = Conv2d::new(16, 16, (3, 5), true, opts, 3).unwrap();
    layer
        .set_bias(random(&mut rng, &[16]))
        .expect("the layer has a bias");
    let xs = [2usize, 16, 23, 29];
    let x = random(&mut rng, &xs);
    let g = layer.geometry(&xs).unwrap();
    let check = |layer: &Conv2d, y: &Tensor, what: &str| {
        let bias = layer.bias().map(Tensor::data);
        let reference = cpu::conv2d_forward(&g, x.data(), layer.weight().data(), bias);
        assert_within(y.data(), &reference, what);
    };
    let packed = packs(&ctx, &layer, &xs);

    let before = ctx.pool_stats();
    let y = layer.forward(&ctx, &x).unwrap();
    check(&layer, &y, "first call");
    let first_packs = delta(before, ctx.pool_stats()).2;
    assert_eq!(first_packs > 0, packed);
    let before = ctx.pool_stats();
    for _ in 0..3 {
        assert_eq!(layer.forward(&ctx, &x).unwrap(), y);
    }
    let (uploads, _, packs) = delta(before, ctx.pool_stats());
    assert_eq!(
        (uploads, packs),
        (3, 0),
        "three inputs, no weight, no packing"
    );

    // a new weight is uploaded and packed once more, and used
    layer.set_weight(random(&mut rng, &[16, 1, 3, 5])).unwrap();
    let before = ctx.pool_stats();
    let y2 = layer.forward(&ctx, &x).unwrap();
    check(&layer, &y2, "after set_weight");
    let (uploads, _, packs) = delta(before, ctx.pool_stats());
    assert_eq!(uploads, 3, "input, weight and bias again");
    assert_eq!(packs, first_packs);

    // the backward pass takes the resident weight too
    let gy = random(&mut rng, &g.output_shape());
    let grads = layer.backward(&ctx, &x, &gy).unwrap();
    let expected = ctx
        .conv2d_backward(&x, layer.weight(), &gy, &opts, Wanted::ALL)
        .unwrap();
    assert_eq!(grads, expected);
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn forward_gpu_chains_layers_into_outputs_of_their_own() {
    let ctx = context();
    let mut rng = Rng::new(33);
    let l1 = Conv2d::new(3, 8, 3, true, Conv2dOptions::new().padding(1), 1).unwrap();
    let l2 = Conv2d::new(8, 4, (2, 3), false, Conv2dOptions::new().stride(2), 2).unwrap();
    let x = random(&mut rng, &[2, 3, 19, 17]);

    let xg = ctx.upload(&x).unwrap();
    let h = l1.forward_gpu(&ctx, &xg).unwrap();
    let y = l2.forward_gpu(&ctx, &h).unwrap();
    // blocking calls of the same sizes reuse pooled buffers; the chained outputs are not pooled
    for _ in 0..3 {
        l1.forward(&ctx, &x).unwrap();
        let hx = l1.forward(&ctx, &x).unwrap();
        l2.forward(&ctx, &hx).unwrap();
    }
    let read = ctx.download(&[&h, &y]).unwrap();
    let (h_host, y_host) = (&read[0], &read[1]);

    let g1 = l1.geometry(x.shape()).unwrap();
    let b1 = l1.bias().map(Tensor::data);
    let reference = cpu::conv2d_forward(&g1, x.data(), l1.weight().data(), b1);
    assert_within(h_host.data(), &reference, "first layer on the device");
    let g2 = l2.geometry(h_host.shape()).unwrap();
    let reference = cpu::conv2d_forward(&g2, h_host.data(), l2.weight().data(), None);
    assert_within(y_host.data(), &reference, "second layer, chained");
    assert_eq!(y_host.shape(), &[2, 4, 9, 8]);

    // Sequential on the device, and blocking, agree with the chain
    let stack = Sequential::new(vec![l1.clone(), l2.clone()]);
    let s = stack.forward_gpu(&ctx, &xg).unwrap();
    let s_host = ctx.download(&[&s]).unwrap().remove(0);
    assert_eq!(s_host.data(), y_host.data());
    assert_eq!(stack.forward(&ctx, &x).unwrap().data(), y_host.data());

    // record_forward into the caller's own encoder
    let out = ctx
        .upload(&Tensor::zeros(vec![2, 8, 19, 17]).unwrap())
        .unwrap();
    let mut enc = ctx.encoder("caller");
    l1.record_forward(&ctx, &mut enc, &xg, &out).unwrap();
    ctx.submit_and_wait(enc).unwrap();
    assert_eq!(ctx.download(&[&out]).unwrap()[0].data(), h_host.data());
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn a_layer_moves_between_contexts() {
    let (a, b) = (context(), context());
    let mut rng = Rng::new(34);
    let layer = Conv2d::new(2, 3, 3, true, Conv2dOptions::new().dilation(2), 4).unwrap();
    let x = random(&mut rng, &[1, 2, 11, 13]);
    let ya = layer.forward(&a, &x).unwrap();
    let before = b.pool_stats();
    let yb = layer.forward(&b, &x).unwrap();
    assert_eq!(ya, yb);
    assert_eq!(
        delta(before, b.pool_stats()).0,
        3,
        "uploaded to the new context"
    );
    assert_eq!(layer.forward(&a, &x).unwrap(), ya, "and back");
    // a clone starts without the resident state, and compares equal
    let copy = layer.clone();
    assert_eq!(copy, layer);
    assert_eq!(copy.forward(&a, &x).unwrap(), ya);
}
