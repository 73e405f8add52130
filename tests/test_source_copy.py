"""PostgreSQL bulk reads (COPY in CSV): the edge cases of text framing, on a real server."""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys

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


def _engine_with(url: str, ddl: str) -> sa.Engine:
    """An engine on ``url``, after the statements of ``ddl`` have run."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in filter(None, (s.strip() for s in ddl.split(";\n"))):
            conn.exec_driver_sql(statement)
    return engine


@pytest.fixture
def notes_engine(pg_database):
    engine = _engine_with(pg_database, DDL)
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


# --- the row reader: C (_cleanroom_copy) and the pure-Python fallback ----------------------------

MIXED_ROWS = 600

MIXED_DDL = f"""
CREATE TABLE mixed (id integer PRIMARY KEY, body text, note varchar(40), amount numeric(12, 2));
INSERT INTO mixed
SELECT g,
       CASE WHEN g = 2 THEN repeat('ä€ß', 250000)
            WHEN mod(g, 8) = 0 THEN NULL
            WHEN mod(g, 8) = 1 THEN ''
            WHEN mod(g, 8) = 2 THEN 'comma, inside'
            WHEN mod(g, 8) = 3 THEN E'new\\nline and "quotes", too'
            WHEN mod(g, 8) = 4 THEN 'Grüße aus Zürich, 東京 ✓'
            WHEN mod(g, 8) = 5 THEN '"'
            WHEN mod(g, 8) = 6 THEN E'\\r\\n'
            ELSE repeat('x', g) END,
       CASE WHEN mod(g, 3) = 0 THEN NULL ELSE 'n' || g END,
       CASE WHEN mod(g, 5) = 0 THEN NULL ELSE g * 1.25 END
FROM generate_series(1, {MIXED_ROWS}) g
"""

MIXED_COPY = "COPY (SELECT id, body, note, amount FROM mixed ORDER BY id) TO STDOUT WITH (FORMAT csv)"


@pytest.fixture
def mixed_engine(pg_database):
    """NULLs, empty strings, quotes, commas, line breaks, non-ASCII text, and one row of 1.75 MB.

    Row 2 is the large one, early in the heap: the server has flushed data before a later row
    fails, and a reader stopped after the first row leaves most of the COPY unread.
    """
    engine = _engine_with(pg_database, MIXED_DDL)
    yield engine
    engine.dispose()


@pytest.fixture(params=["c", "python"])
def reader(request, monkeypatch):
    """Which row reader ``_copy_out`` uses: the C extension, or the pure-Python fallback."""
    if request.param == "python":
        monkeypatch.setattr(source, "_libpq_copy_functions", lambda: None)
    return request.param


def _mixed_batches(engine, batch_rows: int) -> list[pa.RecordBatch]:
    table = source.reflect(engine).tables["mixed"]
    columns = [c.name for c in table.columns]
    with source.read_only(engine) as conn:
        return list(source.stream_batches(conn, table, columns, batch_rows=batch_rows))


def _connect(engine) -> psycopg.Connection:
    return psycopg.connect(engine.url.set(drivername="postgresql").render_as_string(hide_password=False))


def _chunks(engine, statement: str, batch_rows: int) -> list[bytes]:
    """The chunks ``_copy_out`` yields, read in a transaction of a connection of its own."""
    with _connect(engine) as conn, conn.transaction():
        return [bytes(chunk) for chunk in source._copy_out(conn, statement, batch_rows)]


def test_copy_when_read_in_c_or_in_python_then_chunks_and_batches_are_identical(mixed_engine, monkeypatch):
    with _connect(mixed_engine) as conn:
        rows = conn.execute("SELECT id, body, note, amount FROM mixed ORDER BY id").fetchall()
    expected = [dict(zip(("id", "body", "note", "amount"), row)) for row in rows]

    for batch_rows in (1, 7, MIXED_ROWS, 1000):
        chunks = _chunks(mixed_engine, MIXED_COPY, batch_rows)
        batches = _mixed_batches(mixed_engine, batch_rows)
        with monkeypatch.context() as m:
            m.setattr(source, "_libpq_copy_functions", lambda: None)
            python_chunks = _chunks(mixed_engine, MIXED_COPY, batch_rows)
            python_batches = _mixed_batches(mixed_engine, batch_rows)

        assert chunks == python_chunks, batch_rows
        assert len(batches) == len(python_batches)
        assert all(map(pa.RecordBatch.equals, batches, python_batches))
        assert pa.Table.from_batches(batches).to_pylist() == expected
    assert max(map(len, chunks)) > 1 << 20  # the 1.75 MB row went through


def test_copy_when_batch_rows_given_then_every_batch_but_the_last_holds_exactly_that_many(
    mixed_engine, reader
):
    for batch_rows in (1, 7, MIXED_ROWS - 1, MIXED_ROWS, MIXED_ROWS + 1):
        sizes = [b.num_rows for b in _mixed_batches(mixed_engine, batch_rows)]
        chunks = _chunks(mixed_engine, "COPY (SELECT id FROM mixed) TO STDOUT", batch_rows)

        assert sizes[:-1] == [batch_rows] * (len(sizes) - 1) and 0 < sizes[-1] <= batch_rows, batch_rows
        assert sum(sizes) == MIXED_ROWS
        assert [c.count(b"\n") for c in chunks] == sizes


def test_copy_when_caller_closes_the_stream_after_the_first_batch_then_its_transaction_stays_usable(
    mixed_engine, reader
):
    table = source.reflect(mixed_engine).tables["mixed"]
    columns = [c.name for c in table.columns]

    with source.read_only(mixed_engine) as conn:
        batches = source.stream_batches(conn, table, columns, batch_rows=1)
        first = next(batches)
        batches.close()  # the 1.75 MB row and the rest of the COPY are still in flight
        status = conn.connection.driver_connection.info.transaction_status
        read_only = conn.exec_driver_sql("SHOW transaction_read_only").scalar_one()
        again = list(source.stream_batches(conn, table, columns, batch_rows=1000))

    assert first.num_rows == 1
    assert status == psycopg.pq.TransactionStatus.INTRANS and read_only == "on"
    assert sum(b.num_rows for b in again) == MIXED_ROWS


def test_copy_when_the_server_fails_after_some_rows_then_psycopg_error_class_is_raised(mixed_engine, reader):
    # No ORDER BY: rows stream in heap order, so 399 rows (one of 1.75 MB) precede the failing one.
    failing = "COPY (SELECT id, body FROM mixed WHERE 1 / (id - 400) IS NOT NULL) TO STDOUT WITH (FORMAT csv)"
    received = []

    with _connect(mixed_engine) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero), conn.transaction():
            received.extend(source._copy_out(conn, failing, 1))
        assert conn.execute("SELECT count(*) FROM mixed").fetchone()[0] == MIXED_ROWS

    assert len(received) == 399


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="psycopg's libpq is found on Linux only")
def test_copy_when_psycopg_libpq_is_identified_then_rows_are_read_in_c(mixed_engine, monkeypatch):
    import _cleanroom_copy

    source._libpq_copy_functions.cache_clear()
    functions = source._libpq_copy_functions()
    assert functions is not None, f"no libpq found for psycopg's {psycopg.pq.__impl__!r} implementation"
    files = {_mapped_file(address) for address in functions}
    assert len(files) == 1 and os.path.basename(files.pop()).startswith("libpq")
    calls, read_rows = [], _cleanroom_copy.read_rows
    monkeypatch.setattr(_cleanroom_copy, "read_rows", lambda *args: calls.append(args) or read_rows(*args))

    chunks = _chunks(mixed_engine, MIXED_COPY, 100)

    assert len(chunks) == 6 and calls
    assert all(args[1:3] == functions for args in calls)


def _mapped_file(address: int) -> str:
    """The file whose mapping in this process holds ``address`` ("" for none)."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if start <= address < end:
                return fields[-1].rstrip("\n") if len(fields) == 6 else ""
    return ""


def test_read_rows_when_max_rows_or_a_libpq_status_is_reached_then_it_stops_there_and_frees_every_row():
    import ctypes

    import _cleanroom_copy

    held, script = {}, [b"1,a\n", b'2,"b\n"\n', b"3,\n", 0, b"4,\xc3\xa4\n", -2]

    @ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_int)
    def get_copy_data(conn, buffer, async_):  # stands in for PQgetCopyData
        step = script.pop(0)
        if isinstance(step, int):
            return step
        row = ctypes.create_string_buffer(step, len(step))
        held[ctypes.addressof(row)] = row
        buffer[0] = ctypes.addressof(row)
        return len(step)

    @ctypes.CFUNCTYPE(None, ctypes.c_void_p)
    def freemem(pointer):
        del held[pointer]

    into = bytearray(b"kept:")
    addresses = [ctypes.cast(function, ctypes.c_void_p).value for function in (get_copy_data, freemem)]
    steps = [_cleanroom_copy.read_rows(1, *addresses, into, max_rows) for max_rows in (2, 5, 5)]

    assert steps == [(2, 1), (1, 0), (1, -2)]
    assert into == b'kept:1,a\n2,"b\n"\n3,\n4,\xc3\xa4\n'
    assert not held and not script
