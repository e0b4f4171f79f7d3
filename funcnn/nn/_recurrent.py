"""Recurrent layers: RNN, LSTM and GRU cells (one step) and one-layer sequence loops.

Parameters use PyTorch's names and layouts, so a ``torch.nn.LSTMCell``'s ``state_dict`` is a
valid params pytree::

    {"weight_ih": (G*H, I), "weight_hh": (G*H, H), "bias_ih": (G*H,), "bias_hh": (G*H,)}

with ``G`` = 1 (RNN), 4 (LSTM: gates i, f, g, o) or 3 (GRU: gates r, z, n). The biases are
optional (``bias=False`` in PyTorch leaves them out).

Speed: each cell is one fused primitive (gate GEMMs and pointwise math in one node) whose VJP
is hand-derived. The pointwise part of that VJP is itself a primitive (raw array math, a few
passes), whose own VJP is the VJP of its composed twin, so every order of derivative works.
The sequence functions (:func:`lstm`, :func:`gru`, :func:`rnn`) run a whole layer as one
primitive (see "whole sequences" below): per step the GEMMs and the cell math write straight
into the sequence's buffers, and the backward pass gets the weight gradients from one GEMM over
all steps. The LSTM keeps its gates gate-major, (4, B, H), so its pointwise math runs on
contiguous blocks. Residual results (activations, cell states) that get no cotangent cost
nothing in the backward pass, and a zero initial state (None) is neither stored nor
differentiated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from funcnn import backend, random
from funcnn import numpy as fnp
from funcnn.autodiff import Primitive, primitive, vjp
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


def _gate_major(xp: Any, w: Any, gates: int) -> Any:
    """A stacked weight (G*H, K) as a (G, K, H) view: ``x @ it`` (one batched GEMM) gives the
    gates' sums gate-major, (G, B, H), each gate a contiguous (B, H) block."""
    GH, K = w.shape
    return xp.permute_dims(xp.reshape(w, (gates, GH // gates, K)), (0, 2, 1))


def _as_gate_major(xp: Any, v: Any, gates: int) -> Any:
    """(B, G*H) -> a (G, B, H) view; a bias (G*H,) -> (G, 1, H)."""
    if v.ndim == 1:
        return xp.reshape(v, (gates, 1, v.shape[0] // gates))
    B, GH = v.shape
    return xp.permute_dims(xp.reshape(v, (B, gates, GH // gates)), (1, 0, 2))


def _lstm_fwd(xp: Any, gates: Any, c: Any, acts: Any, at: tuple) -> tuple:
    """(h', c') from the gate pre-activations ``gates`` (4, B, H), gate-major.

    ``acts[at]`` (5, B, H) gets [i, f, g, o, tanh(c')]. The LSTM keeps its gates gate-major
    (each gate one contiguous (B, H) block), so every pointwise op runs on contiguous memory,
    and the activations are written straight into their slot of ``acts`` (a whole sequence's
    buffer in the loop).
    """
    acts[(*at, slice(0, 2), ...)] = _sigmoid_raw(xp, gates[0:2, ...])
    acts[(*at, 2, ...)] = xp.tanh(gates[2, ...])
    acts[(*at, 3, ...)] = _sigmoid_raw(xp, gates[3, ...])
    a = acts[(*at, ...)]
    c_new = a[1, ...] * c
    c_new += a[0, ...] * a[2, ...]
    tc = xp.tanh(c_new)
    acts[(*at, 4, ...)] = tc
    tc *= a[3, ...]
    return tc, c_new


def _lstm_bwd(
    xp: Any, gh: Any, gc: Any, gacts: Any, acts: Any, c: Any, dgates: Any, at: tuple
) -> Any:
    """The cotangents of the gate pre-activations into ``dgates[at]`` (B, 4H); returns d c_prev.

    ``gh``, ``gc`` (B, H) and ``gacts`` (5, B, H) are the cotangents of (h', c', acts) (``gc``
    and ``gacts`` may be None: zero); ``acts`` (5, B, H) are the forward's activations and ``c``
    is c_prev.
    """
    H = c.shape[-1]
    i, f, g, o, tc = (acts[k, ...] for k in range(5))
    dc = gh * o
    if gacts is not None:
        dc += gacts[4, ...]
    dc *= 1.0 - tc * tc
    if gc is not None:
        dc += gc

    def put(k: int, v: Any, s: Any, tanh: bool = False) -> None:
        if gacts is not None:
            v += gacts[k, ...]
        if tanh:
            v *= 1.0 - s * s
        else:
            v *= s
            v *= 1.0 - s
        dgates[(*at, ..., slice(k * H, (k + 1) * H))] = v

    put(0, dc * g, i)
    put(1, dc * c, f)
    put(2, dc * i, g, tanh=True)
    put(3, gh * tc, o)
    dc *= f
    return dc


def _lstm_bwd_composed(gh: Any, gc: Any, gacts: Any, acts: Any, c: Any) -> tuple:
    """:func:`_lstm_bwd` in funcnn ops: its twin, and the source of its own VJP."""
    i, f, g, o, tc = (acts[k, ...] for k in range(5))
    ga = [None] * 5 if gacts is None else [gacts[k, ...] for k in range(5)]
    dc = _plus(gc, _plus(gh * o, ga[4]) * (1.0 - tc * tc))
    di = _plus(dc * g, ga[0]) * (i * (1.0 - i))
    df = _plus(dc * c, ga[1]) * (f * (1.0 - f))
    dg = _plus(dc * i, ga[2]) * (1.0 - g * g)
    do = _plus(gh * tc, ga[3]) * (o * (1.0 - o))
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
    dan = gout * (1.0 - z)
    if gacts is not None:
        dan += gacts[..., 2 * H : 3 * H]
    dan *= 1.0 - n * n
    drz = xp.concat([dan * hn, gout * (h - n)], axis=-1)
    if gacts is not None:
        drz += gacts[..., : 2 * H]
    rz = acts[..., : 2 * H]
    drz *= rz - rz * rz
    dghn = dan * r
    if gacts is not None:
        dghn += gacts[..., 3 * H :]
    return xp.concat([drz, dan], axis=-1), xp.concat([drz, dghn], axis=-1), gout * z


def _gru_bwd_composed(gout: Any, gacts: Any, acts: Any, h: Any) -> tuple:
    """:func:`_gru_bwd` in funcnn ops: its twin, and the source of its own VJP."""
    H = h.shape[-1]
    r, z, n, hn = (acts[..., k * H : (k + 1) * H] for k in range(4))
    ga = [None] * 4 if gacts is None else [gacts[..., k * H : (k + 1) * H] for k in range(4)]
    dan = _plus(gout * (1.0 - z), ga[2]) * (1.0 - n * n)
    dar = _plus(dan * hn, ga[0]) * (r * (1.0 - r))
    daz = _plus(gout * (h - n), ga[1]) * (z * (1.0 - z))
    dghn = _plus(dan * r, ga[3])
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


def _zeros_if_none(v: Any, shape: tuple, like: Any) -> Any:
    """``v``, or zeros of ``shape`` and ``like``'s dtype when ``v`` is None."""
    if v is not None:
        return v
    return fnp.zeros(tuple(shape), dtype=strip(like).dtype, like=like)


def _plus(a: Any, b: Any) -> Any:
    """a + b, where None stands for zero."""
    if b is None:
        return a
    return b if a is None else a + b


class _ResidualPrimitive(Primitive):
    """A multiple-results primitive whose last results are residuals: values its VJP reuses,
    which callers rarely differentiate (the activations, an LSTM's cell states).

    The engine gives a multiple-results rule zeros for every result that got no cotangent; here
    only the first ``dense`` results get them, the others None, so the rule skips their terms
    instead of allocating (and reading) zero arrays the size of a whole sequence's activations.
    """

    def __init__(self, fun: Any, dense: int) -> None:
        super().__init__(fun, multiple_results=True)
        self.dense = dense

    def vjp(self, g: Any, node: Any) -> Any:
        cts = tuple(
            gi
            if gi is not None or k >= self.dense
            else backend.zeros(strip(r).shape, dtype=strip(r).dtype, like=strip(r))
            for k, (gi, r) in enumerate(zip(g, node.ans))
        )
        return self.joint(cts, node.ans, node.argnums, *node.args, **node.kwargs)


def _residual_primitive(dense: int) -> Any:
    """Decorator: a :class:`_ResidualPrimitive` whose first ``dense`` results always get a
    cotangent (zeros when none arrived)."""
    return lambda fun: _ResidualPrimitive(fun, dense)


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


@_residual_primitive(dense=2)
def _lstm_cell(x: Any, h: Any, c: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any) -> tuple:
    """One fused LSTM step -> (h', c', acts) with acts = [i, f, g, o, tanh(c')] (5, B, H)."""
    xp = backend.namespace(x, h, c, w_hh)
    gates = xp.matmul(h, _gate_major(xp, w_hh, 4))
    gates += xp.matmul(x, _gate_major(xp, w_ih, 4))
    for b in (b_ih, b_hh):
        if b is not None:
            gates += _as_gate_major(xp, b, 4)
    acts = backend.zeros((5, *c.shape), dtype=gates.dtype, like=gates)
    h_new, c_new = _lstm_fwd(xp, gates, c, acts, ())
    return h_new, c_new, acts


@primitive(multiple_results=True)
def _lstm_cell_bwd(gh: Any, gc: Any, gacts: Any, acts: Any, c: Any) -> tuple:
    """The pointwise part of the LSTM step's VJP as a primitive: (d gates (B, 4H), d c)."""
    xp = backend.namespace(gh, gc, acts, c)
    dgates = backend.zeros((c.shape[0], 4 * c.shape[-1]), dtype=acts.dtype, like=acts)
    dc = _lstm_bwd(xp, gh, gc, gacts, acts, c, dgates, ())
    return dgates, dc


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


@_residual_primitive(dense=1)
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
# One primitive runs the whole recurrence of a layer in raw array math: per step the input and
# hidden GEMMs and the pointwise cell, whose results go straight into the sequence's buffers.
# Its VJP runs the backward recurrence (another primitive, :func:`_seq_bwd`), which fills the
# cotangents of every step's gate sums, dgx (T, B, G*H); the gradients of x, W_ih, W_hh and the
# biases are then ONE GEMM (or sum) each over all steps, instead of small GEMMs and full-size
# accumulations per step. The input projections are not precomputed for the whole sequence:
# per step they cost the same GEMM work, and the (T, B, G*H) buffer they would need is fresh
# memory every call (page faults), which costs more.
#
# ``cell`` is "lstm", "gru", "rnn_tanh" or "rnn_relu"; the results are (hs, cs, acts) for an
# LSTM (acts (T, 5, B, H): i, f, g, o, tanh(c) gate-major), (hs, acts) for a GRU (acts
# (T, B, 4H): r, z, n, W_hn h + b_hn) and (hs,) for an RNN. ``b_x`` is the input-side bias
# (b_ih + b_hh for an LSTM or RNN, b_ih for a GRU) and ``b_hh`` the GRU's hidden-side bias.


def _order(T: int, reverse: bool) -> list:
    """(t, previous t or None) in the order the steps run."""
    if reverse:
        return [(t, t + 1 if t < T - 1 else None) for t in range(T - 1, -1, -1)]
    return [(t, t - 1 if t > 0 else None) for t in range(T)]


@_residual_primitive(dense=1)
def _seq(
    xs: Any,
    h0: Any,
    c0: Any,
    w_ih: Any,
    w_hh: Any,
    b_x: Any,
    b_hh: Any,
    *,
    cell: str,
    reverse: bool,
) -> tuple:
    xp = backend.namespace(xs, w_hh)
    T, B = xs.shape[0], xs.shape[1]
    H = w_hh.shape[-1]
    hs = backend.zeros((T, B, H), dtype=xs.dtype, like=xs)
    acts = cs = None
    if cell == "lstm":
        acts = backend.zeros((T, 5, B, H), dtype=xs.dtype, like=xs)
        cs = backend.zeros((T, B, H), dtype=xs.dtype, like=xs)
        wi, wh = _gate_major(xp, w_ih, 4), _gate_major(xp, w_hh, 4)
        b4 = None if b_x is None else _as_gate_major(xp, b_x, 4)
    else:
        wi, wh = _t(xp, w_ih), _t(xp, w_hh)
        if cell == "gru":
            acts = backend.zeros((T, B, 4 * H), dtype=xs.dtype, like=xs)
    h = _zeros_if_none(h0, (B, H), xs)
    c = _zeros_if_none(c0, (B, H), xs) if cell == "lstm" else None
    for t, _ in _order(T, reverse):
        gi = xp.matmul(xs[t, ...], wi)
        gh = xp.matmul(h, wh)
        if cell == "lstm":
            gh += gi
            if b4 is not None:
                gh += b4
            h, c = _lstm_fwd(xp, gh, c, acts, (t,))
            cs[t, ...] = c
        elif cell == "gru":
            if b_hh is not None:
                gh += b_hh
            if b_x is not None:
                gi += b_x
            h, acts[t, ...] = _gru_fwd(xp, gi, gh, h)
        else:
            gh += gi
            if b_x is not None:
                gh += b_x
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
    """The backward recurrence: (d gx, d gh [GRU only], d h0, d c0 [LSTM only]).

    ``g_cs`` and ``g_acts`` may be None (zero), and so may ``h0`` and ``c0``.
    """
    xp = backend.namespace(g_hs, hs, w_hh)
    T = hs.shape[0]
    h0 = _zeros_if_none(h0, hs.shape[1:], hs)
    c0 = _zeros_if_none(c0, hs.shape[1:], hs) if cell == "lstm" else None
    dgx = backend.zeros(tuple(hs.shape[:2]) + (w_hh.shape[0],), dtype=hs.dtype, like=hs)
    dgh_all = backend.zeros(tuple(dgx.shape), dtype=hs.dtype, like=hs) if cell == "gru" else None
    dh = dc = None
    for t, p in reversed(_order(T, reverse)):
        gh = g_hs[t, ...] if dh is None else g_hs[t, ...] + dh
        ga = None if g_acts is None else g_acts[t, ...]
        if cell == "lstm":
            gc = dc if g_cs is None else _plus(g_cs[t, ...], dc)
            c_prev = c0 if p is None else cs[p, ...]
            dc = _lstm_bwd(xp, gh, gc, ga, acts[t, ...], c_prev, dgx, (t,))
            dh = xp.matmul(dgx[t, ...], w_hh)
        elif cell == "gru":
            dgi, dgh, dh_z = _gru_bwd(xp, gh, ga, acts[t, ...], h0 if p is None else hs[p, ...])
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
    none = [None] * T
    h0 = _zeros_if_none(h0, hs.shape[1:], hs)
    c0 = _zeros_if_none(c0, hs.shape[1:], hs) if cell == "lstm" else None
    if cell != "rnn_tanh" and cell != "rnn_relu":
        g_acts_t = none if g_acts is None else _unstack(g_acts)
        acts_t = _unstack(acts)
    if cell == "lstm":
        g_cs_t = none if g_cs is None else _unstack(g_cs)
        cs_t = _unstack(cs)
    dgx: list = [None] * T
    dgh_all: list = [None] * T
    dh = dc = None
    for t, p in reversed(_order(T, reverse)):
        gh = g_hs_t[t] if dh is None else g_hs_t[t] + dh
        if cell == "lstm":
            gc = _plus(g_cs_t[t], dc)
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


def _w_hh_grad(dgh: Any, hs: Any, h0: Any, reverse: bool) -> Any:
    """sum_t dgh_t^T h_{t-1}: W_hh's gradient as one GEMM over steps 2..T (on views of ``hs``,
    no shifted copy of the hidden states) plus the first step's (none when ``h0`` is None:
    zero)."""
    T, B, G = dgh.shape
    H = hs.shape[-1]
    out = None
    if T > 1:
        d_rest = dgh[: T - 1, ...] if reverse else dgh[1:, ...]
        h_prev = hs[1:, ...] if reverse else hs[: T - 1, ...]
        d2 = fnp.reshape(d_rest, ((T - 1) * B, G))
        out = fnp.matmul(fnp.transpose(d2), fnp.reshape(h_prev, ((T - 1) * B, H)))
    if h0 is not None:
        first = dgh[T - 1, ...] if reverse else dgh[0, ...]
        out = _plus(out, fnp.matmul(fnp.transpose(first), h0))
    if out is None:  # one step from a zero state
        out = fnp.zeros((G, H), dtype=strip(hs).dtype, like=hs)
    return out


@_seq.defvjp_joint
def _seq_vjp(
    g: Any,
    ans: Any,
    argnums: tuple,
    xs: Any,
    h0: Any,
    c0: Any,
    w_ih: Any,
    w_hh: Any,
    b_x: Any,
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
    T, B, I = xs.shape
    GH = w_ih.shape[0]
    dgx2 = fnp.reshape(dgx, (T * B, GH))
    out = []
    for i in argnums:
        if i == 0:
            out.append(fnp.reshape(fnp.matmul(dgx2, w_ih), (T, B, I)))
        elif i == 1:
            out.append(dh0)
        elif i == 2:
            out.append(dc0)
        elif i == 3:
            out.append(fnp.matmul(fnp.transpose(dgx2), fnp.reshape(xs, (T * B, I))))
        elif i == 4:
            out.append(_w_hh_grad(dgh, hs, h0, reverse))
        elif i == 5:
            out.append(fnp.sum(dgx, axis=(0, 1)))
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
    # two backends: say so (before comparing dtypes, which differ in name only across them)
    backend.namespace(*(strip(w) for w in (w_ih, w_hh, b_ih, b_hh) if w is not None))
    dt = strip(w_ih).dtype
    for name, w in (("weight_hh", w_hh), ("bias_ih", b_ih), ("bias_hh", b_hh)):
        if w is not None and strip(w).dtype != dt:
            raise TypeError(f"{fn}: {name} has dtype {strip(w).dtype} but weight_ih has {dt}")
    return w_ih, w_hh, b_ih, b_hh, H, I


def _check_dtype(fn: str, name: str, a: Any, w: Any) -> None:
    backend.namespace(strip(a), strip(w))  # two backends: say so, not "two dtypes"
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


def _sum_biases(b_ih: Any, b_hh: Any) -> Any:
    if b_ih is None or b_hh is None:
        return b_hh if b_ih is None else b_ih
    return b_ih + b_hh


def _initial(fn: str, name: str, v: Any, batched: bool, B: int, H: int, xs: Any, w: Any) -> Any:
    """The initial state, checked, with a batch axis; None (zeros) stays None: the recurrence
    makes the zeros and skips their gradient terms."""
    if v is None:
        return None
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
    b = _sum_biases(b_ih, b_hh)
    cell = "rnn_" + nonlinearity
    (hs,) = _seq(_batch1(xs, batched, 1), h, None, w_ih, w_hh, b, None, cell=cell, reverse=reverse)
    return _outputs(hs, batched), _last(hs, reverse, batched)


def lstm(
    params: Mapping[str, Any],
    xs: Any,
    carry: tuple[Any, Any] | None = None,
    *,
    reverse: bool = False,
) -> tuple[Any, tuple[Any, Any]]:
    """One LSTM layer over a sequence, like a one-layer ``torch.nn.LSTM`` (one direction).

    The whole recurrence runs as one fused primitive (per step the input and hidden GEMMs and
    the cell math), whose backward pass gets the weights' gradients from one GEMM each over all
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
        h = c = None  # zeros, made inside the recurrence
    else:
        if not isinstance(carry, (tuple, list)) or len(carry) != 2:
            raise TypeError(
                f"{fn}: carry must be None or a pair (h0, c0), got {type(carry).__name__}"
            )
        h = _initial(fn, "h0", carry[0], batched, B, H, xs, w_ih)
        c = _initial(fn, "c0", carry[1], batched, B, H, xs, w_ih)
    b = _sum_biases(b_ih, b_hh)
    hs, cs, _ = _seq(
        _batch1(xs, batched, 1), h, c, w_ih, w_hh, b, None, cell="lstm", reverse=reverse
    )
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
    # b_hh stays apart from b_ih: the n gate multiplies (W_hn h + b_hn) by r.
    xs = _batch1(xs, batched, 1)
    hs, _ = _seq(xs, h, None, w_ih, w_hh, b_ih, b_hh, cell="gru", reverse=reverse)
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
