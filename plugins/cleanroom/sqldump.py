"""Render a restorable SQL artifact (schema plus data) from masked Arrow data.

The artifact is one ``.sql`` file for a target dialect:

* ``postgresql``: restores with ``psql -v ON_ERROR_STOP=1 -f dump.sql`` into an empty database.
  Everything runs in one transaction; data travels in ``COPY ... FROM stdin`` blocks.
* ``mysql``: restores with ``mariadb --database=X < dump.sql`` (or the ``mysql`` client).
  Data travels in multi-row ``INSERT`` statements of bounded size.

Column types are chosen from the Arrow type of the masked data (the truth about which columns
exist and what their values are), refined by the neutral :class:`masking.schema.Column`
description: its logical type, length and precision. The source ``sql_type`` text is never
copied into the target, because the source may be SQLite, PostgreSQL or MySQL; it only appears
in comments where a column had to be carried in a looser type.

Primary keys, unique constraints and foreign keys are added after the data, so the order of the
tables does not matter and loading is not slowed by index maintenance. A constraint that names a
column masking dropped, or a table that is not in the artifact, is left out with a comment.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import logging
import math
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pat

from cleanroom.ordered import ordered_map
from masking import schema as ms
from masking.errors import ConfigError, SourceError
from masking.strings import concatenate

log = logging.getLogger(__name__)

DIALECTS = ("postgresql", "mysql")

# A multi-row INSERT never grows past this many bytes unless a single row is larger. Both
# MariaDB (16 MiB) and MySQL 8 (64 MiB) accept far more with their default max_allowed_packet.
MAX_STATEMENT_BYTES = 1_000_000
# Batches rendered at once. Rendering is Arrow kernels and numpy copies, which run without the
# GIL, so the next batches render while the current one is written and hashed; the output
# keeps batch order.
RENDER_THREADS = 2

# PostgreSQL truncates identifiers beyond 63 bytes; MySQL allows 64 characters.
_MAX_IDENTIFIER_BYTES = 63

# InnoDB indexes at most 3072 bytes per key; utf8mb4 needs up to 4 bytes per character.
_MYSQL_MAX_KEY_CHARS = 768
_MYSQL_MAX_KEY_BYTES = 3072
# Length given to an indexed MySQL string or binary column whose source length is unknown.
_MYSQL_DEFAULT_KEY_LENGTH = 255

_UTC = dt.timezone.utc


# --------------------------------------------------------------------------------------------
# Identifiers
# --------------------------------------------------------------------------------------------


def _quote(name: str, dialect: str) -> str:
    if dialect == "postgresql":
        return '"' + name.replace('"', '""') + '"'
    return "`" + name.replace("`", "``") + "`"


def _quote_list(names: Iterable[str], dialect: str) -> str:
    return ", ".join(_quote(n, dialect) for n in names)


def _comment_text(text: str) -> str:
    """Make ``text`` safe to put after ``--`` on a single line."""
    return " ".join(text.split())


def _constraint_name(table: str, columns: Sequence[str], suffix: str) -> str:
    """Name a constraint like PostgreSQL does, shortened with a digest when too long."""
    base = "_".join((table, *columns))
    name = f"{base}_{suffix}"
    if len(name.encode()) <= _MAX_IDENTIFIER_BYTES:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    tail = f"_{digest}_{suffix}"
    while len((base + tail).encode()) > _MAX_IDENTIFIER_BYTES:
        base = base[:-1]
    return base + tail


def _check_dialect(dialect: str) -> None:
    if dialect not in DIALECTS:
        raise ConfigError(
            f"unknown SQL dump dialect {dialect!r}: expected one of {', '.join(DIALECTS)}; "
            "set the target dialect of the artifact to one of them"
        )


# --------------------------------------------------------------------------------------------
# Column plans: the target type and how to render a value of it
# --------------------------------------------------------------------------------------------

# Value kinds. Each kind has one renderer per dialect.
_INT, _FLOAT, _DECIMAL, _BOOL, _TEXT, _DATE, _TIMESTAMP, _TIMESTAMP_TZ, _TIME, _BINARY = (
    "int", "float", "decimal", "bool", "text", "date", "timestamp", "timestamp_tz", "time", "binary",
)
_UUID_BYTES, _NESTED = "uuid_bytes", "nested"


@dataclass(frozen=True)
class _ColumnPlan:
    """How one column is declared and how its values are written."""

    name: str
    sql_type: str
    kind: str
    not_null: bool = False
    note: str = ""
    prepare: Callable[[pa.Array], pa.Array] | None = None


def _where(table: str | None, column: ms.Column) -> str:
    return f"{table}.{column.name}" if table else column.name


def _stand_in_type(column: ms.Column) -> pa.DataType:
    """An Arrow type for a column whose data came through as all-NULL (Arrow type ``null``)."""
    logical = column.logical
    if logical == ms.INTEGER:
        return pa.int64()
    if logical == ms.FLOAT:
        return pa.float64()
    if logical == ms.DECIMAL:
        precision = column.precision or 38
        scale = column.scale or 0
        return pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)
    if logical == ms.BOOLEAN:
        return pa.bool_()
    if logical == ms.DATE:
        return pa.date32()
    if logical == ms.TIMESTAMP:
        text = column.sql_type.upper()
        aware = ("WITH TIME ZONE" in text and "WITHOUT" not in text) or text.startswith("TIMESTAMPTZ")
        return pa.timestamp("us", tz="UTC" if aware else None)
    if logical == ms.TIME:
        return pa.time64("us")
    if logical == ms.BINARY:
        return pa.binary()
    return pa.string()


def _fraction_digits(unit: str) -> int:
    return {"s": 0, "ms": 3, "us": 6, "ns": 6}[unit]


def _with_precision(base: str, digits: int, dialect: str) -> str:
    if dialect == "postgresql" and digits == 6:
        return base  # PostgreSQL's default precision is microseconds already.
    return f"{base}({digits})"


def _cast(target: pa.DataType) -> Callable[[pa.Array], pa.Array]:
    """Cast values before rendering; used only where no value can change beyond a known rounding."""

    def prepare(array: pa.Array) -> pa.Array:
        # safe=False: nanoseconds are truncated, since neither target dialect can keep them.
        return array.cast(target, safe=False)

    return prepare


def _string_type(column: ms.Column, dialect: str, indexed: bool) -> str:
    length = column.max_length if column.logical == ms.STRING else None
    if dialect == "postgresql":
        return f"VARCHAR({length})" if length else "TEXT"
    if indexed:
        if length and length <= _MYSQL_MAX_KEY_CHARS:
            return f"VARCHAR({length})"
        return f"VARCHAR({_MYSQL_DEFAULT_KEY_LENGTH})"
    if length and length <= 255:
        return f"VARCHAR({length})"
    if length and length * 4 <= 65_535:
        return "TEXT"
    if length and length * 4 <= 16_777_215:
        return "MEDIUMTEXT"
    return "LONGTEXT"


def _binary_type(column: ms.Column, arrow_type: pa.DataType, dialect: str, indexed: bool) -> str:
    if dialect == "postgresql":
        return "BYTEA"
    if pat.is_fixed_size_binary(arrow_type) and arrow_type.byte_width <= 255:
        return f"BINARY({arrow_type.byte_width})"
    length = column.max_length
    if indexed:
        if length and length <= _MYSQL_MAX_KEY_BYTES:
            return f"VARBINARY({length})"
        return f"VARBINARY({_MYSQL_DEFAULT_KEY_LENGTH})"
    if length and length <= 255:
        return f"VARBINARY({length})"
    if length and length <= 65_535:
        return "BLOB"
    if length and length <= 16_777_215:
        return "MEDIUMBLOB"
    return "LONGBLOB"


def _integer_type(arrow_type: pa.DataType, dialect: str) -> str:
    width = arrow_type.bit_width
    if dialect == "mysql":
        name = {8: "TINYINT", 16: "SMALLINT", 32: "INT", 64: "BIGINT"}[width]
        return f"{name} UNSIGNED" if pat.is_unsigned_integer(arrow_type) else name
    if pat.is_unsigned_integer(arrow_type):
        width *= 2  # The next signed type holds every value; uint64 needs NUMERIC.
    return {8: "SMALLINT", 16: "SMALLINT", 32: "INTEGER", 64: "BIGINT", 128: "NUMERIC(20)"}[width]


def _decimal_plan(column: ms.Column, arrow_type: pa.DataType, dialect: str, indexed: bool) -> _ColumnPlan:
    precision, scale = arrow_type.precision, arrow_type.scale
    if dialect == "mysql" and (precision > 65 or scale > 30):
        # MySQL DECIMAL stops at 65 digits and scale 30; keep the exact digits as text.
        note = f"DECIMAL({precision}, {scale}) exceeds MySQL's limits; exact value kept as text"
        sql_type = _string_type(column, dialect, indexed)
        return _ColumnPlan(column.name, sql_type, _TEXT, note=note, prepare=_cast(pa.string()))
    name = "NUMERIC" if dialect == "postgresql" else "DECIMAL"
    return _ColumnPlan(column.name, f"{name}({precision}, {scale})", _DECIMAL)


def _text_plan(column: ms.Column, dialect: str, indexed: bool) -> tuple[str, str, str]:
    logical = column.logical
    if logical == ms.JSON:
        if dialect == "postgresql":
            return ("JSONB" if column.sql_type.strip().upper() == "JSONB" else "JSON"), _TEXT, ""
        return "JSON", _TEXT, ""
    if logical == ms.UUID:
        return ("UUID" if dialect == "postgresql" else "CHAR(36)"), _TEXT, ""
    if logical == ms.DECIMAL:
        # Extraction carries NUMERIC wider than Arrow's decimal128, or unbounded, as exact text.
        precision, scale = column.precision, column.scale or 0
        if dialect == "postgresql":
            return (f"NUMERIC({precision}, {scale})" if precision else "NUMERIC"), _TEXT, ""
        if precision and precision <= 65 and scale <= 30:
            return f"DECIMAL({precision}, {scale})", _TEXT, ""
    note = "" if logical == ms.STRING else f"source type {column.sql_type} ({logical}) kept as text"
    return _string_type(column, dialect, indexed), _TEXT, note


def _plan_column(
    table: str | None, column: ms.Column, arrow_type: pa.DataType, dialect: str, *, indexed: bool
) -> _ColumnPlan:
    """Decide the target type of one column; raise :class:`SourceError` when there is none."""
    prepare: Callable[[pa.Array], pa.Array] | None = None
    note = ""

    if isinstance(arrow_type, pa.BaseExtensionType):
        if arrow_type.extension_name == "arrow.uuid":
            sql_type = "UUID" if dialect == "postgresql" else "CHAR(36)"
            return _ColumnPlan(column.name, sql_type, _UUID_BYTES, prepare=lambda a: a.storage)
        inner = _plan_column(table, column, arrow_type.storage_type, dialect, indexed=indexed)
        return _chain(inner, lambda a: a.storage)
    if pat.is_dictionary(arrow_type):
        inner = _plan_column(table, column, arrow_type.value_type, dialect, indexed=indexed)
        return _chain(inner, lambda a: a.dictionary_decode())
    if pat.is_null(arrow_type):
        stand_in = _stand_in_type(column)
        inner = _plan_column(table, column, stand_in, dialect, indexed=indexed)
        return _chain(inner, lambda a: a.cast(stand_in))

    if pat.is_boolean(arrow_type):
        sql_type, kind = "BOOLEAN", _BOOL
    elif pat.is_integer(arrow_type):
        sql_type, kind = _integer_type(arrow_type, dialect), _INT
    elif pat.is_floating(arrow_type):
        single = arrow_type.bit_width <= 32
        if dialect == "postgresql":
            sql_type = "REAL" if single else "DOUBLE PRECISION"
        else:
            sql_type = "FLOAT" if single else "DOUBLE"
        kind = _FLOAT
        if pat.is_float16(arrow_type):
            prepare = _cast(pa.float32())
    elif pat.is_decimal(arrow_type):
        return _decimal_plan(column, arrow_type, dialect, indexed)
    elif pat.is_string(arrow_type) or pat.is_large_string(arrow_type) or pat.is_string_view(arrow_type):
        sql_type, kind, note = _text_plan(column, dialect, indexed)
    elif pat.is_binary(arrow_type) or pat.is_large_binary(arrow_type) or pat.is_binary_view(arrow_type) or (
        pat.is_fixed_size_binary(arrow_type)
    ):
        if column.logical == ms.UUID and pat.is_fixed_size_binary(arrow_type) and arrow_type.byte_width == 16:
            sql_type = "UUID" if dialect == "postgresql" else "CHAR(36)"
            return _ColumnPlan(column.name, sql_type, _UUID_BYTES)
        sql_type, kind = _binary_type(column, arrow_type, dialect, indexed), _BINARY
    elif pat.is_date(arrow_type):
        sql_type, kind = "DATE", _DATE
    elif pat.is_timestamp(arrow_type):
        digits = _fraction_digits(arrow_type.unit)
        if arrow_type.unit == "ns":
            prepare = _cast(pa.timestamp("us", tz=arrow_type.tz))
        if dialect == "postgresql":
            sql_type = _with_precision("TIMESTAMP", digits, dialect)
            sql_type += " WITH TIME ZONE" if arrow_type.tz else " WITHOUT TIME ZONE"
        else:
            sql_type = _with_precision("DATETIME", digits, dialect)
            note = "stored in UTC" if arrow_type.tz else ""
        kind = _TIMESTAMP_TZ if arrow_type.tz else _TIMESTAMP
    elif pat.is_time(arrow_type):
        digits = _fraction_digits(arrow_type.unit)
        if arrow_type.unit == "ns":
            prepare = _cast(pa.time64("us"))
        sql_type, kind = _with_precision("TIME", digits, dialect), _TIME
    elif pat.is_nested(arrow_type):
        sql_type = "JSONB" if dialect == "postgresql" else "JSON"
        kind = _NESTED
        note = f"source type {column.sql_type} kept as JSON"
    else:
        raise SourceError(
            f"column {_where(table, column)} (source type {column.sql_type}) has Arrow type {arrow_type}, "
            f"which has no {dialect} equivalent in the SQL artifact; cast it in the extraction "
            "query or drop the column in the masking policy"
        )
    return _ColumnPlan(column.name, sql_type, kind, note=_comment_text(note), prepare=prepare)


def _chain(inner: _ColumnPlan, first: Callable[[pa.Array], pa.Array]) -> _ColumnPlan:
    then = inner.prepare
    prepare = first if then is None else (lambda a: then(first(a)))
    return _ColumnPlan(inner.name, inner.sql_type, inner.kind, inner.not_null, inner.note, prepare)


def column_type(column: ms.Column, arrow_type: pa.DataType, dialect: str) -> str:
    """Return the target SQL type of ``column`` whose masked values have ``arrow_type``.

    The column counts as indexed (which matters for MySQL string and binary lengths) when it is
    flagged as a primary key or unique; :func:`render_create_table` also knows composite keys
    and foreign keys.
    """
    _check_dialect(dialect)
    indexed = column.primary_key or column.unique
    return _plan_column(None, column, arrow_type, dialect, indexed=indexed).sql_type


# --------------------------------------------------------------------------------------------
# Tables and constraints
# --------------------------------------------------------------------------------------------


def _primary_key(table: ms.Table) -> tuple[str, ...]:
    return table.primary_key or tuple(c.name for c in table.columns if c.primary_key)


def _unique_sets(table: ms.Table) -> list[tuple[str, ...]]:
    primary = _primary_key(table)
    seen: list[tuple[str, ...]] = []
    candidates = [*table.unique_sets, *((c.name,) for c in table.columns if c.unique)]
    for columns in candidates:
        columns = tuple(columns)
        if columns and columns != primary and columns not in seen:
            seen.append(columns)
    return seen


def _indexed_columns(table: ms.Table, present: set[str]) -> set[str]:
    """Columns that will sit in an index once constraints are added (only whole keys count)."""
    keys = [_primary_key(table), *_unique_sets(table), *(fk.columns for fk in table.foreign_keys)]
    return {name for key in keys if set(key) <= present for name in key}


def _table_plans(table: ms.Table, arrow_schema: pa.Schema, dialect: str) -> list[_ColumnPlan]:
    if len(arrow_schema) == 0:
        raise SourceError(
            f"table {table.name} has no columns left after masking; exclude the table in the "
            "masking policy instead of dropping every column"
        )
    known = set(table.column_names)
    unknown = [name for name in arrow_schema.names if name not in known]
    if unknown:
        raise SourceError(
            f"table {table.name}: the masked data has column(s) {', '.join(unknown)} that the table "
            "description does not list; reflect the source schema again"
        )
    indexed = _indexed_columns(table, set(arrow_schema.names))
    primary = set(_primary_key(table))
    plans = []
    for field in arrow_schema:
        column = table.column(field.name)
        plan = _plan_column(table.name, column, field.type, dialect, indexed=field.name in indexed)
        not_null = not column.nullable or field.name in primary
        plans.append(_ColumnPlan(plan.name, plan.sql_type, plan.kind, not_null, plan.note, plan.prepare))
    return plans


def _create_table_sql(table: ms.Table, plans: Sequence[_ColumnPlan], dialect: str) -> str:
    lines = [f"CREATE TABLE {_quote(table.name, dialect)} ("]
    for i, plan in enumerate(plans):
        line = f"    {_quote(plan.name, dialect)} {plan.sql_type}{' NOT NULL' if plan.not_null else ''}"
        if i < len(plans) - 1:
            line += ","
        if plan.note:
            line += f" -- {plan.note}"
        lines.append(line)
    options = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin" if dialect == "mysql" else ""
    lines.append(f"){options};")
    return "\n".join(lines) + "\n"


def render_create_table(table: ms.Table, arrow_schema: pa.Schema, dialect: str) -> str:
    """Render ``CREATE TABLE`` for the columns present in ``arrow_schema``, without constraints.

    Columns appear in Arrow order. ``NOT NULL`` comes from the table description (and from the
    primary key); keys, uniques and foreign keys are left to :func:`render_constraints`.

    Known limitations: column defaults, sequences/auto-increment, check constraints, indexes
    that are not unique and the source schema name are not carried over.
    """
    _check_dialect(dialect)
    return _create_table_sql(table, _table_plans(table, arrow_schema, dialect), dialect)


@dataclass(frozen=True)
class _Constraints:
    statements: list[str]
    omitted: list[str]


def _collect_constraints(tables: Sequence[tuple[ms.Table, pa.Schema]], dialect: str) -> _Constraints:
    present = {table.name: set(schema.names) for table, schema in tables}
    keys: dict[str, list[frozenset[str]]] = {}
    primaries, uniques, foreigns, omitted = [], [], [], []

    for table, schema in tables:
        name = _quote(table.name, dialect)
        columns = present[table.name]
        keys[table.name] = []
        primary = _primary_key(table)
        if primary and set(primary) <= columns:
            keys[table.name].append(frozenset(primary))
            columns_sql = _quote_list(primary, dialect)
            if dialect == "postgresql":
                label = _quote(_constraint_name(table.name, (), "pkey"), dialect)
                primaries.append(f"ALTER TABLE {name} ADD CONSTRAINT {label} PRIMARY KEY ({columns_sql});")
            else:
                primaries.append(f"ALTER TABLE {name} ADD PRIMARY KEY ({columns_sql});")
        elif primary:
            omitted.append(f"primary key {table.name}({', '.join(primary)}): a column was dropped by masking")
        for unique in _unique_sets(table):
            if not set(unique) <= columns:
                omitted.append(f"unique {table.name}({', '.join(unique)}): a column was dropped by masking")
                continue
            keys[table.name].append(frozenset(unique))
            label = _quote(_constraint_name(table.name, unique, "key"), dialect)
            columns_sql = _quote_list(unique, dialect)
            uniques.append(f"ALTER TABLE {name} ADD CONSTRAINT {label} UNIQUE ({columns_sql});")

    for table, schema in tables:
        for fk in table.foreign_keys:
            target = f"{table.name}({', '.join(fk.columns)}) -> {fk.ref_table}({', '.join(fk.ref_columns)})"
            reason = _foreign_key_problem(fk, present[table.name], present, keys)
            if reason:
                omitted.append(f"foreign key {target}: {reason}")
                continue
            label = _quote(_constraint_name(table.name, fk.columns, "fkey"), dialect)
            foreigns.append(
                f"ALTER TABLE {_quote(table.name, dialect)} ADD CONSTRAINT {label} FOREIGN KEY "
                f"({_quote_list(fk.columns, dialect)}) REFERENCES {_quote(fk.ref_table, dialect)} "
                f"({_quote_list(fk.ref_columns, dialect)});"
            )
    return _Constraints(primaries + uniques + foreigns, omitted)


def _foreign_key_problem(
    fk: ms.ForeignKey,
    columns: set[str],
    present: dict[str, set[str]],
    keys: dict[str, list[frozenset[str]]],
) -> str:
    if not set(fk.columns) <= columns:
        return "a referencing column was dropped by masking"
    if fk.ref_table not in present:
        return f"table {fk.ref_table} is not in the artifact"
    if not set(fk.ref_columns) <= present[fk.ref_table]:
        return "a referenced column was dropped by masking"
    if frozenset(fk.ref_columns) not in keys[fk.ref_table]:
        return "the referenced columns have no primary key or unique constraint in the artifact"
    return ""


def render_constraints(tables: Sequence[tuple[ms.Table, pa.Schema]], dialect: str) -> str:
    """Render primary keys, then unique constraints, then foreign keys for all ``tables``.

    Run this after the data is loaded. Constraints that mention a column missing from the Arrow
    schema, or a table missing from ``tables``, are replaced by an ``-- omitted:`` comment.
    Foreign keys must reference a primary key or unique set that is itself rendered.
    """
    _check_dialect(dialect)
    found = _collect_constraints(tables, dialect)
    for reason in found.omitted:
        log.warning("SQL artifact: constraint left out, %s", reason)
    lines = [f"-- omitted: {_comment_text(reason)}" for reason in found.omitted]
    lines += found.statements
    return "\n".join(lines) + "\n" if lines else ""


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------

# COPY text format: backslash starts an escape, tab separates columns, newline ends a row.
_COPY_ESCAPE_MAP = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
# MySQL string literal in single quotes, with backslash escapes enabled (the dump sets sql_mode).
_MYSQL_ESCAPE_MAP = {"\\": "\\\\", "'": "\\'", "\0": "\\0", "\n": "\\n", "\r": "\\r", "\x1a": "\\Z"}
_COPY_ESCAPES = str.maketrans(_COPY_ESCAPE_MAP)
_MYSQL_ESCAPES = str.maketrans(_MYSQL_ESCAPE_MAP)


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (uuid.UUID, dt.timedelta)):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _plain_value(kind: str, value: Any) -> str:
    """Render a non-NULL value as dialect-neutral text (before quoting or escaping)."""
    if kind == _INT:
        return str(value)
    if kind == _DECIMAL:
        return format(value, "f")
    if kind == _TEXT:
        return value
    if kind in (_DATE, _TIME):
        return value.isoformat()
    if kind == _TIMESTAMP:
        return value.isoformat(sep=" ")
    if kind == _UUID_BYTES:
        return str(uuid.UUID(bytes=value))
    if kind == _NESTED:
        return json.dumps(
            value, ensure_ascii=False, separators=(", ", ": "), default=_json_default, allow_nan=False
        )
    raise AssertionError(kind)


def _pg_renderer(table: str, plan: _ColumnPlan) -> Callable[[Any], str]:
    kind = plan.kind
    if kind == _BOOL:
        return lambda v: "t" if v else "f"
    if kind == _FLOAT:
        return _pg_float
    if kind == _BINARY:
        return lambda v: "\\\\x" + v.hex()
    if kind == _TIMESTAMP_TZ:
        return lambda v: v.astimezone(_UTC).isoformat(sep=" ")
    if kind in (_TEXT, _NESTED):
        where = f"{table}.{plan.name}"

        def text(v: Any) -> str:
            s = _plain_value(kind, v)
            if "\0" in s:
                raise SourceError(
                    f"column {where} holds a text value with a NUL character, which PostgreSQL text "
                    "cannot store; strip NUL in the masking policy or use the mysql dialect"
                )
            return s.translate(_COPY_ESCAPES)

        return text
    return lambda v: _plain_value(kind, v)


def _pg_float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _mysql_renderer(table: str, plan: _ColumnPlan) -> Callable[[Any], str]:
    kind = plan.kind
    if kind == _BOOL:
        return lambda v: "1" if v else "0"
    if kind in (_INT, _DECIMAL):
        return lambda v: _plain_value(kind, v)
    if kind == _BINARY:
        return lambda v: "X'" + v.hex() + "'"
    if kind == _FLOAT:
        where = f"{table}.{plan.name}"

        def number(v: float) -> str:
            if not math.isfinite(v):
                raise SourceError(
                    f"column {where} holds NaN or an infinity, which MySQL cannot store; replace "
                    "them in the masking policy or use the postgresql dialect"
                )
            return repr(v)

        return number
    if kind == _TIMESTAMP_TZ:
        return lambda v: "'" + v.astimezone(_UTC).replace(tzinfo=None).isoformat(sep=" ") + "'"
    return lambda v: "'" + _plain_value(kind, v).translate(_MYSQL_ESCAPES) + "'"


def _guarded(table: str, plan: _ColumnPlan, render: Callable[[Any], str]) -> Callable[[Any], str]:
    """Turn value-level failures into a SourceError naming the column, never the value."""

    def safe(value: Any) -> str:
        try:
            return render(value)
        except (ValueError, TypeError, OverflowError) as exc:
            raise SourceError(
                f"column {table}.{plan.name} has a {type(value).__name__} value that cannot be written "
                f"as {plan.sql_type}: {type(exc).__name__}"
            ) from exc

    return safe


def _column_array(batch: pa.RecordBatch, field: pa.Field, plan: _ColumnPlan, table: str) -> pa.Array:
    """The column ``field`` of ``batch``, in the schema's type and prepared for rendering."""
    index = batch.schema.get_field_index(field.name)
    if index < 0:
        raise SourceError(
            f"table {table}: a record batch lacks column {field.name}; every batch must have the "
            "columns of the table's Arrow schema"
        )
    array = batch.column(index)
    if array.type != field.type:
        try:
            array = array.cast(field.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SourceError(
                f"table {table}: column {field.name} arrived as {array.type} in a batch, expected "
                f"{field.type}"
            ) from exc
    if plan.prepare is not None:
        array = plan.prepare(array)
    return array


def _column_cells(array: pa.Array, render: Callable[[Any], str], null: str) -> list[str]:
    return [null if v is None else render(v) for v in array.to_pylist()]


# --------------------------------------------------------------------------------------------
# Values, a whole column at a time
# --------------------------------------------------------------------------------------------
#
# The per-value renderers above are the reference. For the common kinds, a column of a batch is
# rendered at once with pyarrow.compute (and numpy over the UTF-8 bytes, for escapes) into an
# Arrow string array with the same text. Whenever a batch's column holds something this path is
# not sure to write as the reference does (a date Python cannot hold, NaN for MySQL, NUL for
# PostgreSQL, invalid UTF-8, any Arrow error), that column of that batch goes through the
# per-value renderer instead, which writes it or raises the SourceError it always raised; so no
# Arrow message (which may quote a value) ever reaches an error or the log.
#
# Known gap: floats are spelled the way Arrow spells them, not like Python's repr ("1" for 1.0,
# "1e-7" for 1e-07, "1.5e+16" for 1.5e16). Both are the shortest text that reads back as the same
# double, in PostgreSQL and in MySQL/MariaDB, but artifacts with such floats differ in bytes
# from those of earlier versions.

_EPOCH = dt.date(1970, 1, 1)
_MIN_DAY = (dt.date.min - _EPOCH).days
_MAX_DAY = (dt.date.max - _EPOCH).days
_DAY_MICROS = 86_400_000_000
_SECOND_MICROS = 1_000_000

_DECIMAL_TYPES = {4: pa.decimal32, 8: pa.decimal64, 16: pa.decimal128, 32: pa.decimal256}


@dataclass(frozen=True)
class _Vector:
    """Renders a column at once: ``before + text + after`` for each non-NULL value.

    ``render`` returns the text, NULL where the value is NULL, or None when this batch's column
    must go through the per-value renderer. The constant ``before`` and ``after`` are written
    while rows are joined, so a column without NULLs costs no extra pass for them.
    """

    render: Callable[[pa.Array], pa.Array | None]
    before: str = ""
    after: str = ""


# A rendered column: text before each cell, the cells (no NULLs left), text after each cell.
_Cells = tuple[str, pa.Array, str]


def _within(values: pa.Array, low: int, high: int) -> bool:
    """Whether every non-NULL value of the integer array ``values`` lies in ``[low, high]``."""
    bounds = pc.min_max(values)
    least = bounds["min"].as_py()
    return least is None or (least >= low and bounds["max"].as_py() <= high)


def _layout(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (from 0, one more than values) and UTF-8 bytes of a string or large_string array."""
    _, offsets_buffer, data_buffer = text.buffers()
    if len(text) == 0:
        return np.zeros(1, np.int64), np.empty(0, np.uint8)
    width = np.dtype(np.int64 if pat.is_large_string(text.type) else np.int32)
    offsets = np.frombuffer(offsets_buffer, width, len(text) + 1, text.offset * width.itemsize)
    start, end = int(offsets[0]), int(offsets[-1])
    if end == start:
        return np.zeros(len(text) + 1, np.int64), np.empty(0, np.uint8)
    return (offsets - start if start else offsets), np.frombuffer(data_buffer, np.uint8, end - start, start)


def _escape_table(escapes: dict[str, str]) -> np.ndarray:
    """Byte -> the letter written after a backslash in its place, 0 for bytes written as they are."""
    table = np.zeros(256, np.uint8)
    for char, escaped in escapes.items():
        assert len(char) == 1 and ord(char) < 128 and len(escaped) == 2 and escaped[0] == "\\"
        table[ord(char)] = ord(escaped[1])
    return table


_COPY_ESCAPE_TABLE = _escape_table(_COPY_ESCAPE_MAP)
_MYSQL_ESCAPE_TABLE = _escape_table(_MYSQL_ESCAPE_MAP)


def _escaped(text: pa.Array, table: np.ndarray) -> pa.Array:
    """``text`` with each character ``table`` names replaced by its backslash escape.

    Every escaped character is ASCII, and no byte of a multi-byte UTF-8 sequence is ASCII, so the
    bytes can be escaped without decoding; NULL values stay NULL.
    """
    text.validate(full=True)  # invalid UTF-8 raises; the per-value path then decides
    offsets, data = _layout(text)
    raw = data.tobytes()  # bytes.find scans fast, and most columns have nothing to escape
    present = [byte for byte in np.flatnonzero(table) if raw.find(bytes((byte,))) >= 0]
    if not present:
        return text
    special = data == present[0]
    for byte in present[1:]:
        special |= data == byte
    hits = np.flatnonzero(special)
    out = np.insert(data, hits, ord("\\"))
    out[hits + np.arange(1, hits.size + 1)] = table[data[hits]]
    offsets = offsets + np.searchsorted(hits, offsets)
    large = pat.is_large_string(text.type) or out.size > np.iinfo(np.int32).max
    validity = None if text.null_count == 0 else pc.is_valid(text).buffers()[1]
    return pa.Array.from_buffers(
        pa.large_string() if large else pa.string(),
        len(text),
        [validity, pa.py_buffer(offsets.astype(np.int64 if large else np.int32)), pa.py_buffer(out)],
        null_count=text.null_count,
    )


def _as_text(values: pa.Array) -> pa.Array:
    if pat.is_string(values.type) or pat.is_large_string(values.type):
        return values
    return values.cast(pa.large_string())


def _joined(kind: pa.DataType, *parts: pa.Array | str) -> pa.Array:
    """Concatenate arrays and constant strings value by value; NULL where any part is NULL."""
    arguments = [pa.scalar(p, kind) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*arguments, pa.scalar("", kind))


def _int_text(values: pa.Array) -> pa.Array:
    return values.cast(pa.string())


def _decimal_text(values: pa.Array) -> pa.Array | None:
    """Digits as ``format(value, "f")`` writes them: never with an exponent."""
    scale = values.type.scale
    if scale < 0:
        return None
    text = values.cast(pa.string())
    if scale == 0 or not pc.any(pc.match_substring(text, "E")).as_py():
        return text
    # Arrow writes magnitudes below 1e-6 (and zero at scale 7 or more) as 1.5E-7: put the point
    # into the unscaled digits instead.
    same_width = _DECIMAL_TYPES[values.type.byte_width](values.type.precision, 0)
    unscaled = values.view(same_width).cast(pa.string())
    padded = pc.utf8_lpad(pc.utf8_ltrim(unscaled, "-"), scale + 1, "0")
    sign = pc.if_else(pc.starts_with(unscaled, "-"), "-", "")
    whole = pc.utf8_slice_codeunits(padded, 0, -scale)
    fraction = pc.utf8_slice_codeunits(padded, -scale)
    return _joined(pa.string(), sign, whole, ".", fraction)


def _date_text(values: pa.Array) -> pa.Array | None:
    days = values.cast(pa.date32()).cast(pa.int32())
    if not _within(days, _MIN_DAY, _MAX_DAY):
        return None
    return days.cast(pa.date32()).cast(pa.string())


def _clock_text(values: pa.Array, micros: pa.Array, whole_seconds: pa.DataType) -> pa.Array:
    """Text of a timestamp or time: six fraction digits, or none when they are all zero (isoformat)."""
    fraction = micros.fill_null(0).to_numpy() % _SECOND_MICROS
    if not fraction.all():
        if not fraction.any():
            return values.cast(whole_seconds).cast(pa.string())
        text = values.cast(pa.string())
        return pc.if_else(pa.array(fraction == 0), pc.utf8_slice_codeunits(text, 0, -7), text)
    return values.cast(pa.string())


def _timestamp_text(values: pa.Array) -> pa.Array | None:
    """Wall-clock text; an aware timestamp's values are UTC, so this is its UTC time."""
    naive = values.cast(pa.timestamp("us"))  # drops a time zone without shifting the values
    micros = naive.cast(pa.int64())
    if not _within(micros, _MIN_DAY * _DAY_MICROS, (_MAX_DAY + 1) * _DAY_MICROS - 1):
        return None
    return _clock_text(naive, micros, pa.timestamp("s"))


def _time_text(values: pa.Array) -> pa.Array | None:
    clock = values.cast(pa.time64("us"))
    micros = clock.cast(pa.int64())
    if not _within(micros, 0, _DAY_MICROS - 1):
        return None
    return _clock_text(clock, micros, pa.time32("s"))


def _float_text(values: pa.Array) -> pa.Array:
    # Through float64, so a float32 gets the digits of the double the per-value path printed.
    return values.cast(pa.float64()).cast(pa.string())


def _all_finite(values: pa.Array) -> bool:
    return pc.all(pc.is_finite(values)).as_py() is not False


_PLAIN_TEXT: dict[str, Callable[[pa.Array], pa.Array | None]] = {
    _INT: _int_text,
    _DECIMAL: _decimal_text,
    _DATE: _date_text,
    _TIME: _time_text,
    _TIMESTAMP: _timestamp_text,
    _TIMESTAMP_TZ: _timestamp_text,
}


def _pg_vector(kind: str) -> _Vector | None:
    """Render a column as :func:`_pg_renderer` does, or None when only the per-value path can."""
    if kind == _BOOL:
        return _Vector(lambda a: pc.if_else(a, "t", "f"))
    if kind == _FLOAT:
        return _Vector(_pg_float_text)
    if kind == _TEXT:
        return _Vector(_pg_text)
    if kind == _TIMESTAMP_TZ:
        return _Vector(_timestamp_text, after="+00:00")
    plain = _PLAIN_TEXT.get(kind)
    return None if plain is None else _Vector(plain)


def _pg_float_text(values: pa.Array) -> pa.Array:
    text = _float_text(values)
    if _all_finite(values):
        return text
    # Arrow writes nan, inf and -inf.
    return pc.replace_substring(pc.replace_substring(text, "nan", "NaN"), "inf", "Infinity")


def _pg_text(values: pa.Array) -> pa.Array | None:
    text = _as_text(values)
    if not _layout(text)[1].all():
        return None  # a NUL character: the per-value path raises, naming the column
    return _escaped(text, _COPY_ESCAPE_TABLE)


def _mysql_vector(kind: str) -> _Vector | None:
    """Render a column as :func:`_mysql_renderer` does, or None when only the per-value path can."""
    if kind == _BOOL:
        return _Vector(lambda a: pc.if_else(a, "1", "0"))
    if kind == _FLOAT:
        return _Vector(lambda a: _float_text(a) if _all_finite(a) else None)
    if kind == _TEXT:
        return _Vector(lambda a: _escaped(_as_text(a), _MYSQL_ESCAPE_TABLE), "'", "'")
    if kind in (_INT, _DECIMAL):
        return _Vector(_PLAIN_TEXT[kind])
    plain = _PLAIN_TEXT.get(kind)
    return None if plain is None else _Vector(plain, "'", "'")


def _vector_cells(array: pa.Array, vector: _Vector, null: str) -> _Cells | None:
    try:
        text = vector.render(array)
    except pa.ArrowException:
        return None
    if text is None:
        return None
    if text.null_count == 0:
        return vector.before, text, vector.after
    if vector.before or vector.after:
        text = _joined(text.type, vector.before, text, vector.after)
    return "", pc.fill_null(text, pa.scalar(null, text.type)), ""


def _joined_rows(
    columns: list[_Cells], before: str, between: str, after: str
) -> tuple[np.ndarray, np.ndarray]:
    """Join rendered columns into rows ``before + cells joined by between + after``, back to back.

    Returns the offsets of the rows (from 0) and all their bytes.
    """
    rows = len(columns[0][1])
    constant = len(before) + len(after) + sum(len(b) + len(a) + len(between) for b, _, a in columns)
    total = sum(text.nbytes for _, text, _ in columns) + rows * (constant + 8)
    large = total > np.iinfo(np.int32).max
    kind = pa.large_string() if large else pa.string()
    parts: list[pa.Array | str] = [before]
    for i, (head, text, tail) in enumerate(columns):
        parts += [between if i else "", head, text if text.type == kind else text.cast(kind), tail]
    parts.append(after)
    merged: list[pa.Array | str] = []
    for part in parts:  # adjacent constants become one
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        elif not isinstance(part, str) or part:
            merged.append(part)
    if not large and not any(isinstance(part, pa.Array) and part.null_count for part in merged):
        return _layout(concatenate(rows, *merged))  # one C pass; rendered cells hold no NULL
    return _layout(_joined(kind, *merged))


# --------------------------------------------------------------------------------------------
# The dump
# --------------------------------------------------------------------------------------------


def _header_lines(header: str) -> list[str]:
    return [f"-- {line}".rstrip() for line in header.splitlines()]


def _preamble(dialect: str, header: str) -> str:
    lines = _header_lines(header)
    if lines:
        lines.append("")
    if dialect == "postgresql":
        lines += [
            "SET client_encoding = 'UTF8';",
            "SET standard_conforming_strings = on;",
            "SET client_min_messages = warning;",
            "BEGIN;",
        ]
    else:
        lines += [
            "SET NAMES utf8mb4;",
            # Known sql_mode: strict (bad data fails the restore) and backslash escapes enabled.
            "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION';",
            "SET FOREIGN_KEY_CHECKS=0;",
        ]
    return "\n".join(lines) + "\n\n"


class _TableWriter:
    """Turns record batches of one table into rendered cells, a column at a time."""

    def __init__(
        self, out: BinaryIO, table: ms.Table, schema: pa.Schema, plans: list[_ColumnPlan], dialect: str
    ) -> None:
        self.out = out
        self.table = table
        self.schema = schema
        self.plans = plans
        self.dialect = dialect
        make = _pg_renderer if dialect == "postgresql" else _mysql_renderer
        self.renderers = [_guarded(table.name, p, make(table.name, p)) for p in plans]
        vector = _pg_vector if dialect == "postgresql" else _mysql_vector
        self.vectors = [vector(p.kind) for p in plans]
        self.null = "\\N" if dialect == "postgresql" else "NULL"

    def columns(self, batch: pa.RecordBatch) -> list[_Cells]:
        """Each column of ``batch`` rendered, NULL spelled out."""
        cells = []
        for field, plan, render, vector in zip(self.schema, self.plans, self.renderers, self.vectors):
            array = _column_array(batch, field, plan, self.table.name)
            text = None if vector is None else _vector_cells(array, vector, self.null)
            if text is None:
                if vector is not None:
                    log.debug("SQL artifact: %s.%s rendered value by value", self.table.name, plan.name)
                text = "", pa.array(_column_cells(array, render, self.null), pa.large_string()), ""
            cells.append(text)
        return cells


    def rendered(self, batches: Iterable[pa.RecordBatch], pool: Executor) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(rows, row end offsets, bytes) per non-empty batch, in order, rendered on ``pool``."""
        opening, separator, closing = ("", "\t", "\n") if self.dialect == "postgresql" else ("(", ",", "),\n")

        def render(batch: pa.RecordBatch) -> tuple[int, np.ndarray, np.ndarray]:
            return (batch.num_rows, *_joined_rows(self.columns(batch), opening, separator, closing))

        return ordered_map(pool, render, (b for b in batches if b.num_rows), 2 * RENDER_THREADS)


def _write_postgres_table(writer: _TableWriter, rendered: Iterable[tuple[int, np.ndarray, np.ndarray]]) -> int:
    out, table, dialect = writer.out, writer.table, writer.dialect
    copy = f"COPY {_quote(table.name, dialect)} ({_quote_list(writer.schema.names, dialect)}) FROM stdin;\n"
    count = 0
    for rows, _, data in rendered:
        if count == 0:
            out.write(copy.encode())
        out.write(memoryview(data))
        count += rows
        log.debug("SQL artifact: %s rows of %s written", count, table.name)
    if count:
        out.write(b"\\.\n\n")
    return count


def _write_mysql_table(writer: _TableWriter, rendered: Iterable[tuple[int, np.ndarray, np.ndarray]], max_bytes: int) -> int:
    out, table, dialect = writer.out, writer.table, writer.dialect
    columns = _quote_list(writer.schema.names, dialect)
    prefix = f"INSERT INTO {_quote(table.name, dialect)} ({columns}) VALUES\n".encode()
    pending: list[np.ndarray] = []  # runs of rows, each row followed by ",\n"
    size = len(prefix)
    count = 0

    def flush() -> None:
        nonlocal size
        if pending:
            statement = bytearray(prefix)
            for run in pending:
                statement += memoryview(run)
            statement[-2:] = b";\n"
            out.write(statement)
            pending.clear()
        size = len(prefix)

    for rows, ends, data in rendered:
        start = 0
        while start < rows:
            # Rows start..stop-1 fit while the statement, with ",\n" (or ";\n") after each, stays
            # within max_bytes; a row larger than that still gets a statement of its own.
            stop = int(np.searchsorted(ends, max_bytes - size + ends[start], side="right")) - 1
            stop = max(stop, start)
            if stop == start and not pending:
                stop = start + 1
            if stop > start:
                pending.append(data[ends[start]:ends[stop]])
                size += int(ends[stop] - ends[start])
            if stop < rows:
                flush()
            start = stop
        count += rows
        log.debug("SQL artifact: %s rows of %s written", count, table.name)
    flush()
    if count:
        out.write(b"\n")
    return count


def write_sql_dump(
    out: BinaryIO,
    tables: Sequence[tuple[ms.Table, pa.Schema, Iterable[pa.RecordBatch]]],
    dialect: str = "postgresql",
    *,
    header: str = "",
    max_statement_bytes: int = MAX_STATEMENT_BYTES,
) -> dict[str, int]:
    """Write a restorable SQL dump of ``tables`` to ``out`` and return rows written per table.

    Batches are consumed one at a time and written before the next is read, so a table is never
    held in memory whole. Every table's columns are planned before the first byte is written:
    an unsupported type fails fast with :class:`SourceError`. ``header`` becomes ``--`` comment
    lines at the top; keep values out of it.

    Known limitations: a PostgreSQL dump is one transaction, a MySQL dump is not (MySQL commits
    DDL implicitly), so a failed MySQL restore leaves a partial database. A single row larger
    than ``max_statement_bytes`` still gets its own statement. MySQL cannot store NaN or
    infinities, and PostgreSQL text cannot hold NUL characters: both raise ``SourceError``
    while writing, after part of the output has been written.
    """
    _check_dialect(dialect)
    tables = list(tables)
    names = [table.name for table, _, _ in tables]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise SourceError(f"table(s) {', '.join(duplicated)} appear more than once in the SQL artifact")
    plans = {table.name: _table_plans(table, schema, dialect) for table, schema, _ in tables}
    log.info("SQL artifact: writing %d table(s) for %s", len(tables), dialect)

    out.write(_preamble(dialect, header).encode())
    for table, _, _ in tables:
        out.write((_create_table_sql(table, plans[table.name], dialect) + "\n").encode())

    if dialect == "mysql":
        # Inserts commit once, at the end of the data; the DDL above commits implicitly anyway.
        out.write(b"START TRANSACTION;\n\n")
    counts: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=RENDER_THREADS, thread_name_prefix="sql-render") as pool:
        for table, schema, batches in tables:
            writer = _TableWriter(out, table, schema, plans[table.name], dialect)
            rendered = writer.rendered(batches, pool)
            if dialect == "postgresql":
                counts[table.name] = _write_postgres_table(writer, rendered)
            else:
                counts[table.name] = _write_mysql_table(writer, rendered, max_statement_bytes)
            log.info("SQL artifact: table %s, %d row(s)", table.name, counts[table.name])
    if dialect == "mysql":
        out.write(b"COMMIT;\n\n")

    constraints = render_constraints([(table, schema) for table, schema, _ in tables], dialect)
    if constraints:
        out.write((constraints + "\n").encode())
    out.write(b"COMMIT;\n" if dialect == "postgresql" else b"SET FOREIGN_KEY_CHECKS=1;\n")
    return counts
