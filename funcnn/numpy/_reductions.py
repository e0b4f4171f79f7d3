"""Reductions and scans: sum mean max min prod var std logsumexp cumsum sort, arg-reductions."""

from __future__ import annotations

from typing import Any

from funcnn import backend
from funcnn import numpy as fnp
from funcnn.autodiff._core import nondiff_primitive, primitive, strip
from funcnn.numpy._elementwise import logical_and, where
from funcnn.numpy._helpers import axes_tuple, normalize_axis
from funcnn.numpy._shape import _broadcast_to

ns = backend.namespace


def _keep_shape(shape: tuple, axes: tuple) -> tuple:
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _restore(g: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    """Broadcast a reduction's cotangent back to the input's shape."""
    shape = tuple(x.shape)
    if not keepdims:
        g = fnp.reshape(g, _keep_shape(shape, axes_tuple(axis, len(shape), "sum")))
    # the shapes are known to broadcast: the primitive, without broadcast_to's checks
    return g if tuple(g.shape) == shape else _broadcast_to(g, shape)


@primitive
def sum(x: Any, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> Any:  # noqa: A001
    """Sum over ``axis`` (an int, a tuple, or None for all)."""
    xp = ns(x)
    if dtype is not None:
        x = xp.astype(x, backend.resolve_dtype(xp, dtype))
    elif not backend.is_floating(x) and x.dtype != xp.int64:
        x = xp.astype(x, xp.int64)
    try:
        return xp.sum(x, axis=axis, keepdims=keepdims)
    except (ValueError, IndexError, TypeError):
        axes_tuple(axis, x.ndim, "sum")  # a clear error for a bad axis
        raise


def _sum_vjp(
    g: Any, ans: Any, x: Any, axis: Any = None, keepdims: bool = False, dtype: Any = None
) -> Any:
    g = _restore(g, x, axis, keepdims)
    return g if g.dtype == x.dtype else fnp.astype(g, x.dtype)


sum.defvjp(_sum_vjp)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Mean over ``axis``."""
    shape = strip(x).shape
    n = backend.prod([shape[a] for a in axes_tuple(axis, len(shape), "mean")])
    return sum(x, axis=axis, keepdims=keepdims) * (1.0 / n if n else float("nan"))


def _extreme(name: str) -> Any:
    def f(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        if strip(x).size == 0:
            raise ValueError(
                f"{name}: zero-size array has no {name}imum (got shape {tuple(x.shape)})"
            )
        try:
            return getattr(ns(x), name)(x, axis=axis, keepdims=keepdims)
        except (ValueError, IndexError, TypeError):
            axes_tuple(axis, x.ndim, name)  # a clear error for a bad axis
            raise

    f.__name__ = name
    f.__doc__ = (
        f"{name.capitalize()}imum over ``axis``; ties share the gradient evenly (like torch.amax)."
    )
    prim = primitive(f)

    def rule(g: Any, ans: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        shape = tuple(x.shape)
        axes = axes_tuple(axis, len(shape), name)
        full = ans if keepdims else fnp.reshape(ans, _keep_shape(shape, axes))
        mask = fnp.astype(x == full, x.dtype)
        count = sum(mask, axis=axes, keepdims=True)
        return _restore(g, x, axis, keepdims) * mask / count

    prim.defvjp(rule)
    return prim


max = _extreme("max")  # noqa: A001
min = _extreme("min")  # noqa: A001
amax, amin = max, min


@primitive
def prod(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Product over ``axis`` (an int, a tuple, or None for all).

    The gradient is the product of the other elements, also where ``x`` holds zeros (like
    PyTorch); second derivatives are exact away from zeros.
    """
    try:
        return ns(x).prod(x, axis=axis, keepdims=keepdims)
    except (ValueError, IndexError, TypeError):
        axes_tuple(axis, x.ndim, "prod")  # a clear error for a bad axis
        raise


def _prod_vjp(g: Any, ans: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    # d prod / d x_i = prod of the others: ans / x_i when there is no zero; with exactly one
    # zero, the product of the non-zero elements at the zero and 0 elsewhere; else 0.
    g = _restore(g, x, axis, keepdims)
    zero = x == 0
    if not bool(fnp.any(zero)):
        return g * _restore(ans, x, axis, keepdims) / x
    safe = where(zero, 1.0, x)
    others = _restore(prod(safe, axis=axis, keepdims=True), x, axis, True)
    n_zero = _restore(sum(fnp.astype(zero, x.dtype), axis=axis, keepdims=True), x, axis, True)
    no_zero = n_zero == 0
    only_zero = logical_and(zero, n_zero == 1)
    return g * where(no_zero, others / safe, where(only_zero, others, 0.0))


prod.defvjp(_prod_vjp)


def var(x: Any, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Any:
    """Variance over ``axis`` with ``ddof`` (NumPy's default 0; PyTorch's unbiased is ddof=1).

    Args:
        x: array.
        axis: an int, a tuple of ints, or None for all axes.
        ddof: the divisor is ``n - ddof`` (``torch.var(correction=c)`` is ``ddof=c``).
        keepdims: keep the reduced axes with length 1.
    Returns:
        ``x``'s shape without the reduced axes. Where ``n <= ddof`` the divisor is 0, as in
        NumPy and PyTorch: inf (NaN where every element equals the mean).
    """
    return _var(x, axis, ddof, keepdims, "var")


def _var(x: Any, axis: Any, ddof: int, keepdims: bool, name: str) -> Any:
    shape = strip(x).shape
    n = backend.prod([shape[a] for a in axes_tuple(axis, len(shape), name)])
    centered = x - mean(x, axis=axis, keepdims=True)
    scale = 1.0 / (n - ddof) if n > ddof else float("inf")
    return sum(centered * centered, axis=axis, keepdims=keepdims) * scale


def std(x: Any, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Any:
    """Standard deviation over ``axis`` with ``ddof``: ``sqrt(var(x, axis, ddof))``.

    Where the standard deviation is 0 (constant input) its gradient is 0, like PyTorch's,
    rather than the NaN a plain square root would give.
    """
    return _std_sqrt(_var(x, axis, ddof, keepdims, "std"))


@primitive
def _std_sqrt(v: Any) -> Any:
    return ns(v).sqrt(v)


def _std_sqrt_vjp(g: Any, ans: Any, v: Any) -> Any:
    zero = ans == 0
    return where(zero, 0.0, g * 0.5 / where(zero, 1.0, ans))


_std_sqrt.defvjp(_std_sqrt_vjp)


@primitive
def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """``log(sum(exp(x)))`` over ``axis``, computed stably (shifted by the max)."""
    xp = ns(x)
    axes = axes_tuple(axis, x.ndim, "logsumexp")
    m = xp.max(x, axis=axes, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0.0)
    out = xp.log(xp.sum(xp.exp(x - m), axis=axes, keepdims=True)) + m
    if not keepdims:
        out = xp.reshape(out, tuple(s for i, s in enumerate(x.shape) if i not in axes))
    return out


def _logsumexp_vjp(g: Any, ans: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    shape = tuple(x.shape)
    axes = axes_tuple(axis, len(shape), "logsumexp")
    full = ans if keepdims else fnp.reshape(ans, _keep_shape(shape, axes))
    return _restore(g, x, axis, keepdims) * fnp.exp(x - full)


logsumexp.defvjp(_logsumexp_vjp)


@primitive
def cumsum(x: Any, axis: int | None = None) -> Any:
    """Cumulative sum along ``axis`` (None: over the flattened array)."""
    xp = ns(x)
    if axis is None:
        return xp.cumulative_sum(xp.reshape(x, (-1,)), axis=0)
    return xp.cumulative_sum(x, axis=normalize_axis(axis, x.ndim, "cumsum"))


def _cumsum_vjp(g: Any, ans: Any, x: Any, axis: int | None = None) -> Any:
    if axis is None:
        return fnp.reshape(fnp.flip(cumsum(fnp.flip(g, 0), 0), 0), tuple(x.shape))
    return fnp.flip(cumsum(fnp.flip(g, axis), axis), axis)


cumsum.defvjp(_cumsum_vjp)


@nondiff_primitive
def argmax(x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
    """Index of the maximum (int64, no gradient)."""
    try:
        return ns(x).argmax(x, axis=axis, keepdims=keepdims)
    except (ValueError, IndexError, TypeError):
        axes_tuple(axis, x.ndim, "argmax")  # a clear error for a bad axis
        raise


@nondiff_primitive
def argmin(x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
    """Index of the minimum (int64, no gradient)."""
    try:
        return ns(x).argmin(x, axis=axis, keepdims=keepdims)
    except (ValueError, IndexError, TypeError):
        axes_tuple(axis, x.ndim, "argmin")  # a clear error for a bad axis
        raise


@nondiff_primitive
def argsort(x: Any, axis: int = -1, stable: bool = True) -> Any:
    """Indices that sort ``x`` along ``axis`` (no gradient)."""
    try:
        return ns(x).argsort(x, axis=axis, stable=stable)
    except (ValueError, IndexError, TypeError):
        axes_tuple(axis, x.ndim, "argsort")  # a clear error for a bad axis
        raise


def sort(x: Any, axis: int | None = -1) -> Any:
    """Sorted copy along ``axis`` (of the flattened array when None, as in NumPy); the gradient
    flows back to each element's original place."""
    if axis is None:
        x, axis = fnp.ravel(x), -1
    return fnp.take_along_axis(x, argsort(x, axis=axis), axis=axis)


@nondiff_primitive
def all(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    """True where every element along ``axis`` is true."""
    return ns(x).all(x, axis=axis, keepdims=keepdims)


@nondiff_primitive
def any(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    """True where some element along ``axis`` is true."""
    return ns(x).any(x, axis=axis, keepdims=keepdims)


__all__ = [
    "sum",
    "mean",
    "max",
    "min",
    "amax",
    "amin",
    "prod",
    "var",
    "std",
    "logsumexp",
    "cumsum",
    "argmax",
    "argmin",
    "argsort",
    "sort",
    "all",
    "any",
]
