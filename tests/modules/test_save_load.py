"""funcnn_modules.save / load: round trips of training state, and refusals."""

from __future__ import annotations

import io

import numpy as np
import pytest

import funcnn as fn
import funcnn_modules as torch
import funcnn_modules.nn as nn
import funcnn_modules.optim as optim


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
