"""Publish small, real snapshots into a bucket without running the refresh DAG.

The files are real Parquet, the manifest has the shape ``pipeline.build_manifest`` writes, and
publication goes through ``snapshot.write_manifest`` and ``snapshot.advance_latest`` like a
refresh does. Values are fixed, so tests can compare restored rows with :data:`ROWS`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cleanroom import snapshot
from cleanroom.bucket import Bucket, HashingWriter
from masking import schema as ms

UTC = dt.timezone.utc

CUSTOMERS = ms.Table(
    name="customers",
    columns=(
        ms.Column("id", "INTEGER", ms.INTEGER, nullable=False, primary_key=True),
        ms.Column("email", "VARCHAR(120)", ms.STRING, nullable=False, max_length=120, unique=True),
        ms.Column("full_name", "TEXT", ms.STRING),
        ms.Column("balance", "NUMERIC(12, 2)", ms.DECIMAL, precision=12, scale=2),
        ms.Column("created_at", "TIMESTAMP WITH TIME ZONE", ms.TIMESTAMP),
        ms.Column("active", "BOOLEAN", ms.BOOLEAN, nullable=False),
        ms.Column("avatar", "BYTEA", ms.BINARY),
        ms.Column("ssn", "VARCHAR(11)", ms.STRING, max_length=11),  # dropped by masking
    ),
    primary_key=("id",),
)
ORDERS = ms.Table(
    name="orders",
    columns=(
        ms.Column("id", "INTEGER", ms.INTEGER, nullable=False, primary_key=True),
        ms.Column("customer_id", "INTEGER", ms.INTEGER, nullable=False),
        ms.Column("total", "DOUBLE PRECISION", ms.FLOAT),
        ms.Column("placed_on", "DATE", ms.DATE),
        ms.Column("note", "TEXT", ms.STRING),
    ),
    primary_key=("id",),
    foreign_keys=(ms.ForeignKey(("customer_id",), "customers", ("id",)),),
)
SCHEMA = ms.Schema(tables={"customers": CUSTOMERS, "orders": ORDERS}, dialect="postgresql")

ARROW = {
    "customers": pa.schema([
        pa.field("id", pa.int64(), nullable=False),
        pa.field("email", pa.string(), nullable=False),
        pa.field("full_name", pa.string()),
        pa.field("balance", pa.decimal128(12, 2)),
        pa.field("created_at", pa.timestamp("us", tz="UTC")),
        pa.field("active", pa.bool_(), nullable=False),
        pa.field("avatar", pa.binary()),
    ]),
    "orders": pa.schema([
        pa.field("id", pa.int64(), nullable=False),
        pa.field("customer_id", pa.int64(), nullable=False),
        pa.field("total", pa.float64()),
        pa.field("placed_on", pa.date32()),
        pa.field("note", pa.string()),
    ]),
}

# Text that breaks naive CSV/TSV/escaping: separators, quotes, backslashes, newlines, non-ASCII.
AWKWARD = ['tab\there', 'quote " and \' both', "back\\slash \\N", "new\nline\r\n", "", "日本語 ✓", ",comma,"]


def rows(customers: int = 40, orders_per_customer: int = 2) -> dict[str, list[dict[str, Any]]]:
    base = dt.datetime(2024, 1, 31, 2, 0, tzinfo=UTC)
    people = [
        {
            "id": i,
            "email": f"user{i}@example.test",
            "full_name": None if i % 7 == 0 else AWKWARD[i % len(AWKWARD)] + f" #{i}",
            "balance": None if i % 5 == 0 else Decimal(f"{i * 13 % 1000}.{i % 100:02d}"),
            "created_at": base + dt.timedelta(hours=i, microseconds=i),
            "active": i % 3 != 0,
            "avatar": None if i % 4 == 0 else bytes([i % 256, 0, 9, 10, 92, 255]),
        }
        for i in range(1, customers + 1)
    ]
    orders = [
        {
            "id": c * 10 + k,
            "customer_id": c,
            "total": None if (c + k) % 6 == 0 else round(c * 1.25 + k, 2),
            "placed_on": dt.date(2024, 1, 1) + dt.timedelta(days=c + k),
            "note": None if k == 0 else AWKWARD[(c + k) % len(AWKWARD)],
        }
        for c in range(1, customers + 1)
        for k in range(orders_per_customer)
    ]
    return {"customers": people, "orders": orders}


ROWS = rows()


def version_id(n: int) -> str:
    """A valid version id whose order follows ``n``."""
    return snapshot.new_version(f"manual__{n}", dt.datetime(2024, 1, 1, tzinfo=UTC) + dt.timedelta(days=n))


def publish(
    bucket: Bucket, source: str, version: str, *, data: dict[str, list[dict]] | None = None,
    with_schema: bool = True, latest: bool = True, row_group_rows: int = 10_000,
) -> dict[str, Any]:
    """Write Parquet files, a manifest and (if ``latest``) LATEST; return the manifest."""
    data = ROWS if data is None else data
    prefix = f"{source}/{version}/"
    tables, files = {}, []
    for name in sorted(data):
        key = snapshot.table_key(source, version, name)
        table = pa.Table.from_pylist(data[name], schema=ARROW[name])
        with bucket.open_write(key) as raw:
            sink = HashingWriter(raw)
            with pq.ParquetWriter(sink, table.schema, compression="zstd") as writer:
                writer.write_table(table, row_group_size=row_group_rows)
        described = SCHEMA.tables[name]
        published = set(ARROW[name].names)
        tables[name] = {
            "action": "mask",
            "rows": table.num_rows,
            "source_rows": table.num_rows,
            "columns": [
                {"name": c.name, "transform": "keep" if c.name in published else "drop"} for c in described.columns
            ],
            "files": [key[len(prefix):]],
        }
        files.append({
            "path": key[len(prefix):], "sha256": sink.sha256.hexdigest(), "bytes": sink.size,
            "rows": table.num_rows, "table": name,
        })
    sql = b"-- SQL artifact stand-in\n"
    bucket.write_bytes(snapshot.sql_key(source, version), sql)
    files.append({
        "path": snapshot.sql_key(source, version)[len(prefix):], "sha256": hashlib.sha256(sql).hexdigest(),
        "bytes": len(sql), "kind": "sql", "dialect": "postgresql",
    })
    manifest = {
        "format": snapshot.MANIFEST_FORMAT,
        "source": source,
        "version": version,
        "created_at": dt.datetime.now(UTC).isoformat(),
        "run_id": f"manual__{version}",
        "source_dialect": "postgresql",
        "policy_sha256": "0" * 64,
        "schema_sha256": "1" * 64,
        "key_id": "demo-0000",
        "consistency": "per-table",
        "tools": {"cleanroom": "0.1.0", "pyarrow": pa.__version__},
        "tables": tables,
        "dropped_tables": ["payments"],
        "files": files,
        "validation": {"passed": True, "engine": "test", "seconds": 0.0, "checks": []},
    }
    if with_schema:
        manifest["schema"] = {
            "dialect": SCHEMA.dialect, "tables": [SCHEMA.tables[n].to_dict() for n in sorted(data)],
        }
    digest = snapshot.write_manifest(bucket, manifest)
    if latest:
        snapshot.advance_latest(bucket, source, version, digest)
    return json.loads(json.dumps(manifest))  # as readers see it: tuples become lists
