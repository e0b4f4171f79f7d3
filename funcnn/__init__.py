"""funcnn: a functional neural-network core with a reverse-mode VJP engine.

import funcnn as fn
import funcnn.numpy as fnp

loss = lambda w, x: fnp.sum(fnp.tanh(x @ w) ** 2)
g = fn.grad(loss)(w, x)
"""

from funcnn import backend, random, tree
from funcnn import numpy as numpy  # noqa: PLC0414
from funcnn._serialization import CheckpointError, load_file, load_tree, save_file, save_tree
from funcnn.autodiff import (
    checkpoint,
    custom_vjp,
    debug_nans,
    grad,
    hessian,
    jacobian,
    jvp,
    nondiff_primitive,
    primitive,
    stop_gradient,
    value_and_grad,
    vjp,
)

__version__ = "0.1.0"

__all__ = [
    "backend",
    "random",
    "tree",
    "save_tree",
    "load_tree",
    "save_file",
    "load_file",
    "CheckpointError",
    "numpy",
    "grad",
    "value_and_grad",
    "vjp",
    "jvp",
    "jacobian",
    "hessian",
    "custom_vjp",
    "stop_gradient",
    "checkpoint",
    "debug_nans",
    "primitive",
    "nondiff_primitive",
]

from funcnn import nn, optim, testing  # noqa: E402  (they build on the engine above)

__all__ += ["nn", "optim", "testing"]
