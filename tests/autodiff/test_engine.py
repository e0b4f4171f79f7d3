"""Engine properties: deep graphs, memory, errors, debug_nans, backends."""

import gc
import weakref

import numpy as np
import pytest

import funcnn as fn
import funcnn.numpy as fnp
from funcnn.autodiff._core import Box, Node


def test_100k_op_chain_has_no_recursion_error():
    def f(x):
        for _ in range(100_000):
            x = x * 1.0000001
        return fnp.sum(x)

    g = fn.grad(f)(np.ones(2))
    np.testing.assert_allclose(g, 1.0000001**100_000, rtol=1e-9)


def test_no_engine_objects_survive_a_backward_pass():
    refs = []

    def f(x):
        y = fnp.tanh(x * 2.0)
        refs.append(weakref.ref(y._node))
        refs.append(weakref.ref(y))
        return fnp.sum(y * y)

    gc.collect()
    gc.disable()
    try:
        fn.grad(f)(np.ones(3))
        assert all(r() is None for r in refs), "graph objects outlived the backward pass"
        assert gc.collect() == 0, "the backward pass created reference cycles"
    finally:
        gc.enable()


def test_engine_object_count_does_not_grow():
    f = fn.grad(lambda w, x: fnp.sum(fnp.tanh(x @ w) ** 2))
    w, x = np.ones((3, 2)), np.ones((4, 3))

    def count():
        gc.collect()
        # type() rather than isinstance(): some modules' objects warn on attribute access.
        return sum(type(o) in (Box, Node) for o in gc.get_objects())

    f(w, x)
    before = count()
    for _ in range(200):
        f(w, x)
    assert count() <= before


def test_non_scalar_grad_names_the_shape():
    with pytest.raises(TypeError, match=r"scalar-output functions\. Output had shape: \(3,\)"):
        fn.grad(lambda x: x * 2.0)(np.ones(3))


@pytest.mark.parametrize("bad", [3, np.arange(3), np.array([True, False])])
def test_integer_and_boolean_inputs_are_refused(bad):
    with pytest.raises(TypeError, match="only floating inputs can be differentiated"):
        fn.grad(lambda x: fnp.sum(x * 1.0))(bad)


@pytest.mark.parametrize("argnums", [2, (0, 5), (), "0", (0, 0)])
def test_bad_argnums(argnums):
    with pytest.raises((TypeError, ValueError), match="argnums"):
        fn.grad(lambda x, y: fnp.sum(x * y), argnums=argnums)(np.ones(2), np.ones(2))


def test_mixed_backends_are_refused():
    strict = fn.backend.device_put(np.ones(2), "strict")
    with pytest.raises(TypeError, match="cannot mix arrays of two backends"):
        fnp.add(np.ones(2), strict)


def test_item_assignment_on_traced_values_points_to_index_update():
    def f(x):
        x[0] = 1.0
        return fnp.sum(x)

    with pytest.raises(TypeError, match="index_update"):
        fn.grad(f)(np.ones(2))


def test_converting_a_traced_value_to_numpy_is_refused():
    with pytest.raises(TypeError, match="stop_gradient"):
        fn.grad(lambda x: np.asarray(x).sum())(np.ones(2))


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_debug_nans_names_primitive_and_user_line():
    def f(x):
        return fnp.sum(fnp.log(x))

    with fn.debug_nans(), pytest.raises(FloatingPointError, match=r"'log'.*test_engine\.py"):
        fn.grad(f)(np.array([1.0, -1.0]))
    # off again outside the block: the NaN flows through silently, as in NumPy
    assert (
        np.isnan(fn.grad(lambda x: fnp.sum(fnp.log(x) * 0.0 + x))(np.array([1.0, -1.0]))).sum() == 0
    )


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_debug_nans_catches_cotangents():
    def f(x):
        return fnp.sum(fnp.sqrt(x))  # finite forward at 0, infinite gradient

    with fn.debug_nans(), pytest.raises(FloatingPointError, match=r"gradient of primitive 'sqrt'"):
        fn.grad(f)(np.array([0.0, 1.0]))


def test_grad_on_the_strict_backend():
    x = fn.backend.device_put(np.array([0.5, -1.0, 2.0]), "strict")
    g = fn.grad(lambda x: fnp.sum(fnp.tanh(x) * x))(x)
    assert fn.backend.backend_name(g) == "strict"
    host = fn.backend.to_numpy(g)
    xn = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(host, np.tanh(xn) + xn * (1 - np.tanh(xn) ** 2))
