"""The sandbox bucket: one code path for S3 (through the Airflow amazon provider) and folders.

Both go through Airflow's ``ObjectStoragePath``: ``s3://bucket/prefix`` with an Airflow AWS
connection (an ``endpoint_url`` in its extra points it at MinIO or another S3-compatible
store), or ``file:///path`` for a local folder.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from typing import IO, Any

from masking.errors import BucketError

log = logging.getLogger(__name__)


class HashingWriter:
    """Wrap a binary file: count bytes and compute SHA-256 while writing."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        data = memoryview(data).cast("B")  # any buffer (bytes, Arrow, numpy) as bytes, without a copy
        self.sha256.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()

    def close(self) -> None:
        self.raw.close()

    @property
    def closed(self) -> bool:
        return self.raw.closed

    def tell(self) -> int:
        return self.size

    def writable(self) -> bool:
        return True


class Bucket:
    """A bucket (or folder) under which snapshots are published, addressed by relative keys."""

    def __init__(self, url: str, conn_id: str | None = None, sse: str | None = None, sse_kms_key_id: str | None = None) -> None:
        if not (url.startswith("s3://") or url.startswith("file://")):
            raise BucketError(f"bucket URL must be s3://BUCKET[/prefix] or file:///PATH, got {url!r}")
        self.url = url.rstrip("/")
        self.conn_id = conn_id
        self.is_s3 = url.startswith("s3://")
        self._extra: dict[str, Any] = {}
        if sse:
            self._extra = {"ServerSideEncryption": sse, **({"SSEKMSKeyId": sse_kms_key_id} if sse_kms_key_id else {})}
        self._root = None

    @classmethod
    def for_source(cls, source) -> "Bucket":
        return cls(**source.bucket_settings())

    @property
    def root(self):
        if self._root is None:
            from airflow.sdk import ObjectStoragePath

            options = {"s3_additional_kwargs": self._extra} if self._extra else {}
            self._root = ObjectStoragePath(self.url + "/", conn_id=self.conn_id if self.is_s3 else None, **options)
        return self._root

    def path(self, key: str):
        return self.root / key

    def uri(self, key: str = "") -> str:
        return f"{self.url}/{key}" if key else self.url

    def check(self) -> None:
        """Fail clearly when the bucket does not exist or cannot be reached."""
        try:
            if self.is_s3:
                fs = self.root.fs
                bucket = self.url[len("s3://"):].split("/", 1)[0]
                if not fs.exists(bucket):
                    raise BucketError(
                        f"S3 bucket {bucket!r} does not exist or is not visible to connection {self.conn_id!r}; "
                        "create it or fix `bucket`/`bucket_conn_id` in cleanroom.yaml"
                    )
            else:
                self.root.mkdir(parents=True, exist_ok=True)
        except BucketError:
            raise
        except Exception as exc:  # noqa: BLE001 - every transport error means the same to the user
            raise BucketError(f"cannot reach bucket {self.url}: {exc.__class__.__name__}: {exc}") from exc

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self.path(key)
        if not self.is_s3:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.parent / f".{path.name}.tmp"
            tmp.write_bytes(data)
            tmp.rename(path)  # atomic on a local filesystem
            return
        with path.open("wb", **self._extra) as fh:
            fh.write(data)

    def open_write(self, key: str) -> IO[bytes]:
        path = self.path(key)
        if not self.is_s3:
            path.parent.mkdir(parents=True, exist_ok=True)
            return path.open("wb")
        # The S3 filesystem is cached per conn_id and ignores per-path storage options, so
        # server-side encryption settings travel with each upload (s3fs passes them to S3).
        return path.open("wb", **self._extra)

    def open_read(self, key: str) -> IO[bytes]:
        return self.path(key).open("rb")

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    def list_dirs(self, prefix: str) -> list[str]:
        """Names of the immediate sub-folders of ``prefix``."""
        path = self.path(prefix)
        try:
            if not path.exists():
                return []
            return sorted(p.name for p in path.iterdir() if p.is_dir())
        except FileNotFoundError:
            return []

    def walk_files(self, prefix: str) -> Iterator[str]:
        """Relative keys of every file under ``prefix``."""
        base = self.path(prefix)
        if not base.exists():
            return
        # Relative paths from relative_to() cannot be printed for S3 (fsspec paths must be
        # absolute), so cut the common prefix off the plain path strings instead.
        base_path = base.path.rstrip("/") + "/"
        for p in base.rglob("*"):
            if p.is_file() and p.path.startswith(base_path):
                yield f"{prefix.rstrip('/')}/{p.path[len(base_path):]}"

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; return how many files went."""
        keys = list(self.walk_files(prefix))
        for key in keys:
            self.path(key).unlink()
        path = self.path(prefix)
        if not self.is_s3 and path.exists():
            for sub in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: len(str(p)), reverse=True):
                sub.rmdir()
            path.rmdir()
        return len(keys)
