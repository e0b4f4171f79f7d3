"""Normalisation, activations, losses and dropout against torch.nn.functional.

Every case runs in float64 (rtol 1e-7) and float32 (rtol 1e-5), with the absolute tolerance
scaled to the magnitude of PyTorch's values, over a grid of options. Gradients are taken for a
random cotangent with respect to the input and every parameter (and every floating target and
weight that PyTorch differentiates). Batch-norm running statistics are compared with
torch.nn.BatchNorm1d/2d after several training steps.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import funcnn as fn
from funcnn import numpy as fnp
from funcnn import random as frandom
from funcnn.nn import _activations as A
from funcnn.nn import _dropout as D
from funcnn.nn import _losses as L
from funcnn.nn import _norm as N

pytestmark = pytest.mark.parity

DTYPES = {
    "float64": (np.float64, torch.float64, 1e-7),
    "float32": (np.float32, torch.float32, 1e-5),
}


def _assert_close(ours, ref, rtol, what):
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != torch's {ref.shape}"
    assert ours.dtype == ref.dtype, f"{what}: dtype {ours.dtype} != torch's {ref.dtype}"
    finite = np.abs(ref[np.isfinite(ref)])
    atol = rtol * max(1.0, float(finite.max(initial=0.0)))
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol, err_msg=what)


def _compare(ours_fn, torch_fn, arrays, dtype, consts=None, seed=0, rtol=None):
    """Forward and gradients w.r.t. every array in ``arrays`` (``consts`` are not differentiated)."""
    np_dt, t_dt, default_rtol = DTYPES[dtype]
    rtol = default_rtol if rtol is None else rtol
    rng = np.random.default_rng(seed)
    arrays = {k: np.asarray(v, dtype=np_dt) for k, v in arrays.items()}
    consts = consts or {}
    t_consts = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in consts.items()}
    t_consts = {
        k: v.to(t_dt) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
        for k, v in t_consts.items()
    }
    c_consts = {
        k: v.astype(np_dt) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
        for k, v in consts.items()
    }
    tens = {k: torch.tensor(v, dtype=t_dt, requires_grad=True) for k, v in arrays.items()}
    t_out = torch_fn(**tens, **t_consts)
    up = rng.standard_normal(tuple(t_out.shape)).astype(np_dt)
    (t_out * torch.tensor(up)).sum().backward()
    out = ours_fn(**arrays, **c_consts)
    _assert_close(out, t_out.detach().numpy(), rtol, "forward")
    grads = fn.grad(lambda a: fnp.sum(ours_fn(**a, **c_consts) * up))(arrays)
    for k in arrays:
        ref = tens[k].grad
        ref = np.zeros_like(arrays[k]) if ref is None else ref.numpy()
        _assert_close(grads[k], ref, rtol, f"gradient of {k}")


# ============================================================================= activations

ACTIVATIONS = [
    ("relu", A.relu, F.relu),
    ("gelu", A.gelu, F.gelu),
    ("gelu_tanh", lambda x: A.gelu(x, approximate="tanh"), lambda x: F.gelu(x, approximate="tanh")),
    ("sigmoid", A.sigmoid, torch.sigmoid),
    ("tanh", A.tanh, torch.tanh),
    ("log_sigmoid", A.log_sigmoid, F.logsigmoid),
    ("silu", A.silu, F.silu),
    ("leaky_relu", A.leaky_relu, F.leaky_relu),
    ("leaky_relu_0.3", lambda x: A.leaky_relu(x, 0.3), lambda x: F.leaky_relu(x, 0.3)),
    ("elu", A.elu, F.elu),
    ("elu_0.5", lambda x: A.elu(x, 0.5), lambda x: F.elu(x, 0.5)),
    ("softplus", A.softplus, F.softplus),
    ("softplus_b2_t3", lambda x: A.softplus(x, 2.0, 3.0), lambda x: F.softplus(x, 2.0, 3.0)),
    ("hardtanh", A.hardtanh, F.hardtanh),
    ("hardtanh_-2_0.5", lambda x: A.hardtanh(x, -2.0, 0.5), lambda x: F.hardtanh(x, -2.0, 0.5)),
    ("softmax_-1", lambda x: A.softmax(x, axis=-1), lambda x: F.softmax(x, dim=-1)),
    ("softmax_0", lambda x: A.softmax(x, axis=0), lambda x: F.softmax(x, dim=0)),
    ("softmax_1", lambda x: A.softmax(x, axis=1), lambda x: F.softmax(x, dim=1)),
    ("log_softmax_-1", lambda x: A.log_softmax(x, axis=-1), lambda x: F.log_softmax(x, dim=-1)),
    ("log_softmax_1", lambda x: A.log_softmax(x, axis=1), lambda x: F.log_softmax(x, dim=1)),
]


def _activation_input(seed: int) -> np.ndarray:
    """Wide-range values, with the kinks (0, +-1, -2, 0.5, thresholds) hit exactly."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 5, 6)) * 4
    x.reshape(-1)[:12] = [0.0, 1.0, -1.0, -2.0, 0.5, 1.5, 20.0, 25.0, -30.0, 60.0, -60.0, 10.0]
    return x


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("name", [a[0] for a in ACTIVATIONS])
def test_activation_parity(name, dtype):
    _, ours, theirs = next(a for a in ACTIVATIONS if a[0] == name)
    _compare(lambda x: ours(x), lambda x: theirs(x), {"x": _activation_input(1)}, dtype)


@pytest.mark.parametrize("dtype", sorted(DTYPES))
def test_gelu_over_a_dense_range(dtype):
    x = np.linspace(-12, 12, 4801)
    _compare(A.gelu, F.gelu, {"x": x}, dtype)
    _compare(lambda x: A.gelu(x, "tanh"), lambda x: F.gelu(x, approximate="tanh"), {"x": x}, dtype)


# ============================================================================= normalisation


def _bn_torch(x, weight=None, bias=None, *, rm, rv, training, momentum, eps):
    return F.batch_norm(x, rm, rv, weight, bias, training=training, momentum=momentum, eps=eps)


BN_GRID = list(
    itertools.product(
        [(6, 3), (4, 3, 5), (2, 3, 4, 5), (2, 3, 2, 3, 2)],  # BatchNorm1d (2 forms), 2d, 3d
        [True, False],  # training
        [True, False],  # affine
        [1e-5, 1e-2],  # eps
    )
)


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("shape,training,affine,eps", BN_GRID)
def test_batch_norm_parity(shape, training, affine, eps, dtype):
    rng = np.random.default_rng(2)
    c = shape[1]
    arrays = {"x": rng.standard_normal(shape) * 2 + 1}
    if affine:
        arrays.update(weight=rng.standard_normal(c), bias=rng.standard_normal(c))
    rm, rv = rng.standard_normal(c), rng.random(c) + 0.5
    np_dt = DTYPES[dtype][0]
    state = {
        "running_mean": rm.astype(np_dt),
        "running_var": rv.astype(np_dt),
        "num_batches_tracked": np.zeros((), np.int64),
    }

    def ours(x, weight=None, bias=None):
        p = {"weight": weight, "bias": bias} if affine else None
        return N.batch_norm(p, state, x, training=training, eps=eps)[0]

    def theirs(x, weight=None, bias=None):
        t_dt = DTYPES[dtype][1]
        rm_t, rv_t = torch.tensor(rm, dtype=t_dt), torch.tensor(rv, dtype=t_dt)
        return _bn_torch(
            x, weight, bias, rm=rm_t, rv=rv_t, training=training, momentum=0.1, eps=eps
        )

    _compare(ours, theirs, arrays, dtype)


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_batch_norm_running_statistics_match_torch_module(momentum, dtype):
    np_dt, t_dt, rtol = DTYPES[dtype]
    rng = np.random.default_rng(3)
    module = torch.nn.BatchNorm2d(4, momentum=momentum).to(t_dt)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(rng.standard_normal(4)))
        module.bias.copy_(torch.tensor(rng.standard_normal(4)))
    params = {k: v.detach().numpy().copy() for k, v in module.named_parameters()}
    _, state = N.init_batch_norm(4, dtype=np_dt)
    module.train()
    for step in range(5):
        x = (rng.standard_normal((3, 4, 5, 6)) * (step + 1) + step).astype(np_dt)
        y_t = module(torch.tensor(x))
        y, state = N.batch_norm(params, state, x, momentum=momentum)
        _assert_close(y, y_t.detach().numpy(), rtol, f"output at step {step}")
    for k in ("running_mean", "running_var"):
        _assert_close(state[k], getattr(module, k).numpy(), rtol * 10, k)
    assert int(state["num_batches_tracked"]) == int(module.num_batches_tracked) == 5
    module.eval()
    x = rng.standard_normal((2, 4, 3, 3)).astype(np_dt)
    y, _ = N.batch_norm(params, state, x, training=False)
    _assert_close(y, module(torch.tensor(x)).detach().numpy(), rtol * 10, "eval output")


@pytest.mark.parametrize("dtype", sorted(DTYPES))
def test_batch_norm_1d_module_without_affine_and_untracked(dtype):
    np_dt, t_dt, rtol = DTYPES[dtype]
    rng = np.random.default_rng(4)
    module = torch.nn.BatchNorm1d(3, affine=False, track_running_stats=False).to(t_dt)
    x = rng.standard_normal((7, 3)).astype(np_dt)
    for training in (True, False):
        module.train(training)
        y, s = N.batch_norm(None, None, x, training=training)
        assert s is None
        _assert_close(y, module(torch.tensor(x)).detach().numpy(), rtol, f"training={training}")


LN_GRID = [((3, 4), (4,)), ((2, 3, 4), (3, 4)), ((2, 2, 3, 5), (5,)), ((5,), (5,))]


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
@pytest.mark.parametrize("shape,norm", LN_GRID)
def test_layer_norm_parity(shape, norm, affine, dtype):
    rng = np.random.default_rng(5)
    arrays = {"x": rng.standard_normal(shape) * 3 + 2}
    if affine != "none":
        arrays["weight"] = rng.standard_normal(norm)
    if affine == "both":
        arrays["bias"] = rng.standard_normal(norm)

    def ours(x, weight=None, bias=None):
        p = {k: v for k, v in (("weight", weight), ("bias", bias)) if v is not None}
        return N.layer_norm(p, x, normalized_shape=norm, eps=1e-4)

    def theirs(x, weight=None, bias=None):
        return F.layer_norm(x, norm, weight, bias, eps=1e-4)

    _compare(ours, theirs, arrays, dtype)


GN_GRID = [((2, 6, 4), 3), ((2, 6, 3, 3), 2), ((3, 4), 2), ((2, 4, 2, 2, 2), 4), ((2, 4, 5), 1)]


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape,groups", GN_GRID)
def test_group_norm_parity(shape, groups, affine, dtype):
    rng = np.random.default_rng(6)
    c = shape[1]
    arrays = {"x": rng.standard_normal(shape) * 2 - 1}
    if affine:
        arrays.update(weight=rng.standard_normal(c), bias=rng.standard_normal(c))

    def ours(x, weight=None, bias=None):
        return N.group_norm(
            {"weight": weight, "bias": bias} if affine else None, x, groups, eps=1e-3
        )

    def theirs(x, weight=None, bias=None):
        return F.group_norm(x, groups, weight, bias, eps=1e-3)

    _compare(ours, theirs, arrays, dtype)


# ============================================================================= cross entropy / nll


def _ce_targets(rng, layout, c, kind, ignore):
    shape = {"nc": (6, c), "ncd": (3, c, 2, 3), "c": (c,)}[layout]
    index_shape = () if layout == "c" else shape[:1] + shape[2:]
    if kind == "probs":
        q = rng.random(shape)
        return shape, q / q.sum(axis=0 if layout == "c" else 1, keepdims=True)
    t = rng.integers(0, c, index_shape)
    if ignore is not None and t.size > 1:
        t.reshape(-1)[::3] = ignore
    return shape, t


CE_GRID = list(
    itertools.product(
        ["nc", "ncd", "c"],  # layout
        ["index", "probs"],  # target kind
        ["mean", "sum", "none"],  # reduction
        [0.0, 0.2],  # label smoothing
        [False, True],  # weight
        [None, -100, 2],  # ignore_index (None: the default with no ignored targets)
    )
)
CE_GRID = [g for g in CE_GRID if not (g[1] == "probs" and g[5] is not None)]


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("layout,kind,reduction,ls,weighted,ignore", CE_GRID)
def test_cross_entropy_parity(layout, kind, reduction, ls, weighted, ignore, dtype):
    rng = np.random.default_rng(7)
    c = 5
    shape, target = _ce_targets(rng, layout, c, kind, ignore)
    arrays = {"logits": rng.standard_normal(shape) * 3}
    ii = -100 if ignore is None else ignore
    consts = {"target": target}
    if weighted:
        w = rng.random(c) + 0.5
        if kind == "probs":  # differentiable in PyTorch: compare its gradient too
            arrays["weight"] = w
        else:
            consts["weight"] = w
    if kind == "probs":
        arrays["target"] = consts.pop("target")

    def ours(logits, target, weight=None):
        return L.cross_entropy(
            logits, target, reduction=reduction, label_smoothing=ls, ignore_index=ii, weight=weight
        )

    def theirs(logits, target, weight=None):
        return F.cross_entropy(
            logits, target, weight=weight, ignore_index=ii, reduction=reduction, label_smoothing=ls
        )

    _compare(ours, theirs, arrays, dtype, consts=consts)


@pytest.mark.parametrize("dtype", sorted(DTYPES))
def test_cross_entropy_large_logits_and_many_classes(dtype):
    rng = np.random.default_rng(8)
    logits = rng.standard_normal((64, 1000)) * 30
    target = rng.integers(0, 1000, 64)
    _compare(
        lambda logits, target: L.cross_entropy(logits, target),
        lambda logits, target: F.cross_entropy(logits, target),
        {"logits": logits},
        dtype,
        consts={"target": target},
    )


NLL_GRID = list(
    itertools.product(["nc", "ncd", "c"], ["mean", "sum", "none"], [False, True], [None, 1])
)


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("layout,reduction,weighted,ignore", NLL_GRID)
def test_nll_loss_parity(layout, reduction, weighted, ignore, dtype):
    rng = np.random.default_rng(9)
    c = 4
    shape, target = _ce_targets(rng, layout, c, "index", ignore)
    ii = -100 if ignore is None else ignore
    consts = {"target": target}
    if weighted:
        consts["weight"] = rng.random(c) + 0.5

    def ours(input, target, weight=None):  # noqa: A002
        return L.nll_loss(input, target, weight=weight, ignore_index=ii, reduction=reduction)

    def theirs(input, target, weight=None):  # noqa: A002
        return F.nll_loss(input, target, weight=weight, ignore_index=ii, reduction=reduction)

    _compare(ours, theirs, {"input": rng.standard_normal(shape)}, dtype, consts=consts)


# ============================================================================= other losses


REGRESSION = [
    (
        "mse",
        lambda a, b, r: L.mse_loss(a, b, reduction=r),
        lambda a, b, r: F.mse_loss(a, b, reduction=r),
    ),
    (
        "l1",
        lambda a, b, r: L.l1_loss(a, b, reduction=r),
        lambda a, b, r: F.l1_loss(a, b, reduction=r),
    ),
    (
        "smooth_l1",
        lambda a, b, r: L.smooth_l1_loss(a, b, reduction=r),
        lambda a, b, r: F.smooth_l1_loss(a, b, reduction=r),
    ),
    (
        "smooth_l1_b0.3",
        lambda a, b, r: L.smooth_l1_loss(a, b, reduction=r, beta=0.3),
        lambda a, b, r: F.smooth_l1_loss(a, b, reduction=r, beta=0.3),
    ),
    (
        "smooth_l1_b0",
        lambda a, b, r: L.smooth_l1_loss(a, b, reduction=r, beta=0.0),
        lambda a, b, r: F.smooth_l1_loss(a, b, reduction=r, beta=0.0),
    ),
    (
        "huber",
        lambda a, b, r: L.huber_loss(a, b, reduction=r),
        lambda a, b, r: F.huber_loss(a, b, reduction=r),
    ),
    (
        "huber_d2.5",
        lambda a, b, r: L.huber_loss(a, b, reduction=r, delta=2.5),
        lambda a, b, r: F.huber_loss(a, b, reduction=r, delta=2.5),
    ),
]


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", [r[0] for r in REGRESSION])
def test_regression_loss_parity(name, reduction, dtype):
    _, ours, theirs = next(r for r in REGRESSION if r[0] == name)
    rng = np.random.default_rng(10)
    a = rng.standard_normal((5, 4)) * 2
    b = rng.standard_normal((5, 4)) * 2
    b[0, :3] = a[0, :3]  # zero differences (the l1 kink)
    _compare(
        lambda a, b: ours(a, b, reduction),
        lambda a, b: theirs(a, b, reduction),
        {"a": a, "b": b},
        dtype,
    )


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy_parity(weighted, reduction, dtype):
    rng = np.random.default_rng(11)
    arrays = {"p": rng.random((6, 3)) * 0.98 + 0.01, "t": rng.random((6, 3))}
    # PyTorch's binary_cross_entropy refuses a weight that requires grad: hold it constant.
    consts = {"w": rng.random(3) + 0.5} if weighted else {}

    def ours(p, t, w=None):
        return L.binary_cross_entropy(p, t, weight=w, reduction=reduction)

    def theirs(p, t, w=None):
        return F.binary_cross_entropy(p, t, weight=w, reduction=reduction)

    _compare(ours, theirs, arrays, dtype, consts=consts)


@pytest.mark.parametrize("dtype", sorted(DTYPES))
def test_binary_cross_entropy_at_zero_and_one(dtype):
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.5])
    t = np.array([0.0, 1.0, 1.0, 0.0, 0.3])
    _compare(
        lambda p, t: L.binary_cross_entropy(p, t, reduction="none"),
        lambda p, t: F.binary_cross_entropy(p, t, reduction="none"),
        {"p": p},
        dtype,
        consts={"t": t},
    )


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weights", ["none", "weight", "pos_weight", "both"])
def test_binary_cross_entropy_with_logits_parity(weights, reduction, dtype):
    rng = np.random.default_rng(12)
    arrays = {"x": rng.standard_normal((6, 3)) * 5, "t": rng.random((6, 3))}
    arrays["x"][0] = [0.0, 40.0, -40.0]
    # PyTorch refuses weights that require grad, so they are held constant.
    consts = {}
    if weights in ("weight", "both"):
        consts["w"] = rng.random((6, 1)) + 0.5
    if weights in ("pos_weight", "both"):
        consts["pw"] = rng.random(3) * 3

    def ours(x, t, w=None, pw=None):
        return L.binary_cross_entropy_with_logits(
            x, t, weight=w, pos_weight=pw, reduction=reduction
        )

    def theirs(x, t, w=None, pw=None):
        return F.binary_cross_entropy_with_logits(
            x, t, weight=w, pos_weight=pw, reduction=reduction
        )

    _compare(ours, theirs, arrays, dtype, consts=consts)


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("reduction", ["mean", "batchmean", "sum", "none"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_parity(log_target, reduction, dtype):
    rng = np.random.default_rng(13)
    logq = np.log(rng.dirichlet(np.ones(5), size=4))
    p = rng.dirichlet(np.ones(5), size=4)
    p[0, 0] = 0.0  # a zero target: xlogy
    target = np.log(p + 1e-3) if log_target else p

    def ours(x, t):
        return L.kl_div(x, t, reduction=reduction, log_target=log_target)

    def theirs(x, t):
        with warnings.catch_warnings():  # PyTorch warns that 'mean' is not the KL divergence
            warnings.simplefilter("ignore", UserWarning)
            return F.kl_div(x, t, reduction=reduction, log_target=log_target)

    arrays = {"x": logq, "t": target} if log_target else {"x": logq}
    consts = {} if log_target else {"t": target}
    _compare(ours, theirs, arrays, dtype, consts=consts)
    if not log_target:  # target gradient where the target is positive
        pos = np.where(p > 0, p, 0.5)
        _compare(ours, theirs, {"x": logq, "t": pos}, dtype)


# ============================================================================= dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_scale_matches_torch_exactly(p):
    x = np.random.default_rng(14).standard_normal((50, 40)).astype(np.float32)
    y = D.dropout(frandom.key(5), x, p=p)
    kept = y != 0
    torch.manual_seed(0)
    y_t = F.dropout(torch.tensor(x), p=p).numpy()
    kept_t = y_t != 0
    # same scaling of the kept elements, bit for bit (torch divides the mask by 1 - p)
    np.testing.assert_array_equal(y[kept], (x * (np.ones_like(x) / np.float32(1 - p)))[kept])
    np.testing.assert_array_equal(y_t[kept_t], (x * (np.ones_like(x) / np.float32(1 - p)))[kept_t])
    assert abs(kept.mean() - kept_t.mean()) < 0.05
    np.testing.assert_array_equal(
        D.dropout(frandom.key(5), x, p=p, training=False),
        F.dropout(torch.tensor(x), p=p, training=False).numpy(),
    )
