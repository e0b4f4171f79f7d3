"""NAdam, RAdam, Adamax and Adadelta of both faces against torch.optim, step for step.

Every run is float64 over 20 steps, most with two parameter groups of different
hyperparameters; the gradients depend on the current parameters, so a difference in one step
shows up in the next. Parameters must agree to ~1e-10. (The first optimisers are in
test_optim_parity.py; the helpers here follow it.)
"""

from __future__ import annotations

import copy
import itertools

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
    _groups,
    _initial_params,
    _pair_params,
    _run_funcnn,
    _run_torch,
    _set_grads,
)

import funcnn.optim as fo
import funcnn_modules as fm
import funcnn_modules.nn as fnn
import funcnn_modules.optim as foptim

pytestmark = pytest.mark.parity


# (torch class name, funcnn function, torch kwargs for group 0, overrides for group 1)
CONFIGS = {
    "nadam": (
        "NAdam",
        fo.nadam,
        {"lr": 0.01},
        {"lr": 0.03, "betas": (0.8, 0.99), "weight_decay": 0.1, "momentum_decay": 0.02},
    ),
    "nadam_decoupled_maximize": (
        "NAdam",
        fo.nadam,
        {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True, "eps": 1e-6},
        {"maximize": True, "momentum_decay": 0.0},
    ),
    "radam": (
        "RAdam",
        fo.radam,
        {"lr": 0.01},
        {"lr": 0.03, "betas": (0.8, 0.9), "weight_decay": 0.1},
    ),
    "radam_decoupled_maximize": (
        "RAdam",
        fo.radam,
        {"lr": 0.01, "weight_decay": 0.2, "decoupled_weight_decay": True, "betas": (0.9, 0.8)},
        {"maximize": True, "eps": 1e-4},
    ),
    "adamax": ("Adamax", fo.adamax, {"lr": 0.01}, {"lr": 0.05, "weight_decay": 0.1}),
    "adamax_maximize": (
        "Adamax",
        fo.adamax,
        {"lr": 0.01, "betas": (0.5, 0.9), "eps": 1e-3},
        {"maximize": True},
    ),
    "adadelta": ("Adadelta", fo.adadelta, {}, {"lr": 0.3, "rho": 0.5, "weight_decay": 0.1}),
    "adadelta_maximize": (
        "Adadelta",
        fo.adadelta,
        {"lr": 0.5, "eps": 1e-4, "maximize": True},
        {"rho": 0.99, "maximize": False},
    ),
}
CLASSES = ["NAdam", "RAdam", "Adamax", "Adadelta"]
FUNCTIONS = {"NAdam": fo.nadam, "RAdam": fo.radam, "Adamax": fo.adamax, "Adadelta": fo.adadelta}


# ----------------------------------------------------------------------------- the functional face


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_functional_optimiser_matches_torch_step_for_step(name):
    cls_name, make, kw0, kw1 = CONFIGS[name]
    params = _initial_params()
    expected = _run_torch(cls_name, kw0, kw1, params)
    got = _run_funcnn(make, kw0, kw1, params)
    for e, g, p0 in zip(expected, got, params):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL)
        assert np.abs(e - p0).max() > 1e-4  # the parameters did move


def _flag_grid():
    """Every combination of each optimiser's switches, one group each: (id, class, kwargs)."""
    grid = []
    for wd, dec, mx, psi in itertools.product(
        [0.0, 0.1], [False, True], [False, True], [4e-3, 0.05]
    ):
        kw = {"lr": 0.02, "weight_decay": wd, "decoupled_weight_decay": dec, "maximize": mx}
        grid.append(("NAdam", {**kw, "momentum_decay": psi, "betas": (0.7, 0.95)}))
    for wd, dec, mx in itertools.product([0.0, 0.1], [False, True], [False, True]):
        kw = {"lr": 0.02, "weight_decay": wd, "decoupled_weight_decay": dec, "maximize": mx}
        grid.append(("RAdam", {**kw, "betas": (0.8, 0.85)}))
    for wd, mx in itertools.product([0.0, 0.1], [False, True]):
        grid.append(("Adamax", {"lr": 0.02, "weight_decay": wd, "maximize": mx}))
    for wd, mx, rho in itertools.product([0.0, 0.1], [False, True], [0.9, 1.0]):
        grid.append(("Adadelta", {"lr": 0.5, "weight_decay": wd, "maximize": mx, "rho": rho}))
    return [pytest.param(c, kw, id=f"{c}-" + "-".join(f"{k}={v}" for k, v in kw.items()))
            for c, kw in grid]  # fmt: skip


@pytest.mark.parametrize("cls_name, kw", _flag_grid())
def test_every_combination_of_switches_matches_torch(cls_name, kw):
    params = _initial_params(2)
    expected = _run_torch(cls_name, kw, {}, params)
    got = _run_funcnn(FUNCTIONS[cls_name], kw, {}, params)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL)
    ours, theirs = _pair_params(params)  # and the module face, on the same run
    opt = getattr(foptim, cls_name)(ours, **kw)
    topt = getattr(torch.optim, cls_name)(theirs, **kw)
    for step in range(STEPS):
        _set_grads(ours, theirs, step)
        opt.step()
        topt.step()
    _assert_same_params(ours, theirs)


@pytest.mark.parametrize("cls_name", CLASSES)
def test_functional_defaults_are_torchs(cls_name):
    params = _initial_params()
    expected = _run_torch(cls_name, {}, {}, params)
    got = _run_funcnn(FUNCTIONS[cls_name], {}, {}, params)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL)


def test_radam_switches_to_the_rectified_step_where_torch_does():
    # with betas (0.9, 0.999) rho_t first exceeds 5 at step 6: steps 1-5 are plain momentum
    params = [np.array([1.0, -2.0, 0.5])]
    for steps in (5, 6, 7):
        tp = torch.tensor(params[0], requires_grad=True)
        topt = torch.optim.RAdam([tp], lr=0.1)
        opt = fo.radam(0.1)
        p, state = params[0], opt.init(params[0])
        for _ in range(steps):
            tp.grad = torch.sin(tp.detach()) + 0.3
            topt.step()
            u, state = opt.update(np.sin(p) + 0.3, state, p)
            p = fo.apply_updates(p, u)
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    "cls_name, make_sched, schedule",
    [
        (
            "NAdam",
            lambda o: torch.optim.lr_scheduler.StepLR(o, 5, 0.5),
            fo.step_schedule(0.05, 5, 0.5),
        ),
        (
            "RAdam",
            lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=STEPS),
            fo.cosine_decay(0.05, STEPS),
        ),
        (
            "Adamax",
            lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9),
            fo.exponential_decay(0.05, 0.9),
        ),
        (
            "Adadelta",
            lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [4, 9]),
            fo.multistep_schedule(0.05, [4, 9]),
        ),
    ],
)
def test_optimiser_with_a_schedule_matches_torch_optimiser_with_a_scheduler(
    cls_name, make_sched, schedule
):
    params = _initial_params(1)
    kw = {"lr": 0.05, "weight_decay": 0.1}
    if cls_name in ("NAdam", "RAdam"):
        kw["decoupled_weight_decay"] = True  # the decay reads the scheduled learning rate
    expected = _run_torch(cls_name, kw, {}, params, scheduler=make_sched)
    make = FUNCTIONS[cls_name]
    got = _run_funcnn(lambda **k: make(**{**k, "learning_rate": schedule}), kw, {}, params)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("cls_name", CLASSES)
def test_float32_functional_optimiser_matches_torch_float32(cls_name):
    rng = np.random.default_rng(5)
    p = rng.normal(size=(5, 4)).astype(np.float32)
    tp = torch.tensor(p, requires_grad=True)
    topt = getattr(torch.optim, cls_name)([tp], lr=0.01, weight_decay=0.01)
    opt = FUNCTIONS[cls_name](0.01, weight_decay=0.01)
    state = opt.init(p)
    for _ in range(STEPS):
        noise = rng.normal(size=p.shape).astype(np.float32)
        tp.grad = 0.5 * tp.detach() + torch.from_numpy(noise)
        topt.step()
        u, state = opt.update(0.5 * p + noise, state, p)
        p = fo.apply_updates(p, u)
        assert p.dtype == np.float32
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- the module face


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_module_optimiser_matches_torch_step_for_step(name):
    cls_name, _, kw0, kw1 = CONFIGS[name]
    ours, theirs = _pair_params(_initial_params())
    opt = getattr(foptim, cls_name)(_groups(ours, kw1), **kw0)
    topt = getattr(torch.optim, cls_name)(_groups(theirs, kw1), **kw0)
    for step in range(STEPS):
        # parameter 3 has no gradient on some steps: it is skipped and its step count lags
        _set_grads(ours, theirs, step, skip=(3,) if step % 3 == 1 else ())
        opt.step()
        topt.step()
    _assert_same_params(ours, theirs)
    _assert_same_state(opt, topt)


@pytest.mark.parametrize("cls_name", CLASSES)
def test_module_optimiser_defaults_are_torchs(cls_name):
    ours, theirs = _pair_params(_initial_params(3))
    opt = getattr(foptim, cls_name)(ours)
    topt = getattr(torch.optim, cls_name)(theirs)
    assert opt.defaults == topt.defaults
    assert list(opt.defaults) == list(topt.defaults)
    for step in range(5):
        _set_grads(ours, theirs, step)
        opt.step()
        topt.step()
    _assert_same_params(ours, theirs)
    _assert_same_state(opt, topt)


@pytest.mark.parametrize("name", ["nadam", "radam_decoupled_maximize", "adamax", "adadelta"])
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
    assert opt2.param_groups[1] == {**opt.param_groups[1], "params": opt2.param_groups[1]["params"]}
    for step in range(STEPS // 2, STEPS):
        _set_grads(ours, theirs, step)
        for a, b in zip(resumed, ours):
            a.grad = fm.tensor(b.grad.numpy().copy())
        opt.step()
        opt2.step()
        topt.step()
    _assert_same_params(resumed, ours, rtol=0, atol=0)  # identical to never stopping
    _assert_same_params(resumed, theirs)
    _assert_same_state(opt2, topt)


@pytest.mark.parametrize("name", ["nadam_decoupled_maximize", "radam", "adamax", "adadelta"])
def test_a_state_dict_written_by_torch_resumes_like_torch(name):
    cls_name, _, kw0, kw1 = CONFIGS[name]
    ours, theirs = _pair_params(_initial_params(6))
    topt = getattr(torch.optim, cls_name)(_groups(theirs, kw1), **kw0)
    for step in range(STEPS // 2):
        _set_grads(ours, theirs, step)
        topt.step()
    for a, b in zip(ours, theirs):
        a.data = fm.tensor(b.detach().numpy().copy())
    sd = topt.state_dict()
    converted = {
        "state": {i: {k: fm.tensor(v.numpy().copy()) for k, v in st.items()} for i, st in sd["state"].items()},
        "param_groups": copy.deepcopy(sd["param_groups"]),
    }  # fmt: skip
    opt = getattr(foptim, cls_name)(_groups(ours, {}))
    opt.load_state_dict(converted)
    for step in range(STEPS // 2, STEPS):
        _set_grads(ours, theirs, step)
        opt.step()
        topt.step()
    _assert_same_params(ours, theirs)
    _assert_same_state(opt, topt)


def test_nadam_keeps_mu_product_in_the_scalar_dtype_when_loaded_into_float64_params():
    # torch casts a loaded mu_product to the parameter's dtype (float64 here), so its resumed
    # run leaves the float32 arithmetic of an unbroken one; ours keeps float32, like "step"
    ours, theirs = _pair_params(_initial_params(7))
    opt = foptim.NAdam(ours, lr=0.05)
    topt = torch.optim.NAdam(theirs, lr=0.05)
    for step in range(3):
        _set_grads(ours, theirs, step)
        opt.step()
        topt.step()
    opt2 = foptim.NAdam(ours, lr=0.05)
    opt2.load_state_dict(opt.state_dict())
    for st in opt2.state.values():
        assert st["mu_product"].dtype == fm.float32 and st["step"].dtype == fm.float32
        assert st["exp_avg"].dtype == fm.float64
    for step in range(3, STEPS):
        _set_grads(ours, theirs, step)
        opt2.step()
        topt.step()
    _assert_same_params(ours, theirs)
    _assert_same_state(opt2, topt)


def test_nadam_with_a_float64_default_dtype_keeps_mu_product_in_float64_like_torch():
    params = _initial_params(8)
    before_fm, before_torch = fm.get_default_dtype(), torch.get_default_dtype()
    fm.set_default_dtype(fm.float64)
    torch.set_default_dtype(torch.float64)
    try:
        expected = _run_torch("NAdam", {"lr": 0.02}, {"momentum_decay": 0.05}, params)
        got = _run_funcnn(fo.nadam, {"lr": 0.02}, {"momentum_decay": 0.05}, params)
        ours, theirs = _pair_params(params)
        opt = foptim.NAdam(_groups(ours, {}), lr=0.02)
        topt = torch.optim.NAdam(_groups(theirs, {}), lr=0.02)
        for step in range(STEPS):
            _set_grads(ours, theirs, step)
            opt.step()
            topt.step()
        _assert_same_params(ours, theirs)
        _assert_same_state(opt, topt)  # mu_product and step are float64 in both
        assert opt.state[ours[0]]["mu_product"].dtype == fm.float64
    finally:
        fm.set_default_dtype(before_fm)
        torch.set_default_dtype(before_torch)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("cls_name", CLASSES)
def test_add_param_group_zero_grad_and_closure_match_torch(cls_name):
    # a group added mid-training, gradients zeroed (not None) on some steps, steps with a closure
    name = next(n for n, c in sorted(CONFIGS.items()) if c[0] == cls_name)
    _, _, kw0, kw1 = CONFIGS[name]
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
        else:
            _set_grads(ours, theirs, step)
        got = opt.step(closure=lambda: step * 2.0)
        want = topt.step(closure=lambda: step * 2.0)
        assert got == want == step * 2.0
    _assert_same_params(ours, theirs)
    _assert_same_state(opt, topt)


def test_a_scheduler_drives_the_module_optimisers_like_torch():
    for cls_name in CLASSES:
        ours, theirs = _pair_params(_initial_params(11))
        opt = getattr(foptim, cls_name)(_groups(ours, {"lr": 0.02}), lr=0.05)
        topt = getattr(torch.optim, cls_name)(_groups(theirs, {"lr": 0.02}), lr=0.05)
        sched = foptim.lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS)
        tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=STEPS)
        for step in range(STEPS):
            _set_grads(ours, theirs, step)
            opt.step()
            topt.step()
            sched.step()
            tsched.step()
        _assert_same_params(ours, theirs)


# ----------------------------------------------------------------------------- the module API

BAD_ARGUMENTS = [
    ("NAdam", {"lr": -1e-3}),
    ("NAdam", {"eps": -1e-8}),
    ("NAdam", {"betas": (1.0, 0.999)}),
    ("NAdam", {"betas": (0.9, -0.1)}),
    ("NAdam", {"weight_decay": -1}),
    ("NAdam", {"momentum_decay": -1e-3}),
    ("RAdam", {"lr": -1}),
    ("RAdam", {"eps": -1}),
    ("RAdam", {"betas": (-0.5, 0.9)}),
    ("RAdam", {"betas": (0.9, 1.0)}),
    ("RAdam", {"weight_decay": -0.1}),
    ("Adamax", {"lr": -1}),
    ("Adamax", {"eps": -1}),
    ("Adamax", {"betas": (1.5, 0.9)}),
    ("Adamax", {"betas": (0.9, 1.0)}),
    ("Adamax", {"weight_decay": -1}),
    ("Adadelta", {"lr": -1}),
    ("Adadelta", {"rho": -0.1}),
    ("Adadelta", {"rho": 1.5}),
    ("Adadelta", {"eps": -1}),
    ("Adadelta", {"weight_decay": -1}),
]


def _error(make):
    try:
        make()
    except Exception as e:  # noqa: BLE001 - the point is to compare whatever is raised
        return type(e).__name__, str(e)
    return None


@pytest.mark.parametrize(
    "cls_name, kw", BAD_ARGUMENTS, ids=[f"{c}-{next(iter(k))}-{i}" for i, (c, k) in enumerate(BAD_ARGUMENTS)]
)  # fmt: skip
def test_module_optimiser_validation_errors_are_torchs(cls_name, kw):
    ours, theirs = _pair_params(_initial_params()[:1])
    want = _error(lambda: getattr(torch.optim, cls_name)(theirs, **kw))
    assert want is not None and want[0] == "ValueError"
    assert _error(lambda: getattr(foptim, cls_name)(ours, **kw)) == want


@pytest.mark.parametrize("cls_name", CLASSES)
def test_an_empty_parameter_list_is_torchs_error(cls_name):
    want = _error(lambda: getattr(torch.optim, cls_name)([]))
    assert want == ("ValueError", "optimizer got an empty parameter list")
    assert _error(lambda: getattr(foptim, cls_name)([])) == want
