//! Autotuning (its own test binary: it sets `WGPU_CONV_CACHE_DIR` for the process). The first
//! request measures the candidates and writes the winner to the cache file; later requests, in
//! this context and in a new one, read it; an edited entry is obeyed, so a cached choice always
//! holds; lines that do not parse are skipped; results stay correct throughout.

mod common;

use common::{assert_within, Rng};
use wgpu_conv::{cpu, Algorithm, Conv2dOptions, GpuContext, Op, Tensor};

fn context() -> GpuContext {
    let ctx = GpuContext::new().expect("a GPU adapter (install mesa-vulkan-drivers)");
    ctx.set_autotune(true);
    ctx
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn autotuning_measures_once_caches_the_winner_and_always_uses_it() {
    let dir = std::env::temp_dir().join(format!("wgpu-conv-autotune-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // the only test in this binary: nothing else reads the environment meanwhile
    std::env::set_var("WGPU_CONV_CACHE_DIR", &dir);
    assert_eq!(wgpu_conv::cache_dir(), Some(dir.clone()));
    let file = dir.join("autotune.tsv");

    let opts = Conv2dOptions::new().padding(1);
    let (xs, ws) = ([2, 8, 12, 12], [8, 8, 3, 3]);
    let g = opts.resolve(xs, ws).unwrap();
    let ctx = context();
    let first = ctx
        .autotuned(Op::Forward, &g, false)
        .unwrap()
        .expect("a choice");
    assert!(!first.from_cache, "nothing was cached yet: {first:?}");
    assert!(
        first.times.len() >= 2,
        "fewer than two candidates: {first:?}"
    );
    let best = first
        .times
        .iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert_eq!(
        first.algorithm, best.0,
        "the winner is not the fastest: {first:?}"
    );
    let text = std::fs::read_to_string(&file).expect("the cache file");
    let line = text
        .lines()
        .find(|l| l.contains("\tforward\t"))
        .unwrap_or_else(|| panic!("no forward entry in\n{text}"));
    assert!(
        line.contains(&format!("\t{}\t", first.algorithm.name())),
        "{line}"
    );

    // the same context, and a new one, read the choice back
    let again = ctx.autotuned(Op::Forward, &g, false).unwrap().unwrap();
    assert!(
        again.from_cache && again.algorithm == first.algorithm,
        "{again:?}"
    );
    let fresh = context();
    let read = fresh.autotuned(Op::Forward, &g, false).unwrap().unwrap();
    assert!(
        read.from_cache && read.algorithm == first.algorithm,
        "{read:?}"
    );
    // another shape in the same bucket (batch, height, width rounded up to powers of two)
    let near = opts.resolve([2, 8, 11, 9], ws).unwrap();
    let bucketed = fresh.autotuned(Op::Forward, &near, false).unwrap().unwrap();
    assert!(bucketed.from_cache, "{bucketed:?}");

    // results under autotuning match the CPU reference, for each tuned op
    let mut rng = Rng::new(7);
    let x = rng.vec(xs.iter().product());
    let w = rng.vec(ws.iter().product());
    let gy = rng.vec(g.output_shape().iter().product());
    let xt = Tensor::new(xs.to_vec(), x.clone()).unwrap();
    let wt = Tensor::new(ws.to_vec(), w.clone()).unwrap();
    let gyt = Tensor::new(g.output_shape().to_vec(), gy.clone()).unwrap();
    let y = fresh.conv2d(&xt, &wt, None, &opts).unwrap();
    assert_within(
        y.data(),
        &cpu::conv2d_forward(&g, &x, &w, None),
        "tuned forward",
    );
    let grads = fresh
        .conv2d_backward(&xt, &wt, &gyt, &opts, wgpu_conv::Wanted::ALL)
        .unwrap();
    assert_within(
        grads.weight.as_ref().unwrap().data(),
        &cpu::conv2d_weight_grad(&g, &x, &gy),
        "tuned weight gradient",
    );
    assert_within(
        grads.input.as_ref().unwrap().data(),
        &cpu::conv2d_input_grad(&g, &w, &gy),
        "tuned input gradient",
    );
    let text = std::fs::read_to_string(&file).unwrap();
    for op in ["weight_grad", "input_grad"] {
        assert!(
            text.contains(&format!("\t{op}\t")),
            "no {op} entry in\n{text}"
        );
    }

    // an edited entry is obeyed (the direct kernel, whatever was measured), and a line that
    // does not parse is skipped
    let edited: String = text
        .lines()
        .map(|l| {
            if l.contains("\tforward\t") {
                let mut f: Vec<&str> = l.split('\t').collect();
                let n = f.len();
                f[n - 2] = "direct";
                f.join("\t")
            } else {
                l.to_string()
            }
        })
        .chain(["not\ta cache line".to_string()])
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&file, edited).unwrap();
    let obeying = context();
    let plan = obeying
        .plan(Op::Forward, &g, false, Algorithm::Auto)
        .unwrap();
    assert_eq!(plan.main_kernel(), Some("conv2d_forward"), "{plan}");
    // an explicit algorithm is never overridden
    let plan = obeying
        .plan(Op::Forward, &g, false, Algorithm::Gpu)
        .unwrap();
    assert_ne!(plan.main_kernel(), Some("conv2d_forward"), "{plan}");
    let y = obeying.conv2d(&xt, &wt, None, &opts).unwrap();
    assert_within(
        y.data(),
        &cpu::conv2d_forward(&g, &x, &w, None),
        "forward (edited cache)",
    );

    // off: no choice, and Auto's rules
    obeying.set_autotune(false);
    assert!(obeying.autotuned(Op::Forward, &g, false).unwrap().is_none());
    let _ = std::fs::remove_dir_all(&dir);
}
