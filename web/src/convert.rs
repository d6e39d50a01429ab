//! JavaScript values to the library's types and back: tensors as a `Float32Array` and a shape,
//! the options object with PyTorch's names, errors as `Error` exceptions.

use js_sys::{Array, Float32Array, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wgpu_conv::{Conv2dOptions, ConvMode, Hw, Padding, PaddingMode, Tensor};

#[wasm_bindgen]
extern "C" {
    /// An options object of `conv2d` (its TypeScript interface in `lib.rs`).
    #[wasm_bindgen(typescript_type = "Conv2dOptions")]
    pub type Conv2dOptionsJs;
    /// An options object of `conv2dBackward`.
    #[wasm_bindgen(typescript_type = "BackwardOptions")]
    pub type BackwardOptionsJs;
    /// A kernel name or an options object of `edges`.
    #[wasm_bindgen(typescript_type = "EdgeKernel | EdgeOptions")]
    pub type EdgeOptionsJs;
}

/// An optional options object as a value (`undefined` when absent).
pub fn given<T: Into<JsValue>>(options: Option<T>) -> JsValue {
    options.map_or(JsValue::UNDEFINED, Into::into)
}

/// A JavaScript `Error` carrying the library's message.
pub fn err(e: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&e.to_string()).into()
}

/// A tensor from its row-major values and shape.
pub fn tensor(data: &[f32], shape: &[u32], what: &str) -> Result<Tensor, JsValue> {
    let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    Tensor::new(shape, data.to_vec()).map_err(|e| err(format!("{what}: {e}")))
}

/// `{ data: Float32Array, shape: number[] }`.
pub fn output(t: &Tensor) -> JsValue {
    let o = Object::new();
    let shape: Array = t.shape().iter().map(|&d| JsValue::from(d as u32)).collect();
    set(&o, "data", &Float32Array::from(t.data()).into());
    set(&o, "shape", &shape.into());
    o.into()
}

pub fn set(o: &Object, key: &str, v: &JsValue) {
    // setting a property of a plain object made here cannot fail
    let _ = Reflect::set(o, &JsValue::from_str(key), v);
}

/// An options object's fields, each read once; what is left unread is a typo.
pub struct Fields {
    obj: Option<Object>,
    read: Vec<&'static str>,
    what: &'static str,
}

impl Fields {
    /// `value` must be `undefined`, `null` or a plain object.
    pub fn new(value: &JsValue, what: &'static str) -> Result<Self, JsValue> {
        if value.is_undefined() || value.is_null() {
            return Ok(Self {
                obj: None,
                read: Vec::new(),
                what,
            });
        }
        let obj = value
            .dyn_ref::<Object>()
            .filter(|_| !value.is_function() && !Array::is_array(value))
            .ok_or_else(|| err(format!("{what} must be an object")))?;
        Ok(Self {
            obj: Some(obj.clone()),
            read: Vec::new(),
            what,
        })
    }

    /// The field `key`, `None` when absent or `undefined`.
    pub fn get(&mut self, key: &'static str) -> Option<JsValue> {
        self.read.push(key);
        let v = Reflect::get(self.obj.as_ref()?, &JsValue::from_str(key)).ok()?;
        (!v.is_undefined()).then_some(v)
    }

    /// An error naming the fields that no one read.
    pub fn finish(self) -> Result<(), JsValue> {
        let Some(obj) = self.obj else {
            return Ok(());
        };
        let unknown: Vec<String> = Object::keys(&obj)
            .iter()
            .filter_map(|k| k.as_string())
            .filter(|k| !self.read.contains(&k.as_str()))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let mut known = self.read.clone();
        known.sort_unstable();
        known.dedup();
        Err(err(format!(
            "unknown {} field(s) {}; known: {}",
            self.what,
            unknown.join(", "),
            known.join(", ")
        )))
    }

    pub fn number(&mut self, key: &'static str) -> Result<Option<f64>, JsValue> {
        self.get(key)
            .map(|v| {
                v.as_f64()
                    .ok_or_else(|| err(format!("{key} must be a number, got {v:?}")))
            })
            .transpose()
    }

    pub fn count(&mut self, key: &'static str) -> Result<Option<usize>, JsValue> {
        self.get(key).map(|v| count(&v, key)).transpose()
    }

    pub fn string(&mut self, key: &'static str) -> Result<Option<String>, JsValue> {
        self.get(key)
            .map(|v| {
                v.as_string()
                    .ok_or_else(|| err(format!("{key} must be a string, got {v:?}")))
            })
            .transpose()
    }

    /// A number or a pair `[h, w]`.
    pub fn hw(&mut self, key: &'static str) -> Result<Option<Hw>, JsValue> {
        self.get(key)
            .map(|v| match counts(&v, key)?[..] {
                [n] => Ok(Hw::from(n)),
                [h, w] => Ok(Hw::from((h, w))),
                _ => Err(err(format!("{key} must be a number or [h, w]"))),
            })
            .transpose()
    }

    /// A tensor given as `{ data, shape }` (an [`output`] of an earlier call, say).
    pub fn tensor(&mut self, key: &'static str) -> Result<Option<Tensor>, JsValue> {
        self.get(key).map(|v| tensor_of(&v, key)).transpose()
    }
}

/// A tensor given as `{ data: Float32Array, shape?: number[] }` (no shape: 1-D).
pub fn tensor_of(v: &JsValue, key: &'static str) -> Result<Tensor, JsValue> {
    let mut f = Fields::new(v, key)?;
    let data = f
        .get("data")
        .and_then(|d| d.dyn_into::<Float32Array>().ok())
        .ok_or_else(|| err(format!("{key}.data must be a Float32Array")))?;
    let shape = match f.get("shape") {
        Some(s) => counts(&s, "shape")?,
        None => vec![data.length() as usize],
    };
    f.finish()?;
    Tensor::new(shape, data.to_vec()).map_err(|e| err(format!("{key}: {e}")))
}

/// A non-negative integer.
fn count(v: &JsValue, key: &str) -> Result<usize, JsValue> {
    match v.as_f64() {
        Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= f64::from(u32::MAX) => Ok(n as usize),
        _ => Err(err(format!(
            "{key} must be a non-negative integer, got {v:?}"
        ))),
    }
}

/// A non-negative integer or an array of them.
fn counts(v: &JsValue, key: &str) -> Result<Vec<usize>, JsValue> {
    if Array::is_array(v) {
        Array::from(v).iter().map(|x| count(&x, key)).collect()
    } else {
        Ok(vec![count(v, key)?])
    }
}

/// The convolution options PyTorch's `conv2d` takes (camel case: `paddingMode`), and `mode`
/// (`"cross-correlation"` or `"convolution"`), read from `fields`.
pub fn conv_options(fields: &mut Fields) -> Result<Conv2dOptions, JsValue> {
    let mut opts = Conv2dOptions::new();
    if let Some(s) = fields.hw("stride")? {
        opts = opts.stride(s);
    }
    if let Some(d) = fields.hw("dilation")? {
        opts = opts.dilation(d);
    }
    if let Some(g) = fields.count("groups")? {
        opts = opts.groups(g);
    }
    if let Some(p) = fields.get("padding") {
        let padding = match p.as_string() {
            Some(s) => s.parse::<Padding>().map_err(err)?,
            None => match counts(&p, "padding")?[..] {
                [n] => Padding::from(n),
                [h, w] => Padding::from((h, w)),
                [t, l, b, r] => Padding::from([t, l, b, r]),
                _ => {
                    return Err(err(
                        "padding must be a number, [ph, pw], [top, left, bottom, right], \
                         \"same\" or \"valid\"",
                    ))
                }
            },
        };
        opts = opts.padding(padding);
    }
    if let Some(m) = fields.string("paddingMode")? {
        opts = opts.padding_mode(m.parse::<PaddingMode>().map_err(err)?);
    }
    if let Some(m) = fields.string("mode")? {
        opts = opts.mode(m.parse::<ConvMode>().map_err(err)?);
    }
    Ok(opts)
}
