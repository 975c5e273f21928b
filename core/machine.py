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
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_used_bytes() -> int:
    """This process's resident memory (Linux's VmRSS), or 0 where it cannot be read."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
