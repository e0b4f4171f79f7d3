"""Bad input to funcnn.numpy ops raises a clear error naming the op, what it got and what it needs."""

from __future__ import annotations

import numpy as np
import pytest

import funcnn as fn
import funcnn.numpy as fnp

X = np.ones((2, 3))


def _strict(x: np.ndarray) -> object:
    return fn.backend.device_put(x, "strict")


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize(
    "shape, match",
    [
        (
            (4, 2),
            r"reshape: cannot reshape an array of shape \(2, 3\) \(6 elements\) into shape \(4, 2\)",
        ),
        ((-1, -1), r"reshape: .*shape \(-1, -1\)"),
        ((4, -1), r"reshape: .*\(2, 3\).*\(4, -1\)"),
    ],
)
def test_bad_reshape(shape: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fnp.reshape(X, shape)
    with pytest.raises(ValueError, match=match):  # on traced values and through the method
        fn.grad(lambda x: fnp.sum(x.reshape(shape)))(X)


@pytest.mark.parametrize(
    "a_shape, b_shape",
    [((2, 3), (2, 3)), ((4,), (3, 2)), ((5, 2, 3), (5, 4, 2)), ((2, 3), (4,)), ((), (2, 3))],
)
def test_matmul_mismatch_names_both_shapes(a_shape: tuple, b_shape: tuple) -> None:
    a, b = np.ones(a_shape), np.ones(b_shape)
    pattern = rf"matmul: .*{a_shape!r}.*{b_shape!r}".replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(ValueError, match=pattern):
        fnp.matmul(a, b)
    if a_shape:
        with pytest.raises(ValueError, match=pattern):  # the @ operator on a traced value
            fn.grad(lambda x: fnp.sum(x @ b))(a)
    with pytest.raises(ValueError, match=pattern):  # the same on the strict backend
        fnp.matmul(_strict(a), _strict(b))


def test_dot_and_einsum_mismatch_name_the_shapes() -> None:
    with pytest.raises(ValueError, match=r"dot: shapes \(2, 3\) and \(2, 3\) do not align"):
        fnp.dot(X, X)
    with pytest.raises(
        ValueError, match=r"einsum: subscript 'j' of 'ij,jk->ik' has length 3 .* but 2"
    ):
        fnp.einsum("ij,jk->ik", X, X)
    with pytest.raises(
        ValueError, match=r"einsum: subscripts 'ijk' do not match an operand of shape \(2, 3\)"
    ):
        fnp.einsum("ijk->i", X)
    with pytest.raises(ValueError, match=r"tensordot: shapes \(2, 3\) and \(2, 3\) do not align"):
        fnp.tensordot(X, X, axes=([1], [0]))


@pytest.mark.parametrize(
    "op, args",
    [
        (fnp.add, (X, np.ones(4))),
        (fnp.multiply, (X, np.ones((3, 2)))),
        (fnp.divide, (np.ones((4, 2, 3)), np.ones((4, 3)))),
        (fnp.maximum, (X, np.ones(2))),
    ],
)
def test_shapes_that_do_not_broadcast(op: object, args: tuple) -> None:
    shapes = ", ".join(str(a.shape) for a in args).replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(
        ValueError, match=rf"{op.__name__}: operands of shapes {shapes} do not broadcast"
    ):
        op(*args)
    with pytest.raises(
        ValueError, match=rf"{op.__name__}: operands of shapes {shapes} do not broadcast"
    ):
        op(*_strict(args))


def test_other_shape_errors() -> None:
    with pytest.raises(
        ValueError, match=r"broadcast_to: cannot broadcast shape \(2, 3\) to \(4, 3\)"
    ):
        fnp.broadcast_to(X, (4, 3))
    with pytest.raises(
        ValueError, match=r"concatenate: shapes \[\(2, 3\), \(3, 3\)\] differ outside axis 1"
    ):
        fnp.concatenate([X, np.ones((3, 3))], axis=1)
    with pytest.raises(ValueError, match=r"stack: all arrays must have the same shape"):
        fnp.stack([X, X.T])
    with pytest.raises(
        ValueError, match=r"split: an axis of length 3 does not split into 2 equal sections"
    ):
        fnp.split(X, 2, axis=1)
    with pytest.raises(ValueError, match=r"squeeze: cannot squeeze axis 0 of length 2"):
        fnp.squeeze(X, 0)
    with pytest.raises(ValueError, match=r"transpose: axes \(0, 0\) are not a permutation"):
        fnp.transpose(X, (0, 0))
    with pytest.raises(ValueError, match=r"pad: pad_width .* does not fit an array of dimension 2"):
        fnp.pad(X, ((1, 1),) * 3)
    with pytest.raises(ValueError, match=r"take_along_axis: indices have 1 dimensions but x has 2"):
        fnp.take_along_axis(X, np.zeros(3, dtype=np.int64), axis=1)


# ----------------------------------------------------------------------------- axes


@pytest.mark.parametrize(
    "op",
    [
        fnp.sum,
        fnp.mean,
        fnp.max,
        fnp.min,
        fnp.prod,
        fnp.var,
        fnp.std,
        fnp.logsumexp,
        fnp.cumsum,
        fnp.argmax,
        fnp.argmin,
        fnp.argsort,
        fnp.sort,
        fnp.flip,
        fnp.expand_dims,
        fnp.squeeze,
    ],
)
@pytest.mark.parametrize("axis", [2, -3])
def test_bad_axis_names_the_op(op: object, axis: int) -> None:
    name = op.__name__
    nd = 3 if name == "expand_dims" else 2  # expand_dims' axis indexes the result
    bad = (
        axis + 1
        if name == "expand_dims" and axis > 0
        else axis - 1
        if name == "expand_dims"
        else axis
    )
    with pytest.raises(
        ValueError, match=rf"{name}: axis {bad} is out of bounds for an array of dimension {nd}"
    ):
        op(X, axis=bad)
    with pytest.raises(ValueError, match=rf"{name}: axis {bad} is out of bounds"):
        op(_strict(X), axis=bad)


def test_bad_axis_in_shape_ops() -> None:
    with pytest.raises(ValueError, match=r"swapaxes: axis 2 is out of bounds"):
        fnp.swapaxes(X, 0, 2)
    with pytest.raises(ValueError, match=r"moveaxis: axis -3 is out of bounds"):
        fnp.moveaxis(X, -3, 0)
    with pytest.raises(ValueError, match=r"concatenate: axis 2 is out of bounds"):
        fnp.concatenate([X, X], axis=2)
    with pytest.raises(ValueError, match=r"take: axis 5 is out of bounds"):
        fnp.take(X, np.array([0]), axis=5)
    with pytest.raises(ValueError, match=r"norm: axis 2 is out of bounds"):
        fnp.linalg.norm(X, axis=2)


# ----------------------------------------------------------------------------- indexing


def test_item_assignment_on_a_traced_value_points_to_index_update() -> None:
    def f(x: object) -> object:
        x[0] = 1.0
        return fnp.sum(x)

    with pytest.raises(
        TypeError, match=r"x\[idx\] = v.*fnp.index_update\(x, idx, v\).*fnp.index_add"
    ):
        fn.grad(f)(X)


@pytest.mark.parametrize(
    "idx",
    [np.array([0.0, 1.0]), (slice(None), np.array([1.5])), 1.0, [0.0, 1.0]],
    ids=["float array", "float array in a tuple", "float", "list of floats"],
)
def test_float_indices_are_refused(idx: object) -> None:
    with pytest.raises(IndexError, match=r"index: got .* as an index; indices must be integers"):
        fnp.getitem(X, idx)
    with pytest.raises(IndexError, match=r"index: got .* as an index"):
        fn.grad(lambda x: fnp.sum(x[idx]))(X)
    with pytest.raises(IndexError, match=r"index: got .* as an index"):
        fnp.index_add(X, idx, 1.0)
    with pytest.raises(IndexError, match=r"index: got .* as an index"):
        fnp.index_update(X, idx, 1.0)


def test_float_indices_refused_by_take() -> None:
    with pytest.raises(IndexError, match=r"index: got an array of dtype float64"):
        fnp.take(X, np.array([0.0]), axis=1)
    with pytest.raises(
        IndexError, match=r"take_along_axis: indices must be an integer array, got float64"
    ):
        fnp.take_along_axis(X, np.zeros((2, 1)), axis=1)


def test_out_of_range_index() -> None:
    with pytest.raises(IndexError):
        fnp.getitem(X, (0, 5))
    with pytest.raises(IndexError):
        fn.grad(lambda x: fnp.sum(x[np.array([3])]))(X)


# ----------------------------------------------------------------------------- backends and dtypes

MIXED = r"cannot mix arrays of two backends in one op: got a (numpy|strict) array and a (strict|numpy) array"


@pytest.mark.parametrize(
    "op",
    [
        lambda a, b: fnp.add(a, b),
        lambda a, b: fnp.subtract(b, a),
        lambda a, b: fnp.multiply(a, b),
        lambda a, b: fnp.divide(a, b),
        lambda a, b: fnp.power(a, b),
        lambda a, b: fnp.maximum(a, b),
        lambda a, b: fnp.where(a > 0, a, b),
        lambda a, b: fnp.clip(a, b, 2.0),
        lambda a, b: fnp.matmul(a, fnp.transpose(b)),
        lambda a, b: fnp.concatenate([a, b]),
        lambda a, b: fnp.stack([b, a]),
        lambda a, b: fnp.einsum("ij,ij->i", a, b),
        lambda a, b: fnp.index_add(a, slice(None), b),
    ],
    ids=[
        "add",
        "subtract",
        "multiply",
        "divide",
        "power",
        "maximum",
        "where",
        "clip",
        "matmul",
        "concatenate",
        "stack",
        "einsum",
        "index_add",
    ],
)
def test_mixed_backends_in_one_op(op: object) -> None:
    a, b = X, _strict(X)
    with pytest.raises(TypeError, match=MIXED):
        op(a, b)
    with pytest.raises(TypeError, match=MIXED):
        op(b, a)
    with pytest.raises(TypeError, match=MIXED):  # traced
        fn.grad(lambda t: fnp.sum(op(t, b)))(a)


def test_clip_needs_a_bound() -> None:
    with pytest.raises(ValueError, match="clip: at least one of a_min and a_max must be given"):
        fnp.clip(X)


def test_unsupported_options_say_so() -> None:
    with pytest.raises(NotImplementedError, match="pad: mode 'mean' is not supported"):
        fnp.pad(X, 1, mode="mean")
    with pytest.raises(ValueError, match="pad: mode 'reflect' cannot extend axis 1 of length 0"):
        fnp.pad(np.ones((2, 0)), 1, mode="reflect")
    with pytest.raises(NotImplementedError, match="norm: matrix norm ord=2 needs singular values"):
        fnp.linalg.norm(X, ord=2)
    with pytest.raises(ValueError, match="norm: ord='fro' is a matrix norm"):
        fnp.linalg.norm(X, ord="fro", axis=1)
    with pytest.raises(
        ValueError, match=r"norm: ord=1 with axis=None needs a 1-D or 2-D array, got 3"
    ):
        fnp.linalg.norm(np.ones((2, 2, 2)), ord=1)
    with pytest.raises(TypeError, match="repeat: repeats must be an int or a sequence of ints"):
        fnp.repeat(X, 1.5)
    with pytest.raises(ValueError, match=r"repeat: 3 repeat counts for an axis of length"):
        fnp.repeat(X, [1, 2, 3], axis=0)
    with pytest.raises(ValueError, match="repeat: repeats must be >= 0, got -1"):
        fnp.repeat(X, -1)


def test_gradient_of_integer_results_is_cut() -> None:
    """A cast to an integer dtype, and every non-differentiable op, gives a constant."""
    x = np.array([0.4, 1.6, -2.2])
    g = fn.grad(lambda t: fnp.sum(fnp.astype(fnp.astype(t * 3.0, "int64"), t.dtype) + t))(x)
    np.testing.assert_array_equal(g, np.ones(3))
    g = fn.grad(lambda t: fnp.sum(fnp.floor(t) * t + fnp.astype(fnp.argmax(t), t.dtype)))(x)
    np.testing.assert_array_equal(g, np.floor(x))
