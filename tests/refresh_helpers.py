"""Run real refresh DAGs from a test: write a config, point CLEANROOM_CONFIG at it, dag.test()."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def write_config(folder: Path, sources: list[dict]) -> Path:
    path = folder / "cleanroom.yaml"
    path.write_text(yaml.safe_dump({"sources": sources}, sort_keys=False))
    os.environ["CLEANROOM_CONFIG"] = str(path)
    return path


def database_source(folder: Path, url: str, name: str, setup_sql: str, policy: str, **settings) -> dict:
    """Run ``setup_sql`` on the database at ``url`` and describe it as a source with ``policy``.

    The bucket is ``folder/bucket``, the work area ``folder/work``; ``settings`` add to or
    override the source entry (consistency, chunk_rows, ...).
    """
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(setup_sql)
    engine.dispose()
    policy_path = folder / "policy.yaml"
    policy_path.write_text(policy)
    return {"name": name, "url": url, "policy": str(policy_path), "bucket": (folder / "bucket").as_uri(),
            "demo_key": True, "work_dir": str(folder / "work"), **settings}


def run_refresh(folder: Path, sources: list[dict], name: str):
    """Run source ``name``'s DAG once through real Airflow; return (state, dag_run)."""
    from cleanroom import runner

    write_config(folder, sources)
    runner.prepare_environment()
    runner.ensure_metadata_db()
    dag_run = runner.run_dag(f"cleanroom_{name}")
    return str(getattr(dag_run.state, "value", dag_run.state)), dag_run


def latest(bucket_dir: Path, source: str) -> str | None:
    path = bucket_dir / source / "LATEST"
    return json.loads(path.read_text())["version"] if path.exists() else None


def all_published_bytes(folder: Path) -> bytes:
    """Every byte of every file under ``folder`` (Parquet decoded too, since it compresses)."""
    import pyarrow.parquet as pq

    chunks = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        chunks.append(path.read_bytes())
        if path.suffix == ".parquet":
            chunks.append(json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False).encode())
    return b"\n".join(chunks)


WRITER_POLICY = """
tables:
  customers:
    columns: {id: keep, email: {fake: email}, tier: keep}
  orders:
    columns: {id: keep, customer_id: keep, total: keep}
"""
"""A policy for the tables :func:`_writer` writes to (customers with a unique email, orders)."""


def _writer(url: str, stop: threading.Event, done: list[int]) -> None:
    """Insert a customer and its first order in one transaction, over and over.

    At every committed moment the two tables hold equally many rows, and every order's
    customer exists: a snapshot read at one moment must show the same.
    """
    import sqlalchemy as sa

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


def refresh_while_writing(tmp_path, url: str, source: dict):
    """Run the source's refresh while :func:`_writer` commits; return (state, dag_run)."""
    stop, done = threading.Event(), []
    writer = threading.Thread(target=_writer, args=(url, stop, done), daemon=True)
    writer.start()
    try:
        time.sleep(0.5)
        outcome = run_refresh(tmp_path, [source], source["name"])
    finally:
        stop.set()
        writer.join(timeout=30)
    assert done and done[0] > 0, "the writer never committed: the test proved nothing"
    return outcome
