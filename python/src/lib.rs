//! The extension module `wgpu_conv._wgpu_conv`: the library's calls on float32 C-contiguous
//! numpy arrays. The Python package around it (`python/wgpu_conv/`) converts other arrays,
//! normalises the options and documents the API with PyTorch's names.
//!
//! Every call that waits for the device releases the GIL, so Python threads run in parallel.

use std::sync::Arc;

use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use wgpu_conv::images;
use wgpu_conv::{
    filters, Conv2dGrads, Conv2dOptions, ConvMode, Error, GpuContext, Padding, PaddingMode, Sgd,
    Tensor, Wanted,
};

/// The library's error as the Python exception a caller expects: `ValueError` for what the
/// caller asked (shapes, options, sizes past the device's limits, another context's data),
/// `MemoryError` for the host's memory, `RuntimeError` for the device.
fn py_err(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::InvalidOption(_)
        | Error::InvalidShape(_)
        | Error::TooLarge { .. }
        | Error::WrongContext { .. }
        | Error::Aliased { .. }
        | Error::Image(_) => PyValueError::new_err(msg),
        Error::HostOutOfMemory(_) => PyMemoryError::new_err(msg),
        _ => PyRuntimeError::new_err(msg),
    }
}

/// A float32 C-contiguous array as a tensor of its shape (one copy into the library's buffer).
fn tensor(a: &PyReadonlyArrayDyn<'_, f32>, what: &str) -> PyResult<Tensor> {
    let data = a.as_slice().map_err(|_| {
        PyValueError::new_err(format!(
            "{what} must be C-contiguous (the wrapper converts it)"
        ))
    })?;
    Tensor::new(a.shape().to_vec(), data.to_vec()).map_err(|e| {
        PyValueError::new_err(format!(
            "{what}: {}",
            e.to_string().trim_start_matches("invalid shape: ")
        ))
    })
}

/// A tensor as a new numpy array of its shape.
fn array<'py>(py: Python<'py>, t: Tensor) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    let shape = t.shape().to_vec();
    PyArray1::from_vec(py, t.into_data()).reshape(shape)
}

/// Options from the wrapper's normalised values.
#[allow(clippy::too_many_arguments)]
fn options(
    stride: (usize, usize),
    padding: &Bound<'_, PyAny>,
    dilation: (usize, usize),
    groups: usize,
    padding_mode: &str,
    mode: &str,
) -> PyResult<Conv2dOptions> {
    let padding = if let Ok(s) = padding.extract::<String>() {
        s.parse::<Padding>().map_err(py_err)?
    } else {
        let (top, left, bottom, right) = padding.extract::<(usize, usize, usize, usize)>()?;
        Padding::Explicit {
            top,
            left,
            bottom,
            right,
        }
    };
    let padding_mode: PaddingMode = padding_mode.parse().map_err(py_err)?;
    let mode: ConvMode = mode.parse().map_err(py_err)?;
    Ok(Conv2dOptions::new()
        .stride(stride)
        .padding(padding)
        .dilation(dilation)
        .groups(groups)
        .padding_mode(padding_mode)
        .mode(mode))
}

/// A GPU device and what the library keeps for it (pipelines, buffer pool, plans).
#[pyclass(module = "wgpu_conv._wgpu_conv", frozen)]
struct Context {
    ctx: Arc<GpuContext>,
}

#[pymethods]
impl Context {
    #[new]
    fn new(py: Python<'_>) -> PyResult<Self> {
        let ctx = py.detach(GpuContext::new).map_err(py_err)?;
        Ok(Context { ctx: Arc::new(ctx) })
    }

    fn describe(&self) -> String {
        self.ctx.describe()
    }

    /// The kernel family `auto` resolves to on this device: `cpu` or `gpu`.
    fn family(&self) -> String {
        self.ctx.profile().resolved_family().name().to_string()
    }
}

#[pyfunction]
#[pyo3(signature = (ctx, input, weight, bias, stride, padding, dilation, groups, padding_mode, mode))]
#[allow(clippy::too_many_arguments)]
fn conv2d<'py>(
    py: Python<'py>,
    ctx: &Context,
    input: PyReadonlyArrayDyn<'py, f32>,
    weight: PyReadonlyArrayDyn<'py, f32>,
    bias: Option<PyReadonlyArrayDyn<'py, f32>>,
    stride: (usize, usize),
    padding: &Bound<'py, PyAny>,
    dilation: (usize, usize),
    groups: usize,
    padding_mode: &str,
    mode: &str,
) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    let opts = options(stride, padding, dilation, groups, padding_mode, mode)?;
    let (x, w) = (tensor(&input, "input")?, tensor(&weight, "weight")?);
    let b = bias.as_ref().map(|b| tensor(b, "bias")).transpose()?;
    let c = Arc::clone(&ctx.ctx);
    let y = py
        .detach(move || c.conv2d(&x, &w, b.as_ref(), &opts))
        .map_err(py_err)?;
    array(py, y)
}

type Grads<'py> = (
    Option<Bound<'py, PyArrayDyn<f32>>>,
    Option<Bound<'py, PyArrayDyn<f32>>>,
    Option<Bound<'py, PyArrayDyn<f32>>>,
);

fn grads(py: Python<'_>, g: Conv2dGrads) -> PyResult<Grads<'_>> {
    let out = |t: Option<Tensor>| t.map(|t| array(py, t)).transpose();
    Ok((out(g.input)?, out(g.weight)?, out(g.bias)?))
}

/// The gradients of `sum(conv2d(input, weight) * grad_output)`: (input, weight, bias), each
/// if asked for.
#[pyfunction]
#[pyo3(signature = (ctx, input, weight, grad_output, want_input, want_weight, want_bias, stride, padding, dilation, groups, padding_mode, mode))]
#[allow(clippy::too_many_arguments)]
fn conv2d_backward<'py>(
    py: Python<'py>,
    ctx: &Context,
    input: PyReadonlyArrayDyn<'py, f32>,
    weight: PyReadonlyArrayDyn<'py, f32>,
    grad_output: PyReadonlyArrayDyn<'py, f32>,
    want_input: bool,
    want_weight: bool,
    want_bias: bool,
    stride: (usize, usize),
    padding: &Bound<'py, PyAny>,
    dilation: (usize, usize),
    groups: usize,
    padding_mode: &str,
    mode: &str,
) -> PyResult<Grads<'py>> {
    let opts = options(stride, padding, dilation, groups, padding_mode, mode)?;
    let x = tensor(&input, "input")?;
    let w = tensor(&weight, "weight")?;
    let gy = tensor(&grad_output, "grad_output")?;
    let wanted = Wanted {
        weight: want_weight,
        input: want_input,
        bias: want_bias,
    };
    let c = Arc::clone(&ctx.ctx);
    let g = py
        .detach(move || c.conv2d_backward(&x, &w, &gy, &opts, wanted))
        .map_err(py_err)?;
    grads(py, g)
}

/// Filters a gray `[H, W]` float32 image, or an `[H, W, C]` uint8 one (gray, gray and alpha,
/// RGB, RGBA: converted to gray as the library's images are), with a named kernel.
#[pyfunction]
#[pyo3(signature = (ctx, image, kernel, padding_mode))]
fn edges<'py>(
    py: Python<'py>,
    ctx: &Context,
    image: &Bound<'py, PyAny>,
    kernel: &str,
    padding_mode: &str,
) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    let mode: PaddingMode = padding_mode.parse().map_err(py_err)?;
    let k = filters::edge_kernel(kernel).map_err(py_err)?;
    let img = if let Ok(a) = image.extract::<PyReadonlyArrayDyn<'py, u8>>() {
        let [h, w, c] = *a.shape() else {
            return Err(PyValueError::new_err(format!(
                "a uint8 image is [H, W, C] with C 1 to 4, got shape {:?}",
                a.shape()
            )));
        };
        let data = a
            .as_slice()
            .map_err(|_| PyValueError::new_err("the image must be C-contiguous"))?
            .to_vec();
        let (w, h) = (
            u32::try_from(w).map_err(|_| PyValueError::new_err("image too wide"))?,
            u32::try_from(h).map_err(|_| PyValueError::new_err("image too tall"))?,
        );
        let bad = || PyValueError::new_err("the image's data does not fill its shape");
        let dynamic = match c {
            1 => images::image::GrayImage::from_raw(w, h, data).map(Into::into),
            2 => images::image::GrayAlphaImage::from_raw(w, h, data).map(Into::into),
            3 => images::image::RgbImage::from_raw(w, h, data).map(Into::into),
            4 => images::image::RgbaImage::from_raw(w, h, data).map(Into::into),
            _ => {
                return Err(PyValueError::new_err(format!(
                    "a uint8 image has 1 to 4 channels, got {c}"
                )))
            }
        }
        .ok_or_else(bad)?;
        Tensor::from_luma(&dynamic).map_err(py_err)?
    } else {
        let a: PyReadonlyArrayDyn<'py, f32> = image.extract()?;
        if a.ndim() != 2 {
            return Err(PyValueError::new_err(format!(
                "a float image is [H, W], got shape {:?}",
                a.shape()
            )));
        }
        tensor(&a, "image")?
    };
    let c = Arc::clone(&ctx.ctx);
    let y = py
        .detach(move || filters::apply(&c, &img, &k, mode))
        .map_err(py_err)?;
    array(py, y)
}

/// A convolution layer: its weight and bias stay on the device of the context it is used with.
#[pyclass(module = "wgpu_conv._wgpu_conv")]
struct Conv2d {
    layer: wgpu_conv::Conv2d,
}

#[pymethods]
impl Conv2d {
    #[new]
    #[pyo3(signature = (in_channels, out_channels, kernel_size, bias, stride, padding, dilation, groups, padding_mode, mode, seed))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        in_channels: usize,
        out_channels: usize,
        kernel_size: (usize, usize),
        bias: bool,
        stride: (usize, usize),
        padding: &Bound<'_, PyAny>,
        dilation: (usize, usize),
        groups: usize,
        padding_mode: &str,
        mode: &str,
        seed: u64,
    ) -> PyResult<Self> {
        let opts = options(stride, padding, dilation, groups, padding_mode, mode)?;
        let layer =
            wgpu_conv::Conv2d::new(in_channels, out_channels, kernel_size, bias, opts, seed)
                .map_err(py_err)?;
        Ok(Conv2d { layer })
    }

    fn weight<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        array(py, self.layer.weight().clone())
    }

    fn bias<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArrayDyn<f32>>>> {
        self.layer.bias().map(|b| array(py, b.clone())).transpose()
    }

    fn set_weight(&mut self, w: PyReadonlyArrayDyn<'_, f32>) -> PyResult<()> {
        let w = tensor(&w, "weight")?;
        self.layer.set_weight(w).map_err(py_err)
    }

    fn set_bias(&mut self, b: PyReadonlyArrayDyn<'_, f32>) -> PyResult<()> {
        let b = tensor(&b, "bias")?;
        self.layer.set_bias(b).map_err(py_err)
    }

    fn forward<'py>(
        &self,
        py: Python<'py>,
        ctx: &Context,
        input: PyReadonlyArrayDyn<'py, f32>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let x = tensor(&input, "input")?;
        let (c, layer) = (Arc::clone(&ctx.ctx), &self.layer);
        let y = py.detach(move || layer.forward(&c, &x)).map_err(py_err)?;
        array(py, y)
    }

    fn backward<'py>(
        &self,
        py: Python<'py>,
        ctx: &Context,
        input: PyReadonlyArrayDyn<'py, f32>,
        grad_output: PyReadonlyArrayDyn<'py, f32>,
    ) -> PyResult<Grads<'py>> {
        let x = tensor(&input, "input")?;
        let gy = tensor(&grad_output, "grad_output")?;
        let (c, layer) = (Arc::clone(&ctx.ctx), &self.layer);
        let g = py
            .detach(move || layer.backward(&c, &x, &gy))
            .map_err(py_err)?;
        grads(py, g)
    }
}

/// Gradient descent on the squared error of a layer's output against a target, each step one
/// submission on the device.
#[pyclass(module = "wgpu_conv._wgpu_conv")]
struct Trainer {
    // declared first, so dropped before the context it borrows
    trainer: wgpu_conv::Trainer<'static>,
    _ctx: Arc<GpuContext>,
}

#[pymethods]
impl Trainer {
    #[new]
    #[pyo3(signature = (ctx, layer, input, target, lr, momentum, weight_decay))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        ctx: &Context,
        layer: &Conv2d,
        input: PyReadonlyArrayDyn<'_, f32>,
        target: PyReadonlyArrayDyn<'_, f32>,
        lr: f32,
        momentum: f32,
        weight_decay: f32,
    ) -> PyResult<Self> {
        let x = tensor(&input, "input")?;
        let y = tensor(&target, "target")?;
        let keep = Arc::clone(&ctx.ctx);
        // SAFETY: the context lives in an Arc that this struct holds (`_ctx`) and drops after
        // `trainer` (fields drop in declaration order); the Arc's heap allocation never moves,
        // so the reference stays valid for the trainer's whole life.
        let c: &'static GpuContext = unsafe { &*Arc::as_ptr(&keep) };
        let sgd = Sgd::new(lr).momentum(momentum).weight_decay(weight_decay);
        let layer = &layer.layer;
        let trainer = py
            .detach(move || wgpu_conv::Trainer::new(c, layer, &x, &y, sgd))
            .map_err(py_err)?;
        Ok(Trainer {
            trainer,
            _ctx: keep,
        })
    }

    /// One step; the loss before its update when `read_loss`, else None.
    #[pyo3(signature = (read_loss=true))]
    fn step(&mut self, py: Python<'_>, read_loss: bool) -> PyResult<Option<f32>> {
        let trainer = &mut self.trainer;
        py.detach(move || trainer.step(read_loss)).map_err(py_err)
    }

    /// The layer as trained so far (its weight and bias read back).
    fn layer(&self, py: Python<'_>) -> PyResult<Conv2d> {
        let trainer = &self.trainer;
        let layer = py.detach(move || trainer.layer()).map_err(py_err)?;
        Ok(Conv2d { layer })
    }
}

#[pymodule]
fn _wgpu_conv(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Context>()?;
    m.add_class::<Conv2d>()?;
    m.add_class::<Trainer>()?;
    m.add_function(wrap_pyfunction!(conv2d, m)?)?;
    m.add_function(wrap_pyfunction!(conv2d_backward, m)?)?;
    m.add_function(wrap_pyfunction!(edges, m)?)?;
    Ok(())
}
