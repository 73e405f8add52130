"""The SQL artifact: type mapping, golden DDL and dumps, escaping, and real restores.

Golden files live in tests/golden/sqldump/. After an intended change, rewrite them with
``UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_sqldump.py`` and review the diff as SQL.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import os
import random
import re
import shutil
import struct
import subprocess
import uuid
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
import sqlalchemy as sa

from cleanroom import sqldump
from cleanroom.sqldump import (
    DIALECTS,
    column_type,
    render_constraints,
    render_create_table,
    write_sql_dump,
)
from masking.errors import ConfigError, SourceError
from masking.schema import (
    BINARY,
    BOOLEAN,
    DATE,
    DECIMAL,
    FLOAT,
    INTEGER,
    JSON,
    OTHER,
    STRING,
    TIME,
    TIMESTAMP,
    UUID,
    Column,
    ForeignKey,
    Table,
)

from .conftest import need

GOLDEN = Path(__file__).parent / "golden" / "sqldump"
UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"
TOKYO = ZoneInfo("Asia/Tokyo")

# --------------------------------------------------------------------------------------------
# The sample schema: customers <- orders -> payments (payments is not in the artifact)
# --------------------------------------------------------------------------------------------

CUSTOMERS = Table(
    name="customers",
    columns=(
        Column("id", "INTEGER", INTEGER, nullable=False, primary_key=True),
        Column("email", "VARCHAR(120)", STRING, nullable=False, max_length=120, unique=True),
        Column("full_name", "TEXT", STRING),
        Column("balance", "NUMERIC(12, 2)", DECIMAL, precision=12, scale=2),
        Column("lifetime", "NUMERIC(38, 10)", DECIMAL, precision=38, scale=10),
        Column("created_at", "TIMESTAMP WITH TIME ZONE", TIMESTAMP),
        Column("active", "BOOLEAN", BOOLEAN, nullable=False),
        Column("avatar", "BYTEA", BINARY),
        Column("prefs", "JSONB", JSON),
        Column("ssn", "VARCHAR(11)", STRING, max_length=11, unique=True),  # dropped by masking
    ),
    primary_key=("id",),
    unique_sets=(("full_name", "ssn"),),
)
CUSTOMERS_SCHEMA = pa.schema(
    [
        ("id", pa.int32()),
        ("email", pa.string()),
        ("full_name", pa.string()),
        ("balance", pa.decimal128(12, 2)),
        ("lifetime", pa.decimal128(38, 10)),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("active", pa.bool_()),
        ("avatar", pa.binary()),
        ("prefs", pa.string()),
    ]
)

ORDERS = Table(
    name="orders",
    columns=(
        Column("id", "BIGINT", INTEGER, nullable=False, primary_key=True),
        Column("customer_id", "INTEGER", INTEGER, nullable=False),
        Column("payment_id", "INTEGER", INTEGER),
        Column("amount", "DOUBLE PRECISION", FLOAT),
        Column("placed_on", "DATE", DATE),
        Column("placed_at", "TIMESTAMP WITHOUT TIME ZONE", TIMESTAMP),
        Column("ships_at", "TIME WITHOUT TIME ZONE", TIME),
        Column("external_id", "UUID", UUID),
        Column("tags", "TEXT[]", OTHER),
        Column("client_ip", "INET", OTHER),
        Column("total", "NUMERIC", DECIMAL),
    ),
    primary_key=("id",),
    foreign_keys=(
        ForeignKey(("customer_id",), "customers", ("id",)),
        ForeignKey(("payment_id",), "payments", ("id",)),
    ),
)
ORDERS_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("customer_id", pa.int32()),
        ("payment_id", pa.int32()),
        ("amount", pa.float64()),
        ("placed_on", pa.date32()),
        ("placed_at", pa.timestamp("us")),
        ("ships_at", pa.time64("us")),
        ("external_id", pa.string()),
        ("tags", pa.list_(pa.string())),
        ("client_ip", pa.string()),
        ("total", pa.string()),
    ]
)

TRICKY_TEXT = [
    "O'Brien",
    "back\\slash \\N \\. \\x00",
    "tab\there",
    "new\nline",
    "carriage\rreturn\r\n",
    "山田 太郎 — テスト",
    "",
    None,
    'double "quote"; -- not a comment /* nor this */',
    "ctrl-z \x1a and emoji 🎉",
    "\\.",
]


def customers_rows() -> dict[str, list]:
    n = len(TRICKY_TEXT)
    return {
        "id": list(range(1, n + 1)),
        "email": [f"user{i}@example.test" for i in range(1, n + 1)],
        "full_name": TRICKY_TEXT,
        "balance": [Decimal("1234567890.12"), Decimal("-0.01"), Decimal("0.00"), None]
        + [Decimal("1.50")] * (n - 4),
        "lifetime": [Decimal("1234567890123456789012345678.0123456789"), Decimal("-0.0000000001"), None]
        + [Decimal("42.0000000000")] * (n - 3),
        "created_at": [
            dt.datetime(2024, 3, 31, 1, 30, 15, 123456, tzinfo=TOKYO),
            dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc),
            None,
        ]
        + [dt.datetime(2020, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5)))] * (n - 3),
        "active": [True, False, True, False] + [True] * (n - 4),
        "avatar": [b"\x00\x01\xff\x00", b"", None, b"'\\\n\t\r"] + [bytes(range(256))] * (n - 4),
        "prefs": [json.dumps({"lang": "ja", "name": "日本", "q": "it's \"x\"", "bs": "\\"}), None, "[]", "{}"]
        + ['{"n": 1}'] * (n - 4),
    }


def orders_rows() -> dict[str, list]:
    return {
        "id": [10, 11, 12],
        "customer_id": [1, 1, 2],
        "payment_id": [7, None, 9],
        "amount": [0.1, -1e300, None],
        "placed_on": [dt.date(2024, 2, 29), None, dt.date(1970, 1, 1)],
        "placed_at": [dt.datetime(2024, 2, 29, 12, 0, 0, 1), None, dt.datetime(1970, 1, 1)],
        "ships_at": [dt.time(23, 59, 59, 999999), dt.time(0, 0), None],
        "external_id": ["0b7e6f9a-3c1d-4e5f-8a9b-0c1d2e3f4a5b", None, "00000000-0000-0000-0000-000000000000"],
        "tags": [["a", "b'c", "日本"], [], None],
        "client_ip": ["192.0.2.1", None, "2001:db8::1"],
        "total": ["123456789012345678901234567890123456789012.5", None, "0"],
    }


def batch(schema: pa.Schema, rows: dict[str, list]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(rows, schema=schema)


def batches(schema: pa.Schema, rows: dict[str, list], size: int) -> list[pa.RecordBatch]:
    return pa.Table.from_batches([batch(schema, rows)]).to_batches(max_chunksize=size)


def sample_tables(size: int = 4) -> list[tuple[Table, pa.Schema, list[pa.RecordBatch]]]:
    # Child table first: constraints come last, so the order must not matter.
    return [
        (ORDERS, ORDERS_SCHEMA, batches(ORDERS_SCHEMA, orders_rows(), size)),
        (CUSTOMERS, CUSTOMERS_SCHEMA, batches(CUSTOMERS_SCHEMA, customers_rows(), size)),
    ]


def render_dump(dialect: str, tables=None, **kwargs) -> str:
    out = io.BytesIO()
    write_sql_dump(out, tables if tables is not None else sample_tables(), dialect, **kwargs)
    return out.getvalue().decode("utf-8")


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    need(path.is_file(), f"golden file {path} is missing; create it with UPDATE_GOLDEN=1")
    assert text == path.read_bytes().decode("utf-8"), f"{name} differs; review, then UPDATE_GOLDEN=1"


dialects = pytest.mark.parametrize("dialect", DIALECTS)

# --------------------------------------------------------------------------------------------
# Type mapping
# --------------------------------------------------------------------------------------------

TYPE_CASES = [
    # id, column, arrow type, postgresql, mysql
    ("int32", Column("c", "INTEGER", INTEGER), pa.int32(), "INTEGER", "INT"),
    ("int64", Column("c", "BIGINT", INTEGER), pa.int64(), "BIGINT", "BIGINT"),
    ("int8", Column("c", "TINYINT", INTEGER), pa.int8(), "SMALLINT", "TINYINT"),
    ("uint32", Column("c", "INT UNSIGNED", INTEGER), pa.uint32(), "BIGINT", "INT UNSIGNED"),
    ("uint64", Column("c", "BIGINT UNSIGNED", INTEGER), pa.uint64(), "NUMERIC(20)", "BIGINT UNSIGNED"),
    ("float32", Column("c", "REAL", FLOAT), pa.float32(), "REAL", "FLOAT"),
    ("float64", Column("c", "DOUBLE", FLOAT), pa.float64(), "DOUBLE PRECISION", "DOUBLE"),
    ("decimal", Column("c", "NUMERIC(10, 2)", DECIMAL, precision=10, scale=2), pa.decimal128(10, 2),
     "NUMERIC(10, 2)", "DECIMAL(10, 2)"),
    ("decimal-wider-than-mysql", Column("c", "NUMERIC(70, 2)", DECIMAL, precision=70, scale=2),
     pa.decimal256(70, 2), "NUMERIC(70, 2)", "LONGTEXT"),
    ("unbounded-numeric-as-text", Column("c", "NUMERIC", DECIMAL), pa.string(), "NUMERIC", "LONGTEXT"),
    ("wide-numeric-as-text", Column("c", "NUMERIC(50, 4)", DECIMAL, precision=50, scale=4), pa.string(),
     "NUMERIC(50, 4)", "DECIMAL(50, 4)"),
    ("boolean", Column("c", "BOOLEAN", BOOLEAN), pa.bool_(), "BOOLEAN", "BOOLEAN"),
    ("varchar", Column("c", "VARCHAR(120)", STRING, max_length=120), pa.string(),
     "VARCHAR(120)", "VARCHAR(120)"),
    ("long-varchar", Column("c", "VARCHAR(4000)", STRING, max_length=4000), pa.string(),
     "VARCHAR(4000)", "TEXT"),
    ("text", Column("c", "TEXT", STRING), pa.large_string(), "TEXT", "LONGTEXT"),
    ("text-primary-key", Column("c", "TEXT", STRING, primary_key=True), pa.string(), "TEXT", "VARCHAR(255)"),
    ("unique-varchar", Column("c", "VARCHAR(500)", STRING, max_length=500, unique=True), pa.string(),
     "VARCHAR(500)", "VARCHAR(500)"),
    ("dictionary-string", Column("c", "VARCHAR(5)", STRING, max_length=5),
     pa.dictionary(pa.int8(), pa.string()),
     "VARCHAR(5)", "VARCHAR(5)"),
    ("json", Column("c", "JSON", JSON), pa.string(), "JSON", "JSON"),
    ("jsonb", Column("c", "JSONB", JSON), pa.string(), "JSONB", "JSON"),
    ("uuid-text", Column("c", "UUID", UUID), pa.string(), "UUID", "CHAR(36)"),
    ("uuid-extension", Column("c", "UUID", UUID), pa.uuid(), "UUID", "CHAR(36)"),
    ("bytea", Column("c", "BYTEA", BINARY), pa.binary(), "BYTEA", "LONGBLOB"),
    ("varbinary", Column("c", "VARBINARY(16)", BINARY, max_length=16), pa.binary(), "BYTEA", "VARBINARY(16)"),
    ("fixed-binary", Column("c", "BINARY(8)", BINARY), pa.binary(8), "BYTEA", "BINARY(8)"),
    ("date", Column("c", "DATE", DATE), pa.date32(), "DATE", "DATE"),
    ("timestamp", Column("c", "TIMESTAMP", TIMESTAMP), pa.timestamp("us"), "TIMESTAMP WITHOUT TIME ZONE",
     "DATETIME(6)"),
    ("timestamp-ms-tz", Column("c", "TIMESTAMPTZ", TIMESTAMP), pa.timestamp("ms", tz="UTC"),
     "TIMESTAMP(3) WITH TIME ZONE", "DATETIME(3)"),
    ("timestamp-ns", Column("c", "TIMESTAMP", TIMESTAMP), pa.timestamp("ns"), "TIMESTAMP WITHOUT TIME ZONE",
     "DATETIME(6)"),
    ("time", Column("c", "TIME", TIME), pa.time64("us"), "TIME", "TIME(6)"),
    ("array-as-json", Column("c", "INTEGER[]", OTHER), pa.list_(pa.int32()), "JSONB", "JSON"),
    ("struct-as-json", Column("c", "composite", OTHER), pa.struct([("a", pa.int8())]), "JSONB", "JSON"),
    ("inet-as-text", Column("c", "INET", OTHER), pa.string(), "TEXT", "LONGTEXT"),
    ("sqlite-date-as-text", Column("c", "DATE", DATE), pa.string(), "TEXT", "LONGTEXT"),
    ("all-null-integer", Column("c", "INTEGER", INTEGER), pa.null(), "BIGINT", "BIGINT"),
    ("all-null-timestamptz", Column("c", "TIMESTAMP WITH TIME ZONE", TIMESTAMP), pa.null(),
     "TIMESTAMP WITH TIME ZONE", "DATETIME(6)"),
]


@pytest.mark.parametrize(
    ("column", "arrow_type", "postgresql", "mysql"),
    [pytest.param(*case[1:], id=case[0]) for case in TYPE_CASES],
)
def test_column_type_when_mapped_then_matches_table(column, arrow_type, postgresql, mysql):
    assert column_type(column, arrow_type, "postgresql") == postgresql
    assert column_type(column, arrow_type, "mysql") == mysql


@pytest.mark.parametrize(
    "arrow_type",
    [pa.duration("s"), pa.month_day_nano_interval()],
    ids=["duration", "interval"],
)
@dialects
def test_render_create_table_when_type_unsupported_then_source_error_names_column(arrow_type, dialect):
    table = Table("events", (Column("wait", "INTERVAL", OTHER),))
    with pytest.raises(SourceError, match=r"events\.wait \(source type INTERVAL\) has Arrow type"):
        render_create_table(table, pa.schema([("wait", arrow_type)]), dialect)


def test_write_sql_dump_when_dialect_unknown_then_config_error():
    with pytest.raises(ConfigError, match="expected one of postgresql, mysql"):
        write_sql_dump(io.BytesIO(), [], "oracle")


@dialects
def test_render_create_table_when_data_has_unknown_column_then_source_error(dialect):
    schema = CUSTOMERS_SCHEMA.append(pa.field("surprise", pa.string()))
    with pytest.raises(SourceError, match="customers: the masked data has column.*surprise"):
        render_create_table(CUSTOMERS, schema, dialect)


def test_mysql_string_key_columns_fit_innodb_index_limits():
    table = Table(
        "t",
        (Column("code", "TEXT", STRING), Column("parent", "TEXT", STRING), Column("body", "TEXT", STRING)),
        primary_key=("code",),
        foreign_keys=(ForeignKey(("parent",), "t", ("code",)),),
    )
    schema = pa.schema([("code", pa.string()), ("parent", pa.string()), ("body", pa.string())])
    ddl = render_create_table(table, schema, "mysql")
    assert "`code` VARCHAR(255) NOT NULL" in ddl
    assert "`parent` VARCHAR(255)," in ddl
    assert "`body` LONGTEXT" in ddl


# --------------------------------------------------------------------------------------------
# Golden files
# --------------------------------------------------------------------------------------------


@dialects
def test_ddl_when_rendered_then_matches_golden(dialect):
    pairs = [(CUSTOMERS, CUSTOMERS_SCHEMA), (ORDERS, ORDERS_SCHEMA)]
    tables = "".join(render_create_table(t, s, dialect) + "\n" for t, s in pairs)
    text = tables + render_constraints(pairs, dialect)
    check_golden(f"ddl.{dialect}.sql", text)


def small_tables():
    customers = {k: v[:4] for k, v in customers_rows().items()}
    customers["avatar"] = [b"\x00\x01\xff\x00", b"", None, b"'\\\n\t\r"]
    return [
        (CUSTOMERS, CUSTOMERS_SCHEMA, [batch(CUSTOMERS_SCHEMA, customers)]),
        (ORDERS, ORDERS_SCHEMA, [batch(ORDERS_SCHEMA, orders_rows())]),
    ]


@dialects
def test_small_dump_when_written_then_matches_golden(dialect):
    text = render_dump(dialect, small_tables(), header="cleanroom test artifact\nsource: golden sample")
    check_golden(f"dump.{dialect}.sql", text)


# --------------------------------------------------------------------------------------------
# Rendering details
# --------------------------------------------------------------------------------------------


def test_constraints_when_column_or_table_dropped_then_omitted_with_comment():
    text = render_constraints([(CUSTOMERS, CUSTOMERS_SCHEMA), (ORDERS, ORDERS_SCHEMA)], "postgresql")
    assert "-- omitted: unique customers(ssn): a column was dropped by masking" in text
    assert "-- omitted: unique customers(full_name, ssn): a column was dropped by masking" in text
    assert "-- omitted: foreign key orders(payment_id) -> payments(id): table payments is not in" in text
    assert 'FOREIGN KEY ("customer_id") REFERENCES "customers" ("id");' in text
    assert "ssn" not in "".join(line for line in text.splitlines() if not line.startswith("--"))


def test_constraints_when_primary_key_column_dropped_then_foreign_keys_to_it_omitted():
    schema = CUSTOMERS_SCHEMA.remove(CUSTOMERS_SCHEMA.get_field_index("id"))
    text = render_constraints([(CUSTOMERS, schema), (ORDERS, ORDERS_SCHEMA)], "mysql")
    assert "ALTER TABLE `customers` ADD PRIMARY KEY" not in text
    assert "ALTER TABLE `orders` ADD PRIMARY KEY (`id`);" in text
    assert "-- omitted: primary key customers(id)" in text
    assert "-- omitted: foreign key orders(customer_id) -> customers(id): a referenced column" in text
    assert "REFERENCES" not in text


def test_constraint_names_when_long_then_shortened_deterministically():
    long = "x" * 70
    table = Table(long, (Column("a" * 40, "INT", INTEGER, unique=True),))
    text = render_constraints([(table, pa.schema([("a" * 40, pa.int32())]))], "postgresql")
    name = re.search(r'ADD CONSTRAINT "([^"]+)" UNIQUE', text).group(1)
    assert len(name.encode()) <= 63 and name.endswith("_key")
    assert text == render_constraints([(table, pa.schema([("a" * 40, pa.int32())]))], "postgresql")


def test_postgres_copy_when_values_tricky_then_escaped_per_text_format():
    columns = (Column("s", "TEXT", STRING), Column("b", "BYTEA", BINARY), Column("f", "FLOAT8", FLOAT))
    table = Table("t", columns)
    schema = pa.schema([("s", pa.string()), ("b", pa.binary()), ("f", pa.float64())])
    data = batch(schema, {
        "s": ["a\\b\tc\nd\re", "", None],
        "b": [b"\x00\xff", b"", None],
        "f": [float("nan"), float("-inf"), 0.1],
    })
    text = render_dump("postgresql", [(table, schema, [data])])
    body = text.split('FROM stdin;\n', 1)[1].split("\\.\n", 1)[0]
    assert body.splitlines() == [
        "a\\\\b\\tc\\nd\\re\t\\\\x00ff\tNaN",
        "\t\\\\x\t-Infinity",
        "\\N\t\\N\t0.1",
    ]


def test_mysql_insert_when_values_tricky_then_escaped_literals():
    table = Table("t", (Column("s", "TEXT", STRING), Column("b", "BLOB", BINARY)))
    schema = pa.schema([("s", pa.string()), ("b", pa.binary())])
    data = batch(schema, {"s": ["it's a\\b\0c\nd\re\x1a", ""], "b": [b"\x00'", b""]})
    text = render_dump("mysql", [(table, schema, [data])])
    assert "('it\\'s a\\\\b\\0c\\nd\\re\\Z',X'0027'),\n('',X'');" in text


def test_mysql_inserts_when_many_rows_then_statements_stay_under_the_bound():
    table = Table("t", (Column("id", "INT", INTEGER), Column("s", "TEXT", STRING)))
    schema = pa.schema([("id", pa.int64()), ("s", pa.string())])
    data = batch(schema, {"id": list(range(500)), "s": ["ü" * 20] * 500})
    out = io.BytesIO()
    counts = write_sql_dump(out, [(table, schema, [data])], "mysql", max_statement_bytes=2_000)
    statements = [s for s in out.getvalue().split(b";\n") if s.lstrip().startswith(b"INSERT")]
    assert counts == {"t": 500}
    assert len(statements) > 5
    assert all(len(s) + 2 <= 2_000 for s in statements)
    assert sum(s.count(b"\n(") for s in statements) == 500


def test_mysql_dump_when_float_is_nan_then_source_error_names_column():
    table = Table("t", (Column("f", "DOUBLE", FLOAT),))
    schema = pa.schema([("f", pa.float64())])
    with pytest.raises(SourceError, match=r"t\.f holds NaN or an infinity"):
        render_dump("mysql", [(table, schema, [batch(schema, {"f": [float("nan")]})])])


def test_postgres_dump_when_text_has_nul_then_source_error_without_the_value():
    table = Table("t", (Column("s", "TEXT", STRING),))
    schema = pa.schema([("s", pa.string())])
    with pytest.raises(SourceError, match=r"t\.s holds a text value with a NUL") as info:
        render_dump("postgresql", [(table, schema, [batch(schema, {"s": ["secret\0value"]})])])
    assert "secret" not in str(info.value)


@dialects
def test_write_sql_dump_reads_batches_at_most_a_few_ahead_of_what_it_has_written(dialect):
    from cleanroom import sqldump

    ahead = 2 * sqldump.RENDER_THREADS  # batches rendering while one is written
    table = Table("t", (Column("id", "INT", INTEGER),))
    schema = pa.schema([("id", pa.int64())])
    out = io.BytesIO()
    seen = []

    def rows() -> list[str]:
        # One row a line in both dialects: "7" in COPY data, "(7)," or "(7);" in INSERTs.
        return re.findall(r"^\(?(\d+)\)?[,;]?$", out.getvalue().decode(), re.M)

    def rows_written() -> int:
        return len(rows())

    def produce():
        for i in range(12):
            seen.append((i, rows_written()))
            yield batch(schema, {"id": list(range(10 * i, 10 * i + 10))})

    counts = write_sql_dump(out, [(table, schema, produce())], dialect, max_statement_bytes=50)
    assert counts == {"t": 120}
    assert rows() == [str(n) for n in range(120)]  # every row, in batch order
    for i, written in seen:
        assert written >= 10 * (i - ahead), f"batch {i} was read with only {written} rows written"


@dialects
def test_write_sql_dump_when_type_unsupported_then_nothing_written(dialect):
    table = Table("t", (Column("d", "INTERVAL", OTHER),))
    schema = pa.schema([("d", pa.duration("s"))])
    out = io.BytesIO()
    with pytest.raises(SourceError):
        write_sql_dump(out, [(table, schema, [])], dialect)
    assert out.getvalue() == b""


# --------------------------------------------------------------------------------------------
# Real restores
# --------------------------------------------------------------------------------------------


def restore_postgres(url: str, path: Path) -> None:
    need(shutil.which("psql") is not None, "the psql client is not installed")
    name = sa.make_url(url).database
    result = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", "5432", "-U", "postgres",
         "-d", name, "-f", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr


def restore_mysql(url: str, path: Path) -> None:
    client = shutil.which("mariadb") or shutil.which("mysql")
    need(client is not None, "neither the mariadb nor the mysql client is installed")
    name = sa.make_url(url).database
    with path.open("rb") as stdin:
        result = subprocess.run(
            [client, "--protocol=TCP", "-h", "127.0.0.1", "-P", "3306", "-u", "root", f"--database={name}"],
            stdin=stdin, capture_output=True, timeout=120, check=False,
        )
    assert result.returncode == 0, result.stderr.decode()


@pytest.fixture(
    params=[
        pytest.param("postgresql", marks=pytest.mark.postgres, id="postgresql"),
        pytest.param("mysql", marks=pytest.mark.mariadb, id="mysql"),
    ]
)
def target(request, tmp_path):
    """(dialect, database URL, restore function) for a fresh empty database of that dialect."""
    dialect = request.param
    if dialect == "postgresql":
        url = request.getfixturevalue("pg_database")
        restore = restore_postgres
    else:
        url = request.getfixturevalue("mariadb_database")
        restore = restore_mysql
    engine = sa.create_engine(url)
    yield dialect, engine, lambda text: _restore_text(restore, url, tmp_path, text)
    engine.dispose()


def _restore_text(restore, url: str, tmp_path: Path, text: str) -> None:
    path = tmp_path / "dump.sql"
    path.write_text(text, encoding="utf-8", newline="")
    restore(url, path)


def canonical(value, dialect: str, kind: str):
    """Bring a value read back through SQLAlchemy to the form it had in Arrow."""
    if value is None:
        return None
    if kind == "json":
        return json.loads(value) if isinstance(value, str) else value
    if kind == "bool":
        return bool(value)
    if kind == "timestamptz":
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value
    if kind == "uuid":
        return str(value)
    if kind == "time" and isinstance(value, dt.timedelta):
        return (dt.datetime.min + value).time()
    if kind == "bytes":
        return bytes(value)
    return value


CUSTOMER_KINDS = {"active": "bool", "created_at": "timestamptz", "prefs": "json", "avatar": "bytes"}
ORDER_KINDS = {"ships_at": "time", "external_id": "uuid", "tags": "json"}


def read_back(engine, table: str, kinds: dict[str, str], dialect: str) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY id")).mappings().all()
    return [{k: canonical(v, dialect, kinds.get(k, "")) for k, v in row.items()} for row in rows]


def expected(rows: dict[str, list], kinds: dict[str, str]) -> list[dict]:
    out = []
    for values in zip(*rows.values()):
        record = dict(zip(rows.keys(), values))
        for key, kind in kinds.items():
            if kind == "json" and isinstance(record[key], str):
                record[key] = json.loads(record[key])
        out.append(record)
    return out


def test_restore_when_dump_loaded_then_values_counts_and_constraints_match(target):
    dialect, engine, restore = target
    tables = sample_tables(size=3)
    out = io.BytesIO()
    counts = write_sql_dump(out, tables, dialect, header="restore test", max_statement_bytes=4_000)
    restore(out.getvalue().decode())

    assert counts == {"orders": 3, "customers": len(TRICKY_TEXT)}
    customers = read_back(engine, "customers", CUSTOMER_KINDS, dialect)
    orders = read_back(engine, "orders", ORDER_KINDS, dialect)
    want_orders = expected(orders_rows(), ORDER_KINDS)
    if dialect == "postgresql":  # MySQL keeps an unbounded NUMERIC as text: no DECIMAL is wide enough
        for row in want_orders:
            row["total"] = None if row["total"] is None else Decimal(row["total"])
    assert customers == expected(customers_rows(), CUSTOMER_KINDS)
    assert orders == want_orders

    inspector = sa.inspect(engine)
    assert inspector.get_pk_constraint("customers")["constrained_columns"] == ["id"]
    assert inspector.get_pk_constraint("orders")["constrained_columns"] == ["id"]
    fks = inspector.get_foreign_keys("orders")
    assert [(fk["constrained_columns"], fk["referred_table"], fk["referred_columns"]) for fk in fks] == [
        (["customer_id"], "customers", ["id"])
    ]
    uniques = [u["column_names"] for u in inspector.get_unique_constraints("customers")]
    assert ["email"] in uniques


def test_restore_when_constraint_violated_then_restore_fails(target):
    dialect, engine, restore = target
    rows = {k: v[:2] for k, v in customers_rows().items()}
    rows["email"] = ["same@example.test", "same@example.test"]
    text = render_dump(dialect, [(CUSTOMERS, CUSTOMERS_SCHEMA, [batch(CUSTOMERS_SCHEMA, rows)])])
    with pytest.raises(AssertionError, match="(?i)duplicate"):
        restore(text)


def test_restore_when_special_values_then_round_trip_exactly(target):
    dialect, engine, restore = target
    table = Table(
        "special",
        (
            Column("id", "INTEGER", INTEGER, nullable=False, primary_key=True),
            Column("f", "DOUBLE PRECISION", FLOAT),
            Column("s", "TEXT", STRING),
            Column("nothing", "INTEGER", INTEGER),
            Column("big", "NUMERIC(38, 0)", DECIMAL, precision=38, scale=0),
            Column("u", "UUID", UUID),
        ),
        primary_key=("id",),
    )
    schema = pa.schema([
        ("id", pa.int32()), ("f", pa.float64()), ("s", pa.string()), ("nothing", pa.null()),
        ("big", pa.decimal128(38, 0)), ("u", pa.uuid()),
    ])
    floats = [1 / 3, 1e-310, -0.0, 2.0**53 + 1, 1.7976931348623157e308]
    strings = ["x" * 70_000, "\\" * 5, "\\.", "日本語", ""]
    if dialect == "postgresql":
        floats += [float("nan"), float("inf"), float("-inf")]
    else:
        strings[-1] = "nul\0inside"
    n = len(floats)
    strings = (strings * 2)[:n]
    uuids = [uuid.UUID(int=i * 2**64 + 1) for i in range(n)]
    data = pa.RecordBatch.from_arrays(
        [
            pa.array(range(n), pa.int32()), pa.array(floats), pa.array(strings), pa.nulls(n),
            pa.array([Decimal(10**37 + i) * (-1) ** i for i in range(n)], pa.decimal128(38, 0)),
            pa.array([u.bytes for u in uuids], pa.uuid()),
        ],
        schema=schema,
    )
    restore(render_dump(dialect, [(table, schema, [data])], max_statement_bytes=50_000))

    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT f, s, nothing, big, u FROM special ORDER BY id")).all()
    got_floats = [r[0] for r in rows]
    if dialect == "postgresql":
        assert [repr(f) for f in got_floats] == [repr(f) for f in floats]
    else:  # MariaDB reads -0.0 back as 0.0; every other value is bit-exact
        assert got_floats == floats
    assert [r[1] for r in rows] == strings
    assert [r[2] for r in rows] == [None] * n
    assert [r[3] for r in rows] == [Decimal(10**37 + i) * (-1) ** i for i in range(n)]
    assert [str(r[4]) for r in rows] == [str(u) for u in uuids]


def test_restore_when_random_text_then_every_string_round_trips(target):
    dialect, engine, restore = target
    alphabet = "ab \\\t\n\r'\"`;-/*%_.N\x1a\x7f\u00e9\u65e5\u672c\u200b\U0001f389"
    if dialect == "mysql":
        alphabet += "\0"
    rng = random.Random(20240229)
    strings = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40))) for _ in range(400)]
    table = Table("texts", (Column("id", "INTEGER", INTEGER, primary_key=True), Column("s", "TEXT", STRING)))
    schema = pa.schema([("id", pa.int32()), ("s", pa.string())])
    data = batch(schema, {"id": list(range(len(strings))), "s": strings})
    restore(render_dump(dialect, [(table, schema, [data])], max_statement_bytes=3_000))

    with engine.connect() as conn:
        got = conn.execute(sa.text("SELECT s FROM texts ORDER BY id")).scalars().all()
    assert got == strings


# --------------------------------------------------------------------------------------------
# Column-at-a-time rendering: every value restores as the Arrow value it was
# --------------------------------------------------------------------------------------------

EDGE_TEXT = [
    "", None, "\\N", "NULL", "null", "\\", "\\\\", "\\.", "a\tb", "a\nb", "a\rb", "\r\n", "\t", "\n",
    "'", "''", "it's", '"', "`", "\x1a", "\x7f", "\\'", "'\\", "trailing\\", "\\t literally",
    "café", "日本語\tテキスト", "🎉\n🎉", "e\u0301", "\u200b", "ü" * 300, "x" * 5_000,
]
EDGE_FLOATS = [
    0.0, -0.0, 1.0, -1.0, 0.1, 1 / 3, 1e16, 1.5e16, 1e21, 1e22, 1e-5, 1e-7, 123456789012.25,
    2.0**53 + 2, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -1e-310, None,
]
UTC = dt.timezone.utc
EDGE_VALUES = {
    "d": [Decimal("0"), Decimal("-0.000000001"), Decimal("0.000000100"), Decimal("-12345678901.123456789"),
          Decimal("99999999999.999999999"), Decimal("-0.5"), None],
    "wide": [Decimal("0"), Decimal("-1E-30"), Decimal("0.000000000000000000000000000010"),
             Decimal("-123456789012345678901234567890.000000000000000000000000000001"), None],
    "day": [dt.date(1000, 1, 1), dt.date(1969, 12, 31), dt.date(1970, 1, 1), dt.date(1900, 2, 28),
            dt.date(2000, 2, 29), dt.date(9999, 12, 31), None],
    "ts": [dt.datetime(1969, 12, 31, 23, 59, 59, 999999), dt.datetime(1969, 12, 31, 23, 59, 59),
           dt.datetime(1900, 1, 1, 0, 0, 0, 1), dt.datetime(1000, 1, 1), dt.datetime(1970, 1, 1),
           dt.datetime(9999, 12, 31, 23, 59, 59, 999999), None],
    "tz": [dt.datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=UTC), dt.datetime(2000, 1, 1, tzinfo=TOKYO),
           dt.datetime(2024, 3, 31, 1, 30, 15, 123456, tzinfo=TOKYO), None],
    "tzms": [dt.datetime(1950, 6, 1, 12, 0, 0, 5000, tzinfo=UTC), None],
    "tsec": [dt.datetime(1901, 12, 13, 20, 45, 52), dt.datetime(2038, 1, 19, 3, 14, 8), None],
    "t": [dt.time(0, 0), dt.time(23, 59, 59, 999999), dt.time(12, 0, 0, 1), None],
}

VECTOR_TABLE = Table(
    "vectorised",
    (
        Column("id", "INTEGER", INTEGER, nullable=False, primary_key=True),
        Column("s", "TEXT", STRING),
        Column("ls", "TEXT", STRING),
        Column("vs", "VARCHAR(40)", STRING, max_length=40),
        Column("f", "DOUBLE PRECISION", FLOAT),
        Column("r", "REAL", FLOAT),
        Column("d", "NUMERIC(20, 9)", DECIMAL, precision=20, scale=9),
        Column("wide", "NUMERIC(60, 30)", DECIMAL, precision=60, scale=30),
        Column("n8", "SMALLINT", INTEGER),
        Column("u64", "BIGINT UNSIGNED", INTEGER),
        Column("b", "BOOLEAN", BOOLEAN),
        Column("day", "DATE", DATE),
        Column("ts", "TIMESTAMP", TIMESTAMP),
        Column("tz", "TIMESTAMPTZ", TIMESTAMP),
        Column("tzms", "TIMESTAMPTZ", TIMESTAMP),
        Column("tsec", "TIMESTAMP", TIMESTAMP),
        Column("t", "TIME", TIME),
        Column("bin", "BYTEA", BINARY),  # always per value: rides along with the others
    ),
    primary_key=("id",),
)
VECTOR_SCHEMA = pa.schema([
    ("id", pa.int32()), ("s", pa.string()), ("ls", pa.large_string()),
    ("vs", pa.dictionary(pa.int8(), pa.string())), ("f", pa.float64()), ("r", pa.float32()),
    ("d", pa.decimal128(20, 9)), ("wide", pa.decimal256(60, 30)), ("n8", pa.int8()), ("u64", pa.uint64()),
    ("b", pa.bool_()), ("day", pa.date32()), ("ts", pa.timestamp("us")), ("tz", pa.timestamp("us", tz="UTC")),
    ("tzms", pa.timestamp("ms", tz="America/New_York")), ("tsec", pa.timestamp("s")), ("t", pa.time64("us")),
    ("bin", pa.binary()),
])


def vector_rows(dialect: str, n: int = 240) -> dict[str, list]:
    """Edge values first, then seeded random ones; every column has NULLs."""
    rng = random.Random(f"vectorised-{dialect}")
    texts = EDGE_TEXT + (["nul\0inside", "\0"] if dialect == "mysql" else [])
    floats = EDGE_FLOATS + ([float("nan"), float("inf"), float("-inf")] if dialect == "postgresql" else [])

    def edge_or(name: str, i: int, make):
        edge = EDGE_VALUES[name]
        return edge[i] if i < len(edge) else (None if rng.random() < 0.1 else make())

    def any_double() -> float:
        value = float("nan")
        while not math.isfinite(value):
            value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        return value

    def any_float32() -> float:
        return struct.unpack("<f", struct.pack("<f", rng.uniform(-1e6, 1e6)))[0]

    def any_instant(micro: int) -> dt.datetime:  # years 1479 to 9892
        offset = dt.timedelta(microseconds=rng.randrange(-15_500_000_000_000_000, 250_000_000_000_000_000))
        return (dt.datetime(1970, 1, 1) + offset).replace(microsecond=micro)

    rows: dict[str, list] = {key: [] for key in VECTOR_SCHEMA.names}
    for i in range(n):
        micro = rng.choice([0, rng.randrange(1_000_000)])
        day = dt.date(1970, 1, 1) + dt.timedelta(days=rng.randrange(-300_000, 2_900_000))
        clock = dt.time(rng.randrange(24), rng.randrange(60), rng.randrange(60), micro)
        rows["id"].append(i)
        rows["s"].append(texts[i] if i < len(texts) else "".join(rng.choice(texts[2:]) for _ in range(3)))
        rows["ls"].append(texts[(i * 7) % len(texts)])
        rows["vs"].append(rng.choice(["", "a\tb", "O'Hara", "Zoë", None]))
        rows["f"].append(floats[i] if i < len(floats) else any_double())
        rows["r"].append(None if i % 11 == 0 else any_float32())
        rows["d"].append(edge_or("d", i, lambda: Decimal(rng.randrange(-10**20 + 1, 10**20)).scaleb(-9)))
        wide = Decimal(rng.randrange(-10**60 + 1, 10**60)).scaleb(-30)
        rows["wide"].append(edge_or("wide", i, lambda: wide))
        rows["n8"].append(None if i % 13 == 0 else rng.randrange(-128, 128))
        rows["u64"].append(None if i % 17 == 0 else rng.choice([0, 2**64 - 1, rng.randrange(2**64)]))
        rows["b"].append(rng.choice([True, False, None]))
        rows["day"].append(edge_or("day", i, lambda: day))
        rows["ts"].append(edge_or("ts", i, lambda: any_instant(micro)))
        rows["tz"].append(edge_or("tz", i, lambda: any_instant(micro).replace(tzinfo=UTC)))
        milli = micro // 1000 * 1000
        rows["tzms"].append(edge_or("tzms", i, lambda: any_instant(milli).replace(tzinfo=UTC)))
        rows["tsec"].append(edge_or("tsec", i, lambda: any_instant(0)))
        rows["t"].append(edge_or("t", i, lambda: clock))
        rows["bin"].append(None if i % 5 == 0 else rng.randbytes(rng.randrange(8)))
    return rows


def vector_batches(dialect: str) -> list[pa.RecordBatch]:
    """Sliced batches (non-zero array offsets) with an empty one among them."""
    data = pa.Table.from_pydict(vector_rows(dialect), schema=VECTOR_SCHEMA)
    parts = data.to_batches(max_chunksize=37)
    return [*parts[:2], parts[0].slice(0, 0), *parts[2:]]


def same_value(got, want, name: str, dialect: str) -> bool:
    if want is None or got is None:
        return got is None and want is None
    if name == "f":  # MariaDB reads -0.0 back as 0.0
        return repr(got) == repr(want) if dialect == "postgresql" else got == want
    if name == "r":
        return struct.pack("<f", got) == struct.pack("<f", want)
    if name in ("tz", "tzms") and got.tzinfo is None:
        got = got.replace(tzinfo=UTC)  # MySQL DATETIME holds UTC
    if name == "t" and isinstance(got, dt.timedelta):
        got = (dt.datetime.min + got).time()
    if name == "b":
        got = bool(got)
    if name == "bin":
        got = bytes(got)
    return got == want


def test_restore_when_rendered_a_column_at_a_time_then_every_value_matches_arrow(target):
    dialect, engine, restore = target
    parts = vector_batches(dialect)
    restore(render_dump(dialect, [(VECTOR_TABLE, VECTOR_SCHEMA, parts)], max_statement_bytes=20_000))

    # Instants in UTC: a local time in a repeated hour compares unequal to any other zone's.
    utc = pa.schema([f.with_type(pa.timestamp(f.type.unit, "UTC")) if getattr(f.type, "tz", None) else f
                     for f in VECTOR_SCHEMA])
    want = pa.Table.from_batches(parts, schema=VECTOR_SCHEMA).cast(utc).to_pylist()
    double = "DOUBLE PRECISION" if dialect == "postgresql" else "DOUBLE"  # MariaDB shows FLOAT rounded
    query = f"SELECT *, CAST(r AS {double}) AS r_exact FROM vectorised ORDER BY id"
    with engine.connect() as conn:
        got = [{**row, "r": row["r_exact"]} for row in conn.execute(sa.text(query)).mappings()]
    assert len(got) == len(want)
    wrong = [
        (row["id"], name)
        for row, expect in zip(got, want)
        for name in VECTOR_SCHEMA.names
        if not same_value(row[name], expect[name], name, dialect)
    ]
    assert wrong == []


@dialects
def test_vector_rendering_when_compared_with_per_value_rendering_then_same_text(dialect):
    """Both paths render the same cells (floats: the same double), and the fast path is taken."""
    plans = sqldump._table_plans(VECTOR_TABLE, VECTOR_SCHEMA, dialect)
    writer = sqldump._TableWriter(io.BytesIO(), VECTOR_TABLE, VECTOR_SCHEMA, plans, dialect)
    taken = set()
    for part in vector_batches(dialect):
        for field, plan, render, vector in zip(VECTOR_SCHEMA, plans, writer.renderers, writer.vectors):
            array = sqldump._column_array(part, field, plan, VECTOR_TABLE.name)
            reference = sqldump._column_cells(array, render, writer.null)
            if vector is None:
                continue
            cells = sqldump._vector_cells(array, vector, writer.null)
            assert cells is not None, f"{field.name} fell back to the per-value path"
            head, text, tail = cells
            fast = [head + v + tail for v in text.to_pylist()]
            if plan.kind == sqldump._FLOAT:  # Arrow and repr spell some doubles differently
                fast, reference = ([c if c == writer.null else repr(float(c)) for c in column]
                                   for column in (fast, reference))
            assert fast == reference, field.name
            taken.add(field.name)
    assert taken == set(VECTOR_SCHEMA.names) - {"bin"}


def insert_statements(dump: bytes) -> list[bytes]:
    return [s.lstrip() + b";\n" for s in dump.split(b";\n") if s.lstrip().startswith(b"INSERT")]


def test_mysql_inserts_when_rows_vary_then_each_statement_is_filled_greedily_across_batches():
    table = Table("t", (Column("id", "INT", INTEGER), Column("s", "TEXT", STRING)))
    schema = pa.schema([("id", pa.int64()), ("s", pa.string())])
    rng = random.Random(7)
    sizes = [rng.choice([0, 1, 5, 40, 90, 400, 700]) for _ in range(300)]  # 700: a row over the bound
    data = batch(schema, {"id": list(range(300)), "s": ["é" * (n // 2) + "'" * (n % 2) for n in sizes]})
    parts = [data.slice(0, 7), data.slice(7, 0), *(data.slice(i, 53) for i in range(7, 300, 53))]
    out = io.BytesIO()
    write_sql_dump(out, [(table, schema, parts)], "mysql", max_statement_bytes=600)

    statements = insert_statements(out.getvalue())
    rows = [s.split(b" VALUES\n", 1)[1][:-2].split(b",\n(") for s in statements]
    assert sum(len(group) for group in rows) == 300
    for statement, group in zip(statements, rows):
        assert len(statement) <= 600 or len(group) == 1
    for statement, following in zip(statements, rows[1:]):
        assert len(statement) + len(following[0]) + 2 > 600, "the next statement's first row would have fit"


def test_mysql_inserts_when_rows_fill_the_bound_exactly_then_statement_is_exactly_the_bound():
    table = Table("t", (Column("id", "INT", INTEGER),))
    schema = pa.schema([("id", pa.int64())])
    prefix = len(b"INSERT INTO `t` (`id`) VALUES\n")
    out = io.BytesIO()
    write_sql_dump(out, [(table, schema, [batch(schema, {"id": list(range(10))})])], "mysql",
                   max_statement_bytes=prefix + 4 * len(b"(0),\n"))
    assert [len(s) for s in insert_statements(out.getvalue())] == [prefix + 20, prefix + 20, prefix + 10]
