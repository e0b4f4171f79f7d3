"""Tests for funcnn.random: explicit keys, determinism, independence, shapes, dtypes, errors."""

from __future__ import annotations

import math

import array_api_strict
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from funcnn import backend
from funcnn import random as fr

N = 100_000  # draws for the statistical tests; thresholds are several standard errors wide


@pytest.fixture
def strict_default():
    """Make the array-api-strict stand-in the default backend for one test."""
    before = backend.get_default()
    backend.set_default("strict")
    try:
        yield
    finally:
        backend.set_default(before)


@pytest.fixture
def float64_default():
    before = backend.default_float_dtype(np)
    backend.set_default_float_dtype("float64")
    try:
        yield
    finally:
        backend.set_default_float_dtype(np.dtype(before).name)


def _corr(a, b) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1])


# ----------------------------------------------------------------------------- keys


def test_key_is_a_readonly_host_uint32_pair():
    k = fr.key(0)
    assert isinstance(k, np.ndarray)
    assert k.dtype == np.uint32
    assert k.shape == (2,)
    assert not k.flags.writeable
    with pytest.raises(ValueError):
        k[0] = 1


def test_key_is_deterministic_and_depends_on_the_seed():
    np.testing.assert_array_equal(fr.key(42), fr.key(42))
    keys = {tuple(fr.key(s).tolist()) for s in [0, 1, 2, 2**32, 2**63 - 1, 2**64 - 1, -1]}
    assert len(keys) == 6  # -1 wraps to 2**64 - 1, like a cast from int64 to uint64
    np.testing.assert_array_equal(fr.key(-1), fr.key(2**64 - 1))
    np.testing.assert_array_equal(fr.key(np.int64(5)), fr.key(5))
    # the seed's 64 bits, high word first, as jax.random.PRNGKey
    np.testing.assert_array_equal(fr.key(42), [0, 42])
    np.testing.assert_array_equal(fr.key(2**32 + 7), [1, 7])
    np.testing.assert_array_equal(fr.key(-1), [2**32 - 1, 2**32 - 1])


@pytest.mark.parametrize("seed", [1.5, "3", None, np.array([1, 2]), True])
def test_key_rejects_non_integer_seeds(seed):
    with pytest.raises(TypeError, match=r"funcnn\.random\.key: seed must be an integer"):
        fr.key(seed)


@pytest.mark.parametrize("seed", [2**64, -(2**63) - 1])
def test_key_rejects_out_of_range_seeds(seed):
    with pytest.raises(ValueError, match=r"seed must be in \[-2\*\*63, 2\*\*64\)"):
        fr.key(seed)


def test_split_shapes_and_determinism():
    k = fr.key(0)
    ks = fr.split(k)
    assert ks.shape == (2, 2) and ks.dtype == np.uint32
    assert not ks.flags.writeable
    np.testing.assert_array_equal(ks, fr.split(k))
    assert fr.split(k, 5).shape == (5, 2)
    assert fr.split(k, 1).shape == (1, 2)
    assert fr.split(k, 0).shape == (0, 2)
    k1, k2 = fr.split(k)  # rows unpack into keys
    assert k1.shape == (2,) and k2.shape == (2,)


def test_split_children_differ_from_each_other_and_the_parent():
    k = fr.key(7)
    ks = fr.split(k, 1000)
    rows = {tuple(r) for r in ks.tolist()}
    assert len(rows) == 1000
    assert tuple(k.tolist()) not in rows
    # split a second time: grandchildren differ from children too
    grand = {tuple(r) for r in fr.split(ks[0], 1000).tolist()}
    assert len(grand) == 1000 and not grand & rows


def test_split_children_draws_are_independent_of_each_other_and_the_parent():
    k = fr.key(123)
    k1, k2 = fr.split(k)
    a, b, parent = fr.normal(k1, (N,)), fr.normal(k2, (N,)), fr.normal(k, (N,))
    bound = 5 / math.sqrt(N)
    assert abs(_corr(a, b)) < bound
    assert abs(_corr(a, parent)) < bound
    assert abs(_corr(b, parent)) < bound
    assert not np.array_equal(a, b)


def test_split_rejects_bad_num():
    with pytest.raises(ValueError, match=r"split: num must be >= 0, got -1"):
        fr.split(fr.key(0), -1)
    with pytest.raises(TypeError, match=r"split: num must be an integer"):
        fr.split(fr.key(0), 2.0)


def test_fold_in_is_deterministic_and_spreads_data():
    k = fr.key(3)
    np.testing.assert_array_equal(fr.fold_in(k, 5), fr.fold_in(k, 5))
    folded = {tuple(fr.fold_in(k, i).tolist()) for i in range(1000)}
    assert len(folded) == 1000
    assert tuple(k.tolist()) not in folded
    assert not folded & {tuple(r) for r in fr.split(k, 1000).tolist()}
    f = fr.fold_in(k, 0)
    assert f.dtype == np.uint32 and f.shape == (2,) and not f.flags.writeable
    # different parents, same data: different keys
    assert not np.array_equal(fr.fold_in(fr.key(1), 9), fr.fold_in(fr.key(2), 9))
    np.testing.assert_array_equal(fr.fold_in(k, -1), fr.fold_in(k, 2**64 - 1))
    np.testing.assert_array_equal(fr.fold_in(k, np.int32(4)), fr.fold_in(k, 4))
    a, b = fr.normal(fr.fold_in(k, 0), (N,)), fr.normal(fr.fold_in(k, 1), (N,))
    assert abs(_corr(a, b)) < 5 / math.sqrt(N)


def test_fold_in_rejects_bad_data():
    with pytest.raises(TypeError, match=r"fold_in: data must be an integer, got float"):
        fr.fold_in(fr.key(0), 1.0)
    with pytest.raises(ValueError, match=r"fold_in: data must be in"):
        fr.fold_in(fr.key(0), 2**64)


@given(seed=st.integers(-(2**63), 2**64 - 1), num=st.integers(0, 16), data=st.integers(0, 2**32))
@settings(max_examples=50, deadline=None)
def test_key_derivation_properties(seed, num, data):
    k = fr.key(seed)
    ks = fr.split(k, num)
    np.testing.assert_array_equal(ks, fr.split(fr.key(seed), num))
    rows = {tuple(r) for r in ks.tolist()}
    assert len(rows) == num
    assert tuple(k.tolist()) not in rows
    assert not np.array_equal(fr.fold_in(k, data), fr.fold_in(k, data + 1))


# ----------------------------------------------------------------------------- bad keys

_DRAWS = {
    "split": lambda k: fr.split(k),
    "fold_in": lambda k: fr.fold_in(k, 1),
    "normal": lambda k: fr.normal(k, (2,)),
    "uniform": lambda k: fr.uniform(k, (2,)),
    "bernoulli": lambda k: fr.bernoulli(k, 0.5, (2,)),
    "randint": lambda k: fr.randint(k, (2,), 0, 3),
    "permutation": lambda k: fr.permutation(k, 3),
}


@pytest.mark.parametrize("fn", sorted(_DRAWS))
def test_bad_keys_are_clear_errors_naming_the_function(fn):
    draw = _DRAWS[fn]
    with pytest.raises(
        TypeError,
        match=rf"funcnn\.random\.{fn}: key must be a uint32 array.*got int 0.*key\(seed\)",
    ):
        draw(0)
    with pytest.raises(ValueError, match=rf"{fn}: key must be .* got dtype int64 and shape \(2,\)"):
        draw(np.array([1, 2], dtype=np.int64))
    with pytest.raises(ValueError, match=rf"{fn}: key must be .* shape \(3,\)"):
        draw(np.zeros(3, dtype=np.uint32))
    with pytest.raises(
        ValueError, match=rf"{fn}: .*split\(\) returns a batch of 4 keys of shape \(4, 2\)"
    ):
        draw(fr.split(fr.key(0), 4))
    with pytest.raises(TypeError, match=rf"{fn}: key must be .* got list"):
        draw([1, 2])


def test_keys_moved_to_another_backend_still_work():
    k = fr.key(5)
    moved = backend.device_put(k, "strict")
    np.testing.assert_array_equal(fr.split(moved), fr.split(k))
    np.testing.assert_array_equal(fr.normal(moved, (4,)), fr.normal(k, (4,)))


# ----------------------------------------------------------------------------- normal


def test_normal_default_dtype_shape_and_determinism():
    k = fr.key(0)
    x = fr.normal(k, (3, 4))
    assert isinstance(x, np.ndarray)
    assert x.shape == (3, 4) and x.dtype == np.float32
    np.testing.assert_array_equal(x, fr.normal(k, (3, 4)))
    assert not np.array_equal(x, fr.normal(fr.key(1), (3, 4)))
    assert fr.normal(k, 5).shape == (5,)
    assert fr.normal(k, np.int64(5)).shape == (5,)
    assert fr.normal(k, (np.int32(2), 3)).shape == (2, 3)
    assert fr.normal(k, (0, 3)).shape == (0, 3)
    scalar = fr.normal(k, ())
    assert scalar.shape == () and scalar.dtype == np.float32
    assert fr.normal(k).shape == ()


@pytest.mark.parametrize("dtype", ["float64", np.float64, np.dtype("float64"), float])
def test_normal_float64_on_request(dtype):
    x = fr.normal(fr.key(0), (10,), dtype=dtype)
    assert x.dtype == np.float64
    np.testing.assert_allclose(x, fr.normal(fr.key(0), (10,)), rtol=1e-6)


def test_normal_float16_and_the_default_float_dtype(float64_default):
    assert fr.normal(fr.key(0), (4,), dtype="float16").dtype == np.float16
    assert fr.normal(fr.key(0), (4,)).dtype == np.float64


def test_normal_moments():
    x = fr.normal(fr.key(1), (N,), dtype="float64")
    assert abs(x.mean()) < 5 / math.sqrt(N)
    assert abs(x.std() - 1) < 0.02
    assert abs((x**3).mean()) < 0.05  # no skew
    assert 0.99 < float((np.abs(x) < 2.576).mean()) / 0.99 < 1.01


@pytest.mark.parametrize("dtype", ["int32", np.int64, "bool", "complex64"])
def test_normal_rejects_non_float_dtypes(dtype):
    with pytest.raises(TypeError, match=r"normal: dtype must be a floating dtype"):
        fr.normal(fr.key(0), (2,), dtype=dtype)


@pytest.mark.parametrize("shape", [(-1, 2), -3])
def test_negative_shapes_are_errors(shape):
    with pytest.raises(ValueError, match=r"normal: shape must not have negative sizes"):
        fr.normal(fr.key(0), shape)


@pytest.mark.parametrize("shape", [(2.0, 3), "ab", (None,), np.array([2, 3])])
def test_non_integer_shapes_are_errors(shape):
    with pytest.raises(TypeError, match=r"uniform: shape must be an int or a tuple of ints"):
        fr.uniform(fr.key(0), shape)


# ----------------------------------------------------------------------------- uniform


def test_uniform_default_range_dtype_and_determinism():
    k = fr.key(2)
    u = fr.uniform(k, (N,))
    assert u.dtype == np.float32 and u.shape == (N,)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / N)
    np.testing.assert_array_equal(u, fr.uniform(k, (N,)))
    assert fr.uniform(k, ()).shape == ()


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize(("lo", "hi"), [(0.0, 1.0), (-3.0, 0.1), (5, 7), (-1e-3, 1e-3)])
def test_uniform_stays_in_half_open_interval(dtype, lo, hi):
    u = fr.uniform(fr.key(3), (N,), dtype=dtype, minval=lo, maxval=hi)
    assert u.dtype == np.dtype(dtype)
    lo_t, hi_t = np.asarray(lo, dtype=dtype), np.asarray(hi, dtype=dtype)
    assert u.min() >= lo_t
    assert u.max() < hi_t  # never maxval, even where rounding to float16 would give it
    assert abs(float(u.astype(np.float64).mean()) - (lo + hi) / 2) < 0.01 * (hi - lo)


def test_uniform_float16_would_round_to_one_without_the_clamp():
    # 2**-12 of float64 draws in [0, 1) round up to 1.0 in float16: the clamp must catch them
    u64 = fr.uniform(fr.key(3), (N,), dtype="float64")
    assert (u64.astype(np.float16) == 1.0).any()
    u16 = fr.uniform(fr.key(3), (N,), dtype="float16")
    assert u16.max() == np.nextafter(np.float16(1), np.float16(0))


def test_uniform_rejects_bad_bounds():
    k = fr.key(0)
    with pytest.raises(ValueError, match=r"uniform: need minval < maxval"):
        fr.uniform(k, (2,), minval=1.0, maxval=1.0)
    with pytest.raises(ValueError, match=r"uniform: need minval < maxval"):
        fr.uniform(k, (2,), minval=2.0, maxval=1.0)
    with pytest.raises(ValueError, match=r"uniform: maxval must be finite"):
        fr.uniform(k, (2,), maxval=math.inf)
    with pytest.raises(ValueError, match=r"uniform: need minval < maxval with a finite difference"):
        fr.uniform(k, (2,), dtype="float64", minval=-1e308, maxval=1e308)
    with pytest.raises(ValueError, match=r"are equal in float16"):
        fr.uniform(k, (2,), dtype="float16", minval=1.0, maxval=1.0001)
    with pytest.raises(TypeError, match=r"uniform: minval must be a real number, got str"):
        fr.uniform(k, (2,), minval="0")
    with pytest.raises(TypeError, match=r"uniform: maxval must be a real number, got complex"):
        fr.uniform(k, (2,), maxval=1j)


def test_numpy_scalars_work_as_bounds_and_probabilities():
    k = fr.key(0)
    u = fr.uniform(k, (100,), minval=np.float32(2), maxval=np.int64(3))
    assert u.min() >= 2 and u.max() < 3
    assert fr.bernoulli(k, np.float32(1.0), (5,)).all()
    before = backend.get_default()
    backend.set_default("strict")
    try:  # a NumPy scalar p is a number: the draw still lands on the default backend
        b = fr.bernoulli(k, np.float64(0.5), (4,))
        assert backend.backend_name(b) == "strict"
        u = fr.uniform(k, (4,), minval=np.float32(-1), maxval=np.float64(1))
        assert backend.backend_name(u) == "strict"
    finally:
        backend.set_default(before)


# ----------------------------------------------------------------------------- bernoulli


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_bernoulli_mean(p):
    b = fr.bernoulli(fr.key(4), p, (N,))
    assert b.dtype == np.bool_ and b.shape == (N,)
    assert abs(b.mean() - p) < 5 * math.sqrt(p * (1 - p) / N)
    np.testing.assert_array_equal(b, fr.bernoulli(fr.key(4), p, (N,)))


def test_bernoulli_edges_and_default_shape():
    k = fr.key(5)
    assert not fr.bernoulli(k, 0.0, (1000,)).any()
    assert fr.bernoulli(k, 1.0, (1000,)).all()
    assert fr.bernoulli(k, 1, (3,)).all()
    assert fr.bernoulli(k, 0.5).shape == ()
    assert fr.bernoulli(k).shape == ()


def test_bernoulli_with_an_array_of_probabilities():
    p = np.array([0.0, 0.25, 1.0], dtype=np.float32)
    b = fr.bernoulli(fr.key(6), p, (N, 3))
    assert b.shape == (N, 3) and b.dtype == np.bool_
    assert not b[:, 0].any() and b[:, 2].all()
    assert abs(b[:, 1].mean() - 0.25) < 5 * math.sqrt(0.25 * 0.75 / N)
    assert fr.bernoulli(fr.key(6), p).shape == (3,)  # shape defaults to p's


def test_bernoulli_errors():
    k = fr.key(0)
    with pytest.raises(ValueError, match=r"bernoulli: p must be in \[0, 1\], got 1.5"):
        fr.bernoulli(k, 1.5, (2,))
    with pytest.raises(ValueError, match=r"bernoulli: p must be finite"):
        fr.bernoulli(k, math.nan, (2,))
    with pytest.raises(ValueError, match=r"every p must be in \[0, 1\]"):
        fr.bernoulli(k, np.array([0.5, -0.1]), (2,))
    with pytest.raises(ValueError, match=r"every p must be in \[0, 1\]"):
        fr.bernoulli(k, np.array([np.nan]), (2,))
    with pytest.raises(
        ValueError, match=r"p has shape \(3,\), which does not broadcast to shape \(2,\)"
    ):
        fr.bernoulli(k, np.full(3, 0.5), (2,))
    with pytest.raises(
        ValueError, match=r"p has shape \(2, 1\), which does not broadcast to shape \(2,\)"
    ):
        fr.bernoulli(k, np.full((2, 1), 0.5), (2,))
    with pytest.raises(TypeError, match=r"bernoulli: p must be a floating array, got dtype int64"):
        fr.bernoulli(k, np.array([0, 1]), (2,))


# ----------------------------------------------------------------------------- randint


def test_randint_range_dtype_and_coverage():
    r = fr.randint(fr.key(7), (N,), -3, 4)
    assert r.dtype == np.int64 and r.shape == (N,)
    assert r.min() == -3 and r.max() == 3
    counts = np.bincount(r + 3)
    assert counts.shape == (7,)
    assert np.all(np.abs(counts / N - 1 / 7) < 0.01)
    np.testing.assert_array_equal(r, fr.randint(fr.key(7), (N,), -3, 4))
    assert fr.randint(fr.key(7), (), 0, 1) == 0
    assert fr.randint(fr.key(7), (), 0, 1).shape == ()


def test_randint_full_int64_range():
    r = fr.randint(fr.key(8), (1000,), -(2**63), 2**63)
    assert r.dtype == np.int64
    assert (r < 0).any() and (r > 0).any()


def test_randint_errors():
    k = fr.key(0)
    with pytest.raises(ValueError, match=r"randint: need -2\*\*63 <= minval < maxval <= 2\*\*63"):
        fr.randint(k, (2,), 3, 3)
    with pytest.raises(ValueError, match=r"got minval=0, maxval=9223372036854775809"):
        fr.randint(k, (2,), 0, 2**63 + 1)
    with pytest.raises(TypeError, match=r"randint: maxval must be an integer, got float"):
        fr.randint(k, (2,), 0, 3.5)


# ----------------------------------------------------------------------------- permutation


@pytest.mark.parametrize("n", [0, 1, 2, 10, 1000])
def test_permutation_is_a_permutation(n):
    p = fr.permutation(fr.key(9), n)
    assert p.dtype == np.int64 and p.shape == (n,)
    np.testing.assert_array_equal(np.sort(p), np.arange(n))
    np.testing.assert_array_equal(p, fr.permutation(fr.key(9), n))


def test_permutation_depends_on_the_key_and_is_uniform():
    assert not np.array_equal(fr.permutation(fr.key(1), 100), fr.permutation(fr.key(2), 100))
    first = np.array([fr.permutation(k, 4)[0] for k in fr.split(fr.key(10), 4000)])
    assert np.all(np.abs(np.bincount(first, minlength=4) / 4000 - 0.25) < 0.04)


def test_permutation_errors():
    with pytest.raises(ValueError, match=r"permutation: n must be >= 0, got -1"):
        fr.permutation(fr.key(0), -1)
    with pytest.raises(
        TypeError, match=r"to shuffle an array use x\[permutation\(key, x.shape\[0\]\)\]"
    ):
        fr.permutation(fr.key(0), np.arange(3))
    with pytest.raises(TypeError, match=r"permutation: n must be an integer, got float"):
        fr.permutation(fr.key(0), 3.0)


# ----------------------------------------------------------------------------- backends


def test_draws_land_on_the_default_backend(strict_default):
    k = fr.key(11)
    dev = array_api_strict.Device("device1")
    cases = {
        "normal": (fr.normal(k, (3,)), array_api_strict.float32),
        "normal64": (fr.normal(k, (3,), dtype=array_api_strict.float64), array_api_strict.float64),
        "uniform": (fr.uniform(k, (3,), minval=-1, maxval=2), array_api_strict.float32),
        "bernoulli": (fr.bernoulli(k, 0.3, (3,)), array_api_strict.bool),
        "randint": (fr.randint(k, (3,), 0, 5), array_api_strict.int64),
        "permutation": (fr.permutation(k, 3), array_api_strict.int64),
        "scalar": (fr.normal(k, ()), array_api_strict.float32),
    }
    for name, (x, dtype) in cases.items():
        assert isinstance(x, array_api_strict._array_object.Array), name
        assert x.dtype == dtype, name
        assert x.device == dev, name
    assert cases["scalar"][0].shape == ()
    # keys stay host NumPy arrays on every backend
    assert isinstance(fr.split(k), np.ndarray)


def test_same_numbers_on_every_backend():
    k = fr.key(12)
    host = {
        "normal": fr.normal(k, (5,)),
        "uniform": fr.uniform(k, (5,), minval=-2, maxval=3),
        "bernoulli": fr.bernoulli(k, 0.4, (5,)),
        "randint": fr.randint(k, (5,), 0, 100),
        "permutation": fr.permutation(k, 5),
    }
    before = backend.get_default()
    backend.set_default("strict")
    try:
        strict = {
            "normal": fr.normal(k, (5,)),
            "uniform": fr.uniform(k, (5,), minval=-2, maxval=3),
            "bernoulli": fr.bernoulli(k, 0.4, (5,)),
            "randint": fr.randint(k, (5,), 0, 100),
            "permutation": fr.permutation(k, 5),
        }
    finally:
        backend.set_default(before)
    for name in host:
        np.testing.assert_array_equal(backend.to_numpy(strict[name]), host[name], err_msg=name)


def test_bernoulli_follows_the_backend_of_an_array_p():
    p = backend.device_put(np.array([0.0, 1.0], dtype=np.float32), "strict")
    b = fr.bernoulli(fr.key(0), p)
    assert backend.backend_name(b) == "strict"
    np.testing.assert_array_equal(backend.to_numpy(b), [False, True])
