"""The transforms: grad, value_and_grad, vjp, jvp, jacobian, hessian, custom_vjp, stop_gradient, checkpoint."""

from collections import namedtuple

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

import funcnn as fn
import funcnn.numpy as fnp
from funcnn.testing import check_grads, strategies


def test_nested_grad_has_no_perturbation_confusion():
    assert fn.grad(lambda x: x * fn.grad(lambda y: x * y)(3.0))(2.0) == 4.0


def test_third_derivative():
    f = lambda x: fnp.sin(x) * x**3  # noqa: E731
    d3 = fn.grad(fn.grad(fn.grad(f)))
    x = 0.7
    expected = -np.cos(x) * x**3 - 9 * np.sin(x) * x**2 + 18 * np.cos(x) * x + 6 * np.sin(x)
    np.testing.assert_allclose(d3(np.float64(x)), expected, rtol=1e-10)


def test_fourth_derivative_of_polynomial():
    d4 = fn.grad(fn.grad(fn.grad(fn.grad(lambda x: x**5))))
    np.testing.assert_allclose(d4(np.float64(2.0)), 120 * 2.0, rtol=1e-12)


def test_hessian_of_quadratic_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    f = lambda x: x @ a @ x  # noqa: E731
    np.testing.assert_allclose(fn.hessian(f)(rng.normal(size=4)), a + a.T, rtol=1e-12)


def test_jacobian_shape_and_values():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(3, 4))
    x = rng.normal(size=(2, 4))
    jac = fn.jacobian(lambda x: fnp.tanh(x @ w.T))(x)
    assert jac.shape == (2, 3, 2, 4)
    y = np.tanh(x @ w.T)
    for i in range(2):
        for j in range(3):
            expected = np.zeros((2, 4))
            expected[i] = (1 - y[i, j] ** 2) * w[j]
            np.testing.assert_allclose(jac[i, j], expected, rtol=1e-12)


@settings(max_examples=20, deadline=None)
@given(x=strategies.arrays(strategies.shapes(min_dims=1, max_dims=2)))
def test_jvp_agrees_with_vjp(x):
    f = lambda x: fnp.sum(fnp.tanh(x) * x, axis=-1) + fnp.exp(x[..., 0])  # noqa: E731
    rng = np.random.default_rng(0)
    t = rng.normal(size=x.shape)
    out, t_out = fn.jvp(f, (x,), (t,))
    _, vjp_fn = fn.vjp(f, x)
    u = rng.normal(size=np.shape(out))
    (g,) = vjp_fn(u)
    np.testing.assert_allclose(np.sum(u * t_out), np.sum(g * t), rtol=1e-9, atol=1e-12)


def test_value_and_grad_and_argnums():
    f = lambda x, y, z: fnp.sum(x * y) + z  # noqa: E731
    x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    value, (gx, gy) = fn.value_and_grad(f, argnums=(0, 1))(x, y, 5.0)
    assert value == 16.0
    np.testing.assert_array_equal(gx, y)
    np.testing.assert_array_equal(gy, x)
    np.testing.assert_array_equal(fn.grad(f, argnums=-2)(x, y, 5.0), x)


def test_has_aux():
    def f(x):
        return fnp.sum(x**2), {"norm": fnp.sqrt(fnp.sum(x**2))}

    g, aux = fn.grad(f, has_aux=True)(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(g, [6.0, 8.0])
    assert float(aux["norm"]) == 5.0
    assert not isinstance(aux["norm"], fn.autodiff.Box)  # aux comes back unboxed
    (v, aux2), g2 = fn.value_and_grad(f, has_aux=True)(np.array([3.0, 4.0]))
    assert float(v) == 25.0 and float(aux2["norm"]) == 5.0


Point = namedtuple("Point", ["x", "y"])


@attrs.define
class Params:
    weight: np.ndarray
    bias: np.ndarray
    extra: object = None


def test_pytrees_in_and_out():
    params = {
        "layers": [Params(np.ones((2, 2)), np.zeros(2)), Params(np.full((2, 2), 2.0), np.ones(2))],
        "point": Point(np.array(1.0), np.array(2.0)),
        "nothing": None,
        "pair": (np.array([1.0, -1.0]),),
    }

    def loss(p):
        total = p["point"].x * p["point"].y + fnp.sum(p["pair"][0] ** 2)
        for layer in p["layers"]:
            total = total + fnp.sum(layer.weight) * 2.0 + fnp.sum(layer.bias * 3.0)
        return total

    g = fn.grad(loss)(params)
    assert isinstance(g["layers"][0], Params) and isinstance(g["point"], Point)
    assert g["nothing"] is None
    np.testing.assert_array_equal(g["layers"][1].weight, np.full((2, 2), 2.0))
    np.testing.assert_array_equal(g["layers"][0].bias, np.full(2, 3.0))
    assert float(g["point"].x) == 2.0 and float(g["point"].y) == 1.0
    np.testing.assert_array_equal(g["pair"][0], [2.0, -2.0])


def test_vjp_with_pytree_output_and_multiple_calls():
    x = np.array([1.0, 2.0])
    out, vjp_fn = fn.vjp(lambda x: {"a": x * 2.0, "b": (fnp.sum(x),)}, x)
    np.testing.assert_array_equal(out["a"], [2.0, 4.0])
    for _ in range(2):  # the graph is kept for repeated calls
        (g,) = vjp_fn({"a": np.array([1.0, 1.0]), "b": (np.array(1.0),)})
        np.testing.assert_array_equal(g, [3.0, 3.0])


def test_output_independent_of_input_gives_zeros():
    g = fn.grad(lambda x, y: fnp.sum(y))(np.ones(3, np.float32), np.ones(2))
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g, 0.0)


def test_stop_gradient():
    f = lambda x: fnp.sum(x * fn.stop_gradient(x))  # noqa: E731
    np.testing.assert_array_equal(fn.grad(f)(np.array([1.0, 2.0])), [1.0, 2.0])
    tree = fn.stop_gradient({"a": np.array(1.0)})
    assert isinstance(tree["a"], np.ndarray)


def test_custom_vjp_replaces_the_rule():
    @fn.custom_vjp
    def clip_gradient(x):
        return x

    clip_gradient.defvjp(lambda x: (x, None), lambda res, g: (fnp.clip(g, -1.0, 1.0),))
    g = fn.grad(lambda x: fnp.sum(clip_gradient(x) * 5.0))(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(g, [1.0, 1.0])


def test_custom_vjp_pytree_arguments_and_tuple_output():
    @fn.custom_vjp
    def f(p, x):
        return p["w"] * x, p["w"] + x

    def fwd(p, x):
        return f(p, x), (p, x)

    def bwd(res, g):
        p, x = res
        g1, g2 = g
        return {"w": g1 * x + g2}, g1 * p["w"] + g2

    f.defvjp(fwd, bwd)
    p, x = {"w": np.array([2.0, 3.0])}, np.array([5.0, 7.0])

    def loss(p, x):
        a, b = f(p, x)
        return fnp.sum(a * b)

    def loss_ref(p, x):
        return fnp.sum((p["w"] * x) * (p["w"] + x))

    got = fn.grad(loss, argnums=(0, 1))(p, x)
    want = fn.grad(loss_ref, argnums=(0, 1))(p, x)
    np.testing.assert_allclose(got[0]["w"], want[0]["w"])
    np.testing.assert_allclose(got[1], want[1])


def test_custom_vjp_under_nesting():
    @fn.custom_vjp
    def square(x):
        return x * x

    square.defvjp(lambda x: (x * x, x), lambda x, g: (2.0 * x * g,))
    # the rule is written in funcnn ops, so it can be differentiated again
    np.testing.assert_allclose(fn.grad(fn.grad(lambda x: square(x)))(np.float64(3.0)), 2.0)


def test_checkpoint_gives_equal_gradients():
    rng = np.random.default_rng(2)
    w1, w2 = rng.normal(size=(5, 4)), rng.normal(size=(3, 5))
    x = rng.normal(size=(7, 4))

    def block(params, x):
        h = fnp.tanh(x @ params["w1"].T)
        return fnp.tanh(h @ params["w2"].T)

    params = {"w1": w1, "w2": w2}
    loss = lambda p, x: fnp.sum(block(p, x) ** 2)  # noqa: E731
    loss_ckpt = lambda p, x: fnp.sum(fn.checkpoint(block)(p, x) ** 2)  # noqa: E731
    g = fn.grad(loss, argnums=(0, 1))(params, x)
    gc_ = fn.grad(loss_ckpt, argnums=(0, 1))(params, x)
    np.testing.assert_allclose(gc_[0]["w1"], g[0]["w1"], rtol=1e-12)
    np.testing.assert_allclose(gc_[0]["w2"], g[0]["w2"], rtol=1e-12)
    np.testing.assert_allclose(gc_[1], g[1], rtol=1e-12)
    check_grads(lambda p, x: fn.checkpoint(block)(p, x), (params, x), order=2)


def test_checkpoint_with_integer_argument():
    def f(x, n):
        return x * n

    g = fn.grad(lambda x: fnp.sum(fn.checkpoint(f)(x, np.array(3))))(np.ones(2))
    np.testing.assert_array_equal(g, [3.0, 3.0])


@settings(max_examples=15, deadline=None)
@given(pair=strategies.broadcastable_pair(), order=hst.sampled_from([1, 2]))
def test_check_grads_on_broadcasting_composition(pair, order):
    x, y = pair
    check_grads(lambda x, y: fnp.tanh(x * y + x) - y * y, (x, y), order=order, modes=("rev", "fwd"))


def test_check_grads_reports_the_worst_element():
    def wrong(x):
        return x * fn.stop_gradient(x)  # true gradient is 2x; the engine sees x

    with pytest.raises(AssertionError, match=r"argument 0\[\d\]: analytic .* numeric"):
        check_grads(wrong, (np.array([1.0, 3.0, -2.0]),))


def test_float32_stays_float32_through_grad():
    x = np.ones((2, 3), np.float32)
    g = fn.grad(lambda x: fnp.sum(fnp.exp(x * 2.0) / 3.0 + x**2))(x)
    assert g.dtype == np.float32
    g64 = fn.grad(lambda x, y: fnp.sum(x * y), argnums=(0, 1))(x, np.ones(3))
    assert g64[0].dtype == np.float32 and g64[1].dtype == np.float64


def test_python_float_input_gives_default_float():
    g = fn.grad(lambda x: x * x)(3.0)
    assert g.dtype == np.float32 and float(g) == 6.0


# ----------------------------------------------------------------------------- review fixes


def test_checkpoint_closing_over_a_differentiated_value_gives_its_gradient():
    # a layer's parameters closed over inside grad over those parameters: d/dw sum(w * w) = 2w
    w = np.array([1.0, 2.0])
    g = fn.grad(lambda w: fnp.sum(fn.checkpoint(lambda h: h * w)(w * 1.0)))(w)
    np.testing.assert_array_equal(g, 2 * w)
    # closures over an inner trace (argument from the outer one), and over an outer trace
    inner = lambda y: fn.grad(lambda x: fn.checkpoint(lambda a: a * x * x)(y))(1.0)  # noqa: E731
    assert fn.grad(inner)(5.0) == 2.0
    outer = lambda y: fn.grad(lambda x: fn.checkpoint(lambda a: a * y * x)(x))(1.0)  # noqa: E731
    assert fn.grad(outer)(5.0) == 2.0


def test_custom_vjp_closing_over_a_differentiated_value_is_an_error():
    def f(w):
        @fn.custom_vjp
        def scale(a):
            return a * w

        scale.defvjp(lambda a: (a * w, None), lambda res, g: (g * w,))
        return fnp.sum(scale(w * 1.0))

    with pytest.raises(TypeError, match="custom_vjp scale: the function closes over"):
        fn.grad(f)(np.array([1.0, 2.0]))


def test_jacobian_and_hessian_of_pytrees_and_argnum_tuples():
    x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    jac = fn.jacobian(lambda x, y: {"p": x * y, "s": fnp.sum(x)}, argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(jac["p"][0], np.diag(y))
    np.testing.assert_array_equal(jac["p"][1], np.diag(x))
    np.testing.assert_array_equal(jac["s"][0], np.ones(2))
    assert jac["s"][1].shape == (2,) and not jac["s"][1].any()
    hess = fn.hessian(lambda x, y: fnp.sum(x * y * y), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(hess[0][0], np.zeros((2, 2)))
    np.testing.assert_array_equal(hess[0][1], np.diag(2 * y))
    np.testing.assert_array_equal(hess[1][0], np.diag(2 * y))
    np.testing.assert_array_equal(hess[1][1], np.diag(2 * x))
    h = fn.hessian(lambda p: fnp.sum(p["a"] ** 2 * p["b"]))({"a": x, "b": y})
    np.testing.assert_array_equal(h["a"]["b"], np.diag(2 * x))
    np.testing.assert_array_equal(h["b"]["b"], np.zeros((2, 2)))


def test_python_numbers_as_cotangents_tangents_and_constant_outputs():
    _, vjp_fn = fn.vjp(lambda x: x * 2.0, 3.0)
    assert vjp_fn(1.0)[0] == 2.0
    out, t = fn.jvp(lambda x: x * x, (3.0,), (1.0,))
    assert (out, t) == (9.0, 6.0)
    assert fn.grad(lambda x: fn.jvp(lambda a: a * a * x, (3.0,), (1.0,))[1])(2.0) == 6.0
    assert fn.grad(lambda x: 1.0)(3.0) == 0.0
    assert fn.grad(lambda x: [x * 2.0, "aux"], has_aux=True)(1.0) == (2.0, "aux")
