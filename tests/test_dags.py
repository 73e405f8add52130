"""DAG integrity: the DAG file parses fast, declares what operators expect, connects to nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.refresh_helpers import ROOT, write_config


@pytest.fixture
def two_sources(tmp_path):
    sources = [
        {"name": "alpha", "url": "sqlite:////nonexistent/alpha.db", "policy": str(ROOT / "policies" / "demo.yaml"),
         "bucket": (tmp_path / "b").as_uri(), "demo_key": True, "consistency": "snapshot"},
        {"name": "beta", "conn_id": "beta_prod", "policy": str(ROOT / "policies" / "demo.yaml"),
         "bucket": "s3://sandbox-bucket/snapshots", "bucket_conn_id": "sandbox_s3", "schedule": "0 3 * * *", "retain": 2,
         },
    ]
    return write_config(tmp_path, sources)


def test_dag_file_builds_one_dag_per_source_without_touching_a_database(two_sources):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == ["cleanroom_alpha", "cleanroom_beta"]
    beta = bag.dags["cleanroom_beta"]
    assert beta.catchup is False
    assert beta.max_active_runs == 1
    assert {"cleanroom", "source:beta"} <= set(beta.tags)
    assert beta.doc_md and "beta" in beta.doc_md
    assert {t.task_id for t in beta.tasks} == {"plan", "jobs", "extract_mask", "validate", "write_sql", "publish", "discard_on_failure"}
    assert beta.get_task("extract_mask").retries == 2
    assert beta.get_task("validate").retries == 0
    assert [o.name for o in beta.get_task("publish").outlets] == ["cleanroom_beta"]
    alpha = bag.dags["cleanroom_alpha"]  # consistency: snapshot reads every table in one task
    assert {t.task_id for t in alpha.tasks} == {"plan", "extract_mask_all", "validate", "write_sql", "publish", "discard_on_failure"}


def test_parsing_the_dag_file_imports_no_heavy_library(two_sources):
    code = textwrap.dedent(
        f"""
        import sys, runpy
        runpy.run_path({str(ROOT / 'dags' / 'cleanroom_refresh.py')!r})
        heavy = [m for m in ("great_expectations", "faker", "pandas", "masking.transforms", "pyarrow", "numpy") if m in sys.modules]
        print(",".join(heavy))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    assert imported == "", f"parsing the DAG file imported {imported}"


def test_broken_config_is_a_dag_import_error_naming_the_problem(tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    write_config(tmp_path, [{"name": "Bad Name", "url": "oracle://x", "policy": "p.yaml", "bucket": "ftp://x"}])
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    (error,) = bag.import_errors.values()
    assert "`name` must be lower-case" in error
