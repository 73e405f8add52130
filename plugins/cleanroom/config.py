"""Load ``cleanroom.yaml``: the sources, their policies, buckets and schedules.

The file is found through ``CLEANROOM_CONFIG`` or as ``cleanroom.yaml`` in the working
directory. Relative paths inside it (policies, local buckets) are relative to the file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from masking.errors import ConfigError

DEFAULT_SCHEDULE = "0 2 * * *"  # nightly, 02:00 UTC
DEFAULT_RETAIN = 7
DEFAULT_BATCH_ROWS = 50_000
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
URL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb")
KNOWN_KEYS = {
    "name", "conn_id", "url", "policy", "schedule", "bucket", "bucket_conn_id", "retain", "key_conn_id",
    "key_variable", "demo_key", "batch_rows", "db_schema", "work_dir", "description", "sse", "sse_kms_key_id",
    "consistency", "workers", "chunk_rows", "subset", "mask_workers", "snapshot_hold_minutes",
}
DEFAULT_CHUNK_ROWS = 2_000_000


@dataclass(frozen=True)
class SourceConfig:
    """One configured source: where to read, how to mask, where to publish."""

    name: str
    policy: Path
    bucket: str
    conn_id: str | None = None
    url: str | None = None
    schedule: str | None = DEFAULT_SCHEDULE
    bucket_conn_id: str | None = None
    retain: int = DEFAULT_RETAIN
    key_conn_id: str = "cleanroom_masking_key"
    key_variable: str = "cleanroom_masking_key"
    demo_key: bool = False
    batch_rows: int = DEFAULT_BATCH_ROWS
    db_schema: str | None = None
    work_dir: Path = field(default_factory=lambda: Path(".cleanroom-work"))
    description: str = ""
    sse: str | None = None
    sse_kms_key_id: str | None = None
    consistency: str = "per_table"
    workers: int = 2
    chunk_rows: int | None = DEFAULT_CHUNK_ROWS
    subset: dict | None = None
    mask_workers: int = 2
    snapshot_hold_minutes: int = 360

    @property
    def dag_id(self) -> str:
        return f"cleanroom_{self.name}"

    def bucket_settings(self) -> dict[str, Any]:
        return {"url": self.bucket, "conn_id": self.bucket_conn_id, "sse": self.sse, "sse_kms_key_id": self.sse_kms_key_id}


def config_path() -> Path:
    return Path(os.environ.get("CLEANROOM_CONFIG", "cleanroom.yaml")).resolve()


def load_config(path: str | Path | None = None) -> dict[str, SourceConfig]:
    """Read the config file and return its sources by name; every problem is reported at once."""
    path = Path(path).resolve() if path else config_path()
    if not path.is_file():
        raise ConfigError(
            f"no cleanroom config at {path}; create cleanroom.yaml there or point CLEANROOM_CONFIG at one"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    entries = data.get("sources") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: expected a `sources:` list with at least one source")
    problems: list[str] = []
    sources: dict[str, SourceConfig] = {}
    defaults = data.get("defaults") or {}
    for index, entry in enumerate(entries):
        source = _parse_source({**defaults, **(entry or {})}, path.parent, index, problems)
        if source is None:
            continue
        if source.name in sources:
            problems.append(f"sources[{index}]: duplicate source name {source.name!r}")
        sources[source.name] = source
    if problems:
        raise ConfigError(f"{path}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))
    return sources


def _parse_source(entry: dict, base: Path, index: int, problems: list[str]) -> SourceConfig | None:
    where = f"sources[{index}]"
    name = entry.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        problems.append(f"{where}: `name` must be lower-case letters, digits and underscores, got {name!r}")
        return None
    where = f"source {name!r}"
    before = len(problems)
    unknown = sorted(set(entry) - KNOWN_KEYS)
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(unknown)}")
    if bool(entry.get("conn_id")) == bool(entry.get("url")):
        problems.append(f"{where}: set exactly one of `conn_id` (an Airflow connection) or `url` (a SQLAlchemy URL)")
    url = entry.get("url")
    if url and str(url).split(":", 1)[0].split("+", 1)[0] not in URL_SCHEMES:
        problems.append(f"{where}: `url` must start with one of {', '.join(URL_SCHEMES)} (got scheme {str(url).split(':', 1)[0]!r})")
    if url and str(url).startswith("sqlite:///") and not str(url).startswith("sqlite:////"):
        url = "sqlite:///" + str((base / str(url)[len("sqlite:///"):]).resolve())
    policy = entry.get("policy")
    if not policy:
        problems.append(f"{where}: `policy` (path to the masking policy file) is required")
    bucket = str(entry.get("bucket") or "")
    if bucket.startswith("file://"):
        local = bucket[len("file://"):]
        bucket = (base / local).resolve().as_uri() if not local.startswith("/") else bucket
    elif not bucket.startswith("s3://"):
        problems.append(f"{where}: `bucket` must be file://PATH or s3://BUCKET[/prefix], got {bucket!r}")
    retain = entry.get("retain", DEFAULT_RETAIN)
    if not isinstance(retain, int) or isinstance(retain, bool) or retain < 1:
        problems.append(f"{where}: `retain` must be a whole number >= 1, got {retain!r}")
    batch_rows = entry.get("batch_rows", DEFAULT_BATCH_ROWS)
    if not isinstance(batch_rows, int) or batch_rows < 100:
        problems.append(f"{where}: `batch_rows` must be a whole number >= 100")
    consistency = entry.get("consistency", "per_table")
    if consistency not in ("snapshot", "per_table", "shared_snapshot"):
        problems.append(f"{where}: `consistency` must be per_table, snapshot or shared_snapshot, got {consistency!r}")
    elif consistency == "shared_snapshot" and url and not url.split(":", 1)[0].startswith("postgres"):
        problems.append(
            f"{where}: `consistency: shared_snapshot` needs a PostgreSQL source (only PostgreSQL shares a snapshot "
            "between connections); use `snapshot` (one task, one transaction) or `per_table`"
        )
    hold = entry.get("snapshot_hold_minutes", 360)
    if not isinstance(hold, int) or isinstance(hold, bool) or not 1 <= hold <= 2880:
        problems.append(f"{where}: `snapshot_hold_minutes` must be a whole number from 1 to 2880")
    workers = entry.get("workers", 2)
    if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= 64:
        problems.append(f"{where}: `workers` must be a whole number from 1 to 64")
    mask_workers = entry.get("mask_workers", 2)
    if not isinstance(mask_workers, int) or isinstance(mask_workers, bool) or not 1 <= mask_workers <= 64:
        problems.append(f"{where}: `mask_workers` must be a whole number from 1 to 64 (1 masks in the task's own process)")
    chunk_rows = entry.get("chunk_rows", DEFAULT_CHUNK_ROWS)
    if chunk_rows is not None and (not isinstance(chunk_rows, int) or chunk_rows < 1000):
        problems.append(f"{where}: `chunk_rows` must be a whole number >= 1000, or null to never split tables")
    subset = entry.get("subset")
    if subset is not None and not (isinstance(subset, dict) and isinstance(subset.get("roots"), dict)):
        problems.append(f"{where}: `subset` must be a mapping with `roots:`, e.g. {{roots: {{customer: {{percent: 10}}}}}}")
    if len(problems) > before:
        return None
    work_dir = Path(entry.get("work_dir") or os.environ.get("CLEANROOM_WORK_DIR") or base / ".cleanroom-work")
    return SourceConfig(
        name=name,
        policy=(base / policy).resolve(),
        bucket=bucket.rstrip("/"),
        conn_id=entry.get("conn_id"),
        url=url,
        schedule=entry.get("schedule", DEFAULT_SCHEDULE),
        bucket_conn_id=entry.get("bucket_conn_id"),
        retain=retain,
        key_conn_id=entry.get("key_conn_id", "cleanroom_masking_key"),
        key_variable=entry.get("key_variable", "cleanroom_masking_key"),
        demo_key=bool(entry.get("demo_key", False)),
        batch_rows=batch_rows,
        db_schema=entry.get("db_schema"),
        work_dir=(base / work_dir).resolve() if not work_dir.is_absolute() else work_dir,
        description=entry.get("description", ""),
        sse=entry.get("sse"),
        sse_kms_key_id=entry.get("sse_kms_key_id"),
        consistency=consistency,
        workers=workers,
        chunk_rows=chunk_rows,
        subset=subset,
        mask_workers=mask_workers,
        snapshot_hold_minutes=hold,
    )


def get_source(name: str, path: str | Path | None = None) -> SourceConfig:
    sources = load_config(path)
    if name not in sources:
        raise ConfigError(f"no source named {name!r} in the config; configured sources: {', '.join(sorted(sources))}")
    return sources[name]
