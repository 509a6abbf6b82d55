"""One `scenesense` command in a child process, measured: wall and CPU seconds, and the child's own
peak RSS (``VmHWM`` of ``/proc/self/status`` as it exits; ``ru_maxrss`` of a child would also count
the parent's memory copied at fork). Used by the long-recording benchmarks."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass

CHILD = """import sys
from scenesense.cli import main
code = main(sys.argv[1:])
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print("VmHWM", peak.split()[1], file=sys.stderr)
sys.exit(code)
"""  # the CLI, then its own peak RSS (kB) on the last stderr line


@dataclass(frozen=True)
class ChildRun:
    """What the child printed on stdout (``""`` unless captured), its wall and CPU seconds, peak RSS (MB)."""

    stdout: str
    wall: float
    cpu: float
    peak_rss_mb: float


def run_cli(args: list[str], threads: int, capture_stdout: bool = False) -> ChildRun:
    """``scenesense ARGS`` with ``OMP_NUM_THREADS=threads``; exits with its stderr when it fails."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    stdout = subprocess.PIPE if capture_stdout else subprocess.DEVNULL
    done = subprocess.run([sys.executable, "-c", CHILD, *args], env=env, text=True, check=False,
                          stdout=stdout, stderr=subprocess.PIPE)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    last = (done.stderr.strip().splitlines() or [""])[-1].split()
    if done.returncode != 0 or len(last) != 2 or last[0] != "VmHWM":
        raise SystemExit(f"scenesense {' '.join(args[:2])} exited {done.returncode}:\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return ChildRun(done.stdout or "", wall, cpu, int(last[1]) / 1024)
