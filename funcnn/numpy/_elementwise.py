"""Elementwise primitives: unary math, binary arithmetic with broadcasting, where, clip, comparisons.

Each primitive is its forward on raw arrays followed by its VJP rules, written in funcnn ops so
that they can be differentiated again.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from funcnn import backend
from funcnn import numpy as fnp
from funcnn.autodiff._core import nondiff_primitive, primitive, strip
from funcnn.numpy._helpers import unbroadcast

ns = backend.namespace


def _binary_failed(name: str, *operands: Any) -> None:
    """Called when an op's kernel raised: raise a clear error for the two common causes.

    Operands of two backends get the backend seam's TypeError; shapes that do not broadcast
    get a ValueError naming the op and every shape. Otherwise the caller re-raises.
    """
    ns(*operands)
    shapes = [tuple(o.shape) for o in operands if hasattr(o, "shape")]
    for sides in itertools.zip_longest(*(reversed(s) for s in shapes), fillvalue=1):
        if len(set(sides) - {1}) > 1:
            raise ValueError(
                f"{name}: operands of shapes {', '.join(map(str, shapes))} do not broadcast together "
                "(aligned from the right, each axis must have one length or length 1)"
            )


# ----------------------------------------------------------------------------- unary


@primitive
def negative(x: Any) -> Any:
    """``-x``."""
    return -x


negative.defvjp(lambda g, ans, x: -g)


@primitive
def exp(x: Any) -> Any:
    """``e ** x``."""
    return ns(x).exp(x)


exp.defvjp(lambda g, ans, x: g * ans)


@primitive
def log(x: Any) -> Any:
    """Natural logarithm."""
    return ns(x).log(x)


log.defvjp(lambda g, ans, x: g / x)


@primitive
def log2(x: Any) -> Any:
    """Base-2 logarithm (exact at powers of 2, unlike ``log(x) / log(2)``)."""
    return ns(x).log2(x)


log2.defvjp(lambda g, ans, x: g / (x * math.log(2.0)))


@primitive
def log10(x: Any) -> Any:
    """Base-10 logarithm (exact at powers of 10, unlike ``log(x) / log(10)``)."""
    return ns(x).log10(x)


log10.defvjp(lambda g, ans, x: g / (x * math.log(10.0)))


@primitive
def log1p(x: Any) -> Any:
    """``log(1 + x)``, accurate near 0."""
    return ns(x).log1p(x)


log1p.defvjp(lambda g, ans, x: g / (x + 1.0))


@primitive
def expm1(x: Any) -> Any:
    """``exp(x) - 1``, accurate near 0."""
    return ns(x).expm1(x)


expm1.defvjp(lambda g, ans, x: g * (ans + 1.0))


@primitive
def sqrt(x: Any) -> Any:
    """Square root."""
    return ns(x).sqrt(x)


sqrt.defvjp(lambda g, ans, x: g * 0.5 / ans)


@primitive
def sin(x: Any) -> Any:
    """Sine."""
    return ns(x).sin(x)


sin.defvjp(lambda g, ans, x: g * cos(x))


@primitive
def cos(x: Any) -> Any:
    """Cosine."""
    return ns(x).cos(x)


cos.defvjp(lambda g, ans, x: -g * sin(x))


@primitive
def tanh(x: Any) -> Any:
    """Hyperbolic tangent."""
    return ns(x).tanh(x)


# g - (g * ans) * ans rather than g * (1 - ans * ans): the same derivative as three array-array
# products (NumPy takes longer for an op between an array and a Python scalar).
tanh.defvjp(lambda g, ans, x: g - g * ans * ans)


@primitive
def abs(x: Any) -> Any:  # noqa: A001 - NumPy's name
    """Absolute value (gradient ``sign(x)``, 0 at 0 like PyTorch)."""
    return ns(x).abs(x)


abs.defvjp(lambda g, ans, x: g * sign(x))


@primitive
def sign(x: Any) -> Any:
    """Sign (-1, 0 or 1); its gradient is zero."""
    return ns(x).sign(x)


sign.defvjp(lambda g, ans, x: g * 0.0)


@primitive
def square(x: Any) -> Any:
    """``x * x``."""
    return x * x


square.defvjp(lambda g, ans, x: g * 2.0 * x)


# ----------------------------------------------------------------------------- binary


@primitive
def add(x: Any, y: Any) -> Any:
    """``x + y`` with broadcasting."""
    try:
        return x + y
    except (TypeError, RuntimeError, ValueError):
        _binary_failed("add", x, y)
        raise


add.defvjp(lambda g, ans, x, y: unbroadcast(g, x), lambda g, ans, x, y: unbroadcast(g, y))


@primitive
def subtract(x: Any, y: Any) -> Any:
    """``x - y`` with broadcasting."""
    try:
        return x - y
    except (TypeError, RuntimeError, ValueError):
        _binary_failed("subtract", x, y)
        raise


subtract.defvjp(lambda g, ans, x, y: unbroadcast(g, x), lambda g, ans, x, y: unbroadcast(-g, y))


@primitive
def multiply(x: Any, y: Any) -> Any:
    """``x * y`` with broadcasting."""
    try:
        return x * y
    except (TypeError, RuntimeError, ValueError):
        _binary_failed("multiply", x, y)
        raise


multiply.defvjp(
    lambda g, ans, x, y: unbroadcast(g * y, x), lambda g, ans, x, y: unbroadcast(g * x, y)
)


@primitive
def divide(x: Any, y: Any) -> Any:
    """``x / y`` with broadcasting."""
    try:
        return x / y
    except (TypeError, RuntimeError, ValueError):
        _binary_failed("divide", x, y)
        raise


divide.defvjp(
    lambda g, ans, x, y: unbroadcast(g / y, x),
    lambda g, ans, x, y: unbroadcast(-g * ans / y, y),
)
true_divide = divide


@primitive
def power(x: Any, y: Any) -> Any:
    """``x ** y`` with broadcasting."""
    try:
        return x**y
    except (TypeError, RuntimeError, ValueError):
        _binary_failed("power", x, y)
        raise


def _power_vjp_x(g: Any, ans: Any, x: Any, y: Any) -> Any:
    if isinstance(y, (int, float)):
        if y == 0:
            return unbroadcast(g * 0.0, x)
        return unbroadcast(g * y * x ** (y - 1), x)
    # y * x**(y - 1), taken as 0 at x == y == 0 (where it reads 0 * inf); masking only that
    # point keeps the derivative in y right at y == 0 (it is g / x there)
    undefined = logical_and(x == 0, y == 0)
    safe_x = where(undefined, 1.0, x)
    return unbroadcast(where(undefined, 0.0, g * y * safe_x ** (y - 1)), x)


def _power_vjp_y(g: Any, ans: Any, x: Any, y: Any) -> Any:
    # d/dy x**y = x**y log(x), taken as 0 where x <= 0 (where log(x) is undefined)
    if isinstance(x, (int, float)):
        return unbroadcast(g * ans * math.log(x) if x > 0 else g * 0.0, y)
    positive = x > 0
    safe_x = where(positive, x, 1.0)
    return unbroadcast(where(positive, g * ans * log(safe_x), 0.0), y)


power.defvjp(_power_vjp_x, _power_vjp_y)
pow = power  # noqa: A001 - the array API name


@primitive
def maximum(x: Any, y: Any) -> Any:
    """Elementwise maximum; at ties the gradient is split evenly, like PyTorch."""
    try:
        return ns(x, y).maximum(x, y)
    except (TypeError, ValueError):
        _binary_failed("maximum", x, y)
        raise


def _winner_share(g: Any, x: Any, y: Any) -> Any:
    """``g`` where ``x > y``, ``g / 2`` where they tie, 0 elsewhere (the share of ``x``)."""
    return where(x > y, g, where(x == y, g * 0.5, 0.0))


maximum.defvjp(
    lambda g, ans, x, y: unbroadcast(_winner_share(g, x, y), x),
    lambda g, ans, x, y: unbroadcast(_winner_share(g, y, x), y),
)


@primitive
def minimum(x: Any, y: Any) -> Any:
    """Elementwise minimum; at ties the gradient is split evenly, like PyTorch."""
    try:
        return ns(x, y).minimum(x, y)
    except (TypeError, ValueError):
        _binary_failed("minimum", x, y)
        raise


minimum.defvjp(
    lambda g, ans, x, y: unbroadcast(_winner_share(g, y, x), x),
    lambda g, ans, x, y: unbroadcast(_winner_share(g, x, y), y),
)


@primitive
def _where(cond: Any, x: Any, y: Any) -> Any:
    try:
        return ns(cond, x, y).where(cond, x, y)
    except (TypeError, ValueError):
        _binary_failed("where", cond, x, y)
        raise


_where.defvjp(
    None,
    lambda g, ans, c, x, y: unbroadcast(_where(c, g, 0.0), x),
    lambda g, ans, c, x, y: unbroadcast(_where(c, 0.0, g), y),
)


def where(condition: Any, x: Any, y: Any) -> Any:
    """``x`` where ``condition`` else ``y``, broadcast together.

    Not differentiable in ``condition``. When ``x`` and ``y`` are both Python scalars, a
    float takes the default float dtype (float32), like :func:`funcnn.numpy.asarray`.

    Args:
        condition: boolean array, broadcastable with ``x`` and ``y``.
        x, y: arrays or Python scalars.
    Returns:
        An array of the broadcast shape.
    """
    cond = strip(condition)
    if isinstance(x, (int, float)) and isinstance(y, (int, float)):
        return ns(cond).where(cond, backend.asarray(x, like=cond), y)
    return _where(cond, x, y)


def clip(x: Any, a_min: Any = None, a_max: Any = None) -> Any:
    """Clamp ``x`` into ``[a_min, a_max]`` (either may be None).

    The gradient passes where ``a_min <= x <= a_max`` (inclusive, like torch.clamp); array
    bounds get the gradient where they bind (also when given by keyword).
    """
    return _clip(x, a_min, a_max)  # bounds positional: keyword arguments are static to a primitive


@primitive
def _clip(x: Any, a_min: Any = None, a_max: Any = None) -> Any:
    if a_min is None and a_max is None:
        raise ValueError("clip: at least one of a_min and a_max must be given")
    try:
        return ns(x, a_min, a_max).clip(x, min=a_min, max=a_max)
    except (TypeError, ValueError):
        _binary_failed("clip", x, a_min, a_max)
        raise


# The rules follow torch.clamp's: x gets the gradient where a_min <= x <= a_max (bounds
# included); a bound gets it where it binds; when a_min > a_max the result is a_max.


def _clip_vjp_x(g: Any, ans: Any, x: Any, a_min: Any = None, a_max: Any = None) -> Any:
    if a_min is None:
        inside = x <= a_max
    elif a_max is None:
        inside = x >= a_min
    else:
        inside = logical_and(x >= a_min, x <= a_max)
    return unbroadcast(where(inside, g, 0.0), x)


def _clip_vjp_min(g: Any, ans: Any, x: Any, a_min: Any = None, a_max: Any = None) -> Any:
    binds = x < a_min if a_max is None else logical_and(x < a_min, a_min < a_max)
    return unbroadcast(where(binds, g, 0.0), a_min)


def _clip_vjp_max(g: Any, ans: Any, x: Any, a_min: Any = None, a_max: Any = None) -> Any:
    binds = x > a_max if a_min is None else logical_or(x > a_max, a_max < a_min)
    return unbroadcast(where(binds, g, 0.0), a_max)


_clip.defvjp(_clip_vjp_x, _clip_vjp_min, _clip_vjp_max)


# ----------------------------------------------------------------------------- not differentiable


def _nondiff_binary(name: str, doc: str) -> Any:
    def f(x: Any, y: Any) -> Any:
        return getattr(ns(x, y), name)(x, y)

    f.__name__ = name
    f.__doc__ = doc
    return nondiff_primitive(f)


equal = _nondiff_binary("equal", "``x == y`` (boolean, no gradient).")
not_equal = _nondiff_binary("not_equal", "``x != y`` (boolean, no gradient).")
less = _nondiff_binary("less", "``x < y`` (boolean, no gradient).")
less_equal = _nondiff_binary("less_equal", "``x <= y`` (boolean, no gradient).")
greater = _nondiff_binary("greater", "``x > y`` (boolean, no gradient).")
greater_equal = _nondiff_binary("greater_equal", "``x >= y`` (boolean, no gradient).")
logical_and = _nondiff_binary("logical_and", "Elementwise and (boolean).")
logical_or = _nondiff_binary("logical_or", "Elementwise or (boolean).")
floor_divide = _nondiff_binary("floor_divide", "``x // y`` (no gradient).")
remainder = _nondiff_binary("remainder", "``x % y`` (no gradient).")
mod = remainder


@nondiff_primitive
def logical_not(x: Any) -> Any:
    """Elementwise not (boolean)."""
    return ns(x).logical_not(x)


@nondiff_primitive
def isfinite(x: Any) -> Any:
    """True where ``x`` is neither NaN nor infinite."""
    return ns(x).isfinite(x)


@nondiff_primitive
def isnan(x: Any) -> Any:
    """True where ``x`` is NaN."""
    return ns(x).isnan(x)


@nondiff_primitive
def floor(x: Any) -> Any:
    """Round down (no gradient)."""
    return ns(x).floor(x)


@nondiff_primitive
def round(x: Any) -> Any:  # noqa: A001
    """Round to nearest (no gradient)."""
    return ns(x).round(x)


__all__ = [
    "negative",
    "exp",
    "log",
    "log2",
    "log10",
    "log1p",
    "expm1",
    "sqrt",
    "sin",
    "cos",
    "tanh",
    "abs",
    "sign",
    "square",
    "add",
    "subtract",
    "multiply",
    "divide",
    "true_divide",
    "power",
    "pow",
    "maximum",
    "minimum",
    "where",
    "clip",
    "equal",
    "not_equal",
    "less",
    "less_equal",
    "greater",
    "greater_equal",
    "logical_and",
    "logical_or",
    "logical_not",
    "isfinite",
    "isnan",
    "floor",
    "round",
    "floor_divide",
    "remainder",
    "mod",
]
_ = fnp
