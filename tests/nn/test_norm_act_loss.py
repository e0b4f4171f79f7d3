"""Normalisation layers, activations, losses and dropout of funcnn.nn.

* gradients (float64, order 2 where the function is twice differentiable) by ``check_grads``
  on hypothesis-drawn shapes and options;
* each fused primitive against its composed twin (the same math in ``fnp`` ops), values and
  gradients, in float64 and float32;
* batch-norm running statistics, eval mode, the residual-output primitives at higher orders;
* clear errors for bad input;
* the forward pass on the strict stand-in backend equals NumPy's.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funcnn as fn
from funcnn import backend
from funcnn import numpy as fnp
from funcnn import random as frandom
from funcnn.nn import _activations as A
from funcnn.nn import _dropout as D
from funcnn.nn import _losses as L
from funcnn.nn import _norm as N
from funcnn.testing import check_grads, strategies

FEW = settings(max_examples=15, deadline=None)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _assert_tree_close(a, b, rtol, atol=0.0):
    la, lb = fn.tree.leaves(a), fn.tree.leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        assert x.dtype == y.dtype, (x.dtype, y.dtype)
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


# ============================================================================= composed twins


def bn_composed(params, x, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim))
    bshape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    mean = fnp.mean(x, axis=axes, keepdims=True)
    var = fnp.var(x, axis=axes, keepdims=True)
    y = (x - mean) / fnp.sqrt(var + eps)
    if params.get("weight") is not None:
        y = y * fnp.reshape(params["weight"], bshape)
    if params.get("bias") is not None:
        y = y + fnp.reshape(params["bias"], bshape)
    return y


def ln_composed(params, x, eps=1e-5):
    d = params["weight"].ndim
    axes = tuple(range(x.ndim - d, x.ndim))
    mean = fnp.mean(x, axis=axes, keepdims=True)
    var = fnp.var(x, axis=axes, keepdims=True)
    return (x - mean) / fnp.sqrt(var + eps) * params["weight"] + params["bias"]


def gn_composed(params, x, groups, eps=1e-5):
    n, c = x.shape[:2]
    xg = fnp.reshape(x, (n, groups, -1))
    mean = fnp.mean(xg, axis=2, keepdims=True)
    var = fnp.var(xg, axis=2, keepdims=True)
    y = fnp.reshape((xg - mean) / fnp.sqrt(var + eps), x.shape)
    bshape = (1, c) + (1,) * (x.ndim - 2)
    return y * fnp.reshape(params["weight"], bshape) + fnp.reshape(params["bias"], bshape)


def ce_composed(logits, target, weight=None, reduction="mean", label_smoothing=0.0, ii=-100):
    """log_softmax + nll (+ the smoothing term), PyTorch's formulas in fnp ops."""
    c = logits.shape[1] if logits.ndim > 1 else logits.shape[0]
    if logits.ndim == 1:
        logits, target = fnp.reshape(logits, (1, c)), target[None]
    logp = A.log_softmax(logits, axis=1)
    wshape = (1, c) + (1,) * (logits.ndim - 2)
    wb = 1.0 if weight is None else fnp.reshape(weight, wshape)
    ls = label_smoothing
    if backend.is_floating(target):
        q = target * (1.0 - ls) + ls / c
        each = -fnp.sum(logp * q * wb, axis=1)
        return {"none": each, "sum": fnp.sum(each), "mean": fnp.mean(each)}[reduction]
    nll = L.nll_loss(logp, target, weight=weight, ignore_index=ii, reduction=reduction)
    if ls == 0:
        return nll
    valid = (target != ii).astype(logp.dtype)
    smooth = -fnp.sum(logp * wb, axis=1) * valid
    if reduction == "sum":
        smooth = fnp.sum(smooth)
    elif reduction == "mean":
        safe = np.where(target != ii, target, 0)
        den = valid.sum() if weight is None else (weight[safe] * valid).sum()
        smooth = fnp.sum(smooth) / den
    return (1.0 - ls) * nll + (ls / c) * smooth


# ============================================================================= activations

ACTIVATIONS = {
    "relu": (A.relu, 0.0),
    "gelu": (A.gelu, None),
    "gelu_tanh": (lambda x: A.gelu(x, approximate="tanh"), None),
    "sigmoid": (A.sigmoid, None),
    "tanh": (A.tanh, None),
    "leaky_relu": (lambda x: A.leaky_relu(x, 0.2), 0.0),
    "elu": (lambda x: A.elu(x, 0.7), 0.0),
    "silu": (A.silu, None),
    "softplus": (lambda x: A.softplus(x, beta=2.0, threshold=3.0), 1.5),
    "hardtanh": (lambda x: A.hardtanh(x, -0.5, 1.0), (-0.5, 1.0)),
    "log_sigmoid": (A.log_sigmoid, None),
    "softmax": (lambda x: A.softmax(x, axis=-1), None),
    "softmax0": (lambda x: A.softmax(x, axis=0), None),
    "log_softmax": (lambda x: A.log_softmax(x, axis=-1), None),
}


def _away_from(x: np.ndarray, kinks) -> np.ndarray:
    """Move elements within 1e-3 of a kink off it (finite differences straddle no kink)."""
    if kinks is None:
        return x
    for k in np.atleast_1d(kinks):
        near = np.abs(x - k) < 1e-3
        x = np.where(near, k + 0.01, x)
    return x


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@FEW
@given(x=strategies.arrays(strategies.shapes(min_dims=1, max_dims=3), elements=(-3, 3)))
def test_activation_grads_order2(name, x):
    f, kinks = ACTIVATIONS[name]
    x = _away_from(x, kinks)
    order = 1 if name in ("softplus",) else 2  # softplus's threshold is a kink of the gradient
    check_grads(f, (x,), order=order)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_float32_in_float32_out(name):
    f, _ = ACTIVATIONS[name]
    x = _rng().standard_normal((3, 4)).astype(np.float32)
    assert f(x).dtype == np.float32
    g = fn.grad(lambda x: fnp.sum(f(x)))(x)
    assert g.dtype == np.float32


def test_relu_family_gradients_at_the_kinks_follow_pytorch():
    x = np.array([-1.0, 0.0, 2.0])
    assert list(fn.grad(lambda x: fnp.sum(A.relu(x)))(x)) == [0.0, 0.0, 1.0]
    assert list(fn.grad(lambda x: fnp.sum(A.leaky_relu(x, 0.1)))(x)) == [0.1, 0.1, 1.0]
    assert list(fn.grad(lambda x: fnp.sum(A.elu(x, 0.5)))(x))[1:] == [0.5, 1.0]
    h = np.array([-1.0, -0.5, 0.0, 1.0])
    assert list(fn.grad(lambda x: fnp.sum(A.hardtanh(x)))(h)) == [0.0, 1.0, 1.0, 0.0]


def test_stable_activations_at_extremes():
    x = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        s = A.sigmoid(x)
        assert np.all(np.isfinite(s)) and s[2] == 0.5 and s[4] == 1.0
        np.testing.assert_allclose(s[1], np.exp(-40.0) / (1 + np.exp(-40.0)), rtol=1e-15)
        ls = A.log_sigmoid(x)
        assert ls[0] == -1000.0 and ls[4] == 0.0
        sp = A.softplus(x)
        assert sp[4] == 1000.0 and sp[0] == 0.0
        g = A.gelu(x)
        assert g[4] == 1000.0 and g[0] == 0.0
        assert np.isfinite(A.softmax(x)).all()
        assert np.isfinite(A.log_softmax(x)).all()
        x32 = x.astype(np.float32)
        assert np.isfinite(A.sigmoid(x32)).all() and np.isfinite(A.gelu(x32)).all()


def test_gelu_exact_matches_the_normal_cdf():
    import math

    xs = np.linspace(-8, 8, 2001)
    ref = np.array([v * 0.5 * math.erfc(-v / math.sqrt(2)) for v in xs])
    np.testing.assert_allclose(A.gelu(xs), ref, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(A.gelu(xs.astype(np.float32)), ref, rtol=2e-6, atol=2e-6)


def test_softmax_rows_sum_to_one_and_axis_checks():
    x = _rng().standard_normal((3, 5))
    np.testing.assert_allclose(A.softmax(x, axis=0).sum(0), 1.0)
    with pytest.raises(ValueError, match="axis 2 is out of bounds"):
        A.softmax(x, axis=2)
    with pytest.raises(ValueError, match="at least one dimension"):
        A.log_softmax(np.float64(1.0) + np.zeros(()))


def test_activation_option_errors():
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        A.gelu(np.zeros(2), approximate="erf")
    with pytest.raises(ValueError, match="min_val"):
        A.hardtanh(np.zeros(2), 1.0, -1.0)
    with pytest.raises(ValueError, match="beta must be non-zero"):
        A.softplus(np.zeros(2), beta=0)


@pytest.mark.parametrize("prim", [A._silu, A._gelu_erf, A._gelu_tanh])
def test_residual_outputs_are_differentiated_too(prim):
    """The residual outputs (sigmoid, cdf, tanh) carry their own derivatives at every order."""
    x = np.linspace(-2, 2, 7)
    check_grads(lambda x: prim(x)[1], (x,), order=2)
    check_grads(lambda x: prim(x)[0] * prim(x)[1], (x,), order=2)


# ============================================================================= normalisation


@st.composite
def _bn_case(draw):
    n = draw(st.integers(2, 4))
    c = draw(st.integers(1, 3))
    spatial = draw(st.lists(st.integers(1, 3), min_size=0, max_size=2))
    shape = (n, c, *spatial)
    x = draw(strategies.arrays(shape, elements=(-2, 2)))
    rng = _rng(draw(st.integers(0, 100)))
    affine = draw(st.booleans())
    params = {"weight": rng.standard_normal(c), "bias": rng.standard_normal(c)} if affine else None
    eps = draw(st.sampled_from([1e-5, 0.1]))
    return x + rng.standard_normal(shape) * 0.1, params, eps  # noise: no constant channels


@FEW
@given(case=_bn_case())
def test_batch_norm_grads_order2_and_fused_equals_composed(case):
    x, params, eps = case
    _, state = N.init_batch_norm(x.shape[1], dtype="float64")

    def fused(p, x):
        return N.batch_norm(p, state, x, eps=eps)[0]

    check_grads(fused, (params, x), order=2)
    twin_params = params or {}
    np.testing.assert_allclose(
        fused(params, x), bn_composed(twin_params, x, eps), rtol=1e-10, atol=1e-12
    )
    up = _rng(1).standard_normal(x.shape)
    g1 = fn.grad(lambda p, x: fnp.sum(fused(p, x) * up), argnums=(0, 1))(params, x)
    g2 = fn.grad(lambda p, x: fnp.sum(bn_composed(p or {}, x, eps) * up), argnums=(0, 1))(params, x)
    _assert_tree_close(g1, g2, rtol=1e-8, atol=1e-10)


@st.composite
def _ln_case(draw):
    norm = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=2)))
    lead = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    if np.prod(norm) == 1:
        norm = norm[:-1] + (2,)
    x = draw(strategies.arrays(lead + norm, elements=(-2, 2)))
    rng = _rng(draw(st.integers(0, 100)))
    params = {"weight": rng.standard_normal(norm), "bias": rng.standard_normal(norm)}
    return x + rng.standard_normal(x.shape) * 0.1, params, draw(st.sampled_from([1e-5, 0.1]))


@FEW
@given(case=_ln_case())
def test_layer_norm_grads_order2_and_fused_equals_composed(case):
    x, params, eps = case
    check_grads(lambda p, x: N.layer_norm(p, x, eps=eps), (params, x), order=2)
    np.testing.assert_allclose(
        N.layer_norm(params, x, eps=eps), ln_composed(params, x, eps), rtol=1e-10, atol=1e-12
    )
    up = _rng(2).standard_normal(x.shape)
    g1 = fn.grad(lambda p, x: fnp.sum(N.layer_norm(p, x, eps=eps) * up), argnums=(0, 1))(params, x)
    g2 = fn.grad(lambda p, x: fnp.sum(ln_composed(p, x, eps) * up), argnums=(0, 1))(params, x)
    _assert_tree_close(g1, g2, rtol=1e-8, atol=1e-10)


@st.composite
def _gn_case(draw):
    g = draw(st.integers(1, 3))
    c = g * draw(st.integers(1, 2))
    shape = (draw(st.integers(1, 3)), c, *draw(st.lists(st.integers(1, 3), max_size=2)))
    if np.prod(shape[1:]) // g < 2:
        shape = shape + (2,)
    rng = _rng(draw(st.integers(0, 100)))
    x = draw(strategies.arrays(shape, elements=(-2, 2))) + rng.standard_normal(shape) * 0.1
    params = {"weight": rng.standard_normal(c), "bias": rng.standard_normal(c)}
    return x, params, g


@FEW
@given(case=_gn_case())
def test_group_norm_grads_order2_and_fused_equals_composed(case):
    x, params, groups = case
    check_grads(lambda p, x: N.group_norm(p, x, groups), (params, x), order=2)
    np.testing.assert_allclose(
        N.group_norm(params, x, groups), gn_composed(params, x, groups), rtol=1e-10, atol=1e-12
    )
    up = _rng(3).standard_normal(x.shape)
    g1 = fn.grad(lambda p, x: fnp.sum(N.group_norm(p, x, groups) * up), argnums=(0, 1))(params, x)
    g2 = fn.grad(lambda p, x: fnp.sum(gn_composed(p, x, groups) * up), argnums=(0, 1))(params, x)
    _assert_tree_close(g1, g2, rtol=1e-8, atol=1e-10)


def test_norms_in_float32_match_the_composed_twin_and_stay_float32():
    rng = _rng(4)
    x = (rng.standard_normal((4, 6, 3, 3)) * 3 + 5).astype(np.float32)
    p = {
        "weight": rng.standard_normal(6).astype(np.float32),
        "bias": rng.standard_normal(6).astype(np.float32),
    }
    pl = {
        "weight": rng.standard_normal((3, 3)).astype(np.float32),
        "bias": rng.standard_normal((3, 3)).astype(np.float32),
    }
    _, state = N.init_batch_norm(6)
    cases = [
        (lambda p, x: N.batch_norm(p, state, x)[0], lambda p, x: bn_composed(p, x), p),
        (lambda p, x: N.layer_norm(p, x), lambda p, x: ln_composed(p, x), pl),
        (lambda p, x: N.group_norm(p, x, 3), lambda p, x: gn_composed(p, x, 3), p),
    ]
    up = rng.standard_normal(x.shape).astype(np.float32)
    for fused, twin, params in cases:
        y = fused(params, x)
        assert y.dtype == np.float32
        np.testing.assert_allclose(y, twin(params, x), rtol=1e-5, atol=1e-5)
        g1 = fn.grad(lambda p, x: fnp.sum(fused(p, x) * up), argnums=(0, 1))(params, x)
        g2 = fn.grad(lambda p, x: fnp.sum(twin(p, x) * up), argnums=(0, 1))(params, x)
        for a, b in zip(fn.tree.leaves(g1), fn.tree.leaves(g2)):
            assert a.dtype == np.float32
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())


@pytest.mark.parametrize(
    ("weight", "bias", "from_output"),
    [
        ([1.0, 1.0, 1.0], [0.0, 0.0, 0.0], True),  # the default initialisation
        ([0.5, -2.0, 0.1], [1.9, -7.9, 0.39], True),  # |bias| just under 4 |weight|
        ([0.5, 0.0, 1.0], [0.1, 0.2, 0.3], False),  # a zero weight: x - mean is rebuilt
        ([0.5, 1.0, 1.0], [3.0, 0.2, 0.3], False),  # |bias| > 4 |weight| in one channel
        (None, None, True),  # no affine parameters
    ],
)
def test_batch_norm_backward_from_output_or_input_is_float32_exact(weight, bias, from_output):
    """The first-order backward pass either recovers ``x - mean`` from the output (one pass
    fewer) or rebuilds it from x; both must match the composed twin in float64, and in float32
    (even for a large mean) the float64 twin to float32 precision."""
    rng = _rng(5)
    x = rng.standard_normal((8, 3, 5, 5)) * [[[[0.5]], [[2.0]], [[1.0]]]] + [
        [[[100.0]], [[-3.0]], [[0.0]]]
    ]
    up = rng.standard_normal(x.shape)
    params = None if weight is None else {"weight": np.array(weight), "bias": np.array(bias)}
    w3 = None if weight is None else np.reshape(weight, (1, 3, 1))
    b3 = None if bias is None else np.reshape(bias, (1, 3, 1))
    assert N._invertible(w3, b3, (0, 2)) is from_output

    def grads(layer, dtype):
        p = fn.tree.map(lambda a: a.astype(dtype), params)
        loss = lambda p, x: fnp.sum(layer(p, x) * up.astype(dtype))
        return fn.tree.leaves(fn.grad(loss, argnums=(0, 1))(p, x.astype(dtype)))

    fused = lambda p, x: N.batch_norm(p, None, x)[0]
    ref = grads(lambda p, x: bn_composed(p or {}, x), np.float64)
    for got in grads(fused, np.float64):
        np.testing.assert_allclose(got, ref.pop(0), rtol=1e-9, atol=1e-9)
    ref = grads(lambda p, x: bn_composed(p or {}, x), np.float64)
    for got in grads(fused, np.float32):
        assert got.dtype == np.float32
        want = ref.pop(0)
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * np.abs(want).max())


def test_normalize_statistics_outputs_have_correct_derivatives():
    """The mean and variance outputs of the fused primitive, used at higher orders, are exact."""
    rng = _rng(5)
    x = rng.standard_normal((3, 2, 4))
    w, b = rng.standard_normal((1, 2, 1)), rng.standard_normal((1, 2, 1))
    for axes, wb in [((0, 2), (w, b)), ((2,), (None, None))]:

        def stats(x, w=wb[0], axes=axes):
            y, mean, var = N._normalize(x, w, wb[1], axes=axes, eps=1e-3)
            return fnp.sum(y * y) + fnp.sum(mean * mean) + fnp.sum(fnp.sqrt(var))

        check_grads(stats, (x,), order=2)


def test_batch_norm_running_statistics_follow_pytorch_formulas():
    rng = _rng(6)
    params, state = N.init_batch_norm(3, dtype="float64")
    rm, rv = np.zeros(3), np.ones(3)
    for step in range(4):
        x = rng.standard_normal((5, 3, 2)) * (step + 1) + step
        y, state = N.batch_norm(params, state, x, momentum=0.3)
        mean = x.mean(axis=(0, 2))
        var = x.var(axis=(0, 2), ddof=1)
        rm, rv = 0.7 * rm + 0.3 * mean, 0.7 * rv + 0.3 * var
        np.testing.assert_allclose(state["running_mean"], rm, rtol=1e-12)
        np.testing.assert_allclose(state["running_var"], rv, rtol=1e-12)
        assert int(state["num_batches_tracked"]) == step + 1
        assert (
            state["num_batches_tracked"].dtype == np.int64
            and state["num_batches_tracked"].shape == ()
        )
    # eval mode uses the running statistics and returns the state unchanged
    x = rng.standard_normal((2, 3, 2))
    y, same = N.batch_norm(params, state, x, training=False)
    assert same is state
    np.testing.assert_allclose(y, (x - rm[:, None]) / np.sqrt(rv[:, None] + 1e-5), rtol=1e-12)
    check_grads(lambda p, x: N.batch_norm(p, state, x, training=False)[0], (params, x), order=2)


def test_batch_norm_cumulative_average_and_no_state():
    rng = _rng(7)
    params, state = N.init_batch_norm(2, affine=False, dtype="float64")
    assert params == {}
    xs = [rng.standard_normal((4, 2)) for _ in range(3)]
    for x in xs:
        _, state = N.batch_norm(params, state, x, momentum=None)
    np.testing.assert_allclose(state["running_mean"], np.mean([x.mean(0) for x in xs], axis=0))
    np.testing.assert_allclose(
        state["running_var"], np.mean([x.var(0, ddof=1) for x in xs], axis=0)
    )
    # state None: batch statistics in both modes, nothing to return
    x = xs[0]
    y_train, s1 = N.batch_norm(None, None, x)
    y_eval, s2 = N.batch_norm(None, None, x, training=False)
    assert s1 is None and s2 is None
    np.testing.assert_allclose(y_train, y_eval)
    np.testing.assert_allclose(y_train, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5))


def test_batch_norm_does_not_modify_the_input_state_and_float32_state_stays_float32():
    params, state = N.init_batch_norm(3)
    before = fn.tree.map(np.copy, state)
    x = _rng(8).standard_normal((4, 3, 5)).astype(np.float32)
    y, new = N.batch_norm(params, state, x)
    _assert_tree_close(state, before, rtol=0)
    assert new["running_mean"].dtype == np.float32 and new["running_var"].dtype == np.float32
    assert y.dtype == np.float32

    # the state never carries a gradient, even when computed under differentiation
    def loss(p):
        y, s = N.batch_norm(p, state, x)
        return fnp.sum(y * y), s

    (val, s), g = fn.value_and_grad(loss, has_aux=True)(params)
    assert isinstance(s["running_mean"], np.ndarray)
    assert g["weight"].dtype == np.float32


def test_initialisers_shapes_and_values():
    p, s = N.init_batch_norm(4)
    assert p["weight"].dtype == np.float32 and (p["weight"] == 1).all() and (p["bias"] == 0).all()
    assert (s["running_var"] == 1).all() and s["running_mean"].shape == (4,)
    assert N.init_batch_norm(4, track_running_stats=False)[1] is None
    assert N.init_batch_norm(4, dtype="float64")[0]["bias"].dtype == np.float64
    ln = N.init_layer_norm((3, 2))
    assert ln["weight"].shape == (3, 2) and ln["bias"].shape == (3, 2)
    assert set(N.init_layer_norm(5, bias=False)) == {"weight"}
    assert N.init_layer_norm(5, elementwise_affine=False) == {}
    gn = N.init_group_norm(2, 6)
    assert gn["weight"].shape == (6,)
    with pytest.raises(ValueError, match="does not divide"):
        N.init_group_norm(4, 6)
    with pytest.raises(ValueError, match="positive int"):
        N.init_batch_norm(0)


def test_layer_norm_without_params_and_with_weight_only():
    x = _rng(9).standard_normal((2, 3, 4))
    y = N.layer_norm(None, x, normalized_shape=4)
    np.testing.assert_allclose(
        y, (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    )
    y2 = N.layer_norm({}, x, normalized_shape=(3, 4))
    ref = (x - x.mean((1, 2), keepdims=True)) / np.sqrt(x.var((1, 2), keepdims=True) + 1e-5)
    np.testing.assert_allclose(y2, ref)
    w = np.arange(4.0)
    np.testing.assert_allclose(N.layer_norm({"weight": w}, x), y * w)
    check_grads(lambda w, x: N.layer_norm({"weight": w}, x), (w, x), order=2)


def test_norm_errors_name_the_problem():
    x = np.zeros((4, 3, 2))
    params, state = N.init_batch_norm(3, dtype="float64")
    with pytest.raises(
        ValueError, match=r"weight has shape \(5,\) but x of shape \(4, 3, 2\) needs \(3,\)"
    ):
        N.batch_norm({"weight": np.ones(5), "bias": np.zeros(5)}, state, x)
    with pytest.raises(ValueError, match="at least 2 dimensions|shape \\(N, C\\)"):
        N.batch_norm(params, state, np.zeros(3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        N.batch_norm(params, state, np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"state\['running_mean'\] has shape \(2,\)"):
        N.batch_norm(params, {**state, "running_mean": np.zeros(2)}, x)
    with pytest.raises(ValueError, match="missing keys \\['num_batches_tracked'\\]"):
        N.batch_norm(params, {"running_mean": np.zeros(3), "running_var": np.ones(3)}, x)
    with pytest.raises(ValueError, match="running statistics belong in `state`"):
        N.batch_norm({**params, **state}, state, x)
    with pytest.raises(TypeError, match="weight has dtype float32 but x has dtype float64"):
        N.batch_norm({"weight": np.ones(3, np.float32)}, state, x)
    with pytest.raises(ValueError, match="momentum"):
        N.batch_norm(params, state, x, momentum=2.0)
    with pytest.raises(TypeError, match="floating"):
        N.batch_norm(params, state, np.zeros((4, 3), dtype=np.int64))
    with pytest.raises(
        ValueError, match=r"x has shape \(4, 3, 2\) but the normalized shape is \(3,\)"
    ):
        N.layer_norm({"weight": np.ones(3), "bias": np.zeros(3)}, x)
    with pytest.raises(ValueError, match="pass normalized_shape"):
        N.layer_norm(None, x)
    with pytest.raises(ValueError, match="differs from the parameters' shape"):
        N.layer_norm({"weight": np.ones(2)}, x, normalized_shape=3)
    with pytest.raises(ValueError, match="num_groups=2 does not divide"):
        N.group_norm(None, x, 2)
    with pytest.raises(ValueError, match="unexpected keys \\['gamma'\\]"):
        N.group_norm({"gamma": np.ones(3)}, x, 3)


# ============================================================================= cross entropy


@st.composite
def _ce_case(draw):
    """Logits (N, C) or (N, C, d) or (C,), with index or probability targets and options."""
    rng = _rng(draw(st.integers(0, 1000)))
    c = draw(st.integers(2, 4))
    layout = draw(st.sampled_from(["nc", "ncd", "c"]))
    shape = {"nc": (draw(st.integers(1, 4)), c), "ncd": (2, c, draw(st.integers(1, 3))), "c": (c,)}[
        layout
    ]
    logits = draw(strategies.arrays(shape, elements=(-3, 3)))
    probs = draw(st.booleans())
    index_shape = () if layout == "c" else shape[:1] + shape[2:]
    if probs:
        q = rng.random(shape) + 0.05
        target = q / q.sum(axis=0 if layout == "c" else 1, keepdims=True)
    else:
        target = rng.integers(0, c, index_shape)
        if draw(st.booleans()) and target.size > 1:
            target.reshape(-1)[0] = -100  # one ignored target (never all of them)
    weight = rng.random(c) + 0.5 if draw(st.booleans()) else None
    options = {
        "reduction": draw(st.sampled_from(["mean", "sum", "none"])),
        "label_smoothing": draw(st.sampled_from([0.0, 0.0, 0.15])),
        "weight": weight,
    }
    return logits, target, options


@settings(max_examples=25, deadline=None)
@given(case=_ce_case())
def test_cross_entropy_grads_order2_and_fused_equals_composed(case):
    logits, target, opt = case
    w = opt["weight"]
    kw = {k: v for k, v in opt.items() if k != "weight"}

    def fused(x, t=target):
        return L.cross_entropy(x, t, weight=w, **kw)

    def twin(x, t=target):
        return ce_composed(x, t, w, kw["reduction"], kw["label_smoothing"])

    check_grads(fused, (logits,), order=2)
    np.testing.assert_allclose(fused(logits), twin(logits), rtol=1e-10, atol=1e-12)
    out = fused(logits)
    up = _rng(1).standard_normal(np.shape(out))
    g1 = fn.grad(lambda x: fnp.sum(fused(x) * up))(logits)
    g2 = fn.grad(lambda x: fnp.sum(twin(x) * up))(logits)
    np.testing.assert_allclose(g1, g2, rtol=1e-9, atol=1e-12)
    if backend.is_floating(target):  # probability targets (and their weights) are differentiable
        check_grads(lambda x, t: L.cross_entropy(x, t, weight=w, **kw), (logits, target), order=2)
        if w is not None:
            check_grads(
                lambda x, w: L.cross_entropy(x, target, weight=w, **kw), (logits, w), order=2
            )


def test_cross_entropy_float32_matches_twin_and_stays_float32():
    rng = _rng(10)
    x = (rng.standard_normal((16, 7)) * 4).astype(np.float32)
    t = rng.integers(0, 7, 16)
    t[3] = -100
    w = (rng.random(7) + 0.5).astype(np.float32)
    for ls in (0.0, 0.1):
        val, g = fn.value_and_grad(lambda x: L.cross_entropy(x, t, weight=w, label_smoothing=ls))(x)
        val2, g2 = fn.value_and_grad(lambda x: ce_composed(x, t, w, "mean", ls))(x)
        assert val.dtype == np.float32 and g.dtype == np.float32
        np.testing.assert_allclose(val, val2, rtol=1e-5)
        np.testing.assert_allclose(g, g2, rtol=1e-4, atol=1e-6)


def test_cross_entropy_is_stable_for_huge_logits():
    x = np.array([[1000.0, -1000.0, 0.0], [-5000.0, 5000.0, 5000.0]])
    t = np.array([0, 1])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        val, g = fn.value_and_grad(lambda x: L.cross_entropy(x, t, reduction="sum"))(x)
    np.testing.assert_allclose(val, np.log(2.0))
    np.testing.assert_allclose(g, [[0, 0, 0], [0, -0.5, 0.5]], atol=1e-12)


def test_cross_entropy_all_ignored_gives_nan_loss_and_zero_gradient():
    x = _rng().standard_normal((3, 4))
    t = np.full(3, -100)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        val, g = fn.value_and_grad(lambda x: L.cross_entropy(x, t))(x)
    assert np.isnan(val)
    assert (g == 0).all()
    assert L.cross_entropy(x, t, reduction="sum") == 0.0


def test_cross_entropy_custom_ignore_index_and_weights():
    x = _rng(11).standard_normal((5, 3))
    t = np.array([0, 2, 1, 2, 1])
    w = np.array([1.0, 2.0, 3.0])
    got = L.cross_entropy(x, t, weight=w, ignore_index=2)
    logp = x - np.log(np.exp(x).sum(1, keepdims=True))
    keep = t != 2
    ref = -(w[t[keep]] * logp[keep, t[keep]]).sum() / w[t[keep]].sum()
    np.testing.assert_allclose(got, ref)


def test_cross_entropy_residual_outputs_at_higher_orders():
    """Softmax and logsumexp residuals carry exact derivatives (used by the inner VJP)."""
    x = _rng(12).standard_normal((3, 4))
    t = np.array([1, 0, 3])
    kw = {"probs": False, "reduction": "sum", "label_smoothing": 0.1, "ignore_index": -100}
    check_grads(lambda x: L._cross_entropy(x, t, None, **kw)[1] ** 2, (x,), order=2)
    check_grads(lambda x: L._cross_entropy(x, t, None, **kw)[2] ** 2, (x,), order=2)
    check_grads(lambda x: fn.grad(lambda y: L.cross_entropy(y, t))(x) ** 2, (x,), order=1)


def test_cross_entropy_errors_name_the_problem():
    x = np.zeros((4, 3))
    with pytest.raises(
        ValueError,
        match=r"target has shape \(3,\) but logits of shape \(4, 3\) need class indices of shape \(4,\)",
    ):
        L.cross_entropy(x, np.zeros(3, dtype=np.int64))
    with pytest.raises(IndexError, match=r"class index 3, outside \[0, 3\).*C=3"):
        L.cross_entropy(x, np.array([0, 1, 3, 2]))
    with pytest.raises(IndexError, match="class index -1"):
        L.cross_entropy(x, np.array([0, 1, -1, 2]))
    with pytest.raises(TypeError, match="class indices must be integers"):
        L.cross_entropy(x, np.zeros(4))
    with pytest.raises(ValueError, match="0-d array"):
        L.cross_entropy(np.zeros(()), np.zeros((), dtype=np.int64))
    with pytest.raises(TypeError, match="logits must be a floating array"):
        L.cross_entropy(np.zeros((4, 3), dtype=np.int64), np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        L.cross_entropy(x, np.zeros(4, dtype=np.int64), weight=np.ones(4))
    with pytest.raises(ValueError, match="reduction must be one of"):
        L.cross_entropy(x, np.zeros(4, dtype=np.int64), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        L.cross_entropy(x, np.zeros(4, dtype=np.int64), label_smoothing=1.5)
    with pytest.raises(TypeError, match="integer class indices"):
        L.cross_entropy(x, np.zeros(4, dtype=bool))
    with pytest.raises(TypeError, match="not differentiable in weight"):
        fn.grad(lambda w: L.cross_entropy(x, np.zeros(4, dtype=np.int64), weight=w))(np.ones(3))
    with pytest.raises(ValueError, match="the class axis of the logits is axis 1"):
        L.cross_entropy(np.zeros((2, 3, 5)), np.zeros((2, 3), dtype=np.int64))


# ============================================================================= other losses


def _pair_arrays(draw, positive=False):
    shape = draw(strategies.shapes(min_dims=1, max_dims=3))
    lo, hi = (0.05, 0.95) if positive else (-2, 2)
    return draw(strategies.arrays(shape, elements=(lo, hi))), draw(
        strategies.arrays(shape, elements=(lo, hi))
    )


def _far_apart(a, b, points, gap=1e-3):
    """Shift ``a`` so that ``a - b`` avoids the kinks at ``points``."""
    d = a - b
    for p in points:
        d = np.where(np.abs(d - p) < gap, p + 0.05, d)
    return b + d


@FEW
@given(data=st.data(), reduction=st.sampled_from(["mean", "sum", "none"]))
def test_regression_losses_grads_order2(data, reduction):
    a, b = _pair_arrays(data.draw)
    check_grads(lambda a, b: L.mse_loss(a, b, reduction=reduction), (a, b), order=2)
    a1 = _far_apart(a, b, [0.0])
    check_grads(lambda a, b: L.l1_loss(a, b, reduction=reduction), (a1, b), order=2)
    a2 = _far_apart(a, b, [0.0, -0.7, 0.7])
    check_grads(
        lambda a, b: L.smooth_l1_loss(a, b, reduction=reduction, beta=0.7), (a2, b), order=1
    )
    check_grads(lambda a, b: L.huber_loss(a, b, reduction=reduction, delta=0.7), (a2, b), order=1)


@FEW
@given(data=st.data(), reduction=st.sampled_from(["mean", "sum", "none"]))
def test_binary_losses_grads_order2(data, reduction):
    p, t = _pair_arrays(data.draw, positive=True)
    w = _rng(1).random(p.shape[-1:]) + 0.5
    check_grads(lambda p, t: L.binary_cross_entropy(p, t, reduction=reduction), (p, t), order=2)
    check_grads(
        lambda p, t, w: L.binary_cross_entropy(p, t, weight=w, reduction=reduction),
        (p, t, w),
        order=2,
    )
    x = (p - 0.5) * 6
    check_grads(
        lambda x, t, w, pw: L.binary_cross_entropy_with_logits(
            x, t, weight=w, pos_weight=pw, reduction=reduction
        ),
        (x, t, w, w[::-1].copy()),
        order=2,
    )
    logq = np.log(p)
    for red in ("batchmean", reduction):
        check_grads(lambda a, b: L.kl_div(a, b, reduction=red), (logq, t), order=2)
        check_grads(
            lambda a, b: L.kl_div(a, b, reduction=red, log_target=True), (logq, np.log(t)), order=2
        )


@FEW
@given(data=st.data())
def test_nll_loss_grads_and_equals_manual(data):
    rng = _rng(data.draw(st.integers(0, 100)))
    n, c = data.draw(st.integers(1, 4)), data.draw(st.integers(2, 4))
    x = rng.standard_normal((n, c))
    t = rng.integers(0, c, n)
    w = rng.random(c) + 0.5
    red = data.draw(st.sampled_from(["mean", "sum", "none"]))
    check_grads(lambda x: L.nll_loss(x, t, weight=w, reduction=red), (x,), order=2)
    each = -w[t] * x[np.arange(n), t]
    ref = {"none": each, "sum": each.sum(), "mean": each.sum() / w[t].sum()}[red]
    np.testing.assert_allclose(L.nll_loss(x, t, weight=w, reduction=red), ref)


def test_losses_keep_float32():
    rng = _rng(13)
    a = rng.random((4, 3)).astype(np.float32) * 0.9 + 0.05
    b = rng.random((4, 3)).astype(np.float32)
    for f in (
        L.mse_loss,
        L.l1_loss,
        L.smooth_l1_loss,
        L.huber_loss,
        L.binary_cross_entropy,
        L.binary_cross_entropy_with_logits,
        L.kl_div,
    ):
        val, (ga, gb) = fn.value_and_grad(lambda a, b: f(a, b), argnums=(0, 1))(a, b)
        assert val.dtype == np.float32 and ga.dtype == np.float32 and gb.dtype == np.float32, f


def test_loss_edge_values_follow_pytorch():
    # binary_cross_entropy clamps its logs at -100; no warning at 0 and 1
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        v = L.binary_cross_entropy(np.array([0.0, 1.0]), np.array([1.0, 0.0]), reduction="none")
        np.testing.assert_allclose(v, [100.0, 100.0])
        g = fn.grad(lambda p: L.binary_cross_entropy(p, np.array([1.0, 0.0]), reduction="sum"))(
            np.array([0.0, 1.0])
        )
        np.testing.assert_allclose(g, [-1e12, 1e12])
        # kl_div: zero targets contribute nothing
        np.testing.assert_allclose(
            L.kl_div(np.array([-1.0, -2.0]), np.array([0.0, 1.0]), reduction="sum"), 2.0
        )
    # smooth_l1 with beta 0 is the l1 loss
    a, b = np.array([0.5, -2.0]), np.array([0.0, 0.0])
    np.testing.assert_allclose(L.smooth_l1_loss(a, b, beta=0.0), L.l1_loss(a, b))


def test_loss_errors_name_the_problem():
    a = np.zeros((4, 1))
    with pytest.raises(
        ValueError, match=r"input has shape \(4, 1\) but target has shape \(4,\).*\(4, 4\)"
    ):
        L.mse_loss(a, np.zeros(4))
    with pytest.raises(ValueError, match=r"input has shape \(4, 1\) but target has shape \(4,\)"):
        L.l1_loss(a, np.zeros(4))
    with pytest.raises(ValueError, match="reduction must be one of"):
        L.mse_loss(a, a, reduction="batchmean")
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        L.binary_cross_entropy(np.array([1.5]), np.array([1.0]))
    with pytest.raises(ValueError, match="pos_weight has shape"):
        L.binary_cross_entropy_with_logits(
            np.zeros((2, 3)), np.zeros((2, 3)), pos_weight=np.ones(2)
        )
    with pytest.raises(TypeError, match="target must be a floating array"):
        L.mse_loss(np.zeros(3), np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="beta must be >= 0"):
        L.smooth_l1_loss(a, a, beta=-1.0)
    with pytest.raises(ValueError, match="delta must be > 0"):
        L.huber_loss(a, a, delta=0.0)
    with pytest.raises(TypeError, match="use cross_entropy for class probabilities"):
        L.nll_loss(np.zeros((2, 3)), np.zeros((2, 3)))


# ============================================================================= dropout


def test_dropout_statistics_scaling_and_gradient():
    key = frandom.key(0)
    x = np.ones((200, 100), dtype=np.float32)
    y = D.dropout(key, x, p=0.3)
    assert y.dtype == np.float32 and y.shape == x.shape
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], np.float32(1.0) / np.float32(0.7))
    np.testing.assert_array_equal(D.dropout(key, x, p=0.3), y)  # same key, same mask
    assert not np.array_equal(D.dropout(frandom.split(key)[0], x, p=0.3), y)
    g = fn.grad(lambda x: fnp.sum(D.dropout(key, x, p=0.3) * 2.0))(x)
    np.testing.assert_array_equal(g, 2.0 * y)
    check_grads(
        lambda x: D.dropout(key, x, p=0.5), (np.linspace(-1, 1, 12).reshape(3, 4),), order=2
    )


def test_dropout_identity_zero_and_errors():
    key = frandom.key(1)
    x = np.array([1.0, np.nan, 3.0])
    assert D.dropout(key, x, p=0.5, training=False) is x
    assert D.dropout(key, x, p=0.0) is x
    z = D.dropout(key, x, p=1.0)
    assert z[0] == 0 and np.isnan(z[1])
    with pytest.raises(ValueError, match="between 0 and 1, but got 1.5"):
        D.dropout(key, x, p=1.5)
    with pytest.raises(TypeError, match="floating"):
        D.dropout(key, np.arange(3), p=0.5)
    with pytest.raises(ValueError, match="key must be a uint32 array of shape"):
        D.dropout(np.zeros(3, dtype=np.uint32), x, p=0.5)
    m = D.dropout_mask(key, (4, 5), 0.25, dtype="float64")
    assert m.dtype == np.float64 and set(np.unique(m)) <= {0.0, 1.0 / 0.75}


# ============================================================================= strict backend


def _strict_cases():
    rng = _rng(14)
    x = rng.standard_normal((4, 3, 2))
    x2 = rng.standard_normal((5, 4))
    p = rng.random((5, 4)) * 0.9 + 0.05
    t = rng.integers(0, 4, 5)
    t[0] = -100
    q = rng.random((5, 4))
    w4 = rng.random(4) + 0.5
    params, state = N.init_batch_norm(3, dtype="float64")
    params = {"weight": rng.standard_normal(3), "bias": rng.standard_normal(3)}
    cases = {name: (f, (x2,)) for name, (f, _) in ACTIVATIONS.items()}
    cases.update(
        {
            "batch_norm": (lambda p, s, x: N.batch_norm(p, s, x), (params, state, x)),
            "batch_norm_eval": (
                lambda p, s, x: N.batch_norm(p, s, x, training=False),
                (params, state, x),
            ),
            "layer_norm": (
                lambda p, x: N.layer_norm(p, x),
                ({"weight": x[0, :, 0] * 0 + 1.5, "bias": x[0, :, 0]}, x.transpose(0, 2, 1).copy()),
            ),
            "group_norm": (lambda p, x: N.group_norm(p, x, 3), (params, x)),
            "cross_entropy": (
                lambda x, t, w: L.cross_entropy(x, t, weight=w, label_smoothing=0.1),
                (x2, t, w4),
            ),
            "cross_entropy_none": (lambda x, t: L.cross_entropy(x, t, reduction="none"), (x2, t)),
            "cross_entropy_probs": (lambda x, q, w: L.cross_entropy(x, q, weight=w), (x2, q, w4)),
            "nll_loss": (lambda x, t: L.nll_loss(x, t), (x2, t)),
            "mse_loss": (L.mse_loss, (x2, q)),
            "l1_loss": (L.l1_loss, (x2, q)),
            "smooth_l1_loss": (L.smooth_l1_loss, (x2, q)),
            "huber_loss": (L.huber_loss, (x2, q)),
            "bce": (L.binary_cross_entropy, (p, q)),
            "bce_logits": (
                lambda x, q, w: L.binary_cross_entropy_with_logits(x, q, pos_weight=w),
                (x2, q, w4),
            ),
            "kl_div": (lambda x, q: L.kl_div(x, q, reduction="batchmean"), (np.log(p), q)),
        }
    )
    return cases


@pytest.mark.parametrize("name", sorted(_strict_cases()))
def test_forward_on_strict_backend_equals_numpy(name):
    f, args = _strict_cases()[name]
    ref = f(*args)
    got = f(*backend.device_put(args, "strict"))
    for r, g in zip(fn.tree.leaves(ref), fn.tree.leaves(got)):
        assert backend.backend_name(g) == "strict", name
        np.testing.assert_allclose(backend.to_numpy(g), r, rtol=1e-12, atol=1e-14)


def test_gradients_on_strict_backend_equal_numpy():
    cases = _strict_cases()
    for name in ("batch_norm", "layer_norm", "cross_entropy", "gelu", "sigmoid", "silu"):
        f, args = cases[name]

        def loss(*a, f=f):
            out = f(*a)
            out = out[0] if isinstance(out, tuple) else out
            return fnp.sum(out * out)

        ref = fn.grad(loss)(*args)
        got = fn.grad(loss)(*backend.device_put(args, "strict"))
        for r, g in zip(fn.tree.leaves(ref), fn.tree.leaves(got)):
            np.testing.assert_allclose(backend.to_numpy(g), r, rtol=1e-12, atol=1e-14)


def test_dropout_on_strict_backend_stays_there_and_matches_numpy():
    key = frandom.key(3)
    x = _rng().standard_normal((6, 7))
    y = D.dropout(key, backend.device_put(x, "strict"), p=0.4)
    assert backend.backend_name(y) == "strict"
    np.testing.assert_allclose(backend.to_numpy(y), D.dropout(key, x, p=0.4))


@pytest.mark.parametrize("layer", ["batch_norm", "layer_norm", "group_norm"])
def test_norm_mixing_backends_is_named_before_dtypes(layer):
    """A NumPy weight with an input on the strict stand-in is a backend mix, not a dtype
    mismatch (nor a dtype-comparison warning from array-api-strict)."""
    x = backend.device_put(np.ones((4, 2, 3), dtype=np.float32), "strict")
    p = {"weight": np.ones(2, np.float32), "bias": np.zeros(2, np.float32)}
    calls = {
        "batch_norm": lambda: N.batch_norm(p, None, x),
        "layer_norm": lambda: N.layer_norm({"weight": np.ones(3, np.float32)}, x),
        "group_norm": lambda: N.group_norm(p, x, 1),
    }
    with pytest.raises(TypeError, match="cannot mix arrays of two backends"):
        calls[layer]()
