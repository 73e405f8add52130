"""The Parquet part writer: encodings chosen from the first batch, every value kept."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from cleanroom.parquet_out import DICTIONARY_SAMPLE, PartWriter, encoding_options


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
