"""funcnn.nn recurrent cells and layers, attention and transformer layers.

Gradients (orders 1 and 2) against finite differences on hypothesis-drawn sizes and masks; the
fused primitives against their composed twins; dtypes; errors; initialisers; and the strict
stand-in backend. Comparisons with PyTorch live in tests/parity/.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funcnn as fn
from funcnn import backend, random
from funcnn import numpy as fnp
from funcnn.nn import _attention as A
from funcnn.nn import _recurrent as R
from funcnn.nn import _transformer as T
from funcnn.testing import check_grads

GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


def _normal(seed, shape, dtype=np.float64, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def _cell_params(seed, cell, I, H, bias=True, dtype=np.float64):
    G = GATES[cell]
    p = {
        "weight_ih": _normal(seed, (G * H, I), dtype, 0.6),
        "weight_hh": _normal(seed + 1, (G * H, H), dtype, 0.6),
    }
    if bias:
        p["bias_ih"] = _normal(seed + 2, (G * H,), dtype, 0.5)
        p["bias_hh"] = _normal(seed + 3, (G * H,), dtype, 0.5)
    return p


def _mha_params(seed, E, bias=True, dtype=np.float64):
    p = {
        "in_proj_weight": _normal(seed, (3 * E, E), dtype, 0.5),
        "out_proj": {"weight": _normal(seed + 1, (E, E), dtype, 0.5)},
    }
    if bias:
        p["in_proj_bias"] = _normal(seed + 2, (3 * E,), dtype, 0.5)
        p["out_proj"]["bias"] = _normal(seed + 3, (E,), dtype, 0.5)
    return p


def _vjp_all(f, args, seed=99):
    """f's output and its VJP for a random cotangent (per output leaf)."""
    out, vjp_fn = fn.vjp(f, *args)
    cot = fn.tree.map(lambda o: _normal(seed, np.shape(o)), out)
    return out, vjp_fn(cot)


def _assert_trees_close(a, b, rtol=1e-10, atol=1e-12):
    la, lb = fn.tree.leaves(a), fn.tree.leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


# ----------------------------------------------------------------------------- composed twins


def _sig(x):
    return 1.0 / (1.0 + fnp.exp(-x))


def _lstm_step_composed(p, carry, x):
    h, c = carry
    gates = x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
    i, f, g, o = fnp.split(gates, 4, axis=-1)
    c2 = _sig(f) * c + _sig(i) * fnp.tanh(g)
    return _sig(o) * fnp.tanh(c2), c2


def _gru_step_composed(p, h, x):
    gi = x @ p["weight_ih"].T + p["bias_ih"]
    gh = h @ p["weight_hh"].T + p["bias_hh"]
    ir, iz, inn = fnp.split(gi, 3, axis=-1)
    hr, hz, hn = fnp.split(gh, 3, axis=-1)
    r, z = _sig(ir + hr), _sig(iz + hz)
    n = fnp.tanh(inn + r * hn)
    return (1.0 - z) * n + z * h


def _rnn_step_composed(p, h, x, nonlinearity):
    a = x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
    return fnp.tanh(a) if nonlinearity == "tanh" else fnp.maximum(a, 0.0)


def _step(cell):
    """(step(p, state, x), state arity) with one calling convention: state a tuple."""
    if cell == "lstm":
        return lambda p, s, x: R.lstm_step(p, s, x), 2
    if cell == "gru":
        return lambda p, s, x: (R.gru_step(p, s[0], x),), 1
    nl = cell[4:]
    return lambda p, s, x: (R.rnn_step(p, s[0], x, nonlinearity=nl),), 1


def _composed_step(cell):
    if cell == "lstm":
        return lambda p, s, x: _lstm_step_composed(p, s, x)
    if cell == "gru":
        return lambda p, s, x: (_gru_step_composed(p, s[0], x),)
    return lambda p, s, x: (_rnn_step_composed(p, s[0], x, cell[4:]),)


def _sequence(cell, p, xs, state, reverse):
    """(out, final state tuple) of the layer function."""
    if cell == "lstm":
        out, (h, c) = R.lstm(p, xs, state, reverse=reverse)
        return out, (h, c)
    if cell == "gru":
        out, h = R.gru(p, xs, state[0], reverse=reverse)
        return out, (h,)
    out, h = R.rnn(p, xs, state[0], reverse=reverse, nonlinearity=cell[4:])
    return out, (h,)


# ----------------------------------------------------------------------------- recurrent: gradients

cells = st.sampled_from(sorted(GATES))


@settings(max_examples=30)
@given(
    cell=cells,
    B=st.integers(1, 3),
    I=st.integers(1, 3),
    H=st.integers(1, 3),
    bias=st.booleans(),
    batched=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_step_gradients_second_order(cell, B, I, H, bias, batched, seed):
    step, n = _step(cell)
    p = _cell_params(seed, cell, I, H, bias)
    lead = (B,) if batched else ()
    state = tuple(_normal(seed + 10 + k, (*lead, H)) for k in range(n))
    x = _normal(seed + 20, (*lead, I))
    check_grads(step, (p, state, x), order=2)


@settings(max_examples=25)
@given(
    cell=cells,
    Tn=st.integers(1, 3),
    B=st.integers(1, 2),
    I=st.integers(1, 3),
    H=st.integers(1, 3),
    bias=st.booleans(),
    batched=st.booleans(),
    reverse=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_sequence_gradients_second_order(cell, Tn, B, I, H, bias, batched, reverse, seed):
    _, n = _step(cell)
    p = _cell_params(seed, cell, I, H, bias)
    lead = (B,) if batched else ()
    state = tuple(_normal(seed + 10 + k, (*lead, H)) for k in range(n))
    xs = _normal(seed + 20, (Tn, *lead, I))
    check_grads(lambda p, xs, s: _sequence(cell, p, xs, s, reverse), (p, xs, state), order=2)


def _outputs_only(cell, reverse):
    """The layer from a zero initial state (None), keeping only every step's output: the
    cell states and activations then get no cotangent, and the zero state no gradient terms."""
    if cell == "lstm":
        return lambda p, xs: R.lstm(p, xs, reverse=reverse)[0]
    if cell == "gru":
        return lambda p, xs: R.gru(p, xs, reverse=reverse)[0]
    return lambda p, xs: R.rnn(p, xs, reverse=reverse, nonlinearity=cell[4:])[0]


@pytest.mark.parametrize("cell", sorted(GATES))
@pytest.mark.parametrize("reverse", [False, True])
def test_sequence_outputs_only_from_zero_state_second_order_and_forward_mode(cell, reverse):
    p = _cell_params(7, cell, 2, 3)
    xs = _normal(8, (3, 2, 2))
    check_grads(_outputs_only(cell, reverse), (p, xs), order=2, modes=("rev", "fwd"))


@pytest.mark.parametrize("cell", sorted(GATES))
@pytest.mark.parametrize("T", [1, 3])
def test_zero_state_none_equals_explicit_zeros(cell, T):
    """None (zeros made inside, their gradient terms skipped) and explicit zeros agree."""
    _, n = _step(cell)
    p = _cell_params(11, cell, 2, 3)
    xs = _normal(12, (T, 2, 2))
    zeros = tuple(np.zeros((2, 3)) for _ in range(n))
    cot = _normal(13, (T, 2, 3))

    def loss(p, xs, state):
        out, final = _sequence(cell, p, xs, state, False)
        total = fnp.sum(out * cot)
        for k, v in enumerate(final):
            total = total + (k + 1.5) * fnp.sum(v * v)
        return total

    with_none = (None,) * n if cell == "lstm" else (None,)
    g_none = fn.value_and_grad(loss, argnums=(0, 1))(p, xs, None if cell == "lstm" else with_none)
    g_zero = fn.value_and_grad(loss, argnums=(0, 1))(p, xs, zeros)
    _assert_trees_close(g_none, g_zero)


def test_residual_results_get_none_and_leading_ones_zeros():
    """Only the first ``dense`` results of a residual primitive get zeros for a missing
    cotangent; the residuals get None (the rule sees which)."""
    seen = {}

    @R._residual_primitive(dense=1)
    def two(x):
        return x * 2.0, x * 3.0, x * 4.0

    @two.defvjp_joint
    def _two_vjp(g, ans, argnums, x):
        seen["g"] = g
        return [2.0 * g[0] + (0.0 if g[1] is None else 3.0 * g[1])]

    x = np.array([1.0, 2.0])
    assert np.allclose(fn.grad(lambda x: fnp.sum(two(x)[1]))(x), 3.0)
    assert np.allclose(seen["g"][0], 0.0) and seen["g"][0].shape == (2,)
    assert seen["g"][2] is None
    assert np.allclose(fn.grad(lambda x: fnp.sum(two(x)[0]))(x), 2.0)
    assert seen["g"][1] is None and seen["g"][2] is None


# ----------------------------------------------------------------------------- recurrent: twins


@pytest.mark.parametrize("cell", sorted(GATES))
def test_fused_step_equals_composed_twin(cell):
    step, n = _step(cell)
    twin = _composed_step(cell)
    p = _cell_params(1, cell, 3, 4)
    state = tuple(_normal(5 + k, (2, 4)) for k in range(n))
    x = _normal(9, (2, 3))
    out, grads = _vjp_all(step, (p, state, x))
    out2, grads2 = _vjp_all(twin, (p, state, x))
    _assert_trees_close(out, out2)
    _assert_trees_close(grads, grads2)


@pytest.mark.parametrize("cell", sorted(GATES))
@pytest.mark.parametrize("reverse", [False, True])
def test_sequence_equals_loop_of_composed_steps(cell, reverse):
    twin = _composed_step(cell)
    _, n = _step(cell)
    p = _cell_params(2, cell, 3, 4)
    state = tuple(_normal(5 + k, (2, 4)) for k in range(n))
    xs = _normal(9, (5, 2, 3))

    def loop(p, xs, s):
        outs = [None] * 5
        for t in range(4, -1, -1) if reverse else range(5):
            s = twin(p, s, xs[t])
            outs[t] = s[0]
        return fnp.stack(outs), s

    out, grads = _vjp_all(lambda p, xs, s: _sequence(cell, p, xs, s, reverse), (p, xs, state))
    out2, grads2 = _vjp_all(loop, (p, xs, state))
    _assert_trees_close(out, out2)
    _assert_trees_close(grads, grads2)


def test_pointwise_backward_primitives_equal_their_twins():
    H = 3
    acts = 1 / (1 + np.exp(-_normal(1, (5, 2, H))))  # the LSTM's are gate-major
    args = (
        _normal(2, (2, H)),
        _normal(3, (2, H)),
        _normal(4, (5, 2, H)),
        acts,
        _normal(5, (2, H)),
    )
    _assert_trees_close(R._lstm_cell_bwd(*args), R._lstm_bwd_composed(*args))
    acts = 1 / (1 + np.exp(-_normal(6, (2, 4 * H))))
    args = (_normal(7, (2, H)), _normal(8, (2, 4 * H)), acts, _normal(9, (2, H)))
    _assert_trees_close(R._gru_cell_bwd(*args), R._gru_bwd_composed(*args))


@pytest.mark.parametrize("cell", sorted(GATES))
@pytest.mark.parametrize("reverse", [False, True])
def test_sequence_backward_primitive_equals_its_twin(cell, reverse):
    p = _cell_params(3, cell, 2, 3)
    h0, c0 = _normal(4, (2, 3)), _normal(5, (2, 3))
    xs = _normal(6, (4, 2, 2))
    c_arg = c0 if cell == "lstm" else None
    b_hh = p["bias_hh"] if cell == "gru" else None
    w_ih, w_hh, b_ih = p["weight_ih"], p["weight_hh"], p["bias_ih"]
    res = R._seq(xs, h0, c_arg, w_ih, w_hh, b_ih, b_hh, cell=cell, reverse=reverse)
    g = [_normal(10 + k, r.shape) for k, r in enumerate(res)]
    if cell == "lstm":
        args = (g[0], g[1], g[2], res[0], res[1], res[2], h0, c0, p["weight_hh"])
    elif cell == "gru":
        args = (g[0], None, g[1], res[0], None, res[1], h0, None, p["weight_hh"])
    else:
        args = (g[0], None, None, res[0], None, None, h0, None, p["weight_hh"])
    kw = {"cell": cell, "reverse": reverse}
    _assert_trees_close(R._seq_bwd(*args, **kw), R._seq_bwd_composed(*args, **kw))
    # no cotangent for the cell states and activations, zero initial states (None)
    res = R._seq(xs, None, None, w_ih, w_hh, b_ih, b_hh, cell=cell, reverse=reverse)
    cs, acts = (res[1], res[2]) if cell == "lstm" else (None, res[1] if cell == "gru" else None)
    args = (g[0], None, None, res[0], cs, acts, None, None, p["weight_hh"])
    _assert_trees_close(R._seq_bwd(*args, **kw), R._seq_bwd_composed(*args, **kw))


# ----------------------------------------------------------------------------- recurrent: dtypes, values


@pytest.mark.parametrize("cell", sorted(GATES))
def test_float32_in_float32_out_and_gradients(cell):
    step, n = _step(cell)
    p = _cell_params(1, cell, 3, 4, dtype=np.float32)
    state = tuple(_normal(5 + k, (2, 4), np.float32) for k in range(n))
    xs = _normal(9, (3, 2, 3), np.float32)
    for f, args in (
        (step, (p, state, xs[0])),
        (lambda p, x, s: _sequence(cell, p, x, s, True), (p, xs, state)),
    ):
        out, grads = _vjp_all(f, args)
        for leaf in fn.tree.leaves((out, grads)):
            assert leaf.dtype == np.float32


def test_sigmoid_and_tanh_saturate_without_overflow_warnings():
    # pre-activations of +-1e4: exp would overflow without the cap (and warnings are errors here)
    for dtype in (np.float16, np.float32, np.float64):
        p = {
            "weight_ih": np.full((16, 1), 1e4 if dtype != np.float16 else 1e3, dtype),
            "weight_hh": np.zeros((16, 4), dtype),
        }
        x = np.array([[1.0], [-1.0]], dtype)
        h, c = R.lstm_step(p, (np.zeros((2, 4), dtype), np.ones((2, 4), dtype)), x)
        assert h.dtype == dtype and np.all(np.isfinite(h)) and np.all(np.isfinite(c))
        # x > 0: i = f = o = 1, g = 1 -> c = 2; x < 0: every gate 0 (g = -1) -> c = 0
        np.testing.assert_allclose(c.astype(np.float64), [[2.0] * 4, [0.0] * 4], atol=1e-6)
    s = R._sigmoid_raw(np, np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0]))
    assert np.all(np.isfinite(s)) and s[2] == 0.5 and s[-1] == 1.0 and 0 < s[0] < 1e-300


def test_unbatched_equals_batch_of_one():
    p = _cell_params(1, "lstm", 3, 4)
    xs, h, c = _normal(2, (5, 3)), _normal(3, (4,)), _normal(4, (4,))
    out, (h1, c1) = R.lstm(p, xs, (h, c))
    out_b, (h1_b, c1_b) = R.lstm(p, xs[:, None], (h[None], c[None]))
    np.testing.assert_allclose(out, out_b[:, 0])
    np.testing.assert_allclose(h1, h1_b[0])
    np.testing.assert_allclose(c1, c1_b[0])
    assert out.shape == (5, 4) and h1.shape == (4,)
    hs, _ = R.lstm_step(p, (h, c), xs[0])
    assert hs.shape == (4,)


def test_final_state_is_last_step_that_ran():
    p = _cell_params(1, "gru", 3, 4)
    xs = _normal(2, (4, 2, 3))
    out, h = R.gru(p, xs)
    np.testing.assert_array_equal(h, out[-1])
    out, h = R.gru(p, xs, reverse=True)
    np.testing.assert_array_equal(h, out[0])
    # reverse == forward over the flipped sequence, flipped back
    out_f, _ = R.gru(p, xs[::-1].copy())
    np.testing.assert_allclose(out, out_f[::-1], rtol=1e-12)


# ----------------------------------------------------------------------------- recurrent: errors


def test_recurrent_errors_name_the_problem():
    p = _cell_params(1, "lstm", 3, 4)
    x, h = _normal(2, (2, 3)), _normal(3, (2, 4))
    with pytest.raises(ValueError, match=r"lstm_step: h has shape \(2, 5\).*\(2, 4\)"):
        R.lstm_step(p, (_normal(4, (2, 5)), h), x)
    with pytest.raises(ValueError, match=r"lstm_step: c has shape \(3, 4\).*\(2, 4\)"):
        R.lstm_step(p, (h, _normal(4, (3, 4))), x)
    with pytest.raises(ValueError, match=r"lstm_step: x has shape \(2, 5\).*\(batch, 3\)"):
        R.lstm_step(p, (h, h), _normal(4, (2, 5)))
    with pytest.raises(TypeError, match="carry must be a pair"):
        R.lstm_step(p, h, x)
    with pytest.raises(ValueError, match=r"gru_step: weight_ih has shape \(16, 3\)"):
        R.gru_step(p, h, x)  # LSTM weights (4H rows) given to a GRU (3 gates): 16 % 3 != 0
    bad = dict(p, weight_hh=_normal(5, (16, 5)))
    with pytest.raises(ValueError, match=r"weight_hh has shape \(16, 5\).*\(16, 4\)"):
        R.lstm_step(bad, (h, h), x)
    with pytest.raises(ValueError, match=r"bias_ih has shape \(4,\); expected \(16,\)"):
        R.lstm_step(dict(p, bias_ih=np.zeros(4)), (h, h), x)
    with pytest.raises(ValueError, match="unexpected params keys.*weight_ih_l0"):
        R.lstm(dict(p, weight_ih_l0=p["weight_ih"]), _normal(1, (2, 2, 3)))
    with pytest.raises(TypeError, match="params must be a dict with 'weight_ih'"):
        R.rnn_step({"weight": 1}, h, x)
    with pytest.raises(TypeError, match="x has dtype float32 but the weights have dtype float64"):
        R.lstm_step(p, (h, h), x.astype(np.float32))
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu'"):
        R.rnn(_cell_params(1, "rnn_tanh", 3, 4), _normal(1, (2, 2, 3)), nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"lstm: xs has shape \(0, 2, 3\).*at least 1"):
        R.lstm(p, np.zeros((0, 2, 3)))
    with pytest.raises(ValueError, match=r"lstm: xs has shape \(2, 2\).*\(seq_len, 3\)"):
        R.lstm(p, np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"gru: h0 has shape \(2, 4\).*\(3, 4\)"):
        R.gru(_cell_params(1, "gru", 3, 4), _normal(1, (5, 3, 3)), _normal(2, (2, 4)))


# ----------------------------------------------------------------------------- recurrent: init


@pytest.mark.parametrize(
    "init, G", [(R.init_rnn_cell, 1), (R.init_lstm_cell, 4), (R.init_gru_cell, 3)]
)
def test_cell_initialisers(init, G):
    key = random.key(0)
    p = init(key, 5, 16)
    assert {k: v.shape for k, v in p.items()} == {
        "weight_ih": (G * 16, 5),
        "weight_hh": (G * 16, 16),
        "bias_ih": (G * 16,),
        "bias_hh": (G * 16,),
    }
    for v in p.values():
        assert v.dtype == np.float32
        assert np.all(np.abs(v) <= 0.25) and np.abs(v).max() > 0.2  # U(-1/sqrt(16), 1/sqrt(16))
    assert len({float(v.ravel()[0]) for v in p.values()}) == 4  # each drawn from its own key
    _assert_trees_close(p, init(key, 5, 16))
    q = init(key, 5, 16, bias=False, dtype="float64")
    assert sorted(q) == ["weight_hh", "weight_ih"] and q["weight_ih"].dtype == np.float64
    with pytest.raises(ValueError, match="hidden_size must be a positive int"):
        init(key, 5, 0)


# ----------------------------------------------------------------------------- attention: SDPA


def _sdpa_composed(q, k, v, bias, scale):
    s = fnp.matmul(q, fnp.swapaxes(k, -1, -2)) * scale
    if bias is not None:
        s = s + bias
    p = fnp.exp(s - fnp.logsumexp(s, axis=-1, keepdims=True))
    return fnp.matmul(p, v), p


@st.composite
def sdpa_cases(draw):
    batch = draw(st.lists(st.integers(1, 2), min_size=0, max_size=2))
    L, S, E, Ev = (draw(st.integers(1, 3)) for _ in range(4))
    kind = draw(st.sampled_from(["none", "bool", "float", "causal"]))
    seed = draw(st.integers(0, 1000))
    q = _normal(seed, (*batch, L, E))
    k = _normal(seed + 1, (*batch, S, E))
    v = _normal(seed + 2, (*batch, S, Ev))
    mask_shape = draw(st.sampled_from([(L, S), (*batch, L, S), (1, S)]))
    if kind == "bool":
        mask = np.random.default_rng(seed + 3).random(mask_shape) > 0.4
    elif kind == "float":
        mask = _normal(seed + 3, mask_shape)
    else:
        mask = None
    scale = draw(st.sampled_from([None, 0.7]))
    return q, k, v, mask, kind, scale


@settings(max_examples=40)
@given(case=sdpa_cases())
def test_sdpa_gradients_second_order(case):
    q, k, v, mask, kind, scale = case
    if kind == "float":
        f = lambda q, k, v, m: A.scaled_dot_product_attention(q, k, v, m, scale=scale)  # noqa: E731
        check_grads(f, (q, k, v, mask), order=2)
    else:
        f = lambda q, k, v: A.scaled_dot_product_attention(  # noqa: E731
            q, k, v, mask=mask, is_causal=kind == "causal", scale=scale
        )
        check_grads(f, (q, k, v), order=2)


def test_attention_core_equals_composed_twin():
    q, k, v = _normal(1, (2, 3, 4, 5)), _normal(2, (2, 3, 6, 5)), _normal(3, (2, 3, 6, 2))
    bias = _normal(4, (4, 6))
    core = lambda q, k, v, b: A._attention(q, k, v, b, None, scale=0.3)  # noqa: E731
    twin = lambda q, k, v, b: _sdpa_composed(q, k, v, b, 0.3)  # noqa: E731
    out, grads = _vjp_all(core, (q, k, v, bias))
    out2, grads2 = _vjp_all(twin, (q, k, v, bias))
    _assert_trees_close(out, out2)
    _assert_trees_close(grads, grads2)
    drop = (np.random.default_rng(5).random((2, 3, 4, 6)) > 0.5) * 2.0
    out, grads = _vjp_all(lambda q, k, v: A._attention(q, k, v, None, drop, scale=0.3), (q, k, v))
    twin_d = lambda q, k, v: fnp.matmul(_sdpa_composed(q, k, v, None, 0.3)[1] * drop, v)  # noqa: E731
    out2, grads2 = _vjp_all(twin_d, (q, k, v))
    _assert_trees_close(out[0], out2)
    # the weights output carries no cotangent in the twin: compare the out-only VJP
    g_out = _normal(99, out[0].shape)
    _, vjp1 = fn.vjp(lambda q, k, v: A._attention(q, k, v, None, drop, scale=0.3)[0], q, k, v)
    _, vjp2 = fn.vjp(twin_d, q, k, v)
    _assert_trees_close(vjp1(g_out), vjp2(g_out))


def test_sdpa_fully_masked_rows_are_zero_with_zero_gradients():
    q, k, v = _normal(1, (3, 2)), _normal(2, (4, 2)), _normal(3, (4, 5))
    mask = np.ones((3, 4), bool)
    mask[1] = False
    out = A.scaled_dot_product_attention(q, k, v, mask)
    np.testing.assert_array_equal(out[1], 0.0)
    gq, gk, gv = fn.grad(
        lambda q, k, v: fnp.sum(A.scaled_dot_product_attention(q, k, v, mask) ** 2),
        argnums=(0, 1, 2),
    )(q, k, v)
    assert np.all(np.isfinite(gq)) and np.all(gq[1] == 0)
    check_grads(lambda q, k, v: A.scaled_dot_product_attention(q, k, v, mask), (q, k, v), order=2)


def test_sdpa_causal_is_top_left_aligned():
    q, k, v = _normal(1, (4, 3)), _normal(2, (2, 3)), _normal(3, (2, 2))
    causal = np.tril(np.ones((4, 2), bool))
    np.testing.assert_allclose(
        A.scaled_dot_product_attention(q, k, v, is_causal=True),
        A.scaled_dot_product_attention(q, k, v, causal),
    )
    np.testing.assert_allclose(A.scaled_dot_product_attention(q, k, v, is_causal=True)[0], v[0])


def test_sdpa_dropout():
    q, k, v = _normal(1, (2, 5, 3)), _normal(2, (2, 6, 3)), _normal(3, (2, 6, 4))
    key = random.key(3)
    a = A.scaled_dot_product_attention(q, k, v, dropout_p=0.5, key=key)
    np.testing.assert_array_equal(
        a, A.scaled_dot_product_attention(q, k, v, dropout_p=0.5, key=key)
    )
    assert not np.allclose(
        a, A.scaled_dot_product_attention(q, k, v, dropout_p=0.5, key=random.key(4))
    )
    assert not np.allclose(a, A.scaled_dot_product_attention(q, k, v))
    np.testing.assert_array_equal(
        A.scaled_dot_product_attention(q, k, v, dropout_p=1.0, key=key), 0.0
    )
    check_grads(
        lambda q, k, v: A.scaled_dot_product_attention(q, k, v, dropout_p=0.3, key=key), (q, k, v)
    )
    with pytest.raises(ValueError, match="dropout_p=0.5 needs a random key"):
        A.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    with pytest.raises(ValueError, match=r"dropout_p must be a number in \[0, 1\]"):
        A.scaled_dot_product_attention(q, k, v, dropout_p=1.5, key=key)


def test_sdpa_errors():
    q, k, v = _normal(1, (2, 5, 3)), _normal(2, (2, 6, 3)), _normal(3, (2, 6, 4))
    with pytest.raises(
        ValueError, match=r"mask has shape \(5, 5\).*\(\.\.\., L, S\) = \(2, 5, 6\)"
    ):
        A.scaled_dot_product_attention(q, k, v, np.ones((5, 5), bool))
    with pytest.raises(ValueError, match="not both"):
        A.scaled_dot_product_attention(q, k, v, np.ones((5, 6), bool), is_causal=True)
    with pytest.raises(ValueError, match=r"q \(2, 5, 3\), k \(2, 6, 4\)"):
        A.scaled_dot_product_attention(q, v, v)
    with pytest.raises(ValueError, match="batch axes"):
        A.scaled_dot_product_attention(_normal(1, (3, 5, 3)), k, v)
    with pytest.raises(TypeError, match="mask must be a boolean or floating array"):
        A.scaled_dot_product_attention(q, k, v, np.ones((5, 6), np.int64))
    with pytest.raises(TypeError, match="share one floating dtype"):
        A.scaled_dot_product_attention(q.astype(np.float32), k, v)


# ----------------------------------------------------------------------------- attention: MHA


@st.composite
def mha_cases(draw):
    N, L, S = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    H, hd = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    self_attn = draw(st.booleans())
    if self_attn:
        S = L
    seed = draw(st.integers(0, 1000))
    rng = np.random.default_rng(seed)
    attn = draw(st.sampled_from(["none", "bool2", "bool3", "float2", "float3", "causal"]))
    kpm = draw(st.sampled_from(["none", "bool", "float"]))
    attn_mask = {
        "none": None,
        "causal": None,
        "bool2": rng.random((L, S)) > 0.7,
        "bool3": rng.random((N * H, L, S)) > 0.7,
        "float2": rng.standard_normal((L, S)),
        "float3": rng.standard_normal((N * H, L, S)),
    }[attn]
    key_padding = {
        "none": None,
        "bool": rng.random((N, S)) > 0.7,
        "float": rng.standard_normal((N, S)),
    }[kpm]
    return {
        "N": N, "L": L, "S": S, "H": H, "E": H * hd, "self_attn": self_attn, "seed": seed,
        "attn_mask": attn_mask, "key_padding_mask": key_padding, "is_causal": attn == "causal",
        "batch_first": draw(st.booleans()), "need_weights": draw(st.booleans()),
        "average": draw(st.booleans()), "bias": draw(st.booleans()),
    }  # fmt: skip


@settings(max_examples=40)
@given(case=mha_cases())
def test_mha_gradients_second_order(case):
    N, L, S, E, bf, seed = (case[k] for k in ("N", "L", "S", "E", "batch_first", "seed"))
    p = _mha_params(seed, E, case["bias"])
    q = _normal(seed + 5, (N, L, E) if bf else (L, N, E))
    kv = _normal(seed + 6, (N, S, E) if bf else (S, N, E))
    kw = {
        "num_heads": case["H"],
        "attn_mask": case["attn_mask"],
        "key_padding_mask": case["key_padding_mask"],
        "is_causal": case["is_causal"],
        "batch_first": bf,
        "need_weights": case["need_weights"],
        "average_attn_weights": case["average"],
    }
    if case["self_attn"]:
        check_grads(lambda p, x: A.multi_head_attention(p, x, x, x, **kw), (p, q), order=2)
    else:
        f = lambda p, q, k, v: A.multi_head_attention(p, q, k, v, **kw)  # noqa: E731
        check_grads(f, (p, q, kv, kv * 0.5), order=2)


def test_mha_float_masks_are_differentiable():
    p = _mha_params(1, 4)
    x = _normal(2, (3, 2, 4))
    f = lambda p, x, m, kpm: A.multi_head_attention(  # noqa: E731
        p, x, x, x, num_heads=2, attn_mask=m, key_padding_mask=kpm
    )[0]
    check_grads(f, (p, x, _normal(3, (4, 3, 3)), _normal(4, (2, 3))), order=2)


def test_mha_unbatched_equals_batch_of_one_and_batch_first_agrees():
    p = _mha_params(1, 6)
    q, kv = _normal(2, (4, 6)), _normal(3, (5, 6))
    am = np.random.default_rng(4).random((3, 4, 5)) > 0.6
    kpm = np.array([False, True, False, False, True])
    kw = {"num_heads": 3, "need_weights": True, "average_attn_weights": False}
    out, w = A.multi_head_attention(p, q, kv, kv, attn_mask=am, key_padding_mask=kpm, **kw)
    out_b, w_b = A.multi_head_attention(
        p, q[:, None], kv[:, None], kv[:, None], attn_mask=am, key_padding_mask=kpm[None], **kw
    )
    np.testing.assert_allclose(out, out_b[:, 0])
    np.testing.assert_allclose(w, w_b[0])
    assert out.shape == (4, 6) and w.shape == (3, 4, 5)
    out_f, w_f = A.multi_head_attention(
        p,
        q[None],
        kv[None],
        kv[None],
        attn_mask=am,
        key_padding_mask=kpm[None],
        batch_first=True,
        **kw,
    )
    np.testing.assert_allclose(out_f[0], out, rtol=1e-12)
    np.testing.assert_allclose(w_f[0], w, rtol=1e-12)


def test_mha_separate_projections_bias_kv_and_zero_attention():
    p = A.init_multi_head_attention(
        random.key(1), 4, 2, kdim=3, vdim=5, add_bias_kv=True, dtype="float64"
    )
    assert sorted(p) == [
        "bias_k", "bias_v", "in_proj_bias", "k_proj_weight", "out_proj", "q_proj_weight", "v_proj_weight",
    ]  # fmt: skip
    p["in_proj_bias"] = _normal(0, (12,))
    q, k, v = _normal(2, (3, 2, 4)), _normal(3, (5, 2, 3)), _normal(4, (5, 2, 5))
    am, kpm = (
        np.random.default_rng(5).random((3, 5)) > 0.7,
        np.random.default_rng(6).random((2, 5)) > 0.7,
    )
    kw = {"num_heads": 2, "attn_mask": am, "key_padding_mask": kpm, "add_zero_attn": True}
    out, w = A.multi_head_attention(p, q, k, v, need_weights=True, **kw)
    assert out.shape == (3, 2, 4) and w.shape == (2, 3, 7)  # two added keys: bias_k, zero
    check_grads(
        lambda p, q, k, v: A.multi_head_attention(p, q, k, v, **kw)[0], (p, q, k, v), order=2
    )


def test_mha_dropout_needs_a_key_and_applies_only_in_training():
    p = _mha_params(1, 4)
    x = _normal(2, (3, 2, 4))
    kw = {"num_heads": 2, "dropout_p": 0.5, "need_weights": True}
    with pytest.raises(ValueError, match="needs a random key: pass dropout_key="):
        A.multi_head_attention(p, x, x, x, **kw)
    out, w = A.multi_head_attention(p, x, x, x, training=False, **kw)
    out0, w0 = A.multi_head_attention(p, x, x, x, num_heads=2, need_weights=True)
    np.testing.assert_array_equal(out, out0)
    out1, w1 = A.multi_head_attention(p, x, x, x, dropout_key=random.key(0), **kw)
    assert not np.allclose(out1, out0)
    # the weights returned are the dropped ones (like PyTorch): 0 or 2 x the clean weights
    wh, w0h = A.multi_head_attention(p, x, x, x, dropout_key=random.key(0), average_attn_weights=False, **kw)[1], \
        A.multi_head_attention(p, x, x, x, num_heads=2, need_weights=True, average_attn_weights=False)[1]  # fmt: skip
    ratio = np.where(w0h > 0, wh / np.where(w0h > 0, w0h, 1), 0)
    assert np.all(np.isclose(ratio, 0) | np.isclose(ratio, 2))


def test_mha_errors():
    p = _mha_params(1, 6)
    x = _normal(2, (4, 2, 6))
    with pytest.raises(ValueError, match="embed_dim 6 is not divisible by num_heads 4"):
        A.multi_head_attention(p, x, x, x, num_heads=4)
    with pytest.raises(ValueError, match=r"attn_mask has shape \(4, 5\); expected \(L, S\) = \(4, 4\) or "
                       r"\(N \* num_heads, L, S\) = \(4, 4, 4\)"):  # fmt: skip
        A.multi_head_attention(p, x, x, x, num_heads=2, attn_mask=np.zeros((4, 5), bool))
    with pytest.raises(
        ValueError, match=r"key_padding_mask has shape \(4, 2\); expected \(N, S\) = \(2, 4\)"
    ):
        A.multi_head_attention(p, x, x, x, num_heads=2, key_padding_mask=np.zeros((4, 2), bool))
    with pytest.raises(
        ValueError, match=r"key_padding_mask has shape \(3,\); expected \(S,\) = \(4,\)"
    ):
        A.multi_head_attention(
            p, x[:, 0], x[:, 0], x[:, 0], num_heads=2, key_padding_mask=np.zeros(3, bool)
        )
    with pytest.raises(TypeError, match="attn_mask must be a boolean or floating array"):
        A.multi_head_attention(p, x, x, x, num_heads=2, attn_mask=np.zeros((4, 4), np.int32))
    with pytest.raises(
        ValueError, match=r"in_proj_weight has shape \(18, 6\); expected .* \(24, 8\)"
    ):
        A.multi_head_attention(
            p, _normal(3, (4, 2, 8)), _normal(3, (4, 2, 8)), _normal(3, (4, 2, 8)), num_heads=2
        )
    with pytest.raises(ValueError, match="query, key and value must all be batched"):
        A.multi_head_attention(p, x, x[:, 0], x, num_heads=2)
    with pytest.raises(ValueError, match="must share their sequence and batch axes"):
        A.multi_head_attention(p, x, x, x[:3], num_heads=2)
    with pytest.raises(TypeError, match="params must be a dict like nn.MultiheadAttention"):
        A.multi_head_attention({"weight": 1}, x, x, x, num_heads=2)
    with pytest.raises(ValueError, match="unexpected params keys"):
        A.multi_head_attention(dict(p, extra=1), x, x, x, num_heads=2)
    with pytest.raises(ValueError, match="embed_dim 6 is not divisible by num_heads 4"):
        A.init_multi_head_attention(random.key(0), 6, 4)


def test_mha_initialiser():
    p = A.init_multi_head_attention(random.key(0), 32, 4)
    assert p["in_proj_weight"].shape == (96, 32) and p["in_proj_weight"].dtype == np.float32
    bound = math.sqrt(6 / (32 + 96))
    assert (
        np.abs(p["in_proj_weight"]).max() <= bound
        and np.abs(p["in_proj_weight"]).max() > 0.9 * bound
    )
    np.testing.assert_array_equal(p["in_proj_bias"], 0.0)
    np.testing.assert_array_equal(p["out_proj"]["bias"], 0.0)
    w = p["out_proj"]["weight"]
    assert w.shape == (32, 32) and np.abs(w).max() <= 1 / math.sqrt(32)
    q = A.init_multi_head_attention(random.key(0), 32, 4, bias=False, dtype="float64")
    assert sorted(q) == ["in_proj_weight", "out_proj"] and sorted(q["out_proj"]) == ["weight"]
    assert q["in_proj_weight"].dtype == np.float64


# ----------------------------------------------------------------------------- attention: dtypes


def test_attention_float32_in_float32_out():
    q, k, v = (_normal(s, (2, 3, 4), np.float32) for s in range(3))
    out, grads = _vjp_all(
        lambda q, k, v: A.scaled_dot_product_attention(q, k, v, is_causal=True), (q, k, v)
    )
    assert all(t.dtype == np.float32 for t in fn.tree.leaves((out, grads)))
    p = _mha_params(1, 4, dtype=np.float32)
    am = np.random.default_rng(0).standard_normal((3, 3)).astype(np.float32)
    out, grads = _vjp_all(
        lambda p, x: A.multi_head_attention(
            p, x, x, x, num_heads=2, attn_mask=am, need_weights=True
        ),
        (p, q.transpose(1, 0, 2).copy()),
    )
    assert all(t.dtype == np.float32 for t in fn.tree.leaves((out, grads)))


# ----------------------------------------------------------------------------- transformer layers


def _enc_params(seed, E, F, dtype="float64"):
    p = T.init_transformer_encoder_layer(random.key(seed), E, 2, F, dtype=dtype)
    # non-trivial norms and biases, so that every term of the gradient is exercised
    return fn.tree.map(lambda a: a + _normal(seed, a.shape, a.dtype, 0.1), p)


def _dec_params(seed, E, F, dtype="float64"):
    p = T.init_transformer_decoder_layer(random.key(seed), E, 2, F, dtype=dtype)
    return fn.tree.map(lambda a: a + _normal(seed, a.shape, a.dtype, 0.1), p)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_layer_gradients(activation, norm_first):
    kw = {"nhead": 2, "activation": activation, "norm_first": norm_first, "training": False}
    src, tgt = _normal(1, (3, 2, 4)), _normal(2, (2, 2, 4))
    kpm = np.array([[False, False, True], [False, False, False]])
    causal = np.triu(np.ones((2, 2), bool), 1)
    check_grads(
        lambda p, x: T.transformer_encoder_layer(p, x, src_key_padding_mask=kpm, **kw),
        (_enc_params(3, 4, 6), src),
    )
    check_grads(
        lambda p, y, m: T.transformer_decoder_layer(
            p, y, m, tgt_mask=causal, memory_key_padding_mask=kpm, **kw
        ),
        (_dec_params(4, 4, 6), tgt, src),
    )


def test_transformer_layers_keep_float32_and_shapes():
    p = _enc_params(1, 4, 8, "float32")
    x = _normal(2, (2, 3, 4), np.float32)
    out, grads = _vjp_all(
        lambda p, x: T.transformer_encoder_layer(p, x, nhead=2, batch_first=True, training=False),
        (p, x),
    )
    assert out.shape == x.shape
    assert all(t.dtype == np.float32 for t in fn.tree.leaves((out, grads)))
    d = _dec_params(1, 4, 8, "float32")
    y = T.transformer_decoder_layer(d, x[0], x[1], nhead=2, training=False)  # unbatched
    assert y.shape == (3, 4) and y.dtype == np.float32


def test_transformer_dropout_keys():
    p = _enc_params(1, 4, 8)
    x = _normal(2, (3, 2, 4))
    with pytest.raises(
        ValueError, match="transformer_encoder_layer: training with dropout=0.1 needs a random key"
    ):
        T.transformer_encoder_layer(p, x, nhead=2)
    with pytest.raises(ValueError, match="transformer_decoder_layer: training with dropout=0.5"):
        T.transformer_decoder_layer(_dec_params(1, 4, 8), x, x, nhead=2, dropout=0.5)
    # eval mode, or no dropout: no key needed, and the key changes nothing
    a = T.transformer_encoder_layer(p, x, nhead=2, training=False)
    np.testing.assert_array_equal(a, T.transformer_encoder_layer(p, x, nhead=2, dropout=0.0))
    np.testing.assert_array_equal(
        a, T.transformer_encoder_layer(p, x, nhead=2, key=random.key(0), training=False)
    )


def test_transformer_dropout_in_training():
    p = _enc_params(1, 4, 8)
    x = _normal(2, (3, 2, 4))
    key = random.key(5)
    a = T.transformer_encoder_layer(p, x, nhead=2, key=key, dropout=0.3)
    np.testing.assert_array_equal(
        a, T.transformer_encoder_layer(p, x, nhead=2, key=key, dropout=0.3)
    )
    assert not np.allclose(a, T.transformer_encoder_layer(p, x, nhead=2, training=False))
    assert not np.allclose(
        a, T.transformer_encoder_layer(p, x, nhead=2, key=random.key(6), dropout=0.3)
    )
    d = _dec_params(1, 4, 8)
    b = T.transformer_decoder_layer(d, x, x, nhead=2, key=key)
    np.testing.assert_array_equal(b, T.transformer_decoder_layer(d, x, x, nhead=2, key=key))
    check_grads(lambda p, x: T.transformer_encoder_layer(p, x, nhead=2, key=key), (p, x))


def test_transformer_errors_and_initialisers():
    p = _enc_params(1, 4, 8)
    x = _normal(2, (3, 2, 4))
    with pytest.raises(ValueError, match=r"missing \['norm2'\], unexpected \['norm3'\]"):
        T.transformer_encoder_layer(
            {**{k: v for k, v in p.items() if k != "norm2"}, "norm3": p["norm2"]}, x, nhead=2
        )
    with pytest.raises(ValueError, match="activation must be 'relu', 'gelu' or a callable"):
        T.transformer_encoder_layer(p, x, nhead=2, activation="tanh", training=False)
    y = T.transformer_encoder_layer(p, x, nhead=2, activation=fnp.tanh, training=False)
    assert y.shape == x.shape
    with pytest.raises(ValueError, match="d_model 6 is not divisible by nhead 4"):
        T.init_transformer_encoder_layer(random.key(0), 6, 4)
    enc = T.init_transformer_encoder_layer(random.key(0), 8, 2, 16)
    shapes = {path: leaf.shape for path, leaf in fn.tree.leaves_with_path(enc)}
    assert shapes == {
        "linear1.bias": (16,), "linear1.weight": (16, 8), "linear2.bias": (8,), "linear2.weight": (8, 16),
        "norm1.bias": (8,), "norm1.weight": (8,), "norm2.bias": (8,), "norm2.weight": (8,),
        "self_attn.in_proj_bias": (24,), "self_attn.in_proj_weight": (24, 8),
        "self_attn.out_proj.bias": (8,), "self_attn.out_proj.weight": (8, 8),
    }  # fmt: skip
    dec = T.init_transformer_decoder_layer(random.key(0), 8, 2, 16, bias=False)
    assert sorted(dec) == [
        "linear1",
        "linear2",
        "multihead_attn",
        "norm1",
        "norm2",
        "norm3",
        "self_attn",
    ]
    assert sorted(dec["norm3"]) == ["weight"] and sorted(dec["linear1"]) == ["weight"]


# ----------------------------------------------------------------------------- the strict stand-in backend


def _strict_equal(f, *args):
    host = f(*args)
    dev = f(*backend.device_put(args, "strict"))
    for a, b in zip(fn.tree.leaves(host), fn.tree.leaves(dev)):
        assert backend.backend_name(b) == "strict"
        np.testing.assert_allclose(backend.to_numpy(b), a, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell", sorted(GATES))
def test_recurrent_on_the_strict_backend(cell):
    _, n = _step(cell)
    p = _cell_params(1, cell, 3, 4)
    xs = _normal(2, (3, 2, 3))
    state = tuple(_normal(3 + k, (2, 4)) for k in range(n))

    def loss(p, xs, s):
        out, last = _sequence(cell, p, xs, s, True)
        return fnp.sum(out**2) + sum(fnp.sum(t) for t in last)

    _strict_equal(lambda p, xs, s: fn.grad(loss, argnums=(0, 1, 2))(p, xs, s), p, xs, state)
    step = _step(cell)[0]
    _strict_equal(
        lambda p, s, x: fn.vjp(step, p, s, x)[1](tuple(t * 0.0 + 1.0 for t in s)), p, state, xs[0]
    )


def test_attention_on_the_strict_backend():
    q, k, v = _normal(1, (2, 3, 4)), _normal(2, (2, 5, 4)), _normal(3, (2, 5, 2))
    mask = np.random.default_rng(4).random((3, 5)) > 0.3

    def sdpa_grad(q, k, v, mask):
        return fn.grad(lambda q: fnp.sum(A.scaled_dot_product_attention(q, k, v, mask) ** 2))(q)

    _strict_equal(sdpa_grad, q, k, v, mask)
    _strict_equal(
        lambda q, k, v: A.scaled_dot_product_attention(q, k, v, dropout_p=0.5, key=random.key(0)),
        q, k, v,
    )  # fmt: skip
    p = _mha_params(1, 4)
    x = _normal(5, (3, 2, 4))
    kpm = np.array([[False, True, False], [False, False, False]])

    def loss(p, x, kpm):
        out, w = A.multi_head_attention(
            p, x, x, x, num_heads=2, key_padding_mask=kpm, is_causal=True, need_weights=True
        )
        return fnp.sum(out**2) + fnp.sum(w)

    _strict_equal(lambda p, x, kpm: fn.grad(loss, argnums=(0, 1))(p, x, kpm), p, x, kpm)
    with pytest.raises(TypeError, match="cannot mix arrays of two backends"):
        loss(*backend.device_put((p, x), "strict"), kpm)


def _mixed_backend_calls():
    """Each call hands one layer arrays of two backends (strict and NumPy) of one dtype."""
    dev = lambda a: backend.device_put(a, "strict")  # noqa: E731
    p = _cell_params(1, "lstm", 3, 4)
    xs, h = _normal(2, (5, 2, 3)), _normal(3, (2, 4))
    q, kv = _normal(4, (3, 2, 4)), _normal(5, (5, 2, 4))
    return {
        "lstm-xs": lambda: R.lstm(p, dev(xs)),
        "lstm-weights": lambda: R.lstm({**p, "weight_hh": dev(p["weight_hh"])}, xs),
        "lstm-h0": lambda: R.lstm(p, xs, (dev(h), h)),
        "gru_step-x": lambda: R.gru_step(_cell_params(1, "gru", 3, 4), h, dev(xs[0])),
        "sdpa": lambda: A.scaled_dot_product_attention(q, dev(q), q),
        "mha-key": lambda: A.multi_head_attention(_mha_params(1, 4), q, dev(kv), kv, num_heads=2),
    }


@pytest.mark.parametrize("case", sorted(_mixed_backend_calls()))
def test_mixing_backends_is_named_before_dtypes(case):
    """Arrays of two backends are a backend mix, not a dtype mismatch (nor a dtype-comparison
    warning from array-api-strict)."""
    with pytest.raises(TypeError, match="cannot mix arrays of two backends"):
        _mixed_backend_calls()[case]()
