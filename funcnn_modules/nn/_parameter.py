"""``Parameter``: a leaf tensor that a Module registers as one of its weights."""

from __future__ import annotations

from typing import Any

from funcnn import backend
from funcnn_modules.tensor import Tensor, as_array

__all__ = ["Parameter", "Buffer"]


class Parameter(Tensor):
    """A tensor that is a module's weight: assigning one to a Module attribute registers it.

    Args:
        data: a Tensor (its values are shared, not copied) or array data; empty when None.
        requires_grad: record ops on it for ``.backward()`` (default True).
    """

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        if data is None:
            raw = backend.zeros((0,))
        elif isinstance(data, Tensor):
            raw = data._value
        else:
            raw = as_array(data)
        self._data = raw
        self._base = None
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Buffer(Tensor):
    """A tensor that a Module keeps as state (``self.x = nn.Buffer(t)`` registers a buffer).

    Args:
        data: a Tensor or array data.
        persistent: whether it goes into ``state_dict()``.
    """

    def __init__(self, data: Any = None, *, persistent: bool = True) -> None:
        raw = backend.zeros((0,)) if data is None else as_array(data)
        self._data = raw
        self._base = None
        self.persistent = persistent
