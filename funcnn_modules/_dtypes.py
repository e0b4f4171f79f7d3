"""dtypes, ``Size`` and ``device``: the small value types of the PyTorch-style face.

A :class:`dtype` names a NumPy dtype the way PyTorch does (``torch.float32``), so scripts that
compare ``x.dtype == torch.float32`` or print it read the same. :class:`Size` is a tuple that
prints like ``torch.Size([2, 3])``; :class:`device` is ``'cpu'`` or ``'cuda[:N]'``.
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

__all__ = [
    "dtype",
    "Size",
    "device",
    "float16",
    "float32",
    "float64",
    "half",
    "float",
    "double",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "short",
    "int",
    "long",
    "bool",
    "to_numpy_dtype",
    "from_array_dtype",
]


class dtype:  # noqa: N801 - PyTorch's name
    """A tensor element type (wraps a NumPy dtype); prints as ``torch.float32``."""

    __slots__ = ("name", "numpy", "is_floating_point", "is_signed", "itemsize")

    def __init__(self, name: str) -> None:
        self.name = name
        self.numpy = np.dtype(name)
        self.is_floating_point = self.numpy.kind == "f"
        self.is_signed = self.numpy.kind in "fi"
        self.itemsize = self.numpy.itemsize

    @builtins.property
    def is_complex(self) -> builtins.bool:
        return False

    def __repr__(self) -> str:
        return f"torch.{self.name}"

    def __eq__(self, other: Any) -> builtins.bool:
        if isinstance(other, dtype):
            return other is self
        try:
            return np.dtype(to_numpy_dtype(other)) == self.numpy
        except (TypeError, ValueError):
            return False

    def __hash__(self) -> builtins.int:
        return hash(self.name)

    def __reduce__(self) -> Any:
        return (_by_name, (self.name,))


float16 = half = dtype("float16")
float32 = float = dtype("float32")  # noqa: A001 - PyTorch's names
float64 = double = dtype("float64")
int8 = dtype("int8")
int16 = short = dtype("int16")
int32 = int = dtype("int32")  # noqa: A001
int64 = long = dtype("int64")
uint8 = dtype("uint8")
bool = dtype("bool")  # noqa: A001

_DTYPES = {d.name: d for d in (float16, float32, float64, int8, int16, int32, int64, uint8, bool)}


def _by_name(name: str) -> dtype:
    return _DTYPES[name]


def to_numpy_dtype(d: Any) -> np.dtype:
    """A NumPy dtype from a :class:`dtype`, a NumPy dtype, a name, or a Python type."""
    if isinstance(d, dtype):
        return d.numpy
    if d is builtins.float:
        return float32.numpy
    if d is builtins.int:
        return int64.numpy
    if d is builtins.bool:
        return bool.numpy
    if isinstance(d, str) and d.startswith("torch."):
        d = d[6:]
    if not isinstance(d, (str, type, np.dtype)):
        d = str(d).rsplit(".", 1)[
            -1
        ]  # an array_api_strict dtype prints as array_api_strict.float32
    return np.dtype(d)


def from_array_dtype(d: Any) -> dtype:
    """The :class:`dtype` of an array's dtype (NumPy, CuPy or array_api_strict)."""
    try:
        return _DTYPES[d.name]
    except (AttributeError, KeyError):
        name = str(to_numpy_dtype(d))
        if name not in _DTYPES:
            raise TypeError(f"funcnn_modules: arrays of dtype {name} are not supported") from None
        return _DTYPES[name]


class Size(tuple):
    """A tensor's shape: a tuple that prints like ``torch.Size([2, 3])``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"torch.Size({list(self)})"

    __str__ = __repr__

    def numel(self) -> builtins.int:
        """The number of elements of a tensor of this shape."""
        n = 1
        for s in self:
            n *= s
        return n

    def __getitem__(self, idx: Any) -> Any:
        out = tuple.__getitem__(self, idx)
        return Size(out) if isinstance(idx, slice) else out

    def __add__(self, other: Any) -> Size:
        return Size(tuple(self) + tuple(other))


class device:  # noqa: N801 - PyTorch's name
    """Where a tensor lives: ``device('cpu')``, ``device('cuda')``, ``device('cuda', 1)``."""

    __slots__ = ("type", "index")

    def __init__(self, type: Any, index: builtins.int | None = None) -> None:  # noqa: A002
        if isinstance(type, device):
            self.type, self.index = type.type, type.index
            return
        if isinstance(type, builtins.int):
            type, index = "cuda", type
        text = str(type)
        if ":" in text:
            text, idx = text.split(":", 1)
            index = builtins.int(idx)
        if text not in ("cpu", "cuda", "strict"):
            raise RuntimeError(
                f"Expected one of cpu, cuda device type at start of device string: {type!r}"
            )
        self.type = text
        self.index = index

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other: Any) -> builtins.bool:
        if isinstance(other, str):
            other = device(other)
        if not isinstance(other, device):
            return False
        return self.type == other.type and (self.index or 0) == (other.index or 0)

    def __hash__(self) -> builtins.int:
        return hash((self.type, self.index or 0))

    @builtins.property
    def backend_device(self) -> str:
        """The device string funcnn.backend.device_put understands."""
        return str(self)
