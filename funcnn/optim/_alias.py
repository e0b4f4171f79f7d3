"""The public optimisers: torch.optim's algorithms, defaults and arithmetic, as chains.

``sgd adam adamw rmsprop adagrad nadam radam adamax adadelta``.

Each matches the same-named ``torch.optim`` optimiser step for step::

    opt = adam(1e-3)                               # torch.optim.Adam(params, lr=1e-3)
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = apply_updates(params, updates)

``learning_rate`` may be a schedule (a function of the step, 0 on the first update), which is
what a ``torch.optim.lr_scheduler`` stepped once per optimiser step gives.
"""

from __future__ import annotations

from funcnn.optim._base import (
    GradientTransformation,
    ScalarOrSchedule,
    _check_number,
    add_decayed_weights,
    chain,
    scale,
    scale_by_learning_rate,
)
from funcnn.optim._transforms import (
    _check_beta,
    scale_by_adadelta,
    scale_by_adagrad,
    scale_by_adam,
    scale_by_adamax,
    scale_by_nadam,
    scale_by_radam,
    scale_by_rms,
    trace,
)

__all__ = ["sgd", "adam", "adamw", "rmsprop", "adagrad", "nadam", "radam", "adamax", "adadelta"]


def _check_lr(fn: str, learning_rate: ScalarOrSchedule) -> None:
    if not callable(learning_rate):
        _check_number(fn, "learning_rate", learning_rate)


def _chain(*parts: GradientTransformation | None) -> GradientTransformation:
    return chain(*[p for p in parts if p is not None])


def sgd(
    learning_rate: ScalarOrSchedule = 1e-3,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> GradientTransformation:
    """Stochastic gradient descent, optionally with momentum (torch.optim.SGD).

    ``g = grad + weight_decay * p``; with momentum ``buf = momentum * buf + (1 - dampening) * g``
    (``buf`` starts as the first ``g``) and ``g = buf`` (or ``g + momentum * buf`` with Nesterov);
    then ``p -= lr * g``.

    Args:
        learning_rate: a Python number or a schedule (torch's default 1e-3).
        momentum: momentum factor (>= 0).
        dampening: dampening for momentum.
        nesterov: Nesterov momentum (needs momentum > 0 and dampening 0).
        weight_decay: L2 penalty added to the gradient (>= 0).
        maximize: ascend the objective instead of descending.
    Returns:
        A GradientTransformation; its state is a tuple of the chained transformations' states.
    """
    _check_lr("sgd", learning_rate)
    mom = _check_number("sgd", "momentum", momentum)
    wd = _check_number("sgd", "weight_decay", weight_decay)
    if nesterov and (mom <= 0 or dampening != 0):
        raise ValueError(
            "funcnn.optim.sgd: Nesterov momentum requires a momentum and zero dampening, "
            f"got momentum={momentum!r}, dampening={dampening!r}"
        )
    return _chain(
        scale(-1.0) if maximize else None,
        add_decayed_weights(wd) if wd != 0 else None,
        trace(mom, dampening, nesterov) if mom != 0 else None,
        scale_by_learning_rate(learning_rate),
    )


def adam(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """Adam (torch.optim.Adam): weight decay is an L2 term added to the gradient.

    Args:
        learning_rate: a Python number or a schedule.
        b1, b2: the moments' decay rates (torch's ``betas``), in [0, 1).
        eps: added to the denominator after the square root.
        weight_decay: L2 penalty added to the gradient (>= 0).
        amsgrad: use the running maximum of the second moments.
        maximize: ascend the objective instead of descending.
    Returns:
        A GradientTransformation (see :func:`funcnn.optim.scale_by_adam`).
    """
    _check_lr("adam", learning_rate)
    _check_beta("adam", 0, b1)
    _check_beta("adam", 1, b2)
    _check_number("adam", "eps", eps)
    wd = _check_number("adam", "weight_decay", weight_decay)
    return _chain(
        scale(-1.0) if maximize else None,
        add_decayed_weights(wd) if wd != 0 else None,
        scale_by_adam(b1, b2, eps, amsgrad),
        scale_by_learning_rate(learning_rate),
    )


def adamw(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """AdamW (torch.optim.AdamW): decoupled weight decay, ``p *= 1 - lr * weight_decay``.

    The decay is applied to the parameters, not added to the gradient: the update is
    ``-lr * (adam_direction + weight_decay * p)``.

    Args:
        learning_rate: a Python number or a schedule.
        b1, b2: the moments' decay rates, in [0, 1).
        eps: added to the denominator after the square root.
        weight_decay: decoupled weight decay (torch's default 1e-2).
        amsgrad: use the running maximum of the second moments.
        maximize: ascend the objective instead of descending.
    """
    _check_lr("adamw", learning_rate)
    _check_beta("adamw", 0, b1)
    _check_beta("adamw", 1, b2)
    _check_number("adamw", "eps", eps)
    wd = _check_number("adamw", "weight_decay", weight_decay)
    return _chain(
        scale(-1.0) if maximize else None,
        scale_by_adam(b1, b2, eps, amsgrad),
        add_decayed_weights(wd) if wd != 0 else None,
        scale_by_learning_rate(learning_rate),
    )


def rmsprop(
    learning_rate: ScalarOrSchedule = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """RMSprop (torch.optim.RMSprop); see :func:`funcnn.optim.scale_by_rms`.

    Args:
        learning_rate: a Python number or a schedule (torch's default 1e-2).
        alpha: smoothing constant.
        eps: added to the denominator after the square root.
        weight_decay: L2 penalty added to the gradient (>= 0).
        momentum: momentum factor (>= 0); the buffer starts at zero.
        centered: normalise by an estimate of the gradient's variance.
        maximize: ascend the objective instead of descending.
    """
    _check_lr("rmsprop", learning_rate)
    wd = _check_number("rmsprop", "weight_decay", weight_decay)
    return _chain(
        scale(-1.0) if maximize else None,
        add_decayed_weights(wd) if wd != 0 else None,
        scale_by_rms(alpha, eps, centered, momentum),
        scale_by_learning_rate(learning_rate),
    )


def adagrad(
    learning_rate: ScalarOrSchedule = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    maximize: bool = False,
) -> GradientTransformation:
    """Adagrad (torch.optim.Adagrad); see :func:`funcnn.optim.scale_by_adagrad`.

    Args:
        learning_rate: a Python number or a schedule (torch's default 1e-2).
        lr_decay: learning-rate decay: step ``t`` uses ``lr / (1 + (t - 1) * lr_decay)``.
        weight_decay: L2 penalty added to the gradient (>= 0).
        initial_accumulator_value: starting value of the sum of squares.
        eps: added to the denominator.
        maximize: ascend the objective instead of descending.
    """
    _check_lr("adagrad", learning_rate)
    wd = _check_number("adagrad", "weight_decay", weight_decay)
    return _chain(
        scale(-1.0) if maximize else None,
        add_decayed_weights(wd) if wd != 0 else None,
        scale_by_adagrad(lr_decay, initial_accumulator_value, eps),
        scale_by_learning_rate(learning_rate),
    )


def nadam(
    learning_rate: ScalarOrSchedule = 2e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum_decay: float = 4e-3,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """NAdam (torch.optim.NAdam): Adam with Nesterov momentum and a momentum schedule.

    Weight decay is an L2 term added to the gradient, or with ``decoupled_weight_decay`` applied
    to the parameters as in AdamW (NAdamW): ``p *= 1 - lr * weight_decay``.

    Args:
        learning_rate: a Python number or a schedule (torch's default 2e-3).
        b1, b2: the moments' decay rates (torch's ``betas``), in [0, 1).
        eps: added to the denominator after the square root.
        weight_decay: weight decay (>= 0).
        momentum_decay: the momentum schedule's decay ``psi`` (>= 0).
        decoupled_weight_decay: decay the parameters instead of adding to the gradient.
        maximize: ascend the objective instead of descending.
    Returns:
        A GradientTransformation (see :func:`funcnn.optim.scale_by_nadam`).
    """
    _check_lr("nadam", learning_rate)
    _check_beta("nadam", 0, b1)
    _check_beta("nadam", 1, b2)
    _check_number("nadam", "eps", eps)
    _check_number("nadam", "momentum_decay", momentum_decay)
    wd = _check_number("nadam", "weight_decay", weight_decay)
    decay = add_decayed_weights(wd) if wd != 0 else None
    return _chain(
        scale(-1.0) if maximize else None,
        None if decoupled_weight_decay else decay,
        scale_by_nadam(b1, b2, eps, momentum_decay),
        decay if decoupled_weight_decay else None,
        scale_by_learning_rate(learning_rate),
    )


def radam(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """RAdam (torch.optim.RAdam): Adam with a rectified adaptive learning rate.

    Weight decay is an L2 term added to the gradient, or with ``decoupled_weight_decay`` applied
    to the parameters as in AdamW: ``p *= 1 - lr * weight_decay``.

    Args:
        learning_rate: a Python number or a schedule.
        b1, b2: the moments' decay rates (torch's ``betas``), in [0, 1).
        eps: added to the denominator after the square root.
        weight_decay: weight decay (>= 0).
        decoupled_weight_decay: decay the parameters instead of adding to the gradient.
        maximize: ascend the objective instead of descending.
    Returns:
        A GradientTransformation (see :func:`funcnn.optim.scale_by_radam`).
    """
    _check_lr("radam", learning_rate)
    _check_beta("radam", 0, b1)
    _check_beta("radam", 1, b2)
    _check_number("radam", "eps", eps)
    wd = _check_number("radam", "weight_decay", weight_decay)
    decay = add_decayed_weights(wd) if wd != 0 else None
    return _chain(
        scale(-1.0) if maximize else None,
        None if decoupled_weight_decay else decay,
        scale_by_radam(b1, b2, eps),
        decay if decoupled_weight_decay else None,
        scale_by_learning_rate(learning_rate),
    )


def adamax(
    learning_rate: ScalarOrSchedule = 2e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> GradientTransformation:
    """Adamax (torch.optim.Adamax): Adam with the infinity norm in place of the second moment.

    Args:
        learning_rate: a Python number or a schedule (torch's default 2e-3).
        b1, b2: decay rates of the first moment and of the infinity norm, in [0, 1).
        eps: added to ``|grad|`` before the maximum.
        weight_decay: L2 penalty added to the gradient (>= 0).
        maximize: ascend the objective instead of descending.
    Returns:
        A GradientTransformation (see :func:`funcnn.optim.scale_by_adamax`).
    """
    _check_lr("adamax", learning_rate)
    _check_beta("adamax", 0, b1)
    _check_beta("adamax", 1, b2)
    _check_number("adamax", "eps", eps)
    wd = _check_number("adamax", "weight_decay", weight_decay)
    return _chain(
        scale(-1.0) if maximize else None,
        add_decayed_weights(wd) if wd != 0 else None,
        scale_by_adamax(b1, b2, eps),
        scale_by_learning_rate(learning_rate),
    )


def adadelta(
    learning_rate: ScalarOrSchedule = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> GradientTransformation:
    """Adadelta (torch.optim.Adadelta); see :func:`funcnn.optim.scale_by_adadelta`.

    Args:
        learning_rate: a Python number or a schedule (torch's default 1.0).
        rho: decay of the running means, in [0, 1].
        eps: added inside the square roots.
        weight_decay: L2 penalty added to the gradient (>= 0).
        maximize: ascend the objective instead of descending.
    Returns:
        A GradientTransformation (see :func:`funcnn.optim.scale_by_adadelta`).
    """
    _check_lr("adadelta", learning_rate)
    r = _check_number("adadelta", "rho", rho)
    if r > 1.0:
        raise ValueError(f"funcnn.optim.adadelta: invalid rho value: {rho!r} (must be in [0, 1])")
    _check_number("adadelta", "eps", eps)
    wd = _check_number("adadelta", "weight_decay", weight_decay)
    return _chain(
        scale(-1.0) if maximize else None,
        add_decayed_weights(wd) if wd != 0 else None,
        scale_by_adadelta(rho, eps),
        scale_by_learning_rate(learning_rate),
    )
