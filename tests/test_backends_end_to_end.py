"""Every family of funcnn, run end to end on each backend and compared with NumPy.

Each workload is a function of host NumPy inputs. It runs once on NumPy (the reference) and
once on the inputs moved to the backend under test with ``fn.backend.device_put``; every
array it returns must still be on that backend, and equal the reference after
``fn.backend.to_numpy``. On the strict stand-in any stray NumPy call or implicit host
transfer raises, so a pass there proves the workload stays on its device. The emulated CuPy
runs the CuPy code paths of the backend seam on the CPU; real CuPy runs where there is a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest

import funcnn as fn
import funcnn_modules as fm
from funcnn import backend, nn
from funcnn import numpy as fnp

DEVICES = {"numpy": "cpu", "strict": "strict", "cupy": "cuda"}

# float32 on every backend; a GPU sums in another order, hence the looser GPU tolerance
RTOL = {"numpy": 1e-6, "strict": 1e-6, "cupy": 1e-4}
ATOL = {"numpy": 1e-6, "strict": 1e-6, "cupy": 1e-5}


def _normal(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _params(init) -> dict:
    """Parameters made on NumPy (so every backend starts from the same numbers)."""
    return init(fn.random.key(0))


# ----------------------------------------------------------------------------- workloads
# Each returns (function, host inputs); the function's output is any pytree of arrays.


def _primitives():
    def f(x, y, w):
        a = fnp.tanh(x) * fnp.exp(-fnp.abs(y)) + fnp.log1p(x * x) + fnp.sqrt(y * y + 1.0)
        b = fnp.maximum(a, 0.1 * y) + fnp.where(x > 0.0, x, 0.5 * x) + fnp.clip(y, -0.5, 0.5)
        c = fnp.matmul(b, w) + fnp.einsum("ij,jk->ik", a, w) ** 2 * 0.1
        d = fnp.concatenate([c, fnp.flip(c, axis=0)], axis=1)
        d = fnp.transpose(fnp.reshape(d, (2, 3, 8)), (1, 0, 2))
        e = (
            d[:, 1, ::2]
            + fnp.sum(fnp.take(d[:, 0, :4], fnp.asarray([2, 0], like=x), axis=0))
            + fnp.cumsum(d[0, 0, :], axis=0)[-1]
        )
        s = fnp.sort(e, axis=-1)
        t = fnp.take_along_axis(c, fnp.argmax(c, axis=1, keepdims=True), axis=1)
        u = fnp.index_add(
            fnp.zeros((4, 4), like=x), (fnp.asarray([0, 0, 3], like=x), slice(None)), c[:3, :4]
        )
        v = fnp.index_update(c, (1, slice(0, 2)), fnp.stack([s[0, 0], s[1, 1]]))
        return (
            fnp.sum(s * s) + fnp.mean(t) + fnp.sum(u) + fnp.var(v) + fnp.logsumexp(c)
            - fnp.max(fnp.pad(a, ((1, 0), (0, 1)))) + fnp.std(fnp.power(fnp.abs(b) + 1.0, 1.5))
        )  # fmt: skip

    args = (_normal(1, 6, 4), _normal(2, 6, 4), _normal(3, 4, 4))
    return lambda *a: (f(*a), fn.grad(f, argnums=(0, 1, 2))(*a)), args


def _linear():
    p = _params(lambda k: nn.init.linear(k, 5, 3))
    loss = lambda p, x: fnp.sum(nn.gelu(nn.linear(p, x)) ** 2)
    run = lambda p, x: (nn.linear(p, x), fn.grad(loss, argnums=(0, 1))(p, x))
    return run, (p, _normal(4, 7, 5))


def _conv_pool():
    p = _params(lambda k: nn.init.conv2d(k, 3, 4, 3))

    def loss(p, x):
        y = nn.max_pool2d(nn.relu(nn.conv2d(p, x, stride=1, padding=1)), 2)
        return fnp.sum(y * y), y

    run = lambda p, x: fn.grad(loss, argnums=(0, 1), has_aux=True)(p, x)
    return run, (p, _normal(5, 2, 3, 8, 8))


def _batch_norm():
    p, state = nn.init.batch_norm(4)

    def loss(p, state, x):
        y, new_state = nn.batch_norm(p, state, x, training=True)
        return fnp.sum(fnp.sin(y)), (y, new_state)

    return (
        lambda p, s, x: fn.grad(loss, argnums=(0, 2), has_aux=True)(p, s, x),
        (p, state, _normal(6, 5, 4, 3, 3)),
    )


def _layer_norm():
    p = nn.init.layer_norm(6)
    p = {"weight": p["weight"] + _normal(7, 6), "bias": p["bias"] + _normal(8, 6)}
    loss = lambda p, x: fnp.sum(fnp.tanh(nn.layer_norm(p, x)) * x)
    return lambda p, x: fn.value_and_grad(loss, argnums=(0, 1))(p, x), (p, _normal(9, 4, 3, 6))


def _lstm():
    p = _params(lambda k: nn.init.lstm_cell(k, 5, 4))

    def loss(p, xs, h0):
        out, (h, c) = nn.lstm(p, xs, (h0, fnp.zeros_like(h0)))
        return fnp.sum(out**2) + fnp.sum(h * c), out

    return (
        lambda p, xs, h0: fn.grad(loss, argnums=(0, 1, 2), has_aux=True)(p, xs, h0),
        (p, _normal(10, 6, 3, 5), _normal(11, 3, 4)),
    )


def _attention():
    p = _params(lambda k: nn.init.multi_head_attention(k, 8, 2))
    pad = np.zeros((3, 5), dtype=bool)
    pad[1, 3:] = True

    def loss(p, q, kv, pad):
        out, w = nn.multi_head_attention(
            p, q, kv, kv, num_heads=2, key_padding_mask=pad, need_weights=True, is_causal=False
        )
        return fnp.sum(out * out) + fnp.sum(w), out

    return (
        lambda p, q, kv, pad: fn.grad(loss, argnums=(0, 1, 2), has_aux=True)(p, q, kv, pad),
        (p, _normal(12, 4, 3, 8), _normal(13, 5, 3, 8), pad),
    )


def _cross_entropy():
    target = np.array([0, 3, 1, -100, 2, 3])

    def loss(logits, target):
        return nn.cross_entropy(logits, target, label_smoothing=0.1, ignore_index=-100)

    return lambda z, t: fn.value_and_grad(loss)(z, t), (_normal(14, 6, 4), target)


def _embedding_dropout():
    p = _params(lambda k: nn.init.embedding(k, 7, 4))
    idx = np.array([[0, 6, 2], [2, 2, 5]])

    def loss(p, idx):  # repeated indices: the gradient is a scatter-add
        h = nn.dropout(fn.random.key(5), nn.embedding(p, idx), p=0.3)
        return fnp.sum(h * h)

    return lambda p, idx: fn.value_and_grad(loss)(p, idx), (p, idx)


def _adam():
    params = {"w": _normal(15, 4, 3), "b": _normal(16, 3)}
    grads = {"w": _normal(17, 4, 3), "b": _normal(18, 3)}
    opt = fn.optim.chain(fn.optim.clip_by_global_norm(1.0), fn.optim.adam(1e-2, weight_decay=0.1))

    def step(params, grads):
        state = opt.init(params)
        for _ in range(3):
            updates, state = opt.update(grads, state, params)
            params = fn.optim.apply_updates(params, updates)
        return params, state

    return step, (params, grads)


WORKLOADS = {
    "primitives": _primitives,
    "linear": _linear,
    "conv2d_max_pool": _conv_pool,
    "batch_norm": _batch_norm,
    "layer_norm": _layer_norm,
    "lstm": _lstm,
    "multi_head_attention": _attention,
    "cross_entropy": _cross_entropy,
    "embedding_dropout": _embedding_dropout,
    "adam": _adam,
}


def _leaves_on(tree, name: str) -> None:
    for leaf in fn.tree.leaves(tree):
        if isinstance(leaf, int):  # step counters
            continue
        assert backend.is_array(leaf), f"a {type(leaf).__name__} leaf, expected an array"
        assert backend.backend_name(leaf) == name, (
            f"a leaf came back on {backend.backend_name(leaf)}, not {name}"
        )


def _assert_close(got, want, name: str) -> None:
    got_leaves, want_leaves = fn.tree.leaves(got), fn.tree.leaves(want)
    assert fn.tree.structure(got) == fn.tree.structure(want)
    for g, w in zip(got_leaves, want_leaves):
        if isinstance(w, int):
            assert g == w
            continue
        g, w = np.asarray(backend.to_numpy(g)), np.asarray(w)
        assert g.dtype == w.dtype and g.shape == w.shape, (g.dtype, g.shape, w.dtype, w.shape)
        np.testing.assert_allclose(g, w, rtol=RTOL[name], atol=ATOL[name])


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_workload_matches_numpy_and_stays_on_its_backend(workload, backend_name):
    f, args = WORKLOADS[workload]()
    want = f(*args)
    got = f(*backend.device_put(args, DEVICES[backend_name]))
    _leaves_on(got, backend_name)
    _assert_close(got, want, backend_name)


# ----------------------------------------------------------------------------- the PyTorch-style face


def _model_step(device: str):
    """Two SGD steps of a small CNN + LSTM + attention model; returns the model and losses.

    SGD (not Adam), and no conv bias before the batch norm: some gradients are zero up to
    rounding (attention's key bias, a bias under batch norm), and Adam would scale that noise
    up to the learning rate, differently on a GPU.
    """
    fm.manual_seed(0)  # the same initial weights and dropout masks on every backend

    class Net(fm.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = fm.nn.Sequential(
                fm.nn.Conv2d(1, 4, 3, padding=1, bias=False),
                fm.nn.BatchNorm2d(4),
                fm.nn.ReLU(),
                fm.nn.MaxPool2d(2),
            )
            self.lstm = fm.nn.LSTM(4 * 3, 6, batch_first=True)
            self.attn = fm.nn.MultiheadAttention(6, 2, batch_first=True)
            self.norm = fm.nn.LayerNorm(6)
            self.drop = fm.nn.Dropout(0.2)
            self.head = fm.nn.Linear(6, 3)

        def forward(self, x):
            h = self.conv(x)  # (N, 4, 3, 3)
            seq = h.permute(0, 2, 1, 3).reshape(x.shape[0], 3, 12)
            out, _ = self.lstm(seq)
            a, _ = self.attn(out, out, out)
            return self.head(self.drop(self.norm(out + a)).mean(dim=1))

    model = Net().to(device)
    opt = fm.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = fm.tensor(_normal(20, 5, 1, 6, 6)).to(device)
    y = fm.tensor(np.array([0, 2, 1, 1, 0])).to(device)
    losses = []
    for _ in range(2):
        opt.zero_grad()
        loss = fm.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    return model, losses


def test_modules_training_step_matches_numpy_and_stays_on_its_device(backend_name):
    device = DEVICES[backend_name]
    want_model, want_losses = _model_step("cpu")
    model, losses = _model_step(device)
    for t in [*model.parameters(), *model.buffers(), *losses]:
        assert t.device.type == fm.device(device).type, f"a tensor on {t.device}"
    got = {k: backend.to_numpy(v._value) for k, v in model.state_dict().items()}
    want = {k: v._value for k, v in want_model.state_dict().items()}
    got["loss"] = [backend.to_numpy(t._value) for t in losses]
    want["loss"] = [t._value for t in want_losses]
    _assert_close(got, want, backend_name)
