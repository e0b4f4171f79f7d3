"""Convolutions and transposed convolutions over N C (D) H W, and their initialiser.

One N-d implementation serves ``conv1d/2d/3d`` and ``conv_transpose1d/2d/3d``. A convolution is
im2col (the windows of the padded input, copied from a strided view) followed by one batched
GEMM for all groups; a transposed convolution is its adjoint, a GEMM followed by col2im (adding
``prod(kernel)`` strided slices into a zero buffer: no ``np.add.at``). Three primitives do the
work (``_conv``, ``_conv_t`` and the weight gradient ``_conv_w``); they are one trilinear form
read three ways, so the VJP of each is the other two and derivatives of every order reuse the
same kernels. The input gradient of a convolution is ``_conv_t`` (the transposed convolution),
its weight gradient ``_conv_w`` (a GEMM), its bias gradient a sum. With stride 1 the transposed
convolution is itself a convolution (of the padded cotangent with the flipped kernel), so the
first-order backward pass makes one im2col of the cotangent and two GEMMs, and no col2im.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from funcnn import backend, random
from funcnn import numpy as fnp
from funcnn.autodiff._core import is_box, primitive, strip

__all__ = [
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "init_conv",
]

ns = backend.namespace
_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}
_KERNEL = {1: "kL", 2: "kH, kW", 3: "kD, kH, kW"}


# ----------------------------------------------------------------------------- argument checks


def ntuple(value: Any, n: int, name: str, fn: str, minimum: int = 0) -> tuple[int, ...]:
    """``value`` (an int or a sequence of ``n`` ints, each >= ``minimum``) as a tuple of ``n`` ints."""
    if isinstance(value, int) and not isinstance(value, bool):
        out = (value,) * n
    elif isinstance(value, Sequence) and not isinstance(value, str):
        out = tuple(value)
        if len(out) == 1:
            out = out * n
    else:
        raise TypeError(f"{fn}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if len(out) != n or not all(isinstance(v, int) and not isinstance(v, bool) for v in out):
        raise ValueError(f"{fn}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if any(v < minimum for v in out):
        raise ValueError(f"{fn}: {name} must be >= {minimum} in every dimension, got {value!r}")
    return out


def check_floating(fn: str, name: str, a: Any) -> None:
    """Raise a TypeError unless ``a`` is a floating-point array."""
    if not backend.is_array(a) or not backend.is_floating(a):
        raise TypeError(
            f"{fn}: {name} must be a floating-point array, got "
            f"{getattr(a, 'dtype', type(a).__name__)}"
        )


def check_same_dtype(fn: str, **arrays: Any) -> None:
    """Raise a TypeError unless every array given has the same dtype (PyTorch refuses mixes too)."""
    items = [(k, v) for k, v in arrays.items() if v is not None]
    backend.namespace(*(v for _, v in items))  # two backends: say so, not "two dtypes"
    first_name, first = items[0]
    for name, a in items[1:]:
        if a.dtype != first.dtype:
            raise TypeError(
                f"{fn}: {first_name} has dtype {first.dtype} but {name} has dtype {a.dtype}; "
                "cast them to one floating dtype first (e.g. fnp.astype(x, weight.dtype))."
            )


def batched(fn: str, x: Any, nd: int, what: str = "C") -> tuple[Any, bool]:
    """``x`` with a batch axis (added when ``x`` is unbatched), and whether one was added."""
    r = strip(x)
    if r.ndim == nd + 2:
        return x, False
    if r.ndim == nd + 1:
        return fnp.expand_dims(x, 0), True
    raise ValueError(
        f"{fn}: x must have shape (N, {what}, {_SPATIAL[nd]}) or ({what}, {_SPATIAL[nd]}) "
        f"({nd + 2} or {nd + 1} dimensions), got shape {tuple(r.shape)}"
    )


def weight_and_bias(fn: str, params: Any) -> tuple[Any, Any]:
    """``params["weight"]`` and ``params.get("bias")`` with a clear error when params is not a dict."""
    if not isinstance(params, dict) or "weight" not in params:
        raise TypeError(
            f"{fn}: params must be a dict with a 'weight' entry (and optionally 'bias'), "
            f"got {type(params).__name__}"
            + (f" with keys {sorted(params)}" if isinstance(params, dict) else "")
        )
    return params["weight"], params.get("bias")


# ----------------------------------------------------------------------------- geometry


class ConvGeom(NamedTuple):
    """The static shape of one convolution: ``x`` of spatial size ``in_sp`` to ``out_sp``."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]  # (before, after) per spatial axis
    groups: int
    in_sp: tuple[int, ...]
    out_sp: tuple[int, ...]


def pad_const(x: Any, pads: Sequence[tuple[int, int]], value: float = 0.0) -> Any:
    """Raw ``x`` (N, C, *sp) padded on its spatial axes by ``pads`` with ``value``."""
    if all(a == 0 and b == 0 for a, b in pads):
        return x
    shape = tuple(x.shape[:2]) + tuple(s + a + b for s, (a, b) in zip(x.shape[2:], pads))
    out = backend.full(shape, value, dtype=x.dtype, like=x)
    out[
        (slice(None), slice(None)) + tuple(slice(a, a + s) for s, (a, _) in zip(x.shape[2:], pads))
    ] = x
    return out


def windows(
    xpad: Any,
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    out_sp: Sequence[int],
) -> Any:
    """A view (N, C, *out_sp, *kernel) of the windows of a padded raw array (N, C, *sp)."""
    nd = len(kernel)
    ext = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    v = backend.sliding_windows(xpad, ext, tuple(range(2, 2 + nd)))
    idx = (
        (slice(None), slice(None))
        + tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(out_sp, stride))
        + tuple(slice(None, None, d) for d in dilation)
    )
    return v[idx]


def window_slices(
    geom_kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    out_sp: Sequence[int],
) -> Any:
    """For each kernel offset: (offset tuple, the strided slice of the padded input it reads)."""
    for offs in itertools.product(*(range(k) for k in geom_kernel)):
        yield (
            offs,
            (slice(None), slice(None))
            + tuple(
                slice(o * d, o * d + (n - 1) * s + 1, s)
                for o, d, n, s in zip(offs, dilation, out_sp, stride)
            ),
        )


# ----------------------------------------------------------------------------- primitives
#
# Three kernels, each the adjoint of the others in one argument, all working on the grouped
# weight W (G, O, Kg) with Kg = C/G * prod(kernel) and the output y (N, G, O, L):
#
#   _conv(x, W)    = W @ im2col(x)               x (N, C, *in_sp)  -> y (N, G, O, L)
#   _conv_t(y, W)  = col2im(W^T @ y)             y (N, G, O, L)    -> x (N, C, *in_sp)
#   _conv_w(y, x)  = sum_n y_n @ im2col(x)_n^T   y, x              -> W (G, O, Kg)
#
# All three are one trilinear form <y, W @ im2col(x)>, so the VJP of each is the other two.
# Each walks the batch in chunks whose im2col columns (a few MiB) stay in cache: no
# full-size column matrix is ever built, in the forward or the backward pass.
#
# With stride 1, ``_conv_t`` is itself a convolution: of ``y`` (padded by ``d (k - 1) - pad``)
# with the flipped, transposed kernel ``flip_t(W)``. That is im2col of ``y`` and one GEMM,
# instead of a GEMM to a column matrix ``prod(kernel)`` times the size of x and a col2im pass
# over it. The first-order backward pass of a convolution (x and W both wanted) then shares
# one im2col of the cotangent between the two gradients (``_sweep`` with ``w`` and ``y``):
#
#   x_grad = flip_t(W) @ im2col(h')      W_grad = flip_t(sum_n x_n @ im2col(h')_n^T)
#
# where ``h'`` is the padded cotangent. ``flip_t`` only permutes entries and is its own inverse.

_CHUNK_ELEMENTS = 1 << 20  # columns per chunk: 4 MiB of float32


def _chunks(n: int, per_sample: int, like: Any) -> list[tuple[int, int]]:
    """Batch ranges whose columns fit the chunk budget (the whole batch off the CPU)."""
    size = n
    if backend.backend_name(like) == "numpy":
        size = max(1, min(n, _CHUNK_ELEMENTS // max(per_sample, 1)))
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def _kg(geom: ConvGeom, channels: int) -> int:
    return channels // geom.groups * math.prod(geom.kernel)


def _unit_stride(geom: ConvGeom) -> bool:
    return all(s == 1 for s in geom.stride)


def _pointwise(geom: ConvGeom) -> bool:
    """A 1x1 kernel over an unpadded input: the input is its own column matrix."""
    return (
        all(k == 1 for k in geom.kernel)
        and all(p == (0, 0) for p in geom.pads)
        and (geom.in_sp == geom.out_sp)
    )


def _im2col(x: Any, geom: ConvGeom) -> Any:
    """Columns (m, G, Kg, L) of a raw chunk (m, C, *in_sp), rows ordered (c, *kernel)."""
    xp = ns(x)
    m, c = x.shape[:2]
    shape = (m, geom.groups, _kg(geom, c), math.prod(geom.out_sp))
    if _pointwise(geom):
        return xp.reshape(x, shape)
    v = windows(pad_const(x, geom.pads), geom.kernel, geom.stride, geom.dilation, geom.out_sp)
    return xp.reshape(xp.permute_dims(v, _window_perm(len(geom.kernel))), shape)


def _window_perm(nd: int) -> tuple[int, ...]:
    """(m, C, *out_sp, *kernel) -> (m, C, *kernel, *out_sp)."""
    return (0, 1) + tuple(range(2 + nd, 2 + 2 * nd)) + tuple(range(2, 2 + nd))


class _Columns:
    """im2col of successive batch chunks of one NumPy input, into buffers reused across chunks
    (NumPy only: it writes into views, which the array API leaves undefined).

    The padded copy of a chunk and its column matrix are written into two buffers made once
    (the padding border is zeroed once and never overwritten), and the window view is made
    once: a sweep allocates nothing per chunk (fresh large arrays cost page faults).
    """

    def __init__(self, x: Any, geom: ConvGeom, size: int) -> None:
        xp = ns(x)
        c = x.shape[1]
        self.x, self.pad = x, None
        source = x
        if any(p != (0, 0) for p in geom.pads):
            padded = tuple(s + a + b for s, (a, b) in zip(geom.in_sp, geom.pads))
            self.pad = source = xp.zeros((size, c) + padded, dtype=x.dtype)
            self.inner = (slice(None), slice(None)) + tuple(
                slice(a, a + s) for s, (a, _) in zip(geom.in_sp, geom.pads)
            )
        v = windows(source, geom.kernel, geom.stride, geom.dilation, geom.out_sp)
        self.view = xp.permute_dims(v, _window_perm(len(geom.kernel)))  # (N, C, *kernel, *out)
        self.cols = xp.empty(
            (size, geom.groups, _kg(geom, c), math.prod(geom.out_sp)), dtype=x.dtype
        )
        self.cols_nd = self.cols.reshape((size, c) + geom.kernel + geom.out_sp)

    def __call__(self, a: int, b: int) -> Any:
        m = b - a
        if self.pad is None:
            self.cols_nd[:m] = self.view[a:b]
        else:
            self.pad[:m][self.inner] = self.x[a:b, ...]
            self.cols_nd[:m] = self.view[:m]
        return self.cols[:m]


def _sweep(
    x: Any, geom: ConvGeom, w: Any = None, y: Any = None, bias: Any = None
) -> tuple[Any, Any]:
    """``(W @ im2col(x) + bias, sum_n y_n @ im2col(x)_n^T)`` on raw arrays, one im2col for both.

    x (N, C, *in_sp); W (G, O, Kg) gives (N, G, O, L) (plus ``bias`` (G, O, 1) when given);
    y (N, G, P, L) gives (G, P, Kg). Either product is skipped (None) when its operand is None.
    On NumPy the batch goes in chunks whose columns stay in cache, through reused buffers, with
    the GEMM writing into the output and the bias added to each chunk while it is in cache.
    """
    xp = ns(x, w, y)
    n, c = x.shape[:2]
    kg, length = _kg(geom, c), math.prod(geom.out_sp)
    chunks = _chunks(n, geom.groups * kg * length, x)
    if len(chunks) == 1 or backend.backend_name(x) != "numpy":  # the whole batch at once
        cols = _im2col(x, geom)
        out = None if w is None else xp.matmul(w, cols)
        if bias is not None:
            out += bias
        total = None if y is None else xp.sum(xp.matmul(y, xp.matrix_transpose(cols)), axis=0)
        return out, total
    out = total = None
    if w is not None:
        out = xp.empty((n, geom.groups, w.shape[1], length), dtype=x.dtype)
    columns = None if _pointwise(geom) else _Columns(x, geom, chunks[0][1])
    for a, b in chunks:
        cols = _im2col(x[a:b, ...], geom) if columns is None else columns(a, b)
        if w is not None:
            xp.matmul(w, cols, out=out[a:b, ...])
            if bias is not None:
                out[a:b, ...] += bias
        if y is not None:
            part = xp.sum(xp.matmul(y[a:b, ...], xp.matrix_transpose(cols)), axis=0)
            total = part if total is None else total + part
    return out, total


def _flip_t(w: Any, kernel: tuple[int, ...]) -> Any:
    """(G, A, B * prod(kernel)) -> (G, B, A * prod(kernel)): ``w[g, a, b, i] -> [g, b, a, k-1-i]``.

    The flipped, transposed kernel of the adjoint convolution; a permutation that is its own
    inverse (and so its own adjoint).
    """
    xp = ns(w)
    g, a, bk = w.shape
    nd, kp = len(kernel), math.prod(kernel)
    w5 = xp.flip(xp.reshape(w, (g, a, bk // kp) + kernel), axis=tuple(range(3, 3 + nd)))
    w5 = xp.permute_dims(w5, (0, 2, 1) + tuple(range(3, 3 + nd)))
    return xp.reshape(xp.reshape(w5, (-1,)), (g, bk // kp, a * kp))  # (reshape(-1) copies)


def _adjoint_problem(y: Any, geom: ConvGeom) -> tuple[Any, ConvGeom]:
    """For stride 1: ``y`` (N, G, O, L) as an input (N, G * O, *out_sp), cropped where the
    adjoint convolution's padding ``d (k - 1) - pad`` is negative, and that convolution's geometry
    (from y's spatial size back to ``in_sp``, with the flipped kernel)."""
    xp = ns(y)
    n, gr, o = y.shape[:3]
    ys = xp.reshape(y, (n, gr * o) + geom.out_sp)
    crop, pads = [], []
    for k, d, (a, _), i, s in zip(geom.kernel, geom.dilation, geom.pads, geom.in_sp, geom.out_sp):
        before = d * (k - 1) - a
        after = i + d * (k - 1) - s - before  # so that the output spans in_sp exactly
        crop.append(slice(max(-before, 0), s - max(-after, 0)))
        pads.append((max(before, 0), max(after, 0)))
    if any(c.start or c.stop != s for c, s in zip(crop, geom.out_sp)):
        ys = ys[(slice(None), slice(None)) + tuple(crop)]
    nd = len(geom.kernel)
    adjoint = ConvGeom(
        geom.kernel, (1,) * nd, geom.dilation, tuple(pads), gr, tuple(ys.shape[2:]), geom.in_sp
    )
    return ys, adjoint


def _col2im_add(buf: Any, rows: slice, cols: Any, geom: ConvGeom) -> None:
    """Add columns (m, G, Kg, L) into ``buf[rows]`` of a padded raw buffer (N, C, *padded)."""
    c = buf.shape[1]
    c6 = ns(cols).reshape(cols, (cols.shape[0], c) + geom.kernel + geom.out_sp)
    lead = (slice(None), slice(None))
    for offs, dst in window_slices(geom.kernel, geom.stride, geom.dilation, geom.out_sp):
        buf[(rows,) + dst[1:]] += c6[lead + offs + (Ellipsis,)]


def _transposed(w: Any) -> Any:
    """(G, O, Kg) -> C-contiguous (G, Kg, O): a small copy that makes W^T a plain GEMM operand."""
    xp = ns(w)
    g, o, k = w.shape
    return xp.reshape(xp.reshape(xp.permute_dims(w, (0, 2, 1)), (-1,)), (g, k, o))


@primitive
def _conv(x: Any, w: Any, b: Any, *, geom: ConvGeom) -> Any:
    """``W @ im2col(x) + b``: x (N, C, *in_sp), W (G, O, Kg), b (G, O, 1) or None -> (N, G, O, L).

    The bias rides along (added chunk by chunk, its gradient a sum of the cotangent): not part of
    the trilinear form, so the adjoint kernels call this with ``b=None``.
    """
    return _sweep(x, geom, w=w, bias=b)[0]


@primitive
def _conv_t(y: Any, w: Any, *, geom: ConvGeom) -> Any:
    """``col2im(W^T @ y)``: y (N, G, O, L), W (G, O, Kg) -> (N, C, *in_sp); the adjoint of _conv in x."""
    xp = ns(y, w)
    n = y.shape[0]
    gr, o, kg = w.shape
    c = gr * kg // math.prod(geom.kernel)
    if _unit_stride(geom):
        ys, adjoint = _adjoint_problem(y, geom)
        return xp.reshape(_sweep(ys, adjoint, w=_flip_t(w, geom.kernel))[0], (n, c) + geom.in_sp)
    padded = tuple(s + a + b for s, (a, b) in zip(geom.in_sp, geom.pads))
    buf = backend.zeros((n, c) + padded, dtype=y.dtype, like=y)
    wt = _transposed(w)
    for a, b in _chunks(n, gr * kg * y.shape[3], y):
        _col2im_add(buf, slice(a, b), xp.matmul(wt, y[a:b, ...]), geom)
    if all(p == (0, 0) for p in geom.pads):
        return buf
    return buf[
        (slice(None), slice(None))
        + tuple(slice(a, a + s) for s, (a, _) in zip(geom.in_sp, geom.pads))
    ]


@primitive
def _conv_w(y: Any, x: Any, *, geom: ConvGeom) -> Any:
    """``sum_n y_n @ im2col(x)_n^T``: y (N, G, O, L), x (N, C, *in_sp) -> (G, O, Kg); the adjoint of _conv in W."""
    return _sweep(x, geom, y=y)[1]


def _raw(*xs: Any) -> bool:
    return not any(is_box(v) for v in xs)


@_conv.defvjp_joint
def _conv_vjp(h: Any, ans: Any, argnums: tuple, x: Any, w: Any, b: Any, *, geom: ConvGeom) -> list:
    """x: ``_conv_t(h, W)``; W: ``_conv_w(h, x)``; b: ``sum(h)`` over N and L. First order with
    stride 1 and both x and W wanted: one sweep over im2col of the padded cotangent gives both
    (see the notes above)."""
    want = dict.fromkeys(argnums)
    if 0 in want and 1 in want and _unit_stride(geom) and _raw(h, x, w):
        xp = ns(x, h)
        n, c = x.shape[:2]
        hs, adjoint = _adjoint_problem(h, geom)
        xg = xp.reshape(x, (n, geom.groups, c // geom.groups, math.prod(geom.in_sp)))
        gx, gw = _sweep(hs, adjoint, w=_flip_t(w, geom.kernel), y=xg)
        want[0], want[1] = xp.reshape(gx, x.shape), _flip_t(gw, geom.kernel)
    else:
        if 0 in want:
            want[0] = _conv_t(h, w, geom=geom)
        if 1 in want:
            want[1] = _conv_w(h, x, geom=geom)
    if 2 in want:
        if _raw(h):
            gb = backend.einsum("ngol->go", h)  # one pass, no multi-axis reduction
            want[2] = ns(gb).reshape(gb, tuple(gb.shape) + (1,))
        else:
            want[2] = fnp.expand_dims(fnp.sum(h, axis=(0, 3)), -1)
    return [want[i] for i in argnums]


@_conv_t.defvjp_joint
def _conv_t_vjp(h: Any, ans: Any, argnums: tuple, y: Any, w: Any, *, geom: ConvGeom) -> list:
    """y: ``_conv(h, W)``; W: ``_conv_w(y, h)``; both from one sweep at first order."""
    if argnums == (0, 1) and _raw(h, y, w):
        return list(_sweep(h, geom, w=w, y=y))
    return [_conv(h, w, None, geom=geom) if i == 0 else _conv_w(y, h, geom=geom) for i in argnums]


_conv_w.defvjp(
    lambda h, ans, y, x, *, geom: _conv(x, h, None, geom=geom),
    lambda h, ans, y, x, *, geom: _conv_t(y, h, geom=geom),
)


# ----------------------------------------------------------------------------- convolution


def _conv_nd(
    nd: int, params: Any, x: Any, stride: Any, padding: Any, dilation: Any, groups: int
) -> Any:
    fn = f"conv{nd}d"
    w, b = weight_and_bias(fn, params)
    x, unbatched = batched(fn, x, nd, "C_in")
    rx, rw, rb = strip(x), strip(w), strip(b)
    check_floating(fn, "x", rx)
    check_floating(fn, "weight", rw)
    check_same_dtype(fn, x=rx, weight=rw, bias=rb)
    if rw.ndim != nd + 2:
        raise ValueError(
            f"{fn}: weight must have shape (C_out, C_in // groups, {_KERNEL[nd]}), "
            f"got shape {tuple(rw.shape)}"
        )
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{fn}: groups must be a positive int, got {groups!r}")
    n, c = rx.shape[:2]
    c_out, c_in_g = rw.shape[:2]
    kernel = tuple(rw.shape[2:])
    if c != c_in_g * groups:
        raise ValueError(
            f"{fn}: x has {c} channels (shape {tuple(rx.shape)}) but weight expects "
            f"C_in = weight.shape[1] * groups = {c_in_g} * {groups} = {c_in_g * groups} "
            f"(weight shape {tuple(rw.shape)}). funcnn stores conv weights as "
            "(C_out, C_in // groups, *kernel), like PyTorch."
        )
    if c_out % groups:
        raise ValueError(
            f"{fn}: weight has {c_out} output channels (shape {tuple(rw.shape)}), "
            f"which groups={groups} does not divide"
        )
    if rb is not None and tuple(rb.shape) != (c_out,):
        raise ValueError(
            f"{fn}: bias must have shape ({c_out},) to match weight {tuple(rw.shape)}, got {tuple(rb.shape)}"
        )
    stride_t = ntuple(stride, nd, "stride", fn, 1)
    dil = ntuple(dilation, nd, "dilation", fn, 1)
    in_sp = tuple(rx.shape[2:])
    pads = _conv_padding(fn, padding, nd, kernel, stride_t, dil)
    padded = tuple(s + a + b_ for s, (a, b_) in zip(in_sp, pads))
    ext = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dil))
    if any(p < e for p, e in zip(padded, ext)):
        raise ValueError(
            f"{fn}: the padded input is {padded} (x spatial size {in_sp}, padding {pads}) but the "
            f"dilated kernel spans {ext} (kernel {kernel}, dilation {dil}); the kernel can't be "
            "larger than the padded input"
        )
    out_sp = tuple((p - e) // s + 1 for p, e, s in zip(padded, ext, stride_t))
    geom = ConvGeom(kernel, stride_t, dil, pads, groups, in_sp, out_sp)
    w3 = fnp.reshape(w, (groups, c_out // groups, c_in_g * math.prod(kernel)))
    b3 = None if b is None else fnp.reshape(b, (groups, c_out // groups, 1))
    y = fnp.reshape(_conv(x, w3, b3, geom=geom), (n, c_out) + out_sp)
    return fnp.squeeze(y, 0) if unbatched else y


def _conv_padding(
    fn: str, padding: Any, nd: int, kernel: tuple, stride: tuple, dil: tuple
) -> tuple:
    """PyTorch's padding forms as one (before, after) pair per spatial axis."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(
                    f"{fn}: padding='same' is not supported for strided convolutions "
                    f"(stride={stride}), as in PyTorch; pass explicit padding instead"
                )
            # total d*(k-1); the odd element goes on the right, as in PyTorch
            return tuple(
                (d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dil)
            )
        raise ValueError(
            f"{fn}: padding must be an int, a tuple of ints, 'same' or 'valid', got {padding!r}"
        )
    return tuple((p, p) for p in ntuple(padding, nd, "padding", fn, 0))


def conv1d(
    params: dict, x: Any, *, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1
) -> Any:
    """1-D convolution (cross-correlation, as in PyTorch) over an (N, C_in, L) input.

    Args:
        params: ``{"weight": (C_out, C_in // groups, kL), "bias": (C_out,)}``; bias may be
            absent or None.
        x: (N, C_in, L) or unbatched (C_in, L), same floating dtype as the weight.
        stride, dilation: an int or a 1-tuple (>= 1).
        padding: an int, a 1-tuple, ``'valid'`` (no padding) or ``'same'`` (output length =
            input length; stride must be 1; an odd total padding puts the extra on the right).
        groups: split the channels into this many independent groups.

    Returns:
        (N, C_out, L_out) with ``L_out = (L + 2 * padding - dilation * (kL - 1) - 1) // stride + 1``.

    See also: ``funcnn_modules.nn.Conv1d``, :func:`conv_transpose1d` (the adjoint).
    """
    return _conv_nd(1, params, x, stride, padding, dilation, groups)


def conv2d(
    params: dict, x: Any, *, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1
) -> Any:
    """2-D convolution (cross-correlation, as in PyTorch) over an (N, C_in, H, W) input.

    Args:
        params: ``{"weight": (C_out, C_in // groups, kH, kW), "bias": (C_out,)}``; bias may be
            absent or None.
        x: (N, C_in, H, W) or unbatched (C_in, H, W), same floating dtype as the weight.
        stride, dilation: an int or a pair (>= 1).
        padding: an int, a pair, ``'valid'`` or ``'same'`` (stride 1 only; an odd total
            padding puts the extra row/column on the bottom/right, as in PyTorch).
        groups: split the channels into this many independent groups.

    Returns:
        (N, C_out, H_out, W_out), ``H_out = (H + 2 * padding - dilation * (kH - 1) - 1) // stride + 1``.

    See also: ``funcnn_modules.nn.Conv2d``, :func:`conv_transpose2d` (the adjoint).
    """
    return _conv_nd(2, params, x, stride, padding, dilation, groups)


def conv3d(
    params: dict, x: Any, *, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1
) -> Any:
    """3-D convolution (cross-correlation, as in PyTorch) over an (N, C_in, D, H, W) input.

    Args:
        params: ``{"weight": (C_out, C_in // groups, kD, kH, kW), "bias": (C_out,)}``; bias
            may be absent or None.
        x: (N, C_in, D, H, W) or unbatched (C_in, D, H, W), same floating dtype as the weight.
        stride, dilation: an int or a triple (>= 1).
        padding: an int, a triple, ``'valid'`` or ``'same'`` (stride 1 only).
        groups: split the channels into this many independent groups.

    Returns:
        (N, C_out, D_out, H_out, W_out), each ``(S + 2 * padding - dilation * (k - 1) - 1) // stride + 1``.

    See also: ``funcnn_modules.nn.Conv3d``, :func:`conv_transpose3d` (the adjoint).
    """
    return _conv_nd(3, params, x, stride, padding, dilation, groups)


# ----------------------------------------------------------------------------- transposed convolution


def _conv_transpose_nd(
    nd: int,
    params: Any,
    x: Any,
    stride: Any,
    padding: Any,
    output_padding: Any,
    groups: int,
    dilation: Any,
) -> Any:
    fn = f"conv_transpose{nd}d"
    w, b = weight_and_bias(fn, params)
    x, unbatched = batched(fn, x, nd, "C_in")
    rx, rw, rb = strip(x), strip(w), strip(b)
    check_floating(fn, "x", rx)
    check_floating(fn, "weight", rw)
    check_same_dtype(fn, x=rx, weight=rw, bias=rb)
    if rw.ndim != nd + 2:
        raise ValueError(
            f"{fn}: weight must have shape (C_in, C_out // groups, *kernel) with {nd} kernel "
            f"dimensions, got shape {tuple(rw.shape)}"
        )
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{fn}: groups must be a positive int, got {groups!r}")
    n, c = rx.shape[:2]
    c_in, c_out_g = rw.shape[:2]
    kernel = tuple(rw.shape[2:])
    if c != c_in:
        raise ValueError(
            f"{fn}: x has {c} channels (shape {tuple(rx.shape)}) but weight expects "
            f"C_in = weight.shape[0] = {c_in} (weight shape {tuple(rw.shape)}). Transposed "
            "convolution weights are (C_in, C_out // groups, *kernel), like PyTorch."
        )
    if c_in % groups:
        raise ValueError(f"{fn}: groups={groups} does not divide the {c_in} input channels")
    c_out = c_out_g * groups
    if rb is not None and tuple(rb.shape) != (c_out,):
        raise ValueError(
            f"{fn}: bias must have shape ({c_out},) to match weight {tuple(rw.shape)} and "
            f"groups={groups}, got {tuple(rb.shape)}"
        )
    stride_t = ntuple(stride, nd, "stride", fn, 1)
    dil = ntuple(dilation, nd, "dilation", fn, 1)
    if isinstance(padding, str):
        raise ValueError(
            f"{fn}: padding must be an int or a tuple of ints (no 'same'/'valid', as in PyTorch), got {padding!r}"
        )
    pad = ntuple(padding, nd, "padding", fn, 0)
    opad = ntuple(output_padding, nd, "output_padding", fn, 0)
    if any(op >= s and op >= d for op, s, d in zip(opad, stride_t, dil)):
        raise ValueError(
            f"{fn}: output_padding must be smaller than either stride or dilation, got "
            f"output_padding={opad}, stride={stride_t}, dilation={dil}"
        )
    x_sp = tuple(rx.shape[2:])
    out_sp = tuple(
        (i - 1) * s - 2 * p + d * (k - 1) + op + 1
        for i, s, p, d, k, op in zip(x_sp, stride_t, pad, dil, kernel, opad)
    )
    if any(o < 1 for o in out_sp):
        raise ValueError(
            f"{fn}: the output size {out_sp} is not positive (x spatial size {x_sp}, kernel "
            f"{kernel}, stride {stride_t}, padding {pad}, dilation {dil}, output_padding {opad})"
        )
    # The adjoint of a convolution from out_sp to x_sp whose weight is this weight.
    geom = ConvGeom(kernel, stride_t, dil, tuple((p, p) for p in pad), groups, out_sp, x_sp)
    w3 = fnp.reshape(w, (groups, c_in // groups, c_out_g * math.prod(kernel)))
    xg = fnp.reshape(x, (n, groups, c_in // groups, math.prod(x_sp)))
    y = _conv_t(xg, w3, geom=geom)
    if b is not None:
        y = y + fnp.reshape(b, (c_out,) + (1,) * nd)
    return fnp.squeeze(y, 0) if unbatched else y


_TRANSPOSE_DOC = """{nd}-D transposed convolution over an (N, C_in, {sp}) input: the adjoint of :func:`conv{nd}d`.

    Args:
        params: ``{{"weight": (C_in, C_out // groups, {k}), "bias": (C_out,)}}`` (PyTorch's
            layout); bias may be absent or None.
        x: (N, C_in, {sp}) or unbatched (C_in, {sp}), same floating dtype as the weight.
        stride, padding, dilation: ints or {nd}-tuples; the conv{nd}d options this is the adjoint of.
        output_padding: extra size added to one side of the output (smaller than stride or
            dilation), to pick among the input sizes a strided conv maps to one output size.
        groups: split the channels into this many independent groups.

    Returns:
        (N, C_out, {sp_out}), each ``(S - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1``.

    See also: ``funcnn_modules.nn.ConvTranspose{nd}d``.
    """


def conv_transpose1d(
    params: dict,
    x: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Any:
    return _conv_transpose_nd(1, params, x, stride, padding, output_padding, groups, dilation)


def conv_transpose2d(
    params: dict,
    x: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Any:
    return _conv_transpose_nd(2, params, x, stride, padding, output_padding, groups, dilation)


def conv_transpose3d(
    params: dict,
    x: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Any:
    return _conv_transpose_nd(3, params, x, stride, padding, output_padding, groups, dilation)


conv_transpose1d.__doc__ = _TRANSPOSE_DOC.format(nd=1, sp="L", k="kL", sp_out="L_out")
conv_transpose2d.__doc__ = _TRANSPOSE_DOC.format(nd=2, sp="H, W", k="kH, kW", sp_out="H_out, W_out")
conv_transpose3d.__doc__ = _TRANSPOSE_DOC.format(
    nd=3, sp="D, H, W", k="kD, kH, kW", sp_out="D_out, H_out, W_out"
)


# ----------------------------------------------------------------------------- initialiser


def init_conv(
    key: Any,
    in_channels: int,
    out_channels: int,
    kernel_size: Any,
    groups: int = 1,
    bias: bool = True,
    ndim: int = 2,
    dtype: Any = None,
    transposed: bool = False,
) -> dict:
    """Parameters of a convolution with PyTorch's default initialisation.

    Weight and bias are uniform on ``[-1/sqrt(fan_in), 1/sqrt(fan_in))`` (kaiming_uniform with
    ``a=sqrt(5)``), where ``fan_in = weight.shape[1] * prod(kernel_size)``, as in PyTorch (for a
    transposed convolution that is ``out_channels // groups * prod(kernel_size)``).

    Args:
        key: a ``funcnn.random`` key.
        in_channels, out_channels: channel counts, both divisible by ``groups``.
        kernel_size: an int or a tuple of ``ndim`` ints.
        groups: number of channel groups.
        bias: whether to make a bias.
        ndim: 1, 2 or 3 spatial dimensions.
        dtype: floating dtype (default float32).
        transposed: make ``conv_transpose{ndim}d`` parameters instead.

    Returns:
        ``{"weight": (out_channels, in_channels // groups, *kernel), "bias": (out_channels,)}``
        (``(in_channels, out_channels // groups, *kernel)`` when transposed); no "bias" key when
        ``bias`` is False.
    """
    fn = "init_conv"
    if ndim not in (1, 2, 3):
        raise ValueError(f"{fn}: ndim must be 1, 2 or 3, got {ndim!r}")
    kernel = ntuple(kernel_size, ndim, "kernel_size", fn, 1)
    for name, v in (
        ("in_channels", in_channels),
        ("out_channels", out_channels),
        ("groups", groups),
    ):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{fn}: {name} must be a positive int, got {v!r}")
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"{fn}: groups={groups} must divide both in_channels={in_channels} and out_channels={out_channels}"
        )
    if transposed:
        shape = (in_channels, out_channels // groups) + kernel
    else:
        shape = (out_channels, in_channels // groups) + kernel
    bound = 1.0 / math.sqrt(shape[1] * math.prod(kernel))
    kw, kb = random.split(key)
    params = {"weight": random.uniform(kw, shape, dtype, -bound, bound)}
    if bias:
        params["bias"] = random.uniform(kb, (out_channels,), dtype, -bound, bound)
    return params
