"""Shared test settings: one hypothesis profile for the whole suite.

The "ci" profile (the default) keeps property tests quick and repeatable for CI: no
per-example deadline (the first call of an op may import a backend), few examples, and the same
examples on every run.
Select another with ``pytest --hypothesis-profile=thorough``.

Backends: the ``backend_name`` fixture runs a test on each backend (NumPy, the array-api-strict
stand-in, an emulation of CuPy's API over NumPy, and real CuPy where there is a GPU).
"""

import importlib
import sys
import types

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from funcnn import backend as _backend

settings.register_profile(
    "ci",
    deadline=None,
    max_examples=20,
    derandomize=True,  # the same examples on every run: CI passes or fails for a reason
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", deadline=None, max_examples=200)
settings.load_profile("ci")


@pytest.fixture(scope="module")
def one_torch_thread():
    """PyTorch on one thread for a module of tests on tiny tensors (its thread pool only adds
    overhead there, much of it on a busy machine); the setting is restored afterwards."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------- backends


class _EmulatedCupyArray(np.ndarray):
    """A NumPy array dressed as a ``cupy.ndarray`` (see :func:`_emulated_cupy`)."""

    __module__ = "cupy"

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        # CuPy refuses NumPy arrays in its operations: so does the emulation
        for a in inputs + tuple(kwargs.get("out", ())):
            if type(a) is np.ndarray:
                raise TypeError(
                    f"emulated cupy: Unsupported type {type(a)} in {ufunc.__name__} "
                    "(a NumPy array met a cupy array)"
                )
        outs = kwargs.get("out")
        if outs is not None:
            kwargs["out"] = tuple(_plain(o) for o in outs)
        res = getattr(ufunc, method)(*(_plain(a) for a in inputs), **kwargs)
        if outs is not None:
            return outs[0] if len(outs) == 1 else outs
        return _dress(res)

    def __array_wrap__(self, arr, context=None, return_scalar=False):
        return arr.view(type(self))  # CuPy keeps 0-d results as arrays

    def __getitem__(self, idx):
        return _dress(super().__getitem__(idx))

    @property
    def device(self):
        return _EmulatedDevice(0)

    def get(self):
        return np.array(self.view(np.ndarray), copy=True)


class _EmulatedDevice:
    def __init__(self, index=None):
        self.id = 0 if index is None else int(index)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def synchronize(self):
        pass


def _plain(x):
    if isinstance(x, _EmulatedCupyArray):
        return x.view(np.ndarray)
    if isinstance(x, (list, tuple)):
        return type(x)(_plain(v) for v in x)
    return x


def _dress(x):
    if isinstance(x, np.ndarray):
        return x.view(_EmulatedCupyArray)
    if isinstance(x, np.generic):
        return np.asarray(x).view(_EmulatedCupyArray)
    if isinstance(x, tuple):
        return tuple(_dress(v) for v in x)
    if isinstance(x, list):
        return [_dress(v) for v in x]
    return x


# What CuPy 13 (NumPy 1.x's API) lacks or spells differently: the backend must not need these.
_NOT_IN_CUPY_13 = {
    "concat", "permute_dims", "astype", "matrix_transpose", "cumulative_sum", "bool", "pow",
    "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "bitwise_invert",
    "bitwise_left_shift", "bitwise_right_shift", "broadcast_shapes", "isdtype", "vecdot",
    "unique_values", "unique_counts", "unique_inverse", "unique_all", "cumulative_prod",
}  # fmt: skip


def _emulated_cupy():
    """(cupy, cupyx) modules over NumPy with CuPy 13's surface, for CPU tests of the CuPy paths.

    Arrays are an ndarray subclass that refuses to meet plain NumPy arrays in an operation and
    keeps 0-d results as arrays, as CuPy does; functions take NumPy 1.x's names and keywords only
    (no ``concat``, no ``asarray(copy=)``, no ``clip(min=)``, no ``argsort(stable=)``). It proves
    the CuPy branches of ``funcnn.backend`` and its CuPy namespace run; not CuPy's numerics.
    """

    def wrap(fn):
        def call(*args, **kwargs):
            return _dress(fn(*_plain(args), **{k: _plain(v) for k, v in kwargs.items()}))

        call.__name__ = getattr(fn, "__name__", "fn")
        return call

    def asarray(a, dtype=None, order=None):
        return _dress(np.array(_plain(a), dtype=dtype, order=order, copy=None))

    def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0):
        return _dress(np.array(_plain(obj), dtype=dtype, copy=copy, order=order, ndmin=ndmin))

    def clip(a, a_min, a_max, out=None):
        return _dress(np.clip(_plain(a), _plain(a_min), _plain(a_max)))

    def argsort(a, axis=-1, kind=None):
        return _dress(np.argsort(_plain(a), axis=axis, kind="stable"))

    def asnumpy(a, stream=None, order="C", out=None):
        return np.array(_plain(a), order=order, copy=True)

    def as_strided(x, shape=None, strides=None):
        return _dress(np.lib.stride_tricks.as_strided(_plain(x), shape=shape, strides=strides))

    def scatter_add(a, slices, value):
        np.add.at(_plain(a), _plain(slices), _plain(value))

    def fuse(*args, kernel_name=None):  # cupy.fuse(kernel_name=...): here, a plain call
        return lambda f: lambda *a: f(*a)

    cuda = types.SimpleNamespace(
        Device=_EmulatedDevice,
        runtime=types.SimpleNamespace(getDeviceCount=lambda: 1, getDevice=lambda: 0),
    )
    own = {
        "__name__": "cupy",
        "ndarray": _EmulatedCupyArray,
        "asarray": asarray,
        "array": array,
        "clip": clip,
        "argsort": argsort,
        "asnumpy": asnumpy,
        "fuse": fuse,
        "cuda": cuda,
        "lib": types.SimpleNamespace(stride_tricks=types.SimpleNamespace(as_strided=as_strided)),
        "get_default_memory_pool": lambda: types.SimpleNamespace(free_all_blocks=lambda: None),
    }
    cupy = types.ModuleType("cupy")
    cupy.__dict__.update(own)

    def module_getattr(name):
        if name in _NOT_IN_CUPY_13 or name.startswith("__"):
            raise AttributeError(f"emulated cupy (CuPy 13's API) has no attribute {name!r}")
        value = getattr(np, name)
        if callable(value) and not isinstance(value, type):  # functions and ufuncs, not dtypes
            value = wrap(value)
        setattr(cupy, name, value)
        return value

    cupy.__getattr__ = module_getattr
    cupyx = types.ModuleType("cupyx")
    cupyx.scatter_add = scatter_add
    return cupy, cupyx


def _forget_cupy():
    """Drop the backend's registration of CuPy (so a later test starts clean)."""
    mod = _backend._modules.pop("cupy", None)
    if mod is not None:
        _backend._ns_by_type.pop(mod._module.ndarray, None)
    _backend._fused.clear()


@pytest.fixture
def emulated_cupy(monkeypatch):
    """Install the CuPy emulation as ``cupy``/``cupyx`` for one test; yields the fake module."""
    if "cupy" in _backend._modules:
        pytest.skip("a real CuPy is loaded in this process; the emulation would shadow it")
    cupy, cupyx = _emulated_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupyx", cupyx)
    yield cupy
    _backend.set_default("numpy")
    _forget_cupy()


def _real_cupy_or_skip():
    try:
        importlib.import_module("cupy")
    except ImportError:
        pytest.skip('needs CuPy and a CUDA GPU (pip install "funcnn[cuda]")')
    try:
        _backend._load("cupy")
    except _backend.BackendUnavailableError as e:
        pytest.skip(str(e))


@pytest.fixture(
    params=[
        "numpy",
        "strict",
        pytest.param("cupy-emulated", id="cupy-emulated"),
        pytest.param("cupy", marks=pytest.mark.gpu),
    ]
)
def backend_name(request):
    """Each backend in turn: 'numpy', 'strict' (array-api-strict on a second device), 'cupy'.

    'cupy-emulated' runs the CuPy code paths on the CPU over an emulation of CuPy 13's API
    (the test sees the name 'cupy'); the real 'cupy' skips without CuPy and a GPU. The
    default backend is 'numpy' again after each test.
    """
    name = request.param
    if name == "cupy-emulated":
        request.getfixturevalue("emulated_cupy")
        name = "cupy"
    elif name == "cupy":
        _real_cupy_or_skip()
    elif name == "strict":
        _backend._load("strict")
    yield name
    _backend.set_default("numpy")
