"""The same snapshot life cycle against a real S3 endpoint: moto's server on 127.0.0.1.

One server serves the whole session (Airflow caches the S3 filesystem per conn_id); each test
publishes under its own prefix. Changes made behind the filesystem's back (tampering through
boto3) are followed by ``invalidate_cache()``, as a fresh CLI process would start without one.
"""

from __future__ import annotations

import uuid

import pytest

from cleanroom import pull, restore, snapshot
from cleanroom.bucket import Bucket
from cleanroom.cli import main
from masking.errors import ArtifactError, BucketError

from . import snapshots as S
from .test_engineer_cli import assert_restored

pytestmark = pytest.mark.s3
SOURCE = "shop"


@pytest.fixture
def s3(s3_endpoint, tmp_path, monkeypatch):
    """A fresh prefix in the session bucket, its Bucket (SSE AES256), key prefix and a config file."""
    prefix = f"t-{uuid.uuid4().hex[:10]}"
    url = f"s3://{s3_endpoint['bucket']}/{prefix}"
    config = tmp_path / "cleanroom.yaml"
    config.write_text(
        "sources:\n"
        f"  - name: {SOURCE}\n"
        "    url: sqlite:////nonexistent/never-opened.sqlite\n"
        "    policy: never-read.yaml\n"
        f"    bucket: {url}\n"
        f"    bucket_conn_id: {s3_endpoint['conn_id']}\n"
        "    sse: AES256\n"
    )
    monkeypatch.setenv("CLEANROOM_CONFIG", str(config))
    bucket = Bucket(url, conn_id=s3_endpoint["conn_id"], sse="AES256")
    return {**s3_endpoint, "bucket_name": s3_endpoint["bucket"], "bucket": bucket, "prefix": prefix, "config": config}


def key_of(s3, relative: str) -> str:
    return f"{s3['prefix']}/{relative}"


def tamper(s3, relative: str, change) -> None:
    client, name = s3["client"], s3["bucket_name"]
    body = client.get_object(Bucket=name, Key=key_of(s3, relative))["Body"].read()
    client.put_object(Bucket=name, Key=key_of(s3, relative), Body=change(body))
    s3["bucket"].root.fs.invalidate_cache()


def flipped(body: bytes) -> bytes:
    data = bytearray(body)
    data[100] ^= 0xFF
    return bytes(data)


def test_publish_with_sse_then_every_object_is_encrypted(s3):
    version = S.version_id(1)
    manifest = S.publish(s3["bucket"], SOURCE, version)

    keys = [f"{SOURCE}/{version}/{f['path']}" for f in manifest["files"]]
    keys += [snapshot.manifest_key(SOURCE, version), f"{SOURCE}/LATEST"]
    for key in keys:
        head = s3["client"].head_object(Bucket=s3["bucket_name"], Key=key_of(s3, key))
        assert head["ServerSideEncryption"] == "AES256", key


def test_list_on_s3_then_only_complete_versions_newest_first(s3, capsys):
    old, new, half = S.version_id(1), S.version_id(2), S.version_id(3)
    S.publish(s3["bucket"], SOURCE, old)
    S.publish(s3["bucket"], SOURCE, new)
    s3["bucket"].write_bytes(snapshot.table_key(SOURCE, half, "orders"), b"partial")

    assert main(["list", SOURCE]) == 0

    out = capsys.readouterr().out
    assert half not in out
    assert out.index(new) < out.index(old)
    assert f"* {new}" in out


def test_pull_from_s3_then_files_verified_and_complete(s3, tmp_path):
    manifest = S.publish(s3["bucket"], SOURCE, S.version_id(1))

    snap = pull.pull(s3["bucket"], SOURCE, tmp_path / "pulled")

    assert snap.manifest == manifest
    for entry in manifest["files"]:
        assert (tmp_path / "pulled" / entry["path"]).stat().st_size == entry["bytes"]


def test_pull_from_s3_when_a_parquet_byte_is_flipped_then_exit_1_and_no_destination(s3, tmp_path, capsys):
    version = S.version_id(1)
    S.publish(s3["bucket"], SOURCE, version)
    tamper(s3, snapshot.table_key(SOURCE, version, "customers"), flipped)

    assert main(["pull", SOURCE, "--dest", str(tmp_path / "pulled")]) == 1

    assert "tables/customers/part-00000.parquet does not match its SHA-256" in capsys.readouterr().err
    assert not (tmp_path / "pulled").exists()


def test_restore_from_s3_when_a_parquet_byte_is_flipped_then_refused(s3, tmp_path):
    version = S.version_id(1)
    S.publish(s3["bucket"], SOURCE, version)
    tamper(s3, snapshot.table_key(SOURCE, version, "orders"), flipped)

    assert main(["restore", SOURCE, "--into", f"duckdb:///{tmp_path / 'r.duckdb'}"]) == 1
    assert not (tmp_path / "r.duckdb").exists()


def test_pull_from_s3_when_a_listed_file_was_deleted_then_refused(s3, tmp_path):
    version = S.version_id(1)
    S.publish(s3["bucket"], SOURCE, version)
    s3["client"].delete_object(Bucket=s3["bucket_name"], Key=key_of(s3, snapshot.table_key(SOURCE, version, "orders")))
    s3["bucket"].root.fs.invalidate_cache()

    with pytest.raises(ArtifactError, match="tables/orders/part-00000.parquet is missing"):
        pull.pull(s3["bucket"], SOURCE, tmp_path / "pulled")


def test_pull_from_s3_when_version_incomplete_then_refused(s3, tmp_path):
    S.publish(s3["bucket"], SOURCE, S.version_id(1))
    half = S.version_id(2)
    s3["bucket"].write_bytes(snapshot.table_key(SOURCE, half, "orders"), b"partial")

    with pytest.raises(ArtifactError, match="has no manifest"):
        pull.pull(s3["bucket"], SOURCE, tmp_path / "pulled", version=half)
    assert snapshot.complete_versions(s3["bucket"], SOURCE) == [S.version_id(1)]


def test_restore_from_s3_into_sqlite_and_duckdb_then_values_match(s3, tmp_path, capsys):
    S.publish(s3["bucket"], SOURCE, S.version_id(1))
    for url in (f"sqlite:///{tmp_path / 'r.sqlite'}", f"duckdb:///{tmp_path / 'r.duckdb'}"):
        assert main(["restore", SOURCE, "--into", url]) == 0
        assert_restored(url)


@pytest.mark.postgres
def test_restore_from_s3_into_postgresql_then_values_match(s3, pg_database):
    S.publish(s3["bucket"], SOURCE, S.version_id(1))
    snap = pull.pull(s3["bucket"], SOURCE, s3["config"].parent / "pulled")

    result = restore.restore(snap, pg_database)

    assert result.tables == {"customers": 40, "orders": 80}
    assert_restored(pg_database)


def test_retention_on_s3_keeps_exactly_n_and_the_latest_even_when_oldest(s3):
    bucket = s3["bucket"]
    versions = [S.version_id(n) for n in range(4)]
    S.publish(bucket, SOURCE, versions[0])
    for v in versions[1:]:
        S.publish(bucket, SOURCE, v, latest=False)

    removed = snapshot.apply_retention(bucket, SOURCE, 2)

    assert sorted(removed) == versions[1:3]
    assert snapshot.complete_versions(bucket, SOURCE) == [versions[0], versions[3]]
    assert not list(bucket.walk_files(snapshot.version_prefix(SOURCE, versions[1])))


def test_latest_on_s3_never_moves_backwards(s3):
    bucket = s3["bucket"]
    S.publish(bucket, SOURCE, S.version_id(5))
    older = S.version_id(4)
    digest = snapshot.write_manifest(bucket, S.publish(bucket, SOURCE, older, latest=False))

    assert snapshot.advance_latest(bucket, SOURCE, older, digest) is False
    assert snapshot.read_latest(bucket, SOURCE) == S.version_id(5)


def test_missing_s3_bucket_then_bucket_error_names_it(s3_endpoint, tmp_path, monkeypatch, capsys):
    with pytest.raises(BucketError, match=r"S3 bucket 'no-such-bucket' does not exist .* cleanroom.yaml"):
        Bucket("s3://no-such-bucket/x", conn_id=s3_endpoint["conn_id"]).check()

    config = tmp_path / "cleanroom.yaml"
    config.write_text(
        f"sources:\n  - name: {SOURCE}\n    url: sqlite:////x.sqlite\n    policy: p.yaml\n"
        f"    bucket: s3://no-such-bucket\n    bucket_conn_id: {s3_endpoint['conn_id']}\n"
    )
    monkeypatch.setenv("CLEANROOM_CONFIG", str(config))
    assert main(["list", SOURCE]) == 1
    assert "'no-such-bucket' does not exist" in capsys.readouterr().err
