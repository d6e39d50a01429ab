//! Edges of an image with the library alone (feature `image`): load, filter on the GPU with
//! the Sobel pair, map the gradient magnitude to gray, save.
//!
//! `cargo run --release --features image --example edges -- [IN.png|IN.jpg] [OUT.png]`
//! (without arguments: a drawn image, and the edges in the system's temporary folder)

use wgpu_conv::images::{self, Color, Map};
use wgpu_conv::{filters, GpuContext, PaddingMode, Tensor};

fn main() -> Result<(), wgpu_conv::Error> {
    let mut args = std::env::args_os().skip(1);
    let image = match args.next() {
        Some(path) => images::load(path.as_ref(), Color::Gray, images::DEFAULT_MAX_PIXELS)?,
        // a disc on a gradient
        None => Tensor::from_fn([120, 160], |i| {
            let (y, x) = (i[0] as f32 - 60.0, i[1] as f32 - 80.0);
            if x * x + y * y < 40.0 * 40.0 {
                0.1
            } else {
                i[1] as f32 / 160.0
            }
        })?,
    };
    let out = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("wgpu-conv-edges.png"));
    let ctx = GpuContext::new()?;
    // x and y responses in one two-channel convolution, combined into their magnitude
    let sobel = filters::edge_kernel("sobel")?;
    let edges = filters::apply(&ctx, &image, &sobel, PaddingMode::Replicate)?;
    images::to_image(&edges, Map::Abs)?
        .save(&out)
        .map_err(images::error)?;
    println!(
        "{:?} image, Sobel magnitude on {} -> {}",
        image.shape(),
        ctx.describe(),
        out.display()
    );
    Ok(())
}
