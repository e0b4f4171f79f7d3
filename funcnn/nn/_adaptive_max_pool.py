"""Adaptive max pooling over N C (D) H W to a fixed output size, with PyTorch's bins.

Output element i (per spatial axis) is the maximum over the bin
``[floor(i * S / out), ceil((i + 1) * S / out))``. A maximum over a box is a maximum over each of
its axes in turn, so the pool is separable: the last spatial axis is reduced first, then the one
before it, and so on. Along one axis the first maximum of each bin is located on the raw values
(an ``argmax`` over the bins' elements, gathered into an (..., out, k) block) and picked with
``fnp.take_along_axis``, so the engine supplies the gradient, at every order: each output's
cotangent goes to the one element it was read from. Reducing the last axis first makes that
element the first maximum of the bin in row-major order, the one PyTorch's kernel picks.
"""

from __future__ import annotations

from typing import Any

from funcnn import backend
from funcnn import numpy as fnp
from funcnn.autodiff._core import strip
from funcnn.nn._pool import adaptive_geometry

__all__ = ["adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d"]

ns = backend.namespace


def _bins(length: int, out: int) -> tuple[list[int], list[int]]:
    """PyTorch's adaptive bins: starts ``floor(i * L / out)``, ends ``ceil((i + 1) * L / out)``."""
    starts = [(i * length) // out for i in range(out)]
    ends = [-((-(i + 1) * length) // out) for i in range(out)]
    return starts, ends


def _pool_last_axis(y: Any, length: int, out: int) -> Any:
    """The maximum of each of the ``out`` bins along the last axis of ``y`` (traced or raw)."""
    ry = strip(y)
    xp = ns(ry)
    lead = tuple(ry.shape[:-1])
    starts, ends = _bins(length, out)
    k = max(e - s for s, e in zip(starts, ends))
    if length % out == 0:  # even bins: a reshape, no gather
        windows = xp.reshape(ry, lead + (out, k))
    else:  # short bins repeat their last element, which cannot move the first maximum
        flat = [min(s + j, e - 1) for s, e in zip(starts, ends) for j in range(k)]
        idx = backend.asarray(flat, dtype=xp.int64, like=ry)
        windows = xp.reshape(xp.take(ry, idx, axis=-1), lead + (out, k))
    first = xp.argmax(windows, axis=-1)  # the first maximum (or the first NaN) of each bin
    where = first + backend.asarray(starts, dtype=first.dtype, like=ry)
    return fnp.take_along_axis(y, where, axis=-1)


def _adaptive_max_pool_nd(nd: int, x: Any, output_size: Any, return_indices: bool) -> Any:
    fn = f"adaptive_max_pool{nd}d"
    if return_indices:
        raise NotImplementedError(f"{fn}: return_indices=True is not supported")
    x, unbatched, in_sp, out_sp = adaptive_geometry(fn, nd, x, output_size)
    y = x
    for axis in range(1 + nd, 1, -1):  # the last spatial axis first: row-major first maximum
        length, out = in_sp[axis - 2], out_sp[axis - 2]
        if length == out:
            continue
        y = fnp.moveaxis(_pool_last_axis(fnp.moveaxis(y, axis, -1), length, out), -1, axis)
    if y is x:  # output size = input size: a copy, as PyTorch returns a new tensor
        y = x + 0.0
    return fnp.squeeze(y, 0) if unbatched else y


_DOC = """{nd}-D adaptive max pooling: (N, C, {sp}) to a fixed output size.

    Output element i (per axis) is the maximum over PyTorch's bin
    ``[floor(i * S / out), ceil((i + 1) * S / out))``; its gradient goes to the first maximum of
    the bin (row-major order), as in PyTorch.

    Args:
        x: (N, C, {sp}) or unbatched (C, {sp}), floating.
        output_size: an int or a {nd}-tuple of ints (None in a tuple keeps that input size).
        return_indices: only False is supported.

    Returns:
        (N, C, *output_size), ``x``'s dtype.

    See also: ``adaptive_avg_pool{nd}d``; ``funcnn_modules.nn.AdaptiveMaxPool{nd}d``.
    """


def adaptive_max_pool1d(x: Any, output_size: Any, return_indices: bool = False) -> Any:
    return _adaptive_max_pool_nd(1, x, output_size, return_indices)


def adaptive_max_pool2d(x: Any, output_size: Any, return_indices: bool = False) -> Any:
    return _adaptive_max_pool_nd(2, x, output_size, return_indices)


def adaptive_max_pool3d(x: Any, output_size: Any, return_indices: bool = False) -> Any:
    return _adaptive_max_pool_nd(3, x, output_size, return_indices)


adaptive_max_pool1d.__doc__ = _DOC.format(nd=1, sp="L")
adaptive_max_pool2d.__doc__ = _DOC.format(nd=2, sp="H, W")
adaptive_max_pool3d.__doc__ = _DOC.format(nd=3, sp="D, H, W")
