//! `train`: learns a kernel from .npy files.

use std::path::PathBuf;

use anyhow::{bail, Result};
use wgpu_conv::{geometry, Conv2d, Sgd, Trainer};

use super::conv::out_channels;
use super::{check_outputs, context, is_stdio, npy, plot, progress, TrainArgs};

/// `wgpu-conv train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let TrainArgs {
        input,
        target,
        kernel_size,
        bias,
        lr,
        momentum,
        weight_decay,
        steps,
        log_every,
        seed,
        output_weight,
        plot,
        conv,
    } = args;
    let outputs: Vec<&std::path::Path> = [&output_weight, &plot]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
        .collect();
    check_outputs(&[&input, &target], &outputs)?;
    // when standard output carries a file, the report goes to standard error
    let to_stdout = !outputs.iter().any(|p| is_stdio(p));
    let say = |line: String| {
        if to_stdout {
            println!("{line}");
        } else {
            eprintln!("{line}");
        }
    };
    let x = npy::read(&input)?;
    let y = npy::read(&target)?;
    if !lr.is_finite() || !momentum.is_finite() || !weight_decay.is_finite() {
        bail!("--lr, --momentum and --weight-decay must be finite numbers");
    }
    if log_every == 0 {
        bail!("--log-every must be at least 1");
    }
    let opts = conv.options();
    let c = x.dims4()?[1];
    let oc = out_channels(&x, &y);
    // the geometry (and so every size) is checked before the weight is allocated
    let wshape = [oc, c / opts.groups.max(1), kernel_size.h, kernel_size.w];
    let g = geometry(x.shape(), &wshape, bias.then_some(oc), &opts)?;
    let out = g.output_shape();
    if !wgpu_conv::target_fits(y.shape(), &out) {
        bail!(
            "the target has shape {:?} but a {kernel_size} kernel gives an output of {:?}",
            y.shape(),
            out
        );
    }
    let layer = Conv2d::new(c, oc, kernel_size, bias, opts, seed)?;
    let ctx = context()?;
    let sgd = Sgd::new(lr).momentum(momentum).weight_decay(weight_decay);
    let mut trainer = Trainer::new(&ctx, &layer, &x, &y, sgd)?;
    let bar = progress(steps as u64, "training");
    let mut points = Vec::new();
    let mut diverged = None;
    for i in 0..steps {
        let log = (i + 1) % log_every == 0;
        // every step's loss is read, so that a diverging run stops at once
        let Some(loss) = trainer.step(true)? else {
            continue;
        };
        if !loss.is_finite() {
            diverged = Some((i + 1, loss));
            break;
        }
        points.push((i + 1, loss));
        if log {
            bar.suspend(|| say(format!("epoch {}, loss {loss:.3}", i + 1)));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if let Some(p) = &plot {
        let title = match diverged {
            Some((step, _)) => format!("training loss, lr {lr}: not finite at step {step}"),
            None => format!("training loss, lr {lr}"),
        };
        plot::loss_svg(p, &points, diverged.map(|d| d.0), &title)?;
        if !is_stdio(p) {
            eprintln!("loss curve written to {}", p.display());
        }
    }
    if let Some((step, loss)) = diverged {
        bail!("training diverged: the loss is {loss} at step {step} (try a smaller --lr)");
    }
    let learned = trainer.layer()?;
    say(format!(
        "learned kernel {:?}: {:?}",
        learned.weight().shape(),
        learned.weight().data()
    ));
    if let Some(b) = learned.bias() {
        say(format!("learned bias: {:?}", b.data()));
    }
    if let Some(p) = output_weight {
        npy::write(&p, learned.weight())?;
    }
    Ok(())
}
