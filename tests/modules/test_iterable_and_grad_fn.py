"""IterableDataset / ChainDataset in funcnn_modules.utils.data, and PyTorch-shaped Tensor.grad_fn."""

from __future__ import annotations

import gc
import re

import numpy as np
import pytest

import funcnn_modules as fm
import funcnn_modules.nn.functional as F
from funcnn_modules import _grad_fn
from funcnn_modules.utils import data

# ----------------------------------------------------------------------------- IterableDataset


class Stream(data.IterableDataset):
    """Examples (float32 value, int label) for i in range(start, stop)."""

    def __init__(self, start: int, stop: int) -> None:
        self.start, self.stop = start, stop

    def __iter__(self):
        for i in range(self.start, self.stop):
            yield np.float32(i), i


class SizedStream(Stream):
    def __len__(self) -> int:
        return self.stop - self.start


def _values(batches):
    return [(b[0].tolist(), b[1].tolist()) for b in batches]


@pytest.mark.parametrize(
    ("batch_size", "drop_last", "expected"),
    [
        (3, False, [[0, 1, 2], [3, 4, 5], [6]]),
        (3, True, [[0, 1, 2], [3, 4, 5]]),
        (7, False, [[0, 1, 2, 3, 4, 5, 6]]),
        (7, True, [[0, 1, 2, 3, 4, 5, 6]]),
        (10, True, []),
        (1, False, [[i] for i in range(7)]),
    ],
)
def test_loader_batches_a_stream_in_order(batch_size, drop_last, expected):
    loader = data.DataLoader(Stream(0, 7), batch_size=batch_size, drop_last=drop_last)
    got = _values(loader)
    assert got == [([float(v) for v in e], e) for e in expected]
    first = next(iter(loader), None)
    if expected:
        assert first[0].dtype == fm.float32 and first[1].dtype == fm.int64
    assert _values(loader) == got  # each epoch restarts the stream


def test_loader_without_batching_converts_each_example():
    loader = data.DataLoader(Stream(0, 3), batch_size=None)
    items = list(loader)
    assert len(items) == 3
    value, label = items[2]
    assert isinstance(value, fm.Tensor) and value.shape == () and value.item() == 2.0
    assert label == 2 and isinstance(label, int)


def test_loader_collate_fn_sees_lists_of_examples():
    seen = []

    def collate(batch):
        seen.append(len(batch))
        return [label for _, label in batch]

    loader = data.DataLoader(Stream(0, 5), batch_size=2, collate_fn=collate)
    assert list(loader) == [[0, 1], [2, 3], [4]]
    assert seen == [2, 2, 1]


def test_loader_over_stream_of_tensors_and_dicts():
    class Dicts(data.IterableDataset):
        def __iter__(self):
            for i in range(4):
                yield {"x": fm.full((2,), float(i)), "y": i}

    (batch,) = list(data.DataLoader(Dicts(), batch_size=4))
    assert batch["x"].shape == (4, 2) and batch["x"][:, 0].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert batch["y"].tolist() == [0, 1, 2, 3]


def test_loader_takes_no_sampler_shuffle_or_batch_sampler_with_a_stream():
    with pytest.raises(
        ValueError,
        match=re.escape(
            "DataLoader with IterableDataset: expected unspecified shuffle option, "
            "but got shuffle=True"
        ),
    ):
        data.DataLoader(Stream(0, 3), shuffle=True)
    with pytest.raises(ValueError, match="expected unspecified sampler option, but got sampler="):
        data.DataLoader(Stream(0, 3), sampler=[0, 1])
    with pytest.raises(
        ValueError, match="expected unspecified batch_sampler option, but got batch_sampler="
    ):
        data.DataLoader(Stream(0, 3), batch_sampler=[[0, 1]])
    # shuffle=False is accepted (it was PyTorch's old default)
    assert len(list(data.DataLoader(Stream(0, 3), shuffle=False))) == 3


def test_len_of_a_loader_over_a_stream():
    with pytest.raises(TypeError, match="has no len"):
        len(data.DataLoader(Stream(0, 7), batch_size=3))
    assert len(data.DataLoader(SizedStream(0, 7), batch_size=3)) == 3
    assert len(data.DataLoader(SizedStream(0, 7), batch_size=3, drop_last=True)) == 2
    assert len(data.DataLoader(SizedStream(0, 7), batch_size=None)) == 7


def test_a_stream_longer_than_its_len_warns_once_len_was_asked():
    class Liar(Stream):
        def __len__(self):
            return 2

    loader = data.DataLoader(Liar(0, 4), batch_size=None)
    assert sum(1 for _ in loader) == 4  # len() not asked: no warning (list() would ask it)
    assert len(loader) == 2
    with pytest.warns(UserWarning, match="was reported to be 2"):
        assert len(list(loader)) == 4


def test_num_workers_is_accepted_with_a_stream():
    loader = data.DataLoader(Stream(0, 5), batch_size=2, num_workers=2)
    assert _values(loader)[-1] == ([4.0], [4])
    assert data.get_worker_info() is None


def test_add_chains_streams_and_chain_dataset():
    chained = Stream(0, 2) + Stream(5, 7)
    assert isinstance(chained, data.ChainDataset)
    assert [label for _, label in chained] == [0, 1, 5, 6]
    three = data.ChainDataset([Stream(0, 1), Stream(1, 2), Stream(2, 4)])
    assert [label for _, label in three] == [0, 1, 2, 3]
    assert len(data.ChainDataset([SizedStream(0, 2), SizedStream(0, 3)])) == 5
    with pytest.raises(TypeError):
        len(chained)  # a part without __len__
    assert _values(data.DataLoader(chained, batch_size=3)) == [
        ([0.0, 1.0, 5.0], [0, 1, 5]),
        ([6.0], [6]),
    ]


def test_chain_and_concat_reject_the_wrong_kind():
    tensors = data.TensorDataset(fm.arange(3))
    with pytest.raises(AssertionError, match="ChainDataset only supports IterableDataset"):
        list(data.ChainDataset([Stream(0, 1), tensors]))
    with pytest.raises(AssertionError, match="ChainDataset only supports IterableDataset"):
        len(data.ChainDataset([tensors]))
    with pytest.raises(AssertionError, match="ConcatDataset does not support IterableDataset"):
        tensors + Stream(0, 1)
    with pytest.raises(NotImplementedError):
        iter(data.IterableDataset())


def test_map_style_loaders_are_unchanged():
    ds = data.TensorDataset(fm.arange(5))
    assert [b[0].tolist() for b in data.DataLoader(ds, batch_size=2)] == [[0, 1], [2, 3], [4]]
    assert len(data.DataLoader(ds, batch_size=2)) == 3
    with pytest.raises(TypeError, match="map-style data set"):
        data.DataLoader(iter([1, 2]))


# ----------------------------------------------------------------------------- grad_fn


def _structure(fn, depth=6):
    """(name, [(child structure or None, output_nr), ...]) down to ``depth``."""
    if fn is None:
        return None
    kids = [] if depth == 0 else [(_structure(f, depth - 1), i) for f, i in fn.next_functions]
    return (fn.name(), kids)


ACC = ("torch::autograd::AccumulateGrad", [])


def test_tutorial_graph_names_and_next_functions():
    x = fm.ones(2, 2, requires_grad=True)
    y = x + 2
    z = y * y * 3
    out = z.mean()
    add = ("AddBackward0", [(ACC, 0), (None, 0)])
    inner = ("MulBackward0", [(add, 0), (add, 0)])
    assert _structure(out.grad_fn) == (
        "MeanBackward0",
        [(("MulBackward0", [(inner, 0), (None, 0)]), 0)],
    )
    assert repr(out).endswith("grad_fn=<MeanBackward0>)")
    assert "grad_fn=<AddBackward0>" in repr(y) and "grad_fn=<MulBackward0>" in repr(z)
    assert type(out.grad_fn).__name__ == "MeanBackward0"
    assert re.fullmatch(r"<MeanBackward0 object at 0x[0-9a-f]+>", repr(out.grad_fn))
    acc = y.grad_fn.next_functions[0][0]
    assert isinstance(acc, _grad_fn.AccumulateGrad) and acc.next_functions == ()
    assert re.fullmatch(r"<AccumulateGrad object at 0x[0-9a-f]+>", repr(acc))
    # names and structure survive backward(), which frees the saved arguments
    out.backward()
    assert x.grad.tolist() == [[4.5, 4.5], [4.5, 4.5]]
    assert _structure(out.grad_fn)[0] == "MeanBackward0"
    assert repr(out).endswith("grad_fn=<MeanBackward0>)")


def test_leaves_and_constants_have_no_grad_fn():
    a = fm.ones(2)
    b = fm.ones(2, requires_grad=True)
    assert a.grad_fn is None and b.grad_fn is None and (a * 2).grad_fn is None
    assert b.is_leaf and not (b * 2).is_leaf
    with fm.no_grad():
        assert (b * 2).grad_fn is None
    assert (b * 2).detach().grad_fn is None


@pytest.mark.parametrize(
    ("make", "name", "arity"),
    [
        (lambda a, m: a + 1, "AddBackward0", 2),
        (lambda a, m: a - a, "SubBackward0", 2),
        (lambda a, m: a * 2, "MulBackward0", 2),
        (lambda a, m: a / 2, "DivBackward0", 2),
        (lambda a, m: a**2, "PowBackward0", 1),
        (lambda a, m: a**a, "PowBackward1", 2),
        (lambda a, m: -a, "NegBackward0", 1),
        (lambda a, m: a.exp(), "ExpBackward0", 1),
        (lambda a, m: a.log(), "LogBackward0", 1),
        (lambda a, m: a.tanh(), "TanhBackward0", 1),
        (lambda a, m: a.sigmoid(), "SigmoidBackward0", 1),
        (lambda a, m: a.relu(), "ReluBackward0", 1),
        (lambda a, m: a.sum(), "SumBackward0", 1),
        (lambda a, m: a.sum(0), "SumBackward1", 1),
        (lambda a, m: a.mean(), "MeanBackward0", 1),
        (lambda a, m: a.mean(1), "MeanBackward1", 1),
        (lambda a, m: a @ m, "MmBackward0", 2),
        (lambda a, m: a.view(6), "ViewBackward0", 1),
        (lambda a, m: a.reshape(3, 2), "ViewBackward0", 1),
        (lambda a, m: a.t(), "TBackward0", 1),
        (lambda a, m: a[0], "SelectBackward0", 1),
        (lambda a, m: a[:, 1:], "SliceBackward0", 1),
        (lambda a, m: a[None], "UnsqueezeBackward0", 1),
        (lambda a, m: a.log_softmax(1), "LogSoftmaxBackward0", 1),
        (lambda a, m: a.softmax(1), "SoftmaxBackward0", 1),
        (lambda a, m: F.gelu(a), "GeluBackward0", 1),
        (lambda a, m: fm.cat([a, a]), "CatBackward0", 2),
        (lambda a, m: a.clamp(0, 1), "ClampBackward1", 1),
    ],
)
def test_names_and_arity_of_common_ops(make, name, arity):
    a = fm.rand(2, 3, requires_grad=True)
    m = fm.rand(3, 4, requires_grad=True)
    fn = make(a, m).grad_fn
    assert fn.name() == name and type(fn).__name__ == name
    assert len(fn.next_functions) == arity
    assert all(isinstance(i, int) for _, i in fn.next_functions)


def test_unknown_primitives_fall_back_to_camel_case():
    a = fm.rand(4, requires_grad=True)
    assert a.std().grad_fn.name() == "StdSqrtBackward0"
    assert _grad_fn._camel("_some_prim") == "SomePrimBackward0"


def test_next_functions_order_and_constants():
    a = fm.rand(3, requires_grad=True)
    b = fm.rand(3)
    for expr in (a * b, a * 2, 2 * a, 1 + a):
        ((first, _), (second, _)) = expr.grad_fn.next_functions
        assert isinstance(first, _grad_fn.AccumulateGrad) and second is None
    ((first, _), (second, _)) = (b * a).grad_fn.next_functions
    assert first is None and isinstance(second, _grad_fn.AccumulateGrad)


def test_identity_equality_and_hash():
    a = fm.rand(3, requires_grad=True)
    y = a * 2
    z = y + y
    f1 = y.grad_fn
    assert y.grad_fn is f1 and y.grad_fn == f1 and hash(y.grad_fn) == hash(f1)
    (p0, _), (p1, _) = z.grad_fn.next_functions
    assert p0 is f1 and p1 is f1
    assert z.grad_fn != f1 and len({f1, y.grad_fn, z.grad_fn}) == 2
    # the same leaf gives the same AccumulateGrad from two consumers
    w = a.exp()
    assert w.grad_fn.next_functions[0][0] == f1.next_functions[0][0]
    # views made at different times are equal even when the first one is gone
    del f1, p0, p1
    gc.collect()
    assert y.grad_fn == z.grad_fn.next_functions[0][0]


def test_grad_fn_is_read_only():
    fn = (fm.rand(2, requires_grad=True) * 2).grad_fn
    with pytest.raises(AttributeError, match="read-only"):
        fn.name = "x"
    with pytest.raises(AttributeError, match="read-only"):
        del fn._node
    assert fn.name() == "MulBackward0"


def test_multiple_result_primitive_shows_one_node_with_output_numbers():
    a = fm.rand(3, requires_grad=True)
    g = F.gelu(a)
    y = g * 2
    (fn, nr), _ = y.grad_fn.next_functions
    assert fn.name() == "GeluBackward0" and nr == 0 and fn == g.grad_fn


def test_backward_and_autograd_grad_still_work():
    a = fm.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (a * a).sum()
    assert y.grad_fn.name() == "SumBackward0"
    (ga,) = fm.autograd.grad(y, [a], retain_graph=True)
    assert ga.tolist() == [2.0, 4.0, 6.0]
    y.backward()
    assert a.grad.tolist() == [2.0, 4.0, 6.0]
    assert y.grad_fn.next_functions[0][0].name() == "MulBackward0"
