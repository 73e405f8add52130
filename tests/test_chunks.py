"""Large tables split into key-range chunks, as mapped tasks (PostgreSQL, per_table mode)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from tests.refresh_helpers import database_source, latest, run_refresh

pytestmark = [pytest.mark.airflow, pytest.mark.postgres]

SCHEMA = """
CREATE TABLE events (id BIGINT PRIMARY KEY, email TEXT NOT NULL, kind TEXT NOT NULL);
INSERT INTO events SELECT g * 3, 'e' || g || '@corp.test', 'k' || mod(g, 5) FROM generate_series(1, 12000) g;
CREATE TABLE small (id INTEGER PRIMARY KEY, label TEXT);
INSERT INTO small VALUES (1, 'one');
ANALYZE;
"""
POLICY = """
tables:
  events: {columns: {id: keep, email: {fake: email}, kind: keep}}
  small: {columns: {id: keep, label: keep}}
"""


def test_table_above_chunk_rows_is_read_in_ordered_parts_by_mapped_tasks(tmp_path, pg_database):
    source = database_source(tmp_path, pg_database, "chunky", SCHEMA, POLICY,
                             consistency="per_table", chunk_rows=5000, batch_rows=1000)
    bucket = tmp_path / "bucket"
    state, dag_run = run_refresh(tmp_path, [source], "chunky")
    assert state == "success"
    mapped = [ti for ti in dag_run.get_task_instances() if ti.task_id == "extract_mask"]
    assert len(mapped) == 4, "three chunks of events plus the small table"

    folder = bucket / "chunky" / latest(bucket, "chunky")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["consistency"] == "per-chunk,per-table"
    parts = manifest["tables"]["events"]["files"]
    assert parts == [f"tables/events/part-{i:05d}.parquet" for i in range(3)]
    ids = [i for p in parts for i in pq.read_table(folder / p).column("id").to_pylist()]
    assert ids == [g * 3 for g in range(1, 12001)], "parts hold every row once, in key order"
    assert manifest["tables"]["events"]["rows"] == 12000
