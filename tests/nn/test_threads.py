"""funcnn's own CPU threads: kernels split over threads give the one-thread results.

Splitting is forced on small arrays by lowering ``backend._GRAIN`` (the elements a thread must
get). The results agree with one thread's to rounding: a slice's statistics, and partial sums
of a parameter's gradient over the split axis, are summed in another order.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import funcnn as fn
from funcnn import backend, nn
from funcnn import numpy as fnp


@pytest.fixture
def threads(monkeypatch):
    """Run a test's funcnn calls with 3 threads and a tiny grain (split on every call); the
    test must have split some work, on threads other than its own."""
    monkeypatch.setitem(backend._threads, "n", 3)
    monkeypatch.setattr(backend, "_GRAIN", 4)
    seen = set()
    run = backend.run_threads

    def counting(f, items):
        return run(lambda item: (seen.add(threading.get_ident()), f(item))[1], items)

    monkeypatch.setattr(backend, "run_threads", counting)
    yield
    assert len(seen) > 1, "no work was split over threads"


def _serial(f, *args):
    before = backend._GRAIN
    backend._GRAIN = 1 << 40
    try:
        return f(*args)
    finally:
        backend._GRAIN = before


def _normal(seed, *shape, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _layers():
    c = 5
    bn_p = {"weight": 1.0 + 0.1 * _normal(1, c), "bias": 0.1 * _normal(2, c)}
    bn_far = {"weight": 0.1 + 0.0 * _normal(1, c), "bias": 5.0 + _normal(2, c)}  # not invertible
    _, state = nn.init.batch_norm(c)
    ln_p = {"weight": 1.0 + 0.1 * _normal(3, 4, 6), "bias": 0.1 * _normal(4, 4, 6)}
    gn_p = {"weight": 1.0 + 0.1 * _normal(5, c + 1), "bias": 0.1 * _normal(6, c + 1)}
    return {
        "batch_norm": (lambda p, x: nn.batch_norm(p, state, x)[0], bn_p, (7, c, 3, 4)),
        "batch_norm_far_bias": (lambda p, x: nn.batch_norm(p, state, x)[0], bn_far, (7, c, 6)),
        "batch_norm_no_affine": (lambda p, x: nn.batch_norm(None, None, x)[0], {}, (9, c, 2)),
        "layer_norm": (nn.layer_norm, ln_p, (5, 3, 4, 6)),
        "group_norm": (lambda p, x: nn.group_norm(p, x, 3), gn_p, (7, c + 1, 4)),
    }


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(_layers()))
def test_normalisation_split_over_threads_equals_one_thread(threads, name, dtype):
    f, p, shape = _layers()[name]
    p = {k: v.astype(dtype) for k, v in p.items()}
    x = (2.0 * _normal(7, *shape) + 0.5).astype(dtype)
    cot = _normal(8, *shape, dtype=dtype)

    def loss(p, x):
        y = f(p, x)
        return fnp.sum(y * cot), y

    (_, y), grads = fn.value_and_grad(loss, argnums=(0, 1), has_aux=True)(p, x)
    (_, y1), grads1 = _serial(fn.value_and_grad(loss, argnums=(0, 1), has_aux=True), p, x)
    assert y.dtype == dtype and grads[1].dtype == dtype
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y, y1, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(grads[1], grads1[1], rtol=rtol, atol=rtol)
    for k in p:
        np.testing.assert_allclose(grads[0][k], grads1[0][k], rtol=rtol, atol=rtol)


def test_split_normalisation_stays_differentiable_to_second_order(threads):
    f, p, shape = _layers()["layer_norm"]
    x = _normal(9, *shape)
    fn.testing.check_grads(lambda p, x: fnp.sum(fnp.sin(f(p, x))), (p, x), order=2)


def _ce_cases():
    rng = np.random.default_rng(10)
    t = rng.integers(0, 6, size=(9,))
    t[[2, 5]] = -100
    t3 = rng.integers(0, 6, size=(9, 4))
    probs = rng.dirichlet(np.ones(6), size=9)
    w = rng.random(6) + 0.5
    return {
        "mean": (t, {}),
        "sum_weight_smoothing": (t, {"reduction": "sum", "weight": w, "label_smoothing": 0.2}),
        "none": (t, {"reduction": "none"}),
        "none_smoothing": (t, {"reduction": "none", "label_smoothing": 0.1}),
        "spatial_weight": (t3, {"weight": w}),
        "probs": (probs, {"label_smoothing": 0.1}),
    }


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(_ce_cases()))
def test_cross_entropy_split_over_threads_equals_one_thread(threads, name, dtype):
    target, kw = _ce_cases()[name]
    kw = {k: v.astype(dtype) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    target = target.astype(dtype) if target.dtype.kind == "f" else target
    shape = (9, 6, 4) if target.ndim == 2 and target.dtype.kind == "i" else (9, 6)
    logits = (3.0 * _normal(11, *shape)).astype(dtype)
    cot = _normal(12, *(target.shape if kw.get("reduction") == "none" else ()), dtype=dtype)

    def loss(z):
        return fnp.sum(nn.cross_entropy(z, target, **kw) * cot)

    value, g = fn.value_and_grad(loss)(logits)
    value1, g1 = _serial(fn.value_and_grad(loss), logits)
    assert g.dtype == dtype
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(value, value1, rtol=rtol)
    np.testing.assert_allclose(g, g1, rtol=rtol, atol=rtol)
