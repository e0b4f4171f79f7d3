"""funcnn_modules.nn.functional.pad and autograd.grad against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import funcnn_modules as fm
import funcnn_modules.nn.functional as F

pytestmark = pytest.mark.parity


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize(
    ("shape", "pad"),
    [((2, 3, 5), (1, 2)), ((1, 2, 4, 5), (2, 1, 0, 3)), ((1, 1, 3, 3, 4), (1, 1, 2, 0, 1, 2))],
)
def test_pad_values_and_gradients(mode, shape, pad):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    cot = None
    outs = {}
    for lib, f in (("torch", TF.pad), ("ours", F.pad)):
        t = (torch if lib == "torch" else fm).tensor(x, requires_grad=True)
        out = f(t, pad, mode=mode)
        if cot is None:
            cot = rng.standard_normal(tuple(out.shape))
        (out * (torch if lib == "torch" else fm).tensor(cot)).sum().backward()
        outs[lib] = (out.detach().numpy(), t.grad.numpy())
    np.testing.assert_allclose(outs["ours"][0], outs["torch"][0], rtol=1e-12)
    np.testing.assert_allclose(outs["ours"][1], outs["torch"][1], rtol=1e-12)


def test_pad_errors():
    x = fm.zeros(1, 2, 3)
    with pytest.raises(ValueError, match="reflect padding of \\(3, 0\\) must be less than"):
        F.pad(x, (3, 0), mode="reflect")
    with pytest.raises(NotImplementedError, match="mode 'mirror' is not supported"):
        F.pad(x, (1, 1), mode="mirror")
    with pytest.raises(ValueError, match="doesn't take in value"):
        F.pad(x, (1, 1), mode="replicate", value=2.0)


def test_autograd_grad_with_respect_to_a_non_leaf():
    x = np.linspace(-1.0, 1.0, 5)
    results = []
    for lib in (torch, fm):
        a = lib.tensor(x, requires_grad=True)
        h = a.tanh() * 3.0  # a non-leaf
        y = (h**2).sum()
        (g,) = lib.autograd.grad(y, h)
        results.append(g.numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-12)
