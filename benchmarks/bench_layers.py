"""Layer speed: forward + backward of funcnn layers against PyTorch, float32, in one run.

Cases (PyTorch's module in brackets):

    conv2d         x (64, 32, 28, 28), 3x3 kernel, 32 -> 32 channels, padding 1   [nn.Conv2d]
    lstm           32 steps, batch 32, 64 -> 256                                 [nn.LSTM]
    attention      self-attention, batch 16, seq 64, d 256, 4 heads              [nn.MultiheadAttention]
    batch_norm     x (64, 32, 28, 28), training mode                             [nn.BatchNorm2d]
    cross_entropy  logits (512, 1000), class-index targets                       [F.cross_entropy]

funcnn: ``fn.value_and_grad`` of ``sum(out * cotangent)`` with respect to the input and the
parameters. PyTorch: the same scalar, forward then ``backward`` (gradients cleared between
repeats), so both libraries do the same arithmetic. Both use the same number of threads
(``--threads``, default all cores: ``fn.backend.set_num_threads``, for OpenBLAS and funcnn's
own split kernels, and ``torch.set_num_threads``). Each time is the best (min) of ``--repeat``
runs after warm-up, the two libraries taking turns; the ratio is funcnn / PyTorch (lower is
better).

On a machine shared with other jobs, multi-threaded timings are unreliable (the BLAS threads
of one call wait for each other while the machine is busy); ``--threads 1 --clock cpu`` (this
process's CPU time, one thread) gives the steadiest figures there.

    python benchmarks/bench_layers.py [--device cpu|cuda] [--threads N] [--repeat N] [--quick]
                                      [--clock wall|cpu] [--only conv2d,batch_norm,...]

With ``--device cuda`` funcnn runs on the CuPy backend and PyTorch on 'cuda'; both are
synchronised before a timer starts and before it stops.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

CASES = ("conv2d", "lstm", "attention", "batch_norm", "cross_entropy")
_SETTLE_S = 0.02  # with several CPU threads, a pause before each timed run (see best_of)


# ----------------------------------------------------------------------------- timing


def best_of(
    steps: list[tuple[Callable[[], Any], Callable[[], None]]],
    repeat: int,
    warmup: int,
    clock: Callable[[], float] = time.perf_counter,
    pause: float = 0.0,
) -> list[float]:
    """Best (min) time in seconds of each ``(step, sync)`` over ``repeat`` runs after ``warmup``.

    The steps take turns, run after run, so a change in the load of a shared machine falls on
    all of them alike instead of on whichever ran during it. With several threads, a ``pause``
    (seconds) before each timed run lets the worker threads of the previous step (OpenMP,
    OpenBLAS) stop spinning, so that they do not take cores from the next one.
    """
    for _ in range(warmup):
        for step, sync in steps:
            step()
            sync()
    best = [float("inf")] * len(steps)
    for _ in range(repeat):
        for i, (step, sync) in enumerate(steps):
            sync()
            if pause:
                time.sleep(pause)
            t = clock()
            step()
            sync()
            best[i] = min(best[i], clock() - t)
    return best


# ----------------------------------------------------------------------------- the cases
#
# Each builder returns (funcnn_step, torch_step): two no-argument callables running one
# forward + backward. Inputs, parameters and cotangents are drawn once on the host, in NumPy,
# and copied to both libraries, so both compute the same numbers.


class Env:
    """The libraries and the device for one run."""

    def __init__(self, device: str) -> None:
        import numpy as np
        import torch

        import funcnn as fn

        self.np, self.torch, self.fn, self.device = np, torch, fn, device
        self.rng = np.random.default_rng(0)
        self.tdev = torch.device("cuda" if device == "cuda" else "cpu")
        if device == "cuda":
            import cupy

            self.cupy = cupy
            fn.backend.set_default("cupy")

    def draw(self, *shape: int, scale: float = 1.0) -> Any:
        return (self.rng.standard_normal(shape) * scale).astype(self.np.float32)

    def put(self, tree: Any) -> Any:
        """A host NumPy pytree on funcnn's device."""
        return self.fn.backend.device_put(tree, "cuda" if self.device == "cuda" else "cpu")

    def tensor(self, a: Any, grad: bool = False) -> Any:
        return self.torch.tensor(a, device=self.tdev, requires_grad=grad)

    def sync_funcnn(self) -> None:
        if self.device == "cuda":
            self.cupy.cuda.Device().synchronize()

    def sync_torch(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def load_module(self, module: Any, host_params: dict) -> Any:
        """Copy a flat {state_dict key: host array} into a torch module and move it to the device."""
        with self.torch.no_grad():
            for name, p in module.named_parameters():
                p.copy_(self.torch.tensor(host_params[name]))
        return module.to(self.tdev)

    def torch_step(self, forward: Callable[[], Any], cot: Any, leaves: list) -> Callable:
        """``sum(forward() * cot)``, its backward pass, and clearing the gradients of ``leaves``
        (the same scalar funcnn differentiates; ``cot`` None: the forward is already a scalar)."""

        def step() -> None:
            out = forward()
            (out if cot is None else (out * cot).sum()).backward()
            for t in leaves:
                t.grad = None

        return step

    def funcnn_step(self, f: Callable, *args: Any) -> Callable:
        """``value_and_grad`` of ``f`` with respect to all of ``args``."""
        vg = self.fn.value_and_grad(f, argnums=tuple(range(len(args))))
        return lambda: vg(*args)


def _sum_dot(fnp: Any, out: Any, cot: Any) -> Any:
    return fnp.sum(out * cot)


def case_conv2d(env: Env) -> tuple[Callable, Callable]:
    import funcnn.numpy as fnp
    from funcnn import nn

    x = env.draw(64, 32, 28, 28)
    p = {"weight": env.draw(32, 32, 3, 3, scale=0.1), "bias": env.draw(32, scale=0.1)}
    cot = env.draw(64, 32, 28, 28)
    fx, fp, fc = env.put(x), env.put(p), env.put(cot)
    f_step = env.funcnn_step(lambda x, p: _sum_dot(fnp, nn.conv2d(p, x, padding=1), fc), fx, fp)

    mod = env.load_module(env.torch.nn.Conv2d(32, 32, 3, padding=1), p)
    tx = env.tensor(x, grad=True)
    t_step = env.torch_step(lambda: mod(tx), env.tensor(cot), [tx, *mod.parameters()])
    return f_step, t_step


def case_lstm(env: Env) -> tuple[Callable, Callable]:
    import funcnn.numpy as fnp
    from funcnn import nn

    T, B, I, H = 32, 32, 64, 256
    k = 1.0 / H**0.5
    p = {
        "weight_ih": env.draw(4 * H, I, scale=k),
        "weight_hh": env.draw(4 * H, H, scale=k),
        "bias_ih": env.draw(4 * H, scale=k),
        "bias_hh": env.draw(4 * H, scale=k),
    }
    x = env.draw(T, B, I)
    cot = env.draw(T, B, H)
    fx, fp, fc = env.put(x), env.put(p), env.put(cot)
    f_step = env.funcnn_step(lambda x, p: _sum_dot(fnp, nn.lstm(p, x)[0], fc), fx, fp)

    mod = env.load_module(env.torch.nn.LSTM(I, H), {f"{name}_l0": v for name, v in p.items()})
    tx = env.tensor(x, grad=True)
    t_step = env.torch_step(lambda: mod(tx)[0], env.tensor(cot), [tx, *mod.parameters()])
    return f_step, t_step


def case_attention(env: Env) -> tuple[Callable, Callable]:
    import funcnn.numpy as fnp
    from funcnn import nn

    B, L, E, heads = 16, 64, 256, 4
    k = 1.0 / E**0.5
    p = {
        "in_proj_weight": env.draw(3 * E, E, scale=k),
        "in_proj_bias": env.draw(3 * E, scale=k),
        "out_proj": {"weight": env.draw(E, E, scale=k), "bias": env.draw(E, scale=k)},
    }
    x = env.draw(L, B, E)
    cot = env.draw(L, B, E)
    fx, fp, fc = env.put(x), env.put(p), env.put(cot)

    def f(x: Any, p: Any) -> Any:
        out, _ = nn.multi_head_attention(p, x, x, x, num_heads=heads)
        return _sum_dot(fnp, out, fc)

    f_step = env.funcnn_step(f, fx, fp)

    flat = {
        "in_proj_weight": p["in_proj_weight"],
        "in_proj_bias": p["in_proj_bias"],
        "out_proj.weight": p["out_proj"]["weight"],
        "out_proj.bias": p["out_proj"]["bias"],
    }
    mod = env.load_module(env.torch.nn.MultiheadAttention(E, heads), flat)
    tx = env.tensor(x, grad=True)
    t_step = env.torch_step(
        lambda: mod(tx, tx, tx, need_weights=False)[0],
        env.tensor(cot),
        [tx, *mod.parameters()],
    )
    return f_step, t_step


def case_batch_norm(env: Env) -> tuple[Callable, Callable]:
    import funcnn.numpy as fnp
    from funcnn import nn

    C = 32
    x = env.draw(64, C, 28, 28, scale=2.0) + 0.5
    p = {"weight": 1.0 + env.draw(C, scale=0.1), "bias": env.draw(C, scale=0.1)}
    cot = env.draw(64, C, 28, 28)
    fx, fp, fc = env.put(x), env.put(p), env.put(cot)
    _, state = nn.init.batch_norm(C)
    state = env.put(env.fn.backend.to_numpy(state))

    def f(x: Any, p: Any) -> Any:
        out, _ = nn.batch_norm(p, state, x, training=True)
        return _sum_dot(fnp, out, fc)

    f_step = env.funcnn_step(f, fx, fp)

    mod = env.load_module(env.torch.nn.BatchNorm2d(C), p).train()
    tx = env.tensor(x, grad=True)
    t_step = env.torch_step(lambda: mod(tx), env.tensor(cot), [tx, *mod.parameters()])
    return f_step, t_step


def case_cross_entropy(env: Env) -> tuple[Callable, Callable]:
    from funcnn import nn

    N, C = 512, 1000
    logits = env.draw(N, C, scale=3.0)
    target = env.rng.integers(0, C, size=N).astype(env.np.int64)
    fl, ft = env.put(logits), env.put(target)
    f_step = env.funcnn_step(lambda z: nn.cross_entropy(z, ft), fl)

    tl = env.tensor(logits, grad=True)
    tt = env.torch.tensor(target, device=env.tdev)
    t_step = env.torch_step(lambda: env.torch.nn.functional.cross_entropy(tl, tt), None, [tl])
    return f_step, t_step


BUILDERS = {
    "conv2d": case_conv2d,
    "lstm": case_lstm,
    "attention": case_attention,
    "batch_norm": case_batch_norm,
    "cross_entropy": case_cross_entropy,
}


# ----------------------------------------------------------------------------- main


def _check_cuda() -> None:
    """Exit with a clear message unless CuPy, a CUDA GPU and a CUDA build of PyTorch are here."""
    problems = []
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            problems.append("CuPy sees no CUDA GPU")
    except ImportError:
        problems.append("CuPy is not installed (pip install funcnn[cuda])")
    except Exception as e:  # CUDA driver/runtime errors: no usable GPU
        problems.append(f"CuPy cannot reach a CUDA GPU ({type(e).__name__}: {e})")
    try:
        import torch

        if not torch.cuda.is_available():
            problems.append("PyTorch has no CUDA device (a CPU-only build, or no GPU)")
    except ImportError:
        problems.append("PyTorch is not installed")
    if problems:
        sys.exit("bench_layers.py --device cuda: " + "; ".join(problems) + ". Nothing was run.")


def _limit_threads(threads: int) -> Any:
    """Limit the BLAS/OpenMP pools NumPy uses to ``threads`` (a context manager).

    The environment variables work when NumPy is not loaded yet; threadpoolctl (when installed)
    limits the pools of libraries already loaded, so NumPy is imported before it is asked.
    """
    import contextlib

    if "numpy" not in sys.modules:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)
    import numpy  # noqa: F401 - load NumPy's BLAS before threadpoolctl looks for it

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="funcnn vs PyTorch: forward + backward time of common layers (float32)."
    )
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="threads for both libraries"
    )
    ap.add_argument("--repeat", type=int, default=None, help="timed runs (best is kept)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed runs first")
    ap.add_argument("--quick", action="store_true", help="a fast smoke run (few repeats)")
    ap.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: elapsed time (default); cpu: this process's CPU time, steadier on a shared "
        "machine (with --threads 1 and --device cpu only)",
    )
    ap.add_argument(
        "--only", default=",".join(CASES), help=f"comma-separated cases among {', '.join(CASES)}"
    )
    args = ap.parse_args(argv)
    args.cases = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = [c for c in args.cases if c not in BUILDERS]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose among {list(CASES)}")
    if args.threads < 1:
        ap.error(f"--threads must be >= 1, got {args.threads}")
    if args.clock == "cpu" and (args.threads != 1 or args.device != "cpu"):
        ap.error("--clock cpu measures one thread's work: use it with --threads 1 --device cpu")
    if args.repeat is None:
        args.repeat = 3 if args.quick else 20
    if args.warmup is None:
        args.warmup = 1 if args.quick else 3
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.device == "cuda":
        _check_cuda()
    with _limit_threads(args.threads):
        import torch

        torch.set_num_threads(args.threads)
        env = Env(args.device)
        env.fn.backend.set_num_threads(args.threads)  # the BLAS and funcnn's own kernels
        clock = time.perf_counter if args.clock == "wall" else time.process_time
        print(
            f"device {args.device}, {args.threads} thread(s), float32, best of {args.repeat} "
            f"after {args.warmup} warm-up run(s), {args.clock} clock; forward + backward"
        )
        print(f"{'case':16}{'funcnn ms':>12}{'torch ms':>12}{'ratio':>9}")
        for name in args.cases:
            f_step, t_step = BUILDERS[name](env)
            tf, tt = best_of(
                [(f_step, env.sync_funcnn), (t_step, env.sync_torch)],
                args.repeat,
                args.warmup,
                clock,
                _SETTLE_S if args.threads > 1 and args.device == "cpu" else 0.0,
            )
            print(f"{name:16}{tf * 1e3:12.2f}{tt * 1e3:12.2f}{tf / tt:9.2f}", flush=True)
        print("ratio = funcnn / PyTorch (lower is better)")


if __name__ == "__main__":
    main()
