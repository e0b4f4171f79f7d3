"""Engine properties: deep graphs, memory, errors, debug_nans, backends."""

import gc
import weakref

import numpy as np
import pytest

import funcnn as fn
import funcnn.numpy as fnp
from funcnn.autodiff._core import Box, Node


def test_100k_op_chain_has_no_recursion_error_and_leaves_nothing_behind():
    refs = []

    def f(x):
        for i in range(100_000):
            x = x * 1.0000001
            if i % 20_000 == 0:
                refs.extend([weakref.ref(x), weakref.ref(x._node), weakref.ref(x._value)])
        return fnp.sum(x)

    gc.collect()
    gc.disable()
    try:
        g = fn.grad(f)(np.ones(2))
        assert len(refs) == 15 and all(r() is None for r in refs), "the chain outlived backward"
        assert gc.collect() == 0, "the chain holds reference cycles"
    finally:
        gc.enable()
    np.testing.assert_allclose(g, 1.0000001**100_000, rtol=1e-9)


def test_a_100k_op_chain_that_is_never_differentiated_is_freed():
    """Dropping a deep graph without a backward pass neither overflows the stack nor leaks."""
    gc.collect()
    gc.disable()
    try:
        out, vjp_fn = fn.vjp(lambda x: fnp.sum(_chain(x, 100_000)), np.ones(2))
        ref = weakref.ref(vjp_fn)
        del vjp_fn
        assert ref() is None and gc.collect() == 0
    finally:
        gc.enable()
    assert out == 2.0


def _chain(x, n):
    for _ in range(n):
        x = x * 1.0
    return x


@fn.primitive(multiple_results=True)
def _sincos(x):
    xp = fn.backend.namespace(x)
    return xp.sin(x), xp.cos(x)


_sincos.defvjp_joint(lambda g, ans, argnums, x: [g[0] * fnp.cos(x) - g[1] * fnp.sin(x)])


@fn.custom_vjp
def _square(x):
    return x * x


_square.defvjp(lambda x: (x * x, x), lambda x, g: (2.0 * x * g,))


def test_no_graph_object_of_any_kind_survives_and_no_cycles():
    """Weak references to the boxes, nodes and residual arrays of every kind of node (binary
    with broadcasting, fan-out, multiple results, custom_vjp, checkpoint, a nested grad)."""
    refs = []

    def track(*boxes):
        for b in boxes:
            if isinstance(b, Box):  # (check_grads also calls f on plain arrays)
                refs.extend([weakref.ref(b), weakref.ref(b._node), weakref.ref(b._value)])

    def f(x, w):
        h = fnp.tanh(x @ w + 0.5)  # (3, 4) @ (4, 2) + scalar
        s, c = _sincos(h)
        track(h, s, c)
        y = s * c + _square(h) * h  # fan-out of h
        z = fn.checkpoint(lambda t: fnp.sin(t) * t)(y)
        inner = fn.grad(lambda v: fnp.sum(v * v * z[0, 0]))(w)  # differentiated again
        track(y, z, inner)
        return fnp.sum(z) + fnp.sum(inner * inner)

    x, w = np.linspace(-1, 1, 12).reshape(3, 4), np.linspace(0.5, -0.5, 8).reshape(4, 2)
    fn.testing.check_grads(f, (x, w), order=1)
    refs.clear()
    gc.collect()
    gc.disable()
    try:
        gx, gw = fn.grad(f, argnums=(0, 1))(x, w)
        assert len(refs) == 18
        alive = [str(r()) for r in refs if r() is not None]
        assert not alive, f"graph objects outlived the backward pass: {alive}"
        assert gc.collect() == 0, "the backward pass created reference cycles"
    finally:
        gc.enable()
    assert gx.shape == x.shape and gw.shape == w.shape


def test_residuals_and_cotangents_are_freed_as_soon_as_used():
    """Mid-way through the backward pass, the residuals and cotangents of the nodes already
    processed are gone (only the output, which the caller still holds, is left)."""
    residuals, cotangents, seen_at_probe = [], [], []

    @fn.primitive
    def probe(x):
        return x * 1.0

    def probe_rule(g, ans, x):
        cotangents.append(weakref.ref(g))
        if len(cotangents) == 4:  # the first probe of the chain: the last one to run
            alive = [r() is not None for r in residuals[:-1]] + [
                r() is not None for r in cotangents[:-1]
            ]
            seen_at_probe.append(alive)
        return g * 1.0

    probe.defvjp(probe_rule)

    def f(x):
        y = probe(x)
        for _ in range(3):
            y = fnp.tanh(y)
            residuals.append(weakref.ref(y._value))
            y = probe(y)
            residuals.append(weakref.ref(y._value))
        return fnp.sum(y)

    fn.grad(f)(np.linspace(-1.0, 1.0, 5))
    assert seen_at_probe == [[False] * 8], seen_at_probe


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


def test_backward_takes_any_object_with_a_vjp_method_as_a_nodes_primitive():
    """funcnn_modules.autograd.grad swaps a node's primitive for a stand-in that records the
    cotangent reaching it and defers to the primitive's ``vjp``; the engine needs nothing more."""
    from funcnn.autodiff._core import backward, new_trace

    class Recorder:
        def __init__(self, prim):
            self.prim, self.name, self.seen = prim, prim.name, []

        def vjp(self, g, node):
            self.seen.append(g)
            return self.prim.vjp(g, node)

    x = Box(np.array([1.0, 2.0]), new_trace(), Node.leaf())
    y = x * 3.0
    z = fnp.sum(y * y)
    rec = y._node.prim = Recorder(y._node.prim)
    leaves = backward([(z._node, np.array(1.0))])
    np.testing.assert_allclose(rec.seen[0], [6.0, 12.0])
    np.testing.assert_allclose(leaves[x._node], [18.0, 36.0])


def test_traced_arrays_passed_by_name_are_differentiated():
    from funcnn import nn
    from funcnn.autodiff._core import primitive

    x = np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(fn.grad(lambda h: fnp.sum(nn.relu(x=h)))(x), [1.0, 0.0, 1.0])
    np.testing.assert_allclose(fn.grad(lambda h: fnp.sum(fnp.exp(x=h)))(x), np.exp(x))
    np.testing.assert_allclose(
        fn.grad(lambda h: fnp.sum(fnp.tanh(x=h) * 2.0))(x), 2 / np.cosh(x) ** 2
    )

    @primitive
    def scale(x, *, factor):
        return x * factor

    scale.defvjp(lambda g, ans, x, *, factor: g * factor)
    with pytest.raises(TypeError, match="scale: argument 'factor' is being differentiated"):
        fn.grad(lambda f: fnp.sum(scale(x, factor=f)))(2.0)


def test_a_misspelled_keyword_holding_a_traced_array_is_pythons_error():
    with pytest.raises(TypeError, match="unexpected keyword argument 'x2'"):
        fn.grad(lambda h: fnp.sum(fnp.add(h, x2=h)))(np.ones(2))
