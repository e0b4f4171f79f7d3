"""Mini-batches for the functional face: slice a pytree of arrays along its first axis.

    key = fn.random.key(0)
    for epoch in range(10):
        key, sub = fn.random.split(key)
        for xb, yb in fn.data.batches(sub, (x, y), batch_size=64):
            params, state = train_step(params, state, xb, yb)

The order comes from ``funcnn.random.permutation`` (same key, same batches), so an epoch is
reproducible. ``batches`` never copies the whole data set: each batch is a slice (unshuffled) or
one gather (shuffled). See also ``funcnn_modules.utils.data.DataLoader``, the PyTorch-style face.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator
from typing import Any

from funcnn import backend, tree
from funcnn import random as frandom

__all__ = ["batches", "num_batches"]


def _check_batch_size(fn: str, batch_size: Any) -> int:
    try:
        bs = operator.index(batch_size)
    except TypeError:
        raise TypeError(
            f"funcnn.data.{fn}: batch_size must be a positive int, got {type(batch_size).__name__} {batch_size!r}"
        ) from None
    if isinstance(batch_size, bool) or bs < 1:
        raise ValueError(f"funcnn.data.{fn}: batch_size must be a positive int, got {batch_size!r}")
    return bs


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """How many batches :func:`batches` yields for ``n`` examples.

    Args:
        n: the number of examples.
        batch_size: the batch size (>= 1).
        drop_last: whether a last, smaller batch is dropped.
    Returns:
        ``n // batch_size`` with ``drop_last``, else ``ceil(n / batch_size)``.
    """
    bs = _check_batch_size("num_batches", batch_size)
    return n // bs if drop_last else math.ceil(n / bs)


def _leading_size(arrays: Any) -> int:
    paths = tree.leaves_with_path(arrays)
    if not paths:
        raise ValueError("funcnn.data.batches: arrays holds no arrays")
    sizes = []
    for path, leaf in paths:
        shape = getattr(leaf, "shape", None)
        if shape is None or len(shape) == 0:
            raise ValueError(
                f"funcnn.data.batches: every leaf must be an array with a first (batch) axis; "
                f"the leaf at {path or '<root>'!r} is {type(leaf).__name__} with shape {shape}"
            )
        sizes.append((path or "<root>", int(shape[0])))
    if len({n for _, n in sizes}) != 1:
        listing = ", ".join(f"{p!r}: {n}" for p, n in sizes)
        raise ValueError(
            f"funcnn.data.batches: all arrays must have the same size along axis 0, got {listing}"
        )
    return sizes[0][1]


def batches(
    key: Any,
    arrays: Any,
    batch_size: int,
    shuffle: bool = True,
    drop_last: bool = False,
) -> Iterator[Any]:
    """Yield mini-batches of ``arrays`` (any pytree of arrays sharing their first axis).

    Args:
        key: a ``funcnn.random`` key that fixes the order; may be None when ``shuffle=False``.
        arrays: a pytree of arrays of shape (N, ...), e.g. ``(x, y)`` or ``{"image": x, "label": y}``.
        batch_size: examples per batch (>= 1).
        shuffle: draw a random order of the N examples from ``key`` (else keep the order).
        drop_last: drop the last batch when it has fewer than ``batch_size`` examples.
    Yields:
        Pytrees like ``arrays`` whose leaves have shape (B, ...), with B = ``batch_size`` (the
        last one may be smaller unless ``drop_last``).
    Raises:
        ValueError: if the leaves disagree on N, or ``shuffle`` is set without a key.
    """
    bs = _check_batch_size("batches", batch_size)
    n = _leading_size(arrays)
    if shuffle and key is None:
        raise ValueError(
            "funcnn.data.batches: shuffle=True needs a key, e.g. fn.random.key(0); "
            "pass shuffle=False for a fixed order"
        )
    return _iterate(key, arrays, n, bs, shuffle, num_batches(n, bs, drop_last))


def _iterate(key: Any, arrays: Any, n: int, bs: int, shuffle: bool, count: int) -> Iterator[Any]:
    if not shuffle:
        for b in range(count):
            sl = slice(b * bs, min(n, (b + 1) * bs))
            yield tree.map(lambda a, _s=sl: a[_s], arrays)
        return
    order = frandom.permutation(key, n)
    perms: dict[Any, Any] = {}  # the permutation on each backend the leaves live on

    def gather(a: Any, idx: slice) -> Any:
        xp = backend.namespace(a)
        perm = perms.get(xp)
        if perm is None:
            perm = perms[xp] = backend.asarray(order, like=a)
        return backend.getitem(a, perm[idx])

    for b in range(count):
        sl = slice(b * bs, min(n, (b + 1) * bs))
        yield tree.map(lambda a, _s=sl: gather(a, _s), arrays)
