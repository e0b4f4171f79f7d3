"""``torch.save`` / ``torch.load`` on safetensors files: atomic writes, and nothing is unpickled.

``save`` takes what training scripts save — tensors, ``state_dict()`` of modules and
optimisers, and plain containers (dict, OrderedDict, list, tuple) of them with Python scalars and
strings — and writes it with :func:`funcnn.save_tree`. Tensors are stored by their dotted path
(``"model.fc1.weight"``), so the file opens in any safetensors reader. ``load`` gives the same
structure back, tensors as :class:`~funcnn_modules.Tensor` (``requires_grad`` kept) and NumPy
arrays as NumPy arrays. Arbitrary Python objects are refused rather than pickled.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

import funcnn as fn
from funcnn import backend
from funcnn._serialization import CheckpointError, _load_tree
from funcnn_modules.tensor import Tensor

__all__ = ["save", "load"]

_KINDS_KEY = "funcnn_modules"  # metadata: which saved arrays were tensors, and which required grad


def _path(fn_name: str, f: Any) -> str | os.PathLike:
    if isinstance(f, (str, os.PathLike)):
        return f
    raise TypeError(
        f"{fn_name}: expected a file path (str or os.PathLike), got {type(f).__name__}; "
        "checkpoints are written atomically to a named file, so file objects are not supported"
    )


def _encode(obj: Any, path: tuple[str, ...], kinds: dict[str, str]) -> Any:
    """``obj`` with tensors replaced by host arrays; ``kinds`` records each tensor's path."""
    if isinstance(obj, Tensor):
        kinds[".".join(path)] = "tensor_grad" if obj.requires_grad else "tensor"
        return backend.to_numpy(obj._value)
    if isinstance(obj, dict):  # dict and OrderedDict (state dicts) alike
        return {k: _encode(v, (*path, str(k)), kinds) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(_encode(v, (*path, str(i)), kinds) for i, v in enumerate(obj))
    return obj  # arrays and scalars; save_tree names anything it cannot store


_KINDS = ("tensor", "tensor_grad")


def _decode(
    obj: Any,
    path: tuple[str, ...],
    kinds: dict[str, Any] | None,
    seen: set[str],
    bad: Callable[[str], CheckpointError],
) -> Any:
    """``obj`` with the arrays that were tensors made Tensors again (all arrays if ``kinds`` is
    None: a file not written by :func:`save`); ``seen`` collects the paths ``kinds`` named."""
    if isinstance(obj, dict):
        return {k: _decode(v, (*path, str(k)), kinds, seen, bad) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(_decode(v, (*path, str(i)), kinds, seen, bad) for i, v in enumerate(obj))
    if not isinstance(obj, np.ndarray):
        return obj
    name = ".".join(path)
    kind = "tensor" if kinds is None else kinds.get(name)
    if kind is None:
        return obj  # saved as a NumPy array
    seen.add(name)
    t = Tensor._wrap(backend.from_numpy(obj))
    if kind == "tensor_grad":
        if not backend.is_floating(obj):
            raise bad(f"the {obj.dtype} tensor {name!r} is marked as requiring grad")
        t.requires_grad_(True)
    return t


def save(obj: Any, f: str | os.PathLike, **kwargs: Any) -> None:
    """Save ``obj`` to the file ``f`` (replaced only once the new file is complete).

    Args:
        obj: a tensor, or dict/OrderedDict/list/tuple containers of tensors, arrays, Python
            int/float/bool/str and None (module and optimiser ``state_dict()`` included).
        f: the file path.
        **kwargs: PyTorch's pickle options are refused: there is no pickle here.
    """
    if kwargs:
        raise TypeError(
            f"save: unsupported options {sorted(kwargs)}; funcnn_modules saves safetensors "
            "files and takes no pickle options"
        )
    kinds: dict[str, str] = {}
    tree = _encode(obj, (), kinds)
    fn.save_tree(_path("save", f), tree, metadata={_KINDS_KEY: kinds})


def load(
    f: str | os.PathLike, map_location: Any = None, weights_only: bool | None = None, **kwargs: Any
) -> Any:
    """Load what :func:`save` wrote (or a flat safetensors file, as ``{name: Tensor}``).

    Args:
        f: the file path.
        map_location: ``None``, a device or device string: where the tensors go.
        weights_only: accepted for PyTorch compatibility; loading never runs pickled code.

    Raises:
        funcnn.CheckpointError: for a malformed, truncated or inconsistent file, or a pickle
            (``torch.save`` from PyTorch), which is never unpickled.
    """
    del weights_only  # always "weights only": no code is ever loaded
    if kwargs:
        raise TypeError(f"load: unsupported options {sorted(kwargs)}")
    path = _path("load", f)
    tree, meta = _load_tree("load", path)  # one read: the tree and its metadata agree

    def bad(problem: str) -> CheckpointError:
        return CheckpointError(f"load: {os.fspath(path)!r} has malformed metadata: {problem}")

    kinds = meta.get(_KINDS_KEY)  # None: not written by save(), every array is a tensor
    if kinds is not None and (
        not isinstance(kinds, dict) or not all(v in _KINDS for v in kinds.values())
    ):
        raise bad(f"the {_KINDS_KEY!r} entry must map tensor names to one of {_KINDS}")
    seen: set[str] = set()
    out = _decode(tree, (), kinds, seen, bad)
    if kinds is not None and len(seen) != len(kinds):
        missing = sorted(set(kinds) - seen)
        raise bad(f"it names tensors the file does not hold as arrays: {missing[:5]}")
    if map_location is not None:
        out = fn.tree.map(lambda x: x.to(map_location) if isinstance(x, Tensor) else x, out)
    return out
