"""Test helpers for background training: poll until something happens, and stop the workers a test started."""

import os
import signal
import time


def wait_for(predicate, timeout=180, interval=0.2, what="condition"):
    """Poll until predicate() is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout}s")


def stop_workers(registry, status: str | None = None):
    """SIGTERM the workers recorded in the registry's jobs table (only jobs in `status`, when given)."""
    query, parameters = "SELECT pid FROM jobs WHERE pid IS NOT NULL", ()
    if status is not None:
        query, parameters = query + " AND status = ?", (status,)
    with registry.connect() as connection:
        pids = {row["pid"] for row in connection.execute(query, parameters)}
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
