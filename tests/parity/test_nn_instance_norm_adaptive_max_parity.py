"""Instance norm and adaptive max pooling, both faces, against PyTorch.

Functional (``funcnn.nn``): forward and gradients with respect to the input and every parameter
for a random cotangent, in float64 (rtol 1e-7) and float32 (rtol 1e-5), over a grid of shapes and
options; running statistics after several steps; evaluation with them. Modules face
(``funcnn_modules``): ``nn.functional`` calls and the InstanceNorm / AdaptiveMaxPool classes, with
``state_dict`` keys, ``repr``, train/eval behaviour and buffers equal to PyTorch's.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import funcnn as fn
import funcnn_modules as fm
import funcnn_modules.nn as fmnn
import funcnn_modules.nn.functional as F
from funcnn import nn

pytestmark = [pytest.mark.parity, pytest.mark.usefixtures("one_torch_thread")]

DTYPES = {
    "float64": (np.float64, torch.float64, 1e-7),
    "float32": (np.float32, torch.float32, 1e-5),
}


def _close(ours, ref, rtol, what):
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != torch's {ref.shape}"
    assert ours.dtype == ref.dtype, f"{what}: dtype {ours.dtype} != torch's {ref.dtype}"
    atol = rtol * max(1.0, float(np.abs(ref).max(initial=0.0)))
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol, err_msg=what)


# ============================================================================= instance norm


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("shape", [(3, 4, 6), (2, 3, 4, 5), (2, 2, 3, 2, 4), (1, 3, 2)])
@pytest.mark.parametrize("affine", ["none", "weight", "both"])
@pytest.mark.parametrize("eps", [1e-5, 0.1])
def test_instance_norm_forward_and_gradients(dtype, shape, affine, eps):
    np_dt, t_dt, rtol = DTYPES[dtype]
    rng = np.random.default_rng(0)
    c = shape[1]
    x = (rng.standard_normal(shape) * 2 + 3).astype(np_dt)
    params = {}
    if affine in ("weight", "both"):
        params["weight"] = rng.standard_normal(c).astype(np_dt)
    if affine == "both":
        params["bias"] = rng.standard_normal(c).astype(np_dt)
    cot = rng.standard_normal(shape).astype(np_dt)

    y, vjp = fn.vjp(lambda p, x: nn.instance_norm(p, None, x, eps=eps)[0], params, x)
    gp, gx = vjp(cot)
    tx = torch.tensor(x, requires_grad=True)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    ty = TF.instance_norm(tx, weight=tp.get("weight"), bias=tp.get("bias"), eps=eps)
    ty.backward(torch.tensor(cot))
    assert ty.dtype == t_dt
    _close(y, ty.detach().numpy(), rtol, "y")
    _close(gx, tx.grad.numpy(), rtol, "grad x")
    for k, v in tp.items():
        _close(gp[k], v.grad.numpy(), rtol, f"grad {k}")


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("momentum", [0.1, 0.7])
def test_instance_norm_running_stats_then_evaluation(dtype, momentum):
    np_dt, _, rtol = DTYPES[dtype]
    rng = np.random.default_rng(1)
    params, state = nn.init.instance_norm(3, affine=True, track_running_stats=True, dtype=dtype)
    params = {
        "weight": rng.standard_normal(3).astype(np_dt),
        "bias": rng.standard_normal(3).astype(np_dt),
    }
    trm, trv = torch.zeros(3, dtype=DTYPES[dtype][1]), torch.ones(3, dtype=DTYPES[dtype][1])
    tw, tb = torch.tensor(params["weight"]), torch.tensor(params["bias"])
    for step in range(4):
        x = (rng.standard_normal((4, 3, 5, 3)) * (step + 1) + step).astype(np_dt)
        y, state = nn.instance_norm(params, state, x, momentum=momentum)
        ty = TF.instance_norm(torch.tensor(x), trm, trv, tw, tb, True, momentum)
        _close(y, ty.numpy(), rtol, f"y step {step}")
        _close(state["running_mean"], trm.numpy(), rtol, f"running_mean step {step}")
        _close(state["running_var"], trv.numpy(), rtol, f"running_var step {step}")
    x = rng.standard_normal((2, 3, 4, 4)).astype(np_dt)
    cot = rng.standard_normal(x.shape).astype(np_dt)
    y, vjp = fn.vjp(lambda p, x: nn.instance_norm(p, state, x, use_input_stats=False)[0], params, x)
    gp, gx = vjp(cot)
    tx = torch.tensor(x, requires_grad=True)
    tw.requires_grad_(True)
    tb.requires_grad_(True)
    ty = TF.instance_norm(tx, trm, trv, tw, tb, False, momentum)
    ty.backward(torch.tensor(cot))
    _close(y, ty.detach().numpy(), rtol, "eval y")
    _close(gx, tx.grad.numpy(), rtol, "eval grad x")
    _close(gp["weight"], tw.grad.numpy(), rtol, "eval grad weight")
    _close(gp["bias"], tb.grad.numpy(), rtol, "eval grad bias")


def test_functional_face_instance_norm_updates_running_stats_in_place():
    rng = np.random.default_rng(2)
    rm, rv = fm.zeros(3, dtype=fm.float64), fm.ones(3, dtype=fm.float64)
    trm, trv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    w = rng.standard_normal(3)
    ow, tw = fm.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    for _ in range(3):
        x = rng.standard_normal((2, 3, 7))
        ox, tx = fm.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        oy = F.instance_norm(ox, rm, rv, ow, momentum=0.2)
        ty = TF.instance_norm(tx, trm, trv, tw, momentum=0.2)
        (oy**3).sum().backward()
        (ty**3).sum().backward()
        _close(oy.detach().numpy(), ty.detach().numpy(), 1e-7, "y")
        _close(ox.grad.numpy(), tx.grad.numpy(), 1e-7, "grad x")
        _close(rm.numpy(), trm.numpy(), 1e-7, "running_mean")
        _close(rv.numpy(), trv.numpy(), 1e-7, "running_var")
    _close(ow.grad.numpy(), tw.grad.numpy(), 1e-7, "grad weight")
    x = rng.standard_normal((2, 3, 7))
    oy = F.instance_norm(fm.tensor(x), rm, rv, use_input_stats=False)
    ty = TF.instance_norm(torch.tensor(x), trm, trv, use_input_stats=False)
    _close(oy.numpy(), ty.numpy(), 1e-7, "eval y")
    _close(rm.numpy(), trm.numpy(), 1e-7, "running_mean after eval")


_IN_CONFIGS = [
    {},
    {"affine": True},
    {"track_running_stats": True},
    {"affine": True, "track_running_stats": True, "momentum": 0.3},
    {"affine": True, "bias": False, "eps": 1e-3},
    {"track_running_stats": True, "momentum": None},
]


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("config", _IN_CONFIGS, ids=str)
def test_instance_norm_modules_match_pytorch(nd, config):
    rng = np.random.default_rng(3)
    name = f"InstanceNorm{nd}d"
    ours = getattr(fmnn, name)(4, **config).double()
    ref = getattr(torch.nn, name)(4, **config).double()
    assert repr(ours) == repr(ref)
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(torch.tensor(rng.standard_normal(tuple(p.shape))))
    ours.load_state_dict({k: fm.tensor(v.numpy()) for k, v in ref.state_dict().items()})
    spatial = (5, 3, 2)[:nd]
    for mode in ("train", "train", "train", "eval"):
        getattr(ours, mode)()
        getattr(ref, mode)()
        for batched in (True, False):
            shape = ((3,) if batched else ()) + (4, *spatial)
            x = rng.standard_normal(shape) * 2 + 1
            ox, tx = fm.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
            oy, ty = ours(ox), ref(tx)
            cot = rng.standard_normal(shape)
            (oy * fm.tensor(cot)).sum().backward()
            (ty * torch.tensor(cot)).sum().backward()
            _close(oy.detach().numpy(), ty.detach().numpy(), 1e-7, f"{mode} y")
            _close(ox.grad.numpy(), tx.grad.numpy(), 1e-7, f"{mode} grad x")
        for k, v in ref.state_dict().items():
            _close(ours.state_dict()[k].numpy(), v.numpy(), 1e-7, f"{mode} {k}")
    for (k, p), (_, tp) in zip(ours.named_parameters(), ref.named_parameters()):
        _close(p.grad.numpy(), tp.grad.numpy(), 1e-7, f"grad {k}")


def test_instance_norm_module_float32_reset_and_input_checks():
    ours = fmnn.InstanceNorm2d(3, affine=True, track_running_stats=True)
    ref = torch.nn.InstanceNorm2d(3, affine=True, track_running_stats=True)
    x = np.random.default_rng(4).standard_normal((2, 3, 4, 4)).astype(np.float32)
    oy, ty = ours(fm.tensor(x)), ref(torch.tensor(x))
    assert oy.dtype == fm.float32 and ours.running_var.dtype == fm.float32
    _close(oy.detach().numpy(), ty.detach().numpy(), 1e-5, "y")
    _close(ours.running_var.numpy(), ref.running_var.numpy(), 1e-5, "running_var")
    ours.reset_running_stats()
    np.testing.assert_array_equal(ours.running_mean.numpy(), np.zeros(3, dtype=np.float32))
    np.testing.assert_array_equal(ours.running_var.numpy(), np.ones(3, dtype=np.float32))
    with pytest.raises(ValueError, match=r"expected 3D or 4D input \(got 2D input\)"):
        ours(fm.zeros(3, 4))
    with pytest.raises(ValueError, match=r"expected input's size at dim=1 to match num_features"):
        ours(fm.zeros(2, 5, 4, 4))
    plain = fmnn.InstanceNorm1d(3)
    with pytest.warns(UserWarning, match="does not match num_features"):
        y = plain(fm.tensor(x[:, :, 0]).transpose(0, 1))  # (3, 2, 4) read as unbatched (C=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ty = torch.nn.InstanceNorm1d(3)(torch.tensor(x[:, :, 0]).transpose(0, 1))
    _close(y.numpy(), ty.numpy(), 1e-5, "y with another C")


# ============================================================================= adaptive max pooling


_AMP_CASES = [
    ((2, 3, 10), 4),
    ((2, 3, 9), (9,)),
    ((1, 2, 7), 11),
    ((2, 2, 7, 9), (3, 4)),
    ((2, 2, 8, 8), (1, 1)),
    ((1, 3, 5, 6), (None, 4)),
    ((1, 1, 3, 4), (5, 7)),
    ((1, 2, 5, 6, 7), (2, 3, 4)),
    ((1, 2, 4, 4, 4), (2, None, 1)),
    ((3, 5, 6), (4, 2)),  # unbatched
]


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize(("shape", "out"), _AMP_CASES, ids=str)
@pytest.mark.parametrize("data", ["normal", "ties"])
def test_adaptive_max_pool_forward_and_gradients(dtype, shape, out, data):
    np_dt, _, rtol = DTYPES[dtype]
    rng = np.random.default_rng(5)
    nd = len(out) if isinstance(out, tuple) else len(shape) - 2
    if data == "normal":
        x = rng.standard_normal(shape).astype(np_dt)
    else:
        x = rng.integers(0, 3, shape).astype(np_dt)
    f = getattr(nn, f"adaptive_max_pool{nd}d")
    tf = getattr(TF, f"adaptive_max_pool{nd}d")
    tx = torch.tensor(x, requires_grad=True)
    ty = tf(tx, out)
    cot = rng.standard_normal(tuple(ty.shape)).astype(np_dt)
    ty.backward(torch.tensor(cot))
    y, vjp = fn.vjp(lambda x: f(x, out), x)
    _close(y, ty.detach().numpy(), rtol, "y")
    _close(vjp(cot)[0], tx.grad.numpy(), rtol, "grad x")
    # the modules face: nn.functional and the class
    ox = fm.tensor(x, requires_grad=True)
    oy = getattr(F, f"adaptive_max_pool{nd}d")(ox, out)
    (oy * fm.tensor(cot)).sum().backward()
    _close(oy.detach().numpy(), ty.detach().numpy(), rtol, "face y")
    _close(ox.grad.numpy(), tx.grad.numpy(), rtol, "face grad x")
    m = getattr(fmnn, f"AdaptiveMaxPool{nd}d")(out)
    _close(m(fm.tensor(x)).numpy(), ty.detach().numpy(), rtol, "module y")


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_adaptive_max_pool_modules_repr_and_errors(nd):
    name = f"AdaptiveMaxPool{nd}d"
    for out in (3, (2,) * nd):
        ours, ref = getattr(fmnn, name)(out), getattr(torch.nn, name)(out)
        assert repr(ours) == repr(ref)
        assert list(ours.state_dict()) == list(ref.state_dict()) == []
    with pytest.raises(NotImplementedError, match="return_indices=True is not supported"):
        getattr(fmnn, name)(2, return_indices=True)
    with pytest.raises(NotImplementedError, match="return_indices=True is not supported"):
        getattr(F, f"adaptive_max_pool{nd}d")(fm.zeros(*(1, 2) + (4,) * nd), 2, True)
    seq_ours = fmnn.Sequential(fmnn.InstanceNorm2d(2, affine=True), fmnn.AdaptiveMaxPool2d(1))
    seq_ref = torch.nn.Sequential(
        torch.nn.InstanceNorm2d(2, affine=True), torch.nn.AdaptiveMaxPool2d(1)
    )
    assert repr(seq_ours) == repr(seq_ref)
    assert list(seq_ours.state_dict()) == list(seq_ref.state_dict())
