"""IterableDataset loading and grad_fn graphs against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.utils.data as tdata  # noqa: E402

import funcnn_modules as fm  # noqa: E402
from funcnn_modules.utils import data as fdata  # noqa: E402

pytestmark = pytest.mark.parity


def _stream_class(base):
    class Stream(base):
        def __init__(self, n: int, sized: bool = False) -> None:
            self.n = n

        def __iter__(self):
            for i in range(self.n):
                yield {"x": np.full((2,), i, dtype=np.float32), "y": i, "name": f"s{i}"}

    return Stream


TorchStream, OurStream = _stream_class(tdata.IterableDataset), _stream_class(fdata.IterableDataset)


def _plain(batch):
    """A batch as nested Python lists, whatever made it."""
    if isinstance(batch, dict):
        return {k: _plain(v) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return [_plain(v) for v in batch]
    if hasattr(batch, "tolist"):
        return batch.tolist()
    return batch


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 1},
        {"batch_size": 3},
        {"batch_size": 3, "drop_last": True},
        {"batch_size": 8},
        {"batch_size": 8, "drop_last": True},
        {"batch_size": None},
        {"batch_size": 2, "collate_fn": lambda b: [e["y"] for e in b]},
    ],
)
def test_batches_of_a_stream_match_torch(kwargs):
    ours = [_plain(b) for b in fdata.DataLoader(OurStream(7), **kwargs)]
    theirs = [_plain(b) for b in tdata.DataLoader(TorchStream(7), **kwargs)]
    assert ours == theirs


def test_chain_dataset_matches_torch():
    ours = OurStream(2) + OurStream(3)
    theirs = TorchStream(2) + TorchStream(3)
    assert type(ours).__name__ == type(theirs).__name__ == "ChainDataset"
    assert [_plain(e) for e in ours] == [_plain(e) for e in theirs]
    batches = [_plain(b) for b in fdata.DataLoader(ours, batch_size=2)]
    assert batches == [_plain(b) for b in tdata.DataLoader(theirs, batch_size=2)]


@pytest.mark.parametrize(
    "kwargs", [{"shuffle": True}, {"sampler": [0, 1]}, {"batch_sampler": [[0, 1]]}]
)
def test_stream_option_errors_match_torch(kwargs):
    with pytest.raises(ValueError) as theirs:
        tdata.DataLoader(TorchStream(3), **kwargs)
    with pytest.raises(ValueError) as ours:
        fdata.DataLoader(OurStream(3), **kwargs)
    assert str(ours.value) == str(theirs.value)


def test_len_of_a_stream_loader_matches_torch():
    for module, stream in ((tdata, TorchStream), (fdata, OurStream)):
        with pytest.raises(TypeError, match="has no len"):
            len(module.DataLoader(stream(5), batch_size=2))

    def sized(base):
        class Sized(base):
            def __iter__(self):
                return iter(range(7))

            def __len__(self):
                return 7

        return Sized()

    for kwargs in ({"batch_size": 3}, {"batch_size": 3, "drop_last": True}, {"batch_size": None}):
        assert len(fdata.DataLoader(sized(fdata.IterableDataset), **kwargs)) == len(
            tdata.DataLoader(sized(tdata.IterableDataset), **kwargs)
        )


# ----------------------------------------------------------------------------- grad_fn


def _structure(fn):
    """(name, [(child structure or None, output_nr), ...]) of the whole graph below ``fn``."""
    if fn is None:
        return None
    return (fn.name(), [(_structure(f), i) for f, i in fn.next_functions])


def _both(build, *arrays, grad=None):
    """``build`` run on torch tensors and on ours made from the same arrays."""
    grad = grad if grad is not None else [True] * len(arrays)
    t_args = [torch.tensor(a, requires_grad=g) for a, g in zip(arrays, grad)]
    f_args = [fm.tensor(a, requires_grad=g) for a, g in zip(arrays, grad)]
    return build(torch, t_args), build(fm, f_args)


def test_old_autograd_tutorial_graph_matches_torch():
    def build(lib, args):
        (x,) = args
        y = x + 2
        z = y * y * 3
        return y, z, z.mean()

    theirs, ours = _both(build, np.ones((2, 2), dtype=np.float32))
    for t, f in zip(theirs, ours):
        assert _structure(f.grad_fn) == _structure(t.grad_fn)
        assert repr(f).split("grad_fn=")[1] == repr(t).split("grad_fn=")[1]
    theirs[-1].backward()
    ours[-1].backward()
    assert _structure(ours[-1].grad_fn) == _structure(theirs[-1].grad_fn)


def test_blitz_tutorial_graph_matches_torch():
    def build(lib, args):
        a, b = args
        return 3 * a**3 - b**2

    theirs, ours = _both(build, np.array([2.0, 3.0]), np.array([6.0, 4.0]))
    assert _structure(ours.grad_fn) == _structure(theirs.grad_fn)
    assert _structure(ours.grad_fn)[0] == "SubBackward0"


def test_small_network_graph_matches_torch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    w1 = rng.standard_normal((3, 5)).astype(np.float32)
    w2 = rng.standard_normal((5, 2)).astype(np.float32)

    def build(lib, args):
        x, w1, w2 = args
        h = (x @ w1).tanh()
        logits = h.relu() @ w2
        return (logits.sigmoid() * 2 - 1).exp().log().sum(1).mean()

    theirs, ours = _both(build, x, w1, w2, grad=[False, True, True])
    assert _structure(ours.grad_fn) == _structure(theirs.grad_fn)


@pytest.mark.parametrize(
    "expr",
    [
        lambda a, b: a * b,
        lambda a, b: b * a,
        lambda a, b: a * 2,
        lambda a, b: 2 * a,
        lambda a, b: a + 1,
        lambda a, b: 1 + a,
        lambda a, b: a - b,
        lambda a, b: a / b,
        lambda a, b: a / 2,
        lambda a, b: a**2,
        lambda a, b: -a,
        lambda a, b: a.sum(0),
        lambda a, b: a.mean(1),
        lambda a, b: a.view(6),
        lambda a, b: a.reshape(3, 2),
        lambda a, b: a.t(),
        lambda a, b: a[0],
        lambda a, b: a[:, 1:],
        lambda a, b: a[:, None],
        lambda a, b: a.unsqueeze(0),
        lambda a, b: a.softmax(1),
        lambda a, b: a.log_softmax(1),
        lambda a, b: a.clamp(-0.5, 0.5),
        lambda a, b: a.sqrt().abs().sin().cos(),
        lambda a, b: a.amax(1),
        lambda a, b: a.max(),
        lambda a, b: a.prod(),
        lambda a, b: a[0] @ b[0],
        lambda a, b: a @ b.t(),
        lambda a, b: a @ b[0],
    ],
)
def test_op_names_and_next_functions_match_torch(expr):
    rng = np.random.default_rng(1)
    a = rng.random((2, 3)).astype(np.float32)
    b = rng.random((2, 3)).astype(np.float32)
    theirs, ours = _both(lambda lib, args: expr(*args), a, b, grad=[True, False])
    assert _structure(ours.grad_fn) == _structure(theirs.grad_fn)
    theirs2, ours2 = _both(lambda lib, args: expr(*args), a, b, grad=[True, True])
    assert _structure(ours2.grad_fn) == _structure(theirs2.grad_fn)


@pytest.mark.parametrize(
    "expr",
    [
        lambda a: a.unsqueeze(1),
        lambda a: a.unsqueeze(-1),
        lambda a: a.unsqueeze(0).squeeze(0),
        lambda a: a.unsqueeze(0).unsqueeze(2).squeeze(),
        lambda a: a.unsqueeze(0).unsqueeze(2).squeeze(2),
        lambda a: a.view(3, 2),
        lambda a: a.flatten(),
        lambda a: a.transpose(0, 1),
        lambda a: a.t().t(),
        lambda a: a.permute(1, 0),
    ],
)
def test_shape_op_names_match_torch(expr):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    theirs, ours = _both(lambda lib, args: expr(*args), a)
    if expr(torch.ones(2, 3, requires_grad=True)).grad_fn.name() in (
        "TransposeBackward0",
        "PermuteBackward0",
    ):
        # a 2-D transpose or permute is one primitive here, shown as t()
        assert ours.grad_fn.name() == "TBackward0"
        return
    assert _structure(ours.grad_fn) == _structure(theirs.grad_fn)
