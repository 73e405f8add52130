"""Mask a stream of batches, in this process or in a pool of worker processes.

:class:`BatchMasker` turns one raw batch into the masked batch plus the keyed fingerprints
the validation gate needs (one per row of each masked column, and the identifiers found in
text). It holds no file handles, so it can be rebuilt in a worker process; raw values stay in
whichever process masks them, and only masked batches and fingerprints come back.

:func:`mask_stream` keeps the output in input order whatever the number of workers, with a
bounded number of batches in flight, so memory does not grow with the table.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cleanroom.ordered import ordered_map
from masking import detectors
from masking import policy as P
from masking import schema as S
from masking import transforms as T
from masking.keys import MaskingKey, fingerprints

# Shorter originals ("Mike", "N/A") are too common to prove a leak anywhere in the snapshot;
# the per-row check still covers them.
MIN_SET_FINGERPRINT_CHARS = 6
# Batches queued per worker: enough to keep every worker busy while the reader waits on the
# database, few enough that memory stays a handful of batches.
IN_FLIGHT_PER_WORKER = 2


@dataclass
class MaskedBatch:
    """One batch, masked, with the fingerprints of its originals."""

    batch: pa.RecordBatch
    row_fingerprints: dict[str, np.ndarray]  # column -> one uint64 per row, 0 for NULL
    identifiers: np.ndarray  # uint64 fingerprints of identifiers, any order
    stats: dict[str, dict[str, int]] = field(default_factory=dict)  # column -> counter deltas


class BatchMasker:
    """Mask batches of one table under one policy rule, and fingerprint their originals.

    Row fingerprints (one per row, 0 for NULL) let the gate check that no row kept its own
    value; the identifier set (values of set-scope columns, and personal values found inside
    their text) lets it check that no original appears anywhere in the snapshot.
    """

    def __init__(self, key: MaskingKey, table: S.Table, rule: P.TableRule, columns: list[str], locale: str) -> None:
        self.key = key
        self.table = table
        self.rule = rule
        self.columns = columns
        self.locale = locale
        self.row_columns = [c for c, t in rule.columns.items() if t.survivor_scope in ("row", "set") and c in columns]
        self.set_columns = [
            c for c in self.row_columns if rule.columns[c].survivor_scope == "set" and table.column(c).logical in S.TEXTUAL
        ]
        # Scrubbed text keeps what it holds besides the personal values in it: only those
        # values are identifiers, not the whole text ("English" is not somebody's secret).
        self.inside_only = {c for c in self.set_columns if isinstance(rule.columns[c], T.Scrub)}
        # Columns whose whole value is one identifier (a faked email, a hashed id) need no search
        # for identifiers inside; free text, JSON and redacted notes do.
        self.embedded = {c for c in self.set_columns if not isinstance(rule.columns[c], (T.Fake, T.Hash, T.Partial))}
        # A scrub that searches every personal kind hands over what it found and replaced
        # (ColumnContext.found): the same values a search of the original text would give.
        self.found_by_scrub = {
            c for c in self.embedded
            if isinstance(rule.columns[c], T.Scrub) and rule.columns[c].finds_all(detectors.PERSONAL_KINDS)
        }

    @property
    def costly(self) -> bool:
        """Whether any column's masking costs more than reading it (see ``Transform.costly``)."""
        return any(self.rule.columns[c].costly for c in self.columns)

    def __getstate__(self) -> dict[str, Any]:
        # Only ever pickled to start local worker processes (see mask_stream).
        return {**self.__dict__, "key": self.key.handoff()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        secret, is_demo = state["key"]
        self.__dict__.update({**state, "key": MaskingKey(secret, is_demo=is_demo)})

    def output_schema(self, arrow_schema: pa.Schema) -> pa.Schema:
        empty = pa.RecordBatch.from_pylist([], schema=arrow_schema)
        return T.apply_all(empty, self.rule.columns, self._contexts().__getitem__).schema

    def _contexts(self) -> dict[str, T.ColumnContext]:
        contexts = {c: T.ColumnContext(self.key, self.table.name, self.table.column(c), self.locale) for c in self.columns}
        for column in self.found_by_scrub:
            contexts[column].found = []
        return contexts

    def mask(self, batch: pa.RecordBatch) -> MaskedBatch:
        contexts = self._contexts()
        masked = T.apply_all(batch, self.rule.columns, contexts.__getitem__)
        row_fps = {c: fingerprints(self.key, batch.column(c)).astype(np.uint64) for c in self.row_columns}
        parts = [self._identifiers(batch.column(c), row_fps[c], contexts[c]) for c in self.set_columns]
        identifiers = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
        stats = {c: ctx.stats for c, ctx in contexts.items() if ctx.stats}
        return MaskedBatch(masked, row_fps, identifiers.astype(np.uint64), stats)

    def _identifiers(self, array: pa.Array, row_fps: np.ndarray, ctx: T.ColumnContext) -> np.ndarray:
        column = ctx.column.name
        parts = []
        if column not in self.inside_only:
            trimmed = pc.utf8_length(pc.utf8_trim_whitespace(array))
            long_enough = pc.fill_null(pc.greater_equal(trimmed, MIN_SET_FINGERPRINT_CHARS), False)
            parts.append(row_fps[long_enough.to_numpy(zero_copy_only=False)])
        if column in self.found_by_scrub:
            found = ctx.found
        elif column in self.embedded:
            found = [
                text[m.start:m.end]
                for _, text, matches in detectors.find_all(array, detectors.PERSONAL_KINDS) for m in matches
            ]
        else:
            found = []
        # The scrubber hands over single strings, and Arrow arrays for the rows it cut in Arrow.
        texts = [value for value in found if isinstance(value, str)]
        if texts:
            parts.append(fingerprints(self.key, texts))
        parts += [fingerprints(self.key, value) for value in found if not isinstance(value, str) and len(value)]
        return np.concatenate(parts) if parts else np.zeros(0, np.uint64)


def mask_stream(batches: Iterable[pa.RecordBatch], masker: BatchMasker, processes: int) -> Iterator[MaskedBatch]:
    """Yield ``masker.mask(batch)`` for every batch, in order, on ``processes`` worker processes.

    With none everything runs here. Otherwise batches go to a process pool (spawned, so no
    thread state of the caller is copied); the reader keeps at most
    ``IN_FLIGHT_PER_WORKER * processes`` batches queued, and reading the next batch from the
    database overlaps masking of the previous ones.
    """
    if processes < 1:
        for batch in batches:
            yield masker.mask(batch)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context, initializer=_init_worker, initargs=(masker,)) as pool:
        yield from ordered_map(pool, _mask_in_worker, batches, IN_FLIGHT_PER_WORKER * processes)


def masking_processes(workers: int, rows: int, batch_rows: int, masker: BatchMasker, *, shared_reader: bool = False) -> int:
    """How many worker processes should mask a table part of ``rows`` rows (0: the task's own).

    Workers pay their start-up and the round trip of every batch, so they mask only where there
    is enough costly masking to share out; date shifts and partial masks stay in the task.
    ``workers`` is the part's share of the source's ``mask_workers``. A share of one means the
    task's own process, except for a reader running beside others in the same process
    (``shared_reader``): it hands costly masking to one process of its own rather than hold
    the interpreter lock the other readers need (about 10% faster on the benchmark's refresh).
    """
    if rows < 4 * batch_rows or not masker.costly or workers < 1:
        return 0
    return workers if workers > 1 or shared_reader else 0


_WORKER: dict[str, Any] = {}


def _init_worker(masker: BatchMasker) -> None:
    from cleanroom.memory import use_returning_allocator

    use_returning_allocator()
    _WORKER["masker"] = masker


def _mask_in_worker(batch: pa.RecordBatch) -> MaskedBatch:
    return _WORKER["masker"].mask(batch)
