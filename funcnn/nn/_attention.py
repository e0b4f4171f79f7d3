"""Attention: scaled dot-product attention (one fused primitive) and multi-head attention.

The core ``softmax(Q K^T * scale + bias) V`` is one primitive with a hand-derived VJP written
in funcnn ops (so second derivatives work). It also returns the attention weights, which its
VJP reuses and :func:`multi_head_attention` hands back when asked (``need_weights``).

Mask conventions follow PyTorch, which uses two opposite ones:

* :func:`scaled_dot_product_attention` (like ``F.scaled_dot_product_attention``): a boolean
  ``mask`` is True where a query may attend to a key; a float mask is added to the scores.
* :func:`multi_head_attention` (like ``nn.MultiheadAttention``): a boolean ``attn_mask`` or
  ``key_padding_mask`` is True where attention is NOT allowed; float masks are added.

A query whose keys are all masked out gets zero weights and a zero output (and zero
gradients), as ``F.scaled_dot_product_attention`` gives, rather than NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from funcnn import backend, random
from funcnn import numpy as fnp
from funcnn.autodiff import primitive
from funcnn.autodiff._core import strip
from funcnn.nn._dropout import dropout_mask
from funcnn.nn._linear import linear
from funcnn.nn._recurrent import _unstack
from funcnn.numpy._helpers import unbroadcast

__all__ = [
    "scaled_dot_product_attention",
    "multi_head_attention",
    "init_multi_head_attention",
]

_NEG_INF = float("-inf")


def _shape(x: Any) -> tuple:
    return tuple(strip(x).shape)


def _mT_raw(xp: Any, a: Any) -> Any:
    n = a.ndim
    return xp.permute_dims(a, (*range(n - 2), n - 1, n - 2))


def _mT(a: Any) -> Any:
    return fnp.swapaxes(a, -1, -2)


# ----------------------------------------------------------------------------- the fused core


@primitive(multiple_results=True)
def _attention(q: Any, k: Any, v: Any, bias: Any, drop: Any, *, scale: float) -> tuple:
    """(softmax(q k^T * scale + bias) * drop) v -> (out (..., L, Ev), weights (..., L, S)).

    ``bias`` (additive, -inf where masked) and ``drop`` (dropout multipliers) may be None.
    The weights returned are before dropout; rows with every key masked are all zero.
    """
    xp = backend.namespace(q, k, v)
    s = xp.matmul(q, _mT_raw(xp, k))
    s *= scale
    if bias is not None:
        if xp.broadcast_shapes(tuple(s.shape), tuple(bias.shape)) == tuple(s.shape):
            s += bias
        else:
            s = s + bias
    m = xp.max(s, axis=-1, keepdims=True)
    s -= xp.where(xp.isfinite(m), m, 0.0)
    p = xp.exp(s)
    d = xp.sum(p, axis=-1, keepdims=True)
    p /= xp.where(d == 0, 1.0, d)
    return xp.matmul(p if drop is None else p * drop, v), p


@_attention.defvjp_joint
def _attention_vjp(
    g: Any, ans: Any, argnums: tuple, q: Any, k: Any, v: Any, bias: Any, drop: Any, *, scale: float
) -> list:
    go, gp = g
    p = ans[1]
    grads: dict = {}
    if 0 in argnums or 1 in argnums or 3 in argnums:
        dp = fnp.matmul(go, _mT(v))
        if drop is not None:
            dp = dp * drop
        dp = dp + gp
        ds = p * (dp - fnp.sum(dp * p, axis=-1, keepdims=True))  # softmax's VJP
        if 3 in argnums:
            grads[3] = unbroadcast(ds, bias)
        if 0 in argnums or 1 in argnums:
            ds = ds * scale
            if 0 in argnums:
                grads[0] = unbroadcast(fnp.matmul(ds, k), q)
            if 1 in argnums:
                grads[1] = unbroadcast(fnp.matmul(_mT(ds), q), k)
    if 2 in argnums:
        pd = p if drop is None else p * drop
        grads[2] = unbroadcast(fnp.matmul(_mT(pd), go), v)
    return [grads[i] for i in argnums]


# ----------------------------------------------------------------------------- mask helpers


def _is_bool(x: Any) -> bool:
    return backend.is_integer(strip(x)) and "bool" in str(strip(x).dtype)


def _check_mask_dtype(fn: str, name: str, mask: Any, like: Any) -> None:
    """A mask is a boolean or floating array on the backend of ``like`` (the queries)."""
    raw = strip(mask)
    if not backend.is_array(raw) or not (_is_bool(raw) or backend.is_floating(raw)):
        what = getattr(raw, "dtype", type(raw).__name__)
        raise TypeError(f"{fn}: {name} must be a boolean or floating array, got {what}")
    backend.namespace(raw, strip(like))  # a clear error when the backends differ


def _additive(mask: Any, allowed_when: bool, dtype: Any) -> Any:
    """A boolean mask as 0 / -inf in ``dtype`` (``allowed_when`` marks the allowed entries);
    a float mask as it is (it may be traced: its gradient flows)."""
    if not _is_bool(mask):
        return mask
    raw = strip(mask)
    xp = backend.namespace(raw)
    zero = backend.zeros((), dtype=dtype, like=raw)
    ninf = backend.full((), _NEG_INF, dtype=dtype, like=raw)
    return xp.where(raw, zero, ninf) if allowed_when else xp.where(raw, ninf, zero)


def _causal(L: int, S: int, dtype: Any, like: Any) -> Any:
    """(L, S) additive mask: 0 where key j <= query i, -inf above the diagonal (top-left)."""
    raw = strip(like)
    xp = backend.namespace(raw)
    i = xp.reshape(backend.arange(L, like=raw), (L, 1))
    j = xp.reshape(backend.arange(S, like=raw), (1, S))
    return _additive(j <= i, True, dtype)


def _check_dropout(fn: str, p: Any, key: Any, key_name: str) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{fn}: dropout_p must be a number in [0, 1], got {p!r}")
    if p > 0 and key is None:
        raise ValueError(
            f"{fn}: dropout_p={p} needs a random key: pass {key_name}=fn.random.key(...) "
            "(or dropout_p=0.0 / training=False for no dropout)"
        )
    return float(p)


# ----------------------------------------------------------------------------- SDPA


def scaled_dot_product_attention(
    q: Any,
    k: Any,
    v: Any,
    mask: Any = None,
    *,
    is_causal: bool = False,
    dropout_p: float = 0.0,
    key: Any = None,
    scale: float | None = None,
) -> Any:
    """``softmax(q k^T * scale + mask) v``, like ``torch.nn.functional.scaled_dot_product_attention``.

    Args:
        q: queries (..., L, E).
        k: keys (..., S, E).
        v: values (..., S, Ev). The batch axes (...) of q, k and v broadcast together.
        mask: None; a boolean array, True where the query may attend to the key; or a float
            array added to the scores (its gradient flows). Broadcasts to (..., L, S).
        is_causal: mask out keys after the query (j > i), top-left aligned like PyTorch;
            not together with ``mask``.
        dropout_p: dropout on the attention weights (always applied when > 0, like PyTorch's
            function; pass 0.0 in evaluation).
        key: the random key for dropout (required when ``dropout_p > 0``).
        scale: the score scale; ``1 / sqrt(E)`` when None.

    Returns:
        (..., L, Ev). Queries with every key masked out get zeros.

    See also: :func:`multi_head_attention`.
    """
    fn = "scaled_dot_product_attention"
    qs, ks, vs = _shape(q), _shape(k), _shape(v)
    if len(qs) < 2 or len(ks) < 2 or len(vs) < 2:
        raise ValueError(
            f"{fn}: q, k and v need at least 2 dimensions (..., L, E), (..., S, E), (..., S, Ev); "
            f"got shapes {qs}, {ks}, {vs}"
        )
    if qs[-1] != ks[-1] or ks[-2] != vs[-2]:
        raise ValueError(
            f"{fn}: q {qs}, k {ks} and v {vs} do not fit: need q (..., L, E), k (..., S, E), "
            "v (..., S, Ev) with the same E for q and k and the same S for k and v"
        )
    xp = backend.namespace(strip(q), strip(k), strip(v))  # two backends: named before dtypes
    dts = {strip(a).dtype for a in (q, k, v)}
    if len(dts) != 1 or not backend.is_floating(strip(q)):
        raise TypeError(
            f"{fn}: q, k and v must share one floating dtype, got {sorted(map(str, dts))}"
        )
    try:
        batch = xp.broadcast_shapes(qs[:-2], ks[:-2], vs[:-2])
    except ValueError:
        raise ValueError(
            f"{fn}: the batch axes of q {qs}, k {ks} and v {vs} do not broadcast together"
        ) from None
    L, S, E = qs[-2], ks[-2], qs[-1]
    dt = strip(q).dtype
    target = (*batch, L, S)
    bias = None
    if mask is not None:
        if is_causal:
            raise ValueError(f"{fn}: pass either mask or is_causal=True, not both (like PyTorch)")
        _check_mask_dtype(fn, "mask", mask, q)
        ms = _shape(mask)
        try:
            ok = xp.broadcast_shapes(ms, target) == target
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"{fn}: mask has shape {ms}, which does not broadcast to (..., L, S) = {target}"
            )
        if backend.is_floating(strip(mask)) and strip(mask).dtype != dt:
            raise TypeError(f"{fn}: a float mask must have q's dtype {dt}, got {strip(mask).dtype}")
        bias = _additive(mask, True, dt)
    elif is_causal:
        bias = _causal(L, S, dt, q)
    p = _check_dropout(fn, dropout_p, key, "key")
    drop = dropout_mask(key, target, p, dtype=dt, like=q) if p > 0 else None
    s = 1.0 / math.sqrt(E) if scale is None else float(scale)
    out, _ = _attention(q, k, v, bias, drop, scale=s)
    return out


# ----------------------------------------------------------------------------- multi-head attention


def _proj(x: Any, w: Any, b: Any) -> Any:
    """``x W^T + b`` over the last axis (the fused :func:`funcnn.nn.linear`)."""
    return linear({"weight": w, "bias": b}, x)


def _mha_params(fn: str, params: Any, E: int) -> dict:
    """The projection weights, checked: {q_w, k_w, v_w or packed, biases, out_w, out_b, ...}."""
    if not isinstance(params, Mapping) or "out_proj" not in params:
        got = sorted(params) if isinstance(params, Mapping) else type(params).__name__
        raise TypeError(
            f"{fn}: params must be a dict like nn.MultiheadAttention's state_dict: "
            "{'in_proj_weight': (3E, E), 'in_proj_bias': (3E,), 'out_proj': {'weight': (E, E), "
            f"'bias': (E,)}}}} (or q/k/v_proj_weight when kdim/vdim differ); got {got}"
        )
    known = {
        "in_proj_weight",
        "in_proj_bias",
        "q_proj_weight",
        "k_proj_weight",
        "v_proj_weight",
        "bias_k",
        "bias_v",
        "out_proj",
    }
    extra = sorted(set(params) - known)
    if extra:
        raise ValueError(f"{fn}: unexpected params keys {extra}; expected some of {sorted(known)}")
    out: dict = {"packed": "in_proj_weight" in params}
    if out["packed"]:
        w = params["in_proj_weight"]
        if _shape(w) != (3 * E, E):
            raise ValueError(
                f"{fn}: in_proj_weight has shape {_shape(w)}; expected (3 * embed_dim, embed_dim) "
                f"= {(3 * E, E)} for a query of embed_dim {E}"
            )
        out["w"] = w
    else:
        missing = [
            n for n in ("q_proj_weight", "k_proj_weight", "v_proj_weight") if n not in params
        ]
        if missing:
            raise TypeError(
                f"{fn}: params need 'in_proj_weight' or all of q/k/v_proj_weight; missing {missing}"
            )
        if _shape(params["q_proj_weight"]) != (E, E):
            raise ValueError(
                f"{fn}: q_proj_weight has shape {_shape(params['q_proj_weight'])}; expected {(E, E)}"
            )
        for n in ("k_proj_weight", "v_proj_weight"):
            s = _shape(params[n])
            if len(s) != 2 or s[0] != E:
                raise ValueError(
                    f"{fn}: {n} has shape {s}; expected (embed_dim, kdim or vdim) = ({E}, ...)"
                )
        out["ws"] = (params["q_proj_weight"], params["k_proj_weight"], params["v_proj_weight"])
    b = params.get("in_proj_bias")
    if b is not None and _shape(b) != (3 * E,):
        raise ValueError(f"{fn}: in_proj_bias has shape {_shape(b)}; expected {(3 * E,)}")
    out["b"] = b
    op = params["out_proj"]
    if not isinstance(op, Mapping) or "weight" not in op:
        raise TypeError(
            f"{fn}: params['out_proj'] must be a dict with 'weight' (E, E) and 'bias' (E,)"
        )
    if _shape(op["weight"]) != (E, E):
        raise ValueError(
            f"{fn}: out_proj.weight has shape {_shape(op['weight'])}; expected {(E, E)}"
        )
    if op.get("bias") is not None and _shape(op["bias"]) != (E,):
        raise ValueError(f"{fn}: out_proj.bias has shape {_shape(op['bias'])}; expected {(E,)}")
    out["out_w"], out["out_b"] = op["weight"], op.get("bias")
    bk, bv = params.get("bias_k"), params.get("bias_v")
    if (bk is None) != (bv is None):
        raise ValueError(f"{fn}: bias_k and bias_v come together (add_bias_kv=True); got only one")
    for n, t in (("bias_k", bk), ("bias_v", bv)):
        if t is not None and _shape(t) != (1, 1, E):
            raise ValueError(f"{fn}: {n} has shape {_shape(t)}; expected {(1, 1, E)}")
    out["bias_kv"] = None if bk is None else (bk, bv)
    return out


def _split_heads(x: Any, H: int, batch_first: bool) -> Any:
    """(S, N, E) or (N, S, E) -> (N, H, S, E // H)."""
    a, b, E = _shape(x)
    x = fnp.reshape(x, (a, b, H, E // H))
    return fnp.transpose(x, (0, 2, 1, 3) if batch_first else (1, 2, 0, 3))


def _check_mha_mask(fn: str, name: str, mask: Any, ok: bool, expected: str, like: Any) -> None:
    _check_mask_dtype(fn, name, mask, like)
    dt = strip(like).dtype
    if not ok:
        raise ValueError(f"{fn}: {name} has shape {_shape(mask)}; expected {expected}")
    if backend.is_floating(strip(mask)) and strip(mask).dtype != dt:
        raise TypeError(
            f"{fn}: a float {name} must have the query's dtype {dt}, got {strip(mask).dtype}"
        )


def _pad_key_axis(mask: Any) -> Any:
    """Append one allowed (0) column for an added key (bias_k / zero attention)."""
    return fnp.pad(mask, [(0, 0)] * (len(_shape(mask)) - 1) + [(0, 1)])


def multi_head_attention(
    params: Mapping[str, Any],
    query: Any,
    key: Any,
    value: Any,
    *,
    num_heads: int,
    key_padding_mask: Any = None,
    attn_mask: Any = None,
    need_weights: bool = False,
    average_attn_weights: bool = True,
    batch_first: bool = False,
    is_causal: bool = False,
    add_zero_attn: bool = False,
    dropout_p: float = 0.0,
    dropout_key: Any = None,
    training: bool = True,
) -> tuple[Any, Any]:
    """Multi-head attention with PyTorch's parameters, shapes and masks (``nn.MultiheadAttention``).

    Args:
        params: ``{"in_proj_weight": (3E, E), "in_proj_bias": (3E,), "out_proj": {"weight":
            (E, E), "bias": (E,)}}``; with different key/value sizes, ``q_proj_weight (E, E)``,
            ``k_proj_weight (E, kdim)``, ``v_proj_weight (E, vdim)`` instead of
            ``in_proj_weight``; optional ``bias_k``, ``bias_v`` (1, 1, E) (``add_bias_kv``).
            Biases are optional (``bias=False``).
        query: (L, N, E), or (N, L, E) with ``batch_first``, or unbatched (L, E).
        key: (S, N, kdim) (or (N, S, kdim), or (S, kdim)).
        value: (S, N, vdim) (or (N, S, vdim), or (S, vdim)).
        num_heads: number of heads; must divide E.
        key_padding_mask: (N, S) (unbatched (S,)): boolean, True = ignore that key; or float,
            added to the scores.
        attn_mask: (L, S) or (N * num_heads, L, S) (unbatched: (num_heads, L, S)): boolean,
            True = NOT allowed to attend; or float, added to the scores.
        need_weights: also return the attention weights.
        average_attn_weights: average the returned weights over the heads.
        batch_first: inputs and output are (N, L, E).
        is_causal: with ``attn_mask``, a hint that it is causal (as in PyTorch: the mask is
            used as given); without one, applies the causal mask (PyTorch would raise).
        add_zero_attn: append a zero key and value (PyTorch's ``add_zero_attn``).
        dropout_p: dropout on the attention weights when ``training``.
        dropout_key: the random key for dropout (required when training with dropout_p > 0).
        training: dropout only applies when True.

    Returns:
        ``(out, weights)``: out (L, N, E) (or (N, L, E), or (L, E)); weights (N, L, S)
        averaged, or (N, num_heads, L, S) (without N when unbatched), or None unless
        ``need_weights``. With dropout the weights returned are the dropped ones, like PyTorch.

    See also: :func:`scaled_dot_product_attention`, ``funcnn_modules.nn.MultiheadAttention``.
    """
    fn = "multi_head_attention"
    qs, ks, vs = _shape(query), _shape(key), _shape(value)
    if len(qs) not in (2, 3):
        raise ValueError(
            f"{fn}: query should be (L, N, E) ((N, L, E) with batch_first) or unbatched (L, E), "
            f"got shape {qs}"
        )
    if len(ks) != len(qs) or len(vs) != len(qs):
        raise ValueError(
            f"{fn}: query, key and value must all be batched (3-D) or all unbatched (2-D); "
            f"got shapes {qs}, {ks}, {vs}"
        )
    if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads <= 0:
        raise ValueError(f"{fn}: num_heads must be a positive int, got {num_heads!r}")
    batched = len(qs) == 3
    if not batched:
        query, key, value = (fnp.expand_dims(t, 1) for t in (query, key, value))
        batch_first = False
        if key_padding_mask is not None:
            if _shape(key_padding_mask) != (ks[0],):
                raise ValueError(
                    f"{fn}: key_padding_mask has shape {_shape(key_padding_mask)}; expected "
                    f"(S,) = {(ks[0],)} for an unbatched key of shape {ks}"
                )
            key_padding_mask = fnp.expand_dims(key_padding_mask, 0)
    q3, k3, v3 = _shape(query), _shape(key), _shape(value)
    if batch_first:
        N, L, E = q3
        S = k3[1]
    else:
        L, N, E = q3
        S = k3[0]
    H = num_heads
    if E % H:
        raise ValueError(f"{fn}: embed_dim {E} is not divisible by num_heads {H}")
    if k3[:2] != v3[:2] or (k3[1] if not batch_first else k3[0]) != N:
        raise ValueError(
            f"{fn}: key {ks} and value {vs} must share their sequence and batch axes, and the batch "
            f"size must match the query's {qs} (batch_first={batch_first})"
        )
    backend.namespace(strip(query), strip(key), strip(value))  # two backends: named first
    dt = strip(query).dtype
    for name, t in (("key", key), ("value", value)):
        if strip(t).dtype != dt:
            raise TypeError(f"{fn}: {name} has dtype {strip(t).dtype} but query has {dt}")
    p = _mha_params(fn, params, E)
    hd = E // H

    # input projections, split into heads (N, H, len, hd)
    b = p["b"]
    bq, bk, bv = (None, None, None) if b is None else (b[:E], b[E : 2 * E], b[2 * E :])
    if p["packed"] and query is key and key is value and p["bias_kv"] is None:
        qkv = _proj(query, p["w"], b)  # one GEMM for the three projections
        qkv = fnp.reshape(qkv, (q3[0], q3[1], 3, H, hd))
        qkv = fnp.transpose(qkv, (2, 0, 3, 1, 4) if batch_first else (2, 1, 3, 0, 4))
        q, k, v = _unstack(qkv)
    else:
        if p["packed"]:
            w = p["w"]
            wq, wk, wv = w[:E, ...], w[E : 2 * E, ...], w[2 * E :, ...]
        else:
            wq, wk, wv = p["ws"]
            if _shape(wk)[1] != k3[-1] or _shape(wv)[1] != v3[-1]:
                raise ValueError(
                    f"{fn}: key {ks} / value {vs} feature sizes do not match k_proj_weight "
                    f"{_shape(wk)} / v_proj_weight {_shape(wv)}"
                )
        if p["packed"] and (k3[-1] != E or v3[-1] != E):
            raise ValueError(
                f"{fn}: key {ks} and value {vs} must have embed_dim {E} features with a packed "
                "in_proj_weight (use q/k/v_proj_weight for other kdim/vdim)"
            )
        kp, vp = _proj(key, wk, bk), _proj(value, wv, bv)
        if p["bias_kv"] is not None:
            seq_axis = 1 if batch_first else 0
            shape1 = (N, 1, E) if batch_first else (1, N, E)
            bias_k, bias_v = p["bias_kv"]
            kp = fnp.concatenate(
                [kp, fnp.broadcast_to(fnp.reshape(bias_k, (1, 1, E)), shape1)], seq_axis
            )
            vp = fnp.concatenate(
                [vp, fnp.broadcast_to(fnp.reshape(bias_v, (1, 1, E)), shape1)], seq_axis
            )
        q = _split_heads(_proj(query, wq, bq), H, batch_first)
        k, v = _split_heads(kp, H, batch_first), _split_heads(vp, H, batch_first)
    if add_zero_attn:
        zeros = fnp.zeros((N, H, 1, hd), dtype=dt, like=query)
        k = fnp.concatenate([k, zeros], axis=2)
        v = fnp.concatenate([v, zeros], axis=2)

    # masks -> one additive bias broadcasting to (N, H, L, S + extra)
    extra = int(p["bias_kv"] is not None) + int(add_zero_attn)
    bias = None
    if attn_mask is not None:
        ms = _shape(attn_mask)
        want3 = (N * H if batched else H, L, S)
        lead = "N * num_heads" if batched else "num_heads"
        _check_mha_mask(
            fn,
            "attn_mask",
            attn_mask,
            ms in ((L, S), want3),
            f"(L, S) = {(L, S)} or ({lead}, L, S) = {want3}",
            query,
        )
        bias = fnp.reshape(_additive(attn_mask, False, dt), (N, H, L, S) if len(ms) == 3 else ms)
    elif is_causal:
        bias = _causal(L, S, dt, query)
    if bias is not None:
        for _ in range(extra):
            bias = _pad_key_axis(bias)
    if key_padding_mask is not None:
        _check_mha_mask(
            fn,
            "key_padding_mask",
            key_padding_mask,
            _shape(key_padding_mask) == (N, S),
            f"(N, S) = {(N, S)}",
            query,
        )
        kpm = _additive(key_padding_mask, False, dt)
        for _ in range(extra):
            kpm = _pad_key_axis(kpm)
        kpm = fnp.reshape(kpm, (N, 1, 1, S + extra))
        bias = kpm if bias is None else bias + kpm

    # dropout, the fused core, the output projection
    rate = _check_dropout(fn, dropout_p, dropout_key, "dropout_key") if training else 0.0
    drop = (
        dropout_mask(dropout_key, (N, H, L, S + extra), rate, dtype=dt, like=query)
        if rate > 0
        else None
    )
    out, weights = _attention(q, k, v, bias, drop, scale=1.0 / math.sqrt(hd))
    out = fnp.transpose(out, (0, 2, 1, 3) if batch_first else (2, 0, 1, 3))
    out = _proj(fnp.reshape(out, (q3[0], q3[1], E)), p["out_w"], p["out_b"])
    if not batched:
        out = fnp.squeeze(out, 1)
    if not need_weights:
        return out, None
    if drop is not None:
        weights = weights * drop
    if average_attn_weights:
        weights = fnp.mean(weights, axis=1)
    if not batched:
        weights = fnp.squeeze(weights, 0)
    return out, weights


# ----------------------------------------------------------------------------- initialiser


def init_multi_head_attention(
    key: Any,
    embed_dim: int,
    num_heads: int,
    bias: bool = True,
    dtype: Any = None,
    *,
    kdim: int | None = None,
    vdim: int | None = None,
    add_bias_kv: bool = False,
) -> dict:
    """Params for :func:`multi_head_attention`, initialised like ``nn.MultiheadAttention``.

    ``in_proj_weight`` (or q/k/v_proj_weight when kdim/vdim differ from embed_dim) is
    Xavier-uniform, ``in_proj_bias`` and ``out_proj.bias`` are zero, ``out_proj.weight`` is
    U(-1/sqrt(E), 1/sqrt(E)) (Linear's default), and ``bias_k``/``bias_v`` are Xavier-normal.

    Returns:
        ``{"in_proj_weight": (3E, E), "in_proj_bias": (3E,), "out_proj": {"weight": (E, E),
        "bias": (E,)}}`` (no biases when ``bias=False``), of ``dtype`` (default float32).
    """
    fn = "init_multi_head_attention"
    for name, val in (("embed_dim", embed_dim), ("num_heads", num_heads)):
        if isinstance(val, bool) or not isinstance(val, int) or val <= 0:
            raise ValueError(f"{fn}: {name} must be a positive int, got {val!r}")
    E = embed_dim
    if E % num_heads:
        raise ValueError(f"{fn}: embed_dim {E} is not divisible by num_heads {num_heads}")
    kdim = E if kdim is None else kdim
    vdim = E if vdim is None else vdim
    keys = random.split(key, 6)

    def xavier(k: Any, shape: tuple) -> Any:
        fan_out, fan_in = shape
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        return random.uniform(k, shape, dtype=dtype, minval=-bound, maxval=bound)

    params: dict = {}
    if kdim == E and vdim == E:
        params["in_proj_weight"] = xavier(keys[0], (3 * E, E))
    else:
        params["q_proj_weight"] = xavier(keys[0], (E, E))
        params["k_proj_weight"] = xavier(keys[1], (E, kdim))
        params["v_proj_weight"] = xavier(keys[2], (E, vdim))
    bound = 1.0 / math.sqrt(E)
    out_proj = {"weight": random.uniform(keys[3], (E, E), dtype=dtype, minval=-bound, maxval=bound)}
    if bias:
        zeros_like_w = out_proj["weight"]
        params["in_proj_bias"] = fnp.zeros((3 * E,), dtype=zeros_like_w.dtype, like=zeros_like_w)
        out_proj["bias"] = fnp.zeros((E,), dtype=zeros_like_w.dtype, like=zeros_like_w)
    params["out_proj"] = out_proj
    if add_bias_kv:
        std = 1.0 / math.sqrt(E)  # xavier_normal on (1, 1, E): fan_in = fan_out = E
        params["bias_k"] = random.normal(keys[4], (1, 1, E), dtype=dtype) * std
        params["bias_v"] = random.normal(keys[5], (1, 1, E), dtype=dtype) * std
    return params
