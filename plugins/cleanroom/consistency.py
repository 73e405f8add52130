"""Point-in-time reads and large-table chunks.

Two ways to read a source, chosen per source with ``consistency:``

``snapshot``
    Every table is read as of one moment. On PostgreSQL a coordinating transaction exports
    its snapshot (``pg_export_snapshot()``) and worker connections adopt it with
    ``SET TRANSACTION SNAPSHOT``, so tables and chunks are read in parallel threads, still as
    of one moment, the way ``pg_dump -j`` does. MySQL/MariaDB cannot share a snapshot between
    connections: the tables are read one after another inside one
    ``START TRANSACTION WITH CONSISTENT SNAPSHOT``. SQLite reads in one transaction.
    All of it happens in one Airflow task.

``per_table`` (default)
    Each table (or chunk of a large table) is its own mapped Airflow task with its own
    read-only transaction, so Celery or Kubernetes workers can spread one refresh. Each
    piece is consistent in itself, not with the others; the manifest says so.

``shared_snapshot`` (PostgreSQL)
    Mapped tasks as in ``per_table``, all adopting one exported snapshot: the plan task starts
    a holder process (:mod:`cleanroom.snapshot_holder`) whose open transaction keeps the
    snapshot alive until validation releases it. Every table is read as of one moment, and
    the reads still spread over workers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from masking import schema as S
from masking.errors import CleanroomError, SourceError

log = logging.getLogger(__name__)

SNAPSHOT, PER_TABLE, SHARED = "snapshot", "per_table", "shared_snapshot"
MODES = (SNAPSHOT, PER_TABLE, SHARED)
_SNAPSHOT_ID = re.compile(r"^[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+$")
HOLDER_START_SECONDS = 60


class SnapshotGone(CleanroomError):
    """The exported snapshot a task should adopt no longer exists; only a new run can help."""


@dataclass
class SnapshotSession:
    """Hands out read-only connections that all see the coordinator's moment."""

    engine: Engine
    coordinator: Connection
    snapshot_id: str | None

    @property
    def parallel(self) -> bool:
        return self.snapshot_id is not None

    @property
    def guarantee(self) -> str:
        if self.snapshot_id is not None:
            return "exported-snapshot"
        return "single-transaction"

    @contextlib.contextmanager
    def connection(self) -> Iterator[Connection]:
        if self.snapshot_id is None:
            yield self.coordinator  # one transaction, used by one reader at a time
            return
        with adopted(self.engine, self.snapshot_id) as conn:
            yield conn


@contextlib.contextmanager
def adopted(engine: Engine, snapshot_id: str) -> Iterator[Connection]:
    """A read-only transaction that sees the exported snapshot ``snapshot_id``.

    Raises :class:`SnapshotGone` when the exporting transaction has ended (the holder was
    released or ran out of time), so the run fails instead of reading a later moment.
    """
    from cleanroom.source import read_only

    if not _SNAPSHOT_ID.match(snapshot_id):  # SET TRANSACTION SNAPSHOT takes no bind parameter
        raise SnapshotGone(f"malformed snapshot id {snapshot_id[:40]!r} in the plan; start a new run")
    if engine.dialect.name != "postgresql":
        raise SnapshotGone(f"a {engine.dialect.name} source cannot adopt an exported snapshot; start a new run")

    def adopt(conn: Connection) -> None:
        try:
            conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot_id}'")
        except sa.exc.DBAPIError as exc:
            raise SnapshotGone(
                "the run's exported snapshot is gone (its holder was released or its hold time ran out); "
                "start a new run, or raise `snapshot_hold_minutes` if extraction takes longer"
            ) from exc

    with read_only(engine, adopt=adopt) as conn:
        yield conn


def hold_snapshot(url: str, tag: str, hold_seconds: int) -> dict:
    """Start a snapshot holder for the source at ``url``; return its snapshot id, pid and name.

    The holder runs in a session of its own, so it outlives the task that started it; it ends
    when :func:`release_snapshot` terminates its backend, or after ``hold_seconds``.
    """
    from cleanroom.snapshot_holder import APPLICATION_NAME

    name = f"{APPLICATION_NAME}:{tag}"
    if len(name.encode()) > 63:  # PostgreSQL would cut it, and release_snapshot matches on it
        raise ValueError(f"holder tag {tag!r} is too long; keep it under {63 - len(APPLICATION_NAME) - 1} bytes")
    holder = subprocess.Popen(
        [sys.executable, "-m", "cleanroom.snapshot_holder"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    holder.stdin.write(json.dumps({"url": url, "tag": tag, "hold_seconds": hold_seconds}) + "\n")
    holder.stdin.close()
    ready, _, _ = select.select([holder.stdout], [], [], HOLDER_START_SECONDS)
    line = holder.stdout.readline() if ready else ""
    holder.stdout.close()
    answer = json.loads(line) if line.strip() else {}
    if "snapshot" not in answer:
        holder.kill()
        reason = answer.get("error") or (
            "the holder process exited without answering" if ready else f"no answer within {HOLDER_START_SECONDS} s"
        )
        raise SourceError(f"could not hold an exported snapshot on the source: {reason}")
    log.info("holding exported snapshot for the run's extract tasks (holder backend %d)", answer["pid"])
    return {"snapshot": answer["snapshot"], "pid": answer["pid"], "application_name": name}


def release_snapshot(engine: Engine, holder: dict) -> bool:
    """End the holder's transaction; return whether a holder backend was still there to end.

    Only a backend with the holder's own application name is terminated, never another session
    that happens to reuse its pid. Waits up to 10 s for the backend to exit (PostgreSQL 14+).
    """
    with engine.connect() as conn:
        ended = conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE pid = :pid AND application_name = :name"
            ),
            {"pid": int(holder["pid"]), "name": holder["application_name"]},
        ).scalar()
    log.info("released the exported snapshot (holder backend %d %s)", holder["pid"], "ended" if ended else "already gone")
    return bool(ended)


@contextlib.contextmanager
def snapshot_session(engine: Engine) -> Iterator[SnapshotSession]:
    """Open the coordinating read-only transaction and, on PostgreSQL, export its snapshot."""
    from cleanroom.source import read_only

    with read_only(engine) as coordinator:
        snapshot_id = None
        if engine.dialect.name == "postgresql":
            snapshot_id = coordinator.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            log.info("exported snapshot for parallel readers")
        yield SnapshotSession(engine, coordinator, snapshot_id)


# --- chunks ----------------------------------------------------------------------------------


def estimate_rows(conn: Connection, table: S.Table) -> int | None:
    """A cheap row estimate from the catalogue (no full count on large tables)."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        value = conn.execute(
            sa.text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:name)"),
            {"name": f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'},
        ).scalar()
        return int(value) if value is not None and value >= 0 else None
    if dialect in ("mysql", "mariadb"):
        value = conn.execute(
            sa.text("SELECT table_rows FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = :t"),
            {"t": table.name},
        ).scalar()
        return int(value) if value is not None else None
    return None


def chunk_key(table: S.Table) -> str | None:
    """The column chunks split on: a single-column integer primary key, else none."""
    if len(table.primary_key) == 1 and table.column(table.primary_key[0]).logical == S.INTEGER:
        return table.primary_key[0]
    return None


def plan_chunks(conn: Connection, table: S.Table, chunk_rows: int | None) -> list[dict]:
    """Split a large table into key ranges of about ``chunk_rows`` rows each.

    Returns ``[]`` when the table is small, has no integer key, or chunking is off. Ranges
    are half-open ``[lo, hi)`` over the key's min..max, so gaps in the key only make some
    chunks smaller.
    """
    key = chunk_key(table)
    if not chunk_rows or key is None:
        return []
    estimate = estimate_rows(conn, table)
    if estimate is None or estimate <= chunk_rows:
        return []
    column = sa.column(key)
    low, high = conn.execute(sa.select(sa.func.min(column), sa.func.max(column)).select_from(sa.table(table.name, schema=table.schema))).one()
    if low is None:
        return []
    count = math.ceil(estimate / chunk_rows)
    step = max(1, math.ceil((high - low + 1) / count))
    chunks = []
    for index, lo in enumerate(range(low, high + 1, step)):
        chunks.append({"chunk": index, "key": key, "lo": lo, "hi": lo + step})
    log.info("%s: about %d rows, split on %s into %d chunk(s)", table.name, estimate, key, len(chunks))
    return chunks


def chunk_where(job: dict, quote) -> str | None:
    """The SQL range condition of a chunk job (``None`` for a whole table)."""
    if "lo" not in job:
        return None
    column = quote(job["key"])
    return f"{column} >= {int(job['lo'])} AND {column} < {int(job['hi'])}"


def combine_where(*parts: str | None) -> str | None:
    present = [f"({p})" for p in parts if p]
    return " AND ".join(present) or None
