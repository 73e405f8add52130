"""Benchmark: cleanroom on a MariaDB/MySQL source, against ``mysqldump`` of the same table.

Creates a fresh database ``cr_bench_my_<random>`` on 127.0.0.1:3306 with the ``customers``
table of ``refresh_bench.py`` (personal columns and free-text notes; 1,000,000 rows at
``--rows`` default), generated on the server from a cross join of digit tables (works on
MySQL and MariaDB alike). In the same run it measures:

(a) ``mysqldump`` of ``customers`` to /dev/null (single transaction, the reference);
(b) reading alone: ``source.stream_batches`` of every column into Arrow, no masking;
(c) ``pipeline.plan`` + ``pipeline.extract_table`` of ``customers`` (stream, mask, fingerprint,
    zstd Parquet into a local-folder bucket) with 1 and 2 masking processes.

(b) and (c) run in child processes so their peak RSS is their own. The database is dropped at
the end, also on failure.

Run: ``.venv/bin/python bench/mysql_bench.py [--rows 100000]``. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from refresh_bench import POLICY, SOURCE, masking_label, mb, rate, timed  # noqa: E402

MYSQL = ["mysql", "-h", "127.0.0.1", "-u", "root", "--batch"]
URL = "mysql+pymysql://root@127.0.0.1:3306/{db}?charset=utf8mb4"

SCHEMA_SQL = """
CREATE TABLE customers (
    id bigint PRIMARY KEY, full_name text NOT NULL, email varchar(120) NOT NULL UNIQUE, phone text,
    street text, birth_date date, note text, created_at datetime(6) NOT NULL
) CHARACTER SET utf8mb4;
CREATE TEMPORARY TABLE digits (d int);
INSERT INTO digits VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9);
INSERT INTO customers
WITH n (i) AS ({numbers})
SELECT i, CONCAT(f, ' ', l), CONCAT(LOWER(f), '.', LOWER(l), i, '@mail.example.org'),
       CONCAT('+1-', 200 + i * 7 % 800, '-', 200 + i * 13 % 800, '-', LPAD(i * 7919 % 10000, 4, '0')),
       CONCAT(1 + i * 31 % 9998, ' ', ELT(1 + i % 8, 'Oak', 'Maple', 'Cedar', 'Pine', 'Elm', 'Lake', 'Hill', 'Park'),
              ' ', ELT(1 + i % 5, 'St', 'Ave', 'Rd', 'Blvd', 'Lane')),
       DATE '1940-01-01' + INTERVAL (i * 7919 % 21900) DAY,
       CASE WHEN i % 10 = 0 THEN CONCAT('Asked to be contacted at ', LOWER(f), '.', LOWER(l), i, '@mail.example.org')
            WHEN i % 10 = 5 THEN CONCAT('Call back on +1-', 200 + i * 7 % 800, '-', 200 + i * 13 % 800, '-',
                                        LPAD(i * 7919 % 10000, 4, '0'), ' after 5pm')
            ELSE ELT(1 + i % 3, 'Prefers delivery after 5pm.', 'Returned item, refund issued.', 'VIP customer.') END,
       TIMESTAMP '2020-01-01 00:00:00' + INTERVAL (i * 104729 % 126000000) SECOND
FROM (SELECT i,
             ELT(1 + i * 37 % 10, 'James', 'Mary', 'Robert', 'Patricia', 'John', 'Jennifer', 'Michael', 'Linda',
                 'David', 'Aisha') AS f,
             ELT(1 + i * 53 % 10, 'Smith', 'Johnson', 'Brown', 'Garcia', 'Miller', 'Davis', 'Wilson', 'Taylor',
                 'Moore', 'Chen') AS l
      FROM n) AS g;
ANALYZE TABLE customers;
"""

# refresh_bench's policy, customers only.
CUSTOMERS_POLICY = POLICY.split("  orders:")[0]


def numbers_sql(rows: int) -> str:
    """SELECT of the integers 1..rows as ``i``, from enough copies of ``digits``."""
    width = max(1, len(str(rows - 1)))
    terms = " + ".join(f"d{k}.d * {10 ** k}" for k in range(width))
    tables = ", ".join(f"digits AS d{k}" for k in range(width))
    return f"SELECT 1 + {terms} AS i FROM {tables} WHERE {terms} < {rows}"


def mysql(sql: str, db: str | None = None) -> None:
    done = subprocess.run([*MYSQL, *([db] if db else [])], input=sql, text=True, capture_output=True)
    if done.returncode:
        raise RuntimeError(f"mysql failed: {done.stderr.strip()[:500]}")


def child_read(db: str) -> dict:
    """(b): stream every column of customers into Arrow batches, nothing else."""
    from cleanroom import source as src

    engine = src.create_engine(URL.format(db=db))
    table = src.reflect(engine).tables["customers"]
    started, rows = time.perf_counter(), 0
    with src.read_only(engine) as conn:
        for batch in src.stream_batches(conn, table, list(table.column_names), 50_000):
            rows += batch.num_rows
    return {"rows": rows, "seconds": time.perf_counter() - started,
            "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def child_extract(db: str, folder: str, mask_workers: str) -> dict:
    """(c): plan + extract_table of customers."""
    from cleanroom import pipeline
    from cleanroom.config import SourceConfig

    root = Path(folder)
    source = SourceConfig(
        name=SOURCE, policy=root / "policy.yaml", bucket=(root / f"bucket-{mask_workers}").as_uri(),
        url=URL.format(db=db), demo_key=True, work_dir=root / f"work-{mask_workers}", mask_workers=int(mask_workers),
    )
    plan_ = pipeline.plan(source, f"bench_mysql_{mask_workers}")
    started = time.perf_counter()
    result = pipeline.extract_table(source, plan_, plan_["jobs"][0])
    return {"rows": result["rows"], "seconds": time.perf_counter() - started, "mask_workers": result["mask_processes"],
            "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def run_child(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"child {args[0]} failed: {done.stderr.strip()[-800:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="customers to generate")
    args = parser.parse_args()

    db = f"cr_bench_my_{secrets.token_hex(4)}"
    root = Path(tempfile.mkdtemp(prefix="cr-bench-my-"))
    (root / "policy.yaml").write_text(CUSTOMERS_POLICY)
    lines: list[str] = []
    try:
        t0 = time.perf_counter()
        mysql(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4")
        mysql(SCHEMA_SQL.format(numbers=numbers_sql(args.rows)), db)
        lines.append(f"source {db} (MariaDB/MySQL): customers {args.rows:,} rows, generated in {time.perf_counter() - t0:.1f} s")

        seconds, done, peak = timed(["mysqldump", "-h", "127.0.0.1", "-u", "root", "--single-transaction",
                                     "--result-file=/dev/null", db, "customers"])
        if done.returncode:
            raise RuntimeError(f"mysqldump failed: {done.stderr.strip()[:500]}")
        dump_rate = args.rows / seconds
        lines.append(f"{'measurement':<52} {'rows':>10} {'seconds':>8} {'rows/s':>12} {'vs dump':>10} {'peak RSS':>9}")
        lines.append(f"{'(a) mysqldump customers':<52} {args.rows:10,} {seconds:8.1f} {rate(args.rows, seconds)} "
                     f"{'1.00':>10} {mb(peak)}")
        b = run_child("_read", db)
        lines.append(f"{'(b) read customers into Arrow, no masking':<52} {b['rows']:10,} {b['seconds']:8.1f} "
                     f"{rate(b['rows'], b['seconds'])} {b['rows'] / b['seconds'] / dump_rate:9.3f}x {mb(b['ru_maxrss'])}")
        for workers in ("1", "2"):
            c = run_child("_extract", db, str(root), workers)
            label = f"(c) extract_table customers, {masking_label(c['mask_workers'])}"
            lines.append(f"{label:<52} {c['rows']:10,} {c['seconds']:8.1f} {rate(c['rows'], c['seconds'])} "
                         f"{c['rows'] / c['seconds'] / dump_rate:9.3f}x {mb(c['ru_maxrss'])}")
    finally:
        subprocess.run([*MYSQL, "-e", f"DROP DATABASE IF EXISTS `{db}`"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("_read", "_extract"):
        sys.path.insert(0, str(HERE.parent))
        children = {"_read": child_read, "_extract": child_extract}
        print("RESULT " + json.dumps(children[sys.argv[1]](*sys.argv[2:]), default=str))
        sys.exit(0)
    sys.exit(main())
