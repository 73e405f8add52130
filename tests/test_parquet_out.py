"""The Parquet part writer (encodings chosen from the first batch, every value kept) and reader."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from cleanroom.parquet_out import DICTIONARY_SAMPLE, PartWriter, encoding_options, read_batches


def _batch(rows: int, start: int = 0) -> pa.RecordBatch:
    ids = list(range(start, start + rows))
    return pa.RecordBatch.from_pydict({
        "id": pa.array(ids, pa.int64()),
        "email": pa.array([f"user{i}@example.com" for i in ids]),
        "status": pa.array([("new", "paid", None)[i % 3] for i in ids]),
        "score": pa.array([i % 7 for i in ids], pa.int32()),
    })


def test_repetitive_columns_get_a_dictionary_and_distinct_ones_do_not():
    options = encoding_options(_batch(DICTIONARY_SAMPLE * 2))
    assert options["use_dictionary"] == ["status", "score"]


def test_statistics_are_written_for_non_text_columns_only():
    sink = io.BytesIO()
    with PartWriter(sink, _batch(1).schema) as writer:
        writer.write(_batch(5000))
    row_group = pq.ParquetFile(io.BytesIO(sink.getvalue())).metadata.row_group(0)
    with_statistics = {row_group.column(i).path_in_schema for i in range(4) if row_group.column(i).is_stats_set}
    assert with_statistics == {"id", "score"}


def test_every_batch_is_written_whole_and_in_order():
    batches = [_batch(3000, start) for start in (0, 3000, 6000)]
    sink = io.BytesIO()
    with PartWriter(sink, batches[0].schema) as writer:
        for batch in batches:
            writer.write(batch)
    assert pq.read_table(io.BytesIO(sink.getvalue())) == pa.Table.from_batches(batches)


def test_a_part_with_no_rows_is_a_file_with_the_schema():
    schema = _batch(1).schema
    sink = io.BytesIO()
    with PartWriter(sink, schema):
        pass
    table = pq.read_table(io.BytesIO(sink.getvalue()))
    assert table.num_rows == 0 and table.schema == schema


def test_read_batches_reads_one_row_group_at_a_time_not_the_whole_file(tmp_path):
    """The gate, the SQL artifact and restores read parts of any size in the same memory."""
    import os

    class CountingFile(io.FileIO):
        def __init__(self, path):
            super().__init__(path, "rb")
            self.bytes_read = 0

        def read(self, size=-1):
            data = super().read(size)
            self.bytes_read += len(data)
            return data

        def readinto(self, buffer):
            count = super().readinto(buffer)
            self.bytes_read += count
            return count

    path = tmp_path / "part.parquet"
    rows_per_group, groups = 20_000, 24
    # Random text does not compress: each row group is about 2 MB of a ~48 MB file.
    texts = pa.array([os.urandom(48).hex() for _ in range(rows_per_group)])
    batch = pa.RecordBatch.from_arrays([texts], names=["note"])
    with pq.ParquetWriter(path, batch.schema, compression="none") as writer:
        for _ in range(groups):
            writer.write_batch(batch, row_group_size=rows_per_group)
    size = path.stat().st_size

    def read_before_first_batch(open_batches) -> tuple[int, int]:
        with CountingFile(path) as fh:
            batches = open_batches(fh)
            rows = next(batches).num_rows
            before = fh.bytes_read
            rows += sum(each.num_rows for each in batches)
        return before, rows

    streamed, rows = read_before_first_batch(lambda fh: read_batches(fh, rows_per_group))
    assert rows == rows_per_group * groups
    assert streamed < 2 * size / groups, (streamed, size)  # about one row group
    # pyarrow's default (pre-buffering) reads most of the file first: why read_batches exists.
    buffered, _ = read_before_first_batch(lambda fh: pq.ParquetFile(fh).iter_batches(batch_size=rows_per_group))
    assert buffered > size / 2, (buffered, size)
