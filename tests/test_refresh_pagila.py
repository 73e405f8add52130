"""Pagila (real third-party data) end to end: PostgreSQL source, real Airflow, psql restore.

The byte-level leak check covers identifying values: full names of customers, staff and
actors, emails, phone numbers, street addresses, the staff password hash. Short
quasi-identifiers (postal codes, districts) are not searched byte by byte, where a five-digit
code could occur by chance; the validation gate checks their columns row by row.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from tests.conftest import psql_file
from tests.refresh_helpers import ROOT, all_published_bytes, latest, run_refresh

pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.corpus]

EXPECTED_ROWS = {
    "actor": 200, "address": 603, "category": 16, "city": 600, "country": 109, "customer": 599, "film": 1000,
    "film_actor": 5462, "film_category": 1000, "inventory": 4581, "language": 6, "rental": 16044, "staff": 2,
    "store": 2,
}


def _personal_values(url: str) -> dict[str, list[str]]:
    engine = sa.create_engine(url)
    queries = {
        "names": "SELECT first_name || ' ' || last_name FROM customer UNION SELECT first_name || ' ' || last_name FROM staff "
                 "UNION SELECT first_name || ' ' || last_name FROM actor",
        "emails": "SELECT email FROM customer WHERE email <> '' UNION SELECT email FROM staff",
        "phones": "SELECT phone FROM address WHERE phone <> ''",
        "streets": "SELECT address FROM address UNION SELECT address2 FROM address WHERE coalesce(address2, '') <> ''",
        "passwords": "SELECT password FROM staff",
    }
    with engine.connect() as conn:
        values = {k: [r[0] for r in conn.exec_driver_sql(q)] for k, q in queries.items()}
    engine.dispose()
    return values


@pytest.fixture(scope="module")
def pagila_snapshot(pagila_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pagila")
    bucket = folder / "bucket"
    source = {"name": "pagila", "url": pagila_url, "policy": str(ROOT / "policies" / "pagila.yaml"),
              "bucket": bucket.as_uri(), "demo_key": True, "work_dir": str(folder / "work")}
    state, _ = run_refresh(folder, [source], "pagila")
    return state, bucket


def test_pagila_refresh_publishes_every_table_but_payment(pagila_snapshot):
    state, bucket = pagila_snapshot
    assert state == "success"
    manifest = json.loads((bucket / "pagila" / latest(bucket, "pagila") / "manifest.json").read_text())
    assert {t: i["rows"] for t, i in manifest["tables"].items()} == EXPECTED_ROWS
    assert manifest["dropped_tables"] == ["payment"]
    assert manifest["validation"]["passed"] is True


def test_pagila_sql_artifact_restores_with_psql_and_joins(pagila_snapshot, pg_database):
    state, bucket = pagila_snapshot
    assert state == "success"
    sql = bucket / "pagila" / latest(bucket, "pagila") / "sql" / "pagila.postgresql.sql"
    dbname = pg_database.rsplit("/", 1)[1]
    psql_file(dbname, sql)
    engine = sa.create_engine(pg_database)
    with engine.connect() as conn:
        for table, rows in EXPECTED_ROWS.items():
            assert conn.exec_driver_sql(f'SELECT count(*) FROM "{table}"').scalar() == rows, table
        joined = conn.exec_driver_sql(
            "SELECT count(*) FROM rental r JOIN customer c USING (customer_id) JOIN inventory i USING (inventory_id) "
            "JOIN film f USING (film_id)"
        ).scalar()
    engine.dispose()
    assert joined == EXPECTED_ROWS["rental"]


def test_no_pagila_personal_value_survives_in_any_published_byte(pagila_snapshot, pagila_url):
    state, bucket = pagila_snapshot
    assert state == "success"
    published = all_published_bytes(bucket)
    for kind, values in _personal_values(pagila_url).items():
        assert values, kind
        leaked = [v for v in values if v.encode() in published]
        assert not leaked, f"{len(leaked)} of {len(values)} Pagila {kind} found in published bytes"


def test_scanned_policy_and_a_10_percent_subset_publish_no_personal_value_and_keep_references(pagila_url, tmp_path):
    """`cleanroom scan` output is runnable as is and safe; a 10% customer subset keeps its references.

    The gate's foreign-key checks fail the run on any dangling reference, so success means
    every film, inventory row, address and store a kept row points at was kept.
    """
    from cleanroom.cli import main

    policy = tmp_path / "scanned.yaml"
    assert main(["scan", pagila_url, "--out", str(policy)]) == 0
    bucket = tmp_path / "bucket"
    source = {"name": "pagila_scanned", "url": pagila_url, "policy": str(policy), "bucket": bucket.as_uri(),
              "demo_key": True, "work_dir": str(tmp_path / "work"), "subset": {"roots": {"customer": {"percent": 10}}}}
    state, _ = run_refresh(tmp_path, [source], "pagila_scanned")
    assert state == "success"
    manifest = json.loads((bucket / "pagila_scanned" / latest(bucket, "pagila_scanned") / "manifest.json").read_text())
    rows = {t: i["rows"] for t, i in manifest["tables"].items()}
    assert 0.05 * 599 <= rows["customer"] <= 0.15 * 599
    assert rows["rental"] < EXPECTED_ROWS["rental"] / 4
    assert rows["film"] == EXPECTED_ROWS["film"]  # film_actor is whole, so every film is referenced
    fk_checks = [c for c in manifest["validation"]["checks"] if c["check"].startswith("foreign_key_joins")]
    assert fk_checks and all(c["passed"] for c in fk_checks)
    published = all_published_bytes(bucket)
    for kind, values in _personal_values(pagila_url).items():
        leaked = [v for v in values if v.encode() in published]
        assert not leaked, f"{len(leaked)} Pagila {kind} published under the scanned policy"
