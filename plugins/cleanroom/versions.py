"""Versions of the tools that produced a snapshot, recorded in its manifest."""

from __future__ import annotations

from importlib import metadata

PACKAGES = (
    "cleanroom", "apache-airflow", "apache-airflow-providers-amazon", "great-expectations", "faker",
    "pyarrow", "sqlalchemy", "detect-secrets",
)


def tool_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
