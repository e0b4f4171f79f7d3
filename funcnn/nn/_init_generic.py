"""Generic initialisers with torch.nn.init's formulas: fans, gains, kaiming, xavier, orthogonal."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from funcnn import backend, random
from funcnn import numpy as fnp

__all__ = [
    "calculate_gain",
    "fans",
    "uniform",
    "normal",
    "constant",
    "zeros",
    "ones",
    "kaiming_uniform",
    "kaiming_normal",
    "xavier_uniform",
    "xavier_normal",
    "orthogonal",
]


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (torch.nn.init.calculate_gain)."""
    linear = (
        "linear",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
    )
    if nonlinearity in linear or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def fans(shape: Sequence[int]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape`` (out, in, *kernel), as torch computes them."""
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(
            f"fans: fan in and fan out need a shape of at least 2 dimensions, got {shape}"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def uniform(
    key: Any, shape: Sequence[int], low: float = 0.0, high: float = 1.0, dtype: Any = None
) -> Any:
    """U(low, high) of ``shape``."""
    return random.uniform(key, shape, dtype=dtype, minval=low, maxval=high)


def normal(
    key: Any, shape: Sequence[int], mean: float = 0.0, std: float = 1.0, dtype: Any = None
) -> Any:
    """N(mean, std**2) of ``shape``."""
    return random.normal(key, shape, dtype=dtype) * std + mean


def constant(shape: Sequence[int], value: float, dtype: Any = None) -> Any:
    """``value`` everywhere."""
    return fnp.full(tuple(shape), value, dtype=dtype)


def zeros(shape: Sequence[int], dtype: Any = None) -> Any:
    """Zeros (default float dtype)."""
    return fnp.zeros(tuple(shape), dtype=dtype)


def ones(shape: Sequence[int], dtype: Any = None) -> Any:
    """Ones (default float dtype)."""
    return fnp.ones(tuple(shape), dtype=dtype)


def _fan(shape: Sequence[int], mode: str) -> int:
    fan_in, fan_out = fans(shape)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fan_in if mode == "fan_in" else fan_out


def kaiming_uniform(
    key: Any,
    shape: Sequence[int],
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    dtype: Any = None,
) -> Any:
    """He uniform: U(-b, b) with b = gain * sqrt(3 / fan) (torch.nn.init.kaiming_uniform_)."""
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(shape, mode))
    return uniform(key, shape, -bound, bound, dtype)


def kaiming_normal(
    key: Any,
    shape: Sequence[int],
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    dtype: Any = None,
) -> Any:
    """He normal: N(0, (gain / sqrt(fan))**2) (torch.nn.init.kaiming_normal_)."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(shape, mode))
    return normal(key, shape, 0.0, std, dtype)


def xavier_uniform(key: Any, shape: Sequence[int], gain: float = 1.0, dtype: Any = None) -> Any:
    """Glorot uniform: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(key, shape, -bound, bound, dtype)


def xavier_normal(key: Any, shape: Sequence[int], gain: float = 1.0, dtype: Any = None) -> Any:
    """Glorot normal: N(0, gain**2 * 2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    return normal(key, shape, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), dtype)


def orthogonal(key: Any, shape: Sequence[int], gain: float = 1.0, dtype: Any = None) -> Any:
    """A (semi-)orthogonal matrix, flattened over trailing dims like torch.nn.init.orthogonal_."""
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"orthogonal: needs a shape of at least 2 dimensions, got {shape}")
    rows = shape[0]
    cols = math.prod(shape[1:])
    q = backend.random_orthogonal(key, rows, cols, backend=backend.get_default())
    q = fnp.reshape(q * gain, shape)
    return fnp.astype(
        q, backend.default_float_dtype(backend.namespace(q)) if dtype is None else dtype
    )
