"""Array creation (no gradient): zeros ones full arange eye zeros_like ones_like full_like asarray."""

from __future__ import annotations

from typing import Any

from funcnn import backend
from funcnn.autodiff._core import strip


def zeros(shape: Any, dtype: Any = None, like: Any = None) -> Any:
    """Zeros of ``shape`` (default float dtype), on the backend of ``like`` or the default backend."""
    return backend.zeros(shape, dtype=dtype, like=strip(like))


def ones(shape: Any, dtype: Any = None, like: Any = None) -> Any:
    """Ones of ``shape``."""
    return backend.full(shape, 1, dtype=dtype, like=strip(like))


def full(shape: Any, fill_value: Any, dtype: Any = None, like: Any = None) -> Any:
    """An array of ``shape`` filled with ``fill_value``."""
    return backend.full(shape, fill_value, dtype=dtype, like=strip(like))


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None, like: Any = None) -> Any:
    """Evenly spaced values in ``[start, stop)`` (int64 for integer arguments)."""
    if stop is None:
        start, stop = 0, start
    return backend.arange(start, stop, step, dtype=dtype, like=strip(like))


def eye(n: int, m: int | None = None, k: int = 0, dtype: Any = None, like: Any = None) -> Any:
    """A 2-D array with ones on the ``k``-th diagonal."""
    return backend.eye(n, m, k=k, dtype=dtype, like=strip(like))


def zeros_like(x: Any, dtype: Any = None) -> Any:
    """Zeros with the shape, dtype and backend of ``x``."""
    r = strip(x)
    return backend.zeros(tuple(r.shape), dtype=r.dtype if dtype is None else dtype, like=r)


def ones_like(x: Any, dtype: Any = None) -> Any:
    """Ones with the shape, dtype and backend of ``x``."""
    r = strip(x)
    return backend.full(tuple(r.shape), 1, dtype=r.dtype if dtype is None else dtype, like=r)


def full_like(x: Any, fill_value: Any, dtype: Any = None) -> Any:
    """``fill_value`` with the shape, dtype and backend of ``x``."""
    r = strip(x)
    return backend.full(
        tuple(r.shape), fill_value, dtype=r.dtype if dtype is None else dtype, like=r
    )


def asarray(x: Any, dtype: Any = None, like: Any = None) -> Any:
    """An array from data (nested lists, scalars or arrays); no gradient flows through it.

    Python floats become the default float dtype (float32). An array stays on its backend
    unless ``like`` names another; other data goes to ``like``'s backend (or the default one).
    """
    raw = strip(x)
    if like is None and backend.is_array(raw):
        like = raw
    return backend.asarray(raw, dtype=dtype, like=strip(like))


array = asarray

__all__ = [
    "zeros",
    "ones",
    "full",
    "arange",
    "eye",
    "zeros_like",
    "ones_like",
    "full_like",
    "asarray",
    "array",
]
