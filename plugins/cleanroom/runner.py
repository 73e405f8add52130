"""Run a source's DAG once, now, in this process: real Airflow, no scheduler.

Airflow needs a metadata database even for a single run; when ``AIRFLOW_HOME`` is not set,
one is created under ``./.airflow`` (SQLite) the first time.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent.parent


def prepare_environment() -> None:
    """Point Airflow at this project's DAGs and a local home; call before importing airflow."""
    home = Path(os.environ.setdefault("AIRFLOW_HOME", str(Path.cwd() / ".airflow"))).resolve()
    os.environ["AIRFLOW_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(PROJECT_DIR / "dags"))
    os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(PROJECT_DIR / "plugins"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
    os.environ.setdefault("CLEANROOM_CONFIG", str(Path("cleanroom.yaml").resolve()))


def ensure_metadata_db() -> None:
    """Create or upgrade Airflow's metadata database (about a second when it exists)."""
    from airflow.utils import db

    marker = Path(os.environ["AIRFLOW_HOME"]) / ".cleanroom-db-ready"
    if marker.exists():
        return
    logging.getLogger("alembic").setLevel(logging.WARNING)
    db.initdb()
    marker.touch()


def load_dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        problems = "\n".join(f"  {path}: {err.strip().splitlines()[-1]}" for path, err in bag.import_errors.items())
        from masking.errors import ConfigError

        raise ConfigError(f"the DAG files failed to import:\n{problems}")
    dag = bag.get_dag(dag_id)
    if dag is None:
        from masking.errors import ConfigError

        raise ConfigError(f"no DAG {dag_id!r}; DAGs found: {', '.join(sorted(bag.dag_ids)) or 'none'}")
    return dag


def run_dag(dag_id: str, conf: dict | None = None):
    """Run the DAG once with ``dag.test()`` and return the finished DagRun."""
    prepare_environment()
    ensure_metadata_db()
    dag = load_dag(dag_id)
    return dag.test(run_conf=conf or {})


def failed_tasks(dag_run) -> list[tuple[str, int, str]]:
    """(task_id, map_index, state) of the tasks that did not succeed."""
    out = []
    for ti in dag_run.get_task_instances():
        state = str(ti.state.value if hasattr(ti.state, "value") else ti.state)
        if state not in ("success", "skipped"):
            out.append((ti.task_id, ti.map_index, state))
    return out
