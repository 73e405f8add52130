"""Run every benchmark with its defaults (``make bench``), or small and fast with ``--quick``.

Each benchmark prints its own table; this script only chooses the arguments and runs them one
after another, so no two benchmarks compete for the CPU.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

FULL = [
    ["mask_bench.py"],
    ["refresh_bench.py"],
    ["mysql_bench.py"],
]
QUICK = [
    ["mask_bench.py", "--rows", "100000", "--faker-sample", "5000"],
    ["refresh_bench.py", "--scale", "0.02", "--other-timeout", "300"],
    ["mysql_bench.py", "--rows", "20000"],
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a few minutes instead of an hour")
    args = parser.parse_args()

    failed = 0
    for script, *rest in QUICK if args.quick else FULL:
        print(f"\n== {script} {' '.join(rest)}", flush=True)
        failed |= subprocess.run([sys.executable, str(HERE / script), *rest]).returncode
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
