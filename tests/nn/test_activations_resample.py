"""The activations and resampling of funcnn.nn that came from torch.nn.functional's extras.

hardsigmoid, hardswish, mish, selu, celu, softsign, softmin, glu, prelu and interpolate:

* gradients (float64, order 2: every one is smooth away from its kinks) by ``check_grads`` on
  hypothesis-drawn shapes and options;
* the primitives (hardswish, the scaled elu of selu/celu) against their composed twins;
* PyTorch's gradient conventions at the kinks;
* float32 in, float32 out (values and gradients);
* clear errors for bad input;
* the forward pass on the strict stand-in backend equals NumPy's.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import funcnn as fn
from funcnn import backend, nn
from funcnn import numpy as fnp
from funcnn.testing import check_grads, strategies

FEW = settings(max_examples=12, deadline=None)

# name -> (function of x, points to keep away from: kinks where the second derivative jumps)
ELEMENTWISE = {
    "hardsigmoid": (nn.hardsigmoid, (-3.0, 3.0)),
    "hardswish": (nn.hardswish, (-3.0, 3.0)),
    "mish": (nn.mish, ()),
    "selu": (nn.selu, (0.0,)),
    "celu": (lambda x: nn.celu(x, 0.7), (0.0,)),
    "celu_negative_alpha": (lambda x: nn.celu(x, -1.3), (0.0,)),
    "softsign": (nn.softsign, (0.0,)),
}


def _away_from(points: tuple, margin: float = 0.05):
    return st.floats(-5.0, 5.0, allow_nan=False, width=64).filter(
        lambda v: all(abs(v - p) > margin for p in points)
    )


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
@FEW
@given(data=st.data())
def test_elementwise_grads(name, data):
    f, kinks = ELEMENTWISE[name]
    shape = data.draw(strategies.shapes(max_dims=3))
    x = data.draw(hnp.arrays(np.float64, shape, elements=_away_from(kinks)))
    check_grads(f, (x,), order=2)


@FEW
@given(x=strategies.arrays(strategies.shapes(min_dims=1, max_dims=3)), axis=st.integers(-1, 0))
def test_softmin_grads(x, axis):
    check_grads(lambda a: nn.softmin(a, axis), (x,), order=2)
    np.testing.assert_allclose(nn.softmin(x, axis), nn.softmax(-x, axis), rtol=1e-15)


@FEW
@given(
    shape=strategies.shapes(min_dims=1, max_dims=3),
    axis=st.integers(-1, 0),
    data=st.data(),
)
def test_glu_grads(shape, axis, data):
    shape = list(shape)
    shape[axis] *= 2
    x = data.draw(strategies.arrays(tuple(shape)))
    check_grads(lambda a: nn.glu(a, axis), (x,), order=2)
    half = shape[axis] // 2
    a, b = np.split(x, [half], axis=axis)
    np.testing.assert_allclose(nn.glu(x, axis), a / (1.0 + np.exp(-b)), rtol=1e-14)


@FEW
@given(
    shape=strategies.shapes(min_dims=0, max_dims=4),
    per_channel=st.booleans(),
    data=st.data(),
)
def test_prelu_grads(shape, per_channel, data):
    x = data.draw(strategies.arrays(shape, min_magnitude=0.05))
    c = shape[1] if per_channel and len(shape) > 1 else 1
    w = data.draw(strategies.arrays((c,), elements=(-1.0, 1.0)))
    check_grads(nn.prelu, (x, w), order=2)
    bw = w.reshape((1, c) + (1,) * (len(shape) - 2)) if len(shape) > 1 else w
    np.testing.assert_allclose(nn.prelu(x, w), np.where(x > 0, x, bw * x), rtol=1e-15)
    np.testing.assert_allclose(nn.prelu(x, {"weight": w}), nn.prelu(x, w))


@st.composite
def _interp_case(draw):
    nd = draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + tuple(
        draw(st.integers(1, 4)) for _ in range(nd)
    )
    mode = draw(
        st.sampled_from(
            ["nearest", "nearest-exact", "area", ("linear", "bilinear", "trilinear")[nd - 1]]
        )
    )
    kw: dict = {"mode": mode}
    if mode in ("linear", "bilinear", "trilinear"):
        kw["align_corners"] = draw(st.booleans())
    if draw(st.booleans()):
        kw["size"] = tuple(draw(st.integers(1, 6)) for _ in range(nd))
    else:
        kw["scale_factor"] = draw(st.sampled_from([0.5, 0.7, 1.0, 1.5, 2.0, 2.5, 3.0]))
        kw["recompute_scale_factor"] = draw(st.sampled_from([None, True]))
    return shape, kw


@settings(max_examples=40, deadline=None)
@given(case=_interp_case(), data=st.data())
def test_interpolate_grads(case, data):
    shape, kw = case
    x = data.draw(strategies.arrays(shape))
    try:
        out = nn.interpolate(x, **kw)
    except ValueError as e:  # a scale factor that empties an axis
        assert "greater than 0" in str(e)
        return
    assert out.shape[:2] == shape[:2]
    check_grads(lambda a: nn.interpolate(a, **kw), (x,), order=2)


# ----------------------------------------------------------------------------- primitives vs twins


def _value_and_grad_twins(f, g, x):
    cot = np.random.default_rng(1).standard_normal(x.shape).astype(x.dtype)
    for h in (f, g):
        out, vjp = fn.vjp(h, x)
        yield out, vjp(cot)[0]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    ("name", "twin"),
    [
        ("hardswish", lambda x: x * nn.hardsigmoid(x)),
        (
            "selu",
            lambda x: (
                nn.elu(x, 1.6732632423543772848170429916717) * 1.0507009873554804934193349852946
            ),
        ),
        ("celu", lambda x: fnp.maximum(x, 0.0) + fnp.minimum(0.0, 0.7 * (fnp.exp(x / 0.7) - 1.0))),
    ],
)
def test_primitives_equal_their_composed_twins(name, twin, dtype):
    x = np.random.default_rng(0).uniform(-6, 6, (7, 9)).astype(dtype)
    x = np.where(np.isin(np.round(x, 1), (-3.0, 0.0, 3.0)), x + 0.2, x)  # off the kinks
    f = ELEMENTWISE[name][0]
    (a, ga), (b, gb) = _value_and_grad_twins(f, twin, x)
    tol = 1e-12 if dtype == "float64" else 2e-6
    assert a.dtype == ga.dtype == np.dtype(dtype)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    np.testing.assert_allclose(ga, gb, rtol=tol, atol=tol)


def test_pytorch_gradients_at_the_kinks():
    def grad(f, x):
        return fn.grad(lambda a: fnp.sum(f(a)))(np.asarray(x, dtype=np.float64))

    np.testing.assert_allclose(
        grad(nn.hardswish, [-3.0, 3.0, -3.5, 3.5, 0.0]), [0.0, 1.0, 0.0, 1.0, 0.5]
    )
    np.testing.assert_allclose(grad(nn.hardsigmoid, [-3.0, 3.0, 0.0]), [0.0, 0.0, 1.0 / 6.0])
    np.testing.assert_allclose(grad(nn.selu, [0.0]), [1.6732632423543772 * 1.0507009873554805])
    np.testing.assert_allclose(grad(lambda a: nn.celu(a, 0.3), [0.0]), [1.0])
    np.testing.assert_allclose(
        fn.grad(lambda a: fnp.sum(nn.prelu(a, np.array([0.25]))))(np.zeros(3)), [0.25] * 3
    )


# ----------------------------------------------------------------------------- dtypes, errors


CALLS = {
    "hardsigmoid": (nn.hardsigmoid, (5, 6)),
    "hardswish": (nn.hardswish, (5, 6)),
    "mish": (nn.mish, (5, 6)),
    "selu": (nn.selu, (5, 6)),
    "celu": (lambda x: nn.celu(x, 2.0), (5, 6)),
    "softsign": (nn.softsign, (5, 6)),
    "softmin": (lambda x: nn.softmin(x, 0), (5, 6)),
    "glu": (nn.glu, (5, 6)),
    "prelu": (
        lambda x: nn.prelu(x, fnp.astype(backend.full((5,), 0.1, like=x), x.dtype)),
        (2, 5, 3),
    ),
    "nearest": (lambda x: nn.interpolate(x, scale_factor=1.5), (2, 3, 4, 5)),
    "nearest-exact": (lambda x: nn.interpolate(x, size=(3, 7), mode="nearest-exact"), (2, 3, 4, 5)),
    "linear": (lambda x: nn.interpolate(x, 7, mode="linear"), (2, 3, 4)),
    "bilinear": (lambda x: nn.interpolate(x, scale_factor=0.6, mode="bilinear"), (2, 3, 4, 5)),
    "trilinear": (
        lambda x: nn.interpolate(x, (3, 2, 4), mode="trilinear", align_corners=True),
        (1, 2, 2, 3, 4),
    ),
    "area": (lambda x: nn.interpolate(x, scale_factor=0.5, mode="area"), (2, 3, 4, 6)),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_float32_in_float32_out(name):
    f, shape = CALLS[name]
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    out, vjp = fn.vjp(f, x)
    assert out.dtype == np.float32, name
    (g,) = vjp(np.ones(out.shape, np.float32))
    assert g.dtype == np.float32 and g.shape == x.shape, name
    ref = f(x.astype(np.float64))
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_forward_on_strict_backend_equals_numpy(name):
    f, shape = CALLS[name]
    x = np.random.default_rng(3).standard_normal(shape)
    got = f(backend.device_put(x, "strict"))
    assert backend.backend_name(got) == "strict"
    np.testing.assert_allclose(backend.to_numpy(got), f(x), rtol=1e-13, atol=1e-15)


def test_gradient_on_strict_backend_equals_numpy():
    x = np.random.default_rng(4).standard_normal((2, 3, 4, 5))

    def loss(a):
        y = nn.interpolate(a, scale_factor=1.5, mode="bilinear")
        return fnp.sum(nn.hardswish(y) * nn.mish(y))

    got = fn.grad(loss)(backend.device_put(x, "strict"))
    np.testing.assert_allclose(backend.to_numpy(got), fn.grad(loss)(x), rtol=1e-12)


X4 = np.zeros((1, 2, 3, 4))


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (
            lambda: nn.glu(np.zeros((2, 3))),
            ValueError,
            r"glu: axis 1 of x \(shape \(2, 3\)\) has odd",
        ),
        (lambda: nn.glu(np.zeros(())), ValueError, "glu: x must have at least one dimension"),
        (lambda: nn.softmin(np.zeros(())), ValueError, "softmin: x must have at least one"),
        (lambda: nn.celu(np.zeros(3), 0.0), ValueError, "celu: alpha must be non-zero"),
        (
            lambda: nn.prelu(X4, np.ones(3)),
            ValueError,
            r"prelu: weight has 3 slopes but x \(shape \(1, 2, 3, 4\)\) has 2 channels",
        ),
        (
            lambda: nn.prelu(X4, np.ones((2, 1))),
            ValueError,
            r"weight must be a scalar or 1-D.*\(2, 1\)",
        ),
        (
            lambda: nn.prelu(X4, np.ones(2, np.float32)),
            TypeError,
            "prelu: x has dtype float64 but weight has dtype float32",
        ),
        (lambda: nn.prelu(X4, {"w": np.ones(2)}), ValueError, "prelu: params must be"),
        (
            lambda: nn.interpolate(X4, 2, mode="bicubic"),
            NotImplementedError,
            "mode 'bicubic' is not",
        ),
        (lambda: nn.interpolate(X4), ValueError, "only one of size or scale_factor"),
        (lambda: nn.interpolate(X4, 2, 2.0), ValueError, "only one of size or scale_factor"),
        (
            lambda: nn.interpolate(X4, 2, mode="linear"),
            ValueError,
            r"mode 'linear' needs a 3-D input, got shape \(1, 2, 3, 4\)",
        ),
        (
            lambda: nn.interpolate(np.zeros((2, 3)), 2),
            ValueError,
            r"must be 3-D, 4-D or 5-D.*\(2, 3\)",
        ),
        (
            lambda: nn.interpolate(X4, (2, 3, 4)),
            ValueError,
            r"size \(2, 3, 4\) has 3 entries but x has 2 spatial",
        ),
        (
            lambda: nn.interpolate(X4, scale_factor=0.1),
            ValueError,
            r"greater than 0.*\(3, 4\).*\(0, 0\)",
        ),
        (
            lambda: nn.interpolate(X4, 2, align_corners=True),
            ValueError,
            "align_corners can only be set",
        ),
        (lambda: nn.interpolate(X4, 2, recompute_scale_factor=True), ValueError, "not meaningful"),
        (
            lambda: nn.interpolate(X4, 2, mode="bilinear", antialias=True),
            NotImplementedError,
            "antialias",
        ),
        (
            lambda: nn.interpolate(X4.astype(np.int64), 2),
            TypeError,
            "x must be floating, got dtype int64",
        ),
    ],
)
def test_errors_name_the_problem(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
