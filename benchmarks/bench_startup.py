"""Start-up cost of the CLI: median wall time of ``invarlock plugins`` and friends against
``python -c pass``, each in a fresh process (run: ``python benchmarks/bench_startup.py``).

Not a test: it prints a table and asserts nothing about time. Bytecode caching is left on
(``PYTHONDONTWRITEBYTECODE`` is removed), as on a user's machine: the warm-up run writes the
``.pyc`` files.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

REPEATS = int(os.environ.get("BENCH_REPEATS", "15"))
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    "invarlock --help": [sys.executable, "-m", "invarlock", "--help"],
    "invarlock plugins": [sys.executable, "-m", "invarlock", "plugins"],
    "invarlock plugins list --json": [
        sys.executable,
        "-m",
        "invarlock",
        "plugins",
        "list",
        "--json",
    ],
}


def median_seconds(command: list[str]) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run(command, capture_output=True, env=env, check=True)  # warm the disk cache
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, env=env, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    baseline = median_seconds(COMMANDS["python -c pass"])
    print(f"median of {REPEATS} fresh processes each")
    print(f"{'command':<32} {'median ms':>10} {'vs python -c pass':>18}")
    for label, command in COMMANDS.items():
        seconds = baseline if label == "python -c pass" else median_seconds(command)
        print(f"{label:<32} {seconds * 1000:>10.1f} {seconds / baseline:>17.1f}x")


if __name__ == "__main__":
    main()
