"""Engine overhead: a 200-step chain ``x = tanh(x * 1.01 + 0.1)`` on a (16,) float32 array.

Each step is three primitives (multiply, add, tanh), so the chain records 600 ops. Prints
microseconds per op for forward+backward (gradient w.r.t. x) and forward only (plain arrays,
nothing recorded), for funcnn and for PyTorch in the same run, and their ratio.

    python benchmarks/bench_engine.py [--steps 200] [--repeat 50]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import funcnn as fn
import funcnn.numpy as fnp


def chain(x, steps):
    for _ in range(steps):
        x = fnp.tanh(x * 1.01 + 0.1)
    return x


def best_of(f, repeat):
    f()  # warm up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args()
    steps, ops = args.steps, 3 * args.steps
    x = np.linspace(-1, 1, 16, dtype=np.float32)

    grad_f = fn.grad(lambda x: fnp.sum(chain(x, steps)))
    rows = [
        (
            "funcnn",
            best_of(lambda: grad_f(x), args.repeat),
            best_of(lambda: chain(x, steps), args.repeat),
        ),
    ]
    try:
        import torch

        torch.set_num_threads(1)
        xt = torch.tensor(x, requires_grad=True)

        def torch_fb():
            y = xt
            for _ in range(steps):
                y = torch.tanh(y * 1.01 + 0.1)
            y.sum().backward()
            xt.grad = None

        def torch_f():
            with torch.no_grad():
                y = xt
                for _ in range(steps):
                    y = torch.tanh(y * 1.01 + 0.1)

        rows.append(("pytorch", best_of(torch_fb, args.repeat), best_of(torch_f, args.repeat)))
    except ImportError:
        print("(torch not installed: funcnn only)")

    print(f"chain of {steps} steps = {ops} ops on a (16,) float32 array; best of {args.repeat}")
    print(f"{'':10}{'fwd+bwd us/op':>16}{'fwd-only us/op':>16}")
    for name, fb, f in rows:
        print(f"{name:10}{fb / ops * 1e6:16.2f}{f / ops * 1e6:16.2f}")
    if len(rows) == 2:
        (_, a, b), (_, c, d) = rows
        print(f"{'ratio':10}{a / c:16.2f}{b / d:16.2f}   (funcnn / pytorch; lower is better)")


if __name__ == "__main__":
    main()
