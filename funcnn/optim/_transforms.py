"""The stateful building blocks: momentum, Adam's moments, RMSprop's and Adagrad's accumulators.

Each follows the arithmetic of the same-named ``torch.optim`` optimiser (single-tensor path), so
an optimiser chained from them matches PyTorch step for step. States are NamedTuples of a step
count (a Python int) and pytrees shaped like the parameters.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from funcnn import numpy as fnp
from funcnn import tree
from funcnn.optim._base import GradientTransformation, _check_number

__all__ = [
    "TraceState",
    "ScaleByAdamState",
    "ScaleByRmsState",
    "ScaleByAdagradState",
    "trace",
    "scale_by_adam",
    "scale_by_rms",
    "scale_by_adagrad",
]


def _zeros(params: Any) -> Any:
    return tree.map(fnp.zeros_like, params)


def _leafwise(f: Any, num_out: int, first: Any, *rest: Any) -> tuple:
    """Apply ``f`` to the leaves of trees of one structure; ``f`` returns ``num_out`` values.

    One flatten per tree for several results (instead of one ``tree.map`` per result).
    """
    leaves, treedef = tree.flatten(first)
    others = []
    for i, r in enumerate(rest):
        r_leaves, r_def = tree.flatten(r)
        if r_def != treedef:
            raise ValueError(
                f"funcnn.optim: the updates and optimiser state tree {i + 1} have different "
                f"structures:\n  {treedef!r}\n  {r_def!r}"
            )
        others.append(r_leaves)
    results = [f(*xs) for xs in zip(leaves, *others)]
    return tuple(tree.unflatten(treedef, [r[k] for r in results]) for k in range(num_out))


def _lerp(start: Any, end: Any, weight: float) -> Any:
    """``start + weight * (end - start)``, the form ``torch.lerp`` uses for weight < 0.5."""
    if weight < 0.5:
        return start + (end - start) * weight
    return end - (end - start) * (1.0 - weight)


class TraceState(NamedTuple):
    """Momentum: ``count`` updates seen so far and the ``trace`` (momentum buffer) pytree."""

    count: int
    trace: Any


def trace(
    momentum: float, dampening: float = 0.0, nesterov: bool = False
) -> GradientTransformation:
    """PyTorch's SGD momentum.

    The buffer starts as the first update itself (``buf = g``), then
    ``buf = momentum * buf + (1 - dampening) * g``. The output is ``buf``, or with Nesterov
    ``g + momentum * buf``.

    Args:
        momentum: the momentum factor (>= 0).
        dampening: dampening of the new update (>= 0; must be 0 with Nesterov).
        nesterov: use Nesterov momentum.
    """
    mu = _check_number("trace", "momentum", momentum)
    damp = _check_number("trace", "dampening", dampening, minimum=None)
    if nesterov and (mu <= 0 or damp != 0):
        raise ValueError(
            "funcnn.optim.trace: Nesterov momentum requires a momentum and zero dampening, "
            f"got momentum={momentum!r}, dampening={dampening!r}"
        )
    keep = 1.0 - damp

    def init(params: Any) -> TraceState:
        return TraceState(count=0, trace=_zeros(params))

    def update(updates: Any, state: TraceState, params: Any = None) -> tuple[Any, TraceState]:
        if state.count == 0:
            buf = updates
        else:
            if keep == 1.0:  # no dampening: skip a multiplication by one
                buf = tree.map(lambda b, g: b * mu + g, state.trace, updates)
            else:
                buf = tree.map(lambda b, g: b * mu + g * keep, state.trace, updates)
        out = tree.map(lambda g, b: g + b * mu, updates, buf) if nesterov else buf
        return out, TraceState(state.count + 1, buf)

    return GradientTransformation(init, update)


class ScaleByAdamState(NamedTuple):
    """Adam: ``count`` steps taken, first moments ``mu``, second moments ``nu``, and with
    AMSGrad the running maximum ``nu_max`` of ``nu`` (None otherwise)."""

    count: int
    mu: Any
    nu: Any
    nu_max: Any = None


def _check_beta(fn: str, index: int, beta: Any) -> float:
    b = _check_number(fn, f"beta{index + 1}", beta, minimum=None)
    if not 0.0 <= b < 1.0:
        raise ValueError(
            f"funcnn.optim.{fn}: invalid beta parameter at index {index}: {beta!r} (must be in [0, 1))"
        )
    return b


def scale_by_adam(
    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, amsgrad: bool = False
) -> GradientTransformation:
    """Rescale updates by Adam's bias-corrected moments (torch.optim.Adam's formula).

    With ``t`` the step (from 1): ``mu = lerp(mu, g, 1 - b1)``, ``nu = b2 * nu + (1 - b2) g**2``,
    and the output is ``(mu / (1 - b1**t)) / (sqrt(nu) / sqrt(1 - b2**t) + eps)``: ``eps`` is
    added after the square root of the corrected ``nu``. With AMSGrad the running maximum of
    ``nu`` replaces ``nu`` in the denominator.

    Args:
        b1: decay of the first moment, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: added to the denominator (>= 0).
        amsgrad: keep the maximum of the second moments.
    """
    beta1 = _check_beta("scale_by_adam", 0, b1)
    beta2 = _check_beta("scale_by_adam", 1, b2)
    epsilon = _check_number("scale_by_adam", "eps", eps)

    def init(params: Any) -> ScaleByAdamState:
        return ScaleByAdamState(
            0, _zeros(params), _zeros(params), _zeros(params) if amsgrad else None
        )

    def update(
        updates: Any, state: ScaleByAdamState, params: Any = None
    ) -> tuple[Any, ScaleByAdamState]:
        count = state.count + 1
        bc1 = 1.0 - beta1**count
        bc2_sqrt = (1.0 - beta2**count) ** 0.5
        # (m / bc1) / (sqrt(v) / bc2_sqrt + eps), with both corrections folded into scalars
        # (one pass fewer; equal up to rounding, as PyTorch's capturable path does it)
        ratio = bc2_sqrt / bc1
        eps_hat = epsilon * bc2_sqrt

        def leaf(g: Any, m: Any, v: Any, v_max: Any = None) -> tuple:
            m = _lerp(m, g, 1.0 - beta1)
            v = v * beta2 + (g * g) * (1.0 - beta2)
            if amsgrad:
                v_max = fnp.maximum(v_max, v)
            return (m * ratio) / (fnp.sqrt(v_max if amsgrad else v) + eps_hat), m, v, v_max

        trees = (updates, state.mu, state.nu) + ((state.nu_max,) if amsgrad else ())
        out, mu, nu, nu_max = _leafwise(leaf, 4, *trees)
        nu_max = nu_max if amsgrad else None
        return out, ScaleByAdamState(count, mu, nu, nu_max)

    return GradientTransformation(init, update)


class ScaleByRmsState(NamedTuple):
    """RMSprop: ``count`` steps, ``square_avg``, and when used ``grad_avg`` (centered) and
    ``momentum_buffer`` (momentum > 0); unused fields are None."""

    count: int
    square_avg: Any
    grad_avg: Any = None
    momentum_buffer: Any = None


def scale_by_rms(
    alpha: float = 0.99, eps: float = 1e-8, centered: bool = False, momentum: float = 0.0
) -> GradientTransformation:
    """Rescale updates by the root of a running mean of their squares (torch.optim.RMSprop).

    ``sq = alpha * sq + (1 - alpha) g**2``; the denominator is ``sqrt(sq) + eps``, or centered
    ``sqrt(sq - ga**2) + eps`` with ``ga = lerp(ga, g, 1 - alpha)``. Without momentum the output
    is ``g / denom``; with momentum ``buf = momentum * buf + g / denom`` (``buf`` starts at 0)
    and the output is ``buf``.

    Args:
        alpha: smoothing constant (>= 0).
        eps: added to the denominator after the square root (>= 0).
        centered: normalise by an estimate of the variance instead of the second moment.
        momentum: momentum factor (>= 0).
    """
    a = _check_number("scale_by_rms", "alpha", alpha)
    epsilon = _check_number("scale_by_rms", "eps", eps)
    mom = _check_number("scale_by_rms", "momentum", momentum)

    def init(params: Any) -> ScaleByRmsState:
        return ScaleByRmsState(
            0,
            _zeros(params),
            _zeros(params) if centered else None,
            _zeros(params) if mom > 0 else None,
        )

    def update(
        updates: Any, state: ScaleByRmsState, params: Any = None
    ) -> tuple[Any, ScaleByRmsState]:
        def leaf(g: Any, sq: Any, *extra: Any) -> tuple:
            rest = iter(extra)
            ga = next(rest) if centered else None
            buf = next(rest) if mom > 0 else None
            sq = sq * a + (g * g) * (1.0 - a)
            if centered:
                ga = _lerp(ga, g, 1.0 - a)
                denom = fnp.sqrt(sq - ga * ga) + epsilon
            else:
                denom = fnp.sqrt(sq) + epsilon
            if mom > 0:
                buf = buf * mom + g / denom
                return buf, sq, ga, buf
            return g / denom, sq, ga, buf

        trees = [updates, state.square_avg]
        if centered:
            trees.append(state.grad_avg)
        if mom > 0:
            trees.append(state.momentum_buffer)
        out, sq, ga, buf = _leafwise(leaf, 4, *trees)
        ga = ga if centered else None
        buf = buf if mom > 0 else None
        return out, ScaleByRmsState(state.count + 1, sq, ga, buf)

    return GradientTransformation(init, update)


class ScaleByAdagradState(NamedTuple):
    """Adagrad: ``count`` steps and the running ``sum`` of squared updates."""

    count: int
    sum: Any


def scale_by_adagrad(
    lr_decay: float = 0.0, initial_accumulator_value: float = 0.0, eps: float = 1e-10
) -> GradientTransformation:
    """Rescale updates by the root of the sum of all squared updates so far (torch.optim.Adagrad).

    ``sum += g**2``; the output is ``g / (sqrt(sum) + eps) / (1 + (t - 1) * lr_decay)`` at step
    ``t`` (from 1), so a following ``scale_by_learning_rate(lr)`` gives PyTorch's decayed
    ``clr = lr / (1 + (t - 1) * lr_decay)``.

    Args:
        lr_decay: learning-rate decay per step (>= 0).
        initial_accumulator_value: the starting value of ``sum`` (>= 0).
        eps: added to the denominator (>= 0).
    """
    decay = _check_number("scale_by_adagrad", "lr_decay", lr_decay)
    init_value = _check_number(
        "scale_by_adagrad", "initial_accumulator_value", initial_accumulator_value
    )
    epsilon = _check_number("scale_by_adagrad", "eps", eps)

    def init(params: Any) -> ScaleByAdagradState:
        return ScaleByAdagradState(0, tree.map(lambda p: fnp.full_like(p, init_value), params))

    def update(
        updates: Any, state: ScaleByAdagradState, params: Any = None
    ) -> tuple[Any, ScaleByAdagradState]:
        count = state.count + 1
        total = tree.map(lambda s, g: s + g * g, state.sum, updates)
        factor = 1.0 + (count - 1) * decay
        if factor == 1.0:
            out = tree.map(lambda g, s: g / (fnp.sqrt(s) + epsilon), updates, total)
        else:
            out = tree.map(lambda g, s: g / (fnp.sqrt(s) + epsilon) / factor, updates, total)
        return out, ScaleByAdagradState(count, total)

    return GradientTransformation(init, update)
