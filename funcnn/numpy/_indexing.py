"""Indexing: ``x[idx]`` (basic and advanced), take, take_along_axis, and functional index updates."""

from __future__ import annotations

from typing import Any

from funcnn import backend
from funcnn import numpy as fnp
from funcnn.autodiff._core import primitive, strip
from funcnn.numpy._helpers import normalize_axis, unbroadcast

ns = backend.namespace


def _clean_index(idx: Any, like: Any) -> Any:
    """An index with boxes stripped (indices carry no gradient) and lists made arrays on ``like``'s
    backend; raises IndexError for floating index arrays."""
    if isinstance(idx, tuple):
        return tuple(_clean_index(i, like) for i in idx)
    if isinstance(idx, list):
        if not idx:
            return backend.zeros((0,), dtype="int64", like=strip(like))
        if not isinstance(idx[0], slice):
            idx = backend.asarray(idx, like=strip(like))
    idx = strip(idx)
    if isinstance(idx, float) or (backend.is_array(idx) and backend.is_floating(idx)):
        what = f"an array of dtype {idx.dtype}" if backend.is_array(idx) else f"the float {idx!r}"
        raise IndexError(
            f"index: got {what} as an index; indices must be integers, integer arrays or "
            "boolean masks (cast with fnp.astype(i, 'int64'))"
        )
    return idx


@primitive
def _getitem(x: Any, idx: Any) -> Any:
    return backend.getitem(x, idx)


_getitem.defvjp(lambda g, ans, x, idx: _index_add(fnp.zeros_like(x), g, idx=idx))


def getitem(x: Any, idx: Any) -> Any:
    """``x[idx]`` with NumPy's basic and advanced indexing (also spelled ``x[idx]`` on traced values).

    Args:
        x: array.
        idx: ints, slices, None, Ellipsis, integer arrays (or lists) and boolean masks, alone or
            in a tuple. Repeated integer indices are allowed; their gradients accumulate.
    Returns:
        ``x[idx]``, as NumPy defines it.
    """
    return _getitem(x, _clean_index(idx, x))


@primitive
def _index_add(x: Any, v: Any, idx: Any) -> Any:
    return backend.index_add(x, idx, v)


_index_add.defvjp(
    lambda g, ans, x, v, idx: g,
    lambda g, ans, x, v, idx: unbroadcast(_getitem(g, idx), v),
)


def index_add(x: Any, idx: Any, v: Any) -> Any:
    """A copy of ``x`` with ``v`` added at ``x[idx]``: the differentiable form of ``x[idx] += v``.

    Repeated indices accumulate (like ``np.add.at`` and JAX's ``x.at[idx].add(v)``).

    Args:
        x: array.
        idx: any index :func:`getitem` accepts.
        v: array (or Python scalar) broadcastable to ``x[idx].shape``.
    Returns:
        An array of ``x``'s shape and dtype; differentiable in ``x`` and ``v``.
    """
    idx = _clean_index(idx, x)
    if isinstance(v, (int, float)):
        v = backend.full((), v, dtype=strip(x).dtype, like=strip(x))
    return _index_add(x, v, idx=idx)


@primitive
def _index_update(x: Any, v: Any, idx: Any) -> Any:
    return backend.index_update(x, idx, v)


def _has_index_array(idx: Any) -> bool:
    return any(backend.is_array(i) for i in (idx if isinstance(idx, tuple) else (idx,)))


def _index_update_vjp_v(g: Any, ans: Any, x: Any, v: Any, idx: Any) -> Any:
    gv = _getitem(g, idx)
    if _has_index_array(idx):
        # With repeated indices only the write that lands (the last one) reaches the output:
        # write each position's number, read the numbers back, and keep the positions that won.
        r = strip(gv)
        n = backend.prod(tuple(r.shape))
        ids = ns(r).reshape(backend.arange(n, like=r), tuple(r.shape))
        board = backend.index_update(
            backend.full(tuple(x.shape), -1, dtype="int64", like=r), idx, ids
        )
        gv = fnp.where(backend.getitem(board, idx) == ids, gv, 0.0)
    return unbroadcast(gv, v)


_index_update.defvjp(
    lambda g, ans, x, v, idx: _index_update(g, fnp.zeros((), dtype=g.dtype, like=g), idx=idx),
    _index_update_vjp_v,
)


def index_update(x: Any, idx: Any, v: Any) -> Any:
    """A copy of ``x`` with ``x[idx] = v``: the differentiable form of item assignment.

    Args:
        x: array.
        idx: any index :func:`getitem` accepts (with repeated indices, the last write wins).
        v: array (or Python scalar) broadcastable to ``x[idx].shape``.
    Returns:
        An array of ``x``'s shape and dtype; differentiable in ``x`` (zero gradient at the
        overwritten places) and ``v`` (zero gradient for a write that a later repeated index
        overwrites, as in JAX).
    """
    idx = _clean_index(idx, x)
    if isinstance(v, (int, float)):
        v = backend.full((), v, dtype=strip(x).dtype, like=strip(x))
    return _index_update(x, v, idx=idx)


def take(x: Any, indices: Any, axis: int | None = None) -> Any:
    """Elements of ``x`` at ``indices`` along ``axis`` (of the flattened array when None).

    Args:
        x: array.
        indices: integer array (any shape; repeats allowed).
        axis: the axis to take along, or None.
    Returns:
        ``x.shape[:axis] + indices.shape + x.shape[axis + 1:]`` (``indices.shape`` when None).
    """
    if axis is None:
        return getitem(fnp.ravel(x), indices)
    axis = normalize_axis(axis, strip(x).ndim, "take")
    return getitem(x, (slice(None),) * axis + (indices,))


@primitive
def _take_along_axis(x: Any, indices: Any, axis: int) -> Any:
    return ns(x, indices).take_along_axis(x, indices, axis=axis)


def _along_index(shape: tuple, out_shape: tuple, indices: Any, axis: int) -> tuple:
    """The advanced index equivalent to ``take_along_axis(., indices, axis)`` for an ``x`` of
    ``shape`` and a result of ``out_shape`` (``x`` and ``indices`` broadcast outside ``axis``)."""
    idx = []
    nd = len(shape)
    for d in range(nd):
        if d == axis:
            idx.append(indices)
        else:
            r = backend.arange(shape[d] if shape[d] == out_shape[d] else 1, like=indices)
            idx.append(
                backend.namespace(indices).reshape(r, tuple(-1 if k == d else 1 for k in range(nd)))
            )
    return tuple(idx)


_take_along_axis.defvjp(
    lambda g, ans, x, indices, axis: index_add(
        fnp.zeros_like(x), _along_index(tuple(x.shape), tuple(g.shape), indices, axis), g
    )
)


def take_along_axis(x: Any, indices: Any, axis: int) -> Any:
    """Pick values along ``axis`` with an index array of the same rank (NumPy semantics).

    Args:
        x: array of shape ``(..., n, ...)``.
        indices: integer array of ``x``'s rank, broadcastable to ``x`` outside ``axis``.
        axis: the axis to pick along.
    Returns:
        An array of ``indices``' shape broadcast with ``x``'s outside ``axis``.
    """
    raw_i = strip(indices)
    nd = strip(x).ndim
    if not backend.is_array(raw_i) or not backend.is_integer(raw_i):
        raise IndexError(
            f"take_along_axis: indices must be an integer array, got "
            f"{getattr(raw_i, 'dtype', type(raw_i).__name__)}"
        )
    if raw_i.ndim != nd:
        raise ValueError(f"take_along_axis: indices have {raw_i.ndim} dimensions but x has {nd}")
    return _take_along_axis(x, raw_i, axis=normalize_axis(axis, nd, "take_along_axis"))


__all__ = ["getitem", "index_add", "index_update", "take", "take_along_axis"]
