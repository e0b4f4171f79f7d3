"""Pytrees (``funcnn.tree``): containers, flatten/unflatten, map, paths, structure errors."""

from __future__ import annotations

from collections import OrderedDict, defaultdict, namedtuple
from typing import Any, NamedTuple

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funcnn as fn
from funcnn import tree
from funcnn.testing import strategies as fst

Point = namedtuple("Point", ["x", "y"])


class Pair(NamedTuple):
    first: Any
    second: Any


@attrs.define
class State:
    count: Any
    mu: Any
    _hidden: Any = None  # a private field: its init argument is "hidden"
    cache: Any = attrs.field(init=False, default="not a child")


@attrs.frozen
class Frozen:
    a: Any
    b: Any


class Registered:
    """A user class made a container with tree.register."""

    def __init__(self, children: list, tag: str) -> None:
        self.children = children
        self.tag = tag

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Registered)
            and self.tag == other.tag
            and _equal(self.children, other.children)
        )


tree.register(Registered, lambda r: (r.children, r.tag), lambda tag, ch: Registered(list(ch), tag))


def _equal(a: Any, b: Any) -> bool:
    """Same structure and equal leaves (arrays compared by value)."""
    la, da = tree.flatten(a)
    lb, db = tree.flatten(b)
    return da == db and all(
        np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y for x, y in zip(la, lb)
    )


W, B = np.ones((2, 3)), np.zeros(2)

# one of each container, nested
EVERYTHING = {
    "fc": {"weight": W, "bias": B},
    "list": [1.5, (2, None), Point(3, [4])],
    "pair": Pair(first=5, second={"z": 6, "a": 7}),
    "state": State(count=8, mu=[9, 10], hidden=11),
    "frozen": Frozen(a=12, b=None),
    "reg": Registered([13, {"k": 14}], tag="t"),
    "od": OrderedDict([("z", 15), ("a", 16)]),
    "dd": defaultdict(list, {"y": 17, "b": 18}),
    "none": None,
}
EVERYTHING_LEAVES = [
    18, 17,  # dd: sorted keys
    12,  # frozen.a (frozen.b is None: no leaf)
    1.5, 2, 3, 4,  # list
    15, 16,  # od: insertion order
    5, 7, 6,  # pair: first, then the dict in sorted-key order
    13, 14,  # reg
    8, 9, 10, 11,  # state: init fields only
]  # fmt: skip
EVERYTHING_PATHS = [
    "dd.b", "dd.y", "fc.bias", "fc.weight", "frozen.a",
    "list.0", "list.1.0", "list.2.x", "list.2.y.0",
    "od.z", "od.a", "pair.first", "pair.second.a", "pair.second.z",
    "reg.0", "reg.1.k", "state.count", "state.mu.0", "state.mu.1", "state._hidden",
]  # fmt: skip


def test_flatten_order_and_leaves() -> None:
    leaves, treedef = tree.flatten(EVERYTHING)
    fc = [leaves.pop(2), leaves.pop(2)]  # bias, weight sit between dd and frozen
    assert fc[0] is B and fc[1] is W
    assert leaves == EVERYTHING_LEAVES
    assert treedef.num_leaves == len(EVERYTHING_LEAVES) + 2


def test_unflatten_round_trip_keeps_every_container_type() -> None:
    leaves, treedef = tree.flatten(EVERYTHING)
    back = tree.unflatten(treedef, leaves)
    assert _equal(back, EVERYTHING)
    assert type(back["list"][2]) is Point and type(back["pair"]) is Pair
    assert type(back["state"]) is State and back["state"]._hidden == 11
    assert back["state"].cache == "not a child"
    assert type(back["frozen"]) is Frozen and type(back["reg"]) is Registered
    assert type(back["od"]) is OrderedDict and list(back["od"]) == ["z", "a"]
    assert type(back["dd"]) is defaultdict and back["dd"].default_factory is list
    assert back["none"] is None and back["list"][1] == (2, None)


def test_paths_read_like_a_state_dict() -> None:
    paths = [p for p, _ in tree.leaves_with_path(EVERYTHING)]
    assert paths == EVERYTHING_PATHS
    named = tree.map_with_path(lambda p, x: p, {"fc1": {"weight": W, "bias": B}})
    assert named == {"fc1": {"weight": "fc1.weight", "bias": "fc1.bias"}}


def test_map_over_several_trees() -> None:
    a = {"w": np.arange(3.0), "s": State(count=1, mu=(2.0, 3.0))}
    b = {"w": np.ones(3), "s": State(count=10, mu=(20.0, 30.0))}
    out = tree.map(lambda x, y: x + y, a, b)
    np.testing.assert_array_equal(out["w"], np.arange(3.0) + 1)
    assert out["s"] == State(count=11, mu=(22.0, 33.0))
    out = tree.map_with_path(lambda p, x, y: f"{p}={x * y}", a, b)
    assert out["s"].mu == ("s.mu.0=40.0", "s.mu.1=90.0")


def test_none_is_an_empty_container() -> None:
    leaves, treedef = tree.flatten(None)
    assert leaves == [] and tree.unflatten(treedef, []) is None
    assert tree.map(lambda x: x + 1, {"a": None, "b": 1}) == {"a": None, "b": 2}
    assert tree.leaves([None, (None,), {"x": None}]) == []


def test_is_leaf_stops_the_descent() -> None:
    t = {"a": (1, 2), "b": [(3, 4)]}
    leaves = tree.leaves(t, is_leaf=lambda x: isinstance(x, tuple))
    assert leaves == [(1, 2), (3, 4)]
    out = tree.map(lambda x: sum(x), t, is_leaf=lambda x: isinstance(x, tuple))
    assert out == {"a": 3, "b": [7]}


def test_structure_equality() -> None:
    s = tree.structure
    assert s({"a": 1, "b": [2]}) == s({"b": [0], "a": 9})
    assert s([1, 2]) != s((1, 2))  # list and tuple differ
    assert s(Point(1, 2)) != s(Pair(1, 2)) != s((1, 2))
    assert s({"a": 1}) != s({"b": 1})
    assert s([1, None]) != s([1, 2])
    assert s(OrderedDict(a=1, b=2)) != s(OrderedDict(b=2, a=1))  # the order is the structure
    assert s(Registered([1], "x")) != s(Registered([1], "y"))
    assert hash(s({"a": [1, 2]})) == hash(s({"a": [3, 4]}))
    assert tree.all_equal_structure([1, {"a": 2}], [3, {"a": 4}])
    assert not tree.all_equal_structure([1, {"a": 2}], [3, {"b": 4}])


@pytest.mark.parametrize(
    "first, second",
    [
        ({"a": 1, "b": 2}, {"a": 1, "c": 2}),
        ([1, 2], [1, 2, 3]),
        ([1, 2], (1, 2)),
        ({"a": None}, {"a": 1}),
        (State(1, 2), Frozen(1, 2)),
    ],
)
def test_structure_mismatch_is_an_error(first: Any, second: Any) -> None:
    with pytest.raises(ValueError, match=r"tree\.map: tree 1 has a different structure"):
        tree.map(lambda x, y: x, first, second)
    with pytest.raises(ValueError, match=r"tree\.map_with_path: tree 1 has a different"):
        tree.map_with_path(lambda p, x, y: x, first, second)


def test_unflatten_with_the_wrong_number_of_leaves() -> None:
    _, treedef = tree.flatten({"a": 1, "b": [2, 3]})
    with pytest.raises(ValueError, match="the structure has 3 leaves, got 2"):
        tree.unflatten(treedef, [1, 2])


def test_unsortable_dict_keys_are_a_clear_error() -> None:
    with pytest.raises(TypeError, match="keys of types int, str"):
        tree.flatten({1: "a", "b": 2})


def test_leaves_are_not_descended_into() -> None:
    # arrays, strings, scalars and unregistered objects are leaves, even when iterable
    obj = object()
    t = [np.arange(3), "abc", 2.5, obj, range(3)]
    assert [id(x) for x in tree.leaves(t)] == [id(x) for x in t]


def test_a_state_dict_maps_through_the_numpy_ops() -> None:
    sd = OrderedDict([("weight", W), ("bias", B)])
    zeros = tree.map(fn.numpy.zeros_like, sd)
    assert type(zeros) is OrderedDict and list(zeros) == ["weight", "bias"]
    assert zeros["weight"].shape == (2, 3)


# ----------------------------------------------------------------------------- property-based


def _containers(children: st.SearchStrategy) -> st.SearchStrategy:
    small = st.lists(children, max_size=3)
    keys = st.sampled_from("abcdef")
    return st.one_of(
        small,
        small.map(tuple),
        st.dictionaries(keys, children, max_size=3),
        st.dictionaries(keys, children, max_size=3).map(lambda d: OrderedDict(reversed(d.items()))),
        st.tuples(children, children).map(lambda t: Point(*t)),
        st.tuples(children, children).map(lambda t: State(*t)),
        st.tuples(children, children).map(lambda t: Frozen(*t)),
        small.map(lambda ch: Registered(ch, tag="r")),
    )


LEAVES = st.one_of(st.none(), st.integers(-5, 5), fst.arrays(fst.shapes(max_dims=2)))
TREES = st.recursive(LEAVES, _containers, max_leaves=12)


@settings(max_examples=40, deadline=None)
@given(t=TREES)
def test_round_trip_and_map_on_drawn_trees(t: Any) -> None:
    leaves, treedef = tree.flatten(t)
    assert all(x is not None for x in leaves)
    assert len(leaves) == treedef.num_leaves
    assert _equal(tree.unflatten(treedef, leaves), t)
    assert tree.structure(tree.unflatten(treedef, leaves)) == treedef
    # map keeps the structure and visits the leaves in flatten order
    seen: list = []
    out = tree.map(lambda x: seen.append(x) or f"leaf {len(seen)}", t)
    assert [id(x) for x in seen] == [id(x) for x in leaves]
    assert tree.structure(out) == treedef
    assert tree.leaves(out) == [f"leaf {i + 1}" for i in range(len(leaves))]
    # one path per leaf, all distinct, in the same order
    paths = [p for p, _ in tree.leaves_with_path(t)]
    assert len(paths) == len(leaves) and len(set(paths)) == len(paths)
    assert tree.leaves(tree.map_with_path(lambda p, x: p, t)) == paths


@settings(max_examples=20, deadline=None)
@given(t=fst.pytrees())
def test_grad_of_a_drawn_pytree_has_its_structure(t: Any) -> None:
    g = fn.grad(lambda p: sum(fn.numpy.sum(x * x) for x in tree.leaves(p)) + 0.0)(t)
    assert tree.structure(g) == tree.structure(t)
    for gx, x in zip(tree.leaves(g), tree.leaves(t)):
        np.testing.assert_allclose(gx, 2 * x)
