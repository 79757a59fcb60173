"""Run every benchmark: `python -m tests.bench [NAME ...]` (NAME like `jobs` for bench_jobs).

Each benchmark is a module `tests/bench/bench_<name>.py` run as its own process; it prints its
figures and the ratios against a baseline it measures in the same run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    """Run the named benchmarks (all when none are named); exit non-zero if any failed."""
    available = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    chosen = argv or available
    unknown = [name for name in chosen if name not in available]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {available}", file=sys.stderr)
        return 2
    failed = []
    for name in chosen:
        print(f"\n===== bench_{name} =====", flush=True)
        result = subprocess.run(
            [sys.executable, "-m", f"tests.bench.bench_{name}"],
            check=False,
            # as in tests/conftest.py: jobs run this repository's interpreter from root-only
            # temporary folders, so no job user unless the caller names one
            env={**os.environ, "LABYARD_JOB_USER": os.environ.get("LABYARD_JOB_USER", "")},
        )
        if result.returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
