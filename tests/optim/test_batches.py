"""Tests for funcnn.data.batches: counts, order, shuffling determinism, pytrees, errors, backends."""

from __future__ import annotations

import numpy as np
import pytest

import funcnn as fn
from funcnn import backend
from funcnn import data as fdata


def _data(n=10):
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    y = np.arange(n, dtype=np.int64)
    return x, y


@pytest.mark.parametrize(
    "n, bs, drop_last, expected",
    [(10, 3, False, 4), (10, 3, True, 3), (9, 3, True, 3), (2, 5, True, 0)],
)
def test_number_of_batches_and_sizes(n, bs, drop_last, expected):
    out = list(fdata.batches(None, _data(n), bs, shuffle=False, drop_last=drop_last))
    assert len(out) == expected == fdata.num_batches(n, bs, drop_last)
    sizes = [xb.shape[0] for xb, _ in out]
    assert all(s == bs for s in sizes[:-1])
    if not drop_last:
        assert sum(sizes) == n


def test_unshuffled_batches_keep_the_order_and_pair_x_with_y():
    x, y = _data(7)
    out = list(fdata.batches(None, (x, y), 3, shuffle=False))
    np.testing.assert_array_equal(np.concatenate([b[1] for b in out]), y)
    for xb, yb in out:
        np.testing.assert_array_equal(xb[:, 0], 2 * yb)
        assert xb.dtype == np.float32 and yb.dtype == np.int64


def test_shuffled_batches_are_a_permutation_and_stay_paired():
    x, y = _data(23)
    out = list(fdata.batches(fn.random.key(1), (x, y), 5))
    seen = np.concatenate([yb for _, yb in out])
    assert sorted(seen.tolist()) == list(range(23))
    assert seen.tolist() != list(range(23))
    for xb, yb in out:
        np.testing.assert_array_equal(xb[:, 1], 2 * yb + 1)


def test_same_key_same_batches_other_key_other_batches():
    data = _data(30)
    a = [yb.tolist() for _, yb in fdata.batches(fn.random.key(7), data, 4)]
    b = [yb.tolist() for _, yb in fdata.batches(fn.random.key(7), data, 4)]
    c = [yb.tolist() for _, yb in fdata.batches(fn.random.key(8), data, 4)]
    assert a == b
    assert a != c


def test_drop_last_with_shuffle_drops_the_remainder():
    out = list(fdata.batches(fn.random.key(0), _data(10), 4, drop_last=True))
    assert [yb.shape[0] for _, yb in out] == [4, 4]


def test_dict_pytree_and_single_array():
    x, y = _data(6)
    out = list(fdata.batches(fn.random.key(0), {"image": x, "label": y}, 4))
    assert set(out[0]) == {"image", "label"}
    single = list(fdata.batches(None, x, 4, shuffle=False))
    assert isinstance(single[0], np.ndarray) and single[0].shape == (4, 2)


def test_mismatched_first_dimensions_name_every_size():
    x = np.zeros((5, 2))
    y = np.zeros(4)
    with pytest.raises(ValueError, match=r"same size along axis 0, got '0': 5, '1': 4"):
        fdata.batches(None, (x, y), 2, shuffle=False)


def test_shuffle_needs_a_key():
    with pytest.raises(ValueError, match="shuffle=True needs a key"):
        fdata.batches(None, _data(4), 2)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "4"])
def test_bad_batch_size(bad):
    with pytest.raises((ValueError, TypeError), match="batch_size must be a positive int"):
        fdata.batches(None, _data(4), bad, shuffle=False)


def test_scalar_leaf_is_rejected():
    with pytest.raises(ValueError, match="first .batch. axis"):
        fdata.batches(None, (np.zeros(3), np.float32(1.0)), 2, shuffle=False)


def test_batches_on_the_strict_backend():
    x, y = _data(9)
    xs = backend.device_put(x, "strict")
    ys = backend.device_put(y, "strict")
    out = list(fdata.batches(fn.random.key(3), (xs, ys), 4))
    ref = list(fdata.batches(fn.random.key(3), (x, y), 4))
    for (xb, yb), (xr, yr) in zip(out, ref):
        assert backend.backend_name(xb) == "strict"
        np.testing.assert_array_equal(backend.to_numpy(xb), xr)
        np.testing.assert_array_equal(backend.to_numpy(yb), yr)
