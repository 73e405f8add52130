"""End to end through real Airflow with a MariaDB source: publish, restore, refuse a leak.

The schema is tests/fixtures/mariadb_shop.sql (MariaDB's own dialect: unsigned keys,
``TINYINT(1)``, ``ENUM``, ``DATETIME``, ``TEXT``); the rows are generated here with a seeded
Faker, so every run reads the same few thousand rows.

Known limitation: ``scrub`` finds a bare run of ten digits as a phone number only after a
phone word ("call", "phone", ...), to keep order numbers and amounts intact. A note such as
``"Questions: a@b.org / 7763661934"`` publishes those digits unchanged; the notes generated
here always put a phone word before a phone, and
``test_scrub_misses_bare_digit_phone_without_phone_word`` marks the gap.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import psql_file
from tests.refresh_helpers import ROOT, all_published_bytes, latest, run_refresh

pytestmark = pytest.mark.airflow

FIXTURES = ROOT / "tests" / "fixtures"
SCHEMA_SQL = FIXTURES / "mariadb_shop.sql"
POLICY = FIXTURES / "mariadb_shop.policy.yaml"
PEOPLE = 1200
NOTE_TEMPLATES = [
    "Customer asked to confirm by mail to {email}.",
    "Call {phone} before delivery, the gate code changed.",
    "Leave at the door. Questions: {email} / phone {phone}",
    None,
    "Gift wrap, no invoice in the box.",
]


def _create_schema(conn) -> None:
    text = "\n".join(line for line in SCHEMA_SQL.read_text().splitlines() if not line.lstrip().startswith("--"))
    for statement in filter(None, (s.strip() for s in text.split(";"))):
        conn.exec_driver_sql(statement)


def _populate(url: str, people: int = PEOPLE, seed: int = 11) -> dict[str, list[str]]:
    """Create and fill the shop; return the raw personal values that must never be published."""
    from faker import Faker

    fake = Faker("en_US")
    Faker.seed(seed)
    rng = random.Random(seed)
    base = dt.datetime(2024, 1, 1)
    persons, addresses, orders, payments = [], [], [], []
    for pid in range(1, people + 1):
        first, last = fake.first_name(), fake.last_name()
        email = f"{first}.{last}.{pid}@{rng.choice(['gmail.com', 'outlook.com', 'mail.example.org'])}".lower()
        phone = fake.phone_number() if rng.random() < 0.9 else None
        persons.append((pid, first, last, email, phone, fake.date_of_birth(minimum_age=18, maximum_age=90),
                        int(rng.random() < 0.8), base + dt.timedelta(minutes=rng.randrange(500_000))))
        addresses.append((pid, pid, fake.street_address(), fake.city(), fake.postcode(), "US"))
    for oid in range(1, people * 2 + 1):
        person = persons[rng.randrange(people)]
        template = rng.choice(NOTE_TEMPLATES)
        notes = template.format(email=person[3], phone=person[4] or fake.phone_number()) if template else None
        total = round(rng.uniform(5, 900), 2)
        orders.append((oid, f"ORD-{oid:07d}", person[0], rng.choice(["paid", "shipped", "refunded"]), total,
                       base + dt.timedelta(minutes=rng.randrange(500_000)), notes))
        payments.append((oid, oid, fake.credit_card_number(), fake.credit_card_expire(), total))

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        _create_schema(conn)
        raw = conn.connection.dbapi_connection.cursor()
        raw.executemany("INSERT INTO people VALUES (%s,%s,%s,%s,%s,%s,%s,%s)", persons)
        raw.executemany("INSERT INTO addresses VALUES (%s,%s,%s,%s,%s,%s)", addresses)
        raw.executemany("INSERT INTO orders VALUES (%s,%s,%s,%s,%s,%s,%s)", orders)
        raw.executemany("INSERT INTO payments VALUES (%s,%s,%s,%s,%s)", payments)
    engine.dispose()
    return {
        "emails": [p[3] for p in persons],
        "phones": [p[4] for p in persons if p[4]],
        "cards": [p[2] for p in payments],
    }


@pytest.fixture
def shop(mariadb_database) -> tuple[str, dict[str, list[str]]]:
    return mariadb_database, _populate(mariadb_database)


def _source(url: str, bucket: Path, policy: Path = POLICY) -> dict:
    return {"name": "mshop", "url": url, "policy": str(policy), "bucket": bucket.as_uri(),
            "demo_key": True, "batch_rows": 700, "work_dir": str(bucket.parent / "work")}


def _manifest(bucket: Path) -> tuple[Path, dict]:
    version = latest(bucket, "mshop")
    assert version is not None, "no LATEST pointer was published"
    folder = bucket / "mshop" / version
    return folder, json.loads((folder / "manifest.json").read_text())


def test_mariadb_refresh_publishes_masked_snapshot_that_restores_into_postgresql(tmp_path, shop, pg_database):
    url, raw = shop
    bucket = tmp_path / "bucket"

    state, _ = run_refresh(tmp_path, [_source(url, bucket)], "mshop")

    assert state == "success"
    folder, manifest = _manifest(bucket)
    assert manifest["validation"]["passed"] is True
    assert manifest["source_dialect"] in ("mysql", "mariadb")
    assert manifest["dropped_tables"] == ["payments"]
    assert not (folder / "tables" / "payments").exists()
    expected = {"people": PEOPLE, "addresses": PEOPLE, "orders": 2 * PEOPLE}
    assert {t: manifest["tables"][t]["rows"] for t in expected} == expected

    published = all_published_bytes(bucket)
    for kind in ("emails", "phones", "cards"):
        leaked = [v for v in raw[kind] if v.encode() in published]
        assert not leaked, f"{len(leaked)} original {kind} found in published bytes"

    dbname = pg_database.rsplit("/", 1)[1]
    psql_file(dbname, folder / "sql" / "mshop.postgresql.sql")
    engine = sa.create_engine(pg_database)
    with engine.connect() as conn:
        counts = {t: conn.exec_driver_sql(f'SELECT count(*) FROM "{t}"').scalar() for t in expected}
        joined_orders = conn.exec_driver_sql("SELECT count(*) FROM orders o JOIN people p ON p.id = o.person_id").scalar()
        joined_addresses = conn.exec_driver_sql("SELECT count(*) FROM addresses a JOIN people p ON p.id = a.person_id").scalar()
        distinct_emails = conn.exec_driver_sql("SELECT count(DISTINCT email) FROM people").scalar()
        statuses = {r[0] for r in conn.exec_driver_sql("SELECT DISTINCT status FROM orders")}
    engine.dispose()
    assert counts == expected
    assert joined_orders == 2 * PEOPLE
    assert joined_addresses == PEOPLE
    assert distinct_emails == PEOPLE, "the email fake must stay unique, as the source column is"
    assert statuses == {"paid", "shipped", "refunded"}

    # The MySQL-dialect artifact restores with the mysql client into a fresh MariaDB database.
    target = f"cr_restore_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine("mysql+pymysql://root@127.0.0.1:3306/mysql")
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{target}` CHARACTER SET utf8mb4")
    try:
        with open(folder / "sql" / "mshop.mysql.sql", "rb") as dump:
            subprocess.run(["mariadb", "-h", "127.0.0.1", "-u", "root", f"--database={target}"], stdin=dump,
                           check=True, capture_output=True)
        with admin.connect() as conn:
            restored = {t: conn.exec_driver_sql(f"SELECT count(*) FROM `{target}`.`{t}`").scalar() for t in expected}
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{target}`")
        admin.dispose()
    assert restored == expected


@pytest.mark.xfail(strict=True, reason="known gap: bare ten-digit phone numbers need a phone word before them")
def test_scrub_misses_bare_digit_phone_without_phone_word():
    from masking import detectors

    note = "Leave at the door. Questions: someone@example.org / 7763661934"

    kinds = {m.kind for m in detectors.find(note)}

    assert kinds == {"email", "phone"}


def test_mariadb_policy_that_keeps_email_fails_validation_and_latest_stays(tmp_path, shop):
    url, raw = shop
    bucket = tmp_path / "bucket"
    state, _ = run_refresh(tmp_path, [_source(url, bucket)], "mshop")
    assert state == "success"
    before = latest(bucket, "mshop")

    leaky = tmp_path / "leaky.yaml"
    leaky.write_text(POLICY.read_text().replace("email: {fake: email}", "email: keep"))
    assert leaky.read_text() != POLICY.read_text()
    state, dag_run = run_refresh(tmp_path, [_source(url, bucket, leaky)], "mshop")

    assert state == "failed"
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}
    assert states["validate"] == "failed"
    assert states["publish"] == "upstream_failed"
    assert latest(bucket, "mshop") == before
    assert [p.name for p in (bucket / "mshop").iterdir() if p.is_dir()] == [before]
    published = all_published_bytes(bucket)
    assert not any(v.encode() in published for v in raw["emails"])


LIVE_SCHEMA = [
    "CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(120) NOT NULL UNIQUE, tier TEXT NOT NULL)",
    "CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL, total INT NOT NULL, "
    "FOREIGN KEY (customer_id) REFERENCES customers (id))",
    "INSERT INTO customers (email, tier) SELECT CONCAT('c', seq, '@corp.test'), 'basic' FROM seq_1_to_20000",
    "INSERT INTO orders (customer_id, total) SELECT seq, 10 FROM seq_1_to_20000",
]


def test_snapshot_refresh_under_concurrent_writes_reads_one_moment_on_mariadb(tmp_path, mariadb_database):
    """START TRANSACTION WITH CONSISTENT SNAPSHOT: tables read one after another, as of one moment."""
    from tests.refresh_helpers import WRITER_POLICY, refresh_while_writing

    engine = sa.create_engine(mariadb_database)
    with engine.begin() as conn:
        for statement in LIVE_SCHEMA:
            conn.exec_driver_sql(statement)
    engine.dispose()
    (tmp_path / "policy.yaml").write_text(WRITER_POLICY)
    bucket = tmp_path / "bucket"
    source = {"name": "mlive", "url": mariadb_database, "policy": str(tmp_path / "policy.yaml"),
              "bucket": bucket.as_uri(), "demo_key": True, "work_dir": str(tmp_path / "work"),
              "consistency": "snapshot", "batch_rows": 500}

    state, _ = refresh_while_writing(tmp_path, mariadb_database, source)

    assert state == "success"  # the gate's foreign-key check passed: every order's customer is there
    manifest = json.loads((bucket / "mlive" / latest(bucket, "mlive") / "manifest.json").read_text())
    assert manifest["consistency"] == "single-transaction"
    customers, orders = manifest["tables"]["customers"]["rows"], manifest["tables"]["orders"]["rows"]
    assert customers == orders, "customers and orders were read at different moments"
    assert customers > 20000, "the snapshot should include the writer's early commits"
