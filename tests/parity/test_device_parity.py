"""The layer grid on a GPU: funcnn on CuPy arrays against PyTorch on the same CUDA device.

Each case runs funcnn with its inputs on the device (``fn.backend.device_put``) and PyTorch with
the same numbers on the matching torch device, then compares the forward value and the
gradients with respect to every floating input; every array funcnn returns must still be on
the device. With a GPU ("cupy", marked ``gpu``) that is real CuPy against ``torch.cuda``, with
TF32 switched off on both sides of the comparison. Without one, "cupy-emulated" runs the very same
test on the CPU: funcnn's CuPy code paths over an emulation of CuPy 13's API (tests/conftest.py)
against PyTorch on the CPU, so this file is exercised by every CI run.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import funcnn as fn
from funcnn import backend, nn
from funcnn import numpy as fnp

pytestmark = pytest.mark.parity

DEVICES = [
    pytest.param("cupy-emulated", id="cupy-emulated"),
    pytest.param("cupy", id="cuda", marks=pytest.mark.gpu),
]
# A GPU sums in other orders than a CPU: float32 gets a looser tolerance there.
RTOL = {("cpu", "float32"): 1e-5, ("cpu", "float64"): 1e-7}
RTOL |= {("cuda", "float32"): 1e-4, ("cuda", "float64"): 1e-7}
DTYPES = {"float32": (np.float32, torch.float32), "float64": (np.float64, torch.float64)}


@pytest.fixture(params=DEVICES)
def device(request, monkeypatch):
    """The torch device ("cpu" for the emulated CuPy, "cuda" for real CuPy)."""
    if request.param == "cupy-emulated":
        request.getfixturevalue("emulated_cupy")
        return "cpu"
    try:
        import cupy  # noqa: F401
    except ImportError:
        pytest.skip('needs CuPy and a CUDA GPU (pip install "funcnn[cuda]")')
    if not torch.cuda.is_available():
        pytest.skip("needs CuPy and a CUDA GPU: this torch build has no CUDA")
    try:
        backend._load("cupy")
    except backend.BackendUnavailableError as e:
        pytest.skip(f"needs CuPy and a CUDA GPU: {e}")
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    return "cuda"


def _on_device(tree):
    for leaf in fn.tree.leaves(tree):
        if backend.is_array(leaf):
            assert backend.backend_name(leaf) == "cupy", f"left the device: {type(leaf)}"


def _assert_close(ours, ref, rtol, what):
    ours = backend.to_numpy(ours)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != torch's {ref.shape}"
    assert ours.dtype == ref.dtype, f"{what}: dtype {ours.dtype} != torch's {ref.dtype}"
    atol = rtol * max(1.0, float(np.abs(ref).max(initial=0.0)))
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol, err_msg=what)


def _compare(device, dtype, ours_fn, torch_fn, floats, consts=None, seed=0):
    """Forward and gradients w.r.t. every array of ``floats``, for one random cotangent.

    ``floats``: host arrays (cast to ``dtype``, differentiated); ``consts``: host arrays used as
    they are (targets, masks). Both are moved to the device for each library.
    """
    np_dt, t_dt = DTYPES[dtype]
    rtol = RTOL[device, dtype]
    floats = {k: np.asarray(v, dtype=np_dt) for k, v in floats.items()}
    consts = {  # floating constants (running stats, pos_weight) take the inputs' dtype
        k: v.astype(np_dt) if np.issubdtype(v.dtype, np.floating) else v
        for k, v in (consts or {}).items()
    }
    t_in = {
        k: torch.tensor(v, dtype=t_dt, device=device, requires_grad=True) for k, v in floats.items()
    }
    t_consts = {k: torch.as_tensor(v, device=device) for k, v in consts.items()}
    t_out = torch_fn(**t_in, **t_consts)
    up = np.random.default_rng(seed).standard_normal(tuple(t_out.shape)).astype(np_dt)
    (t_out * torch.as_tensor(up, device=device)).sum().backward()

    dev = backend.device_put(floats, "cuda")
    dev_consts = backend.device_put(consts, "cuda")
    up_dev = backend.device_put(up, "cuda")
    out = ours_fn(**dev, **dev_consts)
    grads = fn.grad(lambda a: fnp.sum(ours_fn(**a, **dev_consts) * up_dev))(dev)
    _on_device((out, grads))
    _assert_close(out, t_out.detach().cpu().numpy(), rtol, "forward")
    for k, t in t_in.items():
        ref = np.zeros(t.shape, np_dt) if t.grad is None else t.grad.cpu().numpy()
        _assert_close(grads[k], ref, rtol, f"gradient of {k}")


def _randn(seed, *shape, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


# ----------------------------------------------------------------------------- the layer grid
# name: (ours(**arrays), torch(**tensors), float inputs, constant inputs)


def _conv_cases():
    w2 = _randn(1, 6, 2, 3, 3, scale=0.3)
    yield (
        "conv2d",
        lambda x, w, b: nn.conv2d({"weight": w, "bias": b}, x, stride=2, padding=1, groups=2),
        lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2),
        {"x": _randn(2, 2, 4, 9, 8), "w": w2, "b": _randn(3, 6)},
        {},
    )
    yield (
        "conv2d_same_dilated",
        lambda x, w: nn.conv2d({"weight": w}, x, padding="same", dilation=(1, 2)),
        lambda x, w: F.conv2d(x, w, padding="same", dilation=(1, 2)),
        {"x": _randn(4, 2, 3, 7, 7), "w": _randn(5, 4, 3, 3, 2, scale=0.3)},
        {},
    )
    yield (
        "conv1d",
        lambda x, w, b: nn.conv1d({"weight": w, "bias": b}, x, stride=2, padding=2),
        lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=2),
        {"x": _randn(6, 3, 2, 11), "w": _randn(7, 4, 2, 3), "b": _randn(8, 4)},
        {},
    )
    yield (
        "conv3d",
        lambda x, w: nn.conv3d({"weight": w}, x, padding=1),
        lambda x, w: F.conv3d(x, w, padding=1),
        {"x": _randn(9, 2, 2, 4, 5, 3), "w": _randn(10, 3, 2, 2, 3, 2, scale=0.3)},
        {},
    )
    yield (
        "conv_transpose2d",
        lambda x, w, b: nn.conv_transpose2d(
            {"weight": w, "bias": b}, x, stride=2, padding=1, output_padding=1
        ),
        lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
        {"x": _randn(11, 2, 3, 4, 5), "w": _randn(12, 3, 4, 3, 3, scale=0.3), "b": _randn(13, 4)},
        {},
    )


def _pool_norm_cases():
    x = _randn(20, 2, 3, 7, 6)
    yield (
        "max_pool2d",
        lambda x: nn.max_pool2d(x, 3, stride=2, padding=1),
        lambda x: F.max_pool2d(x, 3, stride=2, padding=1),
        {"x": x},
        {},
    )
    yield (
        "avg_pool2d",
        lambda x: nn.avg_pool2d(x, 2, stride=1, padding=1, count_include_pad=False),
        lambda x: F.avg_pool2d(x, 2, stride=1, padding=1, count_include_pad=False),
        {"x": x},
        {},
    )
    yield (
        "adaptive_avg_pool2d",
        lambda x: nn.adaptive_avg_pool2d(x, (3, 4)),
        lambda x: F.adaptive_avg_pool2d(x, (3, 4)),
        {"x": x},
        {},
    )
    stats = {"rm": _randn(21, 3), "rv": np.abs(_randn(22, 3)) + 0.5}

    def ours_bn(x, w, b, rm, rv):
        state = {"running_mean": rm, "running_var": rv, "num_batches_tracked": backend.zeros(())}
        y, new = nn.batch_norm({"weight": w, "bias": b}, state, x, training=True)
        return y + 0.0 * fnp.sum(new["running_mean"] + new["running_var"])

    yield (
        "batch_norm",
        ours_bn,
        lambda x, w, b, rm, rv: F.batch_norm(x, rm, rv, w, b, training=True),
        {"x": x, "w": _randn(23, 3), "b": _randn(24, 3)},
        stats,
    )
    yield (
        "layer_norm",
        lambda x, w, b: nn.layer_norm({"weight": w, "bias": b}, x),
        lambda x, w, b: F.layer_norm(x, (7, 6), w, b),
        {"x": x, "w": _randn(25, 7, 6), "b": _randn(26, 7, 6)},
        {},
    )
    yield (
        "group_norm",
        lambda x, w, b: nn.group_norm({"weight": w, "bias": b}, x, 2),
        lambda x, w, b: F.group_norm(x, 2, w, b),
        {"x": _randn(27, 2, 4, 5, 3), "w": _randn(28, 4), "b": _randn(29, 4)},
        {},
    )


def _dense_cases():
    yield (
        "linear_gelu_tanh",
        lambda x, w, b: nn.gelu(nn.linear({"weight": w, "bias": b}, x), approximate="tanh"),
        lambda x, w, b: F.gelu(F.linear(x, w, b), approximate="tanh"),
        {"x": _randn(30, 4, 3, 5), "w": _randn(31, 6, 5), "b": _randn(32, 6)},
        {},
    )
    yield (
        "activations",
        lambda x: nn.silu(x) + nn.softplus(x) + nn.elu(x) + nn.log_softmax(x, axis=-1),
        lambda x: F.silu(x) + F.softplus(x) + F.elu(x) + F.log_softmax(x, dim=-1),
        {"x": _randn(33, 5, 7, scale=2.0)},
        {},
    )
    yield (
        "embedding",
        lambda w, idx: nn.embedding({"weight": w}, idx, padding_idx=1),
        lambda w, idx: F.embedding(idx, w, padding_idx=1),
        {"w": _randn(34, 6, 4)},
        {"idx": np.array([[0, 1, 5], [5, 2, 1]])},
    )


def _sequence_cases():
    H, I = 5, 4  # noqa: E741 - PyTorch's names
    lstm_p = {
        "weight_ih": _randn(40, 4 * H, I, scale=0.4),
        "weight_hh": _randn(41, 4 * H, H, scale=0.4),
        "bias_ih": _randn(42, 4 * H, scale=0.4),
        "bias_hh": _randn(43, 4 * H, scale=0.4),
    }
    xs = _randn(44, 6, 3, I)

    def ours_lstm(xs, h0, c0, **p):
        out, (h, c) = nn.lstm(p, xs, (h0, c0), reverse=True)
        return fnp.concatenate([fnp.reshape(out, (-1,)), fnp.reshape(h * c, (-1,))])

    def torch_lstm(xs, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh):
        flat = [weight_ih, weight_hh, bias_ih, bias_hh]
        module = torch.nn.LSTM(I, H).to(xs.device, xs.dtype)
        params = dict(zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), flat))
        out, (h, c) = torch.func.functional_call(module, params, (xs.flip(0), (h0[None], c0[None])))
        return torch.cat([out.flip(0).reshape(-1), (h[0] * c[0]).reshape(-1)])

    yield (
        "lstm_reverse",
        ours_lstm,
        torch_lstm,
        {"xs": xs, "h0": _randn(45, 3, H), "c0": _randn(46, 3, H)} | lstm_p,
        {},
    )
    gru_p = {
        "weight_ih": _randn(47, 3 * H, I, scale=0.4),
        "weight_hh": _randn(48, 3 * H, H, scale=0.4),
        "bias_ih": _randn(49, 3 * H, scale=0.4),
        "bias_hh": _randn(50, 3 * H, scale=0.4),
    }

    def ours_gru(xs, h0, **p):
        out, h = nn.gru(p, xs, h0)
        return fnp.concatenate([fnp.reshape(out, (-1,)), fnp.reshape(h, (-1,))])

    def torch_gru(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh):
        flat = [weight_ih, weight_hh, bias_ih, bias_hh]
        module = torch.nn.GRU(I, H).to(xs.device, xs.dtype)
        params = dict(zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), flat))
        out, h = torch.func.functional_call(module, params, (xs, h0[None]))
        return torch.cat([out.reshape(-1), h.reshape(-1)])

    yield ("gru", ours_gru, torch_gru, {"xs": xs, "h0": _randn(51, 3, H)} | gru_p, {})


def _attention_cases():
    q, k, v = _randn(60, 2, 2, 5, 4), _randn(61, 2, 2, 5, 4), _randn(62, 2, 2, 5, 3)
    yield (
        "sdpa_causal",
        lambda q, k, v: nn.scaled_dot_product_attention(q, k, v, is_causal=True),
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        {"q": q, "k": k, "v": v},
        {},
    )
    E, heads = 6, 2
    pad = np.zeros((3, 4), dtype=bool)
    pad[1, 2:] = True

    def ours_mha(query, kv, in_w, in_b, out_w, out_b, pad):
        p = {"in_proj_weight": in_w, "in_proj_bias": in_b, "out_proj": {"weight": out_w}}
        p["out_proj"]["bias"] = out_b
        out, w = nn.multi_head_attention(
            p, query, kv, kv, num_heads=heads, key_padding_mask=pad, need_weights=True
        )
        return fnp.concatenate([fnp.reshape(out, (-1,)), fnp.reshape(w, (-1,))])

    def torch_mha(query, kv, in_w, in_b, out_w, out_b, pad):
        out, w = F.multi_head_attention_forward(
            query, kv, kv, E, heads, in_w, in_b, None, None, False, 0.0, out_w, out_b,
            key_padding_mask=pad, need_weights=True,
        )  # fmt: skip
        return torch.cat([out.reshape(-1), w.reshape(-1)])

    yield (
        "multi_head_attention",
        ours_mha,
        torch_mha,
        {
            "query": _randn(63, 5, 3, E),
            "kv": _randn(64, 4, 3, E),
            "in_w": _randn(65, 3 * E, E, scale=0.4),
            "in_b": _randn(66, 3 * E),
            "out_w": _randn(67, E, E, scale=0.4),
            "out_b": _randn(68, E),
        },
        {"pad": pad},
    )


def _loss_cases():
    logits = _randn(70, 6, 5, 3)
    target = np.array([[0, 4, 1], [2, -100, 3], [1, 1, 0], [4, 2, -100], [3, 0, 2], [0, 0, 1]])
    yield (
        "cross_entropy",
        lambda x, w, t: nn.cross_entropy(x, t, weight=w, label_smoothing=0.1),
        lambda x, w, t: F.cross_entropy(x, t, weight=w, label_smoothing=0.1),
        {"x": logits},
        {"t": target, "w": np.abs(_randn(71, 5)) + 0.5},  # torch: no gradient for weight
    )
    yield (
        "cross_entropy_probs",
        lambda x, p: nn.cross_entropy(x, p, reduction="sum"),
        lambda x, p: F.cross_entropy(x, p, reduction="sum"),
        {"x": _randn(72, 4, 6), "p": np.random.default_rng(73).dirichlet(np.ones(6), 4)},
        {},
    )
    yield (
        "bce_with_logits",
        lambda x, t, pw: nn.binary_cross_entropy_with_logits(x, t, pos_weight=pw),
        lambda x, t, pw: F.binary_cross_entropy_with_logits(x, t, pos_weight=pw),
        {"x": _randn(74, 4, 3), "t": np.random.default_rng(75).random((4, 3))},
        {"pw": np.array([0.5, 1.0, 2.0])},
    )
    yield (
        "smooth_l1_mse",
        lambda x, y: nn.smooth_l1_loss(x, y, beta=0.5) + nn.mse_loss(x, y, reduction="sum"),
        lambda x, y: F.smooth_l1_loss(x, y, beta=0.5) + F.mse_loss(x, y, reduction="sum"),
        {"x": _randn(76, 5, 4), "y": _randn(77, 5, 4)},
        {},
    )


CASES = {
    c[0]: c[1:]
    for c in (
        *_conv_cases(),
        *_pool_norm_cases(),
        *_dense_cases(),
        *_sequence_cases(),
        *_attention_cases(),
        *_loss_cases(),
    )
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(CASES))
def test_layer_grid_matches_torch_on_the_device(device, name, dtype):
    ours, theirs, floats, consts = CASES[name]
    _compare(device, dtype, ours, theirs, floats, consts)


# ----------------------------------------------------------------------------- optimisers


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda: fn.optim.adam(1e-2, weight_decay=0.1, amsgrad=True),
         lambda ps: torch.optim.Adam(ps, lr=1e-2, weight_decay=0.1, amsgrad=True)),
        (lambda: fn.optim.sgd(0.1, momentum=0.9, nesterov=True),
         lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True)),
        (lambda: fn.optim.rmsprop(1e-2, momentum=0.5, centered=True),
         lambda ps: torch.optim.RMSprop(ps, lr=1e-2, momentum=0.5, centered=True)),
    ],
    ids=["adam_amsgrad", "sgd_nesterov", "rmsprop_centered"],
)  # fmt: skip
def test_optimisers_match_torch_on_the_device(device, ours, theirs):
    """Five steps of training a linear layer; parameters stay on the device throughout."""
    host = {"weight": _randn(80, 3, 4), "bias": _randn(81, 3)}
    x, y = _randn(82, 8, 4), _randn(83, 8, 3)
    t_params = {k: torch.tensor(v, device=device, requires_grad=True) for k, v in host.items()}
    t_opt = theirs(list(t_params.values()))
    tx, ty = torch.tensor(x, device=device), torch.tensor(y, device=device)

    params = backend.device_put(host, "cuda")
    dx, dy = backend.device_put((x, y), "cuda")
    opt = ours()
    state = opt.init(params)
    loss = lambda p: fnp.mean((nn.linear(p, dx) - dy) ** 2)
    for _ in range(5):
        t_opt.zero_grad()
        F.mse_loss(F.linear(tx, t_params["weight"], t_params["bias"]), ty).backward()
        t_opt.step()
        updates, state = opt.update(fn.grad(loss)(params), state, params)
        params = fn.optim.apply_updates(params, updates)
    _on_device((params, state))
    for k, t in t_params.items():
        _assert_close(params[k], t.detach().cpu().numpy(), RTOL[device, "float64"], k)


# ----------------------------------------------------------------------------- the Module face


def test_module_training_step_matches_torch_on_the_device(device):
    """A small CNN moved with ``.to(device)``: loss, weights after two Adam steps, and the
    gradients are on the device in both libraries and agree."""
    import funcnn_modules as fm

    def build(lib):
        return lib.nn.Sequential(
            lib.nn.Conv2d(1, 4, 3, padding=1, bias=False),  # a bias before batch norm has no
            # gradient but rounding noise, which Adam would blow up to full-size steps
            lib.nn.BatchNorm2d(4),
            lib.nn.ReLU(),
            lib.nn.MaxPool2d(2),
            lib.nn.Flatten(),
            lib.nn.Linear(4 * 4 * 4, 5),
        )

    torch.manual_seed(0)
    t_model = build(torch).to(device)
    model = build(fm)
    model.load_state_dict({k: v.cpu().numpy() for k, v in t_model.state_dict().items()})
    model = model.to("cuda")
    x, y = _randn(90, 6, 1, 8, 8).astype(np.float32), np.array([0, 1, 2, 3, 4, 0])
    t_opt = torch.optim.Adam(t_model.parameters(), lr=1e-2)
    opt = fm.optim.Adam(model.parameters(), lr=1e-2)
    tx, ty = torch.tensor(x, device=device), torch.tensor(y, device=device)
    fx, fy = fm.tensor(x, device="cuda"), fm.tensor(y, device="cuda")
    rtol = RTOL[device, "float32"]
    for _ in range(2):
        t_opt.zero_grad()
        t_loss = F.cross_entropy(t_model(tx), ty)
        t_loss.backward()
        t_opt.step()
        opt.zero_grad()
        loss = fm.nn.functional.cross_entropy(model(fx), fy)
        loss.backward()
        opt.step()
        assert loss.device.type == "cuda"
        np.testing.assert_allclose(loss.item(), t_loss.item(), rtol=rtol)
    ours = {k: v.data for k, v in model.state_dict().items()}
    _on_device(ours)
    for k, v in t_model.state_dict().items():
        _assert_close(ours[k], v.cpu().numpy(), 10 * rtol, k)
