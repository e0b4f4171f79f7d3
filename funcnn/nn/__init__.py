"""Layers as pure functions of parameter pytrees (import as ``nn`` or ``F``).

Signature: ``layer(params, inputs..., *, options)``; stateful layers return ``(out, new_state)``;
random layers take a key first. ``funcnn.nn.init`` makes the params with PyTorch's defaults.
Every layer matches PyTorch's numbers, forward and gradient.
"""

from funcnn.nn import init
from funcnn.nn._activations import (
    celu,
    elu,
    gelu,
    glu,
    hardsigmoid,
    hardswish,
    hardtanh,
    leaky_relu,
    log_sigmoid,
    log_softmax,
    mish,
    prelu,
    relu,
    selu,
    sigmoid,
    silu,
    softmax,
    softmin,
    softplus,
    softsign,
    tanh,
)
from funcnn.nn._adaptive_max_pool import (
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    adaptive_max_pool3d,
)
from funcnn.nn._attention import multi_head_attention, scaled_dot_product_attention
from funcnn.nn._conv import (
    conv1d,
    conv2d,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
)
from funcnn.nn._dropout import dropout, dropout_mask
from funcnn.nn._instance_norm import instance_norm
from funcnn.nn._linear import embedding, linear
from funcnn.nn._losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)
from funcnn.nn._norm import batch_norm, group_norm, layer_norm
from funcnn.nn._pool import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_avg_pool3d,
    avg_pool1d,
    avg_pool2d,
    avg_pool3d,
    max_pool1d,
    max_pool2d,
    max_pool3d,
)
from funcnn.nn._recurrent import gru, gru_step, lstm, lstm_step, rnn, rnn_step
from funcnn.nn._resample import interpolate
from funcnn.nn._transformer import transformer_decoder_layer, transformer_encoder_layer

__all__ = [
    "init",
    "linear",
    "embedding",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "batch_norm",
    "layer_norm",
    "group_norm",
    "instance_norm",
    "dropout",
    "dropout_mask",
    "rnn_step",
    "lstm_step",
    "gru_step",
    "rnn",
    "lstm",
    "gru",
    "scaled_dot_product_attention",
    "multi_head_attention",
    "transformer_encoder_layer",
    "transformer_decoder_layer",
    "relu",
    "gelu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "leaky_relu",
    "elu",
    "silu",
    "softplus",
    "hardtanh",
    "log_sigmoid",
    "hardsigmoid",
    "hardswish",
    "mish",
    "selu",
    "celu",
    "softsign",
    "softmin",
    "glu",
    "prelu",
    "interpolate",
    "cross_entropy",
    "nll_loss",
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "kl_div",
]
