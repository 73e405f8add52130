"""Benchmark: cleanroom against ``pg_dump`` on a generated PostgreSQL source.

Creates a fresh database ``cr_bench_<random>`` on 127.0.0.1:5432 with ``customers`` (personal
columns and free-text notes), ``orders`` and ``payments`` (card numbers), generated on the
server with ``generate_series``; at ``--scale 1``: 1,000,000 / 2,000,000 / 2,000,000 rows.
In the same run it measures:

(a) ``pg_dump`` (plain SQL to /dev/null) of the three tables, and of ``customers`` alone;
(b) ``pipeline.plan`` + ``pipeline.extract_table`` of ``customers`` alone, every chunk of it in
    turn (stream, mask, zstd Parquet into a local-folder bucket), in a child process so (d)
    its peak RSS is its own;
(c) a whole refresh through Airflow (``runner.run_dag``: plan, extract_mask per table,
    Great Expectations gate, SQL artifact, publish), in a child process with a fresh
    ``AIRFLOW_HOME``; Airflow's start-up (metadata database, execution API) is not timed;
(e) pganonymize and pynonymizer, from a separate venv under /tmp, each on a copy of the
    database (``CREATE DATABASE ... TEMPLATE``), if they install and run;
(f) every task of the DAG in a process of its own, as Airflow's executors run them, with the
    peak RSS of each task process.

Every figure is rows/s; ratios compare to pg_dump of the same tables in the same run. The
bench databases are dropped at the end, also on failure.

Run: ``.venv/bin/python bench/refresh_bench.py [--scale 0.1]``. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

PG = "postgresql://postgres@127.0.0.1:5432"
PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-X"]
TABLES = ("customers", "orders", "payments")
SOURCE = "bench"

SCHEMA_SQL = """
CREATE TABLE customers (
    id bigint PRIMARY KEY, full_name text NOT NULL, email varchar(120) NOT NULL UNIQUE, phone text,
    street text, birth_date date, note text, created_at timestamptz NOT NULL
);
CREATE TABLE orders (
    id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers (id), status text NOT NULL,
    total numeric(10, 2) NOT NULL, placed_at timestamptz NOT NULL
);
CREATE TABLE payments (
    id bigint PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders (id), card_number text NOT NULL,
    amount numeric(10, 2) NOT NULL, paid_at timestamptz NOT NULL
);
"""

# Server-side generation: names and streets from small arrays, pseudo-random picks by
# multiplicative hashing of the row number, so reruns give the same data.
DATA_SQL = """
INSERT INTO customers
SELECT i,
       f || ' ' || l,
       lower(f) || '.' || lower(l) || i || '@mail.example.org',
       '+1-' || (200 + i * 7 % 800) || '-' || (200 + i * 13 % 800) || '-' || lpad((i * 7919 % 10000)::text, 4, '0'),
       (1 + i * 31 % 9998) || ' ' || (ARRAY['Oak','Maple','Cedar','Pine','Elm','Lake','Hill','Park'])[1 + i % 8]
           || ' ' || (ARRAY['St','Ave','Rd','Blvd','Lane'])[1 + i % 5],
       date '1940-01-01' + (i * 7919 % 21900)::int,
       CASE WHEN i % 10 = 0 THEN 'Asked to be contacted at ' || lower(f) || '.' || lower(l) || i || '@mail.example.org'
            WHEN i % 10 = 5 THEN 'Call back on +1-' || (200 + i * 7 % 800) || '-' || (200 + i * 13 % 800) || '-'
                                 || lpad((i * 7919 % 10000)::text, 4, '0') || ' after 5pm'
            ELSE (ARRAY['Prefers delivery after 5pm.','Returned item, refund issued.','VIP customer.'])[1 + i % 3] END,
       timestamptz '2020-01-01' + (i * 104729 % 126000000) * interval '1 second'
FROM (SELECT i,
             (ARRAY['James','Mary','Robert','Patricia','John','Jennifer','Michael','Linda','David','Aisha'])[1 + i * 37 % 10] AS f,
             (ARRAY['Smith','Johnson','Brown','Garcia','Miller','Davis','Wilson','Taylor','Moore','Chen'])[1 + i * 53 % 10] AS l
      FROM generate_series(1::bigint, {customers}) AS i) AS g;
INSERT INTO orders
SELECT i, 1 + i * 7919 % {customers}, (ARRAY['new','paid','shipped','returned'])[1 + i % 4],
       (i * 104729 % 100000) / 100.0, timestamptz '2021-01-01' + (i * 7919 % 90000000) * interval '1 second'
FROM generate_series(1::bigint, {orders}) AS i;
INSERT INTO payments
SELECT i, 1 + i * 104729 % {orders},
       '4' || lpad((i * 2654435761 % 1000000000000000)::text, 15, '0'),
       (i * 7919 % 100000) / 100.0, timestamptz '2021-01-01' + (i * 104729 % 90000000) * interval '1 second'
FROM generate_series(1::bigint, {payments}) AS i;
ANALYZE;
"""

POLICY = """\
locale: en_US
tables:
  customers:
    columns:
      id: keep
      full_name: {fake: name}
      email: {fake: email}
      phone: {partial: {keep_last: 2}}
      street: {fake: street_address}
      birth_date: {fake: date_of_birth}
      note: scrub
      created_at: {date_shift: {max_days: 20, entity: id}}
  orders:
    columns:
      id: keep
      customer_id: keep
      status: keep
      total: keep
      placed_at: {date_shift: {max_days: 20, entity: customer_id}}
  payments:
    columns:
      id: keep
      order_id: keep
      card_number: {partial: {keep_last: 4}}
      amount: keep
      paid_at: {date_shift: {max_days: 20}}
"""


def psql(sql: str, db: str = "postgres") -> None:
    done = subprocess.run([*PSQL, "-d", db], input=sql, text=True, capture_output=True)
    if done.returncode:
        raise RuntimeError(f"psql failed on {db}: {done.stderr.strip()[:500]}")


def create_source(db: str, scale: float) -> dict[str, int]:
    counts = {"customers": int(1_000_000 * scale), "orders": int(2_000_000 * scale), "payments": int(2_000_000 * scale)}
    psql(f'CREATE DATABASE "{db}"')
    psql(SCHEMA_SQL + DATA_SQL.format(**counts), db)
    return counts


# Runs a command and reports its peak RSS: ru_maxrss of the children of this small wrapper,
# which are the command and whatever it starts (never the database server it talks to).
_MAXRSS_WRAPPER = (
    "import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
    "sys.stderr.write('\\nMAXRSS %d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
    "sys.exit(done.returncode)"
)


def timed(cmd: list[str], timeout: float | None = None, **kw) -> tuple[float, subprocess.CompletedProcess, int]:
    """Run ``cmd``; return wall seconds, the finished process and its peak RSS in bytes."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _MAXRSS_WRAPPER, *cmd], capture_output=True, text=True, timeout=timeout, **kw)
    seconds = time.perf_counter() - started
    lines = done.stderr.rstrip().splitlines()
    peak = int(lines[-1].split()[1]) * 1024 if lines and lines[-1].startswith("MAXRSS ") else 0
    done.stderr = "\n".join(lines[:-1]) if peak else done.stderr
    return seconds, done, peak


def pg_dump(db: str, tables: tuple[str, ...]) -> tuple[float, int]:
    cmd = ["pg_dump", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-f", "/dev/null"]
    for t in tables:
        cmd += ["-t", t]
    seconds, done, peak = timed(cmd)
    if done.returncode:
        raise RuntimeError(f"pg_dump failed: {done.stderr.strip()}")
    return seconds, peak


# --- child processes -------------------------------------------------------------------------


def child_extract(db: str, folder: str, mask_workers: str) -> dict:
    """(b): plan + extract_table of customers; prints rows, seconds and ru_maxrss (self and workers)."""
    from cleanroom import pipeline
    from cleanroom.config import SourceConfig

    root = Path(folder)
    source = SourceConfig(
        name=SOURCE, policy=root / "policy.yaml", bucket=(root / f"bucket-b{mask_workers}").as_uri(), url=f"{PG}/{db}",
        demo_key=True, work_dir=root / f"work-b{mask_workers}", mask_workers=int(mask_workers),
    )
    started = time.perf_counter()
    plan_ = pipeline.plan(source, "bench_extract")
    planned = time.perf_counter()
    # Every chunk of customers (a large table is split by key range), one after another.
    results = [pipeline.extract_table(source, plan_, j) for j in plan_["jobs"] if j["table"] == "customers"]
    return {
        "rows": sum(r["rows"] for r in results), "plan_seconds": planned - started,
        "extract_seconds": time.perf_counter() - planned,
        "bytes": sum(f["bytes"] for r in results for f in r["files"]),
        "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "workers_maxrss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
        "mask_workers": max(r["mask_processes"] for r in results),
    }


def _task_seconds(dag_run) -> dict[str, float]:
    """Wall seconds per task id (mapped task instances added up)."""
    seconds: dict[str, float] = {}
    for ti in dag_run.get_task_instances():
        if ti.start_date and ti.end_date:
            seconds[ti.task_id] = seconds.get(ti.task_id, 0.0) + (ti.end_date - ti.start_date).total_seconds()
    return seconds


def start_execution_api() -> None:
    """Build Airflow's in-process execution API, which ``dag.test()`` otherwise builds for its first task.

    A deployment's API server builds the same FastAPI application once, when it starts, not
    per DAG run; so does this, before the clock starts (about 3 s here).
    """
    import httpx
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    # The app generates its versioned routes on its first request: ask for its health.
    with httpx.Client(transport=in_process_api_server().transport, base_url="http://in-process") as client:
        client.get("/health").raise_for_status()


def child_refresh(folder: str) -> dict:
    """(c): a whole refresh through Airflow; Airflow's start-up happens before the clock starts.

    Start-up is the metadata database and the execution API (see :func:`start_execution_api`);
    its seconds are reported apart.
    """
    import pyarrow.parquet as pq

    from cleanroom import runner

    root = Path(folder)
    os.environ["AIRFLOW_HOME"] = str(root / "airflow")
    os.environ["CLEANROOM_CONFIG"] = str(root / "cleanroom.yaml")
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    runner.prepare_environment()
    before = time.perf_counter()
    runner.ensure_metadata_db()
    start_execution_api()
    startup = time.perf_counter() - before
    started = time.perf_counter()
    dag_run = runner.run_dag(f"cleanroom_{SOURCE}")
    seconds = time.perf_counter() - started
    state = str(getattr(dag_run.state, "value", dag_run.state))
    bucket = root / "bucket-c" / SOURCE
    latest = bucket / "LATEST"
    rows = {}
    if latest.exists():
        version = json.loads(latest.read_text())["version"]
        for path in sorted((bucket / version).rglob("*.parquet")):
            rows[path.parent.name] = rows.get(path.parent.name, 0) + pq.ParquetFile(path).metadata.num_rows  # chunks: several parts
    return {
        "state": state, "seconds": seconds, "startup_seconds": startup, "rows": rows, "failed": runner.failed_tasks(dag_run),
        "tasks": _task_seconds(dag_run),
        "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "workers_maxrss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
    }


def child_task(db: str, folder: str, step: str) -> dict:
    """(f): one pipeline step in a process of its own, as an Airflow worker runs one task.

    The steps hand each other JSON files, as XCom would; ``per_table`` consistency, so every
    table (or chunk) is its own extract task, the default mapped-task shape of the DAG.
    """
    from cleanroom import pipeline
    from cleanroom.config import SourceConfig

    root = Path(folder)
    state = root / "tasks"
    state.mkdir(exist_ok=True)
    source = SourceConfig(
        name=SOURCE, policy=root / "policy.yaml", bucket=(root / "bucket-f").as_uri(), url=f"{PG}/{db}",
        demo_key=True, work_dir=root / "work-f", consistency="per_table",
    )
    load = lambda name: json.loads((state / name).read_text())  # noqa: E731
    started = time.perf_counter()
    if step == "plan":
        out: Any = pipeline.plan(source, "bench_tasks")
        (state / "plan.json").write_text(json.dumps(out))
        out = {"jobs": len(out["jobs"])}
    elif step.startswith("extract:"):
        index = int(step.split(":")[1])
        plan_ = load("plan.json")
        (state / f"extract-{index:04d}.json").write_text(json.dumps(pipeline.extract_table(source, plan_, plan_["jobs"][index])))
        out = {}
    else:
        plan_ = load("plan.json")
        results = [json.loads(p.read_text()) for p in sorted(state.glob("extract-*.json"))]
        if step == "validate":
            (state / "validation.json").write_text(json.dumps(pipeline.validate(source, plan_, results)))
        elif step == "write_sql":
            (state / "sql.json").write_text(json.dumps(pipeline.write_sql(source, plan_, results)))
        else:
            pipeline.publish(source, plan_, results, load("validation.json"), load("sql.json"))
        out = {}
    return {
        **out, "seconds": time.perf_counter() - started,
        "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "workers_maxrss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
    }


def measure_tasks(db: str, root: Path, total: int, dump_all: float) -> list[str]:
    """(f): every task in its own process; peak RSS per task, the requirement's measure."""
    plan = run_child("_task", db, str(root), "plan")
    steps = [("plan", plan)]
    steps += [("extract", run_child("_task", db, str(root), f"extract:{i}")) for i in range(plan["jobs"])]
    steps += [(name, run_child("_task", db, str(root), name)) for name in ("validate", "write_sql", "publish")]
    seconds = sum(r["seconds"] for _, r in steps)
    ratio = total / seconds / (total / dump_all)
    lines = [f"{'(f) one process per task, step time only':<52} {total:10,} {seconds:8.1f} {rate(total, seconds)} "
             f"{ratio:9.3f}x {mb(max(r['ru_maxrss'] for _, r in steps))}"]
    for name in dict.fromkeys(n for n, _ in steps):
        own = [r for n, r in steps if n == name]
        line = f"    {name}: {len(own)} task(s), {sum(r['seconds'] for r in own):.1f}s, peak RSS {max(r['ru_maxrss'] for r in own) / 2**20:,.0f} MB"
        if name == "extract":
            # Only extract starts processes of its own (masking workers); elsewhere a child is a
            # fork+exec helper (platform's `file`), whose ru_maxrss is the parent's at the fork.
            line += f", largest masking worker {max(r['workers_maxrss'] for r in own) / 2**20:,.0f} MB"
        lines.append(line)
    return lines


def run_child(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    lines = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
    if done.returncode or not lines:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"child {args[0]} failed (exit {done.returncode}):\n{tail}")
    return json.loads(lines[-1][len("RESULT "):])


# --- other anonymisers -----------------------------------------------------------------------


def install_anonymisers(venv: Path) -> dict[str, str | None]:
    """Install pganonymize and pynonymizer into a separate venv; return tool -> problem (None if ok)."""
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    problems = {}
    for tool in ("pganonymize", "pynonymizer"):
        if (venv / "bin" / tool).exists():
            problems[tool] = None
            continue
        done = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", tool], capture_output=True, text=True, timeout=600
        )
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        problems[tool] = None if done.returncode == 0 else f"pip install failed: {last[:200]}"
    return problems


PGANONYMIZE_SCHEMA = """\
tables:
  - customers:
      primary_key: id
      chunk_size: 5000
      fields:
        - full_name: {provider: {name: fake.name}}
        - email: {provider: {name: fake.unique.email}}
        - phone: {provider: {name: fake.phone_number}}
        - street: {provider: {name: fake.street_address}}
        - birth_date: {provider: {name: fake.date_of_birth}}
"""

PYNONYMIZER_STRATEGY = """\
tables:
  customers:
    columns:
      full_name: name
      email: unique_email
      phone: phone_number
      street: street_address
      birth_date: date_of_birth
"""


def run_pganonymize(venv: Path, copy: str, folder: Path, timeout: float) -> tuple[float | None, str, int]:
    schema = folder / "pganonymize.yml"
    schema.write_text(PGANONYMIZE_SCHEMA)
    cmd = [str(venv / "bin" / "pganonymize"), "--schema", str(schema), "--dbname", copy,
           "--user", "postgres", "--host", "127.0.0.1", "--port", "5432"]
    return _run_tool(cmd, timeout)


def run_pynonymizer(venv: Path, copy: str, folder: Path, timeout: float) -> tuple[float | None, str, int]:
    strategy = folder / "pynonymizer.yml"
    strategy.write_text(PYNONYMIZER_STRATEGY)
    cmd = [str(venv / "bin" / "pynonymizer"), "--strategy", str(strategy), "--db-type", "postgres",
           "--db-host", "127.0.0.1", "--db-user", "postgres", "--db-name", copy, "--only-step", "ANONYMIZE_DB"]
    return _run_tool(cmd, timeout)


def _run_tool(cmd: list[str], timeout: float) -> tuple[float | None, str, int]:
    try:
        seconds, done, peak = timed(cmd, timeout=timeout, env={**os.environ, "PGPASSWORD": ""})
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s", 0
    if done.returncode:
        last = ((done.stderr or done.stdout).strip().splitlines() or ["no output"])[-1]
        return None, f"exit {done.returncode}: {last[:200]}", 0
    return seconds, "ok", peak


# --- the run ---------------------------------------------------------------------------------


def write_refresh_config(root: Path, db: str, batch_rows: int) -> None:
    (root / "cleanroom.yaml").write_text(textwrap.dedent(f"""\
        sources:
          - name: {SOURCE}
            url: {PG}/{db}
            policy: policy.yaml
            bucket: file://{root / 'bucket-c'}
            demo_key: true
            batch_rows: {batch_rows}
            work_dir: {root / 'work-c'}
            schedule: null
            consistency: snapshot
        """))


def masking_label(processes: int) -> str:
    return f"{processes} masking process(es)" if processes else "masked in the task process"


def mb(size: int) -> str:
    return f"{size / 2**20:,.0f} MB".rjust(9) if size else f"{'-':>9}"


def rate(rows: float, seconds: float | None) -> str:
    return f"{rows / seconds:12,.0f}" if seconds else f"{'-':>12}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 1M customers, 2M orders, 2M payments")
    parser.add_argument("--batch-rows", type=int, default=50_000)
    parser.add_argument("--skip-refresh", action="store_true", help="leave out (c), the Airflow run")
    parser.add_argument("--skip-tasks", action="store_true", help="leave out (f), one process per task")
    parser.add_argument("--skip-others", action="store_true", help="leave out pganonymize and pynonymizer")
    parser.add_argument("--anon-venv", type=Path, default=Path("/tmp/cleanroom-bench-anon-venv"),
                        help="separate venv for pganonymize and pynonymizer (never the project venv)")
    parser.add_argument("--other-timeout", type=float, default=600, help="seconds allowed per other tool")
    args = parser.parse_args()

    db = f"cr_bench_{secrets.token_hex(4)}"
    databases = [db]
    root = Path(tempfile.mkdtemp(prefix="cr-bench-"))
    (root / "policy.yaml").write_text(POLICY)
    write_refresh_config(root, db, args.batch_rows)
    lines: list[str] = []
    try:
        t0 = time.perf_counter()
        counts = create_source(db, args.scale)
        total = sum(counts.values())
        lines.append(f"source {db}: " + ", ".join(f"{t} {n:,}" for t, n in counts.items())
                     + f" rows, generated in {time.perf_counter() - t0:.1f} s")

        dump_all, rss_all = pg_dump(db, TABLES)
        dump_customers, rss_customers = pg_dump(db, ("customers",))
        lines.append(f"{'measurement':<52} {'rows':>10} {'seconds':>8} {'rows/s':>12} {'vs pg_dump':>10} {'peak RSS':>9}")
        lines.append(f"{'(a) pg_dump customers+orders+payments':<52} {total:10,} {dump_all:8.1f} {rate(total, dump_all)} "
                     f"{'1.00':>10} {mb(rss_all)}")
        lines.append(f"{'(a) pg_dump -t customers':<52} {counts['customers']:10,} {dump_customers:8.1f} "
                     f"{rate(counts['customers'], dump_customers)} {'1.00':>10} {mb(rss_customers)}")
        dump_rate_c = counts["customers"] / dump_customers

        for workers in ("1", "2"):
            b = run_child("_extract", db, str(root), workers)
            ratio_b = b["rows"] / b["extract_seconds"] / dump_rate_c
            label = f"(b) extract_table customers, {masking_label(b['mask_workers'])}"
            lines.append(f"{label:<52} {b['rows']:10,} {b['extract_seconds']:8.1f} "
                         f"{rate(b['rows'], b['extract_seconds'])} {ratio_b:9.3f}x {mb(b['ru_maxrss'])}")
            lines.append(f"{'    plan (reflect + policy check), not in (b)':<52} {'':>10} {b['plan_seconds']:8.1f}")
            lines.append(f"    (d) peak RSS: task process {b['ru_maxrss'] / 2**20:,.0f} MB, largest child process "
                         f"{b['workers_maxrss'] / 2**20:,.0f} MB; customers Parquet {b['bytes'] / 2**20:,.1f} MB")

        if args.skip_refresh:
            lines.append("(c) whole refresh through Airflow: not measured: --skip-refresh")
        else:
            c = run_child("_refresh", str(root))
            published = sum(c["rows"].values())
            if c["state"] != "success":
                lines.append(f"(c) whole refresh through Airflow: not measured: run ended {c['state']}, failed {c['failed']}")
            else:
                ratio_c = published / c["seconds"] / (total / dump_all)
                lines.append(f"{'(c) Airflow refresh, all published tables':<52} {published:10,} {c['seconds']:8.1f} "
                             f"{rate(published, c['seconds'])} {ratio_c:9.3f}x {mb(c['ru_maxrss'])}")
                lines.append(f"    Airflow start-up before the run, not timed: {c['startup_seconds']:.1f} s (metadata database, "
                             "execution API)")
                lines.append(f"    published rows per table: {c['rows']}; refresh process peak RSS {c['ru_maxrss'] / 2**20:,.0f} MB, "
                             f"largest child process {c['workers_maxrss'] / 2**20:,.0f} MB")
                steps = ", ".join(f"{task} {sec:.1f}s ({sec / c['seconds']:.0%})" for task, sec in c["tasks"].items())
                lines.append(f"    time per task (share of the refresh): {steps}")

        if args.skip_tasks:
            lines.append("(f) one process per task: not measured: --skip-tasks")
        else:
            lines += measure_tasks(db, root, total, dump_all)

        if args.skip_others:
            lines.append("(e) pganonymize, pynonymizer: not measured: --skip-others")
        else:
            lines += measure_others(db, databases, root, counts["customers"], dump_rate_c, args.other_timeout, args.anon_venv)
    finally:
        for name in databases:
            subprocess.run([*PSQL, "-d", "postgres", "-c", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
                           capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
        print("\n".join(lines))
    return 0


def measure_others(db: str, databases: list[str], root: Path, customers: int, dump_rate: float, timeout: float, venv: Path) -> list[str]:
    """(e): other anonymisers on copies of the bench database, 5 personal columns of customers."""
    lines = []
    try:
        problems = install_anonymisers(venv)
    except (subprocess.SubprocessError, OSError) as exc:
        return [f"(e) pganonymize, pynonymizer: not measured: cannot build their venv ({type(exc).__name__})"]
    runners = {"pganonymize": run_pganonymize, "pynonymizer": run_pynonymizer}
    for tool, run in runners.items():
        if problems[tool]:
            lines.append(f"(e) {tool}: not measured: {problems[tool]}")
            continue
        copy = f"{db}_{tool}"
        databases.append(copy)
        psql(f'CREATE DATABASE "{copy}" TEMPLATE "{db}"')
        seconds, status, peak = run(venv, copy, root, timeout)
        if seconds is None:
            lines.append(f"(e) {tool}: not measured: {status}")
            continue
        ratio = customers / seconds / dump_rate
        lines.append(f"{'(e) ' + tool + ' customers (5 columns, in place)':<52} {customers:10,} {seconds:8.1f} "
                     f"{rate(customers, seconds)} {ratio:9.3f}x {mb(peak)}")
    return lines


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("_extract", "_refresh", "_task"):
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        children = {"_extract": child_extract, "_refresh": child_refresh, "_task": child_task}
        out = children[sys.argv[1]](*sys.argv[2:])
        print("RESULT " + json.dumps(out, default=str))
        sys.exit(0)
    sys.exit(main())
