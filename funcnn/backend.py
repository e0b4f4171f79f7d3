"""The one seam between funcnn and the array libraries.

Everything else in funcnn asks this module for the namespace of its arrays
(``namespace(x, w)``) and writes array math against that namespace, using the names of the
Python array API standard (``concat``, ``permute_dims``, ``astype``, ``pow`` ...), which NumPy 2,
CuPy and ``array_api_strict`` all provide. What the standard lacks lives here, once per backend:
scatter-add, sliding windows, ``einsum``, ``pad``, random bits, host transfers.

Backends:
    ``"numpy"``  numpy.ndarray (the default)
    ``"cupy"``   cupy.ndarray, imported lazily (``pip install funcnn[cuda]``)
    ``"strict"`` array_api_strict arrays on its ``device1``: a stand-in device used by the test
                 suite, so that a stray NumPy call or an implicit host transfer fails loudly.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "namespace",
    "backend_name",
    "default_float_dtype",
    "set_default_float_dtype",
    "set_default",
    "get_default",
    "device_put",
    "to_numpy",
    "from_numpy",
    "is_array",
    "is_floating",
    "is_integer",
    "dtype_of",
    "asarray",
    "zeros",
    "full",
    "arange",
    "eye",
    "einsum",
    "pad",
    "sliding_windows",
    "scatter_add",
    "index_add",
    "index_update",
    "getitem",
    "nan_to_num_check",
    "device_of",
    "resolve_dtype",
    "random_draw",
    "random_bits",
    "float16",
    "float32",
    "float64",
    "int32",
    "int64",
    "bool_",
]

float16, float32, float64 = np.float16, np.float32, np.float64
int32, int64, bool_ = np.int32, np.int64, np.bool_

_np = np
_STRICT_DEVICE = "device1"

_state = {"default": "numpy", "float": "float32", "cuda_device": 0}
_modules: dict[str, Any] = {"numpy": np}
_ns_by_type: dict[type, Any] = {np.ndarray: np}


def _load(name: str) -> Any:
    """Import a backend module lazily and register its array type."""
    mod = _modules.get(name)
    if mod is not None:
        return mod
    if name == "cupy":
        try:
            mod = importlib.import_module("cupy")
        except ImportError as e:  # pragma: no cover - depends on the machine
            raise RuntimeError(
                "funcnn: the 'cupy' backend needs CuPy and a CUDA GPU; "
                "install it with `pip install funcnn[cuda]`"
            ) from e
        _ns_by_type[mod.ndarray] = mod
    elif name == "strict":
        try:
            mod = importlib.import_module("array_api_strict")
        except ImportError as e:
            raise RuntimeError(
                "funcnn: the 'strict' stand-in backend needs `pip install array-api-strict`"
            ) from e
        _ns_by_type[mod._array_object.Array] = mod
        _defer_to_traced_values(mod._array_object.Array)
    else:
        raise ValueError(
            f"funcnn.backend: unknown backend {name!r}; expected 'numpy', 'cupy' or 'strict'"
        )
    _modules[name] = mod
    return mod


def _lookup_type(t: type) -> Any:
    mod = _ns_by_type.get(t)
    if mod is not None:
        return mod
    if issubclass(t, np.generic):
        return np
    modname = t.__module__.split(".")[0]
    if modname == "cupy":
        return _load("cupy")
    if modname == "array_api_strict":
        return _load("strict")
    return None


def namespace(*xs: Any) -> Any:
    """The array namespace (numpy, cupy or array_api_strict) of the arrays among ``xs``.

    Python scalars and None are ignored. With no arrays at all, the default backend's namespace.

    Raises:
        TypeError: if the arrays belong to two different backends.
    """
    if len(xs) == 1:
        mod = _ns_by_type.get(type(xs[0]))
        if mod is not None:
            return mod
    found = None
    for x in xs:
        t = type(x)
        if t is float or t is int or t is bool or x is None:
            continue
        mod = _ns_by_type.get(t)
        if mod is None:
            mod = _lookup_type(t)
            if mod is None:
                continue
        if found is None:
            found = mod
        elif mod is not found:
            raise TypeError(
                "funcnn: cannot mix arrays of two backends in one op: got a "
                f"{_backend_label(found)} array and a {_backend_label(mod)} array. "
                "Move them to one device first with fn.backend.device_put(tree, device)."
            )
    if found is None:
        return _load(_state["default"])
    return found


def _backend_label(mod: Any) -> str:
    return {"numpy": "numpy", "cupy": "cupy", "array_api_strict": "strict"}.get(
        mod.__name__, mod.__name__
    )


def backend_name(x: Any) -> str:
    """'numpy', 'cupy' or 'strict' for an array (or the default backend for a scalar)."""
    return _backend_label(namespace(x))


def is_array(x: Any) -> bool:
    """True for an array of any backend (including NumPy scalars)."""
    return _lookup_type(type(x)) is not None


# ----------------------------------------------------------------------------- defaults


def set_default(name: str) -> None:
    """Choose the backend for arrays made without an array to copy from ('numpy', 'cupy', 'strict')."""
    _load(name)
    _state["default"] = name


def get_default() -> str:
    """The name of the default backend."""
    return _state["default"]


def default_float_dtype(xp: Any = None) -> Any:
    """The default floating dtype (float32 unless changed), in the namespace ``xp``."""
    xp = _load(_state["default"]) if xp is None else xp
    return getattr(xp, _state["float"])


def set_default_float_dtype(name: str) -> None:
    """Set the default floating dtype: 'float32' (the default) or 'float64'."""
    if name not in ("float16", "float32", "float64"):
        raise ValueError(
            f"set_default_float_dtype: expected 'float16', 'float32' or 'float64', got {name!r}"
        )
    _state["float"] = name


def dtype_of(x: Any) -> Any:
    """dtype of an array, or the dtype a Python scalar takes next to float32 arrays."""
    d = getattr(x, "dtype", None)
    if d is not None:
        return d
    if isinstance(x, bool):
        return np.dtype(bool)
    if isinstance(x, int):
        return np.dtype(np.int64)
    return np.dtype(_state["float"])


def is_floating(x: Any) -> bool:
    """True when ``x`` (an array or a dtype) is of a real floating dtype."""
    d = getattr(x, "dtype", x)
    if isinstance(d, type) and issubclass(d, np.generic) or isinstance(d, np.dtype):
        return np.dtype(d).kind == "f"
    if isinstance(x, float):
        return True
    mod = _modules.get("strict")
    if mod is not None and isinstance(d, mod._dtypes.DType):
        return mod.isdtype(d, "real floating")
    try:
        return np.dtype(d).kind == "f"
    except TypeError:
        return False


def is_integer(x: Any) -> bool:
    """True when ``x`` (an array or a dtype) is of an integer or boolean dtype."""
    d = getattr(x, "dtype", x)
    if isinstance(x, (bool, int)) and not hasattr(x, "dtype"):
        return True
    mod = _modules.get("strict")
    if mod is not None and isinstance(d, mod._dtypes.DType):
        return mod.isdtype(d, ("integral", "bool"))
    try:
        return np.dtype(d).kind in "iub"
    except TypeError:
        return False


# ----------------------------------------------------------------------------- devices


def device_of(x: Any) -> str:
    """'cpu', 'cuda:N' or 'strict' for an array."""
    name = backend_name(x)
    if name == "numpy":
        return "cpu"
    if name == "cupy":
        return f"cuda:{x.device.id}"
    return "strict"


def _parse_device(device: str) -> tuple[str, int]:
    dev = str(device)
    if dev == "cpu":
        return "numpy", 0
    if dev == "cuda" or dev.startswith("cuda:"):
        return "cupy", int(dev.split(":")[1]) if ":" in dev else 0
    if dev == "strict":
        return "strict", 0
    raise ValueError(
        f"device_put: unknown device {device!r}; expected 'cpu', 'cuda', 'cuda:N' or 'strict'"
    )


def to_numpy(tree: Any) -> Any:
    """Copy every array leaf of ``tree`` to a NumPy array on the host."""
    from funcnn import tree as _tree

    return _tree.map(_leaf_to_numpy, tree)


def _leaf_to_numpy(x: Any) -> Any:
    name = _backend_label(namespace(x)) if is_array(x) else None
    if name is None or name == "numpy":
        return x
    if name == "cupy":
        return x.get()
    return np.asarray(x._array)  # the strict stand-in: an explicit transfer


def from_numpy(x: np.ndarray, like: Any = None, backend: str | None = None) -> Any:
    """Move a host NumPy array onto the backend (and device) of ``like``, or onto ``backend``."""
    name = backend_name(like) if like is not None else (backend or _state["default"])
    if name == "numpy":
        return x
    mod = _load(name)
    if name == "cupy":
        if like is not None:
            with like.device:
                return mod.asarray(x)
        return mod.asarray(x)
    device = like.device if like is not None else mod.Device(_STRICT_DEVICE)
    return mod.asarray(x, device=device)


def device_put(tree: Any, device: str) -> Any:
    """Copy every array leaf of ``tree`` to ``device`` ('cpu', 'cuda', 'cuda:N' or 'strict')."""
    from funcnn import tree as _tree

    name, index = _parse_device(device)
    mod = _load(name)

    def put(x: Any) -> Any:
        if not is_array(x):
            return x
        host = _leaf_to_numpy(x)
        if name == "numpy":
            return host
        if name == "cupy":
            with mod.cuda.Device(index):
                return mod.asarray(host)
        return mod.asarray(host, device=mod.Device(_STRICT_DEVICE))

    return _tree.map(put, tree)


# ----------------------------------------------------------------------------- creation


def _creation_kwargs(xp: Any, like: Any) -> dict:
    if xp is np or xp.__name__ == "cupy":
        return {}
    return {
        "device": like.device
        if like is not None and hasattr(like, "device")
        else xp.Device(_STRICT_DEVICE)
    }


def resolve_dtype(xp: Any, dtype: Any) -> Any:
    """``dtype`` (a NumPy dtype, a name, or a namespace dtype) as a dtype of namespace ``xp``."""
    return _resolve_dtype(xp, dtype)


def _resolve_dtype(xp: Any, dtype: Any) -> Any:
    if dtype is None:
        return default_float_dtype(xp)
    if xp is np:
        return dtype
    if isinstance(dtype, str):
        return getattr(xp, dtype)
    if isinstance(dtype, (type, np.dtype)):
        return getattr(xp, np.dtype(dtype).name)
    return dtype


def asarray(x: Any, dtype: Any = None, like: Any = None) -> Any:
    """An array from data (host data, a scalar, or an array), on the backend of ``like``.

    Floating host data takes the default float dtype unless ``dtype`` is given; integer and
    boolean data keep their kind.
    """
    xp = namespace(like)
    if dtype is None:
        if hasattr(x, "dtype") and namespace(x) is xp:
            return x
        host = np.asarray(_leaf_to_numpy(x))
        if host.dtype.kind == "f" and not hasattr(x, "dtype"):
            host = host.astype(_state["float"])
        elif host.dtype.kind == "f" and host.dtype.itemsize < 2:
            host = host.astype(_state["float"])
        return from_numpy(host, like=like)
    dt = _resolve_dtype(xp, dtype)
    if hasattr(x, "dtype") and namespace(x) is xp:
        return xp.astype(x, dt)
    if xp is not np:  # the NumPy twin of a cupy or strict dtype (strict dtypes have no .name)
        dt = getattr(dt, "_np_dtype", None) if hasattr(dt, "_np_dtype") else np.dtype(dt.name)
    host = np.asarray(_leaf_to_numpy(x), dtype=dt)
    return from_numpy(host, like=like)


def zeros(shape: Sequence[int] | int, dtype: Any = None, like: Any = None) -> Any:
    """Zeros of ``shape`` on the backend of ``like`` (default float dtype unless given)."""
    xp = namespace(like)
    return xp.zeros(shape, dtype=_resolve_dtype(xp, dtype), **_creation_kwargs(xp, like))


def full(shape: Sequence[int] | int, value: Any, dtype: Any = None, like: Any = None) -> Any:
    """An array of ``shape`` filled with ``value``."""
    xp = namespace(like)
    return xp.full(shape, value, dtype=_resolve_dtype(xp, dtype), **_creation_kwargs(xp, like))


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None, like: Any = None) -> Any:
    """Evenly spaced values; integers give int64 unless ``dtype`` is given."""
    xp = namespace(like)
    if dtype is None and all(isinstance(v, int) for v in (start, stop, step) if v is not None):
        dtype = xp.int64
    return xp.arange(
        start, stop, step, dtype=_resolve_dtype(xp, dtype), **_creation_kwargs(xp, like)
    )


def eye(n: int, m: int | None = None, k: int = 0, dtype: Any = None, like: Any = None) -> Any:
    """An identity-like matrix."""
    xp = namespace(like)
    return xp.eye(n, m, k=k, dtype=_resolve_dtype(xp, dtype), **_creation_kwargs(xp, like))


# ----------------------------------------------------------------------------- kernels beyond the standard


def _via_host(fn: Any, *arrays: Any, like: Any) -> Any:
    """Run a NumPy kernel for the strict stand-in backend: an explicit, visible transfer."""
    out = fn(*[_leaf_to_numpy(a) if is_array(a) else a for a in arrays])
    return from_numpy(np.asarray(out), like=like)


def einsum(subscripts: str, *operands: Any) -> Any:
    """``einsum`` on the operands' backend (optimised contraction order on NumPy)."""
    xp = namespace(*operands)
    if xp is np:
        return np.einsum(subscripts, *operands, optimize=len(operands) > 2)
    if xp.__name__ == "cupy":
        return xp.einsum(subscripts, *operands)
    return _via_host(lambda *ops: np.einsum(subscripts, *ops), *operands, like=operands[0])


def pad(x: Any, pad_width: Sequence[tuple[int, int]], value: float = 0.0) -> Any:
    """Constant padding; ``pad_width`` is one ``(before, after)`` pair per axis."""
    xp = namespace(x)
    if xp is np or xp.__name__ == "cupy":
        return xp.pad(x, pad_width, mode="constant", constant_values=value)
    out = full(
        tuple(s + a + b for s, (a, b) in zip(x.shape, pad_width)), value, dtype=x.dtype, like=x
    )
    out[tuple(slice(a, a + s) for s, (a, _) in zip(x.shape, pad_width))] = x
    return out


def sliding_windows(x: Any, window: Sequence[int], axes: Sequence[int]) -> Any:
    """A read-only view of all windows of size ``window`` along ``axes`` (window dims appended)."""
    xp = namespace(x)
    if xp is np:
        return np.lib.stride_tricks.sliding_window_view(x, tuple(window), axis=tuple(axes))
    if xp.__name__ == "cupy":
        return xp.lib.stride_tricks.sliding_window_view(x, tuple(window), axis=tuple(axes))
    return _via_host(
        lambda a: np.ascontiguousarray(
            np.lib.stride_tricks.sliding_window_view(a, tuple(window), axis=tuple(axes))
        ),
        x,
        like=x,
    )


def _norm_index(idx: Any) -> Any:
    """Host NumPy copies of any array inside an index (for the strict stand-in only)."""
    if isinstance(idx, tuple):
        return tuple(_norm_index(i) for i in idx)
    return _leaf_to_numpy(idx) if is_array(idx) else idx


def getitem(x: Any, idx: Any) -> Any:
    """``x[idx]`` with NumPy's basic and advanced indexing on every backend."""
    xp = namespace(x)
    if xp is np or xp.__name__ == "cupy":
        return x[idx]
    try:
        return x[idx]
    except (IndexError, TypeError):
        # array_api_strict allows only a subset of advanced indexing: fall back explicitly.
        return _via_host(lambda a: a[_norm_index(idx)], x, like=x)


def index_add(x: Any, idx: Any, v: Any) -> Any:
    """A copy of ``x`` with ``v`` added at ``x[idx]``; repeated indices accumulate."""
    xp = namespace(x, v)
    if xp is np:
        out = x.copy()
        if _is_basic_index(idx):
            out[idx] += v
        else:
            np.add.at(out, idx, v)
        return out
    if xp.__name__ == "cupy":
        out = x.copy()
        if _is_basic_index(idx):
            out[idx] += v
        else:
            xp.add.at(out, idx, v)
        return out

    def host(a: Any, b: Any) -> Any:
        out = a.copy()
        np.add.at(out, _norm_index(idx), b)
        return out

    return _via_host(host, x, v, like=x)


def index_update(x: Any, idx: Any, v: Any) -> Any:
    """A copy of ``x`` with ``x[idx] = v``."""
    xp = namespace(x, v)
    if xp is np or xp.__name__ == "cupy":
        out = x.copy()
        out[idx] = v
        return out

    def host(a: Any, b: Any) -> Any:
        out = a.copy()
        out[_norm_index(idx)] = b
        return out

    return _via_host(host, x, v, like=x)


def scatter_add(shape: Sequence[int], indices: Any, values: Any, dtype: Any = None) -> Any:
    """Sum rows of ``values`` (n, *rest) into a zero array of ``shape`` (m, *rest) at ``indices`` (n,).

    Uses a sorted segment sum (no ``np.add.at``), the fast path for embedding gradients.
    """
    xp = namespace(values)
    if xp is np:
        out = np.zeros(shape, dtype=values.dtype if dtype is None else dtype)
        flat_idx = indices.reshape(-1)
        vals = values.reshape(flat_idx.shape[0], -1)
        if flat_idx.size == 0:
            return out
        order = np.argsort(flat_idx, kind="stable")
        sorted_idx = flat_idx[order]
        starts = np.flatnonzero(np.r_[True, sorted_idx[1:] != sorted_idx[:-1]])
        sums = np.add.reduceat(vals[order], starts, axis=0)
        out.reshape(shape[0], -1)[sorted_idx[starts]] = sums
        return out
    if xp.__name__ == "cupy":
        out = xp.zeros(shape, dtype=values.dtype if dtype is None else dtype)
        xp.add.at(out, indices.reshape(-1), values.reshape((-1,) + tuple(shape[1:])))
        return out
    return _via_host(lambda i, v: scatter_add(shape, i, v), indices, values, like=values)


def _is_basic_index(idx: Any) -> bool:
    items = idx if isinstance(idx, tuple) else (idx,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice)) for i in items)


def nan_to_num_check(x: Any) -> bool:
    """True when a floating array holds a NaN or an infinity."""
    if not is_floating(x):
        return False
    xp = namespace(x)
    return not bool(xp.all(xp.isfinite(x)))


def prod(shape: Sequence[int]) -> int:
    """Number of elements of a shape."""
    return math.prod(shape)


# ----------------------------------------------------------------------------- random numbers from keys


def _generator(key: Any) -> np.random.Generator:
    k = np.asarray(_leaf_to_numpy(key), dtype=np.uint32).reshape(-1)
    if k.shape != (2,):
        raise ValueError(
            f"funcnn.random: a key is a uint32 array of shape (2,), got shape {tuple(k.shape)}"
        )
    return np.random.Generator(np.random.Philox(key=(int(k[0]) << 32) | int(k[1])))


def random_bits(key: Any, shape: Sequence[int]) -> np.ndarray:
    """uint32 bits drawn from ``key`` (host NumPy: keys live on the host, like PyTorch's CPU generator)."""
    return _generator(key).integers(0, 2**32, size=tuple(shape), dtype=np.uint32)


def random_draw(
    key: Any,
    kind: str,
    shape: Sequence[int],
    dtype: Any = None,
    backend: str | None = None,
    **kw: Any,
) -> Any:
    """Draw ``kind`` ('normal', 'uniform', 'integers', 'permutation') from ``key`` onto a backend.

    The draw is made on the host from the key (same key, same numbers, on every backend) and
    then moved to the backend in one explicit copy.
    """
    gen = _generator(key)
    if kind == "normal":
        out = gen.standard_normal(size=tuple(shape), dtype=np.float64)
    elif kind == "uniform":
        out = gen.random(size=tuple(shape), dtype=np.float64)
    elif kind == "integers":
        out = gen.integers(kw["low"], kw["high"], size=tuple(shape), dtype=np.int64)
    elif kind == "permutation":
        out = gen.permutation(kw["n"]).astype(np.int64)
    else:
        raise ValueError(f"random_draw: unknown kind {kind!r}")
    if dtype is not None:
        out = out.astype(
            np.dtype(getattr(dtype, "name", dtype)) if not isinstance(dtype, str) else dtype
        )
    elif kind in ("normal", "uniform"):
        out = out.astype(_state["float"])
    # (np.ascontiguousarray would turn a 0-d draw into shape (1,))
    return from_numpy(np.require(out, requirements="C"), backend=backend)


def random_bits_key(seed: int) -> np.ndarray:
    """A raw uint32 key for ``seed`` (what ``funcnn.random.key`` returns)."""
    seed = int(seed)
    return np.array([(seed >> 32) & 0xFFFFFFFF, seed & 0xFFFFFFFF], dtype=np.uint32)


def random_orthogonal(key: Any, rows: int, cols: int, backend: str | None = None) -> Any:
    """A (rows, cols) matrix with orthonormal rows or columns, from a normal draw and a QR
    decomposition with the signs fixed (torch.nn.init.orthogonal_'s construction), as float64."""
    flat = _generator(key).standard_normal(size=(rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return from_numpy(np.ascontiguousarray(q), backend=backend)


_DEFERRING_OPS = (
    "__add__ __radd__ __sub__ __rsub__ __mul__ __rmul__ __truediv__ __rtruediv__ __floordiv__ "
    "__rfloordiv__ __mod__ __rmod__ __pow__ __rpow__ __matmul__ __rmatmul__ "
    "__eq__ __ne__ __lt__ __le__ __gt__ __ge__"
).split()


def _defer_to_traced_values(array_type: type) -> None:
    """Make the strict stand-in's operators defer to traced values, as NumPy and CuPy do.

    NumPy and CuPy arrays return NotImplemented for an operand that sets ``__array_ufunc__ =
    None`` (funcnn's traced values do), so ``raw * traced`` runs the traced value's reflected
    operator. array_api_strict raises TypeError instead; without this, a VJP rule written
    ``g * ans`` would fail on the stand-in only (when ``ans`` is traced by an outer grad).
    """
    if getattr(array_type, "_funcnn_defers", False):
        return
    for name in _DEFERRING_OPS:
        op = getattr(array_type, name)

        def deferring(self: Any, other: Any, _op: Any = op) -> Any:
            if getattr(type(other), "__array_ufunc__", 0) is None:
                return NotImplemented
            return _op(self, other)

        deferring.__name__ = name
        setattr(array_type, name, deferring)
    array_type._funcnn_defers = True
