//! A plain host tensor: a shape and row-major `f32` data.

use crate::error::{Error, Limit, Result};
use crate::ops::MIN_BINDING_BYTES;

/// A row-major `f32` array of rank 1 to 4 (NCHW for images, OIHW for weights).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Tensor {
    /// A tensor from its shape and data; the data length must equal the product of the shape.
    pub fn new(shape: impl Into<Vec<usize>>, data: Vec<f32>) -> Result<Self> {
        let shape = shape.into();
        if shape.is_empty() || shape.len() > 4 {
            return Err(Error::shape(format!(
                "rank must be 1 to 4, got shape {shape:?}"
            )));
        }
        let len = checked_len(&shape)?;
        if len != data.len() {
            return Err(Error::shape(format!(
                "shape {shape:?} holds {len} elements but {} were given",
                data.len()
            )));
        }
        Ok(Self { shape, data })
    }

    /// A tensor of zeros; a shape whose element count overflows is [`Error::TooLarge`], one
    /// the host cannot allocate [`Error::HostOutOfMemory`].
    pub fn zeros(shape: impl Into<Vec<usize>>) -> Result<Self> {
        let shape = shape.into();
        let len = checked_len(&shape)?;
        let data = try_zeros(len, &format!("a tensor of shape {shape:?}"))?;
        Self::new(shape, data)
    }

    /// A tensor whose element at each multi-index is `f(index)` (errors as [`Tensor::zeros`]).
    pub fn from_fn(
        shape: impl Into<Vec<usize>>,
        mut f: impl FnMut(&[usize]) -> f32,
    ) -> Result<Self> {
        let shape = shape.into();
        let len = checked_len(&shape)?;
        let mut idx = vec![0usize; shape.len()];
        let mut data = Vec::new();
        data.try_reserve_exact(len).map_err(|_| {
            Error::HostOutOfMemory(format!(
                "a tensor of shape {shape:?}: {} bytes do not fit",
                len.saturating_mul(4)
            ))
        })?;
        for _ in 0..len {
            data.push(f(&idx));
            for d in (0..shape.len()).rev() {
                idx[d] += 1;
                if idx[d] < shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        Self::new(shape, data)
    }

    /// A 2-D tensor from rows (as the chapter writes its small matrices).
    pub fn from_rows<const W: usize>(rows: &[[f32; W]]) -> Self {
        Self {
            shape: vec![rows.len(), W],
            data: rows.iter().flatten().copied().collect(),
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// The data, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }
    /// The data, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }
    /// Consumes the tensor, giving its data.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }
    /// True for a tensor with no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The same data under another shape with the same element count.
    pub fn reshape(self, shape: impl Into<Vec<usize>>) -> Result<Self> {
        Tensor::new(shape, self.data)
    }

    /// The shape as `[N, C, H, W]`: rank 4 as is, rank 3 `(C, H, W)` with N = 1, rank 2 `(H, W)`
    /// with N = C = 1.
    pub fn dims4(&self) -> Result<[usize; 4]> {
        match self.shape[..] {
            [n, c, h, w] => Ok([n, c, h, w]),
            [c, h, w] => Ok([1, c, h, w]),
            [h, w] => Ok([1, 1, h, w]),
            _ => Err(Error::shape(format!(
                "expected a rank 2, 3 or 4 tensor, got shape {:?}",
                self.shape
            ))),
        }
    }

    /// Element at a multi-index (panics if out of range, like slice indexing).
    pub fn at(&self, idx: &[usize]) -> f32 {
        self.data[self.offset(idx)]
    }

    fn offset(&self, idx: &[usize]) -> usize {
        assert_eq!(idx.len(), self.shape.len(), "index rank");
        idx.iter().zip(&self.shape).fold(0, |acc, (&i, &d)| {
            assert!(i < d, "index {i} out of range {d}");
            acc * d + i
        })
    }

    /// The transpose of a 2-D tensor (the chapter's `X.T`).
    pub fn transpose2(&self) -> Result<Tensor> {
        let [h, w] = self.shape[..] else {
            return Err(Error::shape(format!(
                "transpose2 needs a 2-D tensor, got {:?}",
                self.shape
            )));
        };
        Tensor::from_fn([w, h], |i| self.data[i[1] * w + i[0]])
    }

    /// The rows of a 2-D tensor (for printing).
    pub fn rows(&self) -> Vec<Vec<f32>> {
        let w = *self.shape.last().unwrap_or(&1);
        self.data.chunks(w.max(1)).map(|r| r.to_vec()).collect()
    }
}

/// `len` zeros, or an out-of-memory error (never an abort) where the host cannot hold them.
/// The element count of `shape`, or [`Error::TooLarge`] where the product overflows.
pub(crate) fn checked_len(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| {
            Error::too_large(
                format!("shape {shape:?}"),
                Limit::Elements,
                u64::MAX,
                usize::MAX as u64,
            )
        })
}

pub(crate) fn try_zeros(len: usize, what: &str) -> crate::error::Result<Vec<f32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        crate::error::Error::HostOutOfMemory(format!(
            "{what}: {len} floats ({} bytes) do not fit",
            len.saturating_mul(4)
        ))
    })?;
    v.resize(len, 0.0);
    Ok(v)
}

/// Conversions with ndarray (feature `ndarray`): an array of rank 1 to 4 becomes a tensor of
/// its shape (in logical, row-major order, whatever the array's strides); a tensor becomes an
/// owned dynamic-rank array.
#[cfg(feature = "ndarray")]
mod ndarray_conversions {
    use super::Tensor;
    use crate::error::{Error, Result};
    use ndarray::{ArrayBase, ArrayD, Data, Dimension, IxDyn};

    impl<S: Data<Elem = f32>, D: Dimension> TryFrom<&ArrayBase<S, D>> for Tensor {
        type Error = Error;

        fn try_from(a: &ArrayBase<S, D>) -> Result<Tensor> {
            let data = match a.as_slice() {
                Some(s) => s.to_vec(),
                None => a.iter().copied().collect(),
            };
            Tensor::new(a.shape().to_vec(), data)
        }
    }

    impl From<&Tensor> for ArrayD<f32> {
        fn from(t: &Tensor) -> ArrayD<f32> {
            ArrayD::from_shape_vec(IxDyn(t.shape()), t.data().to_vec())
                .expect("a tensor's shape holds its data")
        }
    }

    impl From<Tensor> for ArrayD<f32> {
        fn from(t: Tensor) -> ArrayD<f32> {
            let shape = t.shape().to_vec();
            ArrayD::from_shape_vec(IxDyn(&shape), t.into_data())
                .expect("a tensor's shape holds its data")
        }
    }
}

/// A tensor living in a GPU storage buffer.
#[derive(Debug)]
pub struct GpuTensor {
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) shape: Vec<usize>,
    /// The [`GpuContext::uid`](crate::GpuContext::uid) of the context that made it; 0 for a wrapped buffer of the
    /// caller's ([`GpuTensor::from_buffer`]), which any context takes.
    pub(crate) ctx: u64,
}

impl GpuTensor {
    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    /// True when it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The storage buffer (`f32`, row-major).
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// Another handle to the same buffer.
    pub(crate) fn handle(&self) -> GpuTensor {
        GpuTensor {
            buffer: self.buffer.clone(),
            shape: self.shape.clone(),
            ctx: self.ctx,
        }
    }

    /// Whether the two name one buffer.
    pub(crate) fn aliases(&self, other: &GpuTensor) -> bool {
        self.buffer == other.buffer
    }

    /// Wraps a buffer the caller already has (made on the same device as the context it is
    /// used with), so that a wgpu program can run this crate's kernels on its data without a
    /// trip through the CPU: the `record_*` API reads and writes it in the caller's own
    /// encoder. It must have `STORAGE` usage (and `COPY_SRC` for [`GpuContext::download`](crate::GpuContext::download)) and
    /// hold at least the shape's `f32`s and at least 16 bytes; anything else is
    /// [`Error::UnusableBuffer`].
    ///
    /// What the caller guarantees: the buffer was made on the device of every context it is
    /// used with. wgpu cannot tell which device a buffer belongs to, so a wrapped buffer is not
    /// checked as the crate's own tensors are (those carry their context's id, and a call on
    /// another context is [`Error::WrongContext`]); a buffer of another device names an
    /// unrelated resource there.
    pub fn from_buffer(buffer: wgpu::Buffer, shape: &[usize]) -> Result<Self> {
        let usage = buffer.usage();
        if !usage.contains(wgpu::BufferUsages::STORAGE) {
            return Err(Error::UnusableBuffer(format!(
                "its usage {usage:?} lacks STORAGE, which the kernels bind"
            )));
        }
        let elements = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| Error::shape(format!("shape {shape:?} overflows")))?;
        let need = (elements as u64).saturating_mul(4);
        if buffer.size() < need {
            return Err(Error::UnusableBuffer(format!(
                "{} bytes hold fewer than the {elements} f32s of shape {shape:?} ({need} bytes)",
                buffer.size()
            )));
        }
        if buffer.size() < MIN_BINDING_BYTES {
            return Err(Error::UnusableBuffer(format!(
                "{} bytes are fewer than the {MIN_BINDING_BYTES} the kernels bind at least \
                 (one vec4); make the buffer at least {MIN_BINDING_BYTES} bytes",
                buffer.size()
            )));
        }
        Ok(GpuTensor {
            buffer,
            shape: shape.to_vec(),
            ctx: 0,
        })
    }
}
