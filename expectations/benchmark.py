"""Time the validation gate on a synthetic masked table: ``python -m expectations.benchmark [rows]``.

The table looks like a masked customer table: six text columns (fake emails, names, cities, a
scrubbed note with reserved fakes inside a fifth of the rows, a JSON profile), read back in
100,000-row record batches as the pipeline reads Parquet. Setup is not timed.
"""

from __future__ import annotations

import logging
import sys
import time

import numpy as np
import pyarrow as pa

from masking import fakes
from masking.keys import MaskingKey, fingerprints


def _table(rows: int) -> pa.Table:
    rng = np.random.default_rng(7)
    ids = np.arange(rows)
    firsts = np.array(["Zoe", "Yann", "Xena", "Walt", "Vera", "Umar", "Tess", "Saul"], dtype=object)
    lasts = np.array(["Fake", "Sample", "Demo", "Test", "Dummy"], dtype=object)
    cities = np.array(["Springfield", "Riverton", "Lakeside", "Hill Valley"], dtype=object)
    first = firsts[rng.integers(0, len(firsts), rows)]
    name = first + " " + lasts[rng.integers(0, len(lasts), rows)]
    key = MaskingKey.demo()
    email = fakes.fake_values("email", key.digests64("email", ids.tolist()), "en_US", unique=True)
    phone = fakes.fake_values("phone", key.digests64("phone", ids.tolist()), "en_US")
    notes = np.array([
        "Order ORD-2024-{n:06d} shipped 2024-05-01T10:15:00Z",
        "Upgraded client to v3.3.2, ticket {n}",
        "Customer asked to write to {e} or call {p}",
        "Refund approved for invoice 2024{n:08d}",
        "Called back, no answer",
    ], dtype=object)
    pick = rng.integers(0, len(notes), rows)
    note = [notes[p].format(n=i, e=email[i], p=phone[i]) for p, i in zip(pick, ids)]
    profile = [f'{{"plan": "pro", "seats": {i % 50}, "since": "2021-03-04"}}' for i in ids]
    return pa.table({
        "id": ids, "email": email, "first_name": first.tolist(), "name": name.tolist(),
        "city": cities[rng.integers(0, len(cities), rows)].tolist(), "note": note, "profile": profile,
    })


def main(rows: int = 1_000_000) -> None:
    logging.basicConfig(level=logging.WARNING)
    from expectations import findings, gate

    key = MaskingKey.demo()
    table = _table(rows)
    originals = {
        c: fingerprints(key, [f"orig-{c}-{i}" for i in range(rows)]) for c in ("email", "first_name", "name", "city")
    }
    identifiers = np.unique(np.concatenate([originals["email"], originals["name"]]))
    columns = [
        gate.ColumnInput("id", "integer", "keep", False, None, unique=True),
        gate.ColumnInput("email", "string", "fake:email", True, "set", unique=True),
        gate.ColumnInput("first_name", "string", "fake:first_name", True, "row"),
        gate.ColumnInput("name", "string", "fake:name", True, "row"),
        gate.ColumnInput("city", "string", "fake:city", True, "row"),
        gate.ColumnInput("note", "string", "scrub", True, "set"),
        gate.ColumnInput("profile", "json", "keep", False, None),
    ]
    inputs = gate.TableInput(
        name="customers", expected_rows=rows, columns=columns,
        batches=lambda: iter(table.to_batches(max_chunksize=100_000)), row_fingerprints=originals.get,
    )
    gate._Runner.get()  # context creation and the GX import are one-off costs, timed apart
    started, cpu = time.perf_counter(), time.process_time()
    summary = gate.validate_snapshot(
        source="bench", tables=[inputs], dropped=[], published_tables={"customers"},
        identifier_fingerprints=identifiers, key=key, foreign_keys=[],
    )
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"validate_snapshot: {rows:,} rows x 6 text columns, {len(summary['checks'])} checks, "
        f"passed={summary['passed']}, {elapsed:.1f} s wall, {cpu:.1f} s CPU; detector analyses={findings.stats['analysed']}, "
        f"reused={findings.stats['reused']}"
    )
    for table_, column, check, count in gate.failures(summary):
        print("  failed:", table_, column, check, count)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
