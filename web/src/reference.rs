//! The CPU reference compiled to wasm: what the GPU's answers are checked against in the
//! browser, and what the page runs where there is no WebGPU.

use js_sys::{Float32Array, Float64Array, Object};
use wasm_bindgen::prelude::*;
use wgpu_conv::{cpu, geometry, train_cpu};

use crate::convert::{conv_options, err, given, output, set, tensor, Conv2dOptionsJs, Fields};

/// `conv2d` on the CPU (sums in `f64`): `{ data, shape, bound }`, where `bound[i]` is the
/// error an `f32` GPU result may have at element `i` (`(L + 1) 2^-24 sum |terms|`, `L` the
/// number of terms), the bound the library's tests use.
#[wasm_bindgen(js_name = conv2dReference, unchecked_return_type = "Reference")]
pub fn conv2d_reference(
    x: &[f32],
    #[wasm_bindgen(js_name = xShape, unchecked_param_type = "number[]")] x_shape: &[u32],
    w: &[f32],
    #[wasm_bindgen(js_name = wShape, unchecked_param_type = "number[]")] w_shape: &[u32],
    options: Option<Conv2dOptionsJs>,
) -> Result<JsValue, JsValue> {
    let x = tensor(x, x_shape, "x")?;
    let w = tensor(w, w_shape, "w")?;
    let mut f = Fields::new(&given(options), "conv2d option")?;
    let bias = f.tensor("bias")?;
    let opts = conv_options(&mut f)?;
    f.finish()?;
    let g = geometry(x.shape(), w.shape(), bias.as_ref().map(|b| b.len()), &opts).map_err(err)?;
    let r = cpu::conv2d_forward(&g, x.data(), w.data(), bias.as_ref().map(|b| b.data()));
    // the output in the input's rank, as `conv2d` gives it
    let [_, oc, oh, ow] = g.output_shape();
    let shape = match x.shape().len() {
        2 => vec![oh, ow],
        3 => vec![oc, oh, ow],
        _ => g.output_shape().to_vec(),
    };
    let y = wgpu_conv::Tensor::new(shape, r.to_f32()).map_err(err)?;
    let o: Object = output(&y).into();
    let bound: Vec<f64> = (0..r.values.len()).map(|i| r.bound(i)).collect();
    set(&o, "bound", &Float64Array::from(&bound[..]).into());
    Ok(o.into())
}

/// The `Trainer`'s steps on the CPU: `{ losses, weight, bias }` after `steps` steps, with
/// the `Trainer`'s options (the same seed gives the same initial layer).
#[wasm_bindgen(js_name = trainReference, unchecked_return_type = "TrainedReference")]
pub fn train_reference(
    x: &[f32],
    #[wasm_bindgen(js_name = xShape, unchecked_param_type = "number[]")] x_shape: &[u32],
    target: &[f32],
    #[wasm_bindgen(js_name = targetShape, unchecked_param_type = "number[]")]
    target_shape: &[u32],
    #[wasm_bindgen(unchecked_param_type = "TrainerOptions")] options: JsValue,
    steps: u32,
) -> Result<JsValue, JsValue> {
    let x = tensor(x, x_shape, "x")?;
    let target = tensor(target, target_shape, "target")?;
    let (layer, sgd) = crate::api::layer_and_sgd(&x, &options)?;
    let (trained, losses) = train_cpu(&layer, &x, &target, sgd, steps as usize).map_err(err)?;
    let o = Object::new();
    let losses: Vec<f32> = losses.iter().map(|&l| l as f32).collect();
    set(&o, "losses", &Float32Array::from(&losses[..]).into());
    set(&o, "weight", &output(trained.weight()));
    if let Some(b) = trained.bias() {
        set(&o, "bias", &output(b));
    }
    Ok(o.into())
}
