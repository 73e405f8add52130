"""The steps of one refresh: plan, extract and mask, validate, write SQL, publish.

Each step is a plain function of a :class:`SourceConfig` and JSON-able inputs, so the DAG
tasks stay thin and the steps can be tested without a scheduler. What crosses XCom holds
table names, counts, object keys and checksums: never a value, never the key.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cleanroom import snapshot
from cleanroom.bucket import Bucket, HashingWriter
from cleanroom.config import SourceConfig
from cleanroom.masker import BatchMasker, MaskedBatch, mask_stream, masking_processes
from cleanroom.memory import use_returning_allocator
from masking import policy as P
from masking import schema as S
from masking import transforms as T
from masking.errors import ConfigError, KeyMissingError, PolicyError, ValidationFailed
from masking.keys import MaskingKey

log = logging.getLogger(__name__)
_DEMO_WARNED: set[str] = set()


# --- shared helpers --------------------------------------------------------------------------


def load_key(source: SourceConfig) -> MaskingKey:
    """Read the masking key from the source's Airflow connection or variable.

    Refuses to go on without one, except for a source marked ``demo_key: true``.
    """
    if source.demo_key:
        log.log(
            logging.WARNING if source.name not in _DEMO_WARNED else logging.DEBUG,
            "SOURCE %s USES THE PUBLIC DEMO MASKING KEY: its fakes are reproducible by anyone. "
            "Never use demo_key with real data.", source.name,
        )
        _DEMO_WARNED.add(source.name)
        return MaskingKey.demo()
    secret = _key_from_connection(source.key_conn_id) or _key_from_variable(source.key_variable)
    if not secret:
        raise KeyMissingError(
            f"no masking key for source {source.name!r}: set the password of Airflow connection "
            f"{source.key_conn_id!r} or the Airflow variable {source.key_variable!r} to a random secret "
            "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )
    from airflow.sdk.log import mask_secret

    mask_secret(secret)
    return MaskingKey(secret)


def _key_from_connection(conn_id: str) -> str | None:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException, AirflowRuntimeError

    try:
        return BaseHook.get_connection(conn_id).password or None
    except (AirflowNotFoundException, AirflowRuntimeError) as exc:
        log.debug("no key connection %s: %s", conn_id, type(exc).__name__)
        return None


def _key_from_variable(name: str) -> str | None:
    from airflow.sdk import Variable

    try:
        return Variable.get(name, default=None)
    except Exception as exc:  # noqa: BLE001 - a missing variable backend means no variable
        log.debug("no key variable %s: %s", name, type(exc).__name__)
        return None


def engine_for(source: SourceConfig):
    from cleanroom import source as src

    return src.create_engine(src.url_for(source))


def work_dir(source: SourceConfig, version: str) -> Path:
    """Private per-run area (fingerprints, reports in progress); never published."""
    path = source.work_dir / source.name / version
    path.mkdir(parents=True, exist_ok=True)
    return path


def checked_policy(source: SourceConfig, schema: S.Schema, expected_sha256: str | None = None) -> P.Policy:
    policy = P.load(source.policy)
    if expected_sha256 and policy.sha256 != expected_sha256:
        raise PolicyError(
            [P.Problem("the policy file changed while this run was in progress", file=str(source.policy))],
            hint="Start a new run so every table is masked under the same policy.",
        )
    return P.check(policy, schema)


# --- plan ------------------------------------------------------------------------------------


def plan(source: SourceConfig, run_id: str) -> dict[str, Any]:
    """Reflect the source, check the policy covers it, and list the tables to extract.

    Fails closed: an uncovered table or column stops the run before any row is read.
    """
    from cleanroom import source as src

    load_key(source)  # fail before reading anything when the key is missing
    bucket = Bucket.for_source(source)
    bucket.check()
    engine = engine_for(source)
    try:
        schema = src.reflect(engine, source.db_schema)
        policy = checked_policy(source, schema)
        jobs = _jobs(engine, source, schema, policy)
    finally:
        engine.dispose()
    version = snapshot.new_version(run_id)
    stale = snapshot.remove_incomplete(bucket, source.name, older_than=dt.timedelta(hours=12))
    if stale:
        log.info("removed %d incomplete version(s) left by earlier failed runs", len(stale))

    dropped = [name for name, rule in policy.tables.items() if rule.action == P.DROP]
    if source.subset:
        from cleanroom.subset import plan_subset

        # Dropped tables must not widen the subset: plan over the extracted tables only.
        kept = S.Schema({n: t for n, t in schema.tables.items() if n not in dropped}, schema.dialect)
        fragments = plan_subset(kept, source.subset["roots"], schema.dialect)
        for job in jobs:
            job["subset"] = fragments.get(job["table"])
        log.info("subset: %d table(s) filtered, roots %s", sum(1 for f in fragments.values() if f), ", ".join(source.subset["roots"]))
    schema_json = json.dumps(schema.to_dict(), sort_keys=True)
    log.info(
        "plan for %s: version %s, %d table(s) to extract, %d dropped: %s",
        source.name, version, len(jobs), len(dropped), ", ".join(dropped) or "none",
    )
    shared = _hold_shared_snapshot(source, schema.dialect, version) if source.consistency == "shared_snapshot" else None
    return {
        "shared_snapshot": shared,
        "source": source.name,
        "consistency": source.consistency,
        "version": version,
        "run_id": run_id,
        "schema": schema.to_dict(),
        "schema_sha256": hashlib.sha256(schema_json.encode()).hexdigest(),
        "policy_sha256": policy.sha256,
        "dialect": schema.dialect,
        "jobs": jobs,
        "dropped": sorted(dropped),
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(),
    }


def _hold_shared_snapshot(source: SourceConfig, dialect: str, version: str) -> dict[str, Any]:
    """Start the holder whose exported snapshot every extract task of the run adopts."""
    from cleanroom import source as src
    from cleanroom.consistency import hold_snapshot

    if dialect != "postgresql":
        raise ConfigError(
            f"source {source.name!r}: `consistency: shared_snapshot` needs PostgreSQL, the source is {dialect}; "
            "use `snapshot` (one task, one transaction) or `per_table`"
        )
    # A short tag: PostgreSQL cuts application names at 63 bytes, and release matches on it.
    tag = hashlib.sha256(version.encode()).hexdigest()[:16]
    return hold_snapshot(src.url_for(source), tag, source.snapshot_hold_minutes * 60)


def release_shared_snapshot(source: SourceConfig, plan_: dict[str, Any]) -> None:
    """End the run's snapshot holder, if it has one: every extract task is done with it."""
    from cleanroom.consistency import release_snapshot

    holder = plan_.get("shared_snapshot")
    if not holder:
        return
    engine = engine_for(source)
    try:
        release_snapshot(engine, holder)
    finally:
        engine.dispose()


def _jobs(engine, source: SourceConfig, schema: S.Schema, policy: P.Policy) -> list[dict[str, Any]]:
    """One job per table to extract, or one per key range for tables above ``chunk_rows``."""
    from cleanroom import source as src
    from cleanroom.consistency import plan_chunks

    jobs = []
    with src.read_only(engine) as conn:
        for name, rule in policy.tables.items():
            if rule.action == P.DROP:
                continue
            chunks = plan_chunks(conn, schema.tables[name], source.chunk_rows) if rule.action == P.MASK else []
            jobs += [{"table": name, "action": rule.action, **c} for c in chunks] or [{"table": name, "action": rule.action}]
    return jobs


# --- extract and mask ------------------------------------------------------------------------


def extract_table(source: SourceConfig, plan_: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """Extract one table or chunk in its own read-only transaction (``per_table`` mode).

    With ``shared_snapshot`` the transaction adopts the run's exported snapshot, so every
    task reads as of the moment the plan took it.
    """
    from cleanroom import source as src
    from cleanroom.consistency import adopted

    engine = engine_for(source)
    holder = plan_.get("shared_snapshot")
    try:
        with adopted(engine, holder["snapshot"]) if holder else src.read_only(engine) as conn:
            result = _extract(conn, source, plan_, job)
    finally:
        engine.dispose()
    if holder:
        result["consistency"] = "exported-snapshot"
    return result


def extract_all(source: SourceConfig, plan_: dict[str, Any]) -> list[dict[str, Any]]:
    """Extract every table and chunk as of one moment (``snapshot`` mode).

    On PostgreSQL the jobs run on ``source.workers`` threads whose connections share an
    exported snapshot; elsewhere they run one after another in one transaction. The readers
    share ``source.mask_workers`` between them: each masks with its part of them, so parallel
    readers do not multiply the masking processes beyond what was asked for (see
    :func:`~cleanroom.masker.masking_processes`).
    """
    from concurrent.futures import ThreadPoolExecutor

    from cleanroom.consistency import snapshot_session

    engine = engine_for(source)
    try:
        with snapshot_session(engine) as session:
            readers = source.workers if session.parallel and source.workers > 1 and len(plan_["jobs"]) > 1 else 1
            mask_workers = source.mask_workers // readers  # 0 when fewer than readers: none

            def run(job):
                with session.connection() as conn:
                    return _extract(conn, source, plan_, job, mask_workers, shared_reader=readers > 1)

            if readers > 1:
                with ThreadPoolExecutor(max_workers=readers, thread_name_prefix="extract") as pool:
                    results = list(pool.map(run, plan_["jobs"]))
            else:
                results = [run(job) for job in plan_["jobs"]]
            for result in results:
                result["consistency"] = session.guarantee
    finally:
        engine.dispose()
    return results


def _extract(
    conn, source: SourceConfig, plan_: dict[str, Any], job: dict[str, Any], mask_workers: int | None = None,
    *, shared_reader: bool = False,
) -> dict[str, Any]:
    """Stream one table (or one key range of it) out of ``conn``, mask each batch, write Parquet.

    Raw values exist only in memory, one batch at a time. Keyed fingerprints of the
    originals go to the private work area for the validation gate. ``mask_workers`` caps the
    masking processes (default: the source's ``mask_workers``); ``shared_reader`` says other
    readers run in this process too.
    """
    from cleanroom import source as src
    from cleanroom.consistency import chunk_where, combine_where
    from cleanroom.parquet_out import PartWriter
    from masking.classify import classify_column

    use_returning_allocator()
    started = time.perf_counter()
    schema = S.Schema.from_dict(plan_["schema"])
    policy = checked_policy(source, schema, plan_["policy_sha256"])
    key = load_key(source)
    name, part = job["table"], job.get("chunk", 0)
    table = schema.tables[name]
    rule = policy.tables[name]
    where = combine_where(rule.where, job.get("subset"), chunk_where(job, conn.dialect.identifier_preparer.quote))
    columns = [c for c in table.column_names if not isinstance(rule.columns[c], T.DropColumn)]
    masker = BatchMasker(key, table, rule, columns, policy.locale_for(name))
    folder = work_dir(source, plan_["version"]) / "fingerprints" / name / f"part-{part:05d}"
    recorded = FingerprintFiles(folder, masker.row_columns)

    bucket = Bucket.for_source(source)
    object_key = snapshot.table_key(source.name, plan_["version"], name, part)
    rows = expected = 0
    stats: dict[str, dict[str, int]] = {}
    expected = src.count_rows(conn, table, where) if rule.action == P.MASK else 0
    out_schema = masker.output_schema(src.arrow_schema(table, columns))
    processes = masking_processes(
        source.mask_workers if mask_workers is None else mask_workers, expected, source.batch_rows, masker,
        shared_reader=shared_reader,
    )
    try:
        with bucket.open_write(object_key) as raw:
            sink = HashingWriter(raw)
            with PartWriter(sink, out_schema) as writer:
                if rule.action == P.MASK:
                    # closing(): a failure while masking must end the COPY before the rollback.
                    batches = contextlib.closing(src.stream_batches(conn, table, columns, source.batch_rows, where))
                    with batches as stream:
                        for masked in mask_stream(stream, masker, processes):
                            recorded.write(masked)
                            writer.write(masked.batch)
                            rows += masked.batch.num_rows
                            for column, counts in masked.stats.items():
                                merged = stats.setdefault(column, {})
                                for counter, n in counts.items():
                                    merged[counter] = merged.get(counter, 0) + n
    finally:
        recorded.close()

    elapsed = time.perf_counter() - started
    log.info(
        "extracted %s part %d: %d row(s) masked in %.2fs (%.0f rows/s, %s), %d bytes",
        name, part, rows, elapsed, rows / elapsed if elapsed else 0,
        f"{processes} masking process(es)" if processes else "masked in the task process", sink.size,
    )
    return {
        "table": name,
        "part": part,
        "action": rule.action,
        "rows": rows,
        "source_rows": expected,
        "columns": [
            {"name": c, "transform": rule.columns[c].label, "classification": classify_column(table, table.column(c)).kind}
            for c in table.column_names
        ],
        "published_columns": columns,
        "files": [{"path": object_key, "sha256": sink.sha256.hexdigest(), "bytes": sink.size, "rows": rows}],
        "stats": stats,
        "seconds": round(elapsed, 3),
        "mask_processes": processes,  # 0: masked in the task's own process
        "consistency": "per-table" if "lo" not in job else "per-chunk",
    }


def merge_results(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold chunk results into one result per table, parts in order."""
    by_table: dict[str, dict[str, Any]] = {}
    for result in sorted(results, key=lambda r: (r["table"], r.get("part", 0))):
        merged = by_table.get(result["table"])
        if merged is None:
            by_table[result["table"]] = {**result, "files": list(result["files"]), "stats": dict(result["stats"])}
            continue
        merged["rows"] += result["rows"]
        merged["source_rows"] += result["source_rows"]
        merged["files"] += result["files"]
        merged["seconds"] = round(merged["seconds"] + result["seconds"], 3)
    return list(by_table.values())


class FingerprintFiles:
    """Append the fingerprints of masked batches to the private work area, as they come.

    One ``row.<column>.u64`` file per masked column (one uint64 per row, in row order) and one
    ``identifiers.u64`` per part; memory does not grow with the table.
    """

    def __init__(self, folder: Path, row_columns: list[str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.files = {c: open(folder / f"row.{c}.u64", "wb") for c in row_columns}  # noqa: SIM115
        self.ids = open(folder / "identifiers.u64", "wb")  # noqa: SIM115

    def write(self, masked: MaskedBatch) -> None:
        for column, fps in masked.row_fingerprints.items():
            self.files[column].write(fps.tobytes())
        if masked.identifiers.size:
            self.ids.write(masked.identifiers.tobytes())

    def close(self) -> None:
        for handle in [*self.files.values(), self.ids]:
            handle.close()


FINGERPRINT_BLOCK = 65_536
"""Fingerprints read from a file at once by the gate's readers (512 KiB)."""


def read_fingerprints(*paths: Path) -> Iterator[np.ndarray]:
    """Yield the uint64 fingerprints of the files in turn, in blocks (missing files hold none)."""
    for path in paths:
        if not path.exists():
            continue
        with open(path, "rb") as fh:
            while (block := np.fromfile(fh, dtype=np.uint64, count=FINGERPRINT_BLOCK)).size:
                yield block


# --- validate --------------------------------------------------------------------------------


def validate(source: SourceConfig, plan_: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    """Run the Great Expectations gate over the published Parquet; raise when anything leaks."""
    from expectations import gate

    use_returning_allocator()
    release_shared_snapshot(source, plan_)  # every extract task has finished reading
    started = time.perf_counter()
    schema = S.Schema.from_dict(plan_["schema"])
    policy = checked_policy(source, schema, plan_["policy_sha256"])
    key = load_key(source)
    bucket = Bucket.for_source(source)
    private = work_dir(source, plan_["version"])
    by_table = {r["table"]: r for r in merge_results(results)}

    inputs = []
    for name, result in sorted(by_table.items()):
        table, rule = schema.tables[name], policy.tables[name]
        folder = private / "fingerprints" / name
        columns = [
            gate.ColumnInput(
                name=c, logical=table.column(c).logical, transform=rule.columns[c].label,
                masks=rule.columns[c].masks, survivor_scope=rule.columns[c].survivor_scope,
                allow=tuple(rule.columns[c].options.get("allow") or ()) if isinstance(rule.columns[c], T.Keep) else (),
                # Only single-column keys: a member of a composite key repeats by design.
                unique=table.column(c).unique,
            )
            for c in result["published_columns"]
        ]
        inputs.append(
            gate.TableInput(
                name=name, expected_rows=result["source_rows"], columns=columns,
                batches=_batch_reader(bucket, result["files"]),
                row_fingerprints=_fingerprint_reader(folder, result["files"]),
            )
        )
    fks = [
        (t.name, fk.columns, fk.ref_table, fk.ref_columns)
        for t in schema.tables.values() if t.name in by_table
        for fk in t.foreign_keys
        if fk.ref_table in by_table and all(c in by_table[t.name]["published_columns"] for c in fk.columns)
        and by_table[fk.ref_table]["action"] == P.MASK and by_table[t.name]["action"] == P.MASK
    ]
    # Streamed block by block: the gate spills them to disk partitions, never one array.
    identifiers = read_fingerprints(*sorted(private.glob("fingerprints/*/part-*/identifiers.u64")))
    published = set(bucket.list_dirs(f"{source.name}/{plan_['version']}/tables"))
    summary = gate.validate_snapshot(
        source=source.name, tables=inputs, dropped=plan_["dropped"], published_tables=published,
        identifier_fingerprints=identifiers, key=key, foreign_keys=fks, report_dir=private / "report",
        work_dir=private / "gate",
    )
    summary["seconds"] = round(time.perf_counter() - started, 3)
    report = private / "report" / "privacy-report.html"
    gate.write_report(summary, _report_columns(schema, policy, by_table), report)
    failures = gate.failures(summary)
    if failures:
        # Keep the failing run's report (counts and check names only) where operators can
        # read it; the staged snapshot itself goes.
        kept = source.work_dir / source.name / "failed" / plan_["version"]
        kept.mkdir(parents=True, exist_ok=True)
        shutil.copy(report, kept / "privacy-report.html")
        log.error("privacy report of the failed run: %s", kept / "privacy-report.html")
        removed = discard(source, plan_["version"])
        for table, column, check, count in failures:
            log.error("validation failed: %s.%s %s (%d row(s))", table, column or "-", check, count)
        raise ValidationFailed(failures, summary=f"removed {removed} staged file(s); LATEST was not moved")
    log.info("validation passed: %d check(s) over %d table(s) in %.2fs", len(summary["checks"]), len(inputs), summary["seconds"])
    return summary


def _report_columns(schema: S.Schema, policy: P.Policy, by_table: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per table and column: what the privacy report shows (no values)."""
    out: dict[str, dict[str, Any]] = {}
    for name, result in by_table.items():
        rule = policy.tables[name]
        out[name] = {
            c["name"]: {
                "transform": c["transform"],
                "classification": c.get("classification", ""),
                "survivor_scope": rule.columns[c["name"]].survivor_scope,
                "allow": list(rule.columns[c["name"]].options.get("allow") or []),
            }
            for c in result["columns"]
        }
    return out


def _batch_reader(bucket: Bucket, files: list[dict[str, Any]]):
    def batches():
        from cleanroom.parquet_out import read_batches

        for f in files:
            with bucket.open_read(f["path"]) as fh:
                yield from read_batches(fh, 100_000)

    return batches


def _fingerprint_reader(folder: Path, files: list[dict[str, Any]]):
    """Row fingerprints of a column, streamed part by part in step with the table's Parquet files.

    Part ``i`` of the fingerprints (``part-NNNNN``, in order) must hold one fingerprint per row of
    ``files[i]``; when a part holds more or fewer, the reader raises
    :class:`~expectations.gate.MisalignedFingerprints` before anything is compared.
    """

    def read(column: str):
        from expectations import gate

        parts = [p / f"row.{column}.u64" for p in sorted(folder.glob("part-*"))]
        if not parts or not all(p.exists() for p in parts):
            return None
        recorded = [p.stat().st_size // 8 for p in parts]
        published = [f.get("rows") for f in files]
        if len(parts) != len(files) or any(n is not None and n != r for n, r in zip(published, recorded)):
            raise gate.MisalignedFingerprints(
                f"{len(parts)} fingerprint part(s) of {sum(recorded)} row(s) for {len(files)} Parquet file(s) "
                f"of {sum(n or 0 for n in published)} row(s)"
            )
        return read_fingerprints(*parts)

    return read


# --- SQL artifact ----------------------------------------------------------------------------


RESTORE_HINTS = {
    "postgresql": "psql -v ON_ERROR_STOP=1 -f FILE",
    "mysql": "mysql --database=DB < FILE (MySQL or MariaDB)",
}


def sql_dialects(source_dialect: str) -> list[str]:
    """SQL artifacts to write: PostgreSQL always, plus MySQL for MySQL/MariaDB sources."""
    return ["postgresql", "mysql"] if source_dialect in ("mysql", "mariadb") else ["postgresql"]


def write_sql(source: SourceConfig, plan_: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    """Write the SQL artifacts (schema plus data) from the published Parquet.

    Returns ``{"artifacts": [...]}``, one entry per dialect with path, sha256 and size.
    """
    use_returning_allocator()
    artifacts = [_write_sql_dialect(source, plan_, results, d) for d in sql_dialects(plan_["dialect"])]
    return {"artifacts": artifacts}


def _write_sql_dialect(source: SourceConfig, plan_: dict[str, Any], results: list[dict[str, Any]], dialect: str) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from cleanroom import sqldump

    bucket = Bucket.for_source(source)
    schema = S.Schema.from_dict(plan_["schema"])
    key = snapshot.sql_key(source.name, plan_["version"], dialect)
    tables = []
    for result in sorted(merge_results(results), key=lambda r: r["table"]):
        table = schema.tables[result["table"]]
        files = result["files"]
        with bucket.open_read(files[0]["path"]) as fh:
            arrow_schema = pq.ParquetFile(fh).schema_arrow
        tables.append((table, arrow_schema, _batch_reader(bucket, files)()))
    header = (
        f"cleanroom sanitized snapshot of source {source.name}, version {plan_['version']}\n"
        f"masked under policy sha256 {plan_['policy_sha256'][:16]}; restore with: {RESTORE_HINTS[dialect]}"
    )
    with bucket.open_write(key) as raw:
        sink = HashingWriter(raw)
        counts = sqldump.write_sql_dump(sink, tables, dialect=dialect, header=header)
    log.info("wrote %s SQL artifact %s: %d table(s), %d bytes", dialect, key, len(counts), sink.size)
    return {"path": key, "sha256": sink.sha256.hexdigest(), "bytes": sink.size, "dialect": dialect, "rows": counts}


# --- publish ---------------------------------------------------------------------------------


def publish(
    source: SourceConfig, plan_: dict[str, Any], results: list[dict[str, Any]],
    validation: dict[str, Any], sql: dict[str, Any],
) -> dict[str, Any]:
    """Write the manifest, then move LATEST, then apply retention."""
    bucket = Bucket.for_source(source)
    version = plan_["version"]
    private = work_dir(source, version)
    report_files = _publish_report(bucket, source, version, private, validation)
    manifest = build_manifest(source, plan_, merge_results(results), validation, sql, report_files)
    digest = snapshot.write_manifest(bucket, manifest)
    try:
        moved = snapshot.advance_latest(bucket, source.name, version, digest)
    except Exception:
        # A version whose run failed must not stay listed: take the manifest back first
        # (the version turns invisible), then its files.
        bucket.path(snapshot.manifest_key(source.name, version)).unlink()
        bucket.delete_prefix(snapshot.version_prefix(source.name, version))
        raise
    removed = snapshot.apply_retention(bucket, source.name, source.retain)
    shutil.rmtree(private, ignore_errors=True)
    log.info("published %s/%s (LATEST %s); retention removed %d version(s)", source.name, version, "moved" if moved else "unchanged", len(removed))
    return {"version": version, "uri": bucket.uri(snapshot.version_prefix(source.name, version)), "latest_moved": moved, "retention_removed": removed}


def _publish_report(bucket: Bucket, source: SourceConfig, version: str, private: Path, validation: dict[str, Any]) -> list[dict[str, Any]]:
    files = []
    report = private / "report"
    if not report.is_dir():
        return files
    for path in sorted(p for p in report.rglob("*") if p.is_file()):
        key = f"{source.name}/{version}/report/{path.relative_to(report)}"
        data = path.read_bytes()
        bucket.write_bytes(key, data)
        files.append({"path": key, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
    return files


def build_manifest(source, plan_, results, validation, sql, extra_files) -> dict[str, Any]:
    from cleanroom.versions import tool_versions

    prefix = f"{source.name}/{plan_['version']}/"
    tables = {}
    files = []
    for r in sorted(results, key=lambda r: r["table"]):
        tables[r["table"]] = {
            "action": r["action"],
            "rows": r["rows"],
            "source_rows": r["source_rows"],
            "columns": r["columns"],
            "files": [f["path"][len(prefix):] for f in r["files"]],
        }
        files += [{**f, "path": f["path"][len(prefix):], "table": r["table"]} for f in r["files"]]
    for artifact in sql["artifacts"]:
        files.append({
            "path": artifact["path"][len(prefix):], "sha256": artifact["sha256"], "bytes": artifact["bytes"],
            "kind": "sql", "dialect": artifact["dialect"],
        })
    files += [{**f, "path": f["path"][len(prefix):], "kind": "report"} for f in extra_files]
    manifest = {
        "format": snapshot.MANIFEST_FORMAT,
        "source": source.name,
        "version": plan_["version"],
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "run_id": plan_["run_id"],
        "source_dialect": plan_["dialect"],
        "policy_sha256": plan_["policy_sha256"],
        "schema_sha256": plan_["schema_sha256"],
        "key_id": load_key(source).key_id,
        # exported-snapshot / single-transaction: every table as of one moment; per-table or
        # per-chunk: each piece consistent in itself only (see the README).
        "consistency": ",".join(sorted({r.get("consistency", "per-table") for r in results})) or "per-table",
        "tools": tool_versions(),
        "tables": tables,
        "dropped_tables": plan_["dropped"],
        "files": files,
        "validation": {k: v for k, v in validation.items() if k != "checks"} | {"checks": validation.get("checks", [])},
    }
    if "schema" in plan_:
        # Source table descriptions (types, keys, foreign keys): restore rebuilds constraints from it.
        manifest["schema"] = plan_["schema"]
    return manifest


def discard(source: SourceConfig, version: str) -> int:
    """Remove a version that will not be published (no manifest was written)."""
    bucket = Bucket.for_source(source)
    if bucket.exists(snapshot.manifest_key(source.name, version)):
        return 0
    removed = bucket.delete_prefix(snapshot.version_prefix(source.name, version))
    shutil.rmtree(source.work_dir / source.name / version, ignore_errors=True)
    log.info("discarded staged version %s/%s (%d file(s))", source.name, version, removed)
    return removed
