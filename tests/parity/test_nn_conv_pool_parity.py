"""Linear, embedding, convolutions and pools against torch.nn.functional, forward and gradients.

Every case runs in float64 (rtol 1e-7) and float32 (rtol 1e-5), with the absolute tolerance
scaled to the magnitude of PyTorch's values. Gradients are taken with respect to the input and
every parameter, for a random cotangent. The initialisers are compared with torch.nn's layers:
the same shapes, and the same distribution (bounds, spread and quantiles).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import funcnn as fn
from funcnn import numpy as fnp
from funcnn import random
from funcnn.nn import _conv, _linear, _pool

pytestmark = pytest.mark.parity

DTYPES = {
    "float64": (np.float64, torch.float64, 1e-7),
    "float32": (np.float32, torch.float32, 1e-5),
}


def _assert_close(ours, ref, rtol, what):
    ref = np.asarray(ref)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != torch's {ref.shape}"
    assert ours.dtype == ref.dtype, f"{what}: dtype {ours.dtype} != torch's {ref.dtype}"
    atol = rtol * max(1.0, float(np.abs(ref).max(initial=0.0)))
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol, err_msg=what)


def _compare(ours_fn, torch_fn, arrays, dtype, seed=0):
    """Forward and gradients (w.r.t. every array in ``arrays``) of both, for one cotangent."""
    np_dt, t_dt, rtol = DTYPES[dtype]
    rng = np.random.default_rng(seed)
    arrays = {k: np.asarray(v, dtype=np_dt) for k, v in arrays.items()}
    tens = {k: torch.tensor(v, dtype=t_dt, requires_grad=True) for k, v in arrays.items()}
    t_out = torch_fn(**tens)
    up = rng.standard_normal(tuple(t_out.shape)).astype(np_dt)
    (t_out * torch.tensor(up)).sum().backward()
    out = ours_fn(**arrays)
    _assert_close(out, t_out.detach().numpy(), rtol, "forward")
    grads = fn.grad(lambda a: fnp.sum(ours_fn(**a) * up))(arrays)
    for k in arrays:
        _assert_close(grads[k], tens[k].grad.numpy(), rtol, f"gradient of {k}")


def _data(seed, **shapes):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s) for k, s in shapes.items()}


# ----------------------------------------------------------------------------- convolution

CONV_CASES = [
    # (nd, C_in, C_out, kernel, spatial, options)
    (1, 3, 4, 3, (11,), {}),
    (1, 4, 6, 2, (9,), {"stride": 2, "padding": 1, "groups": 2}),
    (1, 2, 2, 4, (8,), {"padding": "same", "dilation": 2}),
    (1, 3, 2, 3, (7,), {"padding": "same"}),
    (1, 2, 4, 4, (9,), {"padding": "same"}),
    (2, 3, 4, 3, (7, 6), {}),
    (2, 3, 4, 3, (8, 7), {"stride": 2, "padding": 1}),
    (
        2,
        4,
        6,
        (3, 2),
        (9, 8),
        {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2), "groups": 2},
    ),
    (2, 2, 3, (4, 3), (7, 7), {"padding": "same", "dilation": (1, 2)}),
    (2, 3, 2, 2, (6, 5), {"padding": "same"}),
    (2, 4, 4, 3, (6, 6), {"padding": "valid", "groups": 4}),
    (2, 6, 4, 1, (5, 4), {"stride": 2, "groups": 2}),
    (2, 2, 3, 5, (5, 5), {"padding": 2, "dilation": 1}),
    (3, 2, 3, 2, (4, 5, 3), {}),
    (3, 4, 4, (2, 3, 1), (5, 6, 4), {"stride": (1, 2, 2), "padding": (1, 1, 0), "groups": 2}),
    (3, 2, 2, 3, (4, 4, 5), {"padding": "same", "dilation": (1, 1, 2)}),
    # depthwise with a channel multiplier, strided and dilated; stride beyond the kernel
    (2, 3, 6, 3, (9, 10), {"stride": (2, 3), "padding": (2, 1), "dilation": 2, "groups": 3}),
    (1, 2, 4, 5, (13,), {"stride": 3, "padding": 3, "groups": 2}),
    (2, 2, 3, 2, (7, 6), {"stride": 3, "padding": "valid"}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}d-{c[5]}")
def test_conv_matches_torch(case, bias, dtype):
    nd, cin, cout, k, sp, opts = case
    kernel = (k,) * nd if isinstance(k, int) else k
    groups = opts.get("groups", 1)
    shapes = {"x": (2, cin) + sp, "weight": (cout, cin // groups) + kernel}
    if bias:
        shapes["bias"] = (cout,)
    ours = getattr(_conv, f"conv{nd}d")
    theirs = getattr(F, f"conv{nd}d")

    def ours_fn(x, weight, bias=None):
        return ours({"weight": weight, "bias": bias}, x, **opts)

    def torch_fn(x, weight, bias=None):
        return theirs(x, weight, bias, **opts)

    with _quiet_same_warning():
        _compare(ours_fn, torch_fn, _data(len(CONV_CASES), **shapes), dtype)


CONV_T_CASES = [
    (1, 3, 4, 3, (6,), {}),
    (1, 4, 6, 2, (5,), {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2}),
    (1, 2, 3, 3, (5,), {"dilation": 2, "output_padding": 1}),
    (2, 3, 4, 3, (4, 5), {}),
    (2, 3, 2, 3, (4, 4), {"stride": 2, "padding": 1, "output_padding": 1}),
    (
        2,
        4,
        6,
        (3, 2),
        (4, 5),
        {
            "stride": (2, 3),
            "padding": (1, 0),
            "dilation": (1, 2),
            "groups": 2,
            "output_padding": (1, 2),
        },
    ),
    (2, 4, 4, 2, (3, 3), {"groups": 4, "stride": 2}),
    (3, 2, 3, 2, (3, 3, 2), {}),
    (
        3,
        4,
        2,
        (2, 3, 2),
        (3, 2, 3),
        {"stride": (2, 1, 2), "padding": (0, 1, 1), "output_padding": (1, 0, 0), "groups": 2},
    ),
    # depthwise; output_padding below the stride with dilation, and below the dilation alone
    (2, 3, 3, 3, (3, 4), {"groups": 3, "stride": 3, "dilation": 2, "output_padding": 2}),
    (1, 2, 4, 2, (5,), {"groups": 2, "dilation": 3, "output_padding": 2, "padding": 1}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("case", CONV_T_CASES, ids=lambda c: f"{c[0]}d-{c[5]}")
def test_conv_transpose_matches_torch(case, bias, dtype):
    nd, cin, cout, k, sp, opts = case
    kernel = (k,) * nd if isinstance(k, int) else k
    groups = opts.get("groups", 1)
    shapes = {"x": (2, cin) + sp, "weight": (cin, cout // groups) + kernel}
    if bias:
        shapes["bias"] = (cout,)
    ours = getattr(_conv, f"conv_transpose{nd}d")
    theirs = getattr(F, f"conv_transpose{nd}d")

    def ours_fn(x, weight, bias=None):
        return ours({"weight": weight, "bias": bias}, x, **opts)

    def torch_fn(x, weight, bias=None):
        return theirs(x, weight, bias, **opts)

    _compare(ours_fn, torch_fn, _data(7, **shapes), dtype)


class _quiet_same_warning:  # noqa: N801
    """PyTorch warns that padding='same' with some kernels copies its input; that is not ours."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.filterwarnings("ignore", message="Using padding='same'", category=UserWarning)

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)


# ----------------------------------------------------------------------------- pooling

POOL_CASES = [
    ("max", 1, (11,), {"kernel_size": 3}),
    ("max", 1, (12,), {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2}),
    ("max", 2, (8, 9), {"kernel_size": 2}),
    ("max", 2, (9, 8), {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 1)}),
    ("max", 2, (10, 9), {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": (2, 1)}),
    ("max", 3, (5, 6, 4), {"kernel_size": 2, "stride": 1, "padding": 1}),
    ("avg", 1, (10,), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ("avg", 1, (9,), {"kernel_size": 4, "stride": 3, "padding": 2, "count_include_pad": False}),
    ("avg", 2, (8, 8), {"kernel_size": 2}),
    ("avg", 2, (9, 7), {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 1)}),
    ("avg", 2, (9, 7), {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
    (
        "avg",
        3,
        (5, 6, 4),
        {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False},
    ),
    ("adaptive_avg", 1, (10,), {"output_size": 4}),
    ("adaptive_avg", 2, (9, 7), {"output_size": (4, 3)}),
    ("adaptive_avg", 2, (8, 8), {"output_size": 4}),
    ("adaptive_avg", 2, (7, 5), {"output_size": (1, 1)}),
    ("adaptive_avg", 2, (5, 6), {"output_size": (7, 4)}),
    ("adaptive_avg", 2, (7, 6), {"output_size": (None, 4)}),
    ("adaptive_avg", 3, (5, 6, 4), {"output_size": (2, 4, 3)}),
    # stride beyond the kernel (skipped inputs), with padding; outputs larger than inputs
    ("max", 2, (11, 9), {"kernel_size": 2, "stride": 3, "padding": 1}),
    ("avg", 1, (11,), {"kernel_size": 2, "stride": 3, "padding": 1, "count_include_pad": False}),
    ("avg", 2, (10, 9), {"kernel_size": (2, 3), "stride": (3, 4), "padding": (1, 1)}),
    ("adaptive_avg", 1, (4,), {"output_size": 7}),
    ("adaptive_avg", 3, (3, 7, 5), {"output_size": (5, 3, None)}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: f"{c[0]}{c[1]}d-{c[3]}")
def test_pool_matches_torch(case, dtype):
    kind, nd, sp, opts = case
    ours = getattr(_pool, f"{kind}_pool{nd}d")
    theirs = getattr(F, f"{kind}_pool{nd}d")
    data = _data(3, x=(2, 3) + sp)
    if kind == "max":  # distinct values: the gradient's target is unambiguous in both dtypes
        n = data["x"].size
        data["x"] = np.random.default_rng(3).permutation(n).reshape(data["x"].shape) / n

    def ours_fn(x):
        return ours(x, **opts)

    def torch_fn(x):
        return theirs(x, **opts)

    _compare(ours_fn, torch_fn, data, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_ties_match_torch(dtype):
    x = np.random.default_rng(0).integers(0, 3, size=(2, 2, 7, 6)).astype(np.float64)
    _compare(
        lambda x: _pool.max_pool2d(x, 3, 1, 1), lambda x: F.max_pool2d(x, 3, 1, 1), {"x": x}, dtype
    )
    _compare(lambda x: _pool.max_pool2d(x, 2), lambda x: F.max_pool2d(x, 2), {"x": x}, dtype)


# ----------------------------------------------------------------------------- linear and embedding


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape", [(5,), (4, 5), (2, 3, 5)])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_linear_matches_torch(x_shape, bias, dtype):
    shapes = {"x": x_shape, "weight": (3, 5)}
    if bias:
        shapes["bias"] = (3,)

    def ours_fn(x, weight, bias=None):
        return _linear.linear({"weight": weight, "bias": bias}, x)

    def torch_fn(x, weight, bias=None):
        return F.linear(x, weight, bias)

    _compare(ours_fn, torch_fn, _data(1, **shapes), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_matches_torch(padding_idx, dtype):
    idx = np.array([[0, 2, 4, 2], [5, 2, 0, 0]])

    def ours_fn(weight):
        return _linear.embedding({"weight": weight}, idx, padding_idx=padding_idx)

    def torch_fn(weight):
        return F.embedding(torch.tensor(idx), weight, padding_idx=padding_idx)

    _compare(ours_fn, torch_fn, _data(2, weight=(6, 3)), dtype)


# ----------------------------------------------------------------------------- initialisers


def _same_distribution(ours, theirs, bound):
    """Uniform on [-bound, bound): both within it, near its ends, with matching quantiles."""
    ours, theirs = np.asarray(ours, np.float64).ravel(), theirs.detach().double().numpy().ravel()
    for a in (ours, theirs):
        assert np.abs(a).max() <= bound
    # five standard errors of the difference of two sample quantiles (or of two spreads)
    tol = 7.0 / math.sqrt(min(ours.size, theirs.size)) * bound
    qs = np.linspace(0.05, 0.95, 19)
    np.testing.assert_allclose(np.quantile(ours, qs), np.quantile(theirs, qs), atol=tol)
    assert abs(ours.std() - theirs.std()) < tol


def test_init_linear_matches_torch_linear():
    torch.manual_seed(0)
    layer = torch.nn.Linear(300, 200)
    p = _linear.init_linear(random.key(0), 300, 200)
    assert {k: v.shape for k, v in p.items()} == {
        k: tuple(v.shape) for k, v in layer.state_dict().items()
    }
    assert all(v.dtype == np.float32 for v in p.values())
    _same_distribution(p["weight"], layer.weight, 1 / math.sqrt(300))
    big_bias = _linear.init_linear(random.key(1), 300, 20000)["bias"]
    torch_bias = torch.cat([torch.nn.Linear(300, 200).bias for _ in range(100)])
    _same_distribution(big_bias, torch_bias, 1 / math.sqrt(300))


@pytest.mark.parametrize(
    ("nd", "cin", "cout", "k", "groups", "transposed"),
    [
        (2, 16, 32, 3, 1, False),
        (1, 8, 12, 5, 4, False),
        (3, 4, 6, (2, 3, 2), 2, False),
        (2, 12, 16, 3, 4, True),
    ],
)
def test_init_conv_matches_torch_conv(nd, cin, cout, k, groups, transposed):
    torch.manual_seed(0)
    cls = getattr(torch.nn, f"ConvTranspose{nd}d" if transposed else f"Conv{nd}d")
    layers = [cls(cin, cout, k, groups=groups) for _ in range(40)]
    p = _conv.init_conv(random.key(3), cin, cout, k, groups=groups, ndim=nd, transposed=transposed)
    assert {a: v.shape for a, v in p.items()} == {
        a: tuple(v.shape) for a, v in layers[0].state_dict().items()
    }
    w = layers[0].weight
    bound = 1 / math.sqrt(w.shape[1] * math.prod(w.shape[2:]))
    many = [
        _conv.init_conv(
            random.key(10 + i), cin, cout, k, groups=groups, ndim=nd, transposed=transposed
        )
        for i in range(40)
    ]
    _same_distribution(
        np.concatenate([m["weight"].ravel() for m in many]),
        torch.cat([m.weight.ravel() for m in layers]),
        bound,
    )
    _same_distribution(
        np.concatenate([m["bias"] for m in many]), torch.cat([m.bias for m in layers]), bound
    )


def test_init_embedding_matches_torch_embedding():
    torch.manual_seed(0)
    layer = torch.nn.Embedding(2000, 16, padding_idx=3)
    p = _linear.init_embedding(random.key(4), 2000, 16, padding_idx=3)
    assert p["weight"].shape == tuple(layer.weight.shape) and p["weight"].dtype == np.float32
    np.testing.assert_array_equal(p["weight"][3], 0.0)
    qs = np.linspace(0.05, 0.95, 19)
    np.testing.assert_allclose(
        np.quantile(p["weight"], qs), np.quantile(layer.weight.detach().numpy(), qs), atol=0.05
    )


@pytest.mark.parametrize(
    "kernel, stride, padding", [(2, 2, 0), (3, 2, 1), (2, 1, 0)], ids=["tiled", "overlap", "dense"]
)
def test_max_pool_gradient_with_ties_and_nans_matches_torch(kernel, stride, padding):
    """Ties (a ReLU's zeros, repeated values) send the gradient to the first maximum of each
    window; a NaN in a window wins it, as in PyTorch (the gradient then finds the window's
    maximum by an argmax pass instead of by equality with the output)."""
    rng = np.random.default_rng(3)
    x = np.maximum(np.round(rng.standard_normal((2, 3, 7, 6)), 0), 0.0)  # many ties
    cot = rng.standard_normal(F.max_pool2d(torch.tensor(x), kernel, stride, padding).shape)
    for with_nan in (False, True):
        if with_nan:
            x[0, 1, 2, 3] = x[1, 0, 5, 0] = x[1, 0, 5, 1] = np.nan
        tx = torch.tensor(x, requires_grad=True)
        (F.max_pool2d(tx, kernel, stride, padding) * torch.tensor(cot)).sum().backward()
        g = fn.grad(
            lambda a: fnp.sum(_pool.max_pool2d(a, kernel, stride=stride, padding=padding) * cot)
        )(x)
        np.testing.assert_allclose(g, tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_max_pool_gradient_of_all_minus_inf_windows_skips_padding_like_torch():
    x = np.full((1, 2, 3, 3), -np.inf)
    x[0, 1, 1, 1] = 0.5
    tx = torch.tensor(x, requires_grad=True)
    F.max_pool2d(tx, 3, 1, 1).sum().backward()
    g = fn.grad(lambda a: fnp.sum(_pool.max_pool2d(a, 3, stride=1, padding=1)))(x)
    np.testing.assert_array_equal(g, tx.grad.numpy())
