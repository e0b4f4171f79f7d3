"""PyTorch idioms that need no PyTorch to check: random draws with generators, samplers, data-set
concatenation, the ``torch.backends`` switches, and the errors of the newer tensor ops."""

from __future__ import annotations

import collections

import numpy as np
import pytest

import funcnn_modules as torch
import funcnn_modules.nn as nn
from funcnn_modules.utils.data import (
    ConcatDataset,
    DataLoader,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
)


def test_generator_gives_its_own_reproducible_stream():
    a = torch.randn(4, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(0)
    torch.randn(2)  # the global generator moves; a seeded Generator does not care
    b = torch.randn(4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    g = torch.Generator().manual_seed(3)
    first, second = torch.rand(3, generator=g), torch.rand(3, generator=g)
    assert not torch.equal(first, second)
    assert g.initial_seed() == 3
    assert torch.randperm(5, generator=torch.Generator().manual_seed(1)).tolist() == (
        torch.randperm(5, generator=torch.Generator().manual_seed(1)).tolist()
    )
    with pytest.raises(TypeError, match="generator must be a funcnn_modules.Generator"):
        torch.randn(2, generator="seed")


def test_multinomial_frequencies_and_errors():
    torch.manual_seed(0)
    draws = torch.tensor([1.0, 2.0, 7.0]).multinomial(20000, replacement=True)
    assert draws.dtype == torch.int64 and tuple(draws.shape) == (20000,)
    freq = np.bincount(draws.numpy(), minlength=3) / 20000
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.7], atol=0.02)
    rows = torch.multinomial(torch.tensor([[0.0, 1.0, 3.0], [1.0, 1.0, 0.0]]), 2)
    assert sorted(rows[0].tolist()) == [1, 2] and sorted(rows[1].tolist()) == [0, 1]
    with pytest.raises(RuntimeError, match="not enough non-negative category"):
        torch.tensor([0.0, 1.0, 0.0]).multinomial(2)
    with pytest.raises(RuntimeError, match="cannot sample n_sample=4"):
        torch.ones(3).multinomial(4)


def test_bernoulli_draws_zeros_and_ones():
    torch.manual_seed(1)
    p = torch.full((4000,), 0.3)
    b = torch.bernoulli(p)
    assert b.dtype == torch.float32 and set(b.unique().tolist()) == {0.0, 1.0}
    assert abs(b.mean().item() - 0.3) < 0.03
    z = torch.empty(3000).bernoulli_(0.8)
    assert abs(z.mean().item() - 0.8) < 0.03


def test_trunc_normal_and_fans():
    torch.manual_seed(2)
    w = torch.empty(200, 50)
    out = nn.init.trunc_normal_(w, std=0.02, a=-0.03, b=0.03)
    assert out is w and w.dtype == torch.float32
    assert w.min().item() >= -0.03 and w.max().item() <= 0.03
    assert 0.012 < w.std().item() < 0.018  # a truncated N(0, 0.02**2): narrower than 0.02
    assert nn.init._calculate_fan_in_and_fan_out(nn.Conv2d(3, 8, 5).weight) == (75, 200)
    with pytest.raises(ValueError, match="need a < b"):
        nn.init.trunc_normal_(w, a=1.0, b=0.0)
    with pytest.raises(ValueError, match="holds too little"):
        nn.init.trunc_normal_(torch.empty(4), mean=0.0, std=1.0, a=50.0, b=50.1)


def test_samplers_and_concat_dataset():
    a = TensorDataset(torch.arange(5))
    b = TensorDataset(torch.arange(10, 13))
    both = a + b
    assert isinstance(both, ConcatDataset) and len(both) == 8
    assert both[6][0].item() == 11 and both[-1][0].item() == 12
    with pytest.raises(IndexError, match="out of range"):
        both[8]
    sub = SubsetRandomSampler([3, 5, 7, 9], generator=torch.Generator().manual_seed(0))
    assert sorted(sub) == [3, 5, 7, 9] and len(sub) == 4
    loader = DataLoader(both, batch_size=3, sampler=SubsetRandomSampler(range(8)))
    seen = sorted(v for (batch,) in loader for v in batch.tolist())
    assert seen == [0, 1, 2, 3, 4, 10, 11, 12]
    w = WeightedRandomSampler(
        [0.1, 0.0, 5.0, 1.0], 4000, generator=torch.Generator().manual_seed(1)
    )
    counts = collections.Counter(w)
    assert counts[1] == 0 and counts[2] > 3 * counts[3] > 0
    once = list(WeightedRandomSampler([1.0, 0.0, 1.0, 1.0], 3, replacement=False))
    assert sorted(once) == [0, 2, 3]
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        WeightedRandomSampler([1.0], 0)


def test_backends_switches_are_accepted():
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    assert torch.backends.cudnn.is_available() is False
    assert torch.backends.mps.is_available() is False
    torch.use_deterministic_algorithms(True)
    assert torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(False)


def test_new_ops_reject_bad_input_clearly():
    with pytest.raises(RuntimeError, match="scatter: index has 1 dimensions but self has 2"):
        torch.zeros(2, 3).scatter(1, torch.tensor([0, 1]), 1.0)
    with pytest.raises(RuntimeError, match="tril: input tensor must have at least 2 dimensions"):
        torch.ones(3).tril()
    with pytest.raises(RuntimeError, match="glu: halving dimension must be even"):
        nn.functional.glu(torch.ones(2, 3))
    with pytest.raises(ValueError, match="meshgrid: indexing must be"):
        torch.meshgrid(torch.ones(2), torch.ones(3), indexing="yx")
    with pytest.raises(ValueError, match="vec has shape \\(3,\\)"):
        nn.utils.vector_to_parameters(torch.ones(3), nn.Linear(2, 2).parameters())


def test_in_place_index_ops_keep_the_graph():
    w = torch.ones(3, 4, requires_grad=True)
    h = w * 2.0
    h.scatter_(1, torch.tensor([[0], [1], [2]]), 0.0)
    h.tril_()
    h.sum().backward()
    expected = np.tril(np.ones((3, 4))) * 2.0
    expected[[0, 1, 2], [0, 1, 2]] = 0.0
    np.testing.assert_array_equal(w.grad.numpy(), expected)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        w.scatter_(1, torch.tensor([[0], [1], [2]]), 1.0)


def test_set_num_threads_is_funcnns_setting():
    import funcnn as fn

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert torch.get_num_threads() == fn.backend.get_num_threads() == 1
        with pytest.raises(ValueError, match="set_num_threads: n must be an int >= 1, got 0"):
            torch.set_num_threads(0)
    finally:
        torch.set_num_threads(before)


def test_manual_seed_returns_the_default_generator():
    g = torch.manual_seed(3)
    assert g is torch.default_generator and g.initial_seed() == torch.initial_seed() == 3
    a = torch.randn(4)
    torch.default_generator.manual_seed(3)
    np.testing.assert_array_equal(torch.randn(4).numpy(), a.numpy())
    state = torch.get_rng_state()
    b = torch.rand(3)
    torch.set_rng_state(state)
    np.testing.assert_array_equal(torch.rand(3).numpy(), b.numpy())


def test_in_place_random_fills_stay_on_the_tensors_backend():
    from funcnn import backend

    x = torch.Tensor._wrap(backend.device_put(np.zeros(5, np.float32), "strict"))
    for fill in (lambda t: t.uniform_(2.0, 3.0), lambda t: t.normal_(1.0, 0.5)):
        fill(x)
        assert backend.backend_name(x._value) == "strict"
        assert str(x._value.dtype).endswith("float32")
    u = torch.zeros(1000).uniform_(2.0, 3.0).numpy()
    assert u.dtype == np.float32 and u.min() >= 2.0 and u.max() < 3.0


def test_nonzero_where_allclose_and_trunc_normal_stay_on_the_tensors_backend():
    from funcnn import backend

    raw = backend.device_put(np.array([[0.0, 1.0], [2.0, 0.0]], np.float32), "strict")
    x = torch.Tensor._wrap(raw)
    for out in (x.nonzero(), *x.nonzero(as_tuple=True), *torch.where(x)):
        assert backend.backend_name(out._value) == "strict"
    assert torch.allclose(x, x * 1.0) and torch.equal(x, x)
    w = torch.Tensor._wrap(backend.device_put(np.zeros((50,), np.float32), "strict"))
    nn.init.trunc_normal_(w, std=1.0, a=-0.5, b=0.5)
    assert backend.backend_name(w._value) == "strict"
    host = backend.to_numpy(w._value)
    assert host.min() >= -0.5 and host.max() <= 0.5
