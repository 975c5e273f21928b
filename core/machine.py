"""What this machine has for training: the cores this process may use, the memory free, the memory a process holds.

Read from Linux's /proc and CPU affinity where they exist; elsewhere (macOS, untested) from the portable calls, or
as "unknown" (0 bytes used). core.workers sizes the worker pool with these, and the Ray engine a local cluster.
"""

import os
from pathlib import Path


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity on Linux; every core where affinity is unknown, as on macOS)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def available_memory_bytes() -> int:
    """Memory available to new processes (Linux's MemAvailable), else the machine's whole memory."""
    found = _proc_bytes("/proc/meminfo", "MemAvailable")
    return found if found is not None else os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_used_bytes() -> int:
    """This process's resident memory (Linux's VmRSS), or 0 where it cannot be read."""
    return _proc_bytes("/proc/self/status", "VmRSS") or 0


def _proc_bytes(path: str, field: str) -> int | None:
    """A "Field: N kB" line of a /proc file, in bytes; None where the file or the field is not there."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
