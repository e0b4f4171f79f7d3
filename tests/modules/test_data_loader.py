"""funcnn_modules.utils.data: datasets, samplers, collation and the DataLoader."""

from __future__ import annotations

import collections

import numpy as np
import pytest

import funcnn as fn
import funcnn_modules as fm
from funcnn_modules.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
)


def _xy(n=10):
    x = fm.tensor(np.arange(n * 3, dtype=np.float32).reshape(n, 3))
    y = fm.tensor(np.arange(n, dtype=np.int64))
    return x, y


def _labels(loader):
    return [b[1].tolist() for b in loader]


# ----------------------------------------------------------------------------- datasets


def test_tensor_dataset_indexes_every_tensor():
    x, y = _xy(4)
    ds = TensorDataset(x, y)
    assert len(ds) == 4
    xi, yi = ds[2]
    assert xi.tolist() == [6.0, 7.0, 8.0] and yi.item() == 2


def test_tensor_dataset_names_the_mismatched_sizes():
    with pytest.raises(
        ValueError, match=r"got sizes \[5, 4\] \(tensor 0: \(5, 2\), tensor 1: \(4,\)\)"
    ):
        TensorDataset(fm.zeros(5, 2), fm.zeros(4))


def test_tensor_dataset_needs_a_first_dimension_and_a_tensor():
    with pytest.raises(ValueError, match="tensor 1 has shape \\(\\); every tensor needs a first"):
        TensorDataset(fm.zeros(3), fm.tensor(1.0))
    with pytest.raises(ValueError, match="at least one tensor"):
        TensorDataset()


def test_dataset_base_class_must_be_subclassed():
    with pytest.raises(NotImplementedError, match="should implement __getitem__"):
        Dataset()[0]


def test_subset_and_random_split():
    x, y = _xy(10)
    ds = TensorDataset(x, y)
    sub = Subset(ds, [4, 1])
    assert len(sub) == 2 and sub[0][1].item() == 4
    a, b = random_split(ds, [7, 3], generator=0)
    idx = sorted([a[i][1].item() for i in range(len(a))] + [b[i][1].item() for i in range(len(b))])
    assert idx == list(range(10))
    c, d = random_split(ds, [0.5, 0.5], generator=0)
    assert (len(c), len(d)) == (5, 5)
    assert [a[i][1].item() for i in range(7)] == [
        random_split(ds, [7, 3], generator=0)[0][i][1].item() for i in range(7)
    ]
    with pytest.raises(ValueError, match="does not equal the length of the input dataset"):
        random_split(ds, [4, 4])


# ----------------------------------------------------------------------------- batching


@pytest.mark.parametrize(
    "n, bs, drop_last, expected",
    [(10, 3, False, 4), (10, 3, True, 3), (9, 3, False, 3), (2, 4, True, 0)],
)
def test_number_of_batches_is_len(n, bs, drop_last, expected):
    loader = DataLoader(TensorDataset(*_xy(n)), batch_size=bs, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(batches) == expected
    sizes = [b[0].shape[0] for b in batches]
    if expected:
        assert all(s == bs for s in sizes[:-1])
        assert sizes[-1] == (bs if drop_last else n - bs * (expected - 1))


def test_unshuffled_batches_keep_the_order_dtype_and_pairing():
    loader = DataLoader(TensorDataset(*_xy(7)), batch_size=3)
    assert _labels(loader) == [[0, 1, 2], [3, 4, 5], [6]]
    for xb, yb in loader:
        assert isinstance(xb, fm.Tensor) and xb.dtype == fm.float32 and yb.dtype == fm.int64
        np.testing.assert_array_equal(xb.numpy()[:, 0], 3 * yb.numpy())


def test_the_tensor_dataset_fast_path_equals_example_by_example_collation():
    ds = TensorDataset(*_xy(9))
    fast = DataLoader(ds, batch_size=4)
    slow = DataLoader(ds, batch_size=4, collate_fn=lambda b: default_collate(b))
    for (xf, yf), (xs, ys) in zip(fast, slow):
        np.testing.assert_array_equal(xf.numpy(), xs.numpy())
        np.testing.assert_array_equal(yf.numpy(), ys.numpy())


def test_a_tensor_dataset_of_numpy_arrays_gives_tensors_on_both_paths():
    x = np.arange(18, dtype=np.float64).reshape(9, 2)
    y = np.arange(9, dtype=np.int32)
    ds = TensorDataset(x, y)
    fast = list(DataLoader(ds, batch_size=4, shuffle=True, generator=1))
    slow = list(
        DataLoader(ds, batch_size=4, shuffle=True, generator=1, collate_fn=default_collate_copy)
    )
    assert len(fast) == len(slow) == 3
    for (xf, yf), (xs, ys) in zip(fast, slow):
        for got, want in ((xf, xs), (yf, ys)):
            assert isinstance(got, fm.Tensor) and isinstance(want, fm.Tensor)
            assert got.dtype == want.dtype and got.numpy().dtype == want.numpy().dtype
            np.testing.assert_array_equal(got.numpy(), want.numpy())
        np.testing.assert_array_equal(xf.numpy()[:, 0], 2 * yf.numpy())


def default_collate_copy(batch):
    return default_collate(batch)  # not default_collate itself: the per-example path


def test_shuffle_with_a_seed_is_deterministic_and_a_permutation():
    ds = TensorDataset(*_xy(20))
    a = DataLoader(ds, batch_size=6, shuffle=True, generator=3)
    b = DataLoader(ds, batch_size=6, shuffle=True, generator=3)
    epochs_a = [_labels(a) for _ in range(3)]
    epochs_b = [_labels(b) for _ in range(3)]
    assert epochs_a == epochs_b  # same seed, same epochs
    assert epochs_a[0] != epochs_a[1]  # a new order every epoch
    for epoch in epochs_a:
        assert sorted(sum(epoch, [])) == list(range(20))
    other = DataLoader(ds, batch_size=6, shuffle=True, generator=4)
    assert _labels(other) != epochs_a[0]


def test_shuffle_follows_manual_seed_without_a_generator():
    ds = TensorDataset(*_xy(16))
    fm.manual_seed(11)
    first = _labels(DataLoader(ds, batch_size=4, shuffle=True))
    fm.manual_seed(11)
    again = _labels(DataLoader(ds, batch_size=4, shuffle=True))
    assert first == again and sum(first, []) != list(range(16))


def test_a_funcnn_key_or_a_key_source_as_generator():
    ds = TensorDataset(*_xy(12))
    with_key = _labels(DataLoader(ds, batch_size=5, shuffle=True, generator=fn.random.key(5)))
    with_int = _labels(DataLoader(ds, batch_size=5, shuffle=True, generator=5))
    assert with_key == with_int

    class Source:
        def __init__(self):
            self.calls = 0

        def next_key(self):
            self.calls += 1
            return fn.random.key(self.calls)

    src = Source()
    list(DataLoader(ds, batch_size=5, shuffle=True, generator=src))
    assert src.calls == 1
    with pytest.raises(TypeError, match="generator must be None, an int seed"):
        DataLoader(ds, shuffle=True, generator="seed")


def test_shuffled_drop_last():
    loader = DataLoader(
        TensorDataset(*_xy(10)), batch_size=4, shuffle=True, drop_last=True, generator=0
    )
    assert [len(b) for b in _labels(loader)] == [4, 4]


# ----------------------------------------------------------------------------- collation


class _Pairs(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full(2, i, dtype=np.float32), i


def test_collate_of_tuples_of_arrays_and_ints():
    xb, yb = next(iter(DataLoader(_Pairs(5), batch_size=3)))
    assert isinstance(xb, fm.Tensor) and tuple(xb.shape) == (3, 2) and xb.dtype == fm.float32
    assert yb.tolist() == [0, 1, 2] and yb.dtype == fm.int64


def test_collate_of_dicts_floats_strings_and_namedtuples():
    Point = collections.namedtuple("Point", "x y")
    batch = [{"a": 1.5, "name": "p", "pt": Point(i, fm.tensor([float(i)]))} for i in range(3)]
    out = default_collate(batch)
    assert out["a"].dtype == fm.float64 and out["a"].tolist() == [1.5] * 3
    assert out["name"] == ["p", "p", "p"]
    assert isinstance(out["pt"], Point) and out["pt"].x.tolist() == [0, 1, 2]
    assert tuple(out["pt"].y.shape) == (3, 1)


def test_collate_has_torchs_structure():
    # torch.utils.data.default_collate gives: a list for a tuple of fields, tensors stacked from
    # arrays (keeping their dtype), a dict of lists of columns, int64 for ints, float64 for floats
    samples = [(np.ones(2) * i, {"k": [i, float(i)]}) for i in range(3)]
    out = default_collate(samples)
    assert type(out) is list and len(out) == 2
    assert out[0].dtype == fm.float64 and out[0].tolist() == [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]
    assert type(out[1]) is dict and type(out[1]["k"]) is list
    assert out[1]["k"][0].dtype == fm.int64 and out[1]["k"][0].tolist() == [0, 1, 2]
    assert out[1]["k"][1].dtype == fm.float64 and out[1]["k"][1].tolist() == [0.0, 1.0, 2.0]


def test_collate_errors():
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(
        TypeError, match="batch must contain tensors, numpy arrays, numbers, dicts or lists"
    ):
        default_collate([object(), object()])


def test_custom_collate_fn_and_batch_size_none():
    loader = DataLoader(_Pairs(4), batch_size=2, collate_fn=lambda b: [s[1] for s in b])
    assert list(loader) == [[0, 1], [2, 3]]
    single = list(DataLoader(_Pairs(2), batch_size=None))
    assert len(single) == 2 and isinstance(single[0][0], fm.Tensor) and single[1][1] == 1


# ----------------------------------------------------------------------------- samplers and arguments


def test_samplers():
    assert list(SequentialSampler(range(3))) == [0, 1, 2]
    r = RandomSampler(range(6), generator=1)
    assert sorted(r) == list(range(6)) and len(r) == 6
    assert len(list(RandomSampler(range(3), replacement=True, num_samples=10, generator=0))) == 10
    assert len(list(RandomSampler(range(3), num_samples=7, generator=0))) == 7
    assert list(BatchSampler(range(5), 2, drop_last=False)) == [[0, 1], [2, 3], [4]]
    assert len(BatchSampler(range(5), 2, drop_last=True)) == 2


def test_sampler_and_batch_sampler_arguments():
    ds = TensorDataset(*_xy(6))
    assert _labels(DataLoader(ds, batch_size=2, sampler=[5, 4, 3, 2, 1, 0])) == [
        [5, 4],
        [3, 2],
        [1, 0],
    ]
    assert _labels(DataLoader(ds, batch_sampler=[[0, 5], [1]])) == [[0, 5], [1]]
    with pytest.raises(ValueError, match="sampler option is mutually exclusive with shuffle"):
        DataLoader(ds, sampler=[0], shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        DataLoader(ds, batch_size=3, batch_sampler=[[0]])
    with pytest.raises(ValueError, match="batch_size=None option disables auto-batching"):
        DataLoader(ds, batch_size=None, drop_last=True)
    with pytest.raises(ValueError, match="batch_size should be a positive integer value"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(TypeError, match="dataset must have __getitem__ and __len__"):
        DataLoader(object())


def test_num_workers_is_accepted_and_runs_in_process():
    loader = DataLoader(TensorDataset(*_xy(4)), batch_size=2, num_workers=2, pin_memory=True)
    assert _labels(loader) == [[0, 1], [2, 3]]
