"""Peak memory of another process, from Linux's /proc (no psutil needed).

``VmHWM`` is the process's peak resident set; writing 5 to ``clear_refs`` resets it to the
current resident set, so a test can measure the peak of one operation in a long-lived process.
"""

from __future__ import annotations

from pathlib import Path


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM not reported")


def descendants(pid: int) -> list[int]:
    """The processes ``pid`` started, and theirs (Linux's ``/proc/PID/task/TID/children``)."""
    found = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in map(int, children.read_text().split()):
            found += [child, *descendants(child)]
    return found


def tree_peak_rss_mib(pid: int) -> float:
    """The peaks of ``pid`` and of every process it started, added up (an upper bound of what
    they held at once), for a gateway that receives in several processes."""
    total = 0.0
    for each in [pid, *descendants(pid)]:
        try:
            total += peak_rss_mib(each)
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended meanwhile
    return total


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmRSS not reported")


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")
