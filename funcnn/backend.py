"""The one seam between funcnn and the array libraries.

Everything else in funcnn asks this module for the namespace of its arrays
(``namespace(x, w)``) and writes array math against that namespace, using the names of the
Python array API standard (``concat``, ``permute_dims``, ``astype``, ``pow`` ...), which NumPy 2,
CuPy and ``array_api_strict`` all provide. What the standard lacks lives here, once per backend:
scatter-add, sliding windows, ``einsum``, ``pad``, random bits, host transfers.

Backends:
    ``"numpy"``  numpy.ndarray (the default)
    ``"cupy"``   cupy.ndarray, imported lazily (``pip install "funcnn[cuda]"``). CuPy 13 mirrors
                 NumPy 1.x, so its namespace is seen through :class:`_CupyNamespace`, which adds
                 the few array API names (and keywords) funcnn writes that CuPy 13 lacks.
    ``"strict"`` array_api_strict arrays on its ``device1``: a stand-in device used by the test
                 suite, so that a stray NumPy call or an implicit host transfer fails loudly.

Where a kernel is spelled differently on CuPy, the CuPy branch is built from the same generic
code as the others wherever that can be done (strided sliding windows, the Philox stream behind
uniform draws), so the CPU test suite runs the very code the GPU runs.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib
import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor  # now: it cannot be imported at exit
from typing import Any

import numpy as np

__all__ = [
    "BackendUnavailableError",
    "namespace",
    "backend_name",
    "default_float_dtype",
    "set_default_float_dtype",
    "set_default",
    "get_default",
    "set_num_threads",
    "get_num_threads",
    "thread_slices",
    "run_threads",
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

_state = {"default": "numpy", "float": "float32"}
_modules: dict[str, Any] = {"numpy": np}
_ns_by_type: dict[type, Any] = {np.ndarray: np}

_CUDA_EXTRA = 'pip install "funcnn[cuda]"'


class BackendUnavailableError(RuntimeError):
    """A backend (or device) was asked for that this machine cannot provide."""


def _import_cupy() -> Any:
    """``cupy``, or a clear error naming the extra to install / the missing GPU."""
    try:
        cp = importlib.import_module("cupy")
    except ImportError as e:
        raise BackendUnavailableError(
            "funcnn: the 'cupy' backend (device 'cuda') needs CuPy and a CUDA GPU, and CuPy is "
            f"not installed ({e}). Install it with `{_CUDA_EXTRA}` (CuPy for CUDA 12), or stay "
            "on the 'numpy' backend (device 'cpu')."
        ) from e
    try:
        count = int(cp.cuda.runtime.getDeviceCount())
        why = "it sees no GPU"
    except Exception as e:  # noqa: BLE001 - no driver or no device: CuPy raises its own types
        count, why = 0, f"asking CUDA for its GPUs failed: {e}"
    if count < 1:
        raise BackendUnavailableError(
            f"funcnn: the 'cupy' backend (device 'cuda') needs a CUDA GPU; CuPy is installed but "
            f"{why}. Check the NVIDIA driver and CUDA_VISIBLE_DEVICES, make sure the CuPy wheel "
            f"matches the CUDA version (`{_CUDA_EXTRA}` installs CuPy for CUDA 12), or stay on "
            "the 'numpy' backend (device 'cpu')."
        )
    return cp


def _load(name: str) -> Any:
    """Import a backend module lazily and register its array type."""
    mod = _modules.get(name)
    if mod is not None:
        return mod
    if name == "cupy":
        cp = _import_cupy()
        mod = _CupyNamespace(cp)
        _ns_by_type[cp.ndarray] = mod
    elif name == "strict":
        try:
            mod = importlib.import_module("array_api_strict")
        except ImportError as e:
            raise BackendUnavailableError(
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


# ----------------------------------------------------------------------------- CuPy's namespace

# Plain renames of the array API standard over NumPy 1.x names (CuPy 13 has the old names).
_RENAMES = {
    "acos": "arccos",
    "acosh": "arccosh",
    "asin": "arcsin",
    "asinh": "arcsinh",
    "atan": "arctan",
    "atan2": "arctan2",
    "atanh": "arctanh",
    "bitwise_invert": "invert",
    "bitwise_left_shift": "left_shift",
    "bitwise_right_shift": "right_shift",
    "concat": "concatenate",
    "pow": "power",
}


def _array_api_fallbacks(xp: Any, *, everything: bool = False) -> dict[str, Any]:
    """Array API names built from the NumPy 1.x names of namespace ``xp`` (CuPy 13's spelling).

    Names ``xp`` already has are left to it, except ``asarray``, ``clip`` and ``argsort``,
    whose array API keywords (``copy=``, ``min=``/``max=``, ``stable=``) CuPy 13 does not
    take: those are always wrapped (the wrappers call only what every CuPy version accepts).
    ``everything=True`` returns all of them; the tests build them over NumPy and compare each
    with NumPy 2's own function.
    """

    def astype(x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> Any:
        return x.astype(dtype, copy=copy)

    def permute_dims(x: Any, /, axes: Sequence[int]) -> Any:
        return xp.transpose(x, tuple(axes))

    def matrix_transpose(x: Any, /) -> Any:
        return xp.swapaxes(x, -1, -2)

    def cumulative_sum(
        x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False
    ) -> Any:
        if axis is None:
            if x.ndim > 1:
                raise ValueError(
                    f"cumulative_sum: axis is required for an array of {x.ndim} dimensions"
                )
            axis = 0
        out = xp.cumsum(x, axis=axis, dtype=dtype)
        if include_initial:
            shape = list(out.shape)
            shape[axis] = 1
            out = xp.concatenate([xp.zeros(tuple(shape), dtype=out.dtype), out], axis=axis)
        return out

    def asarray(
        obj: Any, /, *, dtype: Any = None, device: Any = None, copy: bool | None = None
    ) -> Any:
        with device if device is not None else contextlib.nullcontext():
            if copy:
                return xp.array(obj, dtype=dtype, copy=True)
            return xp.asarray(obj, dtype=dtype)

    def clip(x: Any, /, min: Any = None, max: Any = None) -> Any:  # noqa: A002 - the standard's names
        if min is None and max is None:
            return x.copy()
        if min is None:
            return xp.minimum(x, max)
        if max is None:
            return xp.maximum(x, min)
        return xp.clip(x, min, max)

    def argsort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
        # CuPy's sort is always stable (its only kind); NumPy is told so explicitly.
        kw = {} if xp.__name__ == "cupy" else {"kind": "stable"}
        if not descending:
            return xp.argsort(x, axis=axis, **kw)
        # a stable descending order: sort the reversed array, then map the indices back
        flipped = xp.flip(xp.argsort(xp.flip(x, axis=axis), axis=axis, **kw), axis=axis)
        return (x.shape[axis] - 1) - flipped

    made: dict[str, Any] = {
        "astype": astype,
        "permute_dims": permute_dims,
        "matrix_transpose": matrix_transpose,
        "cumulative_sum": cumulative_sum,
        "broadcast_shapes": np.broadcast_shapes,  # shapes only: host arithmetic
        "bool": np.bool_,
    }
    made.update({new: getattr(xp, old) for new, old in _RENAMES.items()})
    out = made if everything else {k: v for k, v in made.items() if not hasattr(xp, k)}
    out.update(asarray=asarray, clip=clip, argsort=argsort)
    return out


class _CupyNamespace:
    """The ``cupy`` module, seen through the array API names funcnn writes.

    Every attribute is CuPy's own, except the fallbacks of :func:`_array_api_fallbacks`
    (CuPy 14 mirrors NumPy 2 and needs few of them; CuPy 13 mirrors NumPy 1.x).
    """

    def __init__(self, module: Any) -> None:
        self.__name__ = "cupy"
        self._module = module
        for name, fn in _array_api_fallbacks(module).items():
            setattr(self, name, fn)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._module, name)
        setattr(self, name, value)  # remember it: the next lookup is a plain attribute
        return value

    def __repr__(self) -> str:
        return f"<funcnn's view of {self._module!r}>"


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
    """Choose the backend for arrays made without an array to copy from ('numpy', 'cupy', 'strict').

    Raises:
        ValueError: for another name.
        BackendUnavailableError: for 'cupy' without CuPy or without a GPU (the message names
            ``pip install "funcnn[cuda]"``); the default is then left as it was.
    """
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


# ----------------------------------------------------------------------------- CPU threads

_threads: dict[str, Any] = {"n": None, "pool": None, "pid": None, "workers": 0}
_in_worker = threading.local()
_pool_lock = threading.Lock()
# Elements each thread must get for a split to pay: about a tenth of a millisecond of one pass,
# several times what waking a pool thread costs.
_GRAIN = 1 << 17


def set_num_threads(n: int) -> None:
    """Use ``n`` CPU threads, like ``torch.set_num_threads``: for the BLAS (matrix products,
    convolutions) and for funcnn's own splittable kernels (batch, layer and group norm,
    cross-entropy). The setting is process-wide and lasts until changed; the default is the
    number of cores this process may run on.

    NumPy's other elementwise work runs on one thread whatever this says. Small products (the
    matrices of a small MLP or LSTM) are often fastest on one thread: a thread pool costs more
    to wake than it saves, and on a busy machine spinning BLAS threads can slow each product
    tenfold. The BLAS is reached through threadpoolctl, which finds the one NumPy loaded.

    Raises:
        ValueError: for anything but an int >= 1.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"set_num_threads: n must be an int >= 1, got {n!r}")
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=int(n), user_api="blas")
    _threads["n"] = int(n)


def get_num_threads() -> int:
    """The number of CPU threads funcnn uses (``torch.get_num_threads``)."""
    if _threads["n"] is None:
        affinity = getattr(os, "sched_getaffinity", None)
        _threads["n"] = len(affinity(0)) if affinity else (os.cpu_count() or 1)
    return _threads["n"]


def thread_slices(length: int, size: int, like: Any) -> list[slice]:
    """Ranges of ``range(length)`` (an axis of an array of ``size`` elements) to give one CPU
    thread each: ``[slice(0, length)]`` (no split) for arrays off NumPy, inside a worker, with
    one thread, or when there is too little work to share."""
    n = get_num_threads()
    if n < 2 or size < 2 * _GRAIN or getattr(_in_worker, "on", False):
        return [slice(0, length)]
    if backend_name(like) != "numpy":
        return [slice(0, length)]
    k = min(n, length, size // _GRAIN)
    bounds = [length * i // k for i in range(k + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def run_threads(fn: Callable[[Any], Any], items: Sequence[Any]) -> list:
    """``[fn(item) for item in items]``, the first on this thread and the others on funcnn's
    pool of worker threads at the same time (NumPy lets go of the GIL inside its loops).

    The pool is made on first use, and made anew in a forked child (whose copy has no threads).
    A worker that calls this again runs its items itself, so nested calls cannot deadlock.
    """
    if len(items) == 1 or getattr(_in_worker, "on", False):
        return [fn(item) for item in items]

    def work(item: Any) -> Any:
        _in_worker.on = True
        try:
            return fn(item)
        finally:
            _in_worker.on = False

    futures = []
    try:
        pool = _pool(len(items) - 1)
        for item in items[1:]:
            futures.append(pool.submit(work, item))
    except RuntimeError:  # the interpreter is shutting down (an atexit handler): no new threads
        concurrent.futures.wait(futures)
        rest = [fn(item) for item in items[1 + len(futures) :]]
        return [fn(items[0])] + [f.result() for f in futures] + rest
    try:
        first = fn(items[0])
    finally:  # never return (or raise) while a worker may still be writing
        concurrent.futures.wait(futures)
    return [first] + [f.result() for f in futures]


def _pool(workers: int) -> ThreadPoolExecutor:
    """The worker pool, with at least ``workers`` threads, made under a lock. A pool that is
    replaced is not shut down (another thread may be submitting to it); its idle threads exit
    when it is collected."""
    with _pool_lock:
        pool = _threads["pool"]
        if pool is None or _threads["pid"] != os.getpid() or _threads["workers"] < workers:
            workers = max(workers, get_num_threads() - 1)
            pool = ThreadPoolExecutor(workers, thread_name_prefix="funcnn")
            _threads.update(pool=pool, pid=os.getpid(), workers=workers)
        return pool


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


def _parse_device(device: Any) -> tuple[str, int]:
    dev = str(device)
    if dev == "cpu":
        return "numpy", 0
    if dev == "strict":
        return "strict", 0
    if dev == "cuda" or dev.startswith("cuda:"):
        index = dev.split(":", 1)[1] if ":" in dev else "0"
        if index.isdigit():
            return "cupy", int(index)
    raise ValueError(
        f"device_put: unknown device {device!r}; expected 'cpu', 'cuda', 'cuda:N' (N >= 0) "
        "or 'strict'"
    )


def _check_cuda_index(cp: Any, index: int) -> None:
    """A clear error when there is no GPU ``index``."""
    count = int(cp.cuda.runtime.getDeviceCount())
    if index >= count:
        raise BackendUnavailableError(
            f"device_put: there is no device 'cuda:{index}'; CuPy sees {count} GPU(s) "
            f"(cuda:0 to cuda:{count - 1})"
        )


def _on_device_of(like: Any) -> Any:
    """A context that makes CuPy allocate on ``like``'s GPU (a no-op for other backends)."""
    if is_array(like) and _backend_label(namespace(like)) == "cupy":
        return like.device
    return contextlib.nullcontext()


def to_numpy(tree: Any) -> Any:
    """Copy every array leaf of ``tree`` to a NumPy array on the host (an explicit transfer)."""
    from funcnn import tree as _tree

    return _tree.map(_leaf_to_numpy, tree)


def _leaf_to_numpy(x: Any) -> Any:
    name = _backend_label(namespace(x)) if is_array(x) else None
    if name is None or name == "numpy":
        return x
    if name == "cupy":
        return _modules["cupy"].asnumpy(x)
    return np.asarray(x._array)  # the strict stand-in: an explicit transfer


def from_numpy(x: Any, like: Any = None, backend: str | None = None) -> Any:
    """Move a host NumPy array onto the backend (and device) of ``like``, or onto ``backend``.

    With neither, onto the default backend (on CuPy: the current GPU).
    """
    name = backend_name(like) if like is not None else (backend or _state["default"])
    if name == "numpy":
        return x
    mod = _load(name)
    if name == "cupy":
        with _on_device_of(like):
            return mod.asarray(x)
    device = like.device if like is not None else mod.Device(_STRICT_DEVICE)
    return mod.asarray(x, device=device)


def device_put(tree: Any, device: Any) -> Any:
    """Copy every array leaf of ``tree`` to ``device`` ('cpu', 'cuda', 'cuda:N' or 'strict').

    Leaves already there are returned as they are (no copy); other leaves are copied once
    (CuPy arrays on another GPU through the host). Non-array leaves are left alone.

    Raises:
        ValueError: for a device name not in that list.
        BackendUnavailableError: for 'cuda' without CuPy or a GPU (the error names
            ``pip install "funcnn[cuda]"``), or for a GPU index that does not exist.
    """
    from funcnn import tree as _tree

    name, index = _parse_device(device)
    mod = _load(name)
    if name == "cupy":
        _check_cuda_index(mod, index)

    def put(x: Any) -> Any:
        if not is_array(x):
            return x
        here = _backend_label(namespace(x))
        if here == name and (name != "cupy" or x.device.id == index):
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


def _host_dtype(dt: Any) -> np.dtype:
    """The NumPy dtype of a dtype of any backend (strict dtypes carry theirs in ``_np_dtype``)."""
    return np.dtype(getattr(dt, "_np_dtype", dt))


def asarray(x: Any, dtype: Any = None, like: Any = None) -> Any:
    """An array from data (host data, a scalar, or an array).

    It lands on the backend (and device) of ``like``; with no ``like``, an array ``x`` stays
    on its own backend, and anything else lands on the default backend. An array of another
    backend than ``like``'s is copied across explicitly. Floating host data takes the default
    float dtype unless ``dtype`` is given; integer and boolean data keep their kind.
    """
    if like is None and is_array(x) and not isinstance(x, np.generic):
        like = x
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
    host = np.asarray(_leaf_to_numpy(x), dtype=_host_dtype(dt))
    return from_numpy(host, like=like)


def zeros(shape: Sequence[int] | int, dtype: Any = None, like: Any = None) -> Any:
    """Zeros of ``shape`` on the backend (and device) of ``like`` (default float dtype unless given)."""
    xp = namespace(like)
    with _on_device_of(like):
        return xp.zeros(shape, dtype=_resolve_dtype(xp, dtype), **_creation_kwargs(xp, like))


def full(shape: Sequence[int] | int, value: Any, dtype: Any = None, like: Any = None) -> Any:
    """An array of ``shape`` filled with ``value``."""
    xp = namespace(like)
    with _on_device_of(like):
        return xp.full(shape, value, dtype=_resolve_dtype(xp, dtype), **_creation_kwargs(xp, like))


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None, like: Any = None) -> Any:
    """Evenly spaced values; integers give int64 unless ``dtype`` is given."""
    xp = namespace(like)
    if dtype is None and all(isinstance(v, int) for v in (start, stop, step) if v is not None):
        dtype = xp.int64
    with _on_device_of(like):
        return xp.arange(
            start, stop, step, dtype=_resolve_dtype(xp, dtype), **_creation_kwargs(xp, like)
        )


def eye(n: int, m: int | None = None, k: int = 0, dtype: Any = None, like: Any = None) -> Any:
    """An identity-like matrix."""
    xp = namespace(like)
    with _on_device_of(like):
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
        # as_strided is in every CuPy; sliding_window_view only in recent ones (and it syncs)
        return _strided_windows(xp.lib.stride_tricks.as_strided, x, window, axes)
    return _via_host(
        lambda a: np.ascontiguousarray(
            np.lib.stride_tricks.sliding_window_view(a, tuple(window), axis=tuple(axes))
        ),
        x,
        like=x,
    )


def _strided_windows(
    as_strided: Callable[..., Any], x: Any, window: Sequence[int], axes: Sequence[int]
) -> Any:
    """``sliding_window_view(x, window, axis=axes)`` built from ``as_strided`` (NumPy's recipe).

    Each windowed axis shrinks by ``window - 1`` and gains a trailing window axis with the same
    stride, so the result is a view: no copy, no kernel. The caller must not write to it.
    """
    shape = list(x.shape)
    norm = [a % x.ndim for a in axes]
    for ax, w in zip(norm, window):
        if not 0 <= w <= shape[ax]:
            raise ValueError(
                f"sliding_windows: window {tuple(window)} does not fit axes {tuple(axes)} "
                f"of an array of shape {tuple(x.shape)}"
            )
        shape[ax] -= w - 1
    strides = tuple(x.strides) + tuple(x.strides[ax] for ax in norm)
    return as_strided(x, shape=tuple(shape) + tuple(window), strides=strides)


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
    if xp is np or xp.__name__ == "cupy":
        out = x.copy()
        if _is_basic_index(idx):
            out[idx] += v
        elif xp is np:
            np.add.at(out, idx, v)
        else:
            _cupyx().scatter_add(out, idx, v)  # CuPy's add.at (atomic adds)
        return out

    def host(a: Any, b: Any) -> Any:
        out = a.copy()
        np.add.at(out, _norm_index(idx), b)
        return out

    return _via_host(host, x, v, like=x)


def _cupyx() -> Any:
    return importlib.import_module("cupyx")


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

    Uses a sorted segment sum on NumPy (no ``np.add.at``), the fast path for embedding
    gradients, and ``cupyx.scatter_add`` (atomic adds) on CuPy.
    """
    xp = namespace(indices, values)
    dt = values.dtype if dtype is None else dtype
    if xp is np:
        out = np.zeros(shape, dtype=dt)
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
        with values.device:
            out = xp.zeros(tuple(shape), dtype=dt)
            rows = xp.reshape(values, (-1,) + tuple(shape[1:]))
            _cupyx().scatter_add(out, xp.reshape(indices, (-1,)), xp.astype(rows, dt, copy=False))
        return out
    return _via_host(lambda i, v: scatter_add(shape, i, v, dtype), indices, values, like=values)


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
    return np.random.Generator(np.random.Philox(key=_key_int(key)))


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

    Same key, same numbers, on every backend. On NumPy the draw is NumPy's Philox generator
    keyed by the key's 64 bits. On the other backends uniform draws (and with them bernoulli
    and dropout masks) are computed on the device from the same Philox stream
    (:func:`_philox_uniform`), bit for bit equal and with no host round trip; the other kinds
    are drawn on the host and moved to the backend in one explicit copy.
    """
    name = backend or _state["default"]
    if kind == "uniform" and name != "numpy":
        u = _philox_uniform(_key_int(key), tuple(shape), _load(name))
        xp = namespace(u)
        return xp.astype(
            u, _resolve_dtype(xp, _state["float"] if dtype is None else dtype), copy=False
        )
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
    return from_numpy(np.require(out, requirements="C"), backend=name)


# Philox4x64-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011), the
# generator behind np.random.Philox: multipliers and Weyl key increments.
_PHILOX_M = (0xD2E7470EE14C6C93, 0xCA5A826395121157)
_PHILOX_W = (0x9E3779B97F4A7C15, 0xBB67AE8584CAA73B)
_PHILOX_ROUNDS = 10
_MASK64 = (1 << 64) - 1


def _key_int(key: Any) -> int:
    k = np.asarray(_leaf_to_numpy(key), dtype=np.uint32).reshape(-1)
    if k.shape != (2,):
        raise ValueError(
            f"funcnn.random: a key is a uint32 array of shape (2,), got shape {tuple(k.shape)}"
        )
    return (int(k[0]) << 32) | int(k[1])


def _philox_uniform(key: int, shape: tuple[int, ...], xp: Any) -> Any:
    """float64 uniforms on [0, 1) on backend ``xp``, equal bit for bit to
    ``np.random.Generator(np.random.Philox(key=key)).random(shape)``.

    NumPy's Philox4x64-10 turns counter ``j`` (j = 1, 2, ...) and the 128-bit key into four
    64-bit words; ``random`` reads the words in order and keeps the top 53 bits of each. Here
    all blocks are computed at once by :func:`_philox_top53` (elementwise uint64 operators, the
    same code on every backend; on CuPy fused into one kernel). All constants (multipliers,
    round keys) reach the device in one copy as 0-d uint64 arrays, so no Python integer above
    2**63 meets a backend's scalar promotion rules.
    """
    n = math.prod(shape)
    m0, m1 = _PHILOX_M
    keys, k0, k1 = [], key & _MASK64, key >> 64
    for _ in range(_PHILOX_ROUNDS):
        keys += [k0, k1]
        k0, k1 = (k0 + _PHILOX_W[0]) & _MASK64, (k1 + _PHILOX_W[1]) & _MASK64
    consts = [m0, m0 & 0xFFFFFFFF, m0 >> 32, m1, m1 & 0xFFFFFFFF, m1 >> 32, 0xFFFFFFFF, 32, 11]
    c = from_numpy(np.array([*consts, *keys], dtype=np.uint64), backend=_backend_label(xp))
    blocks = -(-n // 4)
    zero = zeros((blocks,), dtype="uint64", like=c)
    args = [arange(1, blocks + 1, dtype="uint64", like=c), zero, zero, zero]  # the counters
    args += [c[i] for i in range(len(consts) + len(keys))]
    words = _philox_kernel(xp)(*args)
    bits = xp.reshape(xp.stack(list(words), axis=1), (-1,))[:n]
    return xp.reshape(xp.astype(bits, xp.float64) * 2.0**-53, shape)


def _philox_top53(x0: Any, x1: Any, x2: Any, x3: Any, *consts: Any) -> tuple[Any, Any, Any, Any]:
    """Philox4x64's ten rounds on the counter words x0..x3, then the top 53 bits of each word.

    Arguments are uint64 arrays: the counter words (n,), then (0-d, broadcast) the multipliers
    ``m0, m0_lo, m0_hi, m1, m1_lo, m1_hi``, the mask ``2**32 - 1``, the shifts 32 and 11, and
    the ten rounds' key pairs. Only elementwise operators are used, so that ``cupy.fuse`` can
    compile the whole function into one kernel; the 64 x 64 -> 128-bit products are built
    from 32-bit halves.
    """
    m0, m0_lo, m0_hi, m1, m1_lo, m1_hi, low32, s32, s11 = consts[:9]
    keys = consts[9:]

    def mulhilo(a: Any, a_lo: Any, a_hi: Any, b: Any) -> tuple[Any, Any]:
        b_lo, b_hi = b & low32, b >> s32
        ll, lh, hl, hh = a_lo * b_lo, a_lo * b_hi, a_hi * b_lo, a_hi * b_hi
        mid = (ll >> s32) + (lh & low32) + (hl & low32)
        return hh + (lh >> s32) + (hl >> s32) + (mid >> s32), a * b  # uint64 products wrap

    for r in range(_PHILOX_ROUNDS):
        hi0, lo0 = mulhilo(m0, m0_lo, m0_hi, x0)
        hi1, lo1 = mulhilo(m1, m1_lo, m1_hi, x2)
        x0, x1, x2, x3 = hi1 ^ x1 ^ keys[2 * r], lo1, hi0 ^ x3 ^ keys[2 * r + 1], lo0
    return x0 >> s11, x1 >> s11, x2 >> s11, x3 >> s11


_fused: dict[str, Any] = {}


def _philox_kernel(xp: Any) -> Callable[..., Any]:
    """:func:`_philox_top53`, fused into one kernel on CuPy (the same function unfused elsewhere,
    and on CuPy if fusing it fails: the numbers are the same, only slower)."""
    if xp.__name__ != "cupy":
        return _philox_top53
    kernel = _fused.get("philox")
    if kernel is None:
        try:
            fused = xp.fuse(kernel_name="funcnn_philox4x64_10")(_philox_top53)
        except Exception:  # noqa: BLE001 - no cupy.fuse: fall back to the unfused operators
            fused = _philox_top53
        kernel = _fused["philox"] = _checked_once(fused)
    return kernel


def _checked_once(fused: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fused``; if its first call fails (CuPy cannot compile it), use the unfused function."""
    if fused is _philox_top53:
        return fused

    def first(*args: Any) -> Any:
        try:
            out = fused(*args)
        except Exception:  # noqa: BLE001 - a fusion limit of this CuPy version
            _fused["philox"] = _philox_top53
            return _philox_top53(*args)
        _fused["philox"] = fused
        return out

    return first


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
