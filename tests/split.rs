//! Work larger than the device's largest binding is split into pieces (batch slices, row bands
//! with their halo, output-channel blocks) and gives the unsplit result. The binding limit is
//! forced down to the smallest that can work for each case, so splitting runs on small data on
//! every run.

mod common;

use common::{assert_within, case_data, cases, Rng};
use wgpu_conv::{cpu, Conv2dOptions, Error, GpuContext, Limit, Tensor, Wanted};

fn small_limit_ctx() -> GpuContext {
    GpuContext::new().expect("GPU tests need an adapter (or RUSTFLAGS=\"--cfg no_gpu\" to skip)")
}

/// The smallest binding (bytes) that still admits one piece: a one-row input band of one batch
/// item, one output row, and the weight of one output channel (or all of them with groups).
fn smallest_limit(g: &wgpu_conv::Conv2dGeometry) -> u64 {
    let band = g.c * (g.dilation.h * (g.kh - 1) + 1) * (g.w + g.pad_left + g.pad_right);
    let weight = if g.groups == 1 {
        g.cpg() * g.kh * g.kw
    } else {
        g.oc * g.cpg() * g.kh * g.kw
    };
    // the weight-gradient partials of a piece need room too
    4 * band.max(weight).max(g.ow).max(64) as u64
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn split_forward_and_backward_match_the_reference() {
    let ctx = small_limit_ctx();
    let mut split_cases = 0;
    for (i, case) in cases().iter().enumerate() {
        let g = case.opts.resolve(case.x, case.w).unwrap();
        let limit = smallest_limit(&g);
        ctx.set_binding_limit(Some(limit));
        let whole = [g.input_shape(), g.output_shape()]
            .iter()
            .any(|s| 4 * s.iter().product::<usize>() as u64 > limit);
        split_cases += usize::from(whole);
        let (x, w, b) = case_data(case, 500 + i as u64);
        let xt = Tensor::new(case.x.to_vec(), x.clone()).unwrap();
        let wt = Tensor::new(case.w.to_vec(), w.clone()).unwrap();
        let bt = b
            .as_ref()
            .map(|b| Tensor::new(vec![b.len()], b.clone()).unwrap());
        let y = ctx
            .conv2d(&xt, &wt, bt.as_ref(), &case.opts)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_within(
            y.data(),
            &cpu::conv2d_forward(&g, &x, &w, b.as_deref()),
            &format!("{} split forward", case.name),
        );
        let gy = Rng::new(600 + i as u64).vec(g.output_shape().iter().product());
        let gyt = Tensor::new(g.output_shape().to_vec(), gy.clone()).unwrap();
        let grads = ctx
            .conv2d_backward(&xt, &wt, &gyt, &case.opts, Wanted::ALL)
            .unwrap();
        assert_within(
            grads.weight.as_ref().unwrap().data(),
            &cpu::conv2d_weight_grad(&g, &x, &gy),
            &format!("{} split weight_grad", case.name),
        );
        assert_within(
            grads.input.as_ref().unwrap().data(),
            &cpu::conv2d_input_grad(&g, &w, &gy),
            &format!("{} split input_grad", case.name),
        );
        assert_within(
            grads.bias.as_ref().unwrap().data(),
            &cpu::conv2d_bias_grad(&g, &gy),
            &format!("{} split bias_grad", case.name),
        );
        // deterministic, split or not
        let again = ctx
            .conv2d_backward(&xt, &wt, &gyt, &case.opts, Wanted::ALL)
            .unwrap();
        assert_eq!(
            grads
                .weight
                .unwrap()
                .data()
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>(),
            again
                .weight
                .unwrap()
                .data()
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>(),
            "{}",
            case.name
        );
    }
    assert!(split_cases >= 15, "only {split_cases} cases were split");
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn weight_split_by_output_channels() {
    let ctx = small_limit_ctx();
    let opts = Conv2dOptions::new().padding(1);
    let (xs, ws) = ([2usize, 3, 6, 5], [8usize, 3, 3, 3]);
    let g = opts.resolve(xs, ws).unwrap();
    ctx.set_binding_limit(Some(4 * 3 * 3 * 7)); // a one-row band; two output channels of weight
    let mut rng = Rng::new(3);
    let (x, w, gy) = (
        rng.vec(2 * 3 * 30),
        rng.vec(8 * 27),
        rng.vec(g.output_shape().iter().product()),
    );
    let xt = Tensor::new(xs.to_vec(), x.clone()).unwrap();
    let wt = Tensor::new(ws.to_vec(), w.clone()).unwrap();
    let y = ctx.conv2d(&xt, &wt, None, &opts).unwrap();
    assert_within(
        y.data(),
        &cpu::conv2d_forward(&g, &x, &w, None),
        "oc-split forward",
    );
    let gyt = Tensor::new(g.output_shape().to_vec(), gy.clone()).unwrap();
    let grads = ctx
        .conv2d_backward(&xt, &wt, &gyt, &opts, Wanted::ALL)
        .unwrap();
    assert_within(
        grads.weight.unwrap().data(),
        &cpu::conv2d_weight_grad(&g, &x, &gy),
        "oc-split weight_grad",
    );
    assert_within(
        grads.input.unwrap().data(),
        &cpu::conv2d_input_grad(&g, &w, &gy),
        "oc-split input_grad",
    );
    // a grouped weight that does not fit cannot be split: a typed error that says so
    let gopts = Conv2dOptions::new().groups(3);
    let err = ctx
        .conv2d(
            &Tensor::zeros([1, 3, 6, 6]).unwrap(),
            &Tensor::zeros([6, 1, 5, 5]).unwrap(),
            None,
            &gopts,
        )
        .unwrap_err();
    assert!(
        matches!(&err, Error::TooLarge { what, limit: Limit::Binding, .. } if what.contains("cannot be split")),
        "{err}"
    );
}

/// A real large case, run by hand: `cargo test --release --test split -- --ignored`.
#[test]
#[ignore = "large: a 12000x12000 image (576 MB), run by hand"]
fn large_image_past_the_binding_limit() {
    let ctx = small_limit_ctx();
    let (h, w) = (12000usize, 12000usize);
    let x = Tensor::from_fn([h, w], |i| ((i[0] / 7 + i[1] / 13) % 2) as f32).unwrap();
    let k = Tensor::from_rows(&[[1.0, -1.0]]);
    let t = std::time::Instant::now();
    let y = ctx.corr2d(&x, &k).unwrap();
    eprintln!(
        "12000x12000 corr2d on {}: {:.2} s",
        ctx.describe(),
        t.elapsed().as_secs_f64()
    );
    assert_eq!(y.shape(), [h, w - 1]);
    for (i, row) in y.data().chunks(w - 1).enumerate().step_by(997) {
        for (j, &v) in row.iter().enumerate() {
            assert_eq!(
                v,
                x.data()[i * w + j] - x.data()[i * w + j + 1],
                "({i}, {j})"
            );
        }
    }
}
