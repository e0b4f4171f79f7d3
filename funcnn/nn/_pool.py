"""Pooling over N C (D) H W: max, average and adaptive average, one N-d implementation each.

Every pool reads its input through ``prod(kernel)`` strided slices of the padded input (one per
kernel offset), and every backward pass writes through the same slices into a zero buffer, so
no pool uses ``np.add.at``. Each primitive's VJP is its adjoint, itself a primitive:

* ``avg_pool`` <-> ``_avg_pool_t`` (spread each output's cotangent evenly over its window);
* ``max_pool`` -> ``_max_pool_scatter`` (cotangent to the first maximum of each window, like
  PyTorch), whose VJP is ``_max_pool_gather`` and back (both constant in ``x``);
* ``adaptive_avg_pool`` is a plain avg pool when the bins are even, else one small GEMM per
  spatial axis with PyTorch's bins ``[floor(i*L/out), ceil((i+1)*L/out))``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from funcnn import backend
from funcnn import numpy as fnp
from funcnn.autodiff._core import primitive, strip
from funcnn.nn._conv import batched, check_floating, ntuple, pad_const, window_slices

__all__ = [
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
]

ns = backend.namespace


class PoolGeom(NamedTuple):
    """The static shape of one pooling: windows of ``kernel`` over ``in_sp`` giving ``out_sp``."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    in_sp: tuple[int, ...]
    out_sp: tuple[int, ...]


def _geometry(
    fn: str,
    nd: int,
    x: Any,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    ceil_mode: bool,
) -> PoolGeom:
    if ceil_mode:
        raise NotImplementedError(
            f"{fn}: ceil_mode=True is not supported; only ceil_mode=False (the default)"
        )
    kernel = ntuple(kernel_size, nd, "kernel_size", fn, 1)
    stride_t = kernel if stride is None else ntuple(stride, nd, "stride", fn, 1)
    if isinstance(stride, (tuple, list)) and len(stride) == 0:
        stride_t = kernel  # PyTorch treats an empty stride as "same as kernel_size"
    pad = ntuple(padding, nd, "padding", fn, 0)
    dil = ntuple(dilation, nd, "dilation", fn, 1)
    ext = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dil))
    if any(p > e // 2 for p, e in zip(pad, ext)):
        raise ValueError(
            f"{fn}: padding should be at most half of the effective kernel size, got padding={pad}, "
            f"kernel_size={kernel} and dilation={dil}"
        )
    in_sp = tuple(strip(x).shape[2:])
    out_sp = tuple((s + 2 * p - e) // st + 1 for s, p, e, st in zip(in_sp, pad, ext, stride_t))
    if any(o < 1 for o in out_sp):
        raise ValueError(
            f"{fn}: input of shape {tuple(strip(x).shape)} is too small for kernel_size={kernel}, "
            f"padding={pad}, dilation={dil}: the output size would be {out_sp}"
        )
    return PoolGeom(kernel, stride_t, dil, tuple((p, p) for p in pad), in_sp, out_sp)


def _slices(geom: PoolGeom) -> Any:
    return window_slices(geom.kernel, geom.stride, geom.dilation, geom.out_sp)


def _crop(buf: Any, geom: PoolGeom) -> Any:
    if all(a == 0 for a, _ in geom.pads):
        return buf
    return buf[
        (slice(None), slice(None))
        + tuple(slice(a, a + s) for s, (a, _) in zip(geom.in_sp, geom.pads))
    ]


def _zeros_padded(like: Any, geom: PoolGeom) -> Any:
    n, c = like.shape[:2]
    padded = tuple(s + a + b for s, (a, b) in zip(geom.in_sp, geom.pads))
    return backend.zeros((n, c) + padded, dtype=like.dtype, like=like)


# ----------------------------------------------------------------------------- max pooling


@primitive
def _max_pool(x: Any, *, geom: PoolGeom) -> Any:
    xp = ns(x)
    xpad = pad_const(x, geom.pads, -math.inf)
    out = None
    for _, sl in _slices(geom):
        out = xp.asarray(xpad[sl], copy=True) if out is None else xp.maximum(out, xpad[sl])
    return out


def _argmax_index(x: Any, geom: PoolGeom) -> Any:
    """For each output position, the number of the window offset holding the first maximum.

    As in PyTorch, a later element replaces the running maximum when it is larger or NaN.
    """
    xp = ns(x)
    xpad = pad_const(x, geom.pads, -math.inf)
    best = idx = None
    for k, (_, sl) in enumerate(_slices(geom)):
        v = xpad[sl]
        if best is None:
            best, idx = v, backend.zeros(tuple(v.shape), dtype=xp.int32, like=x)
            continue
        upd = (v > best) | xp.isnan(v)
        best = xp.where(upd, v, best)
        idx = xp.where(upd, k, idx)
    return idx


@primitive
def _max_pool_scatter(g: Any, x: Any, out: Any = None, *, geom: PoolGeom) -> Any:
    """Each output's cotangent ``g`` added at its window's first maximum in ``x``.

    With ``out`` (the pooled ``x``) free of NaN, the first maximum is the first window element
    equal to it: a mask per window offset, and no argmax pass over the windows.
    """
    xp = ns(g, x)
    buf = _zeros_padded(x, geom)
    if out is None or bool(xp.any(xp.isnan(out))):
        idx = _argmax_index(x, geom)
        for k, (_, sl) in enumerate(_slices(geom)):
            buf[sl] += xp.where(idx == k, g, 0.0)
        return _crop(buf, geom)
    # NaN padding: a padded place never equals a maximum (PyTorch skips padding, so an
    # all -inf window gives its gradient to its first real element)
    xpad = pad_const(x, geom.pads, math.nan)
    disjoint = all(s >= d * (k - 1) + 1 for k, s, d in zip(geom.kernel, geom.stride, geom.dilation))
    free = None  # the outputs whose maximum has not been met yet
    for _, sl in _slices(geom):
        hit = xpad[sl] == out
        if free is None:
            free = xp.logical_not(hit)
        else:
            hit = xp.logical_and(hit, free)
            free = xp.logical_and(free, xp.logical_not(hit))
        if disjoint:  # windows do not overlap: each place of buf is written once
            buf[sl] = xp.where(hit, g, 0.0)
        else:
            buf[sl] += xp.where(hit, g, 0.0)
    return _crop(buf, geom)


@primitive
def _max_pool_gather(h: Any, x: Any, *, geom: PoolGeom) -> Any:
    """The adjoint of :func:`_max_pool_scatter`: ``h`` (x's shape) read at each window's maximum."""
    xp = ns(h, x)
    idx = _argmax_index(x, geom)
    hpad = pad_const(h, geom.pads, 0.0)
    out = None
    for k, (_, sl) in enumerate(_slices(geom)):
        term = xp.where(idx == k, hpad[sl], 0.0)
        out = term if out is None else out + term
    return out


_max_pool.defvjp(lambda g, ans, x, *, geom: _max_pool_scatter(g, x, ans, geom=geom))
_max_pool_scatter.defvjp(
    lambda h, ans, g, x, out=None, *, geom: _max_pool_gather(h, x, geom=geom),
    # the argmax is locally constant in x (and in the pooled values that locate it)
    lambda h, ans, g, x, out=None, *, geom: fnp.zeros_like(x),
    lambda h, ans, g, x, out=None, *, geom: fnp.zeros_like(out),
)
_max_pool_gather.defvjp(
    lambda h, ans, g, x, *, geom: _max_pool_scatter(h, x, geom=geom),
    lambda h, ans, g, x, *, geom: fnp.zeros_like(x),
)


def _max_pool_nd(
    nd: int, x: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool
) -> Any:
    fn = f"max_pool{nd}d"
    x, unbatched = batched(fn, x, nd)
    check_floating(fn, "x", strip(x))
    geom = _geometry(fn, nd, x, kernel_size, stride, padding, dilation, ceil_mode)
    y = _max_pool(x, geom=geom)
    return fnp.squeeze(y, 0) if unbatched else y


_MAX_DOC = """{nd}-D max pooling over an (N, C, {sp}) input.

    Padding is with -inf; the gradient of each output goes to the first maximum of its window
    (row-major order), as in PyTorch.

    Args:
        x: (N, C, {sp}) or unbatched (C, {sp}), floating.
        kernel_size: an int or a {nd}-tuple.
        stride: an int or a {nd}-tuple; None (the default) means ``kernel_size``.
        padding: an int or a {nd}-tuple, at most half the effective kernel size.
        dilation: spacing between window elements.
        ceil_mode: only False is supported.

    Returns:
        (N, C, {sp_out}), each ``(S + 2 * padding - dilation * (k - 1) - 1) // stride + 1``.

    See also: ``funcnn_modules.nn.MaxPool{nd}d``.
    """


def max_pool1d(
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> Any:
    return _max_pool_nd(1, x, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool2d(
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> Any:
    return _max_pool_nd(2, x, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool3d(
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> Any:
    return _max_pool_nd(3, x, kernel_size, stride, padding, dilation, ceil_mode)


max_pool1d.__doc__ = _MAX_DOC.format(nd=1, sp="L", sp_out="L_out")
max_pool2d.__doc__ = _MAX_DOC.format(nd=2, sp="H, W", sp_out="H_out, W_out")
max_pool3d.__doc__ = _MAX_DOC.format(nd=3, sp="D, H, W", sp_out="D_out, H_out, W_out")


# ----------------------------------------------------------------------------- average pooling


def _divisor(geom: PoolGeom, count_include_pad: bool, like: Any) -> Any:
    """The number each window sum is divided by: prod(kernel), or an array of in-bounds counts."""
    if count_include_pad or all(a == 0 for a, _ in geom.pads):
        return float(math.prod(geom.kernel))
    counts = []
    for k, s, (p, _), n, o in zip(geom.kernel, geom.stride, geom.pads, geom.in_sp, geom.out_sp):
        counts.append([min(i * s - p + k, n) - max(i * s - p, 0) for i in range(o)])
    # the count of a window is the product of its counts along each axis
    div = backend.asarray(counts[0], dtype=like.dtype, like=like)
    xp = ns(like)
    for c in counts[1:]:
        div = xp.reshape(div, tuple(div.shape) + (1,)) * backend.asarray(
            c, dtype=like.dtype, like=like
        )
    return div


@primitive
def _avg_pool(x: Any, *, geom: PoolGeom, count_include_pad: bool) -> Any:
    xpad = pad_const(x, geom.pads, 0.0)
    total = None
    for _, sl in _slices(geom):
        total = ns(x).asarray(xpad[sl], copy=True) if total is None else total + xpad[sl]
    return total / _divisor(geom, count_include_pad, x)


@primitive
def _avg_pool_t(g: Any, *, geom: PoolGeom, count_include_pad: bool) -> Any:
    """The adjoint of :func:`_avg_pool`: each output's share spread over its window."""
    share = g / _divisor(geom, count_include_pad, g)
    buf = _zeros_padded(g, geom)
    for _, sl in _slices(geom):
        buf[sl] += share
    return _crop(buf, geom)


_avg_pool.defvjp(
    lambda g, ans, x, *, geom, count_include_pad: _avg_pool_t(
        g, geom=geom, count_include_pad=count_include_pad
    )
)
_avg_pool_t.defvjp(
    lambda h, ans, g, *, geom, count_include_pad: _avg_pool(
        h, geom=geom, count_include_pad=count_include_pad
    )
)


def _avg_pool_nd(
    nd: int,
    x: Any,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    ceil_mode: bool,
    count_include_pad: bool,
) -> Any:
    fn = f"avg_pool{nd}d"
    x, unbatched = batched(fn, x, nd)
    check_floating(fn, "x", strip(x))
    geom = _geometry(fn, nd, x, kernel_size, stride, padding, 1, ceil_mode)
    y = _avg_pool(x, geom=geom, count_include_pad=bool(count_include_pad))
    return fnp.squeeze(y, 0) if unbatched else y


_AVG_DOC = """{nd}-D average pooling over an (N, C, {sp}) input.

    Args:
        x: (N, C, {sp}) or unbatched (C, {sp}), floating.
        kernel_size: an int or a {nd}-tuple.
        stride: an int or a {nd}-tuple; None (the default) means ``kernel_size``.
        padding: zero padding, an int or a {nd}-tuple, at most half the kernel size.
        ceil_mode: only False is supported.
        count_include_pad: divide by the whole window size (True, the default) or by the
            number of input (non-padding) elements in the window.

    Returns:
        (N, C, {sp_out}), each ``(S + 2 * padding - k) // stride + 1``.

    See also: ``funcnn_modules.nn.AvgPool{nd}d``.
    """


def avg_pool1d(
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Any:
    return _avg_pool_nd(1, x, kernel_size, stride, padding, ceil_mode, count_include_pad)


def avg_pool2d(
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Any:
    return _avg_pool_nd(2, x, kernel_size, stride, padding, ceil_mode, count_include_pad)


def avg_pool3d(
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Any:
    return _avg_pool_nd(3, x, kernel_size, stride, padding, ceil_mode, count_include_pad)


avg_pool1d.__doc__ = _AVG_DOC.format(nd=1, sp="L", sp_out="L_out")
avg_pool2d.__doc__ = _AVG_DOC.format(nd=2, sp="H, W", sp_out="H_out, W_out")
avg_pool3d.__doc__ = _AVG_DOC.format(nd=3, sp="D, H, W", sp_out="D_out, H_out, W_out")


# ----------------------------------------------------------------------------- adaptive average pooling


def _bin_matrix(length: int, out: int, like: Any) -> Any:
    """(length, out): column i averages PyTorch's bin [floor(i*L/out), ceil((i+1)*L/out))."""
    rows = [[0.0] * out for _ in range(length)]
    for i in range(out):
        start, end = (i * length) // out, -((-(i + 1) * length) // out)
        for j in range(start, end):
            rows[j][i] = 1.0 / (end - start)
    return backend.asarray(rows, dtype=like.dtype, like=like)


def adaptive_geometry(fn: str, nd: int, x: Any, output_size: Any) -> tuple:
    """``(x batched, unbatched?, in_sp, out_sp)`` for an adaptive pool, after its checks;
    None in an ``output_size`` tuple keeps that input size."""
    x, unbatched = batched(fn, x, nd)
    rx = strip(x)
    check_floating(fn, "x", rx)
    in_sp = tuple(rx.shape[2:])
    if isinstance(output_size, (tuple, list)) and len(output_size) == nd:
        output_size = tuple(s if s is not None else n for s, n in zip(output_size, in_sp))
    out_sp = ntuple(output_size, nd, "output_size", fn, 1)
    if any(s == 0 for s in in_sp):
        raise ValueError(
            f"{fn}: x has an empty spatial dimension (shape {tuple(rx.shape)}); each spatial "
            "size must be at least 1"
        )
    return x, unbatched, in_sp, out_sp


def _adaptive_avg_pool_nd(nd: int, x: Any, output_size: Any) -> Any:
    x, unbatched, in_sp, out_sp = adaptive_geometry(f"adaptive_avg_pool{nd}d", nd, x, output_size)
    rx = strip(x)
    if all(n % o == 0 for n, o in zip(in_sp, out_sp)):
        k = tuple(n // o for n, o in zip(in_sp, out_sp))
        geom = PoolGeom(k, k, (1,) * nd, ((0, 0),) * nd, in_sp, out_sp)
        y = _avg_pool(x, geom=geom, count_include_pad=True)
    else:
        # separable: average over each spatial axis in turn, one GEMM each
        y = x
        for axis in range(2 + nd - 1, 1, -1):
            length, out = in_sp[axis - 2], out_sp[axis - 2]
            if length == out:
                continue
            y = fnp.moveaxis(y, axis, -1)
            shape = tuple(strip(y).shape)
            y = fnp.matmul(fnp.reshape(y, (-1, length)), _bin_matrix(length, out, rx))
            y = fnp.moveaxis(fnp.reshape(y, shape[:-1] + (out,)), -1, axis)
    return fnp.squeeze(y, 0) if unbatched else y


_ADAPTIVE_DOC = """{nd}-D adaptive average pooling: (N, C, {sp}) to a fixed output size.

    Output element i (per axis) averages PyTorch's bin ``[floor(i * S / out), ceil((i + 1) * S / out))``.

    Args:
        x: (N, C, {sp}) or unbatched (C, {sp}), floating.
        output_size: an int or a {nd}-tuple (None in a tuple keeps that input size).

    Returns:
        (N, C, *output_size).

    See also: ``funcnn_modules.nn.AdaptiveAvgPool{nd}d``.
    """


def adaptive_avg_pool1d(x: Any, output_size: Any) -> Any:
    return _adaptive_avg_pool_nd(1, x, output_size)


def adaptive_avg_pool2d(x: Any, output_size: Any) -> Any:
    return _adaptive_avg_pool_nd(2, x, output_size)


def adaptive_avg_pool3d(x: Any, output_size: Any) -> Any:
    return _adaptive_avg_pool_nd(3, x, output_size)


adaptive_avg_pool1d.__doc__ = _ADAPTIVE_DOC.format(nd=1, sp="L")
adaptive_avg_pool2d.__doc__ = _ADAPTIVE_DOC.format(nd=2, sp="H, W")
adaptive_avg_pool3d.__doc__ = _ADAPTIVE_DOC.format(nd=3, sp="D, H, W")
