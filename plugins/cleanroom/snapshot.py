"""Snapshot layout in the bucket: versions, manifests, ``LATEST`` and retention.

::

    <bucket>/<source>/LATEST                      names the newest validated version (written last)
    <bucket>/<source>/<version>/manifest.json     present only once the version is complete
    <bucket>/<source>/<version>/tables/<table>/part-00000.parquet
    <bucket>/<source>/<version>/sql/<source>.postgresql.sql
    <bucket>/<source>/<version>/report/privacy-report.html

A version folder without ``manifest.json`` is invisible to readers: it is either being
written or left over from a failed run, and is removed by the next refresh.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from typing import Any

from cleanroom.bucket import Bucket
from masking.errors import ArtifactError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
LATEST = "LATEST"
MANIFEST_FORMAT = "cleanroom.manifest/1"
VERSION = re.compile(r"^\d{8}T\d{9}Z-[a-z0-9-]{1,40}$")


def new_version(run_id: str, now: dt.datetime | None = None) -> str:
    """A sortable version id: UTC time, then a slug of the Airflow run id."""
    now = now or dt.datetime.now(dt.timezone.utc)
    slug = re.sub(r"[^a-z0-9]+", "-", run_id.lower()).strip("-")
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:6]
    # Milliseconds: two runs started within one second still get ordered ids.
    return f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z-{slug[:32].strip('-') or 'run'}-{digest}"


def version_prefix(source: str, version: str) -> str:
    return f"{source}/{version}"


def table_key(source: str, version: str, table: str, part: int = 0) -> str:
    return f"{source}/{version}/tables/{table}/part-{part:05d}.parquet"


def sql_key(source: str, version: str, dialect: str = "postgresql") -> str:
    return f"{source}/{version}/sql/{source}.{dialect}.sql"


def manifest_key(source: str, version: str) -> str:
    return f"{source}/{version}/{MANIFEST}"


def read_latest(bucket: Bucket, source: str) -> str | None:
    key = f"{source}/{LATEST}"
    if not bucket.exists(key):
        return None
    data = json.loads(bucket.read_bytes(key))
    return data["version"]


def complete_versions(bucket: Bucket, source: str) -> list[str]:
    """Versions that have a manifest, oldest first."""
    return [v for v in bucket.list_dirs(source) if VERSION.match(v) and bucket.exists(manifest_key(source, v))]


def incomplete_versions(bucket: Bucket, source: str) -> list[str]:
    return [v for v in bucket.list_dirs(source) if VERSION.match(v) and not bucket.exists(manifest_key(source, v))]


def write_manifest(bucket: Bucket, manifest: dict[str, Any]) -> str:
    data = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False).encode()
    bucket.write_bytes(manifest_key(manifest["source"], manifest["version"]), data)
    return hashlib.sha256(data).hexdigest()


def read_manifest(bucket: Bucket, source: str, version: str) -> dict[str, Any]:
    key = manifest_key(source, version)
    if not bucket.exists(key):
        raise ArtifactError(
            f"version {version!r} of source {source!r} has no manifest in {bucket.uri()}: it is incomplete or does "
            f"not exist; run `cleanroom list {source}` to see published versions"
        )
    try:
        manifest = json.loads(bucket.read_bytes(key))
    except ValueError as exc:
        raise ArtifactError(f"manifest of {source}/{version} is not valid JSON; the snapshot is damaged") from exc
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ArtifactError(f"manifest of {source}/{version} has format {manifest.get('format')!r}, expected {MANIFEST_FORMAT}")
    return manifest


def advance_latest(bucket: Bucket, source: str, version: str, manifest_sha256: str) -> bool:
    """Point LATEST at ``version`` unless it already names a newer one; return whether it moved.

    Versions sort by creation time, so LATEST never moves backwards when a manual and a
    scheduled run overlap. Known limitation: the read-compare-write is not atomic on S3;
    two publishes within the same instant could both write (the later write wins).
    """
    current = read_latest(bucket, source)
    if current is not None and current >= version:
        log.warning("LATEST of %s already names %s, newer than %s; leaving it", source, current, version)
        return False
    body = {"version": version, "manifest_sha256": manifest_sha256, "published_at": dt.datetime.now(dt.timezone.utc).isoformat()}
    bucket.write_bytes(f"{source}/{LATEST}", json.dumps(body, indent=2).encode())
    return True


def apply_retention(bucket: Bucket, source: str, retain: int) -> list[str]:
    """Keep ``retain`` complete versions, always including the one LATEST names; delete the rest.

    Normally these are the newest ``retain``. When LATEST names an older version (a newer run
    published but did not move it), LATEST and the newest ``retain - 1`` are kept.
    """
    latest = read_latest(bucket, source)
    versions = complete_versions(bucket, source)
    keep = set(versions[-retain:]) if retain > 0 else set()
    if latest in versions and latest not in keep:
        keep = set(versions[-(retain - 1):]) if retain > 1 else set()
        keep.add(latest)
    doomed = [v for v in versions if v not in keep]
    for version in doomed:
        # Manifest first: the version turns invisible before its data goes.
        bucket.path(manifest_key(source, version)).unlink()
        bucket.delete_prefix(version_prefix(source, version))
        log.info("retention: removed %s/%s", source, version)
    return doomed


def remove_incomplete(bucket: Bucket, source: str, keep: str | None = None, older_than: dt.timedelta | None = None) -> list[str]:
    """Remove version folders that never got a manifest (failed or killed runs)."""
    now = dt.datetime.now(dt.timezone.utc)
    removed = []
    for version in incomplete_versions(bucket, source):
        if version == keep:
            continue
        created = dt.datetime.strptime(version[:15], "%Y%m%dT%H%M%S").replace(tzinfo=dt.timezone.utc)
        if older_than is not None and now - created < older_than:
            continue
        bucket.delete_prefix(version_prefix(source, version))
        removed.append(version)
    return removed
