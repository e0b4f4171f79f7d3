"""Linear, Identity, Flatten, Unflatten, Embedding and Dropout modules."""

from __future__ import annotations

from typing import Any

from funcnn_modules import _fnn, _random
from funcnn_modules.nn import functional as F
from funcnn_modules.nn._common import float_dtype, set_params
from funcnn_modules.nn._module import Module
from funcnn_modules.tensor import Tensor

__all__ = [
    "Identity",
    "Linear",
    "NonDynamicallyQuantizableLinear",
    "Flatten",
    "Unflatten",
    "Embedding",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
]


class Identity(Module):
    """Returns its input (constructor arguments are ignored, as in PyTorch)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return input


class Linear(Module):
    """``y = x @ weight.T + bias``: (..., in_features) -> (..., out_features).

    Parameters ``weight`` (out_features, in_features) and ``bias`` (out_features,), initialised
    as PyTorch does (U(-1/sqrt(in), 1/sqrt(in))). See also: ``funcnn.nn.linear``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self._has_bias = bias
        self._factory = (device, float_dtype(dtype))
        if not bias:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw fresh weights from the global generator."""
        device, dtype = self._factory
        params = _fnn.init_linear(
            _random.next_key(),
            self.in_features,
            self.out_features,
            bias=self._has_bias,
            dtype=dtype,
        )
        set_params(self, params, device)

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class NonDynamicallyQuantizableLinear(Linear):
    """A Linear under another name (the output projection of MultiheadAttention, as in PyTorch)."""


class Flatten(Module):
    """Merge dimensions ``start_dim..end_dim`` (by default all but the batch dimension)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dimension ``dim`` into ``unflattened_size``."""

    def __init__(self, dim: int, unflattened_size: Any) -> None:
        super().__init__()
        self.dim = dim
        self.unflattened_size = (
            tuple(unflattened_size) if isinstance(unflattened_size, list) else unflattened_size
        )

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return input.unflatten(self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Embedding(Module):
    """A lookup table: integer indices (any shape) -> indices.shape + (embedding_dim,).

    ``weight`` (num_embeddings, embedding_dim) is drawn from N(0, 1); the ``padding_idx`` row
    is zero and gets no gradient. See also: ``funcnn.nn.embedding``.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: Tensor | None = None,
        _freeze: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if max_norm is not None or scale_grad_by_freq or sparse:
            raise NotImplementedError(
                "Embedding: max_norm, scale_grad_by_freq and sparse are not supported"
            )
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise AssertionError("Padding_idx must be within num_embeddings")
            padding_idx %= num_embeddings
        self.padding_idx = padding_idx
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        self._factory = (device, float_dtype(dtype))
        if _weight is None:
            self.reset_parameters()
        else:
            set_params(self, {"weight": _weight._value}, device)
        if _freeze:
            self.weight.requires_grad_(False)

    def reset_parameters(self) -> None:
        """Draw fresh weights from the global generator (the padding row zeroed)."""
        device, dtype = self._factory
        params = _fnn.init_embedding(
            _random.next_key(),
            self.num_embeddings,
            self.embedding_dim,
            padding_idx=self.padding_idx,
            dtype=dtype,
        )
        set_params(self, params, device)

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return F.embedding(input, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s

    @classmethod
    def from_pretrained(
        cls, embeddings: Tensor, freeze: bool = True, padding_idx: int | None = None, **kwargs: Any
    ) -> Embedding:
        """An Embedding whose weight is ``embeddings`` (num, dim); frozen unless ``freeze=False``."""
        rows, cols = embeddings.shape
        return cls(
            rows, cols, padding_idx=padding_idx, _weight=embeddings, _freeze=freeze, **kwargs
        )


class Dropout(Module):
    """In training mode, zero each element with probability ``p`` and scale the rest by 1/(1-p).

    Masks come from the global generator. See also: ``funcnn.nn.dropout``.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class _ChannelDropout(Dropout):
    """Drops whole channels: the mask has shape (N, C, 1, ...)."""

    _spatial = 1

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        if not self.training or self.p == 0.0:
            return input
        shape = tuple(input.shape)
        lead = shape[: len(shape) - self._spatial]
        mask_shape = lead + (1,) * self._spatial
        ones = input.new_ones(*mask_shape)
        mask = F.dropout(ones, self.p, True)
        return input * mask


class Dropout1d(_ChannelDropout):
    """Dropout of whole channels of (N, C, L) inputs."""

    _spatial = 1


class Dropout2d(_ChannelDropout):
    """Dropout of whole channels of (N, C, H, W) inputs."""

    _spatial = 2


class Dropout3d(_ChannelDropout):
    """Dropout of whole channels of (N, C, D, H, W) inputs."""

    _spatial = 3
