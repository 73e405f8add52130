"""Write one table part as zstd Parquet, with encodings chosen from its first batch; read it back.

Dictionary encoding pays for repetitive columns (statuses, names drawn from pools) and costs
time and bytes on mostly distinct ones (emails, ids, timestamps), where the writer builds a
dictionary only to fall back to plain encoding. Min/max statistics are kept for non-text
columns, where readers prune row groups by them; for text they cost a comparison per value
and prune little.

:func:`read_batches` streams a part back row group by row group, for the gate, the SQL
artifact and restores.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

DICTIONARY_SAMPLE = 4096
"""Values of the first batch looked at to decide a column's encoding."""
DICTIONARY_MAX_SHARE = 0.5
"""Largest share of distinct values in that sample for which a dictionary is used."""


def encoding_options(batch: pa.RecordBatch) -> dict[str, Any]:
    """ParquetWriter options for a table whose first batch is ``batch``."""
    dictionary, statistics = [], []
    for field, column in zip(batch.schema, batch.columns):
        sample = column.slice(0, DICTIONARY_SAMPLE)
        if len(sample) and pc.count_distinct(sample).as_py() <= DICTIONARY_MAX_SHARE * len(sample):
            dictionary.append(field.name)
        if not _is_text(field.type):
            statistics.append(field.name)
    return {"use_dictionary": dictionary, "write_statistics": statistics}


_TEXT_TESTS = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)


def _is_text(arrow: pa.DataType) -> bool:
    return any(test(arrow) for test in _TEXT_TESTS)


class PartWriter:
    """Stream record batches into ``sink`` as one Parquet file; opened on the first batch.

    A part with no rows is still written, as a file holding only the schema.
    """

    def __init__(self, sink: BinaryIO, schema: pa.Schema) -> None:
        self.sink = sink
        self.schema = schema
        self._writer: pq.ParquetWriter | None = None

    def write(self, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.sink, self.schema, compression="zstd", **encoding_options(batch))
        self._writer.write_batch(batch)

    def close(self) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.sink, self.schema, compression="zstd")
        self._writer.close()

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_batches(source: str | Path | BinaryIO, batch_size: int) -> Iterator[pa.RecordBatch]:
    """Yield the record batches of one Parquet file, holding one row group's pages at a time.

    pyarrow's ``ParquetFile`` pre-buffers by default: ``iter_batches`` then reads the byte
    ranges of every row group it will return before the first batch, so a reader holds the
    whole file (40 MB for the benchmark's 1,000,000 customers, and more with every row).
    Without it, memory stays at a row group whatever the file's size, at the same speed on
    local files; on S3 the object store's file reads ahead in blocks instead.
    """
    with pq.ParquetFile(source, pre_buffer=False) as reader:
        yield from reader.iter_batches(batch_size=batch_size)
