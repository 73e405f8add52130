"""Benchmark: the masking engine on synthetic customers, against per-row Faker.

Generates customers in Arrow one batch at a time (full name, unique email, phone, street
address, date of birth and a free-text note that mentions an email or a phone in about 20% of
rows), masks every batch with the real transforms (``fake`` name/email/street_address/
date_of_birth, ``partial`` and ``fake`` phone, ``scrub`` on the note) under the demo key, and
prints values/s, rows/s and the process's peak RSS. In the same run, a per-row Faker baseline
(``Faker().name()``, ``email()``, ``phone_number()``, ``street_address()``,
``date_of_birth()``) is timed on a sample and extrapolated as values/s.

The like-for-like ratio compares the five columns Faker also produces; the scrubbed note has no
Faker counterpart and is reported on its own. Generation time is not counted; masked batches
are discarded (no Parquet writing; see ``refresh_bench.py`` for end-to-end figures).

Run: ``.venv/bin/python bench/mask_bench.py [--rows N] [--batch N] [--faker-sample N]``.
Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import threading
import time

import numpy as np
import psutil
import pyarrow as pa

FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
         "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Chen", "Aisha"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
        "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin"]
STREETS = ["Oak", "Maple", "Cedar", "Pine", "Elm", "Washington", "Lake", "Hill", "Park", "Main"]
SUFFIX = ["St", "Ave", "Rd", "Blvd", "Lane", "Way"]
NOTES = ["Prefers delivery after 5pm.", "Asked about the loyalty programme.", "Left parcel with neighbour.",
         "VIP customer, handle with care.", "Returned item, refund issued."]

# Column rules as a policy would spell them. "phone" is measured twice: partial and fake.
RULES = {
    "full_name": {"fake": "name"},
    "email": {"fake": "email"},
    "phone": {"partial": {"keep_last": 2}},
    "phone_fake": {"fake": "phone"},
    "street": {"fake": "street_address"},
    "birth_date": {"fake": "date_of_birth"},
    "note": "scrub",
}
FAKER_COMPARABLE = ("full_name", "email", "phone_fake", "street", "birth_date")


def generate(start: int, rows: int) -> pa.RecordBatch:
    """Rows ``start .. start+rows-1``; a pure function of ``start`` so every run is identical."""
    rng = np.random.default_rng(start)
    ids = np.arange(start, start + rows)
    first = np.array(FIRST)[rng.integers(0, len(FIRST), rows)]
    last = np.array(LAST)[rng.integers(0, len(LAST), rows)]
    names = [f"{f} {l}" for f, l in zip(first, last)]
    emails = [f"{f.lower()}.{l.lower()}{i}@mail.example.org" for f, l, i in zip(first, last, ids)]
    digits = rng.integers(200, 999, (rows, 3))
    phones = [f"+1-{a}-{b}-{c:04d}" for a, b, c in zip(digits[:, 0], digits[:, 1], rng.integers(0, 9999, rows))]
    streets = [
        f"{n} {STREETS[s]} {SUFFIX[x]}"
        for n, s, x in zip(rng.integers(1, 9999, rows), rng.integers(0, len(STREETS), rows), rng.integers(0, len(SUFFIX), rows))
    ]
    births = np.datetime64("1940-01-01") + rng.integers(0, 60 * 365, rows).astype("timedelta64[D]")
    kinds = rng.random(rows)
    base = np.array(NOTES)[rng.integers(0, len(NOTES), rows)]
    notes = [
        f"{b} Contact {e} if needed." if k < 0.1 else f"{b} Call back on {p}." if k < 0.2 else str(b)
        for b, k, e, p in zip(base, kinds, emails, phones)
    ]
    return pa.RecordBatch.from_pydict({
        "full_name": pa.array(names), "email": pa.array(emails), "phone": pa.array(phones),
        "phone_fake": pa.array(phones), "street": pa.array(streets), "birth_date": pa.array(births, pa.date32()),
        "note": pa.array(notes),
    })


def columns():
    from masking import schema as S

    return {
        "full_name": S.Column("full_name", "TEXT", S.STRING),
        "email": S.Column("email", "TEXT", S.STRING, nullable=False, unique=True),
        "phone": S.Column("phone", "TEXT", S.STRING),
        "phone_fake": S.Column("phone_fake", "TEXT", S.STRING),
        "street": S.Column("street", "TEXT", S.STRING),
        "birth_date": S.Column("birth_date", "DATE", S.DATE),
        "note": S.Column("note", "TEXT", S.STRING),
    }


class PeakRss:
    """Sample the process RSS every 20 ms; ``ru_maxrss`` is the kernel's high-water mark."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        proc = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, proc.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def mask_run(rows: int, batch: int) -> dict:
    from masking import transforms as T
    from masking.keys import MaskingKey

    key = MaskingKey.demo()
    rules = {c: T.build(spec) for c, spec in RULES.items()}
    cols = columns()
    for name, rule in rules.items():
        problems = rule.check(cols[name])
        if problems:
            raise SystemExit(f"{name}: {problems}")
    seconds = dict.fromkeys(RULES, 0.0)
    total = gen_seconds = 0.0
    done = 0
    rss_before = psutil.Process().memory_info().rss
    with PeakRss() as peak:
        while done < rows:
            n = min(batch, rows - done)
            t0 = time.perf_counter()
            data = generate(done, n)
            gen_seconds += time.perf_counter() - t0
            t0 = time.perf_counter()
            for name, rule in rules.items():
                ctx = T.ColumnContext(key, "customers", cols[name], "en_US", batch=data)
                c0 = time.perf_counter()
                out = rule.apply(data.column(name), ctx)
                seconds[name] += time.perf_counter() - c0
                assert len(out) == n
            total += time.perf_counter() - t0
            done += n
    return {
        "rows": rows, "seconds": seconds, "total": total, "generate": gen_seconds,
        "rss_before": rss_before, "rss_peak_sampled": peak.peak,
        "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def faker_baseline(sample: int) -> dict:
    from faker import Faker

    fake = Faker("en_US")
    Faker.seed(1)
    calls = {
        "full_name": fake.name, "email": fake.email, "phone_fake": fake.phone_number,
        "street": fake.street_address, "birth_date": fake.date_of_birth,
    }
    seconds = {}
    for name, call in calls.items():
        for _ in range(200):  # warm-up: provider loading is a one-off cost, not per-row speed
            call()
        t0 = time.perf_counter()
        for _ in range(sample):
            call()
        seconds[name] = time.perf_counter() - t0
    return {"rows": sample, "seconds": seconds}


def mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


def report(masked: dict, faker: dict) -> None:
    rows = masked["rows"]
    print(f"\nmasking engine: {rows:,} rows in batches, {len(RULES)} masked columns (demo key)")
    print(f"{'column':<12} {'transform':<30} {'seconds':>8} {'values/s':>12} {'faker values/s':>15} {'ratio':>7}")
    for name, spec in RULES.items():
        s = masked["seconds"][name]
        line = f"{name:<12} {str(spec):<30} {s:8.2f} {rows / s:12,.0f}"
        if name in faker["seconds"]:
            f_rate = faker["rows"] / faker["seconds"][name]
            line += f" {f_rate:15,.0f} {rows / s / f_rate:6.1f}x"
        print(line)
    comparable = sum(masked["seconds"][c] for c in FAKER_COMPARABLE)
    f_total = sum(faker["seconds"].values())
    ours = rows * len(FAKER_COMPARABLE) / comparable
    theirs = faker["rows"] * len(FAKER_COMPARABLE) / f_total
    print(f"\n5 Faker-comparable columns : {ours:12,.0f} values/s   "
          f"per-row Faker ({faker['rows']:,} rows sample): {theirs:,.0f} values/s   speed-up {ours / theirs:.1f}x")
    print(f"all {len(RULES)} columns incl. scrub : {rows * len(RULES) / masked['total']:12,.0f} values/s   "
          f"{rows / masked['total']:,.0f} rows/s   ({masked['total']:.1f} s masking, "
          f"{masked['generate']:.1f} s generating, not counted)")
    print(f"Faker extrapolated to {rows:,} rows x 5 columns: {rows * len(FAKER_COMPARABLE) / theirs:,.0f} s")
    print(f"peak RSS: {mb(masked['ru_maxrss'])} (ru_maxrss, whole process); sampled peak during masking "
          f"{mb(masked['rss_peak_sampled'])}; RSS before masking {mb(masked['rss_before'])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--faker-sample", type=int, default=20_000)
    args = parser.parse_args()

    started = dt.datetime.now()
    faker = faker_baseline(args.faker_sample)
    masked = mask_run(args.rows, args.batch)
    report(masked, faker)
    print(f"(started {started:%Y-%m-%d %H:%M}, python {sys.version.split()[0]}, pyarrow {pa.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
