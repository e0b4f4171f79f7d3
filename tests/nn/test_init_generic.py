"""Generic initialisers follow torch.nn.init's formulas."""

import math

import numpy as np
import pytest

from funcnn import random
from funcnn.nn import _init_generic as init


@pytest.mark.parametrize(
    ("name", "param", "gain"),
    [
        ("linear", None, 1.0),
        ("tanh", None, 5 / 3),
        ("relu", None, math.sqrt(2)),
        ("leaky_relu", math.sqrt(5), math.sqrt(1 / 3)),
    ],
)
def test_calculate_gain(name, param, gain):
    assert init.calculate_gain(name, param) == pytest.approx(gain)


def test_fans_of_a_conv_weight():
    assert init.fans((64, 32, 3, 3)) == (32 * 9, 64 * 9)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.fans((3,))


def test_kaiming_uniform_bound_matches_pytorch_default_for_linear():
    w = init.kaiming_uniform(random.key(0), (300, 400), a=math.sqrt(5))
    bound = 1 / math.sqrt(400)  # torch.nn.Linear's default
    assert w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert abs(float(w.std()) - bound / math.sqrt(3)) < 0.01 * bound


def test_normal_initialisers_have_the_right_spread():
    w = init.kaiming_normal(random.key(1), (500, 400), nonlinearity="relu")
    assert abs(float(w.std()) - math.sqrt(2 / 400)) < 0.02 * math.sqrt(2 / 400)
    x = init.xavier_normal(random.key(2), (500, 400), gain=2.0)
    assert abs(float(x.std()) - 2 * math.sqrt(2 / 900)) < 0.02 * 2 * math.sqrt(2 / 900)
    u = init.xavier_uniform(random.key(3), (50, 40), dtype="float64")
    assert u.dtype == np.float64 and np.abs(u).max() <= math.sqrt(6 / 90)


@pytest.mark.parametrize("shape", [(4, 6), (6, 4), (3, 2, 2)])
def test_orthogonal(shape):
    q = init.orthogonal(random.key(4), shape, gain=2.0).reshape(shape[0], -1)
    small = min(q.shape)
    gram = q @ q.T if q.shape[0] == small else q.T @ q
    np.testing.assert_allclose(gram, 4.0 * np.eye(small), atol=1e-5)


def test_same_key_same_weights():
    a = init.kaiming_uniform(random.key(7), (3, 4))
    b = init.kaiming_uniform(random.key(7), (3, 4))
    np.testing.assert_array_equal(a, b)
    assert init.zeros((2,)).dtype == np.float32 and float(init.ones((2,)).sum()) == 2.0
