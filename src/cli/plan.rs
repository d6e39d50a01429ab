//! `plan`: how an op would run, computing nothing.

use anyhow::{bail, Result};
use wgpu_conv::{geometry, Algorithm, DeviceProfile, Op};

use super::{bench, context, PlanArgs};

/// `wgpu-conv plan`.
pub fn run(args: PlanArgs) -> Result<()> {
    let PlanArgs {
        shape,
        input,
        weight,
        op,
        algorithm,
        bias,
        webgpu,
        conv,
    } = args;
    // checked before anything is printed
    if !matches!(
        op,
        Op::Forward | Op::WeightGrad | Op::InputGrad | Op::BiasGrad
    ) {
        bail!(
            "{} is not a convolution op: forward, weight_grad, input_grad or bias_grad",
            op.name()
        );
    }
    let (x, w, opts) = match shape {
        Some(name) => {
            let s = bench::shape(&name)?;
            (s.input.to_vec(), s.weight.to_vec(), s.options)
        }
        None if input.is_empty() || weight.is_empty() => {
            bail!("give --shape, or --input and --weight")
        }
        None => (input, weight, conv.options()),
    };
    let g = geometry(&x, &w, None, &opts)?;
    let ctx = if webgpu {
        println!("profile: WebGPU's default limits");
        None
    } else {
        let ctx = context()?;
        println!("adapter: {}", ctx.describe());
        Some(ctx)
    };
    let profile = ctx
        .as_ref()
        .map_or_else(DeviceProfile::webgpu_defaults, |c| c.profile());
    println!(
        "input {:?}, weight {:?} -> output {:?}, {:.3} GFLOP",
        g.input_shape(),
        g.weight_shape(),
        g.output_shape(),
        g.flops() / 1e9
    );
    if let Some(t) = match &ctx {
        Some(c) if algorithm == Algorithm::Auto => c.autotuned(op, &g, bias)?,
        _ => None,
    } {
        let times: Vec<String> = t
            .times
            .iter()
            .map(|(a, s)| format!("{} {:.3} ms", a.name(), s * 1e3))
            .collect();
        println!(
            "autotuned: {} ({}; candidates: {})",
            t.algorithm.name(),
            if t.from_cache {
                "from the cache"
            } else {
                "measured now"
            },
            times.join(", ")
        );
    }
    let plan = match &ctx {
        Some(c) => c.plan(op, &g, bias, algorithm)?,
        None => wgpu_conv::plan(op, &g, bias, &profile, algorithm)?,
    };
    println!("{plan}");
    Ok(())
}
