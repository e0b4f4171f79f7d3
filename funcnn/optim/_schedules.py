"""Learning-rate schedules: pure functions of the step count.

A schedule maps the step (a Python int, 0 for the first update) to a Python float. Pass one as
an optimiser's ``learning_rate``::

    opt = funcnn.optim.sgd(learning_rate=funcnn.optim.cosine_decay(0.1, T_max=100))

Each is the closed form of the ``torch.optim.lr_scheduler`` class named in its docstring:
``schedule(t)`` is the learning rate that scheduler sets after ``t`` calls of its ``step()``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from typing import Any

from funcnn.optim._base import Schedule, _check_number

__all__ = [
    "constant_schedule",
    "step_schedule",
    "multistep_schedule",
    "exponential_decay",
    "cosine_decay",
    "linear_warmup",
    "one_cycle",
    "join_schedules",
]


def _check_steps(fn: str, name: str, value: Any, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"funcnn.optim.{fn}: {name} must be an int, got {type(value).__name__} {value!r}"
        )
    if value < minimum:
        raise ValueError(f"funcnn.optim.{fn}: {name} must be >= {minimum}, got {value}")
    return value


def constant_schedule(value: float) -> Schedule:
    """The same learning rate at every step.

    Args:
        value: the learning rate.
    Returns:
        ``schedule(step) -> value``.
    """
    v = _check_number("constant_schedule", "value", value, minimum=None)
    return lambda step: v


def step_schedule(init_value: float, step_size: int, gamma: float = 0.1) -> Schedule:
    """Decay by ``gamma`` every ``step_size`` steps (StepLR): ``init_value * gamma ** (step // step_size)``.

    Args:
        init_value: the learning rate at step 0.
        step_size: the period of the decay (>= 1).
        gamma: the multiplicative factor.
    """
    v = _check_number("step_schedule", "init_value", init_value, minimum=None)
    n = _check_steps("step_schedule", "step_size", step_size)
    g = _check_number("step_schedule", "gamma", gamma, minimum=None)
    return lambda step: v * g ** (step // n)


def multistep_schedule(
    init_value: float, milestones: Sequence[int], gamma: float = 0.1
) -> Schedule:
    """Decay by ``gamma`` at each milestone (MultiStepLR): ``init_value * gamma ** (milestones passed)``.

    Args:
        init_value: the learning rate at step 0.
        milestones: the steps at which to decay (a milestone listed twice decays twice).
        gamma: the multiplicative factor.
    """
    v = _check_number("multistep_schedule", "init_value", init_value, minimum=None)
    ms = sorted(_check_steps("multistep_schedule", "milestones", m, minimum=0) for m in milestones)
    g = _check_number("multistep_schedule", "gamma", gamma, minimum=None)
    return lambda step: v * g ** bisect.bisect_right(ms, step)


def exponential_decay(init_value: float, gamma: float) -> Schedule:
    """Decay by ``gamma`` every step (ExponentialLR): ``init_value * gamma ** step``.

    Args:
        init_value: the learning rate at step 0.
        gamma: the multiplicative factor per step.
    """
    v = _check_number("exponential_decay", "init_value", init_value, minimum=None)
    g = _check_number("exponential_decay", "gamma", gamma, minimum=None)
    return lambda step: v * g**step


def cosine_decay(init_value: float, T_max: int, eta_min: float = 0.0) -> Schedule:  # noqa: N803 - PyTorch's name
    """Cosine annealing (CosineAnnealingLR's closed form).

    ``eta_min + (init_value - eta_min) * (1 + cos(pi * step / T_max)) / 2``. Like PyTorch's, it
    is periodic: after ``T_max`` steps it rises again; stop at ``T_max`` or join it with a
    :func:`constant_schedule` to hold ``eta_min``.

    Args:
        init_value: the learning rate at step 0.
        T_max: the number of steps of the half period (>= 1).
        eta_min: the minimum learning rate.
    """
    v = _check_number("cosine_decay", "init_value", init_value, minimum=None)
    t_max = _check_steps("cosine_decay", "T_max", T_max)
    lo = _check_number("cosine_decay", "eta_min", eta_min, minimum=None)
    return lambda step: lo + (v - lo) * (1 + math.cos(math.pi * step / t_max)) / 2


def linear_warmup(peak_value: float, warmup_steps: int, init_value: float = 0.0) -> Schedule:
    """Linear ramp from ``init_value`` to ``peak_value`` over ``warmup_steps``, then constant (LinearLR).

    ``init_value + (peak_value - init_value) * min(step, warmup_steps) / warmup_steps``.
    ``LinearLR(opt, start_factor=a, end_factor=b, total_iters=n)`` on a base lr ``lr`` is
    ``linear_warmup(b * lr, n, init_value=a * lr)``.

    Args:
        peak_value: the learning rate from step ``warmup_steps`` on.
        warmup_steps: the length of the ramp (>= 1).
        init_value: the learning rate at step 0.
    """
    hi = _check_number("linear_warmup", "peak_value", peak_value, minimum=None)
    n = _check_steps("linear_warmup", "warmup_steps", warmup_steps)
    lo = _check_number("linear_warmup", "init_value", init_value, minimum=None)
    return lambda step: lo + (hi - lo) * min(n, step) / n


def _anneal_cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def _anneal_linear(start: float, end: float, pct: float) -> float:
    return (end - start) * pct + start


def _one_cycle_phases(
    total_steps: int, pct_start: float, three_phase: bool
) -> list[tuple[float, str, str]]:
    """OneCycleLR's phases: ``(end_step, start_key, end_key)``; keys name 'initial', 'max', 'min'."""
    if three_phase:
        return [
            (float(pct_start * total_steps) - 1, "initial", "max"),
            (float(2 * pct_start * total_steps) - 2, "max", "initial"),
            (total_steps - 1, "initial", "min"),
        ]
    return [
        (float(pct_start * total_steps) - 1, "initial", "max"),
        (total_steps - 1, "max", "min"),
    ]


def _one_cycle_value(
    step: int, phases: list[tuple[float, str, str]], values: dict[str, float], anneal: Callable
) -> float:
    """The value of a one-cycle schedule at ``step``, exactly as OneCycleLR.get_lr computes it."""
    start_step = 0.0
    for i, (end_step, start_key, end_key) in enumerate(phases):
        if step <= end_step or i == len(phases) - 1:
            pct = (step - start_step) / (end_step - start_step)
            return anneal(values[start_key], values[end_key], pct)
        start_step = end_step
    raise AssertionError("unreachable")  # pragma: no cover


def one_cycle(
    total_steps: int,
    max_lr: float,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
) -> Schedule:
    """The 1cycle policy (OneCycleLR's learning rates).

    From ``max_lr / div_factor`` up to ``max_lr`` over the first ``pct_start`` of the steps, then
    down to ``max_lr / div_factor / final_div_factor`` at step ``total_steps - 1``; with
    ``three_phase`` it comes back to the initial value symmetrically before the final descent.

    Args:
        total_steps: the number of steps in the cycle (>= 1).
        max_lr: the peak learning rate.
        pct_start: the fraction of the cycle spent increasing, in [0, 1].
        anneal_strategy: 'cos' or 'linear'.
        div_factor: ``initial_lr = max_lr / div_factor``.
        final_div_factor: ``min_lr = initial_lr / final_div_factor``.
        three_phase: use the three-phase variant.
    Returns:
        ``schedule(step)``; like PyTorch, a step beyond ``total_steps`` raises ValueError.
    """
    n = _check_steps("one_cycle", "total_steps", total_steps)
    peak = _check_number("one_cycle", "max_lr", max_lr, minimum=None)
    pct = _check_number("one_cycle", "pct_start", pct_start)
    if pct > 1.0:
        raise ValueError(f"funcnn.optim.one_cycle: pct_start must be in [0, 1], got {pct_start!r}")
    if anneal_strategy not in ("cos", "linear"):
        raise ValueError(
            f"funcnn.optim.one_cycle: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}"
        )
    anneal = _anneal_cos if anneal_strategy == "cos" else _anneal_linear
    initial = peak / _check_number("one_cycle", "div_factor", div_factor)
    values = {"initial": initial, "max": peak, "min": initial / final_div_factor}
    phases = _one_cycle_phases(n, pct, three_phase)

    def schedule(step: int) -> float:
        if step > n:
            raise ValueError(
                f"funcnn.optim.one_cycle: tried to step {step} times; the specified number of "
                f"total steps is {n}"
            )
        return _one_cycle_value(step, phases, values, anneal)

    return schedule


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Run ``schedules`` one after another, switching at ``boundaries``.

    For ``boundaries[i-1] <= step < boundaries[i]`` the value is
    ``schedules[i](step - boundaries[i-1])``: each schedule counts from 0 when it starts (like
    optax.join_schedules and PyTorch's SequentialLR).

    Args:
        schedules: ``k`` schedules.
        boundaries: ``k - 1`` increasing steps.
    Example:
        >>> warm_then_cos = join_schedules([linear_warmup(0.1, 5), cosine_decay(0.1, 95)], [5])
    """
    scheds = list(schedules)
    bounds = [_check_steps("join_schedules", "boundaries", b, minimum=0) for b in boundaries]
    if len(scheds) != len(bounds) + 1:
        raise ValueError(
            f"funcnn.optim.join_schedules: need one more schedule than boundaries, got "
            f"{len(scheds)} schedules and {len(bounds)} boundaries"
        )
    if any(b0 > b1 for b0, b1 in zip(bounds, bounds[1:])):
        raise ValueError(f"funcnn.optim.join_schedules: boundaries must increase, got {bounds}")
    for i, s in enumerate(scheds):
        if not callable(s):
            raise TypeError(f"funcnn.optim.join_schedules: schedule {i} is not callable: {s!r}")

    def schedule(step: int) -> float:
        i = bisect.bisect_right(bounds, step)
        return scheds[i](step - bounds[i - 1] if i > 0 else step)

    return schedule
