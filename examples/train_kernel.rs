//! Learning the chapter's edge kernel: a 1->1 channel layer with a (1, 2) kernel and no bias,
//! squared error, learning rate 3e-2, 10 steps on the GPU, the loss every 2.
//!
//! `cargo run --release --example train_kernel`

use wgpu_conv::{filters, Conv2d, Conv2dOptions, GpuContext, Sgd, Tensor, Trainer};

fn main() -> Result<(), wgpu_conv::Error> {
    let ctx = GpuContext::new()?;
    let x = Tensor::from_fn(
        [1, 1, 6, 8],
        |i| if (2..6).contains(&i[3]) { 0.0 } else { 1.0 },
    )?;
    // the target: the edge detector's output
    let y = ctx.corr2d(&x.clone().reshape(vec![6, 8])?, &filters::edge())?;
    let layer = Conv2d::new(1, 1, (1, 2), false, Conv2dOptions::new(), 0)?;
    // one submission per step; the loss is read back only when asked for
    let mut trainer = Trainer::new(&ctx, &layer, &x, &y, Sgd::new(3e-2))?;
    for step in 1..=10 {
        if let Some(loss) = trainer.step(step % 2 == 0)? {
            println!("epoch {step}, loss {loss:.3}");
        }
    }
    let learned = trainer.layer()?;
    let k = learned.weight().data();
    println!("learned kernel: {k:?}");
    assert!((k[0] - 1.0).abs() < 0.2 && (k[1] + 1.0).abs() < 0.2);
    Ok(())
}
