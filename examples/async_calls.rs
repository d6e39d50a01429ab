//! The async half of the API, the one a browser has: calls return futures that any executor
//! drives (here pollster's `block_on`); the device runs while the caller does other work.
//!
//! `cargo run --release --example async_calls`

use wgpu_conv::{Conv2d, Conv2dOptions, GpuContext, Tensor};

fn main() -> Result<(), wgpu_conv::Error> {
    pollster::block_on(run())
}

async fn run() -> Result<(), wgpu_conv::Error> {
    let ctx = GpuContext::new_async().await?;
    let opts = Conv2dOptions::new().padding(1);
    let x = Tensor::from_fn([2, 3, 32, 32], |i| {
        ((i[2] * 7 + i[3] * 3) % 11) as f32 / 11.0
    })?;
    let w = Tensor::from_fn([8, 3, 3, 3], |i| (i[0] as f32 - i[3] as f32) / 8.0)?;
    // submitted now; resolved when awaited
    let forward = ctx.conv2d_async(&x, &w, None, &opts);
    let cpu = wgpu_conv::cpu::conv2d_forward(
        &opts.resolve([2, 3, 32, 32], [8, 3, 3, 3])?,
        x.data(),
        w.data(),
        None,
    );
    let y = forward.await?;
    // within the stated bound of the CPU reference (f64 sums; see wgpu_conv::cpu)
    let check = wgpu_conv::cpu::compare(y.data(), &cpu);
    assert!(check.ok(), "{check}");
    println!(
        "conv2d_async: {:?}, against the CPU reference: {check}",
        y.shape()
    );

    // layers chained on the device, one download at the end
    let a = Conv2d::new(3, 8, 3, true, opts, 1)?;
    let b = Conv2d::new(8, 4, 3, false, Conv2dOptions::new().stride(2), 2)?;
    let xg = ctx.upload(&x)?;
    let h = a.forward_gpu(&ctx, &xg)?;
    let out = b.forward_gpu(&ctx, &h)?;
    let host = ctx.download_async(&[&out]).await?.remove(0);
    println!(
        "two layers on the device, then one download: {:?}",
        host.shape()
    );
    Ok(())
}
