"""Process accounting from /proc: CPU seconds and RSS of a process tree, and start-up time to ready.

CPU is the gateway's own accounting (utime + stime, plus cutime + cstime of reaped children) summed
over the root process and all its live descendants, so a supervisor with worker processes counts in
full. RSS is VmRSS (now) and VmHWM (the high-water mark) summed over the same tree. The machine's own
busy time (/proc/stat) says how much of all its cores a run used, whoever used it.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree_pids(root: int) -> list[int]:
    """The root and every live descendant."""
    kids = _children_map()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(kids.get(pid, []))
    return found


def _cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return sum(int(x) for x in fields[11:15])  # utime stime cutime cstime


def tree_cpu_seconds(root: int | None) -> float:
    if root is None:
        return 0.0
    return sum(_cpu_ticks(pid) for pid in tree_pids(root)) / CLOCK_TICKS


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass(frozen=True)
class Memory:
    rss_mb: float  # summed VmRSS now
    hwm_mb: float  # summed VmHWM (peak per process)
    processes: int


def tree_memory(root: int) -> Memory:
    pids = tree_pids(root)
    rss = sum(_status_kb(pid, "VmRSS") for pid in pids)
    hwm = sum(_status_kb(pid, "VmHWM") for pid in pids)
    return Memory(round(rss / 1024, 1), round(hwm / 1024, 1), len(pids))


def wait_ready(url: str, timeout: float, started: float | None = None) -> float:
    """Poll `url` every 10 ms until it answers 200; return seconds since `started` (default: now)."""
    t0 = time.monotonic() if started is None else started
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.monotonic() - t0
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.01)
    raise TimeoutError(f"{url} did not answer 200 within {timeout:.0f} s")


def machine_busy_seconds() -> float:
    """CPU seconds all the machine's cores have spent busy since boot (/proc/stat's first line: user,
    nice, system, irq, softirq and steal; not idle or iowait): whatever ran, our processes or not."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
