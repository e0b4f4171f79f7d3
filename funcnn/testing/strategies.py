"""Hypothesis strategies for property-based gradient checks of your own functions.

from hypothesis import given
from funcnn.testing import check_grads, strategies as st

@given(st.arrays(st.shapes(max_dims=3)))
def test_my_op(x):
    check_grads(my_op, (x,), order=2)
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as hst
from hypothesis.extra import numpy as hnp

from funcnn import backend

__all__ = [
    "shapes",
    "arrays",
    "broadcastable_shapes",
    "broadcastable_pair",
    "pytrees",
    "on_backend",
]


def shapes(
    min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4
) -> hst.SearchStrategy:
    """Array shapes (tuples of ints)."""
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def arrays(
    shape: Any = None,
    dtype: Any = "float64",
    elements: tuple[float, float] = (-2.0, 2.0),
    min_magnitude: float = 0.0,
) -> hst.SearchStrategy:
    """Host NumPy arrays of ``shape`` (a tuple or a strategy) with finite elements in ``elements``.

    ``min_magnitude`` keeps elements away from zero (for ops like log, division or sqrt).
    """
    shape = shapes() if shape is None else shape
    lo, hi = elements
    elems = hst.floats(lo, hi, allow_nan=False, allow_infinity=False, width=64)
    if min_magnitude > 0:
        elems = elems.filter(lambda v: abs(v) >= min_magnitude)
    return hnp.arrays(
        dtype=backend.float64 if dtype == "float64" else dtype, shape=shape, elements=elems
    )


def broadcastable_shapes(shape: tuple, min_dims: int = 0, max_dims: int = 3) -> hst.SearchStrategy:
    """Shapes that broadcast with ``shape`` (NumPy rules)."""
    return hnp.broadcastable_shapes(
        shape, min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=4
    )


@hst.composite
def broadcastable_pair(
    draw: Any, max_dims: int = 3, elements: tuple[float, float] = (-2.0, 2.0)
) -> tuple:
    """Two float64 arrays whose shapes broadcast together (often differently)."""
    a_shape = draw(shapes(max_dims=max_dims))
    b_shape = draw(broadcastable_shapes(a_shape, max_dims=max_dims))
    if draw(hst.booleans()):
        a_shape, b_shape = b_shape, a_shape
    return draw(arrays(a_shape, elements=elements)), draw(arrays(b_shape, elements=elements))


def pytrees(leaves: hst.SearchStrategy | None = None, max_leaves: int = 6) -> hst.SearchStrategy:
    """Nested dicts, lists and tuples of arrays."""
    leaves = arrays(shapes(max_dims=2)) if leaves is None else leaves
    return hst.recursive(
        leaves,
        lambda children: hst.one_of(
            hst.lists(children, min_size=1, max_size=3),
            hst.lists(children, min_size=1, max_size=3).map(tuple),
            hst.dictionaries(hst.sampled_from("abcdefgh"), children, min_size=1, max_size=3),
        ),
        max_leaves=max_leaves,
    )


def on_backend(x: Any, name: str) -> Any:
    """Move a host array (or pytree) to backend ``name`` ('numpy' or 'strict')."""
    return backend.device_put(x, {"numpy": "cpu", "strict": "strict", "cupy": "cuda"}[name])
