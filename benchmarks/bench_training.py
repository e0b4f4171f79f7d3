"""Training steps of four model families in ``funcnn_modules`` and in PyTorch, on CPU or GPU.

One step = ``zero_grad``, forward, cross-entropy loss, ``backward``, ``Adam.step`` (lr 1e-3),
written once and run by both libraries (the model code takes the library as an argument;
``funcnn_modules`` is imported as if it were ``torch``). Both start from the same weights
(ours are copied into PyTorch through ``state_dict``) and see the same batch.

Models (B = the batch size):

* ``mlp``          784-512-256-10 on B flattened 28x28 images;
* ``cnn``          conv 1->16 3x3 + batch norm + relu + max-pool 2, conv 16->32 3x3 + relu +
                   max-pool 2, linear 1568->10, on B 1x28x28 images;
* ``lstm``         embedding 64->32, one LSTM layer 32->128, linear 128->64: next-character
                   prediction on B sequences of 32 tokens;
* ``transformer``  embedding 64->64 + learned positions, two encoder layers (4 heads,
                   feed-forward 128, dropout 0.1, batch_first), linear 64->64: next-token
                   prediction on B sequences of 32 tokens.

Prints milliseconds per step (the best of N rounds, each the mean over a few steps, the two
libraries' rounds interleaved) and the ratio funcnn_modules / torch.

    python benchmarks/bench_training.py [--device {cpu,cuda}] [--batch B] [--quick]
                                        [--models mlp,cnn,...] [--repeat N] [--threads N]

Defaults: on cpu, batch 32 and one BLAS thread (a small shared machine); on cuda, batch 256,
which needs CuPy (``pip install "funcnn[cuda]"``) and a CUDA build of PyTorch. ``--quick`` is
a smoke run (few rounds, batch 8 on cpu) that finishes in well under a minute on a CPU.
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
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, _threads_from_argv(sys.argv[1:]))

import numpy as np  # noqa: E402
from _timing import best_of  # noqa: E402

import funcnn_modules as fm  # noqa: E402
from funcnn import backend  # noqa: E402

LR = 1e-3
VOCAB, SEQ = 64, 32


# ----------------------------------------------------------------------------- models (one code, two libraries)


def mlp(lib: Any) -> Any:
    nn = lib.nn
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 512),
        nn.ReLU(),
        nn.Linear(512, 256),
        nn.ReLU(),
        nn.Linear(256, 10),
    )


def cnn(lib: Any) -> Any:
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 10),
    )


def lstm(lib: Any) -> Any:
    nn = lib.nn

    class CharLSTM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(VOCAB, 32)
            self.rnn = nn.LSTM(32, 128, batch_first=True)
            self.head = nn.Linear(128, VOCAB)

        def forward(self, tokens: Any) -> Any:
            out, _ = self.rnn(self.embed(tokens))
            return self.head(out).reshape(-1, VOCAB)  # (B * SEQ, VOCAB)

    return CharLSTM()


def transformer(lib: Any) -> Any:
    nn = lib.nn

    class TinyTransformer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(VOCAB, 64)
            self.pos = nn.Parameter(lib.zeros(1, SEQ, 64))
            layer = nn.TransformerEncoderLayer(64, 4, dim_feedforward=128, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
            self.head = nn.Linear(64, VOCAB)

        def forward(self, tokens: Any) -> Any:
            h = self.encoder(self.embed(tokens) + self.pos)
            return self.head(h).reshape(-1, VOCAB)  # (B * SEQ, VOCAB)

    return TinyTransformer()


def data(name: str, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A batch of inputs and integer targets for model ``name``."""
    if name in ("mlp", "cnn"):
        return (
            rng.standard_normal((batch, 1, 28, 28)).astype(np.float32),
            rng.integers(0, 10, size=batch),
        )
    tokens = rng.integers(0, VOCAB, size=(batch, SEQ + 1))
    return tokens[:, :-1], tokens[:, 1:].reshape(-1)


MODELS: dict[str, Callable[[Any], Any]] = {
    "mlp": mlp,
    "cnn": cnn,
    "lstm": lstm,
    "transformer": transformer,
}


# ----------------------------------------------------------------------------- steps and timing


def train_step(lib: Any, model: Any, x: Any, y: Any) -> Callable[[], None]:
    """One Adam step of ``model`` on (x, y), for ``lib`` = torch or funcnn_modules."""
    loss_fn = lib.nn.CrossEntropyLoss()
    opt = lib.optim.Adam(model.parameters(), lr=LR)
    model.train()

    def step() -> None:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    return step


def _cuda_or_exit(torch: Any) -> None:
    """Exit with a clear message unless both CuPy (for funcnn) and PyTorch see a GPU."""
    try:
        backend.set_default("numpy")  # only loads and checks CuPy; the default stays numpy
        backend.device_put(np.zeros(1, np.float32), "cuda")
    except backend.BackendUnavailableError as e:
        sys.exit(f"bench_training: --device cuda: {e}")
    if torch is None:
        sys.exit("bench_training: --device cuda needs PyTorch (with CUDA) to compare against")
    if not torch.cuda.is_available():
        sys.exit(
            "bench_training: --device cuda needs a CUDA build of PyTorch that sees the GPU; "
            f"this one ({torch.__version__}) does not"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--batch", type=int, default=None, help="batch size (cpu 32, cuda 256)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: few rounds, small batch")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset")
    ap.add_argument("--repeat", type=int, default=None, help="rounds per measurement (best of)")
    ap.add_argument("--steps", type=int, default=None, help="steps per round")
    ap.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP and PyTorch threads")
    ap.add_argument(
        "--clock",
        choices=("auto", "wall", "cpu"),
        default="auto",
        help="wall: perf_counter; cpu: process CPU time (robust to a busy shared machine, only\n"
        "meaningful single-threaded); auto: cpu for --device cpu --threads 1, else wall",
    )
    args = ap.parse_args()
    dev = args.device
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    batch = args.batch or (256 if dev == "cuda" else 8 if args.quick else 32)
    if batch < 1:
        ap.error(f"--batch must be >= 1, got {batch}")
    rounds = args.repeat or (3 if args.quick else 10)
    steps = args.steps or (2 if args.quick else 5)

    try:
        import torch
    except ImportError:
        torch = None
    if dev == "cuda":
        _cuda_or_exit(torch)
    if torch is not None:
        torch.set_num_threads(args.threads)
    fm.set_num_threads(args.threads)  # the BLAS and funcnn's own kernels
    use_cpu_clock = args.clock == "cpu" or (
        args.clock == "auto" and dev == "cpu" and args.threads == 1
    )
    clock = time.process_time if use_cpu_clock else time.perf_counter
    fm_sync = fm.cuda.synchronize if dev == "cuda" else (lambda: None)
    torch_sync = torch.cuda.synchronize if torch is not None and dev == "cuda" else (lambda: None)

    print(
        f"device {dev}, batch {batch}; one step = forward + cross-entropy + backward + Adam; "
        f"best of {rounds} rounds x {steps} steps; "
        f"{'process CPU' if use_cpu_clock else 'wall-clock'} time, {args.threads} thread(s)"
        + ("" if torch is not None else "; torch not installed: funcnn_modules only")
    )
    header = f"{'model':14}{'funcnn_modules ms':>19}{'torch ms':>11}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    for name in names:
        x_np, y_np = data(name, batch, rng)
        fm.manual_seed(0)
        model = MODELS[name](fm).to(dev)
        x, y = fm.tensor(x_np).to(dev), fm.tensor(y_np).to(dev)
        steps_by_name = {"funcnn_modules": train_step(fm, model, x, y)}
        syncs = {"funcnn_modules": fm_sync}
        if torch is not None:
            tmodel = MODELS[name](torch)
            state = {
                k: torch.from_numpy(backend.to_numpy(v._value).copy())
                for k, v in model.state_dict().items()
            }
            tmodel.load_state_dict(state)
            tmodel.to(dev)
            tx, ty = torch.from_numpy(x_np).to(dev), torch.from_numpy(y_np).to(dev)
            steps_by_name["torch"] = train_step(torch, tmodel, tx, ty)
            syncs["torch"] = torch_sync
        t = best_of(steps_by_name, syncs, rounds, steps, clock)
        ours, theirs = t["funcnn_modules"], t.get("torch", float("nan"))
        print(f"{name:14}{ours * 1e3:19.2f}{theirs * 1e3:11.2f}{ours / theirs:8.2f}")


if __name__ == "__main__":
    main()
