"""``Tensor``: the eager face of the funcnn engine.

A Tensor holds ``_data``: a raw array (NumPy, CuPy or the strict stand-in), or, while it
requires grad, a :class:`~funcnn.autodiff._core.Box` of the eager trace 0. A leaf that requires
grad is ``Box(raw, EAGER_TRACE, Node.leaf(slot))``; its :class:`GradSlot` is where
``.backward()`` accumulates ``.grad``. Every op unwraps its Tensors, calls a ``funcnn.numpy`` op
or a ``funcnn.nn`` function, and wraps the answer: there is no math here. Under ``no_grad()``
the eager boxes are stripped before the call, so nothing is recorded.

In-place methods (``add_``, ``zero_``, ``x[i] = v`` ...) compute the new value with the same
ops and rebind the tensor to it; writes through ``.data``, ``.grad`` and a leaf's
``.detach()`` reach the tensor (or gradient slot) they came from. Views (``x[0]``,
``x.view(...)``) are copies as far as later in-place writes are concerned.
"""

from __future__ import annotations

import builtins
import collections
import copy as _copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from funcnn import backend
from funcnn import numpy as fnp
from funcnn.autodiff._core import EAGER_TRACE, Box, GradSlot, Node
from funcnn.autodiff._core import backward as _engine_backward
from funcnn_modules import _dtypes, _fnn, _grad_fn
from funcnn_modules._dtypes import Size, device
from funcnn_modules._grad_mode import _ENABLED
from funcnn_modules._tensor_str import tensor_repr

__all__ = ["Tensor", "unwrap", "wrap", "as_array"]

_new = object.__new__

LEAF_INPLACE = "a leaf Variable that requires grad is being used in an in-place operation."
NO_GRAD_FN = "element 0 of tensors does not require grad and does not have a grad_fn"
SCALAR_ONLY = "grad can be implicitly created only for scalar outputs"

max_result = collections.namedtuple("max", ["values", "indices"])
min_result = collections.namedtuple("min", ["values", "indices"])
sort_result = collections.namedtuple("sort", ["values", "indices"])
topk_result = collections.namedtuple("topk", ["values", "indices"])
median_result = collections.namedtuple("median", ["values", "indices"])


# ----------------------------------------------------------------------------- wrapping


def unwrap(x: Any) -> Any:
    """What an op should receive for ``x``: a Tensor's data (raw under ``no_grad``), else ``x``.

    NumPy scalars become Python scalars, so they do not promote float32 tensors (PyTorch treats
    them as Python numbers).
    """
    if isinstance(x, Tensor):
        d = x._data
        if not _ENABLED[0] and type(d) is Box and d._trace == EAGER_TRACE:
            return d._value
        return d
    if isinstance(x, np.generic):
        return x.item()
    return x


def wrap(d: Any) -> Tensor:
    """A Tensor around raw data or a box."""
    t = _new(Tensor)
    t._data = d
    t._base = None
    return t


def as_array(x: Any, dtype: Any = None) -> Any:
    """Raw array from a Tensor (its value), an array, or Python data (floats become float32)."""
    if isinstance(x, Tensor):
        return x._value
    if backend.is_array(x) and not isinstance(x, np.generic):
        return x if dtype is None else backend.asarray(x, dtype=_dtypes.to_numpy_dtype(dtype))
    return _host_to_array(x, dtype)


def _host_to_array(data: Any, dtype: Any = None) -> Any:
    if isinstance(data, (list, tuple)):
        data = _lists_of_values(data)
    host = np.asarray(data)
    if dtype is not None:
        host = host.astype(_dtypes.to_numpy_dtype(dtype))
    elif host.dtype.kind == "f" and not isinstance(data, (np.ndarray, np.generic)):
        host = host.astype(backend.default_float_dtype(np))
    elif host.dtype.kind not in "fiub":
        raise TypeError(f"tensor: cannot make a tensor from data of dtype {host.dtype}")
    return backend.from_numpy(np.array(host, copy=True))


def _lists_of_values(data: Any) -> Any:
    out = []
    for v in data:
        if isinstance(v, Tensor):
            out.append(backend.to_numpy(v._value).tolist())
        elif isinstance(v, (list, tuple)):
            out.append(_lists_of_values(v))
        else:
            out.append(v)
    return out


def _raw(d: Any) -> Any:
    while type(d) is Box:
        d = d._value
    return d


def _np_dtype(dtype: Any) -> Any:
    return None if dtype is None else _dtypes.to_numpy_dtype(dtype)


def _is_float_dtype(d: Any) -> bool:
    return backend.is_floating(d)


def _category(d: Any) -> int:
    """PyTorch's promotion category of a dtype: 0 bool, 1 integer, 2 floating."""
    if _is_float_dtype(d):
        return 2
    return 0 if _dtypes.from_array_dtype(d) is _dtypes.bool else 1


def _promote(x: Any, y: Any) -> tuple[Any, Any]:
    """Cast operands the way PyTorch promotes them (NumPy would pick float64 for int and float32)."""
    dx = getattr(_raw(x), "dtype", None)
    dy = getattr(_raw(y), "dtype", None)
    if dx is not None and dy is not None:
        if dx == dy:
            return x, y
        zx, zy = _raw(x).ndim == 0, _raw(y).ndim == 0
        if zx != zy:
            # A 0-dim tensor acts like a Python number: it sets the result's dtype only when its
            # category (bool < integer < floating) is higher (float32 (n,) * float64 () stays
            # float32, int64 (n,) * float64 () becomes float64), as in PyTorch.
            cx, cy = _category(dx), _category(dy)
            if zy:
                return (x, fnp.astype(y, dx)) if cy <= cx else (fnp.astype(x, dy), y)
            return (fnp.astype(x, dy), y) if cx <= cy else (x, fnp.astype(y, dx))
        fx, fy = _is_float_dtype(dx), _is_float_dtype(dy)
        if fx and not fy:
            return x, fnp.astype(y, dx)
        if fy and not fx:
            return fnp.astype(x, dy), y
        return x, y
    if dx is None and dy is None:
        return x, y
    if dx is None:
        if type(x) is float and not _is_float_dtype(dy):
            y = fnp.astype(y, backend.default_float_dtype(backend.namespace(_raw(y))))
        return x, y
    if type(y) is float and not _is_float_dtype(dx):
        x = fnp.astype(x, backend.default_float_dtype(backend.namespace(_raw(x))))
    return x, y


def _binary(f: Callable, a: Any, b: Any) -> Tensor:
    x, y = _promote(unwrap(a), unwrap(b))
    return wrap(f(x, y))


def _compare(f: Callable, a: Any, b: Any) -> Tensor:
    x, y = _promote(unwrap(a), unwrap(b))
    return wrap(f(x, y))


def _true_divide(a: Any, b: Any) -> Tensor:
    x, y = _promote(unwrap(a), unwrap(b))
    dx = getattr(_raw(x), "dtype", None)
    if dx is not None and not _is_float_dtype(dx):
        x = fnp.astype(x, backend.default_float_dtype(backend.namespace(_raw(x))))
        x, y = _promote(x, y)
    elif dx is None:
        dy = getattr(_raw(y), "dtype", None)
        if dy is not None and not _is_float_dtype(dy):
            y = fnp.astype(y, backend.default_float_dtype(backend.namespace(_raw(y))))
    return wrap(fnp.divide(x, y))


def _dims(dim: Any) -> Any:
    if isinstance(dim, list):
        return tuple(dim)
    return dim


def _dtype_name(raw: Any) -> str:
    """'float32' for a float32 array of any backend (strict's dtypes print 'array_api_strict.')."""
    return str(raw.dtype).rsplit(".", 1)[-1]


def _size_args(args: tuple, fn: str) -> tuple:
    """Shapes given as ``f(2, 3)``, ``f((2, 3))``, ``f([2, 3])`` or ``f(torch.Size)``."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    out = []
    for s in args:
        if isinstance(s, Tensor):
            s = s.item()
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
            raise TypeError(f"{fn}(): sizes must be integers, got {args!r}")
        out.append(int(s))
    return tuple(out)


def _index(idx: Any) -> Any:
    """An index with Tensors replaced by their raw values (indices never carry gradients)."""
    if isinstance(idx, Tensor):
        return idx._value
    if isinstance(idx, tuple):
        return tuple(_index(i) for i in idx)
    if isinstance(idx, list) and any(isinstance(i, Tensor) for i in idx):
        return [_index(i) for i in idx]
    return idx


def _bool_data(x: Any) -> Any:
    """``x`` (a Tensor, array or Python data) as a raw boolean array."""
    return (x if isinstance(x, Tensor) else wrap(as_array(x))).bool()._value


def _softmax_dim(ndim: int) -> int:
    return 0 if ndim in (0, 1, 3) else 1


class _HookHandle:
    """What ``register_hook`` returns: ``handle.remove()`` takes the hook off."""

    def __init__(self, hooks: list, hook: Callable) -> None:
        self._hooks = hooks
        self._hook = hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


class _TensorHook:
    """Adapts a user hook on Tensors to the engine's hooks on raw cotangents."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable) -> None:
        self.fn = fn

    def __call__(self, g: Any) -> Any:
        out = self.fn(wrap(g))
        return None if out is None else unwrap(out)


# ----------------------------------------------------------------------------- Tensor


class Tensor:
    """A multi-dimensional array that can record the ops applied to it for ``.backward()``.

    ``Tensor(data)`` makes a float32 tensor from data (like ``torch.Tensor``); ``Tensor(2, 3)``
    a zero-filled one of that shape. Prefer :func:`funcnn_modules.tensor`, which keeps integer
    and boolean data as they are.
    """

    __slots__ = ("_data", "_base", "__weakref__", "__dict__")
    __array_ufunc__ = None  # NumPy defers to our reflected operators
    __array_priority__ = 1000

    def __init__(self, *args: Any, device: Any = None, dtype: Any = None) -> None:
        if len(args) == 1 and not isinstance(args[0], (int, np.integer)):
            data = args[0]
            if isinstance(data, Tensor):
                raw = data._value
                if _dtypes.from_array_dtype(raw.dtype) is not _dtypes.float32:
                    raw = fnp.astype(raw, "float32")
            else:
                raw = _host_to_array(data, dtype or _dtypes.float32)
        else:
            raw = backend.zeros(
                _size_args(args, "Tensor"), dtype=_np_dtype(dtype or _dtypes.float32)
            )
        if device is not None:
            raw = _to_device(raw, device)
        self._data = raw
        self._base = None

    # -- construction helpers ------------------------------------------------------------------

    @classmethod
    def _wrap(cls, d: Any) -> Tensor:
        """A tensor of this class around raw data or a box (no copy, no checks)."""
        t = _new(cls)
        t._data = d
        t._base = None
        return t

    # -- the raw value, for optimisers and state loading ----------------------------------------

    @property
    def _value(self) -> Any:
        """The raw array (never a box)."""
        d = self._data
        while type(d) is Box:
            d = d._value
        return d

    def _set_value(self, arr: Any) -> None:
        """Replace the value in place, keeping a leaf's node and gradient slot."""
        d = self._data
        if type(d) is Box and d._trace == EAGER_TRACE and d._node.prim is None:
            d._value = arr
        else:
            self._data = arr
        base = self._base
        if base is not None:
            if type(base) is GradSlot:
                base.grad = arr
            else:
                base._set_value(arr)

    def _slot(self) -> GradSlot | None:
        d = self._data
        if type(d) is Box and d._trace == EAGER_TRACE:
            return d._node.slot
        return None

    # -- metadata -------------------------------------------------------------------------------

    @property
    def shape(self) -> Size:
        return Size(self._value.shape)

    def size(self, dim: int | None = None) -> Any:
        """The shape (a ``Size``), or the length of dimension ``dim``."""
        shape = self._value.shape
        if dim is None:
            return Size(shape)
        return shape[dim]

    @property
    def dtype(self) -> _dtypes.dtype:
        return _dtypes.from_array_dtype(self._value.dtype)

    @property
    def ndim(self) -> int:
        return self._value.ndim

    def dim(self) -> int:
        return self._value.ndim

    ndimension = dim

    def numel(self) -> int:
        return int(backend.prod(self._value.shape))

    nelement = numel

    def element_size(self) -> int:
        return self.dtype.itemsize

    @property
    def device(self) -> device:
        return device(backend.device_of(self._value))

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def is_floating_point(self) -> bool:
        return _is_float_dtype(self._value.dtype)

    def get_device(self) -> int:
        dev = self.device
        return -1 if dev.type == "cpu" else (dev.index or 0)

    # -- autograd state -------------------------------------------------------------------------

    @property
    def requires_grad(self) -> bool:
        return type(self._data) is Box

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Start (or stop) recording ops on this leaf for ``.backward()``; returns self."""
        d = self._data
        if requires_grad:
            if type(d) is Box:
                return self
            if not _is_float_dtype(d.dtype):
                raise RuntimeError(
                    "only Tensors of floating point dtype can require gradients "
                    f"(this one is {self.dtype})"
                )
            self._data = Box(d, EAGER_TRACE, Node.leaf(GradSlot()))
            return self
        if type(d) is Box:
            if d._node.prim is not None:
                raise RuntimeError(
                    "you can only change requires_grad flags of leaf variables. If you want to "
                    "use a computed variable in a subgraph that doesn't require differentiation "
                    "use var_no_grad = var.detach()."
                )
            self._data = d._value
        return self

    @property
    def is_leaf(self) -> bool:
        d = self._data
        return type(d) is not Box or d._node.prim is None

    @property
    def grad_fn(self) -> _grad_fn.Node | None:
        """The backward node that made this tensor (None for leaves), shaped like PyTorch's:
        ``name()``, ``next_functions``; see :mod:`funcnn_modules._grad_fn`."""
        d = self._data
        if type(d) is Box and d._node.prim is not None:
            return _grad_fn.grad_fn_of(d._node)
        return None

    @property
    def grad(self) -> Tensor | None:
        """The accumulated gradient (a Tensor of this shape), or None before any backward."""
        slot = self._slot()
        if slot is None or slot.grad is None:
            return None
        g = wrap(slot.grad)
        g._base = slot
        return g

    @grad.setter
    def grad(self, value: Any) -> None:
        slot = self._slot()
        if value is None:
            if slot is not None:
                slot.grad = None
            return
        if slot is None:
            raise RuntimeError(
                "funcnn_modules: can only assign .grad to a leaf tensor that requires grad; "
                "call .requires_grad_() first"
            )
        arr = as_array(value)
        if tuple(arr.shape) != tuple(self._value.shape):
            raise RuntimeError(
                f"assigned grad has data of a different size: got {tuple(arr.shape)}, the "
                f"tensor has {tuple(self._value.shape)}"
            )
        slot.grad = arr

    @property
    def data(self) -> Tensor:
        """The value without gradient tracking; writes to it (``.data.zero_()``) reach this tensor."""
        t = wrap(self._value)
        t._base = self
        return t

    @data.setter
    def data(self, value: Any) -> None:
        self._set_value(as_array(value))

    def detach(self) -> Tensor:
        """The same values, cut from the graph.

        The detached tensor of a leaf (a parameter, a buffer, a plain tensor) shares its
        writes: ``model.state_dict()["w"].zero_()`` or ``p.detach().mul_(2)`` change the leaf,
        as in PyTorch. That of a computed tensor is independent (sharing would keep the graph
        alive as long as the detached tensor, e.g. ``losses.append(loss.detach())``).
        """
        t = wrap(self._value)
        d = self._data
        if type(d) is not Box or (d._trace == EAGER_TRACE and d._node.prim is None):
            t._base = self
        return t

    def detach_(self) -> Tensor:
        self._data = self._value
        return self

    def clone(self, *, memory_format: Any = None) -> Tensor:
        """A copy that stays on the graph (gradients flow back to this tensor)."""
        d = unwrap(self)
        if type(d) is Box:
            return wrap(fnp.astype(d, d.dtype) * 1.0 if _is_float_dtype(d.dtype) else d)
        xp = backend.namespace(d)
        return wrap(xp.asarray(d, copy=True))

    def register_hook(self, hook: Callable) -> _HookHandle:
        """Call ``hook(grad)`` when this leaf's gradient is computed; it may return a replacement."""
        slot = self._slot()
        if slot is None or not self.is_leaf:
            raise RuntimeError(
                "funcnn_modules: register_hook works on leaf tensors that require grad"
                if slot is None or self.is_leaf
                else "funcnn_modules: register_hook on a non-leaf tensor is not supported; "
                "register it on the leaves"
            )
        wrapped = _TensorHook(hook)
        slot.hooks.append(wrapped)
        return _HookHandle(slot.hooks, wrapped)

    def retain_grad(self) -> None:
        """Leaves keep their ``.grad`` already; non-leaf gradients are not kept (use autograd.grad)."""
        if not self.is_leaf:
            raise RuntimeError(
                "funcnn_modules: retain_grad() on a non-leaf tensor is not supported; use "
                "funcnn_modules.autograd.grad(output, [tensor]) to get its gradient"
            )

    def backward(
        self,
        gradient: Any = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
        inputs: Any = None,
    ) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        Args:
            gradient: the cotangent, shaped like self (required unless self is a scalar).
            retain_graph: keep the graph's saved values for another backward.
            create_graph: not supported (use ``funcnn.grad`` for higher derivatives).
            inputs: not supported.
        """
        if create_graph or inputs is not None:
            raise NotImplementedError(
                "funcnn_modules: backward(create_graph=True/inputs=...) is not supported; for "
                "higher-order derivatives use funcnn.grad on module.to_functional()"
            )
        d = self._data
        if type(d) is not Box or d._trace != EAGER_TRACE:
            raise RuntimeError(NO_GRAD_FN)
        raw = d._value
        if gradient is None:
            if raw.ndim != 0 and backend.prod(raw.shape) != 1:
                raise RuntimeError(SCALAR_ONLY)
            g = backend.full(tuple(raw.shape), 1.0, dtype=raw.dtype, like=raw)
        else:
            g = as_array(gradient)
            if tuple(g.shape) != tuple(raw.shape):
                raise RuntimeError(
                    f"Mismatch in shape: grad_output[0] has a shape of {Size(g.shape)} and "
                    f"output[0] has a shape of {Size(raw.shape)}."
                )
            if g.dtype != raw.dtype:
                g = fnp.astype(g, raw.dtype)
        _engine_backward([(d._node, g)], keep_graph=bool(retain_graph))

    # -- conversion -----------------------------------------------------------------------------

    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The values as a NumPy array (shares memory on the CPU)."""
        if type(self._data) is Box and not force:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."
            )
        return np.asarray(backend.to_numpy(self._value))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def item(self) -> Any:
        """The single value as a Python number."""
        raw = self._value
        if backend.prod(raw.shape) != 1:
            raise RuntimeError(
                f"a Tensor with {backend.prod(raw.shape)} elements cannot be converted to Scalar"
            )
        return np.asarray(backend.to_numpy(raw)).reshape(()).item()

    def tolist(self) -> Any:
        return np.asarray(backend.to_numpy(self._value)).tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if _is_float_dtype(self._value.dtype):
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __bool__(self) -> bool:
        raw = self._value
        if backend.prod(raw.shape) != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with more than one value is ambiguous (shape {Size(raw.shape)})"
            )
        return bool(self.item())

    def __len__(self) -> int:
        shape = self._value.shape
        if not shape:
            raise TypeError("len() of a 0-d tensor")
        return shape[0]

    def __iter__(self) -> Any:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        for i in range(len(self)):
            yield self[i]

    def __hash__(self) -> int:
        return id(self)

    def __format__(self, spec: str) -> str:
        if self.ndim == 0:
            return format(self.item(), spec)
        return format(repr(self), spec)

    def __repr__(self) -> str:
        d = self._data
        grad_fn = None
        if type(d) is Box and d._node.prim is not None:
            grad_fn = _grad_fn.node_name(d._node)
        return tensor_repr(
            np.asarray(backend.to_numpy(self._value)),
            requires_grad=type(d) is Box,
            grad_fn=grad_fn,
            device=str(self.device),
        )

    def __deepcopy__(self, memo: dict) -> Tensor:
        if not self.is_leaf:
            raise RuntimeError(
                "Only Tensors created explicitly by the user (graph leaves) support the deepcopy protocol"
            )
        raw = self._value
        xp = backend.namespace(raw)
        t = type(self)._wrap(xp.asarray(raw, copy=True))
        if self.requires_grad:
            t.requires_grad_(True)
            g = self._slot().grad
            if g is not None:
                t._slot().grad = backend.namespace(g).asarray(g, copy=True)
        if getattr(self, "__dict__", None):
            t.__dict__.update(_copy.deepcopy(self.__dict__, memo))
        memo[id(self)] = t
        return t

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (
            _rebuild,
            (type(self), np.asarray(backend.to_numpy(self._value)), self.requires_grad),
        )

    # -- dtype and device -----------------------------------------------------------------------

    def _cast(self, dtype: Any) -> Tensor:
        target = _dtypes.to_numpy_dtype(dtype)
        d = unwrap(self)
        raw = _raw(d)
        if raw.dtype == target or str(raw.dtype).rsplit(".", 1)[-1] == target.name:
            return self
        if not target.kind == "f":
            d = raw  # integer and boolean results carry no gradient
        return wrap(fnp.astype(d, target.name))

    def float(self) -> Tensor:  # noqa: A003
        return self._cast(_dtypes.float32)

    def double(self) -> Tensor:
        return self._cast(_dtypes.float64)

    def half(self) -> Tensor:
        return self._cast(_dtypes.float16)

    def long(self) -> Tensor:
        return self._cast(_dtypes.int64)

    def int(self) -> Tensor:  # noqa: A003
        return self._cast(_dtypes.int32)

    def short(self) -> Tensor:
        return self._cast(_dtypes.int16)

    def bool(self) -> Tensor:  # noqa: A003
        return self._cast(_dtypes.bool)

    def byte(self) -> Tensor:
        return self._cast(_dtypes.uint8)

    def type(self, dtype: Any = None) -> Any:  # noqa: A003
        """The type name (no argument), or a copy cast to ``dtype``."""
        if dtype is None:
            names = {
                "float32": "Float",
                "float64": "Double",
                "float16": "Half",
                "int64": "Long",
                "int32": "Int",
                "int16": "Short",
                "int8": "Char",
                "uint8": "Byte",
                "bool": "Bool",
            }
            return f"torch.{names[self.dtype.name]}Tensor"
        return self._cast(dtype)

    def type_as(self, other: Tensor) -> Tensor:
        return self._cast(other.dtype)

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(other)``; self when unchanged."""
        dev, dtype = _parse_to(args, kwargs)
        out = self
        if dtype is not None:
            out = out._cast(dtype)
        if dev is not None and device(dev) != self.device:
            moved = _to_device(out._value, dev)  # first: a missing GPU gets its own clear error
            if type(out._data) is Box:
                raise RuntimeError(
                    "funcnn_modules: moving a tensor that requires grad between devices is not "
                    "differentiable here; move the leaves (or the module) before the forward pass"
                )
            out = wrap(moved)
        return out

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self, device: Any = None) -> Tensor:
        return self.to(
            "cuda" if device is None else device if isinstance(device, str) else f"cuda:{device}"
        )

    def contiguous(self, memory_format: Any = None) -> Tensor:
        return self

    def is_contiguous(self, memory_format: Any = None) -> bool:
        return True

    # -- operators ------------------------------------------------------------------------------

    def __add__(self, other: Any) -> Tensor:
        return _binary(fnp.add, self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _binary(fnp.add, other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _binary(fnp.subtract, self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _binary(fnp.subtract, other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _binary(fnp.multiply, self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _binary(fnp.multiply, other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _true_divide(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _true_divide(other, self)

    def __floordiv__(self, other: Any) -> Tensor:
        return _binary(fnp.floor_divide, self, other)

    def __rfloordiv__(self, other: Any) -> Tensor:
        return _binary(fnp.floor_divide, other, self)

    def __mod__(self, other: Any) -> Tensor:
        return _binary(fnp.remainder, self, other)

    def __rmod__(self, other: Any) -> Tensor:
        return _binary(fnp.remainder, other, self)

    def __pow__(self, other: Any) -> Tensor:
        return _binary(fnp.power, self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return _binary(fnp.power, other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return _binary(fnp.matmul, self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _binary(fnp.matmul, other, self)

    def __neg__(self) -> Tensor:
        return wrap(fnp.negative(unwrap(self)))

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return wrap(fnp.abs(unwrap(self)))

    def __invert__(self) -> Tensor:
        return wrap(fnp.logical_not(unwrap(self)))

    def __and__(self, other: Any) -> Tensor:
        return _compare(fnp.logical_and, self, other)

    __rand__ = __and__

    def __or__(self, other: Any) -> Tensor:
        return _compare(fnp.logical_or, self, other)

    __ror__ = __or__

    def __xor__(self, other: Any) -> Tensor:
        return _compare(fnp.not_equal, self, other)

    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        if other is None:
            return False
        return _compare(fnp.equal, self, other)

    def __ne__(self, other: Any) -> Any:  # type: ignore[override]
        if other is None:
            return True
        return _compare(fnp.not_equal, self, other)

    def __lt__(self, other: Any) -> Tensor:
        return _compare(fnp.less, self, other)

    def __le__(self, other: Any) -> Tensor:
        return _compare(fnp.less_equal, self, other)

    def __gt__(self, other: Any) -> Tensor:
        return _compare(fnp.greater, self, other)

    def __ge__(self, other: Any) -> Tensor:
        return _compare(fnp.greater_equal, self, other)

    eq = __eq__
    ne = __ne__
    lt = __lt__
    le = __le__
    gt = __gt__
    ge = __ge__

    def add(self, other: Any, *, alpha: Any = 1) -> Tensor:
        return self + (other * alpha if alpha != 1 else other)

    def sub(self, other: Any, *, alpha: Any = 1) -> Tensor:
        return self - (other * alpha if alpha != 1 else other)

    def mul(self, other: Any) -> Tensor:
        return self * other

    def div(self, other: Any, *, rounding_mode: str | None = None) -> Tensor:
        if rounding_mode == "floor":
            return self // other
        if rounding_mode == "trunc":  # no gradient, as in PyTorch
            q = _true_divide(
                self.detach(), other.detach() if isinstance(other, Tensor) else other
            )._value
            out = wrap(fnp.multiply(fnp.sign(q), fnp.floor(fnp.abs(q))))
            other_float = isinstance(other, float) or (
                isinstance(other, Tensor) and other.is_floating_point()
            )
            return out if self.is_floating_point() or other_float else out._cast(self.dtype)
        return self / other

    multiply, subtract, divide = mul, sub, div
    true_divide = __truediv__

    def matmul(self, other: Any) -> Tensor:
        return self @ other

    mm = bmm = matmul

    def dot(self, other: Any) -> Tensor:
        return self @ other

    def __getitem__(self, idx: Any) -> Tensor:
        return wrap(fnp.getitem(unwrap(self), _index(idx)))

    def __setitem__(self, idx: Any, value: Any) -> None:
        d = unwrap(self)
        raw = _raw(d)
        v = unwrap(value)
        if not isinstance(v, (int, float, bool)):
            if type(v) is not Box and not backend.is_array(v):
                v = as_array(v)
            if _raw(v).dtype != raw.dtype:
                v = fnp.astype(v if _is_float_dtype(raw.dtype) else _raw(v), raw.dtype)
        self._assign(fnp.index_update(d, _index(idx), v))

    # -- in-place ops: compute with the same ops, then rebind -----------------------------------

    def _assign(self, result: Any) -> Tensor:
        d = self._data
        if _ENABLED[0] and type(d) is Box and d._node.prim is None:
            raise RuntimeError(LEAF_INPLACE)
        raw = self._value
        r = _raw(result)
        if tuple(r.shape) != tuple(raw.shape):
            raise RuntimeError(
                f"output with shape {list(raw.shape)} doesn't match the broadcast shape {list(r.shape)}"
            )
        if r.dtype != raw.dtype:
            result = fnp.astype(result if _is_float_dtype(raw.dtype) else r, raw.dtype)
        if type(result) is Box:  # an in-place op on a non-leaf: the graph goes on through it
            self._data = result
            if isinstance(self._base, Tensor):
                self._base._set_value(_raw(result))
        else:
            self._set_value(result)
        return self

    def add_(self, other: Any, *, alpha: Any = 1) -> Tensor:
        return self._assign(self.add(other, alpha=alpha)._data)

    def sub_(self, other: Any, *, alpha: Any = 1) -> Tensor:
        return self._assign(self.sub(other, alpha=alpha)._data)

    def mul_(self, other: Any) -> Tensor:
        return self._assign((self * other)._data)

    def div_(self, other: Any) -> Tensor:
        return self._assign((self / other)._data)

    def pow_(self, other: Any) -> Tensor:
        return self._assign((self**other)._data)

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
        return self._assign(self.clamp(min, max)._data)

    clip_ = clamp_

    def neg_(self) -> Tensor:
        return self._assign((-self)._data)

    def abs_(self) -> Tensor:
        return self._assign(abs(self)._data)

    def sqrt_(self) -> Tensor:
        return self._assign(self.sqrt()._data)

    def exp_(self) -> Tensor:
        return self._assign(self.exp()._data)

    def relu_(self) -> Tensor:
        return self._assign(self.relu()._data)

    def zero_(self) -> Tensor:
        raw = self._value
        return self._assign(backend.zeros(tuple(raw.shape), dtype=raw.dtype, like=raw))

    def fill_(self, value: Any) -> Tensor:
        raw = self._value
        v = value.item() if isinstance(value, Tensor) else value
        return self._assign(backend.full(tuple(raw.shape), v, dtype=raw.dtype, like=raw))

    def copy_(self, src: Any, non_blocking: bool = False) -> Tensor:
        """Copy ``src``'s values (broadcast and cast to this tensor's shape and dtype)."""
        raw = self._value
        v = unwrap(src) if isinstance(src, Tensor) else as_array(src)
        if type(v) is not Box:
            if backend.device_of(v) != backend.device_of(raw):
                v = backend.device_put(v, backend.device_of(raw))
            v = backend.namespace(v).asarray(v, copy=True)
        if tuple(_raw(v).shape) != tuple(raw.shape):
            v = fnp.broadcast_to(v, tuple(raw.shape))
        return self._assign(v)

    def masked_fill_(self, mask: Any, value: Any) -> Tensor:
        return self._assign(self.masked_fill(mask, value)._data)

    def uniform_(self, a: float = 0.0, b: float = 1.0, generator: Any = None) -> Tensor:
        from funcnn import random as frandom
        from funcnn_modules import _random

        raw = self._value
        u = frandom.uniform(
            _random.key_from(generator), tuple(raw.shape), _dtype_name(raw), minval=a, maxval=b
        )
        return self._assign(backend.device_put(u, backend.device_of(raw)))

    def normal_(self, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Tensor:
        from funcnn import random as frandom
        from funcnn_modules import _random

        raw = self._value
        z = frandom.normal(_random.key_from(generator), tuple(raw.shape), _dtype_name(raw))
        return self._assign(backend.device_put(z * std + mean, backend.device_of(raw)))

    def __iadd__(self, other: Any) -> Tensor:
        return self.add_(other)

    def __isub__(self, other: Any) -> Tensor:
        return self.sub_(other)

    def __imul__(self, other: Any) -> Tensor:
        return self.mul_(other)

    def __itruediv__(self, other: Any) -> Tensor:
        return self.div_(other)

    # -- reductions -----------------------------------------------------------------------------

    def sum(self, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:  # noqa: A003
        return wrap(
            fnp.sum(unwrap(self), axis=_dims(dim), keepdims=keepdim, dtype=_np_dtype(dtype))
        )

    def mean(self, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
        x = self if dtype is None else self._cast(dtype)
        if not x.is_floating_point():
            raise RuntimeError(
                "mean(): could not infer output dtype. Input dtype must be either a floating point "
                f"or complex dtype. Got: {x.dtype}"
            )
        return wrap(fnp.mean(unwrap(x), axis=_dims(dim), keepdims=keepdim))

    def prod(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return wrap(fnp.prod(unwrap(self), axis=dim, keepdims=keepdim))

    def _extreme(self, name: str, dim: Any, keepdim: bool) -> Any:
        if isinstance(dim, Tensor):
            return _binary(fnp.maximum if name == "max" else fnp.minimum, self, dim)
        d = unwrap(self)
        if dim is None:
            return wrap((fnp.max if name == "max" else fnp.min)(d))
        arg = fnp.argmax if name == "max" else fnp.argmin
        idx = arg(_raw(d), axis=dim, keepdims=True)
        values = fnp.take_along_axis(d, idx, axis=dim)
        if not keepdim:
            values = fnp.squeeze(values, axis=dim)
            idx = fnp.squeeze(idx, axis=dim)
        result = max_result if name == "max" else min_result
        return result(wrap(values), wrap(idx))

    def max(self, dim: Any = None, keepdim: bool = False) -> Any:  # noqa: A003
        """The maximum; with ``dim``, a ``(values, indices)`` pair; with a tensor, elementwise."""
        return self._extreme("max", dim, keepdim)

    def min(self, dim: Any = None, keepdim: bool = False) -> Any:  # noqa: A003
        """The minimum; with ``dim``, a ``(values, indices)`` pair; with a tensor, elementwise."""
        return self._extreme("min", dim, keepdim)

    def amax(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return wrap(fnp.max(unwrap(self), axis=_dims(dim), keepdims=keepdim))

    def amin(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return wrap(fnp.min(unwrap(self), axis=_dims(dim), keepdims=keepdim))

    def maximum(self, other: Any) -> Tensor:
        return _binary(fnp.maximum, self, other)

    def minimum(self, other: Any) -> Tensor:
        return _binary(fnp.minimum, self, other)

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return wrap(fnp.argmax(self._value, axis=dim, keepdims=keepdim and dim is not None))

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return wrap(fnp.argmin(self._value, axis=dim, keepdims=keepdim and dim is not None))

    def _ddof(self, dim: Any, unbiased: Any, correction: Any) -> tuple[Any, int]:
        if isinstance(dim, bool):  # the old positional form var(unbiased)
            dim, unbiased = None, dim
        if correction is not None:
            return dim, int(correction)
        return dim, 0 if unbiased is False else 1

    def var(
        self,
        dim: Any = None,
        unbiased: Any = None,
        keepdim: bool = False,
        *,
        correction: Any = None,
    ) -> Tensor:
        """Variance over ``dim``; unbiased (divides by n - 1) unless ``unbiased=False``/``correction=0``."""
        dim, ddof = self._ddof(dim, unbiased, correction)
        return wrap(fnp.var(unwrap(self), axis=_dims(dim), ddof=ddof, keepdims=keepdim))

    def std(
        self,
        dim: Any = None,
        unbiased: Any = None,
        keepdim: bool = False,
        *,
        correction: Any = None,
    ) -> Tensor:
        """Standard deviation over ``dim``; unbiased unless ``unbiased=False``/``correction=0``."""
        dim, ddof = self._ddof(dim, unbiased, correction)
        return wrap(fnp.std(unwrap(self), axis=_dims(dim), ddof=ddof, keepdims=keepdim))

    def logsumexp(self, dim: Any, keepdim: bool = False) -> Tensor:
        return wrap(fnp.logsumexp(unwrap(self), axis=_dims(dim), keepdims=keepdim))

    def norm(self, p: Any = "fro", dim: Any = None, keepdim: bool = False) -> Tensor:
        """The vector p-norm (2 by default) over ``dim`` (all elements when None)."""
        x = unwrap(self)
        if p in ("fro", 2, 2.0):
            if dim is None:
                return wrap(
                    fnp.linalg.norm(fnp.reshape(x, (-1,)))
                    if not keepdim
                    else fnp.sqrt(fnp.sum(x * x, keepdims=True))
                )
            return wrap(fnp.sqrt(fnp.sum(x * x, axis=_dims(dim), keepdims=keepdim)))
        a = fnp.abs(x)
        if p in (float("inf"), "inf"):
            return wrap(fnp.max(a, axis=_dims(dim), keepdims=keepdim))
        if p == 1:
            return wrap(fnp.sum(a, axis=_dims(dim), keepdims=keepdim))
        return wrap(
            fnp.power(
                fnp.sum(fnp.power(a, float(p)), axis=_dims(dim), keepdims=keepdim), 1.0 / float(p)
            )
        )

    def cumsum(self, dim: int) -> Tensor:
        return wrap(fnp.cumsum(unwrap(self), axis=dim))

    def all(self, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A003
        return wrap(fnp.all(self._value, axis=_dims(dim), keepdims=keepdim))

    def any(self, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A003
        return wrap(fnp.any(self._value, axis=_dims(dim), keepdims=keepdim))

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
        d = unwrap(self)
        key = fnp.negative(_raw(d)) if descending else _raw(d)
        idx = fnp.argsort(key, axis=dim)
        return sort_result(wrap(fnp.take_along_axis(d, idx, axis=dim)), wrap(idx))

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
        return self.sort(dim, descending).indices

    def median(self, dim: int | None = None, keepdim: bool = False) -> Any:
        """The lower median (of all elements; or ``(values, indices)`` along ``dim``), like PyTorch."""
        if dim is None:  # a NaN anywhere makes the median NaN, as in PyTorch
            flat = self.reshape(-1)
            values, idx = flat.sort()
            k = (flat.shape[0] - 1) // 2
            nan = values.isnan().any()
            return values[-1] if builtins.bool(nan) else values[k]
        values, idx = self.sort(dim)  # NaNs sort last
        n = values.shape[dim]
        nan = values.isnan().any(dim, keepdim=True)
        first_nan = n - values.isnan().long().sum(dim, keepdim=True)  # where the NaNs start
        k = (n - 1) // 2
        pick = first_nan.where(nan, first_nan.new_full(tuple(first_nan.shape), k))
        values, idx = values.gather(dim, pick), idx.gather(dim, pick)
        if not keepdim:
            values, idx = values.squeeze(dim), idx.squeeze(dim)
        return median_result(values, idx)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:  # noqa: A002
        values, idx = self.sort(dim, descending=largest)
        n = values.ndim
        sl = tuple(slice(None) if a != dim % n else slice(0, k) for a in range(n))
        return topk_result(values[sl], idx[sl])

    # -- elementwise math -----------------------------------------------------------------------

    def exp(self) -> Tensor:
        return wrap(fnp.exp(unwrap(self)))

    def log(self) -> Tensor:
        return wrap(fnp.log(unwrap(self)))

    def log1p(self) -> Tensor:
        return wrap(fnp.log1p(unwrap(self)))

    def expm1(self) -> Tensor:
        return wrap(fnp.expm1(unwrap(self)))

    def sqrt(self) -> Tensor:
        return wrap(fnp.sqrt(unwrap(self)))

    def rsqrt(self) -> Tensor:
        return 1.0 / self.sqrt()

    def square(self) -> Tensor:
        return wrap(fnp.square(unwrap(self)))

    def reciprocal(self) -> Tensor:
        return 1.0 / self

    def abs(self) -> Tensor:  # noqa: A003
        return wrap(fnp.abs(unwrap(self)))

    def neg(self) -> Tensor:
        return -self

    negative = neg

    def sign(self) -> Tensor:
        return wrap(fnp.sign(unwrap(self)))

    def sin(self) -> Tensor:
        return wrap(fnp.sin(unwrap(self)))

    def cos(self) -> Tensor:
        return wrap(fnp.cos(unwrap(self)))

    def tanh(self) -> Tensor:
        return wrap(fnp.tanh(unwrap(self)))

    def floor(self) -> Tensor:
        return wrap(fnp.floor(self._value))

    def round(self) -> Tensor:  # noqa: A003
        return wrap(fnp.round(self._value))

    def pow(self, exponent: Any) -> Tensor:  # noqa: A003
        return self**exponent

    def clamp(self, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
        """Values limited to ``[min, max]`` (either may be None; tensors are allowed)."""
        lo = unwrap(min) if isinstance(min, Tensor) else min
        hi = unwrap(max) if isinstance(max, Tensor) else max
        return wrap(fnp.clip(unwrap(self), lo, hi))

    clip = clamp

    def relu(self) -> Tensor:
        return wrap(_fnn.relu(unwrap(self)))

    def sigmoid(self) -> Tensor:
        return wrap(_fnn.sigmoid(unwrap(self)))

    def softmax(self, dim: int | None = None, dtype: Any = None) -> Tensor:
        x = self if dtype is None else self._cast(dtype)
        return wrap(_fnn.softmax(unwrap(x), axis=_softmax_dim(x.ndim) if dim is None else dim))

    def log_softmax(self, dim: int | None = None, dtype: Any = None) -> Tensor:
        x = self if dtype is None else self._cast(dtype)
        return wrap(_fnn.log_softmax(unwrap(x), axis=_softmax_dim(x.ndim) if dim is None else dim))

    def where(self, condition: Any, other: Any) -> Tensor:
        """``self`` where ``condition`` holds, else ``other``."""
        x, y = _promote(unwrap(self), unwrap(other))
        return wrap(fnp.where(as_array(condition), x, y))

    def masked_fill(self, mask: Any, value: Any) -> Tensor:
        """``value`` where ``mask`` is True, else self."""
        v = value.item() if isinstance(value, Tensor) and value.ndim == 0 else unwrap(value)
        x = unwrap(self)
        if isinstance(v, (int, float, bool)):
            v = backend.full((), v, dtype=_raw(x).dtype, like=_raw(x))
        return wrap(fnp.where(as_array(mask), v, x))

    # -- shape ----------------------------------------------------------------------------------

    def view(self, *shape: Any) -> Tensor:
        """The same values with a new shape (one dimension may be -1)."""
        if len(shape) == 1 and isinstance(shape[0], _dtypes.dtype):
            raise NotImplementedError(
                "funcnn_modules: view(dtype) is not supported; use .to(dtype)"
            )
        return wrap(fnp.reshape(unwrap(self), _size_args(shape, "view")))

    def reshape(self, *shape: Any) -> Tensor:
        return wrap(fnp.reshape(unwrap(self), _size_args(shape, "reshape")))

    def view_as(self, other: Tensor) -> Tensor:
        return self.view(other.shape)

    reshape_as = view_as

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge dimensions ``start_dim..end_dim`` into one."""
        shape = tuple(self._value.shape)
        if not shape:
            return self.reshape(1)
        s, e = start_dim % len(shape), end_dim % len(shape)
        if s > e:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
        n = 1
        for v in shape[s : e + 1]:
            n *= v
        return self.reshape(shape[:s] + (n,) + shape[e + 1 :])

    def unflatten(self, dim: int, sizes: Sequence[int]) -> Tensor:
        shape = tuple(self._value.shape)
        d = dim % len(shape)
        return self.reshape(shape[:d] + tuple(sizes) + shape[d + 1 :])

    def permute(self, *dims: Any) -> Tensor:
        return wrap(fnp.transpose(unwrap(self), _size_args(dims, "permute")))

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        return wrap(fnp.swapaxes(unwrap(self), dim0, dim1))

    swapaxes = transpose

    def t(self) -> Tensor:
        if self.ndim > 2:
            raise RuntimeError(
                f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D"
            )
        return wrap(fnp.transpose(unwrap(self)))

    @property
    def T(self) -> Tensor:  # noqa: N802
        return wrap(fnp.transpose(unwrap(self)))

    @property
    def mT(self) -> Tensor:  # noqa: N802
        return self.transpose(-2, -1)

    def unsqueeze(self, dim: int) -> Tensor:
        return wrap(fnp.expand_dims(unwrap(self), dim))

    def squeeze(self, dim: Any = None) -> Tensor:
        """Drop dimensions of size 1 (only those in ``dim`` when given; others are kept)."""
        shape = tuple(self._value.shape)
        if dim is None:
            return wrap(fnp.squeeze(unwrap(self)))
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        keep = tuple(d % max(len(shape), 1) for d in dims if shape and shape[d] == 1)
        if not keep:
            return self
        return wrap(fnp.squeeze(unwrap(self), axis=keep))

    def expand(self, *sizes: Any) -> Tensor:
        """Broadcast to ``sizes`` (-1 keeps a dimension)."""
        sizes = _size_args(sizes, "expand")
        shape = tuple(self._value.shape)
        lead = len(sizes) - len(shape)
        target = tuple(shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
        return wrap(fnp.broadcast_to(unwrap(self), target))

    def expand_as(self, other: Tensor) -> Tensor:
        return self.expand(other.shape)

    def repeat(self, *sizes: Any) -> Tensor:
        return wrap(fnp.tile(unwrap(self), _size_args(sizes, "repeat")))

    def flip(self, dims: Any) -> Tensor:
        return wrap(fnp.flip(unwrap(self), axis=_dims(dims)))

    def chunk(self, chunks: int, dim: int = 0) -> tuple:
        n = self._value.shape[dim]
        step = -(-n // chunks)
        return self.split(step, dim)

    def split(self, split_size_or_sections: Any, dim: int = 0) -> tuple:
        n = self._value.shape[dim]
        if isinstance(split_size_or_sections, int):
            sizes = [split_size_or_sections] * (n // split_size_or_sections)
            if n % split_size_or_sections:
                sizes.append(n % split_size_or_sections)
        else:
            sizes = list(split_size_or_sections)
        out, start = [], 0
        nd = self.ndim
        for s in sizes:
            sl = tuple(slice(start, start + s) if a == dim % nd else slice(None) for a in range(nd))
            out.append(self[sl])
            start += s
        return tuple(out)

    def narrow(self, dim: int, start: int, length: int) -> Tensor:
        nd = self.ndim
        return self[
            tuple(slice(start, start + length) if a == dim % nd else slice(None) for a in range(nd))
        ]

    def gather(self, dim: int, index: Any) -> Tensor:
        return wrap(fnp.take_along_axis(unwrap(self), as_array(index), axis=dim))

    def index_select(self, dim: int, index: Any) -> Tensor:
        return wrap(fnp.take(unwrap(self), as_array(index), axis=dim))

    # -- indexed writes, masks and friends ----------------------------------------------------------

    def _scatter_index(self, dim: int, index: Any) -> tuple:
        """The advanced index of ``self[..., index[i][j][k], ...]`` (``index`` along ``dim``)."""
        idx = as_array(index)
        nd = self.ndim
        if _raw(idx).ndim != nd:
            raise RuntimeError(
                f"scatter: index has {_raw(idx).ndim} dimensions but self has {nd}; "
                "they must have the same number of dimensions"
            )
        dim = dim % nd
        out = []
        for d in range(nd):
            if d == dim:
                out.append(idx)
            else:
                r = backend.arange(idx.shape[d], like=idx)
                out.append(fnp.reshape(r, tuple(-1 if k == d else 1 for k in range(nd))))
        return tuple(out)

    def _scatter_src(self, index: Any, src: Any) -> Any:
        if isinstance(src, Tensor):
            shape = tuple(as_array(index).shape)
            s = unwrap(src)
            if tuple(_raw(s).shape) != shape:
                s = fnp.getitem(s, tuple(slice(0, n) for n in shape))
            raw = self._value
            return s if _raw(s).dtype == raw.dtype else fnp.astype(s, raw.dtype)
        v = src.item() if isinstance(src, Tensor) else src
        raw = self._value
        return backend.full((), v, dtype=raw.dtype, like=raw)

    def scatter(self, dim: int, index: Any, src: Any = None, *, value: Any = None) -> Tensor:
        """A copy with ``out[i][index[i][j]] = src[i][j]`` along ``dim`` (``src`` may be a number)."""
        src = value if src is None else src
        v = self._scatter_src(index, src)
        return wrap(fnp.index_update(unwrap(self), self._scatter_index(dim, index), v))

    def scatter_(self, dim: int, index: Any, src: Any = None, *, value: Any = None) -> Tensor:
        return self._assign(self.scatter(dim, index, src, value=value)._data)

    def scatter_add(self, dim: int, index: Any, src: Any) -> Tensor:
        """A copy with ``src`` added at ``index`` along ``dim``; repeated indices accumulate."""
        v = self._scatter_src(index, src)
        return wrap(fnp.index_add(unwrap(self), self._scatter_index(dim, index), v))

    def scatter_add_(self, dim: int, index: Any, src: Any) -> Tensor:
        return self._assign(self.scatter_add(dim, index, src)._data)

    def _dim_index(self, dim: int, index: Any) -> tuple:
        return (slice(None),) * (dim % self.ndim) + (as_array(index),)

    def index_add(self, dim: int, index: Any, source: Any, *, alpha: Any = 1) -> Tensor:
        """A copy with ``alpha * source`` added at positions ``index`` along ``dim``."""
        v = unwrap(source if alpha == 1 else source * alpha)
        return wrap(fnp.index_add(unwrap(self), self._dim_index(dim, index), v))

    def index_add_(self, dim: int, index: Any, source: Any, *, alpha: Any = 1) -> Tensor:
        return self._assign(self.index_add(dim, index, source, alpha=alpha)._data)

    def index_fill(self, dim: int, index: Any, value: Any) -> Tensor:
        raw = self._value
        v = backend.full(
            (), value.item() if isinstance(value, Tensor) else value, dtype=raw.dtype, like=raw
        )
        return wrap(fnp.index_update(unwrap(self), self._dim_index(dim, index), v))

    def index_fill_(self, dim: int, index: Any, value: Any) -> Tensor:
        return self._assign(self.index_fill(dim, index, value)._data)

    def _triangle(self, diagonal: int, lower: bool) -> Tensor:
        raw = self._value
        if raw.ndim < 2:
            name = "tril" if lower else "triu"
            raise RuntimeError(
                f"{name}: input tensor must have at least 2 dimensions, got {raw.ndim}"
            )
        n, m = raw.shape[-2], raw.shape[-1]
        rows = fnp.reshape(backend.arange(n, like=raw), (n, 1))
        cols = fnp.reshape(backend.arange(m, like=raw), (1, m))
        keep = (cols - rows <= diagonal) if lower else (cols - rows >= diagonal)
        zero = backend.zeros((), dtype=raw.dtype, like=raw)
        return wrap(fnp.where(keep, unwrap(self), zero))

    def tril(self, diagonal: int = 0) -> Tensor:
        """The lower triangle of the last two dimensions (the rest set to zero)."""
        return self._triangle(diagonal, lower=True)

    def triu(self, diagonal: int = 0) -> Tensor:
        """The upper triangle of the last two dimensions (the rest set to zero)."""
        return self._triangle(diagonal, lower=False)

    def tril_(self, diagonal: int = 0) -> Tensor:
        return self._assign(self.tril(diagonal)._data)

    def triu_(self, diagonal: int = 0) -> Tensor:
        return self._assign(self.triu(diagonal)._data)

    def diagonal(self, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
        """The diagonal over ``dim1``/``dim2``, as the last dimension."""
        nd = self.ndim
        x = unwrap(self)
        x = fnp.moveaxis(x, (dim1 % nd, dim2 % nd), (nd - 2, nd - 1))
        n, m = _raw(x).shape[-2], _raw(x).shape[-1]
        length = builtins.max(
            0, builtins.min(n + builtins.min(offset, 0), m - builtins.max(offset, 0))
        )
        i = backend.arange(length, like=_raw(x))
        r, c = (i - builtins.min(offset, 0), i + builtins.max(offset, 0))
        return wrap(fnp.getitem(x, (Ellipsis, r, c)))

    def diag(self, diagonal: int = 0) -> Tensor:
        """A 1-D tensor's diagonal matrix, or a 2-D tensor's diagonal."""
        if self.ndim == 2:
            return self.diagonal(diagonal)
        if self.ndim != 1:
            raise RuntimeError(f"diag: expected a 1-D or 2-D tensor, got {self.ndim} dimensions")
        raw = self._value
        n = raw.shape[0] + abs(diagonal)
        out = backend.zeros((n, n), dtype=raw.dtype, like=raw)
        i = backend.arange(raw.shape[0], like=raw)
        idx = (i - builtins.min(diagonal, 0), i + builtins.max(diagonal, 0))
        return wrap(fnp.index_update(out, idx, unwrap(self)))

    def trace(self) -> Tensor:
        """The sum of a matrix's diagonal."""
        return self.diagonal().sum()

    def nonzero(self, *, as_tuple: bool = False) -> Any:
        """Indices of the non-zero elements: (n, ndim) int64, or a tuple of 1-D index tensors."""
        raw = self._value
        xp = backend.namespace(raw)
        if raw.ndim == 0:  # PyTorch: one element with no coordinates, or (tensor([0]),)
            hit = int(bool(raw != 0))
            shape = (hit,) if as_tuple else (hit, 0)
            empty = wrap(backend.zeros(shape, dtype="int64", like=raw))
            return (empty,) if as_tuple else empty
        coords = [xp.astype(c, xp.int64) for c in xp.nonzero(raw)]  # on the tensor's device
        if as_tuple:
            return tuple(wrap(c) for c in coords)
        return wrap(xp.stack(coords, axis=1))

    def argwhere(self) -> Tensor:
        return self.nonzero()

    def masked_select(self, mask: Any) -> Tensor:
        """The elements where ``mask`` (broadcast to this shape) is True, as a 1-D tensor."""
        m = as_array(mask)
        shape = tuple(self._value.shape)
        if tuple(m.shape) != shape:
            m = fnp.broadcast_to(m, shape)
        return wrap(fnp.getitem(unwrap(self), m))

    def unbind(self, dim: int = 0) -> tuple:
        """The slices along ``dim``, as a tuple."""
        nd = self.ndim
        dim = dim % nd
        return tuple(self[(slice(None),) * dim + (i,)] for i in range(self._value.shape[dim]))

    def select(self, dim: int, index: int) -> Tensor:
        return self[(slice(None),) * (dim % self.ndim) + (index,)]

    def roll(self, shifts: Any, dims: Any = None) -> Tensor:
        """Shift elements along ``dims`` cyclically (over the flattened tensor when None)."""
        if dims is None:
            return self.flatten().roll(shifts, 0).view(self.shape)
        shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
        dims = (dims,) if isinstance(dims, int) else tuple(dims)
        out = self
        for s, d in zip(shifts, dims):
            n = out._value.shape[d]
            if n == 0:
                continue
            k = s % n
            if k:
                a, b = out.split([n - k, k], d)
                out = wrap(fnp.concatenate([unwrap(b), unwrap(a)], axis=d))
        return out

    def repeat_interleave(self, repeats: Any, dim: int | None = None) -> Tensor:
        """Repeat each element ``repeats`` times (along ``dim``; of the flattened tensor when None)."""
        r = repeats.tolist() if isinstance(repeats, Tensor) else repeats
        if isinstance(r, list) and len(r) == 1:
            r = r[0]
        x = unwrap(self) if dim is not None else fnp.ravel(unwrap(self))
        return wrap(fnp.repeat(x, r, axis=0 if dim is None else dim))

    def tile(self, *dims: Any) -> Tensor:
        dims = _size_args(dims, "tile")
        if len(dims) < self.ndim:
            dims = (1,) * (self.ndim - len(dims)) + dims
        return wrap(fnp.tile(unwrap(self), dims))

    def isnan(self) -> Tensor:
        return wrap(fnp.isnan(self._value))

    def isinf(self) -> Tensor:
        raw = self._value
        return wrap(
            fnp.logical_and(fnp.logical_not(fnp.isfinite(raw)), fnp.logical_not(fnp.isnan(raw)))
        )

    def isfinite(self) -> Tensor:
        return wrap(fnp.isfinite(self._value))

    def logical_not(self) -> Tensor:
        return wrap(fnp.logical_not(self.bool()._value))

    def logical_and(self, other: Any) -> Tensor:
        return wrap(fnp.logical_and(self.bool()._value, _bool_data(other)))

    def logical_or(self, other: Any) -> Tensor:
        return wrap(fnp.logical_or(self.bool()._value, _bool_data(other)))

    def ceil(self) -> Tensor:
        return wrap(-fnp.floor(-self._value))

    def trunc(self) -> Tensor:
        raw = self._value
        return wrap(fnp.where(raw < 0, -fnp.floor(-raw), fnp.floor(raw)))

    def log2(self) -> Tensor:
        return wrap(fnp.log2(unwrap(self)))

    def log10(self) -> Tensor:
        return wrap(fnp.log10(unwrap(self)))

    def clamp_min(self, min: Any) -> Tensor:  # noqa: A002
        return self.clamp(min=min)

    def clamp_max(self, max: Any) -> Tensor:  # noqa: A002
        return self.clamp(max=max)

    def clamp_min_(self, min: Any) -> Tensor:  # noqa: A002
        return self.clamp_(min=min)

    def clamp_max_(self, max: Any) -> Tensor:  # noqa: A002
        return self.clamp_(max=max)

    def lerp(self, end: Any, weight: Any) -> Tensor:
        """``self + weight * (end - self)``."""
        return self + weight * (end - self)

    def lerp_(self, end: Any, weight: Any) -> Tensor:
        return self._assign(self.lerp(end, weight)._data)

    def addcmul(self, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Tensor:
        """``self + value * tensor1 * tensor2``."""
        return self + value * tensor1 * tensor2

    def addcmul_(self, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Tensor:
        return self._assign(self.addcmul(tensor1, tensor2, value=value)._data)

    def addcdiv(self, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Tensor:
        """``self + value * tensor1 / tensor2``."""
        return self + value * tensor1 / tensor2

    def addcdiv_(self, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Tensor:
        return self._assign(self.addcdiv(tensor1, tensor2, value=value)._data)

    def unsqueeze_(self, dim: int) -> Tensor:
        self._rebind_shape(self.unsqueeze(dim))
        return self

    def squeeze_(self, dim: Any = None) -> Tensor:
        self._rebind_shape(self.squeeze(dim))
        return self

    def _rebind_shape(self, result: Tensor) -> None:
        d = self._data
        if _ENABLED[0] and type(d) is Box and d._node.prim is None:
            raise RuntimeError(LEAF_INPLACE)
        self._data = result._data

    def bernoulli(self, p: Any = None, *, generator: Any = None) -> Tensor:
        """0/1 draws (this tensor's dtype), 1 with probability ``self`` (or ``p``)."""
        from funcnn import random as frandom
        from funcnn_modules import _random

        raw = self._value
        if p is None:
            prob = raw
        elif isinstance(p, Tensor):
            prob = as_array(p)
        else:  # a number: as a 0-d array on this tensor's device, where the draws are made
            prob = backend.full((), float(p), dtype="float64", like=raw)
        draws = frandom.bernoulli(_random.key_from(generator), prob, tuple(raw.shape))
        return wrap(fnp.astype(draws, raw.dtype))

    def bernoulli_(self, p: Any = 0.5, *, generator: Any = None) -> Tensor:
        return self._assign(self.bernoulli(p, generator=generator)._value)

    def multinomial(
        self, num_samples: int, replacement: bool = False, *, generator: Any = None
    ) -> Tensor:
        """Indices drawn from the rows' (unnormalised, non-negative) weights: int64.

        With replacement, by the inverse CDF; without, by the Gumbel-top-k trick.
        """
        from funcnn import random as frandom
        from funcnn_modules import _random

        probs = self.detach().double()
        squeeze = probs.ndim == 1
        if squeeze:
            probs = probs.unsqueeze(0)
        if probs.ndim != 2:
            raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got {self.ndim}")
        n, k = probs.shape
        bad = None  # PyTorch's checks, in its order
        if builtins.bool((probs < 0).any()) or builtins.bool(probs.isnan().any()):
            bad = "encountering probability entry < 0"
        elif builtins.bool(probs.isinf().any()):
            bad = "encountering probability entry = infinity or NaN"
        elif builtins.bool((probs.sum(1) <= 0).any()):
            bad = "sum of probabilities <= 0"
        if bad:
            raise RuntimeError(f"invalid multinomial distribution ({bad})")
        if not replacement and num_samples > k:
            raise RuntimeError(
                f"multinomial: cannot sample n_sample={num_samples} > prob_dist.size(-1)={k} "
                "samples without replacement"
            )
        raw = probs._value
        if replacement:
            u = frandom.uniform(_random.key_from(generator), (n, num_samples), dtype="float64")
            u = wrap(backend.device_put(u, backend.device_of(raw)))
            cdf = probs.cumsum(1)
            cdf = cdf / cdf[:, -1:]
            out = (cdf.unsqueeze(1) <= u.unsqueeze(2)).long().sum(2).clamp(max=k - 1)
        else:
            g = frandom.uniform(_random.key_from(generator), (n, k), dtype="float64", minval=1e-12)
            g = wrap(backend.device_put(g, backend.device_of(raw)))
            positive = probs > 0
            if builtins.bool((positive.sum(1) < num_samples).any()):
                raise RuntimeError(
                    "multinomial: invalid multinomial distribution (with replacement=False, "
                    "not enough non-negative category to sample)"
                )
            logp = probs.clamp(min=1e-300).log().masked_fill(~positive, -math.inf)
            keys = logp - (-g.log()).log()
            out = keys.topk(num_samples, dim=1).indices
        return out.squeeze(0) if squeeze else out

    def unique(
        self,
        sorted: bool = True,  # noqa: A002
        return_inverse: bool = False,
        return_counts: bool = False,
        dim: int | None = None,
    ) -> Any:
        """The distinct values, sorted (optionally with inverse indices and counts)."""
        if dim is not None:
            raise NotImplementedError("funcnn_modules: unique(dim=...) is not supported")
        raw = self._value
        host = np.asarray(backend.to_numpy(raw))
        vals, inverse, counts = np.unique(host, return_inverse=True, return_counts=True)
        out = [wrap(backend.from_numpy(vals, like=raw))]
        if return_inverse:
            inv = inverse.reshape(host.shape).astype(np.int64)
            out.append(wrap(backend.from_numpy(inv, like=raw)))
        if return_counts:
            out.append(wrap(backend.from_numpy(counts.astype(np.int64), like=raw)))
        return out[0] if len(out) == 1 else tuple(out)

    def new_zeros(
        self, *size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False
    ) -> Tensor:
        return self._new_full(_size_args(size, "new_zeros"), 0, dtype, requires_grad)

    def new_ones(
        self, *size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False
    ) -> Tensor:
        return self._new_full(_size_args(size, "new_ones"), 1, dtype, requires_grad)

    def new_full(
        self,
        size: Any,
        fill_value: Any,
        *,
        dtype: Any = None,
        device: Any = None,
        requires_grad: bool = False,
    ) -> Tensor:
        return self._new_full(_size_args((size,), "new_full"), fill_value, dtype, requires_grad)

    new_empty = new_zeros

    def new_tensor(
        self, data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False
    ) -> Tensor:
        raw = self._value
        arr = as_array(data)
        arr = backend.asarray(arr, dtype=raw.dtype if dtype is None else _np_dtype(dtype), like=raw)
        return wrap(arr).requires_grad_(requires_grad) if requires_grad else wrap(arr)

    def _new_full(self, shape: tuple, value: Any, dtype: Any, requires_grad: bool) -> Tensor:
        raw = self._value
        out = wrap(
            backend.full(
                shape, value, dtype=raw.dtype if dtype is None else _np_dtype(dtype), like=raw
            )
        )
        return out.requires_grad_(True) if requires_grad else out


def _rebuild(cls: type, array: np.ndarray, requires_grad: bool) -> Tensor:
    t = cls._wrap(backend.from_numpy(array))
    if requires_grad:
        t.requires_grad_(True)
    return t


def _parse_to(args: tuple, kwargs: dict) -> tuple[Any, Any]:
    dev = kwargs.get("device")
    dtype = kwargs.get("dtype")
    for a in args:
        if isinstance(a, Tensor):
            dev, dtype = a.device, a.dtype
        elif isinstance(a, (_dtypes.dtype, np.dtype)) or a in (
            builtins.float,
            builtins.int,
            builtins.bool,
        ):
            dtype = a
        elif isinstance(a, (str, device, int)) and not isinstance(a, builtins.bool):
            dev = a
        elif a is not None:
            raise TypeError(f"to() received an invalid combination of arguments: {args!r}")
    return dev, dtype


def _to_device(raw: Any, dev: Any) -> Any:
    d = device(dev)
    return backend.device_put(raw, str(d) if d.type != "cuda" or d.index is not None else "cuda")
