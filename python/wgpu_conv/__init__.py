"""2-D convolutions on any GPU (wgpu + WGSL), numpy in and numpy out, with PyTorch's names.

The functions mirror ``torch.nn.functional.conv2d`` and ``torch.nn.grad``; ``Conv2d`` mirrors
``torch.nn.Conv2d``. Every call runs on a :class:`Context`: the module's default one (made on
first use, honouring ``WGPU_BACKEND`` and ``WGPU_ADAPTER_NAME``) unless ``context=`` names
another.

Arrays: float32 C-contiguous arrays are passed on as they are (the library copies them once
into its upload); other dtypes (float64, integers, bool) and layouts (Fortran order, strided
views) are converted to float32 C order first, which is one more copy. Complex and object
arrays are refused. Shapes follow PyTorch: ``(N, C, H, W)`` or unbatched ``(C, H, W)`` inputs
with ``(OC, C/groups, KH, KW)`` weights, and ``(H, W)`` with ``(KH, KW)`` (the chapter's
``corr2d``). Outputs are new float32 arrays.

Errors: ``ValueError`` for shapes, dtypes and options (and sizes past the device's limits),
``RuntimeError`` for the device, each with the library's one-line message. The GIL is released
while the device works, so Python threads run in parallel.
"""

from __future__ import annotations

import os
import threading
from typing import Optional, Sequence, Tuple, Union

import numpy as np

# Headless (no Wayland or X display): Mesa's Vulkan device-select layer would try to reach a
# display and print "XDG_RUNTIME_DIR is invalid" on stderr; it only orders GPUs for a display.
# Turned off unless the user set it, before any device is made.
if not os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("DISPLAY"):
    os.environ.setdefault("NODEVICE_SELECT", "1")

from . import _wgpu_conv as _core  # noqa: E402

__all__ = [
    "Context",
    "default_context",
    "conv2d",
    "conv2d_input",
    "conv2d_weight",
    "conv2d_backward",
    "corr2d",
    "edges",
    "Conv2d",
    "Trainer",
]

IntOrPair = Union[int, Tuple[int, int], Sequence[int]]
Padding = Union[int, str, Tuple[int, int], Tuple[int, int, int, int], Sequence[int]]


class Context:
    """A GPU device and what the library keeps for it (pipelines, buffers, plans).

    ``Context()`` picks the best adapter: ``WGPU_BACKEND`` (vulkan, gl, metal, dx12) and
    ``WGPU_ADAPTER_NAME`` (a part of its name) choose one; with neither, Vulkan/Metal/DX12
    before GL, discrete before integrated before software.
    """

    def __init__(self) -> None:
        self._core = _core.Context()

    def describe(self) -> str:
        """The adapter's name, backend, device type and driver."""
        return self._core.describe()

    def family(self) -> str:
        """The kernel family ``auto`` uses on this device: ``cpu`` or ``gpu``."""
        return self._core.family()

    def __repr__(self) -> str:
        return f"Context({self.describe()!r})"


_default: Optional[Context] = None
_default_lock = threading.Lock()


def default_context() -> Context:
    """The module's context, made on first use (thread-safe)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Context()
        return _default


def _ctx(context: Optional[Context]):
    if context is None:
        return default_context()._core
    if not isinstance(context, Context):
        raise ValueError(f"context must be a wgpu_conv.Context, got {type(context).__name__}")
    return context._core


def _f32(a, name: str) -> np.ndarray:
    """``a`` as a float32 C-contiguous array: the same object when it already is one."""
    try:
        arr = np.asarray(a)
    except Exception as e:  # an object numpy cannot take
        raise ValueError(f"{name} must be an array of numbers: {e}") from None
    if arr.dtype.kind not in "fiub":
        raise ValueError(f"{name} must be an array of real numbers, got dtype {arr.dtype}")
    if arr.dtype == np.float64 and arr.size:
        finite = np.isfinite(arr)
        big = np.abs(arr[finite]) > np.finfo(np.float32).max
        if big.any():
            raise ValueError(f"{name} holds values beyond float32's range")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _pair(v: IntOrPair, name: str) -> Tuple[int, int]:
    if isinstance(v, (bool, np.bool_)):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    if isinstance(v, (int, np.integer)):
        v = (int(v), int(v))
    try:
        a, b = v  # type: ignore[misc]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}") from None
    for x in (a, b):
        if not isinstance(x, (int, np.integer)) or isinstance(x, (bool, np.bool_)):
            raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
        if x < 0:
            raise ValueError(f"{name} must not be negative, got {v!r}")
    return int(a), int(b)


def _padding(p: Padding):
    """PyTorch's padding forms, as the core takes them: a name or (top, left, bottom, right)."""
    if isinstance(p, str):
        if p not in ("same", "valid"):
            raise ValueError(f"padding must be 'same', 'valid', an int, a pair or four ints, got {p!r}")
        return p
    if isinstance(p, (int, np.integer)) and not isinstance(p, (bool, np.bool_)):
        if p < 0:
            raise ValueError(f"padding must not be negative, got {p}")
        return (int(p),) * 4
    try:
        vals = tuple(p)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"padding must be 'same', 'valid', an int, a pair or four ints, got {p!r}") from None
    if not all(isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)) and x >= 0 for x in vals):
        raise ValueError(f"padding must hold non-negative ints, got {p!r}")
    if len(vals) == 2:
        ph, pw = vals
        return (int(ph), int(pw), int(ph), int(pw))
    if len(vals) == 4:
        return tuple(int(x) for x in vals)
    raise ValueError(f"padding must be an int, a pair (ph, pw) or four ints (top, left, bottom, right), got {p!r}")


def _groups(g) -> int:
    if not isinstance(g, (int, np.integer)) or isinstance(g, (bool, np.bool_)) or g < 1:
        raise ValueError(f"groups must be a positive int, got {g!r}")
    return int(g)


def _str(v, name: str) -> str:
    if not isinstance(v, str):
        raise ValueError(f"{name} must be a string, got {v!r}")
    return v


def _opts(stride, padding, dilation, groups, padding_mode, mode):
    return (
        _pair(stride, "stride"),
        _padding(padding),
        _pair(dilation, "dilation"),
        _groups(groups),
        _str(padding_mode, "padding_mode"),
        _str(mode, "mode"),
    )


def conv2d(
    input,
    weight,
    bias=None,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    mode: str = "cross-correlation",
    *,
    context: Optional[Context] = None,
) -> np.ndarray:
    """conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode='zeros', mode='cross-correlation') -> ndarray

    Applies a 2D convolution over an input image composed of several input planes, on the GPU.

    Args:
        input: input of shape ``(N, C, H, W)``, ``(C, H, W)``, or ``(H, W)`` with a
            ``(KH, KW)`` weight.
        weight: filters of shape ``(OC, C/groups, KH, KW)`` (or ``(KH, KW)``).
        bias: optional bias of shape ``(OC,)``. Default: None.
        stride: the stride of the convolving kernel, an int or ``(sH, sW)``. Default: 1.
        padding: implicit padding on the sides of the input: an int, ``(padH, padW)``, four
            ints ``(top, left, bottom, right)``, ``'valid'`` (none) or ``'same'`` (the output
            the input's size; stride 1 only, the odd pixel at the bottom/right as PyTorch).
            Default: 0.
        dilation: the spacing between kernel elements, an int or ``(dH, dW)``. Default: 1.
        groups: split the input into groups; ``C`` and ``OC`` must be divisible by it.
            Default: 1.
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``, as
            ``torch.nn.Conv2d``'s. Default: ``'zeros'``.
        mode: ``'cross-correlation'`` (what deep learning calls convolution, and PyTorch
            computes) or ``'convolution'`` (the kernel flipped on both axes). Default:
            ``'cross-correlation'``.
        context: the :class:`Context` to run on. Default: :func:`default_context`.

    Returns:
        A new float32 array of shape ``(N, OC, OH, OW)`` (unbatched: ``(OC, OH, OW)``), with
        ``OH = (H + padT + padB - dH*(KH-1) - 1) // sH + 1`` and likewise ``OW``.
    """
    opts = _opts(stride, padding, dilation, groups, padding_mode, mode)
    b = None if bias is None else _f32(bias, "bias")
    return _core.conv2d(_ctx(context), _f32(input, "input"), _f32(weight, "weight"), b, *opts)


def conv2d_backward(
    input,
    weight,
    grad_output,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    mode: str = "cross-correlation",
    *,
    context: Optional[Context] = None,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """conv2d_backward(input, weight, grad_output, stride=1, padding=0, dilation=1, groups=1, padding_mode='zeros', mode='cross-correlation') -> (grad_input, grad_weight, grad_bias)

    The gradients of ``sum(conv2d(input, weight, bias) * grad_output)`` with respect to the
    input, the weight and the bias (what autograd gives PyTorch's ``F.conv2d``), in one call.
    ``grad_output`` has the output's shape; ``grad_bias`` has shape ``(OC,)``. The options are
    :func:`conv2d`'s. The weight and bias gradients are deterministic reductions: two calls
    give the same bits.
    """
    opts = _opts(stride, padding, dilation, groups, padding_mode, mode)
    gi, gw, gb = _core.conv2d_backward(
        _ctx(context),
        _f32(input, "input"),
        _f32(weight, "weight"),
        _f32(grad_output, "grad_output"),
        True,
        True,
        True,
        *opts,
    )
    return gi, gw, gb


def _shape(s, name: str, rank_of) -> Tuple[int, ...]:
    try:
        t = tuple(int(v) for v in s)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of ints, got {s!r}") from None
    if len(t) != rank_of or any(v < 0 for v in t):
        raise ValueError(f"{name} must be {rank_of} non-negative ints, got {s!r}")
    return t


def conv2d_input(
    input_size,
    weight,
    grad_output,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    mode: str = "cross-correlation",
    *,
    context: Optional[Context] = None,
) -> np.ndarray:
    """conv2d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1, padding_mode='zeros', mode='cross-correlation') -> ndarray

    The gradient of conv2d with respect to its input, as ``torch.nn.grad.conv2d_input``:
    ``input_size`` is the input's shape, ``weight`` the filters, ``grad_output`` the gradient
    of the output. The options are :func:`conv2d`'s.
    """
    w = _f32(weight, "weight")
    gy = _f32(grad_output, "grad_output")
    size = _shape(input_size, "input_size", gy.ndim)
    opts = _opts(stride, padding, dilation, groups, padding_mode, mode)
    # the input gradient does not read the input's values: a zero-stride view of its shape
    x = np.broadcast_to(np.float32(0), size)
    gi, _, _ = _core.conv2d_backward(
        _ctx(context), np.ascontiguousarray(x), w, gy, True, False, False, *opts
    )
    return gi


def conv2d_weight(
    input,
    weight_size,
    grad_output,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    mode: str = "cross-correlation",
    *,
    context: Optional[Context] = None,
) -> np.ndarray:
    """conv2d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1, padding_mode='zeros', mode='cross-correlation') -> ndarray

    The gradient of conv2d with respect to its weight, as ``torch.nn.grad.conv2d_weight``:
    ``weight_size`` is the weight's shape. The options are :func:`conv2d`'s.
    """
    x = _f32(input, "input")
    gy = _f32(grad_output, "grad_output")
    size = _shape(weight_size, "weight_size", 2 if x.ndim == 2 else 4)
    opts = _opts(stride, padding, dilation, groups, padding_mode, mode)
    w = np.zeros(size, np.float32)
    _, gw, _ = _core.conv2d_backward(_ctx(context), x, w, gy, False, True, False, *opts)
    return gw


def corr2d(x, k, *, context: Optional[Context] = None) -> np.ndarray:
    """corr2d(x, k) -> ndarray

    The chapter's two-dimensional cross-correlation of an ``(H, W)`` array with a ``(KH, KW)``
    kernel: ``y[i, j] = sum_ab x[i+a, j+b] k[a, b]``, of shape ``(H-KH+1, W-KW+1)``.
    """
    xa, ka = _f32(x, "x"), _f32(k, "k")
    if xa.ndim != 2 or ka.ndim != 2:
        raise ValueError(f"corr2d takes 2-D arrays, got shapes {xa.shape} and {ka.shape}")
    return _core.conv2d(_ctx(context), xa, ka, None, (1, 1), "valid", (1, 1), 1, "zeros", "cross-correlation")


def edges(image, kernel: str = "sobel", padding_mode: str = "replicate", *, context: Optional[Context] = None) -> np.ndarray:
    """edges(image, kernel='sobel', padding_mode='replicate') -> ndarray

    The response of a gray image to an edge kernel, the image's size (``same`` padding).
    ``image`` is ``(H, W)`` (any real dtype, taken as gray levels) or ``(H, W, C)`` uint8 as
    images come from PIL or imageio (C = 1, 2, 3 or 4: gray, gray+alpha, RGB, RGBA; converted
    to Rec. 709 luma in [0, 1], alpha over white). ``kernel``: ``'sobel'`` and ``'prewitt'``
    (the gradient magnitude of their x and y kernels), ``'sobel-x'``, ``'sobel-y'``,
    ``'prewitt-x'``, ``'prewitt-y'``, ``'edge'`` (the chapter's ``[[1, -1]]``), ``'edge-t'``,
    ``'laplacian'``, ``'second-derivative'``, ``'gaussian'``, ``'box'``.
    """
    arr = np.asarray(image)
    if arr.dtype == np.uint8 and arr.ndim == 3:
        img = np.ascontiguousarray(arr)
    elif arr.ndim == 2:
        img = _f32(arr, "image")
    else:
        raise ValueError(
            f"an image is (H, W) gray levels or (H, W, C) uint8, got shape {arr.shape} dtype {arr.dtype}"
        )
    return _core.edges(_ctx(context), img, _str(kernel, "kernel"), _str(padding_mode, "padding_mode"))


class Conv2d:
    """Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True, padding_mode='zeros', mode='cross-correlation', seed=0)

    A 2-D convolution layer, as ``torch.nn.Conv2d``: a weight of shape
    ``(out_channels, in_channels/groups, KH, KW)`` drawn from ``U(-1/sqrt(fan_in),
    1/sqrt(fan_in))`` with ``seed``, and a bias of shape ``(out_channels,)``. The weight and
    bias stay on the device of the context the layer is first used with, so repeated calls
    upload only their input. ``weight`` and ``bias`` read and set them as arrays.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrPair,
        stride: IntOrPair = 1,
        padding: Padding = 0,
        dilation: IntOrPair = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        mode: str = "cross-correlation",
        seed: int = 0,
    ) -> None:
        opts = _opts(stride, padding, dilation, groups, padding_mode, mode)
        for v, name in ((in_channels, "in_channels"), (out_channels, "out_channels")):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self._core = _core.Conv2d(
            int(in_channels), int(out_channels), _pair(kernel_size, "kernel_size"), bool(bias), *opts, int(seed)
        )

    @classmethod
    def _wrap(cls, core) -> "Conv2d":
        layer = cls.__new__(cls)
        layer._core = core
        return layer

    @property
    def weight(self) -> np.ndarray:
        """The weight, a new array of shape ``(OC, C/groups, KH, KW)``."""
        return self._core.weight()

    @weight.setter
    def weight(self, w) -> None:
        self._core.set_weight(_f32(w, "weight"))

    @property
    def bias(self) -> Optional[np.ndarray]:
        """The bias, a new array of shape ``(OC,)``, or None."""
        return self._core.bias()

    @bias.setter
    def bias(self, b) -> None:
        self._core.set_bias(_f32(b, "bias"))

    def forward(self, input, *, context: Optional[Context] = None) -> np.ndarray:
        """The layer's output for ``input`` (``(N, C, H, W)`` or ``(C, H, W)``)."""
        return self._core.forward(_ctx(context), _f32(input, "input"))

    __call__ = forward

    def backward(self, input, grad_output, *, context: Optional[Context] = None):
        """``(grad_input, grad_weight, grad_bias)`` of ``sum(self(input) * grad_output)``;
        ``grad_bias`` is None for a layer without bias."""
        return self._core.backward(_ctx(context), _f32(input, "input"), _f32(grad_output, "grad_output"))

    def __repr__(self) -> str:
        w = self.weight.shape
        return f"Conv2d({w[1]}, {w[0]}, kernel_size=({w[2]}, {w[3]}), bias={self.bias is not None})"


class Trainer:
    """Trainer(layer, input, target, lr=0.03, momentum=0.0, weight_decay=0.0)

    Gradient descent on the squared error ``sum((layer(input) - target)**2)`` (the chapter's
    loss), as ``torch.optim.SGD`` with ``loss.backward(); opt.step()``, each step one submission
    on the device. ``target`` has the output's shape (leading 1s may be left out).
    """

    def __init__(
        self,
        layer: Conv2d,
        input,
        target,
        lr: float = 0.03,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        *,
        context: Optional[Context] = None,
    ) -> None:
        if not isinstance(layer, Conv2d):
            raise ValueError(f"layer must be a wgpu_conv.Conv2d, got {type(layer).__name__}")
        vals = []
        for v, name in ((lr, "lr"), (momentum, "momentum"), (weight_decay, "weight_decay")):
            try:
                vals.append(float(v))
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be a number, got {v!r}") from None
        self._core = _core.Trainer(
            _ctx(context), layer._core, _f32(input, "input"), _f32(target, "target"), *vals
        )

    def step(self, read_loss: bool = True) -> Optional[float]:
        """One step; returns the loss before its update when ``read_loss`` (else None, and the
        step is not waited for)."""
        return self._core.step(bool(read_loss))

    def layer(self) -> Conv2d:
        """The layer as trained so far."""
        return Conv2d._wrap(self._core.layer())
