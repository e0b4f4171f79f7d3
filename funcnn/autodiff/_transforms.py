"""Function transforms over the VJP engine: grad, vjp, jvp, jacobian, custom_vjp, checkpoint."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from funcnn import backend, tree
from funcnn.autodiff._core import (
    Box,
    Node,
    Primitive,
    backward,
    new_trace,
    split_results,
    strip,
    unbox,
)

__all__ = [
    "grad",
    "value_and_grad",
    "vjp",
    "jvp",
    "jacobian",
    "hessian",
    "custom_vjp",
    "stop_gradient",
    "checkpoint",
]

_NONSCALAR = (
    "{fn}: Gradient only defined for scalar-output functions. Output had shape: {shape}. "
    "Reduce it first (e.g. `.sum()` or `.mean()`), or use fn.vjp / fn.jacobian for non-scalar outputs."
)


def _as_input(x: Any, fn: str, where: str) -> Any:
    """A differentiable input: floating arrays (and boxes) pass; Python floats become arrays."""
    if isinstance(x, Box):
        if not backend.is_floating(strip(x)):
            raise TypeError(
                f"{fn}: {where} has dtype {strip(x).dtype}; only floating inputs can be differentiated"
            )
        return x
    if isinstance(x, bool) or isinstance(x, int):
        raise TypeError(
            f"{fn}: {where} is the Python {type(x).__name__} {x!r}; only floating inputs can be "
            "differentiated (pass a float, e.g. 3.0, or a floating array)"
        )
    if isinstance(x, float):
        return backend.asarray(x)
    if not backend.is_array(x):
        raise TypeError(
            f"{fn}: {where} is a {type(x).__name__}, not an array; cannot differentiate it"
        )
    if not backend.is_floating(x):
        raise TypeError(
            f"{fn}: {where} has dtype {x.dtype}; only floating inputs can be differentiated "
            "(integer and boolean inputs are constants: leave them out of argnums)"
        )
    return x


def _zeros_like(x: Any) -> Any:
    r = strip(x)
    return backend.zeros(r.shape, dtype=r.dtype, like=r)


def _cast_like(g: Any, x: Any) -> Any:
    r = strip(x)
    if strip(g).dtype != r.dtype:
        from funcnn import numpy as fnp

        return fnp.astype(g, r.dtype)
    return g


def _vjp(
    f: Callable, primals: Sequence[Any], has_aux: bool, keep_graph: bool, fn_name: str
) -> tuple:
    trace = new_trace()
    flat_defs = []
    boxed_args = []
    roots: list[list[Node]] = []
    raw_inputs: list[list[Any]] = []
    for i, p in enumerate(primals):
        leaves, treedef = tree.flatten(p)
        leaves = [
            _as_input(x, fn_name, f"argument {i}" + (f" (leaf {j})" if len(leaves) > 1 else ""))
            for j, x in enumerate(leaves)
        ]
        nodes = [Node.leaf() for _ in leaves]
        boxed_args.append(
            tree.unflatten(treedef, [Box(x, trace, n) for x, n in zip(leaves, nodes)])
        )
        flat_defs.append(treedef)
        roots.append(nodes)
        raw_inputs.append(leaves)
    out = f(*boxed_args)
    aux = None
    if has_aux:
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError(
                f"{fn_name}: with has_aux=True the function must return a pair (output, aux), "
                f"got {type(out).__name__}"
            )
        out, aux = out
        aux = tree.map(lambda x: unbox(x, trace), aux)
    out_leaves, out_def = tree.flatten(out)
    out_nodes = [x._node if isinstance(x, Box) and x._trace == trace else None for x in out_leaves]
    out_raw = [unbox(x, trace) for x in out_leaves]
    del boxed_args, out, out_leaves

    def vjp_fn(cotangent: Any) -> tuple:
        ct_leaves, ct_def = tree.flatten(cotangent)
        if ct_def != out_def:
            raise ValueError(
                f"{fn_name}: the cotangent's structure {ct_def} differs from the output's {out_def}"
            )
        starts = []
        for node, ct, o in zip(out_nodes, ct_leaves, out_raw):
            if tuple(getattr(ct, "shape", ())) != tuple(getattr(o, "shape", ())):
                raise ValueError(
                    f"{fn_name}: cotangent has shape {tuple(getattr(ct, 'shape', ()))} but the output "
                    f"has shape {tuple(getattr(o, 'shape', ()))}"
                )
            if node is not None:
                if isinstance(ct, (int, float)):
                    ct = backend.full((), ct, dtype=o.dtype, like=strip(o))
                starts.append((node, ct))
        got = backward(starts, keep_graph=keep_graph) if starts else {}
        result = []
        for treedef, nodes, leaves in zip(flat_defs, roots, raw_inputs):
            grads = []
            for n, x in zip(nodes, leaves):
                g = got.get(n)
                grads.append(_zeros_like(x) if g is None else _cast_like(g, x))
            result.append(tree.unflatten(treedef, grads))
        return tuple(result)

    out_value = tree.unflatten(out_def, out_raw)
    if has_aux:
        return out_value, vjp_fn, aux
    return out_value, vjp_fn


def vjp(f: Callable, *primals: Any, has_aux: bool = False) -> tuple:
    """Evaluate ``f(*primals)`` and return ``(out, vjp_fn)`` (``(out, vjp_fn, aux)`` with has_aux).

    ``vjp_fn(cotangent)`` returns a tuple with one cotangent pytree per primal; it may be called
    many times. Primals and outputs may be pytrees of floating arrays.
    """
    return _vjp(f, primals, has_aux, keep_graph=True, fn_name="vjp")


def _norm_argnums(argnums: int | Sequence[int], nargs: int, fn_name: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not nums or not all(isinstance(i, int) for i in nums):
        raise TypeError(
            f"{fn_name}: argnums must be an int or a non-empty tuple of ints, got {argnums!r}"
        )
    out = []
    for i in nums:
        j = i + nargs if i < 0 else i
        if not 0 <= j < nargs:
            raise ValueError(
                f"{fn_name}: argnums={argnums!r} asks for argument {i} but the function was called "
                f"with {nargs} positional argument(s)"
            )
        out.append(j)
    if len(set(out)) != len(out):
        raise ValueError(f"{fn_name}: argnums={argnums!r} repeats an argument")
    return tuple(out)


def value_and_grad(
    f: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable:
    """Like :func:`grad`, returning ``(value, grads)`` (``((value, aux), grads)`` with has_aux)."""

    def value_and_grad_f(*args: Any, **kwargs: Any) -> Any:
        nums = _norm_argnums(argnums, len(args), "grad")

        def partial(*diff: Any) -> Any:
            full = list(args)
            for i, d in zip(nums, diff):
                full[i] = d
            return f(*full, **kwargs)

        res = _vjp(partial, [args[i] for i in nums], has_aux, keep_graph=False, fn_name="grad")
        out, vjp_fn = res[0], res[1]
        raw = strip(out)
        if isinstance(raw, float):  # a constant function: zero gradients, as in JAX
            raw = backend.asarray(raw)
        shape = tuple(getattr(raw, "shape", ()))
        if not backend.is_array(raw) and not isinstance(raw, float) or shape != ():
            raise TypeError(
                _NONSCALAR.format(
                    fn="grad", shape=shape if backend.is_array(raw) else type(raw).__name__
                )
            )
        if not backend.is_floating(raw):
            raise TypeError(
                f"grad: the function's output has dtype {raw.dtype}; it must be floating"
            )
        grads = vjp_fn(backend.full((), 1.0, dtype=raw.dtype, like=raw))
        grads = grads[0] if isinstance(argnums, int) else grads
        if has_aux:
            return (out, res[2]), grads
        return out, grads

    value_and_grad_f.__name__ = f"value_and_grad({getattr(f, '__name__', 'f')})"
    return value_and_grad_f


def grad(f: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
    """The gradient of scalar-valued ``f`` with respect to ``args[argnums]``.

    Returns a function with ``f``'s signature returning gradients shaped like those arguments
    (a tuple when ``argnums`` is a tuple), and ``(grads, aux)`` when ``has_aux``.
    Grads have each input's shape and dtype. Nests to any order.
    """
    vg = value_and_grad(f, argnums, has_aux)

    def grad_f(*args: Any, **kwargs: Any) -> Any:
        (out, grads) = vg(*args, **kwargs)
        if has_aux:
            return grads, out[1]
        return grads

    grad_f.__name__ = f"grad({getattr(f, '__name__', 'f')})"
    return grad_f


def jvp(f: Callable, primals: Sequence[Any], tangents: Sequence[Any]) -> tuple:
    """Forward-mode product ``(f(*primals), J @ tangents)``.

    Computed by transposing the VJP (the VJP is linear in its cotangent), which needs no
    forward-mode rules: every primitive's VJP rule is written in differentiable ops.
    """
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: got {len(primals)} primals but {len(tangents)} tangents")
    for i, (p, t) in enumerate(zip(primals, tangents)):
        if tree.structure(p) != tree.structure(t):
            raise ValueError(
                f"jvp: tangent {i} has structure {tree.structure(t)}, primal has {tree.structure(p)}"
            )
        for a, b in zip(tree.leaves(p), tree.leaves(t)):
            if tuple(getattr(a, "shape", ())) != tuple(getattr(b, "shape", ())):
                raise ValueError(
                    f"jvp: tangent {i} has shape {getattr(b, 'shape', ())}, primal has {getattr(a, 'shape', ())}"
                )
    out, vjp_fn = vjp(f, *primals)
    dummy = tree.map(_zeros_like, out)
    _, transpose = vjp(vjp_fn, dummy)
    (t_out,) = transpose(tuple(tangents))
    return out, t_out


def jacobian(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """Reverse-mode Jacobian: for an output of shape S and an input of shape T, shape S + T.

    Inputs and outputs may be pytrees (as in ``jax.jacrev``): the result has the output's
    structure, each output leaf holding the Jacobian with respect to ``args[argnums]`` (a pytree
    like that argument, or a tuple of them when ``argnums`` is a tuple).
    """
    from funcnn import numpy as fnp

    def jac_f(*args: Any) -> Any:
        nums = _norm_argnums(argnums, len(args), "jacobian")

        def partial(*diff: Any) -> Any:
            full = list(args)
            for i, d in zip(nums, diff):
                full[i] = d
            return f(*full)

        out, vjp_fn = _vjp(
            partial, [args[i] for i in nums], False, keep_graph=True, fn_name="jacobian"
        )
        out_leaves, out_def = tree.flatten(out)
        raws = []
        for k, o in enumerate(out_leaves):
            r = strip(o)
            if isinstance(r, float):
                r = backend.asarray(r)
            if not backend.is_array(r):
                raise TypeError(
                    f"jacobian: the function's output (leaf {k}) is a {type(r).__name__}; "
                    "outputs must be arrays or pytrees of arrays"
                )
            raws.append(r)
        zeros_ct = [backend.zeros(r.shape, dtype=r.dtype, like=r) for r in raws]
        per_out = []
        for k, r in enumerate(raws):
            shape = tuple(r.shape)
            n = backend.prod(shape)
            eye = backend.eye(n, dtype=r.dtype, like=r) if n else None
            rows = []
            for row in range(n):
                ct = list(zeros_ct)
                ct[k] = backend.getitem(eye, row).reshape(shape)
                rows.append(vjp_fn(tree.unflatten(out_def, ct)))
            results = []
            for j, i in enumerate(nums):
                if n == 0:

                    def empty(a: Any, _shape: tuple = shape) -> Any:
                        a = backend.asarray(a) if isinstance(a, float) else strip(a)
                        return backend.zeros(_shape + tuple(a.shape), dtype=a.dtype, like=a)

                    results.append(tree.map(empty, args[i]))
                else:

                    def assemble(*leaf_rows: Any, _shape: tuple = shape) -> Any:
                        x_shape = tuple(leaf_rows[0].shape)
                        return fnp.reshape(fnp.stack(list(leaf_rows)), _shape + x_shape)

                    results.append(tree.map(assemble, *[rw[j] for rw in rows]))
            per_out.append(results[0] if isinstance(argnums, int) else tuple(results))
        return tree.unflatten(out_def, per_out)

    return jac_f


def hessian(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """The Hessian of scalar ``f``: ``jacobian(grad(f))``, shape T + T for an input of shape T.

    With pytree inputs or a tuple ``argnums`` the blocks nest as in ``jax.hessian``:
    ``hessian(f, argnums=(0, 1))(x, y)[i][j]`` is the block of ``args[i]`` and ``args[j]``.
    """
    return jacobian(grad(f, argnums), argnums)


def stop_gradient(x: Any) -> Any:
    """``x`` treated as a constant by every enclosing differentiation (a pytree is allowed)."""
    return tree.map(strip, x)


class custom_vjp:  # noqa: N801 - the JAX name
    """A function with a hand-written VJP (JAX convention).

    .. code-block:: python

        @fn.custom_vjp
        def f(x, y): ...
        def f_fwd(x, y): return f(x, y), residuals
        def f_bwd(residuals, g): return (gx, gy)       # one cotangent per positional argument
        f.defvjp(f_fwd, f_bwd)

    Arguments may be pytrees (``bwd`` returns matching pytrees, or None for a non-float one);
    the output may be an array or a tuple of arrays.
    """

    flat_cotangents = False  # checkpoint's bwd returns one cotangent per argument leaf

    def __init__(self, fun: Callable) -> None:
        self.fun = fun
        self.fwd: Callable | None = None
        self.bwd: Callable | None = None
        self.__name__ = getattr(fun, "__name__", "custom_vjp")
        self.__doc__ = fun.__doc__
        # The node holds this object in its arguments; the rule is a plain function, so the
        # primitive does not point back here (a bound method would make a reference cycle).
        self._prim = Primitive(lambda *a, **k: None, name=self.__name__)
        self._prim.defvjp_joint(_custom_vjp_rule)

    def defvjp(self, fwd: Callable, bwd: Callable) -> None:
        self.fwd, self.bwd = fwd, bwd

    def _rule(
        self, g: Any, ans: Any, argnums: tuple, res: Any, in_def: Any, out_def: Any, multi: bool
    ) -> list:
        if multi:
            g = g.filled(ans)
            g = tree.unflatten(out_def, list(g))
        cts = self.bwd(res, g)
        if self.flat_cotangents:
            return [cts[i] for i in argnums]
        if not isinstance(cts, tuple):
            raise TypeError(
                f"custom_vjp {self.__name__}: bwd must return a tuple, one entry per argument"
            )
        flat_cts: list = []
        n_args = len(in_def.children)
        if len(cts) != n_args:
            raise ValueError(
                f"custom_vjp {self.__name__}: bwd returned {len(cts)} cotangents for {n_args} arguments"
            )
        for c, sub in zip(cts, in_def.children):
            if c is None:
                flat_cts.extend([None] * sub.num_leaves)
            else:
                flat_cts.extend(tree.leaves(c) if sub.kind is not None else [c])
        if len(flat_cts) != in_def.num_leaves:
            raise ValueError(
                f"custom_vjp {self.__name__}: bwd's cotangents have {len(flat_cts)} leaves, the "
                f"arguments have {in_def.num_leaves}; return None for a whole argument that has no gradient"
            )
        return [flat_cts[i] for i in argnums]

    def __call__(self, *args: Any) -> Any:
        if self.fwd is None:
            raise TypeError(f"custom_vjp {self.__name__}: call .defvjp(fwd, bwd) before using it")
        leaves, in_def = tree.flatten(args)
        top = max((x._trace for x in leaves if isinstance(x, Box)), default=-1)
        if top < 0:
            return self.fun(*args)
        raw = [unbox(x, top) for x in leaves]
        argnums = tuple(i for i, x in enumerate(leaves) if isinstance(x, Box) and x._trace == top)
        parents = tuple(leaves[i]._node for i in argnums)
        out, res = self.fwd(*tree.unflatten(in_def, raw))
        out_leaves, out_def = tree.flatten(out)
        # fwd ran on the arguments' values below trace `top`, so a box of trace `top` or above in
        # its results was captured from an enclosing scope: the rule cannot give its gradient.
        if any(isinstance(x, Box) and x._trace >= top for x in out_leaves + tree.leaves(res)):
            if self.flat_cotangents:  # checkpoint: differentiate f itself (correct, not lean)
                return self.fun(*args)
            raise TypeError(
                f"custom_vjp {self.__name__}: the function closes over a value being "
                "differentiated (its result depends on a traced array that is not one of its "
                "arguments); the custom rule only gives gradients of the explicit arguments. "
                "Pass that value as an argument."
            )
        multi = out_def.kind is not None
        ans = tuple(out_leaves) if multi else out_leaves[0]
        node = Node(self._prim, (self, res, in_def, out_def, multi), {}, ans, argnums, parents)
        if multi:
            return tree.unflatten(out_def, list(split_results(node, ans, top)))
        return Box(ans, top, node)


def _custom_vjp_rule(g: Any, ans: Any, argnums: tuple, owner: custom_vjp, *rest: Any) -> list:
    return owner._rule(g, ans, argnums, *rest)


def checkpoint(f: Callable) -> Callable:
    """``f`` with its internals recomputed in the backward pass instead of stored.

    Gradients equal those of ``f``; memory holds only ``f``'s inputs between the passes. Pass
    the arrays being differentiated (parameters too) as arguments: where ``f`` closes over one,
    it is differentiated as it stands (correct gradients, but nothing is recomputed or saved).
    """

    def fwd(*args: Any) -> tuple:
        return f(*args), args

    def bwd(args: Any, g: Any) -> tuple:
        leaves, treedef = tree.flatten(args)
        diff = [i for i, x in enumerate(leaves) if backend.is_floating(strip(x))]

        def on_diff(*xs: Any) -> Any:
            full = list(leaves)
            for i, x in zip(diff, xs):
                full[i] = x
            return f(*tree.unflatten(treedef, full))

        _, vjp_fn = vjp(on_diff, *[leaves[i] for i in diff])
        flat: list = [None] * len(leaves)
        for i, c in zip(diff, vjp_fn(g)):
            flat[i] = c
        return flat

    wrapped = custom_vjp(f)
    wrapped.defvjp(fwd, bwd)
    wrapped.flat_cotangents = True
    wrapped.__name__ = f"checkpoint({getattr(f, '__name__', 'f')})"
    return wrapped
