"""Activation functions, each matching ``torch.nn.functional`` in values and gradients.

The hot ones (relu, sigmoid, gelu, silu) are single primitives with hand-written VJPs; the rest
are primitives too where PyTorch's gradient has a convention a composition would not reproduce
(relu and hardtanh at their kinks, softplus above its threshold), and compositions otherwise
(``log_softmax = x - logsumexp(x)``).

Some primitives here return *residuals* next to their answer (gelu returns the normal CDF it
computed, silu its sigmoid) so that the VJP reuses them instead of recomputing: see
:func:`aux_primitive`. The public functions hand back only the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from funcnn import backend
from funcnn import numpy as fnp
from funcnn.autodiff._core import Node, Primitive, primitive, strip
from funcnn.numpy._helpers import normalize_axis

__all__ = [
    "relu",
    "gelu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "leaky_relu",
    "elu",
    "silu",
    "softplus",
    "hardtanh",
    "log_sigmoid",
    "hardsigmoid",
    "hardswish",
    "mish",
    "selu",
    "celu",
    "softsign",
    "softmin",
    "glu",
    "prelu",
    "aux_primitive",
]

ns = backend.namespace
tanh = fnp.tanh

_SQRT_HALF = 0.7071067811865476  # 1 / sqrt(2)
_INV_SQRT_2PI = 0.3989422804014327  # 1 / sqrt(2 pi)
_SQRT_2_OVER_PI = 0.7978845608028654  # sqrt(2 / pi), the tanh-gelu constant
_GELU_CUBIC = 0.044715


# ----------------------------------------------------------------------------- residual outputs


class _AuxPrimitive(Primitive):
    """A multiple-result primitive: ``(answer, *residuals)``.

    Its joint rule receives ``g`` as a list with ``None`` for each result that got no cotangent.
    The public wrapper returns only the answer, so at first order the residuals never get one
    and the rule skips their terms; at higher orders an inner rule reads the residuals as traced
    values, their cotangents arrive, and the rule adds their terms (every order stays exact).
    """

    __slots__ = ()

    def vjp(self, g: Any, node: Node) -> Any:
        return self.joint(g, node.ans, node.argnums, *node.args, **node.kwargs)


def aux_primitive(fun: Callable) -> Primitive:
    """Decorator: a primitive returning ``(answer, *residuals)`` whose rule sees ``None`` cotangents.

    Add the rule with ``.defvjp_joint(rule)``; ``rule(g, ans, argnums, *args, **kwargs)`` gets
    ``g`` and ``ans`` as tuples aligned with the results.
    """
    return _AuxPrimitive(fun, multiple_results=True)


def _mask(cond: Any, like: Any) -> Any:
    """A boolean array as 0/1 in ``like``'s dtype, for selecting by multiplication.

    NumPy's ``where`` takes ~10 ns per element on an unpredictable mask (a branch per element),
    twenty times a multiply; on the hot paths here a select is a multiply by this mask.
    """
    xp = ns(cond)
    return xp.astype(cond, backend.resolve_dtype(xp, strip(like).dtype))


# ----------------------------------------------------------------------------- relu family


@primitive
def relu(x: Any) -> Any:
    """``max(x, 0)`` elementwise; the gradient at 0 is 0, as in PyTorch.

    Args:
        x: any shape.
    Returns:
        same shape and dtype as ``x``.

    See also: ``funcnn_modules.nn.ReLU``.
    """
    return ns(x).maximum(x, 0)


relu.defvjp(lambda g, ans, x: g * _mask(x > 0, g))


@primitive
def _leaky_relu(x: Any, negative_slope: float) -> Any:
    xp = ns(x)
    return xp.maximum(x, 0) + negative_slope * xp.minimum(x, 0)


def _leaky_relu_vjp(g: Any, ans: Any, x: Any, negative_slope: float) -> Any:
    pos = _mask(x > 0, g)
    return g * (pos * (1.0 - negative_slope) + negative_slope)


_leaky_relu.defvjp(_leaky_relu_vjp)


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Any:
    """``x`` where ``x > 0``, else ``negative_slope * x`` (gradient at 0: ``negative_slope``).

    Args:
        x: any shape.
        negative_slope: the slope for negative inputs.
    Returns:
        same shape and dtype as ``x``.
    """
    return _leaky_relu(x, negative_slope=float(negative_slope))


@primitive
def _elu(x: Any, alpha: float) -> Any:
    xp = ns(x)
    return xp.maximum(x, 0) + alpha * xp.expm1(xp.minimum(x, 0))


def _elu_vjp(g: Any, ans: Any, x: Any, alpha: float) -> Any:
    pos = _mask(x > 0, g)
    return g * (pos + (1.0 - pos) * (alpha * fnp.exp(fnp.minimum(x, 0.0))))


_elu.defvjp(_elu_vjp)


def elu(x: Any, alpha: float = 1.0) -> Any:
    """``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)`` (gradient at 0: ``alpha``, like PyTorch).

    Args:
        x: any shape.
        alpha: the negative saturation value.
    Returns:
        same shape and dtype as ``x``.
    """
    return _elu(x, alpha=float(alpha))


@primitive
def _hardtanh(x: Any, min_val: float, max_val: float) -> Any:
    return ns(x).clip(x, min=min_val, max=max_val)


_hardtanh.defvjp(
    lambda g, ans, x, min_val, max_val: g * _mask(fnp.logical_and(x > min_val, x < max_val), g)
)


def hardtanh(x: Any, min_val: float = -1.0, max_val: float = 1.0) -> Any:
    """``x`` clamped to ``[min_val, max_val]``; the gradient is 0 at and beyond the bounds (PyTorch).

    Args:
        x: any shape.
        min_val, max_val: the bounds, ``min_val <= max_val``.
    Returns:
        same shape and dtype as ``x``.
    """
    if not min_val <= max_val:
        raise ValueError(
            f"hardtanh: min_val ({min_val}) must not be greater than max_val ({max_val})"
        )
    return _hardtanh(x, min_val=float(min_val), max_val=float(max_val))


# ----------------------------------------------------------------------------- sigmoid family


def _dtype_name(x: Any) -> str:
    """'float32' for a NumPy, CuPy or array-api-strict float32 array."""
    return str(getattr(x.dtype, "name", x.dtype)).rsplit(".", 1)[-1]


# exp(t) is finite for t below these; sigmoid(x) for x below minus them is under 1e-38 / 1e-307
_EXP_LIMIT = {"float32": 88.0, "float64": 709.0}


def _sigmoid_raw(x: Any) -> Any:
    xp = ns(x)
    limit = _EXP_LIMIT.get(_dtype_name(x))
    if limit is None:  # float16: through float32
        return xp.astype(_sigmoid_raw(xp.astype(x, xp.float32)), x.dtype)
    t = xp.minimum(-x, limit)  # the cap only avoids overflow: 1 / (1 + e^limit) is ~0 anyway
    t = xp.exp(t)
    t += 1.0
    return 1.0 / t  # accurate to an ulp everywhere, tiny values included


@primitive
def sigmoid(x: Any) -> Any:
    """``1 / (1 + exp(-x))``, computed without overflow for any ``x``.

    Args:
        x: any shape.
    Returns:
        same shape and dtype as ``x``, in [0, 1].
    """
    return _sigmoid_raw(x)


sigmoid.defvjp(lambda g, ans, x: g * (ans * (1.0 - ans)))


@primitive
def _log_sigmoid(x: Any) -> Any:
    xp = ns(x)
    return xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))


_log_sigmoid.defvjp(lambda g, ans, x: g * sigmoid(-x))


def log_sigmoid(x: Any) -> Any:
    """``log(sigmoid(x))``, stable for large ``|x|`` (``torch.nn.functional.logsigmoid``).

    Args:
        x: any shape.
    Returns:
        same shape and dtype as ``x``, <= 0.
    """
    return _log_sigmoid(x)


@aux_primitive
def _silu(x: Any) -> tuple:
    s = sigmoid(x)
    return x * s, s


@_silu.defvjp_joint
def _silu_vjp(g: Any, ans: Any, argnums: tuple, x: Any) -> list:
    gy, gs = g
    _, s = ans
    ds = s * (1.0 - s)  # d sigmoid / dx
    out = None
    if gy is not None:
        out = gy * (s + x * ds)
    if gs is not None:
        out = gs * ds if out is None else out + gs * ds
    return [out]


def silu(x: Any) -> Any:
    """``x * sigmoid(x)`` (also called swish).

    Args:
        x: any shape.
    Returns:
        same shape and dtype as ``x``.
    """
    return _silu(x)[0]


@primitive
def _softplus(x: Any, beta: float, threshold: float) -> Any:
    xp = ns(x)
    bx = x * beta
    linear = _mask(bx > threshold, x)
    soft = xp.log1p(xp.exp(xp.minimum(bx, threshold))) / beta  # capped: no overflow
    return linear * x + (1.0 - linear) * soft


def _softplus_vjp(g: Any, ans: Any, x: Any, beta: float, threshold: float) -> Any:
    bx = x * beta
    linear = _mask(bx > threshold, g)
    return g * (linear + (1.0 - linear) * sigmoid(bx))


_softplus.defvjp(_softplus_vjp)


def softplus(x: Any, beta: float = 1.0, threshold: float = 20.0) -> Any:
    """``log(1 + exp(beta * x)) / beta``, reverting to ``x`` where ``beta * x > threshold``.

    Args:
        x: any shape.
        beta: the sharpness (non-zero).
        threshold: above this value of ``beta * x`` the function is linear, as in PyTorch.
    Returns:
        same shape and dtype as ``x``.
    """
    if beta == 0:
        raise ValueError("softplus: beta must be non-zero")
    return _softplus(x, beta=float(beta), threshold=float(threshold))


# ----------------------------------------------------------------------------- gelu


# Cephes (S. L. Moshier, public domain) rational approximations of erf and erfc, the ones
# behind scipy.special.ndtr: relative error ~1e-16 in float64.
_ERF_T = (
    9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
    7.00332514112805075473e3, 5.55923013010394962768e4,
)  # fmt: skip
_ERF_U = (
    3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
    2.26290000613890934246e4, 4.92673942608635921086e4,
)  # fmt: skip
_ERFC_P = (
    2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
    4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
    9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2,
)  # fmt: skip
_ERFC_Q = (
    1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
    9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
    1.65666309194161350182e3, 5.57535340817727675546e2,
)  # fmt: skip
# Eigen's (and XLA's) single-precision erf: erf(z) = z P(z^2) / Q(z^2) on z clipped to [-4, 4],
# beyond which erf is +-1 in float32; error a few ulp.
_ERF32_P = (
    -2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
    -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02,
)  # fmt: skip
_ERF32_Q = (
    -1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
    -1.42647390514189e-02,
)  # fmt: skip


def _polevl(x: Any, coefs: tuple, monic: bool = False) -> Any:
    """Horner's rule on a raw array, in place on one new buffer.

    With ``monic`` the leading coefficient 1 is implied (Cephes' p1evl).
    """
    if monic:
        acc, rest = x + coefs[0], coefs[1:]
    else:
        acc, rest = x * coefs[0], coefs[1:]
        acc += rest[0]
        rest = rest[1:]
    for c in rest:
        acc *= x
        acc += c
    return acc


def _ndtr32_raw(x: Any) -> Any:
    """``P(Z <= x)`` as ``0.5 (1 + erf(x / sqrt 2))`` with the float32 erf above (PyTorch's form)."""
    xp = ns(x)
    z = xp.clip(x * _SQRT_HALF, min=-4.0, max=4.0)
    z2 = z * z
    erf = _polevl(z2, _ERF32_P)
    erf *= z
    erf /= _polevl(z2, _ERF32_Q)
    erf = xp.clip(erf, min=-1.0, max=1.0)
    erf += 1.0
    erf *= 0.5
    return erf


def _ndtr_raw(x: Any) -> Any:
    """The standard normal CDF ``P(Z <= x)`` on raw arrays (Cephes ``ndtr``).

    With ``z = x / sqrt(2)``: ``0.5 + 0.5 erf(z)`` for ``|z| < 1``, else the tail
    ``0.5 erfc(|z|)`` (or one minus it). Cephes switches to a third approximation for
    ``|z| >= 8``; there the tail is below 1e-28 and the P/Q form, evaluated at ``|z|`` clipped
    to 8 and multiplied by the exact ``exp(-z^2)``, is used instead (an absolute error far
    below float64's resolution of values near 0 or 1, which is all gelu sees of it).
    """
    xp = ns(x)
    z = x * _SQRT_HALF
    a = xp.abs(z)
    inner = a < 1.0
    # |z| < 1: erf(z) = z T(z^2) / U(z^2); arguments clipped so the unused lanes stay finite
    zs = xp.clip(z, min=-1.0, max=1.0)
    z2 = zs * zs
    center = 0.5 + 0.5 * (zs * _polevl(z2, _ERF_T) / _polevl(z2, _ERF_U, monic=True))
    # |z| >= 1: erfc(|z|) = exp(-z^2) P(|z|) / Q(|z|)
    big = xp.clip(a, min=1.0, max=30.0)
    mid = xp.minimum(big, 8.0)
    half_erfc = (0.5 * xp.exp(-(big * big))) * (
        _polevl(mid, _ERFC_P) / _polevl(mid, _ERFC_Q, monic=True)
    )
    pos = _mask(z > 0, x)
    tail = pos * (1.0 - half_erfc) + (1.0 - pos) * half_erfc
    inner = _mask(inner, x)
    return inner * center + (1.0 - inner) * tail


@aux_primitive
def _gelu_erf(x: Any) -> tuple:
    xp = ns(x)
    name = _dtype_name(x)
    if name == "float64":
        cdf = _ndtr_raw(x)
    elif name == "float32":
        cdf = _ndtr32_raw(x)
    else:  # float16 and friends: through float32
        cdf = xp.astype(_ndtr32_raw(xp.astype(x, xp.float32)), x.dtype)
    return x * cdf, cdf


@_gelu_erf.defvjp_joint
def _gelu_erf_vjp(g: Any, ans: Any, argnums: tuple, x: Any) -> list:
    gy, gcdf = g
    _, cdf = ans
    pdf = fnp.exp(-0.5 * (x * x)) * _INV_SQRT_2PI
    out = None
    if gy is not None:
        out = gy * (cdf + x * pdf)
    if gcdf is not None:
        out = gcdf * pdf if out is None else out + gcdf * pdf
    return [out]


@aux_primitive
def _gelu_tanh(x: Any) -> tuple:
    xp = ns(x)
    t = xp.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * (x * x * x)))
    return 0.5 * x * (1.0 + t), t


@_gelu_tanh.defvjp_joint
def _gelu_tanh_vjp(g: Any, ans: Any, argnums: tuple, x: Any) -> list:
    gy, gt = g
    _, t = ans
    dt = (1.0 - t * t) * (_SQRT_2_OVER_PI * (1.0 + (3.0 * _GELU_CUBIC) * (x * x)))  # dt/dx
    out = None
    if gy is not None:
        out = gy * (0.5 * (1.0 + t) + 0.5 * x * dt)
    if gt is not None:
        out = gt * dt if out is None else out + gt * dt
    return [out]


def gelu(x: Any, approximate: str = "none") -> Any:
    """Gaussian error linear unit: ``x * P(Z <= x)`` for a standard normal ``Z``.

    Args:
        x: any shape (floating).
        approximate: ``"none"`` for the exact form (erf), ``"tanh"`` for
            ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``, as in PyTorch.
    Returns:
        same shape and dtype as ``x``.
    """
    if approximate == "none":
        return _gelu_erf(x)[0]
    if approximate == "tanh":
        return _gelu_tanh(x)[0]
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


# ----------------------------------------------------------------------------- softmax


@primitive
def _softmax(x: Any, axis: int) -> Any:
    xp = ns(x)
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    e /= xp.sum(e, axis=axis, keepdims=True)
    return e


_softmax.defvjp(lambda g, ans, x, axis: ans * (g - fnp.sum(g * ans, axis=axis, keepdims=True)))


def _axis(x: Any, axis: int, fn: str) -> int:
    nd = strip(x).ndim
    if nd == 0:
        raise ValueError(f"{fn}: x must have at least one dimension, got a 0-d array")
    return normalize_axis(axis, nd, fn)


def softmax(x: Any, axis: int = -1) -> Any:
    """``exp(x) / sum(exp(x))`` along ``axis`` (shifted by the max: no overflow).

    Args:
        x: any shape with at least one dimension.
        axis: the axis to normalise (PyTorch's ``dim``).
    Returns:
        same shape and dtype as ``x``; sums to 1 along ``axis``.
    """
    return _softmax(x, axis=_axis(x, axis, "softmax"))


def log_softmax(x: Any, axis: int = -1) -> Any:
    """``x - logsumexp(x)`` along ``axis``.

    Args:
        x: any shape with at least one dimension.
        axis: the axis to normalise (PyTorch's ``dim``).
    Returns:
        same shape and dtype as ``x``.
    """
    axis = _axis(x, axis, "log_softmax")
    return x - fnp.logsumexp(x, axis=axis, keepdims=True)


def softmin(x: Any, axis: int = -1) -> Any:
    """``softmax(-x)`` along ``axis`` (``torch.nn.functional.softmin``).

    Args:
        x: any shape with at least one dimension.
        axis: the axis to normalise (PyTorch's ``dim``).
    Returns:
        same shape and dtype as ``x``; sums to 1 along ``axis``.

    See also: ``funcnn_modules.nn.Softmin``.
    """
    return _softmax(-x, axis=_axis(x, axis, "softmin"))


# ----------------------------------------------------------------------------- more of torch's


def hardsigmoid(x: Any) -> Any:
    """``clip(x + 3, 0, 6) / 6``; the gradient is ``1/6`` on ``(-3, 3)`` and 0 elsewhere (PyTorch).

    Args:
        x: any shape.
    Returns:
        same shape and dtype as ``x``, in [0, 1].

    See also: ``funcnn_modules.nn.Hardsigmoid``.
    """
    return _hardtanh(x + 3.0, min_val=0.0, max_val=6.0) / 6.0


@primitive
def _hardswish(x: Any) -> Any:
    return x * ns(x).clip(x + 3.0, min=0.0, max=6.0) / 6.0


def _hardswish_vjp(g: Any, ans: Any, x: Any) -> Any:
    # PyTorch's rule: 0 up to -3, x / 3 + 1/2 on (-3, 3), 1 from 3 on
    low = _mask(x <= -3.0, g)
    high = _mask(x >= 3.0, g)
    return g * ((1.0 - low - high) * (x / 3.0 + 0.5) + high)


_hardswish.defvjp(_hardswish_vjp)


def hardswish(x: Any) -> Any:
    """``x * clip(x + 3, 0, 6) / 6``, with PyTorch's gradient (0 at -3, ``x / 3 + 1/2``, 1 at 3).

    Args:
        x: any shape.
    Returns:
        same shape and dtype as ``x``.

    See also: ``funcnn_modules.nn.Hardswish``.
    """
    return _hardswish(x)


def mish(x: Any) -> Any:
    """``x * tanh(softplus(x))``.

    Args:
        x: any shape.
    Returns:
        same shape and dtype as ``x``.

    See also: ``funcnn_modules.nn.Mish``.
    """
    return x * tanh(softplus(x))


@primitive
def _scaled_elu(x: Any, alpha: float, scale: float, input_scale: float) -> Any:
    # PyTorch's elu kernel: scale * x for x > 0, alpha * scale * (exp(input_scale * x) - 1) else
    xp = ns(x)
    return xp.maximum(x, 0) * scale + (alpha * scale) * xp.expm1(xp.minimum(x, 0) * input_scale)


def _scaled_elu_vjp(
    g: Any, ans: Any, x: Any, alpha: float, scale: float, input_scale: float
) -> Any:
    pos = _mask(x > 0, g)
    neg = (alpha * scale * input_scale) * fnp.exp(fnp.minimum(x, 0.0) * input_scale)
    return g * (pos * scale + (1.0 - pos) * neg)


_scaled_elu.defvjp(_scaled_elu_vjp)

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(x: Any) -> Any:
    """``scale * elu(x, alpha)`` with the self-normalising constants (alpha ~1.6733, scale ~1.0507).

    The gradient at 0 is ``alpha * scale``, as in PyTorch.

    Args:
        x: any shape.
    Returns:
        same shape and dtype as ``x``.

    See also: ``funcnn_modules.nn.SELU``.
    """
    return _scaled_elu(x, alpha=_SELU_ALPHA, scale=_SELU_SCALE, input_scale=1.0)


def celu(x: Any, alpha: float = 1.0) -> Any:
    """``x`` where ``x > 0``, else ``alpha * (exp(x / alpha) - 1)`` (gradient at 0: 1).

    Args:
        x: any shape.
        alpha: non-zero.
    Returns:
        same shape and dtype as ``x``.

    See also: ``funcnn_modules.nn.CELU``.
    """
    if alpha == 0:
        raise ValueError("celu: alpha must be non-zero (it divides x), got 0")
    alpha = float(alpha)
    return _scaled_elu(x, alpha=alpha, scale=1.0, input_scale=1.0 / alpha)


def softsign(x: Any) -> Any:
    """``x / (1 + |x|)``.

    Args:
        x: any shape.
    Returns:
        same shape and dtype as ``x``, in (-1, 1).

    See also: ``funcnn_modules.nn.Softsign``.
    """
    return x / (fnp.abs(x) + 1.0)


def glu(x: Any, axis: int = -1) -> Any:
    """Gated linear unit: ``a * sigmoid(b)`` where ``a, b`` are the halves of ``x`` along ``axis``.

    Args:
        x: any shape whose ``axis`` has even length.
        axis: the axis to halve (PyTorch's ``dim``).
    Returns:
        ``x``'s shape with ``axis`` halved; ``x``'s dtype.

    See also: ``funcnn_modules.nn.GLU``.
    """
    shape = tuple(strip(x).shape)
    if not shape:
        raise ValueError("glu: x must have at least one dimension to halve, got a 0-d array")
    axis = normalize_axis(axis, len(shape), "glu")
    if shape[axis] % 2:
        raise ValueError(
            f"glu: axis {axis} of x (shape {shape}) has odd length {shape[axis]}; "
            "the halved axis must have even length"
        )
    a, b = fnp.split(x, 2, axis=axis)
    return a * sigmoid(b)


def prelu(x: Any, weight: Any) -> Any:
    """``x`` where ``x > 0``, else ``weight * x``, with one slope or one per channel (axis 1).

    Args:
        x: any shape; channels on axis 1 when ``x`` has two or more dimensions.
        weight: the slopes, an array of shape () or (1,), or (C,) with ``C = x.shape[1]``;
            or a params dict ``{"weight": ...}`` (as ``funcnn_modules.nn.PReLU`` stores it).
    Returns:
        same shape and dtype as ``x``. The gradient at 0 is ``weight`` (PyTorch's).

    See also: ``funcnn_modules.nn.PReLU``.
    """
    if isinstance(weight, dict):
        if set(weight) != {"weight"}:
            raise ValueError(f"prelu: params must be {{'weight': ...}}, got keys {sorted(weight)}")
        weight = weight["weight"]
    rx, rw = strip(x), strip(weight)
    ns(rx, rw)  # a backend mix is named before anything else
    if rw.ndim > 1:
        raise ValueError(
            f"prelu: weight must be a scalar or 1-D array, got shape {tuple(rw.shape)}"
        )
    if rx.dtype != rw.dtype:
        raise TypeError(
            f"prelu: x has dtype {_dtype_name(rx)} but weight has dtype {_dtype_name(rw)}; "
            "they must match (cast one with fnp.astype)"
        )
    numel = backend.prod(tuple(rw.shape))
    if numel != 1:
        channels = rx.shape[1] if rx.ndim > 1 else 1
        if rx.ndim == 0 or channels != numel:
            raise ValueError(
                f"prelu: weight has {numel} slopes but x (shape {tuple(rx.shape)}) has "
                f"{channels if rx.ndim else 'no'} channels; weight must have 1 slope or "
                "x.shape[1]"
            )
    if rx.ndim != rw.ndim:
        bshape = (1, numel) + (1,) * (rx.ndim - 2) if rx.ndim > 1 else (1,) * rx.ndim
        weight = fnp.reshape(weight, bshape)
    return fnp.where(x > 0, x, weight * x)
