"""The stateful building blocks: momentum, the Adam family's moments, RMSprop's, Adagrad's and
Adadelta's accumulators.

Each follows the arithmetic of the same-named ``torch.optim`` optimiser (single-tensor path), so
an optimiser chained from them matches PyTorch step for step. States are NamedTuples of a step
count (a Python int) and pytrees shaped like the parameters (NAdam adds one 0-d array).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from funcnn import backend, tree
from funcnn import numpy as fnp
from funcnn.optim._base import GradientTransformation, _check_number

__all__ = [
    "TraceState",
    "ScaleByAdamState",
    "ScaleByRmsState",
    "ScaleByAdagradState",
    "ScaleByNadamState",
    "ScaleByAdamaxState",
    "ScaleByAdadeltaState",
    "trace",
    "scale_by_adam",
    "scale_by_rms",
    "scale_by_adagrad",
    "scale_by_nadam",
    "scale_by_radam",
    "scale_by_adamax",
    "scale_by_adadelta",
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


def _scalar_dtype_name() -> str:
    """The dtype of per-step scalar state (torch's ``_get_scalar_dtype``): float64 when the
    default float dtype is float64, float32 otherwise."""
    return "float64" if backend.dtype_of(0.0).name == "float64" else "float32"


class ScaleByNadamState(NamedTuple):
    """NAdam: ``count`` steps, ``mu_product`` (the product of the momentum schedule so far, a
    0-d array in the scalar dtype, as torch keeps it), and the moments ``mu`` and ``nu``."""

    count: int
    mu_product: Any
    mu: Any
    nu: Any


def scale_by_nadam(
    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, momentum_decay: float = 4e-3
) -> GradientTransformation:
    """Rescale updates by NAdam's Nesterov-corrected moments (torch.optim.NAdam's formula).

    With ``t`` the step (from 1), the momentum schedule ``mu_t = b1 (1 - 0.5 * 0.96**(t psi))``
    (``psi = momentum_decay``) and ``mu_product *= mu_t``: ``m = lerp(m, g, 1 - b1)``,
    ``v = b2 v + (1 - b2) g**2``, ``denom = sqrt(v / (1 - b2**t)) + eps`` and the output is
    ``((1 - mu_t) / (1 - mu_product) * g + mu_{t+1} / (1 - mu_product * mu_{t+1}) * m) / denom``.

    ``mu_product`` is a 0-d array kept in float32 unless the default float dtype is float64
    (torch's scalar dtype), and multiplied in that precision, so the numbers are torch's.

    Args:
        b1: decay of the first moment, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: added to the denominator after the square root (>= 0).
        momentum_decay: the momentum schedule's decay ``psi`` (>= 0).
    """
    beta1 = _check_beta("scale_by_nadam", 0, b1)
    beta2 = _check_beta("scale_by_nadam", 1, b2)
    epsilon = _check_number("scale_by_nadam", "eps", eps)
    psi = _check_number("scale_by_nadam", "momentum_decay", momentum_decay)

    def init(params: Any) -> ScaleByNadamState:
        one = backend.asarray(1.0, dtype=_scalar_dtype_name())
        return ScaleByNadamState(0, one, _zeros(params), _zeros(params))

    def update(
        updates: Any, state: ScaleByNadamState, params: Any = None
    ) -> tuple[Any, ScaleByNadamState]:
        count = state.count + 1
        bc2 = 1.0 - beta2**count
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (count * psi)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((count + 1) * psi)))
        mu_product = state.mu_product * mu  # in the 0-d array's own precision, as torch
        prod = float(mu_product)
        coef_g = (1.0 - mu) / (1.0 - prod)
        coef_m = mu_next / (1.0 - prod * mu_next)

        def leaf(g: Any, m: Any, v: Any) -> tuple:
            m = _lerp(m, g, 1.0 - beta1)
            v = v * beta2 + (g * g) * (1.0 - beta2)
            denom = fnp.sqrt(v / bc2) + epsilon
            return (g * coef_g + m * coef_m) / denom, m, v

        out, m, v = _leafwise(leaf, 3, updates, state.mu, state.nu)
        return out, ScaleByNadamState(count, mu_product, m, v)

    return GradientTransformation(init, update)


def scale_by_radam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> GradientTransformation:
    """Rescale updates by RAdam's rectified moments (torch.optim.RAdam's formula).

    With ``t`` the step (from 1): the moments are Adam's (``m = lerp(m, g, 1 - b1)``,
    ``v = b2 v + (1 - b2) g**2``); with ``rho_inf = 2 / (1 - b2) - 1`` and
    ``rho_t = rho_inf - 2 t b2**t / (1 - b2**t)``, the output is ``m / (1 - b1**t)`` times, when
    ``rho_t > 5``, the rectification ``r_t * sqrt(1 - b2**t) / (sqrt(v) + eps)`` with
    ``r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))``.
    The state is a :class:`ScaleByAdamState` (``nu_max`` None).

    Args:
        b1: decay of the first moment, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: added to the denominator after the square root (>= 0).
    """
    beta1 = _check_beta("scale_by_radam", 0, b1)
    beta2 = _check_beta("scale_by_radam", 1, b2)
    epsilon = _check_number("scale_by_radam", "eps", eps)
    rho_inf = 2.0 / (1.0 - beta2) - 1.0

    def init(params: Any) -> ScaleByAdamState:
        return ScaleByAdamState(0, _zeros(params), _zeros(params), None)

    def update(
        updates: Any, state: ScaleByAdamState, params: Any = None
    ) -> tuple[Any, ScaleByAdamState]:
        count = state.count + 1
        bc1 = 1.0 - beta1**count
        bc2 = 1.0 - beta2**count
        rho_t = rho_inf - 2 * count * (beta2**count) / bc2
        rectified = rho_t > 5.0
        if rectified:
            rect = (
                (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            ) ** 0.5
            factor = rect * bc2**0.5

        def leaf(g: Any, m: Any, v: Any) -> tuple:
            m = _lerp(m, g, 1.0 - beta1)
            v = v * beta2 + (g * g) * (1.0 - beta2)
            out = m / bc1
            if rectified:
                out = out * factor / (fnp.sqrt(v) + epsilon)
            return out, m, v

        out, m, v = _leafwise(leaf, 3, updates, state.mu, state.nu)
        return out, ScaleByAdamState(count, m, v, None)

    return GradientTransformation(init, update)


class ScaleByAdamaxState(NamedTuple):
    """Adamax: ``count`` steps, the first moments ``mu`` and the infinity norms ``inf_norm``."""

    count: int
    mu: Any
    inf_norm: Any


def scale_by_adamax(
    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
) -> GradientTransformation:
    """Rescale updates by Adamax's infinity norm (torch.optim.Adamax's formula).

    With ``t`` the step (from 1): ``m = lerp(m, g, 1 - b1)``,
    ``u = maximum(b2 * u, |g| + eps)`` and the output is ``m / u / (1 - b1**t)``.

    Args:
        b1: decay of the first moment, in [0, 1).
        b2: decay of the infinity norm, in [0, 1).
        eps: added to ``|g|`` (>= 0).
    """
    beta1 = _check_beta("scale_by_adamax", 0, b1)
    beta2 = _check_beta("scale_by_adamax", 1, b2)
    epsilon = _check_number("scale_by_adamax", "eps", eps)

    def init(params: Any) -> ScaleByAdamaxState:
        return ScaleByAdamaxState(0, _zeros(params), _zeros(params))

    def update(
        updates: Any, state: ScaleByAdamaxState, params: Any = None
    ) -> tuple[Any, ScaleByAdamaxState]:
        count = state.count + 1
        bc1 = 1.0 - beta1**count

        def leaf(g: Any, m: Any, u: Any) -> tuple:
            m = _lerp(m, g, 1.0 - beta1)
            u = fnp.maximum(u * beta2, fnp.abs(g) + epsilon)
            return (m / u) / bc1, m, u

        out, m, u = _leafwise(leaf, 3, updates, state.mu, state.inf_norm)
        return out, ScaleByAdamaxState(count, m, u)

    return GradientTransformation(init, update)


class ScaleByAdadeltaState(NamedTuple):
    """Adadelta: ``count`` steps, the running means of squared updates (``square_avg``) and of
    squared steps (``acc_delta``)."""

    count: int
    square_avg: Any
    acc_delta: Any


def scale_by_adadelta(rho: float = 0.9, eps: float = 1e-6) -> GradientTransformation:
    """Rescale updates by the ratio of running RMS of steps and of updates (torch.optim.Adadelta).

    ``sq = rho sq + (1 - rho) g**2``, ``delta = sqrt(acc + eps) / sqrt(sq + eps) * g``,
    ``acc = rho acc + (1 - rho) delta**2``; the output is ``delta``.

    Args:
        rho: decay of the running means, in [0, 1].
        eps: added inside both square roots (>= 0).
    """
    r = _check_number("scale_by_adadelta", "rho", rho)
    if r > 1.0:
        raise ValueError(
            f"funcnn.optim.scale_by_adadelta: invalid rho value: {rho!r} (must be in [0, 1])"
        )
    epsilon = _check_number("scale_by_adadelta", "eps", eps)

    def init(params: Any) -> ScaleByAdadeltaState:
        return ScaleByAdadeltaState(0, _zeros(params), _zeros(params))

    def update(
        updates: Any, state: ScaleByAdadeltaState, params: Any = None
    ) -> tuple[Any, ScaleByAdadeltaState]:
        def leaf(g: Any, sq: Any, acc: Any) -> tuple:
            sq = sq * r + (g * g) * (1.0 - r)
            delta = fnp.sqrt(acc + epsilon) / fnp.sqrt(sq + epsilon) * g
            acc = acc * r + (delta * delta) * (1.0 - r)
            return delta, sq, acc

        out, sq, acc = _leafwise(leaf, 3, updates, state.square_avg, state.acc_delta)
        return out, ScaleByAdadeltaState(state.count + 1, sq, acc)

    return GradientTransformation(init, update)
