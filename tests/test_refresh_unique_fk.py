"""A unique email referenced by a foreign key: masked consistently, joins intact (PostgreSQL)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from tests.conftest import psql_file
from tests.refresh_helpers import database_source, latest, run_refresh

pytestmark = [pytest.mark.airflow, pytest.mark.postgres]

SCHEMA = """
CREATE TABLE customers (email VARCHAR(120) PRIMARY KEY, full_name TEXT NOT NULL);
CREATE TABLE orders (id SERIAL PRIMARY KEY, customer_email VARCHAR(120) NOT NULL REFERENCES customers(email),
                     total NUMERIC(8, 2) NOT NULL);
INSERT INTO customers SELECT 'person' || g || '@corp.test', 'Person ' || g FROM generate_series(1, 800) g;
INSERT INTO orders (customer_email, total) SELECT 'person' || (1 + mod(g, 800)) || '@corp.test', mod(g, 97) FROM generate_series(1, 2500) g;
"""
POLICY = """
tables:
  customers:
    columns:
      email: {fake: email}
      full_name: {fake: name}
  orders:
    columns:
      id: keep
      customer_email: keep      # inherits {fake: email} from the key it references
      total: keep
"""
JOIN = "SELECT count(*) FROM orders o JOIN customers c ON c.email = o.customer_email"


def test_masked_unique_email_stays_unique_and_the_join_matches(tmp_path, pg_database, pg_server):
    source = database_source(tmp_path, pg_database, "shop", SCHEMA, POLICY)
    engine = sa.create_engine(pg_database)
    with engine.connect() as conn:
        joined_before = conn.exec_driver_sql(JOIN).scalar()
    engine.dispose()
    bucket = tmp_path / "bucket"
    state, _ = run_refresh(tmp_path, [source], "shop")
    assert state == "success"

    version = latest(bucket, "shop")
    manifest = json.loads((bucket / "shop" / version / "manifest.json").read_text())
    transforms = {c["name"]: c["transform"] for c in manifest["tables"]["orders"]["columns"]}
    assert transforms["customer_email"] == "fake:email"

    target = pg_database + "_restored"
    admin = sa.create_engine(pg_server, isolation_level="AUTOCOMMIT")
    name = target.rsplit("/", 1)[1]
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        psql_file(name, bucket / "shop" / version / "sql" / "shop.postgresql.sql")
        restored = sa.create_engine(target)
        with restored.connect() as conn:
            rows, distinct = conn.exec_driver_sql("SELECT count(*), count(DISTINCT email) FROM customers").one()
            joined_after = conn.exec_driver_sql(JOIN).scalar()
            leftover = conn.exec_driver_sql("SELECT count(*) FROM customers WHERE email LIKE '%%@corp.test'").scalar()
        restored.dispose()
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    assert rows == distinct == 800
    assert joined_after == joined_before == 2500
    assert leftover == 0
