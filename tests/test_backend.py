"""The backend seam (``funcnn.backend``): namespaces, devices, transfers, the kernels beyond the
array API standard, CuPy's namespace, and random draws made on the device.

Most tests run on every backend through the ``backend_name`` fixture: NumPy, the strict
stand-in (array-api-strict on a second device, which refuses implicit host transfers), the
CuPy code paths over an emulation of CuPy 13's API, and real CuPy where there is a GPU.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import funcnn as fn
import funcnn_modules as fm
from funcnn import backend, nn
from funcnn import numpy as fnp
from funcnn import random as frandom

DEVICES = {"numpy": "cpu", "strict": "strict", "cupy": "cuda"}
CUDA_EXTRA = 'pip install "funcnn[cuda]"'


def _normal(seed, *shape, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _on(tree, name):
    return backend.device_put(tree, DEVICES[name])


def _same(got, want, name, rtol=1e-6):
    assert backend.backend_name(got) == name
    host = backend.to_numpy(got)
    assert isinstance(host, np.ndarray)
    assert host.dtype == np.asarray(want).dtype and host.shape == np.shape(want)
    np.testing.assert_allclose(host, want, rtol=1e-4 if name == "cupy" else rtol, atol=1e-6)


@pytest.fixture
def no_cupy(monkeypatch):
    """A machine without CuPy: ``import cupy`` fails."""
    if "cupy" in backend._modules:
        pytest.skip("CuPy is loaded in this process")
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` raise ImportError
    yield
    backend.set_default("numpy")


@pytest.fixture
def cupy_without_gpu(monkeypatch):
    """CuPy installed on a machine with no usable GPU (CUDA reports an error)."""
    if "cupy" in backend._modules:
        pytest.skip("CuPy is loaded in this process")

    def no_device():
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_device))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    yield
    backend.set_default("numpy")


# ----------------------------------------------------------------------------- asking for a missing backend


@pytest.mark.parametrize(
    "ask",
    [
        lambda: backend.set_default("cupy"),
        lambda: backend.device_put(np.ones(2), "cuda"),
        lambda: backend.device_put({"w": np.ones(2)}, "cuda:0"),
        lambda: backend.from_numpy(np.ones(2), backend="cupy"),
        lambda: fm.ones(2).to("cuda"),
        lambda: fm.nn.Linear(2, 2).cuda(),
    ],
    ids=["set_default", "device_put", "device_put:0", "from_numpy", "Tensor.to", "Module.cuda"],
)
def test_asking_for_cuda_without_cupy_names_the_extra_to_install(no_cupy, ask):
    with pytest.raises(backend.BackendUnavailableError) as err:
        ask()
    assert CUDA_EXTRA in str(err.value) and "not installed" in str(err.value)
    assert backend.get_default() == "numpy"
    assert "cupy" not in backend._modules


def test_asking_for_cuda_without_a_gpu_says_so_and_names_the_extra(cupy_without_gpu):
    with pytest.raises(backend.BackendUnavailableError) as err:
        backend.set_default("cupy")
    msg = str(err.value)
    assert "CuPy is installed" in msg and "cudaErrorNoDevice" in msg and CUDA_EXTRA in msg
    assert backend.get_default() == "numpy" and "cupy" not in backend._modules


def test_the_backend_error_is_a_runtime_error():
    assert issubclass(backend.BackendUnavailableError, RuntimeError)


def test_funcnn_modules_cuda_reports_no_gpu_without_cupy(no_cupy):
    assert fm.cuda.is_available() is False and fm.cuda.device_count() == 0


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cuda:-1", "cuda:", "tpu:0", "numpy"])
def test_unknown_devices_are_refused_with_the_accepted_names(bad):
    with pytest.raises(ValueError, match=r"unknown device .*'cpu', 'cuda', 'cuda:N'"):
        backend.device_put(np.ones(2), bad)


def test_unknown_backend_names_are_refused():
    with pytest.raises(ValueError, match="expected 'numpy', 'cupy' or 'strict'"):
        backend.set_default("torch")
    assert backend.get_default() == "numpy"


def test_a_gpu_index_that_does_not_exist_is_refused(emulated_cupy):
    with pytest.raises(backend.BackendUnavailableError, match=r"no device 'cuda:3'.*1 GPU"):
        backend.device_put(np.ones(2), "cuda:3")


# ----------------------------------------------------------------------------- devices and transfers


def test_device_put_to_numpy_from_numpy_round_trip(backend_name):
    host = {"w": _normal(0, 3, 2), "i": np.arange(4), "b": np.array([True, False]), "n": None}
    tree = backend.device_put(host, DEVICES[backend_name])
    assert tree["n"] is None
    for k in ("w", "i", "b"):
        assert backend.backend_name(tree[k]) == backend_name
        assert backend.device_of(tree[k]) == {"cupy": "cuda:0"}.get(
            backend_name, DEVICES[backend_name]
        )
    back = backend.to_numpy(tree)
    for k in ("w", "i", "b"):
        assert type(back[k]) is np.ndarray and back[k].dtype == host[k].dtype
        np.testing.assert_array_equal(back[k], host[k])
    moved = backend.from_numpy(host["w"], like=tree["i"])
    assert backend.backend_name(moved) == backend_name
    np.testing.assert_array_equal(backend.to_numpy(moved), host["w"])
    made = backend.from_numpy(host["w"], backend=backend_name)
    assert backend.backend_name(made) == backend_name


def test_device_put_leaves_arrays_already_there_alone(backend_name):
    x = _on(_normal(1, 3), backend_name)
    assert backend.device_put(x, DEVICES[backend_name]) is x
    host = backend.device_put(x, "cpu")
    assert type(host) is np.ndarray
    assert backend.device_put(host, "cpu") is host


def test_set_default_makes_new_arrays_and_draws_there(backend_name):
    key = frandom.key(3)
    want = {
        "zeros": np.zeros((2, 3), np.float32),
        "arange": np.arange(4),
        "normal": frandom.normal(key, (2, 3)),
        "uniform": frandom.uniform(key, (5,), minval=-1.0, maxval=2.0),
        "bernoulli": frandom.bernoulli(key, 0.3, (7,)),
        "randint": frandom.randint(key, (4,), 0, 9),
        "permutation": frandom.permutation(key, 6),
        "linear": nn.init.linear(key, 3, 2)["weight"],
    }
    backend.set_default(backend_name)
    assert backend.get_default() == backend_name
    got = {
        "zeros": fnp.zeros((2, 3)),
        "arange": fnp.arange(4),
        "normal": frandom.normal(key, (2, 3)),
        "uniform": frandom.uniform(key, (5,), minval=-1.0, maxval=2.0),
        "bernoulli": frandom.bernoulli(key, 0.3, (7,)),
        "randint": frandom.randint(key, (4,), 0, 9),
        "permutation": frandom.permutation(key, 6),
        "linear": nn.init.linear(key, 3, 2)["weight"],
    }
    backend.set_default("numpy")
    for k in want:  # same key, same numbers, bit for bit, on every backend
        assert backend.backend_name(got[k]) == backend_name, k
        host = backend.to_numpy(got[k])
        assert host.dtype == want[k].dtype, k
        np.testing.assert_array_equal(host, want[k], err_msg=k)


def test_asarray_keeps_an_array_on_its_own_backend(backend_name):
    x = _on(_normal(2, 4), backend_name)
    for dtype, want in (("float64", np.float64), (np.float64, np.float64), ("int32", np.int32)):
        y = backend.asarray(x, dtype=dtype)
        assert backend.backend_name(y) == backend_name
        assert backend.to_numpy(y).dtype == want
    assert backend.asarray(x) is x
    z = backend.asarray([1.5, 2.0], like=x)  # host data lands on like's backend, float32
    assert backend.backend_name(z) == backend_name and backend.to_numpy(z).dtype == np.float32
    i = backend.asarray(np.array([1, 2]), dtype="int32", like=x)
    assert backend.backend_name(i) == backend_name and backend.to_numpy(i).dtype == np.int32


def test_casting_tensors_and_parameters_keeps_their_device(backend_name):
    device = DEVICES[backend_name]
    m = fm.nn.Linear(3, 2, dtype=fm.float64, device=device)
    fm.nn.init.normal_(m.weight)  # float32 draws written into a float64 parameter
    assert m.weight.dtype == fm.float64 and backend.backend_name(m.weight._value) == backend_name
    t = fm.tensor(m.weight, dtype=fm.float32)
    assert t.dtype == fm.float32 and backend.backend_name(t._value) == backend_name
    if backend_name != "strict":  # Module.to(dtype) compares a strict dtype with NumPy's: warns
        m.float()
        for p in m.parameters():
            assert p.dtype == fm.float32 and backend.backend_name(p._value) == backend_name


# ----------------------------------------------------------------------------- mixing backends


MIXED_OPS = {
    "add": lambda a, b: fnp.add(a, b),
    "matmul": lambda a, b: fnp.matmul(a, fnp.transpose(b)),
    "where": lambda a, b: fnp.where(a > 0.0, a, b),
    "concatenate": lambda a, b: fnp.concatenate([a, b]),
    "einsum": lambda a, b: fnp.einsum("ij,ij->i", a, b),
    "index_add": lambda a, b: fnp.index_add(a, (0,), b[0, :]),
    "grad": lambda a, b: fn.grad(lambda x, y: fnp.sum(x * y))(a, b),
    "maximum": lambda a, b: fnp.maximum(a, b),
    "scatter_add": lambda a, b: backend.scatter_add((3, 3), fnp.argmax(a, axis=1), b),
    "embedding": lambda a, b: nn.embedding({"weight": b}, fnp.argmax(a[:, :2], axis=1)),
}


@pytest.mark.parametrize("op", sorted(MIXED_OPS))
def test_mixing_backends_in_one_op_is_a_clear_error(backend_name, op):
    other = "strict" if backend_name == "numpy" else "numpy"
    a, b = _on(_normal(3, 2, 3), other), _on(_normal(4, 2, 3), backend_name)
    with pytest.raises(TypeError, match=r"cannot mix arrays of two backends.*device_put"):
        MIXED_OPS[op](a, b)


# ----------------------------------------------------------------------------- kernels beyond the standard


def test_kernels_match_numpy_on_every_backend(backend_name):
    x, w = _normal(5, 2, 3, 6, 5), _normal(6, 4, 5)
    idx, vals = np.array([3, 0, 3, 1, 3]), _normal(7, 5, 4)
    want = {
        "windows": backend.sliding_windows(x, (3, 2), (2, 3)),
        "windows_neg": backend.sliding_windows(x[:, :, ::2], (2,), (-1,)),
        "scatter": backend.scatter_add((4, 4), idx, vals),
        "scatter64": backend.scatter_add((4, 4), idx, vals, dtype=np.float64),
        "index_add": backend.index_add(w, (idx[:3], slice(1, 3)), vals[:3, :2]),
        "index_add_basic": backend.index_add(w, (1, slice(None)), vals[0, :1]),
        "index_update": backend.index_update(w, (idx[:2],), vals[:2, 0:1]),
        "einsum": backend.einsum("ij,kj->ik", w, w),
        "einsum3": backend.einsum("ij,jk,kl->il", w, w.T, w),
        "pad": backend.pad(w, ((1, 0), (2, 3)), value=-1.0),
        "getitem": backend.getitem(w, (idx[:3], slice(None, None, 2))),
    }
    xd, wd, idd, vd = _on((x, w, idx, vals), backend_name)
    got = {
        "windows": backend.sliding_windows(xd, (3, 2), (2, 3)),
        "windows_neg": backend.sliding_windows(xd[:, :, ::2, :], (2,), (-1,)),
        "scatter": backend.scatter_add((4, 4), idd, vd),
        "scatter64": backend.scatter_add((4, 4), idd, vd, dtype=np.float64),
        "index_add": backend.index_add(wd, (idd[:3], slice(1, 3)), vd[:3, :2]),
        "index_add_basic": backend.index_add(wd, (1, slice(None)), vd[0, :1]),
        "index_update": backend.index_update(wd, (idd[:2],), vd[:2, 0:1]),
        "einsum": backend.einsum("ij,kj->ik", wd, wd),
        "einsum3": backend.einsum("ij,jk,kl->il", wd, fnp.transpose(wd), wd),
        "pad": backend.pad(wd, ((1, 0), (2, 3)), value=-1.0),
        "getitem": backend.getitem(wd, (idd[:3], slice(None, None, 2))),
    }
    for k in want:
        _same(got[k], want[k], backend_name)


@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    data=st.data(),
)
def test_strided_windows_equal_numpys_sliding_window_view(shape, data):
    """The CuPy branch's recipe (as_strided), checked here with NumPy's as_strided."""
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    if data.draw(st.booleans(), label="non-contiguous"):
        x = np.moveaxis(x, 0, -1)[..., ::-1]
    nd = x.ndim
    axes = data.draw(
        st.lists(st.integers(-nd, nd - 1), min_size=1, max_size=nd, unique_by=lambda a: a % nd)
    )
    window = [data.draw(st.integers(0, x.shape[a])) for a in axes]
    got = backend._strided_windows(np.lib.stride_tricks.as_strided, x, window, axes)
    want = np.lib.stride_tricks.sliding_window_view(x, tuple(window), axis=tuple(axes))
    np.testing.assert_array_equal(got, want)
    assert got.shape == want.shape


def test_strided_windows_refuse_a_window_bigger_than_the_axis():
    with pytest.raises(ValueError, match=r"sliding_windows: window \(4,\) does not fit"):
        backend._strided_windows(np.lib.stride_tricks.as_strided, np.ones((2, 3)), (4,), (1,))


# ----------------------------------------------------------------------------- CuPy's namespace


def _fallbacks():
    return backend._array_api_fallbacks(np, everything=True)


def test_each_array_api_fallback_equals_numpy_2s_own_function():
    f, x = _fallbacks(), _normal(8, 2, 3, 4)
    i = np.array([[3, 1, 3], [0, 2, 2]])
    np.testing.assert_array_equal(f["astype"](x, np.float16), np.astype(x, np.float16))
    y = f["astype"](x, np.float32, copy=False)
    assert y is x or np.shares_memory(y, x)
    np.testing.assert_array_equal(f["permute_dims"](x, (2, 0, 1)), np.permute_dims(x, (2, 0, 1)))
    np.testing.assert_array_equal(f["matrix_transpose"](x), np.matrix_transpose(x))
    for kw in (
        {"axis": 1},
        {"axis": -1, "include_initial": True},
        {"axis": 0, "dtype": np.float64},
    ):
        np.testing.assert_array_equal(f["cumulative_sum"](x, **kw), np.cumulative_sum(x, **kw))
    np.testing.assert_array_equal(f["cumulative_sum"](i[0]), np.cumulative_sum(i[0]))
    with pytest.raises(ValueError, match="axis is required"):
        f["cumulative_sum"](x)
    np.testing.assert_array_equal(f["concat"]([x, x], axis=1), np.concat([x, x], axis=1))
    np.testing.assert_array_equal(f["pow"](x, 2.0), np.pow(x, 2.0))
    for name in backend._RENAMES:
        assert f[name] is getattr(np, backend._RENAMES[name])
    assert f["broadcast_shapes"]((2, 1), (3,)) == (2, 3) and f["bool"] is np.bool_
    for lo, hi in ((None, 0.5), (-0.5, None), (-0.5, 0.5), (0.5, -0.5), (None, None)):
        np.testing.assert_array_equal(f["clip"](x, min=lo, max=hi), np.clip(x, min=lo, max=hi))
    c = f["asarray"](x, copy=True)
    assert not np.shares_memory(c, x) and np.array_equal(c, x)
    assert f["asarray"](x) is x and f["asarray"]([1, 2], dtype=np.int32).dtype == np.int32
    for axis in (0, 1, -1):
        np.testing.assert_array_equal(
            f["argsort"](i, axis=axis), np.argsort(i, axis=axis, stable=True)
        )


@given(st.lists(st.integers(0, 3), min_size=1, max_size=12))
def test_the_descending_argsort_fallback_is_stable(values):
    got = backend._array_api_fallbacks(np, everything=True)["argsort"](
        np.array(values), descending=True
    )
    want = sorted(range(len(values)), key=lambda k: -values[k])  # Python's sort is stable
    assert got.tolist() == want


def test_the_cupy_namespace_adds_only_what_cupy_lacks(emulated_cupy):
    xp = backend._load("cupy")
    assert xp.__name__ == "cupy" and backend._modules["cupy"] is xp
    assert xp.concat.__name__ == "concatenate"  # added: the emulated CuPy 13 has no concat
    assert xp.permute_dims.__qualname__.startswith("_array_api_fallbacks")
    assert xp.exp is emulated_cupy.exp  # CuPy's own, looked up once and remembered
    assert "exp" in vars(xp)
    # the keywords CuPy 13 lacks are always wrapped
    for name in ("asarray", "clip", "argsort"):
        assert getattr(xp, name).__qualname__.startswith("_array_api_fallbacks")
    with pytest.raises(AttributeError):
        emulated_cupy.permute_dims  # noqa: B018 - the emulation really lacks it


# ----------------------------------------------------------------------------- random numbers on the device


@pytest.mark.parametrize("shape", [(), (0,), (1,), (3,), (4,), (5,), (3, 7), (2, 0, 3), (33,)])
@pytest.mark.parametrize("seed", [0, 1, 2**32 + 7, 2**64 - 1])
def test_the_philox_stream_equals_numpys_bit_for_bit(seed, shape):
    key = frandom.key(seed)
    want = np.random.Generator(np.random.Philox(key=backend._key_int(key))).random(shape)
    got = backend._philox_uniform(backend._key_int(key), shape, np)
    assert got.dtype == np.float64 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_uniform_draws_are_made_on_the_device(backend_name, monkeypatch):
    if backend_name == "numpy":
        pytest.skip("NumPy draws with its own generator")
    key, like = frandom.key(11), _on(np.ones(1, np.float32), backend_name)
    want = backend.random_draw(key, "uniform", (3, 5), backend="numpy")
    want_mask = nn.dropout_mask(key, (4, 6), 0.25)
    monkeypatch.setattr(backend, "_generator", None)  # no host generator may be used
    got = backend.random_draw(key, "uniform", (3, 5), backend=backend_name)
    assert backend.backend_name(got) == backend_name
    np.testing.assert_array_equal(backend.to_numpy(got), want)
    mask = nn.dropout_mask(key, (4, 6), 0.25, like=like)
    assert backend.backend_name(mask) == backend_name
    np.testing.assert_array_equal(backend.to_numpy(mask), want_mask)


def test_cupy_draws_through_the_fused_kernel(emulated_cupy):
    """On CuPy the Philox rounds are one cupy.fuse kernel (the emulation's fuse is the identity)."""
    backend.random_draw(frandom.key(1), "uniform", (9,), backend="cupy")
    assert backend._fused["philox"] is not backend._philox_top53


def test_cupy_falls_back_to_unfused_rounds_when_fusing_fails(emulated_cupy, monkeypatch):
    def broken(*args):
        raise RuntimeError("nvrtc: too many variables")

    monkeypatch.setattr(emulated_cupy, "fuse", lambda **kw: lambda f: broken, raising=False)
    got = backend.random_draw(frandom.key(1), "uniform", (9,), backend="cupy")
    assert backend._fused["philox"] is backend._philox_top53
    want = backend.random_draw(frandom.key(1), "uniform", (9,), backend="numpy")
    np.testing.assert_array_equal(backend.to_numpy(got), want)


# ----------------------------------------------------------------------------- only with a GPU


@pytest.mark.gpu
def test_real_cupy_namespace_has_every_name_funcnn_writes():
    pytest.importorskip("cupy")
    try:
        xp = backend._load("cupy")
    except backend.BackendUnavailableError as e:
        pytest.skip(str(e))
    names = (
        "abs all any argmax argmin argsort asarray astype bool broadcast_shapes broadcast_to "
        "clip concat cos cumulative_sum einsum exp expand_dims expm1 flip float32 float64 floor "
        "full int32 int64 isfinite isnan log log1p logical_and logical_not logical_or matmul "
        "matrix_transpose max maximum min minimum nextafter pad permute_dims prod reshape round "
        "sign sin sqrt squeeze stack sum take take_along_axis tanh where zeros zeros_like"
    ).split()
    missing = [n for n in names if not hasattr(xp, n)]
    assert not missing, f"CuPy {xp._module.__version__} lacks {missing}"
    x = xp.asarray(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(
        xp.asnumpy(xp.permute_dims(x, (1, 0))), np.arange(6.0).reshape(2, 3).T
    )
    np.testing.assert_array_equal(
        xp.asnumpy(xp.clip(x, min=1.0, max=4.0)), np.clip(np.arange(6.0).reshape(2, 3), 1, 4)
    )
    assert xp.asarray(x, copy=True) is not x
    u = backend.random_draw(frandom.key(4), "uniform", (1000,), backend="cupy")
    assert backend._fused["philox"] is not backend._philox_top53, "cupy.fuse failed on Philox"
    want = backend.random_draw(frandom.key(4), "uniform", (1000,), backend="numpy")
    np.testing.assert_array_equal(backend.to_numpy(u), want)


@pytest.mark.gpu
def test_real_cupy_keeps_arrays_on_the_gpu_they_are_on():
    pytest.importorskip("cupy")
    try:
        cp = backend._load("cupy")
    except backend.BackendUnavailableError as e:
        pytest.skip(str(e))
    x = backend.device_put(_normal(9, 3, 4), "cuda:0")
    assert type(x) is cp.ndarray and backend.device_of(x) == "cuda:0"
    y = fnp.tanh(backend.zeros((3, 4), like=x) + x)
    assert type(y) is cp.ndarray and y.device.id == 0
    np.testing.assert_allclose(backend.to_numpy(y), np.tanh(_normal(9, 3, 4)), rtol=1e-6)
    count = cp.cuda.runtime.getDeviceCount()
    with pytest.raises(backend.BackendUnavailableError, match=f"no device 'cuda:{count}'"):
        backend.device_put(x, f"cuda:{count}")


# ----------------------------------------------------------------------------- CPU threads


def test_set_num_threads_sets_the_blas_pool_and_checks_its_argument():
    before = backend.get_num_threads()
    try:
        backend.set_num_threads(1)
        assert backend.get_num_threads() == 1
        x = np.arange(64.0).reshape(8, 8)
        np.testing.assert_allclose(backend.to_numpy(fnp.matmul(x, x)), x @ x)
        backend.set_num_threads(np.int64(2))
        assert backend.get_num_threads() in (1, 2)  # a BLAS may cap at the core count
        for bad in (0, -1, True, 1.5, "2", None):
            with pytest.raises(ValueError, match=r"set_num_threads: n must be an int >= 1, got"):
                backend.set_num_threads(bad)
    finally:
        backend.set_num_threads(before)


def test_thread_slices_split_only_large_numpy_work(monkeypatch):
    monkeypatch.setitem(backend._threads, "n", 2)
    x = np.zeros((8, 4))
    assert backend.thread_slices(8, 32, x) == [slice(0, 8)]  # too little work
    big = 4 * backend._GRAIN
    assert backend.thread_slices(8, big, x) == [slice(0, 4), slice(4, 8)]
    assert backend.thread_slices(1, big, x) == [slice(0, 1)]
    strict = backend.device_put(x, "strict")
    assert backend.thread_slices(8, big, strict) == [slice(0, 8)]
    monkeypatch.setitem(backend._threads, "n", 1)
    assert backend.thread_slices(8, big, x) == [slice(0, 8)]


def test_run_threads_keeps_order_nests_without_deadlock_and_raises(monkeypatch):
    monkeypatch.setitem(backend._threads, "n", 2)
    assert backend.run_threads(lambda i: i * i, [1, 2, 3]) == [1, 4, 9]
    # a worker that splits again runs its items itself (the pool's one worker is busy)
    nested = backend.run_threads(lambda i: backend.run_threads(lambda j: (i, j), [0, 1]), [0, 1])
    assert nested == [[(0, 0), (0, 1)], [(1, 0), (1, 1)]]

    def fail(i):
        if i == 1:
            raise ValueError("item 1")
        return i

    with pytest.raises(ValueError, match="item 1"):
        backend.run_threads(fail, [0, 1])


def test_split_kernels_still_run_at_interpreter_exit():
    """An atexit handler (a last evaluation or save) may run a large layer: no new threads can
    start then, so the work runs on the calling thread."""
    import subprocess
    import sys

    code = (
        "import atexit, numpy as np\n"
        "from funcnn import backend, nn\n"
        "backend.set_num_threads(2)\n"
        "x = np.random.default_rng(0).standard_normal((512, 1024)).astype(np.float32)\n"
        "atexit.register(lambda: print('exit', nn.layer_norm(None, x, normalized_shape=1024).shape))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "exit (512, 1024)" in out.stdout, out.stdout + out.stderr


def test_run_threads_from_several_user_threads_while_the_pool_grows(monkeypatch):
    import threading

    monkeypatch.setitem(backend._threads, "n", 2)
    errors, results = [], []

    def user(k):
        try:
            for n in range(2, 6):
                got = backend.run_threads(lambda i: i + k, list(range(n)))
                results.append(got == [i + k for i in range(n)])
        except Exception as e:  # noqa: BLE001 - collected for the assertion below
            errors.append(e)

    threads = [threading.Thread(target=user, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and all(results) and len(results) == 16
