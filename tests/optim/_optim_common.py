"""Shared by the optimiser tests: a small pytree of parameters, a loss over it, a few steps."""

from __future__ import annotations

import numpy as np

import funcnn as fn
import funcnn.numpy as fnp
import funcnn.optim as fo

MORE_OPTIMISERS = {  # the later additions, with tests of their own in test_more_optimisers.py
    "nadam": lambda: fo.nadam(1e-2, weight_decay=0.1),
    "nadam_decoupled": lambda: fo.nadam(1e-2, weight_decay=0.1, decoupled_weight_decay=True),
    "radam": lambda: fo.radam(1e-2, b2=0.9, weight_decay=0.1),
    "radam_decoupled": lambda: fo.radam(
        1e-2, b2=0.9, weight_decay=0.1, decoupled_weight_decay=True
    ),
    "adamax": lambda: fo.adamax(1e-2, weight_decay=0.01),
    "adadelta": lambda: fo.adadelta(1.0, weight_decay=0.01),
}


def _params(dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "fc": {
            "weight": rng.normal(size=(3, 4)).astype(dtype),
            "bias": rng.normal(size=3).astype(dtype),
        },
        "scale": rng.normal(size=()).astype(dtype),
    }


def _loss(p):
    x = fnp.asarray(np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4))
    x = fnp.astype(x, p["fc"]["weight"].dtype)
    y = fnp.tanh(x @ p["fc"]["weight"].T + p["fc"]["bias"]) * p["scale"]
    return fnp.sum(y * y)


def _run(opt, params, steps=5):
    state = opt.init(params)
    for _ in range(steps):
        grads = fn.grad(_loss)(params)
        updates, state = opt.update(grads, state, params)
        params = fo.apply_updates(params, updates)
    return params, state
