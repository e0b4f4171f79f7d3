"""Products: matmul dot tensordot einsum, and vector/matrix norms."""

from __future__ import annotations

from typing import Any

from funcnn import backend
from funcnn import numpy as fnp
from funcnn.autodiff._core import primitive, strip
from funcnn.numpy._helpers import normalize_axis, unbroadcast

_INF = float("inf")

ns = backend.namespace


@primitive
def matmul(a: Any, b: Any) -> Any:
    """Matrix product with NumPy's broadcasting and 1-D rules (also ``a @ b``).

    Args:
        a: ``(..., n, k)`` or ``(k,)``.
        b: ``(..., k, m)`` or ``(k,)``; leading axes broadcast with ``a``'s.
    Returns:
        ``(..., n, m)``, without the ``n`` (``m``) axis when ``a`` (``b``) is 1-D.

    Raises:
        ValueError: naming both shapes when the inner dimensions differ.
    """
    try:
        return ns(a, b).matmul(a, b)
    except (ValueError, TypeError):
        _check_matmul(a, b, "matmul")  # a clearer message for the common mistakes
        raise


def _matmul_vjp_a(g: Any, ans: Any, a: Any, b: Any) -> Any:
    if b.ndim == 1:
        # a (..., n, k) or (k,), g (..., n) or ()
        return unbroadcast(g * b if a.ndim == 1 else fnp.expand_dims(g, -1) * b, a)
    bt = fnp.swapaxes(b, -1, -2)
    if a.ndim == 1:
        # g (..., m), b (..., k, m): (..., 1, m) @ (..., m, k) -> (..., k)
        return unbroadcast(fnp.squeeze(matmul(fnp.expand_dims(g, -2), bt), -2), a)
    return unbroadcast(matmul(g, bt), a)


def _matmul_vjp_b(g: Any, ans: Any, a: Any, b: Any) -> Any:
    if a.ndim == 1:
        # b (..., k, m) or (k,), g (..., m) or ()
        return unbroadcast(
            g * a if b.ndim == 1 else fnp.expand_dims(a, -1) * fnp.expand_dims(g, -2), b
        )
    at = fnp.swapaxes(a, -1, -2)
    if b.ndim == 1:
        # g (..., n), a (..., n, k): (..., k, n) @ (..., n, 1) -> (..., k)
        return unbroadcast(fnp.squeeze(matmul(at, fnp.expand_dims(g, -1)), -1), b)
    return unbroadcast(matmul(at, g), b)


matmul.defvjp(_matmul_vjp_a, _matmul_vjp_b)


def _check_matmul(a: Any, b: Any, fn: str) -> None:
    ra, rb = strip(a), strip(b)
    if ra.ndim == 0 or rb.ndim == 0:
        raise ValueError(
            f"{fn}: operands must have at least one dimension, got shapes {tuple(ra.shape)} and {tuple(rb.shape)}"
        )
    ka = ra.shape[-1]
    kb = rb.shape[0] if rb.ndim == 1 else rb.shape[-2]
    if ka != kb:
        raise ValueError(
            f"{fn}: shapes {tuple(ra.shape)} and {tuple(rb.shape)} do not align: "
            f"{ka} (last axis of the first) != {kb} ({'only' if rb.ndim == 1 else 'second-to-last'} axis of the second)"
        )


checked_matmul = matmul  # the ``@`` operator (matmul's errors name both shapes)


def dot(a: Any, b: Any) -> Any:
    """NumPy's ``dot``: matmul for 1-D/2-D operands, a sum over a's last and b's second-to-last axis otherwise."""
    ra, rb = strip(a), strip(b)
    if ra.ndim == 0 or rb.ndim == 0:
        return a * b
    if ra.ndim <= 2 and rb.ndim <= 2:
        _check_matmul(a, b, "dot")
        return matmul(a, b)
    return tensordot(a, b, axes=([ra.ndim - 1], [rb.ndim - 2 if rb.ndim > 1 else 0]))


def tensordot(a: Any, b: Any, axes: Any = 2) -> Any:
    """Sum products over the given axes (NumPy semantics), as one GEMM on reshaped operands."""
    ra, rb = strip(a), strip(b)
    if isinstance(axes, int):
        axes_a = list(range(ra.ndim - axes, ra.ndim))
        axes_b = list(range(axes))
    else:
        axes_a, axes_b = (
            [axes[0]] if isinstance(axes[0], int) else list(axes[0]),
            [axes[1]] if isinstance(axes[1], int) else list(axes[1]),
        )
    axes_a = [x % ra.ndim for x in axes_a]
    axes_b = [x % rb.ndim for x in axes_b]
    if len(axes_a) != len(axes_b) or any(
        ra.shape[i] != rb.shape[j] for i, j in zip(axes_a, axes_b)
    ):
        raise ValueError(
            f"tensordot: shapes {tuple(ra.shape)} and {tuple(rb.shape)} do not align on axes {axes_a} / {axes_b}"
        )
    free_a = [i for i in range(ra.ndim) if i not in axes_a]
    free_b = [j for j in range(rb.ndim) if j not in axes_b]
    k = backend.prod([ra.shape[i] for i in axes_a])
    # explicit sizes, not -1: a length-0 contracted axis leaves -1 undetermined
    a2 = fnp.reshape(
        fnp.transpose(a, free_a + axes_a), (backend.prod([ra.shape[i] for i in free_a]), k)
    )
    b2 = fnp.reshape(
        fnp.transpose(b, axes_b + free_b), (k, backend.prod([rb.shape[j] for j in free_b]))
    )
    return fnp.reshape(
        matmul(a2, b2), tuple(ra.shape[i] for i in free_a) + tuple(rb.shape[j] for j in free_b)
    )


# ----------------------------------------------------------------------------- einsum

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _parse_einsum(subscripts: str, shapes: list) -> tuple[list[str], str]:
    """Explicit subscripts for each operand and the output, with '...' spelled out."""
    s = subscripts.replace(" ", "")
    if "->" in s:
        ins, out = s.split("->")
    else:
        ins, out = s, None
    terms = ins.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: {len(terms)} operand subscripts for {len(shapes)} operands")
    used = set(c for c in s if c.isalpha())
    spare = [c for c in _LETTERS if c not in used]
    n_ell = 0
    for t, sh in zip(terms, shapes):
        if "..." in t:
            n_ell = max(n_ell, len(sh) - (len(t) - 3))
    ell = "".join(spare[:n_ell])
    full = []
    for t, sh in zip(terms, shapes):
        if "..." in t:
            k = len(sh) - (len(t) - 3)
            t = t.replace("...", ell[n_ell - k :])
        if len(t) != len(sh):
            raise ValueError(
                f"einsum: subscripts {t!r} do not match an operand of shape {tuple(sh)}"
            )
        full.append(t)
    if out is None:
        counts: dict = {}
        for t in full:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    else:
        out = out.replace("...", ell)
    return full, out


@primitive
def _einsum(*operands: Any, spec: str) -> Any:
    return backend.einsum(spec, *operands)


def _einsum_rule(i: int) -> Any:
    def rule(g: Any, ans: Any, *operands: Any, spec: str) -> Any:
        ins, out = spec.split("->")
        terms = ins.split(",")
        target = terms[i]
        size: dict = {}
        for c, n in zip(target, operands[i].shape, strict=True):
            size.setdefault(c, n)
        uniq = "".join(dict.fromkeys(target))  # target's letters, each once
        others = [t for k, t in enumerate(terms) if k != i]
        available = set(out).union(*others)
        kept = "".join(c for c in uniq if c in available)
        res = _einsum(
            g,
            *[o for k, o in enumerate(operands) if k != i],
            spec=",".join([out, *others]) + "->" + kept,
        )
        # undo broadcasting of operand i's length-1 axes against longer ones elsewhere
        summed = tuple(j for j, c in enumerate(kept) if size[c] == 1 and res.shape[j] != 1)
        if summed:
            res = fnp.sum(res, axis=summed, keepdims=True)
        # and of the others' length-1 axes against operand i's longer ones
        want = tuple(size[c] for c in kept)
        if tuple(res.shape) != want:
            res = fnp.broadcast_to(res, want)
        # letters summed away in the forward pass (only in operand i) get a broadcast gradient
        if kept != uniq:
            res = fnp.reshape(res, tuple(size[c] if c in kept else 1 for c in uniq))
            res = fnp.broadcast_to(res, tuple(size[c] for c in uniq))
        # a repeated letter (a diagonal, e.g. 'ii') puts the gradient on that diagonal
        if uniq != target:
            spare = iter(c for c in _LETTERS if c not in spec)
            seen: set = set()
            letters, eye_terms, eyes = [], [], []
            raw = strip(res)
            for c in target:
                if c in seen:
                    d = next(spare)
                    letters.append(d)
                    eye_terms.append(c + d)
                    eyes.append(backend.eye(size[c], dtype=raw.dtype, like=raw))
                else:
                    seen.add(c)
                    letters.append(c)
            res = _einsum(res, *eyes, spec=",".join([uniq, *eye_terms]) + "->" + "".join(letters))
        return unbroadcast(res, operands[i])

    return rule


class _EinsumRules:
    def __init__(self) -> None:
        self._made: dict = {}

    def __getitem__(self, i: int) -> Any:
        r = self._made.get(i)
        if r is None:
            r = self._made[i] = _einsum_rule(i)
        return r

    def __len__(self) -> int:
        return 1 << 30


_einsum.rules = _EinsumRules()


def einsum(subscripts: str, *operands: Any) -> Any:
    """Einstein summation with NumPy's subscripts, including '...' and the implicit output.

    Differentiable in every operand, also where a letter repeats within one operand (a
    diagonal or trace, e.g. ``'ii->'``). Length-1 axes broadcast, as in NumPy.

    Args:
        subscripts: e.g. ``"bij,bjk->bik"``, ``"...ij,...jk"``, ``"ii->i"``.
        *operands: arrays, one per comma-separated term.
    Returns:
        The contraction, with the output subscripts' axes.
    """
    shapes = [tuple(strip(o).shape) for o in operands]
    terms, out = _parse_einsum(subscripts, shapes)
    try:
        return _einsum(*operands, spec=",".join(terms) + "->" + out)
    except ValueError:
        _check_einsum_sizes(subscripts, terms, shapes)
        raise


def _check_einsum_sizes(subscripts: str, terms: list, shapes: list) -> None:
    seen: dict = {}
    for k, (t, sh) in enumerate(zip(terms, shapes)):
        for c, n in zip(t, sh):
            m, where = seen.setdefault(c, (n, k))
            if n != m and 1 not in (n, m):
                raise ValueError(
                    f"einsum: subscript {c!r} of {subscripts!r} has length {m} in operand {where} "
                    f"(shape {shapes[where]}) but {n} in operand {k} (shape {sh})"
                )


# ----------------------------------------------------------------------------- norms


@primitive
def _norm2(x: Any, axis: Any, keepdims: bool) -> Any:
    xp = ns(x)
    return xp.sqrt(xp.sum(x * x, axis=axis, keepdims=keepdims))


def _norm2_vjp(g: Any, ans: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    from funcnn.numpy._helpers import axes_tuple
    from funcnn.numpy._reductions import _keep_shape, _restore

    full = (
        ans
        if keepdims
        else fnp.reshape(ans, _keep_shape(tuple(x.shape), axes_tuple(axis, x.ndim, "norm")))
    )
    safe = fnp.where(full == 0, 1.0, full)
    return _restore(g, x, axis, keepdims) * fnp.where(full == 0, 0.0, x / safe)


_norm2.defvjp(_norm2_vjp)


def _vector_norm(x: Any, ord: Any, axis: Any, keepdims: bool) -> Any:  # noqa: A002
    if ord is None or ord == 2:
        return _norm2(x, axis=axis, keepdims=keepdims)
    if ord == _INF:
        return fnp.max(fnp.abs(x), axis=axis, keepdims=keepdims)
    if ord == -_INF:
        return fnp.min(fnp.abs(x), axis=axis, keepdims=keepdims)
    if ord == 0:  # the number of non-zero elements: piecewise constant, no gradient
        raw = strip(x)
        return fnp.sum(fnp.astype(raw != 0, raw.dtype), axis=axis, keepdims=keepdims)
    if ord == 1:
        return fnp.sum(fnp.abs(x), axis=axis, keepdims=keepdims)
    if isinstance(ord, str):
        raise ValueError(f"norm: ord={ord!r} is a matrix norm; a vector norm takes a number")
    return _normp(x, p=float(ord), axis=axis, keepdims=keepdims)


@primitive
def _normp(x: Any, p: float, axis: Any, keepdims: bool) -> Any:
    xp = ns(x)
    return xp.sum(xp.abs(x) ** p, axis=axis, keepdims=keepdims) ** (1.0 / p)


def _normp_vjp(g: Any, ans: Any, x: Any, p: float, axis: Any, keepdims: bool) -> Any:
    # d||x||_p / dx_i = sign(x_i) |x_i|^(p-1) / ||x||^(p-1), taken as 0 where x_i = 0 and where
    # the norm is 0 (PyTorch's subgradient; the plain composition gives NaN there)
    from funcnn.numpy._helpers import axes_tuple
    from funcnn.numpy._reductions import _keep_shape, _restore

    full = (
        ans
        if keepdims
        else fnp.reshape(ans, _keep_shape(tuple(x.shape), axes_tuple(axis, x.ndim, "norm")))
    )
    zero_x, zero_n = x == 0, full == 0
    scaled = fnp.where(zero_x, 0.0, fnp.sign(x) * fnp.abs(fnp.where(zero_x, 1.0, x)) ** (p - 1.0))
    scale = fnp.where(zero_n, 0.0, 1.0 / fnp.where(zero_n, 1.0, full) ** (p - 1.0))
    return _restore(g, x, axis, keepdims) * scaled * scale


_normp.defvjp(_normp_vjp)


def _matrix_norm(x: Any, ord: Any, axes: tuple, keepdims: bool) -> Any:  # noqa: A002
    row, col = axes
    if ord in (None, "fro", "f"):
        out = _norm2(x, axis=axes, keepdims=True)
    elif ord in (1, -1):  # largest (smallest) absolute column sum
        sums = fnp.sum(fnp.abs(x), axis=row, keepdims=True)
        out = (
            fnp.max(sums, axis=col, keepdims=True)
            if ord == 1
            else fnp.min(sums, axis=col, keepdims=True)
        )
    elif ord in (_INF, -_INF):  # largest (smallest) absolute row sum
        sums = fnp.sum(fnp.abs(x), axis=col, keepdims=True)
        out = (
            fnp.max(sums, axis=row, keepdims=True)
            if ord > 0
            else fnp.min(sums, axis=row, keepdims=True)
        )
    elif ord in (2, -2, "nuc"):
        raise NotImplementedError(
            f"norm: matrix norm ord={ord!r} needs singular values, which funcnn does not "
            "differentiate; use ord='fro', 1, -1, inf or -inf"
        )
    else:
        raise ValueError(f"norm: invalid norm order {ord!r} for matrices")
    return out if keepdims else fnp.squeeze(out, axis=axes)


def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A002
    """Vector and matrix norms with :func:`numpy.linalg.norm`'s arguments and semantics.

    ``axis`` an int: vector norms along it (``ord`` None/2, 1, inf, -inf, 0 or any p).
    ``axis`` a pair of ints: matrix norms over those axes (``ord`` None/'fro', 1, -1, inf,
    -inf). ``axis`` None: the 2-norm of all elements when ``ord`` is None, otherwise the
    vector norm of a 1-D ``x`` or the matrix norm of a 2-D ``x``.
    The gradient of the 2-norm at zero is zero (a subgradient), like PyTorch.

    Args:
        x: array.
        ord: the order of the norm.
        axis: None, an int, or a pair of ints.
        keepdims: keep the reduced axes with length 1.
    Returns:
        ``x``'s shape without the reduced axes (with them as 1 when ``keepdims``).
    """
    nd = strip(x).ndim
    if axis is None:
        if ord is None:
            return _norm2(x, axis=None, keepdims=keepdims)
        if nd not in (1, 2):
            raise ValueError(
                f"norm: ord={ord!r} with axis=None needs a 1-D or 2-D array, got {nd} dimensions"
            )
        axis = 0 if nd == 1 else (0, 1)
    if isinstance(axis, int):
        return _vector_norm(x, ord, normalize_axis(axis, nd, "norm"), keepdims)
    axes = tuple(normalize_axis(a, nd, "norm") for a in axis)
    if len(axes) == 1:
        return _vector_norm(x, ord, axes[0], keepdims)
    if len(axes) != 2 or axes[0] == axes[1]:
        raise ValueError(f"norm: axis must be an int or a pair of distinct ints, got {axis!r}")
    return _matrix_norm(x, ord, axes, keepdims)


__all__ = ["matmul", "dot", "tensordot", "einsum", "norm", "checked_matmul"]
