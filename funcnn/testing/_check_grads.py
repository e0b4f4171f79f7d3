"""check_grads: the engine's derivatives against central finite differences."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from funcnn import backend, tree
from funcnn.autodiff._core import strip
from funcnn.autodiff._transforms import jvp, vjp

__all__ = ["check_grads"]


def _to_f64(x: Any) -> Any:
    if backend.is_array(x) and backend.is_floating(x):
        xp = backend.namespace(x)
        return xp.astype(x, backend.resolve_dtype(xp, "float64"))
    if isinstance(x, float):
        return backend.asarray(x, dtype="float64")
    return x


def _is_diff(x: Any) -> bool:
    return backend.is_array(strip(x)) and backend.is_floating(strip(x))


def _random_like(x: Any, seed: int) -> Any:
    r = strip(x)
    host = backend.random_draw(
        backend.random_bits_key(seed), "normal", tuple(r.shape), dtype="float64", backend="numpy"
    )
    return backend.from_numpy(host, like=r)


def _vdot(a: Any, b: Any) -> float:
    total = 0.0
    for x, y in zip(tree.leaves(a), tree.leaves(b)):
        xp = backend.namespace(strip(x), strip(y))
        total += float(xp.sum(strip(x) * strip(y)))
    return total


def _axpy(a: float, x: Any, y: Any) -> Any:
    return tree.map(lambda xi, yi: yi + a * xi, x, y)


class _Split:
    """The differentiable leaves of ``args`` as a flat list, and the way back."""

    def __init__(self, args: tuple) -> None:
        self.leaves, self.treedef = tree.flatten(args)
        self.diff = [i for i, x in enumerate(self.leaves) if _is_diff(x)]

    def rebuild(self, diff_leaves: Sequence[Any]) -> tuple:
        full = list(self.leaves)
        for i, x in zip(self.diff, diff_leaves):
            full[i] = x
        return tree.unflatten(self.treedef, full)

    def name(self, k: int) -> str:
        paths = tree.leaves_with_path(tree.unflatten(self.treedef, list(range(len(self.leaves)))))
        path = paths[self.diff[k]][0]
        head, _, rest = path.partition(".")
        return f"argument {head}" + (f" (leaf '{rest}')" if rest else "")


def _numeric_dir(f: Callable, xs: list, v: list, eps: float) -> Any:
    plus = f(*[x + eps * d for x, d in zip(xs, v)])
    minus = f(*[x - eps * d for x, d in zip(xs, v)])
    return tree.map(lambda p, m: (p - m) / (2 * eps), plus, minus)


def _worst_element(f: Callable, xs: list, u: Any, analytic: list, eps: float, split: _Split) -> str:
    """Coordinate-wise finite differences (first 2,000 elements of each leaf) to name the worst element."""
    worst = (-1.0, "", None, 0.0, 0.0)
    for k, x in enumerate(xs):
        host = backend.to_numpy(x)
        ga = backend.to_numpy(analytic[k]).reshape(-1)
        for j in range(min(host.size, 2000)):
            e = host.reshape(-1) * 0.0
            e[j] = 1.0
            d = [
                backend.from_numpy(e.reshape(host.shape), like=x) if i == k else x * 0.0
                for i, x in enumerate(xs)
            ]
            num = _vdot(u, _numeric_dir(f, xs, d, eps))
            err = abs(num - float(ga[j]))
            if err > worst[0]:
                idx = tuple(int(i) for i in _unravel(j, host.shape))
                worst = (err, split.name(k), idx, float(ga[j]), num)
    err, name, idx, a, n = worst
    where = f"{name}{list(idx) if idx is not None else ''}"
    return f"worst element: {where}: analytic {a!r}, numeric {n!r} (|diff| {err:.3g})"


def _unravel(j: int, shape: tuple) -> list:
    out = []
    for s in reversed(shape):
        out.append(j % s if s else 0)
        j //= s if s else 1
    return list(reversed(out))


def _check_order1(
    f: Callable,
    split: _Split,
    modes: Sequence[str],
    eps: float,
    atol: float,
    rtol: float,
    seed: int,
    label: str,
) -> None:
    xs = [split.leaves[i] for i in split.diff]
    if not xs:
        raise ValueError("check_grads: no floating-point argument to differentiate")

    def flat_f(*diff: Any) -> Any:
        return f(*split.rebuild(diff))

    v = [_random_like(x, seed + 1 + k) for k, x in enumerate(xs)]
    out, vjp_fn = vjp(flat_f, *xs)
    u = tree.map(lambda o: _random_like(o, seed + 1000), out)
    numeric = _vdot(u, _numeric_dir(flat_f, xs, v, eps))
    tol = atol + rtol * abs(numeric)
    if "rev" in modes:
        g = vjp_fn(u)
        analytic = _vdot(list(g), v)
        if abs(analytic - numeric) > tol:
            raise AssertionError(
                f"check_grads ({label}, reverse mode): u.J.v is {analytic!r} by the engine but {numeric!r} "
                f"by central differences (eps={eps}); {_worst_element(flat_f, xs, u, list(g), eps, split)}"
            )
    if "fwd" in modes:
        _, t_out = jvp(flat_f, xs, v)
        analytic = _vdot(u, t_out)
        if abs(analytic - numeric) > tol:
            g = vjp_fn(u)
            raise AssertionError(
                f"check_grads ({label}, forward mode): u.J.v is {analytic!r} by the engine but {numeric!r} "
                f"by central differences (eps={eps}); {_worst_element(flat_f, xs, u, list(g), eps, split)}"
            )


def check_grads(
    f: Callable,
    args: Sequence[Any],
    order: int = 1,
    modes: Sequence[str] = ("rev",),
    eps: float | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    seed: int = 0,
) -> None:
    """Check ``f``'s derivatives at ``args`` against central finite differences.

    Along random directions ``v`` (inputs) and ``u`` (outputs), compares ``u . J v`` from the
    engine (reverse mode: ``vjp``; forward mode: ``jvp``) with ``u . (f(x + eps v) - f(x - eps v)) / 2 eps``.
    With ``order=2`` it also checks the derivatives of the VJP itself (second derivatives).
    Floating arguments are cast to float64 first; integer and boolean leaves stay constant.

    Args:
        f: function of ``*args`` returning an array or a pytree of arrays.
        args: the arguments (pytrees allowed).
        order: 1 or 2.
        modes: any of "rev" and "fwd".
        eps, atol, rtol: step and tolerances (defaults 1e-6, 1e-6, 1e-5; float64).

    Raises:
        AssertionError: naming the argument, the worst element, and both values.
    """
    if order not in (1, 2):
        raise ValueError(f"check_grads: order must be 1 or 2, got {order}")
    bad = [m for m in modes if m not in ("rev", "fwd")]
    if bad:
        raise ValueError(f"check_grads: unknown mode(s) {bad}; expected 'rev' and/or 'fwd'")
    eps = 1e-6 if eps is None else eps
    atol = 1e-6 if atol is None else atol
    rtol = 1e-5 if rtol is None else rtol
    args = tuple(tree.map(_to_f64, tuple(args)))
    split = _Split(args)
    _check_order1(f, split, modes, eps, atol, rtol, seed, "order 1")
    if order == 2:
        xs = [split.leaves[i] for i in split.diff]

        def flat_f(*diff: Any) -> Any:
            return f(*split.rebuild(diff))

        out = flat_f(*xs)
        u = tree.map(lambda o: _random_like(strip(o), seed + 2000), out)

        def vjp_of(*diff: Any) -> Any:
            _, fn_ = vjp(flat_f, *diff)
            return list(fn_(u))

        _check_order1(
            vjp_of, _Split(tuple(xs)), modes, eps, atol * 10, rtol * 10, seed + 7, "order 2"
        )
