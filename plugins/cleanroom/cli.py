"""The ``cleanroom`` command line.

Operators: ``run SOURCE`` (one refresh now, real Airflow, no scheduler), ``check SOURCE``
(policy against the live schema, nothing extracted), ``demo``, ``transforms``.
Engineers: ``list``, ``pull`` and ``restore`` need only the bucket settings of a source.
Exit codes: 0 success, 1 the job failed (nothing published), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from masking.errors import CleanroomError

log = logging.getLogger("cleanroom")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        import warnings

        # Third-party deprecation chatter is for their maintainers, not for this command's user.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*deprecated.*")
    import os

    if args.config:
        os.environ["CLEANROOM_CONFIG"] = str(Path(args.config).resolve())
    if not args.verbose:
        # Airflow's per-task chatter drowns the summary; -v brings it back.
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    try:
        return args.func(args)
    except CleanroomError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cleanroom", description="Sanitized production snapshots for sandboxes.")
    parser.add_argument("--config", help="path to cleanroom.yaml (default: $CLEANROOM_CONFIG or ./cleanroom.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run one source's refresh DAG now (real Airflow, no scheduler)")
    p.add_argument("source")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check", help="check a source's policy against its live schema; reads no rows")
    p.add_argument("source")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("demo", help="build the demo database, run the demo source, print a summary")
    p.add_argument("--customers", type=int, default=2000, help="demo size (default 2000 customers)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("transforms", help="list the masking transforms and their parameters")
    p.set_defaults(func=cmd_transforms)

    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands():
    """Sub-commands that live in their own modules (engineer commands, scan)."""
    from cleanroom import cli_engineer, cli_scan

    return [cli_engineer.register, cli_scan.register]


# --- commands --------------------------------------------------------------------------------


def cmd_run(args) -> int:
    from cleanroom.config import get_source

    source = get_source(args.source)
    return run_and_report(source)


def run_and_report(source) -> int:
    from cleanroom import runner

    dag_run = runner.run_dag(source.dag_id)
    state = str(getattr(dag_run.state, "value", dag_run.state))
    if state != "success":
        print(f"\nrefresh of {source.name} FAILED (DAG run state: {state}); nothing was published, LATEST did not move.", file=sys.stderr)
        for task_id, map_index, ti_state in runner.failed_tasks(dag_run):
            suffix = f"[{map_index}]" if map_index >= 0 else ""
            print(f"  task {task_id}{suffix}: {ti_state}", file=sys.stderr)
        return EXIT_FAILED
    print_summary(source)
    return EXIT_OK


def cmd_check(args) -> int:
    from cleanroom import pipeline
    from cleanroom import source as src
    from cleanroom.config import get_source

    source = get_source(args.source)
    engine = pipeline.engine_for(source)
    try:
        schema = src.reflect(engine, source.db_schema)
    finally:
        engine.dispose()
    policy = pipeline.checked_policy(source, schema)
    masked = sum(1 for t in policy.tables.values() for r in t.columns.values() if r.masks)
    print(f"policy {source.policy} covers all {len(schema.tables)} table(s) of {source.name}; {masked} column(s) masked")
    return EXIT_OK


def cmd_demo(args) -> int:
    from cleanroom import demo
    from cleanroom.config import load_config

    sources = load_config()
    source = sources.get("demo")
    if source is None or not source.url or not source.url.startswith("sqlite:///"):
        print("error: the config has no `demo` source with a sqlite:/// url", file=sys.stderr)
        return EXIT_USAGE
    db_path = Path(source.url[len("sqlite:///"):])
    counts = demo.build(db_path, customers=args.customers)
    print(f"built demo database {db_path}: " + ", ".join(f"{t} {n}" for t, n in counts.items()))
    return run_and_report(source)


def cmd_transforms(args) -> int:
    from masking.transforms import catalogue

    for entry in catalogue():
        flag = " (injective)" if entry["injective"] else ""
        print(f"{entry['name']}{flag}: {entry['description']}")
        print(f"    accepts: {', '.join(entry['accepts'])}")
        for name, doc in entry["params"].items():
            print(f"    {name}: {doc}")
    return EXIT_OK


def print_summary(source) -> None:
    from cleanroom import snapshot
    from cleanroom.bucket import Bucket

    bucket = Bucket.for_source(source)
    version = snapshot.read_latest(bucket, source.name)
    manifest = snapshot.read_manifest(bucket, source.name, version)
    validation = manifest["validation"]
    print()
    print(f"cleanroom snapshot of '{source.name}' published: version {version}")
    print(f"  location:   {bucket.uri(snapshot.version_prefix(source.name, version))}/")
    print(f"  key id:     {manifest['key_id']}   policy sha256: {manifest['policy_sha256'][:16]}")
    print()
    print(f"  {'table':<22}{'rows':>9}  masked columns")
    for name, table in manifest["tables"].items():
        masked = [f"{c['name']} ({c['transform']})" for c in table["columns"] if c["transform"] != "keep"]
        print(f"  {name:<22}{table['rows']:>9}  {', '.join(masked) or '-'}")
    for name in manifest["dropped_tables"]:
        print(f"  {name:<22}{'-':>9}  dropped whole (not read, not published)")
    checks = validation.get("checks", [])
    failed = [c for c in checks if not c.get("passed")]
    print()
    print(f"  validation: {'PASSED' if validation.get('passed') else 'FAILED'} - {len(checks)} check(s), {len(failed)} failed ({validation.get('engine', '')})")
    sql = [f for f in manifest["files"] if f.get("kind") == "sql"]
    print(f"  artifacts:  {len([f for f in manifest['files'] if f.get('table')])} Parquet file(s), SQL: {', '.join(f['path'] for f in sql) or '-'}, manifest.json")
    reports = [f["path"] for f in manifest["files"] if f.get("kind") == "report" and f["path"].endswith(".html")]
    if reports:
        print(f"  report:     {reports[0]} (privacy report for reviewers)")
    print(f"  LATEST ->   {version}")


def print_json(data) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
