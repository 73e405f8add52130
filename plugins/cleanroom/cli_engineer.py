"""Engineer commands: ``list``, ``pull`` and ``restore`` published snapshots.

They need only the bucket settings of a source in cleanroom.yaml: they never open the source
database and never read the masking policy. A snapshot that fails verification (a file changed,
missing or unlisted) exits with 1; bad arguments and a target that is not empty exit with 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from masking.errors import ArtifactError, BucketError

log = logging.getLogger(__name__)
EXIT_OK, EXIT_FAILED = 0, 1


def register(subparsers) -> None:
    """Add ``list``, ``pull`` and ``restore`` to the ``cleanroom`` command line."""
    p = subparsers.add_parser("list", help="list the complete published versions of a source, newest first")
    p.add_argument("source")
    p.set_defaults(func=cmd_list)

    p = subparsers.add_parser("pull", help="download and verify one version of a source's snapshot")
    p.add_argument("source")
    p.add_argument("--version", help="version id (default: the one LATEST names)")
    p.add_argument("--dest", required=True, type=Path, help="new or empty folder to download into")
    p.set_defaults(func=cmd_pull)

    p = subparsers.add_parser(
        "restore", help="verify a snapshot and load it into PostgreSQL, MySQL/MariaDB, SQLite or DuckDB",
    )
    p.add_argument("source")
    p.add_argument("--version", help="version id (default: the one LATEST names)")
    p.add_argument(
        "--into", required=True,
        help="target database URL: postgresql://USER@HOST/DB, mysql://USER@HOST/DB, sqlite:///FILE, duckdb:///FILE",
    )
    p.add_argument(
        "--from", dest="from_dir", type=Path, help="restore a folder made by `cleanroom pull` (verified again)",
    )
    p.add_argument("--replace", action="store_true", help="drop target tables that already hold rows")
    p.add_argument(
        "--mysql-method", choices=("auto", "load-data", "insert"), default="auto",
        help="MySQL/MariaDB bulk load: LOAD DATA LOCAL INFILE when the server permits it (auto), or INSERT batches",
    )
    p.set_defaults(func=cmd_restore)


def _bucket(name: str):
    from cleanroom.bucket import Bucket
    from cleanroom.config import get_source

    bucket = Bucket.for_source(get_source(name))
    bucket.check()
    return bucket


def _failed(exc: Exception) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return EXIT_FAILED


def cmd_list(args: argparse.Namespace) -> int:
    from cleanroom import snapshot

    try:
        bucket = _bucket(args.source)
        versions = list(reversed(snapshot.complete_versions(bucket, args.source)))
        latest = snapshot.read_latest(bucket, args.source)
        if not versions:
            print(f"no published version of {args.source} in {bucket.uri()}")
            return EXIT_OK
        print(f"{'':2}{'version':<64}{'created (UTC)':<22}{'tables':>7}{'rows':>12}{'size':>11}")
        for version in versions:
            manifest = snapshot.read_manifest(bucket, args.source, version)
            rows = sum(int(t["rows"]) for t in manifest["tables"].values())
            size = sum(int(f["bytes"]) for f in manifest["files"])
            mark = "* " if version == latest else "  "
            created = str(manifest.get("created_at", ""))[:19].replace("T", " ")
            print(f"{mark}{version:<64} {created:<22}{len(manifest['tables']):>7}{rows:>12}{_size(size):>11}")
        print(f"\n* = LATEST ({latest or 'none'})")
    except (ArtifactError, BucketError) as exc:
        return _failed(exc)
    return EXIT_OK


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def cmd_pull(args: argparse.Namespace) -> int:
    from cleanroom import pull

    try:
        snap = pull.pull(_bucket(args.source), args.source, args.dest, args.version)
    except (ArtifactError, BucketError) as exc:
        return _failed(exc)
    files = snap.manifest["files"]
    print(f"pulled {snap.source} version {snap.version} into {snap.folder}")
    print(f"  {len(files)} file(s), {_size(sum(f['bytes'] for f in files))}, every SHA-256 and size verified")
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    from cleanroom import pull, restore

    restore.parse_target(args.into)  # bad URLs fail before anything is downloaded
    try:
        if args.from_dir:
            snap = pull.verify_folder(args.from_dir)
            _check_matches(snap, args)
            result = restore.restore(snap, args.into, replace=args.replace, mysql_method=args.mysql_method)
        else:
            bucket = _bucket(args.source)
            with tempfile.TemporaryDirectory(prefix="cleanroom-restore-") as scratch:
                snap = pull.pull(bucket, args.source, Path(scratch) / "snapshot", args.version)
                result = restore.restore(snap, args.into, replace=args.replace, mysql_method=args.mysql_method)
    except (ArtifactError, BucketError) as exc:
        return _failed(exc)
    except restore.DRIVER_ERRORS as exc:
        return _failed(f"restore into {restore.redacted(args.into)} failed: {type(exc).__name__}: {exc}")

    print(
        f"restored {snap.source} version {snap.version} into {result.target} "
        f"({result.method}, {result.seconds:.1f}s)"
    )
    for name, rows in result.tables.items():
        print(f"  {name:<30}{rows:>12} row(s)")
    print(f"  {result.constraints} key/foreign-key constraint(s) added; row counts match the manifest")
    if result.replaced:
        print(f"  replaced existing table(s): {', '.join(result.replaced)}")
    return EXIT_OK


def _check_matches(snap, args: argparse.Namespace) -> None:
    if snap.source != args.source or (args.version and snap.version != args.version):
        raise ArtifactError(
            f"--from {args.from_dir} holds {snap.source} version {snap.version}, not {args.source}"
            f"{' version ' + args.version if args.version else ''}"
        )
