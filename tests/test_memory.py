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


# Frees 300 arrays of 1 MB that lived among small objects, after one freed 4 MB block has
# raised glibc's dynamic mmap threshold; prints the MB the process still holds.
RETAINED = """
import sys, numpy as np, psutil
from cleanroom.memory import map_large_blocks
applied = map_large_blocks() if sys.argv[1] == "map" else False
rss = lambda: psutil.Process().memory_info().rss / 2**20
del_me = np.ones(1 << 19); del del_me
before = rss()
arrays, small = [], []
for i in range(300):
    arrays.append(np.ones(1 << 17))
    small.append(bytearray(512))
del arrays
print(applied, round(rss() - before))
"""


def _retained(mode: str) -> tuple[bool, int]:
    environment = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    done = subprocess.run([sys.executable, "-c", RETAINED, mode], capture_output=True, text=True, env=environment, check=True)
    applied, megabytes = done.stdout.split()
    return applied == "True", int(megabytes)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_freed_arrays_go_back_to_the_system_once_large_blocks_are_mapped():
    applied, mapped = _retained("map")
    _, default = _retained("default")

    assert applied
    assert mapped < 30, f"{mapped} MB of freed arrays still held"
    assert default > 200, "glibc's default no longer keeps freed arrays: this test proves nothing"


def test_an_mmap_threshold_chosen_in_the_environment_is_kept():
    probe = "from cleanroom.memory import map_large_blocks; print(map_large_blocks())"
    environment = os.environ | {"MALLOC_MMAP_THRESHOLD_": "1048576"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=environment, check=True)
    assert done.stdout.strip() == "False"
