"""Hold a PostgreSQL snapshot open so that mapped extract tasks can all read as of its moment.

``pg_export_snapshot()`` names the snapshot of an open transaction, and other sessions adopt it
with ``SET TRANSACTION SNAPSHOT`` only while that transaction lives. Airflow tasks end, so the
plan task starts this small process in a session of its own (``consistency: shared_snapshot``).
It opens a read-only, repeatable-read transaction, exports its snapshot, writes the snapshot id
and its backend pid as one JSON line on stdout, and then waits in ``pg_sleep`` until the
validate task (or the failure clean-up) terminates its backend, or the hold time runs out.

It reads its request (URL, tag, hold time) as one JSON line on stdin, so the URL, which may
carry a password, never appears in a process listing.

Known limitations: the holder lives on the machine that ran ``plan``; while it waits, its open
transaction holds back VACUUM on the source, as a long ``pg_dump -j`` does.
"""

from __future__ import annotations

import json
import sys

APPLICATION_NAME = "cleanroom-snapshot-holder"


def main() -> int:
    import sqlalchemy as sa

    request = json.loads(sys.stdin.readline())
    engine = sa.create_engine(request["url"], connect_args={"application_name": f"{APPLICATION_NAME}:{request['tag']}"})
    try:
        conn = engine.connect()
    except sa.exc.DBAPIError as exc:
        _answer({"error": str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__})
        return 1
    with conn:
        try:
            conn.exec_driver_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot, pid = conn.exec_driver_sql("SELECT pg_export_snapshot(), pg_backend_pid()").one()
        except sa.exc.DBAPIError as exc:
            _answer({"error": f"pg_export_snapshot() failed ({type(exc.orig or exc).__name__})"})
            return 1
        _answer({"snapshot": snapshot, "pid": pid})
        try:
            conn.exec_driver_sql(f"SELECT pg_sleep({float(request['hold_seconds'])})")
        except sa.exc.DBAPIError:
            pass  # the backend was terminated on release: the snapshot is no longer needed
    engine.dispose()
    return 0


def _answer(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()
    sys.stdout.close()


if __name__ == "__main__":
    sys.exit(main())
