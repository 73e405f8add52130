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
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from masking import schema as S

log = logging.getLogger(__name__)

SNAPSHOT, PER_TABLE = "snapshot", "per_table"
MODES = (SNAPSHOT, PER_TABLE)


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
        conn = self.engine.connect()
        try:
            conn.exec_driver_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{self.snapshot_id}'")
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.exec_driver_sql("ROLLBACK")
            conn.close()


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
