"""Losses with PyTorch's semantics: cross_entropy (one fused primitive), nll_loss, mse_loss,
l1_loss, smooth_l1_loss, huber_loss, binary_cross_entropy, binary_cross_entropy_with_logits,
kl_div.

Every loss takes ``reduction`` = ``"mean"`` (the default), ``"sum"`` or ``"none"`` (kl_div also
``"batchmean"``) and gives PyTorch's numbers, including its weighting rules: a weighted ``"mean"``
of class-index targets divides by the summed weights of the targets that are not ignored.

Where PyTorch would silently broadcast an input and a target of different shapes (it warns),
these raise: the usual cause is a (N, 1) output compared with a (N,) target.
"""

from __future__ import annotations

import functools
import operator
from typing import Any

from funcnn import backend
from funcnn import numpy as fnp
from funcnn.autodiff._core import is_box, primitive, strip
from funcnn.nn._activations import aux_primitive, log_sigmoid

__all__ = [
    "cross_entropy",
    "nll_loss",
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "kl_div",
]

ns = backend.namespace
_REDUCTIONS = ("mean", "sum", "none")


# ----------------------------------------------------------------------------- shared checks


def _shape(x: Any) -> tuple:
    return tuple(strip(x).shape)


def _dtype_name(x: Any) -> str:
    d = strip(x).dtype
    return str(getattr(d, "name", d)).rsplit(".", 1)[-1]


def _check_reduction(fn: str, reduction: str, allowed: tuple = _REDUCTIONS) -> None:
    if reduction not in allowed:
        names = ", ".join(repr(r) for r in allowed)
        raise ValueError(f"{fn}: reduction must be one of {names}, got {reduction!r}")


def _check_floating(fn: str, name: str, x: Any) -> None:
    if not backend.is_array(strip(x)) or not backend.is_floating(strip(x)):
        got = f"dtype {strip(x).dtype}" if backend.is_array(strip(x)) else type(x).__name__
        raise TypeError(f"{fn}: {name} must be a floating array, got {got}")


def _check_same_shape(fn: str, input: Any, target: Any) -> None:  # noqa: A002 - PyTorch's name
    a, b = _shape(input), _shape(target)
    if a != b:
        try:
            joint = f"; broadcasting would give shape {ns().broadcast_shapes(a, b)}"
        except ValueError:
            joint = ""
        raise ValueError(
            f"{fn}: input has shape {a} but target has shape {b}; they must match{joint} "
            "(PyTorch broadcasts with a warning, which is almost always a bug: reshape one, "
            "e.g. input.reshape(target.shape) for a (N, 1) output and a (N,) target)"
        )


def _check_broadcasts_to(fn: str, name: str, p: Any, shape: tuple) -> None:
    if p is None:
        return
    _check_floating(fn, name, p)
    try:
        out = ns().broadcast_shapes(_shape(p), shape)
    except ValueError:
        out = None
    if out != shape:
        raise ValueError(
            f"{fn}: {name} has shape {_shape(p)}, which does not broadcast to the input's shape "
            f"{shape}"
        )


def _reduce(loss: Any, reduction: str) -> Any:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return fnp.sum(loss)
    return fnp.mean(loss)


def _mask(cond: Any, like: Any) -> Any:
    """A boolean array as 0/1 in ``like``'s dtype (a select by multiplication; see activations)."""
    xp = ns(cond)
    return xp.astype(cond, backend.resolve_dtype(xp, strip(like).dtype))


# ----------------------------------------------------------------------------- class targets


def _class_targets(
    fn: str, logits: Any, target: Any, weight: Any, ignore_index: int, what: str = "logits"
) -> tuple[bool, tuple]:
    """Check ``target`` against ``logits`` (N, C, *d) or (C,); return (probabilities?, d-shape).

    Class-index targets are integers of shape (N, *d) (or () for unbatched (C,) logits), each in
    ``[0, C)`` or equal to ``ignore_index``; probability targets are floating with the logits'
    shape.
    """
    shape = _shape(logits)
    if len(shape) == 0:
        raise ValueError(
            f"{fn}: {what} must have shape (N, C), (N, C, d1, ...) or (C,), got a 0-d array"
        )
    _check_floating(fn, what, logits)
    t = strip(target)
    if not backend.is_array(t):
        raise TypeError(f"{fn}: target must be an array, got {type(target).__name__}")
    c = shape[0] if len(shape) == 1 else shape[1]
    index_shape = () if len(shape) == 1 else shape[:1] + shape[2:]
    tshape = tuple(t.shape)
    if weight is not None:
        _check_floating(fn, "weight", weight)
        if _shape(weight) != (c,):
            raise ValueError(
                f"{fn}: weight has shape {_shape(weight)} but {what} of shape {shape} have "
                f"C={c} classes; weight must have shape ({c},)"
            )
    if backend.is_floating(t):
        if tshape == shape:
            return True, index_shape
        if tshape == index_shape:
            raise TypeError(
                f"{fn}: target has shape {tshape} (the shape of class indices) but dtype "
                f"{t.dtype}; class indices must be integers (cast with .astype('int64')). "
                f"Floating targets are class probabilities and must have {what}' shape {shape}"
            )
        raise ValueError(
            f"{fn}: target has shape {tshape} and dtype {t.dtype} but {what} have shape "
            f"{shape}; expected class indices of shape {index_shape} (integers) or class "
            f"probabilities of shape {shape} (floating)"
        )
    if _dtype_name(t) == "bool" or not backend.is_integer(t):
        raise TypeError(
            f"{fn}: target must hold integer class indices (or floating class probabilities), "
            f"got dtype {t.dtype}"
        )
    if tshape != index_shape:
        raise ValueError(
            f"{fn}: target has shape {tshape} but {what} of shape {shape} need class indices of "
            f"shape {index_shape}"
            + (" (the class axis of the logits is axis 1)" if len(shape) > 2 else "")
        )
    xp = ns(t)
    bad = xp.logical_and(t != ignore_index, xp.logical_or(t < 0, t >= c))
    if t.size and bool(xp.any(bad)):
        host_t, host_bad = backend.to_numpy(t), backend.to_numpy(bad)
        value = int(host_t[host_bad][0])
        raise IndexError(
            f"{fn}: target holds class index {value}, outside [0, {c}) for {what} with C={c} "
            f"classes (ignore_index={ignore_index})"
        )
    return False, index_shape


def _as_ncl(x: Any, shape: tuple) -> Any:
    """(N, C, d1, ...) as (N, C, L); (N, C) and (C,) as (N, C) and (1, C)."""
    if len(shape) == 1:
        return fnp.reshape(x, (1, shape[0]))
    if len(shape) == 2:
        return x
    return fnp.reshape(x, (shape[0], shape[1], backend.prod(shape[2:])))


def _index_info(target: Any, weight: Any, ignore_index: int, like: Any) -> tuple:
    """Raw ``(safe_target, w_t, valid)``: ignored targets read class 0 with weight 0."""
    xp = ns(target)
    valid = target != ignore_index
    safe = xp.where(valid, target, xp.zeros_like(target))
    vmask = _mask(valid, like)
    if weight is None:
        return safe, vmask, vmask
    w = strip(weight)
    w_t = xp.reshape(xp.take(w, xp.reshape(safe, (-1,)), axis=0), tuple(target.shape))
    return safe, w_t * vmask, vmask


def _target_index(safe: Any) -> tuple:
    """The advanced index of logits[i, t_i] (or logits[i, t_il, l])."""
    xp = ns(safe)
    n = safe.shape[0]
    rows = backend.arange(n, like=safe)
    if safe.ndim == 1:
        return (rows, safe)
    cols = backend.arange(safe.shape[1], like=safe)
    return (xp.reshape(rows, (n, 1)), safe, xp.reshape(cols, (1, -1)))


def _quiet_divide(total: Any, den: Any) -> Any:
    """``total / den``, NaN (as PyTorch) without a floating-point warning when ``den`` is 0."""
    xp = ns(strip(den))
    zero = strip(den) == 0
    if not bool(xp.any(zero)):
        return total / den
    return fnp.where(zero, float("nan"), total / fnp.where(zero, 1.0, den))


# ----------------------------------------------------------------------------- cross entropy


def _exp_inplace(xp: Any, a: Any) -> Any:
    """``exp(a)``, written over ``a`` (a temporary) where the backend allows it."""
    if backend.backend_name(a) in ("numpy", "cupy"):
        return xp.exp(a, out=a)
    return xp.exp(a)


def _in_place(gx: Any, v: Any) -> bool:
    """Whether ``gx[idx] -= v`` may run in place: raw NumPy or CuPy arrays, nothing traced.

    ``gx`` is then the rule's own fresh array and the target indices are distinct (one class
    per sample and position), so a plain fancy-indexed update is exact.
    """
    return not is_box(gx) and not is_box(v) and backend.backend_name(gx) in ("numpy", "cupy")


def _row_parts(logits: Any) -> list:
    """Slices of the batch axis to compute on separate CPU threads (one slice: no split)."""
    return backend.thread_slices(logits.shape[0], backend.prod(logits.shape), logits)


@aux_primitive
def _cross_entropy(
    logits: Any,
    target: Any,
    weight: Any,
    *,
    probs: bool,
    reduction: str,
    label_smoothing: float,
    ignore_index: int,
) -> tuple:
    """``(loss, softmax(logits), logsumexp(logits))`` over the class axis 1 of (N, C[, L]) logits.

    Large NumPy batches are split over the CPU threads by samples (:func:`_cross_entropy_rows`).
    """
    xp = ns(logits, weight)
    parts = _row_parts(logits)
    opts = (weight, probs, label_smoothing, ignore_index)
    if len(parts) == 1:
        each, p, lse, den = _cross_entropy_rows(logits, target, *opts, None)
    else:
        p = xp.empty_like(logits)
        done = backend.run_threads(
            lambda sl: _cross_entropy_rows(logits[sl, ...], target[sl, ...], *opts, p[sl, ...]),
            parts,
        )
        each = xp.concat([d[0] for d in done], axis=0)
        lse = xp.concat([d[2] for d in done], axis=0)
        den = functools.reduce(operator.add, [d[3] for d in done])
    if reduction == "none":
        loss = each
    elif reduction == "sum":
        loss = xp.sum(each)
    else:
        loss = strip(_quiet_divide(xp.sum(each), den))
    return loss, p, lse


def _cross_entropy_rows(
    logits: Any,
    target: Any,
    weight: Any,
    probs: bool,
    ls: float,
    ignore_index: int,
    out: Any,
) -> tuple:
    """``(per-sample loss, softmax, logsumexp, the mean's denominator)`` of raw (N, C[, L])
    logits; the softmax is written into ``out`` when given (NumPy only)."""
    xp = ns(logits, weight)
    c = logits.shape[1]
    m = xp.max(logits, axis=1, keepdims=True)
    p = (
        _exp_inplace(xp, logits - m)
        if out is None
        else xp.exp(xp.subtract(logits, m, out=out), out=out)
    )
    total = xp.sum(p, axis=1, keepdims=True)
    lse = xp.log(total) + m  # (N, 1[, L])
    p *= 1.0 / total  # a multiply by the (N, 1[, L]) reciprocal: cheaper than a divide
    wb = None if weight is None else xp.reshape(weight, (1, c) + (1,) * (logits.ndim - 2))
    if probs:
        q = target if ls == 0 else target * (1.0 - ls) + ls / c
        if wb is not None:
            q = q * wb
        each = -xp.sum(q * (logits - lse), axis=1)
        return each, p, lse, float(backend.prod(each.shape))
    safe, w_t, valid = _index_info(target, weight, ignore_index, logits)
    picked = xp.take_along_axis(logits, xp.expand_dims(safe, axis=1), axis=1)
    each = w_t * xp.squeeze(lse - picked, axis=1)
    if ls > 0:
        logp = logits - lse
        smooth = -xp.sum(logp if wb is None else logp * wb, axis=1)
        each = (1.0 - ls) * each + (ls / c) * (smooth * valid)
    return each, p, lse, xp.sum(w_t)


@_cross_entropy.defvjp_joint
def _cross_entropy_vjp(
    g: Any,
    ans: Any,
    argnums: tuple,
    logits: Any,
    target: Any,
    weight: Any,
    *,
    probs: bool,
    reduction: str,
    label_smoothing: float,
    ignore_index: int,
) -> list:
    """``d loss / d logits = a * (softmax - q)`` per sample, ``q`` the (smoothed, weighted)
    target distribution and ``a`` the sample's share of the cotangent; plus the terms for the
    softmax and logsumexp residuals when an outer differentiation used them."""
    gl, gp, glse = g
    _, p, lse = ans
    c = logits.shape[1]
    ls = label_smoothing
    nd = len(logits.shape)
    wb = None if weight is None else fnp.reshape(weight, (1, c) + (1,) * (nd - 2))
    want = dict.fromkeys(argnums)
    gx = None
    if gl is not None:
        if probs:
            count = backend.prod(p.shape) // c
            a = gl if reduction != "mean" else gl * (1.0 / count)
            a = fnp.expand_dims(a, 1) if reduction == "none" else a
            q = target if ls == 0 else target * (1.0 - ls) + ls / c
            wq = q if wb is None else q * wb
            gx = a * (p * fnp.sum(wq, axis=1, keepdims=True) - wq)
            if 1 in want or 2 in want:
                logp = logits - lse
                if 1 in want:
                    gt = a * logp * (-(1.0 - ls))
                    want[1] = gt if wb is None else gt * wb
                if 2 in want:
                    axes = (0,) + tuple(range(2, nd))
                    want[2] = fnp.sum(a * q * logp, axis=axes) * -1.0
        else:
            target = strip(target)
            if reduction == "mean":
                _, w_t, _ = _index_info(target, weight, ignore_index, strip(logits))
                den = float(ns(w_t).sum(w_t))
                gl = gl * (1.0 / den if den != 0 else 0.0)  # all ignored: no gradient, as PyTorch
            opts = (weight, wb, ls, ignore_index)
            parts = [None] if is_box(gl) or is_box(p) else _row_parts(p)
            if len(parts) == 1:
                gx = _index_target_grad(p, target, gl, *opts, None)
            else:  # gl: a scalar, or one value per sample (reduction="none")
                gx = ns(p).empty_like(p)
                row = lambda v, sl: v[sl, ...] if v.ndim else v  # noqa: E731
                backend.run_threads(
                    lambda sl: _index_target_grad(
                        p[sl, ...], target[sl, ...], row(gl, sl), *opts, gx[sl, ...]
                    ),
                    parts,
                )
    if gp is not None:
        term = p * (gp - fnp.sum(gp * p, axis=1, keepdims=True))
        gx = term if gx is None else gx + term
    if glse is not None:
        gx = p * glse if gx is None else gx + p * glse
    if 0 in want:
        want[0] = gx if gx is not None else fnp.zeros_like(logits)
    for i in (1, 2):
        if i in want and want[i] is None:
            want[i] = fnp.zeros_like(target if i == 1 else weight)
    return [want[i] for i in argnums]


def _index_target_grad(
    p: Any,
    target: Any,
    gl: Any,
    weight: Any,
    wb: Any,
    ls: float,
    ignore_index: int,
    out: Any,
) -> Any:
    """The loss's gradient in the logits for class-index targets: ``a * (p - q)`` per sample,
    ``gl`` already divided by the mean's denominator; into ``out`` when given (NumPy only)."""
    c = p.shape[1]
    safe, w_t, valid = _index_info(target, weight, ignore_index, strip(p))
    a_nll = gl * w_t if ls == 0 else gl * w_t * (1.0 - ls)
    coef = a_nll
    if ls > 0:
        a_s = gl * valid * (ls / c)
        coef = coef + a_s * (float(c) if wb is None else fnp.sum(weight))
    if out is None:
        gx = p * fnp.expand_dims(coef, 1)
    else:
        gx = ns(p).multiply(p, ns(coef).expand_dims(coef, axis=1), out=out)
    if _in_place(gx, a_nll):  # first order: subtract in place (no copy of gx)
        gx[_target_index(safe)] -= a_nll
    else:
        gx = fnp.index_add(gx, _target_index(safe), -a_nll)
    if ls > 0:
        smooth = fnp.expand_dims(a_s, 1)
        if out is None:
            gx = gx - (smooth if wb is None else smooth * wb)
        else:
            gx -= smooth if wb is None else smooth * wb
    return gx


def cross_entropy(
    logits: Any,
    target: Any,
    *,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    ignore_index: int = -100,
    weight: Any = None,
) -> Any:
    """Cross entropy of softmax(logits) against class indices or class probabilities.

    One fused, stable primitive (log-softmax and negative log-likelihood); its gradient is
    ``softmax - target distribution``, scaled. PyTorch's semantics throughout:

    * class indices: ``loss_i = -weight[t_i] * log_softmax(logits_i)[t_i]``; targets equal to
      ``ignore_index`` add nothing, and ``"mean"`` divides by the sum of ``weight[t_i]`` over
      the targets not ignored (NaN when every target is ignored).
    * ``label_smoothing`` = s mixes in the uniform distribution: the loss is
      ``(1 - s) * nll + s / C * sum_c weight[c] * (-log_softmax_c)``, with the same divisor.
    * class probabilities (floating target of the logits' shape):
      ``loss_i = -sum_c weight[c] * q_ic * log_softmax_ic`` with ``q = (1 - s) * target + s / C``;
      ``"mean"`` divides by the number of samples. ``ignore_index`` does not apply.

    Args:
        logits: (N, C), (N, C, d1, ...) or (C,), floating.
        target: class indices (N,), (N, d1, ...) or () of an integer dtype; or class
            probabilities of the logits' shape.
        reduction: "mean", "sum" or "none".
        label_smoothing: in [0, 1].
        ignore_index: a class-index value to skip.
        weight: (C,) per-class weights (a constant for class indices, as in PyTorch;
            differentiable with probability targets).
    Returns:
        a scalar, or the per-sample losses (N,), (N, d1, ...) or () with ``reduction="none"``.

    See also: ``nll_loss``; ``funcnn_modules.nn.CrossEntropyLoss``.
    """
    fn = "cross_entropy"
    _check_reduction(fn, reduction)
    if not isinstance(label_smoothing, (int, float)) or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{fn}: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    probs, index_shape = _class_targets(fn, logits, target, weight, ignore_index)
    if not probs and is_box(weight):
        raise TypeError(
            f"{fn}: weight is being differentiated, but with class-index targets the loss is "
            "not differentiable in weight (PyTorch refuses too); pass a constant weight, e.g. "
            "fn.stop_gradient(weight)"
        )
    shape = _shape(logits)
    x = _as_ncl(logits, shape)
    if probs:
        t = _as_ncl(target, shape)
    else:
        t = strip(target)
        t = ns(t).reshape(t, tuple(x.shape[:1]) + tuple(x.shape[2:]))
    loss, _, _ = _cross_entropy(
        x,
        t,
        weight,
        probs=probs,
        reduction=reduction,
        label_smoothing=float(label_smoothing),
        ignore_index=int(ignore_index),
    )
    if reduction == "none" and _shape(loss) != index_shape:
        loss = fnp.reshape(loss, index_shape)
    return loss


def nll_loss(
    input: Any,  # noqa: A002 - PyTorch's name
    target: Any,
    *,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Any:
    """Negative log-likelihood of class indices given log-probabilities.

    ``loss_i = -weight[t_i] * input[i, t_i]``; targets equal to ``ignore_index`` add nothing and
    ``"mean"`` divides by the summed weights of the other targets (PyTorch's rule).

    Args:
        input: log-probabilities (N, C), (N, C, d1, ...) or (C,).
        target: integer class indices (N,), (N, d1, ...) or ().
        weight: (C,) per-class weights (a constant, as in PyTorch).
        ignore_index: a class-index value to skip.
        reduction: "mean", "sum" or "none".
    Returns:
        a scalar, or (N,), (N, d1, ...) or () with ``reduction="none"``.
    """
    fn = "nll_loss"
    _check_reduction(fn, reduction)
    probs, index_shape = _class_targets(fn, input, target, weight, ignore_index, what="input")
    if probs:
        raise TypeError(
            f"{fn}: target must hold integer class indices of shape {index_shape}, got a "
            f"floating target of the input's shape (use cross_entropy for class probabilities)"
        )
    if is_box(weight):
        raise TypeError(f"{fn}: the loss is not differentiable in weight (as in PyTorch)")
    shape = _shape(input)
    x = _as_ncl(input, shape)
    t = strip(target)
    t = ns(t).reshape(t, tuple(x.shape[:1]) + tuple(x.shape[2:]))
    safe, w_t, _ = _index_info(t, weight, ignore_index, strip(x))
    picked = fnp.take_along_axis(x, ns(safe).expand_dims(safe, axis=1), axis=1)
    each = -(fnp.squeeze(picked, 1) * w_t)
    if reduction == "none":
        return fnp.reshape(each, index_shape)
    if reduction == "sum":
        return fnp.sum(each)
    return _quiet_divide(fnp.sum(each), ns(w_t).sum(w_t))


# ----------------------------------------------------------------------------- regression losses


def _pair(fn: str, input: Any, target: Any, reduction: str) -> None:  # noqa: A002
    _check_reduction(fn, reduction)
    _check_floating(fn, "input", input)
    _check_floating(fn, "target", target)
    _check_same_shape(fn, input, target)


def mse_loss(input: Any, target: Any, *, reduction: str = "mean") -> Any:  # noqa: A002
    """Squared error ``(input - target) ** 2``, reduced.

    Args:
        input, target: floating arrays of one shape (differentiable in both).
        reduction: "mean", "sum" or "none".
    Returns:
        a scalar, or the elementwise losses with ``reduction="none"``.
    """
    _pair("mse_loss", input, target, reduction)
    d = input - target
    return _reduce(d * d, reduction)


def l1_loss(input: Any, target: Any, *, reduction: str = "mean") -> Any:  # noqa: A002
    """Absolute error ``|input - target|`` (gradient 0 where they are equal), reduced.

    Args:
        input, target: floating arrays of one shape.
        reduction: "mean", "sum" or "none".
    """
    _pair("l1_loss", input, target, reduction)
    return _reduce(fnp.abs(input - target), reduction)


def smooth_l1_loss(
    input: Any,  # noqa: A002
    target: Any,
    *,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Any:
    """``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (``d = input - target``).

    Args:
        input, target: floating arrays of one shape.
        reduction: "mean", "sum" or "none".
        beta: the switch point, >= 0 (0 gives the L1 loss).
    """
    fn = "smooth_l1_loss"
    _pair(fn, input, target, reduction)
    if not beta >= 0:
        raise ValueError(f"{fn}: beta must be >= 0, got {beta!r}")
    ad = fnp.abs(input - target)
    if beta == 0:
        return _reduce(ad, reduction)
    inside = _mask(strip(ad) < beta, input)
    loss = inside * (ad * ad * (0.5 / beta)) + (1.0 - inside) * (ad - 0.5 * beta)
    return _reduce(loss, reduction)


def huber_loss(
    input: Any,  # noqa: A002
    target: Any,
    *,
    reduction: str = "mean",
    delta: float = 1.0,
) -> Any:
    """``0.5 d^2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)`` (``d = input - target``).

    Args:
        input, target: floating arrays of one shape.
        reduction: "mean", "sum" or "none".
        delta: the switch point, > 0.
    """
    fn = "huber_loss"
    _pair(fn, input, target, reduction)
    if not delta > 0:
        raise ValueError(f"{fn}: delta must be > 0, got {delta!r}")
    ad = fnp.abs(input - target)
    inside = _mask(strip(ad) < delta, input)
    loss = inside * (ad * ad * 0.5) + (1.0 - inside) * ((ad - 0.5 * delta) * delta)
    return _reduce(loss, reduction)


# ----------------------------------------------------------------------------- binary losses


_LOG_FLOOR = -100.0  # PyTorch clamps the logs of binary_cross_entropy at -100
_TINY = {"float32": 1e-45, "float64": 5e-324}  # smallest subnormals: log(tiny) < -100


def _clamped_log_raw(x: Any) -> Any:
    xp = ns(x)
    name = _dtype_name(x)
    if name not in _TINY:  # float16: through float32
        return xp.astype(_clamped_log_raw(xp.astype(x, xp.float32)), x.dtype)
    return xp.maximum(xp.log(xp.maximum(x, _TINY[name])), _LOG_FLOOR)


@primitive
def _clamped_log(x: Any) -> Any:
    """``max(log(x), -100)`` without a divide-by-zero warning at 0."""
    return _clamped_log_raw(x)


def _clamped_log_vjp(g: Any, ans: Any, x: Any) -> Any:
    live = strip(ans) > _LOG_FLOOR  # where the clamp is not active (so x > 0)
    return fnp.where(live, g / fnp.where(live, x, 1.0), 0.0)


_clamped_log.defvjp(_clamped_log_vjp)


@primitive
def _bce(x: Any, t: Any) -> Any:
    """Elementwise ``-(t log x + (1 - t) log(1 - x))`` with the logs clamped at -100."""
    return -(t * _clamped_log_raw(x) + (1.0 - t) * _clamped_log_raw(1.0 - x))


_bce.defvjp(
    lambda g, ans, x, t: g * (x - t) / fnp.maximum((1.0 - x) * x, 1e-12),  # PyTorch's formula
    lambda g, ans, x, t: g * (_clamped_log(1.0 - x) - _clamped_log(x)),
)


def binary_cross_entropy(
    input: Any,  # noqa: A002
    target: Any,
    *,
    weight: Any = None,
    reduction: str = "mean",
) -> Any:
    """Binary cross entropy of probabilities: ``-w (t log x + (1 - t) log(1 - x))``.

    The logs are clamped at -100 and the input gradient is
    ``(x - t) / max(x (1 - x), 1e-12)``, as in PyTorch.

    Args:
        input: probabilities in [0, 1], floating.
        target: the same shape, floating (differentiable).
        weight: broadcastable to the input's shape; rescales each element's loss.
        reduction: "mean", "sum" or "none".
    """
    fn = "binary_cross_entropy"
    _pair(fn, input, target, reduction)
    _check_broadcasts_to(fn, "weight", weight, _shape(input))
    raw = strip(input)
    xp = ns(raw)
    if raw.size and not bool(xp.all(xp.logical_and(raw >= 0, raw <= 1))):
        raise ValueError(
            f"{fn}: every element of input must be in [0, 1] (probabilities), got values from "
            f"{float(xp.min(raw))} to {float(xp.max(raw))}; use "
            "binary_cross_entropy_with_logits for unnormalised scores"
        )
    loss = _bce(input, target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(
    input: Any,  # noqa: A002
    target: Any,
    *,
    weight: Any = None,
    pos_weight: Any = None,
    reduction: str = "mean",
) -> Any:
    """Binary cross entropy of ``sigmoid(input)``, computed stably from the logits.

    ``loss = w ((1 - t) x - (1 + (pos_weight - 1) t) log_sigmoid(x))``, PyTorch's form.

    Args:
        input: logits, floating.
        target: the same shape, floating (differentiable).
        weight: broadcastable to the input's shape (differentiable).
        pos_weight: weight of the positive term, broadcastable to the input's shape (usually
            (C,) for (N, C) inputs; differentiable).
        reduction: "mean", "sum" or "none".
    """
    fn = "binary_cross_entropy_with_logits"
    _pair(fn, input, target, reduction)
    _check_broadcasts_to(fn, "weight", weight, _shape(input))
    _check_broadcasts_to(fn, "pos_weight", pos_weight, _shape(input))
    log_sig = log_sigmoid(input)
    if pos_weight is not None:
        log_sig = log_sig * ((pos_weight - 1.0) * target + 1.0)
    loss = (1.0 - target) * input - log_sig
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def kl_div(
    input: Any,  # noqa: A002
    target: Any,
    *,
    reduction: str = "mean",
    log_target: bool = False,
) -> Any:
    """Kullback-Leibler divergence ``target * (log(target) - input)``, input as log-probabilities.

    Terms with ``target == 0`` contribute 0 (``xlogy``). With ``log_target`` the target holds
    log-probabilities too: ``exp(target) * (target - input)``.

    Args:
        input: log-probabilities, floating.
        target: probabilities (or log-probabilities), the input's shape (differentiable).
        reduction: "mean" (over all elements, PyTorch's default), "batchmean" (the sum divided
            by the batch size input.shape[0]: the true KL divergence per sample), "sum" or
            "none".
        log_target: whether ``target`` is given as log-probabilities.
    """
    fn = "kl_div"
    _check_reduction(fn, reduction, ("mean", "batchmean", "sum", "none"))
    _check_floating(fn, "input", input)
    _check_floating(fn, "target", target)
    _check_same_shape(fn, input, target)
    if log_target:
        loss = fnp.exp(target) * (target - input)
    else:
        zero = strip(target) == 0
        loss = target * fnp.log(fnp.where(zero, 1.0, target)) - target * input
    if reduction == "batchmean":
        shape = _shape(input)
        return fnp.sum(loss) * (1.0 / shape[0] if shape else 1.0)
    return _reduce(loss, reduction)
