"""funcnn.nn linear, embedding, convolution and pooling: gradients, adjoints, twins, errors, backends."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import funcnn as fn
from funcnn import backend, random
from funcnn import numpy as fnp
from funcnn.nn import _conv as conv_module
from funcnn.nn._conv import (
    conv1d,
    conv2d,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
    init_conv,
)
from funcnn.nn._linear import embedding, init_embedding, init_linear, linear
from funcnn.nn._pool import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_avg_pool3d,
    avg_pool1d,
    avg_pool2d,
    avg_pool3d,
    max_pool1d,
    max_pool2d,
    max_pool3d,
)
from funcnn.testing import check_grads

CONV = {1: conv1d, 2: conv2d, 3: conv3d}
CONV_T = {1: conv_transpose1d, 2: conv_transpose2d, 3: conv_transpose3d}
MAX_POOL = {1: max_pool1d, 2: max_pool2d, 3: max_pool3d}
AVG_POOL = {1: avg_pool1d, 2: avg_pool2d, 3: avg_pool3d}
ADAPTIVE = {1: adaptive_avg_pool1d, 2: adaptive_avg_pool2d, 3: adaptive_avg_pool3d}


def _normal(seed, shape, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _distinct(seed, shape):
    """Values at least 1/size apart (no ties), so a max has a clean finite difference."""
    n = math.prod(shape)
    return (np.random.default_rng(seed).permutation(n).reshape(shape) / n * 4 - 2).astype(
        np.float64
    )


def _vdot(a, b):
    return float(np.sum(np.asarray(a) * np.asarray(b)))


# ----------------------------------------------------------------------------- configurations


@st.composite
def conv_configs(draw, transpose=False):
    """A small conv (or conv_transpose) problem: (nd, x, params, options)."""
    nd = draw(st.sampled_from([1, 2, 2, 3]))
    groups = draw(st.integers(1, 2))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    n = draw(st.integers(1, 2))
    kmax = 3 if nd < 3 else 2
    kernel = tuple(draw(st.integers(1, kmax)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    ext = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    options = {"stride": stride, "dilation": dilation, "groups": groups}
    if transpose:
        pad = tuple(draw(st.integers(0, 1)) for _ in range(nd))
        options["padding"] = pad
        options["output_padding"] = tuple(
            draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation)
        )
        size = tuple(draw(st.integers(1, 3)) for _ in range(nd))
        # the output must be positive: (i - 1) * s - 2p + ext + op >= 1
        size = tuple(max(i, (2 * p - e + s) // s + 1) for i, p, e, s in zip(size, pad, ext, stride))
        shape_w = (cin, cout // groups) + kernel
    else:
        padding = draw(st.sampled_from(["int", "tuple", "valid", "same"]))
        if padding == "same":
            options["stride"] = (1,) * nd
            options["padding"] = "same"
            pads = [0] * nd
        elif padding == "valid":
            options["padding"] = "valid"
            pads = [0] * nd
        elif padding == "int":
            p = draw(st.integers(0, 2))
            options["padding"] = p
            pads = [p] * nd
        else:
            pads = [draw(st.integers(0, 2)) for _ in range(nd)]
            options["padding"] = tuple(pads)
        top = 3 if nd == 3 else 5
        size = tuple(max(1, e - 2 * p) + draw(st.integers(0, top)) for e, p in zip(ext, pads))
        shape_w = (cout, cin // groups) + kernel
    seed = draw(st.integers(0, 2**16))
    x = _normal(seed, (n, cin) + size)
    params = {"weight": _normal(seed + 1, shape_w) * 0.5}
    if draw(st.booleans()):
        params["bias"] = _normal(seed + 2, (shape_w[0] if not transpose else cout,))
    return nd, x, params, options


def _conv_reference(nd, x, params, stride=1, padding=0, dilation=1, groups=1):
    """The composed twin: one einsum per kernel offset over strided slices (no im2col, no GEMM)."""
    w, b = params["weight"], params.get("bias")
    k = w.shape[2:]
    stride = (stride,) * nd if isinstance(stride, int) else stride
    dilation = (dilation,) * nd if isinstance(dilation, int) else dilation
    if padding == "same":
        pads = [(d * (kk - 1) // 2, d * (kk - 1) - d * (kk - 1) // 2) for kk, d in zip(k, dilation)]
    elif padding == "valid":
        pads = [(0, 0)] * nd
    else:
        p = (padding,) * nd if isinstance(padding, int) else padding
        pads = [(q, q) for q in p]
    xpad = fnp.pad(x, ((0, 0), (0, 0), *pads))
    n, c = x.shape[:2]
    sp = [s + a + bb for s, (a, bb) in zip(x.shape[2:], pads)]
    out = [(s - d * (kk - 1) - 1) // st_ + 1 for s, d, kk, st_ in zip(sp, dilation, k, stride)]
    cout = w.shape[0]
    letters = "xyz"[:nd]
    total = 0.0
    for offs in itertools.product(*(range(kk) for kk in k)):
        idx = (slice(None), slice(None)) + tuple(
            slice(o * d, o * d + (m - 1) * s + 1, s)
            for o, d, m, s in zip(offs, dilation, out, stride)
        )
        xs = fnp.reshape(xpad[idx], (n, groups, c // groups, *out))
        ws = fnp.reshape(
            w[(slice(None), slice(None)) + offs], (groups, cout // groups, c // groups)
        )
        term = fnp.einsum(f"ngc{letters},goc->ngo{letters}", xs, ws)
        total = total + fnp.reshape(term, (n, cout, *out))
    if b is not None:
        total = total + fnp.reshape(b, (cout,) + (1,) * nd)
    return total


# ----------------------------------------------------------------------------- linear


@settings(max_examples=20, deadline=None)
@given(
    lead=st.lists(st.integers(1, 3), max_size=2),
    n_in=st.integers(1, 4),
    n_out=st.integers(1, 4),
    with_bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_linear_grads_order2_and_composed_twin(lead, n_in, n_out, with_bias, seed):
    x = _normal(seed, (*lead, n_in))
    w, b = _normal(seed + 1, (n_out, n_in)), _normal(seed + 2, (n_out,)) if with_bias else None
    y = linear({"weight": w, "bias": b}, x)
    expect = x @ w.T + (b if with_bias else 0.0)
    np.testing.assert_allclose(y, expect, rtol=1e-12, atol=1e-12)
    assert y.shape == (*lead, n_out)
    if with_bias:
        check_grads(lambda x, w, b: linear({"weight": w, "bias": b}, x), (x, w, b), order=2)
    else:
        check_grads(lambda x, w: linear({"weight": w}, x), (x, w), order=2)


def test_linear_float32_preserved_and_bias_absent_or_none():
    x, w, b = (
        _normal(0, (5, 3), np.float32),
        _normal(1, (2, 3), np.float32),
        _normal(2, (2,), np.float32),
    )
    grads = fn.grad(lambda p, x: fnp.sum(linear(p, x) ** 2), argnums=(0, 1))(
        {"weight": w, "bias": b}, x
    )
    assert linear({"weight": w, "bias": b}, x).dtype == np.float32
    assert all(g.dtype == np.float32 for g in fn.tree.leaves(grads))
    np.testing.assert_array_equal(linear({"weight": w}, x), linear({"weight": w, "bias": None}, x))


def test_linear_errors():
    w = np.zeros((4, 3))
    with pytest.raises(
        ValueError,
        match=r"linear: x has shape \(2, 5\) but weight has shape \(4, 3\); "
        r"x.shape\[-1\] must equal weight.shape\[1\] \(3\)",
    ):
        linear({"weight": w}, np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        linear({"weight": w, "bias": np.zeros(3)}, np.zeros((2, 3)))
    with pytest.raises(TypeError, match="x has dtype float32 but weight has dtype float64"):
        linear({"weight": w}, np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match="x must be a floating-point array"):
        linear({"weight": w}, np.zeros((2, 3), np.int64))
    with pytest.raises(TypeError, match="params must be a dict with a 'weight' entry"):
        linear(w, np.zeros((2, 3)))


# ----------------------------------------------------------------------------- embedding


@settings(max_examples=15, deadline=None)
@given(
    num=st.integers(1, 6),
    dim=st.integers(1, 3),
    idx_shape=st.lists(st.integers(1, 4), min_size=1, max_size=2),
    seed=st.integers(0, 2**16),
)
def test_embedding_gather_and_grads(num, dim, idx_shape, seed):
    w = _normal(seed, (num, dim))
    idx = np.random.default_rng(seed).integers(0, num, size=idx_shape)
    out = embedding({"weight": w}, idx)
    np.testing.assert_array_equal(out, w[idx])
    check_grads(lambda w: embedding({"weight": w}, idx) ** 2, (w,), order=2)


def test_embedding_gradient_scatter_adds_repeats_and_skips_padding_idx():
    w = _normal(0, (5, 2))
    idx = np.array([[1, 3, 1], [4, 1, 3]])
    up = _normal(1, (2, 3, 2))
    g = fn.grad(lambda w: fnp.sum(embedding({"weight": w}, idx, padding_idx=-2) * up))(w)
    expect = np.zeros_like(w)
    for i, row in zip(idx.reshape(-1), up.reshape(-1, 2)):
        expect[i] += row
    expect[3] = 0.0  # padding_idx=-2 is row 3
    np.testing.assert_allclose(g, expect, rtol=1e-14)
    # the forward pass still reads the padding row
    np.testing.assert_array_equal(embedding({"weight": w}, idx, padding_idx=3), w[idx])


def test_embedding_errors():
    w = np.zeros((4, 2))
    with pytest.raises(IndexError, match=r"indices must lie in \[0, 4\).*from -1 to 2"):
        embedding({"weight": w}, np.array([0, -1, 2]))
    with pytest.raises(IndexError, match="from 0 to 4"):
        embedding({"weight": w}, np.array([0, 4]))
    with pytest.raises(TypeError, match="indices must be an integer array, got dtype float64"):
        embedding({"weight": w}, np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="indices must be an integer array, got dtype bool"):
        embedding({"weight": w}, np.array([True]))
    with pytest.raises(ValueError, match=r"padding_idx must be an int in \[-4, 4\)"):
        embedding({"weight": w}, np.array([0]), padding_idx=4)


# ----------------------------------------------------------------------------- convolution


@settings(max_examples=25, deadline=None)
@given(cfg=conv_configs())
def test_conv_grads_order2(cfg):
    nd, x, params, opts = cfg
    check_grads(lambda x, p: CONV[nd](p, x, **opts), (x, params), order=2)


@settings(max_examples=20, deadline=None)
@given(cfg=conv_configs())
def test_conv_matches_composed_twin(cfg):
    nd, x, params, opts = cfg
    y = CONV[nd](params, x, **opts)
    ref = _conv_reference(nd, x, params, **opts)
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-10)
    up = _normal(7, y.shape)
    g = fn.grad(lambda x, p: fnp.sum(CONV[nd](p, x, **opts) * up), argnums=(0, 1))(x, params)
    g_ref = fn.grad(lambda x, p: fnp.sum(_conv_reference(nd, x, p, **opts) * up), argnums=(0, 1))(
        x, params
    )
    for a, b in zip(fn.tree.leaves(g), fn.tree.leaves(g_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(cfg=conv_configs(transpose=True))
def test_conv_transpose_grads_order2(cfg):
    nd, x, params, opts = cfg
    check_grads(lambda x, p: CONV_T[nd](p, x, **opts), (x, params), order=2)


@settings(max_examples=25, deadline=None)
@given(cfg=conv_configs(), seed=st.integers(0, 2**16))
def test_conv_transpose_is_the_adjoint_of_conv(cfg, seed):
    nd, x, params, opts = cfg
    if opts["padding"] == "same" and any(
        d * (k - 1) % 2 for k, d in zip(params["weight"].shape[2:], opts["dilation"])
    ):
        return  # asymmetric padding has no conv_transpose counterpart (as in PyTorch)
    w = params["weight"]
    y = CONV[nd]({"weight": w}, x, **opts)
    r = _normal(seed, y.shape)
    pad = opts["padding"]
    k = w.shape[2:]
    if pad == "same":
        pad = tuple(d * (kk - 1) // 2 for kk, d in zip(k, opts["dilation"]))
    elif pad == "valid":
        pad = 0
    pad_t = (pad,) * nd if isinstance(pad, int) else pad
    # output_padding recovers x's exact size from y's
    op = tuple(
        h - ((o - 1) * s - 2 * p + d * (kk - 1) + 1)
        for h, o, s, p, d, kk in zip(
            x.shape[2:], y.shape[2:], opts["stride"], pad_t, opts["dilation"], k
        )
    )
    back = CONV_T[nd](
        {"weight": w},
        r,
        stride=opts["stride"],
        padding=pad_t,
        dilation=opts["dilation"],
        groups=opts["groups"],
        output_padding=op,
    )
    assert back.shape == x.shape
    np.testing.assert_allclose(_vdot(y, r), _vdot(x, back), rtol=1e-10, atol=1e-10)


@settings(max_examples=20, deadline=None)
@given(cfg=conv_configs(), transpose=st.booleans(), n=st.integers(2, 4))
def test_conv_batch_chunks_and_joint_rule_match_one_pass(cfg, transpose, n):
    """On NumPy a large batch goes in chunks through reused buffers, and the first-order
    backward pass with both x and the weight wanted runs one fused sweep. Both must give the
    numbers of the whole batch at once and of the separate per-argument rules."""
    nd, x, params, opts = cfg
    layer = CONV[nd]
    if transpose:  # the same channels and kernel, as a transposed convolution (no padding)
        layer = CONV_T[nd]
        opts = {k: v for k, v in opts.items() if k != "padding"}
        cout, _, *kernel = params["weight"].shape
        shape = (x.shape[1], cout // opts["groups"], *kernel)
        params = {**params, "weight": _normal(n + 2, shape) * 0.5}
    x = _normal(n, (n,) + x.shape[1:])
    up = _normal(n + 1, layer(params, x, **opts).shape)
    loss = lambda x, p: fnp.sum(layer(p, x, **opts) * up)

    def run():
        y = layer(params, x, **opts)
        joint = fn.grad(loss, argnums=(0, 1))(x, params)
        alone = (fn.grad(loss, argnums=0)(x, params), fn.grad(loss, argnums=1)(x, params))
        return [y, *fn.tree.leaves(joint), *fn.tree.leaves(alone)]

    whole = run()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(conv_module, "_CHUNK_ELEMENTS", 1)  # one sample per chunk
        chunked = run()
    k = len(whole) // 2  # y, joint grads | separate grads: the joint ones equal the separate
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    for a, b in zip(whole[1 : k + 1], whole[k + 1 :]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_conv_same_padding_with_even_kernel_pads_more_on_the_right():
    x = _normal(0, (1, 1, 6))
    w = np.ones((1, 1, 4))
    y = conv1d({"weight": w}, x, padding="same")
    xp = np.concatenate([np.zeros(1), x[0, 0], np.zeros(2)])  # total 3: 1 left, 2 right
    np.testing.assert_allclose(y[0, 0], [xp[i : i + 4].sum() for i in range(6)], rtol=1e-12)


def test_conv_float32_preserved_and_unbatched_input():
    x = _normal(0, (3, 6, 5), np.float32)
    p = init_conv(random.key(0), 3, 4, (3, 2))
    y = conv2d(p, x, padding=1)
    assert y.dtype == np.float32 and y.shape == (4, 6, 6)
    np.testing.assert_allclose(y, conv2d(p, x[None], padding=1)[0], rtol=1e-6)
    g = fn.grad(lambda x, p: fnp.sum(conv2d(p, x, stride=2) ** 2), argnums=(0, 1))(x, p)
    assert all(a.dtype == np.float32 for a in fn.tree.leaves(g))
    t = init_conv(random.key(1), 4, 2, 3, transposed=True)
    assert conv_transpose2d(t, y).dtype == np.float32


def test_conv_errors():
    w = np.zeros((4, 3, 3, 3))
    x = np.zeros((2, 3, 5, 5))
    with pytest.raises(
        ValueError,
        match=r"conv2d: x has 2 channels .* weight expects C_in = weight.shape\[1\] \* groups = 3 \* 1 = 3",
    ):
        conv2d({"weight": w}, np.zeros((2, 2, 5, 5)))
    with pytest.raises(
        ValueError,
        match=r"conv2d: x must have shape \(N, C_in, H, W\) or \(C_in, H, W\).*got shape \(5, 5\)",
    ):
        conv2d({"weight": w}, np.zeros((5, 5)))
    with pytest.raises(
        ValueError, match=r"weight must have shape \(C_out, C_in // groups, kH, kW\)"
    ):
        conv2d({"weight": np.zeros((4, 3, 3))}, x)
    with pytest.raises(ValueError, match="kernel can't be larger than the padded input"):
        conv2d({"weight": w}, np.zeros((2, 3, 2, 5)))
    with pytest.raises(ValueError, match="groups=2 does not divide"):
        conv2d({"weight": np.zeros((3, 2, 1, 1))}, np.zeros((1, 4, 2, 2)), groups=2)
    with pytest.raises(ValueError, match="groups must be a positive int"):
        conv2d({"weight": w}, x, groups=0)
    with pytest.raises(
        ValueError, match="padding='same' is not supported for strided convolutions"
    ):
        conv2d({"weight": w}, x, padding="same", stride=2)
    with pytest.raises(
        ValueError, match="padding must be an int, a tuple of ints, 'same' or 'valid'"
    ):
        conv2d({"weight": w}, x, padding="full")
    with pytest.raises(ValueError, match="stride must be >= 1"):
        conv2d({"weight": w}, x, stride=0)
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        conv2d({"weight": w, "bias": np.zeros(3)}, x)
    with pytest.raises(TypeError, match="x has dtype float32 but weight has dtype float64"):
        conv2d({"weight": w}, x.astype(np.float32))
    wt = np.zeros((3, 2, 3, 3))
    with pytest.raises(
        ValueError,
        match=r"conv_transpose2d: x has 4 channels .* weight expects C_in = weight.shape\[0\] = 3",
    ):
        conv_transpose2d({"weight": wt}, np.zeros((1, 4, 3, 3)))
    with pytest.raises(
        ValueError, match="output_padding must be smaller than either stride or dilation"
    ):
        conv_transpose2d({"weight": wt}, np.zeros((1, 3, 3, 3)), output_padding=1)
    with pytest.raises(ValueError, match="output size .* is not positive"):
        conv_transpose2d({"weight": wt}, np.zeros((1, 3, 1, 1)), padding=2)
    with pytest.raises(ValueError, match="no 'same'/'valid'"):
        conv_transpose2d({"weight": wt}, np.zeros((1, 3, 3, 3)), padding="same")


# ----------------------------------------------------------------------------- pooling


@st.composite
def pool_configs(draw, with_dilation=False):
    nd = draw(st.sampled_from([1, 2, 2, 3]))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd)) if with_dilation else (1,) * nd
    ext = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    pad = tuple(draw(st.integers(0, e // 2)) for e in ext)
    size = tuple(
        max(1, e - 2 * p) + draw(st.integers(0, 3 if nd == 3 else 4)) for e, p in zip(ext, pad)
    )
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + size
    opts = {"kernel_size": kernel, "stride": draw(st.sampled_from([stride, None])), "padding": pad}
    if with_dilation:
        opts["dilation"] = dilation
    return nd, shape, opts


@settings(max_examples=25, deadline=None)
@given(cfg=pool_configs(with_dilation=True), seed=st.integers(0, 2**16))
def test_max_pool_grads(cfg, seed):
    nd, shape, opts = cfg
    x = _distinct(seed, shape)
    # with dilation, a window may hold only padding: its max is -inf, as in PyTorch
    assume(np.isfinite(MAX_POOL[nd](x, **opts)).all())
    check_grads(lambda x: MAX_POOL[nd](x, **opts), (x,), order=1)
    # the VJP is a linear map of the cotangent with its own VJP: second order through it
    check_grads(lambda x: MAX_POOL[nd](x, **opts) ** 2, (x,), order=2)


@settings(max_examples=25, deadline=None)
@given(cfg=pool_configs(), count_include_pad=st.booleans(), seed=st.integers(0, 2**16))
def test_avg_pool_grads_order2(cfg, count_include_pad, seed):
    nd, shape, opts = cfg
    x = _normal(seed, shape)
    check_grads(
        lambda x: AVG_POOL[nd](x, **opts, count_include_pad=count_include_pad), (x,), order=2
    )


@settings(max_examples=25, deadline=None)
@given(
    nd=st.sampled_from([1, 2, 3]),
    data=st.data(),
    seed=st.integers(0, 2**16),
)
def test_adaptive_avg_pool_grads_order2_and_bins(nd, data, seed):
    size = tuple(data.draw(st.integers(1, 7 if nd < 3 else 4)) for _ in range(nd))
    out = tuple(data.draw(st.integers(1, 5 if nd < 3 else 3)) for _ in range(nd))
    x = _normal(seed, (2, 2) + size)
    y = ADAPTIVE[nd](x, out)
    assert y.shape == (2, 2) + out
    # PyTorch's bins: [floor(i*L/out), ceil((i+1)*L/out))
    for o in itertools.product(*(range(m) for m in out)):
        idx = (slice(None), slice(None)) + tuple(
            slice((i * n) // m, -((-(i + 1) * n) // m)) for i, n, m in zip(o, size, out)
        )
        np.testing.assert_allclose(
            y[(slice(None), slice(None)) + o],
            x[idx].mean(axis=tuple(range(2, 2 + nd))),
            rtol=1e-12,
            atol=1e-12,
        )
    check_grads(lambda x: ADAPTIVE[nd](x, out), (x,), order=2)


def test_max_pool_ties_go_to_the_first_maximum():
    x = np.array([[[[1.0, 3.0, 3.0], [3.0, 0.0, 3.0]]]])
    g = fn.grad(lambda x: fnp.sum(max_pool2d(x, (2, 3))))(x)
    np.testing.assert_array_equal(g, [[[[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]]])
    g = fn.grad(lambda x: fnp.sum(max_pool2d(x, 2, stride=1)))(x)
    np.testing.assert_array_equal(g, [[[[0.0, 2.0, 0.0], [0.0, 0.0, 0.0]]]])


def test_pools_preserve_float32_and_accept_unbatched_input():
    x = _normal(0, (3, 6, 5), np.float32)
    for f in (
        lambda x: max_pool2d(x, 2),
        lambda x: avg_pool2d(x, 3, 1, 1),
        lambda x: adaptive_avg_pool2d(x, (4, 3)),
    ):
        y = f(x)
        assert y.dtype == np.float32
        np.testing.assert_array_equal(y, f(x[None])[0])
        assert fn.grad(lambda x: fnp.sum(f(x) ** 2))(x).dtype == np.float32


def test_pool_errors():
    x = np.zeros((1, 1, 5, 5))
    with pytest.raises(NotImplementedError, match="ceil_mode=True is not supported"):
        max_pool2d(x, 2, ceil_mode=True)
    with pytest.raises(
        ValueError, match="padding should be at most half of the effective kernel size"
    ):
        max_pool2d(x, 3, padding=2)
    with pytest.raises(ValueError, match="padding should be at most half"):
        avg_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match=r"too small for kernel_size=\(7, 7\)"):
        max_pool2d(x, 7)
    with pytest.raises(
        ValueError, match=r"max_pool2d: x must have shape \(N, C, H, W\) or \(C, H, W\)"
    ):
        max_pool2d(np.zeros(5), 2)
    with pytest.raises(TypeError, match="x must be a floating-point array"):
        avg_pool1d(np.zeros((1, 1, 4), np.int64), 2)
    with pytest.raises(ValueError, match="output_size must be >= 1"):
        adaptive_avg_pool2d(x, 0)


# ----------------------------------------------------------------------------- the strict stand-in backend


def _strict_equal(f, *args):
    host = f(*args)
    dev = f(*backend.device_put(args, "strict"))
    assert backend.backend_name(dev) == "strict"
    np.testing.assert_allclose(backend.to_numpy(dev), host, rtol=1e-12, atol=1e-12)


def test_forward_on_the_strict_backend_equals_numpy():
    x, x1 = _normal(0, (2, 4, 6, 5)), _normal(1, (2, 4, 7))
    p = {"weight": _normal(2, (6, 2, 3, 2)), "bias": _normal(3, (6,))}
    pt = {"weight": _normal(4, (4, 3, 2, 3)), "bias": _normal(5, (6,))}
    _strict_equal(lambda p, x: conv2d(p, x, stride=(2, 1), padding="valid", groups=2), p, x)
    _strict_equal(lambda p, x: conv2d(p, x, padding="same", dilation=2, groups=2), p, x)
    _strict_equal(
        lambda p, x: conv_transpose2d(p, x, stride=2, padding=1, output_padding=1, groups=2), pt, x
    )
    _strict_equal(lambda p, x: conv1d(p, x, padding=1), {"weight": _normal(6, (3, 4, 3))}, x1)
    _strict_equal(lambda x: max_pool2d(x, 3, 2, 1), x)
    _strict_equal(lambda x: avg_pool2d(x, 3, 2, 1, count_include_pad=False), x)
    _strict_equal(lambda x: adaptive_avg_pool2d(x, (4, 3)), x)
    _strict_equal(lambda x: adaptive_avg_pool1d(x, 7), x1)
    _strict_equal(
        lambda p, x: linear(p, x), {"weight": _normal(7, (3, 5)), "bias": _normal(8, (3,))}, x
    )
    _strict_equal(
        lambda p, i: embedding(p, i), {"weight": _normal(9, (6, 3))}, np.array([[0, 5], [2, 2]])
    )


def test_gradients_on_the_strict_backend_equal_numpy():
    x = _normal(0, (2, 4, 6, 5))
    p = {"weight": _normal(2, (6, 2, 3, 2)), "bias": _normal(3, (6,))}

    def loss(p, x):
        y = conv2d(p, x, stride=2, padding=1, groups=2)
        return fnp.sum(max_pool2d(y, 2, 1) ** 2) + fnp.sum(avg_pool2d(y, 2) * y[:, :, :1, :1])

    host = fn.grad(loss, argnums=(0, 1))(p, x)
    dev = fn.grad(loss, argnums=(0, 1))(*backend.device_put((p, x), "strict"))
    for a, b in zip(fn.tree.leaves(host), fn.tree.leaves(dev)):
        assert backend.backend_name(b) == "strict"
        np.testing.assert_allclose(backend.to_numpy(b), a, rtol=1e-12, atol=1e-12)
    w = _normal(4, (6, 3))
    idx = np.array([1, 4, 1])
    g = fn.grad(lambda w, i: fnp.sum(embedding({"weight": w}, i) ** 2))(
        *backend.device_put((w, idx), "strict")
    )
    np.testing.assert_allclose(
        backend.to_numpy(g),
        fn.grad(lambda w: fnp.sum(embedding({"weight": w}, idx) ** 2))(w),
        rtol=1e-14,
    )


# ----------------------------------------------------------------------------- initialisers


def test_init_linear_shapes_bounds_and_determinism():
    p = init_linear(random.key(0), 400, 300)
    bound = 1 / math.sqrt(400)
    assert p["weight"].shape == (300, 400) and p["bias"].shape == (300,)
    assert p["weight"].dtype == np.float32
    assert 0.99 * bound < np.abs(p["weight"]).max() <= bound
    assert np.abs(p["bias"]).max() <= bound
    assert abs(float(p["weight"].std()) - bound / math.sqrt(3)) < 0.01 * bound
    np.testing.assert_array_equal(p["weight"], init_linear(random.key(0), 400, 300)["weight"])
    assert "bias" not in init_linear(random.key(0), 3, 2, bias=False)
    assert init_linear(random.key(0), 3, 2, dtype="float64")["weight"].dtype == np.float64


def test_init_conv_shapes_and_bounds():
    p = init_conv(random.key(1), 8, 6, (3, 2), groups=2)
    bound = 1 / math.sqrt(4 * 6)
    assert p["weight"].shape == (6, 4, 3, 2) and p["bias"].shape == (6,)
    assert np.abs(p["weight"]).max() <= bound and np.abs(p["bias"]).max() <= bound
    t = init_conv(random.key(1), 8, 6, 3, groups=2, ndim=1, transposed=True, bias=False)
    assert t["weight"].shape == (8, 3, 3) and "bias" not in t
    assert np.abs(t["weight"]).max() <= 1 / math.sqrt(3 * 3)
    assert init_conv(random.key(1), 2, 2, 1, ndim=3)["weight"].shape == (2, 2, 1, 1, 1)
    with pytest.raises(
        ValueError, match="groups=4 must divide both in_channels=6 and out_channels=8"
    ):
        init_conv(random.key(1), 6, 8, 3, groups=4)


def test_init_embedding():
    p = init_embedding(random.key(2), 1000, 50, padding_idx=-1)
    w = p["weight"]
    assert w.shape == (1000, 50) and w.dtype == np.float32
    np.testing.assert_array_equal(w[-1], 0.0)
    assert abs(float(w[:-1].std()) - 1.0) < 0.02 and abs(float(w[:-1].mean())) < 0.02


@pytest.mark.parametrize("layer", ["linear", "conv1d"])
def test_mixing_backends_is_named_before_dtypes(layer):
    """A NumPy weight with a strict input is a backend mix, not a dtype mismatch."""
    key = fn.random.key(0)
    if layer == "linear":
        p, x = fn.nn.init.linear(key, 3, 2), np.ones((4, 3), np.float64)
    else:
        p, x = fn.nn.init.conv1d(key, 3, 2, 3), np.ones((1, 3, 5), np.float64)
    x = fn.backend.device_put(x, "strict")
    with pytest.raises(TypeError, match="cannot mix arrays of two backends"):
        getattr(fn.nn, layer)(p, x)
