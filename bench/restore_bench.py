"""Benchmark: `cleanroom restore` into PostgreSQL against `psql` loading a plain `pg_dump`.

Builds a customers-like snapshot (6 columns, 1,000,000 rows by default) as a published version
in a local-folder bucket, restores it into a fresh database through the CLI, then dumps that
database with ``pg_dump`` (plain format) and times ``psql -f`` loading the dump into a second
fresh database. Both sides include creating keys; only the restore includes verifying SHA-256.

Run: ``.venv/bin/python bench/restore_bench.py [--rows N]`` with PostgreSQL on 127.0.0.1:5432.
Not a test: it prints figures and drops its databases.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

PG = "postgresql://postgres@127.0.0.1:5432"
SOURCE = "bench"


def customers(rows: int) -> pa.Table:
    """Six columns of masked-looking data, generated vectorized (no Faker: it would dominate)."""
    rng = np.random.default_rng(7)
    ids = np.arange(1, rows + 1, dtype=np.int64)
    names = pa.array([f"Customer {i:07d}" for i in ids])
    emails = pa.array([f"user{i:07d}@example.test" for i in ids])
    created = pa.array(
        np.datetime64("2020-01-01T00:00:00", "us") + rng.integers(0, 4 * 365 * 86400 * 10**6, rows).astype("timedelta64[us]"),
        pa.timestamp("us", tz="UTC"),
    )
    balance = pa.array([Decimal(int(c)).scaleb(-2) for c in rng.integers(0, 10**7, rows)], pa.decimal128(12, 2))
    active = pa.array(rng.random(rows) < 0.8)
    return pa.table({
        "id": ids, "full_name": names, "email": emails, "created_at": created, "balance": balance, "active": active,
    })


def publish(folder: Path, table: pa.Table) -> None:
    from cleanroom import snapshot
    from cleanroom.bucket import Bucket, HashingWriter

    bucket = Bucket(folder.as_uri())
    version = snapshot.new_version("bench", dt.datetime.now(dt.timezone.utc))
    key = snapshot.table_key(SOURCE, version, "customers")
    with bucket.open_write(key) as raw:
        sink = HashingWriter(raw)
        pq.write_table(table, sink, compression="zstd", row_group_size=100_000)
    schema = {
        "dialect": "postgresql",
        "tables": [{
            "name": "customers", "primary_key": ["id"], "unique_sets": [["email"]], "foreign_keys": [],
            "columns": [
                {"name": "id", "sql_type": "BIGINT", "logical": "integer", "nullable": False, "primary_key": True},
                {"name": "full_name", "sql_type": "TEXT", "logical": "string"},
                {"name": "email", "sql_type": "VARCHAR(120)", "logical": "string", "max_length": 120},
                {"name": "created_at", "sql_type": "TIMESTAMPTZ", "logical": "timestamp"},
                {"name": "balance", "sql_type": "NUMERIC(12,2)", "logical": "decimal", "precision": 12, "scale": 2},
                {"name": "active", "sql_type": "BOOLEAN", "logical": "boolean"},
            ],
        }],
    }
    rel = key[len(f"{SOURCE}/{version}/"):]
    sql = b"-- not used by the benchmark\n"
    bucket.write_bytes(snapshot.sql_key(SOURCE, version), sql)
    manifest = {
        "format": snapshot.MANIFEST_FORMAT, "source": SOURCE, "version": version,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(), "run_id": "bench", "source_dialect": "postgresql",
        "policy_sha256": "0" * 64, "schema_sha256": "0" * 64, "key_id": "bench", "consistency": "per-table",
        "tools": {}, "dropped_tables": [], "validation": {"checks": []}, "schema": schema,
        "tables": {"customers": {
            "action": "mask", "rows": table.num_rows, "source_rows": table.num_rows,
            "columns": [{"name": n, "transform": "keep"} for n in table.column_names], "files": [rel],
        }},
        "files": [
            {"path": rel, "sha256": sink.sha256.hexdigest(), "bytes": sink.size, "rows": table.num_rows, "table": "customers"},
            {"path": f"sql/{SOURCE}.postgresql.sql", "sha256": hashlib.sha256(sql).hexdigest(), "bytes": len(sql),
             "kind": "sql", "dialect": "postgresql"},
        ],
    }
    snapshot.advance_latest(bucket, SOURCE, version, snapshot.write_manifest(bucket, manifest))


def psql(*args: str, db: str = "postgres") -> None:
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", f"{PG}/{db}", *args], check=True, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()

    from cleanroom.cli import main as cleanroom

    tag = uuid.uuid4().hex[:8]
    restored, reloaded = f"bench_restore_{tag}", f"bench_psql_{tag}"
    with tempfile.TemporaryDirectory(prefix="cleanroom-bench-") as scratch:
        work = Path(scratch)
        started = time.perf_counter()
        table = customers(args.rows)
        publish(work / "bucket", table)
        parquet_mb = sum(p.stat().st_size for p in (work / "bucket").rglob("*.parquet")) / 2**20
        print(f"snapshot: {args.rows:,} rows x {table.num_columns} columns, {parquet_mb:.1f} MiB Parquet "
              f"(built in {time.perf_counter() - started:.1f}s)")
        config = work / "cleanroom.yaml"
        config.write_text(
            f"sources:\n  - name: {SOURCE}\n    url: sqlite:////unused.sqlite\n    policy: unused.yaml\n"
            f"    bucket: {(work / 'bucket').as_uri()}\n"
        )
        for db in (restored, reloaded):
            psql("-c", f'CREATE DATABASE "{db}"')
        try:
            started = time.perf_counter()
            code = cleanroom(["--config", str(config), "restore", SOURCE, "--into", f"{PG}/{restored}"])
            restore_s = time.perf_counter() - started
            if code:
                print(f"cleanroom restore failed with exit code {code}", file=sys.stderr)
                return code

            dump = work / "dump.sql"
            subprocess.run(["pg_dump", "--no-owner", "-f", str(dump), f"{PG}/{restored}"], check=True)
            started = time.perf_counter()
            psql("-1", "-f", str(dump), db=reloaded)
            psql_s = time.perf_counter() - started
            dump_mb = dump.stat().st_size / 2**20
        finally:
            for db in (restored, reloaded):
                psql("-c", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')

    rows = args.rows
    print()
    print(f"cleanroom restore (verify + pull + COPY csv + keys): {restore_s:6.2f}s  {rows / restore_s:>10,.0f} rows/s")
    print(f"psql -1 -f pg_dump.sql ({dump_mb:.0f} MiB, COPY text + keys): {psql_s:6.2f}s  {rows / psql_s:>10,.0f} rows/s")
    print(f"ratio cleanroom/psql throughput: {psql_s / restore_s:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
