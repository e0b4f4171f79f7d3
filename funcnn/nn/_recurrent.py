"""Recurrent layers: RNN, LSTM and GRU cells (one step) and one-layer sequence loops.

Parameters use PyTorch's names and layouts, so a ``torch.nn.LSTMCell``'s ``state_dict`` is a
valid params pytree::

    {"weight_ih": (G*H, I), "weight_hh": (G*H, H), "bias_ih": (G*H,), "bias_hh": (G*H,)}

with ``G`` = 1 (RNN), 4 (LSTM: gates i, f, g, o) or 3 (GRU: gates r, z, n). The biases are
optional (``bias=False`` in PyTorch leaves them out).

Speed: each cell is one fused primitive (gate GEMMs and pointwise math in one node) whose VJP
is hand-derived. The pointwise part of that VJP is itself a primitive (raw array math, a few
passes), whose own VJP is the VJP of its composed twin, so every order of derivative works.
The sequence functions (:func:`lstm`, :func:`gru`, :func:`rnn`) project the inputs of all steps
with one GEMM up front, then run the per-step recurrence on the precomputed projections; the
per-step inputs and outputs are split and joined by one primitive each (not one slice per step,
whose gradients would each allocate the whole sequence).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from funcnn import backend, random
from funcnn import numpy as fnp
from funcnn.autodiff import primitive, vjp
from funcnn.autodiff._core import strip

__all__ = [
    "rnn_step",
    "lstm_step",
    "gru_step",
    "rnn",
    "lstm",
    "gru",
    "init_rnn_cell",
    "init_lstm_cell",
    "init_gru_cell",
]

_NONLINEARITIES = ("tanh", "relu")
_PARAM_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


# ----------------------------------------------------------------------------- raw pointwise math


def _sigmoid_raw(xp: Any, x: Any) -> Any:
    """Logistic sigmoid ``1 / (1 + exp(-x))`` on raw arrays, without overflow.

    ``exp(-x)`` is capped below the dtype's overflow point (where the sigmoid is already below
    1e-34), so no warning is raised and every other value is the textbook formula, like
    PyTorch's. float16 is computed in float32.
    """
    f16 = getattr(xp, "float16", None)  # the array API standard has no float16
    if f16 is not None and x.dtype == f16:
        return xp.astype(_sigmoid_raw(xp, xp.astype(x, xp.float32)), f16)
    e = xp.exp(xp.minimum(-x, 700.0 if x.dtype == xp.float64 else 80.0))
    e += 1.0
    return 1.0 / e


def _t(xp: Any, w: Any) -> Any:
    return xp.permute_dims(w, (1, 0))


def _gate_sums(xp: Any, x: Any, h: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any) -> tuple:
    """(input part, hidden part) of the gate pre-activations; ``w_ih`` None: x is projected."""
    gi = x if w_ih is None else xp.matmul(x, _t(xp, w_ih))
    if b_ih is not None:
        gi = gi + b_ih
    gh = xp.matmul(h, _t(xp, w_hh))
    if b_hh is not None:
        gh += b_hh
    return gi, gh


def _lstm_fwd(xp: Any, gates: Any, c: Any) -> tuple:
    """(h', c', acts) from the gate pre-activations (B, 4H); acts = [i, f, g, o, tanh(c')]."""
    H = c.shape[-1]
    i_f = _sigmoid_raw(xp, gates[..., : 2 * H])
    g = xp.tanh(gates[..., 2 * H : 3 * H])
    o = _sigmoid_raw(xp, gates[..., 3 * H :])
    c_new = i_f[..., H:] * c + i_f[..., :H] * g
    tc = xp.tanh(c_new)
    return o * tc, c_new, xp.concat([i_f, g, o, tc], axis=-1)


def _lstm_bwd(xp: Any, gh: Any, gc: Any, gacts: Any, acts: Any, c: Any) -> tuple:
    """(d gate pre-activations (B, 4H), d c_prev) from the cotangents of (h', c', acts)."""
    H = c.shape[-1]
    i, f, g = acts[..., :H], acts[..., H : 2 * H], acts[..., 2 * H : 3 * H]
    o, tc = acts[..., 3 * H : 4 * H], acts[..., 4 * H :]
    dc = gc + (gh * o + gacts[..., 4 * H :]) * (1.0 - tc * tc)
    dact = xp.concat([dc * g, dc * c, dc * i, gh * tc], axis=-1)
    dact += gacts[..., : 4 * H]
    s = acts[..., : 4 * H]
    deriv = s - s * s
    deriv[..., 2 * H : 3 * H] = 1.0 - g * g
    dact *= deriv
    return dact, dc * f


def _lstm_bwd_composed(gh: Any, gc: Any, gacts: Any, acts: Any, c: Any) -> tuple:
    """:func:`_lstm_bwd` in funcnn ops: its twin, and the source of its own VJP."""
    H = c.shape[-1]
    i, f, g, o, tc = (acts[..., k * H : (k + 1) * H] for k in range(5))
    ga = [gacts[..., k * H : (k + 1) * H] for k in range(5)]
    dc = gc + (gh * o + ga[4]) * (1.0 - tc * tc)
    di = (dc * g + ga[0]) * (i * (1.0 - i))
    df = (dc * c + ga[1]) * (f * (1.0 - f))
    dg = (dc * i + ga[2]) * (1.0 - g * g)
    do = (gh * tc + ga[3]) * (o * (1.0 - o))
    return fnp.concatenate([di, df, dg, do], axis=-1), dc * f


def _gru_fwd(xp: Any, gi: Any, gh: Any, h: Any) -> tuple:
    """(h', acts) from the input and hidden sums (B, 3H); acts = [r, z, n, W_hn h + b_hn]."""
    H = h.shape[-1]
    rz = _sigmoid_raw(xp, gi[..., : 2 * H] + gh[..., : 2 * H])
    hn = gh[..., 2 * H :]
    n = xp.tanh(gi[..., 2 * H :] + rz[..., :H] * hn)
    return n + rz[..., H:] * (h - n), xp.concat([rz, n, hn], axis=-1)


def _gru_bwd(xp: Any, gout: Any, gacts: Any, acts: Any, h: Any) -> tuple:
    """(d input sums (B, 3H), d hidden sums (B, 3H), d h through z) from those of (h', acts)."""
    H = h.shape[-1]
    r, z, n, hn = acts[..., :H], acts[..., H : 2 * H], acts[..., 2 * H : 3 * H], acts[..., 3 * H :]
    dan = (gout * (1.0 - z) + gacts[..., 2 * H : 3 * H]) * (1.0 - n * n)
    drz = xp.concat([dan * hn, gout * (h - n)], axis=-1)
    drz += gacts[..., : 2 * H]
    rz = acts[..., : 2 * H]
    drz *= rz - rz * rz
    dghn = dan * r + gacts[..., 3 * H :]
    return xp.concat([drz, dan], axis=-1), xp.concat([drz, dghn], axis=-1), gout * z


def _gru_bwd_composed(gout: Any, gacts: Any, acts: Any, h: Any) -> tuple:
    """:func:`_gru_bwd` in funcnn ops: its twin, and the source of its own VJP."""
    H = h.shape[-1]
    r, z, n, hn = (acts[..., k * H : (k + 1) * H] for k in range(4))
    ga = [gacts[..., k * H : (k + 1) * H] for k in range(4)]
    dan = (gout * (1.0 - z) + ga[2]) * (1.0 - n * n)
    dar = (dan * hn + ga[0]) * (r * (1.0 - r))
    daz = (gout * (h - n) + ga[1]) * (z * (1.0 - z))
    dghn = dan * r + ga[3]
    return (
        fnp.concatenate([dar, daz, dan], axis=-1),
        fnp.concatenate([dar, daz, dghn], axis=-1),
        gout * z,
    )


def _rnn_fwd(xp: Any, a: Any, nonlinearity: str) -> Any:
    return xp.tanh(a) if nonlinearity == "tanh" else xp.maximum(a, 0.0)


def _rnn_bwd(g: Any, h_new: Any, nonlinearity: str) -> Any:
    """d pre-activation from d h' (funcnn ops: one or two passes, and differentiable)."""
    if nonlinearity == "tanh":
        return g * (1.0 - h_new * h_new)
    return fnp.where(h_new > 0, g, 0.0)


# ----------------------------------------------------------------------------- VJP helpers


def _param_grads(
    argnums: tuple, dgi: Any, dgh: Any, dh_direct: Any, x: Any, h: Any, w_ih: Any, w_hh: Any
) -> dict:
    """Cotangents of a step's (x 0, h 1, w_ih 2, w_hh 3, b_ih 4, b_hh 5), by position.

    ``dgi``/``dgh`` are the cotangents of the input/hidden gate sums, (B, G*H) each; the
    weight gradients are GEMMs. Written in funcnn ops, so they record when differentiated again.
    """
    out: dict = {}
    if 0 in argnums:
        out[0] = dgi if w_ih is None else fnp.matmul(dgi, w_ih)
    if 1 in argnums:
        dh = fnp.matmul(dgh, w_hh)
        out[1] = dh if dh_direct is None else dh + dh_direct
    if 2 in argnums:
        out[2] = fnp.matmul(fnp.transpose(dgi), x)
    if 3 in argnums:
        out[3] = fnp.matmul(fnp.transpose(dgh), h)
    if 4 in argnums:
        out[4] = fnp.sum(dgi, axis=0)
    if 5 in argnums:
        out[5] = out[4] if dgh is dgi and 4 in out else fnp.sum(dgh, axis=0)
    return out


def _twin_vjp(composed: Any) -> Any:
    """A joint VJP rule for a primitive: the VJP of ``composed``, its twin in funcnn ops.

    Used for the pointwise backward primitives, so their derivatives (second and higher order
    derivatives of the layers) come from the plain composition.
    """

    def rule(g: Any, ans: Any, argnums: tuple, *args: Any, **kwargs: Any) -> list:
        def f(*diff: Any) -> Any:
            full = list(args)
            for i, d in zip(argnums, diff):
                full[i] = d
            return composed(*full, **kwargs)

        _, vjp_fn = vjp(f, *[args[i] for i in argnums])
        return list(vjp_fn(tuple(g) if isinstance(g, (tuple, list)) else g))

    return rule


# ----------------------------------------------------------------------------- single steps


@primitive(multiple_results=True)
def _lstm_cell(x: Any, h: Any, c: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any) -> tuple:
    """One fused LSTM step -> (h', c', acts) with acts = [i, f, g, o, tanh(c')] (B, 5H)."""
    xp = backend.namespace(x, h, c, w_hh)
    gi, gates = _gate_sums(xp, x, h, w_ih, w_hh, b_ih, b_hh)
    gates += gi
    return _lstm_fwd(xp, gates, c)


@primitive(multiple_results=True)
def _lstm_cell_bwd(gh: Any, gc: Any, gacts: Any, acts: Any, c: Any) -> tuple:
    """The pointwise part of the LSTM step's VJP as a primitive: (d gates (B, 4H), d c)."""
    return _lstm_bwd(backend.namespace(gh, gc, acts, c), gh, gc, gacts, acts, c)


_lstm_cell_bwd.defvjp_joint(_twin_vjp(_lstm_bwd_composed))


@_lstm_cell.defvjp_joint
def _lstm_cell_vjp(
    g: Any,
    ans: Any,
    argnums: tuple,
    x: Any,
    h: Any,
    c: Any,
    w_ih: Any,
    w_hh: Any,
    b_ih: Any,
    b_hh: Any,
) -> list:
    gh, gc, gacts = g
    dgates, dc_prev = _lstm_cell_bwd(gh, gc, gacts, ans[2], c)
    # _lstm_cell's positions x 0, h 1, c 2, w_ih 3, w_hh 4, b_ih 5, b_hh 6 -> _param_grads'
    remap = {0: 0, 1: 1, 3: 2, 4: 3, 5: 4, 6: 5}
    wanted = tuple(remap[i] for i in argnums if i != 2)
    grads = _param_grads(wanted, dgates, dgates, None, x, h, w_ih, w_hh)
    return [dc_prev if i == 2 else grads[remap[i]] for i in argnums]


@primitive(multiple_results=True)
def _gru_cell(x: Any, h: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any) -> tuple:
    """One fused GRU step -> (h', acts) with acts = [r, z, n, W_hn h + b_hn] (B, 4H)."""
    xp = backend.namespace(x, h, w_hh)
    gi, gh = _gate_sums(xp, x, h, w_ih, w_hh, b_ih, b_hh)
    return _gru_fwd(xp, gi, gh, h)


@primitive(multiple_results=True)
def _gru_cell_bwd(gout: Any, gacts: Any, acts: Any, h: Any) -> tuple:
    """The pointwise part of the GRU step's VJP as a primitive: (d gi, d gh, d h through z)."""
    return _gru_bwd(backend.namespace(gout, acts, h), gout, gacts, acts, h)


_gru_cell_bwd.defvjp_joint(_twin_vjp(_gru_bwd_composed))


@_gru_cell.defvjp_joint
def _gru_cell_vjp(
    g: Any, ans: Any, argnums: tuple, x: Any, h: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any
) -> list:
    gout, gacts = g
    dgi, dgh, dh_direct = _gru_cell_bwd(gout, gacts, ans[1], h)
    grads = _param_grads(argnums, dgi, dgh, dh_direct, x, h, w_ih, w_hh)
    return [grads[i] for i in argnums]


@primitive
def _rnn_cell(
    x: Any, h: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any, *, nonlinearity: str
) -> Any:
    """One fused Elman RNN step -> h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)."""
    xp = backend.namespace(x, h, w_hh)
    gi, a = _gate_sums(xp, x, h, w_ih, w_hh, b_ih, b_hh)
    a += gi
    return _rnn_fwd(xp, a, nonlinearity)


@_rnn_cell.defvjp_joint
def _rnn_cell_vjp(
    g: Any,
    ans: Any,
    argnums: tuple,
    x: Any,
    h: Any,
    w_ih: Any,
    w_hh: Any,
    b_ih: Any,
    b_hh: Any,
    *,
    nonlinearity: str,
) -> list:
    da = _rnn_bwd(g, ans, nonlinearity)
    grads = _param_grads(argnums, da, da, None, x, h, w_ih, w_hh)
    return [grads[i] for i in argnums]


# ----------------------------------------------------------------------------- whole sequences
#
# One primitive runs the whole recurrence of a layer over precomputed input projections
# gx (T, B, G*H), in raw array math: per step one GEMM with W_hh and the pointwise cell. Its
# VJP runs the backward recurrence (another primitive, :func:`_seq_bwd`) and then gets W_hh's
# gradient from ONE GEMM over all steps, instead of a small GEMM and a full-size accumulation
# per step. ``cell`` is "lstm", "gru", "rnn_tanh" or "rnn_relu"; the results are
# (hs, cs, acts) for an LSTM, (hs, acts) for a GRU and (hs,) for an RNN.


def _order(T: int, reverse: bool) -> list:
    """(t, previous t or None) in the order the steps run."""
    if reverse:
        return [(t, t + 1 if t < T - 1 else None) for t in range(T - 1, -1, -1)]
    return [(t, t - 1 if t > 0 else None) for t in range(T)]


_ACT_WIDTH = {"lstm": 5, "gru": 4, "rnn_tanh": 0, "rnn_relu": 0}


@primitive(multiple_results=True)
def _seq(gx: Any, h0: Any, c0: Any, w_hh: Any, b_hh: Any, *, cell: str, reverse: bool) -> tuple:
    xp = backend.namespace(gx, h0, w_hh)
    T, B = gx.shape[0], gx.shape[1]
    H = h0.shape[-1]
    hs = backend.zeros((T, B, H), dtype=gx.dtype, like=gx)
    width = _ACT_WIDTH[cell] * H
    acts = backend.zeros((T, B, width), dtype=gx.dtype, like=gx) if width else None
    cs = backend.zeros((T, B, H), dtype=gx.dtype, like=gx) if cell == "lstm" else None
    wt = _t(xp, w_hh)
    h, c = h0, c0
    for t, _ in _order(T, reverse):
        gh = xp.matmul(h, wt)
        if cell == "lstm":
            gh += gx[t, ...]
            h, c, acts[t, ...] = _lstm_fwd(xp, gh, c)
            cs[t, ...] = c
        elif cell == "gru":
            if b_hh is not None:
                gh += b_hh
            h, acts[t, ...] = _gru_fwd(xp, gx[t, ...], gh, h)
        else:
            gh += gx[t, ...]
            h = _rnn_fwd(xp, gh, cell[4:])
        hs[t, ...] = h
    if cell == "lstm":
        return hs, cs, acts
    return (hs, acts) if cell == "gru" else (hs,)


@primitive(multiple_results=True)
def _seq_bwd(
    g_hs: Any,
    g_cs: Any,
    g_acts: Any,
    hs: Any,
    cs: Any,
    acts: Any,
    h0: Any,
    c0: Any,
    w_hh: Any,
    *,
    cell: str,
    reverse: bool,
) -> tuple:
    """The backward recurrence: (d gx, d gh [GRU only], d h0, d c0 [LSTM only])."""
    xp = backend.namespace(g_hs, hs, w_hh)
    T = hs.shape[0]
    dgx = backend.zeros(tuple(hs.shape[:2]) + (w_hh.shape[0],), dtype=hs.dtype, like=hs)
    dgh_all = backend.zeros(tuple(dgx.shape), dtype=hs.dtype, like=hs) if cell == "gru" else None
    dh = dc = None
    for t, p in reversed(_order(T, reverse)):
        gh = g_hs[t, ...] if dh is None else g_hs[t, ...] + dh
        if cell == "lstm":
            gc = g_cs[t, ...] if dc is None else g_cs[t, ...] + dc
            dgates, dc = _lstm_bwd(
                xp, gh, gc, g_acts[t, ...], acts[t, ...], c0 if p is None else cs[p, ...]
            )
            dgx[t, ...] = dgates
            dh = xp.matmul(dgates, w_hh)
        elif cell == "gru":
            dgi, dgh, dh_z = _gru_bwd(
                xp, gh, g_acts[t, ...], acts[t, ...], h0 if p is None else hs[p, ...]
            )
            dgx[t, ...] = dgi
            dgh_all[t, ...] = dgh
            dh = xp.matmul(dgh, w_hh)
            dh += dh_z
        else:
            da = _rnn_bwd(gh, hs[t, ...], cell[4:])
            dgx[t, ...] = da
            dh = xp.matmul(da, w_hh)
    if cell == "lstm":
        return dgx, dh, dc
    return (dgx, dgh_all, dh) if cell == "gru" else (dgx, dh)


def _seq_bwd_composed(
    g_hs: Any,
    g_cs: Any,
    g_acts: Any,
    hs: Any,
    cs: Any,
    acts: Any,
    h0: Any,
    c0: Any,
    w_hh: Any,
    *,
    cell: str,
    reverse: bool,
) -> tuple:
    """:func:`_seq_bwd` in funcnn ops: its twin, and the source of its own VJP."""
    T = hs.shape[0]
    g_hs_t, hs_t = _unstack(g_hs), _unstack(hs)
    if cell != "rnn_tanh" and cell != "rnn_relu":
        g_acts_t, acts_t = _unstack(g_acts), _unstack(acts)
    if cell == "lstm":
        g_cs_t, cs_t = _unstack(g_cs), _unstack(cs)
    dgx: list = [None] * T
    dgh_all: list = [None] * T
    dh = dc = None
    for t, p in reversed(_order(T, reverse)):
        gh = g_hs_t[t] if dh is None else g_hs_t[t] + dh
        if cell == "lstm":
            gc = g_cs_t[t] if dc is None else g_cs_t[t] + dc
            c_prev = c0 if p is None else cs_t[p]
            dgx[t], dc = _lstm_bwd_composed(gh, gc, g_acts_t[t], acts_t[t], c_prev)
            dh = fnp.matmul(dgx[t], w_hh)
        elif cell == "gru":
            h_prev = h0 if p is None else hs_t[p]
            dgx[t], dgh_all[t], dh_z = _gru_bwd_composed(gh, g_acts_t[t], acts_t[t], h_prev)
            dh = fnp.matmul(dgh_all[t], w_hh) + dh_z
        else:
            dgx[t] = _rnn_bwd(gh, hs_t[t], cell[4:])
            dh = fnp.matmul(dgx[t], w_hh)
    if cell == "lstm":
        return _stack(*dgx), dh, dc
    return (_stack(*dgx), _stack(*dgh_all), dh) if cell == "gru" else (_stack(*dgx), dh)


_seq_bwd.defvjp_joint(_twin_vjp(_seq_bwd_composed))


@_seq.defvjp_joint
def _seq_vjp(
    g: Any,
    ans: Any,
    argnums: tuple,
    gx: Any,
    h0: Any,
    c0: Any,
    w_hh: Any,
    b_hh: Any,
    *,
    cell: str,
    reverse: bool,
) -> list:
    kw = {"cell": cell, "reverse": reverse}
    hs = ans[0]
    if cell == "lstm":
        dgx, dh0, dc0 = _seq_bwd(g[0], g[1], g[2], hs, ans[1], ans[2], h0, c0, w_hh, **kw)
        dgh = dgx
    elif cell == "gru":
        dgx, dgh, dh0 = _seq_bwd(g[0], None, g[1], hs, None, ans[1], h0, None, w_hh, **kw)
        dc0 = None
    else:
        dgx, dh0 = _seq_bwd(g[0], None, None, hs, None, None, h0, None, w_hh, **kw)
        dgh, dc0 = dgx, None
    out = []
    for i in argnums:
        if i == 0:
            out.append(dgx)
        elif i == 1:
            out.append(dh0)
        elif i == 2:
            out.append(dc0)
        elif i == 3:
            # W_hh's gradient: one GEMM over all steps, sum_t dgh_t^T h_{t-1}.
            T, B, G = dgh.shape
            first = fnp.expand_dims(h0, 0)
            if T == 1:
                prev = first
            elif reverse:
                prev = fnp.concatenate([hs[1:, ...], first], axis=0)
            else:
                prev = fnp.concatenate([first, hs[:-1, ...]], axis=0)
            d2 = fnp.reshape(dgh, (T * B, G))
            out.append(fnp.matmul(fnp.transpose(d2), fnp.reshape(prev, (T * B, h0.shape[-1]))))
        else:
            out.append(fnp.sum(dgh, axis=(0, 1)))
    return out


# ----------------------------------------------------------------------------- split / join steps


@primitive(multiple_results=True)
def _unstack(x: Any) -> tuple:
    """(T, ...) -> T arrays of shape (...); its VJP is one :func:`_stack`."""
    return tuple(x[t, ...] for t in range(x.shape[0]))


@primitive
def _stack(*xs: Any) -> Any:
    """T arrays of one shape -> (T, ...); its VJP is one :func:`_unstack`."""
    return backend.namespace(*xs).stack(xs, axis=0)


_unstack.defvjp_joint(lambda g, ans, argnums, x: [_stack(*g)])


@_stack.defvjp_joint
def _stack_vjp(g: Any, ans: Any, argnums: tuple, *xs: Any) -> list:
    parts = _unstack(g)
    return [parts[i] for i in argnums]


# ----------------------------------------------------------------------------- checks


def _shape(x: Any) -> tuple:
    return tuple(strip(x).shape)


def _cell_params(fn: str, params: Any, gates: int) -> tuple:
    """(w_ih, w_hh, b_ih, b_hh, hidden_size, input_size), checked."""
    names = {1: "RNN", 3: "GRU", 4: "LSTM"}[gates]
    if not isinstance(params, Mapping) or "weight_ih" not in params or "weight_hh" not in params:
        got = sorted(params) if isinstance(params, Mapping) else type(params).__name__
        raise TypeError(
            f"{fn}: params must be a dict with 'weight_ih' ({gates}*hidden_size, input_size), "
            f"'weight_hh' ({gates}*hidden_size, hidden_size) and optionally 'bias_ih', 'bias_hh' "
            f"(PyTorch's {names}Cell names); got {got}"
        )
    extra = sorted(k for k in params if k not in _PARAM_KEYS)
    if extra:
        raise ValueError(
            f"{fn}: unexpected params keys {extra}; expected {list(_PARAM_KEYS)}. "
            "(nn.LSTM's per-layer names like 'weight_ih_l0' belong to the module face.)"
        )
    w_ih, w_hh = params["weight_ih"], params["weight_hh"]
    b_ih, b_hh = params.get("bias_ih"), params.get("bias_hh")
    si, sh = _shape(w_ih), _shape(w_hh)
    if len(si) != 2 or si[0] % gates or si[0] == 0:
        raise ValueError(
            f"{fn}: weight_ih has shape {si}; expected ({gates}*hidden_size, input_size) "
            f"with the {names} gates stacked along the first axis"
        )
    H, I = si[0] // gates, si[1]
    if sh != (gates * H, H):
        raise ValueError(
            f"{fn}: weight_hh has shape {sh} but weight_ih {si} implies hidden_size {H}; "
            f"expected weight_hh of shape {(gates * H, H)}"
        )
    for name, b in (("bias_ih", b_ih), ("bias_hh", b_hh)):
        if b is not None and _shape(b) != (gates * H,):
            raise ValueError(f"{fn}: {name} has shape {_shape(b)}; expected {(gates * H,)}")
    dt = strip(w_ih).dtype
    for name, w in (("weight_hh", w_hh), ("bias_ih", b_ih), ("bias_hh", b_hh)):
        if w is not None and strip(w).dtype != dt:
            raise TypeError(f"{fn}: {name} has dtype {strip(w).dtype} but weight_ih has {dt}")
    return w_ih, w_hh, b_ih, b_hh, H, I


def _check_dtype(fn: str, name: str, a: Any, w: Any) -> None:
    da, dw = strip(a).dtype, strip(w).dtype
    if not backend.is_floating(strip(a)) or da != dw:
        raise TypeError(
            f"{fn}: {name} has dtype {da} but the weights have dtype {dw}; "
            f"pass {name} as {dw} (or cast the params with fn.tree.map)"
        )


def _check_step_input(fn: str, x: Any, I: int, w: Any) -> tuple[bool, int]:
    """(batched, batch) for a step's input x: (batch, input_size) or (input_size,)."""
    s = _shape(x)
    if len(s) not in (1, 2) or s[-1] != I:
        raise ValueError(
            f"{fn}: x has shape {s}; expected (batch, input_size) = (batch, {I}) or, unbatched, "
            f"({I},)"
        )
    _check_dtype(fn, "x", x, w)
    return len(s) == 2, s[0] if len(s) == 2 else 1


def _check_state(fn: str, name: str, v: Any, batched: bool, B: int, H: int, w: Any) -> None:
    want = (B, H) if batched else (H,)
    if _shape(v) != want:
        what = "(batch, hidden_size)" if batched else "(hidden_size,) for an unbatched input"
        raise ValueError(f"{fn}: {name} has shape {_shape(v)}; expected {what} = {want}")
    _check_dtype(fn, name, v, w)


def _check_nonlinearity(fn: str, nonlinearity: str) -> None:
    if nonlinearity not in _NONLINEARITIES:
        raise ValueError(f"{fn}: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")


def _batch1(v: Any, batched: bool, axis: int = 0) -> Any:
    return v if batched else fnp.expand_dims(v, axis)


def _unbatch1(v: Any, batched: bool) -> Any:
    return v if batched else fnp.squeeze(v, 0)


# ----------------------------------------------------------------------------- steps


def rnn_step(params: Mapping[str, Any], h: Any, x: Any, *, nonlinearity: str = "tanh") -> Any:
    """One Elman RNN step, like ``torch.nn.RNNCell``: ``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)``.

    Args:
        params: ``{"weight_ih": (H, I), "weight_hh": (H, H), "bias_ih": (H,), "bias_hh": (H,)}``
            (biases optional).
        h: (batch, H), or (H,) with an unbatched ``x``.
        x: (batch, I), or (I,) unbatched.
        nonlinearity: ``"tanh"`` or ``"relu"``.

    Returns:
        h': same shape as ``h``.

    See also: :func:`rnn` (a whole sequence), ``funcnn_modules.nn.RNNCell``.
    """
    fn = "rnn_step"
    _check_nonlinearity(fn, nonlinearity)
    w_ih, w_hh, b_ih, b_hh, H, I = _cell_params(fn, params, 1)
    batched, B = _check_step_input(fn, x, I, w_ih)
    _check_state(fn, "h", h, batched, B, H, w_ih)
    out = _rnn_cell(
        _batch1(x, batched), _batch1(h, batched), w_ih, w_hh, b_ih, b_hh, nonlinearity=nonlinearity
    )
    return _unbatch1(out, batched)


def lstm_step(params: Mapping[str, Any], carry: tuple[Any, Any], x: Any) -> tuple[Any, Any]:
    """One LSTM step, like ``torch.nn.LSTMCell`` (gates i, f, g, o; one fused primitive).

    ``i, f, g, o = σ, σ, tanh, σ`` of ``x W_ih^T + b_ih + h W_hh^T + b_hh`` split in four;
    ``c' = f * c + i * g``; ``h' = o * tanh(c')``.

    Args:
        params: ``{"weight_ih": (4H, I), "weight_hh": (4H, H), "bias_ih": (4H,),
            "bias_hh": (4H,)}`` (biases optional).
        carry: ``(h, c)``, each (batch, H), or (H,) with an unbatched ``x``.
        x: (batch, I), or (I,) unbatched.

    Returns:
        ``(h', c')`` with the shapes of ``(h, c)``.

    See also: :func:`lstm` (a whole sequence), ``funcnn_modules.nn.LSTMCell``.
    """
    fn = "lstm_step"
    w_ih, w_hh, b_ih, b_hh, H, I = _cell_params(fn, params, 4)
    if not isinstance(carry, (tuple, list)) or len(carry) != 2:
        raise TypeError(f"{fn}: carry must be a pair (h, c), got {type(carry).__name__}")
    h, c = carry
    batched, B = _check_step_input(fn, x, I, w_ih)
    _check_state(fn, "h", h, batched, B, H, w_ih)
    _check_state(fn, "c", c, batched, B, H, w_ih)
    h2, c2, _ = _lstm_cell(
        _batch1(x, batched), _batch1(h, batched), _batch1(c, batched), w_ih, w_hh, b_ih, b_hh
    )
    return _unbatch1(h2, batched), _unbatch1(c2, batched)


def gru_step(params: Mapping[str, Any], h: Any, x: Any) -> Any:
    """One GRU step, like ``torch.nn.GRUCell`` (gates r, z, n; one fused primitive).

    ``r, z = σ(W_ir x + b_ir + W_hr h + b_hr), σ(W_iz x + b_iz + W_hz h + b_hz)``;
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``; ``h' = (1 - z) * n + z * h``.

    Args:
        params: ``{"weight_ih": (3H, I), "weight_hh": (3H, H), "bias_ih": (3H,),
            "bias_hh": (3H,)}`` (biases optional).
        h: (batch, H), or (H,) with an unbatched ``x``.
        x: (batch, I), or (I,) unbatched.

    Returns:
        h': same shape as ``h``.

    See also: :func:`gru` (a whole sequence), ``funcnn_modules.nn.GRUCell``.
    """
    fn = "gru_step"
    w_ih, w_hh, b_ih, b_hh, H, I = _cell_params(fn, params, 3)
    batched, B = _check_step_input(fn, x, I, w_ih)
    _check_state(fn, "h", h, batched, B, H, w_ih)
    out, _ = _gru_cell(_batch1(x, batched), _batch1(h, batched), w_ih, w_hh, b_ih, b_hh)
    return _unbatch1(out, batched)


# ----------------------------------------------------------------------------- sequences


def _check_sequence(fn: str, xs: Any, I: int, w: Any) -> tuple[bool, int, int]:
    """(batched, T, B) for xs: (seq, batch, input_size) or, unbatched, (seq, input_size)."""
    s = _shape(xs)
    if len(s) not in (2, 3) or s[-1] != I:
        raise ValueError(
            f"{fn}: xs has shape {s}; expected (seq_len, batch, input_size) = (seq_len, batch, "
            f"{I}) or, unbatched, (seq_len, {I})"
        )
    if s[0] == 0:
        raise ValueError(f"{fn}: xs has shape {s}; the sequence length must be at least 1")
    _check_dtype(fn, "xs", xs, w)
    return len(s) == 3, s[0], s[1] if len(s) == 3 else 1


def _project_inputs(xs: Any, w_ih: Any, bias: Any) -> Any:
    """All steps' input projections ``xs W_ih^T + bias`` (T, B, G*H) in one GEMM."""
    T, B, I = _shape(xs)
    gx = fnp.matmul(fnp.reshape(xs, (T * B, I)), fnp.transpose(w_ih))
    if bias is not None:
        gx = gx + bias
    return fnp.reshape(gx, (T, B, _shape(w_ih)[0]))


def _sum_biases(b_ih: Any, b_hh: Any) -> Any:
    if b_ih is None or b_hh is None:
        return b_hh if b_ih is None else b_ih
    return b_ih + b_hh


def _initial(fn: str, name: str, v: Any, batched: bool, B: int, H: int, xs: Any, w: Any) -> Any:
    if v is None:
        return fnp.zeros((B, H), dtype=strip(xs).dtype, like=xs)
    _check_state(fn, name, v, batched, B, H, w)
    return _batch1(v, batched)


def _last(seq: Any, reverse: bool, batched: bool) -> Any:
    """The state after the last step that ran (position 0 when running in reverse)."""
    last = seq[0, ...] if reverse else seq[_shape(seq)[0] - 1, ...]
    return _unbatch1(last, batched)


def _outputs(hs: Any, batched: bool) -> Any:
    return hs if batched else fnp.squeeze(hs, 1)


def rnn(
    params: Mapping[str, Any],
    xs: Any,
    h0: Any = None,
    *,
    reverse: bool = False,
    nonlinearity: str = "tanh",
) -> tuple[Any, Any]:
    """One Elman RNN layer over a sequence, like a one-layer ``torch.nn.RNN`` (one direction).

    Args:
        params: as for :func:`rnn_step`.
        xs: (seq_len, batch, I), or (seq_len, I) unbatched.
        h0: the initial hidden state (batch, H) (or (H,)); zeros when None.
        reverse: run from the last step to the first (the backward direction of a
            bidirectional RNN); ``out[t]`` still belongs to position ``t``.
        nonlinearity: ``"tanh"`` or ``"relu"``.

    Returns:
        ``(out, h)``: every step's hidden state (seq_len, batch, H) and the last one (batch, H)
        (without the batch axis when unbatched).
    """
    fn = "rnn"
    _check_nonlinearity(fn, nonlinearity)
    w_ih, w_hh, b_ih, b_hh, H, I = _cell_params(fn, params, 1)
    batched, T, B = _check_sequence(fn, xs, I, w_ih)
    h = _initial(fn, "h0", h0, batched, B, H, xs, w_ih)
    gx = _project_inputs(_batch1(xs, batched, 1), w_ih, _sum_biases(b_ih, b_hh))
    (hs,) = _seq(gx, h, None, w_hh, None, cell="rnn_" + nonlinearity, reverse=reverse)
    return _outputs(hs, batched), _last(hs, reverse, batched)


def lstm(
    params: Mapping[str, Any],
    xs: Any,
    carry: tuple[Any, Any] | None = None,
    *,
    reverse: bool = False,
) -> tuple[Any, tuple[Any, Any]]:
    """One LSTM layer over a sequence, like a one-layer ``torch.nn.LSTM`` (one direction).

    The input projections of all steps are one GEMM up front; the recurrence then runs as one
    fused primitive whose backward pass gets ``weight_hh``'s gradient from one GEMM over all
    steps. Layers and directions compose in user code (or in ``funcnn_modules.nn.LSTM``).

    Args:
        params: as for :func:`lstm_step`.
        xs: (seq_len, batch, I), or (seq_len, I) unbatched.
        carry: the initial ``(h0, c0)``, each (batch, H) (or (H,)); zeros when None.
        reverse: run from the last step to the first (the backward direction of a
            bidirectional LSTM); ``out[t]`` still belongs to position ``t``.

    Returns:
        ``(out, (h, c))``: every step's hidden state (seq_len, batch, H) and the final state,
        each (batch, H) (without the batch axis when unbatched).
    """
    fn = "lstm"
    w_ih, w_hh, b_ih, b_hh, H, I = _cell_params(fn, params, 4)
    batched, T, B = _check_sequence(fn, xs, I, w_ih)
    if carry is None:
        h = c = fnp.zeros((B, H), dtype=strip(xs).dtype, like=xs)
    else:
        if not isinstance(carry, (tuple, list)) or len(carry) != 2:
            raise TypeError(
                f"{fn}: carry must be None or a pair (h0, c0), got {type(carry).__name__}"
            )
        h = _initial(fn, "h0", carry[0], batched, B, H, xs, w_ih)
        c = _initial(fn, "c0", carry[1], batched, B, H, xs, w_ih)
    gx = _project_inputs(_batch1(xs, batched, 1), w_ih, _sum_biases(b_ih, b_hh))
    hs, cs, _ = _seq(gx, h, c, w_hh, None, cell="lstm", reverse=reverse)
    return _outputs(hs, batched), (_last(hs, reverse, batched), _last(cs, reverse, batched))


def gru(
    params: Mapping[str, Any],
    xs: Any,
    h0: Any = None,
    *,
    reverse: bool = False,
) -> tuple[Any, Any]:
    """One GRU layer over a sequence, like a one-layer ``torch.nn.GRU`` (one direction).

    Args:
        params: as for :func:`gru_step`.
        xs: (seq_len, batch, I), or (seq_len, I) unbatched.
        h0: the initial hidden state (batch, H) (or (H,)); zeros when None.
        reverse: run from the last step to the first; ``out[t]`` still belongs to position ``t``.

    Returns:
        ``(out, h)``: every step's hidden state (seq_len, batch, H) and the last one (batch, H)
        (without the batch axis when unbatched).
    """
    fn = "gru"
    w_ih, w_hh, b_ih, b_hh, H, I = _cell_params(fn, params, 3)
    batched, T, B = _check_sequence(fn, xs, I, w_ih)
    h = _initial(fn, "h0", h0, batched, B, H, xs, w_ih)
    # b_hh stays in the step: the n gate multiplies (W_hn h + b_hn) by r.
    gx = _project_inputs(_batch1(xs, batched, 1), w_ih, b_ih)
    hs, _ = _seq(gx, h, None, w_hh, b_hh, cell="gru", reverse=reverse)
    return _outputs(hs, batched), _last(hs, reverse, batched)


# ----------------------------------------------------------------------------- initialisers


def _check_size(fn: str, name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ValueError(f"{fn}: {name} must be a positive int, got {v!r}")
    return v


def _init_cell(
    fn: str, key: Any, gates: int, input_size: int, hidden_size: int, bias: bool, dtype: Any
) -> dict:
    I = _check_size(fn, "input_size", input_size)
    H = _check_size(fn, "hidden_size", hidden_size)
    bound = 1.0 / H**0.5
    k = random.split(key, 4)
    shapes = {
        "weight_ih": (gates * H, I),
        "weight_hh": (gates * H, H),
        "bias_ih": (gates * H,),
        "bias_hh": (gates * H,),
    }
    names = list(shapes) if bias else ["weight_ih", "weight_hh"]
    return {
        n: random.uniform(k[i], shapes[n], dtype=dtype, minval=-bound, maxval=bound)
        for i, n in enumerate(names)
    }


def init_rnn_cell(
    key: Any, input_size: int, hidden_size: int, bias: bool = True, dtype: Any = None
) -> dict:
    """Params for :func:`rnn_step` / :func:`rnn`, initialised like ``torch.nn.RNNCell``.

    Every entry is drawn from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)).

    Returns:
        ``{"weight_ih": (H, I), "weight_hh": (H, H), "bias_ih": (H,), "bias_hh": (H,)}``
        (no biases when ``bias=False``), of ``dtype`` (default float32).
    """
    return _init_cell("init_rnn_cell", key, 1, input_size, hidden_size, bias, dtype)


def init_lstm_cell(
    key: Any, input_size: int, hidden_size: int, bias: bool = True, dtype: Any = None
) -> dict:
    """Params for :func:`lstm_step` / :func:`lstm`, initialised like ``torch.nn.LSTMCell``.

    Every entry is drawn from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)).

    Returns:
        ``{"weight_ih": (4H, I), "weight_hh": (4H, H), "bias_ih": (4H,), "bias_hh": (4H,)}``
        (no biases when ``bias=False``), of ``dtype`` (default float32).
    """
    return _init_cell("init_lstm_cell", key, 4, input_size, hidden_size, bias, dtype)


def init_gru_cell(
    key: Any, input_size: int, hidden_size: int, bias: bool = True, dtype: Any = None
) -> dict:
    """Params for :func:`gru_step` / :func:`gru`, initialised like ``torch.nn.GRUCell``.

    Every entry is drawn from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)).

    Returns:
        ``{"weight_ih": (3H, I), "weight_hh": (3H, H), "bias_ih": (3H,), "bias_hh": (3H,)}``
        (no biases when ``bias=False``), of ``dtype`` (default float32).
    """
    return _init_cell("init_gru_cell", key, 3, input_size, hidden_size, bias, dtype)
