"""The validation gate: checks a masked snapshot must pass before it is published.

:func:`validate_snapshot` re-reads every published table in chunks and runs, per chunk, one
Great Expectations suite built from the masking policy (:func:`build_suite`): the row count and
one detector expectation per text column. Checks that need the masking key or more than one
chunk run beside GX on the same chunks, in numpy: no original value survived (by keyed
fingerprint, anywhere or in its own row), unique columns are unique across the whole table,
foreign keys still join, dropped tables and columns are absent.

The summary holds counts, check names and table/column names only. GX results can carry
sample values; they are requested with no samples and read for their counts alone.

Known limitations:
    Uniqueness and foreign keys are compared on 64-bit hashes of the values: a hash collision
    can only report a false duplicate or hide one dangling key in about 2**64. The hashes and
    fingerprints that span a table or the snapshot (unique columns, keys, original values) are
    spilled to partitions on disk (:mod:`expectations.spill`), so memory holds one partition
    and a fixed-size Bloom filter, not the snapshot. The detector pass dominates the run time;
    ``python -m expectations.benchmark`` measures it.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from expectations import findings, spill
from masking import detectors
from masking.errors import CleanroomError
from masking.keys import MaskingKey, fingerprints
from masking.transforms import distinct_or_all

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite

log = logging.getLogger(__name__)

CHUNK_ROWS = 250_000
"""Rows handed to GX at once: record batches are joined up to this size (fewer GX runs)."""
PASS_THREADS = 2
"""Tables validated at once. Their Parquet reads, Arrow kernels, sorts, hashes and detector
searches run without the GIL, so two passes keep two cores busy; GX itself runs one chunk at a
time (see :class:`_Runner`)."""

PATTERN_LOGICAL = frozenset({"string", "json"})
DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z])[0-9]{7,15}(?![0-9A-Za-z])")
SURVIVOR_LOGICAL = frozenset({"string", "json", "uuid"})

ROW_COUNT = "row_count"
DETECTOR_MATCHES = "detector_matches"
"""The meta check of a column's detector expectation; it reports one ``no_<kind>`` check per kind."""
NO_ORIGINAL = "no_original_values"
NO_ROW_KEPT = "no_row_kept_original"
UNIQUE = "unique"
DROPPED_TABLE = "dropped_table_absent"
COLUMNS_DECLARED = "columns_declared"
FOREIGN_KEY = "foreign_key_joins"

EDITS_INSIDE = frozenset({"scrub", "regex", "json"})
"""Transforms that replace what they find inside a value and publish clean text unchanged."""

# BASIC gives counts; no sample values are collected at all.
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}
_HASH_STEP = np.uint64(1_099_511_628_211)
KEY_HASH_DOMAIN = "cleanroom/gate-key"


class SuiteError(CleanroomError):
    """An expectation suite cannot be built or did not load back whole."""


class MisalignedFingerprints(CleanroomError):
    """Recorded original row fingerprints do not line up with the published rows.

    Raised by a :attr:`TableInput.row_fingerprints` reader; the gate then fails the checks that
    need them rather than compare rows with other rows' originals.
    """


@dataclass
class ColumnInput:
    """What the gate knows about one published column, from the masking policy."""

    name: str
    logical: str
    transform: str
    masks: bool
    survivor_scope: str | None
    allow: tuple[str, ...] = ()
    unique: bool = False


@dataclass
class TableInput:
    """One published table: its policy columns and ways to re-read data and fingerprints.

    ``row_fingerprints(column)`` returns None when the column's originals were not recorded,
    else the original row fingerprints (uint64, 0 for NULL) in the row order of ``batches()``:
    one array, or an iterable of blocks read as they are needed. It may raise
    :class:`MisalignedFingerprints`.
    """

    name: str
    expected_rows: int
    columns: list[ColumnInput]
    batches: Callable[[], Iterator[pa.RecordBatch]]
    row_fingerprints: Callable[[str], np.ndarray | Iterable[np.ndarray] | None]


# --- suites -------------------------------------------------------------------------------------


def _gx():
    """Import GX quietly, with the cleanroom expectations registered first."""
    from expectations.gximport import import_gx

    gx = import_gx()
    import great_expectations.expectations as gxe

    from expectations import custom

    # GX pins this module's logger to INFO, which announces a temporary docs folder per context.
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    return gx, gxe, custom


@dataclass(frozen=True)
class PlannedExpectation:
    """One expectation of a table's suite, as the gate plans it before GX is imported."""

    check: str
    column: str | None = None
    kinds: tuple[str, ...] = ()
    meta: tuple[tuple[str, Any], ...] = ()

    @property
    def checks(self) -> list[str]:
        """The check names it reports (see :func:`_checks_of`)."""
        return _checks_of(self.check, self.kinds)


def plan_suite(table: TableInput) -> list[PlannedExpectation]:
    """Return the expectations :func:`build_suite` makes for ``table``, without importing GX.

    Every string or JSON column gets one detector expectation over the kinds not in its
    ``allow`` list, masked or kept; the table gets a row-count expectation. Raises
    :class:`SuiteError` for an allow list naming an unknown detector kind.
    """
    unknown = sorted({k for c in table.columns for k in c.allow} - set(detectors.DETECTORS))
    if unknown:
        raise SuiteError(
            f"table {table.name}: allow lists name unknown detector kind(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(detectors.DETECTORS))}"
        )
    planned = [PlannedExpectation(ROW_COUNT)]
    for column in table.columns:
        if column.transform == "drop":
            continue
        kinds = tuple(kind for kind in detectors.DETECTORS if kind not in column.allow)
        if column.logical in PATTERN_LOGICAL and kinds:
            meta = (("transform", column.transform), ("logical", column.logical), ("survivor_scope", column.survivor_scope))
            planned.append(PlannedExpectation(DETECTOR_MATCHES, column.name, kinds, meta))
    return planned


def build_suite(source: str, table: TableInput) -> ExpectationSuite:
    """Build the GX suite for one published table from its policy columns (:func:`plan_suite`).

    Each expectation's ``meta`` names the check and the column's transform, never a value.

    Uniqueness has no expectation here: GX can only see one chunk, and the table-wide check of
    :func:`validate_snapshot` (spilled hashes) finds every duplicate a chunk holds and more. A
    per-chunk expectation cost a pandas factorisation of each unique column and decided nothing.
    """
    return _suite_of(source, table, plan_suite(table))


def _suite_of(source: str, table: TableInput, planned: list[PlannedExpectation]) -> ExpectationSuite:
    """The GX suite holding the ``planned`` expectations of ``table``."""
    gx, gxe, custom = _gx()
    expectations = []
    for each in planned:
        if each.check == ROW_COUNT:
            expectations.append(gxe.ExpectTableRowCountToEqual(value=table.expected_rows, meta={"check": ROW_COUNT}))
        else:
            expectations.append(custom.ExpectColumnValuesToHoldNoDetectorMatches(
                column=each.column, kinds=list(each.kinds), meta={**dict(each.meta), "check": each.check}
            ))
    return gx.ExpectationSuite(name=f"{source}.{table.name}", expectations=expectations, meta={"source": source})


def save_suite(suite: ExpectationSuite, path: Path) -> None:
    """Write ``suite`` as JSON (it holds policy information and counts, no values)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(suite.to_json_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")


def load_suite(path: Path) -> ExpectationSuite:
    """Load a suite written by :func:`save_suite`; raise SuiteError if GX dropped any expectation."""
    gx, _, _ = _gx()
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    written = len(data.get("expectations", []))
    suite = gx.ExpectationSuite(**data)
    if len(suite.expectations) != written:
        loaded = {e.expectation_type for e in suite.expectations}
        missing = sorted({e.get("type", "?") for e in data["expectations"]} - loaded)
        raise SuiteError(
            f"suite {path} holds {written} expectations but {len(suite.expectations)} loaded; GX drops "
            f"expectation types it does not know ({', '.join(missing) or 'unknown'}): import "
            "expectations.custom before loading"
        )
    return suite


# --- validation ---------------------------------------------------------------------------------


class _Runner:
    """One ephemeral GX context with a pandas data source and one reusable batch definition.

    Importing GX takes seconds of one core, so :meth:`start` begins it on a thread of its own
    and the gate reads and checks its first chunks meanwhile; :meth:`get` waits for it.
    """

    _started: Future | None = None
    _start_lock = threading.Lock()

    def __init__(self) -> None:
        gx, _, _ = _gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.execution_engine import pandas_execution_engine

        # GX labels every in-memory frame under HASH_THRESHOLD bytes with an md5 over pandas'
        # hash of every cell (the batch marker "pandas_data_fingerprint"); nothing here reads
        # that marker, and computing it took a tenth of the gate's time. Threshold 0 skips it.
        pandas_execution_engine.HASH_THRESHOLD = 0

        self.version = gx.__version__
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        asset = self.context.data_sources.add_pandas("cleanroom").add_dataframe_asset("published")
        self.batch_definition = asset.add_batch_definition_whole_dataframe("chunk")
        self.lock = threading.Lock()

    @classmethod
    def start(cls) -> Future:
        """Begin building the one runner on a background thread, once per process."""
        with cls._start_lock:
            if cls._started is None:
                future: Future = Future()

                def build() -> None:
                    try:
                        future.set_result(cls())
                    except BaseException as exc:  # handed to whoever waits in get()
                        future.set_exception(exc)

                threading.Thread(target=build, name="gate-gx-import", daemon=True).start()
                cls._started = future
            return cls._started

    @classmethod
    def get(cls) -> _Runner:
        future = cls.start()
        try:
            return future.result()
        except BaseException:
            with cls._start_lock:
                if cls._started is future:
                    cls._started = None  # the next call tries again
            raise

    def run(self, suite: ExpectationSuite, frame: pd.DataFrame):
        # One shared context and batch definition: table passes on other threads wait here.
        with self.lock:
            batch = self.batch_definition.get_batch(batch_parameters={"dataframe": frame})
            return batch.validate(suite, result_format=RESULT_FORMAT)


class _Checks:
    """Check outcomes aggregated over chunks, in the order they were first declared."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str | None, str], dict[str, Any]] = {}

    def declare(self, table: str, column: str | None, check: str) -> None:
        self.entries.setdefault(
            (table, column, check),
            {"table": table, "column": column, "check": check, "passed": True, "unexpected_count": 0, "element_count": 0},
        )

    def add(self, table: str, column: str | None, check: str, unexpected: int, elements: int, passed: bool | None = None) -> None:
        self.declare(table, column, check)
        entry = self.entries[(table, column, check)]
        entry["unexpected_count"] += int(unexpected)
        entry["element_count"] += int(elements)
        entry["passed"] = entry["passed"] and (unexpected == 0 if passed is None else passed)

    def set(self, table: str, column: str | None, check: str, unexpected: int, elements: int) -> None:
        self.declare(table, column, check)
        entry = self.entries[(table, column, check)]
        entry.update(unexpected_count=int(unexpected), element_count=int(elements), passed=unexpected == 0)

    def for_table(self, table: str) -> list[dict[str, Any]]:
        return [e for e in self.entries.values() if e["table"] == table]


def validate_snapshot(
    *,
    source: str,
    tables: list[TableInput],
    dropped: list[str],
    published_tables: set[str],
    identifier_fingerprints: np.ndarray | Iterable[np.ndarray],
    key: MaskingKey,
    foreign_keys: list[tuple[str, tuple[str, ...], str, tuple[str, ...]]],
    report_dir: Path | None = None,
    work_dir: Path | None = None,
) -> dict:
    """Validate every published table of a masked snapshot and return a summary of counts.

    ``foreign_keys`` holds (table, columns, referenced table, referenced columns). The summary
    holds check names, table and column names, counts and rates, never a value; it does not
    raise on failed checks (see :func:`failures`). With ``report_dir``, each table's suite is
    written to ``report_dir/suites/<table>.json`` and loaded back as a check.
    ``identifier_fingerprints`` (one array, or blocks of one) are the fingerprints of original
    values that must appear nowhere. Spilled sets go under ``work_dir`` (a private folder; a
    temporary one when None), removed when the call returns.

    A column's ``allow`` list only removes pattern checks. The survivor checks ignore it: an
    allowed email that is also an original value of a masked column fails ``no_original_values``.
    Columns whose transform edits inside values (scrub, regex, json) may publish text that held
    nothing to replace unchanged; for them only the tokens found inside must not survive.

    Known limitations:
        A row-count expectation per chunk cannot see the whole table, so the table's row count
        is the sum of GX's observed counts, compared here.
    """
    started = time.perf_counter()
    _Runner.start()  # GX imports on a thread of its own while the first chunks are read and checked
    checks = _Checks()
    for name in dropped:
        present = name in published_tables
        checks.set(name, None, DROPPED_TABLE, unexpected=int(present), elements=1)

    with contextlib.ExitStack() as stack:
        if work_dir is None:
            work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cleanroom-gate-")))
        else:
            work_dir = Path(work_dir)
            _remove_tree(work_dir)  # an earlier attempt's sets, left by a crash, must not add up with ours
            stack.callback(_remove_tree, work_dir)
        spilled = _Spilled(work_dir, sum(t.expected_rows for t in tables), identifier_fingerprints)
        referenced = {(ref, tuple(ref_cols)) for _, _, ref, ref_cols in foreign_keys}
        passes = []
        for table in tables:
            planned = plan_suite(table)
            suite_file = None if report_dir is None else Path(report_dir) / "suites" / f"{table.name}.json"
            fks = [(c, ref, tuple(ref_c)) for child, c, ref, ref_c in foreign_keys if child == table.name]
            keys_of = [cols for ref, cols in referenced if ref == table.name]
            passes.append(_TableValidation(source, planned, suite_file, table, spilled, key, fks, keys_of, checks))
            passes[-1].declare()  # here, in table order, so the summary lists checks in that order
        _run_passes(passes)
        # Every table has been read, so every referenced key set is complete: a child table may
        # come before its parent.
        key_sets = {(p.table.name, cols): hashed for p in passes for cols, hashed in p.key_sets.items()}
        for validation in passes:
            validation.check_foreign_keys(key_sets)
        for (table_name, column), rows in spilled.probes.hit_rows().items():
            checks.add(table_name, column, NO_ORIGINAL, len(rows), 0)

    summary = _summary(checks, tables, _Runner.get().version)
    log.info(
        "validated %d table(s) of %s in %.1f s: %d check(s), %d failed",
        len(tables), source, time.perf_counter() - started, len(summary["checks"]),
        sum(not c["passed"] for c in summary["checks"]),
    )
    return summary


def failures(summary: dict) -> list[tuple[str, str | None, str, int]]:
    """Return (table, column, check, offending count) for every failed check of a summary."""
    return [(c["table"], c["column"], c["check"], c["unexpected_count"]) for c in summary["checks"] if not c["passed"]]


def _summary(checks: _Checks, tables: list[TableInput], version: str) -> dict:
    listed = list(checks.entries.values())
    for entry in listed:
        elements = entry["element_count"]
        entry["unexpected_rate"] = round(entry["unexpected_count"] / elements, 6) if elements else 0.0
    per_table = {}
    for table in tables:
        own = checks.for_table(table.name)
        rows = next((c["element_count"] for c in own if c["check"] == ROW_COUNT), 0)
        per_table[table.name] = {"rows": rows, "checks": len(own), "failed": sum(not c["passed"] for c in own)}
    return {
        "passed": all(c["passed"] for c in listed),
        "engine": f"great_expectations {version}",
        "checks": listed,
        "tables": per_table,
    }


class _TableValidation:
    """One pass over a published table: the numpy checks per chunk, then GX on the same chunk.

    The suite is built, and written to ``suite_file`` and loaded back, when GX first runs: until
    then GX may still be importing on another thread, and the pass need not wait for it.

    The pass also collects the hashes of its key columns that foreign keys refer to
    (``key_sets``, by column tuple), so a parent table is read once; :meth:`check_foreign_keys`
    compares this table's foreign keys once every table has had its pass.
    """

    def __init__(self, source, planned, suite_file, table, spilled, key, fks, keys_of, checks) -> None:
        self.source, self.planned, self.suite_file, self.table = source, planned, suite_file, table
        self.suite: ExpectationSuite | None = None
        self.spilled, self.key, self.fks, self.checks = spilled, key, fks, checks
        self.columns = {c.name: c for c in table.columns if c.transform != "drop"}
        self.dropped_columns = {c.name for c in table.columns if c.transform == "drop"}
        self.text = [c for c in self.columns.values() if c.logical in SURVIVOR_LOGICAL]
        self.row_scoped = [c for c in self.columns.values() if c.survivor_scope in ("row", "set")]
        self.originals: dict[str, _RowStream] = {}
        self.unique_hashes = {c.name: spilled.new_set() for c in self.columns.values() if c.unique}
        self.fk_hashes = [spilled.new_set() for _ in fks]
        self.key_sets: dict[tuple[str, ...], spill.PartitionedSet] = {}
        self.hashed_keys = [(cols, hashed) for (cols, _, _), hashed in zip(fks, self.fk_hashes)]
        for cols in keys_of:
            if len(cols) == 1 and cols[0] in self.unique_hashes:
                # A unique column's set holds exactly the hashes a reference to it needs: shared.
                self.key_sets[cols] = self.unique_hashes[cols[0]]
            else:
                self.key_sets[cols] = spilled.new_set()
                self.hashed_keys.append((cols, self.key_sets[cols]))
        self.offset = 0
        self.gx_rows = 0

    @property
    def cost(self) -> int:
        """A rough measure of the pass's work, to start the costliest passes first."""
        return self.table.expected_rows * (1 + len(self.text))

    def run(self) -> None:
        searched = [e.column for e in self.planned if e.check == DETECTOR_MATCHES]
        for chunk in _chunks(self.table.batches(), CHUNK_ROWS):
            self._check_columns(chunk)
            frame = self._frame(chunk)
            originals = {name: stream.take(chunk.num_rows) for name, stream in self.originals.items()}
            try:
                for column in searched:
                    # The detector search, outside GX's lock; GX's metric reuses the findings.
                    findings.findings_for(frame[column])
                self._survivors(chunk, frame, originals)
                self._collect_keys(chunk)
                self._record_gx(_Runner.get().run(self._gx_suite(), frame), chunk.num_rows)
            finally:
                findings.clear_cache()  # findings hold matched text; drop them with the chunk
            self.offset += chunk.num_rows
        self._gx_suite()  # built, written and loaded back also for a table without rows
        self._finish()

    def _gx_suite(self) -> ExpectationSuite:
        """The table's GX suite, built (and written, and loaded back) the first time it is needed."""
        if self.suite is None:
            suite = _suite_of(self.source, self.table, self.planned)  # the checks declare() declared
            if self.suite_file is not None:
                save_suite(suite, self.suite_file)
                load_suite(self.suite_file)
            self.suite = suite
        return self.suite

    def declare(self) -> None:
        """Declare every check of the pass and open the original row fingerprints."""
        name = self.table.name
        for expectation in self.planned:
            for check in expectation.checks:
                self.checks.declare(name, expectation.column, check)
        self.checks.declare(name, None, COLUMNS_DECLARED)
        for column in self.unique_hashes:
            self.checks.declare(name, column, UNIQUE)
        for column in self.text:
            self.checks.declare(name, column.name, NO_ORIGINAL)
        for column in self.row_scoped:
            try:
                original = self.table.row_fingerprints(column.name)
            except MisalignedFingerprints as exc:
                log.warning("%s.%s: %s; %s failed", name, column.name, exc, _needs_originals(column))
                self.checks.add(name, column.name, _needs_originals(column), self.table.expected_rows, 0, passed=False)
                continue
            if original is None:
                log.info("%s.%s: no original row fingerprints recorded; %s skipped", name, column.name, NO_ROW_KEPT)
                continue
            self.originals[column.name] = _RowStream(original)
            if not _edits_inside(column):
                self.checks.declare(name, column.name, NO_ROW_KEPT)
        for cols, ref, _ in self.fks:
            self.checks.declare(name, ",".join(cols), f"{FOREIGN_KEY}:{ref}")

    def _check_columns(self, chunk: pa.Table) -> None:
        present = set(chunk.column_names)
        stray = sorted((present - set(self.columns)) | (present & self.dropped_columns))
        missing = sorted(set(self.columns) - present)
        if stray or missing:
            log.warning(
                "%s: published columns differ from the policy: %d undeclared or dropped, %d missing",
                self.table.name, len(stray), len(missing),
            )
        self.checks.add(self.table.name, None, COLUMNS_DECLARED, len(stray) + len(missing), len(present))

    def _frame(self, chunk: pa.Table) -> pd.DataFrame:
        """Return the columns GX and :meth:`_survivors` read, as Arrow-backed pandas strings.

        Those are the string, JSON and UUID columns: GX searches the first two for patterns, and
        :meth:`_survivors` checks all three for original values.
        """
        arrays, names = [], []
        for column in self.columns.values():
            if column.name not in chunk.column_names:
                continue
            if column.logical in SURVIVOR_LOGICAL:
                array = chunk.column(column.name)
                if column.logical in SURVIVOR_LOGICAL and not _is_string(array.type):
                    array = array.cast(pa.string())
                arrays.append(array)
                names.append(column.name)
        if not names:
            return pd.DataFrame(index=pd.RangeIndex(chunk.num_rows))
        return pa.table(arrays, names=names).to_pandas()

    def _record_gx(self, result, rows: int) -> None:
        for outcome in result.results:
            config = outcome.expectation_config
            check, column = config.meta["check"], config.kwargs.get("column")
            if outcome.exception_info and outcome.exception_info.get("raised_exception"):
                # Fail closed: a check that could not run proves nothing. The message may quote data.
                log.warning("%s.%s: check %s raised inside GX; counted as failed", self.table.name, column, check)
                for each in _checks_of(check, config.kwargs.get("kinds", ())):
                    self.checks.add(self.table.name, column, each, rows, rows, passed=False)
            elif check == DETECTOR_MATCHES:
                counts = outcome.result.get("observed_value") or {}
                for kind in config.kwargs["kinds"]:
                    # A kind missing from the counts was not checked: fail closed.
                    found = counts.get(kind)
                    self.checks.add(self.table.name, column, findings.check_name(kind), rows if found is None else found,
                                    rows, passed=None if found is not None else False)
            else:  # ROW_COUNT: build_suite makes no other expectation
                self.gx_rows += int(outcome.result.get("observed_value") or 0)

    def _survivors(self, chunk: pa.Table, frame: pd.DataFrame, originals: dict[str, np.ndarray]) -> None:
        row_fps: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        probes = self.spilled.probes
        for column in self.text:
            if column.name not in chunk.column_names:
                continue
            label = (self.table.name, column.name)
            values = findings.as_arrow_strings(frame[column.name])
            fps, idx, valid = _encode_fingerprints(self.key, values)
            mine = _per_row(fps, idx, valid)
            row_fps[column.name] = (mine, valid)
            # Distinct values the Bloom filter cannot rule out go to the exact check at the end.
            rows = valid & probes.maybe(fps)[idx] if fps.size else np.zeros(len(values), dtype=bool)
            if _edits_inside(column) and column.name in self.originals:
                # Text that held nothing to replace is published as it was: only the tokens inside
                # it (checked below) may not survive, not the unchanged text itself.
                rows &= mine != originals[column.name]
            picked = np.flatnonzero(rows)
            probes.ask(label, mine[picked], self.offset + picked)
            if column.logical in PATTERN_LOGICAL:
                self._ask_tokens(label, [(row, token) for row, _, token in findings.findings_for(frame[column.name]).tokens])
                self._ask_tokens(label, self._digit_runs(values))
            self.checks.add(self.table.name, column.name, NO_ORIGINAL, 0, int(valid.sum()))

        for name, column in self.columns.items():
            if name not in self.originals or name not in chunk.column_names or _edits_inside(column):
                continue
            if name not in row_fps:
                fps, idx, valid = _encode_fingerprints(self.key, chunk.column(name))
                row_fps[name] = (_per_row(fps, idx, valid), valid)
            mine, valid = row_fps[name]
            theirs = originals[name]
            kept = (mine == theirs) & (theirs != 0) & valid
            self.checks.add(self.table.name, name, NO_ROW_KEPT, int(kept.sum()), int(((theirs != 0) & valid).sum()))

    @staticmethod
    def _digit_runs(values: pa.Array | pa.ChunkedArray) -> list[tuple[int, str]]:
        """(row, digits) for every bare run of 7 to 15 digits in the chunk's text.

        A phone number written as "7763661934" without a phone word is no pattern the
        detectors may claim (it could be any id), but when it equals an original value of a
        masked column it is a leak all the same.
        """

        candidates = detectors.rows_matching(values, r"[0-9]{7}", min_digits=7)
        return [(int(i), run) for i in np.flatnonzero(candidates) for run in DIGIT_RUN.findall(values[int(i)].as_py())]

    def _ask_tokens(self, label: tuple[str, str], tokens: list[tuple[int, str]]) -> None:
        """Ask whether text found inside the chunk's values (row, token) is an original value."""
        if tokens:
            rows = np.array([row for row, _ in tokens], dtype=np.int64)
            self.spilled.probes.ask(label, fingerprints(self.key, [t for _, t in tokens]), self.offset + rows)

    def _collect_keys(self, chunk: pa.Table) -> None:
        for name, hashed in self.unique_hashes.items():
            if name in chunk.column_names:
                hashes, valid = _hash_keys([chunk.column(name)], self.key)
                hashed.add(hashes[valid])
        for cols, hashed in self.hashed_keys:
            if all(c in chunk.column_names for c in cols):
                hashes, valid = _hash_keys([chunk.column(c) for c in cols], self.key)
                hashed.add(hashes[valid])

    def _finish(self) -> None:
        name = self.table.name
        self.checks.set(name, None, ROW_COUNT, abs(self.gx_rows - self.table.expected_rows), self.gx_rows)
        for column, stream in self.originals.items():
            off = stream.missing + stream.surplus()
            if off:
                # Rows were compared with other rows' originals: neither outcome proves anything.
                check = _needs_originals(self.columns[column])
                log.warning(
                    "%s.%s: %d original row fingerprint(s) more or fewer than the %d published row(s); %s failed",
                    name, column, off, self.offset, check,
                )
                self.checks.add(name, column, check, off, 0, passed=False)
        parts = range(self.spilled.partitions)
        for column, hashed in self.unique_hashes.items():
            duplicates = sum(spill.duplicate_rows(hashed.values(p)) for p in parts)
            self.checks.set(name, column, UNIQUE, duplicates, hashed.count)
        for _, hashed in self.hashed_keys:
            hashed.flush()  # kept on disk, not in memory, until every table has had its pass

    def check_foreign_keys(self, key_sets: dict[tuple[str, tuple[str, ...]], spill.PartitionedSet]) -> None:
        """Count this table's keys missing from the referenced ones (all tables' passes done)."""
        for (cols, ref, ref_cols), hashed in zip(self.fks, self.fk_hashes):
            referenced = key_sets.get((ref, ref_cols))
            if referenced is None:
                log.warning("referenced table %s is not published; every key referring to it dangles", ref)
                referenced = key_sets[(ref, ref_cols)] = self.spilled.new_set()
            parts = range(self.spilled.partitions)
            dangling = sum(spill.count_missing(hashed.values(p), referenced.sorted_unique(p)) for p in parts)
            self.checks.set(self.table.name, ",".join(cols), f"{FOREIGN_KEY}:{ref}", dangling, hashed.count)


def _run_passes(passes: list[_TableValidation]) -> None:
    """Run every table pass, :data:`PASS_THREADS` at a time, costliest first."""
    from concurrent.futures import ThreadPoolExecutor

    ordered = sorted(passes, key=lambda p: p.cost, reverse=True)
    if PASS_THREADS <= 1 or len(ordered) <= 1:
        for validation in ordered:
            validation.run()
        return
    with ThreadPoolExecutor(max_workers=PASS_THREADS, thread_name_prefix="gate") as pool:
        for done in [pool.submit(validation.run) for validation in ordered]:
            done.result()  # re-raises a pass's error here


class _Spilled:
    """The snapshot's spilled sets: original-value fingerprints, probes against them, key hashes."""

    def __init__(self, folder: Path, rows: int, identifier_fingerprints: np.ndarray | Iterable[np.ndarray]) -> None:
        self.folder = folder
        self.partitions = spill.partitions_for(rows)
        self._sets = 0
        blocks = [identifier_fingerprints] if isinstance(identifier_fingerprints, np.ndarray) else identifier_fingerprints
        identifiers = spill.fill(self.new_set(), blocks)
        self.probes = spill.Probes(folder / "probes", self.partitions, identifiers, spill.bloom_of(identifiers))
        log.debug(
            "gate: %d original fingerprint(s) in %d partition(s), Bloom filter %d KiB",
            identifiers.count, self.partitions, self.probes.bloom.nbytes // 1024,
        )

    def new_set(self) -> spill.PartitionedSet:
        self._sets += 1
        return spill.PartitionedSet(self.folder / f"set-{self._sets:05d}", self.partitions)


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


# --- helpers ------------------------------------------------------------------------------------


def _is_string(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _chunks(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Join record batches into tables of at least ``rows`` rows (the last one may be smaller)."""
    pending, size = [], 0
    for batch in batches:
        pending.append(batch)
        size += batch.num_rows
        if size >= rows:
            yield pa.Table.from_batches(pending)
            pending, size = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def _encode_fingerprints(key: MaskingKey, values: pa.Array | pa.ChunkedArray):
    """Fingerprint the distinct values of a column once; return (fps, row index, valid).

    ``fps[idx[row]]`` is the fingerprint of ``row``. A column whose sample is mostly distinct
    is fingerprinted row by row (``idx`` is then the row number).

    The distinct values stay in Arrow: :func:`fingerprints` normalises and hashes them there,
    as extraction did for the originals.
    """
    distinct, idx = distinct_or_all(values)
    fps = fingerprints(key, distinct) if len(distinct) else np.zeros(0, dtype=np.uint64)
    valid = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    return fps, np.maximum(idx, 0), valid


def _per_row(fps: np.ndarray, idx: np.ndarray, valid: np.ndarray) -> np.ndarray:
    if not fps.size:
        return np.zeros(len(idx), dtype=np.uint64)
    return np.where(valid, fps[idx], np.uint64(0))


def _checks_of(check: str, kinds) -> list[str]:
    """The check names one expectation reports: ``no_<kind>`` per kind for detector expectations."""
    if check != DETECTOR_MATCHES:
        return [check]
    return [findings.check_name(kind) for kind in kinds]


def _edits_inside(column: ColumnInput) -> bool:
    """Return whether the column's transform edits inside values, leaving clean text as it was."""
    return column.transform.split(":", 1)[0] in EDITS_INSIDE


def _needs_originals(column: ColumnInput) -> str:
    """Return the check that reads the column's original row fingerprints."""
    return NO_ORIGINAL if _edits_inside(column) else NO_ROW_KEPT


class _RowStream:
    """Original row fingerprints of one column, handed out in step with the published rows.

    Reads the next block only when the rows asked for go past the one in hand, so memory holds
    about a chunk of them. Past the end it hands out 0 (no original) and counts the shortfall.
    """

    def __init__(self, blocks: np.ndarray | Iterable[np.ndarray]) -> None:
        self._blocks = iter([blocks] if isinstance(blocks, np.ndarray) else blocks)
        self._pending = np.zeros(0, dtype=np.uint64)
        self.missing = 0

    def take(self, rows: int) -> np.ndarray:
        parts, have = [], 0
        while have < rows:
            if not self._pending.size:
                block = next(self._blocks, None)
                if block is None:
                    break
                self._pending = np.asarray(block, dtype=np.uint64)
                continue
            part, self._pending = self._pending[:rows - have], self._pending[rows - have:]
            parts.append(part)
            have += part.size
        if have < rows:
            self.missing += rows - have
            parts.append(np.zeros(rows - have, dtype=np.uint64))
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)

    def surplus(self) -> int:
        """Count (and read past) the fingerprints left after the last row taken."""
        extra = self._pending.size + sum(len(block) for block in self._blocks)
        self._pending = np.zeros(0, dtype=np.uint64)
        return extra


def _hash_keys(columns: list[pa.Array | pa.ChunkedArray], key: MaskingKey) -> tuple[np.ndarray, np.ndarray]:
    """Return a 64-bit hash per row of one or more key columns, and where every part is non-null.

    Integers are their own hash; text is hashed with the run's key (in C, no Python object per
    value), so equal keys in a child and its parent table hash alike.
    """
    combined, valid = None, None
    for column in columns:
        present = column.is_valid().to_numpy(zero_copy_only=False)
        if pa.types.is_integer(column.type) or pa.types.is_boolean(column.type):
            hashes = column.cast(pa.int64()).fill_null(0).to_numpy().view(np.uint64)
        else:
            text = column if _is_string(column.type) else column.cast(pa.string())
            hashes = key.digests64_arrow(KEY_HASH_DOMAIN, text)
        combined = hashes if combined is None else (combined * _HASH_STEP) ^ hashes
        valid = present if valid is None else valid & present
    return combined, valid


# --- report -------------------------------------------------------------------------------------

_REPORT_FIELDS = ("transform", "classification", "survivor_scope", "allow")
_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}.ok{color:#176b21}.bad{color:#b00020;font-weight:600}
"""


def write_report(summary: dict, manifest_columns: dict, path: Path) -> None:
    """Write a self-contained HTML privacy report of a validation summary.

    ``manifest_columns`` maps table -> column -> metadata; only the transform, classification,
    survivor scope and allow list are shown. The page holds names, counts and outcomes only.
    """
    esc = html.escape
    verdict = "passed" if summary["passed"] else "FAILED"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>cleanroom privacy report</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Privacy report: <span class='{'ok' if summary['passed'] else 'bad'}'>{verdict}</span></h1>",
        f"<p>Engine: {esc(str(summary.get('engine', '')))}. Values are never shown; counts are rows.</p>",
    ]
    by_table: dict[str, list[dict]] = {}
    for check in summary["checks"]:
        by_table.setdefault(check["table"], []).append(check)
    for table in sorted(set(by_table) | set(manifest_columns)):
        info = summary["tables"].get(table, {})
        parts.append(f"<h2>{esc(table)}</h2>")
        if info:
            parts.append(f"<p>{info['rows']} rows, {info['checks']} checks, {info['failed']} failed.</p>")
        parts.append(_report_table(table, by_table.get(table, []), manifest_columns.get(table, {})))
    parts.append("</body></html>")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(parts), encoding="utf-8")


def _report_table(table: str, checks: list[dict], columns: dict) -> str:
    esc = html.escape
    names = list(columns) + [c["column"] for c in checks if c["column"] and c["column"] not in columns]
    rows = ["<table><tr><th>column</th>" + "".join(f"<th>{f}</th>" for f in _REPORT_FIELDS) + "<th>checks</th></tr>"]
    for column in [None, *dict.fromkeys(names)]:
        meta = columns.get(column, {}) if column else {}
        own = [c for c in checks if c["column"] == column]
        if column is None and not own:
            continue
        cells = "".join(f"<td>{esc(_field(meta.get(f)))}</td>" for f in _REPORT_FIELDS)
        outcome = "<br>".join(
            f"<span class='{'ok' if c['passed'] else 'bad'}'>{esc(c['check'])}: "
            f"{'ok' if c['passed'] else 'FAILED'} ({c['unexpected_count']}/{c['element_count']})</span>"
            for c in own
        )
        rows.append(f"<tr><td>{esc(column or '(table)')}</td>{cells}<td>{outcome}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)
