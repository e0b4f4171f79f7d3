"""The op table: every ``funcnn.numpy`` op, how to draw its inputs, and what each row must pass.

PyTorch's OpInfo idea. ``DIFF_OPS`` lists every differentiable op (one row or more per op),
``NONDIFF_OPS`` the ops that deliberately carry no gradient (comparisons, arg-reductions,
rounding, creation). Every row of ``DIFF_OPS`` is checked for

* gradients against central differences, orders 1 and 2, reverse and forward mode;
* forward values equal to NumPy's (float64), and float32 in -> float32 out, float32 gradients;
* the same values and gradients (first and second order) on the strict stand-in backend, which
  proves the op uses only the array API standard and the backend seam.

``test_every_op_is_in_a_table`` fails when an op or primitive is added to ``funcnn.numpy``
without a row.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import pytest
from hypothesis import Phase, assume, find, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import funcnn as fn
import funcnn.numpy as fnp
from funcnn.autodiff import Box, Primitive
from funcnn.autodiff._core import strip
from funcnn.numpy import _creation, _elementwise, _indexing, _linalg, _reductions, _shape
from funcnn.testing import check_grads
from funcnn.testing import strategies as fst

INF = math.inf

# ----------------------------------------------------------------------------- the rows


@attrs.frozen
class Case:
    """One drawn input: ``args`` are float64 host arrays (differentiated), ``kw`` static options."""

    args: tuple
    kw: dict = attrs.field(factory=dict)


@attrs.frozen
class Op:
    """One row: the op under test, how to draw its inputs, how to call it and NumPy's answer.

    ``fn(*args, **kw)`` calls the op (default: ``op`` itself); ``ref`` is the NumPy reference
    (default: NumPy's function of the same name). ``prims`` names the private primitives the
    op is built on (checked to be reached). ``order`` is 1 where the op is not twice
    differentiable. ``tol`` overrides check_grads' tolerances.
    """

    name: str
    op: Any
    cases: st.SearchStrategy
    fn: Callable | None = None
    ref: Callable | None = None
    prims: tuple = ()
    order: int = 2
    tol: dict = attrs.field(factory=dict)
    traced_only: bool = False  # fn uses array methods that only traced values (and NumPy) have

    def call(self, *args: Any, **kw: Any) -> Any:
        return (self.fn or self.op)(*args, **kw)

    def call_ref(self, *args: Any, **kw: Any) -> Any:
        ref = self.ref or getattr(np, self.op.__name__)
        return ref(*args, **kw)


# ----------------------------------------------------------------------------- input strategies


def floats(shape: Any, lo: float = -2.0, hi: float = 2.0, min_magnitude: float = 0.0) -> Any:
    return fst.arrays(shape, elements=(lo, hi), min_magnitude=min_magnitude)


def grid(
    shape: Any, lo: float = -2.0, hi: float = 2.0, offset: float = 0.0123, unique: bool = True
) -> Any:
    """Values ``k * 0.05 + offset``: distinct (no ties for max/sort), never 0 (for abs/sign),
    and no two with equal magnitude (2 * offset is not a multiple of 0.05)."""
    ks = st.integers(math.ceil((lo - offset) / 0.05), math.floor((hi - offset) / 0.05))
    return hnp.arrays(
        np.float64, shape, elements=ks.map(lambda k: k * 0.05 + offset), unique=unique
    )


SHAPES = fst.shapes(max_dims=3, max_side=4)
SHAPES_1 = fst.shapes(min_dims=1, max_dims=3, max_side=4)


def axis_arg(draw: Any, nd: int, tuples: bool = True) -> Any:
    """None, an int (maybe negative), or a tuple of distinct axes."""
    if nd == 0:
        return None
    options = [st.none(), st.integers(-nd, nd - 1)]
    if tuples:
        options.append(
            st.lists(
                st.integers(-nd, nd - 1), min_size=1, max_size=nd, unique_by=lambda a: a % nd
            ).map(tuple)
        )
    return draw(st.one_of(options))


def reduced_size(shape: tuple, axis: Any) -> int:
    if axis is None:
        return math.prod(shape)
    axes = (axis,) if isinstance(axis, int) else axis
    return math.prod(shape[a] for a in axes)


@st.composite
def unary(
    draw: Any, lo: float = -2.0, hi: float = 2.0, distinct: bool = False, min_dims: int = 0
) -> Case:
    shape = draw(fst.shapes(min_dims=min_dims, max_dims=3, max_side=4))
    return Case((draw(grid(shape, lo, hi) if distinct else floats(shape, lo, hi)),))


@st.composite
def binary(
    draw: Any,
    x: tuple = (-2.0, 2.0),
    y: tuple = (-2.0, 2.0),
    y_away: float = 0.0,
    distinct: bool = False,
) -> Case:
    """Two arrays whose shapes broadcast together; ``distinct``: x and y never tie."""
    shapes = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4)
    ).input_shapes
    if distinct:
        return Case(
            (
                draw(grid(shapes[0], *x, unique=False)),
                draw(grid(shapes[1], *y, offset=0.0371, unique=False)),
            )
        )
    return Case((draw(floats(shapes[0], *x)), draw(floats(shapes[1], *y, min_magnitude=y_away))))


@st.composite
def reduction(
    draw: Any,
    lo: float = -2.0,
    hi: float = 2.0,
    distinct: bool = False,
    keepdims: bool = True,
    min_count: int = 1,
) -> Case:
    shape = draw(SHAPES)
    axis = axis_arg(draw, len(shape))
    assume(reduced_size(shape, axis) >= min_count)
    x = draw(grid(shape, lo, hi) if distinct else floats(shape, lo, hi))
    kw = {"axis": axis}
    if keepdims:
        kw["keepdims"] = draw(st.booleans())
    return Case((x,), kw)


@st.composite
def power_scalar_exponent(draw: Any) -> Case:
    p = draw(st.sampled_from([2, 3, 1, 0, -1, 0.5, -1.5, 2.5]))
    shape = draw(SHAPES)
    if isinstance(p, int):
        x = draw(floats(shape, -2.0, 2.0, min_magnitude=0.2))
    else:
        x = draw(floats(shape, 0.2, 2.0))
    return Case((x,), {"p": p})


@st.composite
def power_scalar_base(draw: Any) -> Case:
    return Case(
        (draw(floats(draw(SHAPES), -2.0, 2.0)),),
        {"b": draw(st.sampled_from([0.5, 2.0, 3.0, math.e]))},
    )


@st.composite
def where_case(draw: Any, scalar: bool = False) -> Case:
    shapes = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=4)
    ).input_shapes
    cond = draw(hnp.arrays(np.bool_, shapes[0]))
    if scalar:
        return Case((draw(floats(shapes[1])),), {"cond": cond})
    return Case((draw(floats(shapes[1])), draw(floats(shapes[2]))), {"cond": cond})


BOUNDS = [-1.4627, -0.5127, -0.0127, 0.3373, 0.9873]  # never on the grid of the clipped values


@st.composite
def clip_scalar(draw: Any) -> Case:
    lo, hi = sorted(draw(st.lists(st.sampled_from(BOUNDS), min_size=2, max_size=2, unique=True)))
    which = draw(st.sampled_from(["both", "min", "max"]))
    kw = {"a_min": None if which == "max" else lo, "a_max": None if which == "min" else hi}
    return Case((draw(grid(draw(SHAPES), unique=False)),), kw)


@st.composite
def clip_arrays(draw: Any) -> Case:
    shape = draw(SHAPES)
    b_shape = draw(fst.broadcastable_shapes(shape, max_dims=len(shape)))
    b_shape = b_shape[len(b_shape) - len(shape) :] if len(b_shape) > len(shape) else b_shape
    assume(np.broadcast_shapes(shape, b_shape) == shape)  # numpy and the array API agree then
    x = draw(grid(shape, unique=False))
    lo = draw(grid(b_shape, -1.5, 0.5, offset=0.0373, unique=False))
    width = draw(
        hnp.arrays(np.float64, b_shape, elements=st.integers(2, 30).map(lambda k: k * 0.05))
    )
    return Case((x, lo, lo + width))


@st.composite
def matmul_case(draw: Any) -> Case:
    n, k, m = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    batch = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3)
    ).input_shapes
    a_shape = (k,) if draw(st.booleans()) and draw(st.booleans()) else batch[0] + (n, k)
    b_shape = (k,) if draw(st.booleans()) and draw(st.booleans()) else batch[1] + (k, m)
    return Case((draw(floats(a_shape)), draw(floats(b_shape))))


@st.composite
def dot_case(draw: Any) -> Case:
    n, k, m, b = (draw(st.integers(1, 4)) for _ in range(4))
    a_shape = draw(st.sampled_from([(k,), (n, k), (b, n, k)]))
    b_shape = draw(st.sampled_from([(k,), (k, m), (2, k, m)]))
    return Case((draw(floats(a_shape)), draw(floats(b_shape))))


@st.composite
def tensordot_case(draw: Any) -> Case:
    a_shape = draw(SHAPES_1)
    if draw(st.booleans()):
        c = draw(st.integers(0, len(a_shape)))
        b_shape = a_shape[len(a_shape) - c :] + draw(fst.shapes(max_dims=2))
        return Case((draw(floats(a_shape)), draw(floats(b_shape))), {"axes": c})
    axes_a = draw(st.lists(st.integers(0, len(a_shape) - 1), min_size=1, unique=True))
    free_b = draw(fst.shapes(max_dims=2))
    b_dims = [a_shape[i] for i in axes_a] + list(free_b)
    perm = draw(st.permutations(range(len(b_dims))))
    b_shape = tuple(b_dims[p] for p in perm)
    axes_b = [perm.index(j) for j in range(len(axes_a))]
    return Case((draw(floats(a_shape)), draw(floats(b_shape))), {"axes": (axes_a, axes_b)})


EINSUM_SPECS = [
    "ij,jk->ik",
    "bij,bjk->bik",
    "...ij,...jk->...ik",
    "ij,jk",
    "i,i->",
    "i,i",
    "i,j->ij",
    "ij->ji",
    "ijk->k",
    "ij,j",
    "ii->",
    "ii->i",
    "bii->bi",
    "iji->j",
    "ij,ij->ij",
    "bhqd,bhkd->bhqk",
    "...i,...i->...",
    "ij,jk,kl->il",
]


@st.composite
def einsum_case(draw: Any) -> Case:
    spec = draw(st.sampled_from(EINSUM_SPECS))
    ins = spec.split("->")[0].split(",")
    sizes = {c: draw(st.integers(1, 3)) for c in sorted(set(spec) - set(",->."))}
    batch = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=len(ins), max_dims=2, max_side=3)
    ).input_shapes
    shapes = [
        tuple(batch[i]) + tuple(sizes[c] for c in t.replace("...", ""))
        if "..." in t
        else tuple(sizes[c] for c in t)
        for i, t in enumerate(ins)
    ]
    return Case(tuple(draw(floats(s)) for s in shapes), {"spec": spec})


@st.composite
def norm_case(draw: Any) -> Case:
    kind = draw(st.sampled_from(["all", "vector", "matrix"]))
    if kind == "all":
        shape = draw(SHAPES_1)
        axis = draw(st.sampled_from([None, tuple(range(len(shape)))])) if len(shape) <= 2 else None
        ord_ = None
    elif kind == "vector":
        shape = draw(SHAPES_1)
        axis = draw(st.integers(-len(shape), len(shape) - 1))
        if len(shape) == 1 and draw(st.booleans()):
            axis = None
        ord_ = draw(st.sampled_from([None, 2, 1, INF, -INF, 3, 1.5]))
    else:
        shape = draw(fst.shapes(min_dims=2, max_dims=3, max_side=4))
        axis = tuple(
            draw(st.lists(st.integers(0, len(shape) - 1), min_size=2, max_size=2, unique=True))
        )
        if len(shape) == 2 and draw(st.booleans()):
            axis = None
        ord_ = draw(st.sampled_from([None, "fro", 1, -1, INF, -INF]))
    x = draw(grid(shape, offset=0.0123))
    if kind == "matrix" and ord_ in (1, -1, INF, -INF):  # the max/min line sum must not tie
        row, col = (0, 1) if axis is None else axis
        sums = np.sum(np.abs(x), axis=row if ord_ in (1, -1) else col, keepdims=True)
        ordered = np.sort(np.moveaxis(sums, col if ord_ in (1, -1) else row, -1), axis=-1)
        assume(ordered.shape[-1] < 2 or np.min(np.diff(ordered, axis=-1)) > 1e-3)
    return Case((x,), {"ord": ord_, "axis": axis, "keepdims": draw(st.booleans())})


@st.composite
def norm_p_case(draw: Any) -> Case:
    """Vector p-norms other than 0, 1, 2 and inf (the ``_normp`` primitive)."""
    shape = draw(SHAPES_1)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    x = draw(grid(shape, offset=0.0123))
    ord_ = draw(st.sampled_from([3, 1.5, 0.5, -1.0]))
    return Case((x,), {"ord": ord_, "axis": axis, "keepdims": draw(st.booleans())})


@st.composite
def var_case(draw: Any) -> Case:
    case = draw(reduction(distinct=True, min_count=2))
    return Case(case.args, {**case.kw, "ddof": draw(st.sampled_from([0, 1]))})


@st.composite
def cumsum_case(draw: Any) -> Case:
    shape = draw(SHAPES)
    axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1)) if shape else None
    return Case((draw(floats(shape)),), {"axis": axis})


@st.composite
def sort_case(draw: Any) -> Case:
    shape = draw(SHAPES_1)
    axis = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    return Case((draw(grid(shape)),), {"axis": axis})


@st.composite
def reshape_case(draw: Any) -> Case:
    shape = draw(SHAPES)
    dims = list(draw(st.permutations(shape))) + [1] * draw(st.integers(0, 2))
    dims = list(draw(st.permutations(dims)))
    if dims and draw(st.booleans()):
        dims[draw(st.integers(0, len(dims) - 1))] = -1
    if draw(st.booleans()) and len(dims) >= 2 and -1 not in dims:
        dims = [dims[0] * dims[1], *dims[2:]]  # merge two axes
    return Case((draw(floats(shape)),), {"shape": tuple(dims)})


@st.composite
def distinct_sides(draw: Any, min_dims: int = 0) -> tuple:
    """A shape whose sides differ, so a wrong permutation of the axes cannot go unnoticed."""
    nd = draw(st.integers(min_dims, 4))
    return tuple(draw(st.permutations([2, 3, 1, 4][:nd])))


@st.composite
def transpose_case(draw: Any) -> Case:
    shape = draw(distinct_sides())
    axes = draw(st.none() | st.permutations(range(len(shape))).map(tuple))
    return Case((draw(floats(shape)),), {"axes": axes})


@st.composite
def swapaxes_case(draw: Any) -> Case:
    shape = draw(SHAPES_1)
    a = st.integers(-len(shape), len(shape) - 1)
    return Case((draw(floats(shape)),), {"axis1": draw(a), "axis2": draw(a)})


@st.composite
def moveaxis_case(draw: Any) -> Case:
    shape = draw(distinct_sides(min_dims=1))
    nd = len(shape)
    k = draw(st.integers(1, nd))
    src = draw(st.permutations(range(nd)))[:k]
    dst = draw(st.permutations(range(nd)))[:k]
    if k == 1 and draw(st.booleans()):
        return Case((draw(floats(shape)),), {"source": src[0] - nd, "destination": dst[0]})
    return Case((draw(floats(shape)),), {"source": list(src), "destination": list(dst)})


@st.composite
def expand_dims_case(draw: Any) -> Case:
    shape = draw(SHAPES)
    nd = len(shape) + draw(st.integers(1, 2))
    axes = tuple(
        draw(
            st.lists(
                st.integers(-nd, nd - 1),
                min_size=nd - len(shape),
                max_size=nd - len(shape),
                unique_by=lambda a: a % nd,
            )
        )
    )
    return Case((draw(floats(shape)),), {"axis": axes[0] if len(axes) == 1 else axes})


@st.composite
def squeeze_case(draw: Any) -> Case:
    shape = draw(fst.shapes(max_dims=4, max_side=3))
    ones = [i for i, s in enumerate(shape) if s == 1]
    axis = (
        draw(st.none() | st.lists(st.sampled_from(ones), unique=True).map(tuple)) if ones else None
    )
    return Case((draw(floats(shape)),), {"axis": axis})


@st.composite
def broadcast_to_case(draw: Any) -> Case:
    shape = draw(SHAPES)
    other = draw(fst.broadcastable_shapes(shape, max_dims=4))
    return Case((draw(floats(shape)),), {"shape": np.broadcast_shapes(shape, other)})


@st.composite
def concatenate_case(draw: Any) -> Case:
    shape = draw(SHAPES_1)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    n = draw(st.integers(1, 3))
    arrays = []
    for _ in range(n):
        s = list(shape)
        s[axis] = draw(st.integers(1, 3))
        arrays.append(draw(floats(tuple(s))))
    return Case(tuple(arrays), {"axis": axis})


@st.composite
def stack_case(draw: Any) -> Case:
    shape = draw(SHAPES)
    n = draw(st.integers(1, 3))
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    return Case(tuple(draw(floats(shape)) for _ in range(n)), {"axis": axis})


@st.composite
def split_case(draw: Any) -> Case:
    shape = draw(SHAPES_1)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[axis]
    if draw(st.booleans()):
        sections = draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0]))
    else:
        sections = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
    return Case((draw(floats(shape)),), {"indices_or_sections": sections, "axis": axis})


@st.composite
def pad_case(draw: Any) -> Case:
    shape = draw(SHAPES_1)
    w = st.integers(0, 5)  # wider than the axis too: NumPy extends it periodically
    form = draw(st.sampled_from(["int", "pair", "per-axis"]))
    if form == "int":
        pw: Any = draw(w)
    elif form == "pair":
        pw = (draw(w), draw(w))
    else:
        pw = tuple((draw(w), draw(w)) for _ in shape)
    mode = draw(st.sampled_from(["constant", "edge", "reflect", "symmetric", "wrap"]))
    if mode == "constant":
        kw = {"mode": mode, "constant_values": draw(st.sampled_from([0.0, 1.5]))}
    else:
        kw = {"mode": mode}
    return Case((draw(floats(shape)),), {"pad_width": pw, **kw})


@st.composite
def flip_case(draw: Any) -> Case:
    shape = draw(SHAPES)
    return Case((draw(floats(shape)),), {"axis": axis_arg(draw, len(shape))})


@st.composite
def tile_case(draw: Any) -> Case:
    reps = draw(st.integers(1, 3) | st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple))
    return Case((draw(floats(draw(SHAPES))),), {"reps": reps})


@st.composite
def repeat_case(draw: Any) -> Case:
    shape = draw(SHAPES)
    axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1)) if shape else None
    return Case((draw(floats(shape)),), {"repeats": draw(st.integers(1, 3)), "axis": axis})


@st.composite
def basic_index_case(draw: Any) -> Case:
    shape = draw(SHAPES_1)
    idx = draw(hnp.basic_indices(shape, allow_newaxis=True))
    return Case((draw(floats(shape)),), {"idx": idx})


@st.composite
def advanced_index_case(draw: Any) -> Case:
    """Integer arrays (repeats, negatives), boolean masks, lists, and mixes with slices."""
    shape = draw(fst.shapes(min_dims=1, max_dims=3, max_side=4))
    kind = draw(
        st.sampled_from(
            ["int arrays", "mask", "leading mask", "list", "int then slice", "slice then int"]
        )
    )
    ints = hnp.integer_array_indices
    if kind == "int arrays":
        idx: Any = draw(ints(shape, result_shape=fst.shapes(max_dims=2)))
    elif kind == "mask":
        idx = draw(hnp.arrays(np.bool_, shape))
    elif kind == "leading mask":
        idx = (draw(hnp.arrays(np.bool_, shape[:1])), Ellipsis)
    elif kind == "list":
        idx = draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1, max_size=5))
    elif kind == "int then slice":
        assume(len(shape) >= 2)
        idx = (
            draw(ints(shape[:1], result_shape=fst.shapes(min_dims=1, max_dims=2)))[0],
            slice(None, None, draw(st.sampled_from([1, -1, 2]))),
        )
    else:
        assume(len(shape) >= 2)
        idx = (
            slice(1, None),
            draw(ints(shape[1:2], result_shape=fst.shapes(min_dims=1, max_dims=2)))[0],
        )
    return Case((draw(floats(shape)),), {"idx": idx})


@st.composite
def index_update_case(draw: Any, repeats: bool) -> Case:
    shape = draw(SHAPES_1)
    if draw(st.booleans()):
        idx: Any = draw(hnp.basic_indices(shape))
    elif repeats:
        idx = draw(
            hnp.integer_array_indices(shape[:1], result_shape=fst.shapes(min_dims=1, max_dims=1))
        )
    else:
        rows = draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, unique=True))
        idx = (np.array(rows), Ellipsis)
    target = np.zeros(shape)[idx].shape
    if target and draw(st.booleans()):
        target = target[1:]  # v broadcasts along the leading axis
    return Case((draw(floats(shape)), draw(floats(target))), {"idx": idx})


@st.composite
def take_case(draw: Any) -> Case:
    shape = draw(SHAPES_1)
    axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1))
    n = math.prod(shape) if axis is None else shape[axis]
    idx = draw(hnp.arrays(np.int64, fst.shapes(max_dims=2), elements=st.integers(-n, n - 1)))
    return Case((draw(floats(shape)),), {"indices": idx, "axis": axis})


@st.composite
def take_along_axis_case(draw: Any) -> Case:
    shape = draw(SHAPES_1)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    i_shape = list(shape)
    i_shape[axis] = draw(st.integers(1, 4))
    n = shape[axis]
    idx = draw(hnp.arrays(np.int64, tuple(i_shape), elements=st.integers(-n, n - 1)))
    return Case((draw(floats(shape)),), {"indices": idx, "axis": axis})


@st.composite
def pair_same_shape(draw: Any) -> Case:
    """Two arrays of one 1-D or 2-D shape with at least 2 rows; x distinct (no ties)."""
    shape = draw(st.sampled_from([(2,), (3,), (4,), (2, 3), (3, 1), (4, 2), (2, 2)]))
    return Case((draw(grid(shape)), draw(floats(shape, 0.3, 2.0))))


# ----------------------------------------------------------------------------- NumPy references


def _np_index_add(x: Any, v: Any, *, idx: Any) -> Any:
    out = x.copy()
    np.add.at(out, idx, v)
    return out


def _np_index_update(x: Any, v: Any, *, idx: Any) -> Any:
    out = x.copy()
    out[idx] = v
    return out


def _operators(x: Any, y: Any) -> list:
    """Python operators, the same code on NumPy arrays and on traced values."""
    return [
        x + y,
        x - y,
        x * y,
        x / (y * y + 1.0),
        -x,
        +x,
        abs(x),
        1.0 - x,
        2.0 * x,
        x + 1.0,
        3.0 / (1.0 + x * x),
        x / 2.0,
        x**2,
        x**3.0,
        2.0**x,
        (y * y + 1.0) ** x,
        x.T,
    ]


def _methods(x: Any, y: Any) -> list:
    """Array methods on traced values, compared with the same methods on NumPy arrays."""
    s = x.shape
    return [
        x.sum(),
        x.sum(axis=0),
        x.mean(axis=-1),
        x.max(),
        x.min(axis=0),
        x.prod(axis=0),
        x.var(),
        x.std(axis=0),
        x.cumsum(axis=0),
        x.reshape(-1),
        x.reshape(s[::-1]),
        x.transpose(),
        x.swapaxes(0, -1),
        x.ravel(),
        x.flatten(),
        x.clip(-0.5, 0.5),
        x.dot(y.T),
        x.astype(x.dtype),
        x.copy(),
        x.squeeze(),
        x[0],
        x[..., ::-1],
    ]


# ----------------------------------------------------------------------------- the table


def _unary(op: Any, lo: float = -2.0, hi: float = 2.0, distinct: bool = False) -> Op:
    return Op(op.__name__, op, unary(lo, hi, distinct))


DIFF_OPS: list[Op] = [
    # elementwise, unary
    _unary(fnp.negative),
    _unary(fnp.exp),
    _unary(fnp.log, 0.1, 3.0),
    _unary(fnp.log2, 0.1, 3.0),
    _unary(fnp.log10, 0.1, 3.0),
    _unary(fnp.log1p, -0.5, 2.0),
    _unary(fnp.expm1),
    _unary(fnp.sqrt, 0.1, 3.0),
    _unary(fnp.sin, -3.0, 3.0),
    _unary(fnp.cos, -3.0, 3.0),
    _unary(fnp.tanh),
    _unary(fnp.abs, distinct=True),
    _unary(fnp.sign, distinct=True),
    _unary(fnp.square),
    # elementwise, binary (with broadcasting)
    Op("add", fnp.add, binary()),
    Op("subtract", fnp.subtract, binary()),
    Op("multiply", fnp.multiply, binary()),
    Op("divide", fnp.divide, binary(y_away=0.3)),
    Op("power", fnp.power, binary(x=(0.2, 2.0))),
    Op(
        "power[scalar exponent]",
        fnp.power,
        power_scalar_exponent(),
        fn=lambda x, p: fnp.power(x, p),
        ref=lambda x, p: np.power(x, p),
    ),
    Op(
        "power[scalar base]",
        fnp.power,
        power_scalar_base(),
        fn=lambda y, b: fnp.power(b, y),
        ref=lambda y, b: np.power(b, y),
    ),
    Op("maximum", fnp.maximum, binary(distinct=True)),
    Op("minimum", fnp.minimum, binary(distinct=True)),
    Op(
        "maximum[scalar]",
        fnp.maximum,
        unary(distinct=True),
        fn=lambda x: fnp.maximum(x, 0.0),
        ref=lambda x: np.maximum(x, 0.0),
    ),
    Op(
        "where",
        fnp.where,
        where_case(),
        fn=lambda x, y, cond: fnp.where(cond, x, y),
        ref=lambda x, y, cond: np.where(cond, x, y),
        prims=("_where",),
    ),
    Op(
        "where[scalar]",
        fnp.where,
        where_case(scalar=True),
        fn=lambda x, cond: fnp.where(cond, x, 0.0),
        ref=lambda x, cond: np.where(cond, x, 0.0),
    ),
    Op("clip[scalar bounds]", fnp.clip, clip_scalar(), prims=("_clip",)),
    Op("clip[array bounds]", fnp.clip, clip_arrays(), prims=("_clip",)),
    Op("operators", None, pair_same_shape(), fn=_operators, ref=_operators, traced_only=True),
    Op("array methods", None, pair_same_shape(), fn=_methods, ref=_methods, traced_only=True),
    # products
    Op("matmul", fnp.matmul, matmul_case()),
    Op("matmul[@]", None, matmul_case(), fn=lambda a, b: a @ b, ref=lambda a, b: a @ b),
    Op("dot", fnp.dot, dot_case()),
    Op("tensordot", fnp.tensordot, tensordot_case()),
    Op(
        "einsum",
        fnp.einsum,
        einsum_case(),
        fn=lambda *a, spec: fnp.einsum(spec, *a),
        ref=lambda *a, spec: np.einsum(spec, *a),
        prims=("_einsum",),
    ),
    Op("linalg.norm", fnp.linalg.norm, norm_case(), ref=np.linalg.norm, prims=("_norm2",)),
    Op("linalg.norm[p]", fnp.linalg.norm, norm_p_case(), ref=np.linalg.norm, prims=("_normp",)),
    # reductions and scans
    Op("sum", fnp.sum, reduction()),
    Op("mean", fnp.mean, reduction()),
    Op("max", fnp.max, reduction(distinct=True)),
    Op("min", fnp.min, reduction(distinct=True)),
    Op("prod", fnp.prod, reduction(-1.5, 1.5, distinct=True)),
    Op("var", fnp.var, var_case()),
    Op("std", fnp.std, var_case(), prims=("_std_sqrt",)),
    Op(
        "logsumexp",
        fnp.logsumexp,
        reduction(-3.0, 3.0),
        ref=lambda x, axis, keepdims: _np_logsumexp(x, axis, keepdims),
    ),
    Op("cumsum", fnp.cumsum, cumsum_case()),
    Op("sort", fnp.sort, sort_case()),
    # shapes
    Op("reshape", fnp.reshape, reshape_case(), prims=("_reshape",)),
    Op("ravel", fnp.ravel, unary()),
    Op("transpose", fnp.transpose, transpose_case(), prims=("_transpose",)),
    Op("swapaxes", fnp.swapaxes, swapaxes_case()),
    Op("moveaxis", fnp.moveaxis, moveaxis_case()),
    Op("expand_dims", fnp.expand_dims, expand_dims_case()),
    Op("squeeze", fnp.squeeze, squeeze_case()),
    Op("broadcast_to", fnp.broadcast_to, broadcast_to_case(), prims=("_broadcast_to",)),
    Op(
        "concatenate",
        fnp.concatenate,
        concatenate_case(),
        fn=lambda *a, axis: fnp.concatenate(a, axis=axis),
        ref=lambda *a, axis: np.concatenate(a, axis=axis),
        prims=("_concatenate",),
    ),
    Op(
        "stack",
        fnp.stack,
        stack_case(),
        fn=lambda *a, axis: fnp.stack(a, axis=axis),
        ref=lambda *a, axis: np.stack(a, axis=axis),
    ),
    Op("split", fnp.split, split_case()),
    Op("pad", fnp.pad, pad_case(), prims=("_pad",)),
    Op("flip", fnp.flip, flip_case(), prims=("_flip",)),
    Op("tile", fnp.tile, tile_case()),
    Op("repeat", fnp.repeat, repeat_case()),
    Op(
        "astype",
        fnp.astype,
        unary(),
        fn=lambda x: fnp.astype(x, "float32"),
        ref=lambda x: x.astype(np.float32),
        prims=("_astype",),
        tol={"eps": 1e-3, "atol": 1e-4, "rtol": 1e-4},
    ),
    # indexing
    Op(
        "getitem[basic]",
        fnp.getitem,
        basic_index_case(),
        fn=lambda x, idx: x[idx],
        ref=lambda x, idx: x[idx],
        prims=("_getitem",),
        traced_only=True,  # x[idx] on a raw strict array is array_api_strict's own indexing
    ),
    Op(
        "getitem[basic, function]",
        fnp.getitem,
        basic_index_case(),
        ref=lambda x, idx: x[idx],
    ),
    Op(
        "getitem[advanced]",
        fnp.getitem,
        advanced_index_case(),
        fn=lambda x, idx: fnp.getitem(x, idx),
        ref=lambda x, idx: x[idx],
    ),
    Op(
        "index_add",
        fnp.index_add,
        index_update_case(repeats=True),
        fn=lambda x, v, idx: fnp.index_add(x, idx, v),
        ref=_np_index_add,
        prims=("_index_add",),
    ),
    Op(
        "index_update",
        fnp.index_update,
        index_update_case(repeats=False),
        fn=lambda x, v, idx: fnp.index_update(x, idx, v),
        ref=_np_index_update,
        prims=("_index_update",),
    ),
    Op("take", fnp.take, take_case()),
    Op("take_along_axis", fnp.take_along_axis, take_along_axis_case(), prims=("_take_along_axis",)),
]


def _np_logsumexp(x: Any, axis: Any, keepdims: bool) -> Any:
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis) if axis is not None else out.reshape(())


# ----------------------------------------------------------------------------- non-differentiable ops


@st.composite
def ties(draw: Any) -> Case:
    """Two broadcastable arrays of small integers as floats: plenty of ties."""
    shapes = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4)
    ).input_shapes
    ints = st.integers(-2, 2).map(float)
    return Case(tuple(draw(hnp.arrays(np.float64, s, elements=ints)) for s in shapes))


@st.composite
def bools(draw: Any, n: int = 1) -> Case:
    shapes = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=n, max_dims=3, max_side=4)
    ).input_shapes
    return Case(tuple(draw(hnp.arrays(np.bool_, s)) for s in shapes))


@st.composite
def with_specials(draw: Any) -> Case:
    el = st.sampled_from([0.0, -1.5, 2.5, 0.5, -0.5, INF, -INF, math.nan])
    return Case((draw(hnp.arrays(np.float64, draw(SHAPES), elements=el)),))


@st.composite
def arg_reduction(draw: Any) -> Case:
    shape = draw(SHAPES_1)
    axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1))
    return Case(
        (draw(hnp.arrays(np.float64, shape, elements=st.integers(-2, 2).map(float))),),
        {"axis": axis, "keepdims": draw(st.booleans())},
    )


@st.composite
def bool_reduction(draw: Any) -> Case:
    shape = draw(SHAPES)
    return Case(
        (draw(hnp.arrays(np.bool_, shape)),),
        {"axis": axis_arg(draw, len(shape)), "keepdims": draw(st.booleans())},
    )


@st.composite
def argsort_case(draw: Any) -> Case:
    shape = draw(SHAPES_1)
    x = draw(
        hnp.arrays(np.float64, shape, elements=st.integers(-2, 2).map(float))
    )  # ties: stable order
    return Case((x,), {"axis": draw(st.integers(-len(shape), len(shape) - 1))})


@st.composite
def divisor_pair(draw: Any) -> Case:
    case = draw(ties())
    return Case((case.args[0] * 1.25, np.where(case.args[1] == 0, 3.0, case.args[1])))


@st.composite
def shape_only(draw: Any) -> Case:
    return Case((draw(floats(draw(SHAPES))),))


F32 = np.float32

NONDIFF_OPS: list[Op] = [
    *[
        Op(name, getattr(fnp, name), ties())
        for name in ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")
    ],
    Op("logical_and", fnp.logical_and, bools(2)),
    Op("logical_or", fnp.logical_or, bools(2)),
    Op("logical_not", fnp.logical_not, bools(1)),
    Op("isfinite", fnp.isfinite, with_specials()),
    Op("isnan", fnp.isnan, with_specials()),
    Op("floor", fnp.floor, unary(-3.0, 3.0)),
    Op("round", fnp.round, unary(-3.0, 3.0)),
    Op("floor_divide", fnp.floor_divide, divisor_pair()),
    Op("remainder", fnp.remainder, divisor_pair()),
    Op("argmax", fnp.argmax, arg_reduction()),
    Op("argmin", fnp.argmin, arg_reduction()),
    Op(
        "argsort",
        fnp.argsort,
        argsort_case(),
        ref=lambda x, axis: np.argsort(x, axis=axis, kind="stable"),
    ),
    Op("all", fnp.all, bool_reduction()),
    Op("any", fnp.any, bool_reduction()),
    # creation: float32 by default, on the backend of `like`
    Op(
        "zeros",
        fnp.zeros,
        shape_only(),
        fn=lambda x: fnp.zeros(x.shape, like=x),
        ref=lambda x: np.zeros(x.shape, F32),
    ),
    Op(
        "ones",
        fnp.ones,
        shape_only(),
        fn=lambda x: fnp.ones(x.shape, like=x),
        ref=lambda x: np.ones(x.shape, F32),
    ),
    Op(
        "full",
        fnp.full,
        shape_only(),
        fn=lambda x: fnp.full(x.shape, 2.5, like=x),
        ref=lambda x: np.full(x.shape, 2.5, F32),
    ),
    Op(
        "arange",
        fnp.arange,
        shape_only(),
        fn=lambda x: fnp.arange(1, x.size + 3, 2, like=x),
        ref=lambda x: np.arange(1, x.size + 3, 2),
    ),
    Op(
        "arange[float]",
        fnp.arange,
        shape_only(),
        fn=lambda x: fnp.arange(0.5, x.size, like=x),
        ref=lambda x: np.arange(0.5, x.size, dtype=F32),
    ),
    Op(
        "eye",
        fnp.eye,
        shape_only(),
        fn=lambda x: fnp.eye(x.size + 1, 3, k=1, like=x),
        ref=lambda x: np.eye(x.size + 1, 3, k=1, dtype=F32),
    ),
    Op("zeros_like", fnp.zeros_like, shape_only()),
    Op("ones_like", fnp.ones_like, shape_only()),
    Op(
        "full_like",
        fnp.full_like,
        shape_only(),
        fn=lambda x: fnp.full_like(x, -1.5),
        ref=lambda x: np.full_like(x, -1.5),
    ),
    Op(
        "asarray",
        fnp.asarray,
        shape_only(),
        fn=lambda x: fnp.asarray([[1.5, 2.0]], like=x),
        ref=lambda x: np.asarray([[1.5, 2.0]], F32),
    ),
    Op(
        "array",
        fnp.array,
        shape_only(),
        fn=lambda x: fnp.array(x, dtype="float32"),
        ref=lambda x: x.astype(F32),
    ),
]

# ----------------------------------------------------------------------------- helpers


def _leaves(out: Any) -> list:
    return fn.tree.leaves(out)


def _weights(shape: tuple) -> np.ndarray:
    """A fixed, uneven cotangent (a plain sum cannot tell a transpose from its inverse)."""
    n = math.prod(shape)
    return np.cos(np.arange(n) * 1.3 + 0.4).reshape(shape) + 0.5


def _weighted_sum(out: Any) -> Any:
    total = 0.0
    for leaf in _leaves(out):
        raw = strip(leaf)
        w = fnp.asarray(_weights(tuple(raw.shape)), dtype=raw.dtype, like=raw)
        total = total + fnp.sum(leaf * w)
    return total


def _to(tree: Any, device: str) -> Any:
    return fn.backend.device_put(tree, device)


def _host(tree: Any) -> Any:
    return fn.backend.to_numpy(tree)


def _f32(args: tuple) -> tuple:
    return tuple(a.astype(np.float32) for a in args)


def _assert_close(actual: Any, expected: Any, rtol: float, what: str) -> None:
    a_leaves, e_leaves = _leaves(_host(actual)), _leaves(expected)
    assert len(a_leaves) == len(e_leaves), (
        f"{what}: {len(a_leaves)} outputs, expected {len(e_leaves)}"
    )
    for a, e in zip(a_leaves, e_leaves, strict=True):
        a, e = np.asarray(a), np.asarray(e)
        assert a.shape == e.shape, f"{what}: shape {a.shape}, expected {e.shape}"
        scale = 1.0 + (float(np.max(np.abs(e))) if e.size and np.all(np.isfinite(e)) else 0.0)
        np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * scale, err_msg=what)


def _grads(row: Op, args: tuple, kw: dict) -> tuple:
    def loss(*a: Any) -> Any:
        return _weighted_sum(row.call(*a, **kw))

    return fn.grad(loss, argnums=tuple(range(len(args))))(*args)


def _second_order(row: Op, args: tuple, kw: dict, directions: tuple) -> tuple:
    """The gradient of <grad(loss), v>: a Hessian-vector product, rules of rules included."""

    def inner(*a: Any) -> Any:
        gs = _grads(row, a, kw)
        return sum(fnp.sum(g * v) for g, v in zip(gs, directions, strict=True))

    return fn.grad(inner, argnums=tuple(range(len(args))))(*args)


def _directions(args: tuple) -> tuple:
    return tuple(np.sin(np.arange(a.size) * 0.7 + 1.0).reshape(a.shape) for a in args)


# ----------------------------------------------------------------------------- the checks


def _ids(rows: list[Op]) -> list[str]:
    return [r.name for r in rows]


@pytest.mark.parametrize("row", DIFF_OPS, ids=_ids(DIFF_OPS))
@settings(max_examples=12)
@given(data=st.data())
def test_grads_match_finite_differences(row: Op, data: Any) -> None:
    case = data.draw(row.cases)
    check_grads(
        lambda *a: row.call(*a, **case.kw),
        case.args,
        order=row.order,
        modes=("rev", "fwd"),
        **row.tol,
    )


@pytest.mark.parametrize("row", DIFF_OPS, ids=_ids(DIFF_OPS))
@settings(max_examples=8)
@given(data=st.data())
def test_values_dtypes_and_backends(row: Op, data: Any) -> None:
    case = data.draw(row.cases)
    args, kw = case.args, case.kw
    # float64: NumPy's values
    expected = row.call_ref(*args, **kw)
    _assert_close(row.call(*args, **kw), expected, 1e-12, f"{row.name}: float64 values vs NumPy")
    grads = _grads(row, args, kw)
    # float32 in -> float32 out and float32 gradients
    args32 = _f32(args)
    out32 = row.call(*args32, **kw)
    for leaf in _leaves(out32):
        assert leaf.dtype == np.float32, f"{row.name}: float32 inputs gave a {leaf.dtype} output"
    _assert_close(out32, expected, 2e-5, f"{row.name}: float32 values")
    grads32 = _grads(row, args32, kw)
    for g in grads32:
        assert g.dtype == np.float32, f"{row.name}: float32 inputs gave a {g.dtype} gradient"
    _assert_close(grads32, grads, 1e-4, f"{row.name}: float32 gradients")
    # the strict stand-in backend: same values, gradients and second-order products
    s_args, s_kw = _to(args, "strict"), _to(kw, "strict")
    s_outs = [fn.vjp(lambda *a: row.call(*a, **s_kw), *s_args)[0]]  # traced
    if not row.traced_only:
        s_outs.append(row.call(*s_args, **s_kw))  # raw arrays: the fast path
    for s_out in s_outs:
        for leaf in _leaves(s_out):
            assert fn.backend.backend_name(leaf) == "strict", (
                f"{row.name}: output left the strict backend"
            )
        _assert_close(s_out, expected, 1e-12, f"{row.name}: strict backend values")
    s_grads = _grads(row, s_args, s_kw)
    for g in s_grads:
        assert fn.backend.backend_name(g) == "strict", (
            f"{row.name}: gradient left the strict backend"
        )
    _assert_close(s_grads, grads, 1e-12, f"{row.name}: strict backend gradients")
    if row.order == 2:
        v = _directions(args)
        hv = _second_order(row, args, kw, v)
        s_hv = _second_order(row, s_args, s_kw, _to(v, "strict"))
        _assert_close(s_hv, hv, 1e-10, f"{row.name}: strict backend second derivatives")


@pytest.mark.parametrize("row", NONDIFF_OPS, ids=_ids(NONDIFF_OPS))
@settings(max_examples=8)
@given(data=st.data())
def test_nondiff_values_and_backends(row: Op, data: Any) -> None:
    case = data.draw(row.cases)
    args, kw = case.args, case.kw
    expected = row.call_ref(*args, **kw)
    out = row.call(*args, **kw)
    assert np.asarray(out).dtype == np.asarray(expected).dtype, f"{row.name}: dtype {out.dtype}"
    np.testing.assert_array_equal(out, expected)
    s_out = row.call(*_to(args, "strict"), **_to(kw, "strict"))
    assert fn.backend.backend_name(s_out) == "strict"
    np.testing.assert_array_equal(_host(s_out), expected)
    if all(a.dtype.kind == "f" for a in args):
        # on traced values the result is a constant: no box, no gradient

        def traced(*a: Any) -> Any:
            res = row.call(*a, **kw)
            assert not isinstance(res, Box), f"{row.name} returned a traced value"
            return a[0]

        fn.vjp(traced, *args)


def _public_ops() -> dict[str, Any]:
    ops = {}
    for name in fnp.__all__:
        obj = getattr(fnp, name)
        if callable(obj) and getattr(obj, "__module__", "").startswith("funcnn.numpy"):
            ops[name] = obj
    ops["linalg.norm"] = fnp.linalg.norm
    return ops


MODULES = (_creation, _elementwise, _indexing, _linalg, _reductions, _shape)


def _module_primitives() -> dict[str, Primitive]:
    return {
        f"{mod.__name__}.{name}": obj
        for mod in MODULES
        for name, obj in vars(mod).items()
        if isinstance(obj, Primitive)
    }


def test_every_op_is_in_a_table() -> None:
    rows = DIFF_OPS + NONDIFF_OPS
    covered = {id(r.op) for r in rows if r.op is not None}
    declared = {p for r in rows for p in r.prims}
    missing = [name for name, obj in _public_ops().items() if id(obj) not in covered]
    assert not missing, f"funcnn.numpy ops without a row in DIFF_OPS or NONDIFF_OPS: {missing}"
    unlisted = [
        name
        for name, prim in _module_primitives().items()
        if id(prim) not in covered and name.rsplit(".", 1)[1] not in declared
    ]
    assert not unlisted, (
        f"primitives in funcnn.numpy modules without a row (or a row's prims): {unlisted}"
    )
    diff_ids = {id(r.op) for r in DIFF_OPS if r.op is not None}
    both = [r.name for r in NONDIFF_OPS if id(r.op) in diff_ids]
    assert not both, f"ops listed as both differentiable and not: {both}"


def _reached(row: Op, case: Case) -> set:
    """Names of the primitives recorded when the row runs on traced inputs."""
    names: set = set()

    def f(*a: Any) -> Any:
        out = row.call(*a, **case.kw)
        stack = [leaf._node for leaf in _leaves(out) if isinstance(leaf, Box)]
        seen = set()
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if node.prim is not None:
                names.add(node.prim.name)
            stack.extend(node.parents)
        return out

    fn.vjp(f, *case.args)
    return names


@pytest.mark.parametrize(
    "row", [r for r in DIFF_OPS if r.prims], ids=_ids([r for r in DIFF_OPS if r.prims])
)
def test_declared_primitives_are_reached(row: Op) -> None:
    find(
        row.cases,
        lambda case: set(row.prims) <= _reached(row, case),
        settings=settings(max_examples=300, database=None, deadline=None, phases=[Phase.generate]),
    )
