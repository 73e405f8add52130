"""Read a source database: connect, reflect its schema, stream rows as Arrow batches.

Every read happens inside a read-only transaction. Rows are fetched through a server-side
cursor in fixed-size batches and turned into Arrow one batch at a time, so no table is ever
held whole in memory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import functools
import json
import logging
import os
from collections.abc import Callable, Iterator

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from masking import schema as S
from masking.errors import SourceError
from masking.native import extension

log = logging.getLogger(__name__)

DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg", "mysql": "mysql+pymysql", "mariadb": "mysql+pymysql"}


def normalise_url(url: str) -> str:
    """Pick the project's drivers for bare scheme URLs (``postgresql://`` -> psycopg 3)."""
    scheme, rest = url.split("://", 1)
    return f"{DRIVERS.get(scheme, scheme)}://{rest}"


def url_for(source) -> str:
    """Return the SQLAlchemy URL of a source: its ``url`` or its Airflow connection."""
    if source.url:
        return normalise_url(source.url)
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(source.conn_id)
    return normalise_url(conn.get_uri())


def create_engine(url: str) -> Engine:
    try:
        engine = sa.create_engine(url, pool_pre_ping=True)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        scheme = url.split(":", 1)[0]
        raise SourceError(f"cannot use source URL with scheme {scheme!r}: {exc.__class__.__name__}") from exc
    return engine


def safe_url(url: str) -> str:
    """Render a URL for logs: driver, host and database, never the password."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


@contextlib.contextmanager
def read_only(engine: Engine, *, adopt: Callable[[Connection], None] | None = None) -> Iterator[Connection]:
    """Open one read-only, repeatable-read transaction: every query sees the same snapshot.

    ``adopt`` runs first in the transaction, before any query (PostgreSQL's ``SET TRANSACTION
    SNAPSHOT`` must; see :func:`cleanroom.consistency.adopted`).
    """
    try:
        conn = engine.connect()
    except sa.exc.OperationalError as exc:
        raise SourceError(
            f"cannot connect to the source at {safe_url(str(engine.url))}: {str(exc.orig).splitlines()[0]}; "
            "check the host, port, credentials and that the server is running"
        ) from exc
    dialect = engine.dialect.name
    try:
        if dialect == "postgresql":
            conn.exec_driver_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        elif dialect in ("mysql", "mariadb"):
            conn.exec_driver_sql("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        elif dialect == "sqlite":
            conn.exec_driver_sql("PRAGMA query_only = ON")
            conn.exec_driver_sql("BEGIN")
        if adopt is not None:
            adopt(conn)
        yield conn
    finally:
        with contextlib.suppress(Exception):
            conn.exec_driver_sql("ROLLBACK")
        conn.close()


# --- reflection ------------------------------------------------------------------------------


def logical_type(sa_type: sa.types.TypeEngine, dialect: str) -> str:
    """Map a reflected SQLAlchemy type to a logical type."""
    name = type(sa_type).__name__.upper()
    if isinstance(sa_type, sa.Boolean) or name in ("BOOLEAN", "BOOL"):
        return S.BOOLEAN
    if isinstance(sa_type, sa.JSON) or name in ("JSON", "JSONB"):
        return S.JSON
    if isinstance(sa_type, sa.Uuid) or name == "UUID":
        return S.UUID
    if dialect in ("mysql", "mariadb") and name == "BIT":
        return S.INTEGER  # MySQL returns BIT(n) as big-endian bytes; read as its integer value
    if isinstance(sa_type, sa.Integer):
        return S.BOOLEAN if dialect in ("mysql", "mariadb") and name == "TINYINT" and getattr(sa_type, "display_width", None) == 1 else S.INTEGER
    if isinstance(sa_type, sa.Float) or name in ("REAL", "DOUBLE", "DOUBLE_PRECISION", "FLOAT"):
        return S.FLOAT
    if isinstance(sa_type, sa.Numeric):
        return S.DECIMAL
    if isinstance(sa_type, sa.DateTime) or name.startswith("TIMESTAMP"):
        return S.TIMESTAMP
    if isinstance(sa_type, sa.Date):
        return S.DATE
    if isinstance(sa_type, sa.Time):
        return S.TIME
    if isinstance(sa_type, (sa.LargeBinary, sa.types._Binary)) or name in ("BYTEA", "BLOB", "BINARY", "VARBINARY"):
        return S.BINARY
    if isinstance(sa_type, (sa.String, sa.Enum)):
        return S.STRING
    return S.OTHER


def _type_text(sa_type: sa.types.TypeEngine, engine: Engine) -> str:
    try:
        return sa_type.compile(dialect=engine.dialect)
    except Exception:  # noqa: BLE001 - some reflected types cannot compile; the name is enough
        return type(sa_type).__name__.upper()


def _partitions(engine: Engine, conn: Connection, db_schema: str | None) -> set[str]:
    """Names of PostgreSQL partitions: they are read through their parent table."""
    if engine.dialect.name != "postgresql":
        return set()
    rows = conn.exec_driver_sql(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relispartition AND n.nspname = %(schema)s",
        {"schema": db_schema or "public"},
    )
    return {r[0] for r in rows}


def reflect(engine: Engine, db_schema: str | None = None) -> S.Schema:
    """Describe every base table of the source (views and partitions excluded)."""
    with read_only(engine) as conn:
        inspector = sa.inspect(conn)
        skip = _partitions(engine, conn, db_schema)
        tables = {}
        for name in sorted(set(inspector.get_table_names(schema=db_schema)) - skip):
            if name.startswith("sqlite_"):
                continue
            tables[name] = _reflect_table(inspector, engine, conn, name, db_schema)
    return S.Schema(tables=tables, dialect=engine.dialect.name)


def _reflect_table(inspector, engine: Engine, conn: Connection, name: str, db_schema: str | None) -> S.Table:
    pk = tuple(inspector.get_pk_constraint(name, schema=db_schema).get("constrained_columns") or ())
    unique_sets = [tuple(u["column_names"]) for u in inspector.get_unique_constraints(name, schema=db_schema)]
    unique_sets += [tuple(i["column_names"]) for i in inspector.get_indexes(name, schema=db_schema) if i.get("unique") and all(i["column_names"])]
    unique_sets = tuple(dict.fromkeys(unique_sets))
    single_unique = {u[0] for u in unique_sets if len(u) == 1}
    fks = tuple(
        S.ForeignKey(tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
        for fk in inspector.get_foreign_keys(name, schema=db_schema)
        if fk.get("referred_table")
    )
    columns = []
    for col in inspector.get_columns(name, schema=db_schema):
        sa_type = col["type"]
        columns.append(
            S.Column(
                name=col["name"],
                sql_type=_type_text(sa_type, engine),
                logical=logical_type(sa_type, engine.dialect.name),
                nullable=bool(col.get("nullable", True)) and col["name"] not in pk,
                max_length=getattr(sa_type, "length", None) if isinstance(sa_type, sa.String) else None,
                precision=getattr(sa_type, "precision", None) if isinstance(sa_type, sa.Numeric) else None,
                scale=getattr(sa_type, "scale", None) if isinstance(sa_type, sa.Numeric) else None,
                primary_key=col["name"] in pk,
                unique=(col["name"] in single_unique) or (len(pk) == 1 and col["name"] in pk),
                default=str(col["default"]) if col.get("default") is not None else None,
            )
        )
    return S.Table(name=name, columns=tuple(columns), primary_key=pk, unique_sets=unique_sets, foreign_keys=fks, schema=db_schema)


# --- streaming -------------------------------------------------------------------------------


def arrow_type(column: S.Column) -> pa.DataType:
    """The Arrow type a column is extracted as."""
    logical = column.logical
    if logical == S.INTEGER:
        # MySQL BIGINT UNSIGNED goes beyond int64; smaller unsigned types fit int64.
        return pa.uint64() if "BIGINT" in column.sql_type.upper() and "UNSIGNED" in column.sql_type.upper() else pa.int64()
    if logical == S.FLOAT:
        return pa.float64()
    if logical == S.DECIMAL:
        if column.precision and column.precision <= 38:
            return pa.decimal128(column.precision, column.scale or 0)
        return pa.string()  # unbounded NUMERIC: exact text, no precision loss
    if logical == S.BOOLEAN:
        return pa.bool_()
    if logical == S.DATE:
        return pa.date32()
    if logical == S.TIMESTAMP:
        with_tz = "WITH TIME ZONE" in column.sql_type.upper() or "TIMESTAMPTZ" in column.sql_type.upper()
        return pa.timestamp("us", tz="UTC" if with_tz else None)
    if logical == S.TIME:
        return pa.time64("us")
    if logical == S.BINARY:
        return pa.binary()
    return pa.string()


def arrow_schema(table: S.Table, columns: list[str]) -> pa.Schema:
    return pa.schema([pa.field(c, arrow_type(table.column(c)), nullable=table.column(c).nullable) for c in columns])


def _converter(arrow: pa.DataType, column: S.Column):
    """A per-value converter for values drivers return in forms Arrow does not take directly."""
    if pa.types.is_string(arrow):
        if column.logical == S.JSON:
            return lambda v: v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False, sort_keys=True)
        return lambda v: v if v is None or isinstance(v, str) else str(v)
    if pa.types.is_integer(arrow) and column.sql_type.upper().startswith("BIT"):
        return lambda v: int.from_bytes(v, "big") if isinstance(v, bytes) else v
    if pa.types.is_boolean(arrow):
        return lambda v: None if v is None else bool(v)
    if pa.types.is_binary(arrow):
        return lambda v: None if v is None else bytes(v)
    if pa.types.is_timestamp(arrow) and arrow.tz:
        return lambda v: v if v is None or v.tzinfo else v.replace(tzinfo=dt.timezone.utc)
    if pa.types.is_timestamp(arrow):
        return lambda v: v.astimezone(dt.timezone.utc).replace(tzinfo=None) if v is not None and getattr(v, "tzinfo", None) else v
    if pa.types.is_date(arrow):
        return lambda v: v.date() if isinstance(v, dt.datetime) else (dt.date.fromisoformat(v) if isinstance(v, str) else v)
    if pa.types.is_decimal(arrow):
        return lambda v: v if v is None or isinstance(v, decimal.Decimal) else decimal.Decimal(str(v))
    return None


def _selected(col: sa.Column, column: S.Column):
    """The select expression of one column: the server's text for types without a mapping.

    Arrays, intervals, network addresses, MySQL YEAR and other unmapped types are read as the
    server's own text (``{1,2}``, ``1 day 02:03:04``), which restores into the same type, rather
    than as a Python object's repr. Floats skip SQLAlchemy's Decimal coercion (MySQL DOUBLE is
    ``asdecimal=True`` and rounds to 10 places), so they arrive exactly as the driver read them.
    """
    if column.logical == S.OTHER:
        return sa.cast(col, sa.Text).label(col.name)
    if column.sql_type.upper().startswith("SET("):
        return sa.type_coerce(col, sa.String()).label(col.name)  # MySQL SET: 'a,c' as stored, not a Python set
    if column.logical == S.FLOAT:
        return sa.type_coerce(col, sa.Float(asdecimal=False)).label(col.name)
    return col


def count_rows(conn: Connection, table: S.Table, where: str | None = None) -> int:
    stmt = sa.select(sa.func.count()).select_from(sa.table(table.name, schema=table.schema))
    if where:
        stmt = stmt.where(sa.text(where))
    return int(conn.execute(stmt).scalar_one())


def stream_batches(
    conn: Connection, table: S.Table, columns: list[str], batch_rows: int, where: str | None = None
) -> Iterator[pa.RecordBatch]:
    """Yield the rows of ``table`` as Arrow record batches of at most ``batch_rows`` rows.

    On PostgreSQL through psycopg the rows come from ``COPY ... TO STDOUT`` in CSV; on
    MySQL/MariaDB through PyMySQL the server renders each row as one CSV line
    (:func:`_mysql_line_batches`). Both run in the caller's transaction (so its read-only
    snapshot applies) and are parsed by Arrow. SQLite, other drivers, and a PostgreSQL table
    with a column type COPY does not read go through a server-side row cursor. Every path
    gives the same schema, :func:`arrow_schema`.

    Known limitations: on the bulk path ``json``/``jsonb`` values are the server's text (key
    order and spacing as PostgreSQL prints them), and an unbounded ``numeric`` keeps the
    server's plain notation where the row path prints Python's (``1E-7``).
    """
    schema = arrow_schema(table, columns)
    copy_cursor = _copy_cursor(conn, table, columns)
    if copy_cursor is not None:
        yield from _copy_batches(copy_cursor, conn, table, columns, schema, batch_rows, where)
        return
    if _is_pymysql(conn) and columns:
        yield from _mysql_line_batches(conn, table, columns, schema, batch_rows, where)
        return
    # A reflected Table gives typed result processing (SQLite returns dates as text otherwise).
    reflected = sa.Table(table.name, sa.MetaData(), schema=table.schema, autoload_with=conn)
    stmt = sa.select(*[_selected(reflected.c[c], table.column(c)) for c in columns])
    if where:
        stmt = stmt.where(sa.text(where))
    if table.primary_key and all(c in columns for c in table.primary_key):
        stmt = stmt.order_by(*[reflected.c[c] for c in table.primary_key])
    converters = [_converter(f.type, table.column(f.name)) for f in schema]
    for rows in _fetch(conn, stmt, table, columns, batch_rows):
        cols = list(zip(*rows)) if rows else [() for _ in columns]
        arrays = []
        for values, field, convert in zip(cols, schema, converters):
            try:
                if convert is not None:
                    values = [convert(v) for v in values]
                arrays.append(pa.array(values, type=field.type))
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
                raise _unfit(table, field, exc) from exc
        yield pa.RecordBatch.from_arrays(arrays, schema=schema)


def _unfit(table: S.Table, field: pa.Field, exc: Exception) -> SourceError:
    """The error for a value that has no Arrow form; it names the column, never the value."""
    return SourceError(
        f"{table.name}.{field.name}: values of source type {table.column(field.name).sql_type} do not fit "
        f"Arrow type {field.type} ({exc.__class__.__name__}); declare the column type or mask it as text"
    )


# --- PostgreSQL bulk path: COPY in CSV, parsed by Arrow ----------------------------------------

_COPY_LOGICAL = frozenset({
    S.STRING, S.UUID, S.JSON, S.OTHER, S.INTEGER, S.FLOAT, S.DECIMAL, S.BOOLEAN, S.DATE, S.TIMESTAMP, S.TIME, S.BINARY,
})


def _copy_cursor(conn: Connection, table: S.Table, columns: list[str]):
    """Return a psycopg cursor able to run COPY, or None when the row path must be used."""
    if conn.dialect.name != "postgresql" or not columns:
        return None
    unsupported = [
        c for c in columns
        if table.column(c).logical not in _COPY_LOGICAL
        or (table.column(c).logical == S.TIME and "WITH TIME ZONE" in table.column(c).sql_type.upper())
    ]
    if unsupported:
        log.info("%s: row cursor instead of COPY, for column(s) %s", table.name, ", ".join(unsupported))
        return None
    driver = conn.connection.driver_connection
    cursor = driver.cursor() if hasattr(driver, "cursor") else None
    if cursor is None or not hasattr(cursor, "copy"):
        log.warning("%s: the PostgreSQL driver has no COPY support (psycopg 3 has); falling back to the row cursor",
                    table.name)
        return None
    return cursor


def _copy_expression(quoted: str, column: S.Column) -> str:
    """The SELECT expression whose CSV text Arrow parses into the column's Arrow type."""
    if column.logical == S.TIMESTAMP and arrow_type(column).tz:
        return f"({quoted} AT TIME ZONE 'UTC')"  # naive UTC wall time, whatever the session zone
    if column.logical == S.BINARY:
        return f"encode({quoted}, 'hex')"
    if column.logical in (S.OTHER, S.JSON):
        return f"{quoted}::text"
    return quoted


def _select_statement(conn: Connection, table: S.Table, columns: list[str], select: str, where: str | None) -> str:
    """``SELECT select FROM table [WHERE where] [ORDER BY primary key]`` in the connection's quoting."""
    prep = conn.dialect.identifier_preparer
    target = ".".join(prep.quote(part) for part in (table.schema, table.name) if part)
    sql = f"SELECT {select} FROM {target}"
    if where:
        sql += f" WHERE ({where})"
    if table.primary_key and all(c in columns for c in table.primary_key):
        sql += " ORDER BY " + ", ".join(prep.quote(c) for c in table.primary_key)
    return sql


def _copy_statement(conn: Connection, table: S.Table, columns: list[str], where: str | None) -> str:
    quote = conn.dialect.identifier_preparer.quote
    select = ", ".join(_copy_expression(quote(c), table.column(c)) for c in columns)
    return f"COPY ({_select_statement(conn, table, columns, select, where)}) TO STDOUT WITH (FORMAT csv)"


def _copy_batches(
    cursor, conn: Connection, table: S.Table, columns: list[str], schema: pa.Schema, batch_rows: int, where: str | None
) -> Iterator[pa.RecordBatch]:
    """Run COPY in the open transaction and yield Arrow batches of ``batch_rows`` rows.

    Rows arrive one per CopyData message, so a batch is cut between rows even when quoted
    values hold newlines. CSV keeps NULL (an unquoted empty field) apart from the empty string
    (``""``). COPY runs inside a savepoint: a caller that stops early (a sample of the first
    batch) cancels it, and rolling back to the savepoint leaves the caller's transaction and
    snapshot usable.
    """
    import psycopg

    statement = _copy_statement(conn, table, columns, where)
    finished = False
    cursor.execute("SAVEPOINT cleanroom_copy")
    try:
        restore = _iso_datestyle(cursor)
        for chunk in _copy_out(cursor.connection, statement, batch_rows):
            yield _parse_csv(chunk, table, schema)
        if restore is not None:
            cursor.execute("SELECT set_config('DateStyle', %s, true)", (restore,))
        cursor.execute("RELEASE SAVEPOINT cleanroom_copy")
        finished = True
    except psycopg.DataError as exc:
        raise SourceError(
            f"{table.name}: the server could not render a row for COPY ({type(exc).__name__}); "
            "check the policy's `where:` for this table"
        ) from exc
    finally:
        if not finished:  # also undoes the DateStyle change
            with contextlib.suppress(psycopg.Error):
                cursor.execute("ROLLBACK TO SAVEPOINT cleanroom_copy")
        cursor.close()


_COPY_FAILED = -2
"""PQgetCopyData's result for an error (the connection's error message says which)."""


def _copy_out(connection, statement: str, batch_rows: int) -> Iterator[bytearray]:
    """Yield the CSV of ``COPY ... TO STDOUT`` in chunks of ``batch_rows`` rows.

    Talks to libpq through psycopg's public ``pq`` layer; the rows libpq has buffered are moved
    into the chunk by :func:`_row_reader`, in C without the GIL when psycopg's libpq is known
    (one ``get_copy_data`` call per row from Python otherwise). It waits for the socket with
    ``select`` (the GIL is released, so other extraction threads run). Closing the generator
    early cancels the COPY and drains it, leaving the connection idle in its transaction; a
    server error is raised as psycopg's own exception class.
    """
    import select

    from psycopg import errors, pq

    pgconn = connection.pgconn
    encoding = connection.info.encoding
    read_rows = _row_reader(pgconn)
    pgconn.send_query(statement.encode(encoding))
    first = pgconn.get_result()
    if first is None or first.status != pq.ExecStatus.COPY_OUT:
        _drain_results(pgconn)
        raise errors.error_from_result(first, encoding=encoding) if first is not None else errors.InternalError("COPY returned no result")
    done = False
    try:
        chunk, rows = bytearray(), 0
        while True:
            added, status = read_rows(chunk, batch_rows - rows)
            rows += added
            if rows == batch_rows:
                yield chunk
                chunk, rows = bytearray(), 0
            if status == 0:
                select.select([pgconn.socket], [], [])
                pgconn.consume_input()
            elif status == _COPY_FAILED:  # as psycopg's get_copy_data raises it
                raise errors.OperationalError(f"receiving copy data failed: {pgconn.get_error_message()}")
            elif status < 0:
                break
        done = True
        final = pgconn.get_result()
        _drain_results(pgconn)
        if final is not None and final.status != pq.ExecStatus.COMMAND_OK:
            raise errors.error_from_result(final, encoding=encoding)
        if rows:
            yield chunk
    finally:
        if not done:  # the consumer stopped early, or the wait failed: cancel and drain
            with contextlib.suppress(Exception):
                pgconn.get_cancel().cancel()
                while pgconn.get_copy_data(0)[0] > 0:
                    pass
                _drain_results(pgconn)


def _row_reader(pgconn) -> Callable[[bytearray, int], tuple[int, int]]:
    """Return ``read(into, max_rows) -> (rows added, status)`` for the COPY running on ``pgconn``.

    ``status`` is 1 when ``max_rows`` rows were added, else libpq's last ``PQgetCopyData``
    result: 0 (no whole row buffered), -1 (the COPY ended) or -2 (an error). The C reader
    ``_cleanroom_copy.read_rows`` (plugins/cleanroom/_copyrows.c) runs when psycopg's libpq is
    known (:func:`_libpq_copy_functions`), else :func:`_read_rows_python`; both append the same bytes.
    """
    functions = _libpq_copy_functions()
    if functions is None:
        return functools.partial(_read_rows_python, pgconn)
    native = extension("_cleanroom_copy", "plugins/cleanroom/_copyrows.c")
    return functools.partial(native.read_rows, pgconn.pgconn_ptr, *functions)


def _read_rows_python(pgconn, into: bytearray, max_rows: int) -> tuple[int, int]:
    """Append up to ``max_rows`` buffered COPY rows to ``into``, one ``get_copy_data`` call per row."""
    rows = 0
    while rows < max_rows:
        size, data = pgconn.get_copy_data(1)  # raises psycopg's OperationalError for -2
        if size <= 0:
            return rows, size
        into += data
        rows += 1
    return rows, 1


@functools.cache
def _libpq_copy_functions() -> tuple[int, int] | None:
    """Return the addresses of ``PQgetCopyData`` and ``PQfreemem`` in psycopg's libpq, or None.

    The C reader calls them on psycopg's ``PGconn``, so they must come from the very libpq
    instance that made it: a PGconn handed to another copy (the system's libpq, another
    version) is undefined behaviour, not an error. psycopg's "python" implementation calls
    libpq through ctypes, and its own function objects are used. The "binary" one links the
    libpq bundled in ``psycopg_binary.libs``: that file is found among this process's mappings
    (Linux's /proc/self/maps), beside psycopg's mapped module, and opened with RTLD_NOLOAD,
    which returns the instance already loaded and never loads a second one. Anything else (the
    "c" implementation, another platform, no /proc, not exactly one match) returns None, logged
    once, and rows are read in Python.
    """
    import ctypes

    from psycopg import pq

    lib = None
    if pq.__impl__ == "python":
        from psycopg.pq import _pq_ctypes as lib
    elif pq.__impl__ == "binary" and hasattr(os, "RTLD_NOLOAD"):
        import psycopg_binary.pq

        module = os.path.realpath(psycopg_binary.pq.__file__)
        bundled = os.path.join(os.path.dirname(os.path.dirname(module)), "psycopg_binary.libs")
        try:
            with open("/proc/self/maps", encoding="utf-8", errors="surrogateescape") as maps:
                mapped = {line.split(maxsplit=5)[-1].rstrip("\n") for line in maps}  # a path is the 6th field
        except OSError:
            mapped = set()
        beside = [os.path.basename(path) for path in mapped if os.path.dirname(path) == bundled]
        found = [name for name in beside if name.startswith("libpq")]
        if module in mapped and len(found) == 1:
            with contextlib.suppress(OSError):
                lib = ctypes.CDLL(os.path.join(bundled, found[0]), mode=os.RTLD_NOLOAD)
    if lib is None:
        log.debug("COPY rows are read in Python: the libpq of psycopg's %r implementation is not identified",
                  pq.__impl__)
        return None
    functions = (lib.PQgetCopyData, lib.PQfreemem)
    return tuple(ctypes.cast(function, ctypes.c_void_p).value for function in functions)


# --- MySQL/MariaDB bulk path: one CSV line per row, rendered by the server --------------------


def _is_pymysql(conn: Connection) -> bool:
    return conn.dialect.name in ("mysql", "mariadb") and conn.dialect.driver == "pymysql"


def _mysql_field(quoted: str, column: S.Column) -> str:
    """SQL rendering one column as a CSV field in the text :func:`_from_text` reads.

    NULL is an unquoted empty field and text is quoted (so ``""`` stays an empty string);
    booleans print as ``t``/``f`` and binary as lower-case hex, as PostgreSQL's COPY does.
    Numbers, dates, datetimes and times are the server's own text, which has no quote, comma
    or line break.
    """
    logical, sql_type = column.logical, column.sql_type.upper()
    if logical == S.BOOLEAN:
        return f"IF({quoted} IS NULL, '', IF({quoted}, 't', 'f'))"
    if logical == S.BINARY:
        return f"IFNULL(LOWER(HEX({quoted})), '')"
    if logical == S.INTEGER and sql_type.startswith("BIT"):
        return f"IFNULL(CAST({quoted} AS UNSIGNED), '')"
    if logical in (S.INTEGER, S.FLOAT, S.DECIMAL, S.DATE, S.TIMESTAMP, S.TIME):
        return f"IFNULL({quoted}, '')"
    # Text, JSON, ENUM, SET, YEAR and the rest: the value in one character set, so columns of
    # different character sets can be joined on one line.
    text = f"CONVERT({quoted} USING utf8mb4)"
    return f"IF({quoted} IS NULL, '', CONCAT('\"', REPLACE({text}, '\"', '\"\"'), '\"'))"


def _mysql_line_batches(
    conn: Connection, table: S.Table, columns: list[str], schema: pa.Schema, batch_rows: int, where: str | None
) -> Iterator[pa.RecordBatch]:
    """Stream MySQL/MariaDB rows as server-rendered CSV lines, parsed by Arrow a batch at a time.

    PyMySQL parses every value of a row in Python; here each row arrives as one binary value
    (no decoding), so the driver's work per row is one field, not one per column. The query
    runs on the caller's connection, inside its consistent-snapshot transaction, through an
    unbuffered cursor: memory holds one batch.

    Known limitation: closing the stream early makes PyMySQL read the rest of the result before
    the connection can be used again (the same holds for the row cursor).
    """
    import pymysql.cursors

    quote = conn.dialect.identifier_preparer.quote
    line = "CAST(CONCAT_WS(',', " + ", ".join(_mysql_field(quote(c), table.column(c)) for c in columns) + ") AS BINARY)"
    statement = _select_statement(conn, table, columns, line, where)
    cursor = conn.connection.driver_connection.cursor(pymysql.cursors.SSCursor)
    try:
        cursor.execute(statement)
        while rows := cursor.fetchmany(batch_rows):
            # Every line ends in a newline: a row whose only field is NULL is an empty line.
            yield _parse_csv(b"\n".join(row[0] for row in rows) + b"\n", table, schema)
    finally:
        cursor.close()


def _drain_results(pgconn) -> None:
    """Read the results left after a query, so the connection takes the next command."""
    while pgconn.get_result() is not None:
        pass


def _iso_datestyle(cursor) -> str | None:
    """Make dates print as ISO for this transaction; return the setting to restore, if changed."""
    current = cursor.execute("SELECT current_setting('DateStyle')").fetchone()[0]
    if current.upper().startswith("ISO"):
        return None
    cursor.execute("SELECT set_config('DateStyle', 'ISO, MDY', true)")
    return current


def _parse_csv(chunk: bytes | bytearray, table: S.Table, schema: pa.Schema) -> pa.RecordBatch:
    """Parse one chunk of CSV (COPY's, or MySQL lines) as text columns, then convert each to its Arrow type."""
    import pyarrow.csv as pacsv

    names = [f"c{i}" for i in range(len(schema))]
    parsed = pacsv.read_csv(
        pa.py_buffer(chunk),
        read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 22),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),  # a lone NULL is a row
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,  # "" is an empty string; NULL is an unquoted empty field
        ),
    )
    arrays = []
    for name, field in zip(names, schema):
        text = parsed.column(name).combine_chunks()
        try:
            arrays.append(_from_text(text, field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, ValueError) as exc:
            raise _unfit(table, field, exc) from exc
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _from_text(text: pa.Array, arrow: pa.DataType) -> pa.Array:
    """Convert the server's text of one column (PostgreSQL's, or MySQL's rendered alike) to ``arrow``."""
    import pyarrow.compute as pc

    if pa.types.is_string(arrow):
        return text
    if pa.types.is_boolean(arrow):
        return pc.equal(text, "t")
    if pa.types.is_binary(arrow):
        return _unhex(text)
    if pa.types.is_time(arrow):
        # Arrow casts no text to time: read it as a time of day on 1970-01-01 (24:00:00 fails).
        instant = pc.cast(pc.binary_join_element_wise("1970-01-01 ", text, ""), pa.timestamp(arrow.unit))
        return instant.cast(pa.int64()).view(arrow)
    if pa.types.is_timestamp(arrow) and arrow.tz:
        return pc.cast(text, pa.timestamp(arrow.unit)).view(arrow)  # the text is already UTC
    return pc.cast(text, arrow)


def _unhex(text: pa.Array) -> pa.Array:
    """Decode lower-case hex text (``encode(col, 'hex')``) to binary, nulls kept."""
    import numpy as np

    offsets = np.frombuffer(text.buffers()[1], np.int32)[text.offset : text.offset + len(text) + 1]
    data = np.frombuffer(text.buffers()[2], np.uint8)[offsets[0] : offsets[-1]] if len(text) else np.zeros(0, np.uint8)
    if len(data) % 2 or not np.isin(data, np.frombuffer(b"0123456789abcdef", np.uint8)).all():
        raise ValueError("binary column text is not lower-case hex")
    nibbles = np.where(data >= ord("a"), data - ord("a") + 10, data - ord("0")).astype(np.uint8)
    decoded = (nibbles[0::2] << 4) | nibbles[1::2]
    new_offsets = ((offsets - offsets[0]) // 2).astype(np.int32)
    validity = text.is_valid().buffers()[1] if text.null_count else None
    return pa.Array.from_buffers(
        pa.binary(), len(text), [validity, pa.py_buffer(new_offsets), pa.py_buffer(decoded)], null_count=text.null_count
    )


def _fetch(conn: Connection, stmt, table: S.Table, columns: list[str], batch_rows: int) -> Iterator[list]:
    """Fetch rows in batches; a value the driver itself cannot load becomes a SourceError.

    psycopg refuses PostgreSQL's ``infinity`` dates and timestamps (Python has no such date)
    while loading the row, before any column is known; the error names the likely columns.
    The driver's message is left out because it quotes the value.
    """
    try:
        result = conn.execution_options(stream_results=True, yield_per=batch_rows).execute(stmt)
        yield from result.partitions(batch_rows)
    except (sa.exc.DataError, ValueError, OverflowError) as exc:
        temporal = [c for c in columns if table.column(c).logical in (S.DATE, S.TIMESTAMP, S.TIME)]
        suspects = ", ".join(f"{table.name}.{c}" for c in temporal) or f"a column of {table.name}"
        raise SourceError(
            f"{table.name}: the database driver could not load a value ({type(getattr(exc, 'orig', exc)).__name__}); "
            f"likely one outside Python's range such as 'infinity' or year 0 in {suspects}; "
            "filter those rows with the policy's `where:` or mask the column as text"
        ) from exc
