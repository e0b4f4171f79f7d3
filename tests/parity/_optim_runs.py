"""Shared by the optimiser parity tests: the same 20-step, two-group run on torch.optim and on
funcnn.optim, with gradients that depend on the parameters (so a difference in one step shows
up in the next)."""

from __future__ import annotations

import numpy as np
import torch

import funcnn.optim as fo
import funcnn_modules as fm
import funcnn_modules.nn as fnn

STEPS = 20
RTOL, ATOL = 1e-10, 1e-12


def _fn_kwargs(torch_kwargs: dict) -> dict:
    """torch.optim's keyword names as funcnn.optim's."""
    out = dict(torch_kwargs)
    if "lr" in out:
        out["learning_rate"] = out.pop("lr")
    if "betas" in out:
        out["b1"], out["b2"] = out.pop("betas")
    return out


def _initial_params(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        rng.normal(size=(4, 3)),
        rng.normal(size=3),
        rng.normal(size=(2, 5)),
        rng.normal(size=()),
    ]


def _noise(step: int, shapes: list[tuple]) -> list[np.ndarray]:
    rng = np.random.default_rng(1000 + step)
    return [rng.normal(size=s) for s in shapes]


def _grad(p: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """A gradient that depends on the parameters (of 0.5 |p|^2 - cos(p) + noise . p)."""
    return 0.5 * p + np.sin(p) + noise


GROUPS = ([0, 1], [2, 3])  # which parameters each group holds


def _run_torch(cls_name: str, kw0: dict, kw1: dict, params: list[np.ndarray], scheduler=None):
    tparams = [torch.tensor(p, requires_grad=True) for p in params]
    groups = [
        {"params": [tparams[i] for i in GROUPS[0]]},
        {"params": [tparams[i] for i in GROUPS[1]], **kw1},
    ]
    opt = getattr(torch.optim, cls_name)(groups, **kw0)
    sched = scheduler(opt) if scheduler is not None else None
    for step in range(STEPS):
        noise = _noise(step, [p.shape for p in params])
        for tp, n in zip(tparams, noise):
            tp.grad = torch.tensor(_grad(tp.detach().numpy(), n))
        opt.step()
        if sched is not None:
            sched.step()
    return [tp.detach().numpy() for tp in tparams]


def _run_funcnn(make, kw0: dict, kw1: dict, params: list[np.ndarray]):
    opts = [make(**_fn_kwargs(kw0)), make(**_fn_kwargs({**kw0, **kw1}))]
    trees = [[params[i] for i in g] for g in GROUPS]
    states = [o.init(t) for o, t in zip(opts, trees)]
    for step in range(STEPS):
        noise = _noise(step, [p.shape for p in params])
        for gi, g in enumerate(GROUPS):
            grads = [_grad(p, noise[i]) for p, i in zip(trees[gi], g)]
            updates, states[gi] = opts[gi].update(grads, states[gi], trees[gi])
            trees[gi] = fo.apply_updates(trees[gi], updates)
    out = [None] * len(params)
    for gi, g in enumerate(GROUPS):
        for p, i in zip(trees[gi], g):
            out[i] = p
    return out


# ----------------------------------------------------------------------------- the module face


def _pair_params(params: list[np.ndarray], dtype=np.float64):
    ours = [fnn.Parameter(fm.tensor(p.astype(dtype))) for p in params]
    theirs = [torch.nn.Parameter(torch.tensor(p.astype(dtype))) for p in params]
    return ours, theirs


def _groups(tensors, kw1):
    return [
        {"params": [tensors[i] for i in GROUPS[0]]},
        {"params": [tensors[i] for i in GROUPS[1]], **kw1},
    ]


def _set_grads(ours, theirs, step, skip=()):
    noise = _noise(step, [tuple(p.shape) for p in ours])
    for i, (a, b, n) in enumerate(zip(ours, theirs, noise)):
        if i in skip:
            a.grad = None
            b.grad = None
            continue
        a.grad = fm.tensor(_grad(a.detach().numpy(), n).astype(a.detach().numpy().dtype))
        b.grad = torch.tensor(_grad(b.detach().numpy(), n).astype(b.detach().numpy().dtype))


def _assert_same_params(ours, theirs, rtol=RTOL, atol=ATOL):
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=rtol, atol=atol)


def _assert_same_state(ours_opt, torch_opt):
    ours, theirs = ours_opt.state_dict(), torch_opt.state_dict()
    assert ours["param_groups"] == theirs["param_groups"]
    assert sorted(ours["state"]) == sorted(theirs["state"])
    for i, st in theirs["state"].items():
        assert list(ours["state"][i]) == list(st), i  # the same keys, in the same order
        for k, v in st.items():
            np.testing.assert_allclose(ours["state"][i][k].numpy(), v.numpy(), rtol=RTOL, atol=ATOL)
            assert str(ours["state"][i][k].dtype) == str(v.dtype), (i, k)
