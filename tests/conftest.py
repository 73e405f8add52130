"""Shared fixtures: the corpus, the local database servers and an S3 endpoint.

Outside CI a missing server or corpus skips the tests that need it, with a reason saying how
to get it. Under ``CI=true`` the same situation is a failure: CI must never go green by
skipping its integration tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Airflow reads its home when first imported: give the test session its own, away from the
# user's, before any test module imports airflow.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="cleanroom-test-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.setdefault("CLEANROOM_CONFIG", str(ROOT / "cleanroom.yaml"))


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(autouse=True)
def _root_handlers_restored():
    """cli.main() calls logging.basicConfig(), which binds a handler to the captured stderr.

    Remove whatever a test added, so handlers do not pile up across tests.
    """
    import logging

    before = list(logging.root.handlers)
    yield
    for handler in [h for h in logging.root.handlers if h not in before]:
        logging.root.removeHandler(handler)


def need(condition: bool, reason: str) -> None:
    """Skip (outside CI) or fail (under CI=true) when ``condition`` does not hold."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true and a required resource is missing: {reason}", pytrace=False)
    pytest.skip(reason)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def corpus() -> Path:
    need(
        (CORPUS / "README.md").is_file(),
        f"the shared test corpus is not at {CORPUS}; it ships beside the project checkout as ../shared/corpus",
    )
    return CORPUS


@pytest.fixture(scope="session")
def pg_server() -> str:
    """SQLAlchemy URL of the local PostgreSQL server's maintenance database."""
    need(
        _port_open(5432),
        "PostgreSQL is not listening on 127.0.0.1:5432; start it with "
        "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`",
    )
    return "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def mariadb_server() -> str:
    need(
        _port_open(3306),
        "MariaDB is not listening on 127.0.0.1:3306; start it with "
        "`start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd`",
    )
    return "mysql+pymysql://root@127.0.0.1:3306/mysql"


def _scratch_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pg_database(pg_server):
    """A fresh, empty PostgreSQL database, dropped afterwards. Yields its URL."""
    import sqlalchemy as sa

    name = _scratch_name("cr_test")
    admin = sa.create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def mariadb_database(mariadb_server):
    """A fresh, empty MariaDB database, dropped afterwards. Yields its URL."""
    import sqlalchemy as sa

    name = _scratch_name("cr_test")
    admin = sa.create_engine(mariadb_server)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield f"mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        admin.dispose()


@pytest.fixture(scope="session")
def pagila_url(pg_server, corpus):
    """The Pagila database from the corpus, loaded once per session into a fresh database.

    Read-only by convention: tests that modify a source must build their own database.
    """
    import shutil
    import subprocess

    import sqlalchemy as sa

    need(shutil.which("psql") is not None, "the psql client is not installed (apt-get install postgresql-client)")
    name = _scratch_name("cr_pagila")
    admin = sa.create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        for part in ("pagila-schema.sql", "pagila-data.sql"):
            subprocess.run(
                ["psql", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres", "-d", name,
                 "-f", str(corpus / "db" / "pagila" / part)],
                check=True, capture_output=True,
            )
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


S3_CONN_ID = "cleanroom_test_s3"
S3_BUCKET = "cleanroom-test"


@pytest.fixture(scope="session")
def s3_endpoint():
    """One moto S3 server on 127.0.0.1 for the whole session, with an empty bucket.

    Session-wide because Airflow caches the S3 filesystem per conn_id: a server restarted on
    another port would break every later call. Yields endpoint URL, conn_id and bucket name.
    """
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        need(False, "moto[server] is not installed; install the project's `test` extra")
    import json

    import boto3

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in ("AIRFLOW_CONN_CLEANROOM_TEST_S3",)}
    os.environ["AIRFLOW_CONN_CLEANROOM_TEST_S3"] = json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
    )
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=S3_BUCKET)
    try:
        yield {"endpoint_url": endpoint, "conn_id": S3_CONN_ID, "bucket": S3_BUCKET, "client": client}
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


def psql_file(dbname: str, script: Path) -> None:
    """Run a SQL file with psql against a local database, stopping at the first error."""
    need(shutil.which("psql") is not None, "the psql client is not installed (apt-get install postgresql-client)")
    import subprocess

    done = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres", "-d", dbname, "-f", str(script)],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
