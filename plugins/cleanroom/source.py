"""Read a source database: connect, reflect its schema, stream rows as Arrow batches.

Every read happens inside a read-only transaction. Rows are fetched through a server-side
cursor in fixed-size batches and turned into Arrow one batch at a time, so no table is ever
held whole in memory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import json
import logging
from collections.abc import Iterator

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from masking import schema as S
from masking.errors import SourceError

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
def read_only(engine: Engine) -> Iterator[Connection]:
    """Open one read-only, repeatable-read transaction: every query sees the same snapshot."""
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
    """Yield the rows of ``table`` as Arrow record batches of at most ``batch_rows`` rows."""
    schema = arrow_schema(table, columns)
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
                raise SourceError(
                    f"{table.name}.{field.name}: values of source type {table.column(field.name).sql_type} do not fit "
                    f"Arrow type {field.type} ({exc.__class__.__name__}); declare the column type or mask it as text"
                ) from exc
        yield pa.RecordBatch.from_arrays(arrays, schema=schema)


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
