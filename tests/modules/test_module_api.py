"""funcnn_modules.nn.Module: registration, iteration, state dicts, modes, memory, and the bridge
to the functional core (functional_call, to_functional, check_grads, detect_anomaly).

The same behaviour is compared with real PyTorch in tests/parity/test_modules_parity.py.
"""

from __future__ import annotations

import gc
import re

import numpy as np
import pytest

import funcnn as fn
import funcnn.numpy as fnp
import funcnn_modules as fm
import funcnn_modules.nn as nn
from funcnn.autodiff._core import Box, Node
from funcnn_modules.autograd import detect_anomaly
from funcnn_modules.func import functional_call


class Net(nn.Module):
    """Parameters, persistent and non-persistent buffers, a plain attribute and nested children."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 6)
        self.register_buffer("count", fm.zeros(1))
        self.register_buffer("scratch", fm.ones(2), persistent=False)
        self.scale = nn.Parameter(fm.ones(1))
        self.plain = 5
        self.block = nn.Sequential(nn.Linear(6, 3), nn.Tanh())

    def forward(self, x):
        return self.block(self.fc(x).relu()) * self.scale


def _x(n=5, d=4, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(dtype)


# ----------------------------------------------------------------------------- registration


def test_attribute_registration():
    m = Net()
    assert list(m._parameters) == ["scale"]
    assert list(m._buffers) == ["count", "scratch"]
    assert list(m._modules) == ["fc", "block"]
    assert m.plain == 5 and "plain" not in m._parameters and "plain" not in m._buffers
    assert isinstance(m.fc.weight, nn.Parameter) and m.fc.weight.requires_grad
    assert not m.count.requires_grad
    m.extra = nn.Linear(1, 1)  # a later assignment registers too, at the end
    assert list(m._modules) == ["fc", "block", "extra"]
    m.extra = None
    assert m._modules["extra"] is None and "extra" not in dict(m.named_children())
    del m.extra
    assert "extra" not in m._modules
    m.fc = nn.Linear(4, 6, bias=False)  # replacing a child keeps its place
    assert list(m._modules) == ["fc", "block"] and m.fc.bias is None
    with pytest.raises(TypeError, match="cannot assign 'int' as parameter 'scale'"):
        m.scale = 3
    with pytest.raises(KeyError, match="attribute 'fc' already exists"):
        m.register_buffer("fc", fm.zeros(1))
    with pytest.raises(KeyError, match=re.escape('contain "."')):
        m.register_parameter("a.b", nn.Parameter(fm.ones(1)))
    with pytest.raises(AttributeError, match="'Net' object has no attribute 'nope'"):
        m.nope  # noqa: B018


def test_assignment_before_init_is_refused():
    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match=re.escape("before Module.__init__() call")):
        Bad()


def test_named_iterators_follow_registration_order():
    m = Net()
    assert [n for n, _ in m.named_parameters()] == [
        "scale",
        "fc.weight",
        "fc.bias",
        "block.0.weight",
        "block.0.bias",
    ]
    assert [n for n, _ in m.named_buffers()] == ["count", "scratch"]
    assert [n for n, _ in m.named_modules()] == ["", "fc", "block", "block.0", "block.1"]
    assert [n for n, _ in m.named_children()] == ["fc", "block"]
    assert [type(c).__name__ for c in m.children()] == ["Linear", "Sequential"]
    assert [type(c).__name__ for c in m.modules()] == [
        "Net",
        "Linear",
        "Sequential",
        "Linear",
        "Tanh",
    ]
    assert len(list(m.parameters())) == 5 and len(list(m.buffers())) == 2
    assert [n for n, _ in m.named_parameters(recurse=False)] == ["scale"]
    assert [n for n, _ in m.named_parameters(prefix="model")][0] == "model.scale"


def test_shared_modules_and_parameters_are_listed_once():
    shared = nn.Linear(3, 3)
    seq = nn.Sequential(shared, nn.ReLU(), shared)
    assert [n for n, _ in seq.named_modules()] == ["", "0", "1"]
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]  # as PyTorch


def test_non_persistent_buffer_is_left_out_of_state_dict():
    m = Net()
    sd = m.state_dict()
    assert list(sd) == ["scale", "count", "fc.weight", "fc.bias", "block.0.weight", "block.0.bias"]
    assert "scratch" not in sd
    assert "scratch" in dict(m.named_buffers())
    assert not sd["fc.weight"].requires_grad  # detached...
    sd["count"].add_(3.0)  # ...but sharing the module's values
    assert m.count.item() == 3.0
    assert m.state_dict(keep_vars=True)["fc.weight"] is m.fc.weight


# ----------------------------------------------------------------------------- modes, apply, to


def test_train_eval_reach_every_submodule():
    m = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.Sequential(nn.BatchNorm1d(2)))
    assert all(s.training for s in m.modules())
    assert m.eval() is m
    assert not any(s.training for s in m.modules())
    m.train()
    assert all(s.training for s in m.modules())
    m.train(False)
    assert not m[2][0].training
    x = fm.ones(4, 2)
    m.eval()
    np.testing.assert_array_equal(m[1](x).numpy(), x.numpy())  # dropout off in eval
    with pytest.raises(ValueError, match="boolean"):
        m.train("yes")


def test_apply_visits_children_first_then_self():
    m = Net()
    seen = []
    assert m.apply(lambda mod: seen.append(type(mod).__name__)) is m
    assert seen == ["Linear", "Linear", "Tanh", "Sequential", "Net"]

    def init_weights(mod):
        if isinstance(mod, nn.Linear):
            nn.init.constant_(mod.weight, 0.5)
            nn.init.zeros_(mod.bias)

    m.apply(init_weights)
    assert np.all(m.fc.weight.detach().numpy() == 0.5)
    assert np.all(m.block[0].bias.detach().numpy() == 0.0)


def test_to_casts_in_place_and_keeps_parameter_identity():
    m = Net()
    w = m.fc.weight
    opt = fm.optim.SGD(m.parameters(), lr=0.1)
    assert m.to(fm.float64) is m
    assert m.fc.weight is w and w.dtype == fm.float64 and w.requires_grad and w.is_leaf
    assert m.count.dtype == fm.float64
    out = m(fm.tensor(_x(dtype=np.float64)))
    assert out.dtype == fm.float64
    out.sum().backward()
    assert w.grad.dtype == fm.float64
    opt.step()  # the optimiser made before .to() still holds the same parameters
    assert m.double() is m and m.float() is m and m.fc.weight.dtype == fm.float32
    assert m.to("cpu") is m and m.fc.weight.device.type == "cpu"
    with pytest.raises(TypeError, match="floating point"):
        m.to(fm.int64)


def test_zero_grad():
    m = Net()
    m(fm.tensor(_x())).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not np.any(p.grad.numpy()) for p in m.parameters())
    m(fm.tensor(_x())).sum().backward()
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


# ----------------------------------------------------------------------------- load_state_dict


def test_load_state_dict_round_trip_copies_values():
    a, b = Net(), Net()
    sd = {k: v.numpy() * 0 + i for i, (k, v) in enumerate(a.state_dict().items())}
    result = b.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    for i, v in enumerate(b.state_dict().values()):
        assert np.all(v.numpy() == i)
    assert b.fc.weight.requires_grad and b.fc.weight.is_leaf
    sd["fc.weight"][...] = 99  # a copy: later changes to the source do not leak in
    assert not np.any(b.fc.weight.detach().numpy() == 99)


def test_load_state_dict_lists_missing_and_unexpected_keys():
    m = Net()
    sd = dict(m.state_dict())
    del sd["fc.weight"], sd["count"]
    sd["fc.extra"] = fm.zeros(1)
    with pytest.raises(RuntimeError) as info:
        m.load_state_dict(sd)
    msg = str(info.value)
    assert msg.startswith("Error(s) in loading state_dict for Net:")
    assert 'Missing key(s) in state_dict: "count", "fc.weight".' in msg
    assert 'Unexpected key(s) in state_dict: "fc.extra".' in msg


def test_load_state_dict_shape_mismatch_names_key_and_both_shapes():
    m = Net()
    sd = dict(m.state_dict())
    sd["block.0.bias"] = fm.zeros(4)
    expected = (
        "size mismatch for block.0.bias: copying a param with shape torch.Size([4]) from "
        "checkpoint, the shape in current model is torch.Size([3])."
    )
    with pytest.raises(RuntimeError, match=re.escape(expected)):
        m.load_state_dict(sd)
    with pytest.raises(RuntimeError, match=re.escape(expected)):  # even when not strict
        m.load_state_dict(sd, strict=False)
    before = m.block[0].weight.detach().numpy().copy()
    sd["block.0.weight"] = fm.zeros(3, 6)
    with pytest.raises(RuntimeError):
        m.load_state_dict(sd)
    np.testing.assert_array_equal(m.block[0].weight.detach().numpy(), before)  # nothing loaded


def test_load_state_dict_not_strict_returns_the_keys():
    m = Net()
    sd = {k: v for k, v in m.state_dict().items() if k != "fc.bias"}
    sd["head.weight"] = fm.zeros(2)
    sd["scale"] = fm.full((1,), 4.0)
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert missing == ["fc.bias"] and unexpected == ["head.weight"]
    assert m.scale.item() == 4.0


# ----------------------------------------------------------------------------- memory


def _engine_objects() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) in (Box, Node))


def test_a_thousand_training_steps_leave_no_engine_objects_behind():
    fm.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = fm.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    x = fm.tensor(_x(16, 4))
    y = fm.tensor(np.arange(16) % 3)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(5):
        step()
    before = _engine_objects()
    losses = [step() for _ in range(1000)]
    after = _engine_objects()
    assert after <= before, f"live Box/Node objects grew from {before} to {after}"
    assert losses[-1] < losses[0]
    with fm.no_grad():  # evaluation records nothing either
        model(x)
    assert _engine_objects() <= before


# ----------------------------------------------------------------------------- the bridge


def _mlp(dtype=None):
    fm.manual_seed(3)
    m = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    return m.double() if dtype == "float64" else m


def test_functional_call_gradients_equal_backward_gradients():
    m = _mlp()
    x = _x()
    params = {k: v.detach().numpy() for k, v in m.named_parameters()}
    grads = fn.grad(lambda p: fnp.mean(functional_call(m, p, x) ** 2))(params)
    (m(fm.tensor(x)) ** 2).mean().backward()
    for name, p in m.named_parameters():
        assert grads[name].dtype == np.float32
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-6, atol=1e-7)
    out = functional_call(m, {"0.bias": np.zeros(8, np.float32)}, x)  # partial replacement
    assert not isinstance(out, fm.Tensor) and out.shape == (5, 2)
    assert np.any(m[0].bias.detach().numpy() != 0)  # the module is left unchanged
    with pytest.raises(KeyError, match="neither a parameter nor a buffer"):
        functional_call(m, {"0.nope": np.zeros(1)}, x)


def test_to_functional_works_with_funcnn_grad_and_optim():
    m = _mlp()
    x = _x()
    apply_fn, params = m.to_functional()
    assert sorted(params) == ["0", "2"] and params["0"]["weight"].shape == (8, 4)

    def loss(p):
        return fnp.mean(apply_fn(p, x) ** 2)

    grads = fn.grad(loss)(params)
    (m(fm.tensor(x)) ** 2).mean().backward()
    np.testing.assert_allclose(grads["2"]["weight"], m[2].weight.grad.numpy(), rtol=1e-6)
    opt = fn.optim.sgd(0.1)
    state = opt.init(params)
    first = float(loss(params))
    for _ in range(20):
        updates, state = opt.update(fn.grad(loss)(params), state, params)
        params = fn.optim.apply_updates(params, updates)
    assert float(loss(params)) < first


def test_check_grads_passes_on_a_module_in_float64():
    m = _mlp("float64")
    apply_fn, params = m.to_functional()
    x = _x(dtype=np.float64)
    fn.testing.check_grads(lambda p: fnp.sum(apply_fn(p, x) ** 2), (params,), order=1)
    fn.testing.check_grads(lambda p, x: fnp.sum(apply_fn(p, x) ** 2), (params, x), order=1)


def test_check_grads_catches_a_wrong_module_gradient():
    """The check above can fail: a module whose forward cuts its gradient is caught."""
    m = _mlp("float64")

    class Cut(nn.Module):
        def forward(self, x):
            return x.detach() + x * 0.0 + x.detach() ** 2 - x.detach() ** 2

    bad = nn.Sequential(m, Cut())
    apply_fn, params = bad.to_functional()
    x = _x(dtype=np.float64)
    with pytest.raises(AssertionError):
        fn.testing.check_grads(lambda p: fnp.sum(apply_fn(p, x) ** 2), (params,))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning")
def test_detect_anomaly_names_the_op_that_made_nan():
    w = fm.tensor([1.0, -1.0], requires_grad=True)
    with detect_anomaly():
        with pytest.raises(FloatingPointError, match="primitive 'log'") as info:
            w.log().sum()
    assert "test_module_api.py" in str(info.value)  # the user's line that recorded it
    z = fm.tensor([0.0, 4.0], requires_grad=True)
    with detect_anomaly():
        loss = z.sqrt().sum()  # finite forward; infinite gradient at 0
        with pytest.raises(FloatingPointError, match="gradient of primitive 'sqrt'"):
            loss.backward()
    (w.log()).sum()  # outside the block, nothing is checked


def test_module_dtype_casts_on_the_strict_backend():
    """to(dtype) compares dtypes across backends without NumPy's comparison warning."""
    prev = fn.backend.get_default()
    fn.backend.set_default("strict")
    try:
        m = nn.Linear(3, 2)
        assert m.double().weight.dtype == fm.float64
        assert m.float().bias.dtype == fm.float32
        assert "array_api_strict" in type(m.weight.detach()._value).__module__
    finally:
        fn.backend.set_default(prev)
