"""Recurrent cells and layers, attention and transformer layers against PyTorch.

The same (random, non-default) weights go into both; every case runs in float64 (rtol 1e-7)
and float32 (rtol 1e-5), with the absolute tolerance scaled to the magnitude of PyTorch's
values. Gradients are taken for random cotangents on every output with respect to every
floating input (initial states and float masks included) and every parameter. Dropout is 0
(our dropout draws from our keys, so it cannot match PyTorch's numbers).

Multi-layer and bidirectional ``torch.nn.RNN/LSTM/GRU`` are compared with stacks composed from
our one-layer functions, the way ``funcnn_modules.nn.LSTM`` composes them.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

import funcnn as fn
from funcnn import numpy as fnp
from funcnn.nn import _attention, _recurrent, _transformer

pytestmark = [pytest.mark.parity, pytest.mark.usefixtures("one_torch_thread")]

DTYPES = {
    "float64": (np.float64, torch.float64, 1e-7),
    "float32": (np.float32, torch.float32, 1e-5),
}
BOTH = list(DTYPES)


def _assert_close(ours, ref, rtol, what):
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != torch's {ref.shape}"
    assert ours.dtype == ref.dtype, f"{what}: dtype {ours.dtype} != torch's {ref.dtype}"
    assert np.isfinite(ref).all(), f"{what}: torch's values are not finite (bad test case)"
    atol = rtol * max(1.0, float(np.abs(ref).max(initial=0.0)))
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol, err_msg=what)


def _nest(flat):
    """{"a.b.c": x} -> {"a": {"b": {"c": x}}} (a state_dict as our params pytree)."""
    out: dict = {}
    for name, v in flat.items():
        *path, last = name.split(".")
        d = out
        for p in path:
            d = d.setdefault(p, {})
        d[last] = v
    return out


def _compare(ours_fn, torch_fn, params, inputs, dtype, consts=None, seed=0):
    """Forward values and gradients (w.r.t. ``params`` and ``inputs``) of both functions.

    ``ours_fn(params, inputs, consts)`` and ``torch_fn(params, inputs, consts)`` return tuples of
    outputs (None entries are skipped); ``params``/``inputs`` are flat dicts of float64 arrays,
    cast to ``dtype`` here; ``consts`` (boolean masks) are passed as they are.
    """
    np_dt, t_dt, rtol = DTYPES[dtype]
    rng = np.random.default_rng(seed + 1000)
    consts = consts or {}
    P = {k: np.asarray(v, dtype=np_dt) for k, v in params.items()}
    X = {k: np.asarray(v, dtype=np_dt) for k, v in inputs.items()}
    tP = {k: torch.tensor(v, requires_grad=True) for k, v in P.items()}
    tX = {k: torch.tensor(v, requires_grad=True) for k, v in X.items()}
    tC = {k: torch.tensor(v) for k, v in consts.items()}
    t_outs = torch_fn(tP, tX, tC)
    cts = [None if o is None else rng.standard_normal(tuple(o.shape)).astype(np_dt) for o in t_outs]
    t_loss = sum((o * torch.tensor(c)).sum() for o, c in zip(t_outs, cts) if o is not None)
    t_loss.backward()

    outs = ours_fn(P, X, consts)
    assert len(outs) == len(t_outs)
    for i, (o, t) in enumerate(zip(outs, t_outs)):
        assert (o is None) == (t is None), f"output {i}: None on one side only"
        if t is not None:
            _assert_close(o, t.detach().numpy(), rtol, f"output {i}")

    def loss(P, X):
        total = 0.0
        for o, c in zip(ours_fn(P, X, consts), cts):
            if c is not None:
                total = total + fnp.sum(o * c)
        return total

    gP, gX = fn.grad(loss, argnums=(0, 1))(P, X)
    for kind, grads, tens in (("param", gP, tP), ("input", gX, tX)):
        for k, t in tens.items():
            ref = np.zeros(t.shape, np_dt) if t.grad is None else t.grad.numpy()
            _assert_close(grads[k], ref, rtol, f"gradient of {kind} {k}")


def _randn(rng, shape, scale=1.0):
    return rng.standard_normal(shape) * scale


def _module_params(module, rng, scale=0.4):
    """Random values for every parameter of a torch module, by state_dict name (float64)."""
    return {k: _randn(rng, tuple(v.shape), scale) for k, v in module.named_parameters()}


def _torch_module_fn(module, call):
    """torch_fn for :func:`_compare`: ``call(module_with_params, inputs, consts)``."""

    def run(tP, tX, tC):
        dt = next(iter(tP.values())).dtype
        m = module.to(dt)
        return call(lambda *a, **k: functional_call(m, tP, a, k), tX, tC)

    return run


# ============================================================================= recurrent cells

CELLS = {
    # kind: (torch cell class, our step, gates)
    "rnn_tanh": (torch.nn.RNNCell, _recurrent.rnn_step, 1),
    "rnn_relu": (torch.nn.RNNCell, _recurrent.rnn_step, 1),
    "lstm": (torch.nn.LSTMCell, _recurrent.lstm_step, 4),
    "gru": (torch.nn.GRUCell, _recurrent.gru_step, 3),
}


@pytest.mark.parametrize("dtype", BOTH)
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kind", list(CELLS))
def test_cells_match_torch(kind, bias, batched, dtype):
    cls, step, _ = CELLS[kind]
    B, I, H = 3, 4, 5
    kw = {"nonlinearity": kind[4:]} if kind.startswith("rnn") else {}
    module = cls(I, H, bias=bias, **kw)
    rng = np.random.default_rng(1)
    params = _module_params(module, rng, 0.5)
    lead = (B,) if batched else ()
    inputs = {"x": _randn(rng, (*lead, I)), "h": _randn(rng, (*lead, H))}
    if kind == "lstm":
        inputs["c"] = _randn(rng, (*lead, H))

    def ours(P, X, C):
        if kind == "lstm":
            return step(P, (X["h"], X["c"]), X["x"])
        return (step(P, X["h"], X["x"], **kw),)

    def call(m, X, C):
        if kind == "lstm":
            return m(X["x"], (X["h"], X["c"]))
        return (m(X["x"], X["h"]),)

    _compare(ours, _torch_module_fn(module, call), params, inputs, dtype)


# ============================================================================= recurrent layers

LAYERS = {
    "rnn_tanh": (torch.nn.RNN, _recurrent.rnn),
    "rnn_relu": (torch.nn.RNN, _recurrent.rnn),
    "lstm": (torch.nn.LSTM, _recurrent.lstm),
    "gru": (torch.nn.GRU, _recurrent.gru),
}


def _ours_stack(kind, P, x, h0, c0, *, num_layers, bidirectional, batch_first):
    """A (multi-layer, bidirectional) torch.nn.RNN/LSTM/GRU composed from our one-layer loops.

    Returns (out, h_n) or (out, h_n, c_n) like torch; h0/c0 are (layers * directions, B, H)
    or None.
    """
    layer = LAYERS[kind][1]
    kw = {"nonlinearity": kind[4:]} if kind.startswith("rnn") else {}
    batched = len(x.shape) == 3
    if batch_first and batched:
        x = fnp.swapaxes(x, 0, 1)
    dirs = ["", "_reverse"] if bidirectional else [""]
    hn, cn = [], []
    inp = x
    for layer_i in range(num_layers):
        outs = []
        for d, suffix in enumerate(dirs):
            p = {
                name: P[f"{name}_l{layer_i}{suffix}"]
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                if f"{name}_l{layer_i}{suffix}" in P
            }
            idx = layer_i * len(dirs) + d
            reverse = d == 1
            if kind == "lstm":
                carry = None if h0 is None else (h0[idx], c0[idx])
                out, (h, c) = layer(p, inp, carry, reverse=reverse)
                cn.append(c)
            else:
                out, h = layer(p, inp, None if h0 is None else h0[idx], reverse=reverse, **kw)
            outs.append(out)
            hn.append(h)
        inp = outs[0] if len(outs) == 1 else fnp.concatenate(outs, axis=-1)
    out = fnp.swapaxes(inp, 0, 1) if batch_first and batched else inp
    if kind == "lstm":
        return out, fnp.stack(hn), fnp.stack(cn)
    return out, fnp.stack(hn)


LAYER_CONFIGS = [
    # (num_layers, bidirectional, batch_first, batched, initial state given)
    (1, False, False, True, True),
    (1, False, False, True, False),
    (1, True, True, True, True),
    (2, False, True, True, False),
    (2, True, False, True, True),
    (2, True, False, False, True),
]


# bias=False once, in the 2-layer bidirectional configuration
LAYER_CASES = [(c, True) for c in LAYER_CONFIGS] + [(LAYER_CONFIGS[4], False)]


def _layer_id(case):
    (num_layers, bi, bf, batched, h0), bias = case
    return f"L{num_layers}-bi{int(bi)}-bf{int(bf)}-b{int(batched)}-h0{int(h0)}-bias{int(bias)}"


@pytest.mark.parametrize("dtype", BOTH)
@pytest.mark.parametrize("case", LAYER_CASES, ids=_layer_id)
@pytest.mark.parametrize("kind", list(LAYERS))
def test_recurrent_layers_match_torch(kind, case, dtype):
    (num_layers, bidirectional, batch_first, batched, with_h0), bias = case
    cls = LAYERS[kind][0]
    T, B, I, H = 5, 3, 4, 6
    kw = {"nonlinearity": kind[4:]} if kind.startswith("rnn") else {}
    module = cls(
        I,
        H,
        num_layers=num_layers,
        bias=bias,
        batch_first=batch_first,
        bidirectional=bidirectional,
        **kw,
    )
    rng = np.random.default_rng(2)
    params = _module_params(module, rng, 0.5)
    D = 2 if bidirectional else 1
    xshape = ((B, T, I) if batch_first else (T, B, I)) if batched else (T, I)
    inputs = {"x": _randn(rng, xshape)}
    if with_h0:
        sshape = (num_layers * D, B, H) if batched else (num_layers * D, H)
        inputs["h0"] = _randn(rng, sshape)
        if kind == "lstm":
            inputs["c0"] = _randn(rng, sshape)
    opts = {"num_layers": num_layers, "bidirectional": bidirectional, "batch_first": batch_first}

    def ours(P, X, C):
        return _ours_stack(kind, P, X["x"], X.get("h0"), X.get("c0"), **opts)

    def call(m, X, C):
        if not with_h0:
            out, state = m(X["x"])
        elif kind == "lstm":
            out, state = m(X["x"], (X["h0"], X["c0"]))
        else:
            out, state = m(X["x"], X["h0"])
        return (out, *state) if kind == "lstm" else (out, state)

    _compare(ours, _torch_module_fn(module, call), params, inputs, dtype)


@pytest.mark.parametrize("dtype", BOTH)
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_recurrent_layer_over_one_step_and_long_sequence(kind, dtype):
    """T = 1 and a longer T (gradients through many steps), one layer, with initial states."""
    for T in (1, 24):
        cls = LAYERS[kind][0]
        B, I, H = 2, 3, 4
        module = cls(I, H)
        rng = np.random.default_rng(T)
        params = _module_params(module, rng, 0.5)
        inputs = {"x": _randn(rng, (T, B, I)), "h0": _randn(rng, (1, B, H))}
        if kind == "lstm":
            inputs["c0"] = _randn(rng, (1, B, H))
        opts = {"num_layers": 1, "bidirectional": False, "batch_first": False}

        def ours(P, X, C):
            return _ours_stack(kind, P, X["x"], X["h0"], X.get("c0"), **opts)

        def call(m, X, C):
            if kind == "lstm":
                out, (h, c) = m(X["x"], (X["h0"], X["c0"]))
                return out, h, c
            return m(X["x"], X["h0"])

        _compare(ours, _torch_module_fn(module, call), params, inputs, dtype)


# ============================================================================= SDPA

SDPA_CASES = [
    # (name, q batch, k/v batch, L, S, E, Ev, mask kind, is_causal, scale)
    ("plain", (2, 3), (2, 3), 4, 6, 5, 3, None, False, None),
    ("broadcast-batch", (2, 3), (1, 3), 4, 6, 5, 5, None, False, None),
    ("3d", (2,), (2,), 5, 5, 4, 4, None, False, 0.3),
    ("bool-mask", (2, 3), (2, 3), 4, 6, 5, 3, "bool", False, None),
    ("bool-mask-masked-row", (2, 2), (2, 2), 4, 6, 5, 3, "bool-row", False, None),
    ("bool-mask-broadcast", (2, 3), (2, 3), 4, 6, 5, 3, "bool-b", False, None),
    ("float-mask", (2, 3), (2, 3), 4, 6, 5, 3, "float", False, None),
    ("float-mask-broadcast", (2, 3), (2, 3), 4, 6, 5, 3, "float-b", False, 0.5),
    ("causal-square", (2, 3), (2, 3), 5, 5, 4, 4, None, True, None),
    ("causal-wide", (2,), (2,), 3, 6, 4, 2, None, True, None),
    ("causal-tall", (2,), (2,), 6, 3, 4, 2, None, True, None),
]


@pytest.mark.parametrize("dtype", BOTH)
@pytest.mark.parametrize("case", SDPA_CASES, ids=lambda c: c[0])
def test_sdpa_matches_torch(case, dtype):
    _, qb, kb, L, S, E, Ev, mask_kind, is_causal, scale = case
    rng = np.random.default_rng(3)
    inputs = {
        "q": _randn(rng, (*qb, L, E)),
        "k": _randn(rng, (*kb, S, E)),
        "v": _randn(rng, (*kb, S, Ev)),
    }
    consts = {}
    if mask_kind in ("bool", "bool-row", "bool-b"):
        shape = (qb[0], 1, L, S) if mask_kind == "bool-b" else (L, S)
        m = rng.random(shape) < 0.6
        m[..., 0] = True  # every query sees at least one key ...
        if mask_kind == "bool-row":
            m[1, :] = False  # ... except this one: its output and gradients are zero
        consts["mask"] = m
    elif mask_kind in ("float", "float-b"):
        inputs["mask"] = _randn(rng, (qb[0], 1, 1, S) if mask_kind == "float-b" else (L, S))

    def ours(P, X, C):
        mask = X.get("mask", C.get("mask"))
        return (
            _attention.scaled_dot_product_attention(
                X["q"], X["k"], X["v"], mask, is_causal=is_causal, scale=scale
            ),
        )

    def theirs(P, X, C):
        mask = X.get("mask", C.get("mask"))
        return (
            F.scaled_dot_product_attention(
                X["q"], X["k"], X["v"], attn_mask=mask, is_causal=is_causal, scale=scale
            ),
        )

    _compare(ours, theirs, {}, inputs, dtype, consts)


# ============================================================================= multi-head attention

E_MHA, HEADS, L_MHA, S_MHA, N_MHA = 8, 2, 4, 5, 3


def _mha_masks(rng, masks, L, S, N, batched):
    """(attn_mask, key_padding_mask) in torch's convention (True = not allowed) or None."""
    if masks in ("none", "causal"):
        return None, None
    if masks == "bool":
        am = rng.random((L, S)) < 0.4
        kpm = rng.random((N, S)) < 0.3
        am[:, 0] = kpm[:, 0] = False  # no query loses every key (torch gives NaN there)
        return am, kpm if batched else kpm[0]
    if masks == "bool3d":
        am = rng.random((N * HEADS if batched else HEADS, L, S)) < 0.4
        am[..., 0] = False
        return am, None
    if masks == "float":
        return _randn(rng, (L, S)), _randn(rng, (N, S) if batched else (S,))
    if masks == "float3d":
        return _randn(rng, (N * HEADS if batched else HEADS, L, S)), None
    raise AssertionError(masks)


MHA_MODES = ["self", "cross", "kvdim"]
MHA_MASKS = ["none", "bool", "float", "bool3d", "float3d", "causal"]
MHA_WEIGHTS = ["none", "avg", "heads"]

MHA_CASES = [
    {
        "mode": mode,
        "masks": masks,
        "bias": bias,
        "batch_first": i % 2 == 1,
        "weights": MHA_WEIGHTS[i % 3],
        "batched": True,
        "bias_kv": False,
        "zero_attn": False,
    }
    for i, (mode, masks, bias) in enumerate(itertools.product(MHA_MODES, MHA_MASKS, [True, False]))
] + [
    # the less common options, each with masks so the padding of the key axis is exercised
    dict(mode="cross", masks="bool", bias=True, batch_first=False, weights="heads", batched=True,
         bias_kv=True, zero_attn=False),
    dict(mode="self", masks="float", bias=True, batch_first=True, weights="avg", batched=True,
         bias_kv=False, zero_attn=True),
    dict(mode="kvdim", masks="bool", bias=True, batch_first=False, weights="avg", batched=True,
         bias_kv=True, zero_attn=True),
    dict(mode="cross", masks="causal", bias=False, batch_first=True, weights="heads",
         batched=True, bias_kv=True, zero_attn=True),
    dict(mode="self", masks="bool", bias=True, batch_first=False, weights="avg", batched=False,
         bias_kv=False, zero_attn=False),
    dict(mode="kvdim", masks="float3d", bias=True, batch_first=False, weights="heads",
         batched=False, bias_kv=True, zero_attn=False),
    # weights asked for: without them, torch hands is_causal to SDPA over the lengthened keys
    # instead of its padded mask, so the appended zero key drops out (a torch quirk)
    dict(mode="cross", masks="causal", bias=True, batch_first=False, weights="avg",
         batched=False, bias_kv=False, zero_attn=True),
]  # fmt: skip


def _mha_id(c):
    extra = ("-kv" if c["bias_kv"] else "") + ("-zero" if c["zero_attn"] else "")
    return (
        f"{c['mode']}-{c['masks']}-bias{int(c['bias'])}-bf{int(c['batch_first'])}-"
        f"w{c['weights']}-b{int(c['batched'])}{extra}"
    )


def _causal_bool(L, S):
    return np.triu(np.ones((L, S), dtype=bool), k=1)  # True above the diagonal = not allowed


@pytest.mark.parametrize("dtype", BOTH)
@pytest.mark.parametrize("c", MHA_CASES, ids=_mha_id)
def test_multi_head_attention_matches_torch(c, dtype):
    E, H, L, S, N = E_MHA, HEADS, L_MHA, S_MHA, N_MHA
    mode, batched, batch_first = c["mode"], c["batched"], c["batch_first"] and c["batched"]
    kdim, vdim = (3, 5) if mode == "kvdim" else (E, E)
    module = torch.nn.MultiheadAttention(
        E,
        H,
        bias=c["bias"],
        add_bias_kv=c["bias_kv"],
        add_zero_attn=c["zero_attn"],
        kdim=kdim,
        vdim=vdim,
        batch_first=batch_first,
    )
    rng = np.random.default_rng(4)
    params = _module_params(module, rng, 0.4)
    if mode == "self":
        S = L

    def shaped(length, feat):
        if not batched:
            return (length, feat)
        return (N, length, feat) if batch_first else (length, N, feat)

    inputs = {"query": _randn(rng, shaped(L, E))}
    if mode == "cross":
        inputs["memory"] = _randn(rng, shaped(S, E))
    elif mode == "kvdim":
        inputs["key"] = _randn(rng, shaped(S, kdim))
        inputs["value"] = _randn(rng, shaped(S, vdim))
    am, kpm = _mha_masks(rng, c["masks"], L, S, N, batched)
    consts = {}
    for name, m in (("attn_mask", am), ("key_padding_mask", kpm)):
        if m is not None:
            (consts if m.dtype == bool else inputs)[name] = m
    causal = c["masks"] == "causal"
    need = c["weights"] != "none"
    average = c["weights"] == "avg"

    def qkv(X):
        q = X["query"]
        if mode == "self":
            return q, q, q  # one object: our packed projection path
        if mode == "cross":
            return q, X["memory"], X["memory"]
        return q, X["key"], X["value"]

    def masks_of(X, C):
        return (
            X.get("attn_mask", C.get("attn_mask")),
            X.get("key_padding_mask", C.get("key_padding_mask")),
        )

    def ours(P, X, C):
        attn_mask, key_padding_mask = masks_of(X, C)
        return _attention.multi_head_attention(
            _nest(P),
            *qkv(X),
            num_heads=H,
            key_padding_mask=key_padding_mask,
            attn_mask=attn_mask,
            need_weights=need,
            average_attn_weights=average,
            batch_first=batch_first,
            is_causal=causal,
            add_zero_attn=c["zero_attn"],
        )

    def call(m, X, C):
        attn_mask, key_padding_mask = masks_of(X, C)
        if causal:  # torch's is_causal is only a hint: it needs the mask
            attn_mask = torch.tensor(_causal_bool(L, S))
        return m(
            *qkv(X),
            key_padding_mask=key_padding_mask,
            attn_mask=attn_mask,
            need_weights=need,
            average_attn_weights=average,
            is_causal=causal,
        )

    _compare(ours, _torch_module_fn(module, call), params, inputs, dtype, consts)


# ============================================================================= transformer layers

D_MODEL, NHEAD, D_FF = 8, 2, 12
T_TGT, S_SRC, N_TR = 4, 5, 2
TR_MASKS = ["none", "bool", "float", "causal"]


def _tr_masks(rng, masks, L, N, batched):
    """(attn mask (L, L), key padding mask (N, L)) for a self-attention, or Nones."""
    if masks in ("none", "causal"):
        return None, None
    if masks == "bool":
        am = rng.random((L, L)) < 0.4
        kpm = rng.random((N, L)) < 0.3
        am[:, 0] = kpm[:, 0] = False
        return am, kpm if batched else kpm[0]
    return _randn(rng, (L, L)), _randn(rng, (N, L) if batched else (L,))


TR_CASES = [
    {
        "norm_first": nf,
        "activation": act,
        "masks": masks,
        "bias": i % 4 != 3,
        "batch_first": i % 2 == 1,
        "batched": True,
    }
    for i, (nf, act, masks) in enumerate(itertools.product([False, True], ["relu", "gelu"], TR_MASKS))
] + [
    {"norm_first": True, "activation": "gelu", "masks": "bool", "bias": True,
     "batch_first": False, "batched": False},
    {"norm_first": False, "activation": "relu", "masks": "causal", "bias": False,
     "batch_first": False, "batched": False},
]  # fmt: skip


def _tr_id(c):
    return (
        f"nf{int(c['norm_first'])}-{c['activation']}-{c['masks']}-bias{int(c['bias'])}-"
        f"bf{int(c['batch_first'])}-b{int(c['batched'])}"
    )


def _tr_shape(c, length):
    if not c["batched"]:
        return (length, D_MODEL)
    return (N_TR, length, D_MODEL) if c["batch_first"] else (length, N_TR, D_MODEL)


def _tr_kwargs(c):
    return {
        "activation": c["activation"],
        "norm_first": c["norm_first"],
        "batch_first": c["batch_first"] and c["batched"],
        "bias": c["bias"],
    }


def _split_masks(named, inputs, consts):
    for name, m in named.items():
        if m is not None:
            (consts if m.dtype == bool else inputs)[name] = m


def _get(X, C, name):
    return X.get(name, C.get(name))


@pytest.mark.parametrize("dtype", BOTH)
@pytest.mark.parametrize("c", TR_CASES, ids=_tr_id)
def test_transformer_encoder_layer_matches_torch(c, dtype):
    kw = _tr_kwargs(c)
    module = torch.nn.TransformerEncoderLayer(D_MODEL, NHEAD, D_FF, dropout=0.0, **kw)
    rng = np.random.default_rng(5)
    params = _module_params(module, rng, 0.4)
    inputs = {"src": _randn(rng, _tr_shape(c, S_SRC))}
    consts: dict = {}
    am, kpm = _tr_masks(rng, c["masks"], S_SRC, N_TR, c["batched"])
    _split_masks({"src_mask": am, "src_key_padding_mask": kpm}, inputs, consts)
    causal = c["masks"] == "causal"
    opts = {k: v for k, v in kw.items() if k != "bias"}

    def ours(P, X, C):
        out = _transformer.transformer_encoder_layer(
            _nest(P),
            X["src"],
            nhead=NHEAD,
            src_mask=_get(X, C, "src_mask"),
            src_key_padding_mask=_get(X, C, "src_key_padding_mask"),
            is_causal=causal,
            dropout=0.0,
            **opts,
        )
        return (out,)

    def call(m, X, C):
        src_mask = _get(X, C, "src_mask")
        if causal:
            src_mask = torch.tensor(_causal_bool(S_SRC, S_SRC))
        out = m(
            X["src"],
            src_mask=src_mask,
            src_key_padding_mask=_get(X, C, "src_key_padding_mask"),
            is_causal=causal,
        )
        return (out,)

    _compare(ours, _torch_module_fn(module, call), params, inputs, dtype, consts)


@pytest.mark.parametrize("dtype", BOTH)
@pytest.mark.parametrize("c", TR_CASES, ids=_tr_id)
def test_transformer_decoder_layer_matches_torch(c, dtype):
    kw = _tr_kwargs(c)
    module = torch.nn.TransformerDecoderLayer(D_MODEL, NHEAD, D_FF, dropout=0.0, **kw)
    rng = np.random.default_rng(6)
    params = _module_params(module, rng, 0.4)
    inputs = {
        "tgt": _randn(rng, _tr_shape(c, T_TGT)),
        "memory": _randn(rng, _tr_shape(c, S_SRC)),
    }
    consts: dict = {}
    am, kpm = _tr_masks(rng, c["masks"], T_TGT, N_TR, c["batched"])
    named = {"tgt_mask": am, "tgt_key_padding_mask": kpm}
    if c["masks"] in ("bool", "float"):
        # the cross-attention's masks, of the same kind (torch warns when kinds are mixed)
        mm, mkpm = _mha_masks(rng, c["masks"], T_TGT, S_SRC, N_TR, c["batched"])
        named |= {"memory_mask": mm, "memory_key_padding_mask": mkpm}
    _split_masks(named, inputs, consts)
    causal = c["masks"] == "causal"
    opts = {k: v for k, v in kw.items() if k != "bias"}
    mask_names = ("tgt_mask", "memory_mask", "tgt_key_padding_mask", "memory_key_padding_mask")

    def ours(P, X, C):
        out = _transformer.transformer_decoder_layer(
            _nest(P),
            X["tgt"],
            X["memory"],
            nhead=NHEAD,
            tgt_is_causal=causal,
            dropout=0.0,
            **{n: _get(X, C, n) for n in mask_names},
            **opts,
        )
        return (out,)

    def call(m, X, C):
        masks = {n: _get(X, C, n) for n in mask_names}
        if causal:
            masks["tgt_mask"] = torch.tensor(_causal_bool(T_TGT, T_TGT))
        return (m(X["tgt"], X["memory"], tgt_is_causal=causal, **masks),)

    _compare(ours, _torch_module_fn(module, call), params, inputs, dtype, consts)


def test_transformer_layers_in_eval_mode_ignore_dropout():
    """training=False with dropout > 0 is the dropout-free layer (torch's eval())."""
    module = torch.nn.TransformerEncoderLayer(D_MODEL, NHEAD, D_FF, dropout=0.3).double().eval()
    rng = np.random.default_rng(7)
    params = _module_params(module, rng, 0.4)
    src = _randn(rng, (S_SRC, N_TR, D_MODEL))
    with torch.no_grad():
        ref = functional_call(
            module, {k: torch.tensor(v) for k, v in params.items()}, (torch.tensor(src),)
        ).numpy()
    out = _transformer.transformer_encoder_layer(
        _nest(params), src, nhead=NHEAD, dropout=0.3, training=False
    )
    _assert_close(out, ref, 1e-7, "eval-mode encoder layer")


# ============================================================================= attention edge cases

MHA_EDGE_CASES = ["bool-am+float-kpm", "float-am+bool-kpm", "float-am-inf-row", "kpm-all-masked"]


@pytest.mark.parametrize("dtype", BOTH)
@pytest.mark.parametrize("case", MHA_EDGE_CASES)
def test_multi_head_attention_mask_edge_cases_match_torch(case, dtype):
    """Mixed mask kinds (PyTorch merges them, with a deprecation warning), and queries that
    lose every key (a -inf float row, a sample whose keys are all padding): without weights,
    torch's SDPA path gives those queries zeros, and so do we (gradients included)."""
    E, H, L, S, N = E_MHA, HEADS, L_MHA, S_MHA, N_MHA
    module = torch.nn.MultiheadAttention(E, H)
    rng = np.random.default_rng(7)
    params = _module_params(module, rng, 0.4)
    inputs = {"query": _randn(rng, (L, N, E)), "memory": _randn(rng, (S, N, E))}
    consts = {}
    am_bool = rng.random((L, S)) < 0.4
    kpm_bool = rng.random((N, S)) < 0.3
    am_bool[:, 0] = kpm_bool[:, 0] = False
    if case == "bool-am+float-kpm":
        consts["attn_mask"], inputs["key_padding_mask"] = am_bool, _randn(rng, (N, S))
    elif case == "float-am+bool-kpm":
        inputs["attn_mask"], consts["key_padding_mask"] = _randn(rng, (L, S)), kpm_bool
    elif case == "float-am-inf-row":
        am = _randn(rng, (L, S))
        am[1, :] = -np.inf
        inputs["attn_mask"] = am
    else:
        kpm_bool[1, :] = True
        consts["key_padding_mask"] = kpm_bool

    def masks(X, C):
        return X.get("attn_mask", C.get("attn_mask")), X.get(
            "key_padding_mask", C.get("key_padding_mask")
        )

    def ours(P, X, C):
        am, kpm = masks(X, C)
        mem = X["memory"]
        return _attention.multi_head_attention(
            _nest(P), X["query"], mem, mem, num_heads=H, attn_mask=am, key_padding_mask=kpm
        )

    def call(m, X, C):
        am, kpm = masks(X, C)
        with warnings.catch_warnings():  # "mismatched key_padding_mask and attn_mask"
            warnings.simplefilter("ignore", UserWarning)
            return m(X["query"], X["memory"], X["memory"], attn_mask=am, key_padding_mask=kpm,
                     need_weights=False)  # fmt: skip

    _compare(ours, _torch_module_fn(module, call), params, inputs, dtype, consts)
