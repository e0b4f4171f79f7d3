"""Gradient clipping (``torch.nn.utils.clip_grad_norm_`` and friends) over ``funcnn.optim``.

These act in place on the ``.grad`` of the given parameters, as in PyTorch; the norms and the
scaling come from ``funcnn.optim.global_norm`` and ``funcnn.optim.clip_by_global_norm``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from funcnn import backend
from funcnn import numpy as fnp
from funcnn import optim as fo
from funcnn.optim._base import EmptyState, _clip_coefficient
from funcnn_modules.tensor import Tensor, wrap

__all__ = [
    "clip_grad_norm_",
    "clip_grad_norm",
    "clip_grad_value_",
    "get_total_norm",
    "clip_grads_with_norm_",
]

_NONFINITE = (
    "The total norm of order {p} for gradients from `parameters` is non-finite, so it cannot be "
    "clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
    "`error_if_nonfinite=False`"
)


def _params(parameters: Tensor | Iterable[Tensor], fn: str) -> list[Tensor]:
    items = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for p in items:
        if not isinstance(p, Tensor):
            raise TypeError(f"{fn}: parameters must be Tensors, got a {type(p).__name__}")
    return items


def _with_grad(params: list[Tensor]) -> list[Tensor]:
    return [p for p in params if p.grad is not None]


def get_total_norm(
    tensors: Tensor | Iterable[Tensor],
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """The norm of all ``tensors`` viewed as one vector (``torch.nn.utils.get_total_norm``).

    Args:
        tensors: a Tensor or an iterable of Tensors (e.g. gradients).
        norm_type: p of the p-norm; ``float('inf')`` for the largest absolute value.
        error_if_nonfinite: raise if the norm is NaN or infinite.
        foreach: accepted for compatibility.
    Returns:
        A 0-d Tensor; ``tensor(0.)`` when there are no tensors.
    """
    items = _params(tensors, "get_total_norm")
    p = float(norm_type)
    if not items:
        return wrap(backend.zeros((), dtype="float32"))
    total = fo.global_norm([t._value for t in items], p)
    if error_if_nonfinite and not math.isfinite(float(total)):
        raise RuntimeError(_NONFINITE.format(p=p))
    return wrap(total)


def clip_grads_with_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    total_norm: Tensor,
    foreach: bool | None = None,
) -> None:
    """Scale the gradients by ``min(max_norm / (total_norm + 1e-6), 1)`` in place.

    Args:
        parameters: a Tensor or an iterable of Tensors whose ``.grad`` to scale.
        max_norm: the largest allowed norm.
        total_norm: the gradients' total norm (see :func:`get_total_norm`).
        foreach: accepted for compatibility.
    """
    params = _with_grad(_params(parameters, "clip_grads_with_norm_"))
    if not params:
        return
    total = total_norm._value if isinstance(total_norm, Tensor) else total_norm
    coef = _clip_coefficient(total, float(max_norm))
    for p in params:
        g = p.grad._value
        p.grad = g * (
            coef if getattr(coef, "dtype", None) == g.dtype else fnp.astype(coef, g.dtype)
        )


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Rescale gradients so that their total norm is at most ``max_norm`` (in place).

    As in PyTorch: ``total`` is the ``norm_type``-norm of all gradients together, and every
    gradient is multiplied by ``min(max_norm / (total + 1e-6), 1)``. Parameters without a
    gradient are skipped. See also ``funcnn.optim.clip_by_global_norm``.

    Args:
        parameters: a Tensor or an iterable of Tensors.
        max_norm: the largest allowed norm.
        norm_type: p of the p-norm (default 2; ``float('inf')`` for the max-norm).
        error_if_nonfinite: raise RuntimeError when the total norm is NaN or infinite.
        foreach: accepted for compatibility.
    Returns:
        The total norm before clipping, a 0-d Tensor.
    """
    params = _params(parameters, "clip_grad_norm_")
    grads = [p.grad for p in _with_grad(params)]
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(params, max_norm, total)
    return total


def clip_grad_norm(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Deprecated alias of :func:`clip_grad_norm_` (PyTorch keeps it too)."""
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(
    parameters: Tensor | Iterable[Tensor], clip_value: float, foreach: bool | None = None
) -> None:
    """Clamp every gradient element to ``[-clip_value, clip_value]`` (in place).

    Args:
        parameters: a Tensor or an iterable of Tensors.
        clip_value: the largest allowed absolute value.
        foreach: accepted for compatibility.
    See also ``funcnn.optim.clip``.
    """
    params = _with_grad(_params(parameters, "clip_grad_value_"))
    if not params:
        return
    clipped, _ = fo.clip(float(clip_value)).update([p.grad._value for p in params], EmptyState())
    for p, g in zip(params, clipped):
        p.grad = g
