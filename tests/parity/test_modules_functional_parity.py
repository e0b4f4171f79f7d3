"""funcnn_modules.nn.functional, tensor idioms and autograd.grad against PyTorch."""

from __future__ import annotations

from collections import OrderedDict

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


# ----------------------------------------------------------------------------- helpers


def _both(fn, *arrays, grad=True, seed=0):
    """``fn(lib, *tensors)`` in PyTorch and in funcnn_modules (float64 inputs): outputs, grads."""
    rng = np.random.default_rng(seed)
    results = {}
    cot = None
    for lib in (torch, fm):
        ts = [lib.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
        out = fn(lib, *ts)
        grads = []
        if grad:
            if cot is None:
                cot = rng.standard_normal(tuple(out.shape))
            (out * lib.tensor(cot, dtype=out.dtype)).sum().backward()
            grads = [None if t.grad is None else t.grad.numpy() for t in ts if t.requires_grad]
        results[lib.__name__] = (out.detach().numpy(), grads)
    (ref, ref_g), (ours, ours_g) = results["torch"], results["funcnn_modules"]
    assert ours.dtype == ref.dtype
    np.testing.assert_allclose(ours, ref, rtol=1e-7, atol=1e-10)
    for a, b in zip(ours_g, ref_g):
        if a is None or b is None:
            assert a is b, "one library gave a gradient, the other None"
        else:
            np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)


# ----------------------------------------------------------------------------- resizing


@pytest.mark.parametrize(
    ("shape", "kw"),
    [
        ((2, 3, 5, 7), {"scale_factor": 2}),
        ((2, 3, 5, 7), {"size": (8, 11)}),
        ((2, 3, 5, 7), {"size": (3, 4)}),
        ((2, 3, 5, 7), {"scale_factor": (1.5, 0.5)}),
        ((2, 3, 5, 7), {"scale_factor": 2, "mode": "bilinear"}),
        ((2, 3, 5, 7), {"scale_factor": 2, "mode": "bilinear", "align_corners": True}),
        ((2, 3, 5, 7), {"size": (3, 4), "mode": "bilinear"}),
        ((2, 3, 5, 7), {"scale_factor": 1.7, "mode": "bilinear"}),
        ((2, 3, 6), {"scale_factor": 2, "mode": "linear"}),
        ((2, 3, 6), {"size": 4, "mode": "linear", "align_corners": True}),
        ((1, 2, 3, 4, 5), {"scale_factor": 2, "mode": "trilinear"}),
    ],
)
def test_interpolate_values_and_gradients(shape, kw):
    x = np.random.default_rng(1).standard_normal(shape)
    _both(lambda lib, t: lib.nn.functional.interpolate(t, **kw), x)


def test_upsample_module_and_interpolate_errors():
    x = np.random.default_rng(2).standard_normal((1, 2, 3, 3)).astype(np.float32)
    ref = torch.nn.Upsample(scale_factor=2, mode="bilinear")(torch.tensor(x)).numpy()
    ours = fm.nn.Upsample(scale_factor=2, mode="bilinear")(fm.tensor(x))
    assert ours.dtype == fm.float32
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(NotImplementedError, match="mode 'bicubic' is not supported"):
        F.interpolate(fm.tensor(x), scale_factor=2, mode="bicubic")
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        F.interpolate(fm.tensor(x))


# ----------------------------------------------------------------------------- activations, losses


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("hardsigmoid", ()),
        ("hardswish", ()),
        ("mish", ()),
        ("selu", ()),
        ("celu", (0.7,)),
        ("softsign", ()),
        ("softmin", (1,)),
        ("glu", (1,)),
    ],
)
def test_more_activations(name, args):
    x = np.random.default_rng(3).standard_normal((4, 6)) * 3
    _both(lambda lib, t: getattr(lib.nn.functional, name)(t, *args), x)


def test_prelu_and_metric_losses():
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 3, 4)), rng.standard_normal(3)
    _both(lambda lib, t, s: lib.nn.functional.prelu(t, s), x, w)
    a, p, n = (rng.standard_normal((5, 4)) for _ in range(3))
    y = np.array([1.0, -1.0, 1.0, -1.0, 1.0])
    _both(lambda lib, *t: lib.nn.functional.triplet_margin_loss(*t, margin=0.5), a, p, n)
    _both(
        lambda lib, u, v, t: lib.nn.functional.cosine_embedding_loss(u, v, t, margin=0.1), a, p, y
    )
    _both(
        lambda lib, u, v, t: lib.nn.functional.margin_ranking_loss(u, v, t, margin=0.2),
        a[:, 0],
        p[:, 0],
        y,
    )
    _both(lambda lib, u, v: lib.nn.PairwiseDistance()(u, v), a, p)


def test_prelu_module_has_pytorch_parameters():
    for lib in (torch, fm):
        m = lib.nn.PReLU(3)
        assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == [("weight", (3,))]
        np.testing.assert_allclose(m.weight.detach().numpy(), 0.25)


# ----------------------------------------------------------------------------- tensor ops


def test_scatter_gather_index_ops():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 5))
    src = rng.standard_normal((3, 4))
    idx = np.array([[0, 2, 4, 1], [3, 3, 0, 1], [4, 4, 4, 2]])
    uniq = np.array([[0, 2, 4, 1], [3, 2, 0, 1], [4, 1, 3, 2]])
    _both(lambda lib, t, s, i: t.scatter(1, i, s), x, src, uniq)
    _both(lambda lib, t, s, i: t.scatter_add(1, i, s), x, src, idx)
    _both(lambda lib, t, s, i: lib.scatter_add(t, 1, i, s), x, src, idx)
    _both(lambda lib, t, i: t.clone().scatter_(1, i, 2.5), x, uniq)
    _both(lambda lib, t, i: t.scatter(0, i[:, :2] % 3, value=-1.0), x, uniq)
    rows = np.array([2, 0, 2])
    _both(lambda lib, t, s, i: t.index_add(0, i, s, alpha=0.5), x, x * 2, rows)
    _both(lambda lib, t, i: t.index_fill(1, i, 0.0), x, rows)


def test_triangles_diagonals_and_friends():
    rng = np.random.default_rng(6)
    m = rng.standard_normal((2, 4, 5))
    _both(lambda lib, t: t.tril(), m)
    _both(lambda lib, t: lib.triu(t, diagonal=1), m)
    _both(lambda lib, t: lib.tril(t, -1), m)
    _both(lambda lib, t: t[0].diagonal(), m)
    _both(lambda lib, t: t.diagonal(offset=1, dim1=1, dim2=2), m)
    _both(lambda lib, t: lib.diagonal(t, -2, 1, 2), m)
    _both(lambda lib, t: t[0].diag(1), m)
    _both(lambda lib, t: lib.diag(t[0, 0]), m)
    _both(lambda lib, t: t[1].trace(), m)
    _both(lambda lib, t: t.roll(2, 1), m)
    _both(lambda lib, t: lib.roll(t, shifts=(1, -2), dims=(1, 2)), m)
    _both(lambda lib, t: t.roll(3), m)
    _both(lambda lib, t: t.repeat_interleave(2, dim=1), m)
    _both(lambda lib, t: lib.repeat_interleave(t[0, 0], 3), m)
    _both(lambda lib, t: t.tile((2, 1)), m)
    _both(lambda lib, t: lib.stack(t.unbind(1), dim=-1), m)
    _both(lambda lib, t: t.masked_select(t > 0.3), m)
    _both(lambda lib, t: t.select(2, 1), m)
    _both(lambda lib, t: t.lerp(t * 3.0, 0.25), m)
    _both(lambda lib, t: t.addcmul(t, t, value=0.5) + t.addcdiv(t, t.abs() + 1.0, value=2.0), m)
    _both(lambda lib, t: t.clamp_min(0.1) + t.clamp_max(-0.2), m)
    _both(lambda lib, t: t.ceil() + t.trunc() + t.abs().log2() + t.abs().log10(), m)


def test_median_and_meshgrid():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 6))
    _both(lambda lib, t: t.median(), x)
    _both(lambda lib, t: lib.median(t, dim=1).values, x)
    _both(lambda lib, t: t.median(0, keepdim=True)[0], x)
    for lib in (torch, fm):
        _, i = lib.tensor(x).median(1)
        np.testing.assert_array_equal(i.numpy(), torch.tensor(x).median(1).indices.numpy())
    a, b = np.arange(3.0), np.arange(4.0) * 2
    for indexing in ("ij", "xy"):
        _both(
            lambda lib, u, v: sum(
                g * (k + 1) for k, g in enumerate(lib.meshgrid(u, v, indexing=indexing))
            ),
            a,
            b,
        )  # noqa: E501


def test_masks_and_non_differentiable_ops():
    x = np.array([[0.0, 1.5, -np.inf], [np.nan, 0.0, 2.0]])
    for name in ("isinf", "isnan", "isfinite", "nonzero", "logical_not"):
        ref = getattr(torch.tensor(x), name)().numpy()
        np.testing.assert_array_equal(getattr(fm.tensor(x), name)().numpy(), ref, err_msg=name)
    ref = [t.numpy() for t in torch.tensor(x).nonzero(as_tuple=True)]
    ours = [t.numpy() for t in fm.tensor(x).nonzero(as_tuple=True)]
    np.testing.assert_array_equal(np.array(ours), np.array(ref))
    b = np.array([True, False, True])
    c = np.array([False, False, True])
    for name in ("logical_and", "logical_or"):
        ref = getattr(torch, name)(torch.tensor(b), torch.tensor(c)).numpy()
        np.testing.assert_array_equal(getattr(fm, name)(fm.tensor(b), fm.tensor(c)).numpy(), ref)
    v = np.array([3, 1, 3, 2, 1, 3])
    ref = torch.unique(torch.tensor(v), return_inverse=True, return_counts=True)
    ours = fm.unique(fm.tensor(v), return_inverse=True, return_counts=True)
    for a, r in zip(ours, ref):
        np.testing.assert_array_equal(a.numpy(), r.numpy())
    assert str(ours[0].dtype) == str(ref[0].dtype)


def test_parameter_dict_orders_a_plain_dict_like_pytorch():
    for lib in (torch, fm):
        d = lib.nn.ParameterDict(
            {"b": lib.nn.Parameter(lib.ones(1)), "a": lib.nn.Parameter(lib.ones(2))}
        )
        assert list(d.keys()) == ["a", "b"]
        d = lib.nn.ParameterDict(
            OrderedDict(
                [("b", lib.nn.Parameter(lib.ones(1))), ("a", lib.nn.Parameter(lib.ones(2)))]
            )
        )  # noqa: E501
        assert list(d.keys()) == ["b", "a"]
        d = lib.nn.ParameterDict(
            [("b", lib.nn.Parameter(lib.ones(1))), ("a", lib.nn.Parameter(lib.ones(2)))]
        )  # noqa: E501
        assert list(d.keys()) == ["b", "a"]


def test_parameters_to_vector_round_trip():
    rng = np.random.default_rng(8)
    vec = rng.standard_normal(3 * 4 + 4).astype(np.float32)
    outs = []
    for lib in (torch, fm):
        m = lib.nn.Linear(3, 4)
        lib.nn.utils.vector_to_parameters(lib.tensor(vec), m.parameters())
        x = lib.tensor(np.ones((2, 3), np.float32))
        y = m(x).sum()
        y.backward()
        flat = lib.nn.utils.parameters_to_vector(m.parameters())
        outs.append((flat.detach().numpy(), m.weight.grad.numpy(), y.item(), m.weight.is_leaf))
    np.testing.assert_allclose(outs[1][0], outs[0][0])
    np.testing.assert_allclose(outs[1][1], outs[0][1])
    assert outs[1][2:] == pytest.approx(outs[0][2:])


# ----------------------------------------------------------------------------- review fixes

NAN = float("nan")


@pytest.mark.parametrize(
    "data",
    [[3.0, NAN, 2.0], [[3.0, NAN, 2.0], [1.0, 5.0, 2.0]], [[1.0, 4.0, 2.0, 3.0], [NAN, NAN, 1.0, 0.0]]],
)  # fmt: skip
def test_median_with_nans_matches_torch(data):
    ours, ref = fm.tensor(data), torch.tensor(data)
    if ours.ndim == 1:
        np.testing.assert_array_equal(ours.median().numpy(), ref.median().numpy())
        return
    got, want = ours.median(1), ref.median(1)
    np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
    np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())


def test_nonzero_of_0d_log2_log10_and_repeat_interleave_match_torch():
    for v in (5.0, 0.0):
        assert tuple(fm.tensor(v).nonzero().shape) == tuple(torch.tensor(v).nonzero().shape)
        (ours,), (ref,) = (
            fm.tensor(v).nonzero(as_tuple=True),
            torch.tensor(v).nonzero(as_tuple=True),
        )
        np.testing.assert_array_equal(ours.numpy(), ref.numpy())
    x = [8.0, 1000.0, 0.3]
    for name in ("log2", "log10"):
        a = fm.tensor(x, dtype=fm.float64, requires_grad=True)
        b = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        getattr(a, name)().sum().backward()
        getattr(b, name)().sum().backward()
        np.testing.assert_array_equal(
            getattr(a, name)().detach().numpy(), getattr(b, name)().detach().numpy()
        )
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-14)
    a = fm.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    b = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    ra = a.repeat_interleave(fm.tensor([1, 2]), dim=0)
    rb = b.repeat_interleave(torch.tensor([1, 2]), dim=0)
    np.testing.assert_array_equal(ra.detach().numpy(), rb.detach().numpy())
    (ra**2).sum().backward()
    (rb**2).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())


@pytest.mark.parametrize(
    "data", [[[0.0, 0.0, 0.0]], [0.5, -0.1, 0.6], [0.5, NAN, 1.0], [1.0, float("inf")]]
)
def test_multinomial_refuses_what_torch_refuses(data):
    with pytest.raises(RuntimeError) as want:
        torch.tensor(data).multinomial(2, True)
    with pytest.raises(RuntimeError, match=str(want.value).replace("(", r"\(").replace(")", r"\)")):
        fm.tensor(data).multinomial(2, True)


def test_bernoulli_in_place_uses_its_generator():
    draws = []
    for seed in (1, 2):
        fm.manual_seed(seed)
        g = fm.Generator().manual_seed(0)
        draws.append(fm.zeros(64).bernoulli_(0.5, generator=g).numpy())
    np.testing.assert_array_equal(draws[0], draws[1])


def _dropped_together(y, keep):
    """Whether every draw is constant over the axes after the first ``keep`` ones (with 24
    channels, a chance agreement where the draws are separate has odds of 2**-23)."""
    flat = y.reshape(y.shape[:keep] + (-1,))
    return bool((flat.min(-1) == flat.max(-1)).all())


@pytest.mark.parametrize(
    "name, shape",
    [("dropout1d", (24, 5)), ("dropout1d", (8, 24, 5)), ("dropout2d", (8, 24, 5)),
     ("dropout2d", (8, 24, 4, 5)), ("dropout3d", (24, 4, 5, 6)), ("dropout3d", (8, 24, 4, 3, 2)),
     ("dropout2d", (8, 24, 4, 3, 2))],
)  # fmt: skip
def test_channel_dropout_draws_per_channel_like_torch(name, shape):
    import warnings

    with warnings.catch_warnings(record=True) as ref_warned:
        warnings.simplefilter("always")
        ref = getattr(TF, name)(torch.ones(*shape), 0.5).numpy()
    with warnings.catch_warnings(record=True) as our_warned:
        warnings.simplefilter("always")
        ours = getattr(F, name)(fm.ones(*shape), 0.5).numpy()
    assert bool(ref_warned) == bool(our_warned)
    for keep in range(1, len(shape)):
        assert _dropped_together(ours, keep) == _dropped_together(ref, keep), keep
    assert set(np.unique(ours)) <= {0.0, 2.0}


def test_dropout1d_refuses_4d_input_like_torch():
    with pytest.raises(RuntimeError, match="dropout1d: Expected 2D or 3D input, but received a 4D"):
        TF.dropout1d(torch.ones(2, 3, 4, 5), 0.5)
    with pytest.raises(RuntimeError, match="dropout1d: Expected 2D or 3D input, but received a 4D"):
        F.dropout1d(fm.ones(2, 3, 4, 5), 0.5)
