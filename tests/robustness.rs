//! A library call must never take the caller's program down: long passes are cut into bounded
//! dispatches, many threads share one context, memory does not grow over many calls, a lost
//! device is a typed error, and hostile sizes and option strings are errors, never panics.

mod common;

use common::{assert_within, ctx, Rng};
use proptest::prelude::*;
use wgpu_conv::{
    cpu, Algorithm, Conv2dOptions, ConvMode, Error, Family, GpuContext, Hw, Limit, Padding,
    PaddingMode, Tensor, Wanted,
};

fn sample_check(got: &[f32], at: impl FnMut(usize) -> (f64, f64, usize), what: &str) {
    let idx: Vec<usize> = (0..256)
        .map(|k| (k * 7_919_993 + 13 * k * k) % got.len())
        .collect();
    let reference = cpu::sampled(&idx, at);
    let picked: Vec<f32> = idx.iter().map(|&i| got[i]).collect();
    assert_within(&picked, &reference, what);
}

/// A pass larger than the most work one dispatch is given (the CPU family's cap, 2^28 FLOPs,
/// asked for on a context of its own) is recorded as several dispatches (each with its
/// own `base`), with both kernel families, and the result still matches the reference.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn long_passes_are_cut_into_bounded_dispatches() {
    let opts = Conv2dOptions::new()
        .padding(1)
        .padding_mode(PaddingMode::Reflect);
    let (xs, ws) = ([2usize, 32, 128, 128], [32usize, 32, 3, 3]);
    let g = opts.resolve(xs, ws).unwrap();
    // every algorithm's forward and input-gradient plans cut their main kernel into several
    // dispatches (the weight gradients cut the reduction into slices instead)
    let own = GpuContext::new().unwrap();
    own.set_family(Family::Cpu);
    let ctx = || &own;
    let profile = ctx().profile();
    for a in Algorithm::ALL {
        for plan in [
            wgpu_conv::plan_forward(&g, false, &profile, a).unwrap(),
            wgpu_conv::plan_input_grad(&g, &profile, a).unwrap(),
        ] {
            let main = plan.main_kernel().unwrap();
            let pass = plan.passes().iter().find(|p| p.kernel() == main).unwrap();
            assert!(pass.dispatches() > 1, "{a:?}: {plan}");
        }
    }
    let mut rng = Rng::new(77);
    let x = rng.vec(xs.iter().product());
    let w = rng.vec(ws.iter().product());
    let gy = rng.vec(g.output_shape().iter().product());
    let (xt, wt) = (
        Tensor::new(xs.to_vec(), x.clone()).unwrap(),
        Tensor::new(ws.to_vec(), w.clone()).unwrap(),
    );
    let gyt = Tensor::new(g.output_shape().to_vec(), gy.clone()).unwrap();
    for a in Algorithm::ALL {
        let y = ctx().conv2d_with(&xt, &wt, None, &opts, a).unwrap();
        sample_check(
            y.data(),
            |i| cpu::conv2d_forward_at(&g, &x, &w, None, i),
            &format!("forward {a:?}"),
        );
        let grads = ctx()
            .conv2d_backward_with(&xt, &wt, &gyt, &opts, Wanted::ALL, a)
            .unwrap();
        sample_check(
            grads.weight.unwrap().data(),
            |i| cpu::conv2d_weight_grad_at(&g, &x, &gy, i),
            &format!("weight_grad {a:?}"),
        );
        sample_check(
            grads.input.unwrap().data(),
            |i| cpu::conv2d_input_grad_at(&g, &w, &gy, i),
            &format!("input_grad {a:?}"),
        );
    }
}

fn assert_send_sync<T: Send + Sync>() {}

/// 8 threads x 50 calls each on one shared context, forward and backward on shapes that
/// differ by thread, every result checked against the CPU reference.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn many_threads_share_one_context() {
    assert_send_sync::<GpuContext>();
    let ctx = ctx();
    std::thread::scope(|s| {
        for t in 0..8usize {
            s.spawn(move || {
                let mut rng = Rng::new(1000 + t as u64);
                for call in 0..50usize {
                    let opts = Conv2dOptions::new()
                        .padding(t % 3)
                        .stride(1 + call % 2)
                        .mode(if t % 2 == 0 {
                            ConvMode::CrossCorrelation
                        } else {
                            ConvMode::Convolution
                        });
                    let xs = [1 + t % 2, 2, 5 + t, 6 + call % 4];
                    let ws = [3, 2, 1 + t % 3, 2];
                    let g = opts.resolve(xs, ws).unwrap();
                    let x = rng.vec(xs.iter().product());
                    let w = rng.vec(ws.iter().product());
                    let xt = Tensor::new(xs.to_vec(), x.clone()).unwrap();
                    let wt = Tensor::new(ws.to_vec(), w.clone()).unwrap();
                    if call % 2 == 0 {
                        let y = ctx.conv2d(&xt, &wt, None, &opts).unwrap();
                        assert_within(
                            y.data(),
                            &cpu::conv2d_forward(&g, &x, &w, None),
                            &format!("thread {t} call {call}"),
                        );
                    } else {
                        let gy = rng.vec(g.output_shape().iter().product());
                        let gyt = Tensor::new(g.output_shape().to_vec(), gy.clone()).unwrap();
                        let grads = ctx
                            .conv2d_backward(&xt, &wt, &gyt, &opts, Wanted::ALL)
                            .unwrap();
                        assert_within(
                            grads.weight.unwrap().data(),
                            &cpu::conv2d_weight_grad(&g, &x, &gy),
                            &format!("thread {t} call {call} weight"),
                        );
                        assert_within(
                            grads.input.unwrap().data(),
                            &cpu::conv2d_input_grad(&g, &w, &gy),
                            &format!("thread {t} call {call} input"),
                        );
                    }
                }
            });
        }
    });
}

/// A lost device (here destroyed on purpose) is a typed error on the next call, never a panic,
/// and a new context works.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn a_lost_device_is_an_error_and_a_new_context_works() {
    let doomed = GpuContext::new().unwrap();
    let x = Tensor::zeros([4, 4]).unwrap();
    let k = Tensor::zeros([2, 2]).unwrap();
    assert!(doomed.corr2d(&x, &k).is_ok());
    doomed.device().destroy();
    let _ = doomed.device().poll(wgpu::PollType::wait_indefinitely());
    match doomed.corr2d(&x, &k) {
        Err(Error::DeviceLost(_)) => {}
        other => panic!("expected DeviceLost, got {other:?}"),
    }
    assert!(matches!(
        doomed.conv2d_backward(
            &x,
            &k,
            &Tensor::zeros([3, 3]).unwrap(),
            &Conv2dOptions::new(),
            Wanted::ALL
        ),
        Err(Error::DeviceLost(_))
    ));
    let fresh = GpuContext::new().unwrap();
    assert_eq!(
        fresh
            .corr2d(
                &Tensor::from_fn([3, 3], |i| (i[0] * 3 + i[1]) as f32).unwrap(),
                &Tensor::from_fn([2, 2], |i| (i[0] * 2 + i[1]) as f32).unwrap()
            )
            .unwrap()
            .data(),
        [19.0, 25.0, 37.0, 43.0]
    );
}

/// Hostile sizes through the library: typed errors.
#[test]
fn hostile_sizes_are_typed_errors() {
    assert!(matches!(
        Tensor::new(vec![2, 2], vec![0.0; 3]),
        Err(Error::InvalidShape(_))
    ));
    assert!(matches!(
        Tensor::new(vec![usize::MAX, 2], vec![]),
        Err(Error::TooLarge {
            limit: Limit::Elements,
            ..
        })
    ));
    assert!(matches!(
        Tensor::new(vec![1, 1, 1, 1, 1], vec![0.0]),
        Err(Error::InvalidShape(_))
    ));
    assert!(matches!(
        Tensor::new(Vec::<usize>::new(), vec![]),
        Err(Error::InvalidShape(_))
    ));
    let o = Conv2dOptions::new();
    assert!(matches!(
        o.resolve([1 << 20, 1 << 20, 1 << 20, 1 << 20], [1, 1 << 20, 1, 1]),
        Err(Error::TooLarge {
            limit: Limit::Index,
            ..
        })
    ));
    assert!(o
        .dilation(usize::MAX)
        .resolve([1, 1, 4, 4], [1, 1, 3, 3])
        .is_err());
    assert!(o
        .stride(usize::MAX)
        .resolve([1, 1, 4, 4], [1, 1, 3, 3])
        .is_ok());
    assert!(o
        .padding(usize::MAX)
        .resolve([1, 1, 4, 4], [1, 1, 3, 3])
        .is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
    /// Option strings of any kind parse or fail, never panic.
    #[test]
    fn option_parsing_never_panics(s in "\\PC{0,24}") {
        let _ = s.parse::<Hw>();
        let _ = s.parse::<Padding>();
        let _ = s.parse::<PaddingMode>();
        let _ = s.parse::<ConvMode>();
    }

    /// Any sizes and options resolve or fail with an error, never panic (overflow included).
    #[test]
    fn resolve_never_panics(
        x in prop::array::uniform4(prop_oneof![0usize..6, Just(usize::MAX), Just(1 << 31), any::<usize>()]),
        w in prop::array::uniform4(prop_oneof![0usize..6, Just(usize::MAX), any::<usize>()]),
        s in (0usize..4, 0usize..4, prop_oneof![0usize..4, Just(usize::MAX)]),
        p in prop::array::uniform4(prop_oneof![0usize..4, Just(usize::MAX), any::<usize>()]),
        m in 0usize..4,
    ) {
        let opts = Conv2dOptions::new()
            .stride((s.0, s.1))
            .dilation((s.2, 1))
            .groups(s.0)
            .padding(p)
            .padding_mode([PaddingMode::Zeros, PaddingMode::Reflect, PaddingMode::Replicate, PaddingMode::Circular][m]);
        if let Ok(g) = opts.resolve(x, w) {
            prop_assert!(g.oh >= 1 && g.ow >= 1);
            prop_assert!(g.output_shape().iter().try_fold(1usize, |a, &d| a.checked_mul(d)).is_some());
        }
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn more_channels_than_one_grid_dimension_holds() {
    // 70,000 depthwise channels: the z axis of the 3-D grids (batch x channels) passes the
    // 65,535 workgroups one dimension may have and must be cut into dispatches, under every
    // algorithm: stride 2 on a 2x2 input (the rows and tiled kernels), and a padded 3x3 kernel
    // with a bias on a batch of 2 (the planes kernels, 140,000 planes)
    let o = Conv2dOptions::new;
    for (xs, ws, opts, bias) in [
        (
            [1usize, 70_000, 2, 2],
            [70_000usize, 1, 1, 1],
            o().groups(70_000).stride(2),
            false,
        ),
        (
            [2, 70_000, 3, 3],
            [70_000, 1, 3, 3],
            o().groups(70_000).padding(1),
            true,
        ),
    ] {
        let g = opts.resolve(xs, ws).unwrap();
        let mut rng = Rng::new(70_000);
        let x = rng.vec(xs.iter().product());
        let w = rng.vec(ws.iter().product());
        let b = rng.vec(g.oc);
        let gy = rng.vec(g.output_shape().iter().product());
        let bias = bias.then_some(b.as_slice());
        for a in [
            Algorithm::Auto,
            Algorithm::Direct,
            Algorithm::Tiled,
            Algorithm::Gemm,
            Algorithm::Gpu,
        ] {
            let what = format!("{xs:?} {a:?}");
            let grads =
                check_forward_and_gradients(ctx(), &g, &opts, a, &what, (&x, &w, bias, &gy));
            assert_within(
                grads.bias.unwrap().data(),
                &cpu::conv2d_bias_grad(&g, &gy),
                &format!("bias grad {what}"),
            );
        }
    }
}

/// A device that allows 4 storage buffers per stage (the required kernels' most, counted from
/// their shaders): `from_device` takes it, the planner leaves out the planes kernel (it binds
/// 5), and every operation matches the reference.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn a_device_with_four_storage_buffers_runs_every_operation() {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    let instance = wgpu::Instance::new(desc);
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
            .expect("GPU tests need an adapter (or RUSTFLAGS=\"--cfg no_gpu\" to skip)");
    let device = |storage: u32| {
        let mut limits = adapter.limits();
        limits.max_storage_buffers_per_shader_stage = storage;
        pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("four storage buffers"),
            required_limits: limits,
            ..Default::default()
        }))
        .unwrap()
    };
    let (d, q) = device(3);
    assert!(matches!(
        GpuContext::from_device(d, q, adapter.get_info()),
        Err(Error::RequestDevice { .. })
    ));
    let (d, q) = device(4);
    let ctx = GpuContext::from_device(d, q, adapter.get_info()).unwrap();
    assert_eq!(ctx.profile().max_storage_buffers_per_stage, 4);
    let opts = Conv2dOptions::new().groups(4).padding(1);
    let (xs, ws) = ([2usize, 4, 9, 12], [4usize, 1, 3, 3]);
    let g = opts.resolve(xs, ws).unwrap();
    let plan = wgpu_conv::plan_forward(&g, true, &ctx.profile(), Algorithm::Gemm).unwrap();
    assert!(!plan.kernels().contains(&"conv2d_forward_planes"), "{plan}");
    let mut rng = Rng::new(4);
    let x = rng.vec(xs.iter().product());
    let w = rng.vec(ws.iter().product());
    let b = rng.vec(g.oc);
    let gy = rng.vec(g.output_shape().iter().product());
    for a in [
        Algorithm::Auto,
        Algorithm::Direct,
        Algorithm::Tiled,
        Algorithm::Gemm,
        Algorithm::Gpu,
    ] {
        check_forward_and_gradients(
            &ctx,
            &g,
            &opts,
            a,
            &format!("{a:?}"),
            (&x, &w, Some(&b), &gy),
        );
    }
}

/// Input, weight, bias (if any) and output gradient.
type Operands<'a> = (&'a [f32], &'a [f32], Option<&'a [f32]>, &'a [f32]);

/// Runs `x`, `w` (and `b`) forward and, with `gy`, backward on `ctx` with `a`, checks the
/// output and the weight and input gradients against the CPU reference, and returns the
/// gradients.
fn check_forward_and_gradients(
    ctx: &GpuContext,
    g: &wgpu_conv::Conv2dGeometry,
    opts: &Conv2dOptions,
    a: Algorithm,
    what: &str,
    (x, w, b, gy): Operands,
) -> wgpu_conv::Conv2dGrads {
    let xt = Tensor::new(g.input_shape().to_vec(), x.to_vec()).unwrap();
    let wt = Tensor::new(g.weight_shape().to_vec(), w.to_vec()).unwrap();
    let bt = b.map(|b| Tensor::new(vec![g.oc], b.to_vec()).unwrap());
    let gyt = Tensor::new(g.output_shape().to_vec(), gy.to_vec()).unwrap();
    let y = ctx.conv2d_with(&xt, &wt, bt.as_ref(), opts, a).unwrap();
    assert_within(
        y.data(),
        &cpu::conv2d_forward(g, x, w, b),
        &format!("forward {what}"),
    );
    let grads = ctx
        .conv2d_backward_with(&xt, &wt, &gyt, opts, Wanted::ALL, a)
        .unwrap();
    assert_within(
        grads.weight.clone().unwrap().data(),
        &cpu::conv2d_weight_grad(g, x, gy),
        &format!("weight grad {what}"),
    );
    assert_within(
        grads.input.clone().unwrap().data(),
        &cpu::conv2d_input_grad(g, w, gy),
        &format!("input grad {what}"),
    );
    grads
}
