"""Write your own differentiable op, test its gradients, and train with it.

The op is swish with a learnable slope per feature, ``y = x * sigmoid(beta * x)``.
1. ``@primitive`` makes a function on raw arrays an op the engine can differentiate, and
   ``defvjp`` gives one rule per argument: how a gradient ``g`` of the output flows back to it.
   The rules are written with funcnn.numpy ops, so they can be differentiated again.
2. ``check_grads(order=2)`` compares first *and* second derivatives with finite differences,
   on arrays that hypothesis draws (a broken rule is caught, as the demo shows).
3. The op then trains like any other: a small network fits sin(3x) with ``fn.value_and_grad``.

    python examples/gradcheck_your_layer.py [--smoke] [--epochs 10] [--steps 200] [--resume [PATH]]
"""

import sys

import numpy as np

import funcnn as fn
import funcnn.numpy as fnp
from funcnn.testing import check_grads

try:
    from hypothesis import given, settings
    from hypothesis import strategies as hst

    from funcnn.testing import strategies as st
except ImportError:
    sys.exit("this example draws test arrays with hypothesis: pip install hypothesis")

from _data import parse, parser, progress, write_curves


def _sigmoid(z):
    return 0.5 * (1.0 + fnp.tanh(0.5 * z))  # = 1 / (1 + exp(-z)), and never overflows


@fn.primitive
def swish(x, beta):
    """x * sigmoid(beta * x), with ``x`` (..., F) and a learnable ``beta`` (F,)."""
    if beta.ndim != 1 or x.shape[-1:] != beta.shape:
        raise ValueError(
            f"swish: x {x.shape} needs beta of shape ({x.shape[-1]},), got {beta.shape}"
        )
    xp = fn.backend.namespace(x, beta)
    return x * (0.5 * (1.0 + xp.tanh(0.5 * beta * x)))


def _swish_dx(g, ans, x, beta):
    s = _sigmoid(beta * x)
    return g * (s + beta * x * s * (1.0 - s))


def _swish_dbeta(g, ans, x, beta):
    s = _sigmoid(beta * x)
    batch_axes = tuple(range(x.ndim - 1))  # beta was broadcast over them: sum them out
    return fnp.sum(g * x * x * s * (1.0 - s), axis=batch_axes)


swish.defvjp(_swish_dx, _swish_dbeta)


# A copy with a classic mistake in its beta rule (one factor of x), to see check_grads catch it.
@fn.primitive
def broken_swish(x, beta):
    return swish(x, beta)


broken_swish.defvjp(
    _swish_dx,
    lambda g, ans, x, beta: fnp.sum(g * x * _sigmoid(beta * x), axis=tuple(range(x.ndim - 1))),
)

# x of any shape (..., F) with 1 to 3 dimensions, and beta of shape (F,)
x_and_beta = st.shapes(min_dims=1, max_dims=3).flatmap(
    lambda shape: hst.tuples(st.arrays(shape), st.arrays(shape[-1:]))
)


def test_swish_grads(max_examples):
    @settings(max_examples=max_examples, deadline=None, database=None)
    @given(x_and_beta)
    def check(args):
        check_grads(swish, args, order=2)  # d/dx, d/dbeta, and their derivatives

    check()


def sin_data():
    x = np.linspace(-1, 1, 64, dtype=np.float32)[:, None]
    return x, np.sin(3 * x)


def init_params(seed):
    """A 1-16-1 network with swish in the middle."""
    rng = np.random.default_rng(seed)
    return {
        "w1": rng.normal(0, 1.0, (1, 16)).astype(np.float32),
        "b1": np.zeros(16, np.float32),
        "beta": np.ones(16, np.float32),
        "w2": rng.normal(0, 0.25, (16, 1)).astype(np.float32),
    }


def loss_fn(params, x, y):
    hidden = swish(x @ params["w1"] + params["b1"], params["beta"])
    return fnp.mean((hidden @ params["w2"] - y) ** 2)


def main():
    p = parser(
        __doc__.splitlines()[0],
        name="gradcheck_your_layer",
        epochs=10,
        batch_size=64,
        lr=0.2,
        images=False,
    )
    p.add_argument("--steps", type=int, default=200, help="gradient steps per epoch")
    args = parse(p)

    draws = 5 if args.smoke else 30
    test_swish_grads(draws)
    print(f"swish: first and second derivatives agree with finite differences ({draws} draws)")

    x, beta = np.linspace(-2, 2, 6).reshape(2, 3), np.array([0.5, 1.0, 2.0])
    try:
        check_grads(broken_swish, (x, beta), order=1)
    except AssertionError as err:
        print(f"broken_swish is caught: {str(err).splitlines()[0][:110]}...")
    else:
        sys.exit("check_grads missed the broken rule")

    # The op trains like any other: the network fits y = sin(3x) on [-1, 1] (all 64 points in
    # every step, so --batch-size is unused) by plain gradient descent.
    x, y = sin_data()
    params, start, history = init_params(args.seed), 1, []
    if args.resume:
        saved = fn.load_tree(args.resume)
        params, start, history = saved["params"], saved["epoch"] + 1, saved["history"]
        print(f"resumed from {args.resume} after epoch {saved['epoch']}")
    value_and_grad = fn.value_and_grad(loss_fn)
    steps = 10 if args.smoke else args.steps
    first = float(loss_fn(params, x, y))
    for epoch in range(start, args.epochs + 1):
        desc, total = f"epoch {epoch}/{args.epochs}", 0.0
        bar = progress(range(steps), steps, desc)
        for _ in bar:
            value, grads = value_and_grad(params, x, y)
            params = fn.tree.map(lambda p, g: p - args.lr * g, params, grads)
            total += float(value)
            bar.set_postfix(loss=float(value))
        history.append({"epoch": epoch, "train_loss": total / steps})
        print(f"{desc}: mean loss {total / steps:.5f}")
        if args.save:
            fn.save_tree(args.save, {"params": params, "epoch": epoch, "history": history})

    if history:
        last = float(loss_fn(params, x, y))
        print(f"fit sin(3x): loss {first:.4f} -> {last:.4f}")
        print(f"learned beta: {np.round(params['beta'][:4], 2)}...")
        print(f"curves: {write_curves(history, args.out, 'gradcheck_your_layer')}")
        if args.save:
            print(f"checkpoint: {args.save}")
    print("gradients ok")


if __name__ == "__main__":
    main()
