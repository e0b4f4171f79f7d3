"""funcnn_modules.Tensor: autograd behaviour, the tensor API and the top-level constructors.

Values are checked against NumPy here; the same expressions are compared with real PyTorch in
tests/parity/test_modules_parity.py.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import funcnn_modules as fm

# ----------------------------------------------------------------------------- backward


def test_backward_accumulates_into_leaf_grad():
    x = fm.tensor([1.0, 2.0, 3.0], requires_grad=True)
    assert x.grad is None
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0, 6.0])
    (3.0 * x).sum().backward()  # a second graph: accumulates, as in PyTorch
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 7.0, 9.0])
    assert x.grad.dtype == fm.float32 and x.grad.shape == x.shape
    x.grad = None
    x.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0, 1.0])


def test_backward_through_shared_leaf_and_broadcast():
    w = fm.tensor([[1.0, -2.0]], requires_grad=True)  # (1, 2), broadcast against (3, 2)
    x = fm.tensor(np.arange(6.0, dtype=np.float32).reshape(3, 2))
    loss = ((x * w) + w).sum()
    loss.backward()
    np.testing.assert_allclose(w.grad.numpy(), [[6.0 + 3.0, 9.0 + 3.0]])
    assert w.grad.shape == (1, 2)


def test_non_scalar_backward_needs_a_gradient():
    x = fm.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar"):
        y.backward()
    y.backward(fm.tensor([1.0, 10.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 20.0])
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 2).backward(fm.ones(3))


def test_backward_on_a_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        fm.ones(2).sum().backward()


def _intermediate_graph():
    """``(x, loss, weakref to an intermediate array)``; the intermediate Tensor itself is gone."""
    x = fm.tensor([0.5, 1.0, 2.0], requires_grad=True)
    h = x * 2.0  # an intermediate: its value is saved for sin's backward
    ref = weakref.ref(h._value)
    loss = h.sin().sum()
    del h
    gc.collect()
    assert ref() is not None, "the graph must keep the saved intermediate until backward"
    return x, loss, ref


def test_backward_frees_the_graph():
    x, loss, ref = _intermediate_graph()
    loss.backward()
    gc.collect()
    assert ref() is None, "backward() without retain_graph must free saved intermediates"
    np.testing.assert_allclose(x.grad.numpy(), 2.0 * np.cos(2.0 * np.array([0.5, 1.0, 2.0])), 1e-6)


def test_second_backward_raises_pytorch_error():
    x, loss, _ = _intermediate_graph()
    loss.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        loss.backward()


def test_retain_graph_keeps_intermediates_for_a_second_backward():
    x, loss, ref = _intermediate_graph()
    loss.backward(retain_graph=True)
    gc.collect()
    assert ref() is not None, "retain_graph=True must keep saved intermediates"
    first = x.grad.numpy().copy()
    loss.backward()  # allowed once more; accumulates
    np.testing.assert_allclose(x.grad.numpy(), 2 * first, rtol=1e-6)
    gc.collect()
    assert ref() is None


def test_dropping_the_output_frees_the_graph_without_backward():
    x = fm.tensor([1.0, 2.0], requires_grad=True)
    h = x.exp()
    ref = weakref.ref(h._value)
    loss = (h * h).sum()
    del h, loss
    gc.collect()
    assert ref() is None


# ----------------------------------------------------------------------------- autograd state


def test_requires_grad_is_leaf_grad_fn_and_detach():
    a = fm.tensor([1.0, 2.0])
    assert not a.requires_grad and a.is_leaf and a.grad_fn is None
    b = fm.tensor([1.0, 2.0], requires_grad=True)
    assert b.requires_grad and b.is_leaf and b.grad_fn is None
    c = b * 2
    assert c.requires_grad and not c.is_leaf and c.grad_fn is not None
    assert "grad_fn=<MulBackward0>" in repr(c)
    d = c.detach()
    assert not d.requires_grad and d.is_leaf
    np.testing.assert_array_equal(d.numpy(), [2.0, 4.0])
    a.requires_grad_()
    assert a.requires_grad and a.is_leaf
    a.requires_grad = False
    assert not a.requires_grad
    with pytest.raises(RuntimeError, match="leaf variables"):
        c.requires_grad_(False)
    with pytest.raises(RuntimeError, match="floating point"):
        fm.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        b.add_(1.0)


def test_detach_of_a_leaf_shares_writes_and_of_a_result_holds_no_graph():
    p = fm.tensor([1.0, 2.0], requires_grad=True)
    p.detach().mul_(3.0)  # as in PyTorch: the detached tensor shares the leaf's storage
    np.testing.assert_array_equal(p.detach().numpy(), [3.0, 6.0])
    assert p.requires_grad and p.is_leaf
    h = p.exp()
    ref = weakref.ref(h._value)
    kept = (h * h).sum().detach()  # e.g. losses.append(loss.detach())
    del h
    gc.collect()
    assert ref() is None, "a detached result must not keep its graph alive"
    assert kept.item() == pytest.approx(float(np.exp(6.0) + np.exp(12.0)), rel=1e-5)
    assert not kept.requires_grad


def test_item_numpy_tolist():
    x = fm.tensor([[1.5, 2.0]], requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        x.numpy()
    arr = x.detach().numpy()
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float32
    assert x.tolist() == [[1.5, 2.0]]
    assert x.sum().item() == 3.5 and isinstance(x.sum().item(), float)
    assert fm.tensor([7]).item() == 7 and isinstance(fm.tensor(7).item(), int)
    with pytest.raises(RuntimeError, match="2 elements cannot be converted"):
        x.item()
    assert float(fm.tensor(2.5)) == 2.5 and int(fm.tensor(3)) == 3


def test_no_grad_records_nothing_and_works_as_a_decorator():
    w = fm.tensor([1.0, 2.0], requires_grad=True)
    with fm.no_grad():
        assert not fm.is_grad_enabled()
        y = w * 3
        assert not y.requires_grad
        with fm.enable_grad():
            assert (w * 1).requires_grad
    assert fm.is_grad_enabled()
    assert (w * 3).requires_grad

    @fm.no_grad()
    def f(t):
        return t * 2

    @fm.no_grad
    def g(t):
        return t * 2

    assert not f(w).requires_grad and not g(w).requires_grad
    assert fm.is_grad_enabled()
    with fm.no_grad():  # the tutorial update: in place on a leaf is allowed here
        w -= 0.5 * fm.ones(2)
    np.testing.assert_allclose(w.detach().numpy(), [0.5, 1.5])
    assert w.requires_grad and w.is_leaf


# ----------------------------------------------------------------------------- shape ops


def test_view_reshape_permute_transpose():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t = fm.tensor(a)
    np.testing.assert_array_equal(t.view(6, 4).numpy(), a.reshape(6, 4))
    np.testing.assert_array_equal(t.view(-1).numpy(), a.reshape(-1))
    np.testing.assert_array_equal(t.reshape((4, -1)).numpy(), a.reshape(4, -1))
    np.testing.assert_array_equal(t.permute(2, 0, 1).numpy(), a.transpose(2, 0, 1))
    np.testing.assert_array_equal(t.permute((1, 2, 0)).numpy(), a.transpose(1, 2, 0))
    np.testing.assert_array_equal(t.transpose(0, 2).numpy(), a.swapaxes(0, 2))
    np.testing.assert_array_equal(t.flatten(1).numpy(), a.reshape(2, 12))
    np.testing.assert_array_equal(t[0].T.numpy(), a[0].T)
    assert t.unsqueeze(1).shape == (2, 1, 3, 4)
    assert t.unsqueeze(1).squeeze(1).shape == (2, 3, 4)
    assert t.view(2, 1, 12).squeeze().shape == (2, 12)
    assert t.shape == fm.Size([2, 3, 4]) and t.size(-1) == 4 and t.dim() == 3
    assert t.numel() == 24 and len(t) == 2
    with pytest.raises(ValueError):
        t.view(5, 5)


def test_shape_ops_carry_gradients():
    x = fm.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    w = fm.tensor(np.arange(6, dtype=np.float32).reshape(3, 2) + 1.0)
    y = x.permute(1, 0) * w  # (3, 2)
    y = y.reshape(6).view(2, 3).transpose(0, 1).flatten()
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), w.numpy().T)


# ----------------------------------------------------------------------------- math


def _arr(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_operators_match_numpy():
    a, b = _arr((3, 4)), _arr((4,), 1) + 3.0
    x, y = fm.tensor(a), fm.tensor(b)
    cases = {
        "add": (x + y, a + b),
        "radd": (1.5 + x, 1.5 + a),
        "sub": (x - y, a - b),
        "rsub": (2.0 - x, 2.0 - a),
        "mul": (x * y, a * b),
        "div": (x / y, a / b),
        "rdiv": (1.0 / y, 1.0 / b),
        "pow": (y**2, b**2),
        "rpow": (2.0**x, 2.0**a),
        "neg": (-x, -a),
        "abs": (abs(x), np.abs(a)),
        "matmul": (x @ y, a @ b),
        "mod": (y % 1.5, np.mod(b, 1.5)),
        "floordiv": (y // 1.5, np.floor_divide(b, 1.5)),
    }
    for name, (ours, ref) in cases.items():
        assert ours.dtype == fm.float32, name
        np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-6, err_msg=name)


def test_reductions_with_dim_and_keepdim():
    a = _arr((3, 4, 5))
    x = fm.tensor(a)
    for dim in (None, 0, 1, -1, (0, 2)):
        for keepdim in (False, True):
            kw = {} if dim is None else {"dim": dim, "keepdim": keepdim}
            np_kw = {"axis": dim, "keepdims": keepdim and dim is not None}
            np.testing.assert_allclose(x.sum(**kw).numpy(), a.sum(**np_kw), rtol=1e-5)
            np.testing.assert_allclose(x.mean(**kw).numpy(), a.mean(**np_kw), rtol=1e-5)
            np.testing.assert_allclose(
                x.std(**kw).numpy(), a.std(ddof=1, **np_kw), rtol=1e-5
            )  # unbiased, as PyTorch
            np.testing.assert_allclose(x.var(**kw).numpy(), a.var(ddof=1, **np_kw), rtol=1e-5)
    values, indices = x.max(dim=1)
    np.testing.assert_array_equal(values.numpy(), a.max(axis=1))
    np.testing.assert_array_equal(indices.numpy(), a.argmax(axis=1))
    assert indices.dtype == fm.int64
    mins = x.min(dim=2, keepdim=True)
    assert mins.values.shape == (3, 4, 1) and mins.indices.shape == (3, 4, 1)
    np.testing.assert_array_equal(x.argmax(dim=-1).numpy(), a.argmax(axis=-1))
    assert x.argmax().item() == int(a.argmax())
    assert x.max().item() == pytest.approx(float(a.max()))


def test_comparisons_and_accuracy_idiom():
    pred = fm.tensor([0, 2, 1, 1])
    y = fm.tensor([0, 1, 1, 1])
    eq = pred == y
    assert eq.dtype == fm.bool
    np.testing.assert_array_equal(eq.numpy(), [True, False, True, True])
    acc = (pred == y).float().mean()
    assert acc.dtype == fm.float32 and acc.item() == 0.75
    assert (pred == y).sum().item() == 3
    x = fm.tensor([1.0, 2.0, 3.0])
    np.testing.assert_array_equal((x > 1.5).numpy(), [False, True, True])
    np.testing.assert_array_equal((x <= 2).numpy(), [True, True, False])
    np.testing.assert_array_equal((x != 2).numpy(), [True, False, True])
    np.testing.assert_array_equal(((x > 1) & (x < 3)).numpy(), [False, True, False])
    assert (x == None) is False  # noqa: E711 - PyTorch returns False here


def test_indexing():
    a = _arr((4, 5))
    x = fm.tensor(a)
    np.testing.assert_array_equal(x[1].numpy(), a[1])
    np.testing.assert_array_equal(x[:, 2].numpy(), a[:, 2])
    np.testing.assert_array_equal(x[1:3, ::2].numpy(), a[1:3, ::2])
    np.testing.assert_array_equal(x[-1, -1].numpy(), a[-1, -1])
    np.testing.assert_array_equal(x[fm.tensor([3, 0])].numpy(), a[[3, 0]])
    np.testing.assert_array_equal(x[x > 0].numpy(), a[a > 0])
    np.testing.assert_array_equal(x[..., None].numpy(), a[..., None])
    idx = fm.tensor([0, 1, 2, 3])
    cols = fm.tensor([4, 3, 2, 1])
    np.testing.assert_array_equal(x[idx, cols].numpy(), a[[0, 1, 2, 3], [4, 3, 2, 1]])
    w = fm.tensor(a, requires_grad=True)
    w[fm.tensor([0, 0, 2])].sum().backward()  # repeated rows add up
    expected = np.zeros_like(a)
    expected[0] = 2.0
    expected[2] = 1.0
    np.testing.assert_array_equal(w.grad.numpy(), expected)
    y = x.clone()
    y[0, :] = 0.0
    assert np.all(y.numpy()[0] == 0) and np.all(x.numpy()[0] == a[0])


def test_to_float_long_and_dtypes():
    x = fm.tensor([1.7, -2.7])
    assert x.long().dtype == fm.int64 and x.long().tolist() == [1, -2]
    assert x.int().dtype == fm.int32
    assert x.double().dtype == fm.float64
    assert x.double().float().dtype == fm.float32
    assert x.to(fm.float64).dtype == fm.float64
    assert x.to(dtype=fm.float16).dtype == fm.float16
    assert x.to("cpu", fm.float64).dtype == fm.float64
    assert x.to(x) is x  # nothing to change
    assert fm.tensor([1, 0, 2]).bool().tolist() == [True, False, True]
    assert fm.tensor([1, 2]).float().dtype == fm.float32
    assert x.to(fm.int64).dtype == fm.long
    assert fm.float32 == fm.float and fm.int64 == fm.long and fm.float64 == fm.double
    assert repr(fm.float32) == "torch.float32"
    w = fm.tensor([1.0, 2.0], requires_grad=True)
    w.double().sum().backward()  # a cast stays on the graph; the gradient keeps w's dtype
    assert w.grad.dtype == fm.float32
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 1.0])


# ----------------------------------------------------------------------------- constructors


def test_tensor_and_Tensor_constructors():
    assert fm.tensor([1, 2]).dtype == fm.int64
    assert fm.tensor([1.0, 2]).dtype == fm.float32
    assert fm.tensor([True]).dtype == fm.bool
    assert fm.tensor(3.5).shape == () and fm.tensor(3.5).dtype == fm.float32
    assert fm.tensor(np.arange(3.0)).dtype == fm.float64  # NumPy arrays keep their dtype
    assert fm.tensor([[1, 2]], dtype=fm.float64).dtype == fm.float64
    assert fm.Tensor([1, 2, 3]).dtype == fm.float32  # torch.Tensor(data) is float32
    assert fm.Tensor(np.arange(3)).dtype == fm.float32
    assert fm.Tensor(2, 3).shape == (2, 3)
    src = np.ones(3, dtype=np.float32)
    t = fm.tensor(src)
    src[0] = 5.0
    assert t.tolist() == [1.0, 1.0, 1.0]  # tensor() copies
    shared = fm.from_numpy(src)
    src[1] = 7.0
    assert shared.tolist() == [5.0, 7.0, 1.0]  # from_numpy shares
    r = fm.tensor([1.0], requires_grad=True)
    assert r.requires_grad and r.is_leaf


def test_filled_and_range_constructors():
    assert fm.zeros(2, 3).shape == (2, 3) and fm.zeros(2, 3).dtype == fm.float32
    assert fm.zeros((2, 3)).shape == (2, 3) and fm.ones([4]).tolist() == [1.0] * 4
    assert fm.zeros(2, dtype=fm.int64).dtype == fm.int64
    assert fm.full((2,), 7).dtype == fm.int64 and fm.full((2,), 7.0).dtype == fm.float32
    assert fm.full((2, 2), 1.5).tolist() == [[1.5, 1.5], [1.5, 1.5]]
    assert fm.arange(5).tolist() == [0, 1, 2, 3, 4] and fm.arange(5).dtype == fm.int64
    assert fm.arange(1, 7, 2).tolist() == [1, 3, 5]
    assert fm.arange(0, 1, 0.25).tolist() == [0.0, 0.25, 0.5, 0.75]
    assert fm.arange(0, 1, 0.25).dtype == fm.float32
    assert fm.arange(3, dtype=fm.float64).dtype == fm.float64
    assert fm.zeros(2, 3, requires_grad=True).requires_grad
    assert fm.ones_like(fm.arange(3)).dtype == fm.int64
    assert fm.zeros_like(fm.ones(2, 2)).tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_random_constructors_and_manual_seed():
    fm.manual_seed(123)
    a = (fm.randn(3, 4), fm.rand(5), fm.randint(0, 10, (6,)), fm.randint(4, size=(2,)))
    fm.manual_seed(123)
    b = (fm.randn(3, 4), fm.rand(5), fm.randint(0, 10, (6,)), fm.randint(4, size=(2,)))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u.numpy(), v.numpy())
    fm.manual_seed(124)
    assert not np.array_equal(fm.randn(3, 4).numpy(), a[0].numpy())
    randn, rand, ints, small = a
    assert randn.dtype == fm.float32 and randn.shape == (3, 4)
    assert rand.dtype == fm.float32 and np.all((rand.numpy() >= 0) & (rand.numpy() < 1))
    assert ints.dtype == fm.int64 and np.all((ints.numpy() >= 0) & (ints.numpy() < 10))
    assert np.all((small.numpy() >= 0) & (small.numpy() < 4))
    assert fm.randn(2, dtype=fm.float64).dtype == fm.float64
    fm.manual_seed(0)
    big = fm.randn(20000).numpy()
    assert abs(big.mean()) < 0.05 and abs(big.std() - 1) < 0.05
    fm.manual_seed(0)  # layers draw their initial weights from the same generator
    w1 = fm.nn.Linear(4, 3).weight.detach().numpy()
    fm.manual_seed(0)
    np.testing.assert_array_equal(fm.nn.Linear(4, 3).weight.detach().numpy(), w1)


def test_functions_and_joining():
    a = _arr((2, 3))
    x = fm.tensor(a)
    np.testing.assert_allclose(fm.relu(x).numpy(), np.maximum(a, 0))
    np.testing.assert_allclose(fm.sigmoid(x).numpy(), 1 / (1 + np.exp(-a)), rtol=1e-6)
    np.testing.assert_allclose(fm.tanh(x).numpy(), np.tanh(a), rtol=1e-6)
    e = np.exp(a - a.max(axis=1, keepdims=True))
    soft = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(fm.softmax(x, dim=1).numpy(), soft, rtol=1e-6)
    np.testing.assert_allclose(x.softmax(-1).numpy(), soft, rtol=1e-6)
    np.testing.assert_allclose(fm.log_softmax(x, dim=1).numpy(), np.log(soft), rtol=1e-5)
    np.testing.assert_allclose(fm.exp(x).numpy(), np.exp(a), rtol=1e-6)
    np.testing.assert_array_equal(fm.cat([x, x], dim=0).numpy(), np.concatenate([a, a]))
    np.testing.assert_array_equal(fm.cat((x, x), 1).numpy(), np.concatenate([a, a], 1))
    np.testing.assert_array_equal(fm.stack([x, x]).numpy(), np.stack([a, a]))
    np.testing.assert_array_equal(fm.stack([x, x], dim=2).numpy(), np.stack([a, a], 2))
    w = fm.tensor(a, requires_grad=True)
    fm.cat([w, 2 * w], dim=1).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.full_like(a, 3.0))


# ----------------------------------------------------------------------------- float32 stays float32

_SCALARS = st.one_of(
    st.floats(-3, 3, allow_nan=False, width=32),
    st.integers(-3, 3),
    st.floats(-3, 3, allow_nan=False).map(np.float64),
    st.integers(-3, 3).map(np.int64),
    st.floats(-3, 3, allow_nan=False).map(lambda v: fm.tensor(v, dtype=fm.float64)),
    st.integers(-3, 3).map(lambda v: fm.tensor(v)),
)
_OPS = {
    "add": lambda t, s: t + s,
    "radd": lambda t, s: s + t,
    "sub": lambda t, s: t - s,
    "rsub": lambda t, s: s - t,
    "mul": lambda t, s: t * s,
    "rmul": lambda t, s: s * t,
    "div": lambda t, s: t / (s if not _is_tiny(s) else 1.0),
    "pow": lambda t, s: t.abs() ** s,
    "maximum": lambda t, s: t.maximum(fm.tensor(s) if not isinstance(s, fm.Tensor) else s),
    "where": lambda t, s: fm.where(t > 0, t, s if isinstance(s, fm.Tensor) else float(s)),
    "clamp": lambda t, s: t.clamp(min=float(s)),
}


def _is_tiny(s):
    """Zero, or so small that float32 values divided by it overflow (a warning, an error here)."""
    return abs(float(s)) < 1e-30


@given(
    op=st.sampled_from(sorted(_OPS)),
    scalar=_SCALARS,
    requires_grad=st.booleans(),
)
def test_float32_never_becomes_float64(op, scalar, requires_grad):
    t = fm.tensor([0.5, -1.25, 2.0], requires_grad=requires_grad)
    out = _OPS[op](t, scalar)
    assert out.dtype == fm.float32, f"{op} with {scalar!r} gave {out.dtype}"
    if requires_grad:
        out.sum().backward()
        assert t.grad.dtype == fm.float32


def test_float32_defaults():
    assert fm.get_default_dtype() == fm.float32
    for t in (
        fm.tensor([1.0]),
        fm.tensor(1.0),
        fm.Tensor([1]),
        fm.zeros(1),
        fm.ones(1),
        fm.randn(1),
        fm.rand(1),
        fm.full((1,), 2.0),
        fm.arange(0.0, 1.0),
        fm.tensor([1, 2]) / 2,
        fm.tensor([1, 2]) * 0.5,
        fm.tensor([1, 2]).float().mean(),
        fm.nn.Linear(2, 2).weight,
    ):
        assert t.dtype == fm.float32, t
    assert (fm.tensor([1, 2]) * fm.tensor(0.5, dtype=fm.float64)).dtype == fm.float64  # as torch
    assert (fm.ones(2) * fm.tensor(0.5, dtype=fm.float64)).dtype == fm.float32  # as torch


# ----------------------------------------------------------------------------- devices


def test_device_api_on_cpu():
    x = fm.randn(2, 3)
    assert x.device == fm.device("cpu") and x.device.type == "cpu" and str(x.device) == "cpu"
    assert x.to("cpu") is x and x.cpu() is x
    assert x.to(fm.device("cpu")) is x
    assert not x.is_cuda and x.get_device() == -1
    m = fm.nn.Linear(3, 2).to("cpu")
    assert m.weight.device == fm.device("cpu")
    assert fm.zeros(2, device="cpu").device.type == "cpu"
    assert fm.device("cuda", 1) == fm.device("cuda:1") and str(fm.device("cuda:1")) == "cuda:1"
    with pytest.raises(RuntimeError, match="device type"):
        fm.device("tpu")


_NO_GPU = pytest.mark.skipif(
    fm.cuda.is_available(),
    reason="a CUDA GPU is usable here: the error path cannot be reached",
)


@_NO_GPU
@pytest.mark.parametrize(
    "move",
    [
        lambda: fm.randn(2).to("cuda"),
        lambda: fm.randn(2).cuda(),
        lambda: fm.randn(2, requires_grad=True).to("cuda"),
        lambda: fm.randn(2).to(fm.device("cuda", 0)),
        lambda: fm.zeros(2, device="cuda"),
        lambda: fm.tensor([1.0], device="cuda"),
        lambda: fm.nn.Linear(2, 2).to("cuda"),
        lambda: fm.nn.Linear(2, 2).cuda(),
        lambda: fm.nn.Linear(2, 2, device="cuda"),
    ],
)
def test_cuda_without_a_gpu_names_the_cuda_extra(move):
    assert not fm.cuda.is_available() and fm.cuda.device_count() == 0
    with pytest.raises(RuntimeError) as info:
        move()
    msg = str(info.value)
    assert "cuda" in msg.lower() and "funcnn[cuda]" in msg, msg
