"""Composite functions of ``funcnn.numpy`` ops against the same functions in PyTorch.

Each case is a small function built from several ops (softmax, logsumexp, einsum, advanced
indexing, pad, concatenate/stack, var/std, where, clip, power, broadcasting matmul), written
once with ``fnp`` and once with ``torch``. Values and gradients are compared in float64 (rtol
1e-7) and float32 (rtol 1e-5, and float32 out of float32 in): the gradient is ``fn.grad`` of
``sum(f(x) * u)`` for a random cotangent ``u`` against torch autograd of the same sum, with
respect to every floating input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import funcnn as fn
import funcnn.numpy as fnp

pytestmark = pytest.mark.parity

DTYPES = {
    "float64": (np.float64, torch.float64, 1e-7),
    "float32": (np.float32, torch.float32, 1e-5),
}


def _assert_close(ours: Any, ref: Any, rtol: float, what: str) -> None:
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != torch's {ref.shape}"
    assert ours.dtype == ref.dtype, f"{what}: dtype {ours.dtype} != torch's {ref.dtype}"
    atol = rtol * max(1.0, float(np.max(np.abs(ref), initial=0.0)))
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol, err_msg=what)


def _compare(
    ours: Callable,
    theirs: Callable,
    arrays: list,
    dtype: str,
    seed: int = 0,
    rtol: float | None = None,
) -> None:
    """``ours(*arrays)`` (fnp) against ``theirs(*tensors)`` (torch): values and gradients."""
    np_dt, t_dt, default_rtol = DTYPES[dtype]
    rtol = default_rtol if rtol is None else rtol
    arrays = [np.asarray(a, dtype=np_dt) for a in arrays]
    out = ours(*arrays)
    t_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    t_out = theirs(*t_in)
    assert out.dtype == np_dt, f"{dtype} inputs gave a {out.dtype} output"
    _assert_close(out, t_out.detach().numpy(), rtol, f"{dtype} values")

    u = np.random.default_rng(seed).standard_normal(np.shape(out)).astype(np_dt)
    grads = fn.grad(lambda *a: fnp.sum(ours(*a) * u), argnums=tuple(range(len(arrays))))(*arrays)
    (t_out * torch.tensor(u, dtype=t_dt)).sum().backward()
    for i, (g, t) in enumerate(zip(grads, t_in, strict=True)):
        assert g.dtype == np_dt, f"{dtype} input {i} got a {g.dtype} gradient"
        _assert_close(g, t.grad.numpy(), rtol, f"{dtype} gradient of input {i}")


def _rand(seed: int, *shape: int, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape) * scale


# ----------------------------------------------------------------------------- softmax, logsumexp


def _softmax(x: Any, axis: int) -> Any:
    e = fnp.exp(x - fnp.max(x, axis=axis, keepdims=True))
    return e / fnp.sum(e, axis=axis, keepdims=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax(dtype: str, axis: int) -> None:
    _compare(
        lambda x: _softmax(x, axis),
        lambda x: torch.softmax(x, dim=axis),
        [_rand(1, 3, 5, 4, scale=3.0)],
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_through_logsumexp_is_stable(dtype: str) -> None:
    x = _rand(2, 4, 6, scale=40.0)  # exp would overflow in float32 without the shift
    _compare(
        lambda x: x - fnp.logsumexp(x, axis=-1, keepdims=True),
        lambda x: torch.log_softmax(x, dim=-1),
        [x],
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "axis, keepdims", [(None, False), (0, False), (1, True), ((0, 2), False), ((-1, 0), True)]
)
def test_logsumexp(dtype: str, axis: Any, keepdims: bool) -> None:
    dims = tuple(range(3)) if axis is None else axis
    _compare(
        lambda x: fnp.logsumexp(x * 3.0, axis=axis, keepdims=keepdims) * 0.5,
        lambda x: torch.logsumexp(x * 3.0, dim=dims, keepdim=keepdims) * 0.5,
        [_rand(3, 2, 3, 4, scale=5.0)],
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_with_masked_entries(dtype: str) -> None:
    mask = np.array([[True, False, True, True], [False, True, True, False]])
    _compare(
        lambda x: fnp.logsumexp(fnp.where(mask, x, -np.inf), axis=1),
        lambda x: torch.logsumexp(torch.where(torch.tensor(mask), x, -torch.inf), dim=1),
        [_rand(4, 2, 4)],
        dtype,
    )


# ----------------------------------------------------------------------------- einsum

EINSUM_CASES = [
    ("bij,bjk->bik", [(3, 2, 4), (3, 4, 5)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("ii->", [(4, 4)]),
    ("ii->i", [(3, 3)]),
    ("bii->b", [(2, 3, 3)]),
    ("iji->j", [(3, 2, 3)]),
    ("ij,ij->", [(3, 4), (3, 4)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ijk->kji", [(2, 3, 4)]),
    ("ij,j", [(3, 4), (4,)]),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "spec, shapes", EINSUM_CASES, ids=[s.replace("...", "E") for s, _ in EINSUM_CASES]
)
def test_einsum(dtype: str, spec: str, shapes: list) -> None:
    _compare(
        lambda *a: fnp.tanh(fnp.einsum(spec, *a)),
        lambda *a: torch.tanh(torch.einsum(spec, *a)),
        [_rand(10 + i, *s) for i, s in enumerate(shapes)],
        dtype,
    )


# ----------------------------------------------------------------------------- indexing

_I = np.array([2, 0, 2, 1, 2])  # repeats: their gradients accumulate
_J = np.array([[0, 3], [1, 1]])
_MASK = np.array(
    [[True, False, True, True], [False, False, True, False], [True, True, False, True]]
)

INDEX_CASES = {
    "int array": (_I,),
    "negative ints": (np.array([-1, 0, -3]),),
    "list": ([1, 1, 0],),
    "two int arrays": (_I[:2, None], _J[0]),
    "int array, slice": (_I, slice(1, None, 2)),
    "slice, int array": (slice(None), _J),
    "mask": (_MASK,),
    "leading mask": (np.array([True, False, True]), Ellipsis),
    "mask on axis 1": (slice(None), np.array([False, True, True, False])),
    "none, int array": (None, Ellipsis, np.array([2, 0, 0])),
    "int, slice, int array": (1, slice(None, 3), np.array([[0], [2]])),
}


def _torch_index(idx: tuple) -> tuple:
    """The same index for torch. Next to an index array NumPy treats an int as an advanced
    index too (so the advanced axes, split by a slice, move to the front); torch drops the
    int's axis first unless it is a tensor, so ints become 1-element tensors there."""
    advanced = any(isinstance(i, (np.ndarray, list)) for i in idx)
    return tuple(
        torch.tensor(i)
        if isinstance(i, (np.ndarray, list))
        else torch.tensor([i])
        if advanced and isinstance(i, int)
        else i
        for i in idx
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("idx", INDEX_CASES.values(), ids=INDEX_CASES)
def test_advanced_indexing(dtype: str, idx: tuple) -> None:
    _compare(
        lambda x: fnp.sin(x[idx if len(idx) > 1 else idx[0]]) * 2.0,
        lambda x: torch.sin(x[_torch_index(idx)]) * 2.0,
        [_rand(20, 3, 4, 3)],
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_take_along_axis_and_index_add(dtype: str) -> None:
    idx = np.array([[0, 2, 2], [1, 0, 1]])
    _compare(
        lambda x, v: fnp.take_along_axis(fnp.index_add(x, (np.array([0, 0, 1]),), v), idx, 1),
        lambda x, v: torch.take_along_dim(
            x.index_add(0, torch.tensor([0, 0, 1]), v), torch.tensor(idx), 1
        ),
        [_rand(21, 2, 4), _rand(22, 3, 4)],
        dtype,
    )


# ----------------------------------------------------------------------------- pad, concatenate, stack

PAD_MODES = {"constant": "constant", "edge": "replicate", "reflect": "reflect", "wrap": "circular"}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", PAD_MODES)
@pytest.mark.parametrize(
    "widths", [((1, 2),), ((2, 0), (1, 3))], ids=["last axis", "last two axes"]
)
def test_pad(dtype: str, mode: str, widths: tuple) -> None:
    x = _rand(30, 3, 4, 5) if len(widths) == 1 else _rand(30, 2, 3, 4, 5)
    pw = ((0, 0),) * (x.ndim - len(widths)) + widths
    t_pad = [w for pair in reversed(widths) for w in pair]  # torch lists the last axis first
    kw = {"constant_values": 0.5} if mode == "constant" else {}
    t_kw = {"value": 0.5} if mode == "constant" else {}
    _compare(
        lambda x: fnp.pad(x * x, pw, mode=mode, **kw),
        lambda x: F.pad(x * x, t_pad, mode=PAD_MODES[mode], **t_kw),
        [x],
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_concatenate_and_stack(dtype: str) -> None:
    def ours(a: Any, b: Any, c: Any) -> Any:
        cat0 = fnp.concatenate([a, b * 2.0], axis=0)  # (5, 4)
        cat1 = fnp.concatenate([cat0, fnp.exp(c)], axis=-1)  # (5, 6)
        return fnp.stack([cat1, cat1 * cat1, -cat1], axis=-1)  # (5, 6, 3)

    def theirs(a: Any, b: Any, c: Any) -> Any:
        cat0 = torch.cat([a, b * 2.0], dim=0)
        cat1 = torch.cat([cat0, torch.exp(c)], dim=-1)
        return torch.stack([cat1, cat1 * cat1, -cat1], dim=-1)

    _compare(ours, theirs, [_rand(31, 2, 4), _rand(32, 3, 4), _rand(33, 5, 2)], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_stack_then_split(dtype: str, axis: int) -> None:
    _compare(
        lambda a, b: fnp.concatenate(fnp.split(fnp.stack([a, b], axis=axis), 2, axis=axis)[::-1]),
        lambda a, b: torch.cat(torch.chunk(torch.stack([a, b], dim=axis), 2, dim=axis)[::-1]),
        [_rand(34, 3, 4), _rand(35, 3, 4)],
        dtype,
    )


# ----------------------------------------------------------------------------- var, std


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["var", "std"])
@pytest.mark.parametrize(
    "axis, ddof, keepdims",
    [(None, 0, False), (None, 1, False), (0, 1, True), (-1, 0, False), ((0, 2), 2, True)],
)
def test_var_std(dtype: str, op: str, axis: Any, ddof: int, keepdims: bool) -> None:
    ours_op, torch_op = getattr(fnp, op), getattr(torch, op)
    _compare(
        lambda x: ours_op(x * 2.0 + 1.0, axis=axis, ddof=ddof, keepdims=keepdims),
        lambda x: torch_op(x * 2.0 + 1.0, dim=axis, correction=ddof, keepdim=keepdims),
        [_rand(40, 3, 4, 5)],
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_std_of_constant_rows_has_zero_gradient(dtype: str) -> None:
    """PyTorch's subgradient: 0 where the standard deviation is 0 (a plain sqrt gives NaN)."""
    x = np.array([[1.5, 1.5, 1.5], [0.2, -0.4, 1.0], [-2.0, -2.0, -2.0]])
    _compare(
        lambda x: fnp.std(x, axis=1, ddof=1) + fnp.std(x * 0.0 + 1.0),
        lambda x: torch.std(x, dim=1) + torch.std(x * 0.0 + 1.0, correction=0),
        [x],
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_standardize(dtype: str) -> None:
    """Layer-norm style: (x - mean) / sqrt(var + eps), every op differentiated twice over."""
    _compare(
        lambda x: (
            (x - fnp.mean(x, axis=-1, keepdims=True))
            / fnp.sqrt(fnp.var(x, axis=-1, keepdims=True) + 1e-5)
        ),
        lambda x: (
            (x - x.mean(-1, keepdim=True))
            / torch.sqrt(x.var(-1, correction=0, keepdim=True) + 1e-5)
        ),
        [_rand(41, 4, 6)],
        dtype,
    )


# ----------------------------------------------------------------------------- where, clip


@pytest.mark.parametrize("dtype", DTYPES)
def test_where(dtype: str) -> None:
    _compare(
        lambda x, y: fnp.where(x > 0.2, x * y, fnp.exp(y)) + fnp.where(y < 0, y, 0.0),
        lambda x, y: torch.where(x > 0.2, x * y, torch.exp(y)) + torch.where(y < 0, y, 0.0),
        [_rand(50, 3, 4), _rand(51, 4)],  # y broadcasts
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_scalar_bounds(dtype: str) -> None:
    x = np.linspace(-2.0, 2.0, 24).reshape(4, 6) + 0.013  # off the bounds: no ties
    _compare(
        lambda x: fnp.clip(x * x - 1.0, -0.5, 0.7) + fnp.clip(x, None, 0.3) + fnp.clip(x, -0.4),
        lambda x: (
            torch.clamp(x * x - 1.0, -0.5, 0.7) + torch.clamp(x, max=0.3) + torch.clamp(x, min=-0.4)
        ),
        [x],
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_array_bounds(dtype: str) -> None:
    x = np.linspace(-2.0, 2.0, 24).reshape(4, 6) + 0.013
    lo = np.linspace(-1.5, 0.5, 6) + 0.007
    _compare(
        lambda x, lo, hi: fnp.clip(x, lo, hi),
        lambda x, lo, hi: torch.clamp(x, lo, hi),
        [x, lo, lo + 0.9],
        dtype,
    )


# ----------------------------------------------------------------------------- power


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [2, 3, -1, -2, 0, 1, 2.0, 3.0])
def test_power_integer_exponent_negative_base(dtype: str, p: Any) -> None:
    x = np.array([[-1.7, -0.6, 0.4, 1.3], [-2.1, 0.9, -0.3, 1.8]])
    _compare(lambda x: x**p, lambda x: x**p, [x], dtype)
    _compare(lambda x: fnp.power(x, p), lambda x: torch.pow(x, p), [x], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.5, -0.5, 1.5, 2.7])
def test_power_fractional_exponent(dtype: str, p: float) -> None:
    x = np.array([[0.3, 1.1, 2.4], [0.7, 1.9, 0.05]])
    _compare(lambda x: (x * 2.0) ** p, lambda x: (x * 2.0) ** p, [x], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_power_array_exponent_and_scalar_base(dtype: str) -> None:
    x = np.abs(_rand(60, 3, 4)) + 0.2
    y = _rand(61, 4)
    _compare(
        lambda x, y: x**y + 2.0**y - fnp.sqrt(x) ** 3,
        lambda x, y: x**y + 2.0**y - torch.sqrt(x) ** 3,
        [x, y],
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_power_negative_base_integer_valued_array_exponent(dtype: str) -> None:
    """A negative base with an integer-valued float exponent array: defined, like torch."""
    x = np.array([-1.5, -0.7, 0.6, 1.2])
    y = np.array([2.0, 3.0, -1.0, 2.0])
    _compare(
        lambda x: x ** fnp.asarray(y, dtype=x.dtype),
        lambda x: x ** torch.tensor(y, dtype=x.dtype),
        [x],
        dtype,
    )


# ----------------------------------------------------------------------------- matmul

MATMUL_SHAPES = [
    ((3, 4), (4, 2)),
    ((2, 1, 3, 4), (5, 4, 2)),  # batch dims broadcast
    ((5, 3, 4), (4, 2)),
    ((4,), (4, 2)),  # 1-D on the left
    ((3, 4), (4,)),  # 1-D on the right
    ((4,), (4,)),  # inner product
    ((4,), (2, 4, 3)),  # 1-D against a batch
    ((2, 3, 4), (4,)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "a_shape, b_shape", MATMUL_SHAPES, ids=[f"{a}@{b}" for a, b in MATMUL_SHAPES]
)
def test_matmul_broadcasting(dtype: str, a_shape: tuple, b_shape: tuple) -> None:
    _compare(
        lambda a, b: fnp.tanh(a @ b) + fnp.matmul(a, b),
        lambda a, b: torch.tanh(a @ b) + torch.matmul(a, b),
        [_rand(70, *a_shape), _rand(71, *b_shape)],
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_attention_like_composite(dtype: str) -> None:
    """Softmax of scaled scores, masked with where, times values: einsum, matmul, softmax."""
    mask = np.tril(np.ones((4, 4), dtype=bool))

    def ours(q: Any, k: Any, v: Any) -> Any:
        s = fnp.einsum("bqd,bkd->bqk", q, k) * 0.5
        s = fnp.where(mask, s, -1e9)
        return _softmax(s, -1) @ v

    def theirs(q: Any, k: Any, v: Any) -> Any:
        s = torch.einsum("bqd,bkd->bqk", q, k) * 0.5
        s = torch.where(torch.tensor(mask), s, -1e9)
        return torch.softmax(s, -1) @ v

    _compare(ours, theirs, [_rand(80, 2, 4, 3), _rand(81, 2, 4, 3), _rand(82, 2, 4, 5)], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ord_", [0.5, 1.5, 3.0, float("inf")])
def test_vector_norms_with_zeros(dtype: str, ord_: float) -> None:
    x = [[0.0, -1.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0], [2.0, 0.0, -2.0, 1.0]]
    _compare(
        lambda a: fnp.linalg.norm(a, ord=ord_, axis=-1),
        lambda a: torch.linalg.vector_norm(a, ord=ord_, dim=-1),
        [x],
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_take_along_axis_with_broadcast_indices(dtype: str) -> None:
    idx = np.array([[0, 3, 3]])
    _compare(
        lambda a: fnp.take_along_axis(a, idx, axis=1),
        lambda a: torch.take_along_dim(a, torch.tensor(idx), dim=1),
        [np.arange(12.0).reshape(3, 4) / 7],
        dtype,
    )
