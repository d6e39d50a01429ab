//! The chapter's first results as library calls: `corr2d` of the figure, a Conv2D layer with
//! a random weight and a scalar bias, and the edge detector on the 6x8 image and its transpose.
//!
//! `cargo run --release --example corr2d`

use wgpu_conv::{filters, Conv2d, Conv2dOptions, GpuContext, Tensor};

fn main() -> Result<(), wgpu_conv::Error> {
    let ctx = GpuContext::new()?;
    println!("on {}", ctx.describe());

    // corr2d of the figure's 3x3 input and 2x2 kernel
    let x = Tensor::from_fn([3, 3], |i| (i[0] * 3 + i[1]) as f32)?;
    let k = Tensor::from_rows(&[[0.0, 1.0], [2.0, 3.0]]);
    let y = ctx.corr2d(&x, &k)?;
    println!("corr2d: {:?} {:?}", y.shape(), y.data());
    assert_eq!(y.data(), &[19.0, 25.0, 37.0, 43.0]);

    // a Conv2D layer: a (1, 2) weight drawn at random (seeded) and a scalar bias
    let layer = Conv2d::new(1, 1, (1, 2), true, Conv2dOptions::new(), 7)?;
    let image = Tensor::from_fn(
        [1, 1, 6, 8],
        |i| if (2..6).contains(&i[3]) { 0.0 } else { 1.0 },
    )?;
    let out = layer.forward(&ctx, &image)?;
    println!(
        "layer: weight {:?}, bias {:?}, output {:?}",
        layer.weight().data(),
        layer.bias().map(Tensor::data),
        out.shape()
    );

    // edge detection: 1 and -1 where a row changes, zeros on the transposed image
    let edges = ctx.corr2d(&image.clone().reshape(vec![6, 8])?, &filters::edge())?;
    println!("edges, first row: {:?}", &edges.data()[..7]);
    assert_eq!(&edges.data()[..7], &[0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0]);
    let transposed = Tensor::from_fn([8, 6], |i| image.data()[i[1] * 8 + i[0]])?;
    let none = ctx.corr2d(&transposed, &filters::edge())?;
    assert!(none.data().iter().all(|&v| v == 0.0));
    println!("edges of the transposed image: all {} zero", none.len());
    Ok(())
}
