"""Pytrees: nested containers of arrays.

Containers are dict (children in sorted-key order), list, tuple, namedtuple, None (no
children), any attrs class (its ``init`` fields are the children) and types added with
:func:`register`. As in JAX, an ``OrderedDict`` (a PyTorch ``state_dict``) keeps its
insertion order and a ``defaultdict`` its sorted keys and ``default_factory``. Everything
else is a leaf.

    >>> leaves, treedef = flatten({"weight": w, "bias": b})    # leaves == [b, w]
    >>> unflatten(treedef, [b2, w2])                            # {"bias": b2, "weight": w2}
    >>> map_with_path(lambda p, x: p, {"fc": {"weight": w}})    # {"fc": {"weight": "fc.weight"}}

Paths join keys with ".", so a parameter pytree's paths read like a PyTorch ``state_dict``.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Callable
from typing import Any

import attrs

__all__ = [
    "PyTreeDef",
    "flatten",
    "unflatten",
    "leaves",
    "structure",
    "map",
    "map_with_path",
    "leaves_with_path",
    "register",
    "all_equal_structure",
]

# cls -> (flatten: node -> (children, aux, keys), unflatten: (aux, children) -> node)
_registry: dict[type, tuple[Callable, Callable]] = {}
_leaf_types: set[type] = set()  # types seen to be leaves


def register(cls: type, flatten_fn: Callable, unflatten_fn: Callable) -> None:
    """Make ``cls`` a container.

    Args:
        cls: the type.
        flatten_fn: ``node -> (children, aux)``; ``aux`` is hashable static data.
        unflatten_fn: ``(aux, children) -> node``.
    """

    def flat(node: Any) -> tuple[list, Any, list]:
        children, aux = flatten_fn(node)
        children = list(children)
        return children, aux, [str(i) for i in range(len(children))]

    _registry[cls] = (flat, lambda aux, children: unflatten_fn(aux, children))
    _leaf_types.discard(cls)


def _flat_dict(d: dict) -> tuple[list, Any, list]:
    try:
        keys = sorted(d)
    except TypeError as e:
        kinds = sorted({type(k).__name__ for k in d})
        raise TypeError(
            f"tree: a dict's keys are its children's order and must sort; got keys of types "
            f"{', '.join(kinds)} ({list(d)!r}). Use keys of one type (e.g. all str)."
        ) from e
    return [d[k] for k in keys], tuple(keys), [str(k) for k in keys]


_registry[dict] = (_flat_dict, lambda aux, ch: dict(zip(aux, ch)))
_registry[OrderedDict] = (
    lambda d: (list(d.values()), tuple(d), [str(k) for k in d]),
    lambda aux, ch: OrderedDict(zip(aux, ch)),
)


def _flat_defaultdict(d: defaultdict) -> tuple[list, Any, list]:
    children, keys, names = _flat_dict(d)
    return children, (d.default_factory, keys), names


_registry[defaultdict] = (
    _flat_defaultdict,
    lambda aux, ch: defaultdict(aux[0], zip(aux[1], ch)),
)
_registry[list] = (
    lambda n: (list(n), len(n), [str(i) for i in range(len(n))]),
    lambda aux, ch: list(ch),
)
_registry[tuple] = (
    lambda n: (list(n), len(n), [str(i) for i in range(len(n))]),
    lambda aux, ch: tuple(ch),
)
_registry[type(None)] = (lambda n: ([], None, []), lambda aux, ch: None)


def _handler(node: Any) -> tuple[Callable, Callable] | None:
    t = type(node)
    h = _registry.get(t)
    if h is not None:
        return h
    if t in _leaf_types:
        return None
    if isinstance(node, tuple) and hasattr(t, "_fields"):  # namedtuple
        h = (
            lambda n: (list(n), None, list(type(n)._fields)),
            lambda aux, ch, _t=t: _t(*ch),
        )
        _registry[t] = h
        return h
    if attrs.has(t):
        names = [a.name for a in attrs.fields(t) if a.init]
        inits = {a.name: (a.alias or a.name.lstrip("_")) for a in attrs.fields(t) if a.init}
        h = (
            lambda n, _names=names: ([getattr(n, k) for k in _names], None, list(_names)),
            lambda aux, ch, _t=t, _names=names, _inits=inits: _t(
                **{_inits[k]: c for k, c in zip(_names, ch)}
            ),
        )
        _registry[t] = h
        return h
    _leaf_types.add(t)  # a leaf type: the checks above run once per type
    return None


class PyTreeDef:
    """The structure of a pytree: container types, static data and where the leaves go."""

    __slots__ = ("kind", "aux", "children", "num_leaves", "keys")

    def __init__(self, kind: Any, aux: Any, children: tuple, keys: tuple) -> None:
        self.kind = kind  # None for a leaf
        self.aux = aux
        self.children = children
        self.keys = keys
        self.num_leaves = 1 if kind is None else sum(c.num_leaves for c in children)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PyTreeDef)
            and self.kind is other.kind
            and self.aux == other.aux
            and self.children == other.children
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.aux, self.children))

    def __repr__(self) -> str:
        if self.kind is None:
            return "*"
        inner = ", ".join(f"{k}: {c!r}" for k, c in zip(self.keys, self.children))
        return f"PyTreeDef({getattr(self.kind, '__name__', self.kind)}{{{inner}}})"


_LEAF = PyTreeDef(None, None, (), ())


def _flatten(node: Any, out: list, is_leaf: Callable | None) -> PyTreeDef:
    if is_leaf is not None and is_leaf(node):
        out.append(node)
        return _LEAF
    h = _handler(node)
    if h is None:
        out.append(node)
        return _LEAF
    children, aux, keys = h[0](node)
    return PyTreeDef(
        type(node), aux, tuple(_flatten(c, out, is_leaf) for c in children), tuple(keys)
    )


def flatten(tree: Any, is_leaf: Callable[[Any], bool] | None = None) -> tuple[list, PyTreeDef]:
    """Leaves in a fixed order, and the structure to rebuild the tree from them."""
    out: list = []
    treedef = _flatten(tree, out, is_leaf)
    return out, treedef


def _unflatten(treedef: PyTreeDef, it: Any) -> Any:
    if treedef.kind is None:
        return next(it)
    children = [_unflatten(c, it) for c in treedef.children]
    return _handler_for_kind(treedef.kind)[1](treedef.aux, children)


def _handler_for_kind(kind: type) -> tuple[Callable, Callable]:
    h = _registry.get(kind)
    if h is None:
        raise TypeError(f"tree.unflatten: {kind!r} is not a registered container")
    return h


def unflatten(treedef: PyTreeDef, leaves: list) -> Any:
    """Rebuild a tree of structure ``treedef`` from ``leaves``."""
    leaves = list(leaves)
    if len(leaves) != treedef.num_leaves:
        raise ValueError(
            f"tree.unflatten: the structure has {treedef.num_leaves} leaves, got {len(leaves)}"
        )
    return _unflatten(treedef, iter(leaves))


def leaves(tree: Any, is_leaf: Callable[[Any], bool] | None = None) -> list:
    """The leaves of ``tree`` in flatten order."""
    return flatten(tree, is_leaf)[0]


def structure(tree: Any, is_leaf: Callable[[Any], bool] | None = None) -> PyTreeDef:
    """The structure of ``tree``."""
    return flatten(tree, is_leaf)[1]


def map(f: Callable, tree: Any, *rest: Any, is_leaf: Callable[[Any], bool] | None = None) -> Any:  # noqa: A001
    """Apply ``f`` leaf-wise over ``tree`` and trees ``rest`` of the same structure."""
    flat, treedef = flatten(tree, is_leaf)
    others = [_flat_like(treedef, r, i, is_leaf, "map") for i, r in enumerate(rest)]
    return unflatten(treedef, [f(*xs) for xs in zip(flat, *others)])


def _flat_like(treedef: PyTreeDef, other: Any, i: int, is_leaf: Any, fn: str) -> list:
    """The leaves of ``other``, which must have the structure ``treedef``."""
    r_flat, r_def = flatten(other, is_leaf)
    if r_def != treedef:
        raise ValueError(
            f"tree.{fn}: tree {i + 1} has a different structure from the first tree:\n"
            f"  {treedef!r}\n  {r_def!r}"
        )
    return r_flat


def _paths(treedef: PyTreeDef, prefix: tuple, out: list) -> None:
    if treedef.kind is None:
        out.append(prefix)
        return
    for k, c in zip(treedef.keys, treedef.children):
        _paths(c, prefix + (k,), out)


def leaves_with_path(
    tree: Any, is_leaf: Callable[[Any], bool] | None = None
) -> list[tuple[str, Any]]:
    """``[(path, leaf), ...]``; a path joins the keys with "." (``"fc1.weight"``)."""
    flat, treedef = flatten(tree, is_leaf)
    paths: list = []
    _paths(treedef, (), paths)
    return [(".".join(p), leaf) for p, leaf in zip(paths, flat)]


def map_with_path(
    f: Callable, tree: Any, *rest: Any, is_leaf: Callable[[Any], bool] | None = None
) -> Any:
    """Like :func:`map`, with the leaf's dotted path as ``f``'s first argument."""
    flat, treedef = flatten(tree, is_leaf)
    paths: list = []
    _paths(treedef, (), paths)
    others = [_flat_like(treedef, r, i, is_leaf, "map_with_path") for i, r in enumerate(rest)]
    return unflatten(treedef, [f(".".join(p), *xs) for p, *xs in zip(paths, flat, *others)])


def all_equal_structure(*trees: Any) -> bool:
    """True when every tree has the same structure."""
    defs = [structure(t) for t in trees]
    return all(d == defs[0] for d in defs)
