"""funcnn.nn's hardsigmoid ... prelu and interpolate against torch.nn.functional.

Forward values, gradients and (for the smooth activations) second derivatives, in float64
(~1e-7) and float32 (~1e-5), over a grid of options. One PyTorch quirk is pinned down rather than
copied: see :func:`test_nearest_gradient_is_the_transpose_of_the_forward`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import funcnn as fn
import funcnn.nn as nn
import funcnn_modules as fm
from funcnn import numpy as fnp

pytestmark = pytest.mark.parity

TOL = {"float64": 1e-7, "float32": 1e-5}


def _compare(ours_fn, torch_fn, arrays, dtype, *, grad=True, seed=0):
    """Forward and VJP of ``ours_fn(*arrays)`` and ``torch_fn(*tensors)``, in ``dtype``."""
    arrays = [np.asarray(a, dtype=dtype) for a in arrays]
    tol = TOL[dtype]
    ts = [torch.tensor(a, requires_grad=grad) for a in arrays]
    ref = torch_fn(*ts)
    if not grad:
        out = ours_fn(*arrays)
        assert out.dtype == np.dtype(dtype)
        np.testing.assert_allclose(out, ref.numpy(), rtol=tol, atol=tol)
        return
    cot = np.random.default_rng(seed).standard_normal(tuple(ref.shape)).astype(dtype)
    ref_grads = torch.autograd.grad(ref, ts, torch.tensor(cot))
    out, vjp = fn.vjp(ours_fn, *arrays)
    grads = vjp(cot)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=tol, atol=tol)
    for g, r in zip(grads, ref_grads):
        assert g.dtype == np.dtype(dtype) and g.shape == tuple(r.shape)
        np.testing.assert_allclose(g, r.numpy(), rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- activations

# with the kinks themselves among the inputs: PyTorch's conventions there are matched
KINKS = np.array([-3.0, 3.0, 0.0, -0.0, 1e-8, -1e-8, 25.0, -25.0, 40.0, -40.0])

ELEMENTWISE = [
    ("hardsigmoid", nn.hardsigmoid, TF.hardsigmoid),
    ("hardswish", nn.hardswish, TF.hardswish),
    ("mish", nn.mish, TF.mish),
    ("selu", nn.selu, TF.selu),
    ("celu", nn.celu, TF.celu),
    ("celu_0.5", lambda x: nn.celu(x, 0.5), lambda t: TF.celu(t, 0.5)),
    ("celu_2", lambda x: nn.celu(x, 2.0), lambda t: TF.celu(t, 2.0)),
    ("celu_-1.5", lambda x: nn.celu(x, -1.5), lambda t: TF.celu(t, -1.5)),
    ("softsign", nn.softsign, TF.softsign),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("name", "ours", "theirs"), ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
def test_elementwise(name, ours, theirs, dtype):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal(40) * 4, KINKS])
    if name == "celu_-1.5":
        x = np.clip(x, -20, 20)  # exp(x / alpha) for very negative x overflows in both
    _compare(ours, theirs, [x.reshape(5, 10)], dtype)


SMOOTH = [e for e in ELEMENTWISE if e[0] in ("mish", "selu", "celu_0.5", "softsign", "hardswish")]


@pytest.mark.parametrize(("name", "ours", "theirs"), SMOOTH, ids=[e[0] for e in SMOOTH])
def test_second_derivatives(name, ours, theirs):
    """The diagonal of the Hessian (grad of the sum of grads), away from the kinks."""
    x = np.random.default_rng(2).uniform(-5, 5, 30)
    x = x[np.min(np.abs(x[:, None] - np.array([-3.0, 0.0, 3.0])), axis=1) > 0.05]
    t = torch.tensor(x, requires_grad=True)
    (g,) = torch.autograd.grad(theirs(t).sum(), t, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), t)
    ours_h = fn.grad(lambda a: fnp.sum(fn.grad(lambda b: fnp.sum(ours(b)))(a)))(x)
    np.testing.assert_allclose(ours_h, h.numpy(), rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("shape", "dim"), [((7,), 0), ((4, 6), 1), ((4, 6), 0), ((2, 3, 5), -1)])
def test_softmin(shape, dim, dtype):
    x = np.random.default_rng(3).standard_normal(shape) * 3
    _compare(lambda a: nn.softmin(a, dim), lambda t: TF.softmin(t, dim), [x], dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("shape", "dim"), [((8,), 0), ((4, 6), 1), ((4, 6), 0), ((2, 4, 6), -2)])
def test_glu(shape, dim, dtype):
    x = np.random.default_rng(4).standard_normal(shape) * 3
    _compare(lambda a: nn.glu(a, dim), lambda t: TF.glu(t, dim), [x], dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    ("x_shape", "w_shape"),
    [
        ((5,), (1,)),
        ((5,), ()),
        ((4, 3), (3,)),
        ((4, 3), (1,)),
        ((2, 3, 5), (3,)),
        ((2, 3, 4, 5), (3,)),
        ((2, 3, 2, 2, 2), (3,)),
        ((2, 1, 4), (1,)),
        ((), (1,)),
    ],
)
def test_prelu(x_shape, w_shape, dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(x_shape)
    if x.size > 2:
        x.flat[:2] = 0.0  # PyTorch's gradient at 0 is the slope
    w = rng.uniform(-1, 1, w_shape)
    _compare(nn.prelu, TF.prelu, [x, w], dtype)


def test_prelu_errors_where_pytorch_errors():
    for x_shape, w_shape in [((4, 3), (2,)), ((5,), (5,)), ((), (2,))]:
        x, w = np.ones(x_shape), np.ones(w_shape)
        with pytest.raises(RuntimeError):
            TF.prelu(torch.tensor(x), torch.tensor(w))
        with pytest.raises(ValueError, match="prelu: weight has"):
            nn.prelu(x, w)


# ----------------------------------------------------------------------------- interpolate

LINEAR = {3: "linear", 4: "bilinear", 5: "trilinear"}
SHAPES = {3: (2, 3, 7), 4: (2, 3, 5, 6), 5: (1, 2, 3, 4, 5)}
RESIZES = [
    {"scale_factor": 2},
    {"scale_factor": 3.0},
    {"scale_factor": 0.5},
    {"scale_factor": 1.7},
    {"scale_factor": 0.37},
    {"scale_factor": 1.25},  # some axes keep their size: see the test of the nearest quirk
    {"scale_factor": 2.6, "recompute_scale_factor": True},
    {"scale_factor": 0.6, "recompute_scale_factor": True},
    {"size": 9},
    {"size": 2},
    {"size": 1},
    {"size": "mixed"},  # one size per axis, up and down
    {"scale_factor": "mixed"},
]


def _resize_kw(resize: dict, nd: int) -> dict:
    kw = dict(resize)
    if kw.get("size") == "mixed":
        kw["size"] = (11, 3, 6)[: nd - 2]
    if kw.get("scale_factor") == "mixed":
        kw["scale_factor"] = (2.0, 0.5, 1.5)[: nd - 2]
    return kw


def _grid():
    for nd in (3, 4, 5):
        for mode in ("nearest", "nearest-exact", "area", LINEAR[nd]):
            aligns = (False, True) if mode == LINEAR[nd] else (None,)
            for align in aligns:
                for i, resize in enumerate(RESIZES):
                    yield pytest.param(nd, mode, align, resize, id=f"{nd}d-{mode}-{align}-{i}")


def _pytorch_nearest_quirk(nd: int, mode: str, kw: dict) -> bool:
    """PyTorch's 1-D and 3-D "nearest" backward copies an axis that keeps its size, while its
    forward applies the scale to it: the gradient is not the forward's transpose there."""
    if mode != "nearest" or nd == 4 or "scale_factor" not in kw or kw.get("recompute_scale_factor"):
        return False
    factors = kw["scale_factor"]
    factors = factors if isinstance(factors, tuple) else (factors,) * (nd - 2)
    return any(int(n * f) == n and f != 1 for n, f in zip(SHAPES[nd][2:], factors))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("nd", "mode", "align", "resize"), list(_grid()))
def test_interpolate(nd, mode, align, resize, dtype):
    kw = _resize_kw(resize, nd)
    x = np.random.default_rng(nd).standard_normal(SHAPES[nd])
    grad = not _pytorch_nearest_quirk(nd, mode, kw)
    _compare(
        lambda a: nn.interpolate(a, mode=mode, align_corners=align, **kw),
        lambda t: TF.interpolate(t, mode=mode, align_corners=align, **kw),
        [x],
        dtype,
        grad=grad,
    )


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "linear"])
def test_interpolate_indices_for_every_small_size_pair(mode):
    """PyTorch's index arithmetic (float32 products, scales in float32 or float64) is followed:
    the same source element for every pair of sizes up to 24, by size and by scale factor, for
    3-D and 4-D inputs, float64 and float32 (plain float64 arithmetic would differ)."""
    for dtype, nd in ((np.float64, 3), (np.float32, 3), (np.float64, 4), (np.float32, 4)):
        _check_every_size_pair(mode, dtype, nd)


def _check_every_size_pair(mode, dtype, nd):
    if nd == 4 and mode == "linear":
        mode = "bilinear"
    x = np.arange(24.0, dtype=dtype)
    for n_in in range(1, 25):
        a = x[:n_in].reshape((1, 1) + (1,) * (nd - 3) + (n_in,))
        for n_out in range(1, 25):
            for key, s in (("size", n_out), ("scale_factor", n_out / n_in)):
                kw = {key: (1,) * (nd - 3) + (s,)}
                ref = TF.interpolate(torch.tensor(a), mode=mode, **kw).numpy()
                tol = 1e-12 if dtype == np.float64 else 1e-5
                np.testing.assert_allclose(
                    nn.interpolate(a, mode=mode, **kw), ref, rtol=tol, atol=tol * 0.1
                )


def test_nearest_gradient_is_the_transpose_of_the_forward():
    """Where PyTorch's 1-D/3-D nearest backward disagrees with its own forward, ours is the
    transpose of the forward (which equals PyTorch's): the true gradient."""
    x = np.random.default_rng(6).standard_normal((2, 3, 3))
    ref = TF.interpolate(torch.tensor(x), scale_factor=1.3).numpy()
    np.testing.assert_array_equal(nn.interpolate(x, scale_factor=1.3), ref)
    # PyTorch's forward, column by column: its Jacobian, (out, in)
    basis = np.eye(x.size).reshape((x.size, *x.shape))
    jac = np.stack(
        [TF.interpolate(torch.tensor(e), scale_factor=1.3).numpy().ravel() for e in basis], axis=1
    )
    cot = np.random.default_rng(7).standard_normal(ref.shape)
    _, vjp = fn.vjp(lambda a: nn.interpolate(a, scale_factor=1.3), x)
    np.testing.assert_allclose(vjp(cot)[0].ravel(), cot.ravel() @ jac, rtol=1e-12)
    t = torch.tensor(x, requires_grad=True)
    (theirs,) = torch.autograd.grad(TF.interpolate(t, scale_factor=1.3), t, torch.tensor(cot))
    assert not np.allclose(theirs.numpy().ravel(), cot.ravel() @ jac)  # the quirk, still there


@pytest.mark.parametrize(
    ("module_kw", "shape"),
    [
        ({"scale_factor": 2, "mode": "nearest"}, (1, 2, 3, 4)),
        ({"size": (5, 2), "mode": "bilinear", "align_corners": True}, (1, 2, 3, 4)),
        ({"scale_factor": 1.5, "mode": "trilinear"}, (1, 2, 2, 3, 4)),
        ({"size": 7, "mode": "linear"}, (2, 2, 5)),
    ],
)
def test_upsample_module(module_kw, shape):
    x = np.random.default_rng(8).standard_normal(shape).astype(np.float32)
    ref = torch.nn.Upsample(**module_kw)(torch.tensor(x)).numpy()
    t = fm.tensor(x, requires_grad=True)
    out = fm.nn.Upsample(**module_kw)(t)
    assert out.dtype == fm.float32
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-5, atol=1e-6)
    out.sum().backward()
    assert t.grad.shape == t.shape
