"""The Arrow allocator of task processes: jemalloc returning freed pages, unless the user chose."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = (
    "import pyarrow as pa; from cleanroom.memory import use_returning_allocator; "
    "use_returning_allocator(); print(pa.default_memory_pool().backend_name)"
)


def _backend(**env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"} | env
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=environment, check=True)
    return done.stdout.strip()


def test_task_processes_switch_to_jemalloc_when_pyarrow_has_it():
    import pyarrow as pa

    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        pytest.skip("this pyarrow build has no jemalloc; the default pool is kept")

    assert _backend() == "jemalloc"


def test_an_allocator_chosen_in_the_environment_is_kept():
    assert _backend(ARROW_DEFAULT_MEMORY_POOL="system") == "system"
