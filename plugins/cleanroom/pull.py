"""Find, verify and download published snapshots.

Every file a manifest lists is checked against its SHA-256 and size while it streams, so a
tampered, truncated or half-deleted snapshot is refused before anyone restores it. A pull
writes into a hidden folder beside the destination and renames it into place only once every
file has been verified: a failed pull leaves no half-written destination behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from cleanroom import snapshot
from cleanroom.bucket import Bucket
from masking.errors import ArtifactError

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
TABLES_DIR = "tables/"


@dataclass(frozen=True)
class Snapshot:
    """A verified snapshot: its manifest and the local folder holding its files."""

    source: str
    version: str
    manifest: dict[str, Any]
    folder: Path

    def local(self, relative: str) -> Path:
        return self.folder / relative


def resolve_version(bucket: Bucket, source: str, version: str | None) -> str:
    """Return ``version``, or the one LATEST names; refuse an unknown or incomplete version."""
    if version is None:
        version = snapshot.read_latest(bucket, source)
        if version is None:
            raise ArtifactError(
                f"source {source!r} has no published snapshot in {bucket.uri()} (no LATEST); "
                f"run `cleanroom run {source}` first"
            )
    elif not snapshot.VERSION.match(version):
        raise ArtifactError(
            f"{version!r} is not a version id (expected e.g. 20240131T020000Z-scheduled-abc123); "
            f"run `cleanroom list {source}` to see published versions"
        )
    return version


def latest_manifest_sha256(bucket: Bucket, source: str) -> str | None:
    key = f"{source}/{snapshot.LATEST}"
    if not bucket.exists(key):
        return None
    return json.loads(bucket.read_bytes(key)).get("manifest_sha256")


def listed_files(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifest's file entries, after refusing paths that could escape the version folder."""
    files = manifest.get("files")
    if not isinstance(files, list) or not files:
        raise ArtifactError(f"manifest of {manifest.get('source')}/{manifest.get('version')} lists no files")
    for entry in files:
        path = PurePosixPath(str(entry.get("path", "")))
        if path.is_absolute() or ".." in path.parts or not path.parts or str(path) == snapshot.MANIFEST:
            raise ArtifactError(f"manifest lists an unsafe file path {str(path)!r}; the snapshot is damaged")
    return files


def _mismatch(source: str, version: str, path: str, what: str) -> ArtifactError:
    return ArtifactError(
        f"snapshot {source}/{version}: {path} {what}; the snapshot was changed after publication or "
        f"damaged in transit. Do not use it: pull another version (`cleanroom list {source}`) or "
        "publish a fresh one with `cleanroom run`"
    )


def copy_verified(
    read: IO[bytes], write: IO[bytes] | None, entry: dict[str, Any], where: tuple[str, str],
    advance: Callable[[int], None] = lambda n: None,
) -> None:
    """Stream ``read`` into ``write`` (if given), then compare SHA-256 and size with ``entry``."""
    digest = hashlib.sha256()
    size = 0
    while chunk := read.read(CHUNK_BYTES):
        digest.update(chunk)
        size += len(chunk)
        if write is not None:
            write.write(chunk)
        advance(len(chunk))
        if size > entry["bytes"]:
            break  # Longer than listed already: no need to read the rest.
    if size != entry["bytes"]:
        more = "+" if size > entry["bytes"] else ""
        raise _mismatch(*where, entry["path"], f"has {size}{more} bytes, the manifest lists {entry['bytes']}")
    if digest.hexdigest() != entry["sha256"]:
        raise _mismatch(*where, entry["path"], "does not match its SHA-256 in the manifest")


def _check_no_extra_parquet(present: set[str], files: list[dict[str, Any]], where: tuple[str, str]) -> None:
    listed = {f["path"] for f in files}
    extra = sorted(p for p in present - listed if p.startswith(TABLES_DIR) and p.endswith(".parquet"))
    if extra:
        what = f"is not listed in the manifest ({len(extra)} unlisted Parquet file(s))"
        raise _mismatch(*where, extra[0], what)


def _check_present(present: set[str], files: list[dict[str, Any]], where: tuple[str, str]) -> None:
    missing = [f["path"] for f in files if f["path"] not in present]
    if missing:
        raise _mismatch(*where, missing[0], f"is missing ({len(missing)} listed file(s) missing)")


def _progress(total: int, label: str):
    from tqdm import tqdm

    return tqdm(
        total=total, unit="B", unit_scale=True, desc=label, leave=False, disable=not sys.stderr.isatty(),
    )


def pull(bucket: Bucket, source: str, dest: Path, version: str | None = None) -> Snapshot:
    """Download one complete version into ``dest``, verifying every listed file on the way.

    ``dest`` must not exist or be an empty folder. The manifest is compared with the digest
    LATEST recorded when the pulled version is the one LATEST names.
    """
    dest = Path(dest).resolve()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ArtifactError(f"destination {dest} already exists and is not empty; choose a new folder")
    version = resolve_version(bucket, source, version)
    raw_manifest, manifest = _read_manifest(bucket, source, version)
    where = (source, version)
    files = listed_files(manifest)

    prefix = snapshot.version_prefix(source, version) + "/"
    present = {key[len(prefix):] for key in bucket.walk_files(prefix)}
    _check_present(present, files, where)
    _check_no_extra_parquet(present, files, where)

    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        with _progress(sum(f["bytes"] for f in files), f"pull {source}") as bar:
            for entry in files:
                target = staging / entry["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                with bucket.open_read(prefix + entry["path"]) as read, target.open("wb") as write:
                    copy_verified(read, write, entry, where, bar.update)
                log.debug("verified %s (%d bytes)", entry["path"], entry["bytes"])
        (staging / snapshot.MANIFEST).write_bytes(raw_manifest)
        if dest.exists():
            dest.rmdir()  # empty, checked above
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("pulled %s/%s into %s: %d file(s) verified", source, version, dest, len(files))
    return Snapshot(source, version, manifest, dest)


def _read_manifest(bucket: Bucket, source: str, version: str) -> tuple[bytes, dict[str, Any]]:
    manifest = snapshot.read_manifest(bucket, source, version)
    raw = bucket.read_bytes(snapshot.manifest_key(source, version))
    if snapshot.read_latest(bucket, source) == version:
        expected = latest_manifest_sha256(bucket, source)
        if expected and hashlib.sha256(raw).hexdigest() != expected:
            raise _mismatch(source, version, snapshot.MANIFEST, "does not match the SHA-256 that LATEST recorded")
    if manifest.get("source") != source or manifest.get("version") != version:
        raise _mismatch(source, version, snapshot.MANIFEST, "names another source or version")
    return raw, manifest


def verify_folder(folder: Path) -> Snapshot:
    """Verify a pulled folder (``cleanroom pull --dest``) against its own manifest.json.

    Known limitation: a local folder carries no LATEST, so a manifest edited together with the
    files it lists is not detected here; pull again from the bucket when in doubt.
    """
    folder = Path(folder).resolve()
    path = folder / snapshot.MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{folder} has no {snapshot.MANIFEST}; pass a folder made by `cleanroom pull`")
    try:
        manifest = json.loads(path.read_bytes())
    except ValueError as exc:
        raise ArtifactError(f"{path} is not valid JSON; pull the snapshot again") from exc
    if manifest.get("format") != snapshot.MANIFEST_FORMAT:
        raise ArtifactError(f"{path} has format {manifest.get('format')!r}, expected {snapshot.MANIFEST_FORMAT}")
    where = (manifest.get("source", "?"), manifest.get("version", "?"))
    files = listed_files(manifest)
    present = {p.relative_to(folder).as_posix() for p in _walk(folder)}
    _check_present(present, files, where)
    _check_no_extra_parquet(present, files, where)
    with _progress(sum(f["bytes"] for f in files), "verify") as bar:
        for entry in files:
            with (folder / entry["path"]).open("rb") as read:
                copy_verified(read, None, entry, where, bar.update)
    log.info("verified %d file(s) of %s/%s in %s", len(files), *where, folder)
    return Snapshot(where[0], where[1], manifest, folder)


def _walk(folder: Path) -> Iterator[Path]:
    return (p for p in folder.rglob("*") if p.is_file())
