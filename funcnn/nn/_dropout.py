"""Dropout: zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from funcnn import backend
from funcnn import random as frandom
from funcnn.autodiff._core import strip

__all__ = ["dropout", "dropout_mask"]


def _check_p(fn: str, p: Any) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{fn}: dropout probability has to be between 0 and 1, but got {p!r}")
    return float(p)


def dropout_mask(
    key: Any, shape: Sequence[int], p: float, dtype: Any = None, like: Any = None
) -> Any:
    """The scaled keep-mask of inverted dropout: ``1 / (1 - p)`` with probability ``1 - p``, else 0.

    Args:
        key: a key from ``funcnn.random``.
        shape: the mask's shape.
        p: the drop probability, in [0, 1) (p == 1 gives zeros).
        dtype: the mask's floating dtype (the default float dtype when None).
        like: an array whose backend (and device) the mask goes on; the default backend when None.
    Returns:
        an array of ``shape`` and ``dtype``; ``x * mask`` is dropout of ``x``.
    """
    fn = "dropout_mask"
    p = _check_p(fn, p)
    like = strip(like)
    xp = backend.namespace(like)
    dt = backend.resolve_dtype(xp, dtype if dtype is not None else backend.default_float_dtype(xp))
    if p == 1.0:
        return backend.zeros(tuple(shape), dtype=dt, like=like)
    # p as a 0-d array on like's backend, so the draw lands there
    keep_p = backend.full((), 1.0 - p, dtype="float64", like=like)
    keep = frandom.bernoulli(key, keep_p, tuple(shape))
    mask = xp.astype(keep, dt)
    mask /= 1.0 - p  # divided, not multiplied by 1 / (1 - p): PyTorch's rounding
    return mask


def dropout(key: Any, x: Any, p: float = 0.5, training: bool = True) -> Any:
    """Inverted dropout: each element zeroed with probability ``p``, the rest scaled by 1 / (1 - p).

    The identity when ``training`` is False or ``p == 0``; zeros (times ``x``, so NaN stays NaN,
    as in PyTorch) when ``p == 1``. The gradient is the same mask times the cotangent.

    Args:
        key: a key from ``funcnn.random`` (use a new one for every call: ``split`` it).
        x: any shape, floating.
        p: the drop probability, in [0, 1].
        training: apply dropout only when True.
    Returns:
        same shape and dtype as ``x``.

    See also: ``dropout_mask``; ``funcnn_modules.nn.Dropout``.
    """
    p = _check_p("dropout", p)
    if not training or p == 0.0:
        return x
    raw = strip(x)
    if not backend.is_floating(raw):
        raise TypeError(f"dropout: x must be a floating array, got dtype {raw.dtype}")
    if p == 1.0:
        return x * 0.0
    return x * dropout_mask(key, tuple(raw.shape), p, dtype=raw.dtype, like=raw)
