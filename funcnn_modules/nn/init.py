"""``funcnn_modules.nn.init``: torch.nn.init's in-place initialisers over ``funcnn.nn.init``.

Each draws from the global generator (``funcnn_modules.manual_seed``) with the formulas of
``funcnn.nn`` and writes the values into the tensor in place (its identity, and for a
Parameter its gradient slot, are kept). Returns the tensor, like PyTorch.
"""

from __future__ import annotations

from typing import Any

from funcnn import backend
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
    return _write(tensor, ginit.uniform(_random.next_key(), shape, a, b, dtype))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with N(mean, std**2)."""
    shape, dtype = _spec(tensor)
    return _write(tensor, ginit.normal(_random.next_key(), shape, mean, std, dtype))


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
    return _write(tensor, ginit.xavier_uniform(_random.next_key(), shape, gain, dtype))


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """Glorot normal: N(0, gain**2 * 2 / (fan_in + fan_out))."""
    shape, dtype = _spec(tensor)
    return _write(tensor, ginit.xavier_normal(_random.next_key(), shape, gain, dtype))


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
        tensor, ginit.kaiming_uniform(_random.next_key(), shape, a, mode, nonlinearity, dtype)
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
        tensor, ginit.kaiming_normal(_random.next_key(), shape, a, mode, nonlinearity, dtype)
    )


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """A (semi-)orthogonal matrix (trailing dimensions flattened)."""
    shape, dtype = _spec(tensor)
    return _write(tensor, ginit.orthogonal(_random.next_key(), shape, gain, dtype))
