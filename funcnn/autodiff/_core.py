"""The VJP engine: boxes, primitives, graph nodes and the backward pass.

How it works, in one screen:

* A *trace* is one differentiation in progress (one call of ``grad``/``vjp``), numbered by a
  global counter, so a trace started later always has a larger number. Trace 0 is the eager
  trace of ``funcnn_modules.Tensor``: it lives across calls and sits below every other trace.
* A :class:`Box` wraps a value being differentiated in a trace and points at the :class:`Node`
  that made it. Boxes overload Python operators, so user code reads like NumPy.
* A :class:`Primitive` is a function on raw arrays with one VJP rule per argument. Called with
  boxes, it unboxes the arguments of the *highest* trace, calls itself again on them (so lower
  traces record too: that is what makes higher-order derivatives work without perturbation
  confusion), then boxes the answer with a new node holding the residuals the rules need.
* :func:`backward` walks the nodes reachable from an output in reverse creation order (a node
  is always newer than its parents), calling each rule once and summing cotangents per node.
  It is iterative, frees each cotangent and (unless told to keep the graph) each residual as
  soon as it is used, and builds no reference cycles.

Rules are written with funcnn ops, so at the top level they run as plain array math and inside
an outer trace they are recorded, and can be differentiated again.
"""

from __future__ import annotations

import itertools
import operator
import os
import sys
from collections.abc import Callable
from typing import Any

from funcnn import backend

__all__ = [
    "Box",
    "Node",
    "Primitive",
    "primitive",
    "nondiff_primitive",
    "backward",
    "new_trace",
    "EAGER_TRACE",
    "unbox",
    "strip",
    "is_box",
    "debug_nans",
    "GradSlot",
    "Cotangents",
    "split_results",
]

EAGER_TRACE = 0
_trace_ids = itertools.count(1)
_node_seq = itertools.count()
_DEBUG = [False]


def new_trace() -> int:
    """A fresh trace id, larger than every id handed out before."""
    return next(_trace_ids)


class GradSlot:
    """Where the eager face accumulates a leaf's gradient (``Tensor.grad``)."""

    __slots__ = ("grad", "hooks", "__weakref__")

    def __init__(self) -> None:
        self.grad: Any = None
        self.hooks: list = []


class Node:
    """One recorded primitive application (or a leaf, when ``prim`` is None)."""

    __slots__ = (
        "prim",
        "args",
        "kwargs",
        "ans",
        "argnums",
        "parents",
        "seq",
        "slot",
        "where",
        "__weakref__",
    )

    def __init__(
        self,
        prim: Primitive | None,
        args: tuple,
        kwargs: dict,
        ans: Any,
        argnums: tuple,
        parents: tuple,
        slot: GradSlot | None = None,
    ) -> None:
        self.prim = prim
        self.args = args
        self.kwargs = kwargs
        self.ans = ans
        self.argnums = argnums
        self.parents = parents
        self.seq = next(_node_seq)
        self.slot = slot
        self.where = _user_frame() if _DEBUG[0] else None

    @classmethod
    def leaf(cls, slot: GradSlot | None = None) -> Node:
        return cls(None, (), {}, None, (), (), slot)

    def __repr__(self) -> str:
        name = "leaf" if self.prim is None else self.prim.name
        return f"<Node {name} #{self.seq}>"


class Box:
    """A value under differentiation in trace ``_trace``, made by ``_node``.

    Boxes behave like arrays: arithmetic operators, ``@``, indexing, ``.shape``, ``.dtype``,
    ``.T``, ``.reshape(...)``, ``.sum(...)``; each is a funcnn op, so it is recorded.
    """

    __slots__ = ("_value", "_trace", "_node", "__weakref__")
    __array_ufunc__ = None  # make NumPy defer to our reflected operators
    __array_priority__ = 1000

    def __init__(self, value: Any, trace: int, node: Node) -> None:
        self._value = value
        self._trace = trace
        self._node = node

    # array-like attributes (no recording needed)
    @property
    def shape(self) -> tuple:
        return self._value.shape

    @property
    def dtype(self) -> Any:
        return self._value.dtype

    @property
    def ndim(self) -> int:
        return self._value.ndim

    @property
    def size(self) -> int:
        return self._value.size

    @property
    def device(self) -> Any:
        return self._value.device

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"Box({self._value!r}, trace={self._trace})"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __float__(self) -> float:
        return float(self._value)

    def __int__(self) -> int:
        return int(self._value)

    def __index__(self) -> int:
        return int(self._value)

    def __hash__(self) -> int:
        return id(self)

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            "funcnn: a traced value cannot be converted to a NumPy array inside a differentiated "
            "function (that would cut the gradient). Use funcnn.numpy ops on it, or "
            "fn.stop_gradient(x) first if you mean to treat it as a constant."
        )

    def __setitem__(self, idx: Any, value: Any) -> None:
        raise TypeError(
            "funcnn: traced arrays are immutable: `x[idx] = v` cannot be differentiated. "
            "Use `x = fnp.index_update(x, idx, v)` (or `fnp.index_add(x, idx, v)` for `+=`)."
        )

    def __iter__(self) -> Any:
        for i in range(len(self._value)):
            yield self[i]


def is_box(x: Any) -> bool:
    return isinstance(x, Box)


def unbox(x: Any, trace: int) -> Any:
    """``x``'s value at traces below ``trace`` (boxes of lower traces are kept)."""
    while isinstance(x, Box) and x._trace >= trace:
        x = x._value
    return x


def strip(x: Any) -> Any:
    """The raw array under every box."""
    while isinstance(x, Box):
        x = x._value
    return x


class Primitive:
    """A function on raw arrays whose VJP rules are known.

    Positional arguments may be boxes (differentiated); keyword arguments are static options
    (axis, shape, ...). ``defvjp(rule_0, rule_1, ...)`` gives one rule per positional argument:
    ``rule_i(g, ans, *args, **kwargs) -> cotangent of args[i]`` (``None`` = not differentiable).
    ``defvjp_joint(rule)`` gives one rule for all: ``rule(g, ans, argnums, *args, **kwargs) ->
    tuple aligned with argnums``, for fused primitives whose gradients share work.
    """

    __slots__ = (
        "fun",
        "name",
        "rules",
        "joint",
        "multiple_results",
        "_simple",
        "__wrapped__",
        "__dict__",
    )

    def __init__(
        self, fun: Callable, name: str | None = None, multiple_results: bool = False
    ) -> None:
        self.fun = fun
        self.name = name or fun.__name__
        self.multiple_results = multiple_results
        self.rules: tuple = ()
        self.joint: Callable | None = None
        self.__doc__ = fun.__doc__
        self.__wrapped__ = fun
        self.__name__ = self.name
        self.__qualname__ = getattr(fun, "__qualname__", self.name)
        self.__module__ = getattr(fun, "__module__", __name__)
        self._set_simple()

    def _set_simple(self) -> None:
        # one array out and one rule per argument, applied by backward() itself (the hot path)
        self._simple = (
            not self.multiple_results and self.joint is None and type(self).vjp is Primitive.vjp
        )

    def defvjp(self, *rules: Callable | None) -> Callable | None:
        self.rules = rules
        return rules[0] if len(rules) == 1 else None

    def defvjp_joint(self, rule: Callable) -> Callable:
        self.joint = rule
        self._set_simple()
        return rule

    def __repr__(self) -> str:
        return f"<funcnn primitive {self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Fast paths for one or two arguments holding raw arrays or boxes of one trace (nearly
        # every call); anything else (nested traces, more arguments, multiple results,
        # debug_nans) takes the general path, _record.
        if kwargs:
            for v in kwargs.values():
                if type(v) is Box:  # an array argument given by name: make it positional
                    args, kwargs = self._positional(args, kwargs)
                    break
        n = len(args)
        if n == 1:
            a = args[0]
            if type(a) is not Box:
                if not _DEBUG[0]:
                    return self.fun(a, **kwargs) if kwargs else self.fun(a)
            else:
                v = a._value
                if type(v) is not Box and not self.multiple_results and not _DEBUG[0]:
                    ans = self.fun(v, **kwargs) if kwargs else self.fun(v)
                    return Box(ans, a._trace, Node(self, (v,), kwargs, ans, _ARG0, (a._node,)))
        elif n == 2 and not self.multiple_results and not _DEBUG[0]:
            a, b = args
            if type(a) is Box:
                va = a._value
                if type(b) is Box:
                    vb = b._value
                    if a._trace == b._trace and type(va) is not Box and type(vb) is not Box:
                        ans = self.fun(va, vb, **kwargs) if kwargs else self.fun(va, vb)
                        node = Node(self, (va, vb), kwargs, ans, _ARG01, (a._node, b._node))
                        return Box(ans, a._trace, node)
                elif type(va) is not Box:
                    ans = self.fun(va, b, **kwargs) if kwargs else self.fun(va, b)
                    return Box(ans, a._trace, Node(self, (va, b), kwargs, ans, _ARG0, (a._node,)))
            elif type(b) is Box:
                vb = b._value
                if type(vb) is not Box:
                    ans = self.fun(a, vb, **kwargs) if kwargs else self.fun(a, vb)
                    return Box(ans, b._trace, Node(self, (a, vb), kwargs, ans, _ARG1, (b._node,)))
            else:
                return self.fun(a, b, **kwargs) if kwargs else self.fun(a, b)
        return self._record(args, kwargs)

    def _positional(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """``(args, kwargs)`` with every keyword argument that names a positional parameter of
        the function moved into place, so that a traced array passed by name is differentiated
        (keyword arguments are otherwise static options)."""
        import inspect

        params = list(inspect.signature(self.fun).parameters.values())
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        args, kwargs = list(args), dict(kwargs)
        for p in positional[len(args) :]:
            if p.name in kwargs:
                args.append(kwargs.pop(p.name))
            elif p.default is not p.empty and any(type(v) is Box for v in kwargs.values()):
                args.append(p.default)  # a later parameter is traced: fill the gap
            else:
                break
        options = {p.name for p in params if p.kind == p.KEYWORD_ONLY}
        for k, v in kwargs.items():
            if type(v) is Box and k in options:  # (an unknown name fails in the call itself)
                raise TypeError(
                    f"{self.name}: argument {k!r} is being differentiated but is an option "
                    "(keyword-only), which a primitive treats as a constant; pass an array "
                    "argument in its place"
                )
        return tuple(args), kwargs

    def _record(self, args: tuple, kwargs: dict) -> Any:
        """The general call: boxes of any traces among any number of arguments."""
        top = -1
        mixed = False
        for a in args:
            if isinstance(a, Box):
                t = a._trace
                if t != top:
                    if top >= 0:
                        mixed = True
                    if t > top:
                        top = t
        if top < 0:
            if _DEBUG[0]:
                return _checked_call(self, args, kwargs)
            return self.fun(*args, **kwargs)
        raw = list(args)
        argnums = []
        parents = []
        for i, a in enumerate(args):
            if isinstance(a, Box) and a._trace == top:
                v = raw[i] = a._value
                argnums.append(i)
                parents.append(a._node)
                if not mixed and isinstance(v, Box):
                    mixed = True
        raw_t = tuple(raw)
        # Lower traces (an outer grad, or the eager trace) record through the recursive call.
        if mixed or _DEBUG[0]:
            ans = self(*raw_t, **kwargs)
        else:
            ans = self.fun(*raw_t, **kwargs)
        node = Node(self, raw_t, kwargs, ans, tuple(argnums), tuple(parents))
        if self.multiple_results:
            return split_results(node, ans, top)
        return Box(ans, top, node)

    def vjp(self, g: Any, node: Node) -> Any:
        """Cotangents for ``node``'s boxed arguments, in ``node.argnums`` order."""
        if self.multiple_results:
            g = g.filled(node.ans)
        if self.joint is not None:
            return self.joint(g, node.ans, node.argnums, *node.args, **node.kwargs)
        rules = self.rules
        if not rules:
            raise NotImplementedError(f"funcnn: primitive '{self.name}' has no VJP rule")
        out = []
        for i in node.argnums:
            rule = rules[i] if i < len(rules) else None
            if rule is None:
                raise TypeError(
                    f"funcnn: '{self.name}' is not differentiable with respect to its argument {i}"
                )
            out.append(rule(g, node.ans, *node.args, **node.kwargs))
        return out


_ARG0, _ARG1, _ARG01 = (0,), (1,), (0, 1)


def primitive(fun: Callable | None = None, *, multiple_results: bool = False) -> Any:
    """Decorator: make ``fun`` (on raw arrays) a primitive; add rules with ``.defvjp``.

    With ``multiple_results=True`` the function returns a tuple of arrays; each comes back as
    its own box, and the rules receive ``g`` as a tuple (zeros where no cotangent arrived).
    """
    if fun is None:
        return lambda f: Primitive(f, multiple_results=multiple_results)
    return Primitive(fun, multiple_results=multiple_results)


class Cotangents(list):
    """Cotangents of a multiple-result node: one entry per result, None where none arrived."""

    __slots__ = ()

    def __add__(self, other: Any) -> Cotangents:
        return Cotangents(
            a if b is None else b if a is None else a + b for a, b in zip(self, other)
        )

    def filled(self, results: tuple) -> tuple:
        return tuple(
            g
            if g is not None
            else backend.zeros(strip(r).shape, dtype=strip(r).dtype, like=strip(r))
            for g, r in zip(self, results)
        )


def _select_rule(g: Any, ans: Any, argnums: tuple, *args: Any, index: int, count: int) -> list:
    cts = Cotangents([None] * count)
    cts[index] = g
    return [cts]


_select = Primitive(lambda *a, **k: None, name="select")
_select.defvjp_joint(_select_rule)


def split_results(node: Node, results: tuple, trace: int) -> tuple:
    """One box per result of a multiple-result node, each behind a 'select' node."""
    n = len(results)
    return tuple(
        Box(r, trace, Node(_select, (), {"index": i, "count": n}, r, (0,), (node,)))
        for i, r in enumerate(results)
    )


class _NondiffPrimitive(Primitive):
    """A primitive whose output carries no gradient (comparisons, argmax, integer results)."""

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fun(*[strip(a) for a in args], **kwargs)


def nondiff_primitive(fun: Callable) -> Primitive:
    """Decorator: a function whose result is not differentiable (boxes are stripped)."""
    return _NondiffPrimitive(fun)


# ----------------------------------------------------------------------------- backward pass


_seq = operator.attrgetter("seq")


def backward(outputs: list[tuple[Node, Any]], keep_graph: bool = False) -> dict[Node, Any]:
    """Reverse pass from ``[(node, cotangent), ...]``.

    Returns the cotangents that reached leaf nodes (nodes without a primitive), keyed by node.
    Leaves that carry a :class:`GradSlot` get their cotangent accumulated into ``slot.grad``
    instead. Unless ``keep_graph``, each node's residuals are dropped once used, so a second
    pass over the same graph raises.
    """
    cts: dict[Node, Any] = {}
    stack = []
    seen = set()
    for node, g in outputs:
        prev = cts.get(node)
        cts[node] = g if prev is None else prev + g
        if node not in seen:
            seen.add(node)
            stack.append(node)
    # every node reachable from the outputs, newest first: a node is newer than its parents
    order = []
    push, pop, mark, visit = stack.append, stack.pop, seen.add, order.append
    while stack:
        n = pop()
        visit(n)
        for p in n.parents:
            if p not in seen:
                mark(p)
                push(p)
    del seen, stack
    order.sort(key=_seq, reverse=True)
    leaves: dict[Node, Any] = {}
    debug = _DEBUG[0]
    take = cts.pop
    for n in order:
        g = take(n, None)
        if g is None:
            continue
        prim = n.prim
        if prim is None:
            if n.slot is not None:
                slot = n.slot
                for hook in slot.hooks:
                    out = hook(g)
                    if out is not None:
                        g = out
                slot.grad = g if slot.grad is None else slot.grad + g
            else:
                leaves[n] = g
            continue
        args = n.args
        if args is None:
            raise RuntimeError(
                "Trying to backward through the graph a second time (or directly access saved "
                "tensors after they have already been freed). Saved intermediate values of the "
                "graph are freed when you call .backward() or autograd.grad(). Specify "
                "retain_graph=True if you need to backward through the graph a second time."
            )
        if not debug and getattr(prim, "_simple", False):
            # the common case, inlined: one rule per differentiated argument
            rules, kwargs, ans = prim.rules, n.kwargs, n.ans
            for p, i in zip(n.parents, n.argnums):
                try:
                    rule = rules[i]
                except IndexError:
                    rule = None
                if rule is None:
                    raise TypeError(
                        f"funcnn: '{prim.name}' is not differentiable with respect to its argument {i}"
                    )
                pg = rule(g, ans, *args, **kwargs) if kwargs else rule(g, ans, *args)
                if pg is None:
                    continue
                prev = cts.get(p)
                cts[p] = pg if prev is None else prev + pg
        else:
            # joint rules, multiple results, overridden vjp methods, and debug_nans checks
            grads = prim.vjp(g, n)
            if debug:
                _check_cotangents(prim, n, grads)
            for p, pg in zip(n.parents, grads):
                if pg is None:
                    continue
                prev = cts.get(p)
                cts[p] = pg if prev is None else prev + pg
        if not keep_graph:
            n.args = n.ans = n.kwargs = None
    return leaves


# ----------------------------------------------------------------------------- NaN debugging


_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LIB_DIRS = (_PKG_DIR + os.sep, os.path.join(os.path.dirname(_PKG_DIR), "funcnn_modules") + os.sep)


def _user_frame() -> str:
    """'file:line in function' of the innermost frame outside funcnn and funcnn_modules."""
    frame = sys._getframe(2)
    while frame is not None:
        fname = frame.f_code.co_filename
        if not fname.startswith(_LIB_DIRS):
            return f"{fname}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back
    return "<unknown>"


def _describe(x: Any) -> str:
    x = strip(x)
    shape = getattr(x, "shape", None)
    return f"{getattr(x, 'dtype', type(x).__name__)}{list(shape) if shape is not None else ''}"


def _checked_call(prim: Primitive, args: tuple, kwargs: dict) -> Any:
    out = prim.fun(*args, **kwargs)
    if backend.is_array(out) and backend.nan_to_num_check(out):
        inputs = ", ".join(_describe(a) for a in args)
        where = _user_frame()
        raise FloatingPointError(
            f"debug_nans: primitive '{prim.name}' produced NaN/Inf in its output "
            f"{_describe(out)} from inputs ({inputs}); recorded at {where}"
        )
    return out


def _check_cotangents(prim: Primitive, node: Node, grads: Any) -> None:
    for i, gi in zip(node.argnums, grads):
        if gi is not None and backend.nan_to_num_check(strip(gi)):
            raise FloatingPointError(
                f"debug_nans: the gradient of primitive '{prim.name}' with respect to its "
                f"argument {i} ({_describe(node.args[i])}) holds NaN/Inf; the op was recorded at "
                f"{node.where or '<unknown: enable debug_nans before the forward pass>'}"
            )


class debug_nans:  # noqa: N801 - a function and a context manager, like torch.autograd.set_detect_anomaly
    """Check every primitive's output and every cotangent for NaN/Inf, and raise where one appears.

    ``fn.debug_nans(True)`` switches it on globally; ``with fn.debug_nans():`` switches it on
    for a block. The error names the primitive, the shapes, and the user's line that recorded it.
    """

    def __init__(self, enabled: bool = True) -> None:
        self._prev = _DEBUG[0]
        self._enabled = enabled
        _DEBUG[0] = enabled

    def __enter__(self) -> debug_nans:
        _DEBUG[0] = self._enabled
        return self

    def __exit__(self, *exc: Any) -> None:
        _DEBUG[0] = self._prev
