"""Top-level functions of the PyTorch-style face: creation, random draws, and math on tensors.

Each is a thin call into ``funcnn.numpy`` / ``funcnn.random`` / ``funcnn.nn`` through
:class:`~funcnn_modules.tensor.Tensor`; there is no math here.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np

from funcnn import backend
from funcnn import numpy as fnp
from funcnn import random as frandom
from funcnn.autodiff._core import strip
from funcnn.backend import get_num_threads, set_num_threads  # PyTorch's names and meaning
from funcnn_modules import _dtypes, _random
from funcnn_modules.tensor import Tensor, _size_args, _to_device, as_array, unwrap, wrap

__all__ = [
    "tensor",
    "as_tensor",
    "from_numpy",
    "is_tensor",
    "numel",
    "zeros",
    "ones",
    "empty",
    "full",
    "arange",
    "linspace",
    "eye",
    "zeros_like",
    "ones_like",
    "empty_like",
    "full_like",
    "randn",
    "rand",
    "randint",
    "randperm",
    "randn_like",
    "rand_like",
    "randint_like",
    "get_default_dtype",
    "set_default_dtype",
    "cat",
    "concat",
    "concatenate",
    "stack",
    "where",
    "einsum",
    "allclose",
    "equal",
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "exp",
    "log",
    "log1p",
    "expm1",
    "sqrt",
    "rsqrt",
    "abs",
    "sin",
    "cos",
    "sign",
    "floor",
    "round",
    "square",
    "pow",
    "neg",
    "clamp",
    "clip",
    "maximum",
    "minimum",
    "flatten",
    "reshape",
    "squeeze",
    "unsqueeze",
    "transpose",
    "permute",
    "matmul",
    "mm",
    "bmm",
    "dot",
    "argmax",
    "argmin",
    "max",
    "min",
    "amax",
    "amin",
    "sum",
    "mean",
    "std",
    "var",
    "prod",
    "logsumexp",
    "norm",
    "cumsum",
    "all",
    "any",
    "sort",
    "argsort",
    "topk",
    "gather",
    "index_select",
    "chunk",
    "split",
    "masked_fill",
    "flip",
    "add",
    "sub",
    "mul",
    "div",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "isnan",
    "isfinite",
    "outer",
    "numel",
    "meshgrid",
    "broadcast_to",
    "set_num_threads",
    "get_num_threads",
    "use_deterministic_algorithms",
    "are_deterministic_algorithms_enabled",
    "tril",
    "triu",
    "nonzero",
    "argwhere",
    "unique",
    "multinomial",
    "bernoulli",
    "roll",
    "repeat_interleave",
    "unbind",
    "diag",
    "diagonal",
    "trace",
    "isinf",
    "ceil",
    "trunc",
    "log2",
    "log10",
    "logical_not",
    "logical_and",
    "logical_or",
    "masked_select",
    "lerp",
    "scatter",
    "scatter_add",
    "index_add",
    "index_fill",
    "select",
    "tile",
    "clamp_min",
    "clamp_max",
    "addcmul",
    "addcdiv",
    "is_floating_point",
    "median",
]


def _finish(raw: Any, device: Any, requires_grad: bool) -> Tensor:
    if device is not None:
        raw = _to_device(raw, device)
    t = wrap(raw)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _float_dtype(dtype: Any) -> str:
    d = (
        _dtypes.to_numpy_dtype(dtype)
        if dtype is not None
        else np.dtype(backend.default_float_dtype(np))
    )
    return d.name


# ----------------------------------------------------------------------------- from data


def tensor(
    data: Any, *, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    """A new tensor copied from ``data``: Python floats become float32, ints int64, bools bool;
    NumPy arrays keep their dtype.

    Args:
        data: a number, nested lists, a NumPy array or a Tensor.
        dtype: the element type (a ``funcnn_modules`` dtype); inferred when None.
        device: 'cpu' or 'cuda'.
        requires_grad: record ops on it for ``.backward()``.
    """
    if isinstance(data, Tensor):
        raw = data._value
        raw = backend.namespace(raw).asarray(raw, copy=True)
        if dtype is not None:
            raw = backend.asarray(raw, dtype=_dtypes.to_numpy_dtype(dtype))
    else:
        raw = as_array(data, dtype)
        if backend.is_array(data) and not isinstance(data, np.generic) and raw is data:
            raw = backend.namespace(raw).asarray(raw, copy=True)
    return _finish(raw, device, requires_grad)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """``data`` as a tensor, without a copy where it already is one (or an array)."""
    if isinstance(data, Tensor):
        return data.to(dtype) if dtype is not None else data
    return _finish(as_array(data, dtype), device, False)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing ``array``'s memory and dtype."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    return wrap(array)


def is_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:  # noqa: A002
    return input.numel()


# ----------------------------------------------------------------------------- creation


def _filled(
    size: tuple, value: Any, dtype: Any, device: Any, requires_grad: bool, fn: str
) -> Tensor:
    shape = _size_args(size, fn)
    if dtype is None:
        dt = (
            np.dtype(bool)
            if isinstance(value, bool)
            else np.dtype(np.int64)
            if isinstance(value, int) and fn == "full"
            else np.dtype(backend.default_float_dtype(np))
        )
    else:
        dt = _dtypes.to_numpy_dtype(dtype)
    return _finish(backend.full(shape, value, dtype=dt), device, requires_grad)


def zeros(
    *size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False, **_: Any
) -> Tensor:
    """A tensor of zeros (float32 by default): ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    return _filled(size, 0.0, dtype, device, requires_grad, "zeros")


def ones(
    *size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False, **_: Any
) -> Tensor:
    """A tensor of ones (float32 by default)."""
    return _filled(size, 1.0, dtype, device, requires_grad, "ones")


def empty(
    *size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False, **_: Any
) -> Tensor:
    """A new tensor of ``size`` (zero-filled here)."""
    return _filled(size, 0.0, dtype, device, requires_grad, "empty")


def full(
    size: Sequence[int],
    fill_value: Any,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value`` (its dtype follows the value, like PyTorch)."""
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    return _filled((size,), fill_value, dtype, device, requires_grad, "full")


def _like(input: Tensor, value: Any, dtype: Any, requires_grad: bool) -> Tensor:  # noqa: A002
    raw = input._value
    dt = raw.dtype if dtype is None else _dtypes.to_numpy_dtype(dtype)
    return _finish(backend.full(tuple(raw.shape), value, dtype=dt, like=raw), None, requires_grad)


def zeros_like(
    input: Tensor, *, dtype: Any = None, requires_grad: bool = False, **_: Any
) -> Tensor:  # noqa: A002
    return _like(input, 0, dtype, requires_grad)


def ones_like(input: Tensor, *, dtype: Any = None, requires_grad: bool = False, **_: Any) -> Tensor:  # noqa: A002
    return _like(input, 1, dtype, requires_grad)


empty_like = zeros_like


def full_like(
    input: Tensor, fill_value: Any, *, dtype: Any = None, requires_grad: bool = False, **_: Any
) -> Tensor:  # noqa: A002
    return _like(input, fill_value, dtype, requires_grad)


def arange(
    start: Any,
    end: Any = None,
    step: Any = 1,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Values from ``start`` to ``end`` (excluded): int64 for integer arguments, else float32."""
    if end is None:
        start, end = 0, start
    args = [a.item() if isinstance(a, Tensor) else a for a in (start, end, step)]
    if dtype is None:
        integral = builtins.all(isinstance(a, (int, np.integer)) for a in args)
        dt = np.dtype(np.int64) if integral else np.dtype(backend.default_float_dtype(np))
    else:
        dt = _dtypes.to_numpy_dtype(dtype)
    return _finish(backend.arange(args[0], args[1], args[2], dtype=dt), device, requires_grad)


def linspace(
    start: float,
    end: float,
    steps: int,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` (both included)."""
    host = np.linspace(float(start), float(end), int(steps), dtype=np.float64).astype(
        _float_dtype(dtype)
    )
    return _finish(backend.from_numpy(host), device, requires_grad)


def eye(
    n: int,
    m: int | None = None,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """The identity matrix (n x m)."""
    return _finish(backend.eye(n, m, dtype=_float_dtype(dtype)), device, requires_grad)


def get_default_dtype() -> _dtypes.dtype:
    return _dtypes.from_array_dtype(np.dtype(backend.default_float_dtype(np)))


def set_default_dtype(d: Any) -> None:
    """Set the floating dtype new tensors get (float32 or float64)."""
    backend.set_default_float_dtype(_dtypes.to_numpy_dtype(d).name)


# ----------------------------------------------------------------------------- random draws


def randn(
    *size: Any,
    generator: Any = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Standard normal samples from the global generator (see ``manual_seed``)."""
    raw = frandom.normal(
        _random.key_from(generator), _size_args(size, "randn"), dtype=_float_dtype(dtype)
    )
    return _finish(raw, device, requires_grad)


def rand(
    *size: Any,
    generator: Any = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Samples uniform on [0, 1) from the global generator."""
    raw = frandom.uniform(
        _random.key_from(generator), _size_args(size, "rand"), dtype=_float_dtype(dtype)
    )
    return _finish(raw, device, requires_grad)


def randint(
    *args: Any,
    size: Any = None,
    generator: Any = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Integers uniform on [low, high): ``randint(high, size)`` or ``randint(low, high, size)``."""
    args = list(args)
    if size is None:
        if not args:
            raise TypeError("randint() missing required argument 'size'")
        size = args.pop()
    if len(args) == 1:
        low, high = 0, args[0]
    elif len(args) == 2:
        low, high = args
    else:
        raise TypeError("randint() takes (high, size) or (low, high, size)")
    raw = frandom.randint(
        _random.key_from(generator), _size_args((size,), "randint"), int(low), int(high)
    )
    if dtype is not None:
        raw = backend.asarray(raw, dtype=_dtypes.to_numpy_dtype(dtype))
    return _finish(raw, device, requires_grad)


def randperm(n: int, *, generator: Any = None, dtype: Any = None, device: Any = None) -> Tensor:
    """A random permutation of ``0 .. n - 1`` (int64)."""
    raw = frandom.permutation(_random.key_from(generator), int(n))
    if dtype is not None:
        raw = backend.asarray(raw, dtype=_dtypes.to_numpy_dtype(dtype))
    return _finish(raw, device, False)


def randn_like(input: Tensor, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:  # noqa: A002
    return randn(input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad)


def rand_like(input: Tensor, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:  # noqa: A002
    return rand(input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad)


def randint_like(input: Tensor, low: int, high: int | None = None, *, dtype: Any = None) -> Tensor:  # noqa: A002
    if high is None:
        low, high = 0, low
    return randint(low, high, input.shape, dtype=dtype or input.dtype)


# ----------------------------------------------------------------------------- joining


def _promoted(tensors: Sequence[Any]) -> list:
    """The tensors' data, cast to one dtype as PyTorch promotes (a float dtype wins over ints)."""
    datas = [unwrap(t) if isinstance(t, Tensor) else as_array(t) for t in tensors]
    names = {_dtypes.from_array_dtype(strip(d).dtype).name for d in datas}
    if len(names) > 1:
        floats = [n for n in names if np.dtype(n).kind == "f"]
        target = np.result_type(*floats) if floats else np.result_type(*names)
        datas = [d if strip(d).dtype == target else fnp.astype(d, target.name) for d in datas]
    return datas


def cat(tensors: Sequence[Tensor], dim: int = 0, *, out: Any = None) -> Tensor:
    """Join tensors along an existing dimension."""
    return wrap(fnp.concatenate(_promoted(tensors), axis=dim))


concat = concatenate = cat


def stack(tensors: Sequence[Tensor], dim: int = 0, *, out: Any = None) -> Tensor:
    """Join tensors of one shape along a new dimension."""
    return wrap(fnp.stack(_promoted(tensors), axis=dim))


def where(condition: Any, input: Any = None, other: Any = None) -> Any:  # noqa: A002
    """``input`` where ``condition`` holds, else ``other`` (tensors or numbers)."""
    if input is None and other is None:  # torch.where(c) is c.nonzero(as_tuple=True)
        return as_tensor(condition).nonzero(as_tuple=True)
    if isinstance(input, Tensor):
        return input.where(condition, other)
    if isinstance(other, Tensor):
        return _where_scalar_first(condition, input, other)
    ref = as_array(condition)
    dt = (
        backend.default_float_dtype(backend.namespace(ref))
        if isinstance(input, float) or isinstance(other, float)
        else None
    )
    out = fnp.where(ref, input, other)
    return wrap(out if dt is None else fnp.astype(out, dt))


def _where_scalar_first(condition: Any, input: Any, other: Tensor) -> Tensor:  # noqa: A002
    raw = other._value
    filled = wrap(backend.full(tuple(raw.shape), input, dtype=raw.dtype, like=raw))
    return filled.where(condition, other)


def einsum(equation: str, *operands: Any) -> Tensor:
    """Einstein summation over tensors (``einsum('ij,jk->ik', a, b)``)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    return wrap(fnp.einsum(equation, *[unwrap(o) for o in operands]))


def allclose(
    input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False
) -> bool:  # noqa: A002
    """``|input - other| <= atol + rtol |other|`` everywhere (equal infinities are close; NaNs
    only with ``equal_nan``), computed where the tensors are."""
    a, b = as_array(input), as_array(other)
    finite = fnp.logical_and(fnp.isfinite(a), fnp.isfinite(b))
    a_f, b_f = fnp.where(finite, a, 0), fnp.where(finite, b, 0)  # no inf - inf
    near = fnp.logical_and(finite, fnp.abs(a_f - b_f) <= atol + rtol * fnp.abs(b_f))
    close = fnp.logical_or(a == b, near)
    if equal_nan:
        close = fnp.logical_or(close, fnp.logical_and(fnp.isnan(a), fnp.isnan(b)))
    return bool(fnp.all(close))


def equal(input: Tensor, other: Tensor) -> bool:  # noqa: A002
    a, b = as_array(input), as_array(other)
    return tuple(a.shape) == tuple(b.shape) and bool(fnp.all(a == b))


def outer(input: Tensor, vec2: Tensor) -> Tensor:  # noqa: A002
    return input.reshape(-1, 1) * vec2.reshape(1, -1)


def isnan(input: Tensor) -> Tensor:  # noqa: A002
    return wrap(fnp.isnan(input._value))


def isfinite(input: Tensor) -> Tensor:  # noqa: A002
    return wrap(fnp.isfinite(input._value))


# ----------------------------------------------------------------------------- tensor methods as functions


def _method(name: str) -> Any:
    def f(input: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: A002
        t = input if isinstance(input, Tensor) else as_tensor(input)
        return getattr(t, name)(*args, **kwargs)

    f.__name__ = name
    f.__qualname__ = name
    f.__doc__ = f"``input.{name}(...)``; see :meth:`Tensor.{name}`."
    return f


relu = _method("relu")
sigmoid = _method("sigmoid")
tanh = _method("tanh")
softmax = _method("softmax")
log_softmax = _method("log_softmax")
exp = _method("exp")
log = _method("log")
log1p = _method("log1p")
expm1 = _method("expm1")
sqrt = _method("sqrt")
rsqrt = _method("rsqrt")
abs = _method("abs")  # noqa: A001
sin = _method("sin")
cos = _method("cos")
sign = _method("sign")
floor = _method("floor")
round = _method("round")  # noqa: A001
square = _method("square")
neg = _method("neg")
clamp = _method("clamp")
clip = _method("clamp")
flatten = _method("flatten")
reshape = _method("reshape")
squeeze = _method("squeeze")
unsqueeze = _method("unsqueeze")
transpose = _method("transpose")
permute = _method("permute")
argmax = _method("argmax")
argmin = _method("argmin")
max = _method("max")  # noqa: A001
min = _method("min")  # noqa: A001
amax = _method("amax")
amin = _method("amin")
sum = _method("sum")  # noqa: A001
mean = _method("mean")
std = _method("std")
var = _method("var")
prod = _method("prod")
logsumexp = _method("logsumexp")
norm = _method("norm")
cumsum = _method("cumsum")
all = _method("all")  # noqa: A001
any = _method("any")  # noqa: A001
sort = _method("sort")
argsort = _method("argsort")
topk = _method("topk")
gather = _method("gather")
index_select = _method("index_select")
chunk = _method("chunk")
split = _method("split")
masked_fill = _method("masked_fill")
flip = _method("flip")
maximum = _method("maximum")
minimum = _method("minimum")
matmul = _method("matmul")
mm = _method("mm")
bmm = _method("bmm")
dot = _method("dot")
add = _method("add")
sub = _method("sub")
mul = _method("mul")
div = _method("div")
eq = _method("eq")
ne = _method("ne")
lt = _method("lt")
le = _method("le")
gt = _method("gt")
ge = _method("ge")
tril = _method("tril")
triu = _method("triu")
nonzero = _method("nonzero")
argwhere = _method("argwhere")
unique = _method("unique")
multinomial = _method("multinomial")
bernoulli = _method("bernoulli")
roll = _method("roll")
repeat_interleave = _method("repeat_interleave")
unbind = _method("unbind")
diag = _method("diag")
diagonal = _method("diagonal")
trace = _method("trace")
isinf = _method("isinf")
ceil = _method("ceil")
trunc = _method("trunc")
log2 = _method("log2")
log10 = _method("log10")
logical_not = _method("logical_not")
logical_and = _method("logical_and")
logical_or = _method("logical_or")
masked_select = _method("masked_select")
lerp = _method("lerp")
scatter = _method("scatter")
scatter_add = _method("scatter_add")
index_add = _method("index_add")
index_fill = _method("index_fill")
select = _method("select")
tile = _method("tile")
clamp_min = _method("clamp_min")
clamp_max = _method("clamp_max")
addcmul = _method("addcmul")
addcdiv = _method("addcdiv")
is_floating_point = _method("is_floating_point")
median = _method("median")


def broadcast_to(input: Tensor, size: Any) -> Tensor:  # noqa: A002
    """``input`` broadcast to ``size``."""
    return input.expand(size)


def meshgrid(*tensors: Any, indexing: str = "ij") -> tuple:
    """Coordinate grids from 1-D tensors (``indexing="ij"``, PyTorch's default, or ``"xy"``)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    ts = [t.reshape(-1) for t in tensors]
    swap = indexing == "xy" and len(ts) >= 2
    if swap:
        ts[0], ts[1] = ts[1], ts[0]
    shape = tuple(t.shape[0] for t in ts)
    n = len(ts)
    grids = [
        t.reshape(tuple(-1 if k == i else 1 for k in range(n))).expand(shape)
        for i, t in enumerate(ts)
    ]
    if swap:  # "xy": the first two inputs vary along the second and first axes
        grids[0], grids[1] = grids[1], grids[0]
    return tuple(grids)


_DETERMINISTIC = [False]


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Record the setting; funcnn's kernels are deterministic whatever it is."""
    _DETERMINISTIC[0] = builtins.bool(mode)


def are_deterministic_algorithms_enabled() -> bool:
    return _DETERMINISTIC[0]


def pow(input: Any, exponent: Any) -> Tensor:  # noqa: A001, A002
    """``input ** exponent`` (either may be a number)."""
    if isinstance(input, Tensor):
        return input**exponent
    return exponent.__rpow__(input)
