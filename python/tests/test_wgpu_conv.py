"""The Python binding against references it does not share code with: scipy.ndimage, a float64
numpy einsum, finite differences, exact integer sums, and (where installed) PyTorch.

Bounds: an element summing L products of float32 values may differ from the exact sum by at
most (L + 1) * 2^-24 * sum |a*b| (the standard bound of a float32 dot product); the references
compute that magnitude sum alongside their float64 values.
"""

import pathlib
import re
import threading

import numpy as np
import pytest
import scipy.ndimage

import wgpu_conv as wc

U = 2.0**-24


def within(got, want, magnitude, terms, what=""):
    """Asserts |got - want| <= (terms + 1) * 2^-24 * magnitude everywhere."""
    got = np.asarray(got, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    bound = (terms + 1) * U * magnitude + 1e-30
    err = np.abs(got - want)
    worst = np.unravel_index(np.argmax(err / bound), err.shape) if err.size else None
    assert np.all(err <= bound), (
        f"{what}: {np.sum(err > bound)} element(s) outside the bound; worst at {worst}: "
        f"got {got[worst]}, expected {want[worst]}, bound {bound[worst]}"
    )


def reference(x, w, b=None, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """conv2d in float64 (zero padding, four sides top/left/bottom/right), and sum |x*w| per
    output element: padded input, one einsum per tap."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n, c, h, wd = x.shape
    oc, cg, kh, kw = w.shape
    t, l, bo, r = padding
    xp = np.pad(x, ((0, 0), (0, 0), (t, bo), (l, r)))
    sh, sw = stride
    dh, dw = dilation
    oh = (h + t + bo - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + l + r - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, oc, oh, ow))
    mag = np.zeros((n, oc, oh, ow))
    ocg = oc // groups
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        ws = w[g * ocg:(g + 1) * ocg]
        for a in range(kh):
            for bb in range(kw):
                patch = xs[:, :, a * dh:a * dh + sh * (oh - 1) + 1:sh, bb * dw:bb * dw + sw * (ow - 1) + 1:sw]
                y[:, g * ocg:(g + 1) * ocg] += np.einsum("nchw,oc->nohw", patch, ws[:, :, a, bb])
                mag[:, g * ocg:(g + 1) * ocg] += np.einsum("nchw,oc->nohw", np.abs(patch), np.abs(ws[:, :, a, bb]))
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
        mag += np.abs(np.asarray(b, np.float64))[None, :, None, None]
    return y, mag, cg * kh * kw + (b is not None)


def rng(seed):
    return np.random.default_rng(seed)


# --- the chapter -------------------------------------------------------------------------


def test_corr2d_of_the_figure():
    x = np.arange(9, dtype=np.float32).reshape(3, 3)
    k = np.array([[0, 1], [2, 3]], np.float32)
    np.testing.assert_array_equal(wc.corr2d(x, k), [[19, 25], [37, 43]])


def test_edge_detection_and_its_transpose():
    x = np.ones((6, 8), np.float32)
    x[:, 2:6] = 0
    k = np.array([[1, -1]], np.float32)
    y = wc.corr2d(x, k)
    row = [0, 1, 0, 0, 0, -1, 0]
    np.testing.assert_array_equal(y, np.array([row] * 6, np.float32))
    np.testing.assert_array_equal(wc.corr2d(x.T, k), np.zeros((8, 5), np.float32))


def test_learning_the_kernel():
    x = np.ones((6, 8), np.float32)
    x[:, 2:6] = 0
    y = wc.corr2d(x, np.array([[1, -1]], np.float32))
    layer = wc.Conv2d(1, 1, kernel_size=(1, 2), bias=False)
    trainer = wc.Trainer(layer, x.reshape(1, 1, 6, 8), y.reshape(1, 1, 6, 7), lr=3e-2)
    losses = [trainer.step(read_loss=True) for _ in range(10)]
    assert losses[-1] < losses[0] / 10, losses
    k = trainer.layer().weight.reshape(2)
    assert abs(k[0] - 1) < 0.1 and abs(k[1] + 1) < 0.1, k


def test_edges_of_uint8_images_and_gray_arrays():
    img = np.zeros((20, 30, 3), np.uint8)
    img[:, 10:] = 255
    e = wc.edges(img, kernel="sobel-x")
    assert e.shape == (20, 30) and e.dtype == np.float32
    # a vertical step: the x response is non-zero on the two columns around it only
    cols = np.nonzero(np.abs(e).sum(axis=0))[0]
    np.testing.assert_array_equal(cols, [9, 10])
    gray = np.where(np.arange(30) >= 10, 1.0, 0.0)[None, :].repeat(20, 0)
    np.testing.assert_allclose(wc.edges(gray, kernel="sobel-x"), e, atol=1e-6)
    rgba = np.concatenate([img, np.full((20, 30, 1), 255, np.uint8)], axis=2)
    np.testing.assert_allclose(wc.edges(rgba), wc.edges(img), atol=1e-6)


# --- against scipy.ndimage ---------------------------------------------------------------

MODES = {"zeros": "constant", "replicate": "nearest", "reflect": "mirror", "circular": "wrap"}


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("mode", sorted(MODES))
def test_same_padding_matches_scipy_correlate(seed, mode):
    r = rng(seed)
    h, w = int(r.integers(6, 40)), int(r.integers(6, 40))
    kh, kw = int(r.choice([1, 3, 5])), int(r.choice([1, 3, 5, 7]))
    if mode == "reflect" and (kh // 2 >= h or kw // 2 >= w):
        pytest.skip("reflect needs padding smaller than the image")
    x = r.uniform(-1, 1, (h, w)).astype(np.float32)
    k = r.uniform(-1, 1, (kh, kw)).astype(np.float32)
    got = wc.conv2d(x[None], k[None, None], padding="same", padding_mode=mode)[0]
    want = scipy.ndimage.correlate(x.astype(np.float64), k.astype(np.float64), mode=MODES[mode], cval=0.0)
    mag = scipy.ndimage.correlate(np.abs(x).astype(np.float64), np.abs(k).astype(np.float64), mode=MODES[mode], cval=0.0)
    within(got, want, mag, kh * kw, f"{mode} {h}x{w} * {kh}x{kw}")


# --- against a float64 einsum ------------------------------------------------------------

CASES = [
    # (n, c, h, w), (oc, kh, kw), stride, padding (t, l, b, r), dilation, groups
    ((2, 3, 11, 13), (4, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    ((1, 4, 17, 9), (6, 3, 2), (2, 3), (0, 2, 1, 0), (1, 1), 2),
    ((3, 2, 12, 12), (2, 3, 3), (1, 1), (2, 0, 0, 2), (2, 3), 1),
    ((1, 6, 10, 15), (6, 5, 1), (3, 1), (1, 2, 3, 4), (1, 2), 6),
    ((2, 8, 9, 9), (16, 1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 4),
]


@pytest.mark.parametrize("case", CASES)
def test_options_match_a_float64_einsum(case):
    (n, c, h, w), (oc, kh, kw), stride, padding, dilation, groups = case
    r = rng(hash(case) % 2**32)
    x = r.uniform(-1, 1, (n, c, h, w)).astype(np.float32)
    wt = r.uniform(-1, 1, (oc, c // groups, kh, kw)).astype(np.float32)
    b = r.uniform(-1, 1, oc).astype(np.float32)
    got = wc.conv2d(x, wt, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    want, mag, terms = reference(x, wt, b, stride, padding, dilation, groups)
    within(got, want, mag, terms, str(case))
    # unbatched (C, H, W) gives the first image's output, (OC, OH, OW) (a batch of one may
    # take another kernel, so another order of additions: within the bound, not bit for bit)
    one = wc.conv2d(x[0], wt, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    within(one, want[0], mag[0], terms, f"{case} unbatched")


def test_strict_convolution_is_the_flipped_cross_correlation():
    r = rng(3)
    x = r.uniform(-1, 1, (1, 2, 9, 8)).astype(np.float32)
    w = r.uniform(-1, 1, (3, 2, 3, 2)).astype(np.float32)
    a = wc.conv2d(x, w, mode="convolution")
    b = wc.conv2d(x, np.ascontiguousarray(w[:, :, ::-1, ::-1]))
    np.testing.assert_array_equal(a, b)


# --- gradients ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES[:4])
def test_gradients_satisfy_the_adjoint_identity(case):
    """<conv(x, w), gy> = <x, dL/dx> = <w, dL/dw> for L = sum(conv(x, w) * gy), and dL/db is
    the sum of gy: each side summed in float64 from float32 values."""
    (n, c, h, w), (oc, kh, kw), stride, padding, dilation, groups = case
    r = rng(7)
    x = r.uniform(-1, 1, (n, c, h, w)).astype(np.float32)
    wt = r.uniform(-1, 1, (oc, c // groups, kh, kw)).astype(np.float32)
    opts = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y, mag, terms = reference(x, wt, None, stride, padding, dilation, groups)
    gy = r.uniform(-1, 1, y.shape).astype(np.float32)
    gi, gw, gb = wc.conv2d_backward(x, wt, gy, **opts)
    assert gi.shape == x.shape and gw.shape == wt.shape and gb.shape == (oc,)
    lhs = float(np.sum(y * gy))
    # every product once, each gradient element a sum of at most `big` terms
    total = float(np.sum(mag * np.abs(gy)))
    big = max(terms, y.shape[0] * y.shape[2] * y.shape[3]) * oc
    for side, what in ((np.sum(x.astype(np.float64) * gi), "input"), (np.sum(wt.astype(np.float64) * gw), "weight")):
        assert abs(side - lhs) <= (big + 1) * U * total * 2, f"{what}: {side} vs {lhs}"
    np.testing.assert_allclose(gb, gy.astype(np.float64).sum(axis=(0, 2, 3)), rtol=0, atol=(gy[:, 0].size + 1) * U * np.abs(gy).sum(axis=(0, 2, 3)).max())
    # the split calls give the same arrays
    np.testing.assert_array_equal(wc.conv2d_input(x.shape, wt, gy, **opts), gi)
    np.testing.assert_array_equal(wc.conv2d_weight(x, wt.shape, gy, **opts), gw)


def test_gradients_match_central_differences():
    """The loss is linear in x and in w, so a central difference of step 0.5 is exact up to
    the loss's own float32 rounding."""
    r = rng(11)
    x = r.uniform(-1, 1, (1, 2, 7, 6)).astype(np.float32)
    w = r.uniform(-1, 1, (3, 2, 3, 3)).astype(np.float32)
    opts = dict(stride=(2, 1), padding=(1, 0, 2, 1), dilation=(1, 2))
    gy = r.uniform(-1, 1, wc.conv2d(x, w, **opts).shape).astype(np.float32)

    def loss(xv, wv):
        return float(np.sum(wc.conv2d(xv, wv, **opts).astype(np.float64) * gy))

    gi, gw, _ = wc.conv2d_backward(x, w, gy, **opts)
    h = np.float32(0.5)
    scale = float(np.sum(np.abs(gy))) * 20 * U * 8
    for idx in [tuple(r.integers(0, s) for s in x.shape) for _ in range(12)]:
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        fd = (loss(xp, w) - loss(xm, w)) / (2 * h)
        assert abs(fd - gi[idx]) <= scale / h + 1e-6, (idx, fd, gi[idx])
    for idx in [tuple(r.integers(0, s) for s in w.shape) for _ in range(12)]:
        wp, wm = w.copy(), w.copy()
        wp[idx] += h
        wm[idx] -= h
        fd = (loss(x, wp) - loss(x, wm)) / (2 * h)
        assert abs(fd - gw[idx]) <= scale / h + 1e-6, (idx, fd, gw[idx])


def test_a_long_reduction_is_exact_on_small_integers():
    """The weight gradient of a 1x1x320x320 input sums 102,400 products per element and the
    bias gradient 102,400 values: small integers keep every partial sum exact in float32, so
    any correct order of additions gives the exact integer, and a sum cut short would not."""
    r = rng(5)
    x = r.integers(-2, 3, (1, 1, 322, 322)).astype(np.float32)
    w = np.zeros((2, 1, 3, 3), np.float32)
    gy = r.integers(-2, 3, (1, 2, 320, 320)).astype(np.float32)
    _, gw, gb = wc.conv2d_backward(x, w, gy)
    xi, gyi = x.astype(np.int64), gy.astype(np.int64)
    want = np.zeros((2, 1, 3, 3), np.int64)
    for o in range(2):
        for a in range(3):
            for b in range(3):
                want[o, 0, a, b] = np.sum(xi[0, 0, a:a + 320, b:b + 320] * gyi[0, o])
    np.testing.assert_array_equal(gw, want.astype(np.float32))
    np.testing.assert_array_equal(gb, gyi.sum(axis=(0, 2, 3)).astype(np.float32))


# --- arrays and errors -------------------------------------------------------------------


def test_dtypes_and_layouts_are_converted():
    r = rng(2)
    x = r.uniform(-1, 1, (1, 2, 8, 9))
    w = r.uniform(-1, 1, (3, 2, 3, 3))
    base = wc.conv2d(x.astype(np.float32), w.astype(np.float32))
    np.testing.assert_array_equal(wc.conv2d(x, w), base)  # float64
    np.testing.assert_array_equal(wc.conv2d(np.asfortranarray(x.astype(np.float32)), w.astype(np.float32)), base)
    xi = r.integers(-3, 4, (1, 2, 8, 9))
    np.testing.assert_array_equal(wc.conv2d(xi, w.astype(np.float32)), wc.conv2d(xi.astype(np.float32), w.astype(np.float32)))
    strided = np.ascontiguousarray(np.repeat(x.astype(np.float32), 2, axis=3))[:, :, :, ::2]
    np.testing.assert_array_equal(wc.conv2d(strided, w.astype(np.float32)), base)
    assert wc.conv2d(x.tolist(), w).dtype == np.float32


BAD = [
    ("channels", lambda: wc.conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 2, 3, 3))), "channel"),
    ("rank", lambda: wc.conv2d(np.ones((5, 5)), np.ones((2, 1, 3, 3))), "rank"),
    ("kernel larger than input", lambda: wc.conv2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3))), ""),
    ("groups", lambda: wc.conv2d(np.ones((1, 4, 5, 5)), np.ones((3, 2, 3, 3)), groups=2), "group"),
    ("stride 0", lambda: wc.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), stride=0), "stride"),
    ("padding name", lambda: wc.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding="full"), "padding"),
    ("negative padding", lambda: wc.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding=-1), "padding"),
    ("three paddings", lambda: wc.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding=(1, 2, 3)), "padding"),
    ("padding mode", lambda: wc.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding_mode="mirror"), "padding mode"),
    ("mode", lambda: wc.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), mode="full"), ""),
    ("complex", lambda: wc.conv2d(np.ones((1, 1, 5, 5), complex), np.ones((1, 1, 3, 3))), "real numbers"),
    ("strings", lambda: wc.conv2d(np.array([["a"]]), np.ones((1, 1))), "real numbers"),
    ("bias shape", lambda: wc.conv2d(np.ones((1, 1, 5, 5)), np.ones((2, 1, 3, 3)), np.ones(3)), "bias"),
    ("grad_output shape", lambda: wc.conv2d_backward(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), np.ones((1, 1, 4, 4))), ""),
    ("same with stride", lambda: wc.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding="same", stride=2), "same"),
    ("edges kernel", lambda: wc.edges(np.ones((5, 5)), kernel="sobel-z"), "sobel"),
    ("edges image", lambda: wc.edges(np.ones((5, 5, 3), np.float32)), "image"),
    ("float64 beyond float32", lambda: wc.conv2d(np.full((1, 1, 3, 3), 1e300), np.ones((1, 1, 3, 3))), "float32"),
]


@pytest.mark.parametrize("what,call,word", BAD, ids=[b[0] for b in BAD])
def test_misuse_raises_value_error_with_the_message(what, call, word):
    with pytest.raises(ValueError) as e:
        call()
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 400, msg
    assert word.lower() in msg.lower(), f"{what}: {msg}"


# --- threads, layers ---------------------------------------------------------------------


def test_eight_threads_at_once_all_get_right_answers():
    r = rng(8)
    jobs = []
    for i in range(8):
        x = r.uniform(-1, 1, (1 + i % 2, 3, 12 + i, 10 + 2 * i)).astype(np.float32)
        w = r.uniform(-1, 1, (4, 3, 3, 3)).astype(np.float32)
        jobs.append((x, w, reference(x, w, None, (1, 1), (1, 1, 1, 1))))
    failures = []
    barrier = threading.Barrier(8)

    def work(x, w, ref):
        barrier.wait()
        for _ in range(5):
            got = wc.conv2d(x, w, padding=1)
            try:
                within(got, ref[0], ref[1], ref[2], "thread")
            except AssertionError as e:
                failures.append(str(e))

    threads = [threading.Thread(target=work, args=j) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:3]


def test_a_layer_forward_backward_and_its_weight():
    layer = wc.Conv2d(3, 5, 3, stride=2, padding=1, bias=True, seed=4)
    assert layer.weight.shape == (5, 3, 3, 3) and layer.bias.shape == (5,)
    bound = 1 / np.sqrt(27)
    assert np.all(np.abs(layer.weight) <= bound)
    x = rng(1).uniform(-1, 1, (2, 3, 9, 9)).astype(np.float32)
    y = layer(x)
    want, mag, terms = reference(x, layer.weight, layer.bias, (2, 2), (1, 1, 1, 1))
    within(y, want, mag, terms, "layer")
    gi, gw, gb = layer.backward(x, np.ones_like(y))
    gi2, gw2, gb2 = wc.conv2d_backward(x, layer.weight, np.ones_like(y), stride=2, padding=1)
    np.testing.assert_array_equal(gw, gw2)
    np.testing.assert_array_equal(gi, gi2)
    np.testing.assert_array_equal(gb, gb2)
    layer.weight = np.zeros((5, 3, 3, 3))
    layer.bias = np.arange(5)
    np.testing.assert_array_equal(layer(x), np.broadcast_to(np.arange(5, dtype=np.float32)[None, :, None, None], y.shape))
    with pytest.raises(ValueError):
        layer.weight = np.zeros((5, 3, 2, 2))


def test_contexts_and_their_description():
    ctx = wc.Context()
    assert ctx.describe() and ctx.family() in ("cpu", "gpu")
    x = np.arange(9, dtype=np.float32).reshape(3, 3)
    k = np.array([[0, 1], [2, 3]], np.float32)
    np.testing.assert_array_equal(wc.corr2d(x, k, context=ctx), wc.corr2d(x, k))
    with pytest.raises(ValueError):
        wc.corr2d(x, k, context="gpu")


def test_help_reads_like_pytorch():
    doc = wc.conv2d.__doc__
    assert doc.startswith("conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1")
    for word in ("Args:", "padding_mode", "groups", "Returns:"):
        assert word in doc


def test_the_readme_snippet_runs():
    readme = pathlib.Path(__file__).resolve().parents[2] / "README.md"
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)
    assert blocks, "the README has no Python snippet"
    exec(compile(blocks[0], "README.md", "exec"), {})


# --- PyTorch, where it happens to be installed -------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_against_pytorch_where_installed(case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    (n, c, h, w), (oc, kh, kw), stride, padding, dilation, groups = case
    t, l, b, r = padding
    rg = rng(21)
    x = rg.uniform(-1, 1, (n, c, h, w)).astype(np.float32)
    wt = rg.uniform(-1, 1, (oc, c // groups, kh, kw)).astype(np.float32)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    wtt = torch.tensor(wt, dtype=torch.float64, requires_grad=True)
    yt = F.conv2d(F.pad(xt, (l, r, t, b)), wtt, None, stride, 0, dilation, groups)
    gy = rg.uniform(-1, 1, tuple(yt.shape)).astype(np.float32)
    (yt * torch.tensor(gy, dtype=torch.float64)).sum().backward()
    y = wc.conv2d(x, wt, stride=stride, padding=padding, dilation=dilation, groups=groups)
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-5)
    gi, gw, _ = wc.conv2d_backward(x, wt, gy, stride=stride, padding=padding, dilation=dilation, groups=groups)
    np.testing.assert_allclose(gi, xt.grad.numpy(), atol=1e-4)
    np.testing.assert_allclose(gw, wtt.grad.numpy(), atol=1e-3)
