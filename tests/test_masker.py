"""Masking in worker processes gives exactly what masking in the task's own process gives."""

from __future__ import annotations

import dataclasses
import pickle
import sqlite3

import numpy as np
import pyarrow.parquet as pq
import pytest

from cleanroom import pipeline
from cleanroom.config import load_config
from cleanroom.masker import BatchMasker
from masking.keys import MaskingKey

ROWS = 1_200
POLICY = """
tables:
  people:
    columns:
      id: keep
      name: {fake: name}
      email: {fake: email}
      note: scrub
      born: {date_shift: {max_days: 30, entity: id}}
"""


@pytest.fixture
def source(tmp_path):
    db = tmp_path / "src.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, email TEXT UNIQUE, note TEXT, born DATE)")
    con.executemany(
        "INSERT INTO people VALUES (?,?,?,?,?)",
        [
            (i, f"Person {i % 97}", f"person{i}@corp.test",
             f"reach me at person{i}@corp.test or +1-202-555-{i % 10000:04d}" if i % 3 == 0 else "no contact",
             f"19{50 + i % 50}-0{1 + i % 9}-1{i % 10}")
            for i in range(1, ROWS + 1)
        ],
    )
    con.commit()
    con.close()
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "cleanroom.yaml").write_text(
        f"sources:\n  - name: people\n    url: sqlite:///{db}\n    policy: policy.yaml\n    bucket: file://bucket\n"
        "    demo_key: true\n    work_dir: work\n    batch_rows: 100\n"
    )
    return load_config(tmp_path / "cleanroom.yaml")["people"]


def _extract(source, workers: int, tmp_path):
    source = dataclasses.replace(source, mask_workers=workers)
    plan = pipeline.plan(source, f"manual__workers_{workers}")
    result = pipeline.extract_table(source, plan, plan["jobs"][0])
    table = pq.read_table(tmp_path / "bucket" / result["files"][0]["path"])
    folder = pipeline.work_dir(source, plan["version"]) / "fingerprints" / "people" / "part-00000"
    fingerprints = {p.name: np.fromfile(p, np.uint64) for p in sorted(folder.iterdir())}
    return result, table, fingerprints


def test_two_worker_processes_publish_the_same_rows_fingerprints_and_counts_as_one(source, tmp_path):
    one, table_one, fps_one = _extract(source, 1, tmp_path)
    two, table_two, fps_two = _extract(source, 2, tmp_path)

    assert (one["mask_processes"], two["mask_processes"]) == (0, 2)  # mask_workers: 1 means none
    assert one["rows"] == two["rows"] == ROWS
    assert table_two.equals(table_one)
    assert fps_two.keys() == fps_one.keys() and "identifiers.u64" in fps_one
    for name in fps_one:
        np.testing.assert_array_equal(fps_two[name], fps_one[name])
    assert fps_one["row.email.u64"].size == ROWS and np.all(fps_one["row.email.u64"] != 0)
    assert two["stats"] == one["stats"] and one["stats"]["note"]["scrubbed_values"] == 2 * (ROWS // 3)
    assert "corp.test" not in str(table_two.column("note").to_pylist())


def test_a_masker_crosses_to_a_worker_with_its_key_but_a_bare_key_still_refuses_to_pickle(source):
    plan = pipeline.plan(source, "manual__pickle")
    from cleanroom.pipeline import checked_policy
    from masking import schema as S

    schema = S.Schema.from_dict(plan["schema"])
    policy = checked_policy(source, schema)
    masker = BatchMasker(MaskingKey.demo(), schema.tables["people"], policy.tables["people"],
                         schema.tables["people"].column_names, "en_US")

    copy = pickle.loads(pickle.dumps(masker))

    assert copy.key.key_id == masker.key.key_id and copy.key.is_demo
    with pytest.raises(TypeError, match="must not be pickled"):
        pickle.dumps(MaskingKey.demo())


def test_a_table_masked_only_by_cheap_transforms_stays_in_the_task_process(source, tmp_path):
    """Shipping batches to workers costs more than a date shift or a partial mask saves."""
    (tmp_path / "policy.yaml").write_text(
        "tables:\n  people:\n    columns:\n      id: keep\n      name: {partial: {keep_last: 1}}\n"
        "      email: {hash: {}}\n      note: redact\n      born: {date_shift: {max_days: 30}}\n"
    )
    cheap, table, _ = _extract(source, 2, tmp_path)

    assert cheap["mask_processes"] == 0 and cheap["rows"] == table.num_rows == ROWS
