"""``funcnn_modules.nn.functional`` (``F``): torch.nn.functional's names over ``funcnn.nn``.

Every function unwraps its tensors, makes one call into a ``funcnn.nn`` layer function (the
math and its gradient live there), and wraps the answer. Random layers (dropout) draw a key
from the global generator (``funcnn_modules.manual_seed``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from funcnn import backend
from funcnn import numpy as fnp
from funcnn.autodiff._core import strip
from funcnn_modules import _fnn, _random
from funcnn_modules.tensor import Tensor, _softmax_dim, as_array, unwrap, wrap

__all__ = [
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
    "relu",
    "relu_",
    "relu6",
    "leaky_relu",
    "elu",
    "gelu",
    "silu",
    "sigmoid",
    "tanh",
    "softplus",
    "hardtanh",
    "logsigmoid",
    "softmax",
    "log_softmax",
    "cross_entropy",
    "nll_loss",
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "kl_div",
    "scaled_dot_product_attention",
    "pad",
    "one_hot",
    "normalize",
    "cosine_similarity",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "hardsigmoid",
    "hardswish",
    "mish",
    "selu",
    "celu",
    "softsign",
    "softmin",
    "glu",
    "prelu",
    "pairwise_distance",
    "triplet_margin_loss",
    "margin_ranking_loss",
    "cosine_embedding_loss",
    "interpolate",
    "upsample",
]


def _params(**arrays: Any) -> dict:
    """A funcnn params dict of the given tensors' data (None entries left out)."""
    return {k: unwrap(v) for k, v in arrays.items() if v is not None}


def _opt(x: Any) -> Any:
    return None if x is None else unwrap(x)


# ----------------------------------------------------------------------------- linear and embedding


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:  # noqa: A002
    """``input @ weight.T + bias``; input (..., in), weight (out, in), bias (out,).

    See also: :class:`funcnn_modules.nn.Linear`, ``funcnn.nn.linear``.
    """
    return wrap(_fnn.linear(_params(weight=weight, bias=bias), unwrap(input)))


def embedding(
    input: Tensor,  # noqa: A002
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of ``weight`` (num, dim) at integer ``input`` (any shape) -> input.shape + (dim,)."""
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError(
            "embedding: max_norm, scale_grad_by_freq and sparse are not supported"
        )
    return wrap(_fnn.embedding(_params(weight=weight), as_array(input), padding_idx=padding_idx))


# ----------------------------------------------------------------------------- convolution


def _conv(fn: Any, input: Any, weight: Any, bias: Any, **kw: Any) -> Tensor:  # noqa: A002
    return wrap(fn(_params(weight=weight, bias=bias), unwrap(input), **kw))


def conv1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:  # noqa: A002
    """1-D convolution: input (N, C_in, L), weight (C_out, C_in/groups, k) -> (N, C_out, L_out)."""
    return _conv(
        _fnn.conv1d,
        input,
        weight,
        bias,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
    )


def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:  # noqa: A002
    """2-D convolution: input (N, C_in, H, W), weight (C_out, C_in/groups, kH, kW) -> (N, C_out, H_out, W_out)."""
    return _conv(
        _fnn.conv2d,
        input,
        weight,
        bias,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
    )


def conv3d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:  # noqa: A002
    """3-D convolution: input (N, C_in, D, H, W), weight (C_out, C_in/groups, kD, kH, kW)."""
    return _conv(
        _fnn.conv3d,
        input,
        weight,
        bias,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
    )


def conv_transpose1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Tensor:  # noqa: A002
    """Transposed 1-D convolution: weight (C_in, C_out/groups, k)."""
    return _conv(
        _fnn.conv_transpose1d,
        input,
        weight,
        bias,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
    )


def conv_transpose2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Tensor:  # noqa: A002
    """Transposed 2-D convolution: weight (C_in, C_out/groups, kH, kW)."""
    return _conv(
        _fnn.conv_transpose2d,
        input,
        weight,
        bias,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
    )


def conv_transpose3d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Tensor:  # noqa: A002
    """Transposed 3-D convolution: weight (C_in, C_out/groups, kD, kH, kW)."""
    return _conv(
        _fnn.conv_transpose3d,
        input,
        weight,
        bias,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
    )


# ----------------------------------------------------------------------------- pooling


def _max_pool(
    fn: Any,
    input: Any,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    ceil_mode: bool,
    return_indices: bool,
) -> Any:  # noqa: A002
    if return_indices:
        raise NotImplementedError("max_pool: return_indices=True is not supported")
    return wrap(
        fn(
            unwrap(input),
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            ceil_mode=ceil_mode,
        )
    )


def max_pool1d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor:  # noqa: A002
    """Max over sliding windows of an (N, C, L) input."""
    return _max_pool(
        _fnn.max_pool1d, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices
    )


def max_pool2d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor:  # noqa: A002
    """Max over sliding windows of an (N, C, H, W) input."""
    return _max_pool(
        _fnn.max_pool2d, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices
    )


def max_pool3d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor:  # noqa: A002
    """Max over sliding windows of an (N, C, D, H, W) input."""
    return _max_pool(
        _fnn.max_pool3d, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices
    )


def _avg_pool(
    fn: Any,
    input: Any,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Any,
) -> Tensor:  # noqa: A002
    if divisor_override is not None:
        raise NotImplementedError("avg_pool: divisor_override is not supported")
    return wrap(
        fn(
            unwrap(input),
            kernel_size,
            stride=stride,
            padding=padding,
            ceil_mode=ceil_mode,
            count_include_pad=count_include_pad,
        )
    )


def avg_pool1d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:  # noqa: A002
    """Mean over sliding windows of an (N, C, L) input."""
    return _avg_pool(
        _fnn.avg_pool1d, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None
    )


def avg_pool2d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Any = None,
) -> Tensor:  # noqa: A002
    """Mean over sliding windows of an (N, C, H, W) input."""
    return _avg_pool(
        _fnn.avg_pool2d,
        input,
        kernel_size,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
    )


def avg_pool3d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Any = None,
) -> Tensor:  # noqa: A002
    """Mean over sliding windows of an (N, C, D, H, W) input."""
    return _avg_pool(
        _fnn.avg_pool3d,
        input,
        kernel_size,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
    )


def adaptive_avg_pool1d(input: Tensor, output_size: Any) -> Tensor:  # noqa: A002
    """Mean pooling of (N, C, L) to (N, C, output_size)."""
    return wrap(_fnn.adaptive_avg_pool1d(unwrap(input), output_size))


def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:  # noqa: A002
    """Mean pooling of (N, C, H, W) to (N, C, *output_size) (None keeps a size)."""
    return wrap(_fnn.adaptive_avg_pool2d(unwrap(input), output_size))


def adaptive_avg_pool3d(input: Tensor, output_size: Any) -> Tensor:  # noqa: A002
    """Mean pooling of (N, C, D, H, W) to (N, C, *output_size)."""
    return wrap(_fnn.adaptive_avg_pool3d(unwrap(input), output_size))


def adaptive_max_pool1d(
    input: Tensor,  # noqa: A002
    output_size: Any,
    return_indices: bool = False,
) -> Tensor:
    """Max pooling of (N, C, L) to (N, C, output_size)."""
    return wrap(_fnn.adaptive_max_pool1d(unwrap(input), output_size, return_indices))


def adaptive_max_pool2d(
    input: Tensor,  # noqa: A002
    output_size: Any,
    return_indices: bool = False,
) -> Tensor:
    """Max pooling of (N, C, H, W) to (N, C, *output_size) (None keeps a size)."""
    return wrap(_fnn.adaptive_max_pool2d(unwrap(input), output_size, return_indices))


def adaptive_max_pool3d(
    input: Tensor,  # noqa: A002
    output_size: Any,
    return_indices: bool = False,
) -> Tensor:
    """Max pooling of (N, C, D, H, W) to (N, C, *output_size) (None keeps a size)."""
    return wrap(_fnn.adaptive_max_pool3d(unwrap(input), output_size, return_indices))


# ----------------------------------------------------------------------------- normalisation


def batch_norm(
    input: Tensor,  # noqa: A002
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float | None = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalisation over (N, C, ...); in training mode the running stats are updated in place."""
    state = None
    if running_mean is not None and running_var is not None:
        raw = running_mean._value
        state = {
            "running_mean": raw,
            "running_var": running_var._value,
            "num_batches_tracked": backend.zeros((), dtype="int64", like=raw),
        }
    out, new_state = _fnn.batch_norm(
        _params(weight=weight, bias=bias),
        state,
        unwrap(input),
        training=training,
        momentum=momentum,
        eps=eps,
    )
    if state is not None and training:
        running_mean._set_value(strip(new_state["running_mean"]))
        running_var._set_value(strip(new_state["running_var"]))
    return wrap(out)


def instance_norm(
    input: Tensor,  # noqa: A002
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each sample's channel of (N, C, ...) over its spatial axes, then scale and shift;
    with ``use_input_stats`` the running stats (when given) are updated in place.

    See also: ``funcnn.nn.instance_norm``.
    """
    state = None
    if running_mean is not None and running_var is not None:
        state = {"running_mean": running_mean._value, "running_var": running_var._value}
    out, new_state = _fnn.instance_norm(
        _params(weight=weight, bias=bias),
        state,
        unwrap(input),
        use_input_stats=use_input_stats,
        momentum=momentum,
        eps=eps,
    )
    if state is not None and use_input_stats:
        running_mean._set_value(strip(new_state["running_mean"]))
        running_var._set_value(strip(new_state["running_var"]))
    return wrap(out)


def layer_norm(
    input: Tensor,
    normalized_shape: Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:  # noqa: A002
    """Normalise over the trailing ``normalized_shape`` dimensions, then scale and shift."""
    x = unwrap(input)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(strip(x).shape[len(strip(x).shape) - len(shape) :]) != shape:
        raise RuntimeError(
            f"layer_norm: input of shape {tuple(strip(x).shape)} does not end with normalized_shape {shape}"
        )
    return wrap(
        _fnn.layer_norm(_params(weight=weight, bias=bias), x, normalized_shape=shape, eps=eps)
    )


def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:  # noqa: A002
    """Normalise (N, C, ...) over groups of channels, then scale and shift per channel."""
    return wrap(
        _fnn.group_norm(
            _params(weight=weight, bias=bias), unwrap(input), num_groups=num_groups, eps=eps
        )
    )


# ----------------------------------------------------------------------------- dropout


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:  # noqa: A002
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)`` (training only)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    out = wrap(_fnn.dropout(_random.next_key(), unwrap(input), p=p, training=True))
    if inplace:
        return input._assign(out._data)
    return out


# ----------------------------------------------------------------------------- activations


def _act(fn: Any, input: Any, inplace: bool = False, **kw: Any) -> Tensor:  # noqa: A002
    out = wrap(fn(unwrap(input), **kw))
    if inplace:
        return input._assign(out._data)
    return out


def relu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    return _act(_fnn.relu, input, inplace)


def relu_(input: Tensor) -> Tensor:  # noqa: A002
    return _act(_fnn.relu, input, True)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    return _act(_fnn.hardtanh, input, inplace, min_val=0.0, max_val=6.0)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:  # noqa: A002
    return _act(_fnn.leaky_relu, input, inplace, negative_slope=negative_slope)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    return _act(_fnn.elu, input, inplace, alpha=alpha)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:  # noqa: A002
    return _act(_fnn.gelu, input, approximate=approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    return _act(_fnn.silu, input, inplace)


def sigmoid(input: Tensor) -> Tensor:  # noqa: A002
    return _act(_fnn.sigmoid, input)


def tanh(input: Tensor) -> Tensor:  # noqa: A002
    return _act(_fnn.tanh, input)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:  # noqa: A002
    return _act(_fnn.softplus, input, beta=beta, threshold=threshold)


def hardtanh(
    input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> Tensor:  # noqa: A002
    return _act(_fnn.hardtanh, input, inplace, min_val=min_val, max_val=max_val)


def logsigmoid(input: Tensor) -> Tensor:  # noqa: A002
    return _act(_fnn.log_sigmoid, input)


def softmax(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None
) -> Tensor:  # noqa: A002
    """Softmax along ``dim`` (PyTorch's legacy choice of dim when None)."""
    x = input if dtype is None else input.to(dtype)
    return _act(_fnn.softmax, x, axis=_softmax_dim(x.ndim) if dim is None else dim)


def log_softmax(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None
) -> Tensor:  # noqa: A002
    """Log-softmax along ``dim``."""
    x = input if dtype is None else input.to(dtype)
    return _act(_fnn.log_softmax, x, axis=_softmax_dim(x.ndim) if dim is None else dim)


# ----------------------------------------------------------------------------- losses


def _reduction(size_average: Any, reduce: Any, reduction: str) -> str:
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def cross_entropy(
    input: Tensor,  # noqa: A002
    target: Tensor,
    weight: Tensor | None = None,
    size_average: Any = None,
    ignore_index: int = -100,
    reduce: Any = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross entropy of logits (N, C) (or (N, C, d...)) against class indices or probabilities."""
    return wrap(
        _fnn.cross_entropy(
            unwrap(input),
            unwrap(target),
            reduction=_reduction(size_average, reduce, reduction),
            label_smoothing=label_smoothing,
            ignore_index=ignore_index,
            weight=_opt(weight),
        )
    )


def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: Any = None,
    ignore_index: int = -100,
    reduce: Any = None,
    reduction: str = "mean",
) -> Tensor:  # noqa: A002
    """Negative log-likelihood of log-probabilities (N, C) at class indices (N,)."""
    return wrap(
        _fnn.nll_loss(
            unwrap(input),
            unwrap(target),
            reduction=_reduction(size_average, reduce, reduction),
            ignore_index=ignore_index,
            weight=_opt(weight),
        )
    )


def mse_loss(
    input: Tensor,
    target: Tensor,
    size_average: Any = None,
    reduce: Any = None,
    reduction: str = "mean",
) -> Tensor:  # noqa: A002
    """Mean squared error."""
    return wrap(
        _fnn.mse_loss(
            unwrap(input), unwrap(target), reduction=_reduction(size_average, reduce, reduction)
        )
    )


def l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: Any = None,
    reduce: Any = None,
    reduction: str = "mean",
) -> Tensor:  # noqa: A002
    """Mean absolute error."""
    return wrap(
        _fnn.l1_loss(
            unwrap(input), unwrap(target), reduction=_reduction(size_average, reduce, reduction)
        )
    )


def smooth_l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: Any = None,
    reduce: Any = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:  # noqa: A002
    """Squared error below ``beta``, absolute error above (PyTorch's SmoothL1)."""
    return wrap(
        _fnn.smooth_l1_loss(
            unwrap(input),
            unwrap(target),
            reduction=_reduction(size_average, reduce, reduction),
            beta=beta,
        )
    )


def huber_loss(
    input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0, weight: Any = None
) -> Tensor:  # noqa: A002
    """Huber loss with threshold ``delta``."""
    if weight is not None:
        raise NotImplementedError("huber_loss: weight is not supported")
    return wrap(_fnn.huber_loss(unwrap(input), unwrap(target), reduction=reduction, delta=delta))


def binary_cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: Any = None,
    reduce: Any = None,
    reduction: str = "mean",
) -> Tensor:  # noqa: A002
    """Binary cross entropy of probabilities in [0, 1]."""
    return wrap(
        _fnn.binary_cross_entropy(
            unwrap(input),
            unwrap(target),
            reduction=_reduction(size_average, reduce, reduction),
            weight=_opt(weight),
        )
    )


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: Any = None,
    reduce: Any = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:  # noqa: A002
    """Binary cross entropy of logits (stable: no sigmoid of large values)."""
    return wrap(
        _fnn.binary_cross_entropy_with_logits(
            unwrap(input),
            unwrap(target),
            reduction=_reduction(size_average, reduce, reduction),
            weight=_opt(weight),
            pos_weight=_opt(pos_weight),
        )
    )


def kl_div(
    input: Tensor,
    target: Tensor,
    size_average: Any = None,
    reduce: Any = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:  # noqa: A002
    """KL divergence of ``target`` from log-probabilities ``input``."""
    return wrap(
        _fnn.kl_div(
            unwrap(input),
            unwrap(target),
            reduction=_reduction(size_average, reduce, reduction),
            log_target=log_target,
        )
    )


# ----------------------------------------------------------------------------- attention


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """``softmax(q k^T * scale + mask) v`` over (..., L, E) queries and (..., S, E) keys/values."""
    if dropout_p:
        raise NotImplementedError("scaled_dot_product_attention: dropout_p > 0 is not supported")
    kw: dict = {"mask": _opt(attn_mask), "is_causal": is_causal}
    if scale is not None:
        kw["scale"] = scale
    return wrap(_fnn.scaled_dot_product_attention(unwrap(query), unwrap(key), unwrap(value), **kw))


# ----------------------------------------------------------------------------- utilities


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad(
    input: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None
) -> Tensor:  # noqa: A002
    """Pad ``input``; ``pad`` lists (before, after) pairs starting from the LAST dimension.

    ``mode`` is PyTorch's: ``"constant"`` (filled with ``value``), ``"reflect"``,
    ``"replicate"`` or ``"circular"`` (``fnp.pad``'s reflect, edge and wrap).
    """
    if mode not in _PAD_MODES:
        raise NotImplementedError(
            f"pad: mode {mode!r} is not supported; expected one of {', '.join(_PAD_MODES)}"
        )
    if len(pad) % 2:
        raise ValueError(f"pad: padding length must be divisible by 2, got {len(pad)}")
    nd = input.ndim
    if len(pad) // 2 > nd:
        raise ValueError(f"pad: padding length {len(pad)} is too large for a {nd}-d input")
    if mode != "constant" and value is not None and value != 0:
        raise ValueError(f"pad: padding mode {mode!r} doesn't take in value argument")
    widths = [(0, 0)] * nd
    for i in range(len(pad) // 2):
        axis = nd - 1 - i
        before, after = int(pad[2 * i]), int(pad[2 * i + 1])
        size = input.shape[axis]
        if mode == "reflect" and max(before, after) >= size:
            raise ValueError(
                f"pad: reflect padding of ({before}, {after}) must be less than the size "
                f"{size} of dimension {axis}"
            )
        if mode == "circular" and max(before, after) > size:
            raise ValueError(
                f"pad: circular padding of ({before}, {after}) must be at most the size "
                f"{size} of dimension {axis}"
            )
        widths[axis] = (before, after)
    if mode != "constant":
        return wrap(fnp.pad(unwrap(input), widths, mode=_PAD_MODES[mode]))
    return wrap(fnp.pad(unwrap(input), widths, constant_values=0.0 if value is None else value))


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Integer class indices (any shape) as one-hot int64 vectors (shape + (num_classes,))."""
    idx = as_array(tensor)
    if num_classes < 0:
        num_classes = int(backend.namespace(idx).max(idx)) + 1
    classes = backend.arange(0, num_classes, like=idx)
    eq = fnp.equal(fnp.expand_dims(idx, -1), classes)
    return wrap(fnp.astype(eq, "int64"))


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:  # noqa: A002
    """``input / max(||input||_p, eps)`` along ``dim``."""
    norm = input.norm(p, dim=dim, keepdim=True)
    return input / norm.clamp(min=eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Cosine of the angle between ``x1`` and ``x2`` along ``dim``."""
    n1 = x1.norm(dim=dim).clamp(min=eps)
    n2 = x2.norm(dim=dim).clamp(min=eps)
    return (x1 * x2).sum(dim) / (n1 * n2)


# ----------------------------------------------------------------------------- more of torch.nn.functional
# Compositions of the ops above (funcnn.numpy / funcnn.nn through Tensor): no math of their own.


def _channel_dropout(
    name: str, input: Tensor, p: float, training: bool, spatial: int, inplace: bool
) -> Tensor:  # noqa: A002
    """Zero whole channels: one draw per (sample, channel), PyTorch's rules for the ranks.

    ``spatial`` + 1 dims are an unbatched input (one draw per channel), ``spatial`` + 2 a batch.
    dropout1d refuses other ranks; dropout2d reads a 3-D input as (N, C, L) and, like
    dropout3d, takes other ranks as (N, C, *) with PyTorch's deprecation warning.
    """
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    shape, nd = tuple(input.shape), input.ndim
    if nd == spatial + 1 and spatial > 1 and name == "dropout2d":
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D "
            "dropout behavior is desired - input is interpreted as shape (N, C, L), where C is "
            "the channel dim. To maintain the 1D channel-wise dropout behavior, please switch "
            "to using dropout1d instead.",
            stacklevel=3,
        )
        keep = 2
    elif nd == spatial + 1:
        keep = 1  # unbatched (C, *spatial)
    elif nd == spatial + 2:
        keep = 2
    elif name == "dropout1d":
        raise RuntimeError(
            f"dropout1d: Expected 2D or 3D input, but received a {nd}D input. Note that "
            "dropout1d exists to provide channel-wise dropout on inputs with 1 spatial "
            "dimension, a channel dimension, and an optional batch dimension (i.e. 2D or 3D "
            "inputs)."
        )
    else:
        warnings.warn(
            f"{name}: Received a {nd}-D input to {name}, which is deprecated and will result "
            "in an error in a future release. To retain the behavior and silence this warning, "
            "please use dropout instead.",
            stacklevel=3,
        )
        keep = min(2, nd)
    if not training or p == 0.0:
        return input
    mask = dropout(input.new_ones(*(shape[:keep] + (1,) * (nd - keep))), p, True)
    out = input * mask
    return input._assign(out._data) if inplace else out


def dropout1d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:  # noqa: A002
    """Zero whole channels of an (N, C, L) or (C, L) input (see ``nn.Dropout1d``)."""
    return _channel_dropout("dropout1d", input, p, training, 1, inplace)


def dropout2d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:  # noqa: A002
    """Zero whole channels of an (N, C, H, W) input (see ``nn.Dropout2d``)."""
    return _channel_dropout("dropout2d", input, p, training, 2, inplace)


def dropout3d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:  # noqa: A002
    """Zero whole channels of an (N, C, D, H, W) or (C, D, H, W) input (``nn.Dropout3d``)."""
    return _channel_dropout("dropout3d", input, p, training, 3, inplace)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """``clip(x + 3, 0, 6) / 6``. See also: ``funcnn.nn.hardsigmoid``."""
    return _act(_fnn.hardsigmoid, input, inplace)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """``x * clip(x + 3, 0, 6) / 6``. See also: ``funcnn.nn.hardswish``."""
    return _act(_fnn.hardswish, input, inplace)


def mish(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """``x * tanh(softplus(x))``. See also: ``funcnn.nn.mish``."""
    return _act(_fnn.mish, input, inplace)


def selu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """``scale * elu(x, alpha)`` with the self-normalising constants. See ``funcnn.nn.selu``."""
    return _act(_fnn.selu, input, inplace)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``. See also: ``funcnn.nn.celu``."""
    return _act(_fnn.celu, input, inplace, alpha=alpha)


def softsign(input: Tensor) -> Tensor:  # noqa: A002
    """``x / (1 + |x|)``. See also: ``funcnn.nn.softsign``."""
    return _act(_fnn.softsign, input)


def softmin(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None
) -> Tensor:  # noqa: A002
    """``softmax(-x)`` along ``dim`` (PyTorch's legacy choice of dim when None)."""
    x = input if dtype is None else input.to(dtype)
    return _act(_fnn.softmin, x, axis=_softmax_dim(x.ndim) if dim is None else dim)


def glu(input: Tensor, dim: int = -1) -> Tensor:  # noqa: A002
    """Gated linear unit: the first half of ``dim`` times the sigmoid of the second half."""
    if input.ndim == 0:  # PyTorch's exception type for these misuses
        raise RuntimeError("glu does not support scalars because halving size must be even")
    if input.shape[dim] % 2:
        raise RuntimeError(
            f"glu: halving dimension must be even, but dimension {dim} is size {input.shape[dim]}"
        )
    return _act(_fnn.glu, input, axis=dim)


def prelu(input: Tensor, weight: Tensor) -> Tensor:  # noqa: A002
    """``x`` where ``x > 0``, else ``weight * x``; ``weight`` has 1 or C (= ``input.shape[1]``) entries."""
    return wrap(_fnn.prelu(unwrap(input), unwrap(weight)))


def pairwise_distance(
    x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False
) -> Tensor:
    """``||x1 - x2 + eps||_p`` along the last dimension."""
    return (x1 - x2 + eps).norm(p, dim=-1, keepdim=keepdim)


def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """``max(d(a, p) - d(a, n) + margin, 0)`` with ``d`` the pairwise p-distance."""
    d_ap = pairwise_distance(anchor, positive, p, eps)
    d_an = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_an = d_an.minimum(pairwise_distance(positive, negative, p, eps))
    return _reduce(relu(d_ap - d_an + margin), reduction, "triplet_margin_loss")


def margin_ranking_loss(
    input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0, reduction: str = "mean"
) -> Tensor:
    """``max(0, -target * (input1 - input2) + margin)``."""
    return _reduce(relu(-target * (input1 - input2) + margin), reduction, "margin_ranking_loss")


def cosine_embedding_loss(
    input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0, reduction: str = "mean"
) -> Tensor:
    """``1 - cos`` where target is 1, ``max(0, cos - margin)`` where it is -1."""
    cos = cosine_similarity(input1, input2, dim=-1)
    zero = cos.new_zeros(())
    loss = (1.0 - cos).where(target == 1, zero) + relu(cos - margin).where(target == -1, zero)
    return _reduce(loss, reduction, "cosine_embedding_loss")


def _reduce(loss: Tensor, reduction: str, fn: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{fn}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def interpolate(
    input: Tensor,  # noqa: A002
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Tensor:
    """Resize the spatial dimensions of an (N, C, ...) input.

    Modes ``"nearest"``, ``"nearest-exact"``, ``"linear"``, ``"bilinear"``, ``"trilinear"`` and
    ``"area"`` (PyTorch's index rules, including ``align_corners``); give exactly one of
    ``size`` and ``scale_factor``. See also: ``funcnn.nn.interpolate``, :class:`nn.Upsample`.
    """
    return wrap(
        _fnn.interpolate(
            unwrap(input),
            size,
            scale_factor,
            mode=mode,
            align_corners=align_corners,
            recompute_scale_factor=recompute_scale_factor,
            antialias=antialias,
        )
    )


def upsample(
    input: Tensor,
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
) -> Tensor:  # noqa: A002
    """Deprecated name of :func:`interpolate`."""
    return interpolate(input, size, scale_factor, mode, align_corners)
