"""Resampling: :func:`interpolate` (``torch.nn.functional.interpolate``) as gathers and blends.

The modes offered are separable, so each spatial axis is resampled in turn, the last one first
(PyTorch's order of the nested blends): output position ``i`` along an axis reads the input at
``index_k[i]`` with weight ``weight_k[i]``, one tap for the nearest modes and two for the linear
ones. Indices and weights depend only on the sizes, so they are computed once on the host with
PyTorch's formulas, in its arithmetic (float32 or float64, as its CPU kernels use), so the same
input elements are picked. The
gathers are :func:`funcnn.numpy.take`; gradients (scatter-adds) come from the engine and are
differentiable again. ``mode="area"`` is adaptive average pooling, as in PyTorch.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any

from funcnn import backend
from funcnn import numpy as fnp
from funcnn.autodiff._core import strip
from funcnn.nn._pool import adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d

__all__ = ["interpolate"]

_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "area")
_LINEAR_RANK = {"linear": 3, "bilinear": 4, "trilinear": 5}
_AREA = {1: adaptive_avg_pool1d, 2: adaptive_avg_pool2d, 3: adaptive_avg_pool3d}


def _f32(v: float) -> float:
    """``v`` rounded to the nearest float32 (C's ``static_cast<float>``)."""
    return struct.unpack("f", struct.pack("f", v))[0]


def _same(v: float) -> float:
    return v


def _nearest_index(
    n_in: int, n_out: int, scale: float | None, exact: bool, planar: bool, double: bool
) -> list[int]:
    """The source index of each output position, as PyTorch's CPU kernels pick it.

    ``floor(i * s)`` ("nearest") or ``floor((i + 0.5) * s)`` ("nearest-exact"), the product
    rounded to float32 (``floorf``) and capped at ``n_in - 1``; ``s`` is ``1 / scale`` or
    ``n_in / n_out``. For 4-D inputs (``planar``) PyTorch's kernel (UpSample.h's ``nearest_idx``)
    takes ``s`` in float32, and "nearest" copies an axis whose size is kept or doubled; for 3-D
    and 5-D inputs ``s`` is in the input's precision (``double``: float64) and nothing is copied.
    """
    if planar and not exact and n_out == n_in:
        return list(range(n_out))
    if planar and not exact and n_out == 2 * n_in:
        return [i >> 1 for i in range(n_out)]
    rnd = _same if double and not planar else _f32
    s = rnd(1.0 / scale) if scale is not None and scale > 0 else rnd(n_in / n_out)
    shift = 0.5 if exact else 0.0
    return [min(math.floor(_f32((i + shift) * s)), n_in - 1) for i in range(n_out)]


def _linear_taps(
    n_in: int, n_out: int, scale: float | None, align_corners: bool, rnd: Any
) -> tuple[list[int], list[int], list[float], list[float]]:
    """PyTorch's ``compute_indices_weights_linear``: (index0, index1, weight0, weight1).

    ``rnd`` rounds to the precision PyTorch computes in (float32 for float32 inputs).
    """
    if align_corners:
        s = rnd((n_in - 1) / (n_out - 1)) if n_out > 1 else 0.0
    else:
        s = rnd(1.0 / scale) if scale is not None and scale > 0 else rnd(n_in / n_out)
    i0s, i1s, w0s, w1s = [], [], [], []
    for i in range(n_out):
        if align_corners:
            src = rnd(s * i)
        else:
            src = max(rnd(rnd(s * rnd(i + 0.5)) - 0.5), 0.0)
        i0 = min(math.floor(src), n_in - 1)
        lam = min(max(rnd(src - i0), 0.0), 1.0)
        i0s.append(i0)
        i1s.append(i0 + 1 if i0 < n_in - 1 else i0)
        w0s.append(1.0 - lam)
        w1s.append(lam)
    return i0s, i1s, w0s, w1s


def _resample_axis(
    x: Any, axis: int, n_out: int, scale: float | None, mode: str, align_corners: bool
) -> Any:
    """Resample ``x`` along ``axis`` to ``n_out`` points."""
    raw = strip(x)
    n_in = raw.shape[axis]
    xp = backend.namespace(raw)

    def index(values: list[int]) -> Any:
        return backend.asarray(values, dtype="int64", like=raw)

    if mode in ("nearest", "nearest-exact"):
        idx = _nearest_index(
            n_in, n_out, scale, mode == "nearest-exact", raw.ndim == 4, raw.dtype == xp.float64
        )
        if idx == list(range(n_in)):
            return x
        return fnp.take(x, index(idx), axis=axis)
    if n_out == n_in:  # PyTorch copies an axis whose size does not change, whatever the scale
        return x
    rnd = _same if raw.dtype == xp.float64 else _f32
    i0, i1, w0, w1 = _linear_taps(n_in, n_out, scale, align_corners, rnd)
    bshape = (n_out,) + (1,) * (raw.ndim - 1 - axis)

    def weight(values: list[float]) -> Any:
        return xp.reshape(backend.asarray(values, dtype=raw.dtype, like=raw), bshape)

    return fnp.take(x, index(i0), axis=axis) * weight(w0) + fnp.take(
        x, index(i1), axis=axis
    ) * weight(w1)


def _per_axis(fn: str, name: str, value: Any, in_sizes: tuple) -> tuple:
    if isinstance(value, Sequence) and not isinstance(value, str):
        value = tuple(value)
        if len(value) != len(in_sizes):
            raise ValueError(
                f"{fn}: {name} {value} has {len(value)} entries but x has {len(in_sizes)} "
                f"spatial dimensions {in_sizes}; give one per spatial dimension of an "
                "(N, C, d1, ..., dK) input, or a single number"
            )
        return value
    return (value,) * len(in_sizes)


def interpolate(
    x: Any,
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    *,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Any:
    """Resize the spatial dimensions of an (N, C, d1[, d2[, d3]]) input, as PyTorch does.

    Args:
        x: (N, C, L), (N, C, H, W) or (N, C, D, H, W).
        size: the output spatial size (an int for every dimension, or one per dimension).
        scale_factor: the multiplier of the spatial size (a number or one per dimension);
            the output size is ``floor(in * scale_factor)``. Give exactly one of ``size`` and
            ``scale_factor``.
        mode: ``"nearest"`` (PyTorch's legacy ``floor(i * in / out)`` rule), ``"nearest-exact"``
            (pixel centres), ``"linear"`` (3-D ``x``), ``"bilinear"`` (4-D), ``"trilinear"`` (5-D)
            or ``"area"`` (adaptive average pooling).
        align_corners: linear modes only: when True the corner pixels of input and output are
            aligned (``src = i * (in - 1) / (out - 1)``); else (the default, False) pixel centres
            are (``src = (i + 0.5) / scale - 0.5``, clamped at 0).
        recompute_scale_factor: with ``scale_factor``: when True the sampling grid comes from the
            output size, else (the default) from ``scale_factor`` itself.
        antialias: not supported (raises when True).
    Returns:
        (N, C, *out_size), ``x``'s dtype. Differentiable in ``x`` (to any order).

    See also: ``funcnn_modules.nn.Upsample``, ``funcnn_modules.nn.functional.interpolate``.
    """
    raw = strip(x)
    shape = tuple(raw.shape)
    if mode not in _MODES:
        raise NotImplementedError(
            f"interpolate: mode {mode!r} is not supported; expected one of {', '.join(_MODES)}"
        )
    if not 3 <= len(shape) <= 5:
        raise ValueError(
            f"interpolate: x must be 3-D, 4-D or 5-D, (N, C, d1[, d2[, d3]]), got shape {shape}"
        )
    if mode in _LINEAR_RANK and len(shape) != _LINEAR_RANK[mode]:
        raise ValueError(
            f"interpolate: mode {mode!r} needs a {_LINEAR_RANK[mode]}-D input, got shape {shape}"
            + "; use mode 'linear' for 3-D, 'bilinear' for 4-D, 'trilinear' for 5-D"
        )
    if mode in _LINEAR_RANK:
        align_corners = bool(align_corners)
    elif align_corners is not None:
        raise ValueError(
            f"interpolate: align_corners can only be set with the linear modes "
            f"(linear, bilinear, trilinear), got mode {mode!r}"
        )
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported")
    if not backend.is_floating(raw):
        raise TypeError(f"interpolate: x must be floating, got dtype {raw.dtype}")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: only one of size or scale_factor should be defined")
    in_sizes = shape[2:]
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(
                "interpolate: recompute_scale_factor is not meaningful with an explicit size"
            )
        sizes = tuple(int(s) for s in _per_axis("interpolate", "size", size, in_sizes))
        scales: tuple = (None,) * len(in_sizes)
    else:
        factors = tuple(
            float(f) for f in _per_axis("interpolate", "scale_factor", scale_factor, in_sizes)
        )
        sizes = tuple(int(n * f) for n, f in zip(in_sizes, factors))
        scales = (None,) * len(in_sizes) if recompute_scale_factor else factors
    if min(sizes) <= 0 or min(in_sizes) <= 0:
        raise ValueError(
            f"interpolate: input and output sizes must be greater than 0, but got input "
            f"spatial size {in_sizes} and output size {sizes}"
        )
    if mode == "area":
        return _AREA[len(in_sizes)](x, sizes)
    out = x
    for k in reversed(range(len(in_sizes))):
        out = _resample_axis(out, 2 + k, sizes[k], scales[k], mode, bool(align_corners))
    return out
