"""Sets of 64-bit hashes too large to hold: partitioned on disk, checked one partition at a time.

The gate compares keyed fingerprints and key hashes across whole snapshots: unique columns,
foreign keys, original values anywhere. Held in memory, those arrays grow with the snapshot
(8 bytes a row a column, twice while sorting). Here every value goes to the partition its top
bits name, so equal values always share a partition, and duplicates, joins and membership are
computed partition by partition: memory holds one partition of each set involved.

:class:`BloomFilter` answers "certainly not in the set" in fixed memory, so only values that may
be in it (the real hits and a small share of false positives) need the exact check on disk.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from masking.native import extension

_gate_bloom = extension("_gate_bloom", "expectations/_bloom.c")

BUFFER_VALUES = 1 << 18
"""Values buffered per set before they are appended to the partition files (2 MiB)."""
PARTITION_TARGET = 1 << 20
"""About this many values per partition of the largest set (8 MiB), see :func:`partitions_for`.

Small enough that a partition and its sorting temporaries stay a few tens of MB however large
the snapshot; more partitions only mean more, smaller files.
"""
MAX_PARTITIONS = 1024


def partitions_for(rows: int) -> int:
    """Return the partition count (a power of two) for sets of up to about ``rows`` values."""
    wanted = max(1, math.ceil(rows / PARTITION_TARGET))
    return min(MAX_PARTITIONS, 1 << (wanted - 1).bit_length())


class PartitionedSet:
    """A multiset of uint64 values on disk, optionally each with an int64 payload (a row number).

    Values are buffered, then appended to ``folder/part-NNNN.u64`` (and ``.rows``) by partition.
    """

    def __init__(self, folder: Path, partitions: int, *, with_rows: bool = False) -> None:
        if partitions < 1 or partitions & (partitions - 1):
            raise ValueError(f"partitions must be a power of two, got {partitions}")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.partitions = partitions
        self.with_rows = with_rows
        self._shift = np.uint64(64 - (partitions.bit_length() - 1))
        self._values: list[np.ndarray] = []
        self._rows: list[np.ndarray] = []
        self._buffered = 0
        self.count = 0

    def add(self, values: np.ndarray, rows: np.ndarray | None = None) -> None:
        values = np.asarray(values, dtype=np.uint64)
        if self.with_rows != (rows is not None):
            raise ValueError("rows must be given exactly when the set was made with_rows")
        if not values.size:
            return
        self._values.append(values)
        if rows is not None:
            self._rows.append(np.asarray(rows, dtype=np.int64))
        self._buffered += values.size
        self.count += values.size
        if self._buffered >= BUFFER_VALUES:
            self.flush()

    def flush(self) -> None:
        if not self._values:
            return
        values = np.concatenate(self._values)
        rows = np.concatenate(self._rows) if self.with_rows else None
        self._values, self._rows, self._buffered = [], [], 0
        if self.partitions == 1:
            self._append(0, values, rows)
            return
        which = (values >> self._shift).astype(np.uint16)  # MAX_PARTITIONS fits; numpy radix-sorts it
        order = np.argsort(which, kind="stable")
        bounds = np.searchsorted(which[order], np.arange(self.partitions + 1))
        for p in range(self.partitions):
            lo, hi = bounds[p], bounds[p + 1]
            if hi > lo:
                picked = order[lo:hi]
                self._append(p, values[picked], None if rows is None else rows[picked])

    def _append(self, p: int, values: np.ndarray, rows: np.ndarray | None) -> None:
        with open(self.folder / f"part-{p:04d}.u64", "ab") as fh:
            values.tofile(fh)
        if rows is not None:
            with open(self.folder / f"part-{p:04d}.rows", "ab") as fh:
                rows.tofile(fh)

    def values(self, p: int) -> np.ndarray:
        """The values of partition ``p``, in the order they were added."""
        self.flush()
        path = self.folder / f"part-{p:04d}.u64"
        return np.fromfile(path, dtype=np.uint64) if path.exists() else np.zeros(0, np.uint64)

    def rows(self, p: int) -> np.ndarray:
        """The payloads of partition ``p``, aligned with :meth:`values`."""
        self.flush()
        path = self.folder / f"part-{p:04d}.rows"
        return np.fromfile(path, dtype=np.int64) if path.exists() else np.zeros(0, np.int64)

    def sorted_unique(self, p: int) -> np.ndarray:
        return sorted_unique(self.values(p))


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """Return sorted distinct values (np.unique hashes uint64 slowly on numpy 2.4; sorting is faster)."""
    if values.size and np.all(values[1:] > values[:-1]):
        return values
    values = np.sort(values)
    return values[np.concatenate(([True], values[1:] != values[:-1]))] if values.size else values


def _in_sorted(ordered: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """Per value of ``ordered`` (sorted), whether it is in ``sorted_set`` (sorted, distinct, not empty)."""
    at = np.minimum(np.searchsorted(sorted_set, ordered), sorted_set.size - 1)
    return sorted_set[at] == ordered


# Both functions below search with sorted values, which walks the set once; in row order every
# search is a cache miss (about 4x slower on millions of random hashes). They sort with np.sort,
# whose SIMD sort is several times faster than the argsort a scatter back to row order needs.


def member(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """Return, per value, whether it is in ``sorted_set`` (sorted, distinct)."""
    out = np.zeros(values.shape, dtype=bool)
    if not sorted_set.size or not values.size:
        return out
    ordered = np.sort(values)
    found = _in_sorted(ordered, sorted_set)
    if not found.any():
        return out  # the gate's usual answer: no probe is an original value
    # Only the values found need finding again in row order, in the (usually short) set of them.
    return _in_sorted(values, sorted_unique(ordered[found]))


def count_missing(values: np.ndarray, sorted_set: np.ndarray) -> int:
    """Count the values (with repeats) that are not in ``sorted_set`` (sorted, distinct)."""
    if not sorted_set.size:
        return int(values.size)
    return int(values.size - np.count_nonzero(_in_sorted(np.sort(values), sorted_set))) if values.size else 0


def duplicate_rows(values: np.ndarray) -> int:
    """Count rows whose value occurs more than once (every occurrence, as GX counts them)."""
    if values.size < 2:
        return 0
    values = np.sort(values)
    same = values[1:] == values[:-1]
    involved = np.zeros(values.size, dtype=bool)
    involved[1:] |= same
    involved[:-1] |= same
    return int(involved.sum())


class BloomFilter:
    """Fixed-memory approximate membership for uniformly random uint64 values (keyed hashes).

    ``may_contain`` never answers False for an added value. Sized for ``expected`` values at
    16 bits each, between 64 KiB and ``max_bytes``; past that size the false-positive rate
    rises, which costs exact checks, never a wrong answer.
    """

    HASHES = 4
    _MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93], dtype=np.uint64)

    def __init__(self, expected: int, max_bytes: int = 64 << 20) -> None:
        wanted = 1 << (max(expected, 1) * 16 - 1).bit_length()
        cap = 1 << ((max_bytes * 8).bit_length() - 1)
        bits = min(max(wanted, 1 << 19), cap)
        self._bits = np.zeros(bits // 8, dtype=np.uint8)
        self._shift = np.uint64(64 - (bits.bit_length() - 1))

    @property
    def nbytes(self) -> int:
        return self._bits.nbytes

    def _positions(self, values: np.ndarray) -> Iterator[np.ndarray]:
        """The bit positions of every value, one array per hash (what the C kernels compute)."""
        values = np.asarray(values, dtype=np.uint64)
        for mix in self._MIX[: self.HASHES]:
            yield ((values * mix) >> self._shift).astype(np.int64)

    def add(self, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=np.uint64)
        if values.size:
            _gate_bloom.add(self._bits, values, self._MIX[: self.HASHES], int(self._shift))

    def may_contain(self, values: np.ndarray) -> np.ndarray:
        values = np.ascontiguousarray(values, dtype=np.uint64)
        out = np.empty(values.shape, dtype=bool)
        if values.size:
            _gate_bloom.test(self._bits, values.reshape(-1), self._MIX[: self.HASHES], int(self._shift), out.reshape(-1))
        return out


class Probes:
    """Membership questions asked chunk by chunk, answered exactly at the end, partition by partition.

    :meth:`ask` keeps only the values the Bloom filter of the set cannot rule out, with the row
    and the label (a column) they belong to; :meth:`hit_rows` returns, per label, the distinct
    rows with at least one value in the set.
    """

    def __init__(self, folder: Path, partitions: int, members: PartitionedSet, bloom: BloomFilter) -> None:
        self.members, self.bloom = members, bloom
        self.folder, self.partitions = Path(folder), partitions
        self._sets: dict[object, PartitionedSet] = {}
        self._lock = threading.Lock()  # labels are added from the gate's table threads

    def maybe(self, values: np.ndarray) -> np.ndarray:
        """Per value, False where it is certainly not in the set."""
        return self.bloom.may_contain(values)

    def ask(self, label, values: np.ndarray, rows: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.uint64)
        maybe = self.bloom.may_contain(values)
        if not maybe.any():
            return
        with self._lock:
            if label not in self._sets:
                self._sets[label] = PartitionedSet(self.folder / f"probe-{len(self._sets):04d}", self.partitions, with_rows=True)
            probes = self._sets[label]
        # One label is one column of one table: only that table's pass adds to it.
        probes.add(values[maybe], np.asarray(rows, dtype=np.int64)[maybe])

    def hit_rows(self) -> dict[object, np.ndarray]:
        hits: dict[object, list[np.ndarray]] = {label: [] for label in self._sets}
        for p in range(self.partitions):
            known = self.members.sorted_unique(p)
            for label, probes in self._sets.items():
                values = probes.values(p)
                if values.size:
                    hits[label].append(probes.rows(p)[member(values, known)])
        return {label: np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64) for label, parts in hits.items()}


def fill(target: PartitionedSet, blocks: Iterable[np.ndarray]) -> PartitionedSet:
    """Add every block to ``target``; return ``target``."""
    for block in blocks:
        target.add(block)
    target.flush()
    return target


def bloom_of(members: PartitionedSet) -> BloomFilter:
    """A Bloom filter of every value in ``members``, built partition by partition."""
    bloom = BloomFilter(members.count)
    for p in range(members.partitions):
        bloom.add(members.values(p))  # repeats set the same bits: no need to sort them out
    return bloom
