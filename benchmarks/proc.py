"""Run a child process and measure it: exit status, output, wall time and peak RSS.

Peak RSS is the child's own high-water mark (`VmHWM` in /proc/PID/status: the memory of the
program it exec'd, nothing else), sampled every 20 ms while it runs; a child that reports its own
`VmHWM` at exit (`own_peak_rss_mb`, as `benchmarks.probe` does) is exact. Not `ru_maxrss`: Linux
carries the parent's RSS at fork into the child's `ru_maxrss` across exec (a 900 MB pytest
parent made a 10 MB child read 900 MB), so it is kept only as `ru_maxrss_mb`, an upper bound.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from benchmarks import BenchError


@dataclass(frozen=True)
class Measured:
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    peak_rss_mb: float  # the child's VmHWM, last sample before it exited
    ru_maxrss_mb: float  # wait4's ru_maxrss: includes the parent's RSS at fork (upper bound)

    def last_json(self) -> dict:
        """The last stdout line that parses as a JSON object."""
        for line in reversed(self.stdout.splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except ValueError:
                    continue
        raise BenchError(f"child printed no JSON result; stderr: {self.stderr.strip()[-500:]}")


def run_measured(
    cmd: list[str], timeout: float | None = None, env: dict | None = None, cwd=None
) -> Measured:
    """Run `cmd`, capture stdout/stderr, and read its peak RSS from wait4's rusage."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd, text=True
    )
    out: dict[str, str] = {}

    def drain(name, stream):
        out[name] = stream.read()

    readers = [
        threading.Thread(target=drain, args=("stdout", proc.stdout), daemon=True),
        threading.Thread(target=drain, args=("stderr", proc.stderr), daemon=True),
    ]
    for r in readers:
        r.start()
    hwm = [0.0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            hwm[0] = max(hwm[0], vm_hwm_mb(proc.pid) or 0.0)
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    timer = None
    if timeout:
        timer = threading.Timer(timeout, lambda: os.kill(proc.pid, signal.SIGKILL))
        timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except KeyboardInterrupt:
        proc.kill()
        raise
    finally:
        done.set()
        if timer:
            timer.cancel()
    wall = time.perf_counter() - t0
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    for r in readers:
        r.join()
    return Measured(
        returncode=proc.returncode,
        stdout=out.get("stdout", ""),
        stderr=out.get("stderr", ""),
        wall_s=wall,
        peak_rss_mb=hwm[0],
        ru_maxrss_mb=usage.ru_maxrss / 1024.0,  # kilobytes on Linux
    )


def vm_hwm_mb(pid: int | str = "self") -> float | None:
    """Peak resident set of a live process (VmHWM), in MB; None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def python_module(module: str, *args: str) -> list[str]:
    """The command line that runs `python -m module args` with this interpreter."""
    return [sys.executable, "-m", module, *map(str, args)]
