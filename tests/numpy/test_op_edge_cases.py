"""Edge cases of single ops the op table's smooth, unique-valued draws do not reach."""

from __future__ import annotations

import numpy as np
import pytest

import funcnn as fn
import funcnn.numpy as fnp
from funcnn.testing import check_grads


def test_take_along_axis_broadcasts_indices_and_x_in_the_gradient():
    x = np.arange(12.0).reshape(3, 4)
    idx = np.array([[0, 0, 2]])  # (1, 3): broadcast over x's 3 rows
    g = fn.grad(lambda x: fnp.sum(fnp.take_along_axis(x, idx, axis=1)))(x)
    np.testing.assert_array_equal(g, np.tile([2.0, 0.0, 1.0, 0.0], (3, 1)))
    row = np.arange(4.0).reshape(1, 4)  # (1, 4) x against (3, 2) indices
    idx2 = np.array([[0, 1], [1, 1], [3, 0]])
    g2 = fn.grad(lambda x: fnp.sum(fnp.take_along_axis(x, idx2, axis=-1)))(row)
    np.testing.assert_array_equal(g2, [[2.0, 3.0, 0.0, 1.0]])
    check_grads(lambda x: fnp.take_along_axis(x, idx, axis=1), (x,), order=2)


def test_tensordot_and_dot_over_an_empty_axis():
    a, b = np.ones((3, 0)), np.ones((0, 4))
    np.testing.assert_array_equal(fnp.tensordot(a, b, axes=1), np.zeros((3, 4)))
    assert fnp.dot(np.ones((2, 3, 0)), np.ones((2, 0, 4))).shape == (2, 3, 2, 4)
    ga, gb = fn.grad(lambda a, b: fnp.sum(fnp.tensordot(a, b, axes=1)), argnums=(0, 1))(a, b)
    assert ga.shape == (3, 0) and gb.shape == (0, 4)


@pytest.mark.parametrize("ord_", [0.5, 1.5, 3])
def test_p_norm_gradient_at_zeros_is_zero_there(ord_):
    # sign(x) |x|^(p-1) / ||x||^(p-1), and 0 where x is 0 or the norm is 0 (PyTorch's choice)
    x = np.array([0.0, -1.0, 0.5])
    norm = np.sum(np.abs(x) ** ord_) ** (1 / ord_)
    nz = x[1:]
    want = np.sign(nz) * np.abs(nz) ** (ord_ - 1) / norm ** (ord_ - 1)
    got = fn.grad(lambda x: fnp.linalg.norm(x, ord=ord_))(x)
    np.testing.assert_allclose(got, [0.0, *want], rtol=1e-12)
    zeros = fn.grad(lambda x: fnp.linalg.norm(x, ord=ord_))(np.zeros(3))
    np.testing.assert_array_equal(zeros, np.zeros(3))
    x32 = np.array([0.0, 2.0], np.float32)
    assert fn.grad(lambda x: fnp.linalg.norm(x, ord=ord_))(x32).dtype == np.float32


@pytest.mark.parametrize(
    ("spec", "shapes"),
    [("ij,ij->i", [(3, 4), (3, 1)]), ("ij,ij->i", [(3, 1), (1, 4)]), ("ii,i->i", [(3, 3), (1,)])],
)
def test_einsum_gradient_where_another_operand_has_a_length_1_axis(spec, shapes):
    rng = np.random.default_rng(0)
    ops = [rng.normal(size=s) for s in shapes]
    check_grads(lambda *o: fnp.einsum(spec, *o), ops, order=2, modes=("rev", "fwd"))


def test_index_update_with_repeated_indices_differentiates_the_write_that_lands():
    x = np.zeros(3)
    v = np.array([1.0, 2.0, 5.0])
    idx = np.array([0, 0, 2])  # the write of v[0] is overwritten by v[1]
    np.testing.assert_array_equal(fnp.index_update(x, idx, v), [2.0, 0.0, 5.0])
    gx, gv = fn.grad(
        lambda x, v: fnp.sum(fnp.index_update(x, idx, v) * np.array([1.0, 2.0, 3.0])),
        argnums=(0, 1),
    )(x, v)
    np.testing.assert_array_equal(gv, [0.0, 1.0, 3.0])
    np.testing.assert_array_equal(gx, [0.0, 2.0, 0.0])
    # a scalar written twice to one place counts once
    gs = fn.grad(lambda s: fnp.sum(fnp.index_update(x, idx, s)))(np.float64(1.0))
    assert gs == 2.0
    check_grads(lambda x, v: fnp.index_update(x, idx, v), (x, v), order=2)


def test_sort_with_axis_none_sorts_the_flattened_array():
    x = np.array([[3.0, 1.0], [2.0, 0.0]])
    np.testing.assert_array_equal(fnp.sort(x, axis=None), np.sort(x, axis=None))
    g = fn.grad(lambda x: fnp.sum(fnp.sort(x, axis=None) * np.arange(4.0)))(x)
    np.testing.assert_array_equal(g, [[3.0, 1.0], [2.0, 0.0]])


def test_clip_bounds_given_by_keyword_are_differentiated():
    x = np.array([3.0, 1.0, 2.0, 0.0])
    g_lo = fn.grad(lambda lo: fnp.sum(fnp.clip(x, a_min=lo)))(np.float64(1.5))
    g_hi = fn.grad(lambda hi: fnp.sum(fnp.clip(x, a_max=hi)))(np.float64(1.5))
    assert (g_lo, g_hi) == (2.0, 2.0)


def test_log2_log10_are_exact_at_powers_and_differentiable():
    x = np.array([8.0, 1000.0, 0.5])
    np.testing.assert_array_equal(fnp.log2(x[:1]), [3.0])
    np.testing.assert_array_equal(fnp.log10(x[1:2]), [3.0])
    g = fn.grad(lambda x: fnp.sum(fnp.log2(x) + fnp.log10(x)))(x)
    np.testing.assert_allclose(g, 1 / (x * np.log(2)) + 1 / (x * np.log(10)), rtol=1e-14)


def test_repeat_with_one_count_per_element_matches_numpy_and_checks_grads():
    x = np.random.default_rng(0).standard_normal((3, 2))
    np.testing.assert_array_equal(fnp.repeat(x, [2, 0, 1], axis=0), np.repeat(x, [2, 0, 1], 0))
    np.testing.assert_array_equal(fnp.repeat(x, [3], axis=1), np.repeat(x, 3, 1))
    check_grads(lambda x: fnp.repeat(x, [1, 3], axis=1), (x,), order=2)
