"""Tests for NAdam, RAdam, Adamax and Adadelta in both faces: states, schedules, errors, dtypes.

Step-for-step agreement with torch.optim lives in tests/parity/test_more_optimisers_parity.py;
here the arithmetic is checked against small hand computations.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _optim_common import MORE_OPTIMISERS as OPTIMISERS
from _optim_common import _loss
from hypothesis import given, settings
from hypothesis import strategies as st

import funcnn as fn
import funcnn.numpy as fnp
import funcnn.optim as fo
import funcnn_modules as fm
import funcnn_modules.nn as fnn
import funcnn_modules.optim as foptim
from funcnn import backend
from funcnn.testing import check_grads

CLASSES = {
    "NAdam": foptim.NAdam,
    "RAdam": foptim.RAdam,
    "Adamax": foptim.Adamax,
    "Adadelta": foptim.Adadelta,
}


def _core(state, cls):
    return next(s for s in state if isinstance(s, cls))


# ----------------------------------------------------------------------------- arithmetic


def test_nadam_first_step_by_hand():
    g, b1, b2, psi, eps = np.array([0.5, -2.0, 0.0]), 0.9, 0.999, 4e-3, 1e-8
    opt = fo.nadam(0.1, b1=b1, b2=b2, eps=eps, momentum_decay=psi)
    u, state = opt.update(g, opt.init(np.zeros(3)), np.zeros(3))
    mu1 = b1 * (1 - 0.5 * 0.96**psi)
    mu2 = b1 * (1 - 0.5 * 0.96 ** (2 * psi))
    prod = float(np.float32(mu1))  # mu_product is kept in float32, like torch's
    m, v = (1 - b1) * g, (1 - b2) * g * g
    denom = np.sqrt(v / (1 - b2)) + eps
    want = -0.1 * ((1 - mu1) / (1 - prod) * g + mu2 / (1 - prod * mu2) * m) / denom
    np.testing.assert_allclose(u, want, rtol=1e-12)
    core = _core(state, fo.ScaleByNadamState)
    assert core.count == 1 and core.mu_product.dtype == np.float32
    assert float(core.mu_product) == prod
    np.testing.assert_allclose(core.mu, m)
    np.testing.assert_allclose(core.nu, v)


def test_nadam_mu_product_is_the_product_of_the_momentum_schedule():
    b1, psi = 0.8, 0.05
    opt = fo.scale_by_nadam(b1=b1, momentum_decay=psi)
    state = opt.init(np.zeros(2))
    want = np.float32(1.0)
    for t in range(1, 8):
        _, state = opt.update(np.ones(2), state)
        want = want * np.float32(b1 * (1 - 0.5 * 0.96 ** (t * psi)))  # float32 products
        assert state.count == t and state.mu_product.dtype == np.float32
        assert float(state.mu_product) == float(want)


def test_nadam_momentum_decay_zero_is_a_constant_schedule():
    # psi = 0 gives mu_t = b1 / 2 at every step
    opt = fo.scale_by_nadam(b1=0.9, momentum_decay=0.0)
    state = opt.init(np.zeros(1))
    for t in range(1, 4):
        _, state = opt.update(np.ones(1), state)
        np.testing.assert_allclose(float(state.mu_product), 0.45**t, rtol=1e-6)


@pytest.mark.parametrize("make", [fo.nadam, fo.radam])
def test_decoupled_weight_decay_stays_out_of_the_moments(make):
    p, g = np.array([1.0, -3.0]), np.array([0.2, 0.4])
    plain, coupled = make(0.1), make(0.1, weight_decay=0.5)
    decoupled = make(0.1, weight_decay=0.5, decoupled_weight_decay=True)
    u_plain, s_plain = plain.update(g, plain.init(p), p)
    u_dec, s_dec = decoupled.update(g, decoupled.init(p), p)
    _, s_cpl = coupled.update(g, coupled.init(p), p)
    state_type = fo.ScaleByNadamState if make is fo.nadam else fo.ScaleByAdamState
    m_plain, m_dec = _core(s_plain, state_type).mu, _core(s_dec, state_type).mu
    np.testing.assert_array_equal(m_dec, m_plain)  # the decay never reaches the moments
    assert not np.allclose(_core(s_cpl, state_type).mu, m_plain)  # the L2 form does
    np.testing.assert_allclose(u_dec, u_plain - 0.1 * 0.5 * p, rtol=1e-12)  # p *= 1 - lr * wd


def test_radam_steps_are_plain_momentum_until_rho_exceeds_five():
    b1, b2, lr = 0.9, 0.999, 0.1
    rho_inf = 2 / (1 - b2) - 1
    opt = fo.radam(lr, b1=b1, b2=b2)
    p = np.zeros(2)
    state = opt.init(p)
    g = np.array([1.0, -4.0])
    m = np.zeros(2)
    v = np.zeros(2)
    for t in range(1, 9):
        u, state = opt.update(g, state, p)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        rho_t = rho_inf - 2 * t * b2**t / (1 - b2**t)
        want = -lr * m / (1 - b1**t)
        if rho_t > 5:
            r = math.sqrt(
                (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            )
            want = want * r * math.sqrt(1 - b2**t) / (np.sqrt(v) + 1e-8)
        assert (t >= 6) == (rho_t > 5)  # the switch happens at step 6 with these betas
        np.testing.assert_allclose(u, want, rtol=1e-12)
    core = _core(state, fo.ScaleByAdamState)
    assert core.count == 8 and core.nu_max is None


def test_adamax_first_step_is_lr_times_sign_and_tracks_the_infinity_norm():
    opt = fo.adamax(0.1, eps=0.0)
    g = np.array([0.5, -2.0])
    u, state = opt.update(g, opt.init(np.zeros(2)), np.zeros(2))
    np.testing.assert_allclose(u, -0.1 * np.sign(g), rtol=1e-12)
    g2 = np.array([0.1, 3.0])
    _, state = opt.update(g2, state, np.zeros(2))
    core = _core(state, fo.ScaleByAdamaxState)
    np.testing.assert_allclose(core.inf_norm, np.maximum(0.999 * np.abs(g), np.abs(g2)))
    assert core.count == 2


def test_adadelta_steps_by_hand():
    rho, eps, lr = 0.9, 1e-6, 1.0
    opt = fo.adadelta(lr, rho=rho, eps=eps)
    p = np.zeros(2)
    state = opt.init(p)
    sq, acc = np.zeros(2), np.zeros(2)
    for g in (np.array([0.3, -1.0]), np.array([0.1, 2.0]), np.array([-0.4, 0.0])):
        u, state = opt.update(g, state, p)
        sq = rho * sq + (1 - rho) * g * g
        delta = np.sqrt(acc + eps) / np.sqrt(sq + eps) * g
        acc = rho * acc + (1 - rho) * delta * delta
        np.testing.assert_allclose(u, -lr * delta, rtol=1e-12)
    core = _core(state, fo.ScaleByAdadeltaState)
    np.testing.assert_allclose(core.square_avg, sq, rtol=1e-12)
    np.testing.assert_allclose(core.acc_delta, acc, rtol=1e-12)
    assert core.count == 3


@pytest.mark.parametrize("name", ["nadam", "radam", "adamax", "adadelta"])
def test_maximize_flips_the_gradient(name):
    # maximising with gradient -g is minimising with g (the L2 term reads the same params)
    p, g = np.array([1.0, -0.5]), np.array([0.3, 0.7])
    make = getattr(fo, name)
    descent, ascent = make(weight_decay=0.1), make(weight_decay=0.1, maximize=True)
    s_d, s_a = descent.init(p), ascent.init(p)
    for _ in range(3):
        u_d, s_d = descent.update(g, s_d, p)
        u_a, s_a = ascent.update(-g, s_a, p)
        np.testing.assert_allclose(u_a, u_d, rtol=1e-12)
        assert np.all(u_d != 0)


# ----------------------------------------------------------------------------- schedules


@pytest.mark.parametrize("name", ["nadam", "radam", "adamax", "adadelta"])
def test_a_schedule_as_learning_rate_is_read_at_each_step_count(name):
    seen = []

    def schedule(t):
        seen.append(t)
        return 0.1 * (t + 1)

    make = getattr(fo, name)
    scheduled, fixed = make(schedule), [make(0.1 * (t + 1)) for t in range(3)]
    p = np.array([0.5, -1.0])
    s_sched, s_fixed = scheduled.init(p), fixed[0].init(p)
    for t in range(3):
        g = np.array([0.2, 0.3]) * (t + 1)
        u, s_sched = scheduled.update(g, s_sched, p)
        u_fixed, s_fixed = fixed[t].update(g, s_fixed, p)
        np.testing.assert_allclose(u, u_fixed, rtol=1e-12)
    assert seen == [0, 1, 2]


def test_decoupled_decay_reads_the_scheduled_learning_rate():
    p, g = np.array([2.0]), np.array([0.0])
    opt = fo.nadam(lambda t: 0.5 / (t + 1), weight_decay=0.1, decoupled_weight_decay=True)
    state = opt.init(p)
    for t in range(3):
        u, state = opt.update(g, state, p)  # a zero gradient: only the decay moves p
        np.testing.assert_allclose(u, -0.5 / (t + 1) * 0.1 * p, rtol=1e-12)


# ----------------------------------------------------------------------------- dtypes and pytrees


def test_nadam_mu_product_follows_a_float64_default_dtype():
    backend.set_default_float_dtype("float64")
    try:
        state = fo.scale_by_nadam().init(np.zeros(2, np.float32))
    finally:
        backend.set_default_float_dtype("float32")
    assert state.mu_product.dtype == np.float64 and state.mu.dtype == np.float32


@settings(max_examples=15, deadline=None)
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


def test_nested_pytrees_with_lists_tuples_and_none():
    params = {"layers": [np.ones(2), (np.ones(3), None)], "head": np.ones(1)}
    grads = fn.tree.map(lambda x: x * 0.5, params)
    for name in OPTIMISERS:
        opt = OPTIMISERS[name]()
        updates, _ = opt.update(grads, opt.init(params), params)
        assert fn.tree.structure(updates) == fn.tree.structure(params)
        assert updates["layers"][1][1] is None


def test_a_state_of_another_structure_is_refused():
    opt = fo.scale_by_adamax()
    with pytest.raises(ValueError, match="different structures"):
        opt.update([np.ones(2)], opt.init({"w": np.ones(2)}))


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: fo.nadam(-1.0), "nadam: invalid learning_rate value: -1.0"),
        (lambda: fo.nadam(b1=1.0), "nadam: invalid beta parameter at index 0: 1.0"),
        (lambda: fo.nadam(b2=-0.1), "invalid beta parameter at index 1"),
        (lambda: fo.nadam(momentum_decay=-1e-3), "nadam: invalid momentum_decay value"),
        (lambda: fo.nadam(eps=-1.0), "nadam: invalid eps value"),
        (lambda: fo.radam(weight_decay=-0.1), "radam: invalid weight_decay value"),
        (lambda: fo.radam(b2=1.5), "radam: invalid beta parameter at index 1: 1.5"),
        (lambda: fo.adamax(eps=-1e-8), "adamax: invalid eps value"),
        (lambda: fo.adamax(b1=-0.5), "adamax: invalid beta parameter at index 0"),
        (lambda: fo.adadelta(rho=1.5), r"adadelta: invalid rho value: 1.5 \(must be in \[0, 1\]\)"),
        (lambda: fo.adadelta(rho=-0.1), "adadelta: invalid rho value"),
        (lambda: fo.scale_by_adadelta(rho=2.0), "scale_by_adadelta: invalid rho value"),
        (lambda: fo.adadelta(weight_decay=-1), "adadelta: invalid weight_decay value"),
        (lambda: fo.nadam("0.1"), "nadam: learning_rate must be a Python number, got str"),
        (lambda: fo.scale_by_nadam(momentum_decay="x"), "momentum_decay must be a Python number"),
    ],
)
def test_bad_hyperparameters_raise_clear_errors(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_decoupled_weight_decay_needs_params():
    opt = fo.nadam(weight_decay=0.1, decoupled_weight_decay=True)
    with pytest.raises(ValueError, match="call update\\(grads, state, params\\) with params"):
        opt.update(np.ones(2), opt.init(np.ones(2)), None)


# ----------------------------------------------------------------------------- differentiability and backends


@pytest.mark.parametrize("name", ["nadam", "radam", "adamax", "adadelta"])
def test_an_optimiser_step_can_be_differentiated(name):
    def after_two_steps(w):
        p = {"fc": {"weight": w, "bias": fnp.zeros(3, "float64")}, "scale": fnp.ones((), "float64")}
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
    opt = OPTIMISERS[name]()
    state = opt.init(params)
    for _ in range(3):
        u, state = opt.update(grads, state, params)
        params = fo.apply_updates(params, u)
    assert backend.backend_name(params["w"]) == "strict"
    ref_opt = OPTIMISERS[name]()
    ref_p = host
    ref_g = fn.tree.map(lambda x: x * 0.3 - 0.1, host)
    ref_s = ref_opt.init(ref_p)
    for _ in range(3):
        u, ref_s = ref_opt.update(ref_g, ref_s, ref_p)
        ref_p = fo.apply_updates(ref_p, u)
    for a, b in zip(fn.tree.leaves(backend.to_numpy(params)), fn.tree.leaves(ref_p)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


# ----------------------------------------------------------------------------- the module face

STATE_KEYS = {
    "NAdam": ["step", "mu_product", "exp_avg", "exp_avg_sq"],
    "RAdam": ["step", "exp_avg", "exp_avg_sq"],
    "Adamax": ["step", "exp_avg", "exp_inf"],
    "Adadelta": ["step", "square_avg", "acc_delta"],
}


def _module_params(dtype=np.float32):
    rng = np.random.default_rng(1)
    return [fnn.Parameter(fm.tensor(rng.normal(size=s).astype(dtype))) for s in [(3, 2), (2,)]]


def _module_steps(opt, params, steps, start=0):
    for t in range(start, start + steps):
        for p in params:
            x = p.detach().numpy()
            p.grad = fm.tensor((np.sin(x) + 0.1 * t).astype(x.dtype))
        opt.step()


@pytest.mark.parametrize("cls_name", sorted(CLASSES))
def test_module_state_has_torchs_keys_and_float32_stays_float32(cls_name):
    params = _module_params()
    opt = CLASSES[cls_name](params)
    assert len(opt.state) == 0  # lazily made on the first step, like torch
    _module_steps(opt, params, 3)
    for p in params:
        assert p.dtype == fm.float32
        st_p = opt.state[p]
        assert list(st_p) == STATE_KEYS[cls_name]
        assert st_p["step"].item() == 3.0
        for k, v in st_p.items():
            assert v.dtype == fm.float32, k
            assert tuple(v.shape) == (() if k in ("step", "mu_product") else tuple(p.shape))


@pytest.mark.parametrize("cls_name", sorted(CLASSES))
def test_module_step_is_the_functional_step(cls_name):
    params = _module_params(np.float64)
    raw = [p.detach().numpy().copy() for p in params]
    opt = CLASSES[cls_name](params, lr=0.05, weight_decay=0.1, maximize=True)
    make = getattr(fo, cls_name.lower())
    core = make(0.05, weight_decay=0.1, maximize=True)
    state = core.init(raw)
    for t in range(4):
        grads = [np.sin(x) + 0.1 * t for x in raw]
        u, state = core.update(grads, state, raw)
        raw = fo.apply_updates(raw, u)
    _module_steps(opt, params, 4)
    for p, r in zip(params, raw):
        np.testing.assert_array_equal(p.detach().numpy(), r)


@pytest.mark.parametrize("cls_name", sorted(CLASSES))
def test_module_state_dict_round_trip_resumes_identically(cls_name):
    unbroken = _module_params()
    opt = CLASSES[cls_name](unbroken, lr=0.05)
    _module_steps(opt, unbroken, 6)
    params = _module_params()
    first = CLASSES[cls_name](params, lr=0.05)
    _module_steps(first, params, 3)
    saved = first.state_dict()
    second = CLASSES[cls_name](params, lr=0.9)
    second.load_state_dict(saved)
    assert second.param_groups[0]["lr"] == 0.05
    _module_steps(second, params, 3, start=3)
    for a, b in zip(params, unbroken):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_nadam_resumes_identically_from_a_file(tmp_path):
    unbroken = _module_params(np.float64)
    _module_steps(foptim.NAdam(unbroken, lr=0.05, momentum_decay=0.02), unbroken, 6)
    params = _module_params(np.float64)
    opt = foptim.NAdam(params, lr=0.05, momentum_decay=0.02)
    _module_steps(opt, params, 3)
    fm.save({"optimizer": opt.state_dict()}, tmp_path / "ckpt.safetensors")
    opt2 = foptim.NAdam(params)
    opt2.load_state_dict(fm.load(tmp_path / "ckpt.safetensors")["optimizer"])
    assert opt2.param_groups[0]["momentum_decay"] == 0.02
    for st_p in opt2.state.values():
        assert st_p["mu_product"].dtype == fm.float32  # kept, not cast to the float64 params
    _module_steps(opt2, params, 3, start=3)
    for a, b in zip(params, unbroken):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_nadam_loads_a_plain_number_mu_product_as_a_float32_tensor():
    params = _module_params(np.float64)
    opt = foptim.NAdam(params)
    _module_steps(opt, params, 2)
    sd = opt.state_dict()
    for st_p in sd["state"].values():
        st_p["mu_product"] = float(st_p["mu_product"].item())
        st_p["step"] = 2
    opt2 = foptim.NAdam(params)
    opt2.load_state_dict(sd)
    for st_p in opt2.state.values():
        assert st_p["mu_product"].dtype == fm.float32 and st_p["step"].dtype == fm.float32
    _module_steps(opt2, params, 1, start=2)
    assert all(st_p["step"].item() == 3.0 for st_p in opt2.state.values())


def test_nadam_parameters_with_different_histories_keep_their_own_mu_product():
    # p0 steps every time; p1 skips the first step: their counts and mu_products differ
    params = _module_params(np.float64)
    opt = foptim.NAdam(params, lr=0.05)
    for t in range(4):
        for i, p in enumerate(params):
            p.grad = None if (i == 1 and t == 0) else fm.tensor(np.ones(tuple(p.shape)))
        opt.step()
    s0, s1 = opt.state[params[0]], opt.state[params[1]]
    assert (s0["step"].item(), s1["step"].item()) == (4.0, 3.0)
    mus = [0.9 * (1 - 0.5 * 0.96 ** (t * 4e-3)) for t in range(1, 5)]
    want0 = want1 = np.float32(1.0)
    for i, m in enumerate(mus):
        want0 = want0 * np.float32(m)
        if i < 3:
            want1 = want1 * np.float32(m)
    assert s0["mu_product"].item() == float(want0)
    assert s1["mu_product"].item() == float(want1)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda ps: foptim.NAdam(ps, lr=-1), "Invalid learning rate: -1"),
        (lambda ps: foptim.NAdam(ps, momentum_decay=-1), "Invalid momentum_decay value: -1"),
        (lambda ps: foptim.NAdam(ps, betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
        (lambda ps: foptim.RAdam(ps, eps=-1), "Invalid epsilon value: -1"),
        (lambda ps: foptim.RAdam(ps, weight_decay=-1), "Invalid weight_decay value: -1"),
        (lambda ps: foptim.Adamax(ps, betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
        (lambda ps: foptim.Adadelta(ps, rho=1.1), "Invalid rho value: 1.1"),
        (lambda ps: foptim.Adadelta(ps, lr=-0.5), "Invalid learning rate: -0.5"),
    ],
)
def test_module_validation_errors(make, message):
    with pytest.raises(ValueError) as info:
        make(_module_params())
    assert str(info.value) == message


@pytest.mark.parametrize("cls_name", sorted(CLASSES))
def test_module_differentiable_true_points_to_the_functional_api(cls_name):
    with pytest.raises(NotImplementedError, match=f"funcnn.optim.{cls_name.lower()}"):
        CLASSES[cls_name](_module_params(), differentiable=True)


@pytest.mark.parametrize("cls_name", sorted(CLASSES))
def test_module_defaults_and_repr(cls_name):
    opt = CLASSES[cls_name](_module_params(), lr=0.25)
    assert opt.param_groups[0]["lr"] == 0.25 and opt.defaults["maximize"] is False
    assert repr(opt).startswith(f"{cls_name} (\nParameter Group 0\n")
    if cls_name in ("NAdam", "RAdam"):
        assert opt.defaults["decoupled_weight_decay"] is False
