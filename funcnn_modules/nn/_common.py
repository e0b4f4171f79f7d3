"""Helpers shared by the layer classes: wrapping freshly initialised arrays as Parameters."""

from __future__ import annotations

from typing import Any

from funcnn import backend
from funcnn_modules import _dtypes
from funcnn_modules.nn._parameter import Parameter
from funcnn_modules.tensor import Tensor, _to_device

__all__ = ["float_dtype", "place", "set_params", "ntuple"]


def float_dtype(dtype: Any) -> str | None:
    """The NumPy name of a floating factory dtype (None: the default float dtype)."""
    if dtype is None:
        return None
    d = _dtypes.to_numpy_dtype(dtype)
    if d.kind != "f":
        raise TypeError(f"layers take a floating dtype, got {dtype}")
    return d.name


def place(raw: Any, device: Any) -> Any:
    """``raw`` moved to ``device`` (no-op for None or the array's own device)."""
    if device is None or _dtypes.device(device) == _dtypes.device(backend.device_of(raw)):
        return raw
    return _to_device(raw, device)


def set_params(module: Any, params: dict, device: Any = None, names: dict | None = None) -> None:
    """Store a funcnn params dict as the module's Parameters, in place when they exist.

    Existing Parameters keep their identity (an optimiser holding them stays valid).
    """
    for key, raw in params.items():
        name = key if names is None else names.get(key, key)
        raw = place(raw, device)
        current = module._parameters.get(name)
        if isinstance(current, Tensor):
            current._set_value(raw)
        else:
            setattr(module, name, Parameter(Tensor._wrap(raw)))


def ntuple(value: Any, n: int) -> tuple:
    """``value`` repeated ``n`` times unless it already is a sequence (PyTorch's _ntuple)."""
    if isinstance(value, (tuple, list)):
        return tuple(value)
    return (value,) * n
