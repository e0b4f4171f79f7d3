"""The optimiser protocol and the stateless building blocks.

An optimiser is a :class:`GradientTransformation`: a pair of pure functions

    state = opt.init(params)
    updates, state = opt.update(grads, state, params)

that turns gradients into updates; :func:`apply_updates` adds the updates to the parameters.
Optimisers are built by :func:`chain`-ing small transformations, each doing one thing (add
weight decay, keep a momentum trace, rescale by Adam's moments, multiply by ``-lr``).

All pytrees here (params, grads, updates, the pytrees inside states) have the same structure.
Hyperparameters are Python numbers, so float32 parameters stay float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from funcnn import backend, tree
from funcnn import numpy as fnp

__all__ = [
    "GradientTransformation",
    "EmptyState",
    "ScaleByScheduleState",
    "Schedule",
    "ScalarOrSchedule",
    "identity",
    "chain",
    "apply_updates",
    "scale",
    "scale_by_learning_rate",
    "scale_by_schedule",
    "add_decayed_weights",
    "clip",
    "clip_by_global_norm",
    "global_norm",
]

Schedule = Callable[[int], float]
ScalarOrSchedule = float | Callable[[int], float]


class GradientTransformation(NamedTuple):
    """A pure optimiser: ``init(params) -> state`` and ``update(grads, state, params) -> (updates, state)``.

    ``update``'s ``params`` argument may be None for transformations that do not read the
    parameters (weight decay does).
    """

    init: Callable[[Any], Any]
    update: Callable[..., tuple[Any, Any]]


class EmptyState(NamedTuple):
    """The state of a stateless transformation."""


class ScaleByScheduleState(NamedTuple):
    """How many updates a scheduled scaling has made (the schedule's step)."""

    count: int


def _check_number(fn: str, name: str, value: Any, *, minimum: float | None = 0.0) -> float:
    """``value`` as a Python float, or a clear error naming ``fn`` and ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        converted = None
        if not isinstance(value, (str, bytes)) and getattr(value, "shape", ()) == ():
            try:
                converted = float(value)  # NumPy scalars and 0-d arrays are accepted
            except (TypeError, ValueError):
                converted = None
        if converted is None:
            raise TypeError(
                f"funcnn.optim.{fn}: {name} must be a Python number, got {type(value).__name__}"
            )
        value = converted
    out = float(value)
    if math.isnan(out) or (minimum is not None and out < minimum):
        raise ValueError(
            f"funcnn.optim.{fn}: invalid {name} value: {value!r} (must be >= {minimum})"
        )
    return out


def _check_params(fn: str, params: Any) -> Any:
    if params is None:
        raise ValueError(
            f"funcnn.optim.{fn}: this transformation reads the parameters; "
            "call update(grads, state, params) with params"
        )
    return params


def identity() -> GradientTransformation:
    """A transformation that passes the updates through unchanged."""

    def init(params: Any) -> EmptyState:
        return EmptyState()

    def update(updates: Any, state: EmptyState, params: Any = None) -> tuple[Any, EmptyState]:
        return updates, state

    return GradientTransformation(init, update)


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply ``transforms`` one after the other; the state is the tuple of their states.

    Args:
        *transforms: GradientTransformations, applied left to right.
    Returns:
        A GradientTransformation whose state is ``tuple(t.init(params) for t in transforms)``.

    Example:
        >>> opt = chain(clip_by_global_norm(1.0), add_decayed_weights(1e-4), scale_by_learning_rate(0.1))
    """
    for i, t in enumerate(transforms):
        if not isinstance(t, GradientTransformation):
            raise TypeError(
                f"funcnn.optim.chain: argument {i} is a {type(t).__name__}, expected a "
                "GradientTransformation (e.g. funcnn.optim.scale(0.1), not funcnn.optim.scale)"
            )

    def init(params: Any) -> tuple:
        return tuple(t.init(params) for t in transforms)

    def update(updates: Any, state: tuple, params: Any = None) -> tuple[Any, tuple]:
        if len(state) != len(transforms):
            raise ValueError(
                f"funcnn.optim.chain: the state has {len(state)} entries but the chain has "
                f"{len(transforms)} transformations; was it made by this optimiser's init?"
            )
        new_state = []
        for t, s in zip(transforms, state):
            updates, s = t.update(updates, s, params)
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformation(init, update)


def _add_keep_dtype(p: Any, u: Any) -> Any:
    out = p + u
    if getattr(out, "dtype", None) != getattr(p, "dtype", None) and hasattr(p, "dtype"):
        out = fnp.astype(out, p.dtype)
    return out


def apply_updates(params: Any, updates: Any) -> Any:
    """``params + updates``, leaf by leaf, keeping each parameter's dtype.

    Args:
        params: a pytree of arrays.
        updates: a pytree of the same structure (what ``opt.update`` returned).
    Returns:
        The new parameters: a pytree like ``params``, each leaf with its old dtype.
    """
    return tree.map(_add_keep_dtype, params, updates)


def scale(step_size: float) -> GradientTransformation:
    """Multiply every update by the constant ``step_size``.

    Args:
        step_size: a Python number (may be negative: ``scale(-1.0)`` flips the sign).
    """
    factor = _check_number("scale", "step_size", step_size, minimum=None)

    def init(params: Any) -> EmptyState:
        return EmptyState()

    def update(updates: Any, state: EmptyState, params: Any = None) -> tuple[Any, EmptyState]:
        return tree.map(lambda u: u * factor, updates), state

    return GradientTransformation(init, update)


def scale_by_schedule(step_size_fn: Schedule) -> GradientTransformation:
    """Multiply the updates by ``step_size_fn(count)``, where ``count`` is the number of updates so far.

    Args:
        step_size_fn: a function of the step (a Python int, 0 on the first update) that
            returns a Python number.
    """
    if not callable(step_size_fn):
        raise TypeError(
            f"funcnn.optim.scale_by_schedule: step_size_fn must be callable, got "
            f"{type(step_size_fn).__name__}"
        )

    def init(params: Any) -> ScaleByScheduleState:
        return ScaleByScheduleState(count=0)

    def update(
        updates: Any, state: ScaleByScheduleState, params: Any = None
    ) -> tuple[Any, ScaleByScheduleState]:
        factor = float(step_size_fn(state.count))
        return tree.map(lambda u: u * factor, updates), ScaleByScheduleState(state.count + 1)

    return GradientTransformation(init, update)


def scale_by_learning_rate(
    learning_rate: ScalarOrSchedule, *, flip_sign: bool = True
) -> GradientTransformation:
    """Multiply the updates by ``-learning_rate`` (a descent step).

    Args:
        learning_rate: a Python number, or a schedule (a function of the step count, 0 on the
            first update, returning the learning rate for that update).
        flip_sign: multiply by ``-learning_rate`` (True, the default) or ``+learning_rate``.
    """
    sign = -1.0 if flip_sign else 1.0
    if callable(learning_rate):
        schedule = learning_rate
        return scale_by_schedule(lambda count: sign * float(schedule(count)))
    lr = _check_number("scale_by_learning_rate", "learning_rate", learning_rate)
    return scale(sign * lr)


def add_decayed_weights(weight_decay: float) -> GradientTransformation:
    """Add ``weight_decay * params`` to the updates (L2 regularisation; decoupled when it comes
    after an adaptive rescaling, as in AdamW).

    Args:
        weight_decay: a non-negative Python number.
    """
    wd = _check_number("add_decayed_weights", "weight_decay", weight_decay)

    def init(params: Any) -> EmptyState:
        return EmptyState()

    def update(updates: Any, state: EmptyState, params: Any = None) -> tuple[Any, EmptyState]:
        if wd == 0.0:
            return updates, state
        _check_params("add_decayed_weights", params)
        return tree.map(lambda u, p: u + p * wd, updates, params), state

    return GradientTransformation(init, update)


def clip(max_delta: float) -> GradientTransformation:
    """Clip every element of the updates to ``[-max_delta, max_delta]`` (like ``clip_grad_value_``).

    Args:
        max_delta: a non-negative Python number.
    """
    delta = _check_number("clip", "max_delta", max_delta)

    def init(params: Any) -> EmptyState:
        return EmptyState()

    def update(updates: Any, state: EmptyState, params: Any = None) -> tuple[Any, EmptyState]:
        return tree.map(lambda u: fnp.clip(u, -delta, delta), updates), state

    return GradientTransformation(init, update)


def global_norm(updates: Any, norm_type: float = 2.0) -> Any:
    """The ``norm_type``-norm of all elements of a pytree, as one vector (PyTorch's ``clip_grad_norm_`` total norm).

    Equal to PyTorch's norm of the per-leaf norms (summed as p-th powers, one root at the end).

    Args:
        updates: a pytree of floating arrays.
        norm_type: p of the p-norm (a positive number, or ``float('inf')`` for the largest
            absolute value).
    Returns:
        A 0-d array (the leaves' dtype; float64 when they mix dtypes). 0 for an empty pytree.
    """
    p = _check_number("global_norm", "norm_type", norm_type)
    if p == 0.0:
        raise ValueError("funcnn.optim.global_norm: norm_type must be > 0 (or inf), got 0")
    leaves = [x for x in tree.leaves(updates) if x is not None]
    if not leaves:
        return backend.zeros((), dtype=backend.default_float_dtype())
    if p == math.inf:
        norms = [
            fnp.max(fnp.abs(x)) if math.prod(x.shape) else fnp.zeros((), x.dtype, like=x)
            for x in leaves
        ]
        total = norms[0]
        for n in norms[1:]:
            total = fnp.maximum(total, n)
        return total
    total = None
    for x in leaves:
        if p == 2.0:
            term = fnp.sum(x * x)  # the squared 2-norm of the leaf
        else:
            term = fnp.sum(fnp.abs(x) ** p)  # the p-th power of its p-norm
        total = term if total is None else total + term
    return fnp.sqrt(total) if p == 2.0 else total ** (1.0 / p)


def clip_by_global_norm(max_norm: float, norm_type: float = 2.0) -> GradientTransformation:
    """Scale the updates down so that their global norm is at most ``max_norm`` (PyTorch's rule).

    With ``total = global_norm(updates, norm_type)`` every update is multiplied by
    ``min(max_norm / (total + 1e-6), 1)``, exactly as ``torch.nn.utils.clip_grad_norm_`` does,
    so ``chain(clip_by_global_norm(c), sgd(...))`` matches clipping then stepping in PyTorch.

    Args:
        max_norm: a non-negative Python number.
        norm_type: p of the p-norm (default 2; ``float('inf')`` for the max-norm).
    """
    limit = _check_number("clip_by_global_norm", "max_norm", max_norm)
    p = _check_number("clip_by_global_norm", "norm_type", norm_type)

    def init(params: Any) -> EmptyState:
        return EmptyState()

    def update(updates: Any, state: EmptyState, params: Any = None) -> tuple[Any, EmptyState]:
        if not tree.leaves(updates):
            return updates, state
        coef = _clip_coefficient(global_norm(updates, p), limit)
        return tree.map(lambda u: u * _cast_like(coef, u), updates), state

    return GradientTransformation(init, update)


def _clip_coefficient(total_norm: Any, max_norm: float) -> Any:
    """PyTorch's clipping factor ``min(max_norm / (total_norm + 1e-6), 1)`` (a 0-d array)."""
    return fnp.minimum(max_norm / (total_norm + 1e-6), 1.0)


def _cast_like(c: Any, u: Any) -> Any:
    """The 0-d ``c`` in ``u``'s dtype (so a float64 total never promotes a float32 update)."""
    return c if c.dtype == u.dtype else fnp.astype(c, u.dtype)
