"""The refresh steps on a small SQLite source, without a scheduler: fast and exhaustive."""

from __future__ import annotations

import json
import sqlite3

import pyarrow.parquet as pq
import pytest

from cleanroom import pipeline, snapshot
from cleanroom.config import load_config
from masking.errors import ConfigError, KeyMissingError, PolicyError

SOURCE_SQL = """
CREATE TABLE accounts (id INTEGER PRIMARY KEY, email VARCHAR(80) NOT NULL UNIQUE, profile TEXT, region TEXT NOT NULL,
                       api_token TEXT);
CREATE TABLE audit_log (id INTEGER PRIMARY KEY, account_id INTEGER REFERENCES accounts(id), message TEXT NOT NULL);
"""
POLICY = """
tables:
  accounts:
    where: "region = 'eu'"
    columns:
      id: keep
      email: {fake: email}
      profile: {json: {paths: {"$.contact.phone": {fake: phone}, "$.contact.name": {fake: name}}}}
      region: keep
      api_token: drop
  audit_log:
    rows: none
    columns: {id: keep, account_id: keep, message: redact}
"""


@pytest.fixture
def source(tmp_path):
    db = tmp_path / "src.sqlite"
    con = sqlite3.connect(db)
    con.executescript(SOURCE_SQL)
    for i in range(1, 41):
        profile = json.dumps({"contact": {"phone": f"+1-202-555-{1000 + i}", "name": f"Real Person {i}"}, "plan": "pro"})
        con.execute("INSERT INTO accounts VALUES (?,?,?,?,?)", (i, f"user{i}@corp.test", profile, "eu" if i % 2 else "us", f"tok_{i:032d}"))
        con.execute("INSERT INTO audit_log VALUES (?,?,?)", (i, i, f"login from user{i}@corp.test"))
    con.commit()
    con.close()
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "cleanroom.yaml").write_text(
        f"sources:\n  - name: acct\n    url: sqlite:///{db}\n    policy: policy.yaml\n    bucket: file://bucket\n"
        "    demo_key: true\n    work_dir: work\n"
    )
    return load_config(tmp_path / "cleanroom.yaml")["acct"]


def _run(source):
    plan = pipeline.plan(source, "manual__unit")
    results = pipeline.extract_all(source, plan)
    validation = pipeline.validate(source, plan, results)
    sql = pipeline.write_sql(source, plan, results)
    pipeline.publish(source, plan, results, validation, sql)
    return plan


def test_where_rows_none_json_paths_and_dropped_columns(source, tmp_path):
    plan = _run(source)
    folder = tmp_path / "bucket" / "acct" / plan["version"]
    accounts = pq.read_table(folder / "tables" / "accounts" / "part-00000.parquet")
    assert accounts.num_rows == 20 and set(accounts.column("region").to_pylist()) == {"eu"}
    assert "api_token" not in accounts.column_names
    profile = json.loads(accounts.column("profile")[0].as_py())
    assert profile["plan"] == "pro" and profile["contact"]["phone"].startswith("+1-555-")
    assert not profile["contact"]["name"].startswith("Real Person")
    audit = pq.read_table(folder / "tables" / "audit_log" / "part-00000.parquet")
    assert audit.num_rows == 0 and audit.column_names == ["id", "account_id", "message"]
    sql = (folder / "sql" / "acct.postgresql.sql").read_text()
    assert 'CREATE TABLE "audit_log"' in sql and "tok_" not in sql and "corp.test" not in sql
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["consistency"] == "single-transaction"
    assert {c["name"]: c["transform"] for c in manifest["tables"]["accounts"]["columns"]}["api_token"] == "drop"


def test_publishing_twice_moves_latest_and_keeps_versions_sorted(source, tmp_path):
    first = _run(source)["version"]
    second = _run(source)["version"]
    assert second > first
    from cleanroom.bucket import Bucket

    bucket = Bucket.for_source(source)
    assert snapshot.read_latest(bucket, "acct") == second
    assert snapshot.complete_versions(bucket, "acct") == [first, second]


def test_no_masking_key_refuses_to_start(source, monkeypatch):
    import dataclasses

    monkeypatch.delenv("AIRFLOW_CONN_CLEANROOM_MASKING_KEY", raising=False)
    monkeypatch.delenv("AIRFLOW_VAR_CLEANROOM_MASKING_KEY", raising=False)
    with pytest.raises(KeyMissingError, match="cleanroom_masking_key"):
        pipeline.plan(dataclasses.replace(source, demo_key=False), "manual__nokey")


def test_key_from_an_airflow_variable_is_used_and_only_its_id_is_recorded(source, tmp_path, monkeypatch):
    import dataclasses

    secret = "s3cr3t-masking-key-for-the-test-0123456789"
    monkeypatch.setenv("AIRFLOW_VAR_CLEANROOM_MASKING_KEY", secret)
    keyed = dataclasses.replace(source, demo_key=False)
    plan = _run(keyed)
    manifest = (tmp_path / "bucket" / "acct" / plan["version"] / "manifest.json").read_text()
    assert secret not in manifest
    assert json.loads(manifest)["key_id"] == pipeline.load_key(keyed).key_id


def test_policy_edited_during_a_run_is_refused(source, tmp_path):
    plan = pipeline.plan(source, "manual__edit")
    (tmp_path / "policy.yaml").write_text(POLICY.replace("message: redact", "message: keep"))
    with pytest.raises(PolicyError, match="changed while this run was in progress"):
        pipeline.extract_all(source, plan)


@pytest.mark.parametrize(
    "entry, message",
    [
        pytest.param("    url: oracle://x\n", "`url` must start with", id="unsupported-url"),
        pytest.param("    url: sqlite:///x.db\n    conn_id: y\n", "exactly one of", id="url-and-conn-id"),
        pytest.param("    url: sqlite:///x.db\n    retain: 0\n", "`retain`", id="retain-zero"),
        pytest.param("    url: sqlite:///x.db\n    consistency: eventual\n", "`consistency`", id="unknown-consistency"),
        pytest.param("    url: sqlite:///x.db\n    consistency: shared_snapshot\n", "needs a PostgreSQL source",
                     id="shared-snapshot-off-postgresql"),
        pytest.param("    url: postgresql://h/db\n    snapshot_hold_minutes: 0\n", "`snapshot_hold_minutes`", id="hold-zero"),
        pytest.param("    url: sqlite:///x.db\n    colour: blue\n", r"unknown key\(s\) colour", id="unknown-key"),
    ],
)
def test_broken_config_names_the_problem(tmp_path, entry, message):
    path = tmp_path / "cleanroom.yaml"
    path.write_text("sources:\n  - name: s\n    policy: p.yaml\n    bucket: file://b\n" + entry)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_cli_check_reports_a_broken_policy_with_exit_2(source, tmp_path, capsys, monkeypatch):
    from cleanroom.cli import main

    monkeypatch.setenv("CLEANROOM_CONFIG", str(tmp_path / "cleanroom.yaml"))
    (tmp_path / "policy.yaml").write_text(POLICY.replace("region: keep", "regoin: keep"))
    assert main(["check", "acct"]) == 2
    err = capsys.readouterr().err
    assert "accounts.regoin: column is in the policy but not in the source table" in err
    assert "accounts.region: column is not covered" in err
    assert main(["run", "nosuchsource"]) == 2
    assert "no source named 'nosuchsource'" in capsys.readouterr().err
