"""Transformer encoder and decoder layers, composed from attention, linear, norm and dropout.

The params pytrees are nested dicts named like the ``state_dict`` of PyTorch's
``nn.TransformerEncoderLayer`` / ``nn.TransformerDecoderLayer``::

    {"self_attn": {"in_proj_weight", "in_proj_bias", "out_proj": {"weight", "bias"}},
     "multihead_attn": {...},                          # decoder only
     "linear1": {"weight", "bias"}, "linear2": {"weight", "bias"},
     "norm1": {"weight", "bias"}, "norm2": {...}, "norm3": {...}}   # norm3: decoder only

so PyTorch weights load as they are and give PyTorch's numbers.

Dropout follows PyTorch's sites: inside each attention (on the weights), after each attention
block, inside the feed-forward block (after the activation) and after it. Each site gets its
own key, split from the ``key`` argument.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from funcnn import random
from funcnn.nn._activations import gelu, relu
from funcnn.nn._attention import init_multi_head_attention, multi_head_attention
from funcnn.nn._dropout import dropout
from funcnn.nn._linear import init_linear, linear
from funcnn.nn._norm import init_layer_norm, layer_norm

__all__ = [
    "transformer_encoder_layer",
    "transformer_decoder_layer",
    "init_transformer_encoder_layer",
    "init_transformer_decoder_layer",
]

_ENCODER_KEYS = ("self_attn", "linear1", "linear2", "norm1", "norm2")
_DECODER_KEYS = ("self_attn", "multihead_attn", "linear1", "linear2", "norm1", "norm2", "norm3")
_ACTIVATIONS: dict[str, Callable[[Any], Any]] = {"relu": relu, "gelu": gelu}


def _check_params(fn: str, params: Any, names: tuple) -> None:
    if not isinstance(params, Mapping):
        raise TypeError(
            f"{fn}: params must be a dict with keys {list(names)}, got {type(params).__name__}"
        )
    missing = [n for n in names if n not in params]
    extra = sorted(set(params) - set(names))
    if missing or extra:
        raise ValueError(
            f"{fn}: params must have exactly the keys {list(names)} (PyTorch's state_dict "
            f"names); missing {missing}, unexpected {extra}"
        )


def _activation(fn: str, activation: str | Callable[[Any], Any]) -> Callable[[Any], Any]:
    if callable(activation):
        return activation
    if activation not in _ACTIVATIONS:
        raise ValueError(
            f"{fn}: activation must be 'relu', 'gelu' or a callable, got {activation!r}"
        )
    return _ACTIVATIONS[activation]


def _dropout_keys(fn: str, key: Any, dropout: Any, training: bool, n: int) -> tuple[float, list]:
    """The dropout rate in force and one key per dropout site (None when there is no dropout)."""
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
        raise ValueError(f"{fn}: dropout must be a number in [0, 1], got {dropout!r}")
    rate = float(dropout) if training else 0.0
    if rate == 0.0:
        return 0.0, [None] * n
    if key is None:
        raise ValueError(
            f"{fn}: training with dropout={dropout} needs a random key: pass key=fn.random.key(...) "
            "(or training=False, or dropout=0.0)"
        )
    return rate, list(random.split(key, n))


def _dropout(key: Any, x: Any, rate: float) -> Any:
    if rate == 0.0:
        return x
    return dropout(key, x, p=rate, training=True)


def _feed_forward(params: Mapping, x: Any, act: Callable, rate: float, k1: Any, k2: Any) -> Any:
    """linear2(dropout(act(linear1(x)))), then dropout: PyTorch's ``_ff_block``."""
    h = _dropout(k1, act(linear(params["linear1"], x)), rate)
    return _dropout(k2, linear(params["linear2"], h), rate)


def _attend(
    params: Mapping,
    x: Any,
    mem: Any,
    *,
    nhead: int,
    attn_mask: Any,
    key_padding_mask: Any,
    is_causal: bool,
    batch_first: bool,
    rate: float,
    k_attn: Any,
    k_out: Any,
) -> Any:
    """dropout(attention(x, mem, mem)): PyTorch's ``_sa_block`` / ``_mha_block``."""
    out, _ = multi_head_attention(
        params,
        x,
        mem,
        mem,
        num_heads=nhead,
        attn_mask=attn_mask,
        key_padding_mask=key_padding_mask,
        is_causal=is_causal,
        batch_first=batch_first,
        dropout_p=rate,
        dropout_key=k_attn,
        training=rate > 0,
    )
    return _dropout(k_out, out, rate)


def transformer_encoder_layer(
    params: Mapping[str, Any],
    src: Any,
    *,
    nhead: int,
    key: Any = None,
    src_mask: Any = None,
    src_key_padding_mask: Any = None,
    is_causal: bool = False,
    activation: str | Callable[[Any], Any] = "relu",
    norm_first: bool = False,
    dropout: float = 0.1,
    training: bool = True,
    batch_first: bool = False,
    layer_norm_eps: float = 1e-5,
) -> Any:
    """One transformer encoder layer, like ``torch.nn.TransformerEncoderLayer``.

    ``x = norm1(x + sa(x)); x = norm2(x + ff(x))``, or with ``norm_first``
    ``x = x + sa(norm1(x)); x = x + ff(norm2(x))``, where ``sa`` is self-attention followed by
    dropout and ``ff`` is ``linear2(dropout(activation(linear1(x))))`` followed by dropout.

    Args:
        params: ``{"self_attn", "linear1", "linear2", "norm1", "norm2"}`` as in PyTorch's
            state_dict (see :func:`init_transformer_encoder_layer`).
        src: (S, N, E), or (N, S, E) with ``batch_first``, or unbatched (S, E).
        nhead: number of attention heads.
        key: random key for dropout; required when ``training`` and ``dropout > 0``.
        src_mask: (S, S) or (N * nhead, S, S) attention mask (bool True = not allowed, or
            float added), as in :func:`multi_head_attention`.
        src_key_padding_mask: (N, S) (bool True = padding, or float added).
        is_causal: causal self-attention (``src_mask`` is then taken as the causal mask, or
            built when None).
        activation: ``"relu"``, ``"gelu"`` or a callable.
        norm_first: pre-norm instead of post-norm.
        dropout: dropout rate at every site (when ``training``).
        training: dropout only applies when True.
        batch_first: inputs and output are (N, S, E).
        layer_norm_eps: the layer norms' eps.

    Returns:
        Same shape as ``src``.

    See also: ``funcnn_modules.nn.TransformerEncoderLayer``.
    """
    fn = "transformer_encoder_layer"
    _check_params(fn, params, _ENCODER_KEYS)
    act = _activation(fn, activation)
    rate, keys = _dropout_keys(fn, key, dropout, training, 4)
    attn_kw = {
        "nhead": nhead,
        "attn_mask": src_mask,
        "key_padding_mask": src_key_padding_mask,
        "is_causal": is_causal,
        "batch_first": batch_first,
        "rate": rate,
        "k_attn": keys[0],
        "k_out": keys[1],
    }
    eps = layer_norm_eps
    x = src
    if norm_first:
        h = layer_norm(params["norm1"], x, eps=eps)
        x = x + _attend(params["self_attn"], h, h, **attn_kw)
        x = x + _feed_forward(params, layer_norm(params["norm2"], x, eps=eps), act, rate, *keys[2:])
    else:
        x = layer_norm(params["norm1"], x + _attend(params["self_attn"], x, x, **attn_kw), eps=eps)
        x = layer_norm(params["norm2"], x + _feed_forward(params, x, act, rate, *keys[2:]), eps=eps)
    return x


def transformer_decoder_layer(
    params: Mapping[str, Any],
    tgt: Any,
    memory: Any,
    *,
    nhead: int,
    key: Any = None,
    tgt_mask: Any = None,
    memory_mask: Any = None,
    tgt_key_padding_mask: Any = None,
    memory_key_padding_mask: Any = None,
    tgt_is_causal: bool = False,
    memory_is_causal: bool = False,
    activation: str | Callable[[Any], Any] = "relu",
    norm_first: bool = False,
    dropout: float = 0.1,
    training: bool = True,
    batch_first: bool = False,
    layer_norm_eps: float = 1e-5,
) -> Any:
    """One transformer decoder layer, like ``torch.nn.TransformerDecoderLayer``.

    ``x = norm1(x + sa(x)); x = norm2(x + mha(x, memory)); x = norm3(x + ff(x))``, or with
    ``norm_first`` ``x = x + sa(norm1(x)); x = x + mha(norm2(x), memory); x = x + ff(norm3(x))``.

    Args:
        params: ``{"self_attn", "multihead_attn", "linear1", "linear2", "norm1", "norm2",
            "norm3"}`` as in PyTorch's state_dict (see :func:`init_transformer_decoder_layer`).
        tgt: (T, N, E), or (N, T, E) with ``batch_first``, or unbatched (T, E).
        memory: (S, N, E) (or (N, S, E), or (S, E)): the encoder's output.
        nhead: number of attention heads.
        key: random key for dropout; required when ``training`` and ``dropout > 0``.
        tgt_mask: (T, T) or (N * nhead, T, T) mask for the self-attention.
        memory_mask: (T, S) or (N * nhead, T, S) mask for the attention over ``memory``.
        tgt_key_padding_mask: (N, T); memory_key_padding_mask: (N, S) (bool True = padding).
        tgt_is_causal, memory_is_causal: causal hints for the two attentions (the mask is then
            taken as causal, or built when None).
        activation, norm_first, dropout, training, batch_first, layer_norm_eps: as for
            :func:`transformer_encoder_layer`.

    Returns:
        Same shape as ``tgt``.

    See also: ``funcnn_modules.nn.TransformerDecoderLayer``.
    """
    fn = "transformer_decoder_layer"
    _check_params(fn, params, _DECODER_KEYS)
    act = _activation(fn, activation)
    rate, keys = _dropout_keys(fn, key, dropout, training, 6)
    common = {"nhead": nhead, "batch_first": batch_first, "rate": rate}
    sa_kw = {
        "attn_mask": tgt_mask,
        "key_padding_mask": tgt_key_padding_mask,
        "is_causal": tgt_is_causal,
        "k_attn": keys[0],
        "k_out": keys[1],
        **common,
    }
    mha_kw = {
        "attn_mask": memory_mask,
        "key_padding_mask": memory_key_padding_mask,
        "is_causal": memory_is_causal,
        "k_attn": keys[2],
        "k_out": keys[3],
        **common,
    }
    eps = layer_norm_eps
    x = tgt
    if norm_first:
        h = layer_norm(params["norm1"], x, eps=eps)
        x = x + _attend(params["self_attn"], h, h, **sa_kw)
        x = x + _attend(
            params["multihead_attn"], layer_norm(params["norm2"], x, eps=eps), memory, **mha_kw
        )
        x = x + _feed_forward(params, layer_norm(params["norm3"], x, eps=eps), act, rate, *keys[4:])
    else:
        x = layer_norm(params["norm1"], x + _attend(params["self_attn"], x, x, **sa_kw), eps=eps)
        x = layer_norm(
            params["norm2"], x + _attend(params["multihead_attn"], x, memory, **mha_kw), eps=eps
        )
        x = layer_norm(params["norm3"], x + _feed_forward(params, x, act, rate, *keys[4:]), eps=eps)
    return x


def _check_dims(fn: str, d_model: Any, nhead: Any, dim_feedforward: Any) -> None:
    for name, v in (("d_model", d_model), ("nhead", nhead), ("dim_feedforward", dim_feedforward)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"{fn}: {name} must be a positive int, got {v!r}")
    if d_model % nhead:
        raise ValueError(f"{fn}: d_model {d_model} is not divisible by nhead {nhead}")


def init_transformer_encoder_layer(
    key: Any,
    d_model: int,
    nhead: int,
    dim_feedforward: int = 2048,
    *,
    bias: bool = True,
    dtype: Any = None,
) -> dict:
    """Params for :func:`transformer_encoder_layer`, initialised like PyTorch's layer.

    Attention as :func:`funcnn.nn.init.multi_head_attention`, linear layers with Linear's
    default, layer norms with ones and zeros.

    Returns:
        ``{"self_attn": ..., "linear1": {"weight": (F, E), "bias": (F,)}, "linear2":
        {"weight": (E, F), "bias": (E,)}, "norm1": {"weight": (E,), "bias": (E,)}, "norm2": ...}``
        with ``E = d_model``, ``F = dim_feedforward`` (no biases when ``bias=False``).
    """
    _check_dims("init_transformer_encoder_layer", d_model, nhead, dim_feedforward)
    k = random.split(key, 3)
    return {
        "self_attn": init_multi_head_attention(k[0], d_model, nhead, bias=bias, dtype=dtype),
        "linear1": init_linear(k[1], d_model, dim_feedforward, bias=bias, dtype=dtype),
        "linear2": init_linear(k[2], dim_feedforward, d_model, bias=bias, dtype=dtype),
        "norm1": init_layer_norm(d_model, bias=bias, dtype=dtype),
        "norm2": init_layer_norm(d_model, bias=bias, dtype=dtype),
    }


def init_transformer_decoder_layer(
    key: Any,
    d_model: int,
    nhead: int,
    dim_feedforward: int = 2048,
    *,
    bias: bool = True,
    dtype: Any = None,
) -> dict:
    """Params for :func:`transformer_decoder_layer`, initialised like PyTorch's layer.

    Returns:
        The encoder layer's params plus ``"multihead_attn"`` and ``"norm3"``.
    """
    _check_dims("init_transformer_decoder_layer", d_model, nhead, dim_feedforward)
    k = random.split(key, 4)
    return {
        "self_attn": init_multi_head_attention(k[0], d_model, nhead, bias=bias, dtype=dtype),
        "multihead_attn": init_multi_head_attention(k[3], d_model, nhead, bias=bias, dtype=dtype),
        "linear1": init_linear(k[1], d_model, dim_feedforward, bias=bias, dtype=dtype),
        "linear2": init_linear(k[2], dim_feedforward, d_model, bias=bias, dtype=dtype),
        "norm1": init_layer_norm(d_model, bias=bias, dtype=dtype),
        "norm2": init_layer_norm(d_model, bias=bias, dtype=dtype),
        "norm3": init_layer_norm(d_model, bias=bias, dtype=dtype),
    }
