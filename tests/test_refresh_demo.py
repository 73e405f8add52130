"""End to end through real Airflow on the embedded demo: publish, and refuse to publish a leak."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import psql_file
from tests.refresh_helpers import ROOT, all_published_bytes, latest, run_refresh

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    from cleanroom import demo

    path = tmp_path_factory.mktemp("demo") / "shop.sqlite"
    demo.build(path, customers=300)
    return path


def _source(name: str, db: Path, bucket: Path, policy: Path, **extra) -> dict:
    return {"name": name, "url": f"sqlite:///{db}", "policy": str(policy), "bucket": bucket.as_uri(),
            "demo_key": True, "batch_rows": 500, "work_dir": str(bucket.parent / "work"), **extra}


def _raw_values(db: Path) -> dict[str, list[str]]:
    con = sqlite3.connect(db)
    out = {
        "emails": [r[0] for r in con.execute("SELECT email FROM customers")],
        "names": [r[0] for r in con.execute("SELECT full_name FROM customers ORDER BY id")],
        "phones": [r[0] for r in con.execute("SELECT phone FROM customers WHERE phone IS NOT NULL")],
        "streets": [r[0] for r in con.execute("SELECT street FROM addresses")],
        "cards": [r[0] for r in con.execute("SELECT card_number FROM payments")],
    }
    con.close()
    return out


def test_demo_refresh_publishes_a_validated_snapshot(tmp_path, demo_db):
    bucket = tmp_path / "bucket"
    state, _ = run_refresh(tmp_path, [_source("demo", demo_db, bucket, ROOT / "policies" / "demo.yaml")], "demo")
    assert state == "success"

    version = latest(bucket, "demo")
    assert version is not None
    folder = bucket / "demo" / version
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["validation"]["passed"] is True
    assert manifest["dropped_tables"] == ["payments"]
    assert not (folder / "tables" / "payments").exists()
    assert manifest["tables"]["customers"]["rows"] == 300
    assert pq.read_table(folder / "tables" / "customers" / "part-00000.parquet").num_rows == 300
    assert (folder / "sql" / "demo.postgresql.sql").stat().st_size > 0
    for entry in manifest["files"]:
        import hashlib

        assert hashlib.sha256((folder / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]

    published = all_published_bytes(bucket)
    raw = _raw_values(demo_db)
    for kind in ("emails", "phones", "streets", "cards"):
        leaked = [v for v in raw[kind] if v.encode() in published]
        assert not leaked, f"{len(leaked)} original {kind} found in published bytes"
    # Names are common by nature: a realistic fake may equal another customer's real name, so
    # the promise is per row: nobody keeps their own name.
    masked = pq.read_table(folder / "tables" / "customers" / "part-00000.parquet").column("full_name").to_pylist()
    kept = [i for i, (old, new) in enumerate(zip(raw["names"], masked)) if old == new]
    assert not kept, f"{len(kept)} customer(s) kept their own name"


def test_demo_sql_artifact_restores_with_psql(tmp_path, demo_db, pg_database):
    bucket = tmp_path / "bucket"
    state, _ = run_refresh(tmp_path, [_source("demo", demo_db, bucket, ROOT / "policies" / "demo.yaml")], "demo")
    assert state == "success"
    version = latest(bucket, "demo")
    manifest = json.loads((bucket / "demo" / version / "manifest.json").read_text())
    dbname = pg_database.rsplit("/", 1)[1]
    psql_file(dbname, bucket / "demo" / version / "sql" / "demo.postgresql.sql")
    import sqlalchemy as sa

    engine = sa.create_engine(pg_database)
    with engine.connect() as conn:
        for table, info in manifest["tables"].items():
            assert conn.exec_driver_sql(f'SELECT count(*) FROM "{table}"').scalar() == info["rows"]
        joined = conn.exec_driver_sql("SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id").scalar()
    engine.dispose()
    assert joined == manifest["tables"]["orders"]["rows"]


def test_policy_that_keeps_a_personal_column_fails_validation_and_latest_stays(tmp_path, demo_db):
    bucket = tmp_path / "bucket"
    good = _source("demo", demo_db, bucket, ROOT / "policies" / "demo.yaml")
    state, _ = run_refresh(tmp_path, [good], "demo")
    assert state == "success"
    before = latest(bucket, "demo")

    leaky = tmp_path / "leaky.yaml"
    leaky.write_text((ROOT / "policies" / "demo.yaml").read_text().replace("email: {fake: email}", "email: keep"))
    state, dag_run = run_refresh(tmp_path, [_source("demo", demo_db, bucket, leaky)], "demo")
    assert state == "failed"
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}
    assert states["validate"] == "failed"
    assert states["publish"] == "upstream_failed"
    assert latest(bucket, "demo") == before
    versions = [p.name for p in (bucket / "demo").iterdir() if p.is_dir()]
    assert versions == [before], "the failed version's staged files must be gone"
    assert not any(v.encode() in all_published_bytes(bucket) for v in _raw_values(demo_db)["emails"])

    (report,) = (tmp_path / "work" / "demo" / "failed").glob("*/privacy-report.html")
    text = report.read_text()
    assert "no_original_values" in text and "FAILED" in text
    assert not [v for v in _raw_values(demo_db)["emails"] if v in text], "the failure report must hold no values"


def test_failure_callback_names_the_task_and_the_failed_checks():
    from cleanroom.dagfactory import report_failure
    from masking.errors import ValidationFailed

    class TI:
        dag_id, task_id = "cleanroom_demo", "validate"

    error = ValidationFailed([("customers", "email", "no_original_values", 300)])
    line = report_failure({"task_instance": TI(), "exception": error})
    assert "cleanroom_demo" in line and "validate" in line
    assert "customers.email: no_original_values (300 offending row(s))" in line


def test_schema_drift_stops_the_refresh_before_extraction(tmp_path, demo_db, capsys):
    drifted = tmp_path / "drifted.sqlite"
    shutil.copy(demo_db, drifted)
    con = sqlite3.connect(drifted)
    con.execute("ALTER TABLE customers ADD COLUMN passport_no VARCHAR(20)")
    con.commit()
    con.close()
    bucket = tmp_path / "bucket"
    state, dag_run = run_refresh(tmp_path, [_source("demo", drifted, bucket, ROOT / "policies" / "demo.yaml")], "demo")
    assert state == "failed"
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}
    assert states["plan"] == "failed"
    assert latest(bucket, "demo") is None
    assert not (bucket / "demo").exists() or not any((bucket / "demo").iterdir())

    # The same check on the command line names the new column and proposes a rule for it.
    from cleanroom.cli import main

    assert main(["check", "demo"]) == 2
    err = capsys.readouterr().err
    assert "customers.passport_no: column is not covered" in err
    assert "passport_no: redact" in err
