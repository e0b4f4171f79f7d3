"""Instance normalisation and adaptive max pooling of funcnn.nn.

* gradients (float64) by ``check_grads`` on hypothesis-drawn shapes and options, order 2;
* instance_norm (the fused primitive) against its composed twin in ``fnp`` ops, values and
  gradients; adaptive max pooling against a loop over PyTorch's bins, values and the
  first-maximum gradient (ties included);
* running statistics against PyTorch's formulas written out; evaluation with them;
* float32 in, float32 out; clear errors; the strict stand-in backend equals NumPy.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funcnn as fn
from funcnn import backend, nn
from funcnn import numpy as fnp
from funcnn.testing import check_grads

FEW = settings(max_examples=10, deadline=None)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ============================================================================= instance norm


def in_composed(params, x, eps=1e-5):
    axes = tuple(range(2, x.ndim))
    bshape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    mean = fnp.mean(x, axis=axes, keepdims=True)
    var = fnp.var(x, axis=axes, keepdims=True)
    y = (x - mean) / fnp.sqrt(var + eps)
    if params and params.get("weight") is not None:
        y = y * fnp.reshape(params["weight"], bshape)
    if params and params.get("bias") is not None:
        y = y + fnp.reshape(params["bias"], bshape)
    return y


@st.composite
def _in_case(draw):
    n = draw(st.integers(1, 3))
    c = draw(st.integers(1, 3))
    spatial = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    if np.prod(spatial) == 1:
        spatial = spatial[:-1] + (2,)
    rng = _rng(draw(st.integers(0, 1000)))
    x = rng.standard_normal((n, c, *spatial)) * 1.5 + rng.standard_normal(
        (1, c) + (1,) * len(spatial)
    )
    kind = draw(st.sampled_from(["none", "weight", "bias", "both"]))
    params = {}
    if kind in ("weight", "both"):
        params["weight"] = rng.standard_normal(c)
    if kind in ("bias", "both"):
        params["bias"] = rng.standard_normal(c)
    eps = draw(st.sampled_from([1e-5, 0.1]))
    return x, params, eps


@FEW
@given(case=_in_case())
def test_instance_norm_grads_order2_and_fused_equals_composed(case):
    x, params, eps = case

    def fused(p, x):
        return nn.instance_norm(p, None, x, eps=eps)[0]

    check_grads(fused, (params, x), order=2)
    np.testing.assert_allclose(
        fused(params, x), in_composed(params, x, eps), rtol=1e-10, atol=1e-12
    )
    up = _rng(1).standard_normal(x.shape)
    g1 = fn.grad(lambda p, x: fnp.sum(fused(p, x) * up), argnums=(0, 1))(params, x)
    g2 = fn.grad(lambda p, x: fnp.sum(in_composed(p, x, eps) * up), argnums=(0, 1))(params, x)
    for a, b in zip(fn.tree.leaves(g1), fn.tree.leaves(g2)):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


@FEW
@given(case=_in_case())
def test_instance_norm_with_running_stats_grads(case):
    x, params, eps = case
    c = x.shape[1]
    rng = _rng(2)
    state = {"running_mean": rng.standard_normal(c), "running_var": rng.uniform(0.5, 2.0, c)}
    # training: the state does not change the output or its gradient
    check_grads(lambda p, x: nn.instance_norm(p, state, x, eps=eps)[0], (params, x), order=2)
    # evaluation: an affine map of x with the running statistics
    check_grads(
        lambda p, x: nn.instance_norm(p, state, x, use_input_stats=False, eps=eps)[0],
        (params, x),
        order=2,
    )
    y, same = nn.instance_norm(params, state, x, use_input_stats=False, eps=eps)
    assert same is state
    bshape = (1, c) + (1,) * (x.ndim - 2)
    ref = (x - state["running_mean"].reshape(bshape)) / np.sqrt(
        state["running_var"].reshape(bshape) + eps
    )
    if "weight" in params:
        ref = ref * params["weight"].reshape(bshape)
    if "bias" in params:
        ref = ref + params["bias"].reshape(bshape)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("momentum", [0.1, 0.5, 0.0, 1.0])
def test_instance_norm_running_statistics_follow_pytorch_formulas(momentum):
    rng = _rng(3)
    _, state = nn.init.instance_norm(4, track_running_stats=True, dtype="float64")
    rm, rv = np.zeros(4), np.ones(4)
    for step in range(3):
        x = rng.standard_normal((3, 4, 5, 2)) * (step + 1) + step
        before = {k: np.array(v) for k, v in state.items()}
        old = state
        _, state = nn.instance_norm(None, state, x, momentum=momentum)
        for k, v in before.items():  # the input state is not modified
            np.testing.assert_array_equal(old[k], v)
        flat = x.reshape(3, 4, -1)
        mean = flat.mean(axis=2).mean(axis=0)
        var = flat.var(axis=2, ddof=1).mean(axis=0)
        rm = (1 - momentum) * rm + momentum * mean
        rv = (1 - momentum) * rv + momentum * var
        np.testing.assert_allclose(state["running_mean"], rm, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(state["running_var"], rv, rtol=1e-12, atol=1e-14)
        assert int(state["num_batches_tracked"]) == 0  # PyTorch's InstanceNorm never counts
        assert state["num_batches_tracked"].dtype == np.int64


def test_instance_norm_state_without_counter_and_none_state():
    x = _rng(4).standard_normal((2, 3, 4))
    state = {"running_mean": np.zeros(3), "running_var": np.ones(3)}
    _, new = nn.instance_norm(None, state, x)
    assert set(new) == {"running_mean", "running_var"}
    y, none = nn.instance_norm(None, None, x)
    assert none is None
    np.testing.assert_allclose(y.mean(axis=2), 0.0, atol=1e-12)


@pytest.mark.parametrize("use_input_stats", [True, False])
def test_instance_norm_float32_in_float32_out(use_input_stats):
    params, state = nn.init.instance_norm(3, affine=True, track_running_stats=True)
    assert params["weight"].dtype == np.float32
    assert state["running_var"].dtype == np.float32
    x = _rng(5).standard_normal((2, 3, 4, 4)).astype(np.float32)
    y, new = nn.instance_norm(params, state, x, use_input_stats=use_input_stats)
    assert y.dtype == np.float32
    assert new["running_mean"].dtype == np.float32
    assert new["running_var"].dtype == np.float32
    g = fn.grad(lambda p, x: fnp.sum(nn.instance_norm(p, state, x)[0] ** 3), argnums=(0, 1))(
        params, x
    )
    assert all(leaf.dtype == np.float32 for leaf in fn.tree.leaves(g))
    ref = in_composed(params, x.astype(np.float64)) if use_input_stats else None
    if ref is not None:
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    # float64 running statistics with a float32 input: the output stays float32
    _, s64 = nn.init.instance_norm(3, track_running_stats=True, dtype="float64")
    y2, s2 = nn.instance_norm(None, s64, x, use_input_stats=use_input_stats)
    assert y2.dtype == np.float32
    assert s2["running_mean"].dtype == np.float64


def test_init_instance_norm():
    params, state = nn.init.instance_norm(5)
    assert params == {} and state is None
    params, state = nn.init.instance_norm(5, affine=True, track_running_stats=True, dtype="float64")
    np.testing.assert_array_equal(params["weight"], np.ones(5))
    np.testing.assert_array_equal(params["bias"], np.zeros(5))
    np.testing.assert_array_equal(state["running_mean"], np.zeros(5))
    np.testing.assert_array_equal(state["running_var"], np.ones(5))
    assert state["num_batches_tracked"].shape == () and state["num_batches_tracked"] == 0
    assert params["weight"].dtype == np.float64
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="init_instance_norm: num_features"):
            nn.init.instance_norm(bad)


def test_instance_norm_errors():
    x = _rng(6).standard_normal((2, 3, 4))
    state = {"running_mean": np.zeros(3), "running_var": np.ones(3)}
    with pytest.raises(ValueError, match=r"instance_norm: x must have shape \(N, C, \*spatial\)"):
        nn.instance_norm(None, None, np.zeros(3))
    with pytest.raises(TypeError, match="instance_norm: x must be a floating array"):
        nn.instance_norm(None, None, np.zeros((2, 3, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        nn.instance_norm(None, None, np.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match=r"weight has shape \(4,\).*needs \(3,\)"):
        nn.instance_norm({"weight": np.ones(4)}, None, x)
    with pytest.raises(TypeError, match="weight has dtype float32 but x has dtype float64"):
        nn.instance_norm({"weight": np.ones(3, dtype=np.float32)}, None, x)
    with pytest.raises(ValueError, match="running statistics belong in `state`"):
        nn.instance_norm({"running_mean": np.zeros(3)}, None, x)
    with pytest.raises(ValueError, match=r"missing keys \['running_var'\]"):
        nn.instance_norm(None, {"running_mean": np.zeros(3)}, x)
    with pytest.raises(ValueError, match=r"state\['running_mean'\] has shape \(2,\)"):
        nn.instance_norm(None, {"running_mean": np.zeros(2), "running_var": np.ones(3)}, x)
    with pytest.raises(TypeError, match="instance_norm: state must be a dict"):
        nn.instance_norm(None, [np.zeros(3), np.ones(3)], x)
    with pytest.raises(ValueError, match="use_input_stats=False needs running statistics"):
        nn.instance_norm(None, None, x, use_input_stats=False)
    for m in (None, -0.1, 1.5, "0.1"):
        with pytest.raises(ValueError, match="instance_norm: momentum must be a number"):
            nn.instance_norm(None, state, x, momentum=m)
    with pytest.raises(ValueError, match="instance_norm: eps must be a non-negative number"):
        nn.instance_norm(None, None, x, eps=-1.0)
    # evaluation works on one spatial element, as in PyTorch
    y, _ = nn.instance_norm(None, state, np.ones((2, 3, 1)), use_input_stats=False)
    np.testing.assert_allclose(y, 1.0 / np.sqrt(1.0 + 1e-5))


# ============================================================================= adaptive max pooling


def _bins(length, out):
    return [((i * length) // out, -((-(i + 1) * length) // out)) for i in range(out)]


def amp_reference(x, out_sp):
    """Values and the first-maximum (row-major, per bin) gradient of sum(y * g), by loops."""
    nd = len(out_sp)
    n, c = x.shape[:2]
    y = np.zeros((n, c, *out_sp), dtype=x.dtype)
    where = {}
    for idx in itertools.product(*(range(o) for o in out_sp)):
        box = tuple(slice(*_bins(x.shape[2 + d], out_sp[d])[idx[d]]) for d in range(nd))
        for i in range(n):
            for j in range(c):
                win = x[(i, j) + box]
                k = np.unravel_index(int(np.argmax(win)), win.shape)  # first maximum
                y[(i, j) + idx] = win[k]
                where[(i, j) + idx] = (i, j) + tuple(b.start + kk for b, kk in zip(box, k))
    return y, where


def _amp(nd):
    return getattr(nn, f"adaptive_max_pool{nd}d")


@st.composite
def _amp_case(draw):
    nd = draw(st.integers(1, 3))
    n = draw(st.integers(1, 2))
    c = draw(st.integers(1, 2))
    in_sp = tuple(draw(st.integers(1, 6 if nd < 3 else 4)) for _ in range(nd))
    out_sp = tuple(draw(st.integers(1, s + 2)) for s in in_sp)
    rng = _rng(draw(st.integers(0, 1000)))
    size = n * c * int(np.prod(in_sp))
    # distinct values, far apart next to the finite-difference step: no ties
    x = (rng.permutation(size) * 0.1 + rng.uniform(0, 0.01, size)).reshape((n, c, *in_sp))
    return nd, x, out_sp


@FEW
@given(case=_amp_case())
def test_adaptive_max_pool_values_and_grads(case):
    nd, x, out_sp = case
    f = _amp(nd)
    y = f(x, out_sp)
    ref, _ = amp_reference(x, out_sp)
    np.testing.assert_array_equal(y, ref)
    check_grads(lambda x: f(x, out_sp), (x,), order=2)


@pytest.mark.parametrize(
    ("shape", "out"),
    [
        ((2, 3, 7), (3,)),
        ((1, 2, 5, 5), (3, 2)),
        ((1, 2, 4, 6), (2, 3)),
        ((1, 1, 3, 4, 5), (2, 3, 2)),
    ],
)
@pytest.mark.parametrize("data", ["ties", "integers"])
def test_adaptive_max_pool_gradient_goes_to_the_first_maximum(shape, out, data):
    rng = _rng(7)
    x = np.zeros(shape) if data == "ties" else rng.integers(0, 3, shape).astype(np.float64)
    g = rng.standard_normal((*shape[:2], *out))
    nd = len(out)
    grad = fn.vjp(lambda x: _amp(nd)(x, out), x)[1](g)[0]
    _, where = amp_reference(x, out)
    ref = np.zeros_like(x)
    for o, i in where.items():
        ref[i] += g[o]
    np.testing.assert_allclose(grad, ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_adaptive_max_pool_float32_unbatched_and_none_sizes(nd):
    rng = _rng(8)
    x = rng.standard_normal((2, 3) + (5,) * nd).astype(np.float32)
    out = (3,) * nd
    f = _amp(nd)
    y = f(x, out)
    assert y.dtype == np.float32 and y.shape == (2, 3) + out
    g = fn.grad(lambda x: fnp.sum(f(x, out) ** 2))(x)
    assert g.dtype == np.float32 and g.shape == x.shape
    np.testing.assert_array_equal(f(x[0], out), y[0])
    np.testing.assert_array_equal(f(x, 3), y)
    keep = (None,) + (2,) * (nd - 1)
    assert f(x, keep).shape == (2, 3, 5) + (2,) * (nd - 1)
    same = f(x, (5,) * nd)  # output size = input size: the values, a fresh array
    np.testing.assert_array_equal(same, x)
    assert same is not x


def test_adaptive_max_pool_errors():
    x = np.zeros((2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"adaptive_max_pool2d: x must have shape \(N, C, H, W\)"):
        nn.adaptive_max_pool2d(np.zeros((4, 4)), 2)
    with pytest.raises(TypeError, match="adaptive_max_pool2d: x must be a floating-point array"):
        nn.adaptive_max_pool2d(np.zeros((2, 3, 4, 4), dtype=np.int64), 2)
    with pytest.raises(ValueError, match="adaptive_max_pool2d: output_size"):
        nn.adaptive_max_pool2d(x, 0)
    with pytest.raises(ValueError, match="adaptive_max_pool2d: output_size"):
        nn.adaptive_max_pool2d(x, (2, 2, 2))
    with pytest.raises(TypeError, match="adaptive_max_pool1d: output_size"):
        nn.adaptive_max_pool1d(np.zeros((2, 3, 4)), "2")
    with pytest.raises(ValueError, match="adaptive_max_pool1d: x has an empty spatial dimension"):
        nn.adaptive_max_pool1d(np.zeros((2, 3, 0)), 2)
    with pytest.raises(NotImplementedError, match="return_indices=True is not supported"):
        nn.adaptive_max_pool3d(np.zeros((1, 2, 2, 2, 2)), 1, return_indices=True)


# ============================================================================= strict backend


def test_forward_and_gradient_on_the_strict_backend_equal_numpy():
    rng = _rng(9)
    x = rng.standard_normal((2, 3, 5, 7))
    params = {"weight": rng.standard_normal(3), "bias": rng.standard_normal(3)}
    state = {"running_mean": rng.standard_normal(3), "running_var": rng.uniform(0.5, 2, 3)}

    def loss(p, s, x):
        y1, s1 = nn.instance_norm(p, s, x)
        y2, _ = nn.instance_norm(p, s1, x, use_input_stats=False)
        pooled = nn.adaptive_max_pool2d(y1 + y2, (3, 4))
        return fnp.sum(pooled * pooled), s1

    g = fn.grad(loss, argnums=(0, 2), has_aux=True)
    (gp, gx), s = g(params, state, x)
    (dp, dx), ds = g(*backend.device_put((params, state, x), "strict"))
    assert backend.backend_name(dx) == "strict"
    for a, b in zip(fn.tree.leaves((gp, gx, s)), fn.tree.leaves((dp, dx, ds))):
        np.testing.assert_allclose(backend.to_numpy(b), a, rtol=1e-12, atol=1e-12)
