"""Normalisation modules: BatchNorm1d/2d/3d, LayerNorm, GroupNorm."""

from __future__ import annotations

from typing import Any

from funcnn.autodiff._core import strip
from funcnn_modules import _fnn
from funcnn_modules.nn import functional as F
from funcnn_modules.nn._common import float_dtype, place, set_params
from funcnn_modules.nn._module import Module
from funcnn_modules.tensor import Tensor, unwrap, wrap

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm"]

_STATE = ("running_mean", "running_var", "num_batches_tracked")


class _ChannelNorm(Module):
    """What batch and instance norm share (PyTorch's ``_NormBase``): an optional per-channel
    weight and bias, optional running statistics, their resets and the repr. ``_init`` makes
    them: ``(num_features, affine=, track_running_stats=, dtype=) -> (params, state)``."""

    _init: Any = None

    def __init__(
        self,
        num_features: int,
        eps: float,
        momentum: float | None,
        affine: bool,
        track_running_stats: bool,
        device: Any,
        dtype: Any,
        bias: bool,
    ) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        params, state = type(self)._init(
            num_features,
            affine=affine,
            track_running_stats=track_running_stats,
            dtype=float_dtype(dtype),
        )
        if affine and not bias:
            params.pop("bias")
        if not affine:
            self.register_parameter("weight", None)
        if not affine or not bias:
            self.register_parameter("bias", None)
        set_params(self, params, device)
        for name in _STATE:
            self.register_buffer(name, None if state is None else wrap(place(state[name], device)))

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches counted."""
        if self.track_running_stats:
            _, state = type(self)._init(
                self.num_features, track_running_stats=True, dtype=self.running_mean._value.dtype
            )
            for name in _STATE:
                getattr(self, name)._set_value(place(state[name], self.running_mean.device))

    def reset_parameters(self) -> None:
        """Running statistics reset; weight ones and bias zeros."""
        self.reset_running_stats()
        if self.affine:
            params, _ = type(self)._init(
                self.num_features,
                affine=True,
                track_running_stats=False,
                dtype=self.weight._value.dtype,
            )
            if self.bias is None:
                params.pop("bias")
            set_params(self, params, self.weight.device)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


class _BatchNorm(_ChannelNorm):
    _dims: tuple = (2, 3)
    _init = staticmethod(_fnn.init_batch_norm)

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats, device, dtype, bias
        )

    def _check_input(self, input: Tensor) -> None:  # noqa: A002
        if input.ndim not in self._dims:
            want = " or ".join(f"{d}D" for d in self._dims)
            raise ValueError(f"expected {want} input (got {input.ndim}D input)")

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        """Normalise with batch statistics (training) or the running ones (eval).

        See also: ``funcnn.nn.batch_norm``.
        """
        self._check_input(input)
        state = None
        if self.track_running_stats:
            state = {name: self._buffers[name]._value for name in _STATE}
        params = {k: unwrap(v) for k, v in self._parameters.items() if v is not None}
        y, new_state = _fnn.batch_norm(
            params,
            state,
            unwrap(input),
            training=self.training,
            momentum=self.momentum,
            eps=self.eps,
        )
        if self.training and state is not None:
            for name in _STATE:
                self._buffers[name]._set_value(strip(new_state[name]))
        return wrap(y)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs."""

    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs."""

    _dims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalisation of (N, C, D, H, W) inputs."""

    _dims = (5,)


class LayerNorm(Module):
    """Normalise over the trailing ``normalized_shape`` dimensions, then scale and shift.

    See also: ``funcnn.nn.layer_norm``.
    """

    def __init__(
        self,
        normalized_shape: Any,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.normalized_shape = (
            (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        )
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        params = _fnn.init_layer_norm(
            self.normalized_shape,
            elementwise_affine=elementwise_affine,
            bias=bias,
            dtype=float_dtype(dtype),
        )
        if not elementwise_affine:
            self.register_parameter("weight", None)
        if "bias" not in params:
            self.register_parameter("bias", None)
        set_params(self, params, device)

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
            f"bias={self.bias is not None}"
        )


class GroupNorm(Module):
    """Normalise groups of channels of (N, C, ...) inputs. See also: ``funcnn.nn.group_norm``."""

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if num_channels % num_groups != 0:
            raise ValueError(
                f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})"
            )
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        params = _fnn.init_group_norm(
            num_groups, num_channels, affine=affine, dtype=float_dtype(dtype)
        )
        if affine and not bias:
            params.pop("bias")
        if not affine:
            self.register_parameter("weight", None)
        if "bias" not in params:
            self.register_parameter("bias", None)
        set_params(self, params, device)

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self.bias is not None}"
        )
