"""Point-in-time snapshots while a writer changes the source (PostgreSQL)."""

from __future__ import annotations

import json
import threading
import time

import pytest
import sqlalchemy as sa

from tests.refresh_helpers import database_source, latest, run_refresh

pytestmark = [pytest.mark.airflow, pytest.mark.postgres]

SCHEMA = """
CREATE TABLE customers (id SERIAL PRIMARY KEY, email VARCHAR(120) NOT NULL UNIQUE, tier TEXT NOT NULL);
CREATE TABLE orders (id SERIAL PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), total INTEGER NOT NULL);
INSERT INTO customers (email, tier) SELECT 'c' || g || '@corp.test', 'basic' FROM generate_series(1, 20000) g;
INSERT INTO orders (customer_id, total) SELECT g, 10 FROM generate_series(1, 20000) g;
"""
POLICY = """
tables:
  customers:
    columns: {id: keep, email: {fake: email}, tier: keep}
  orders:
    columns: {id: keep, customer_id: keep, total: keep}
"""


def _writer(url: str, stop: threading.Event, done: list[int]) -> None:
    """Insert a customer and its first order in one transaction, over and over.

    At every committed moment the two tables hold equally many rows, and every order's
    customer exists: a snapshot read at one moment must show the same.
    """
    engine = sa.create_engine(url)
    n = 0
    while not stop.is_set():
        with engine.begin() as conn:
            cid = conn.execute(sa.text("INSERT INTO customers (email, tier) VALUES (:e, 'new') RETURNING id"),
                               {"e": f"w{n}-{time.monotonic_ns()}@corp.test"}).scalar_one()
            conn.execute(sa.text("INSERT INTO orders (customer_id, total) VALUES (:c, 1)"), {"c": cid})
            conn.execute(sa.text("UPDATE customers SET tier = 'gold' WHERE id = :c"), {"c": 1 + n % 20000})
        n += 1
    done.append(n)
    engine.dispose()


@pytest.mark.parametrize("workers", [pytest.param(2, id="parallel-readers-share-an-exported-snapshot")])
def test_snapshot_refresh_under_concurrent_writes_is_one_moment(tmp_path, pg_database, workers):
    source = database_source(tmp_path, pg_database, "live", SCHEMA, POLICY,
                             consistency="snapshot", workers=workers, batch_rows=500)
    bucket = tmp_path / "bucket"

    stop, done = threading.Event(), []
    writer = threading.Thread(target=_writer, args=(pg_database, stop, done), daemon=True)
    writer.start()
    try:
        time.sleep(0.5)
        state, _ = run_refresh(tmp_path, [source], "live")
    finally:
        stop.set()
        writer.join(timeout=30)
    assert done and done[0] > 0, "the writer never committed: the test proved nothing"
    assert state == "success"  # the gate's foreign-key check passed: every order's customer is there

    manifest = json.loads((bucket / "live" / latest(bucket, "live") / "manifest.json").read_text())
    assert manifest["consistency"] == "exported-snapshot"
    customers = manifest["tables"]["customers"]["rows"]
    orders = manifest["tables"]["orders"]["rows"]
    assert customers == orders, "customers and orders were read at different moments"
    assert customers > 20000, "the snapshot should include the writer's early commits"
