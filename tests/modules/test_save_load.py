"""funcnn_modules.save / load: round trips of training state, and refusals."""

from __future__ import annotations

import io
import os
import pickle
import struct
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funcnn as fn
import funcnn_modules as torch
import funcnn_modules.nn as nn
import funcnn_modules.optim as optim
from funcnn import _serialization as ser


def _trained():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    x = torch.randn(8, 4)
    for _ in range(3):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
    return model, opt, x


def test_model_and_optimizer_round_trip(tmp_path):
    model, opt, x = _trained()
    path = tmp_path / "ckpt.safetensors"
    torch.save(
        {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3, "note": "hi"},
        path,
    )
    saved = torch.load(path)
    assert saved["epoch"] == 3 and saved["note"] == "hi"
    assert list(saved["model"]) == list(model.state_dict())

    torch.manual_seed(1)
    model2 = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
    opt2 = optim.Adam(model2.parameters(), lr=1e-2)
    model2.load_state_dict(saved["model"])
    opt2.load_state_dict(saved["optimizer"])
    for (k, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        assert isinstance(b, torch.Tensor), k
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    # the restored optimiser continues exactly as the original
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        m(x).pow(2).mean().backward()
        o.step()
    for a, b in zip(model.parameters(), model2.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_tensor_kinds_and_dtypes_survive(tmp_path):
    path = tmp_path / "t.safetensors"
    w = torch.ones(2, 3, requires_grad=True)
    obj = [w, torch.arange(4), np.arange(3.0), (1.5, None, True)]
    torch.save(obj, path)
    back = torch.load(path)
    assert isinstance(back, list) and isinstance(back[3], tuple)
    assert isinstance(back[0], torch.Tensor) and back[0].requires_grad
    assert back[0].dtype == torch.float32
    assert isinstance(back[1], torch.Tensor) and not back[1].requires_grad
    assert back[1].dtype == torch.int64
    assert type(back[2]) is np.ndarray and back[2].dtype == np.float64
    assert back[3] == (1.5, None, True)


def test_a_plain_safetensors_file_loads_as_tensors(tmp_path):
    path = tmp_path / "flat.safetensors"
    fn.save_file(path, {"a.weight": np.ones((2, 2), np.float32)})
    back = torch.load(path)
    assert set(back) == {"a.weight"} and isinstance(back["a.weight"], torch.Tensor)


def test_file_objects_and_pickle_options_are_refused(tmp_path):
    with pytest.raises(TypeError, match="save: expected a file path"):
        torch.save({}, io.BytesIO())
    with pytest.raises(TypeError, match="load: expected a file path"):
        torch.load(io.BytesIO())
    with pytest.raises(TypeError, match="save: unsupported options"):
        torch.save({}, tmp_path / "x", pickle_protocol=2)


def test_unsaveable_objects_are_named(tmp_path):
    with pytest.raises(TypeError, match="cannot save a set"):
        torch.save({"a": {1, 2}}, tmp_path / "x")


def test_a_pickle_is_never_unpickled(tmp_path):
    real_torch = pytest.importorskip("torch")
    path = tmp_path / "pickled.pt"
    real_torch.save({"w": real_torch.ones(2)}, path)
    with pytest.raises(fn.CheckpointError):
        torch.load(path)


# ----------------------------------------------------------------------------- resuming training

# (optimizer, its kwargs for group 0, overrides for group 1, scheduler)
RESUMABLE = {
    "SGD": (
        optim.SGD,
        {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 1e-2},
        {"lr": 0.02, "nesterov": True, "dampening": 0.0},
        lambda o: optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5),
    ),
    "Adam": (
        optim.Adam,
        {"lr": 0.01, "amsgrad": True, "weight_decay": 1e-3},
        {"betas": (0.8, 0.99)},
        lambda o: optim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=8),
    ),
    "AdamW": (
        optim.AdamW,
        {"lr": 0.01},
        {"weight_decay": 0.3},
        lambda o: optim.lr_scheduler.CosineAnnealingLR(o, T_max=5),
    ),
    "RMSprop": (
        optim.RMSprop,
        {"lr": 0.01, "centered": True, "momentum": 0.5},
        {"momentum": 0.0, "alpha": 0.9},
        lambda o: optim.lr_scheduler.ExponentialLR(o, gamma=0.9),
    ),
    "Adagrad": (
        optim.Adagrad,
        {"lr": 0.1, "lr_decay": 0.01},
        {"initial_accumulator_value": 0.1},
        lambda o: optim.lr_scheduler.MultiStepLR(o, milestones=[2, 5]),
    ),
}


def _setup(name):
    cls, kw0, kw1, make_sched = RESUMABLE[name]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2))
    first, second = list(model[0].parameters()), list(model[2].parameters())
    opt = cls([{"params": first}, {"params": second, **kw1}], **kw0)
    return model, opt, make_sched(opt)


def _train(model, opt, sched, steps):
    for step in steps:
        x = torch.tensor(np.random.default_rng(step).normal(size=(6, 4)).astype(np.float32))
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
        sched.step()


@pytest.mark.parametrize("name", sorted(RESUMABLE))
def test_training_resumed_from_a_file_is_identical_to_never_stopping(tmp_path, name):
    unbroken = _setup(name)
    _train(*unbroken, range(8))

    model, opt, sched = _setup(name)
    _train(model, opt, sched, range(3))
    path = tmp_path / "ckpt.safetensors"
    state = {"model": model.state_dict(), "optimizer": opt.state_dict()}
    torch.save({**state, "scheduler": sched.state_dict(), "step": 3}, path)
    del model, opt, sched

    torch.manual_seed(123)  # other initial weights: everything must come from the file
    model, opt, sched = _setup(name)
    saved = torch.load(path)
    model.load_state_dict(saved["model"])
    opt.load_state_dict(saved["optimizer"])
    sched.load_state_dict(saved["scheduler"])
    _train(model, opt, sched, range(saved["step"], 8))

    for (k, a), b in zip(unbroken[0].state_dict().items(), model.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)  # bit for bit
    assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in unbroken[1].param_groups]
    theirs = unbroken[1].state_dict()["state"]
    for i, entry in opt.state_dict()["state"].items():
        assert list(entry) == list(theirs[i])
        for k, v in entry.items():
            np.testing.assert_array_equal(v.numpy(), theirs[i][k].numpy(), err_msg=f"{i}.{k}")


# ----------------------------------------------------------------------------- tensors


def test_tensors_round_trip_bit_exact(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "f16": np.array([0.0, -0.0, np.inf, -np.nan, 6.1e-5, 65504.0, 1.5], np.float16),
        "f32": rng.normal(size=(3, 4)).astype(np.float32),
        "f64": np.array([[np.nextafter(1.0, 2.0), -np.inf], [5e-324, np.nan]]),
        "i64": np.array([np.iinfo(np.int64).min, -1, 0, np.iinfo(np.int64).max]),
        "scalar32": np.array(2.5, np.float32),
        "scalar64": np.array(-7, np.int64),
        "empty32": np.zeros((0, 3), np.float32),
        "empty64": np.zeros((2, 0, 1), np.int64),
    }
    tensors = {k: torch.tensor(v) for k, v in arrays.items()}
    path = tmp_path / "t.safetensors"
    torch.save(tensors, path)
    back = torch.load(path)
    assert list(back) == list(arrays)
    for k, a in arrays.items():
        t = back[k]
        assert isinstance(t, torch.Tensor), k
        got = t.numpy()
        assert got.dtype == a.dtype and got.shape == a.shape, k
        assert got.tobytes() == a.tobytes(), k  # NaN payloads, -0.0 and subnormals included
        assert tuple(t.shape) == a.shape and t.dim() == a.ndim


def test_the_safetensors_package_reads_what_save_writes(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    model, opt, _ = _trained()
    path = tmp_path / "ckpt.safetensors"
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, path)
    theirs = safetensors_numpy.load_file(str(path))
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(theirs[f"model.{k}"], v.numpy(), err_msg=k)
    for i, entry in opt.state_dict()["state"].items():
        for k, v in entry.items():
            np.testing.assert_array_equal(theirs[f"optimizer.state.{i}.{k}"], v.numpy())


# ----------------------------------------------------------------------------- bad files


def _header_file(header: bytes, data: bytes = b"", length: int | None = None) -> bytes:
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header) if length is None else length) + header + data


_F32 = b'{"dtype":"F32","shape":[2],"data_offsets":[%d,%d]}'

BAD_FILES = {
    "huge header": (struct.pack("<Q", 2**62) + b"{}", "more than the limit"),
    "truncated header": (_header_file(b"{}", length=64), "truncated"),
    "truncated data": (_header_file(b'{"a":' + _F32 % (0, 8) + b"}", b"\0" * 5), "truncated"),
    "overlapping offsets": (
        _header_file(b'{"a":' + _F32 % (0, 8) + b',"b":' + _F32 % (4, 12) + b"}", b"\0" * 12),
        "overlaps",
    ),
    "duplicate keys": (
        _header_file(b'{"a":' + _F32 % (0, 8) + b',"a":' + _F32 % (0, 8) + b"}", b"\0" * 8),
        "the key 'a' twice",
    ),
    "pickle": (pickle.dumps({"w": [1.0, 2.0]}, protocol=4), "never unpickles"),
    "bad tree structure": (
        _header_file(
            b'{"__metadata__":{"funcnn.tree":"{\\"version\\":1,\\"tree\\":[\\"set\\",1]}"}}'
        ),
        "malformed tree structure",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_load_rejects_bad_files_with_a_checkpoint_error(tmp_path, name):
    data, match = BAD_FILES[name]
    path = tmp_path / "bad.safetensors"
    path.write_bytes(data)
    with pytest.raises(fn.CheckpointError, match=match) as info:
        torch.load(path)
    assert str(info.value).startswith("load: ") and str(path) in str(info.value)


@pytest.mark.parametrize(
    "kinds, match",
    [
        ({"n": "tensor"}, r"names tensors the file does not hold as arrays: \['n'\]"),
        ({"gone": "tensor"}, r"\['gone'\]"),
        ({"i": "tensor_grad"}, r"the int64 tensor 'i' is marked as requiring grad"),
        ({"w": "module"}, r"must map tensor names to one of"),
        (["w"], r"must map tensor names to one of"),
    ],
)
def test_inconsistent_tensor_metadata_is_a_checkpoint_error(tmp_path, kinds, match):
    path = tmp_path / "odd.safetensors"
    tree = {"n": 3, "w": np.ones(2, np.float32), "i": np.arange(2)}
    fn.save_tree(path, tree, metadata={"funcnn_modules": kinds})
    with pytest.raises(fn.CheckpointError, match=r"^load: .* has malformed metadata: .*" + match):
        torch.load(path)


def test_a_file_from_save_tree_loads_every_array_as_a_tensor(tmp_path):
    path = tmp_path / "tree.safetensors"
    fn.save_tree(path, {"layers": [{"w": np.ones(2)}, (np.arange(3), 4)], "lr": 0.1})
    back = torch.load(path)
    assert isinstance(back["layers"][0]["w"], torch.Tensor)
    assert isinstance(back["layers"][1][0], torch.Tensor) and back["layers"][1][1] == 4
    assert back["lr"] == 0.1


def test_an_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model, opt, _ = _trained()
    path = tmp_path / "ckpt.safetensors"
    torch.save({"model": model.state_dict(), "epoch": 1}, path)
    real = ser._write_array

    def write_half_then_die(f, arr):
        real(f, arr.reshape(-1)[: arr.size // 2])
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of writing the data

    monkeypatch.setattr(ser, "_write_array", write_half_then_die)
    with pytest.raises(KeyboardInterrupt):
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 2}, path)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["ckpt.safetensors"]  # no temporary file left
    saved = torch.load(path)
    assert saved["epoch"] == 1 and "optimizer" not in saved
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(saved["model"][k].numpy(), v.numpy())


def _valid_checkpoint() -> bytes:
    w = nn.Parameter(torch.tensor(np.arange(6, dtype=np.float32).reshape(2, 3)))
    obj = {"model": {"w": w, "steps": torch.arange(2)}, "epoch": 3, "lr": [0.1, 1e-3]}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "c.safetensors")
        torch.save(obj, path)
        with open(path, "rb") as f:
            return f.read()


VALID_CHECKPOINT = _valid_checkpoint()


@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(VALID_CHECKPOINT) - 1), st.integers(0, 255)), max_size=4
    ),
    cut=st.one_of(st.none(), st.integers(0, len(VALID_CHECKPOINT))),
)
@settings(max_examples=150, deadline=None)
def test_fuzz_load_raises_only_checkpoint_errors(edits, cut):
    data = bytearray(VALID_CHECKPOINT)
    for pos, byte in edits:
        data[pos] = byte
    data = bytes(data[:cut])
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "f.safetensors")
        with open(path, "wb") as f:
            f.write(data)
        try:
            torch.load(path)  # a harmless edit (a byte of tensor data) still loads
        except fn.CheckpointError as e:  # anything else (KeyError, RuntimeError...) fails
            assert str(e).startswith("load: ")
