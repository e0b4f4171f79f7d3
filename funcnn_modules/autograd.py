"""``funcnn_modules.autograd``: ``grad``, ``backward``, ``detect_anomaly`` for PyTorch-style code.

These drive the engine's backward pass (``funcnn.autodiff``); first-order only. For
higher-order derivatives use ``funcnn.grad`` on ``module.to_functional()``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from funcnn.autodiff._core import EAGER_TRACE, Box, Node, debug_nans
from funcnn.autodiff._core import backward as _engine_backward
from funcnn_modules.tensor import NO_GRAD_FN, SCALAR_ONLY, Tensor, as_array, wrap

__all__ = ["grad", "backward", "detect_anomaly", "set_detect_anomaly", "Variable"]


class _Capture:
    """Stands in for a node's primitive during one backward pass, recording its cotangent."""

    def __init__(self, prim: Any, store: dict, node: Node) -> None:
        self.prim = prim
        self.name = prim.name
        self.store = store
        self.node = node

    def vjp(self, g: Any, node: Node) -> Any:
        self.store[self.node] = g
        return self.prim.vjp(g, node)


def _tensors(x: Any) -> tuple[list, bool]:
    if isinstance(x, Tensor):
        return [x], True
    return list(x), False


def _starts(outputs: list, grad_outputs: Any) -> list:
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(
            f"grad requires one grad_output per output: got {len(grad_outputs)} for {len(outputs)} outputs"
        )
    starts = []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        d = out._data
        if type(d) is not Box or d._trace != EAGER_TRACE:
            raise RuntimeError(NO_GRAD_FN.replace("element 0", f"element {i}"))
        raw = d._value
        if g is None:
            if raw.ndim != 0 and raw.size != 1:
                raise RuntimeError(SCALAR_ONLY)
            from funcnn import backend

            g = backend.full(tuple(raw.shape), 1.0, dtype=raw.dtype, like=raw)
        else:
            g = as_array(g)
            if tuple(g.shape) != tuple(raw.shape):
                raise RuntimeError(
                    f"Mismatch in shape: grad_output[{i}] has a shape of {tuple(g.shape)} and "
                    f"output[{i}] has a shape of {tuple(raw.shape)}."
                )
        starts.append((d._node, g))
    return starts


def _reachable(starts: list) -> list[Node]:
    seen = {id(n): n for n, _ in starts}
    stack = [n for n, _ in starts]
    while stack:
        n = stack.pop()
        for p in n.parents:
            if id(p) not in seen:
                seen[id(p)] = p
                stack.append(p)
    return list(seen.values())


def grad(
    outputs: Any,
    inputs: Any,
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool | None = None,
    is_grads_batched: bool = False,
    materialize_grads: bool = False,
) -> tuple:
    """The gradients of ``outputs`` with respect to ``inputs`` (like ``torch.autograd.grad``),
    without touching any ``.grad``.

    Args:
        outputs: a tensor or a sequence of tensors.
        inputs: a tensor or a sequence of tensors (leaves or intermediate results).
        grad_outputs: the cotangents of ``outputs`` (required for non-scalar outputs).
        retain_graph: keep the graph for another backward pass.
        create_graph: not supported (use ``funcnn.grad`` for higher derivatives).
        allow_unused: return None for inputs the outputs do not depend on (else raise).
        materialize_grads: return zeros instead of None for unused inputs.
    Returns:
        A tuple with one gradient tensor per input.
    """
    if create_graph or is_grads_batched:
        raise NotImplementedError(
            "funcnn_modules.autograd.grad: create_graph and is_grads_batched are not supported; "
            "for higher-order derivatives use funcnn.grad on module.to_functional()"
        )
    outs, _ = _tensors(outputs)
    ins, _ = _tensors(inputs)
    starts = _starts(outs, grad_outputs)
    in_nodes = []
    for t in ins:
        d = t._data
        if type(d) is not Box or d._trace != EAGER_TRACE:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
        in_nodes.append(d._node)
    reachable = _reachable(starts)
    slots = {id(n.slot): n.slot for n in reachable if n.prim is None and n.slot is not None}
    saved = {k: s.grad for k, s in slots.items()}
    captured: dict = {}
    patched = []
    for n in in_nodes:
        if n.prim is not None and not isinstance(n.prim, _Capture):
            patched.append((n, n.prim))
            n.prim = _Capture(n.prim, captured, n)
    try:
        for s in slots.values():
            s.grad = None
        _engine_backward(starts, keep_graph=bool(retain_graph))
        results = []
        for t, n in zip(ins, in_nodes):
            g = n.slot.grad if n.slot is not None and n.prim is None else captured.get(n)
            if g is None:
                if materialize_grads:
                    raw = t._value
                    from funcnn import backend

                    g = backend.zeros(tuple(raw.shape), dtype=raw.dtype, like=raw)
                elif not allow_unused:
                    raise RuntimeError(
                        "One of the differentiated Tensors appears to not have been used in the "
                        "graph. Set allow_unused=True if this is the desired behavior."
                    )
            results.append(None if g is None else wrap(g))
        return tuple(results)
    finally:
        for n, prim in patched:
            n.prim = prim
        for k, s in slots.items():
            s.grad = saved[k]


def backward(
    tensors: Any,
    grad_tensors: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    inputs: Any = None,
) -> None:
    """Accumulate the gradients of ``tensors`` into the leaves' ``.grad`` (one backward pass)."""
    if create_graph or inputs is not None:
        raise NotImplementedError(
            "funcnn_modules.autograd.backward: create_graph and inputs are not supported"
        )
    outs, _ = _tensors(tensors)
    _engine_backward(_starts(outs, grad_tensors), keep_graph=bool(retain_graph))


class detect_anomaly:  # noqa: N801 - PyTorch's name
    """Raise where a NaN/Inf first appears, forward or backward (wraps ``funcnn.debug_nans``).

    A context manager (``with detect_anomaly(): ...``) and a decorator. The error names the
    primitive, the shapes, and the line of user code that recorded the op.
    """

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan
        self._ctx: list = []

    def __enter__(self) -> detect_anomaly:
        self._ctx.append(debug_nans(self.check_nan))
        return self

    def __exit__(self, *exc: Any) -> None:
        self._ctx.pop().__exit__(*exc)

    def __call__(self, func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with detect_anomaly(self.check_nan):
                return func(*args, **kwargs)

        return wrapper


class set_detect_anomaly:  # noqa: N801
    """``set_detect_anomaly(True)`` switches NaN/Inf checks on (also usable as a context manager)."""

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self._ctx = debug_nans(bool(mode) and check_nan)

    def __enter__(self) -> set_detect_anomaly:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._ctx.__exit__(*exc)


def Variable(data: Any, requires_grad: bool = False, volatile: bool = False) -> Tensor:  # noqa: N802
    """The old ``torch.autograd.Variable``: now just a tensor (shares ``data``'s values)."""
    t = data.detach() if isinstance(data, Tensor) else wrap(as_array(data))
    return t.requires_grad_(True) if requires_grad else t
