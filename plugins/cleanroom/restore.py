"""Restore a verified snapshot into PostgreSQL, MySQL/MariaDB, SQLite or DuckDB.

The snapshot must come out of :mod:`cleanroom.pull` (a pulled or verified folder), so every
byte loaded here has been checked against the manifest first. Tables are created from the
manifest's ``schema`` when it has one, otherwise from the Arrow schema of the Parquet files;
data streams one Parquet batch at a time; keys and foreign keys are added after the data; row
counts are compared with the manifest at the end.

* PostgreSQL: one transaction; ``COPY ... FROM STDIN (FORMAT csv)`` through psycopg 3, each
  batch rendered to CSV by Arrow's C++ writer.
* MySQL/MariaDB: ``LOAD DATA LOCAL INFILE`` when the server allows it, else multi-row INSERTs
  through PyMySQL.
* SQLite: inserts in one transaction; keys declared in ``CREATE TABLE``.
* DuckDB: reads the Parquet files itself (``read_parquet``).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import math
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.types as pat

from cleanroom import sqldump
from cleanroom.pull import Snapshot
from masking import schema as ms
from masking.errors import ArtifactError, CleanroomError, ConfigError

log = logging.getLogger(__name__)

BATCH_ROWS = 50_000
KINDS = {
    "postgresql": "postgresql", "postgres": "postgresql",
    "mysql": "mysql", "mariadb": "mysql",
    "sqlite": "sqlite", "duckdb": "duckdb",
}
_UTC = dt.timezone.utc


def _driver_errors() -> tuple[type[Exception], ...]:
    import sqlite3

    import duckdb
    import psycopg
    import pymysql

    return (psycopg.Error, pymysql.Error, sqlite3.Error, duckdb.Error)


DRIVER_ERRORS = _driver_errors()


def redacted(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown by scheme only
        return url.split(":", 1)[0] + "://..."


class RestoreTargetError(CleanroomError):
    """The restore target cannot take the snapshot (non-empty tables, unknown URL)."""


# --- what to restore -------------------------------------------------------------------------


@dataclass(frozen=True)
class TablePlan:
    """One table of the snapshot: its description, Arrow schema, local files and row count."""

    name: str
    table: ms.Table
    arrow_schema: pa.Schema
    files: tuple[Path, ...]
    rows: int

    def batches(self) -> Iterator[pa.RecordBatch]:
        from cleanroom.parquet_out import read_batches

        for path in self.files:
            yield from read_batches(path, BATCH_ROWS)


@dataclass
class RestoreResult:
    target: str
    method: str
    tables: dict[str, int] = field(default_factory=dict)
    constraints: int = 0
    replaced: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _logical(arrow_type: pa.DataType) -> str:
    if isinstance(arrow_type, pa.BaseExtensionType):
        return ms.UUID if arrow_type.extension_name == "arrow.uuid" else _logical(arrow_type.storage_type)
    if pat.is_dictionary(arrow_type):
        return _logical(arrow_type.value_type)
    checks = (
        (pat.is_boolean, ms.BOOLEAN), (pat.is_integer, ms.INTEGER), (pat.is_floating, ms.FLOAT),
        (pat.is_decimal, ms.DECIMAL), (pat.is_date, ms.DATE), (pat.is_timestamp, ms.TIMESTAMP),
        (pat.is_time, ms.TIME), (pat.is_nested, ms.JSON),
    )
    for check, logical in checks:
        if check(arrow_type):
            return logical
    if pat.is_string(arrow_type) or pat.is_large_string(arrow_type) or pat.is_string_view(arrow_type):
        return ms.STRING
    if pat.is_binary(arrow_type) or pat.is_large_binary(arrow_type) or pat.is_fixed_size_binary(arrow_type):
        return ms.BINARY
    return ms.OTHER


def table_from_arrow(name: str, arrow_schema: pa.Schema) -> ms.Table:
    """Describe a table from Arrow types alone: no keys, nullability as Parquet recorded it."""
    columns = []
    for f in arrow_schema:
        precision = f.type.precision if pat.is_decimal(f.type) else None
        scale = f.type.scale if pat.is_decimal(f.type) else None
        columns.append(
            ms.Column(f.name, str(f.type), _logical(f.type), nullable=f.nullable, precision=precision, scale=scale)
        )
    return ms.Table(name=name, columns=tuple(columns))


def plan_tables(snap: Snapshot) -> list[TablePlan]:
    """The tables of a verified snapshot, described from the manifest's schema when present.

    The manifest's optional ``schema`` (the plan's :meth:`masking.schema.Schema.to_dict`)
    carries keys, lengths and NOT NULL; without it, types come from Arrow and no keys are added.
    """
    import pyarrow.parquet as pq

    described = {}
    if snap.manifest.get("schema"):
        described = ms.Schema.from_dict(snap.manifest["schema"]).tables
    plans = []
    for name, info in sorted(snap.manifest["tables"].items()):
        files = tuple(snap.local(p) for p in info["files"])
        if not files:
            raise ArtifactError(f"manifest of {snap.source}/{snap.version} lists no file for table {name}")
        arrow_schema = pq.read_schema(files[0])
        table = described.get(name) or table_from_arrow(name, arrow_schema)
        plans.append(TablePlan(name, table, arrow_schema, files, int(info["rows"])))
    if not described:
        log.info("manifest has no schema: types from Parquet, no keys or constraints will be added")
    return plans


# --- targets ---------------------------------------------------------------------------------


def parse_target(url: str):
    """Parse ``--into``: a SQLAlchemy-style URL, or ``duckdb:///path.duckdb``."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"--into is not a database URL (expected e.g. postgresql://user@host/db): {exc}") from exc
    kind = KINDS.get(parsed.get_backend_name())
    if kind is None:
        raise ConfigError(
            f"--into has scheme {parsed.drivername!r}; expected postgresql://, mysql://, mariadb://, "
            "sqlite:///FILE or duckdb:///FILE"
        )
    if kind in ("sqlite", "duckdb") and not parsed.database:
        raise ConfigError(f"--into {kind}:///FILE needs a file path")
    return parsed, kind


def _progress(total: int, label: str):
    from tqdm import tqdm

    return tqdm(
        total=total, unit="rows", unit_scale=True, desc=label, leave=False, disable=not sys.stderr.isatty(),
    )


def restore(snap: Snapshot, into: str, *, replace: bool = False, mysql_method: str = "auto") -> RestoreResult:
    """Create the snapshot's tables in the database ``into`` and load them.

    Refuses a target table that already holds rows unless ``replace`` is true (then the table
    is dropped first). ``mysql_method`` is ``auto``, ``load-data`` or ``insert``.

    Known limitations: on MySQL/MariaDB the DDL commits implicitly, so a failed restore can
    leave created tables behind (PostgreSQL, SQLite and DuckDB roll back everything). Column
    defaults, sequences and non-unique indexes are not recreated. SQLite and DuckDB get keys
    declared in ``CREATE TABLE``; a foreign-key cycle loses its closing key on DuckDB.
    """
    started = time.perf_counter()
    url, kind = parse_target(into)
    tables = plan_tables(snap)
    loader = _LOADERS[kind](url, mysql_method)
    result = RestoreResult(target=url.render_as_string(hide_password=True), method=loader.method)
    try:
        _refuse_non_empty(loader, tables, replace, result)
        loader.create(tables)
        by_name = {t.name: t for t in tables}
        with _progress(sum(t.rows for t in tables), f"restore {snap.source}") as bar:
            # Referenced tables first: DuckDB checks foreign keys while rows arrive.
            for plan in (by_name[n] for n in _creation_order(tables)):
                loader.load(plan, bar.update)
                log.info("loaded %s: %d row(s)", plan.name, plan.rows)
        result.constraints = loader.constrain(tables)
        for plan in tables:
            result.tables[plan.name] = counted = loader.count(plan.name)
            if counted != plan.rows:
                raise ArtifactError(
                    f"table {plan.name}: {counted} row(s) in the target after loading, the manifest lists "
                    f"{plan.rows}; the restore was rolled back where the database allows it"
                )
        loader.commit()
    except BaseException:
        loader.rollback()
        raise
    finally:
        loader.close()
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _refuse_non_empty(loader, tables: Sequence[TablePlan], replace: bool, result: RestoreResult) -> None:
    existing = {t.name: loader.has_rows(t.name) for t in tables}
    busy = sorted(name for name, rows in existing.items() if rows)
    if busy and not replace:
        raise RestoreTargetError(
            f"target table(s) {', '.join(busy)} already hold rows; restore into an empty database, "
            "or pass --replace to drop and recreate them"
        )
    doomed = [name for name, rows in existing.items() if rows is not None]
    if doomed:
        log.warning("dropping existing target table(s) before restoring: %s", ", ".join(doomed))
        loader.drop([n for n in reversed(_creation_order(tables)) if n in doomed])
        result.replaced = sorted(n for n in doomed if existing[n])


def _creation_order(tables: Sequence[TablePlan]) -> list[str]:
    """Referenced tables first (where foreign keys allow); ties broken by name."""
    names = {t.name for t in tables}
    needs = {
        t.name: {fk.ref_table for fk in t.table.foreign_keys if fk.ref_table in names} - {t.name} for t in tables
    }
    order: list[str] = []
    while needs:
        ready = sorted(n for n, deps in needs.items() if deps <= set(order)) or [sorted(needs)[0]]
        order.append(ready[0])
        del needs[ready[0]]
    return order


# --- value preparation -----------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _is_uuid(arrow_type: pa.DataType, column: ms.Column) -> bool:
    if isinstance(arrow_type, pa.BaseExtensionType):
        return arrow_type.extension_name == "arrow.uuid"
    return column.logical == ms.UUID and pat.is_fixed_size_binary(arrow_type) and arrow_type.byte_width == 16


def _plain(array: pa.Array, column: ms.Column) -> pa.Array:
    """Decode dictionaries and extensions; cast what the targets cannot take as it is."""
    if isinstance(array.type, pa.BaseExtensionType):
        array = array.storage
    if pat.is_dictionary(array.type):
        array = array.dictionary_decode()
    t = array.type
    if pat.is_null(t):
        return array.cast(pa.string())
    if pat.is_timestamp(t) and t.unit == "ns":
        return array.cast(pa.timestamp("us", tz=t.tz), safe=False)
    if pat.is_time(t) and t.unit == "ns":
        return array.cast(pa.time64("us"), safe=False)
    if pat.is_float16(t):
        return array.cast(pa.float32())
    if pat.is_large_string(t) or pat.is_string_view(t):
        return array.cast(pa.string())
    return array


def python_values(array: pa.Array, column: ms.Column, *, naive_utc: bool) -> list[Any]:
    """Column values as DB-API parameters: UUIDs and nested values as text, aware times in UTC."""
    uuid_like = _is_uuid(array.type, column)
    array = _plain(array, column)
    values = array.to_pylist()
    t = array.type
    if uuid_like:
        return [None if v is None else str(uuid.UUID(bytes=v)) for v in values]
    if pat.is_nested(t):
        return [None if v is None else json.dumps(v, ensure_ascii=False, default=_json_default) for v in values]
    if naive_utc and pat.is_timestamp(t) and t.tz:
        return [None if v is None else v.astimezone(_UTC).replace(tzinfo=None) for v in values]
    return values


def _csv_ready(array: pa.Array, column: ms.Column) -> pa.Array:
    """An array Arrow's CSV writer renders as PostgreSQL's COPY CSV input expects."""
    if _is_uuid(array.type, column):
        return pa.array(python_values(array, column, naive_utc=False), pa.string())
    array = _plain(array, column)
    t = array.type
    if pat.is_binary(t) or pat.is_large_binary(t) or pat.is_fixed_size_binary(t) or pat.is_binary_view(t):
        return pa.array([None if v is None else "\\x" + v.hex() for v in array.to_pylist()], pa.string())
    if pat.is_nested(t):
        return pa.array(python_values(array, column, naive_utc=False), pa.string())
    return array


# --- loaders ---------------------------------------------------------------------------------


class _SqlLoader:
    """Shared steps of the DB-API loaders; subclasses say how to quote, load and constrain."""

    method = ""
    dialect = ""

    def q(self, name: str) -> str:
        if self.dialect == "mysql":
            return "`" + name.replace("`", "``") + "`"
        return '"' + name.replace('"', '""') + '"'

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        cur = self.conn.cursor()
        try:
            if params:
                cur.execute(sql, tuple(params))
            else:
                cur.execute(sql)
            return list(cur.fetchall()) if cur.description else []
        finally:
            cur.close()

    def count(self, name: str) -> int:
        return int(self.execute(f"SELECT COUNT(*) FROM {self.q(name)}")[0][0])

    def drop(self, names: Sequence[str]) -> None:
        for name in names:
            self.execute(f"DROP TABLE {self.q(name)}")

    def create(self, tables: Sequence[TablePlan]) -> None:
        for plan in tables:
            self.execute(sqldump.render_create_table(plan.table, plan.arrow_schema, self.dialect))

    def constrain(self, tables: Sequence[TablePlan]) -> int:
        rendered = sqldump.render_constraints([(t.table, t.arrow_schema) for t in tables], self.dialect)
        statements = [line for line in rendered.splitlines() if line and not line.startswith("--")]
        with _progress(len(statements), "constraints") as bar:
            for statement in statements:
                self.execute(statement)
                bar.update(1)
        return len(statements)

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        try:
            self.conn.rollback()
        except Exception as exc:  # noqa: BLE001 - the original error matters more
            log.debug("rollback failed: %s", type(exc).__name__)

    def close(self) -> None:
        self.conn.close()


class PostgresLoader(_SqlLoader):
    method = "COPY (csv) via psycopg"
    dialect = "postgresql"

    def __init__(self, url, mysql_method: str = "auto") -> None:
        import psycopg

        self.conn = psycopg.connect(
            host=url.host, port=url.port or 5432, user=url.username, password=url.password,
            dbname=url.database, **{k: v for k, v in url.query.items() if isinstance(v, str)},
        )

    def has_rows(self, name: str) -> bool | None:
        if self.execute("SELECT to_regclass(%s)", (self.q(name),))[0][0] is None:
            return None
        return bool(self.execute(f"SELECT EXISTS (SELECT 1 FROM {self.q(name)})")[0][0])

    def drop(self, names: Sequence[str]) -> None:
        for name in names:
            self.execute(f"DROP TABLE {self.q(name)} CASCADE")

    def load(self, plan: TablePlan, advance: Callable[[int], None]) -> None:
        import pyarrow.csv as pacsv

        columns = ", ".join(self.q(n) for n in plan.arrow_schema.names)
        described = [plan.table.column(n) for n in plan.arrow_schema.names]
        options = pacsv.WriteOptions(include_header=False)
        with self.conn.cursor() as cur:
            with cur.copy(f"COPY {self.q(plan.name)} ({columns}) FROM STDIN (FORMAT csv)") as copy:
                for batch in plan.batches():
                    if not batch.num_rows:
                        continue
                    arrays = [_csv_ready(batch.column(i), c) for i, c in enumerate(described)]
                    buffer = io.BytesIO()
                    pacsv.write_csv(pa.RecordBatch.from_arrays(arrays, names=batch.schema.names), buffer, options)
                    copy.write(buffer.getbuffer())
                    advance(batch.num_rows)


class MySqlLoader(_SqlLoader):
    dialect = "mysql"

    def __init__(self, url, mysql_method: str = "auto") -> None:
        import pymysql

        self.conn = pymysql.connect(
            host=url.host or "127.0.0.1", port=url.port or 3306, user=url.username, password=url.password or "",
            database=url.database, charset="utf8mb4", local_infile=True, autocommit=False,
        )
        for statement in (
            "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'",
            "SET SESSION time_zone = '+00:00'",
            "SET SESSION foreign_key_checks = 0",
            "SET SESSION unique_checks = 0",
        ):
            self.execute(statement)
        allowed = str(self.execute("SELECT @@GLOBAL.local_infile")[0][0]).upper() in ("1", "ON")
        if mysql_method == "auto":
            mysql_method = "load-data" if allowed else "insert"
            if not allowed:
                log.warning("server does not permit LOAD DATA LOCAL INFILE (local_infile=OFF); using INSERT batches")
        self.method = {"load-data": "LOAD DATA LOCAL INFILE", "insert": "multi-row INSERT"}[mysql_method]

    def has_rows(self, name: str) -> bool | None:
        found = self.execute(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = %s",
            (name,),
        )
        if not found[0][0]:
            return None
        return bool(self.execute(f"SELECT EXISTS (SELECT 1 FROM {self.q(name)})")[0][0])

    def load(self, plan: TablePlan, advance: Callable[[int], None]) -> None:
        if self.method.startswith("LOAD DATA"):
            self._load_data(plan, advance)
        else:
            self._insert(plan, advance)

    def _rows(self, plan: TablePlan, batch: pa.RecordBatch) -> list[list[Any]]:
        return [
            python_values(batch.column(i), plan.table.column(name), naive_utc=True)
            for i, name in enumerate(batch.schema.names)
        ]

    def _insert(self, plan: TablePlan, advance: Callable[[int], None]) -> None:
        names = plan.arrow_schema.names
        # PyMySQL turns executemany of a plain VALUES statement into multi-row INSERTs of about 1 MB.
        columns = ", ".join(self.q(n) for n in names)
        sql = f"INSERT INTO {self.q(plan.name)} ({columns}) VALUES ({', '.join(['%s'] * len(names))})"
        with self.conn.cursor() as cur:
            for batch in plan.batches():
                cur.executemany(sql, list(zip(*self._rows(plan, batch))))
                advance(batch.num_rows)

    def _load_data(self, plan: TablePlan, advance: Callable[[int], None]) -> None:
        names = plan.arrow_schema.names
        binary = {
            n for n in names
            if _logical(plan.arrow_schema.field(n).type) == ms.BINARY
            and not _is_uuid(plan.arrow_schema.field(n).type, plan.table.column(n))
        }
        targets = ", ".join(f"@v{i}" if n in binary else self.q(n) for i, n in enumerate(names))
        sets = ", ".join(f"{self.q(n)} = UNHEX(@v{i})" for i, n in enumerate(names) if n in binary)
        sql = (
            f"LOAD DATA LOCAL INFILE %s INTO TABLE {self.q(plan.name)} CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
            f"({targets}){' SET ' + sets if sets else ''}"
        )
        with tempfile.TemporaryDirectory(prefix="cleanroom-load-") as folder:
            path = Path(folder) / "batch.tsv"
            for batch in plan.batches():
                columns = [[_mysql_field(v) for v in values] for values in self._rows(plan, batch)]
                path.write_bytes("".join("\t".join(row) + "\n" for row in zip(*columns)).encode())
                self.execute(sql, (str(path),))
                # LOAD DATA LOCAL turns data errors into warnings even in strict mode.
                warnings = self.execute("SHOW COUNT(*) WARNINGS")[0][0]
                if warnings:
                    raise ArtifactError(
                        f"table {plan.name}: LOAD DATA reported {warnings} warning(s) (a value did not fit its "
                        "column); restore again with --mysql-method insert to see the failing column"
                    )
                advance(batch.num_rows)


_MYSQL_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})


def _mysql_field(value: Any) -> str:
    """One field of a LOAD DATA file (tab-separated, backslash escapes, \\N for NULL)."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, bytes):
        return value.hex()  # loaded through UNHEX()
    if isinstance(value, str):
        return value.translate(_MYSQL_ESCAPES)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        raise ArtifactError("a float column holds NaN or an infinity, which MySQL cannot store")
    return str(value)


class _InlineKeysLoader(_SqlLoader):
    """SQLite and DuckDB: keys go into CREATE TABLE (neither adds them well afterwards)."""

    def type_of(self, plan: TablePlan, name: str) -> str:
        raise NotImplementedError

    def create(self, tables: Sequence[TablePlan]) -> None:
        by_name = {t.name: t for t in tables}
        created: set[str] = set()
        self.constraints = 0
        for name in _creation_order(tables):
            plan = by_name[name]
            present = set(plan.arrow_schema.names)
            lines = []
            for f in plan.arrow_schema:
                column = plan.table.column(f.name)
                lines.append(f"{self.q(f.name)} {self.type_of(plan, f.name)}{'' if column.nullable else ' NOT NULL'}")
            for kind, columns in _keys(plan.table):
                if set(columns) <= present:
                    lines.append(f"{kind} ({', '.join(self.q(c) for c in columns)})")
                    self.constraints += 1
            for fk in plan.table.foreign_keys:
                ref = by_name.get(fk.ref_table)
                if not ref or not set(fk.columns) <= present or not self.fk_allowed(ref, fk, created | {name}):
                    log.warning("restore: foreign key %s(%s) -> %s left out", name, ", ".join(fk.columns), fk.ref_table)
                    continue
                lines.append(
                    f"FOREIGN KEY ({', '.join(self.q(c) for c in fk.columns)}) REFERENCES {self.q(fk.ref_table)} "
                    f"({', '.join(self.q(c) for c in fk.ref_columns)})"
                )
                self.constraints += 1
            self.execute(f"CREATE TABLE {self.q(name)} (\n  " + ",\n  ".join(lines) + "\n)")
            created.add(name)

    def fk_allowed(self, ref: TablePlan, fk: ms.ForeignKey, created: set[str]) -> bool:
        keys = {tuple(c) for _, c in _keys(ref.table)}
        return set(fk.ref_columns) <= set(ref.arrow_schema.names) and tuple(fk.ref_columns) in keys

    def constrain(self, tables: Sequence[TablePlan]) -> int:
        return self.constraints


def _keys(table: ms.Table) -> list[tuple[str, tuple[str, ...]]]:
    primary = table.primary_key or tuple(c.name for c in table.columns if c.primary_key)
    keys = [("PRIMARY KEY", tuple(primary))] if primary else []
    for unique in [*table.unique_sets, *((c.name,) for c in table.columns if c.unique)]:
        if tuple(unique) != tuple(primary) and ("UNIQUE", tuple(unique)) not in keys:
            keys.append(("UNIQUE", tuple(unique)))
    return keys


_SQLITE_TYPES = {
    ms.INTEGER: "INTEGER", ms.BOOLEAN: "INTEGER", ms.FLOAT: "REAL", ms.BINARY: "BLOB", ms.DECIMAL: "NUMERIC",
}


class SqliteLoader(_InlineKeysLoader):
    method = "executemany via sqlite3"
    dialect = "sqlite"

    def __init__(self, url, mysql_method: str = "auto") -> None:
        import sqlite3

        # Autocommit mode plus an explicit BEGIN: DDL and data then share one transaction.
        self.conn = sqlite3.connect(url.database, isolation_level=None)
        self.conn.execute("BEGIN")

    def type_of(self, plan: TablePlan, name: str) -> str:
        field_type = plan.arrow_schema.field(name).type
        if _is_uuid(field_type, plan.table.column(name)):
            return "TEXT"
        return _SQLITE_TYPES.get(_logical(field_type), "TEXT")

    def has_rows(self, name: str) -> bool | None:
        if not self.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)):
            return None
        return bool(self.execute(f"SELECT EXISTS (SELECT 1 FROM {self.q(name)})")[0][0])

    def fk_allowed(self, ref: TablePlan, fk: ms.ForeignKey, created: set[str]) -> bool:
        return set(fk.ref_columns) <= set(ref.arrow_schema.names)  # SQLite checks FKs lazily, if at all

    def load(self, plan: TablePlan, advance: Callable[[int], None]) -> None:
        names = plan.arrow_schema.names
        columns = ", ".join(self.q(n) for n in names)
        sql = f"INSERT INTO {self.q(plan.name)} ({columns}) VALUES ({', '.join('?' * len(names))})"
        for batch in plan.batches():
            columns = [
                [_sqlite_value(v) for v in python_values(batch.column(i), plan.table.column(n), naive_utc=False)]
                for i, n in enumerate(names)
            ]
            self.conn.executemany(sql, zip(*columns))
            advance(batch.num_rows)


def _sqlite_value(value: Any) -> Any:
    # sqlite3's default date adapters are deprecated: store ISO text explicitly.
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


class DuckDbLoader(_InlineKeysLoader):
    method = "read_parquet via duckdb"
    dialect = "duckdb"

    def __init__(self, url, mysql_method: str = "auto") -> None:
        import duckdb

        self.conn = duckdb.connect(url.database)
        self.conn.begin()
        self.types: dict[str, dict[str, str]] = {}

    def _scan(self, plan: TablePlan) -> str:
        paths = ", ".join("'" + str(p).replace("'", "''") + "'" for p in plan.files)
        return f"read_parquet([{paths}])"

    def type_of(self, plan: TablePlan, name: str) -> str:
        if plan.name not in self.types:
            described = self.conn.execute(f"DESCRIBE SELECT * FROM {self._scan(plan)}").fetchall()
            self.types[plan.name] = {row[0]: row[1] for row in described}
        return self.types[plan.name][name]

    def has_rows(self, name: str) -> bool | None:
        found = self.conn.execute(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?",
            [name],
        ).fetchone()[0]
        if not found:
            return None
        return bool(self.conn.execute(f"SELECT EXISTS (SELECT 1 FROM {self.q(name)})").fetchone()[0])

    def fk_allowed(self, ref: TablePlan, fk: ms.ForeignKey, created: set[str]) -> bool:
        # DuckDB checks a foreign key on insert: the referenced table must be created (and loaded) first.
        return fk.ref_table in created and super().fk_allowed(ref, fk, created)

    def load(self, plan: TablePlan, advance: Callable[[int], None]) -> None:
        columns = ", ".join(self.q(n) for n in plan.arrow_schema.names)
        self.conn.execute(f"INSERT INTO {self.q(plan.name)} ({columns}) SELECT {columns} FROM {self._scan(plan)}")
        advance(plan.rows)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.conn.execute(sql, list(params)).fetchall()


_LOADERS = {
    "postgresql": PostgresLoader, "mysql": MySqlLoader, "sqlite": SqliteLoader, "duckdb": DuckDbLoader,
}
