"""funcnn_modules: a PyTorch-style face over the funcnn engine.

A PyTorch script runs after changing only its imports::

    import funcnn_modules as torch
    import funcnn_modules.nn as nn
    import funcnn_modules.optim as optim

``Tensor`` records ops for ``.backward()`` on the engine's eager trace; ``nn.Module`` layers
are thin shells whose ``forward`` is one call into ``funcnn.nn``. Modules cross over to the
functional core with ``module.to_functional()`` / ``funcnn_modules.func.functional_call``.
"""

from __future__ import annotations

import importlib
from typing import Any

from funcnn_modules import _functions
from funcnn_modules._dtypes import (
    Size,
    bool,
    device,
    double,
    dtype,
    float,
    float16,
    float32,
    float64,
    half,
    int,
    int8,
    int16,
    int32,
    int64,
    long,
    short,
    uint8,
)
from funcnn_modules._functions import *  # noqa: F403
from funcnn_modules._grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from funcnn_modules._random import (
    Generator,
    default_generator,
    get_rng_state,
    initial_seed,
    manual_seed,
    seed,
    set_rng_state,
)
from funcnn_modules.tensor import Tensor

__version__ = "0.1.0"

_SUBMODULES = (
    "nn",
    "optim",
    "utils",
    "autograd",
    "func",
    "cuda",
    "serialization",
    "backends",
)


def save(obj: Any, f: Any, **kwargs: Any) -> None:
    """Save tensors, state dicts and plain containers to ``f`` (see ``funcnn_modules.serialization``)."""
    from funcnn_modules import serialization

    return serialization.save(obj, f, **kwargs)


def load(f: Any, **kwargs: Any) -> Any:
    """Load what :func:`save` wrote (never unpickles)."""
    from funcnn_modules import serialization

    return serialization.load(f, **kwargs)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"funcnn_modules.{name}")
    raise AttributeError(f"module 'funcnn_modules' has no attribute {name!r}")


__all__ = [
    "Tensor",
    "Size",
    "device",
    "dtype",
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
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "is_grad_enabled",
    "inference_mode",
    "manual_seed",
    "default_generator",
    "Generator",
    "seed",
    "initial_seed",
    "get_rng_state",
    "set_rng_state",
    "save",
    "load",
    *_functions.__all__,
]

from funcnn_modules import nn as nn  # noqa: E402  (imported last: it needs Tensor)
