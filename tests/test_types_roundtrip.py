"""Column types survive source -> Arrow -> Parquet with their values, on PostgreSQL and MariaDB.

Each case creates one table in a fresh database, reads it with ``source.reflect`` and
``source.stream_batches`` inside ``source.read_only``, writes the batches to Parquet and reads
them back. Values must equal the source's exactly, except for these normalised forms:

- ``timestamptz`` (PostgreSQL): the same instant, as ``timestamp[us, tz=UTC]``.
- ``json``/``jsonb`` (PostgreSQL): text that parses to the same JSON value; keys come out
  sorted and re-spaced, so byte-for-byte text and duplicate keys of ``json`` are not kept.
- arrays, ``inet``, ``interval`` (PostgreSQL) and ``YEAR`` (MariaDB): the server's own text
  form (``{1,2,3}``, ``192.168.0.1/24``, ``1 day 02:03:04``), which casts back to the type.
- ``uuid`` (PostgreSQL): its canonical text.
- ``CHAR(n)``: as the server returns it, padded on PostgreSQL, trimmed on MariaDB.
- MariaDB ``JSON`` is ``LONGTEXT`` with a check: read as a string, exactly as stored.
- MariaDB ``SET``: the stored text (``a,c``); ``BIT(n)``: its integer value;
  ``BIGINT UNSIGNED``: ``uint64``; ``TIMESTAMP``: naive, in the session time zone.

A value that cannot be represented (PostgreSQL ``infinity``, ``NaN`` in a bounded numeric,
MariaDB's zero date) must stop the read with a ``SourceError`` that names table and column.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from cleanroom import source
from masking.errors import SourceError

UTC = dt.timezone.utc


class ParsesAs:
    """Equal to any JSON text that parses to ``value``."""

    def __init__(self, value) -> None:
        self.value = value

    def __eq__(self, other) -> bool:
        return isinstance(other, str) and json.loads(other) == self.value

    def __repr__(self) -> str:
        return f"ParsesAs({self.value!r})"


PG_DDL = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE typed (
    id integer PRIMARY KEY, big bigint, small smallint, amount numeric(12,4), r real,
    d double precision, flag boolean, vc varchar(20), ch char(4), tx text, day date,
    ts timestamp, tstz timestamptz, t time, j json, jb jsonb, u uuid, bin bytea, m mood,
    arr integer[], tags text[], ip inet, iv interval
);
INSERT INTO typed VALUES (1, 9007199254740993, -32768, 12345678.1234, 1.5, 0.1, true, 'héllo ✓', 'ab',
    'line one\nline two', '2024-02-29', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.123456+02',
    '23:59:59.999999', '{"b": 1, "a": [1, 2]}', '{"b": 1, "a": [1, 2]}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    '\\x00ff10', 'happy', '{1,2,3}', '{"a","b c"}', '192.168.0.1/24', '1 day 02:03:04');
INSERT INTO typed (id) VALUES (2)
"""

PG_EXPECTED = {
    "id": ("int64", 1),
    "big": ("int64", 9007199254740993),
    "small": ("int64", -32768),
    "amount": ("decimal128(12, 4)", Decimal("12345678.1234")),
    "r": ("double", 1.5),
    "d": ("double", 0.1),
    "flag": ("bool", True),
    "vc": ("string", "héllo ✓"),
    "ch": ("string", "ab  "),
    "tx": ("string", "line one\nline two"),
    "day": ("date32[day]", dt.date(2024, 2, 29)),
    "ts": ("timestamp[us]", dt.datetime(2024, 1, 2, 3, 4, 5, 123456)),
    "tstz": ("timestamp[us, tz=UTC]", dt.datetime(2024, 1, 2, 1, 4, 5, 123456, tzinfo=UTC)),
    "t": ("time64[us]", dt.time(23, 59, 59, 999999)),
    "j": ("string", ParsesAs({"a": [1, 2], "b": 1})),
    "jb": ("string", ParsesAs({"a": [1, 2], "b": 1})),
    "u": ("string", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    "bin": ("binary", b"\x00\xff\x10"),
    "m": ("string", "happy"),
    "arr": ("string", "{1,2,3}"),
    "tags": ("string", '{a,"b c"}'),
    "ip": ("string", "192.168.0.1/24"),
    "iv": ("string", "1 day 02:03:04"),
}

MARIADB_DDL = """
CREATE TABLE typed (
    id int PRIMARY KEY, big bigint, small smallint, tiny tinyint, ubig bigint unsigned,
    amount decimal(12,4), r float, d double, flag tinyint(1), b1 bit(1), b12 bit(12),
    vc varchar(20), ch char(4), tx text, mtx mediumtext, day date, dtm datetime(6),
    ts timestamp(6) NULL, t time(6), yr year, j json, bin blob, vb varbinary(8),
    m enum('sad','ok','happy'), st set('a','b','c')
) CHARACTER SET utf8mb4;
INSERT INTO typed VALUES (1, 9007199254740993, -32768, -128, 18446744073709551615, 12345678.1234, 1.5,
    0.123456789012345678, 1, b'1', b'101010101010', 'héllo ✓', 'ab', 'line one\\nline two', 'mt', '2024-02-29',
    '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.123456', '23:59:59.999999', 2024,
    '{"b": 1, "a": [1, 2]}', x'00ff10', x'0102', 'happy', 'c,a');
INSERT INTO typed (id) VALUES (2)
"""

MARIADB_EXPECTED = {
    "id": ("int64", 1),
    "big": ("int64", 9007199254740993),
    "small": ("int64", -32768),
    "tiny": ("int64", -128),
    "ubig": ("uint64", 18446744073709551615),
    "amount": ("decimal128(12, 4)", Decimal("12345678.1234")),
    "r": ("double", 1.5),
    "d": ("double", 0.123456789012345678),
    "flag": ("bool", True),
    "b1": ("int64", 1),
    "b12": ("int64", 0b101010101010),
    "vc": ("string", "héllo ✓"),
    "ch": ("string", "ab"),
    "tx": ("string", "line one\nline two"),
    "mtx": ("string", "mt"),
    "day": ("date32[day]", dt.date(2024, 2, 29)),
    "dtm": ("timestamp[us]", dt.datetime(2024, 1, 2, 3, 4, 5, 123456)),
    "ts": ("timestamp[us]", dt.datetime(2024, 1, 2, 3, 4, 5, 123456)),
    "t": ("time64[us]", dt.time(23, 59, 59, 999999)),
    "yr": ("string", "2024"),
    "j": ("string", '{"b": 1, "a": [1, 2]}'),
    "bin": ("binary", b"\x00\xff\x10"),
    "vb": ("binary", b"\x01\x02"),
    "m": ("string", "happy"),
    "st": ("string", "a,c"),
}


def _run(url: str, script: str, statements_prefix: tuple[str, ...] = ()) -> sa.Engine:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in (*statements_prefix, *filter(None, (s.strip() for s in script.split(";\n")))):
            conn.exec_driver_sql(statement)
    return engine


def _round_trip(engine: sa.Engine, tmp_path) -> tuple[dict[str, str], list[dict]]:
    """Reflect, stream and write ``typed`` to Parquet; return its Arrow types and rows."""
    return _round_trip_table(engine, "typed", tmp_path)


def _round_trip_table(engine: sa.Engine, name: str, tmp_path) -> tuple[dict[str, str], list[dict]]:
    table = source.reflect(engine).tables[name]
    columns = [c.name for c in table.columns]
    path = tmp_path / f"{name}.parquet"
    with source.read_only(engine) as conn:
        batches = list(source.stream_batches(conn, table, columns, batch_rows=1))
    writer = pq.ParquetWriter(path, source.arrow_schema(table, columns))
    for batch in batches:
        writer.write_batch(batch)
    writer.close()
    back = pq.read_table(path)
    return {f.name: str(f.type) for f in back.schema}, back.to_pylist()


@pytest.fixture(params=["postgresql", "mariadb"])
def backend(request) -> tuple[str, str, str, dict]:
    if request.param == "postgresql":
        return request.param, request.getfixturevalue("pg_database"), PG_DDL, PG_EXPECTED
    return request.param, request.getfixturevalue("mariadb_database"), MARIADB_DDL, MARIADB_EXPECTED


def test_common_types_round_trip_through_parquet_with_their_values(backend, tmp_path):
    _, url, ddl, expected = backend
    engine = _run(url, ddl)

    types, rows = _round_trip(engine, tmp_path)
    engine.dispose()

    assert types == {name: arrow for name, (arrow, _) in expected.items()}
    assert rows[0] == {name: value for name, (_, value) in expected.items()}
    assert rows[1] == {name: (2 if name == "id" else None) for name in expected}, "NULL must stay NULL"


@pytest.mark.parametrize(
    ("dialect", "ddl", "match"),
    [
        pytest.param("postgresql", "CREATE TABLE typed (id int PRIMARY KEY, ts timestamp);\n"
                     "INSERT INTO typed VALUES (1, 'infinity')", r"typed\.ts", id="pg-infinity-timestamp"),
        pytest.param("postgresql", "CREATE TABLE typed (id int PRIMARY KEY, day date);\n"
                     "INSERT INTO typed VALUES (1, '-infinity')", r"typed\.day", id="pg-minus-infinity-date"),
        pytest.param("postgresql", "CREATE TABLE typed (id int PRIMARY KEY, amount numeric(12,4));\n"
                     "INSERT INTO typed VALUES (1, 'NaN')", r"typed\.amount.*NUMERIC\(12, 4\)", id="pg-nan-numeric"),
        pytest.param("mariadb", "CREATE TABLE typed (id int PRIMARY KEY, day date);\n"
                     "INSERT INTO typed VALUES (1, '0000-00-00')", r"typed\.day.*DATE", id="mariadb-zero-date"),
    ],
)
def test_value_without_arrow_form_raises_source_error_naming_table_and_column(dialect, ddl, match, request, tmp_path):
    url = request.getfixturevalue("pg_database" if dialect == "postgresql" else "mariadb_database")
    prefix = ("SET SESSION sql_mode = ''",) if dialect == "mariadb" else ()
    engine = _run(url, ddl, prefix)

    with pytest.raises(SourceError, match=match):
        _round_trip(engine, tmp_path)
    engine.dispose()


# --- the bulk text paths: CSV quoting, NULL against empty text, character sets ---------------

AWKWARD_TEXT = ['plain', '', 'a,b', 'say "hi"', 'two\nlines', 'crlf\r\nend', '""', ',', 'é ✓ 日本', '\\N', None]


@pytest.mark.parametrize("db", ["pg_database", "mariadb_database"])
def test_text_with_quotes_commas_line_breaks_and_empty_strings_survives_the_bulk_path(db, request, tmp_path):
    url = request.getfixturevalue(db)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE awkward (id int PRIMARY KEY, txt text)")
        conn.execute(sa.text("INSERT INTO awkward VALUES (:id, :txt)"),
                     [{"id": i, "txt": t} for i, t in enumerate(AWKWARD_TEXT)])

    _, rows = _round_trip_table(engine, "awkward", tmp_path)
    engine.dispose()

    assert [r["txt"] for r in rows] == AWKWARD_TEXT


@pytest.mark.parametrize("db", ["pg_database", "mariadb_database"])
def test_a_row_whose_only_column_is_null_is_still_a_row(db, request, tmp_path):
    url = request.getfixturevalue(db)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE lonely (note text)")
        conn.execute(sa.text("INSERT INTO lonely VALUES (:n)"), [{"n": None}, {"n": "x"}, {"n": None}, {"n": ""}])

    _, rows = _round_trip_table(engine, "lonely", tmp_path)
    engine.dispose()

    assert sorted(rows, key=lambda r: (r["note"] is not None, r["note"] or "")) == [
        {"note": None}, {"note": None}, {"note": ""}, {"note": "x"}
    ]


def test_mariadb_columns_of_different_character_sets_are_read_on_one_line(mariadb_database, tmp_path):
    engine = sa.create_engine(mariadb_database)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE mixed (id int PRIMARY KEY, western varchar(20) CHARACTER SET latin1, "
            "wide varchar(20) CHARACTER SET utf8mb4, ascii_only varchar(20) CHARACTER SET ascii, "
            "status enum('née','ok') CHARACTER SET latin1)"
        )
        conn.exec_driver_sql("INSERT INTO mixed VALUES (1, 'Zoë, \"x\"', '日本 ✓', 'plain', 'née')")

    _, rows = _round_trip_table(engine, "mixed", tmp_path)
    engine.dispose()

    assert rows == [{"id": 1, "western": 'Zoë, "x"', "wide": "日本 ✓", "ascii_only": "plain", "status": "née"}]


def test_mariadb_stream_closed_early_leaves_the_transaction_usable(mariadb_database):
    engine = sa.create_engine(mariadb_database)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE many (id int PRIMARY KEY, txt text)")
        conn.execute(sa.text("INSERT INTO many VALUES (:id, 'row')"), [{"id": i} for i in range(1, 2001)])
    table = source.reflect(engine).tables["many"]

    with source.read_only(engine) as conn:
        stream = source.stream_batches(conn, table, ["id", "txt"], batch_rows=100)
        first = next(stream)
        stream.close()
        count = source.count_rows(conn, table)
    engine.dispose()

    assert first.num_rows == 100 and first.column("id").to_pylist()[:2] == [1, 2]
    assert count == 2000
