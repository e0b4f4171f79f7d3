"""Shape primitives: reshape transpose broadcast_to concatenate pad flip tile repeat, and their compositions."""

from __future__ import annotations

import builtins
import operator
from collections.abc import Sequence
from typing import Any

from funcnn import backend
from funcnn import numpy as fnp
from funcnn.autodiff._core import primitive, strip
from funcnn.numpy._helpers import normalize_axis, unbroadcast

ns = backend.namespace


def _shape_arg(shape: Any) -> tuple:
    if isinstance(shape, int):
        return (shape,)
    return tuple(map(builtins.int, shape))


@primitive
def _reshape(x: Any, shape: tuple) -> Any:
    return ns(x).reshape(x, shape)


_reshape.defvjp(lambda g, ans, x, shape: _reshape(g, tuple(x.shape)))


def reshape(x: Any, shape: Any, *more: int) -> Any:
    """``x`` with a new shape holding the same elements in C order.

    Args:
        x: array.
        shape: a tuple (or ints as further arguments, like ``x.reshape(2, 3)``); one entry may
            be -1, inferred from the others.
    Returns:
        A view or copy of ``x`` with shape ``shape`` (``x`` itself when the shape is unchanged).
    """
    shape = _shape_arg(shape) + more if more else _shape_arg(shape)
    raw = strip(x)
    if raw.shape == shape:
        return x
    try:
        return _reshape(x, shape)
    except (ValueError, TypeError):
        _check_reshape(tuple(raw.shape), shape)
        raise


def _check_reshape(old: tuple, shape: tuple) -> None:
    n = backend.prod(old)
    known = backend.prod([s for s in shape if s != -1])
    if (
        shape.count(-1) > 1
        or any(s < -1 for s in shape)
        or (-1 not in shape and known != n)
        or (-1 in shape and (known == 0 or n % known))
    ):
        raise ValueError(
            f"reshape: cannot reshape an array of shape {old} ({n} elements) into shape {shape}"
        )


@primitive
def _transpose(x: Any, axes: tuple) -> Any:
    return ns(x).permute_dims(x, axes)


def _inverse_perm(axes: tuple) -> tuple:
    inv = [0] * len(axes)
    for i, a in enumerate(axes):
        inv[a] = i
    return tuple(inv)


_transpose.defvjp(lambda g, ans, x, axes: _transpose(g, _inverse_perm(axes)))


def transpose(x: Any, axes: Sequence[int] | None = None) -> Any:
    """Permute the axes (reverse them when ``axes`` is None)."""
    nd = strip(x).ndim
    if axes is None:
        axes = tuple(range(nd))[::-1]
    axes = tuple(normalize_axis(a, nd, "transpose") for a in axes)
    if sorted(axes) != list(range(nd)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of the {nd} axes")
    if axes == tuple(range(nd)):
        return x
    return _transpose(x, axes)


permute_dims = transpose


def swapaxes(x: Any, axis1: int, axis2: int) -> Any:
    """Swap two axes."""
    nd = strip(x).ndim
    perm = list(range(nd))
    a, b = normalize_axis(axis1, nd, "swapaxes"), normalize_axis(axis2, nd, "swapaxes")
    perm[a], perm[b] = perm[b], perm[a]
    return transpose(x, perm)


def moveaxis(x: Any, source: Any, destination: Any) -> Any:
    """Move axes to new positions (NumPy semantics)."""
    nd = strip(x).ndim
    src = [
        normalize_axis(a, nd, "moveaxis")
        for a in ((source,) if isinstance(source, int) else source)
    ]
    dst = [
        normalize_axis(a, nd, "moveaxis")
        for a in ((destination,) if isinstance(destination, int) else destination)
    ]
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(x, order)


def expand_dims(x: Any, axis: Any) -> Any:
    """Insert axes of length 1 at ``axis`` (an int or a tuple)."""
    shape = list(strip(x).shape)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    nd = len(shape) + len(axes)
    for a in sorted(normalize_axis(a, nd, "expand_dims") for a in axes):
        shape.insert(a, 1)
    return reshape(x, shape)


def squeeze(x: Any, axis: Any = None) -> Any:
    """Remove axes of length 1 (all of them, or those in ``axis``)."""
    shape = tuple(strip(x).shape)
    if axis is None:
        axes = {i for i, s in enumerate(shape) if s == 1}
    else:
        axes = {
            normalize_axis(a, len(shape), "squeeze")
            for a in ((axis,) if isinstance(axis, int) else axis)
        }
        bad = [a for a in axes if shape[a] != 1]
        if bad:
            raise ValueError(
                f"squeeze: cannot squeeze axis {bad[0]} of length {shape[bad[0]]} (shape {shape})"
            )
    return reshape(x, tuple(s for i, s in enumerate(shape) if i not in axes))


def ravel(x: Any) -> Any:
    """The flattened array."""
    return reshape(x, (-1,))


@primitive
def _broadcast_to(x: Any, shape: tuple) -> Any:
    return ns(x).broadcast_to(x, shape)


_broadcast_to.defvjp(lambda g, ans, x, shape: unbroadcast(g, x))


def broadcast_to(x: Any, shape: Any) -> Any:
    """``x`` broadcast to ``shape`` (a read-only view on NumPy)."""
    shape = _shape_arg(shape)
    raw = strip(x)
    if tuple(raw.shape) == shape:
        return x
    try:
        bs = backend.namespace(raw).broadcast_shapes(tuple(raw.shape), shape)
    except ValueError as e:
        raise ValueError(
            f"broadcast_to: cannot broadcast shape {tuple(raw.shape)} to {shape}"
        ) from e
    if bs != shape:
        raise ValueError(f"broadcast_to: cannot broadcast shape {tuple(raw.shape)} to {shape}")
    return _broadcast_to(x, shape)


@primitive
def _concatenate(*arrays: Any, axis: int) -> Any:
    return ns(*arrays).concat(arrays, axis=axis)


def _concat_rule(i: int) -> Any:
    def rule(g: Any, ans: Any, *arrays: Any, axis: int) -> Any:
        start = builtins.sum(a.shape[axis] for a in arrays[:i])
        idx = (slice(None),) * axis + (slice(start, start + arrays[i].shape[axis]),)
        return fnp.getitem(g, idx)

    return rule


class _ConcatRules:
    """Rules for a variadic primitive: rule i is made on first use."""

    def __init__(self) -> None:
        self._made: dict = {}

    def __getitem__(self, i: int) -> Any:
        r = self._made.get(i)
        if r is None:
            r = self._made[i] = _concat_rule(i)
        return r

    def __len__(self) -> int:
        return 1 << 30

    def __bool__(self) -> bool:
        return True


_concatenate.rules = _ConcatRules()


def concatenate(arrays: Sequence[Any], axis: int | None = 0) -> Any:
    """Join arrays along an existing axis (``axis=None`` flattens them first)."""
    arrays = list(arrays)
    if not arrays:
        raise ValueError("concatenate: need at least one array")
    if axis is None:
        arrays = [ravel(a) for a in arrays]
        axis = 0
    shapes = [tuple(strip(a).shape) for a in arrays]
    nd = len(shapes[0])
    if nd == 0:
        raise ValueError("concatenate: zero-dimensional arrays cannot be concatenated")
    axis = normalize_axis(axis, nd, "concatenate")
    for s in shapes[1:]:
        if len(s) != nd or any(a != b for k, (a, b) in enumerate(zip(s, shapes[0])) if k != axis):
            raise ValueError(f"concatenate: shapes {shapes} differ outside axis {axis}")
    if len(arrays) == 1:
        return arrays[0]
    return _concatenate(*arrays, axis=axis)


concat = concatenate


def stack(arrays: Sequence[Any], axis: int = 0) -> Any:
    """Join arrays of one shape along a new axis."""
    arrays = list(arrays)
    if not arrays:
        raise ValueError("stack: need at least one array")
    shapes = {tuple(strip(a).shape) for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"stack: all arrays must have the same shape, got {sorted(shapes)}")
    return concatenate([expand_dims(a, axis) for a in arrays], axis=axis)


def split(x: Any, indices_or_sections: Any, axis: int = 0) -> list:
    """Split into pieces along ``axis`` (a number of equal sections, or split indices)."""
    n = strip(x).shape[normalize_axis(axis, strip(x).ndim, "split")]
    axis = normalize_axis(axis, strip(x).ndim, "split")
    if isinstance(indices_or_sections, int):
        if indices_or_sections <= 0 or n % indices_or_sections:
            raise ValueError(
                f"split: an axis of length {n} does not split into {indices_or_sections} equal sections"
            )
        step = n // indices_or_sections
        bounds = list(range(0, n + 1, step))
    else:
        bounds = [0, *indices_or_sections, n]
    pre = (slice(None),) * axis
    return [fnp.getitem(x, pre + (slice(a, b),)) for a, b in zip(bounds[:-1], bounds[1:])]


@primitive
def _pad(x: Any, pad_width: tuple, value: float) -> Any:
    return backend.pad(x, pad_width, value)


_pad.defvjp(
    lambda g, ans, x, pad_width, value: fnp.getitem(
        g, tuple(slice(a, a + s) for (a, _), s in zip(pad_width, x.shape))
    )
)


_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def _pad_source(i: int, n: int, mode: str) -> int:
    """The input position that output position ``i`` (counted from the first original element,
    so negative in the leading pad) copies, for the non-constant modes. Periodic, so pads of any
    width match NumPy's (which extends the array chunk by chunk)."""
    if mode == "edge":
        return 0 if i < 0 else n - 1 if i >= n else i
    if mode == "wrap":
        return i % n
    if mode == "reflect":  # mirror about the edge elements: period 2n - 2
        if n == 1:
            return 0
        j = i % (2 * n - 2)
        return j if j < n else 2 * n - 2 - j
    j = i % (2 * n)  # symmetric: mirror including the edge elements, period 2n
    return j if j < n else 2 * n - 1 - j


def pad(x: Any, pad_width: Any, mode: str = "constant", constant_values: float = 0.0) -> Any:
    """Pad ``x`` with NumPy's ``pad_width`` forms (an int, a pair, or one pair per axis).

    Args:
        x: array.
        pad_width: ``n``, ``(before, after)``, or ``((before_0, after_0), ...)`` one per axis.
        mode: ``"constant"`` (``constant_values``), ``"edge"`` (repeat the edge element; torch's
            ``"replicate"``), ``"reflect"`` (mirror about the edge element), ``"symmetric"``
            (mirror including it) or ``"wrap"`` (periodic; torch's ``"circular"``), as in
            :func:`numpy.pad`, for pads of any width.
        constant_values: the fill value of ``"constant"`` mode.
    Returns:
        ``x`` with each axis ``before + length + after`` long. The non-constant modes gather
        from ``x``, so the gradient of a padded element flows back to the element it copies.
    """
    if mode not in _PAD_MODES:
        raise NotImplementedError(
            f"pad: mode {mode!r} is not supported; expected one of {', '.join(_PAD_MODES)}"
        )
    shape = tuple(strip(x).shape)
    nd = len(shape)
    if isinstance(pad_width, int):
        pw = ((pad_width, pad_width),) * nd
    else:
        pw = tuple(pad_width)
        if len(pw) == 2 and all(isinstance(p, int) for p in pw):
            pw = (tuple(pw),) * nd
        elif len(pw) == 1:
            pw = (tuple(pw[0]) if not isinstance(pw[0], int) else (pw[0], pw[0]),) * nd
        pw = tuple((builtins.int(a), builtins.int(b)) for a, b in pw)
    if len(pw) != nd or any(a < 0 or b < 0 for a, b in pw):
        raise ValueError(
            f"pad: pad_width {pad_width!r} does not fit an array of dimension {nd} "
            "(expected an int, a (before, after) pair, or one pair per axis, all >= 0)"
        )
    if mode == "constant":
        return _pad(x, pw, float(constant_values))
    for axis, ((a, b), n) in enumerate(zip(pw, shape)):
        if a == b == 0:
            continue
        if n == 0:
            raise ValueError(
                f"pad: mode {mode!r} cannot extend axis {axis} of length 0 (shape {shape})"
            )
        idx = [_pad_source(i, n, mode) for i in range(-a, n + b)]
        x = fnp.take(x, idx, axis=axis)
    return x


@primitive
def _flip(x: Any, axes: tuple) -> Any:
    return ns(x).flip(x, axis=axes)


_flip.defvjp(lambda g, ans, x, axes: _flip(g, axes))


def flip(x: Any, axis: Any = None) -> Any:
    """Reverse the order of elements along ``axis`` (all axes when None)."""
    nd = strip(x).ndim
    axes = (
        tuple(range(nd))
        if axis is None
        else tuple(
            normalize_axis(a, nd, "flip") for a in ((axis,) if isinstance(axis, int) else axis)
        )
    )
    return _flip(x, axes)


def tile(x: Any, reps: Any) -> Any:
    """Repeat the whole array ``reps`` times along each axis (NumPy semantics)."""
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    shape = tuple(strip(x).shape)
    nd = builtins.max(len(shape), len(reps))
    shape = (1,) * (nd - len(shape)) + shape
    reps = (1,) * (nd - len(reps)) + reps
    x = reshape(x, shape)
    # broadcast a new axis before each axis, then merge: (r0, s0, r1, s1, ...) -> (r0*s0, ...)
    expanded = reshape(x, tuple(v for s in shape for v in (1, s)))
    big = broadcast_to(expanded, tuple(v for r, s in zip(reps, shape) for v in (r, s)))
    return reshape(big, tuple(r * s for r, s in zip(reps, shape)))


def repeat(x: Any, repeats: int | Sequence[int], axis: int | None = None) -> Any:
    """Repeat each element ``repeats`` times along ``axis`` (the flattened array when None);
    ``repeats`` may also give one count per element along ``axis``, as in NumPy."""
    if axis is None:
        x, axis = ravel(x), 0
    shape = tuple(strip(x).shape)
    axis = normalize_axis(axis, len(shape), "repeat")
    if isinstance(repeats, Sequence) and not isinstance(repeats, str):
        counts = [_count(r) for r in repeats]
        if len(counts) == 1:
            repeats = counts[0]
        else:
            if len(counts) != shape[axis]:
                raise ValueError(
                    f"repeat: {len(counts)} repeat counts for an axis of length {shape[axis]} "
                    f"(x of shape {shape}, axis {axis})"
                )
            index = [i for i, r in enumerate(counts) for _ in range(r)]
            return fnp.take(x, backend.asarray(index, dtype="int64", like=strip(x)), axis=axis)
    repeats = _count(repeats)
    expanded = expand_dims(x, axis + 1)
    big = broadcast_to(expanded, shape[: axis + 1] + (repeats,) + shape[axis + 1 :])
    return reshape(big, shape[:axis] + (shape[axis] * repeats,) + shape[axis + 1 :])


def _count(r: Any) -> int:
    try:
        n = operator.index(r)
    except TypeError:
        raise TypeError(
            f"repeat: repeats must be an int or a sequence of ints, got {type(r).__name__}"
        ) from None
    if n < 0:
        raise ValueError(f"repeat: repeats must be >= 0, got {n}")
    return n


@primitive
def _astype(x: Any, dtype: Any) -> Any:
    xp = ns(x)
    dt = backend.resolve_dtype(xp, dtype)
    if x.dtype == dt:
        return x
    return xp.astype(x, dt)


def _astype_vjp(g: Any, ans: Any, x: Any, dtype: Any) -> Any:
    return _astype(g, x.dtype) if g.dtype != x.dtype else g


_astype.defvjp(_astype_vjp)


def astype(x: Any, dtype: Any) -> Any:
    """``x`` converted to ``dtype`` (a dtype, its name, or a NumPy dtype).

    Differentiable between floating dtypes (the gradient is cast back to ``x``'s dtype). A cast
    to an integer or boolean dtype cuts the gradient, as in PyTorch: its result is a constant.

    Args:
        x: array of any shape.
        dtype: the target dtype, e.g. ``fnp.float32`` or ``"float64"``.
    Returns:
        An array of ``x``'s shape and dtype ``dtype`` (``x`` itself when the dtype is unchanged).
    """
    raw = strip(x)
    if x is not raw and not backend.is_floating(
        backend.resolve_dtype(backend.namespace(raw), dtype)
    ):
        return _astype(raw, dtype)
    return _astype(x, dtype)


__all__ = [
    "reshape",
    "transpose",
    "permute_dims",
    "swapaxes",
    "moveaxis",
    "expand_dims",
    "squeeze",
    "ravel",
    "broadcast_to",
    "concatenate",
    "concat",
    "stack",
    "split",
    "pad",
    "flip",
    "tile",
    "repeat",
    "astype",
]
