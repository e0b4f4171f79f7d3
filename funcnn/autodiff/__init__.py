"""The reverse-mode engine and its transforms."""

from funcnn.autodiff._core import Box, Primitive, debug_nans, nondiff_primitive, primitive
from funcnn.autodiff._transforms import (
    checkpoint,
    custom_vjp,
    grad,
    hessian,
    jacobian,
    jvp,
    stop_gradient,
    value_and_grad,
    vjp,
)

__all__ = [
    "Box",
    "Primitive",
    "primitive",
    "nondiff_primitive",
    "debug_nans",
    "grad",
    "value_and_grad",
    "vjp",
    "jvp",
    "jacobian",
    "hessian",
    "custom_vjp",
    "stop_gradient",
    "checkpoint",
]
