"""Normalisation layers: batch_norm, layer_norm, group_norm, and their initialisers.

All three are one fused primitive, :func:`_normalize`: statistics over some axes of ``x``,
normalise, scale and shift, in one node with a hand-derived VJP. They differ only in how ``x``
is reshaped and which axes carry the statistics:

=============  ==========================  ==============  =====================
layer          ``x`` viewed as             stats over      weight broadcast as
=============  ==========================  ==============  =====================
batch_norm     (N, C, L)                   (0, 2)          (1, C, 1)
layer_norm     (M, K), K = normalized      (1,)            (1, K)
group_norm     (N, G, C // G, L)           (2, 3)          (1, G, C // G, 1)
=============  ==========================  ==============  =====================

The primitive also returns the batch mean and (biased) variance: batch_norm needs them for its
running statistics, and the VJP reuses them instead of recomputing.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from typing import Any

from funcnn import backend
from funcnn import numpy as fnp
from funcnn.autodiff._core import is_box, strip
from funcnn.nn._activations import aux_primitive
from funcnn.numpy._helpers import unbroadcast

__all__ = [
    "batch_norm",
    "layer_norm",
    "group_norm",
    "init_batch_norm",
    "init_layer_norm",
    "init_group_norm",
]

ns = backend.namespace


# ----------------------------------------------------------------------------- the fused primitive


_LETTERS = "abcdefgh"


def _count(shape: tuple, axes: tuple) -> int:
    return backend.prod([shape[a] for a in axes])


def _aligned(weight: Any, axes: tuple) -> bool:
    """True when the affine weight is constant along the statistics axes (batch norm)."""
    return weight is None or all(weight.shape[a] == 1 for a in axes)


def _raw_sum(a: Any, axes: tuple, b: Any = None) -> Any:
    """``sum(a * b)`` (or ``sum(a)``) over ``axes``, keeping dims, on raw arrays.

    No temporary for the product: a sum of products over the last axis is a batch of dot
    products (a matmul of (..., 1, L) by (..., L, 1): BLAS, faster than einsum's loop), the rest
    an einsum (one pass, where NumPy's multi-axis ``sum`` over the non-contiguous axes (0, 2) of
    batch norm is three times slower).
    """
    nd = a.ndim
    keep = tuple(1 if i in axes else s for i, s in enumerate(a.shape))
    if b is not None and nd - 1 in axes and tuple(b.shape) == tuple(a.shape):
        xp = ns(a, b)
        d = xp.matmul(xp.expand_dims(a, axis=-2), xp.expand_dims(b, axis=-1))
        a, b = xp.reshape(d, tuple(a.shape[:-1]) + (1,)), None
        axes = tuple(ax for ax in axes if ax != nd - 1)
        if not axes:
            return a
    sub = _LETTERS[:nd]
    out = "".join(c for i, c in enumerate(sub) if i not in axes)
    spec = f"{sub}->{out}" if b is None else f"{sub},{sub}->{out}"
    r = backend.einsum(spec, a) if b is None else backend.einsum(spec, a, b)
    return ns(r).reshape(r, keep)


def _split_axis(shape: tuple, axes: tuple) -> int | None:
    """The first axis the statistics do not mix (channels in batch norm, rows in layer norm):
    slices along it can be normalised independently, on separate threads."""
    return next((i for i in range(len(shape)) if i not in axes), None)


def _part(a: Any, axis: int, sl: slice) -> Any:
    """``a``'s slice ``sl`` along ``axis``, or ``a`` itself where it is broadcast (length 1)."""
    if a is None or a.shape[axis] == 1:
        return a
    return a[(slice(None),) * axis + (sl,)]


def _thread_parts(x: Any, axes: tuple) -> tuple[int | None, list]:
    """(split axis, slices for the CPU threads) for a raw ``x``."""
    ax = _split_axis(tuple(x.shape), axes)
    if ax is None:
        return None, [None]
    return ax, backend.thread_slices(x.shape[ax], backend.prod(x.shape), x)


@aux_primitive
def _normalize(x: Any, weight: Any, bias: Any, *, axes: tuple, eps: float) -> tuple:
    """``((x - mean) / sqrt(var + eps) * weight + bias, mean, var)``, statistics over ``axes``.

    ``weight`` and ``bias`` (either may be None) broadcast against ``x``; ``mean`` and ``var``
    (biased) keep ``x``'s rank, with length 1 along ``axes``. Large NumPy inputs are split along
    the first other axis over the CPU threads (each slice has statistics of its own).
    """
    ax, parts = _thread_parts(x, axes)
    if len(parts) == 1:
        return _normalize_part(x, weight, bias, axes, eps, None)
    xp = ns(x, weight, bias)
    y = xp.empty_like(x)
    done = backend.run_threads(
        lambda sl: _normalize_part(
            *(_part(a, ax, sl) for a in (x, weight, bias)), axes, eps, _part(y, ax, sl)
        ),
        parts,
    )
    return y, xp.concat([d[1] for d in done], axis=ax), xp.concat([d[2] for d in done], axis=ax)


def _normalize_part(x: Any, weight: Any, bias: Any, axes: tuple, eps: float, out: Any) -> tuple:
    """:func:`_normalize` of raw arrays, writing ``y`` into ``out`` when given (NumPy only)."""
    xp = ns(x, weight, bias)
    n = _count(tuple(x.shape), axes)
    mean = _raw_sum(x, axes) / n
    y = x - mean if out is None else xp.subtract(x, mean, out=out)
    var = _raw_sum(y, axes, y) / n  # two passes: exact for inputs with a large mean
    invstd = 1.0 / xp.sqrt(var + eps)
    if _aligned(weight, axes):
        y *= invstd if weight is None else invstd * weight  # one small scale, one big pass
    else:
        y *= invstd
        y *= weight
    if bias is not None:
        y += bias
    return y, mean, var


@_normalize.defvjp_joint
def _normalize_vjp(
    g: Any, ans: Any, argnums: tuple, x: Any, weight: Any, bias: Any, *, axes: tuple, eps: float
) -> list:
    """The cotangents of :func:`_normalize_vjp_part`; at first order on large NumPy arrays,
    computed slice by slice along the split axis on the CPU threads (a parameter's cotangent
    is the concatenation of the slices' where the parameter is split too, else their sum)."""
    traced = any(is_box(v) for v in (*g, x, weight, bias, *ans))
    ax, parts = (None, [None]) if traced else _thread_parts(x, axes)
    if len(parts) == 1:
        return _normalize_vjp_part(g, ans, argnums, x, weight, bias, axes, eps, traced, None)
    xp = ns(x, weight, bias)
    gx = xp.empty_like(x) if 0 in argnums else None

    def part(sl: slice) -> list:
        g_, ans_, (x_, w_, b_) = (
            [_part(v, ax, sl) for v in vs] for vs in (g, ans, (x, weight, bias))
        )
        out = _part(gx, ax, sl)
        return _normalize_vjp_part(g_, ans_, argnums, x_, w_, b_, axes, eps, False, out)

    done = backend.run_threads(part, parts)
    grads = []
    for j, i in enumerate(argnums):
        slices = [d[j] for d in done]
        if i == 0:
            grads.append(gx)
        elif (x, weight, bias)[i].shape[ax] == 1:  # broadcast along the split: add the slices'
            grads.append(functools.reduce(operator.add, slices))
        else:
            grads.append(xp.concat(slices, axis=ax))
    return grads


def _normalize_vjp_part(
    g: Any,
    ans: Any,
    argnums: tuple,
    x: Any,
    weight: Any,
    bias: Any,
    axes: tuple,
    eps: float,
    traced: bool,
    out: Any,
) -> list:
    """Cotangents of x, weight, bias, with ``xc = x - mean``, ``s = 1 / sqrt(var + eps)``:

    ``gx = s (gxh - mean(gxh) - xhat mean(gxh xhat)) + gmean / n + 2 gvar xc / n``, where
    ``xhat = xc s`` and ``gxh = gy * weight``; ``gweight = sum(gy xhat)``, ``gbias = sum(gy)``
    (sums over the axes the parameter is broadcast along). Every per-channel factor is folded
    into small coefficients first: ``gx = gxh * s + xhat * k + c`` (or, when the weight is
    constant along the statistics axes as in batch norm, ``gx = gy * a + xc * k + c``).

    On raw arrays (first order) the big-array work is done in place, and in the batch-norm case
    ``xc`` is not rebuilt from x when the output ``y = xc a + bias`` (``a = s weight``) gives it
    back to float precision (see :func:`_invertible`): ``sum(gy xc) = (sum(gy y) - bias sum(gy))
    / a`` and ``xc k = y k / a - bias k / a``, one full-size pass fewer. When any input is traced
    (an outer differentiation) the formula runs in funcnn ops, so it can be differentiated.
    ``x``'s cotangent is written into ``out`` when given (raw NumPy arrays only).
    """
    gy, gmean, gvar = g
    y, mean, var = ans
    n = _count(tuple(x.shape), axes)
    if gy is None:
        gy = fnp.zeros_like(x)
    want = dict.fromkeys(argnums)
    s = 1.0 / fnp.sqrt(var + eps)
    aligned = _aligned(weight, axes)
    from_y = aligned and not traced and _invertible(weight, bias, axes)
    if not from_y:
        xc = x - mean  # a fresh array: may be overwritten on the raw path
    if aligned:
        a = s if weight is None else s * weight  # d y / d x at fixed statistics
        if traced:
            s1 = fnp.sum(gy, axis=axes, keepdims=True)
            s2 = fnp.sum(gy * xc, axis=axes, keepdims=True)
        elif from_y:
            s1, s2 = _raw_sum(gy, axes), _raw_sum(gy, axes, y)
            s2 = (s2 if bias is None else s2 - bias * s1) / a
        else:
            s1, s2 = _raw_sum(gy, axes), _raw_sum(gy, axes, xc)
        if 1 in want:
            want[1] = unbroadcast(s2 * s, weight)
        if 2 in want:
            want[2] = unbroadcast(s1, bias)
        if 0 in want:
            k = a * (s * s) * s2 * (-1.0 / n)
            c = a * s1 * (-1.0 / n)
            big, big_coef, other = gy, a, None if from_y else xc
    else:
        xhat = xc * s
        gxh = gy if weight is None else gy * weight
        if traced:
            m1 = fnp.sum(gxh, axis=axes, keepdims=True) * (1.0 / n)
            m2 = fnp.sum(gxh * xhat, axis=axes, keepdims=True) * (1.0 / n)
        else:
            m1, m2 = _raw_sum(gxh, axes) * (1.0 / n), _raw_sum(gxh, axes, xhat) * (1.0 / n)
        if 1 in want:
            want[1] = unbroadcast(gy * xhat, weight)
        if 2 in want:
            want[2] = unbroadcast(gy, bias)
        if 0 in want:
            k = -(s * m2)
            c = -(s * m1)
            if gvar is not None:
                gvar = gvar / s  # 2 gvar xc / n = xhat (2 gvar / (n s))
            big, big_coef, other = gxh, s, xhat
    if 0 in want:
        if gvar is not None:
            k = k + gvar * (2.0 / n)
        if gmean is not None:
            c = c + gmean * (1.0 / n)
        if traced:
            want[0] = big * big_coef + other * k + c
        elif from_y:  # xc k + c = y (k / a) + (c - bias k / a)
            k = k / a
            out = _times(big, big_coef, out)
            out += y * k
            out += c if bias is None else c - bias * k
            want[0] = out
        else:
            out = _times(big, big_coef, out)
            other *= k  # ``other`` (xc or xhat) is this rule's own temporary
            out += other
            out += c
            want[0] = out
    return [want[i] for i in argnums]


def _times(a: Any, b: Any, out: Any) -> Any:
    """``a * b``, into ``out`` when given."""
    return a * b if out is None else ns(a, b).multiply(a, b, out=out)


def _invertible(weight: Any, bias: Any, axes: tuple) -> bool:
    """Whether ``xc = (y - bias) / a`` recovers the centred input from the output of an aligned
    normalisation to float precision: every weight nonzero, the bias constant along ``axes``,
    and ``|bias| <= 4 |weight|``. Rounding ``y`` then costs ``xc`` at most about five units in
    the last place of its standard deviation, as much as rebuilding ``x - mean`` does.
    """
    w = None if weight is None else ns(weight).abs(weight)
    if w is not None and not bool(ns(w).all(w > 0)):
        return False
    if bias is None:
        return True
    if any(bias.shape[ax] != 1 for ax in axes if ax < bias.ndim):
        return False
    xp = ns(bias)
    return bool(xp.all(xp.abs(bias) <= (4.0 if w is None else 4.0 * w)))


# ----------------------------------------------------------------------------- argument checks


def _shape(x: Any) -> tuple:
    return tuple(strip(x).shape)


def _affine(params: Any, fn: str) -> tuple[Any, Any]:
    """``(weight, bias)`` from a params dict (None, {} or a dict with either key)."""
    if params is None:
        return None, None
    if not isinstance(params, dict):
        raise TypeError(
            f"{fn}: params must be a dict {{'weight': ..., 'bias': ...}} (or None for no affine "
            f"parameters), got {type(params).__name__}"
        )
    extra = sorted(set(params) - {"weight", "bias"})
    if extra:
        hint = ""
        if {"running_mean", "running_var"} & set(extra):
            hint = " (running statistics belong in `state`, the second argument)"
        raise ValueError(
            f"{fn}: params has unexpected keys {extra}; expected 'weight' and/or 'bias'{hint}"
        )
    return params.get("weight"), params.get("bias")


def _check_param(fn: str, name: str, p: Any, shape: tuple, x: Any) -> None:
    if p is None:
        return
    got = _shape(p)
    if got != shape:
        raise ValueError(f"{fn}: {name} has shape {got} but x of shape {_shape(x)} needs {shape}")
    backend.namespace(strip(p), strip(x))  # two backends: say so, not "two dtypes"
    if strip(p).dtype != strip(x).dtype:
        raise TypeError(
            f"{fn}: {name} has dtype {strip(p).dtype} but x has dtype {strip(x).dtype}; "
            "cast one of them so that they match"
        )


def _check_floating(fn: str, x: Any) -> None:
    if not backend.is_floating(strip(x)):
        raise TypeError(f"{fn}: x must be a floating array, got dtype {strip(x).dtype}")


def _check_eps(fn: str, eps: float) -> float:
    if not isinstance(eps, (int, float)) or not eps >= 0:
        raise ValueError(f"{fn}: eps must be a non-negative number, got {eps!r}")
    return float(eps)


def _reshape_param(p: Any, shape: tuple) -> Any:
    return None if p is None else fnp.reshape(p, shape)


# ----------------------------------------------------------------------------- batch norm


_STATE_KEYS = ("running_mean", "running_var", "num_batches_tracked")


def _check_state(state: Any, c: int, x: Any) -> None:
    if not isinstance(state, dict):
        raise TypeError(
            "batch_norm: state must be a dict with keys 'running_mean', 'running_var' and "
            f"'num_batches_tracked' (or None to use batch statistics only), got "
            f"{type(state).__name__}"
        )
    missing = [k for k in _STATE_KEYS if k not in state]
    extra = sorted(set(state) - set(_STATE_KEYS))
    if missing or extra:
        raise ValueError(
            f"batch_norm: state is missing keys {missing} and has unexpected keys {extra}; "
            f"expected exactly {list(_STATE_KEYS)} (make one with init_batch_norm)"
        )
    for k in ("running_mean", "running_var"):
        if _shape(state[k]) != (c,):
            raise ValueError(
                f"batch_norm: state['{k}'] has shape {_shape(state[k])} but x of shape "
                f"{_shape(x)} has {c} channels (axis 1); expected ({c},)"
            )


def _updated_state(state: dict, mean: Any, var: Any, n: int, momentum: float | None) -> dict:
    """PyTorch's running-statistics update (no gradient flows into the state)."""
    rm, rv = strip(state["running_mean"]), strip(state["running_var"])
    xp = ns(rm, mean)
    count = xp.asarray(strip(state["num_batches_tracked"]) + 1)
    factor = 1.0 / float(count) if momentum is None else momentum
    c = rm.shape[0]
    mean = xp.astype(xp.reshape(mean, (c,)), rm.dtype)
    unbiased = xp.astype(xp.reshape(var, (c,)), rv.dtype) * (n / (n - 1))
    return {
        "running_mean": (1.0 - factor) * rm + factor * mean,
        "running_var": (1.0 - factor) * rv + factor * unbiased,
        "num_batches_tracked": count,
    }


def batch_norm(
    params: dict | None,
    state: dict | None,
    x: Any,
    *,
    training: bool = True,
    momentum: float | None = 0.1,
    eps: float = 1e-5,
) -> tuple[Any, dict | None]:
    """Batch normalisation over the channel axis 1 of ``x`` (PyTorch's BatchNorm1d/2d/3d).

    In training, each channel is normalised by the mean and biased variance of the batch (over
    N and the spatial axes) and the running statistics are updated like PyTorch:
    ``running = (1 - momentum) * running + momentum * batch`` with the *unbiased* batch variance
    (``momentum=None``: a cumulative average, ``1 / num_batches_tracked``). In evaluation
    (``training=False``) the running statistics are used instead. With ``state=None`` (PyTorch's
    ``track_running_stats=False``) batch statistics are always used and no state is returned.

    Args:
        params: ``{"weight": (C,), "bias": (C,)}``, or None / ``{}`` when ``affine=False``.
        state: ``{"running_mean": (C,), "running_var": (C,), "num_batches_tracked": ()}``
            (int64), or None.
        x: (N, C) or (N, C, *spatial).
        training: use (and update) batch statistics.
        momentum: the running-average factor, or None for a cumulative average.
        eps: added to the variance before the square root.
    Returns:
        ``(y, new_state)``: y has the shape and dtype of ``x``; ``new_state`` is a new dict
        (the input state is not modified), the same dict in evaluation, or None.

    See also: ``init_batch_norm``; ``funcnn_modules.nn.BatchNorm2d``.
    """
    fn = "batch_norm"
    shape = _shape(x)
    if len(shape) < 2:
        raise ValueError(
            f"{fn}: x must have shape (N, C) or (N, C, *spatial), got shape {shape} "
            "(a single sample needs a batch axis: x[None])"
        )
    _check_floating(fn, x)
    eps = _check_eps(fn, eps)
    if momentum is not None and not (isinstance(momentum, (int, float)) and 0 <= momentum <= 1):
        raise ValueError(f"{fn}: momentum must be a number in [0, 1] or None, got {momentum!r}")
    weight, bias = _affine(params, fn)
    n, c = shape[0], shape[1]
    _check_param(fn, "weight", weight, (c,), x)
    _check_param(fn, "bias", bias, (c,), x)
    if state is not None:
        _check_state(state, c, x)
    length = backend.prod(shape[2:])
    x3 = fnp.reshape(x, (n, c, length))
    w3 = _reshape_param(weight, (1, c, 1))
    b3 = _reshape_param(bias, (1, c, 1))
    if training or state is None:
        count = n * length
        if count <= 1:
            raise ValueError(
                f"{fn}: expected more than 1 value per channel when training, got x of shape "
                f"{shape}; use a batch of at least 2, or training=False"
            )
        y3, mean, var = _normalize(x3, w3, b3, axes=(0, 2), eps=eps)
        if training and state is not None:
            state = _updated_state(state, strip(mean), strip(var), count, momentum)
    else:
        invstd = 1.0 / fnp.sqrt(state["running_var"] + eps)
        scale = invstd if weight is None else invstd * weight
        shift = -(state["running_mean"] * scale)
        if bias is not None:
            shift = shift + bias
        y3 = x3 * fnp.reshape(scale, (1, c, 1)) + fnp.reshape(shift, (1, c, 1))
    return fnp.reshape(y3, shape), state


def init_batch_norm(
    num_features: int, affine: bool = True, track_running_stats: bool = True, dtype: Any = None
) -> tuple[dict, dict | None]:
    """Parameters and state of a batch-norm layer, initialised like PyTorch.

    Args:
        num_features: C, the number of channels.
        affine: whether there are a weight (ones) and a bias (zeros).
        track_running_stats: whether there is a state (running mean 0, running variance 1,
            ``num_batches_tracked`` 0 as int64).
        dtype: the floating dtype (the default float dtype when None).
    Returns:
        ``(params, state)``: params ``{"weight": (C,), "bias": (C,)}`` or ``{}``; state as
        described for :func:`batch_norm`, or None.
    """
    return init_channel_norm("init_batch_norm", num_features, affine, track_running_stats, dtype)


def init_channel_norm(
    fn: str, num_features: int, affine: bool, track_running_stats: bool, dtype: Any
) -> tuple[dict, dict | None]:
    """Per-channel weight/bias and running statistics (batch and instance norm), as PyTorch."""
    c = _check_count(fn, "num_features", num_features)
    params = _ones_zeros((c,), dtype) if affine else {}
    state = None
    if track_running_stats:
        state = {
            "running_mean": backend.zeros((c,), dtype=dtype),
            "running_var": backend.full((c,), 1.0, dtype=dtype),
            "num_batches_tracked": backend.zeros((), dtype="int64"),
        }
    return params, state


# ----------------------------------------------------------------------------- layer norm


def _as_shape(fn: str, normalized_shape: int | Sequence[int]) -> tuple:
    if isinstance(normalized_shape, int):
        return (normalized_shape,)
    try:
        return tuple(int(s) for s in normalized_shape)
    except TypeError:
        raise TypeError(
            f"{fn}: normalized_shape must be an int or a tuple of ints, got {normalized_shape!r}"
        ) from None


def layer_norm(
    params: dict | None,
    x: Any,
    *,
    normalized_shape: int | Sequence[int] | None = None,
    eps: float = 1e-5,
) -> Any:
    """Layer normalisation over the trailing dimensions of ``x`` (PyTorch's LayerNorm).

    The normalised dimensions are those of the weight's shape (or the bias's), or
    ``normalized_shape`` when there are no parameters; each sample is normalised by its own
    mean and biased variance over them, then scaled and shifted elementwise.

    Args:
        params: ``{"weight": normalized_shape, "bias": normalized_shape}`` (either may be
            absent), or None / ``{}``.
        x: (*, *normalized_shape).
        normalized_shape: required when there are no parameters; checked against them otherwise.
        eps: added to the variance before the square root.
    Returns:
        same shape and dtype as ``x``.

    See also: ``init_layer_norm``; ``funcnn_modules.nn.LayerNorm``.
    """
    fn = "layer_norm"
    weight, bias = _affine(params, fn)
    eps = _check_eps(fn, eps)
    _check_floating(fn, x)
    ref = weight if weight is not None else bias
    if ref is not None:
        norm = _shape(ref)
        if normalized_shape is not None and _as_shape(fn, normalized_shape) != norm:
            raise ValueError(
                f"{fn}: normalized_shape {_as_shape(fn, normalized_shape)} differs from the "
                f"parameters' shape {norm}"
            )
    elif normalized_shape is None:
        raise ValueError(
            f"{fn}: without a weight or bias the normalized dimensions are unknown; "
            "pass normalized_shape=..."
        )
    else:
        norm = _as_shape(fn, normalized_shape)
    shape = _shape(x)
    d = len(norm)
    if d == 0 or len(shape) < d or shape[len(shape) - d :] != norm:
        raise ValueError(
            f"{fn}: x has shape {shape} but the normalized shape is {norm}; x's trailing "
            f"dimensions must equal it"
        )
    _check_param(fn, "weight", weight, norm, x)
    _check_param(fn, "bias", bias, norm, x)
    k = backend.prod(norm)
    m = backend.prod(shape[: len(shape) - d])
    y, _, _ = _normalize(
        fnp.reshape(x, (m, k)),
        _reshape_param(weight, (1, k)),
        _reshape_param(bias, (1, k)),
        axes=(1,),
        eps=eps,
    )
    return fnp.reshape(y, shape)


def init_layer_norm(
    normalized_shape: int | Sequence[int],
    elementwise_affine: bool = True,
    bias: bool = True,
    dtype: Any = None,
) -> dict:
    """Parameters of a layer-norm layer: weight ones, bias zeros, of ``normalized_shape``.

    Returns:
        ``{"weight": shape, "bias": shape}``, ``{"weight": shape}`` (``bias=False``), or ``{}``
        (``elementwise_affine=False``).
    """
    shape = _as_shape("init_layer_norm", normalized_shape)
    for s in shape:
        _check_count("init_layer_norm", "normalized_shape", s)
    if not elementwise_affine:
        return {}
    params = _ones_zeros(shape, dtype)
    if not bias:
        del params["bias"]
    return params


# ----------------------------------------------------------------------------- group norm


def group_norm(params: dict | None, x: Any, num_groups: int, *, eps: float = 1e-5) -> Any:
    """Group normalisation: the C channels split into ``num_groups`` groups, each sample's group
    normalised by its mean and biased variance (over the group's channels and the spatial axes),
    then scaled and shifted per channel (PyTorch's GroupNorm).

    Args:
        params: ``{"weight": (C,), "bias": (C,)}`` (either may be absent), or None / ``{}``.
        x: (N, C, *spatial).
        num_groups: G, dividing C.
        eps: added to the variance before the square root.
    Returns:
        same shape and dtype as ``x``.

    See also: ``init_group_norm``; ``funcnn_modules.nn.GroupNorm``.
    """
    fn = "group_norm"
    weight, bias = _affine(params, fn)
    eps = _check_eps(fn, eps)
    _check_floating(fn, x)
    shape = _shape(x)
    if len(shape) < 2:
        raise ValueError(f"{fn}: x must have shape (N, C, *spatial), got shape {shape}")
    n, c = shape[0], shape[1]
    g = _check_count(fn, "num_groups", num_groups)
    if c % g:
        raise ValueError(
            f"{fn}: x has {c} channels (shape {shape}), which num_groups={g} does not divide"
        )
    _check_param(fn, "weight", weight, (c,), x)
    _check_param(fn, "bias", bias, (c,), x)
    length = backend.prod(shape[2:])
    y, _, _ = _normalize(
        fnp.reshape(x, (n, g, c // g, length)),
        _reshape_param(weight, (1, g, c // g, 1)),
        _reshape_param(bias, (1, g, c // g, 1)),
        axes=(2, 3),
        eps=eps,
    )
    return fnp.reshape(y, shape)


def init_group_norm(
    num_groups: int, num_channels: int, affine: bool = True, dtype: Any = None
) -> dict:
    """Parameters of a group-norm layer: ``{"weight": ones (C,), "bias": zeros (C,)}`` or ``{}``."""
    g = _check_count("init_group_norm", "num_groups", num_groups)
    c = _check_count("init_group_norm", "num_channels", num_channels)
    if c % g:
        raise ValueError(f"init_group_norm: num_groups={g} does not divide num_channels={c}")
    return _ones_zeros((c,), dtype) if affine else {}


# ----------------------------------------------------------------------------- helpers


def _check_count(fn: str, name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ValueError(f"{fn}: {name} must be a positive int, got {v!r}")
    return v


def _ones_zeros(shape: tuple, dtype: Any) -> dict:
    return {
        "weight": backend.full(shape, 1.0, dtype=dtype),
        "bias": backend.zeros(shape, dtype=dtype),
    }
