"""Initialisers: params pytrees with PyTorch's default initialisation, names and shapes.

    p = nn.init.linear(key, 784, 128)                   # {"weight": (128, 784), "bias": (128,)}
    p = nn.init.conv2d(key, 3, 16, 3)                    # {"weight": (16, 3, 3, 3), "bias": (16,)}
    p, state = nn.init.batch_norm(16)
    p = nn.init.lstm_cell(key, 10, 20)                   # weight_ih (80, 10), weight_hh (80, 20), biases

Plus the generic tensor initialisers of torch.nn.init (``kaiming_uniform``, ``xavier_normal``,
``orthogonal`` ...), which take a key and a shape and return one array.
"""

from __future__ import annotations

from typing import Any

from funcnn.nn._attention import init_multi_head_attention as multi_head_attention
from funcnn.nn._conv import init_conv
from funcnn.nn._init_generic import (
    calculate_gain,
    constant,
    fans,
    kaiming_normal,
    kaiming_uniform,
    normal,
    ones,
    orthogonal,
    uniform,
    xavier_normal,
    xavier_uniform,
    zeros,
)
from funcnn.nn._instance_norm import init_instance_norm as instance_norm
from funcnn.nn._linear import init_embedding as embedding
from funcnn.nn._linear import init_linear as linear
from funcnn.nn._norm import init_batch_norm as batch_norm
from funcnn.nn._norm import init_group_norm as group_norm
from funcnn.nn._norm import init_layer_norm as layer_norm
from funcnn.nn._recurrent import init_gru_cell as gru_cell
from funcnn.nn._recurrent import init_lstm_cell as lstm_cell
from funcnn.nn._recurrent import init_rnn_cell as rnn_cell
from funcnn.nn._transformer import init_transformer_decoder_layer as transformer_decoder_layer
from funcnn.nn._transformer import init_transformer_encoder_layer as transformer_encoder_layer


def _conv(ndim: int, transposed: bool) -> Any:
    def init(
        key: Any,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        groups: int = 1,
        bias: bool = True,
        dtype: Any = None,
    ) -> dict:
        return init_conv(
            key,
            in_channels,
            out_channels,
            kernel_size,
            groups=groups,
            bias=bias,
            ndim=ndim,
            dtype=dtype,
            transposed=transposed,
        )

    kind = "conv_transpose" if transposed else "conv"
    init.__name__ = f"{kind}{ndim}d"
    init.__doc__ = (
        f"Params of a {ndim}-d {'transposed ' if transposed else ''}convolution with PyTorch's default "
        "initialisation (kaiming-uniform a=sqrt(5) weight, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) bias)."
    )
    return init


conv1d, conv2d, conv3d = _conv(1, False), _conv(2, False), _conv(3, False)
conv_transpose1d, conv_transpose2d, conv_transpose3d = (
    _conv(1, True),
    _conv(2, True),
    _conv(3, True),
)

__all__ = [
    "linear",
    "embedding",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "batch_norm",
    "layer_norm",
    "group_norm",
    "instance_norm",
    "rnn_cell",
    "lstm_cell",
    "gru_cell",
    "multi_head_attention",
    "transformer_encoder_layer",
    "transformer_decoder_layer",
    "calculate_gain",
    "fans",
    "uniform",
    "normal",
    "constant",
    "zeros",
    "ones",
    "kaiming_uniform",
    "kaiming_normal",
    "xavier_uniform",
    "xavier_normal",
    "orthogonal",
]
