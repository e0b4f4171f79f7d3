"""Functional optimisers in the style of Optax: pure ``(init, update)`` pairs built by chaining.

    import funcnn as fn
    opt = fn.optim.adam(learning_rate=1e-3)
    state = opt.init(params)
    grads = fn.grad(loss)(params, x, y)
    updates, state = opt.update(grads, state, params)
    params = fn.optim.apply_updates(params, updates)

Every public optimiser (``sgd adam adamw rmsprop adagrad nadam radam adamax adadelta``) has
torch.optim's defaults and matches the same-named torch.optim optimiser step for step. They are
chains of the small transformations exported here, which compose into new optimisers::

    opt = fn.optim.chain(fn.optim.clip_by_global_norm(1.0), fn.optim.adamw(3e-4))

``learning_rate`` may be a schedule: a function of the step count (see ``cosine_decay``,
``one_cycle``, ``join_schedules`` ...). The arithmetic is written with funcnn ops, so an
optimiser step can itself be differentiated (e.g. for meta-learning).

See also: ``funcnn_modules.optim``, the stateful PyTorch-style classes over these functions.
"""

from funcnn.optim._alias import (
    adadelta,
    adagrad,
    adam,
    adamax,
    adamw,
    nadam,
    radam,
    rmsprop,
    sgd,
)
from funcnn.optim._base import (
    EmptyState,
    GradientTransformation,
    ScalarOrSchedule,
    ScaleByScheduleState,
    Schedule,
    add_decayed_weights,
    apply_updates,
    chain,
    clip,
    clip_by_global_norm,
    global_norm,
    identity,
    scale,
    scale_by_learning_rate,
    scale_by_schedule,
)
from funcnn.optim._schedules import (
    constant_schedule,
    cosine_decay,
    exponential_decay,
    join_schedules,
    linear_warmup,
    multistep_schedule,
    one_cycle,
    step_schedule,
)
from funcnn.optim._transforms import (
    ScaleByAdadeltaState,
    ScaleByAdagradState,
    ScaleByAdamaxState,
    ScaleByAdamState,
    ScaleByNadamState,
    ScaleByRmsState,
    TraceState,
    scale_by_adadelta,
    scale_by_adagrad,
    scale_by_adam,
    scale_by_adamax,
    scale_by_nadam,
    scale_by_radam,
    scale_by_rms,
    trace,
)

__all__ = [
    # optimisers
    "sgd",
    "adam",
    "adamw",
    "rmsprop",
    "adagrad",
    "nadam",
    "radam",
    "adamax",
    "adadelta",
    # protocol and combinators
    "GradientTransformation",
    "chain",
    "apply_updates",
    "identity",
    # transformations
    "scale",
    "scale_by_learning_rate",
    "scale_by_schedule",
    "add_decayed_weights",
    "trace",
    "scale_by_adam",
    "scale_by_rms",
    "scale_by_adagrad",
    "scale_by_nadam",
    "scale_by_radam",
    "scale_by_adamax",
    "scale_by_adadelta",
    "clip",
    "clip_by_global_norm",
    "global_norm",
    # states
    "EmptyState",
    "ScaleByScheduleState",
    "TraceState",
    "ScaleByAdamState",
    "ScaleByRmsState",
    "ScaleByAdagradState",
    "ScaleByNadamState",
    "ScaleByAdamaxState",
    "ScaleByAdadeltaState",
    # schedules
    "Schedule",
    "ScalarOrSchedule",
    "constant_schedule",
    "step_schedule",
    "multistep_schedule",
    "exponential_decay",
    "cosine_decay",
    "linear_warmup",
    "one_cycle",
    "join_schedules",
]
