"""docker-compose.yml is a startable stack: checked as YAML, since no Docker engine runs here.

Known limitation: these tests read the file only; they do not pull the images or start the
stack, so a tag that does not exist upstream or a command that fails at start is not caught.
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.refresh_helpers import ROOT

COMPOSE = ROOT / "docker-compose.yml"
AIRFLOW_SERVICES = ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor")
PROJECT_PATHS = ("dags", "plugins", "masking", "expectations", "policies", "cleanroom.yaml")


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def _mounts(service: dict) -> dict[str, str]:
    """Host path (relative to the repository) -> container path, for bind mounts."""
    out = {}
    for volume in service.get("volumes", []):
        host, container, *_ = volume.split(":")
        if host.startswith("./"):
            out[host[2:]] = container
    return out


def _image_of(services: dict, name: str) -> str:
    service = services[name]
    if "image" in service and "build" not in service:
        return service["image"]
    dockerfile = ROOT / service["build"].get("context", ".") / service["build"]["dockerfile"]
    return next(line.split()[1] for line in dockerfile.read_text().splitlines() if line.startswith("FROM "))


def test_compose_declares_airflow_metadata_db_and_minio_services(services):
    assert {"airflow-db", "minio", "minio-init", "airflow-init", *AIRFLOW_SERVICES} <= set(services)


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_service_mounts_every_project_path_that_exists(services, name):
    mounts = _mounts(services[name])

    for path in PROJECT_PATHS:
        assert (ROOT / path).exists(), f"{path} is mounted but missing from the repository"
        assert mounts.get(path) == f"/opt/cleanroom/{path}", f"{name} does not mount ./{path}"
    for host in mounts:
        assert (ROOT / host).exists(), f"{name} mounts ./{host}, which does not exist"
    assert services[name]["environment"]["CLEANROOM_CONFIG"] == "/opt/cleanroom/cleanroom.yaml"


def test_airflow_image_installs_the_project_editable_from_opt_cleanroom(services):
    dockerfile = ROOT / services["airflow-scheduler"]["build"]["dockerfile"]

    text = dockerfile.read_text()
    assert "pip install --no-cache-dir -e /opt/cleanroom" in text
    # The keyed-hash extension is compiled at install: setup.py and a compiler must be there.
    assert "setup.py" in text.split("pip install")[0] and "gcc" in text
    assert _image_of(services, "airflow-scheduler") == "apache/airflow:3.3.2"


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_service_waits_for_metadata_db_migration_and_bucket(services, name):
    depends = services[name]["depends_on"]

    assert depends["airflow-db"]["condition"] == "service_healthy"
    assert depends["airflow-init"]["condition"] == "service_completed_successfully"
    assert depends["minio-init"]["condition"] == "service_completed_successfully"
    assert "healthcheck" in services["airflow-db"]


def test_bucket_job_waits_for_healthy_minio_and_creates_the_bucket(services):
    job = services["minio-init"]

    assert job["depends_on"]["minio"]["condition"] == "service_healthy"
    assert "healthcheck" in services["minio"]
    assert "mc mb --ignore-existing local/sandbox-bucket" in job["entrypoint"]


def test_minio_publishes_s3_and_console_ports(services):
    assert {"9000:9000", "9001:9001"} <= set(services["minio"]["ports"])


def test_airflow_metadata_db_is_the_postgres_service(services):
    url = services["airflow-scheduler"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]

    assert url.startswith("postgresql") and "@airflow-db:5432/" in url


def test_sandbox_s3_connection_is_json_pointing_at_minio(services):
    conn = json.loads(services["airflow-scheduler"]["environment"]["AIRFLOW_CONN_SANDBOX_S3"])

    assert conn["conn_type"] == "aws"
    assert conn["extra"]["endpoint_url"] == "http://minio:9000"


@pytest.mark.parametrize("name", ["airflow-db", "minio", "minio-init", "airflow-scheduler"])
def test_images_are_pinned_to_a_tag_other_than_latest(services, name):
    image = _image_of(services, name)
    _, _, tag = image.rpartition(":")

    assert "/" not in tag and tag, f"{name}: image {image!r} has no tag"
    assert tag != "latest", f"{name}: image {image!r} is not pinned"
