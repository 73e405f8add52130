"""Engineer commands over a local-folder bucket: list, pull, restore, retention, manifest schema.

Snapshots are published by tests/snapshots.py (real Parquet, real manifest, real LATEST), so
no DAG run is needed. Restores go to the local PostgreSQL and MariaDB servers, SQLite and DuckDB.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from cleanroom import pull, restore, snapshot
from cleanroom.bucket import Bucket
from cleanroom.cli import main
from masking.errors import ArtifactError

from . import snapshots as S

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "shop"


@pytest.fixture
def shop(tmp_path, monkeypatch):
    """A cleanroom.yaml whose `shop` source publishes to a local folder; returns (config, bucket)."""
    config = tmp_path / "cleanroom.yaml"
    config.write_text(
        "sources:\n"
        f"  - name: {SOURCE}\n"
        "    url: sqlite:////nonexistent/never-opened.sqlite\n"
        "    policy: policies/never-read.yaml\n"
        "    bucket: file://bucket\n"
        "    demo_key: true\n"
    )
    monkeypatch.setenv("CLEANROOM_CONFIG", str(config))
    return config, Bucket((tmp_path / "bucket").as_uri())


def cli(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


def flip_byte(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def bucket_file(bucket: Bucket, key: str) -> Path:
    return Path(bucket.path(key).path)


# --- list ------------------------------------------------------------------------------------


def test_list_when_three_versions_then_newest_first_with_latest_marked(shop, capsys):
    config, bucket = shop
    versions = [S.version_id(n) for n in (1, 2, 3)]
    for v in versions:
        S.publish(bucket, SOURCE, v, latest=v != versions[2])  # LATEST stays on the second

    assert cli(config, "list", SOURCE) == 0

    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if any(v in line for v in versions) and "= LATEST" not in line]
    assert [next(v for v in versions if v in line) for line in lines] == versions[::-1]
    assert lines[1].startswith("* ") and not lines[0].startswith("* ")
    assert "120" in lines[0] and " 2 " in lines[0]  # rows (40 + 80) and tables


def test_list_when_a_version_has_no_manifest_then_it_is_not_shown(shop, capsys):
    config, bucket = shop
    S.publish(bucket, SOURCE, S.version_id(1))
    half = S.version_id(2)
    bucket.write_bytes(snapshot.table_key(SOURCE, half, "customers"), b"partial")

    assert cli(config, "list", SOURCE) == 0

    assert half not in capsys.readouterr().out


def test_list_when_nothing_published_then_says_so(shop, capsys):
    config, _ = shop
    assert cli(config, "list", SOURCE) == 0
    assert "no published version" in capsys.readouterr().out


# --- pull ------------------------------------------------------------------------------------


def test_pull_when_snapshot_intact_then_every_listed_file_and_manifest_arrive(shop, tmp_path, capsys):
    config, bucket = shop
    manifest = S.publish(bucket, SOURCE, S.version_id(1))
    dest = tmp_path / "pulled"

    assert cli(config, "pull", SOURCE, "--dest", str(dest)) == 0

    for entry in manifest["files"]:
        assert (dest / entry["path"]).stat().st_size == entry["bytes"]
    assert json.loads((dest / "manifest.json").read_text()) == manifest
    assert "verified" in capsys.readouterr().out


def test_pull_when_a_parquet_byte_is_flipped_then_refused_naming_the_file(shop, tmp_path, capsys):
    config, bucket = shop
    version = S.version_id(1)
    S.publish(bucket, SOURCE, version)
    flip_byte(bucket_file(bucket, snapshot.table_key(SOURCE, version, "orders")))
    dest = tmp_path / "pulled"

    assert cli(config, "pull", SOURCE, "--dest", str(dest)) == 1

    err = capsys.readouterr().err
    assert "tables/orders/part-00000.parquet does not match its SHA-256" in err
    assert "Do not use it" in err
    assert not dest.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pulled.partial")]


def test_pull_when_a_listed_file_was_deleted_then_refused(shop, tmp_path):
    _, bucket = shop
    version = S.version_id(1)
    S.publish(bucket, SOURCE, version)
    bucket_file(bucket, snapshot.table_key(SOURCE, version, "customers")).unlink()

    with pytest.raises(ArtifactError, match=r"tables/customers/part-00000.parquet is missing"):
        pull.pull(bucket, SOURCE, tmp_path / "pulled")
    assert not (tmp_path / "pulled").exists()


def test_pull_when_an_unlisted_parquet_sits_under_tables_then_refused(shop, tmp_path):
    _, bucket = shop
    version = S.version_id(1)
    S.publish(bucket, SOURCE, version)
    bucket.write_bytes(f"{SOURCE}/{version}/tables/orders/part-00001.parquet", b"PAR1")

    with pytest.raises(ArtifactError, match=r"part-00001.parquet is not listed in the manifest"):
        pull.pull(bucket, SOURCE, tmp_path / "pulled")


def test_pull_when_file_is_truncated_then_size_mismatch_is_named(shop, tmp_path):
    _, bucket = shop
    version = S.version_id(1)
    S.publish(bucket, SOURCE, version)
    path = bucket_file(bucket, snapshot.table_key(SOURCE, version, "orders"))
    path.write_bytes(path.read_bytes()[:-10])

    with pytest.raises(ArtifactError, match=r"orders/part-00000.parquet has \d+ bytes, the manifest lists \d+"):
        pull.pull(bucket, SOURCE, tmp_path / "pulled")


def test_pull_when_manifest_edited_after_publication_then_latest_digest_refuses_it(shop, tmp_path):
    _, bucket = shop
    version = S.version_id(1)
    manifest = S.publish(bucket, SOURCE, version)
    manifest["tables"]["orders"]["rows"] = 1
    bucket.write_bytes(snapshot.manifest_key(SOURCE, version), json.dumps(manifest).encode())

    with pytest.raises(ArtifactError, match=r"manifest.json does not match the SHA-256 that LATEST recorded"):
        pull.pull(bucket, SOURCE, tmp_path / "pulled")


def test_pull_when_version_is_incomplete_then_refused_as_unpublished(shop, tmp_path, capsys):
    config, bucket = shop
    S.publish(bucket, SOURCE, S.version_id(1))
    half = S.version_id(2)
    bucket.write_bytes(snapshot.table_key(SOURCE, half, "customers"), b"partial")

    assert cli(config, "pull", SOURCE, "--version", half, "--dest", str(tmp_path / "p")) == 1
    assert "has no manifest" in capsys.readouterr().err


def test_pull_when_destination_not_empty_then_refused(shop, tmp_path):
    _, bucket = shop
    S.publish(bucket, SOURCE, S.version_id(1))
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")

    with pytest.raises(ArtifactError, match="already exists and is not empty"):
        pull.pull(bucket, SOURCE, dest)
    assert (dest / "keep.txt").read_text() == "mine"


# --- versions, LATEST and retention ----------------------------------------------------------


def test_advance_latest_when_given_an_older_version_then_latest_stays(shop):
    _, bucket = shop
    old, new = S.version_id(1), S.version_id(2)
    S.publish(bucket, SOURCE, new)
    digest = snapshot.write_manifest(bucket, S.publish(bucket, SOURCE, old, latest=False))

    assert snapshot.advance_latest(bucket, SOURCE, old, digest) is False
    assert snapshot.read_latest(bucket, SOURCE) == new


@pytest.mark.parametrize(
    ("latest_index", "retain", "kept"),
    [(4, 2, [3, 4]), (0, 2, [0, 4]), (0, 1, [0]), (2, 3, [2, 3, 4]), (4, 9, [0, 1, 2, 3, 4])],
    ids=["latest-newest", "latest-oldest", "latest-oldest-retain-1", "latest-middle", "fewer-than-retain"],
)
def test_retention_keeps_exactly_n_versions_and_always_the_latest(shop, latest_index, retain, kept):
    _, bucket = shop
    versions = [S.version_id(n) for n in range(5)]
    S.publish(bucket, SOURCE, versions[latest_index])
    for i, v in enumerate(versions):
        if i != latest_index:
            S.publish(bucket, SOURCE, v, latest=False)
    assert snapshot.read_latest(bucket, SOURCE) == versions[latest_index]

    removed = snapshot.apply_retention(bucket, SOURCE, retain)

    assert snapshot.complete_versions(bucket, SOURCE) == [versions[i] for i in kept]
    assert sorted(removed) == [v for i, v in enumerate(versions) if i not in kept]
    assert bucket.list_dirs(SOURCE) == [versions[i] for i in kept]  # data went too, not just manifests


# --- restore ---------------------------------------------------------------------------------


def _fetch(url: str, sql: str) -> list[tuple]:
    if url.startswith("duckdb:///"):
        import duckdb

        with duckdb.connect(url[len("duckdb:///"):]) as conn:
            return conn.execute(sql).fetchall()
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql)]
    finally:
        engine.dispose()


def _norm(value):
    if isinstance(value, memoryview):
        value = bytes(value)
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value
        return value.isoformat(sep=" ")
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == " " and value[:4].isdigit():
        return _norm(dt.datetime.fromisoformat(value))  # SQLite keeps timestamps as ISO text
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (Decimal, float)):
        return round(float(value), 2)
    if isinstance(value, bool):
        return int(value)
    return value


def _expected(table: str, columns: list[str]) -> list[tuple]:
    return sorted(tuple(_norm(r[c]) for c in columns) for r in S.ROWS[table])


def assert_restored(url: str, quote: str = '"') -> None:
    for table in ("customers", "orders"):
        columns = S.ARROW[table].names
        listed = ", ".join(f"{quote}{c}{quote}" for c in columns)
        got = sorted(tuple(_norm(v) for v in row) for row in _fetch(url, f"SELECT {listed} FROM {table}"))
        assert got == _expected(table, columns), table


def _sqlite(tmp_path):
    return f"sqlite:///{tmp_path / 'restored.sqlite'}"


def _duckdb(tmp_path):
    return f"duckdb:///{tmp_path / 'restored.duckdb'}"


@pytest.mark.parametrize("with_schema", [True, False], ids=["manifest-schema", "arrow-types-only"])
@pytest.mark.parametrize("target", [_sqlite, _duckdb], ids=["sqlite", "duckdb"])
def test_restore_into_file_databases_then_rows_and_values_match(shop, tmp_path, target, with_schema, capsys):
    config, bucket = shop
    S.publish(bucket, SOURCE, S.version_id(1), with_schema=with_schema)
    url = target(tmp_path)

    assert cli(config, "restore", SOURCE, "--into", url) == 0

    assert_restored(url)
    out = capsys.readouterr().out
    assert "customers" in out and "40 row(s)" in out and "80 row(s)" in out
    assert f"{4 if with_schema else 0} key/foreign-key constraint(s) added" in out


def test_restore_into_sqlite_when_schema_in_manifest_then_keys_exist(shop, tmp_path):
    _, bucket = shop
    S.publish(bucket, SOURCE, S.version_id(1))
    snap = pull.pull(bucket, SOURCE, tmp_path / "pulled")
    url = _sqlite(tmp_path)

    restore.restore(snap, url)

    ddl = _fetch(url, "SELECT sql FROM sqlite_master WHERE name = 'orders'")[0][0]
    assert 'PRIMARY KEY ("id")' in ddl and 'REFERENCES "customers"' in ddl


@pytest.mark.postgres
def test_restore_into_postgresql_then_rows_values_and_constraints_match(shop, pg_database, capsys):
    config, bucket = shop
    S.publish(bucket, SOURCE, S.version_id(1))

    assert cli(config, "restore", SOURCE, "--into", pg_database) == 0

    assert_restored(pg_database)
    kinds = _fetch(pg_database, "SELECT contype, conrelid::regclass::text FROM pg_constraint WHERE connamespace = 'public'::regnamespace")
    assert sorted(kinds) == [("f", "orders"), ("p", "customers"), ("p", "orders"), ("u", "customers")]
    assert "COPY" in capsys.readouterr().out


@pytest.mark.postgres
def test_restore_when_target_table_has_rows_then_refused_unless_replace(shop, pg_database, capsys):
    config, bucket = shop
    S.publish(bucket, SOURCE, S.version_id(1))
    assert cli(config, "restore", SOURCE, "--into", pg_database) == 0

    assert cli(config, "restore", SOURCE, "--into", pg_database) == 2
    assert "already hold rows" in capsys.readouterr().err

    assert cli(config, "restore", SOURCE, "--into", pg_database, "--replace") == 0
    assert_restored(pg_database)


@pytest.mark.mariadb
@pytest.mark.parametrize("method", ["load-data", "insert"])
def test_restore_into_mariadb_then_rows_values_and_keys_match(shop, mariadb_database, method, capsys):
    config, bucket = shop
    S.publish(bucket, SOURCE, S.version_id(1))

    assert cli(config, "restore", SOURCE, "--into", mariadb_database, "--mysql-method", method) == 0

    assert_restored(mariadb_database, quote="`")
    keys = _fetch(
        mariadb_database,
        "SELECT table_name, constraint_type FROM information_schema.table_constraints "
        "WHERE table_schema = DATABASE() ORDER BY 1, 2",
    )
    assert keys == [("customers", "PRIMARY KEY"), ("customers", "UNIQUE"), ("orders", "FOREIGN KEY"), ("orders", "PRIMARY KEY")]
    assert ("LOAD DATA" if method == "load-data" else "INSERT") in capsys.readouterr().out


def test_restore_when_a_parquet_byte_is_flipped_then_refused_and_target_untouched(shop, tmp_path, capsys):
    config, bucket = shop
    version = S.version_id(1)
    S.publish(bucket, SOURCE, version)
    flip_byte(bucket_file(bucket, snapshot.table_key(SOURCE, version, "customers")))
    target = tmp_path / "restored.duckdb"

    assert cli(config, "restore", SOURCE, "--into", f"duckdb:///{target}") == 1

    assert "customers/part-00000.parquet does not match its SHA-256" in capsys.readouterr().err
    assert not target.exists()


def test_restore_from_pulled_folder_when_file_tampered_after_pull_then_refused(shop, tmp_path, capsys):
    config, bucket = shop
    S.publish(bucket, SOURCE, S.version_id(1))
    dest = tmp_path / "pulled"
    assert cli(config, "pull", SOURCE, "--dest", str(dest)) == 0
    url = _sqlite(tmp_path)

    assert cli(config, "restore", SOURCE, "--from", str(dest), "--into", url) == 0
    assert_restored(url)

    flip_byte(dest / "tables" / "orders" / "part-00000.parquet")
    assert cli(config, "restore", SOURCE, "--from", str(dest), "--into", _duckdb(tmp_path)) == 1
    assert "orders/part-00000.parquet does not match its SHA-256" in capsys.readouterr().err


def test_restore_when_url_scheme_unknown_then_exit_2(shop, capsys):
    config, bucket = shop
    S.publish(bucket, SOURCE, S.version_id(1))
    assert cli(config, "restore", SOURCE, "--into", "oracle://u@127.0.0.1/x") == 2
    assert "expected postgresql://" in capsys.readouterr().err


# --- the installed command, in its own process -----------------------------------------------


def test_cleanroom_command_exit_codes_in_a_subprocess(shop, tmp_path):
    config, bucket = shop
    version = S.version_id(1)
    S.publish(bucket, SOURCE, version)
    exe = Path(sys.executable).parent / "cleanroom"
    env = {**os.environ, "CLEANROOM_CONFIG": str(config)}

    def run(*args):
        return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=120)

    listed = run("list", SOURCE)
    assert listed.returncode == 0, listed.stderr
    assert version in listed.stdout

    assert run("list", "nosuchsource").returncode == 2
    flip_byte(bucket_file(bucket, snapshot.table_key(SOURCE, version, "orders")))
    refused = run("pull", SOURCE, "--dest", str(tmp_path / "p"))
    assert refused.returncode == 1
    assert "does not match its SHA-256" in refused.stderr


# --- the manifest's JSON Schema --------------------------------------------------------------


@pytest.fixture(scope="module")
def manifest_validator():
    import jsonschema

    schema = json.loads((ROOT / "docs" / "manifest.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def _built_manifest(tmp_path, guarantees: tuple[str, ...] = ("per-table",)) -> dict:
    """A manifest from pipeline.build_manifest itself, fed the shapes its steps return.

    ``guarantees`` are the extract results' ``consistency`` values, dealt out in turn.
    """
    from cleanroom import pipeline
    from cleanroom.config import SourceConfig

    source = SourceConfig(name=SOURCE, policy=tmp_path / "p.yaml", bucket=(tmp_path / "b").as_uri(), demo_key=True)
    version = S.version_id(1)
    prefix = f"{SOURCE}/{version}/"
    plan_ = {
        "version": version, "run_id": "manual__1", "dialect": "sqlite", "policy_sha256": "a" * 64,
        "schema_sha256": "b" * 64, "dropped": ["payments"],
    }
    results = [
        {
            "table": "customers", "action": "mask", "rows": 3, "source_rows": 3,
            "columns": [{"name": "id", "transform": "keep"}, {"name": "email", "transform": "fake:email"}],
            "files": [{"path": prefix + "tables/customers/part-00000.parquet", "sha256": "c" * 64, "bytes": 10, "rows": 3}],
        },
        {
            "table": "audit", "action": "empty", "rows": 0, "source_rows": 0,
            "columns": [{"name": "id", "transform": "keep"}],
            "files": [{"path": prefix + "tables/audit/part-00000.parquet", "sha256": "d" * 64, "bytes": 5, "rows": 0}],
        },
    ]
    results = [dict(r, consistency=guarantees[i % len(guarantees)]) for i, r in enumerate(results)]
    sql = {"artifacts": [{"path": prefix + f"sql/{SOURCE}.postgresql.sql", "sha256": "e" * 64, "bytes": 7, "dialect": "postgresql"}]}
    report = [{"path": prefix + "report/privacy-report.html", "sha256": "f" * 64, "bytes": 9}]
    validation = {"passed": True, "engine": "great_expectations", "seconds": 0.1, "checks": [{"passed": True}]}
    return pipeline.build_manifest(source, plan_, results, validation, sql, report)


def test_manifest_from_build_manifest_validates_against_the_documented_schema(manifest_validator, tmp_path):
    manifest = json.loads(json.dumps(_built_manifest(tmp_path)))  # as stored: plain JSON
    errors = sorted(manifest_validator.iter_errors(manifest), key=lambda e: e.path)
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


@pytest.mark.parametrize("guarantees", [("exported-snapshot",), ("single-transaction",), ("per-chunk", "per-table")])
def test_manifest_of_every_consistency_mode_validates(manifest_validator, tmp_path, guarantees):
    manifest = json.loads(json.dumps(_built_manifest(tmp_path, guarantees)))

    assert manifest["consistency"] == ",".join(guarantees)
    assert not list(manifest_validator.iter_errors(manifest))
    manifest["consistency"] = "eventual"
    assert list(manifest_validator.iter_errors(manifest))


def test_manifest_published_by_the_test_helper_validates_too(manifest_validator, shop):
    _, bucket = shop
    manifest = S.publish(bucket, SOURCE, S.version_id(1))
    assert not list(manifest_validator.iter_errors(manifest))


@pytest.mark.parametrize(
    "damage",
    [
        lambda m: m["files"][0].pop("sha256"),
        lambda m: m["files"][0].update(path="../escape.parquet"),
        lambda m: m.update(format="cleanroom.manifest/2"),
        lambda m: m["tables"]["customers"].update(rows=-1),
        lambda m: m["validation"]["checks"].append({"partial_unexpected_list": ["a@b.c"]}),
    ],
    ids=["no-sha256", "path-escapes", "other-format", "negative-rows", "sample-values-leak"],
)
def test_manifest_schema_when_manifest_damaged_then_invalid(manifest_validator, tmp_path, damage):
    manifest = json.loads(json.dumps(_built_manifest(tmp_path)))
    damage(manifest)
    assert list(manifest_validator.iter_errors(manifest))
