"""Optimisers, schedules and gradient clipping of both faces against torch.optim, step for step.

Every run is float64 over 20 steps with two parameter groups of different hyperparameters; the
gradients depend on the current parameters, so any difference in one step shows up in the
next. Parameters must agree to ~1e-10.
"""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
import torch
from _optim_runs import (
    ATOL,
    GROUPS,
    RTOL,
    STEPS,
    _assert_same_params,
    _assert_same_state,
    _grad,
    _groups,
    _initial_params,
    _noise,
    _pair_params,
    _run_funcnn,
    _run_torch,
    _set_grads,
)

import funcnn.optim as fo
import funcnn_modules as fm
import funcnn_modules.nn as fnn
import funcnn_modules.optim as foptim
from funcnn_modules.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_

pytestmark = pytest.mark.parity


# (torch class name, funcnn function, torch kwargs for group 0, overrides for group 1)
CONFIGS = {
    "sgd": ("SGD", fo.sgd, {"lr": 0.05}, {"lr": 0.02, "weight_decay": 0.1}),
    "sgd_momentum": (
        "SGD",
        fo.sgd,
        {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
        {"momentum": 0.5, "dampening": 0.0},
    ),
    "sgd_nesterov_maximize": (
        "SGD",
        fo.sgd,
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "maximize": True},
        {"lr": 0.01, "weight_decay": 0.2},
    ),
    "adam": (
        "Adam",
        fo.adam,
        {"lr": 0.01},
        {"lr": 0.03, "betas": (0.8, 0.99), "weight_decay": 0.1},
    ),
    "adam_amsgrad": (
        "Adam",
        fo.adam,
        {"lr": 0.01, "amsgrad": True, "eps": 1e-6, "weight_decay": 0.05},
        {"betas": (0.5, 0.9), "maximize": True},
    ),
    "adamw": ("AdamW", fo.adamw, {"lr": 0.01}, {"lr": 0.05, "weight_decay": 0.3}),
    "adamw_amsgrad": ("AdamW", fo.adamw, {"lr": 0.01, "amsgrad": True}, {"betas": (0.7, 0.95)}),
    "rmsprop": (
        "RMSprop",
        fo.rmsprop,
        {"lr": 0.01},
        {"lr": 0.003, "alpha": 0.9, "weight_decay": 0.1},
    ),
    "rmsprop_centered_momentum": (
        "RMSprop",
        fo.rmsprop,
        {"lr": 0.01, "centered": True, "momentum": 0.9},
        {"momentum": 0.0, "eps": 1e-4, "maximize": True},
    ),
    "adagrad": ("Adagrad", fo.adagrad, {"lr": 0.1}, {"lr": 0.05, "weight_decay": 0.1}),
    "adagrad_decay": (
        "Adagrad",
        fo.adagrad,
        {"lr": 0.1, "lr_decay": 0.05, "initial_accumulator_value": 0.2},
        {"eps": 1e-6, "maximize": True},
    ),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_functional_optimiser_matches_torch_step_for_step(name):
    cls_name, make, kw0, kw1 = CONFIGS[name]
    params = _initial_params()
    expected = _run_torch(cls_name, kw0, kw1, params)
    got = _run_funcnn(make, kw0, kw1, params)
    for e, g, p0 in zip(expected, got, params):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL)
        assert np.abs(e - p0).max() > 1e-6  # the parameters did move


def _flag_grid():
    """Every combination of each optimiser's switches (momentum, Nesterov, weight decay,
    AMSGrad, centered, maximize ...), one group each, as (id, torch class, funcnn fn, kwargs)."""
    on_off = itertools.product([False, True], repeat=3)
    grid = []
    for mom, nest, wd in itertools.product([0.0, 0.9], [False, True], [0.0, 0.1]):
        if nest and not mom:
            continue  # torch refuses Nesterov without momentum
        for mx in (False, True):
            kw = {"lr": 0.05, "momentum": mom, "nesterov": nest, "weight_decay": wd, "maximize": mx}
            kw["dampening"] = 0.0 if nest or not mom else 0.2
            grid.append(("SGD", fo.sgd, kw))
    for cls_name, make in (("Adam", fo.adam), ("AdamW", fo.adamw)):
        for ams, wd, mx in on_off:
            kw = {"lr": 0.02, "amsgrad": ams, "weight_decay": 0.1 * wd, "maximize": mx}
            grid.append((cls_name, make, {**kw, "betas": (0.5, 0.9)}))
    for centered, mom, wd in itertools.product([False, True], [0.0, 0.9], [0.0, 0.1]):
        kw = {"lr": 0.01, "centered": centered, "momentum": mom, "weight_decay": wd}
        grid.append(("RMSprop", fo.rmsprop, {**kw, "alpha": 0.9, "maximize": wd > 0}))
    for decay, init, wd in on_off:
        kw = {"lr": 0.1, "lr_decay": 0.1 * decay, "initial_accumulator_value": 0.5 * init}
        grid.append(("Adagrad", fo.adagrad, {**kw, "weight_decay": 0.1 * wd, "maximize": decay}))
    return [pytest.param(c, m, kw, id=f"{c}-" + "-".join(f"{k}={v}" for k, v in kw.items()))
            for c, m, kw in grid]  # fmt: skip


@pytest.mark.parametrize("cls_name, make, kw", _flag_grid())
def test_every_combination_of_switches_matches_torch(cls_name, make, kw):
    params = _initial_params(2)
    expected = _run_torch(cls_name, kw, {}, params)
    got = _run_funcnn(make, kw, {}, params)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL)


def test_functional_defaults_are_torchs():
    params = [p[..., None] if p.ndim == 0 else p for p in _initial_params()]
    for cls_name, make in (
        ("SGD", fo.sgd),
        ("Adam", fo.adam),
        ("AdamW", fo.adamw),
        ("RMSprop", fo.rmsprop),
        ("Adagrad", fo.adagrad),
    ):
        expected = _run_torch(cls_name, {}, {}, params)
        got = _run_funcnn(make, {}, {}, params)
        for e, g in zip(expected, got):
            np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL, err_msg=cls_name)


def test_float32_functional_adam_matches_torch_float32():
    rng = np.random.default_rng(5)
    p = rng.normal(size=(5, 4)).astype(np.float32)
    tp = torch.tensor(p, requires_grad=True)
    topt = torch.optim.Adam([tp], lr=0.01, weight_decay=0.01)
    opt = fo.adam(0.01, weight_decay=0.01)
    state = opt.init(p)
    for _ in range(STEPS):
        noise = rng.normal(size=p.shape).astype(np.float32)
        tp.grad = 0.5 * tp.detach() + torch.from_numpy(noise)
        topt.step()
        u, state = opt.update(0.5 * p + noise, state, p)
        p = fo.apply_updates(p, u)
        assert p.dtype == np.float32
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- schedules


def _torch_lrs(make_sched, steps: int, lr: float = 0.1, opt_cls=torch.optim.SGD, **opt_kw):
    p = torch.zeros(1, requires_grad=True)
    opt = opt_cls([p], lr=lr, **opt_kw)
    sched = make_sched(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


LR_S = torch.optim.lr_scheduler

SCHEDULES = {
    "constant": (lambda o: LR_S.LambdaLR(o, lambda t: 1.0), fo.constant_schedule(0.1), 10),
    "step": (lambda o: LR_S.StepLR(o, step_size=7, gamma=0.3), fo.step_schedule(0.1, 7, 0.3), 40),
    "multistep": (
        lambda o: LR_S.MultiStepLR(o, milestones=[3, 10, 10, 25], gamma=0.5),
        fo.multistep_schedule(0.1, [3, 10, 10, 25], 0.5),
        40,
    ),
    "exponential": (
        lambda o: LR_S.ExponentialLR(o, gamma=0.93),
        fo.exponential_decay(0.1, 0.93),
        60,
    ),
    "cosine": (
        lambda o: LR_S.CosineAnnealingLR(o, T_max=25, eta_min=1e-3),
        fo.cosine_decay(0.1, 25, 1e-3),
        80,
    ),
    "cosine_zero_min": (
        lambda o: LR_S.CosineAnnealingLR(o, T_max=10),
        fo.cosine_decay(0.1, 10),
        35,
    ),
    "linear": (
        lambda o: LR_S.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=12),
        fo.linear_warmup(0.09, 12, init_value=0.025),
        30,
    ),
    "lambda": (
        lambda o: LR_S.LambdaLR(o, lambda t: 1.0 / (1 + t)),
        lambda t: 0.1 / (1 + t),
        20,
    ),
    "one_cycle": (
        lambda o: LR_S.OneCycleLR(o, max_lr=0.5, total_steps=50),
        fo.one_cycle(50, 0.5),
        50,
    ),
    "one_cycle_linear_three_phase": (
        lambda o: LR_S.OneCycleLR(
            o,
            max_lr=0.5,
            total_steps=47,
            pct_start=0.2,
            anneal_strategy="linear",
            three_phase=True,
            div_factor=10.0,
            final_div_factor=100.0,
        ),
        fo.one_cycle(47, 0.5, 0.2, "linear", 10.0, 100.0, three_phase=True),
        47,
    ),
    "cosine_one_step_period": (
        lambda o: LR_S.CosineAnnealingLR(o, T_max=1, eta_min=0.02),
        fo.cosine_decay(0.1, 1, 0.02),
        7,
    ),
    "one_cycle_cos_three_phase_to_the_last_step": (
        lambda o: LR_S.OneCycleLR(o, max_lr=0.7, total_steps=23, pct_start=0.45, three_phase=True),
        fo.one_cycle(23, 0.7, 0.45, three_phase=True),
        23,
    ),
    "one_cycle_short_warmup": (
        lambda o: LR_S.OneCycleLR(o, max_lr=0.3, total_steps=40, pct_start=0.05),
        fo.one_cycle(40, 0.3, 0.05),
        40,
    ),
    "sequential": (
        lambda o: LR_S.SequentialLR(
            o,
            [LR_S.LinearLR(o, start_factor=0.1, total_iters=5), LR_S.ExponentialLR(o, gamma=0.9)],
            milestones=[5],
        ),
        fo.join_schedules(
            [fo.linear_warmup(0.1, 5, init_value=0.01), fo.exponential_decay(0.1, 0.9)], [5]
        ),
        30,
    ),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_matches_torch_scheduler(name):
    make_sched, schedule, steps = SCHEDULES[name]
    expected = _torch_lrs(make_sched, steps, momentum=0.9)
    got = [schedule(t) for t in range(steps)]
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    "cls_name, make, kw, make_sched, schedule",
    [
        (
            "SGD",
            fo.sgd,
            {"momentum": 0.9, "nesterov": True},
            lambda o: LR_S.CosineAnnealingLR(o, T_max=STEPS),
            fo.cosine_decay(0.05, STEPS),
        ),
        ("Adam", fo.adam, {}, lambda o: LR_S.StepLR(o, 5, 0.5), fo.step_schedule(0.05, 5, 0.5)),
        (
            "AdamW",
            fo.adamw,
            {"weight_decay": 0.1},
            lambda o: LR_S.ExponentialLR(o, 0.9),
            fo.exponential_decay(0.05, 0.9),
        ),
        (
            "RMSprop",
            fo.rmsprop,
            {"centered": True},
            lambda o: LR_S.MultiStepLR(o, [4, 9]),
            fo.multistep_schedule(0.05, [4, 9]),
        ),
        (
            "Adagrad",
            fo.adagrad,
            {"lr_decay": 0.01},
            lambda o: LR_S.OneCycleLR(o, max_lr=0.2, total_steps=STEPS, cycle_momentum=False),
            fo.one_cycle(STEPS, 0.2),
        ),
        (
            "SGD",
            fo.sgd,
            {"momentum": 0.5, "weight_decay": 0.01},
            lambda o: LR_S.SequentialLR(
                o, [LR_S.LinearLR(o, 0.2, total_iters=4), LR_S.LambdaLR(o, lambda t: 0.9**t)], [4]
            ),
            fo.join_schedules(
                [fo.linear_warmup(0.05, 4, init_value=0.01), lambda t: 0.05 * 0.9**t], [4]
            ),
        ),
    ],
)
def test_optimiser_with_a_schedule_matches_torch_optimiser_with_a_scheduler(
    cls_name, make, kw, make_sched, schedule
):
    params = _initial_params(1)
    kw_all = {"lr": 0.05, **kw}
    groups_same = {}
    expected = _run_torch(cls_name, kw_all, groups_same, params, scheduler=make_sched)
    got = _run_funcnn(
        lambda **k: make(**{**k, "learning_rate": schedule}), kw_all, groups_same, params
    )
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------- clipping


@pytest.mark.parametrize("max_norm", [0.5, 100.0])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_clip_by_global_norm_matches_torch_clip_grad_norm(max_norm, norm_type):
    grads = [g * 3 for g in _noise(0, [(4, 3), (3,), (2, 5)])]
    tparams = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for tp, g in zip(tparams, grads):
        tp.grad = torch.tensor(g)
    total = torch.nn.utils.clip_grad_norm_(tparams, max_norm, norm_type=norm_type)
    np.testing.assert_allclose(fo.global_norm(grads, norm_type), total.item(), rtol=1e-12)
    clipped, _ = fo.clip_by_global_norm(max_norm, norm_type).update(grads, fo.EmptyState())
    for tp, c in zip(tparams, clipped):
        np.testing.assert_allclose(c, tp.grad.numpy(), rtol=1e-12)


def test_clip_matches_torch_clip_grad_value():
    grads = _noise(1, [(4, 3), (5,)])
    tparams = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for tp, g in zip(tparams, grads):
        tp.grad = torch.tensor(g)
    torch.nn.utils.clip_grad_value_(tparams, 0.4)
    clipped, _ = fo.clip(0.4).update(grads, fo.EmptyState())
    for tp, c in zip(tparams, clipped):
        np.testing.assert_array_equal(c, tp.grad.numpy())


def test_clip_then_sgd_matches_torch_clip_grad_norm_then_step():
    params = _initial_params(2)[:3]
    tparams = [torch.tensor(p, requires_grad=True) for p in params]
    topt = torch.optim.SGD(tparams, lr=0.1, momentum=0.9)
    opt = fo.chain(fo.clip_by_global_norm(1.0), fo.sgd(0.1, momentum=0.9))
    state = opt.init(params)
    for step in range(STEPS):
        noise = _noise(step, [p.shape for p in params])
        for tp, n in zip(tparams, noise):
            tp.grad = torch.tensor(_grad(tp.detach().numpy(), n))
        torch.nn.utils.clip_grad_norm_(tparams, 1.0)
        topt.step()
        grads = [_grad(p, n) for p, n in zip(params, noise)]
        updates, state = opt.update(grads, state, params)
        params = fo.apply_updates(params, updates)
    for tp, p in zip(tparams, params):
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------- the module face


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_module_optimiser_matches_torch_step_for_step(name):
    cls_name, _, kw0, kw1 = CONFIGS[name]
    ours, theirs = _pair_params(_initial_params())
    opt = getattr(foptim, cls_name)(_groups(ours, kw1), **kw0)
    topt = getattr(torch.optim, cls_name)(_groups(theirs, kw1), **kw0)
    _assert_same_state(opt, topt)  # Adagrad makes its state at construction
    for step in range(STEPS):
        # parameter 3 has no gradient on some steps: it is skipped and its step count lags
        _set_grads(ours, theirs, step, skip=(3,) if step % 3 == 1 else ())
        opt.step()
        topt.step()
    _assert_same_params(ours, theirs)
    _assert_same_state(opt, topt)


@pytest.mark.parametrize("cls_name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_module_optimiser_defaults_are_torchs(cls_name):
    ours, theirs = _pair_params(_initial_params(3))
    opt = getattr(foptim, cls_name)(ours)
    topt = getattr(torch.optim, cls_name)(theirs)
    assert opt.defaults == topt.defaults
    for step in range(5):
        _set_grads(ours, theirs, step)
        opt.step()
        topt.step()
    _assert_same_params(ours, theirs)


@pytest.mark.parametrize(
    "name", ["sgd_momentum", "adam_amsgrad", "adamw", "rmsprop_centered_momentum", "adagrad_decay"]
)
def test_module_optimiser_float32_matches_torch_float32(name):
    cls_name, _, kw0, kw1 = CONFIGS[name]
    ours, theirs = _pair_params(_initial_params(4), np.float32)
    opt = getattr(foptim, cls_name)(_groups(ours, kw1), **kw0)
    topt = getattr(torch.optim, cls_name)(_groups(theirs, kw1), **kw0)
    for step in range(STEPS):
        _set_grads(ours, theirs, step)
        opt.step()
        topt.step()
    for p in ours:
        assert p.dtype == fm.float32
    for st in opt.state.values():
        for k, v in st.items():
            assert v.dtype == fm.float32, k
    _assert_same_params(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_state_dict_round_trip_resumes_exactly(name):
    cls_name, _, kw0, kw1 = CONFIGS[name]
    ours, theirs = _pair_params(_initial_params(5))
    opt = getattr(foptim, cls_name)(_groups(ours, kw1), **kw0)
    topt = getattr(torch.optim, cls_name)(_groups(theirs, kw1), **kw0)
    for step in range(STEPS // 2):
        _set_grads(ours, theirs, step)
        opt.step()
        topt.step()
    saved = copy.deepcopy(opt.state_dict())
    # a fresh optimiser on fresh parameters with the same values, loaded from the saved state
    resumed = [fnn.Parameter(fm.tensor(p.detach().numpy().copy())) for p in ours]
    opt2 = getattr(foptim, cls_name)(_groups(resumed, {}), lr=0.123)
    opt2.load_state_dict(saved)
    assert opt2.param_groups[1]["lr"] == opt.param_groups[1]["lr"]
    for step in range(STEPS // 2, STEPS):
        _set_grads(ours, theirs, step)
        for a, b in zip(resumed, ours):
            a.grad = fm.tensor(b.grad.numpy().copy())
        opt.step()
        opt2.step()
        topt.step()
    _assert_same_params(resumed, ours, rtol=0, atol=0)  # identical to never stopping
    _assert_same_params(ours, theirs)


def test_loading_a_state_dict_casts_buffers_to_the_parameters_dtype():
    ours64, _ = _pair_params(_initial_params(), np.float64)
    opt = foptim.Adam(ours64, lr=0.1)
    for p in ours64:
        p.grad = fm.tensor(np.ones(tuple(p.shape)))
    opt.step()
    ours32, _ = _pair_params(_initial_params(), np.float32)
    opt32 = foptim.Adam(ours32, lr=0.1)
    opt32.load_state_dict(opt.state_dict())
    for st in opt32.state.values():
        assert st["exp_avg"].dtype == fm.float32
        assert st["step"].dtype == fm.float32 and st["step"].item() == 1.0


# ----------------------------------------------------------------------------- module schedulers


def _sched_pair(make, cls_name="SGD", kw=None, lr=0.1):
    kw = {"momentum": 0.9} if kw is None and cls_name == "SGD" else (kw or {})
    ours = [fnn.Parameter(fm.zeros(2)), fnn.Parameter(fm.zeros(3))]
    theirs = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))]
    groups_o = [{"params": ours[:1]}, {"params": ours[1:], "lr": lr * 3}]
    groups_t = [{"params": theirs[:1]}, {"params": theirs[1:], "lr": lr * 3}]
    opt = getattr(foptim, cls_name)(groups_o, lr=lr, **kw)
    topt = getattr(torch.optim, cls_name)(groups_t, lr=lr, **kw)
    return opt, topt, make(foptim.lr_scheduler, opt), make(torch.optim.lr_scheduler, topt)


SCHEDULER_CLASSES = {
    "StepLR": (lambda m, o: m.StepLR(o, step_size=4, gamma=0.5), 30),
    "MultiStepLR": (lambda m, o: m.MultiStepLR(o, milestones=[2, 7, 7, 20], gamma=0.3), 30),
    "ExponentialLR": (lambda m, o: m.ExponentialLR(o, gamma=0.9), 30),
    "CosineAnnealingLR": (lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=0.001), 45),
    "LambdaLR": (lambda m, o: m.LambdaLR(o, [lambda e: 0.95**e, lambda e: 1 / (e + 1)]), 20),
    "MultiplicativeLR": (lambda m, o: m.MultiplicativeLR(o, lambda e: 0.9), 20),
    "ConstantLR": (lambda m, o: m.ConstantLR(o, factor=0.5, total_iters=4), 10),
    "LinearLR": (lambda m, o: m.LinearLR(o, start_factor=0.2, end_factor=0.8, total_iters=6), 12),
    "PolynomialLR": (lambda m, o: m.PolynomialLR(o, total_iters=8, power=2.0), 12),
    "CosineAnnealingWarmRestarts": (
        lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.01),
        25,
    ),
    "OneCycleLR": (lambda m, o: m.OneCycleLR(o, max_lr=[0.5, 1.0], total_steps=30), 30),
    "OneCycleLR_three_phase_linear": (
        lambda m, o: m.OneCycleLR(
            o, max_lr=0.5, epochs=4, steps_per_epoch=6, anneal_strategy="linear", three_phase=True
        ),
        24,
    ),
    "SequentialLR": (
        lambda m, o: m.SequentialLR(
            o, [m.LinearLR(o, start_factor=0.1, total_iters=3), m.StepLR(o, 2)], milestones=[3]
        ),
        12,
    ),
    "ChainedScheduler": (
        lambda m, o: m.ChainedScheduler([m.ExponentialLR(o, 0.9), m.StepLR(o, 3, 0.5)]),
        12,
    ),
}


@pytest.mark.parametrize("name", sorted(SCHEDULER_CLASSES))
def test_module_scheduler_lrs_match_torch(name):
    make, steps = SCHEDULER_CLASSES[name]
    opt, topt, sched, tsched = _sched_pair(make)
    for _ in range(steps):
        got = [g["lr"] for g in opt.param_groups]
        want = [g["lr"] for g in topt.param_groups]
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
        assert [g["momentum"] for g in opt.param_groups] == pytest.approx(
            [g["momentum"] for g in topt.param_groups]
        )
        np.testing.assert_allclose(
            sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12, atol=1e-15
        )
        opt.step()
        topt.step()
        sched.step()
        tsched.step()


def test_one_cycle_cycles_adams_beta1_like_torch():
    make = lambda m, o: m.OneCycleLR(o, max_lr=0.01, total_steps=20)  # noqa: E731
    opt, topt, sched, tsched = _sched_pair(make, "Adam")
    for _ in range(20):
        assert opt.param_groups[0]["betas"] == pytest.approx(topt.param_groups[0]["betas"])
        opt.step()
        topt.step()
        sched.step()
        tsched.step()


def test_reduce_lr_on_plateau_matches_torch():
    metrics = [
        1.0,
        0.9,
        0.95,
        0.95,
        0.96,
        0.97,
        0.8,
        0.81,
        0.82,
        0.83,
        0.84,
        0.85,
        0.9,
        0.9,
        0.9,
        0.9,
    ]
    for kw in (
        {"patience": 2},
        {"mode": "max", "factor": 0.5, "patience": 1, "cooldown": 2, "threshold_mode": "abs"},
    ):
        make = lambda m, o, kw=kw: m.ReduceLROnPlateau(o, min_lr=[0.01, 0.05], **kw)  # noqa: E731
        opt, topt, sched, tsched = _sched_pair(make)
        for metric in metrics:
            sched.step(metric)
            tsched.step(metric)
            assert [g["lr"] for g in opt.param_groups] == pytest.approx(
                [g["lr"] for g in topt.param_groups]
            )
            assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr())
            assert sched.num_bad_epochs == tsched.num_bad_epochs


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "OneCycleLR", "SequentialLR"])
def test_scheduler_state_dict_round_trip_resumes_exactly(name):
    make, steps = SCHEDULER_CLASSES[name]
    opt, _, sched, _ = _sched_pair(make)
    for _ in range(steps // 2):
        opt.step()
        sched.step()
    saved_opt = copy.deepcopy(opt.state_dict())
    saved_sched = copy.deepcopy(sched.state_dict())
    rest = []
    for _ in range(steps - steps // 2):
        opt.step()
        sched.step()
        rest.append([g["lr"] for g in opt.param_groups])
    opt2, _, sched2, _ = _sched_pair(make)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    for expected in rest:
        opt2.step()
        sched2.step()
        assert [g["lr"] for g in opt2.param_groups] == expected


def test_a_scheduler_drives_the_module_optimiser_like_torch():
    ours, theirs = _pair_params(_initial_params(6))
    opt = foptim.SGD(_groups(ours, {}), lr=0.05, momentum=0.9, nesterov=True)
    topt = torch.optim.SGD(_groups(theirs, {}), lr=0.05, momentum=0.9, nesterov=True)
    sched = foptim.lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS)
    tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=STEPS)
    for step in range(STEPS):
        _set_grads(ours, theirs, step)
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
    _assert_same_params(ours, theirs)


# ----------------------------------------------------------------------------- module clipping


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 2.5])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clip_grad_norm_matches_torch(norm_type, dtype):
    ours, theirs = _pair_params(_initial_params(7), dtype)
    _set_grads(ours, theirs, 0, skip=(1,))
    for a, b in zip(ours, theirs):
        if a.grad is not None:
            a.grad = a.grad * 4.0
            b.grad = b.grad * 4.0
    total = clip_grad_norm_(ours, 1.5, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, 1.5, norm_type=norm_type)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(total.item(), ttotal.item(), rtol=tol)
    assert str(total.dtype) == str(ttotal.dtype)
    for a, b in zip(ours, theirs):
        if b.grad is None:
            assert a.grad is None
        else:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=tol, atol=tol)


def test_clip_grad_value_matches_torch():
    ours, theirs = _pair_params(_initial_params(8))
    _set_grads(ours, theirs, 0)
    clip_grad_value_(ours, 0.7)
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())


def test_end_to_end_training_matches_torch():
    # a model, a loader, clipping, an optimiser and a scheduler, as a PyTorch script uses them
    from funcnn_modules.utils.data import DataLoader, TensorDataset

    rng = np.random.default_rng(9)
    x = rng.normal(size=(24, 5))
    y = x @ rng.normal(size=(5, 2)) + 0.1
    tmodel = torch.nn.Sequential(
        torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)
    ).double()
    model = fnn.Sequential(fnn.Linear(5, 8), fnn.Tanh(), fnn.Linear(8, 2)).double()
    model.load_state_dict(
        {k: fm.tensor(v.detach().numpy()) for k, v in tmodel.state_dict().items()}
    )
    opt = foptim.AdamW(model.parameters(), lr=0.02)
    topt = torch.optim.AdamW(tmodel.parameters(), lr=0.02)
    sched = foptim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=18)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.05, total_steps=18)
    loader = DataLoader(TensorDataset(fm.tensor(x), fm.tensor(y)), batch_size=8)
    for _epoch in range(6):
        for xb, yb in loader:
            for m, o, s, xs, ys, mse, clip in (
                (model, opt, sched, xb, yb, fnn.MSELoss(), clip_grad_norm_),
                (
                    tmodel,
                    topt,
                    tsched,
                    torch.tensor(xb.numpy()),
                    torch.tensor(yb.numpy()),
                    torch.nn.MSELoss(),
                    torch.nn.utils.clip_grad_norm_,
                ),
            ):
                o.zero_grad()
                mse(m(xs), ys).backward()
                clip(m.parameters(), 0.5)
                o.step()
                s.step()
    for (name, p), (tname, tp) in zip(model.named_parameters(), tmodel.named_parameters()):
        assert name == tname
        np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=1e-9, atol=1e-11)


# ----------------------------------------------------------------------------- the module API

BAD_ARGUMENTS = [
    ("SGD", {"lr": -0.1}),
    ("SGD", {"momentum": -1.0}),
    ("SGD", {"weight_decay": -1e-4}),
    ("SGD", {"nesterov": True}),
    ("SGD", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}),
    ("Adam", {"lr": -1e-3}),
    ("Adam", {"betas": (1.0, 0.999)}),
    ("Adam", {"betas": (0.9, 1.0)}),
    ("Adam", {"betas": (-0.1, 0.999)}),
    ("Adam", {"eps": -1e-8}),
    ("Adam", {"weight_decay": -1}),
    ("AdamW", {"lr": -1}),
    ("AdamW", {"betas": (0.9, 1.5)}),
    ("AdamW", {"eps": -1.0}),
    ("AdamW", {"weight_decay": -0.1}),
    ("RMSprop", {"lr": -1}),
    ("RMSprop", {"alpha": -0.1}),
    ("RMSprop", {"eps": -1}),
    ("RMSprop", {"momentum": -1}),
    ("RMSprop", {"weight_decay": -1}),
    ("Adagrad", {"lr": -1}),
    ("Adagrad", {"lr_decay": -1}),
    ("Adagrad", {"weight_decay": -1}),
    ("Adagrad", {"initial_accumulator_value": -1}),
    ("Adagrad", {"eps": -1}),
]


def _error(make):
    try:
        make()
    except Exception as e:  # noqa: BLE001 - the point is to compare whatever is raised
        return type(e).__name__, str(e)
    return None


@pytest.mark.parametrize(
    "cls_name, kw", BAD_ARGUMENTS, ids=[f"{c}-{next(iter(k))}" for c, k in BAD_ARGUMENTS]
)
def test_module_optimiser_validation_errors_are_torchs(cls_name, kw):
    ours, theirs = _pair_params(_initial_params()[:1])
    want = _error(lambda: getattr(torch.optim, cls_name)(theirs, **kw))
    assert want is not None and want[0] == "ValueError"
    assert _error(lambda: getattr(foptim, cls_name)(ours, **kw)) == want


@pytest.mark.parametrize("cls_name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_an_empty_parameter_list_is_torchs_error(cls_name):
    want = _error(lambda: getattr(torch.optim, cls_name)([]))
    assert want == ("ValueError", "optimizer got an empty parameter list")
    assert _error(lambda: getattr(foptim, cls_name)([])) == want


@pytest.mark.parametrize("name", ["sgd_momentum", "adam_amsgrad", "rmsprop_centered_momentum"])
def test_add_param_group_zero_grad_and_closure_match_torch(name):
    # a group added mid-training, gradients zeroed (not None) on some steps, steps with a closure
    cls_name, _, kw0, kw1 = CONFIGS[name]
    ours, theirs = _pair_params(_initial_params(10))
    opt = getattr(foptim, cls_name)([ours[i] for i in GROUPS[0]], **kw0)
    topt = getattr(torch.optim, cls_name)([theirs[i] for i in GROUPS[0]], **kw0)
    for step in range(STEPS):
        if step == 5:
            opt.add_param_group({"params": [ours[i] for i in GROUPS[1]], **kw1})
            topt.add_param_group({"params": [theirs[i] for i in GROUPS[1]], **kw1})
            assert opt.param_groups[1].keys() == topt.param_groups[1].keys()
        if step % 4 == 3:
            opt.zero_grad(set_to_none=False)
            topt.zero_grad(set_to_none=False)
            for o in (opt, topt):  # a zero gradient still takes a step (momentum, counts)
                for p in (p for g in o.param_groups for p in g["params"]):
                    assert p.grad is not None and not p.grad.numpy().any()
        else:
            _set_grads(ours, theirs, step)
        got = opt.step(closure=lambda: step * 2.0)
        want = topt.step(closure=lambda: step * 2.0)
        assert got == want == step * 2.0
    opt.zero_grad()
    topt.zero_grad()
    assert all(p.grad is None for p in ours + theirs)
    _assert_same_params(ours, theirs)
    _assert_same_state(opt, topt)
