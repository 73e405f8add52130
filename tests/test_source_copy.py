"""PostgreSQL bulk reads (COPY in CSV): the edge cases of text framing, on a real server."""

from __future__ import annotations

import datetime as dt
import logging

import psycopg
import pyarrow as pa
import pytest
import sqlalchemy as sa

from cleanroom import source

UTC = dt.timezone.utc

DDL = """
CREATE TABLE notes (
    id integer PRIMARY KEY, body text, raw bytea, at timestamptz, day date, flag boolean, t time
);
INSERT INTO notes VALUES
    (1, '', '\\x', '2024-01-02 03:04:05+02', '2024-02-29', true, '00:00:00'),
    (2, NULL, NULL, NULL, NULL, NULL, NULL),
    (3, E'two\\nlines, "quoted"', '\\x00ff', '1999-12-31 23:59:59.5+00', '0001-01-01', false, '12:30:00.25'),
    (4, E'\\\\N', '\\x0a0d', '2024-06-01 00:00:00-07', '9999-12-31', NULL, '23:59:59.999999'),
    (5, E'carriage\\r\\nreturn', '\\x22', '2024-01-01 00:00:00+00', '2024-01-01', true, NULL)
"""

EXPECTED = [
    {"id": 1, "body": "", "raw": b"", "at": dt.datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC), "day": dt.date(2024, 2, 29),
     "flag": True, "t": dt.time(0, 0)},
    {"id": 2, "body": None, "raw": None, "at": None, "day": None, "flag": None, "t": None},
    {"id": 3, "body": 'two\nlines, "quoted"', "raw": b"\x00\xff", "at": dt.datetime(1999, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),
     "day": dt.date(1, 1, 1), "flag": False, "t": dt.time(12, 30, 0, 250000)},
    {"id": 4, "body": "\\N", "raw": b"\n\r", "at": dt.datetime(2024, 6, 1, 7, tzinfo=UTC), "day": dt.date(9999, 12, 31),
     "flag": None, "t": dt.time(23, 59, 59, 999999)},
    {"id": 5, "body": "carriage\r\nreturn", "raw": b'"', "at": dt.datetime(2024, 1, 1, tzinfo=UTC),
     "day": dt.date(2024, 1, 1), "flag": True, "t": None},
]


@pytest.fixture
def notes_engine(pg_database):
    engine = sa.create_engine(pg_database)
    with engine.begin() as conn:
        for statement in filter(None, (s.strip() for s in DDL.split(";\n"))):
            conn.exec_driver_sql(statement)
    yield engine
    engine.dispose()


def _read(engine, batch_rows: int, where: str | None = None, session_sql: tuple[str, ...] = ()):
    table = source.reflect(engine).tables["notes"]
    columns = [c.name for c in table.columns]
    with source.read_only(engine) as conn:
        for statement in session_sql:
            conn.exec_driver_sql(statement)
        batches = list(source.stream_batches(conn, table, columns, batch_rows=batch_rows, where=where))
        datestyle = conn.exec_driver_sql("SELECT current_setting('DateStyle')").scalar_one()
    return table, columns, batches, datestyle


@pytest.mark.parametrize("batch_rows", [1, 2, 5, 1000], ids=["one", "two", "exact", "large"])
def test_copy_when_values_hold_newlines_quotes_and_empty_strings_then_rows_come_back_exactly(notes_engine, batch_rows):
    table, columns, batches, _ = _read(notes_engine, batch_rows)

    assert all(b.schema == source.arrow_schema(table, columns) for b in batches)
    assert [b.num_rows for b in batches][:-1] == [batch_rows] * (len(batches) - 1)
    assert pa.Table.from_batches(batches).to_pylist() == EXPECTED


def test_copy_when_session_zone_and_datestyle_differ_then_values_are_unchanged_and_datestyle_restored(notes_engine):
    settings = ("SET LOCAL TIME ZONE 'Asia/Tokyo'", "SET LOCAL DateStyle = 'SQL, DMY'")

    _, _, batches, datestyle = _read(notes_engine, 1000, session_sql=settings)

    assert pa.Table.from_batches(batches).to_pylist() == EXPECTED
    assert datestyle == "SQL, DMY"


def test_copy_when_where_given_then_only_matching_rows_in_key_order(notes_engine):
    _, _, batches, _ = _read(notes_engine, 1000, where="id >= 3 OR body IS NULL")

    assert [r["id"] for r in pa.Table.from_batches(batches).to_pylist()] == [2, 3, 4, 5]


def test_copy_when_a_column_type_has_no_bulk_reader_then_row_cursor_reads_it(pg_database, caplog):
    engine = sa.create_engine(pg_database)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE notes (id int PRIMARY KEY, t timetz)")
        conn.exec_driver_sql("INSERT INTO notes VALUES (1, NULL)")
    table = source.reflect(engine).tables["notes"]

    with caplog.at_level(logging.INFO, logger="cleanroom.source"), source.read_only(engine) as conn:
        rows = pa.Table.from_batches(list(source.stream_batches(conn, table, ["id", "t"], batch_rows=10))).to_pylist()
    engine.dispose()

    assert rows == [{"id": 1, "t": None}]
    assert "row cursor instead of COPY" in caplog.text


def test_copy_when_caller_stops_after_one_batch_then_the_transaction_stays_usable(notes_engine):
    table = source.reflect(notes_engine).tables["notes"]
    columns = [c.name for c in table.columns]

    with source.read_only(notes_engine) as conn:
        batches = source.stream_batches(conn, table, columns, batch_rows=2)
        first = next(batches)
        batches.close()
        again = list(source.stream_batches(conn, table, columns, batch_rows=1000))

    assert first.num_rows == 2
    assert pa.Table.from_batches(again).to_pylist() == EXPECTED


def test_copy_when_a_value_has_no_arrow_form_then_source_error_names_the_column(pg_database):
    engine = sa.create_engine(pg_database)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE notes (id int PRIMARY KEY, t time)")
        conn.exec_driver_sql("INSERT INTO notes VALUES (1, '24:00:00')")
    table = source.reflect(engine).tables["notes"]

    with pytest.raises(source.SourceError, match=r"notes\.t: .*TIME"), source.read_only(engine) as conn:
        list(source.stream_batches(conn, table, ["id", "t"], batch_rows=10))
    engine.dispose()


def test_copy_when_the_server_fails_mid_stream_then_source_error_and_the_transaction_stays_usable(notes_engine):
    table = source.reflect(notes_engine).tables["notes"]
    columns = [c.name for c in table.columns]

    with source.read_only(notes_engine) as conn:
        with pytest.raises(source.SourceError, match=r"notes: the server could not render a row"):
            # Division by zero on the fourth row, after three rows have streamed.
            list(source.stream_batches(conn, table, columns, batch_rows=1, where="1 / (id - 4) IS NOT NULL"))
        again = list(source.stream_batches(conn, table, columns, batch_rows=1000))

    assert pa.Table.from_batches(again).to_pylist() == EXPECTED


def test_copy_when_the_statement_is_refused_then_the_error_names_no_value_and_the_transaction_stays_usable(notes_engine):
    table = source.reflect(notes_engine).tables["notes"]
    columns = [c.name for c in table.columns]

    with source.read_only(notes_engine) as conn:
        with pytest.raises(psycopg.errors.UndefinedColumn, match="no_such_column"):
            list(source.stream_batches(conn, table, columns, batch_rows=10, where="no_such_column = 1"))
        again = list(source.stream_batches(conn, table, columns, batch_rows=1000))

    assert pa.Table.from_batches(again).to_pylist() == EXPECTED
