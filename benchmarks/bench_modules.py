"""Overhead of the PyTorch-style face (``funcnn_modules``) over the functional face (``funcnn``).

One training step = forward, cross-entropy loss, backward, SGD update (lr 0.01, no momentum),
timed three ways in the same run on the same data and the same initial weights:

* ``modules``    -- ``funcnn_modules``: ``model(x)``, ``nn.CrossEntropyLoss``, ``loss.backward()``,
                    ``optim.SGD.step()`` and ``zero_grad()``;
* ``functional`` -- ``funcnn``: ``fn.value_and_grad`` of a pure loss over a params pytree, then
                    ``funcnn.optim.sgd`` and ``apply_updates``;
* ``torch``      -- the same step in PyTorch (when installed).

Models: an MLP 784-256-128-10 on a batch of 128, and a small CNN (conv 1->8 3x3, relu, max-pool 2,
conv 8->16 3x3, relu, max-pool 2, linear 400->10) on a batch of 64 of 1x28x28 images.
Prints milliseconds per step (best of N rounds, each the mean over a few steps; the faces'
rounds interleaved) and the ratios modules/functional, modules/torch and functional/torch. The
target is modules/functional <= 1.10. On the CPU with one thread (the default) it times process
CPU time, which a busy shared machine disturbs far less than wall-clock time.

    python benchmarks/bench_modules.py [--quick] [--device {cpu,cuda}] [--repeat N]
                                       [--threads N] [--clock {auto,wall,cpu}]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any


def _threads_from_argv(argv: list[str]) -> str:
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return "1"


# BLAS thread pools are sized when NumPy (and PyTorch) load, so set them before importing them.
# One thread by default: on a small shared machine extra BLAS threads only add contention.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, _threads_from_argv(sys.argv[1:]))

import numpy as np  # noqa: E402
from _timing import best_of  # noqa: E402

import funcnn as fn  # noqa: E402
import funcnn.numpy as fnp  # noqa: E402
import funcnn_modules as fm  # noqa: E402
from funcnn import backend  # noqa: E402
from funcnn import nn as fnn  # noqa: E402
from funcnn import optim as foptim  # noqa: E402

LR = 0.01
CUDA_MISSING = (
    "bench_modules: --device cuda needs CuPy and a CUDA GPU, and none is usable here ({why}). "
    "Install the `cuda` extra (pip install funcnn[cuda]) on a machine with an NVIDIA GPU, "
    "or run with --device cpu."
)


# ----------------------------------------------------------------------------- models


def fm_mlp() -> Any:
    nn = fm.nn
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 256),
        nn.ReLU(),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def fm_cnn() -> Any:
    nn = fm.nn

    class SmallCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, 3)
            self.conv2 = nn.Conv2d(8, 16, 3)
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(16 * 5 * 5, 10)

        def forward(self, x: Any) -> Any:
            x = self.pool(fm.relu(self.conv1(x)))
            x = self.pool(fm.relu(self.conv2(x)))
            return self.fc(x.flatten(1))

    return SmallCNN()


def fn_mlp(params: dict, x: Any) -> Any:
    x = fnp.reshape(x, (x.shape[0], -1))
    x = fnn.relu(fnn.linear(params["1"], x))
    x = fnn.relu(fnn.linear(params["3"], x))
    return fnn.linear(params["5"], x)


def fn_cnn(params: dict, x: Any) -> Any:
    x = fnn.max_pool2d(fnn.relu(fnn.conv2d(params["conv1"], x)), 2)
    x = fnn.max_pool2d(fnn.relu(fnn.conv2d(params["conv2"], x)), 2)
    return fnn.linear(params["fc"], fnp.reshape(x, (x.shape[0], -1)))


def torch_mlp(torch: Any) -> Any:
    nn = torch.nn
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 256),
        nn.ReLU(),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def torch_cnn(torch: Any) -> Any:
    nn = torch.nn

    class SmallCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, 3)
            self.conv2 = nn.Conv2d(8, 16, 3)
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(16 * 5 * 5, 10)

        def forward(self, x: Any) -> Any:
            x = self.pool(torch.relu(self.conv1(x)))
            x = self.pool(torch.relu(self.conv2(x)))
            return self.fc(x.flatten(1))

    return SmallCNN()


# ----------------------------------------------------------------------------- steps


def modules_step(model: Any, x: Any, y: Any) -> Callable[[], None]:
    loss_fn = fm.nn.CrossEntropyLoss()
    opt = fm.optim.SGD(model.parameters(), lr=LR)
    xt, yt = fm.Tensor._wrap(x), fm.Tensor._wrap(y)

    def step() -> None:
        opt.zero_grad()
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()

    return step


def functional_step(apply: Callable, params: dict, x: Any, y: Any) -> Callable[[], None]:
    def loss_fn(p: dict) -> Any:
        return fnn.cross_entropy(apply(p, x), y)

    value_and_grad = fn.value_and_grad(loss_fn)
    opt = foptim.sgd(LR)
    state = [params, opt.init(params)]

    def step() -> None:
        p, s = state
        _, grads = value_and_grad(p)
        updates, s = opt.update(grads, s, p)
        state[0], state[1] = foptim.apply_updates(p, updates), s

    return step


def torch_step(torch: Any, model: Any, x: Any, y: Any) -> Callable[[], None]:
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=LR)

    def step() -> None:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    return step


# ----------------------------------------------------------------------------- devices


def _check_cuda() -> None:
    why = None
    try:
        import cupy
    except ImportError:
        why = "CuPy is not installed"
    else:
        try:
            if cupy.cuda.runtime.getDeviceCount() < 1:
                why = "CuPy sees no GPU"
        except Exception as e:  # noqa: BLE001 - CuPy raises its own error types
            why = f"CuPy cannot reach a GPU: {e}"
    if why is not None:
        sys.exit(CUDA_MISSING.format(why=why))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few rounds (a smoke run, noisy)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--repeat", type=int, default=None, help="rounds per measurement (best of)")
    ap.add_argument(
        "--threads", type=int, default=1, help="BLAS/OpenMP and PyTorch threads (default 1)"
    )
    ap.add_argument(
        "--clock",
        choices=("auto", "wall", "cpu"),
        default="auto",
        help="wall: perf_counter; cpu: process CPU time (robust to a busy shared machine, only\n"
        "meaningful single-threaded); auto: cpu for --device cpu --threads 1, else wall",
    )
    args = ap.parse_args()
    rounds = args.repeat or (3 if args.quick else 15)
    steps = 2 if args.quick else 5
    dev = args.device
    if dev == "cuda":
        _check_cuda()
    use_cpu_clock = args.clock == "cpu" or (
        args.clock == "auto" and dev == "cpu" and args.threads == 1
    )
    clock = time.process_time if use_cpu_clock else time.perf_counter

    fn.backend.set_num_threads(args.threads)  # the BLAS and funcnn's own kernels
    try:
        import torch
    except ImportError:
        torch = None
        print("(torch not installed: funcnn only)")
    else:
        torch.set_num_threads(args.threads)
        if dev == "cuda" and not torch.cuda.is_available():
            print("(this torch build has no CUDA: torch column left out)")
            torch = None

    rng = np.random.default_rng(0)
    cases = [
        ("MLP 784-256-128-10, batch 128", fm_mlp, fn_mlp, torch_mlp, (128, 1, 28, 28)),
        ("CNN 2 conv + linear, batch 64", fm_cnn, fn_cnn, torch_cnn, (64, 1, 28, 28)),
    ]
    print(
        f"device {dev}; one step = forward + cross-entropy + backward + SGD; "
        f"best of {rounds} rounds x {steps} steps; "
        f"{'process CPU' if use_cpu_clock else 'wall-clock'} time, {args.threads} thread(s)"
    )
    header = (
        f"{'model':32}{'modules ms':>12}{'functional ms':>15}{'torch ms':>10}"
        f"{'mod/func':>10}{'mod/torch':>11}{'func/torch':>12}"
    )
    print(header)
    print("-" * len(header))
    worst = 0.0
    for name, make_fm, apply_fn, make_torch, shape in cases:
        x_np = rng.standard_normal(shape).astype(np.float32)
        y_np = rng.integers(0, 10, size=shape[0])
        fm.manual_seed(0)
        model = make_fm()
        state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
        if dev == "cuda":
            model.to("cuda")
        x = backend.device_put(x_np, dev)
        y = backend.device_put(y_np, dev)
        params = fn.tree.map(
            lambda a: backend.device_put(a, dev),
            fm.func.unflatten_params(state),
        )
        fm_sync = fm.cuda.synchronize if dev == "cuda" else (lambda: None)
        steps_by_name = {
            "modules": modules_step(model, x, y),
            "functional": functional_step(apply_fn, params, x, y),
        }
        syncs = {"modules": fm_sync, "functional": fm_sync}
        if torch is not None:
            tdev = "cuda" if dev == "cuda" else "cpu"
            tmodel = make_torch(torch).to(tdev)
            tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
            tx = torch.from_numpy(x_np).to(tdev)
            ty = torch.from_numpy(y_np).to(tdev)
            steps_by_name["torch"] = torch_step(torch, tmodel, tx, ty)
            syncs["torch"] = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
        t = best_of(steps_by_name, syncs, rounds, steps, clock)
        t_mod, t_fun = t["modules"], t["functional"]
        t_torch = t.get("torch", float("nan"))
        worst = max(worst, t_mod / t_fun)
        print(
            f"{name:32}{t_mod * 1e3:12.3f}{t_fun * 1e3:15.3f}{t_torch * 1e3:10.3f}"
            f"{t_mod / t_fun:10.2f}{t_mod / t_torch:11.2f}{t_fun / t_torch:12.2f}"
        )
    verdict = "within" if worst <= 1.10 else "ABOVE"
    print(f"worst modules/functional ratio {worst:.2f}: {verdict} the 1.10 target")


if __name__ == "__main__":
    main()
