"""funcnn_modules.optim, lr_scheduler and clip_grad: the PyTorch-style behaviour around the math.

The numbers themselves are compared with torch.optim in tests/parity/test_optim_parity.py.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import funcnn_modules as fm
import funcnn_modules.nn as nn
import funcnn_modules.optim as optim
from funcnn_modules.nn.utils.clip_grad import (
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
)
from funcnn_modules.optim import lr_scheduler

OPTIMIZERS = {
    "SGD": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
    "Adam": lambda ps: optim.Adam(ps, lr=0.1, amsgrad=True),
    "AdamW": lambda ps: optim.AdamW(ps, lr=0.1),
    "RMSprop": lambda ps: optim.RMSprop(ps, lr=0.01, centered=True, momentum=0.5),
    "Adagrad": lambda ps: optim.Adagrad(ps, lr=0.1),
}

STATE_KEYS = {
    "SGD": ["momentum_buffer"],
    "Adam": ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
    "AdamW": ["step", "exp_avg", "exp_avg_sq"],
    "RMSprop": ["step", "square_avg", "momentum_buffer", "grad_avg"],
    "Adagrad": ["step", "sum"],
}


def _params(dtype="float32"):
    rng = np.random.default_rng(0)
    return [
        nn.Parameter(fm.tensor(rng.normal(size=(3, 2)).astype(dtype))),
        nn.Parameter(fm.tensor(rng.normal(size=2).astype(dtype))),
    ]


def _fill_grads(params, value=0.5):
    for p in params:
        p.grad = fm.tensor(np.full(tuple(p.shape), value, dtype=p.detach().numpy().dtype))


# ----------------------------------------------------------------------------- construction


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop, optim.Adagrad])
def test_an_empty_parameter_list_is_refused(cls):
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        cls([])


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda ps: optim.SGD(ps, lr=-1), r"Invalid learning rate: -1$"),
        (lambda ps: optim.SGD(ps, momentum=-0.1), "Invalid momentum value: -0.1"),
        (lambda ps: optim.SGD(ps, weight_decay=-1e-4), "Invalid weight_decay value"),
        (
            lambda ps: optim.SGD(ps, nesterov=True),
            "Nesterov momentum requires a momentum and zero dampening",
        ),
        (lambda ps: optim.Adam(ps, betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
        (lambda ps: optim.Adam(ps, betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
        (lambda ps: optim.AdamW(ps, eps=-1.0), "Invalid epsilon value: -1.0"),
        (lambda ps: optim.AdamW(ps, weight_decay=-1.0), "Invalid weight_decay value: -1.0"),
        (lambda ps: optim.RMSprop(ps, alpha=-0.5), "Invalid alpha value: -0.5"),
        (lambda ps: optim.RMSprop(ps, momentum=-0.5), "Invalid momentum value"),
        (lambda ps: optim.Adagrad(ps, lr_decay=-1), "Invalid lr_decay value: -1"),
        (
            lambda ps: optim.Adagrad(ps, initial_accumulator_value=-1),
            "Invalid initial_accumulator_value",
        ),
    ],
)
def test_pytorchs_validation_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make(_params())


def test_params_must_be_an_iterable_of_tensors():
    p = _params()
    with pytest.raises(TypeError, match="should be an iterable of Tensors or dicts"):
        optim.SGD(p[0], lr=0.1)
    with pytest.raises(
        TypeError, match="optimizer can only optimize Tensors, but one of the params is"
    ):
        optim.SGD([p[0], np.zeros(2)], lr=0.1)
    with pytest.raises(TypeError, match="ordered collections"):
        optim.SGD([{"params": set(p)}], lr=0.1)


def test_non_leaf_tensors_cannot_be_optimised():
    p = _params()[0]
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        optim.SGD([p * 2], lr=0.1)


def test_a_parameter_in_two_groups_is_refused():
    p = _params()
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        optim.SGD([{"params": p}, {"params": p[:1]}], lr=0.1)


def test_duplicate_parameters_in_one_group_warn_like_torch():
    p = _params()
    with pytest.warns(UserWarning, match="duplicate parameters"):
        optim.SGD([p[0], p[0]], lr=0.1)


def test_differentiable_true_points_to_funcnn_optim():
    with pytest.raises(NotImplementedError, match=r"funcnn.optim.adam"):
        optim.Adam(_params(), differentiable=True)


def test_param_groups_take_defaults_and_overrides():
    p = _params()
    opt = optim.SGD([{"params": [p[0]]}, {"params": p[1], "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.9]
    assert opt.param_groups[1]["params"] == [p[1]] or opt.param_groups[1]["params"][0] is p[1]
    assert opt.defaults["lr"] == 0.1


def test_named_parameters_are_accepted():
    p = _params()
    opt = optim.Adam([("w", p[0]), ("b", p[1])], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["w", "b"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["w", "b"]


def test_add_param_group_and_its_checks():
    p = _params()
    extra = nn.Parameter(fm.zeros(4))
    opt = optim.Adam(p, lr=0.1)
    opt.add_param_group({"params": extra, "lr": 0.01})
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(TypeError, match="param_group must be a dict"):
        opt.add_param_group([extra])
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [extra]})


def test_repr_lists_every_group():
    text = repr(optim.SGD(_params(), lr=0.1))
    assert text.startswith("SGD (\nParameter Group 0\n") and "    lr: 0.1\n" in text


# ----------------------------------------------------------------------------- stepping


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_step_updates_in_place_and_keeps_float32(name):
    p = _params()
    ids = [id(x) for x in p]
    before = [x.detach().numpy().copy() for x in p]
    opt = OPTIMIZERS[name](p)
    _fill_grads(p)
    opt.step()
    assert [id(x) for x in p] == ids
    for x, b in zip(p, before):
        assert x.dtype == fm.float32 and x.requires_grad and x.is_leaf
        assert not np.allclose(x.detach().numpy(), b)
    for st in opt.state.values():
        assert list(st) == STATE_KEYS[name]
        for v in st.values():
            assert v.dtype == fm.float32


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_parameters_without_gradients_are_skipped(name):
    p = _params()
    opt = OPTIMIZERS[name](p)
    before = p[1].detach().numpy().copy()
    p[0].grad = fm.ones(3, 2)
    opt.step()
    np.testing.assert_array_equal(p[1].detach().numpy(), before)
    if name != "Adagrad":  # Adagrad makes its state at construction, like PyTorch
        assert len(opt.state[p[1]]) == 0


def test_the_current_group_lr_is_read_at_every_step():
    p = _params("float64")[:1]
    opt = optim.SGD(p, lr=0.1)
    start = p[0].detach().numpy().copy()
    _fill_grads(p, 1.0)
    opt.step()
    opt.param_groups[0]["lr"] = 0.5
    opt.step()
    np.testing.assert_allclose(p[0].detach().numpy(), start - 0.1 - 0.5)


def test_step_with_a_closure_returns_its_loss():
    p = _params()
    opt = optim.SGD(p, lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p[0] * p[0]).sum() + p[1].sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert isinstance(loss, fm.Tensor) and loss.ndim == 0


def test_zero_grad_sets_to_none_or_zeros():
    p = _params()
    opt = optim.SGD(p, lr=0.1)
    _fill_grads(p)
    opt.zero_grad(set_to_none=False)
    assert all(float(x.grad.abs().sum()) == 0.0 for x in p)
    opt.zero_grad()
    assert all(x.grad is None for x in p)


def test_a_gradient_of_the_wrong_shape_is_a_clear_error():
    p = nn.Parameter(fm.zeros(3))
    opt = optim.Adam([p])
    p._slot().grad = np.zeros(4, np.float32)  # bypass the setter's own check
    with pytest.raises(
        RuntimeError, match=r"Adam.step: a parameter of shape \(3,\) has a gradient of shape \(4,\)"
    ):
        opt.step()


def test_a_training_loop_reduces_the_loss():
    rng = np.random.default_rng(0)
    x = fm.tensor(rng.normal(size=(32, 3)).astype(np.float32))
    y = x @ fm.tensor(np.array([[1.0], [-2.0], [0.5]], np.float32)) + 0.3
    for make in OPTIMIZERS.values():
        w = nn.Parameter(fm.zeros(3, 1))
        b = nn.Parameter(fm.zeros(1))
        opt = make([w, b])
        losses = []
        for _ in range(30):
            opt.zero_grad()
            loss = ((x @ w + b - y) ** 2).mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[-1] < 0.5 * losses[0]


# ----------------------------------------------------------------------------- state dicts


def test_state_dict_has_torchs_layout():
    p = _params()
    opt = optim.Adam([{"params": [p[0]]}, {"params": [p[1]], "lr": 0.01}], lr=0.1)
    _fill_grads(p)
    opt.step()
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert sorted(sd["state"]) == [0, 1]
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert sd["param_groups"][1]["lr"] == 0.01
    assert sd["state"][0]["step"].item() == 1.0
    assert tuple(sd["state"][1]["exp_avg"].shape) == (2,)


def test_load_state_dict_checks_the_groups():
    p = _params()
    opt = optim.SGD([{"params": [p[0]]}, {"params": [p[1]]}], lr=0.1)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        optim.SGD(p, lr=0.1).load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        optim.SGD([{"params": p}, {"params": [nn.Parameter(fm.zeros(1))]}], lr=0.1).load_state_dict(
            opt.state_dict()
        )
    with pytest.raises(ValueError, match="expected a dict with keys 'state' and 'param_groups'"):
        opt.load_state_dict({"params": []})


def test_load_state_dict_copies_the_buffers():
    p = _params()
    opt = optim.SGD(p, lr=0.1, momentum=0.9)
    _fill_grads(p)
    opt.step()
    sd = opt.state_dict()
    q = _params()
    opt2 = optim.SGD(q, lr=0.1, momentum=0.9)
    opt2.load_state_dict(sd)
    assert opt2.state[q[0]]["momentum_buffer"] is not sd["state"][0]["momentum_buffer"]
    np.testing.assert_array_equal(
        opt2.state[q[0]]["momentum_buffer"].numpy(), sd["state"][0]["momentum_buffer"].numpy()
    )


def test_load_state_dict_accepts_json_like_values():
    # what a state dict looks like after a round trip through a text format
    p = _params()
    opt = optim.Adam(p, lr=0.1)
    _fill_grads(p)
    opt.step()
    sd = opt.state_dict()
    plain = {
        "state": {
            str(k): {n: (v.item() if n == "step" else v.numpy()) for n, v in st.items()}
            for k, st in sd["state"].items()
        },
        "param_groups": [{**g, "betas": list(g["betas"])} for g in sd["param_groups"]],
    }
    q = [nn.Parameter(fm.tensor(x.detach().numpy().copy())) for x in p]
    opt2 = optim.Adam(q, lr=0.5)
    opt2.load_state_dict(plain)
    assert opt2.param_groups[0]["betas"] == (0.9, 0.999) and opt2.param_groups[0]["lr"] == 0.1
    assert isinstance(opt2.state[q[0]]["step"], fm.Tensor)
    _fill_grads(p)
    _fill_grads(q)
    opt.step()
    opt2.step()
    np.testing.assert_array_equal(p[0].detach().numpy(), q[0].detach().numpy())


def test_deepcopy_of_a_state_dict():
    p = _params()
    opt = optim.RMSprop(p, momentum=0.9)
    _fill_grads(p)
    opt.step()
    sd = copy.deepcopy(opt.state_dict())
    opt.step()
    assert sd["state"][0]["step"].item() == 1.0 and opt.state[p[0]]["step"].item() == 2.0


# ----------------------------------------------------------------------------- schedulers


def _opt(lr=0.1, **kw):
    return optim.SGD(_params(), lr=lr, **kw)


def test_scheduler_sets_initial_lr_and_get_last_lr():
    opt = _opt()
    sched = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    assert opt.param_groups[0]["initial_lr"] == 0.1
    assert sched.get_last_lr() == [0.1] and sched.last_epoch == 0
    lrs = []
    for _ in range(5):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    assert lrs == pytest.approx([0.1, 0.05, 0.05, 0.025, 0.025])
    assert sched.last_epoch == 5


def test_stepping_the_scheduler_first_warns_like_torch():
    opt = _opt()
    sched = lr_scheduler.ExponentialLR(opt, gamma=0.9)
    with pytest.warns(
        UserWarning, match=r"Detected call of `lr_scheduler.step\(\)` before `optimizer.step\(\)`"
    ):
        sched.step()


def test_calling_get_lr_directly_warns():
    sched = lr_scheduler.ExponentialLR(_opt(), gamma=0.9)
    with pytest.warns(UserWarning, match="please use `get_last_lr\\(\\)`"):
        sched.get_lr()


def test_scheduler_needs_an_optimizer():
    with pytest.raises(TypeError, match="list is not an Optimizer"):
        lr_scheduler.StepLR([], step_size=1)


def test_resuming_without_initial_lr_is_a_clear_error():
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(_opt(), step_size=2, last_epoch=3)


def test_closed_form_with_an_epoch_argument_warns_and_jumps():
    opt = _opt()
    sched = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    opt.step()
    with pytest.warns(UserWarning, match="epoch parameter in `scheduler.step\\(\\)`"):
        sched.step(6)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)


def test_one_cycle_checks_its_arguments():
    with pytest.raises(ValueError, match="You must define either total_steps OR"):
        lr_scheduler.OneCycleLR(_opt(), max_lr=1.0)
    with pytest.raises(ValueError, match="Expected float between 0 and 1 pct_start"):
        lr_scheduler.OneCycleLR(_opt(), max_lr=1.0, total_steps=10, pct_start=2.0)
    with pytest.raises(ValueError, match="max_lr must have the same length"):
        lr_scheduler.OneCycleLR(_opt(), max_lr=[1.0, 2.0], total_steps=10)
    opt = optim.Adagrad(_params())
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10)


def test_one_cycle_refuses_to_step_past_total_steps():
    opt = _opt(momentum=0.9)
    sched = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    for _ in range(3):
        opt.step()
        sched.step()
    opt.step()
    with pytest.raises(
        ValueError, match="Tried to step 4 times. The specified number of total steps is 3"
    ):
        sched.step()


def test_reduce_lr_on_plateau_reduces_after_patience():
    opt = _opt()
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5)
    for metric in (1.0, 1.0, 1.0):
        sched.step(metric)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)
    sched.step(fm.tensor(0.1))  # a one-element tensor works as the metric
    assert sched.best == pytest.approx(0.1)
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        lr_scheduler.ReduceLROnPlateau(opt, factor=1.0)


def test_lambda_lr_state_dict_skips_plain_functions():
    opt = _opt()
    sched = lr_scheduler.LambdaLR(opt, lambda e: 0.5**e)
    sd = sched.state_dict()
    assert sd["lr_lambdas"] == [None] and "optimizer" not in sd
    with pytest.raises(ValueError, match="Expected 1 lr_lambdas, but got 2"):
        lr_scheduler.LambdaLR(opt, [lambda e: 1.0, lambda e: 1.0])


def test_sequential_lr_checks_milestones():
    opt = _opt()
    a = lr_scheduler.ExponentialLR(opt, 0.9)
    with pytest.raises(ValueError, match="one more than the number of milestone points"):
        lr_scheduler.SequentialLR(opt, [a], milestones=[3])


# ----------------------------------------------------------------------------- clipping


def test_clip_grad_norm_returns_the_total_norm_and_clips():
    p = [nn.Parameter(fm.zeros(2)), nn.Parameter(fm.zeros(1))]
    p[0].grad = fm.tensor([3.0, 0.0])
    p[1].grad = fm.tensor([4.0])
    total = clip_grad_norm_(p, max_norm=1.0)
    assert isinstance(total, fm.Tensor) and total.item() == pytest.approx(5.0)
    assert float(get_total_norm([q.grad for q in p])) == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_norm_accepts_a_single_tensor_and_a_generator():
    p = nn.Parameter(fm.zeros(2))
    p.grad = fm.tensor([0.3, 0.4])
    assert clip_grad_norm_(p, 10.0).item() == pytest.approx(0.5)
    assert clip_grad_norm_((q for q in [p]), 10.0).item() == pytest.approx(0.5)
    np.testing.assert_allclose(p.grad.numpy(), [0.3, 0.4], rtol=1e-6)


def test_clip_grad_norm_without_gradients_is_zero():
    assert clip_grad_norm_([nn.Parameter(fm.zeros(2))], 1.0).item() == 0.0


def test_clip_grad_norm_error_if_nonfinite():
    p = nn.Parameter(fm.zeros(2))
    p.grad = fm.tensor([math.inf, 1.0])
    with pytest.raises(
        RuntimeError,
        match="The total norm of order 2.0 for gradients from `parameters` is non-finite",
    ):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


def test_clip_grad_value_and_clip_grads_with_norm():
    p = nn.Parameter(fm.zeros(3))
    p.grad = fm.tensor([-2.0, 0.5, 3.0])
    clip_grad_value_([p], 1.0)
    np.testing.assert_array_equal(p.grad.numpy(), [-1.0, 0.5, 1.0])
    clip_grads_with_norm_([p], 1.0, fm.tensor(2.0))
    np.testing.assert_allclose(p.grad.numpy(), np.array([-1.0, 0.5, 1.0]) / (2.0 + 1e-6), rtol=1e-6)
    with pytest.raises(TypeError, match="clip_grad_value_: parameters must be Tensors"):
        clip_grad_value_([np.zeros(2)], 1.0)
