//! The JavaScript API: a [`Context`] on the browser's WebGPU adapter with the library's calls,
//! and a [`Trainer`]. Every call on the GPU returns a promise; a failure rejects it with an
//! `Error` carrying the library's message.

use std::rc::Rc;

use js_sys::{Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::{ImageBitmap, ImageData, OffscreenCanvas, OffscreenCanvasRenderingContext2d};
use wgpu_conv::{filters, pixels, Conv2d, Error, GpuContext, PaddingMode, Sgd, Tensor, Wanted};

use crate::convert::{
    conv_options, err, given, output, set, tensor, tensor_of, BackwardOptionsJs, Conv2dOptionsJs,
    EdgeOptionsJs, Fields,
};

/// What the browser says of its adapter (`GPUAdapter.info`), read as `Context.create` starts.
#[derive(Clone, Default)]
struct AdapterInfo {
    vendor: String,
    architecture: String,
    device: String,
    description: String,
    fallback: bool,
}

/// `navigator.gpu` in a window or a worker, if the browser has it.
fn navigator_gpu() -> Option<JsValue> {
    let global = js_sys::global();
    let navigator = Reflect::get(&global, &"navigator".into()).ok()?;
    let gpu = Reflect::get(&navigator, &"gpu".into()).ok()?;
    (!gpu.is_undefined() && !gpu.is_null()).then_some(gpu)
}

/// The adapter's `info` through `navigator.gpu.requestAdapter()`; `Err` with the reason there
/// is none.
async fn adapter_info() -> Result<AdapterInfo, Error> {
    let no = |why: &str| Error::NoAdapter {
        detail: format!(" ({why})"),
    };
    let gpu = navigator_gpu().ok_or_else(|| no("navigator.gpu is missing"))?;
    let request = Reflect::get(&gpu, &"requestAdapter".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .ok_or_else(|| no("navigator.gpu.requestAdapter is missing"))?;
    let promise = request
        .call0(&gpu)
        .ok()
        .and_then(|p| p.dyn_into::<Promise>().ok())
        .ok_or_else(|| no("navigator.gpu.requestAdapter() failed"))?;
    let adapter = JsFuture::from(promise)
        .await
        .map_err(|e| no(&format!("requestAdapter() failed: {e:?}")))?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err(no("navigator.gpu.requestAdapter() gave none"));
    }
    let info = Reflect::get(&adapter, &"info".into()).unwrap_or(JsValue::UNDEFINED);
    let text = |key: &str| {
        Reflect::get(&info, &key.into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    let fallback = Reflect::get(&info, &"isFallbackAdapter".into())
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    Ok(AdapterInfo {
        vendor: text("vendor"),
        architecture: text("architecture"),
        device: text("device"),
        description: text("description"),
        fallback,
    })
}

/// A GPU device in this page, with the library's compiled kernels and buffers.
#[wasm_bindgen]
pub struct Context {
    ctx: Rc<GpuContext>,
    info: AdapterInfo,
}

/// Runs `f` as a promise resolving to its value.
fn promise<F>(f: F) -> Promise
where
    F: std::future::Future<Output = Result<JsValue, JsValue>> + 'static,
{
    future_to_promise(f)
}

#[wasm_bindgen]
impl Context {
    /// Starts WebGPU: the browser's adapter and a device on it. Rejects, with the browsers
    /// and flags that have WebGPU, where this one has none.
    #[wasm_bindgen(unchecked_return_type = "Promise<Context>")]
    pub fn create() -> Promise {
        promise(async {
            let info = adapter_info().await.map_err(err)?;
            let ctx = GpuContext::new_async().await.map_err(err)?;
            Ok(Context {
                ctx: Rc::new(ctx),
                info,
            }
            .into())
        })
    }

    /// The adapter: `{ vendor, architecture, device, description, fallback }` from
    /// `GPUAdapter.info` (`fallback`: a software adapter).
    #[wasm_bindgen(getter, unchecked_return_type = "AdapterInfo")]
    pub fn adapter(&self) -> JsValue {
        let o = Object::new();
        let i = &self.info;
        for (k, v) in [
            ("vendor", &i.vendor),
            ("architecture", &i.architecture),
            ("device", &i.device),
            ("description", &i.description),
        ] {
            set(&o, k, &JsValue::from_str(v));
        }
        set(&o, "fallback", &JsValue::from_bool(i.fallback));
        o.into()
    }

    /// One line naming the adapter: vendor, architecture and description from
    /// `GPUAdapter.info`, and whether it is a software fallback.
    pub fn describe(&self) -> String {
        let i = &self.info;
        let name: Vec<&str> = [&i.vendor, &i.architecture, &i.device, &i.description]
            .into_iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        let name = if name.is_empty() {
            "an adapter the browser does not name".to_string()
        } else {
            name.join(" ")
        };
        let kind = if i.fallback {
            ", software fallback"
        } else {
            ""
        };
        format!("{name} (WebGPU{kind})")
    }

    /// `conv2d(x, w, bias, stride, padding, dilation, groups)` as PyTorch's: `x` `(N, C, H,
    /// W)`, `(C, H, W)` or `(H, W)`, `w` `(OC, C/groups, KH, KW)` or `(KH, KW)`; `options`
    /// holds `bias` (`{ data, shape }`), `stride`, `padding`, `dilation`, `groups`,
    /// `paddingMode` and `mode`.
    #[wasm_bindgen(js_name = conv2d, unchecked_return_type = "Promise<Output>")]
    pub fn conv2d(
        &self,
        x: &[f32],
        #[wasm_bindgen(js_name = xShape, unchecked_param_type = "number[]")] x_shape: &[u32],
        w: &[f32],
        #[wasm_bindgen(js_name = wShape, unchecked_param_type = "number[]")] w_shape: &[u32],
        options: Option<Conv2dOptionsJs>,
    ) -> Result<Promise, JsValue> {
        let x = tensor(x, x_shape, "x")?;
        let w = tensor(w, w_shape, "w")?;
        let mut f = Fields::new(&given(options), "conv2d option")?;
        let bias = f.tensor("bias")?;
        let opts = conv_options(&mut f)?;
        f.finish()?;
        let run = self.ctx.conv2d_async(&x, &w, bias.as_ref(), &opts);
        Ok(promise(async move { Ok(output(&run.await.map_err(err)?)) }))
    }

    /// The gradients of `sum(y * gradOutput)` for `y = conv2d(x, w, options)`: `{ input,
    /// weight, bias }`, each `{ data, shape }`, those named in `options.wanted` (default all
    /// three; `bias` is the sum of `gradOutput` over all but its channel axis).
    #[wasm_bindgen(js_name = conv2dBackward, unchecked_return_type = "Promise<Gradients>")]
    #[allow(clippy::too_many_arguments)]
    pub fn conv2d_backward(
        &self,
        x: &[f32],
        #[wasm_bindgen(js_name = xShape, unchecked_param_type = "number[]")] x_shape: &[u32],
        w: &[f32],
        #[wasm_bindgen(js_name = wShape, unchecked_param_type = "number[]")] w_shape: &[u32],
        #[wasm_bindgen(js_name = gradOutput)] grad_output: &[f32],
        #[wasm_bindgen(js_name = gradOutputShape, unchecked_param_type = "number[]")]
        gy_shape: &[u32],
        options: Option<BackwardOptionsJs>,
    ) -> Result<Promise, JsValue> {
        let x = tensor(x, x_shape, "x")?;
        let w = tensor(w, w_shape, "w")?;
        let gy = tensor(grad_output, gy_shape, "gradOutput")?;
        let mut f = Fields::new(&given(options), "conv2dBackward option")?;
        let wanted = match f.get("wanted") {
            None => Wanted::ALL,
            Some(v) => {
                let names: Vec<String> = js_sys::Array::from(&v)
                    .iter()
                    .map(|n| n.as_string().unwrap_or_default())
                    .collect();
                if let Some(bad) = names
                    .iter()
                    .find(|n| !["input", "weight", "bias"].contains(&n.as_str()))
                {
                    return Err(err(format!(
                        "wanted holds \"input\", \"weight\" or \"bias\", got {bad:?}"
                    )));
                }
                let has = |n: &str| names.iter().any(|m| m == n);
                Wanted {
                    input: has("input"),
                    weight: has("weight"),
                    bias: has("bias"),
                }
            }
        };
        let opts = conv_options(&mut f)?;
        f.finish()?;
        let run = self.ctx.conv2d_backward_async(&x, &w, &gy, &opts, wanted);
        Ok(promise(async move {
            let g = run.await.map_err(err)?;
            let o = Object::new();
            for (k, t) in [
                ("input", &g.input),
                ("weight", &g.weight),
                ("bias", &g.bias),
            ] {
                if let Some(t) = t {
                    set(&o, k, &output(t));
                }
            }
            Ok(o.into())
        }))
    }

    /// The chapter's `corr2d(X, K)` of two 2-D arrays: `(H-KH+1, W-KW+1)`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Output>")]
    pub fn corr2d(
        &self,
        x: &[f32],
        #[wasm_bindgen(js_name = xShape, unchecked_param_type = "number[]")] x_shape: &[u32],
        k: &[f32],
        #[wasm_bindgen(js_name = kShape, unchecked_param_type = "number[]")] k_shape: &[u32],
    ) -> Result<Promise, JsValue> {
        let x = tensor(x, x_shape, "x")?;
        let k = tensor(k, k_shape, "k")?;
        let run = self.ctx.corr2d_async(&x, &k);
        Ok(promise(async move { Ok(output(&run.await.map_err(err)?)) }))
    }

    /// The edge map of a picture as `wgpu-conv edges` draws it: gray levels by Rec. 709 luma,
    /// the kernel (`options`, or `options.kernel`: default `"sobel"`, the gradient magnitude;
    /// any name of `wgpu-conv edges --kernel`), same-size output with `options.paddingMode` at the
    /// border (default `"replicate"`), and `options.map` (`"auto"`, `"abs"`, `"signed"`,
    /// `"clamp"`) to levels. Resolves to an opaque gray `ImageData` of the picture's size.
    #[wasm_bindgen(unchecked_return_type = "Promise<ImageData>")]
    pub fn edges(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ImageData | ImageBitmap")] image: JsValue,
        options: Option<EdgeOptionsJs>,
    ) -> Result<Promise, JsValue> {
        let gray = gray_of(&image)?;
        let options = given(options);
        // a kernel name alone, or the options object
        let (name, options) = match options.as_string() {
            Some(name) => (Some(name), JsValue::UNDEFINED),
            None => (None, options),
        };
        let mut f = Fields::new(&options, "edges option")?;
        let kernel = match name {
            Some(n) => n,
            None => f.string("kernel")?.unwrap_or_else(|| "sobel".into()),
        };
        let mode = match f.string("paddingMode")? {
            Some(m) => m.parse::<PaddingMode>().map_err(err)?,
            None => PaddingMode::Replicate,
        };
        let map = f.string("map")?;
        f.finish()?;
        let weight = filters::edge_kernel(&kernel).map_err(err)?;
        let map = match map.as_deref() {
            None | Some("auto") => pixels::Map::for_kernel(&weight),
            Some("abs") => pixels::Map::Abs,
            Some("signed") => pixels::Map::Signed,
            Some("clamp") => pixels::Map::Clamp,
            Some(other) => {
                return Err(err(format!(
                    "map must be auto, abs, signed or clamp; got {other:?}"
                )))
            }
        };
        let ctx = Rc::clone(&self.ctx);
        Ok(promise(async move {
            let y = filters::apply_async(&ctx, &gray, &weight, mode)
                .await
                .map_err(err)?;
            let levels = pixels::levels(&y, map).map_err(err)?;
            // a copy the JavaScript side owns: an ImageData over a view of the module's
            // memory would change under it as the memory is reused
            let rgba = js_sys::Uint8ClampedArray::from(&levels.to_rgba8()[..]);
            let img = ImageData::new_with_js_u8_clamped_array_and_sh(
                &rgba,
                levels.width as u32,
                levels.height as u32,
            )?;
            Ok(img.into())
        }))
    }
}

/// The gray levels of an `ImageData`, or of an `ImageBitmap` drawn on an offscreen canvas.
fn gray_of(image: &JsValue) -> Result<Tensor, JsValue> {
    let data = if let Some(d) = image.dyn_ref::<ImageData>() {
        d.clone()
    } else if let Some(b) = image.dyn_ref::<ImageBitmap>() {
        let (w, h) = (b.width(), b.height());
        let canvas = OffscreenCanvas::new(w, h)?;
        let g: OffscreenCanvasRenderingContext2d = canvas
            .get_context("2d")?
            .ok_or_else(|| err("no 2-D context on an OffscreenCanvas"))?
            .dyn_into()?;
        g.draw_image_with_image_bitmap(b, 0.0, 0.0)?;
        g.get_image_data(0.0, 0.0, f64::from(w), f64::from(h))?
    } else {
        return Err(err("edges takes an ImageData or an ImageBitmap"));
    };
    let (w, h) = (data.width() as usize, data.height() as usize);
    pixels::gray_from_rgba8(&data.data(), w, h).map_err(err)
}

/// Trains a convolution layer by SGD on the chapter's squared error, on the GPU: each
/// `step()` is recorded without a read, and `losses()` reads the loss of every step since
/// the last read at once.
#[wasm_bindgen]
pub struct Trainer {
    // declared before `_ctx`, so dropped first: it borrows the context `_ctx` keeps alive
    trainer: wgpu_conv::Trainer<'static>,
    _ctx: Rc<GpuContext>,
}

#[wasm_bindgen]
impl Trainer {
    /// A trainer mapping `x` to `target` (the layer's output shape). `options`: the layer,
    /// either `weight` (`{ data, shape }`, `(OC, C/groups, KH, KW)`) or `kernelSize` (a
    /// number or `[kh, kw]`) with `inChannels` and `outChannels` (default 1) and `seed`
    /// (default 0) for PyTorch's uniform initialisation; `bias` (true, or `{ data, shape }`;
    /// default none), the convolution options of `conv2d`, and the optimizer: `lr`,
    /// `momentum`, `weightDecay`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        context: &Context,
        x: &[f32],
        #[wasm_bindgen(js_name = xShape, unchecked_param_type = "number[]")] x_shape: &[u32],
        target: &[f32],
        #[wasm_bindgen(js_name = targetShape, unchecked_param_type = "number[]")]
        target_shape: &[u32],
        #[wasm_bindgen(unchecked_param_type = "TrainerOptions")] options: JsValue,
    ) -> Result<Trainer, JsValue> {
        let x = tensor(x, x_shape, "x")?;
        let target = tensor(target, target_shape, "target")?;
        let (layer, sgd) = layer_and_sgd(&x, &options)?;
        let ctx = Rc::clone(&context.ctx);
        // SAFETY: the reference points into the `Rc` allocation that `ctx` keeps alive for
        // the whole life of the `Trainer`, and the borrowing trainer is dropped first (field
        // order); the context is never moved out of its `Rc`.
        let ctx_ref: &'static GpuContext = unsafe { &*Rc::as_ptr(&ctx) };
        let trainer = wgpu_conv::Trainer::new(ctx_ref, &layer, &x, &target, sgd).map_err(err)?;
        trainer.keep_losses().map_err(err)?;
        Ok(Trainer { trainer, _ctx: ctx })
    }

    /// Records `steps` steps (default 1), submitted as they gather; nothing is read.
    pub fn step(&mut self, steps: Option<u32>) -> Result<(), JsValue> {
        for _ in 0..steps.unwrap_or(1) {
            self.trainer.step_unread().map_err(err)?;
        }
        Ok(())
    }

    /// The loss of every step since the previous read (before that step's update, as the
    /// chapter prints it), in one read.
    #[wasm_bindgen(unchecked_return_type = "Promise<Float32Array>")]
    pub fn losses(&self) -> Promise {
        let read = self.trainer.losses_async();
        promise(async move {
            let l = read.await.map_err(err)?;
            Ok(js_sys::Float32Array::from(&l[..]).into())
        })
    }

    /// The layer as trained so far: `{ weight, bias }`, each `{ data, shape }` (`bias` only
    /// for a layer with one).
    #[wasm_bindgen(unchecked_return_type = "Promise<Layer>")]
    pub fn layer(&self) -> Promise {
        let read = self.trainer.layer_async();
        promise(async move {
            let layer = read.await.map_err(err)?;
            let o = Object::new();
            set(&o, "weight", &output(layer.weight()));
            if let Some(b) = layer.bias() {
                set(&o, "bias", &output(b));
            }
            Ok(o.into())
        })
    }
}

/// The layer and optimizer a `Trainer`'s options describe.
pub(crate) fn layer_and_sgd(x: &Tensor, options: &JsValue) -> Result<(Conv2d, Sgd), JsValue> {
    let mut f = Fields::new(options, "Trainer option")?;
    let lr = f
        .number("lr")?
        .ok_or_else(|| err("Trainer needs options.lr, the learning rate"))?;
    let mut sgd = Sgd::new(lr as f32);
    if let Some(m) = f.number("momentum")? {
        sgd = sgd.momentum(m as f32);
    }
    if let Some(d) = f.number("weightDecay")? {
        sgd = sgd.weight_decay(d as f32);
    }
    let weight = f.tensor("weight")?;
    let kernel = f.hw("kernelSize")?;
    let in_channels = f.count("inChannels")?;
    let out_channels = f.count("outChannels")?.unwrap_or(1);
    let seed = f.count("seed")?.unwrap_or(0) as u64;
    let bias = match f.get("bias") {
        None => (false, None),
        Some(v) if v.as_bool().is_some() => (v.as_bool() == Some(true), None),
        Some(v) => (true, Some(tensor_of(&v, "bias")?)),
    };
    let opts = conv_options(&mut f)?;
    f.finish()?;
    let layer = match (weight, kernel) {
        (Some(w), None) => Conv2d::from_weight(w, bias.1, opts).map_err(err)?,
        (None, Some(k)) => {
            let c = in_channels.unwrap_or(match x.shape() {
                [c, _, _] | [_, c, _, _] => *c,
                _ => 1,
            });
            let mut layer = Conv2d::new(c, out_channels, k, bias.0, opts, seed).map_err(err)?;
            if let Some(b) = bias.1 {
                layer.set_bias(b).map_err(err)?;
            }
            layer
        }
        _ => {
            return Err(err(
                "Trainer needs exactly one of options.weight and options.kernelSize",
            ))
        }
    };
    Ok((layer, sgd))
}
