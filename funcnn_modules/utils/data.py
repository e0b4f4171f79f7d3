"""Datasets and batching in the style of ``torch.utils.data``.

    from funcnn_modules.utils.data import TensorDataset, DataLoader
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, generator=0)
    for xb, yb in loader:
        ...

An :class:`IterableDataset` (a stream: ``__iter__`` instead of indexing) is read in order and
grouped into batches as PyTorch does; it takes no ``sampler``, ``shuffle`` or ``batch_sampler``.

Loading runs in the calling process (``num_workers`` is accepted and ignored, so
:func:`get_worker_info` is always None). Shuffling draws
its order from ``funcnn.random`` keys, so the order differs from PyTorch's but is reproducible:

- ``generator=None``: each epoch takes a key from the global generator, so
  ``funcnn_modules.manual_seed(s)`` fixes the order, as in PyTorch.
- ``generator=<int>`` or a ``funcnn.random`` key: the loader keeps its own key chain from that
  seed; two loaders made with the same seed give the same epochs.
- an object with a ``next_key()`` method (a generator of keys), or with ``initial_seed()``
  (like ``torch.Generator``), is used as the source of keys.

See also ``funcnn.data.batches`` for the functional face.
"""

from __future__ import annotations

import bisect
import collections.abc
import copy
import itertools
import math
import operator
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from funcnn import backend
from funcnn import random as frandom
from funcnn_modules import _random
from funcnn_modules._functions import stack, tensor
from funcnn_modules.tensor import Tensor, wrap

__all__ = [
    "Dataset",
    "IterableDataset",
    "ChainDataset",
    "TensorDataset",
    "Subset",
    "ConcatDataset",
    "random_split",
    "Sampler",
    "SequentialSampler",
    "RandomSampler",
    "SubsetRandomSampler",
    "WeightedRandomSampler",
    "BatchSampler",
    "DataLoader",
    "default_collate",
    "default_convert",
    "get_worker_info",
]

COLLATE_ERROR = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"
)


# ----------------------------------------------------------------------------- datasets


class Dataset:
    """A map-style data set: ``dataset[i]`` is the ``i``-th example and ``len(dataset)`` their number."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError("Subclasses of Dataset should implement __getitem__.")

    def __add__(self, other: Any) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A data set read as a stream: subclasses define ``__iter__`` (and may define ``__len__``).

    A :class:`DataLoader` over one reads the examples in the order ``__iter__`` yields them and
    groups them into batches; ``dataset_a + dataset_b`` makes a :class:`ChainDataset`.
    """

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError("Subclasses of IterableDataset should implement __iter__.")

    def __add__(self, other: Any) -> ChainDataset:
        return ChainDataset([self, other])


class ChainDataset(IterableDataset):
    """Iterable data sets one after another, read lazily.

    Args:
        datasets: :class:`IterableDataset` s; iterating (or ``len``) raises ``AssertionError``
            on reaching one that is not, as in PyTorch.
    """

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = datasets

    def __iter__(self) -> Iterator[Any]:
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise AssertionError("ChainDataset only supports IterableDataset")
            yield from d

    def __len__(self) -> int:
        total = 0
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise AssertionError("ChainDataset only supports IterableDataset")
            total += len(d)
        return total


def get_worker_info() -> None:
    """Information about the loading worker process: always None, as loading runs in-process."""
    return None


def _first_dim(t: Any) -> int | None:
    shape = getattr(t, "shape", None)
    if shape is None or len(shape) == 0:
        return None
    return int(shape[0])


class TensorDataset(Dataset):
    """Examples are the rows of tensors that share their first dimension.

    Args:
        *tensors: Tensors (or arrays) of shapes (N, ...); ``dataset[i]`` is
            ``tuple(t[i] for t in tensors)``.
    Raises:
        ValueError: if the tensors' first dimensions differ (the message lists every size).
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        sizes = [_first_dim(t) for t in tensors]
        for i, (t, n) in enumerate(zip(tensors, sizes)):
            if n is None:
                raise ValueError(
                    f"TensorDataset: tensor {i} has shape {tuple(getattr(t, 'shape', ()))}; every "
                    "tensor needs a first (example) dimension"
                )
        if len(set(sizes)) != 1:
            listing = ", ".join(f"tensor {i}: {tuple(t.shape)}" for i, t in enumerate(tensors))
            raise ValueError(
                "TensorDataset: size mismatch between tensors: all tensors must have the same "
                f"size in the first dimension, got sizes {sizes} ({listing})"
            )
        self.tensors = tuple(tensors)

    def __getitem__(self, index: Any) -> tuple:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return _first_dim(self.tensors[0]) or 0


class Subset(Dataset):
    """The examples of ``dataset`` at ``indices``, in that order.

    Args:
        dataset: the full data set.
        indices: positions in ``dataset``.
    """

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx: Any) -> Any:
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset):
    """Data sets one after another (``dataset_a + dataset_b`` makes one).

    Args:
        datasets: map-style data sets.
    """

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise AssertionError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int) -> Any:
        n = len(self)
        if idx < 0:
            if -idx > n:
                raise ValueError("absolute value of index should not exceed dataset length")
            idx += n
        if idx >= n:
            raise IndexError(f"ConcatDataset: index {idx} is out of range for length {n}")
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        start = 0 if which == 0 else self.cumulative_sizes[which - 1]
        return self.datasets[which][idx - start]


# ----------------------------------------------------------------------------- random keys


class _KeySource:
    """Where shuffling draws its keys from (see the module docstring)."""

    def __init__(self, generator: Any) -> None:
        self._generator = generator
        self._key = None
        if generator is None or hasattr(generator, "next_key"):
            return
        if isinstance(generator, int) and not isinstance(generator, bool):
            self._key = frandom.key(generator)
        elif hasattr(generator, "initial_seed") and callable(generator.initial_seed):
            self._key = frandom.key(int(generator.initial_seed()))
        elif backend.is_array(generator) and tuple(getattr(generator, "shape", ())) == (2,):
            self._key = generator
        else:
            raise TypeError(
                "generator must be None, an int seed, a funcnn.random key, or an object with "
                f"next_key() or initial_seed(); got {type(generator).__name__}"
            )

    def next_key(self) -> Any:
        if self._key is not None:
            self._key, sub = frandom.split(self._key)
            return sub
        if self._generator is not None:
            return self._generator.next_key()
        return _random.next_key()


def _host_ints(arr: Any) -> list[int]:
    return backend.to_numpy(arr).tolist()


def random_split(
    dataset: Any, lengths: Sequence[int | float], generator: Any = None
) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random subsets of the given lengths.

    Args:
        dataset: the data set.
        lengths: sizes that sum to ``len(dataset)``, or fractions that sum to 1 (the remainder
            is spread one by one over the first subsets, as in PyTorch).
        generator: the source of randomness (see the module docstring).
    Returns:
        A list of :class:`Subset`.
    """
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = [int(math.floor(n * frac)) for frac in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if sum(lengths) != n:
        raise ValueError(
            "Sum of input lengths does not equal the length of the input dataset! "
            f"(lengths {lengths} sum to {sum(lengths)}, the dataset has {n} examples)"
        )
    order = _host_ints(frandom.permutation(_KeySource(generator).next_key(), n))
    out, start = [], 0
    for length in lengths:
        out.append(Subset(dataset, order[start : start + length]))
        start += length
    return out


# ----------------------------------------------------------------------------- samplers


class Sampler:
    """An iterable of example indices."""

    def __iter__(self) -> Iterator[int]:
        raise NotImplementedError


class _InfiniteConstantSampler(Sampler):
    """None forever: the sampler of a loader over an :class:`IterableDataset` (as in PyTorch)."""

    def __iter__(self) -> Iterator[None]:
        return itertools.repeat(None)


class SequentialSampler(Sampler):
    """Indices ``0 .. len(data_source) - 1`` in order."""

    def __init__(self, data_source: Any) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A fresh random order of the indices on every pass (or draws with replacement).

    Args:
        data_source: the data set.
        replacement: draw ``num_samples`` indices with replacement.
        num_samples: how many indices per pass (default ``len(data_source)``).
        generator: the source of randomness (see the module docstring).
    """

    def __init__(
        self,
        data_source: Any,
        replacement: bool = False,
        num_samples: int | None = None,
        generator: Any = None,
    ) -> None:
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        self._keys = _KeySource(generator)
        if (
            not isinstance(self.num_samples, int)
            or isinstance(self.num_samples, bool)
            or self.num_samples <= 0
        ):
            raise ValueError(
                f"num_samples should be a positive integer value, but got num_samples={self.num_samples}"
            )

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        key = self._keys.next_key()
        if self.replacement:
            return iter(_host_ints(frandom.randint(key, (self.num_samples,), 0, n)))
        order: list[int] = []
        while len(order) < self.num_samples:
            order += _host_ints(frandom.permutation(key, n))
            key = frandom.fold_in(key, len(order))
        return iter(order[: self.num_samples])

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices, in a fresh random order on every pass.

    Args:
        indices: the indices to draw from.
        generator: the source of randomness (see the module docstring).
    """

    def __init__(self, indices: Sequence[int], generator: Any = None) -> None:
        self.indices = indices
        self.generator = generator
        self._keys = _KeySource(generator)

    def __iter__(self) -> Iterator[int]:
        order = _host_ints(frandom.permutation(self._keys.next_key(), len(self.indices)))
        return iter([self.indices[i] for i in order])

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices drawn with probabilities proportional to ``weights``.

    Args:
        weights: one non-negative weight per example (need not sum to one).
        num_samples: how many indices per pass.
        replacement: draw with replacement (default); without, each index at most once.
        generator: the source of randomness (see the module docstring).
    """

    def __init__(
        self,
        weights: Sequence[float],
        num_samples: int,
        replacement: bool = True,
        generator: Any = None,
    ) -> None:
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples <= 0:
            raise ValueError(
                f"num_samples should be a positive integer value, but got num_samples={num_samples}"
            )
        w = weights.tolist() if isinstance(weights, Tensor) else list(weights)
        if any(x < 0 for x in w) or not any(x > 0 for x in w):
            raise ValueError(
                "WeightedRandomSampler: weights must be non-negative with a positive sum"
            )
        if not replacement and num_samples > len(w):
            raise ValueError(
                f"WeightedRandomSampler: cannot draw {num_samples} samples without replacement "
                f"from {len(w)} weights"
            )
        self.weights = w
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator
        self._keys = _KeySource(generator)

    def __iter__(self) -> Iterator[int]:
        probs = wrap(backend.from_numpy(np.asarray(self.weights, dtype=np.float64)))
        key = self._keys.next_key()
        return iter(
            probs.multinomial(self.num_samples, self.replacement, generator=_OneKey(key)).tolist()
        )

    def __len__(self) -> int:
        return self.num_samples


class _OneKey:
    """A generator that hands out keys split off one given key."""

    def __init__(self, key: Any) -> None:
        self._key = key

    def next_key(self) -> Any:
        self._key, sub = frandom.split(self._key)
        return sub


class BatchSampler(Sampler):
    """Group the indices of ``sampler`` into lists of ``batch_size``.

    Args:
        sampler: an iterable of indices.
        batch_size: indices per batch (>= 1).
        drop_last: drop a last, smaller batch.
    """

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(
                f"batch_size should be a positive integer value, but got batch_size={batch_size}"
            )
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)


# ----------------------------------------------------------------------------- collation


def _is_string_array(x: Any) -> bool:
    kind = getattr(getattr(x, "dtype", None), "kind", None)
    return kind in ("U", "S", "O")


def default_convert(data: Any) -> Any:
    """Arrays (and NumPy scalars) become Tensors, inside any dicts, tuples and lists."""
    if isinstance(data, Tensor):
        return data
    if backend.is_array(data):
        return data if _is_string_array(data) else wrap(backend.namespace(data).asarray(data))
    if isinstance(data, collections.abc.Mapping):
        return _rebuild_mapping(data, {k: default_convert(v) for k, v in data.items()})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return _rebuild_sequence(data, [default_convert(d) for d in data])
    return data


def _rebuild_mapping(elem: Any, values: dict) -> Any:
    try:
        if isinstance(elem, collections.abc.MutableMapping):
            clone = copy.copy(elem)
            clone.update(values)
            return clone
        return type(elem)(values)
    except TypeError:
        return values


def _rebuild_sequence(elem: Any, values: list) -> Any:
    try:
        if isinstance(elem, collections.abc.MutableSequence):
            clone = copy.copy(elem)
            for i, v in enumerate(values):
                clone[i] = v
            return clone
        return type(elem)(values)
    except TypeError:
        return values


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of examples into a batch, as ``torch.utils.data.default_collate`` does.

    Tensors and arrays are stacked along a new first dimension (arrays become Tensors); Python
    floats become a float64 Tensor, ints an int64 one, bools a bool one; strings stay a list;
    dicts, namedtuples, tuples and lists are collated field by field (a tuple of fields comes
    back as a list, as in PyTorch).

    Args:
        batch: a non-empty list of examples of one structure.
    Raises:
        TypeError: for an element of a type it cannot stack.
        RuntimeError: when sequences in the batch have different lengths.
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(list(batch), 0)
    if backend.is_array(elem):
        if _is_string_array(elem):
            raise TypeError(COLLATE_ERROR.format(elem.dtype))
        xp = backend.namespace(*batch)
        return wrap(xp.stack([xp.asarray(b) for b in batch]))
    if isinstance(elem, float):
        return tensor(list(batch), dtype="float64")
    if isinstance(elem, int):  # bool included: a bool tensor
        return tensor(list(batch))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return _rebuild_mapping(elem, {k: default_collate([d[k] for d in batch]) for k in elem})
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(e) != size for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        columns = [default_collate(list(s)) for s in zip(*batch)]
        return columns if isinstance(elem, tuple) else _rebuild_sequence(elem, columns)
    raise TypeError(COLLATE_ERROR.format(type(elem)))


# ----------------------------------------------------------------------------- the loader


def _gather_rows(t: Any, indices: list[int]) -> Tensor:
    """The rows ``indices`` of a Tensor or array, as a Tensor (what collation would stack)."""
    if isinstance(t, Tensor):
        return t[indices]
    return wrap(backend.getitem(t, backend.asarray(indices, dtype="int64", like=t)))


class DataLoader:
    """Iterate over a data set in batches (``torch.utils.data.DataLoader``).

    Args:
        dataset: a map-style data set (``__getitem__`` and ``__len__``), or an
            :class:`IterableDataset`, whose examples are batched in the order it yields them.
        batch_size: examples per batch (default 1); None yields single examples, converted
            by :func:`default_convert`.
        shuffle: a new random order every epoch (see the module docstring for ``generator``).
        sampler: an iterable of indices to use instead of ``shuffle``.
        batch_sampler: an iterable of index lists (excludes batch_size, shuffle, sampler and
            drop_last).
        num_workers: accepted; loading always runs in the calling process.
        collate_fn: merges a list of examples into a batch (default :func:`default_collate`).
        pin_memory, timeout, worker_init_fn, prefetch_factor, persistent_workers: accepted for
            compatibility; they change nothing here.
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        generator: the source of the shuffling order: None, an int seed, a ``funcnn.random``
            key, or an object with ``next_key()`` / ``initial_seed()``.

    ``len(loader)`` is the number of batches per epoch. Over an :class:`IterableDataset` it is
    estimated from ``len(dataset)`` (a ``TypeError`` if the data set has no ``__len__``), as in
    PyTorch, which also warns when an epoch then yields more batches than that.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler: Iterable[int] | None = None,
        batch_sampler: Iterable[list[int]] | None = None,
        num_workers: int = 0,
        collate_fn: Callable[[list], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], None] | None = None,
        generator: Any = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
    ) -> None:
        iterable = isinstance(dataset, IterableDataset)
        if not iterable and (
            not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__")
        ):
            raise TypeError(
                "DataLoader: dataset must have __getitem__ and __len__ (a map-style data set) "
                f"or be an IterableDataset, got {type(dataset).__name__}"
            )
        if num_workers < 0:
            raise ValueError(
                "num_workers option should be non-negative; use num_workers=0 to disable multiprocessing."
            )
        if iterable:
            if shuffle not in {False, None}:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified shuffle option, "
                    f"but got shuffle={shuffle}"
                )
            if sampler is not None:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified sampler option, "
                    f"but got sampler={sampler}"
                )
            if batch_sampler is not None:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified batch_sampler option, "
                    f"but got batch_sampler={batch_sampler}"
                )
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                    "and drop_last"
                )
            batch_size = None
            drop_last = False
        elif batch_size is None:
            if drop_last:
                raise ValueError(
                    "batch_size=None option disables auto-batching and is mutually exclusive with drop_last"
                )
        else:
            try:
                operator.index(batch_size)
            except TypeError:
                raise ValueError(
                    f"batch_size should be a positive integer value, but got batch_size={batch_size!r}"
                ) from None
        if sampler is None:
            if iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, int(batch_size), bool(drop_last))
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.generator = generator
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self._iterable = iterable
        self._iterable_len_called: int | None = None
        self._auto_collation = batch_sampler is not None
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        # A TensorDataset with the default collation is gathered one tensor at a time (one
        # indexing op per tensor per batch) instead of example by example: same values, and
        # arrays come out as Tensors, as default_collate makes them.
        self._gather = (
            type(dataset) is TensorDataset
            and collate_fn is default_collate
            and all(
                isinstance(t, Tensor) or (backend.is_array(t) and not _is_string_array(t))
                for t in dataset.tensors
            )
        )

    def __len__(self) -> int:
        if self._iterable:
            # as PyTorch: TypeError unless the data set defines __len__; a batch count estimated
            # from it, remembered so that an iteration yielding more batches warns
            length = self._iterable_len_called = len(self.dataset)
            if self.batch_size is not None:
                if self.drop_last:
                    return length // self.batch_size
                return math.ceil(length / self.batch_size)
            return length
        source = self.batch_sampler if self._auto_collation else self.sampler
        return len(source)  # type: ignore[arg-type]

    def _iter_stream(self) -> Iterator[Any]:
        """Batches of an IterableDataset, read in order (PyTorch's _IterableDatasetFetcher)."""
        stream = iter(self.dataset)
        if not self._auto_collation:
            batches: Iterator[Any] = (self.collate_fn(example) for example in stream)
        else:
            batches = self._stream_batches(stream, int(self.batch_size))  # type: ignore[arg-type]
        for count, batch in enumerate(batches, 1):
            reported = self._iterable_len_called
            if reported is not None and count > reported:
                warnings.warn(
                    f"Length of IterableDataset {self.dataset} was reported to be {reported}"
                    f"(when accessing len(dataloader)), but {count} samples have been fetched. ",
                    stacklevel=2,
                )
            yield batch

    def _stream_batches(self, stream: Iterator[Any], batch_size: int) -> Iterator[Any]:
        while True:
            data = list(itertools.islice(stream, batch_size))
            if not data or (self.drop_last and len(data) < batch_size):
                return
            yield self.collate_fn(data)
            if len(data) < batch_size:
                return

    def __iter__(self) -> Iterator[Any]:
        if self._iterable:
            yield from self._iter_stream()
            return
        if not self._auto_collation:
            for idx in self.sampler:
                yield self.collate_fn(self.dataset[idx])
            return
        getitems = getattr(self.dataset, "__getitems__", None)
        for indices in self.batch_sampler:  # type: ignore[union-attr]
            if self._gather:
                yield [_gather_rows(t, list(indices)) for t in self.dataset.tensors]
            elif getitems is not None:
                yield self.collate_fn(getitems(list(indices)))
            else:
                yield self.collate_fn([self.dataset[i] for i in indices])
