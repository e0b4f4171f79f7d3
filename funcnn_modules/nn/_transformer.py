"""Transformer modules with PyTorch's structure, names and forward order.

A layer holds MultiheadAttention, Linear, LayerNorm and Dropout submodules named as in
``torch.nn.Transformer*`` (so state dicts and ``repr`` match); its forward is one call into
``funcnn.nn.transformer_encoder_layer`` / ``transformer_decoder_layer`` with those parameters.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from funcnn import backend
from funcnn import numpy as fnp
from funcnn_modules import _dtypes, _fnn, _random
from funcnn_modules.nn import functional as F
from funcnn_modules.nn import init
from funcnn_modules.nn._attention import MultiheadAttention, _mask
from funcnn_modules.nn._container import ModuleList
from funcnn_modules.nn._linear import Dropout, Linear
from funcnn_modules.nn._module import Module
from funcnn_modules.nn._normalization import LayerNorm
from funcnn_modules.tensor import Tensor, unwrap, wrap

__all__ = [
    "Transformer",
    "TransformerEncoder",
    "TransformerDecoder",
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
]


def _activation(activation: Any) -> Callable:
    if isinstance(activation, str):
        if activation == "relu":
            return F.relu
        if activation == "gelu":
            return F.gelu
        raise RuntimeError(f"activation should be relu/gelu, not {activation}")
    return activation


_ENCODER = ("self_attn", "linear1", "linear2", "norm1", "norm2")
_DECODER = ("self_attn", "multihead_attn", "linear1", "linear2", "norm1", "norm2", "norm3")


def _tree(module: Module) -> dict:
    """The module's parameters as a nested dict of (unwrapped) data, like its state_dict."""
    out: dict = {k: unwrap(v) for k, v in module._parameters.items() if v is not None}
    for name, child in module._modules.items():
        if child is not None and any(True for _ in child.parameters()):
            out[name] = _tree(child)
    return out


def _params(layer: Module, names: tuple) -> dict:
    return {name: _tree(layer._modules[name]) for name in names}


def _raw_activation(activation: Any) -> Any:
    """The activation for funcnn: a name, or a function on arrays around a tensor function."""
    if activation is F.relu:
        return "relu"
    if activation is F.gelu:
        return "gelu"
    return lambda x: unwrap(activation(wrap(x)))


def _clones(module: Module, n: int) -> ModuleList:
    return ModuleList([copy.deepcopy(module) for _ in range(n)])


def _square_subsequent_mask(sz: int, dtype: Any = None) -> Tensor:
    """A float (sz, sz) mask: 0 on and below the diagonal, -inf above (future positions)."""
    dt = "float32" if dtype is None else _dtypes.to_numpy_dtype(dtype).name
    idx = backend.arange(0, sz)
    above = fnp.greater(fnp.reshape(idx, (1, sz)), fnp.reshape(idx, (sz, 1)))
    return wrap(
        fnp.where(above, backend.full((), float("-inf"), dtype=dt), backend.full((), 0.0, dtype=dt))
    )


class TransformerEncoderLayer(Module):
    """Self-attention and a feed-forward block, each with a residual and a LayerNorm.

    Args follow ``torch.nn.TransformerEncoderLayer``: ``d_model, nhead, dim_feedforward=2048,
    dropout=0.1, activation='relu', layer_norm_eps=1e-5, batch_first=False, norm_first=False,
    bias=True``.
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: Any = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw
        )
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _activation(activation)

    def forward(
        self,
        src: Tensor,
        src_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> Tensor:
        """src: (S, N, E) ((N, S, E) with batch_first) -> same shape.

        See also: ``funcnn.nn.transformer_encoder_layer``.
        """
        p = self.dropout.p
        training = self.training and p > 0
        out = _fnn.transformer_encoder_layer(
            _params(self, _ENCODER),
            unwrap(src),
            nhead=self.self_attn.num_heads,
            key=_random.next_key() if training else None,
            src_mask=_mask(src_mask, src),
            src_key_padding_mask=_mask(src_key_padding_mask, src),
            is_causal=is_causal,
            activation=_raw_activation(self.activation),
            norm_first=self.norm_first,
            dropout=p,
            training=training,
            batch_first=self.self_attn.batch_first,
            layer_norm_eps=self.norm1.eps,
        )
        return wrap(out)


class TransformerDecoderLayer(Module):
    """Self-attention, cross-attention over ``memory`` and a feed-forward block (PyTorch's layout)."""

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: Any = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, batch_first=batch_first, bias=bias, **kw
        )
        self.multihead_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, batch_first=batch_first, bias=bias, **kw
        )
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = _activation(activation)

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
    ) -> Tensor:
        """tgt: (T, N, E), memory: (S, N, E) (batch first: (N, T, E), (N, S, E)) -> tgt's shape.

        See also: ``funcnn.nn.transformer_decoder_layer``.
        """
        p = self.dropout.p
        training = self.training and p > 0
        out = _fnn.transformer_decoder_layer(
            _params(self, _DECODER),
            unwrap(tgt),
            unwrap(memory),
            nhead=self.self_attn.num_heads,
            key=_random.next_key() if training else None,
            tgt_mask=_mask(tgt_mask, tgt),
            memory_mask=_mask(memory_mask, tgt),
            tgt_key_padding_mask=_mask(tgt_key_padding_mask, tgt),
            memory_key_padding_mask=_mask(memory_key_padding_mask, tgt),
            tgt_is_causal=tgt_is_causal,
            memory_is_causal=memory_is_causal,
            activation=_raw_activation(self.activation),
            norm_first=self.norm_first,
            dropout=p,
            training=training,
            batch_first=self.self_attn.batch_first,
            layer_norm_eps=self.norm1.eps,
        )
        return wrap(out)


class TransformerEncoder(Module):
    """``num_layers`` copies of ``encoder_layer`` applied in turn, then ``norm`` (if given)."""

    def __init__(
        self,
        encoder_layer: TransformerEncoderLayer,
        num_layers: int,
        norm: Module | None = None,
        enable_nested_tensor: bool = True,
        mask_check: bool = True,
    ) -> None:
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(
        self,
        src: Tensor,
        mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool | None = None,
    ) -> Tensor:
        output = src
        for mod in self.layers:
            output = mod(
                output,
                src_mask=mask,
                is_causal=bool(is_causal),
                src_key_padding_mask=src_key_padding_mask,
            )
        if self.norm is not None:
            output = self.norm(output)
        return output


class TransformerDecoder(Module):
    """``num_layers`` copies of ``decoder_layer`` applied in turn, then ``norm`` (if given)."""

    def __init__(
        self, decoder_layer: TransformerDecoderLayer, num_layers: int, norm: Module | None = None
    ) -> None:
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> Tensor:
        output = tgt
        for mod in self.layers:
            output = mod(
                output,
                memory,
                tgt_mask=tgt_mask,
                memory_mask=memory_mask,
                tgt_key_padding_mask=tgt_key_padding_mask,
                memory_key_padding_mask=memory_key_padding_mask,
                tgt_is_causal=bool(tgt_is_causal),
                memory_is_causal=memory_is_causal,
            )
        if self.norm is not None:
            output = self.norm(output)
        return output


class Transformer(Module):
    """An encoder-decoder transformer (``torch.nn.Transformer``): encoder and decoder stacks
    with final LayerNorms; weight matrices Xavier-uniform initialised."""

    def __init__(
        self,
        d_model: int = 512,
        nhead: int = 8,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 6,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: Any = "relu",
        custom_encoder: Module | None = None,
        custom_decoder: Module | None = None,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            layer = TransformerEncoderLayer(
                d_model,
                nhead,
                dim_feedforward,
                dropout,
                activation,
                layer_norm_eps,
                batch_first,
                norm_first,
                bias,
                **kw,
            )
            self.encoder = TransformerEncoder(
                layer, num_encoder_layers, LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
            )
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            layer = TransformerDecoderLayer(
                d_model,
                nhead,
                dim_feedforward,
                dropout,
                activation,
                layer_norm_eps,
                batch_first,
                norm_first,
                bias,
                **kw,
            )
            self.decoder = TransformerDecoder(
                layer, num_decoder_layers, LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
            )
        self._reset_parameters()
        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first

    def _reset_parameters(self) -> None:
        for p in self.parameters():
            if p.dim() > 1:
                init.xavier_uniform_(p)

    def forward(
        self,
        src: Tensor,
        tgt: Tensor,
        src_mask: Tensor | None = None,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        src_is_causal: bool | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> Tensor:
        """src: (S, N, E), tgt: (T, N, E) (batch first: (N, S, E), (N, T, E)) -> (T, N, E)."""
        batched = src.dim() == 3
        if batched and src.size(1 if not self.batch_first else 0) != tgt.size(
            1 if not self.batch_first else 0
        ):
            raise RuntimeError("the batch number of src and tgt must be equal")
        if src.size(-1) != self.d_model or tgt.size(-1) != self.d_model:
            raise RuntimeError("the feature number of src and tgt must be equal to d_model")
        memory = self.encoder(
            src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal
        )
        return self.decoder(
            tgt,
            memory,
            tgt_mask=tgt_mask,
            memory_mask=memory_mask,
            tgt_key_padding_mask=tgt_key_padding_mask,
            memory_key_padding_mask=memory_key_padding_mask,
            tgt_is_causal=tgt_is_causal,
            memory_is_causal=memory_is_causal,
        )

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device: Any = None, dtype: Any = None) -> Tensor:
        """A float (sz, sz) causal mask: -inf above the diagonal, 0 elsewhere."""
        return _square_subsequent_mask(sz, dtype)
