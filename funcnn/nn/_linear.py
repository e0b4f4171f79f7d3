"""Linear (fully connected) and embedding layers, and their initialisers.

``linear`` is one fused primitive, ``y = x @ W.T + b`` as a single GEMM on a 2-D reshape of
``x``; its VJP rules are GEMMs written with ``fnp.matmul``, so they differentiate again.
``embedding`` is a gather whose gradient is a scatter-add (``backend.scatter_add``, a sorted
segment sum on NumPy), and the two are each other's VJPs.
"""

from __future__ import annotations

import math
from typing import Any

from funcnn import backend, random
from funcnn import numpy as fnp
from funcnn.autodiff._core import primitive, strip
from funcnn.nn._conv import check_floating, check_same_dtype, weight_and_bias

__all__ = ["linear", "embedding", "init_linear", "init_embedding"]

ns = backend.namespace

_LINEAR_LAYOUT = "funcnn stores weights as (out_features, in_features), like PyTorch."


# ----------------------------------------------------------------------------- linear


@primitive
def _linear(x: Any, w: Any, b: Any) -> Any:
    """``x @ w.T + b`` for x (..., in), w (out, in), b (out,) or None, as one GEMM."""
    xp = ns(x, w, b)
    out_f, in_f = w.shape
    y = xp.matmul(xp.reshape(x, (-1, in_f)), xp.matrix_transpose(w))
    if b is not None:
        y += b
    return xp.reshape(y, tuple(x.shape[:-1]) + (out_f,))


def _linear_vjp(g: Any, ans: Any, argnums: tuple, x: Any, w: Any, b: Any) -> list:
    out_f, in_f = w.shape
    g2 = fnp.reshape(g, (-1, out_f))
    grads = []
    for i in argnums:
        if i == 0:
            grads.append(fnp.reshape(fnp.matmul(g2, w), tuple(x.shape)))
        elif i == 1:
            grads.append(fnp.matmul(fnp.transpose(g2), fnp.reshape(x, (-1, in_f))))
        else:
            grads.append(fnp.sum(g2, axis=0))
    return grads


_linear.defvjp_joint(_linear_vjp)


def linear(params: dict, x: Any) -> Any:
    """Affine map ``y = x @ weight.T + bias`` over the last axis of ``x``.

    Args:
        params: ``{"weight": (out_features, in_features), "bias": (out_features,)}``; bias may
            be absent or None.
        x: (..., in_features), of the weight's floating dtype.

    Returns:
        (..., out_features), of ``x``'s dtype.

    Raises:
        ValueError: when ``x.shape[-1] != in_features`` or the shapes are not as above.
        TypeError: when ``x`` is not floating or its dtype differs from the weight's.

    See also: ``funcnn_modules.nn.Linear``, :func:`init_linear`.
    """
    w, b = weight_and_bias("linear", params)
    rx, rw, rb = strip(x), strip(w), strip(b)
    for name, a in (("x", rx), ("weight", rw), ("bias", rb)):
        if a is not None:
            check_floating("linear", name, a)
    check_same_dtype("linear", x=rx, weight=rw, bias=rb)
    if rw.ndim != 2:
        raise ValueError(
            f"linear: weight must have shape (out_features, in_features), got shape {tuple(rw.shape)}"
        )
    if rx.ndim == 0 or rx.shape[-1] != rw.shape[1]:
        raise ValueError(
            f"linear: x has shape {tuple(rx.shape)} but weight has shape {tuple(rw.shape)}; "
            f"x.shape[-1] must equal weight.shape[1] ({rw.shape[1]}). {_LINEAR_LAYOUT}"
        )
    if rb is not None and tuple(rb.shape) != (rw.shape[0],):
        raise ValueError(
            f"linear: bias has shape {tuple(rb.shape)} but weight has shape {tuple(rw.shape)}; "
            f"bias must have shape ({rw.shape[0]},)"
        )
    return _linear(x, w, b)


# ----------------------------------------------------------------------------- embedding


@primitive
def _embedding(w: Any, indices: Any, *, padding_idx: int | None) -> Any:
    """Rows of ``w`` (num, dim) at integer ``indices`` (any shape) -> indices.shape + (dim,)."""
    xp = ns(w, indices)
    rows = xp.take(w, xp.reshape(indices, (-1,)), axis=0)
    return xp.reshape(rows, tuple(indices.shape) + (w.shape[1],))


@primitive
def _embedding_grad(g: Any, indices: Any, *, num: int, padding_idx: int | None) -> Any:
    """The adjoint of the gather: rows of ``g`` summed into a (num, dim) array at ``indices``.

    The row ``padding_idx`` (when given) gets no gradient, as in PyTorch.
    """
    dim = g.shape[-1]
    out = backend.scatter_add(
        (num, dim), ns(indices).reshape(indices, (-1,)), ns(g).reshape(g, (-1, dim))
    )
    if padding_idx is not None:
        out[padding_idx, :] = 0
    return out


def _embedding_grad_vjp(
    h: Any, ans: Any, g: Any, indices: Any, *, num: int, padding_idx: int | None
) -> Any:
    if padding_idx is not None:
        h = fnp.index_update(h, padding_idx, 0.0)
    return _embedding(h, indices, padding_idx=None)


_embedding.defvjp(
    lambda g, ans, w, indices, *, padding_idx: _embedding_grad(
        g, indices, num=w.shape[0], padding_idx=padding_idx
    )
)
_embedding_grad.defvjp(_embedding_grad_vjp)


def embedding(params: dict, indices: Any, *, padding_idx: int | None = None) -> Any:
    """Look up rows of an embedding table.

    Args:
        params: ``{"weight": (num_embeddings, embedding_dim)}``.
        indices: integer array of any shape, each in ``[0, num_embeddings)``, on the weight's
            backend.
        padding_idx: a row (negative counts from the end) whose gradient is always zero,
            as in ``torch.nn.Embedding(padding_idx=...)``.

    Returns:
        ``indices.shape + (embedding_dim,)``.

    Raises:
        TypeError: when ``indices`` is not an integer array.
        IndexError: when an index is out of range.

    See also: ``funcnn_modules.nn.Embedding``, :func:`init_embedding`.
    """
    w, _ = weight_and_bias("embedding", params)
    rw = strip(w)
    if rw.ndim != 2:
        raise ValueError(
            f"embedding: weight must have shape (num_embeddings, embedding_dim), got shape {tuple(rw.shape)}"
        )
    num = rw.shape[0]
    idx = strip(indices)
    if not backend.is_array(idx):
        idx = backend.asarray(idx, like=rw)
    if not backend.is_integer(idx) or idx.dtype == ns(idx).bool:
        raise TypeError(
            f"embedding: indices must be an integer array, got dtype {idx.dtype}; "
            "cast them with fnp.astype(indices, fnp.int64)"
        )
    if idx.size:
        xp = ns(idx)
        lo, hi = int(xp.min(idx)), int(xp.max(idx))
        if lo < 0 or hi >= num:
            raise IndexError(
                f"embedding: indices must lie in [0, {num}) for a weight of shape {tuple(rw.shape)}, "
                f"got values from {lo} to {hi}"
            )
    pad = _padding_index("embedding", padding_idx, num)
    return _embedding(w, idx, padding_idx=pad)


def _padding_index(fn: str, padding_idx: int | None, num: int) -> int | None:
    if padding_idx is None:
        return None
    if (
        not isinstance(padding_idx, int)
        or isinstance(padding_idx, bool)
        or not -num <= padding_idx < num
    ):
        raise ValueError(
            f"{fn}: padding_idx must be an int in [-{num}, {num}) (num_embeddings={num}), got {padding_idx!r}"
        )
    return padding_idx % num


# ----------------------------------------------------------------------------- initialisers


def init_linear(
    key: Any, in_features: int, out_features: int, bias: bool = True, dtype: Any = None
) -> dict:
    """Parameters of :func:`linear` with PyTorch's default initialisation.

    Weight and bias are uniform on ``[-1/sqrt(in_features), 1/sqrt(in_features))``
    (``kaiming_uniform_(a=sqrt(5))`` as in ``torch.nn.Linear``).

    Args:
        key: a ``funcnn.random`` key.
        in_features, out_features: sizes (>= 0).
        bias: whether to make a bias.
        dtype: floating dtype (default float32).

    Returns:
        ``{"weight": (out_features, in_features), "bias": (out_features,)}``; no "bias" key
        when ``bias`` is False.
    """
    for name, v in (("in_features", in_features), ("out_features", out_features)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValueError(f"init_linear: {name} must be a non-negative int, got {v!r}")
    kw, kb = random.split(key)
    bound = 1.0 / math.sqrt(in_features) if in_features else 0.0
    params = {"weight": _uniform(kw, (out_features, in_features), dtype, bound)}
    if bias:
        params["bias"] = _uniform(kb, (out_features,), dtype, bound)
    return params


def _uniform(key: Any, shape: tuple, dtype: Any, bound: float) -> Any:
    if bound == 0.0:
        return fnp.zeros(shape, dtype=dtype)
    return random.uniform(key, shape, dtype, -bound, bound)


def init_embedding(
    key: Any,
    num_embeddings: int,
    embedding_dim: int,
    padding_idx: int | None = None,
    dtype: Any = None,
) -> dict:
    """Parameters of :func:`embedding` with PyTorch's default initialisation.

    Args:
        key: a ``funcnn.random`` key.
        num_embeddings, embedding_dim: table size.
        padding_idx: a row to set to zero (negative counts from the end).
        dtype: floating dtype (default float32).

    Returns:
        ``{"weight": (num_embeddings, embedding_dim)}``, standard normal entries.
    """
    for name, v in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValueError(f"init_embedding: {name} must be a non-negative int, got {v!r}")
    weight = random.normal(key, (num_embeddings, embedding_dim), dtype)
    pad = _padding_index("init_embedding", padding_idx, num_embeddings)
    if pad is not None:
        weight[pad, :] = 0
    return {"weight": weight}
