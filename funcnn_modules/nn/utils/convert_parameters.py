"""``parameters_to_vector`` / ``vector_to_parameters``: all parameters as one flat vector."""

from __future__ import annotations

from collections.abc import Iterable

from funcnn_modules._functions import cat
from funcnn_modules.tensor import Tensor

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """The parameters flattened and joined, in order (differentiable)."""
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of ``vec`` into the parameters' values (in place)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    params = list(parameters)
    total = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.numel() != total:
        raise ValueError(
            f"vector_to_parameters: vec has shape {tuple(vec.shape)} but the parameters hold "
            f"{total} values; expected a 1-D vector of that length"
        )
    start = 0
    for p in params:
        n = p.numel()
        p.data = vec[start : start + n].detach().view(p.shape).to(p.dtype)
        start += n
