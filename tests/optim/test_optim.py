"""Tests for funcnn.optim: the protocol, chains, clipping, schedules, dtypes, errors, backends.

Step-for-step agreement with torch.optim lives in tests/parity/test_optim_parity.py; here the
arithmetic is checked against small hand computations.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _optim_common import MORE_OPTIMISERS, _loss, _params, _run
from hypothesis import given, settings
from hypothesis import strategies as st

import funcnn as fn
import funcnn.numpy as fnp
import funcnn.optim as fo
from funcnn import backend
from funcnn.testing import check_grads

OPTIMISERS = {
    "sgd": lambda: fo.sgd(0.1),
    "sgd_momentum": lambda: fo.sgd(0.1, momentum=0.9, weight_decay=0.01),
    "sgd_nesterov": lambda: fo.sgd(0.1, momentum=0.9, nesterov=True),
    "adam": lambda: fo.adam(1e-2, weight_decay=0.1),
    "adam_amsgrad": lambda: fo.adam(1e-2, amsgrad=True),
    "adamw": lambda: fo.adamw(1e-2),
    "rmsprop": lambda: fo.rmsprop(1e-2),
    "rmsprop_centered_momentum": lambda: fo.rmsprop(1e-2, centered=True, momentum=0.9),
    "adagrad": lambda: fo.adagrad(1e-2, lr_decay=0.01, initial_accumulator_value=0.1),
}


# ----------------------------------------------------------------------------- the protocol


def test_gradient_transformation_is_a_named_pair():
    opt = fo.sgd(0.1)
    assert isinstance(opt, fo.GradientTransformation)
    init, update = opt
    assert callable(init) and callable(update)


def test_sgd_plain_step_is_minus_lr_times_grad():
    p = {"w": np.array([1.0, -2.0])}
    g = {"w": np.array([0.5, 0.25])}
    opt = fo.sgd(0.1)
    updates, _ = opt.update(g, opt.init(p), p)
    np.testing.assert_allclose(updates["w"], [-0.05, -0.025])
    np.testing.assert_allclose(fo.apply_updates(p, updates)["w"], [0.95, -2.025])


def test_sgd_momentum_buffer_starts_at_the_first_gradient_and_dampens_later():
    p = np.array([0.0])
    opt = fo.sgd(1.0, momentum=0.5, dampening=0.25)
    s = opt.init(p)
    u1, s = opt.update(np.array([2.0]), s, p)
    np.testing.assert_allclose(u1, [-2.0])  # buf = g on the first step, no dampening
    u2, s = opt.update(np.array([4.0]), s, p)
    np.testing.assert_allclose(u2, [-(0.5 * 2.0 + 0.75 * 4.0)])


def test_nesterov_adds_the_momentum_look_ahead():
    opt = fo.sgd(1.0, momentum=0.5, nesterov=True)
    s = opt.init(np.zeros(1))
    u1, s = opt.update(np.array([2.0]), s, None)
    np.testing.assert_allclose(u1, [-(2.0 + 0.5 * 2.0)])


def test_adam_first_step_is_lr_times_sign():
    # at t=1 the bias-corrected moments are g and g**2, so the step is lr * g / (|g| + eps)
    g = np.array([3.0, -0.5, 1e-3])
    opt = fo.adam(0.1, eps=0.0)
    u, s = opt.update(g, opt.init(np.zeros(3)), np.zeros(3))
    np.testing.assert_allclose(u, -0.1 * np.sign(g), rtol=1e-12)
    assert s[0].count == 1


def test_adam_eps_is_added_after_the_square_root():
    g = np.array([1e-4])
    eps = 1e-4
    u, _ = fo.scale_by_adam(eps=eps).update(g, fo.scale_by_adam(eps=eps).init(g), None)
    np.testing.assert_allclose(u, g / (abs(g) + eps), rtol=1e-12)


def test_amsgrad_keeps_the_maximum_second_moment():
    t = fo.scale_by_adam(b1=0.0, b2=0.5, eps=0.0, amsgrad=True)
    s = t.init(np.zeros(1))
    _, s = t.update(np.array([4.0]), s)
    _, s = t.update(np.array([0.0]), s)
    assert s.nu[0] < s.nu_max[0]
    np.testing.assert_allclose(s.nu_max, [8.0])  # nu after step 1: 0.5 * 16


def test_adamw_decay_is_decoupled_from_the_moments():
    p = np.array([2.0])
    g = np.array([0.0])
    opt = fo.adamw(0.1, weight_decay=0.5, eps=1e-8)
    u, s = opt.update(g, opt.init(p), p)
    np.testing.assert_allclose(u, [-0.1 * 0.5 * 2.0])  # only p *= 1 - lr * wd
    np.testing.assert_allclose(s[0].mu, [0.0])


def test_rmsprop_plain_step():
    g = np.array([2.0])
    opt = fo.rmsprop(0.1, alpha=0.9, eps=0.0)
    u, s = opt.update(g, opt.init(g), g)
    np.testing.assert_allclose(u, [-0.1 * 2.0 / math.sqrt(0.1 * 4.0)])
    np.testing.assert_allclose(s[0].square_avg, [0.4])


def test_rmsprop_centered_state_and_momentum_buffer_start_at_zero():
    opt = fo.scale_by_rms(centered=True, momentum=0.9)
    s = opt.init({"a": np.ones(2)})
    np.testing.assert_array_equal(s.grad_avg["a"], 0.0)
    np.testing.assert_array_equal(s.momentum_buffer["a"], 0.0)
    assert fo.scale_by_rms().init(np.ones(2)).grad_avg is None


def test_adagrad_accumulates_and_decays():
    opt = fo.adagrad(1.0, lr_decay=1.0, initial_accumulator_value=1.0, eps=0.0)
    p = np.zeros(1)
    s = opt.init(p)
    u1, s = opt.update(np.array([1.0]), s, p)
    np.testing.assert_allclose(u1, [-1.0 / math.sqrt(2.0)])
    u2, s = opt.update(np.array([1.0]), s, p)
    np.testing.assert_allclose(u2, [-(1.0 / 2.0) / math.sqrt(3.0)])  # clr = lr / (1 + 1 * decay)


def test_chain_applies_in_order_and_keeps_a_tuple_of_states():
    opt = fo.chain(fo.scale(2.0), fo.clip(1.0), fo.scale(-0.5))
    u, s = opt.update(np.array([0.25, 3.0]), opt.init(np.zeros(2)))
    np.testing.assert_allclose(u, [-0.25, -0.5])
    assert isinstance(s, tuple) and len(s) == 3


def test_chain_rejects_an_uncalled_factory_with_a_hint():
    with pytest.raises(TypeError, match="argument 1 is a function"):
        fo.chain(fo.scale(1.0), fo.scale)


def test_chain_rejects_a_state_of_the_wrong_length():
    opt = fo.chain(fo.scale(1.0), fo.scale(2.0))
    with pytest.raises(ValueError, match="state has 1 entries but the chain has 2"):
        opt.update(np.ones(1), (fo.EmptyState(),))


def test_identity_passes_through():
    u, s = fo.identity().update({"a": np.ones(2)}, fo.identity().init(None))
    np.testing.assert_array_equal(u["a"], 1.0)


def test_weight_decay_needs_params():
    opt = fo.add_decayed_weights(0.1)
    with pytest.raises(
        ValueError, match="add_decayed_weights: this transformation reads the parameters"
    ):
        opt.update(np.ones(2), opt.init(np.ones(2)), None)


# ----------------------------------------------------------------------------- pytrees and dtypes


EVERY_OPTIMISER = {**OPTIMISERS, **MORE_OPTIMISERS}


@pytest.mark.parametrize("name", sorted(EVERY_OPTIMISER))
def test_float32_params_and_states_stay_float32(name):
    params, state = _run(EVERY_OPTIMISER[name](), _params(np.float32))
    for leaf in fn.tree.leaves(params):
        assert leaf.dtype == np.float32, name
    for leaf in fn.tree.leaves(state):
        if hasattr(leaf, "dtype"):
            assert leaf.dtype == np.float32, name
        else:
            assert isinstance(leaf, int)  # step counters are Python ints


@pytest.mark.parametrize("name", sorted(EVERY_OPTIMISER))
def test_every_optimiser_decreases_the_loss(name):
    p0 = _params(np.float64)
    p1, _ = _run(EVERY_OPTIMISER[name](), p0, steps=20)
    assert float(_loss(p1)) < float(_loss(p0))


@pytest.mark.parametrize("name", sorted(EVERY_OPTIMISER))
def test_float32_run_agrees_with_float64(name):
    p32, _ = _run(EVERY_OPTIMISER[name](), _params(np.float32))
    p64, _ = _run(EVERY_OPTIMISER[name](), _params(np.float64))
    for a, b in zip(fn.tree.leaves(p32), fn.tree.leaves(p64)):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


def test_apply_updates_keeps_the_parameter_dtype():
    p = {"w": np.ones(3, np.float32)}
    out = fo.apply_updates(p, {"w": np.full(3, 0.5, np.float64)})
    assert out["w"].dtype == np.float32
    np.testing.assert_array_equal(out["w"], 1.5)


def test_apply_updates_rejects_a_different_structure():
    with pytest.raises(ValueError, match="different structure"):
        fo.apply_updates({"w": np.ones(2)}, {"v": np.ones(2)})


def test_nested_pytrees_with_lists_tuples_and_none():
    params = {"layers": [np.ones(2), (np.ones(3), None)], "head": np.ones(1)}
    grads = fn.tree.map(lambda x: x * 0.5, params)
    opt = fo.adam(0.1)
    updates, _ = opt.update(grads, opt.init(params), params)
    assert fn.tree.structure(updates) == fn.tree.structure(params)
    assert updates["layers"][1][1] is None


@settings(max_examples=20, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple),
    name=st.sampled_from(sorted(OPTIMISERS)),
)
def test_updates_have_the_shape_and_dtype_of_the_params(shape, name):
    rng = np.random.default_rng(0)
    p = rng.normal(size=shape).astype(np.float32)
    g = rng.normal(size=shape).astype(np.float32)
    opt = OPTIMISERS[name]()
    state = opt.init(p)
    for _ in range(2):
        u, state = opt.update(g, state, p)
        assert u.shape == p.shape and u.dtype == np.float32
        p = fo.apply_updates(p, u)
        assert p.dtype == np.float32 and np.all(np.isfinite(p))


# ----------------------------------------------------------------------------- clipping


def test_clip_clamps_every_element():
    u, _ = fo.clip(0.5).update({"a": np.array([-2.0, 0.1, 0.7])}, fo.EmptyState())
    np.testing.assert_allclose(u["a"], [-0.5, 0.1, 0.5])


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, math.inf])
def test_global_norm_matches_the_norm_of_all_elements(norm_type):
    rng = np.random.default_rng(1)
    tree = {"a": rng.normal(size=(3, 2)), "b": [rng.normal(size=5), rng.normal(size=())]}
    flat = np.concatenate([x.ravel() for x in fn.tree.leaves(tree)])
    expected = np.linalg.norm(flat, ord=norm_type)
    np.testing.assert_allclose(fo.global_norm(tree, norm_type), expected, rtol=1e-12)


def test_global_norm_of_an_empty_tree_is_zero():
    assert float(fo.global_norm({})) == 0.0


def test_clip_by_global_norm_scales_down_to_max_norm_with_torchs_epsilon():
    g = {"a": np.array([3.0, 0.0]), "b": np.array([4.0])}  # norm 5
    u, _ = fo.clip_by_global_norm(1.0).update(g, fo.EmptyState())
    coef = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(u["a"], [3.0 * coef, 0.0], rtol=1e-14)
    np.testing.assert_allclose(u["b"], [4.0 * coef], rtol=1e-14)


def test_clip_by_global_norm_leaves_small_updates_alone():
    g = {"a": np.array([0.3, 0.4], np.float32)}
    u, _ = fo.clip_by_global_norm(1.0).update(g, fo.EmptyState())
    np.testing.assert_array_equal(u["a"], g["a"])
    assert u["a"].dtype == np.float32


def test_clip_by_global_norm_keeps_each_leafs_dtype_with_mixed_dtypes():
    g = {"a": np.full(4, 10.0, np.float32), "b": np.full(4, 10.0, np.float64)}
    u, _ = fo.clip_by_global_norm(1.0).update(g, fo.EmptyState())
    assert u["a"].dtype == np.float32 and u["b"].dtype == np.float64
    np.testing.assert_allclose(float(fo.global_norm(u)), 1.0, rtol=1e-5)


def test_clip_then_sgd_in_one_chain():
    opt = fo.chain(fo.clip_by_global_norm(0.5), fo.sgd(1.0))
    u, _ = opt.update(np.array([0.0, 2.0]), opt.init(np.zeros(2)), np.zeros(2))
    np.testing.assert_allclose(u, [0.0, -0.5], rtol=1e-5)


# ----------------------------------------------------------------------------- schedules


def test_constant_schedule():
    s = fo.constant_schedule(0.3)
    assert [s(t) for t in (0, 10, 1000)] == [0.3, 0.3, 0.3]


def test_step_schedule_decays_every_step_size():
    s = fo.step_schedule(1.0, step_size=3, gamma=0.5)
    assert [s(t) for t in range(7)] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]


def test_multistep_schedule_counts_repeated_milestones_twice():
    s = fo.multistep_schedule(1.0, [2, 5, 5], gamma=0.1)
    np.testing.assert_allclose([s(t) for t in (0, 1, 2, 4, 5, 9)], [1, 1, 0.1, 0.1, 1e-3, 1e-3])


def test_exponential_decay():
    s = fo.exponential_decay(2.0, 0.5)
    assert [s(t) for t in range(4)] == [2.0, 1.0, 0.5, 0.25]


def test_cosine_decay_endpoints_and_midpoint():
    s = fo.cosine_decay(1.0, T_max=10, eta_min=0.1)
    assert s(0) == pytest.approx(1.0)
    assert s(5) == pytest.approx(0.55)
    assert s(10) == pytest.approx(0.1)
    assert s(20) == pytest.approx(1.0)  # periodic, like CosineAnnealingLR


def test_linear_warmup_ramps_then_holds():
    s = fo.linear_warmup(1.0, warmup_steps=4, init_value=0.2)
    np.testing.assert_allclose([s(t) for t in range(7)], [0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0])


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_one_cycle_starts_peaks_and_ends_where_torch_does(three_phase, strategy):
    s = fo.one_cycle(100, max_lr=1.0, anneal_strategy=strategy, three_phase=three_phase)
    assert s(0) == pytest.approx(1.0 / 25)
    assert s(29) == pytest.approx(1.0)  # end of phase 1: pct_start * total - 1
    assert s(99) == pytest.approx(1.0 / 25 / 1e4)
    if three_phase:
        assert s(58) == pytest.approx(1.0 / 25)
    with pytest.raises(ValueError, match="tried to step 101 times"):
        s(101)


def test_join_schedules_restarts_each_schedule_at_its_boundary():
    s = fo.join_schedules([fo.linear_warmup(1.0, 2), fo.exponential_decay(1.0, 0.5)], [2])
    np.testing.assert_allclose([s(t) for t in range(5)], [0.0, 0.5, 1.0, 0.5, 0.25])


def test_join_schedules_checks_its_arguments():
    with pytest.raises(ValueError, match="one more schedule than boundaries"):
        fo.join_schedules([fo.constant_schedule(1.0)], [3])
    with pytest.raises(ValueError, match="boundaries must increase"):
        fo.join_schedules([fo.constant_schedule(1.0)] * 3, [5, 2])


def test_a_schedule_as_learning_rate_is_read_at_each_step_count():
    seen = []

    def schedule(t):
        seen.append(t)
        return 0.1 * (t + 1)

    opt = fo.sgd(schedule)
    state = opt.init(np.zeros(1))
    outs = []
    for _ in range(3):
        u, state = opt.update(np.ones(1), state, np.zeros(1))
        outs.append(float(u[0]))
    assert seen == [0, 1, 2]
    np.testing.assert_allclose(outs, [-0.1, -0.2, -0.3])


def test_schedule_with_float32_params_keeps_float32():
    opt = fo.adam(fo.cosine_decay(1e-2, 10))
    p, _ = _run(opt, _params(np.float32))
    assert all(x.dtype == np.float32 for x in fn.tree.leaves(p))


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: fo.sgd(-1.0), "sgd: invalid learning_rate value: -1.0"),
        (lambda: fo.sgd(0.1, momentum=-0.5), "invalid momentum value"),
        (
            lambda: fo.sgd(0.1, nesterov=True),
            "Nesterov momentum requires a momentum and zero dampening",
        ),
        (lambda: fo.sgd(0.1, momentum=0.9, dampening=0.1, nesterov=True), "zero dampening"),
        (lambda: fo.adam(b1=1.0), "invalid beta parameter at index 0: 1.0"),
        (lambda: fo.adam(b2=-0.1), "invalid beta parameter at index 1"),
        (lambda: fo.adam(eps=-1e-8), "invalid eps value"),
        (lambda: fo.adamw(weight_decay=-0.1), "invalid weight_decay value"),
        (lambda: fo.rmsprop(alpha=-0.5), "invalid alpha value"),
        (lambda: fo.adagrad(lr_decay=-1.0), "invalid lr_decay value"),
        (lambda: fo.clip_by_global_norm(-1.0), "invalid max_norm value"),
        (lambda: fo.one_cycle(10, 1.0, pct_start=1.5), "pct_start must be in"),
        (lambda: fo.one_cycle(10, 1.0, anneal_strategy="exp"), "anneal_strategy must be"),
        (lambda: fo.step_schedule(1.0, step_size=0), "step_size must be >= 1"),
        (lambda: fo.cosine_decay(1.0, T_max=2.5), "T_max must be an int"),
    ],
)
def test_bad_hyperparameters_raise_clear_errors(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_learning_rate_of_the_wrong_type():
    with pytest.raises(TypeError, match="learning_rate must be a Python number, got str"):
        fo.adam("0.1")


# ----------------------------------------------------------------------------- differentiability and backends


@pytest.mark.parametrize("name", ["sgd_momentum", "adam", "rmsprop_centered_momentum", "adagrad"])
def test_an_optimiser_step_can_be_differentiated(name):
    # the loss after two optimiser steps, as a function of the initial parameters
    def after_two_steps(w):
        p = {"fc": {"weight": w, "bias": fnp.zeros(3, "float64")}, "scale": fnp.ones((), "float64")}
        p["scale"] = p["scale"] * 1.0
        opt = OPTIMISERS[name]()
        state = opt.init(p)
        for _ in range(2):
            g = fn.grad(_loss)(p)
            u, state = opt.update(g, state, p)
            p = fo.apply_updates(p, u)
        return _loss(p)

    w0 = np.random.default_rng(3).normal(size=(3, 4))
    check_grads(after_two_steps, (w0,), order=1)


@pytest.fixture
def strict_default():
    before = backend.get_default()
    backend.set_default("strict")
    try:
        yield
    finally:
        backend.set_default(before)


@pytest.mark.parametrize("name", sorted(OPTIMISERS))
def test_optimisers_run_on_the_strict_stand_in_backend(name, strict_default):
    host = {"w": np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.float32)}
    params = backend.device_put(host, "strict")
    grads = backend.device_put(fn.tree.map(lambda x: x * 0.3 - 0.1, host), "strict")
    opt = fo.chain(fo.clip_by_global_norm(1.0), OPTIMISERS[name]())
    state = opt.init(params)
    for _ in range(3):
        u, state = opt.update(grads, state, params)
        params = fo.apply_updates(params, u)
    assert backend.backend_name(params["w"]) == "strict"
    # the same run on NumPy gives the same numbers
    ref_opt = fo.chain(fo.clip_by_global_norm(1.0), OPTIMISERS[name]())
    ref_p = host
    ref_g = fn.tree.map(lambda x: x * 0.3 - 0.1, host)
    ref_s = ref_opt.init(ref_p)
    for _ in range(3):
        u, ref_s = ref_opt.update(ref_g, ref_s, ref_p)
        ref_p = fo.apply_updates(ref_p, u)
    for a, b in zip(fn.tree.leaves(backend.to_numpy(params)), fn.tree.leaves(ref_p)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
