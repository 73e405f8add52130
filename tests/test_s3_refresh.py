"""Real refresh DAG runs of the demo source publishing to S3 (moto on 127.0.0.1).

The first test goes end to end: refresh, list, pull, restore into PostgreSQL and MariaDB. The
others break a refresh on purpose (an upload that fails while publishing, a process killed
while extracting) and check that readers keep seeing the last complete version only.

Each test publishes under its own prefix of the session bucket. Objects written behind the
in-process S3 filesystem's back (by boto3 or another process) are followed by
``invalidate_cache()``, as a fresh CLI process would start without a cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from cleanroom import snapshot
from cleanroom.bucket import Bucket
from cleanroom.cli import main as cli
from tests.refresh_helpers import ROOT, run_refresh

pytestmark = [pytest.mark.airflow, pytest.mark.s3]
SOURCE = "demo"
POLICY = ROOT / "policies" / "demo.yaml"
KILL_WAIT_SECONDS = 60
LISTED_ROW = re.compile(r"^[* ] \d{8}T\d{9}Z-")


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    from cleanroom import demo

    path = tmp_path_factory.mktemp("demo") / "shop.sqlite"
    demo.build(path, customers=200)
    return path


@pytest.fixture(scope="module")
def big_demo_db(tmp_path_factory) -> Path:
    """A demo large enough, read in small batches, that extraction lasts a few seconds."""
    from cleanroom import demo

    path = tmp_path_factory.mktemp("demo-big") / "shop.sqlite"
    demo.build(path, customers=3000)
    return path


@pytest.fixture
def s3(s3_endpoint, tmp_path):
    """A fresh prefix in the session bucket: its URL, key prefix and a Bucket to read it with."""
    prefix = f"refresh-{uuid.uuid4().hex[:10]}/snapshots"
    url = f"s3://{s3_endpoint['bucket']}/{prefix}"
    bucket = Bucket(url, conn_id=s3_endpoint["conn_id"])
    return {**s3_endpoint, "url": url, "prefix": prefix, "bucket_obj": bucket}


def _source(db: Path, s3: dict, tmp_path: Path, **extra) -> dict:
    return {
        "name": SOURCE, "url": f"sqlite:///{db}", "policy": str(POLICY), "bucket": s3["url"],
        "bucket_conn_id": s3["conn_id"], "demo_key": True, "batch_rows": 500,
        "work_dir": str(tmp_path / "work"), **extra,
    }


def _refresh(tmp_path: Path, source: dict) -> str:
    state, _ = run_refresh(tmp_path, [source], SOURCE)
    return state


def _fresh(s3: dict) -> Bucket:
    """The bucket with the S3 listing cache dropped, so objects written elsewhere are seen."""
    bucket = s3["bucket_obj"]
    bucket.root.fs.invalidate_cache()
    return bucket


def _keys(s3: dict, under: str = "") -> list[str]:
    """Object keys below the test prefix (relative to it), straight from S3 through boto3."""
    base = f"{s3['prefix']}/"
    pages = s3["client"].get_paginator("list_objects_v2").paginate(Bucket=s3["bucket"], Prefix=base + under)
    return sorted(obj["Key"][len(base):] for page in pages for obj in page.get("Contents", []))


def _latest(s3: dict) -> str | None:
    try:
        key = f"{s3['prefix']}/{SOURCE}/{snapshot.LATEST}"
        body = s3["client"].get_object(Bucket=s3["bucket"], Key=key)["Body"].read()
    except s3["client"].exceptions.NoSuchKey:
        return None
    return json.loads(body)["version"]


def _manifest(s3: dict, version: str) -> dict:
    key = f"{s3['prefix']}/{snapshot.manifest_key(SOURCE, version)}"
    return json.loads(s3["client"].get_object(Bucket=s3["bucket"], Key=key)["Body"].read())


def _listed(s3: dict, capsys) -> list[str]:
    """Run ``cleanroom list demo``; return the version ids it printed, in its order."""
    assert cli(["list", SOURCE]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines()[1:] if LISTED_ROW.match(line)]
    # Long version ids run into the next column, so look for the ids the bucket holds.
    known = {key.split("/")[1] for key in _keys(s3, f"{SOURCE}/") if key.count("/") > 1}
    listed = [v for row in rows for v in known if row[2:].startswith(v)]
    assert len(listed) == len(rows), out
    return listed


def _pulled_version(tmp_path: Path, capsys, *args: str) -> str:
    dest = tmp_path / f"pull-{uuid.uuid4().hex[:6]}"
    assert cli(["pull", SOURCE, "--dest", str(dest), *args]) == 0
    capsys.readouterr()
    return json.loads((dest / snapshot.MANIFEST).read_text())["version"]


def _row_counts(url: str, tables) -> dict[str, int]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            count = sa.select(sa.func.count())
            return {t: conn.execute(count.select_from(sa.table(t))).scalar_one() for t in tables}
    finally:
        engine.dispose()


# --- the whole path ----------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.mariadb
def test_refresh_to_s3_then_list_pull_and_restore_into_postgres_and_mariadb(
    s3, tmp_path, demo_db, pg_database, mariadb_database, capsys,
):
    assert _refresh(tmp_path, _source(demo_db, s3, tmp_path)) == "success"

    version = _latest(s3)
    assert version is not None, "a successful refresh must write LATEST"
    assert f"{SOURCE}/LATEST" in _keys(s3)
    manifest = _manifest(s3, version)
    assert manifest["validation"]["passed"] is True
    assert manifest["tables"]["customers"]["rows"] == 200
    capsys.readouterr()

    assert _listed(s3, capsys) == [version]

    dest = tmp_path / "pulled"
    assert cli(["pull", SOURCE, "--dest", str(dest)]) == 0
    assert "every SHA-256 and size verified" in capsys.readouterr().out
    for entry in manifest["files"]:
        data = (dest / entry["path"]).read_bytes()
        assert len(data) == entry["bytes"], entry["path"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["path"]

    expected = {table: info["rows"] for table, info in manifest["tables"].items()}
    for url in (pg_database, mariadb_database):
        assert cli(["restore", SOURCE, "--into", url]) == 0, capsys.readouterr().err
        assert _row_counts(url, expected) == expected
        assert "row counts match the manifest" in capsys.readouterr().out


# --- a publish that fails midway ---------------------------------------------------------------


def _manifest_upload_fails(monkeypatch) -> None:
    """Make the PUT of manifest.json fail, as a dropped connection would; other objects still land."""
    real = Bucket.write_bytes

    def write_bytes(self, key, data):
        if key.endswith("/" + snapshot.MANIFEST):
            raise OSError("connection reset by peer while uploading the manifest (simulated)")
        return real(self, key, data)

    monkeypatch.setattr(Bucket, "write_bytes", write_bytes)


def test_manifest_upload_fails_then_run_fails_and_readers_keep_the_previous_version(
    s3, tmp_path, demo_db, monkeypatch, capsys,
):
    source = _source(demo_db, s3, tmp_path)
    assert _refresh(tmp_path, source) == "success"
    version_a = _latest(s3)

    _manifest_upload_fails(monkeypatch)
    assert _refresh(tmp_path, source) == "failed"
    monkeypatch.undo()

    assert _latest(s3) == version_a
    versions = {key.split("/")[1] for key in _keys(s3, f"{SOURCE}/") if key.count("/") > 1}
    assert versions == {version_a}, "the failed run's staged files must be discarded"
    _fresh(s3)
    capsys.readouterr()
    assert _listed(s3, capsys) == [version_a]
    assert _pulled_version(tmp_path, capsys) == version_a


def test_latest_cannot_move_then_run_fails_and_latest_still_names_the_previous_version(
    s3, tmp_path, demo_db, monkeypatch, capsys,
):
    source = _source(demo_db, s3, tmp_path)
    assert _refresh(tmp_path, source) == "success"
    version_a = _latest(s3)

    def advance_latest(*args, **kwargs):
        raise OSError("connection reset by peer while writing LATEST (simulated)")

    monkeypatch.setattr(snapshot, "advance_latest", advance_latest)
    assert _refresh(tmp_path, source) == "failed"
    monkeypatch.undo()

    assert _latest(s3) == version_a
    # The manifest was written before LATEST failed; publish takes it back, so the failed
    # run leaves no listed version and readers keep A.
    manifests = [k for k in _keys(s3, f"{SOURCE}/") if k.endswith("/" + snapshot.MANIFEST)]
    assert {k.split("/")[1] for k in manifests} == {version_a}
    _fresh(s3)
    capsys.readouterr()
    assert _listed(s3, capsys) == [version_a]
    assert _pulled_version(tmp_path, capsys) == version_a


def test_staged_version_without_manifest_is_invisible_and_pull_refuses_it(s3, tmp_path, demo_db, capsys):
    assert _refresh(tmp_path, _source(demo_db, s3, tmp_path)) == "success"
    version_a = _latest(s3)
    # A newer version with Parquet but no manifest: what a run leaves behind when it dies
    # between extraction and publish.
    staged = snapshot.new_version("manual__staged-by-test")
    assert staged > version_a
    source_key = f"{s3['prefix']}/{snapshot.table_key(SOURCE, version_a, 'customers')}"
    s3["client"].copy_object(
        Bucket=s3["bucket"], Key=f"{s3['prefix']}/{snapshot.table_key(SOURCE, staged, 'customers')}",
        CopySource={"Bucket": s3["bucket"], "Key": source_key},
    )
    bucket = _fresh(s3)

    assert snapshot.complete_versions(bucket, SOURCE) == [version_a]
    assert snapshot.incomplete_versions(bucket, SOURCE) == [staged]
    capsys.readouterr()
    assert _listed(s3, capsys) == [version_a]

    assert cli(["pull", SOURCE, "--version", staged, "--dest", str(tmp_path / "staged")]) == 1
    err = capsys.readouterr().err
    assert "has no manifest" in err and "incomplete" in err
    assert not (tmp_path / "staged").exists()


# --- a process killed while extracting ---------------------------------------------------------


def _staged_parquet(s3: dict, exclude: str | None) -> list[str]:
    return [
        k for k in _keys(s3, f"{SOURCE}/")
        if k.endswith(".parquet") and (exclude is None or k.split("/")[1] != exclude)
    ]


def test_refresh_killed_while_extracting_then_latest_stays_and_next_refresh_publishes(
    s3, tmp_path, big_demo_db, capsys,
):
    source = _source(big_demo_db, s3, tmp_path, batch_rows=200)
    assert _refresh(tmp_path, source) == "success"  # also writes the config the CLI reads
    version_a = _latest(s3)

    env = {
        **os.environ,
        "CLEANROOM_CONFIG": os.environ["CLEANROOM_CONFIG"],
        "AIRFLOW_HOME": str(tmp_path / "airflow-child"),
        "AIRFLOW_CONN_CLEANROOM_TEST_S3": os.environ["AIRFLOW_CONN_CLEANROOM_TEST_S3"],
    }
    child = subprocess.Popen(
        [str(Path(sys.executable).parent / "cleanroom"), "run", SOURCE],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + KILL_WAIT_SECONDS
        while not _staged_parquet(s3, exclude=version_a):
            if child.poll() is not None:
                pytest.fail(f"the refresh ended before it could be killed: {child.stderr.read()[-2000:]!r}")
            assert time.monotonic() < deadline, f"no staged Parquet appeared within {KILL_WAIT_SECONDS}s"
            time.sleep(0.2)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL

    killed = {k.split("/")[1] for k in _staged_parquet(s3, exclude=version_a)}
    assert len(killed) == 1
    killed_version = killed.pop()
    assert snapshot.manifest_key(SOURCE, killed_version) not in _keys(s3)
    assert _latest(s3) == version_a
    bucket = _fresh(s3)
    assert killed_version in snapshot.incomplete_versions(bucket, SOURCE)
    capsys.readouterr()
    assert _listed(s3, capsys) == [version_a]

    assert _refresh(tmp_path, source) == "success"
    version_c = _latest(s3)
    assert version_c not in (None, version_a) and version_c > killed_version
    bucket = _fresh(s3)
    assert snapshot.complete_versions(bucket, SOURCE) == [version_a, version_c]
    capsys.readouterr()
    assert _listed(s3, capsys) == [version_c, version_a]
