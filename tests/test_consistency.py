"""Point-in-time snapshots while a writer changes the source (PostgreSQL)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from tests.refresh_helpers import WRITER_POLICY as POLICY
from tests.refresh_helpers import database_source, latest, refresh_while_writing, run_refresh

pytestmark = [pytest.mark.airflow, pytest.mark.postgres]

SCHEMA = """
CREATE TABLE customers (id SERIAL PRIMARY KEY, email VARCHAR(120) NOT NULL UNIQUE, tier TEXT NOT NULL);
CREATE TABLE orders (id SERIAL PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), total INTEGER NOT NULL);
INSERT INTO customers (email, tier) SELECT 'c' || g || '@corp.test', 'basic' FROM generate_series(1, 20000) g;
INSERT INTO orders (customer_id, total) SELECT g, 10 FROM generate_series(1, 20000) g;
"""


@pytest.mark.parametrize("workers", [pytest.param(2, id="parallel-readers-share-an-exported-snapshot")])
def test_snapshot_refresh_under_concurrent_writes_is_one_moment(tmp_path, pg_database, workers):
    source = database_source(tmp_path, pg_database, "live", SCHEMA, POLICY,
                             consistency="snapshot", workers=workers, batch_rows=500)
    bucket = tmp_path / "bucket"

    state, _ = refresh_while_writing(tmp_path, pg_database, source)
    assert state == "success"  # the gate's foreign-key check passed: every order's customer is there

    manifest = json.loads((bucket / "live" / latest(bucket, "live") / "manifest.json").read_text())
    assert manifest["consistency"] == "exported-snapshot"
    customers = manifest["tables"]["customers"]["rows"]
    orders = manifest["tables"]["orders"]["rows"]
    assert customers == orders, "customers and orders were read at different moments"
    assert customers > 20000, "the snapshot should include the writer's early commits"


def _holders(url: str) -> int:
    """Snapshot holder sessions still connected to the server."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        count = conn.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'cleanroom-snapshot-holder:%'"
            " AND datname = current_database()"
        )).scalar_one()
    engine.dispose()
    return count


def test_mapped_tasks_sharing_an_exported_snapshot_read_one_moment_under_concurrent_writes(tmp_path, pg_database):
    # ANALYZE gives the planner's row estimates, which split each table into key-range chunks.
    source = database_source(tmp_path, pg_database, "shared", SCHEMA + "ANALYZE;", POLICY,
                             consistency="shared_snapshot", batch_rows=500, chunk_rows=5000)
    bucket = tmp_path / "bucket"

    state, dag_run = refresh_while_writing(tmp_path, pg_database, source)
    assert state == "success"

    extract_tasks = [ti for ti in dag_run.get_task_instances() if ti.task_id == "extract_mask"]
    assert len(extract_tasks) >= 6, "tables were not split into chunks read by several mapped tasks"
    manifest = json.loads((bucket / "shared" / latest(bucket, "shared") / "manifest.json").read_text())
    assert manifest["consistency"] == "exported-snapshot"
    customers, orders = manifest["tables"]["customers"]["rows"], manifest["tables"]["orders"]["rows"]
    assert customers == orders, "mapped tasks read customers and orders at different moments"
    assert customers > 20000, "the snapshot should include the writer's early commits"
    assert _holders(pg_database) == 0, "validation must release the snapshot holder"


def test_failed_run_releases_the_holder_and_a_released_snapshot_cannot_be_adopted(tmp_path, pg_database):
    from cleanroom.consistency import SnapshotGone, adopted, hold_snapshot, release_snapshot

    leaky = POLICY.replace("email: {fake: email}", "email: keep")
    source = database_source(tmp_path, pg_database, "leaky", SCHEMA, leaky, consistency="shared_snapshot")
    state, _ = run_refresh(tmp_path, [source], "leaky")
    assert state == "failed"
    assert _holders(pg_database) == 0, "a failed run must not leave its snapshot holder behind"

    holder = hold_snapshot(pg_database, "unit", hold_seconds=600)
    engine = sa.create_engine(pg_database)
    try:
        with adopted(engine, holder["snapshot"]) as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM customers").scalar_one() == 20000
        assert release_snapshot(engine, holder) is True
        with pytest.raises(SnapshotGone, match="start a new run"), adopted(engine, holder["snapshot"]):
            pass
        assert release_snapshot(engine, holder) is False
    finally:
        engine.dispose()


def test_holder_that_cannot_reach_the_source_is_a_source_error_naming_the_cause():
    from cleanroom.consistency import hold_snapshot
    from masking.errors import SourceError

    with pytest.raises(SourceError, match="could not hold an exported snapshot.*(refused|failed)"):
        hold_snapshot("postgresql+psycopg://postgres@127.0.0.1:1/nowhere", "unreachable", hold_seconds=5)


@pytest.mark.parametrize(("mask_workers", "per_reader"), [(1, 0), (2, 1), (4, 2)])
def test_parallel_readers_share_the_masking_processes_instead_of_multiplying_them(
    tmp_path, pg_database, mask_workers, per_reader
):
    from cleanroom import pipeline
    from cleanroom.config import load_config
    from tests.refresh_helpers import write_config

    entry = database_source(tmp_path, pg_database, "shared", SCHEMA, POLICY, consistency="snapshot", workers=2,
                            mask_workers=mask_workers, batch_rows=2000)
    source = load_config(write_config(tmp_path, [entry]))["shared"]
    plan = pipeline.plan(source, f"manual__share_{mask_workers}")

    results = pipeline.extract_all(source, plan)

    by_table = {r["table"]: r for r in results}
    # fake: email, ten batches: a reader beside another masks in a process of its own, unless
    # mask_workers leaves it none
    assert by_table["customers"]["mask_processes"] == per_reader
    assert by_table["orders"]["mask_processes"] == 0  # nothing costly to mask
    assert by_table["customers"]["rows"] == 20000 and by_table["orders"]["rows"] == 20000
