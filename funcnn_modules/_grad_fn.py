"""``Tensor.grad_fn``: read-only views of the engine's graph nodes, shaped like PyTorch's.

    >>> a = funcnn_modules.ones(2, requires_grad=True)
    >>> y = (a * 3).sum()
    >>> y.grad_fn
    <SumBackward0 object at 0x...>
    >>> y.grad_fn.next_functions
    ((<MulBackward0 object at 0x...>, 0),)
    >>> y.grad_fn.next_functions[0][0].next_functions
    ((<AccumulateGrad object at 0x...>, 0), (None, 0))

The engine (``funcnn.autodiff``) records one node per *primitive*; PyTorch records one per ATen
op. The two mostly agree, and :func:`node_name` gives PyTorch's name for the common ops
(``type(grad_fn).__name__`` is that name too). Where they differ:

- a few composites are recognised from their shape in the graph and shown as one node, as
  PyTorch has it: ``mean`` (a ``sum`` scaled by ``1/n``, shown as ``MeanBackward0/1``) and
  ``log_softmax`` (``x - logsumexp(x)``, shown as ``LogSoftmaxBackward0``). Their
  ``next_functions`` skip the inner node;
- other composites show their last primitive: ``2 / a`` is a ``DivBackward0`` here (a
  ``MulBackward0`` over a ``ReciprocalBackward0`` in PyTorch), ``1 - a`` a ``SubBackward0``
  (``RsubBackward1``), ``mse_loss`` a ``MeanBackward0`` (``MseLossBackward0``); one primitive
  can stand for several of PyTorch's ops: ``a[:, None, 0]`` is one node, and a 2-D ``a.T``,
  ``transpose`` or ``permute`` is a ``TBackward0``;
- names that depend on an op's options (``SumBackward0`` or ``1``, ``Select`` or ``Slice``,
  ``Mm``/``Mv``/``Dot``; a reshape that only adds or drops one unit axis is an
  ``Unsqueeze``/``Squeeze``, any other a ``ViewBackward0``) are read from the node's saved
  arguments. ``backward()`` frees those (unless ``retain_graph=True``), so a node first looked
  at after a backward pass gets the option-free guess (a full reduction, ``MmBackward0``,
  ``ViewBackward0``, ...); a node looked at before keeps the name it was given then.
  Primitives without a PyTorch counterpart are named by CamelCase of the primitive name
  (``_std_sqrt`` -> ``StdSqrtBackward0``).

``next_functions`` has one ``(fn, output_nr)`` pair per tensor input, as in PyTorch: ``fn`` is
the input's grad_fn, an :class:`AccumulateGrad` for a leaf that requires grad, or None for an
input that records nothing (a constant, a Python number). ``output_nr`` is the position of
the input among its producer's outputs (0 but for multiple-output primitives).

Identity: views compare equal (``==``) and hash alike exactly when they show the same engine
node, whenever they were made. A view is kept (weakly) per node, so ``t.grad_fn is t.grad_fn``
and ``y.grad_fn is z.grad_fn.next_functions[0][0]`` are True while some reference to the view
is alive, as with PyTorch's Python node objects; ``==`` is the comparison that always holds.
"""

from __future__ import annotations

import weakref
from typing import Any

from funcnn import backend
from funcnn.autodiff._core import Box
from funcnn.autodiff._core import Node as _EngineNode

__all__ = ["Node", "AccumulateGrad", "grad_fn_of", "node_name"]


# ----------------------------------------------------------------------------- names

_SIMPLE_NAMES = {
    "add": "AddBackward0",
    "subtract": "SubBackward0",
    "multiply": "MulBackward0",
    "divide": "DivBackward0",
    "negative": "NegBackward0",
    "exp": "ExpBackward0",
    "expm1": "Expm1Backward0",
    "log": "LogBackward0",
    "log1p": "Log1PBackward0",
    "log2": "Log2Backward0",
    "log10": "Log10Backward0",
    "sqrt": "SqrtBackward0",
    "square": "PowBackward0",
    "abs": "AbsBackward0",
    "sign": "SignBackward0",
    "sin": "SinBackward0",
    "cos": "CosBackward0",
    "tanh": "TanhBackward0",
    "sigmoid": "SigmoidBackward0",
    "relu": "ReluBackward0",
    "maximum": "MaximumBackward0",
    "minimum": "MinimumBackward0",
    "logsumexp": "LogsumexpBackward0",
    "cumsum": "CumsumBackward0",
    "_broadcast_to": "ExpandBackward0",
    "_concatenate": "CatBackward0",
    "_stack": "StackBackward0",
    "_unstack": "UnbindBackward0",
    "_flip": "FlipBackward0",
    "_pad": "ConstantPadNdBackward0",
    "_take_along_axis": "GatherBackward0",
    "_embedding": "EmbeddingBackward0",
    "_astype": "ToCopyBackward0",
    "_clip": "ClampBackward1",
    "_where": "WhereBackward0",
    "_softmax": "SoftmaxBackward0",
    "_leaky_relu": "LeakyReluBackward0",
    "_elu": "EluBackward0",
    "_scaled_elu": "EluBackward0",
    "_hardtanh": "HardtanhBackward0",
    "_hardswish": "HardswishBackward0",
    "_softplus": "SoftplusBackward0",
    "_log_sigmoid": "LogSigmoidBackward0",
    "_gelu_erf": "GeluBackward0",
    "_gelu_tanh": "GeluBackward0",
    "_silu": "SiluBackward0",
    "_norm2": "LinalgVectorNormBackward0",
    "_normp": "LinalgVectorNormBackward0",
    "_cross_entropy": "NllLossBackward0",
    "_conv": "ConvolutionBackward0",
    "_conv_t": "ConvolutionBackward0",
    "_index_add": "IndexAddBackward0",
}

# positions of the tensor inputs, where PyTorch's count differs from "the array arguments"
# (binary ops keep a slot for a Python number: ``(a * 2).grad_fn.next_functions`` has two)
_BINARY = frozenset(
    {"add", "subtract", "multiply", "divide", "maximum", "minimum", "matmul", "_index_add"}
)
_COMMUTATIVE = frozenset({"add", "multiply"})
_FIRST_ONLY = frozenset({"_clip", "_cross_entropy"})


def _camel(prim_name: str) -> str:
    return "".join(p.capitalize() for p in prim_name.strip("_").split("_")) + "Backward0"


def _ndim(x: Any) -> int | None:
    shape = getattr(x, "shape", None)
    return None if shape is None else len(shape)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, complex)) and not isinstance(x, bool)


def _getitem_name(idx: Any) -> str:
    parts = idx if isinstance(idx, tuple) else (idx,)
    for p in parts:
        if isinstance(p, (list, Box)) or backend.is_array(p):
            return "IndexBackward0"
    for p in reversed(parts):
        if p is Ellipsis or (isinstance(p, slice) and p == slice(None)):
            continue
        if p is None:
            return "UnsqueezeBackward0"
        if isinstance(p, slice):
            return "SliceBackward0"
        return "SelectBackward0"
    return "SliceBackward0" if any(isinstance(p, slice) for p in parts) else "AliasBackward0"


def _transpose_name(axes: Any) -> str:
    axes = tuple(axes)
    if axes == (1, 0):
        return "TBackward0"
    moved = [i for i, a in enumerate(axes) if a != i]
    if len(moved) == 2:
        return "TransposeBackward0"
    return "PermuteBackward0"


def _reshape_name(args: Any) -> str:
    """``ViewBackward0``, or PyTorch's name when the new shape only adds or drops unit axes."""
    if args is None or not isinstance(args[1], (tuple, list)):
        return "ViewBackward0"
    old, new = tuple(getattr(args[0], "shape", ())), tuple(args[1])
    if len(new) == len(old) + 1 and any(new[:i] + new[i + 1 :] == old for i in range(len(new))):
        if 1 in new:
            return "UnsqueezeBackward0"
    if len(old) > len(new) and 1 in old:
        if len(old) == len(new) + 1 and any(
            old[i] == 1 and old[:i] + old[i + 1 :] == new for i in range(len(old))
        ):
            return "SqueezeBackward1"
        if tuple(d for d in old if d != 1) == new:
            return "SqueezeBackward0"
    return "ViewBackward0"


def _matmul_name(args: Any) -> str:
    dims = (_ndim(args[0]), _ndim(args[1])) if args is not None else (None, None)
    if dims == (2, 1):
        return "MvBackward0"
    if dims == (1, 1):
        return "DotBackward0"
    if dims[0] is not None and dims[1] is not None and min(dims) >= 3:
        return "BmmBackward0"
    return "MmBackward0"


def _full_reduction(node: _EngineNode) -> bool:
    kwargs = node.kwargs
    return not kwargs or kwargs.get("axis") is None


def _plain_name(node: _EngineNode) -> str:
    """PyTorch's name for one engine node on its own (no pattern across nodes)."""
    prim = node.prim
    name = prim.name
    args = node.args
    if name in _SIMPLE_NAMES:
        return _SIMPLE_NAMES[name]
    if name == "power":
        return {(0,): "PowBackward0", (1,): "PowBackward2"}.get(node.argnums, "PowBackward1")
    if name in ("sum", "prod"):
        return name.capitalize() + ("Backward0" if _full_reduction(node) else "Backward1")
    if name in ("max", "min"):
        return name.capitalize() + "Backward1" if _full_reduction(node) else f"A{name}Backward0"
    if name == "matmul":
        return _matmul_name(args)
    if name == "_linear":
        return "AddmmBackward0" if _has_bias(node) else "MmBackward0"
    if name == "_reshape":
        return _reshape_name(args)
    if name == "_getitem":
        return _getitem_name(args[1]) if args is not None else "SelectBackward0"
    if name == "_transpose":
        return _transpose_name(args[1]) if args is not None else "PermuteBackward0"
    return _camel(name)


def _has_bias(node: _EngineNode) -> bool:
    if 2 in node.argnums:
        return True
    return node.args is not None and len(node.args) > 2 and node.args[2] is not None


# ----------------------------------------------------------------------------- inputs


def _positions(node: _EngineNode) -> tuple[int, ...]:
    """The argument positions PyTorch would list in ``next_functions``, in its order."""
    name = node.prim.name
    argnums = node.argnums
    rules = node.prim.rules
    if name == "power":
        return argnums if argnums in ((0,), (1,)) else (0, 1)
    if name in _BINARY:
        args = node.args
        if name in _COMMUTATIVE and args is not None and _is_number(args[0]):
            return (1, 0)  # ``2 * a`` is ``a.__rmul__(2)``: PyTorch lists ``a`` first
        return (0, 1)
    if name in _FIRST_ONLY:
        return (0,)
    if name == "_where":
        return (1, 2)
    if name == "_linear":
        return (2, 0, 1) if _has_bias(node) else (0, 1)
    if len(rules) == 1:
        return (0,)
    if node.args is not None:
        return tuple(
            i
            for i, a in enumerate(node.args)
            if i in argnums or isinstance(a, Box) or backend.is_array(a)
        )
    return tuple(range(max(argnums) + 1)) if argnums else ()


def _inputs_of(node: _EngineNode) -> tuple[_EngineNode | None, ...]:
    by_position = dict(zip(node.argnums, node.parents))
    return tuple(by_position.get(i) for i in _positions(node))


# ----------------------------------------------------------------------------- patterns


def _is_mean(node: _EngineNode) -> bool:
    """``sum(x) * (1 / n)``, as ``funcnn.numpy.mean`` builds it."""
    if node.prim.name != "multiply" or node.argnums != (0,):
        return False
    (inner,) = node.parents
    if inner.prim is None or inner.prim.name != "sum" or inner.argnums != (0,):
        return False
    if node.args is None or inner.args is None:
        return True  # freed by a backward pass: the structure is all there is to go on
    scale, summed, total = node.args[1], node.args[0], inner.args[0]
    if not isinstance(scale, float):
        return False
    size_in = int(backend.prod(getattr(total, "shape", ())))
    size_out = int(backend.prod(getattr(summed, "shape", ())))
    count = size_in // size_out if size_out else 0
    return count > 0 and scale == 1.0 / count


def _is_log_softmax(node: _EngineNode) -> bool:
    """``x - logsumexp(x)``, as ``log_softmax`` builds it."""
    if node.prim.name != "subtract" or node.argnums != (0, 1):
        return False
    x, lse = node.parents
    return (
        lse.prim is not None
        and lse.prim.name == "logsumexp"
        and lse.argnums == (0,)
        and lse.parents[0] is x
    )


# ----------------------------------------------------------------------------- descriptions

# node -> (name, inputs): worked out once per node, while its saved arguments are still there
# when possible, so that a name does not change when backward() frees them.
_DESCRIPTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _describe(node: _EngineNode) -> tuple[str, tuple[_EngineNode | None, ...]]:
    found = _DESCRIPTIONS.get(node)
    if found is not None:
        return found
    if _is_mean(node):
        inner = node.parents[0]
        name = "MeanBackward0" if _full_reduction(inner) else "MeanBackward1"
        found = (name, _inputs_of(inner))
    elif _is_log_softmax(node):
        found = ("LogSoftmaxBackward0", (node.parents[0],))
    else:
        found = (_plain_name(node), _inputs_of(node))
    _DESCRIPTIONS[node] = found
    return found


def _resolve(node: _EngineNode) -> tuple[_EngineNode, int]:
    """The node PyTorch would show for a tensor made by ``node``, and its output number."""
    if node.prim is not None and node.prim.name == "select" and len(node.parents) == 1:
        index = node.kwargs.get("index", 0) if node.kwargs else 0
        return node.parents[0], int(index)
    return node, 0


def node_name(node: _EngineNode) -> str:
    """PyTorch's name for the grad_fn of a tensor made by engine node ``node``."""
    target, _ = _resolve(node)
    if target.prim is None:
        return "torch::autograd::AccumulateGrad"
    return _describe(target)[0]


# ----------------------------------------------------------------------------- the views

_VIEWS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_CLASSES: dict[str, type] = {}


class Node:
    """A read-only view of one node of the backward graph (``torch.autograd.graph.Node``).

    ``name()`` is PyTorch's name for the op, ``next_functions`` the ``(fn, output_nr)`` pair
    of each tensor input. Views of one engine node compare equal and hash alike.
    """

    __slots__ = ("_node", "__weakref__")

    def __init__(self, node: _EngineNode) -> None:
        object.__setattr__(self, "_node", node)

    def name(self) -> str:
        """PyTorch's name for this node, e.g. ``"MulBackward0"``."""
        return _describe(self._node)[0]

    @property
    def next_functions(self) -> tuple[tuple[Node | None, int], ...]:
        """One ``(grad_fn or AccumulateGrad or None, output_nr)`` per tensor input."""
        out = []
        for parent in _describe(self._node)[1]:
            if parent is None:
                out.append((None, 0))
            else:
                target, index = _resolve(parent)
                out.append((_view(target), index))
        return tuple(out)

    def __repr__(self) -> str:
        return f"<{self.name()} object at {hex(id(self))}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Node):
            return self._node is other._node
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._node)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__}: grad_fn objects are read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__}: grad_fn objects are read-only")


class AccumulateGrad(Node):
    """Where a leaf's gradient is summed into ``.grad``: the end of every path back."""

    __slots__ = ()

    def name(self) -> str:
        return "torch::autograd::AccumulateGrad"

    @property
    def next_functions(self) -> tuple:
        return ()

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {hex(id(self))}>"


def _class_for(name: str) -> type:
    cls = _CLASSES.get(name)
    if cls is None:
        cls = _CLASSES[name] = type(name, (Node,), {"__slots__": (), "__module__": __name__})
    return cls


def _view(node: _EngineNode) -> Node:
    view = _VIEWS.get(node)
    if view is None:
        cls = AccumulateGrad if node.prim is None else _class_for(_describe(node)[0])
        view = cls(node)
        _VIEWS[node] = view
    return view


def grad_fn_of(node: _EngineNode) -> Node:
    """The ``grad_fn`` view of the tensor made by engine node ``node`` (not a leaf)."""
    return _view(_resolve(node)[0])
