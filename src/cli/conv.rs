//! `forward` and `backward`: a convolution or its gradients of .npy files.

use std::path::PathBuf;

use anyhow::{bail, Result};
use wgpu_conv::{geometry, Algorithm, Tensor, Wanted};

use super::{check_outputs, context, npy, BackwardArgs, ForwardArgs};

/// `wgpu-conv forward`.
pub fn forward(args: ForwardArgs) -> Result<()> {
    let ForwardArgs {
        input,
        weight,
        bias,
        output,
        conv,
    } = args;
    let mut inputs = vec![input.as_path(), weight.as_path()];
    inputs.extend(bias.as_deref());
    check_outputs(&inputs, &[&output])?;
    let x = npy::read(&input)?;
    let w = npy::read(&weight)?;
    let b = bias.as_deref().map(npy::read).transpose()?;
    check_ranks(&x, &w)?;
    let opts = conv.options();
    let g = geometry(x.shape(), w.shape(), b.as_ref().map(Tensor::len), &opts)?;
    let ctx = context()?;
    let y = ctx.conv2d_resolved(&g, &x, &w, b.as_ref(), Algorithm::Auto)?;
    npy::write(&output, &y)
}

/// `wgpu-conv backward`.
pub fn backward(args: BackwardArgs) -> Result<()> {
    let BackwardArgs {
        input,
        weight,
        grad_output,
        bias,
        conv,
        grad_weight,
        grad_input,
        grad_bias,
    } = args;
    if grad_bias.is_some() && bias.is_none() {
        bail!("--grad-bias needs --bias");
    }
    if grad_weight.is_none() && grad_input.is_none() && grad_bias.is_none() {
        bail!("nothing to do: give at least one of --grad-weight, --grad-input, --grad-bias");
    }
    let mut inputs = vec![input.as_path(), weight.as_path(), grad_output.as_path()];
    inputs.extend(bias.as_deref());
    let outputs: Vec<&std::path::Path> = [&grad_weight, &grad_input, &grad_bias]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
        .collect();
    // every output path is checked before anything is computed or written
    check_outputs(&inputs, &outputs)?;
    let x = npy::read(&input)?;
    let w = npy::read(&weight)?;
    let gy = npy::read(&grad_output)?;
    let b = bias.as_deref().map(npy::read).transpose()?;
    check_ranks(&x, &w)?;
    let opts = conv.options();
    let g = geometry(x.shape(), w.shape(), b.as_ref().map(Tensor::len), &opts)?;
    let ctx = context()?;
    let wanted = Wanted {
        weight: grad_weight.is_some(),
        input: grad_input.is_some(),
        bias: grad_bias.is_some(),
    };
    let grads = ctx.conv2d_backward_resolved(&g, &x, &w, &gy, wanted, Algorithm::Auto)?;
    for (path, t) in [
        (grad_weight, grads.weight),
        (grad_input, grads.input),
        (grad_bias, grads.bias),
    ] {
        if let (Some(p), Some(t)) = (path, t) {
            npy::write(&p, &t)?;
        }
    }
    Ok(())
}

/// The output channel count the target implies: its channel dimension, or 1 for rank 2.
pub fn out_channels(x: &Tensor, y: &Tensor) -> usize {
    match y.shape() {
        [_, oc, _, _] => *oc,
        [oc, _, _] if x.shape().len() == 3 => *oc,
        _ => 1,
    }
}

/// The CLI's rank rules: input rank 2 with weight rank 2, or input rank 4 (or 3) with weight rank 4.
pub fn check_ranks(x: &Tensor, w: &Tensor) -> Result<()> {
    match (x.shape().len(), w.shape().len()) {
        (2, 2) | (3, 4) | (4, 4) => Ok(()),
        (2, r) => bail!("a rank-2 input (H, W) needs a rank-2 weight (KH, KW), got rank {r} {:?}", w.shape()),
        (3, r) => bail!("a rank-3 input (C, H, W) needs a rank-4 weight (OC, C/groups, KH, KW), got rank {r} {:?}", w.shape()),
        (4, r) => bail!("a rank-4 input (N, C, H, W) needs a rank-4 weight (OC, C/groups, KH, KW), got rank {r} {:?}", w.shape()),
        (r, _) => bail!("the input must be rank 2 (H, W), 3 (C, H, W) or 4 (N, C, H, W), got rank {r} {:?}", x.shape()),
    }
}
