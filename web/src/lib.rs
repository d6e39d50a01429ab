//! The chapter as a web page: what `web/index.html` calls, on the browser's WebGPU adapter.
//! Every function resolves a JavaScript promise; the page draws what they return.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wgpu_conv::{
    filters, train_cpu, Conv2d, Conv2dOptions, ConvMode, GpuContext, Sgd, Tensor, Trainer,
};

thread_local! {
    /// The page's one context, made on first use.
    static CONTEXT: RefCell<Option<Rc<GpuContext>>> = const { RefCell::new(None) };
}

fn err(e: impl std::fmt::Display) -> JsValue {
    JsValue::from_str(&e.to_string())
}

async fn context() -> Result<Rc<GpuContext>, JsValue> {
    if let Some(ctx) = CONTEXT.with(|c| c.borrow().clone()) {
        return Ok(ctx);
    }
    let ctx = Rc::new(GpuContext::new_async().await.map_err(err)?);
    CONTEXT.with(|c| *c.borrow_mut() = Some(Rc::clone(&ctx)));
    Ok(ctx)
}

/// The chapter's 6x8 image: columns 2..6 black (0), the rest white (1).
fn edge_image() -> Tensor {
    Tensor::from_fn([6, 8], |i| if (2..6).contains(&i[1]) { 0.0 } else { 1.0 })
        .expect("a 6x8 image")
}

/// The adapter the page runs on.
#[wasm_bindgen]
pub async fn adapter() -> Result<String, JsValue> {
    Ok(context().await?.describe())
}

/// `corr2d` of the figure's 3x3 input and 2x2 kernel (row-major 2x2).
#[wasm_bindgen]
pub async fn corr2d_figure() -> Result<Vec<f32>, JsValue> {
    let ctx = context().await?;
    let x = Tensor::from_rows(&[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]);
    let k = Tensor::from_rows(&[[0.0, 1.0], [2.0, 3.0]]);
    Ok(ctx.corr2d_async(&x, &k).await.map_err(err)?.into_data())
}

/// The 6x8 image (row-major).
#[wasm_bindgen]
pub fn chapter_image() -> Vec<f32> {
    edge_image().into_data()
}

/// Edge detection with `[[1, -1]]` on the 6x8 image (6x7), or on its transpose (8x5).
#[wasm_bindgen]
pub async fn edges(transposed: bool) -> Result<Vec<f32>, JsValue> {
    let ctx = context().await?;
    let mut x = edge_image();
    if transposed {
        x = x.transpose2().map_err(err)?;
    }
    let y = ctx.corr2d_async(&x, &filters::edge()).await;
    Ok(y.map_err(err)?.into_data())
}

/// Learns the (1, 2) kernel from the edge image and its edges: `steps` steps of SGD at
/// `lr`, strict convolution when `strict`. Returns the loss of every step, then the kernel.
#[wasm_bindgen]
pub async fn learn_kernel(steps: usize, lr: f32, strict: bool) -> Result<Vec<f32>, JsValue> {
    let ctx = context().await?;
    let x = edge_image().reshape(vec![1, 1, 6, 8]).map_err(err)?;
    let y = ctx.corr2d_async(&edge_image(), &filters::edge()).await;
    let y = y.map_err(err)?.reshape(vec![1, 1, 6, 7]).map_err(err)?;
    let opts = if strict {
        Conv2dOptions::new().mode(ConvMode::Convolution)
    } else {
        Conv2dOptions::new()
    };
    let init = Conv2d::new(1, 1, (1, 2), false, opts, 0).map_err(err)?;
    let mut trainer = Trainer::new(&ctx, &init, &x, &y, Sgd::new(lr)).map_err(err)?;
    let mut out = Vec::with_capacity(steps + 2);
    for _ in 0..steps {
        let loss = trainer.step_async(true).await.map_err(err)?;
        out.push(loss.unwrap_or(f32::NAN));
    }
    let layer = trainer.layer_async().await.map_err(err)?;
    out.extend_from_slice(layer.weight().data());
    Ok(out)
}

/// Sobel edge magnitude of an RGBA image (`width` x `height`, as a canvas's `ImageData`), as
/// RGBA gray levels scaled to the largest magnitude.
#[wasm_bindgen]
pub async fn sobel(rgba: Vec<u8>, width: usize, height: usize) -> Result<Vec<u8>, JsValue> {
    let ctx = context().await?;
    if width < 3 || height < 3 || rgba.len() != width * height * 4 {
        return Err(err(format!(
            "an RGBA image of at least 3x3 is needed, got {} bytes for {width}x{height}",
            rgba.len()
        )));
    }
    let gray = Tensor::new(
        vec![height, width],
        rgba.chunks(4)
            .map(|p| (0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32) / 255.0)
            .collect(),
    )
    .map_err(err)?;
    let same = Conv2dOptions::new().padding(1);
    let gx = ctx.conv2d_async(&gray, &filters::sobel_x(), None, &same);
    let gy = ctx.conv2d_async(&gray, &filters::sobel_y(), None, &same);
    let (gx, gy) = (gx.await.map_err(err)?, gy.await.map_err(err)?);
    let magnitude: Vec<f32> = gx
        .data()
        .iter()
        .zip(gy.data())
        .map(|(a, b)| (a * a + b * b).sqrt())
        .collect();
    let top = magnitude.iter().copied().fold(1e-6f32, f32::max);
    Ok(magnitude
        .iter()
        .flat_map(|m| {
            let v = (255.0 * m / top).round() as u8;
            [v, v, v, 255]
        })
        .collect())
}

/// The page's checks, each `(name, passed, detail)`; the page logs one line from them.
async fn checks() -> Result<Vec<(String, bool, String)>, JsValue> {
    let mut out = Vec::new();
    let mut check = |name: &str, ok: bool, detail: String| out.push((name.to_string(), ok, detail));

    let fig = corr2d_figure().await?;
    check(
        "corr2d of the figure is [[19, 25], [37, 43]]",
        fig == [19.0, 25.0, 37.0, 43.0],
        format!("{fig:?}"),
    );
    let e = edges(false).await?;
    let row = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0];
    check(
        "edges at columns 1 and 5",
        e.len() == 42 && e.chunks(7).all(|r| r == row),
        format!("{e:?}"),
    );
    let t = edges(true).await?;
    check(
        "zeros on the transposed image",
        t.len() == 40 && t.iter().all(|&v| v == 0.0),
        format!("{t:?}"),
    );
    let learned = learn_kernel(10, 3e-2, false).await?;
    let (losses, k) = learned.split_at(10);
    check(
        "the loss falls",
        losses.windows(2).all(|w| w[1] < w[0]),
        format!("{losses:?}"),
    );
    check(
        "the learned kernel is within 0.1 of [1, -1]",
        (k[0] - 1.0).abs() <= 0.1 && (k[1] + 1.0).abs() <= 0.1,
        format!("{k:?}"),
    );
    let x = edge_image().reshape(vec![1, 1, 6, 8]).map_err(err)?;
    let y = Tensor::from_fn([1, 1, 6, 7], |i| {
        x.at(&[0, 0, i[2], i[3]]) - x.at(&[0, 0, i[2], i[3] + 1])
    })
    .map_err(err)?;
    let init = Conv2d::new(1, 1, (1, 2), false, Conv2dOptions::new(), 0).map_err(err)?;
    let (cpu_layer, _) = train_cpu(&init, &x, &y, Sgd::new(3e-2), 10).map_err(err)?;
    let cpu_k = cpu_layer.weight().data();
    check(
        "the GPU's training matches the CPU reference within 1e-4",
        k.iter().zip(cpu_k).all(|(a, b)| (a - b).abs() <= 1e-4),
        format!("GPU {k:?}, CPU {cpu_k:?}"),
    );
    let strict = learn_kernel(10, 3e-2, true).await?;
    let ks = &strict[10..];
    check(
        "under strict convolution the learned kernel is flipped, near [-1, 1]",
        (ks[0] + 1.0).abs() <= 0.1 && (ks[1] - 1.0).abs() <= 0.1,
        format!("{ks:?}"),
    );
    Ok(out)
}

/// Runs the checks and returns the page's console line: `wgpu-conv web: all N checks passed
/// on <adapter>`, or `wgpu-conv web: FAILED <check>: <why>` for the first that failed.
#[wasm_bindgen]
pub async fn run_checks() -> String {
    let adapter = match adapter().await {
        Ok(a) => a,
        Err(e) => return format!("wgpu-conv web: FAILED WebGPU adapter: {e:?}"),
    };
    match checks().await {
        Ok(list) => match list.iter().find(|c| !c.1) {
            Some((name, _, detail)) => format!("wgpu-conv web: FAILED {name}: {detail}"),
            None => format!(
                "wgpu-conv web: all {} checks passed on {adapter}",
                list.len()
            ),
        },
        Err(e) => format!("wgpu-conv web: FAILED a call: {e:?}"),
    }
}
