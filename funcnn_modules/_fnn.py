"""The funcnn.nn layer functions that the PyTorch-style face calls (``from funcnn_modules import
_fnn; _fnn.linear(params, x)``).

Names resolve to ``funcnn.nn`` on first use and are cached here.
"""

from __future__ import annotations

import importlib
from typing import Any

_PRIVATE = (
    "_activations",
    "_losses",
    "_linear",
    "_conv",
    "_pool",
    "_norm",
    "_dropout",
    "_recurrent",
    "_attention",
    "_transformer",
)


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    nn = importlib.import_module("funcnn.nn")
    value = getattr(nn, name, None)
    if value is None:
        for mod in _PRIVATE:
            try:
                m = importlib.import_module(f"funcnn.nn.{mod}")
            except ImportError:
                continue
            value = getattr(m, name, None)
            if value is not None:
                break
    if value is None:
        raise AttributeError(f"funcnn.nn has no function {name!r}")
    globals()[name] = value
    return value
