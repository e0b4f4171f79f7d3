"""``funcnn_modules.nn.init``: torch.nn.init's in-place initialisers over ``funcnn.nn.init``.

Each draws from the global generator (``funcnn_modules.manual_seed``) with the formulas of
``funcnn.nn`` and writes the values into the tensor in place (its identity, and for a
Parameter its gradient slot, are kept). Returns the tensor, like PyTorch.
"""

from __future__ import annotations

from typing import Any

from funcnn import backend
from funcnn import numpy as fnp
from funcnn import random as frandom
from funcnn.nn import _init_generic as ginit
from funcnn_modules import _random
from funcnn_modules.tensor import Tensor

__all__ = [
    "calculate_gain",
    "uniform_",
    "normal_",
    "constant_",
    "ones_",
    "zeros_",
    "eye_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "trunc_normal_",
]

calculate_gain = ginit.calculate_gain


def _write(tensor: Tensor, values: Any) -> Tensor:
    raw = tensor._value
    if backend.device_of(values) != backend.device_of(raw):
        values = backend.device_put(values, backend.device_of(raw))
    if values.dtype != raw.dtype:
        values = backend.asarray(values, dtype=raw.dtype)
    tensor._set_value(values)
    return tensor


def _spec(tensor: Tensor) -> tuple:
    raw = tensor._value
    return tuple(raw.shape), str(raw.dtype).rsplit(".", 1)[-1]


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with U(a, b)."""
    shape, dtype = _spec(tensor)
    return _write(tensor, ginit.uniform(_random.key_from(generator), shape, a, b, dtype))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with N(mean, std**2)."""
    shape, dtype = _spec(tensor)
    return _write(tensor, ginit.normal(_random.key_from(generator), shape, mean, std, dtype))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``."""
    shape, dtype = _spec(tensor)
    return _write(tensor, ginit.constant(shape, val, dtype))


def ones_(tensor: Tensor) -> Tensor:
    """Fill with ones."""
    return constant_(tensor, 1.0)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with zeros."""
    return constant_(tensor, 0.0)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity matrix."""
    shape, dtype = _spec(tensor)
    if len(shape) != 2:
        raise ValueError(f"Only tensors with 2 dimensions are supported, got shape {shape}")
    return _write(tensor, backend.eye(shape[0], shape[1], dtype=dtype))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """Glorot uniform: U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out))."""
    shape, dtype = _spec(tensor)
    return _write(tensor, ginit.xavier_uniform(_random.key_from(generator), shape, gain, dtype))


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """Glorot normal: N(0, gain**2 * 2 / (fan_in + fan_out))."""
    shape, dtype = _spec(tensor)
    return _write(tensor, ginit.xavier_normal(_random.key_from(generator), shape, gain, dtype))


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Any = None,
) -> Tensor:
    """He uniform: U(-b, b), b = gain * sqrt(3 / fan)."""
    shape, dtype = _spec(tensor)
    return _write(
        tensor,
        ginit.kaiming_uniform(_random.key_from(generator), shape, a, mode, nonlinearity, dtype),
    )


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Any = None,
) -> Tensor:
    """He normal: N(0, (gain / sqrt(fan))**2)."""
    shape, dtype = _spec(tensor)
    return _write(
        tensor,
        ginit.kaiming_normal(_random.key_from(generator), shape, a, mode, nonlinearity, dtype),
    )


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """A (semi-)orthogonal matrix (trailing dimensions flattened)."""
    shape, dtype = _spec(tensor)
    return _write(tensor, ginit.orthogonal(_random.key_from(generator), shape, gain, dtype))


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight, as PyTorch computes them (used by custom inits)."""
    shape, _ = _spec(tensor)
    if len(shape) < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions "
            f"(got shape {shape})"
        )
    return ginit.fans(shape)


_TRUNC_ROUNDS = 1000


def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: Any = None,
) -> Tensor:
    """Fill with N(mean, std**2) truncated to [a, b] (``a`` and ``b`` are absolute bounds).

    Values outside the bounds are redrawn until none is left (rejection sampling).
    """
    shape, dtype = _spec(tensor)
    if not a < b:
        raise ValueError(f"trunc_normal_: need a < b, got a={a}, b={b}")
    key = _random.key_from(generator)
    values = todo = None  # values in float64, rounded to the tensor's dtype at the end
    for _ in range(_TRUNC_ROUNDS):
        key, sub = frandom.split(key)
        draw = frandom.normal(sub, shape, dtype="float64") * std + mean
        values = draw if values is None else fnp.where(todo, draw, values)
        todo = fnp.logical_or(values < a, values > b)
        if not bool(fnp.any(todo)):
            return _write(tensor, fnp.astype(values, dtype))
    raise ValueError(
        f"trunc_normal_: [a, b] = [{a}, {b}] holds too little of N({mean}, {std}**2) to sample "
        f"by rejection ({_TRUNC_ROUNDS} rounds)"
    )
