"""Build one refresh DAG per configured source.

The DAG file in ``dags/`` only calls :func:`dags_from_config`. Task bodies live in
:mod:`cleanroom.pipeline`; here they are wired: plan, extract-and-mask per table (dynamic
task mapping), validate, write the SQL artifact, publish, and a clean-up that runs only when
something failed.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from typing import Any

from airflow.sdk import DAG, Asset, TriggerRule, task
from airflow.sdk.exceptions import AirflowFailException

from cleanroom.config import SourceConfig, load_config
from masking.errors import CleanroomError, SourceError

log = logging.getLogger(__name__)

DOC = """
### cleanroom refresh: `{name}`

Copies source **{name}** into the sandbox bucket `{bucket}` with personal data masked
under `{policy}`.

1. **plan**: reflect the source schema, check the masking policy covers every table and
   column (fails closed on drift), pick a version id.
2. **extract_mask**: one mapped task per table; rows stream in batches of {batch_rows}, are
   masked, and land as Parquet under the version prefix (not visible to readers yet).
3. **validate**: Great Expectations re-reads the Parquet; any surviving personal value or
   secret fails the run and removes the staged files.
4. **write_sql**: a PostgreSQL-dialect SQL artifact, restorable with `psql`.
5. **publish**: manifest, then `LATEST`, then retention (keeps {retain} versions).

Trigger with conf `{{}}`; no parameters are needed.
"""


def fail_fast(func):
    """Turn cleanroom's own errors into AirflowFailException: retrying cannot fix a bad policy.

    Errors from the source connection stay retryable.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except SourceError:
            raise
        except CleanroomError as exc:
            log.error("%s", exc)
            raise AirflowFailException(str(exc)) from exc

    return wrapper


def report_failure(context: dict[str, Any]) -> str:
    """Failure callback: one summary line naming the source, task and what failed.

    The exception text of cleanroom's errors names tables, columns and checks, never values.
    Hook alerting (Slack, e-mail) onto this by wrapping it in your own callback.
    """
    ti = context.get("task_instance") or context.get("ti")
    exception = context.get("exception")
    summary = (
        f"cleanroom refresh {getattr(ti, 'dag_id', '?')} failed in task {getattr(ti, 'task_id', '?')}: "
        f"{type(exception).__name__ if exception else 'unknown error'}: {exception}"
    )
    log.error("%s", summary)
    return summary


def asset_for(source: SourceConfig) -> Asset:
    """The asset a successful publish updates; schedule downstream DAGs on it."""
    # Named, not addressed by bucket URL: moving a bucket must not orphan downstream schedules.
    return Asset(name=f"cleanroom_{source.name}", group="cleanroom", extra={"source": source.name})


def _materialise(results) -> list[dict[str, Any]]:
    """Read a mapped task's results by index; iterating the lazy sequence probes past its end."""
    if isinstance(results, list):
        return results
    return [results[i] for i in range(len(results))]


def _pipeline():
    # Imported when a task runs, not when the DAG file is parsed: it pulls in pyarrow and numpy.
    from cleanroom import pipeline

    return pipeline


def build_dag(source: SourceConfig) -> DAG:
    default_args: dict[str, Any] = {
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=2),
        "owner": "data-platform",
        "on_failure_callback": report_failure,
    }
    with DAG(
        dag_id=source.dag_id,
        description=source.description or f"Sanitized snapshot of {source.name} into the sandbox bucket",
        schedule=source.schedule,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
        catchup=False,
        max_active_runs=1,
        default_args=default_args,
        tags=["cleanroom", "sanitized-snapshot", f"source:{source.name}"],
        doc_md=DOC.format(name=source.name, bucket=source.bucket, policy=source.policy.name, batch_rows=source.batch_rows, retain=source.retain),
    ) as dag:

        @task(task_id="plan")
        @fail_fast
        def plan_task() -> dict[str, Any]:
            from airflow.sdk import get_current_context

            return _pipeline().plan(source, get_current_context()["run_id"])

        @task(task_id="jobs")
        def jobs_task(plan_: dict[str, Any]) -> list[dict[str, Any]]:
            return plan_["jobs"]

        @task(task_id="extract_mask", map_index_template="{{ task.op_kwargs['job']['table'] }}", max_active_tis_per_dagrun=4)
        @fail_fast
        def extract_task(plan_: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
            return _pipeline().extract_table(source, plan_, job)

        @task(task_id="validate", retries=0)
        @fail_fast
        def validate_task(plan_: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
            return _pipeline().validate(source, plan_, _materialise(results))

        @task(task_id="write_sql")
        @fail_fast
        def sql_task(plan_: dict[str, Any], results: list[dict[str, Any]], validation: dict[str, Any]) -> dict[str, Any]:
            return _pipeline().write_sql(source, plan_, _materialise(results))

        @task(task_id="publish", outlets=[asset_for(source)], retries=0)
        @fail_fast
        def publish_task(plan_, results, validation, sql) -> dict[str, Any]:
            return _pipeline().publish(source, plan_, _materialise(results), validation, sql)

        @task(task_id="discard_on_failure", trigger_rule=TriggerRule.ONE_FAILED, retries=0)
        def discard_task(plan_: dict[str, Any]) -> None:
            _pipeline().release_shared_snapshot(source, plan_)
            removed = _pipeline().discard(source, plan_["version"])
            # Fail on purpose: this task runs only after a failure, and as a leaf it decides the
            # run's state, which must read "failed" for the operators watching it.
            raise AirflowFailException(
                f"refresh of {source.name} failed upstream; removed {removed} staged file(s) of version "
                f"{plan_['version']}; LATEST was not moved"
            )

        @task(task_id="extract_mask_all")
        @fail_fast
        def extract_all_task(plan_: dict[str, Any]) -> list[dict[str, Any]]:
            return _pipeline().extract_all(source, plan_)

        plan_ = plan_task()
        if source.consistency == "snapshot":
            # One task reads every table as of one moment (parallel threads on PostgreSQL).
            results = extract_all_task(plan_)
        else:
            # One mapped task per table or chunk, spread over workers: consistent per piece, or
            # (shared_snapshot) all adopting the snapshot the plan task holds open.
            results = extract_task.partial(plan_=plan_).expand(job=jobs_task(plan_))
        validation = validate_task(plan_, results)
        sql = sql_task(plan_, results, validation)
        published = publish_task(plan_, results, validation, sql)
        discard_task(plan_).set_upstream([results, validation, sql, published])
    return dag


def dags_from_config(path: str | None = None) -> dict[str, DAG]:
    """Return ``{dag_id: DAG}`` for every source in the config file."""
    return {source.dag_id: build_dag(source) for source in load_config(path).values()}
