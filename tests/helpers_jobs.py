"""Test helpers for background training: poll until something happens, and stop the workers a test started."""

import os
import signal
import time
from pathlib import Path


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
    """SIGTERM the workers recorded in the registry's job queue (only jobs in `status`, when given)."""
    query, parameters = "SELECT pid FROM jobs WHERE pid IS NOT NULL", ()
    if status is not None:
        query, parameters = query + " AND status = ?", (status,)
    from core.jobs import JobQueue

    with JobQueue(registry.root).connect() as connection:
        pids = {row["pid"] for row in connection.execute(query, parameters)}
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def worker_pids_of(root) -> list[int]:
    """The pids of every `python -m core --root <root> worker` process running now (found in /proc)."""
    roots = {str(root).encode(), str(Path(root).resolve()).encode()}
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            arguments = cmdline.read_bytes().split(b"\0")
        except OSError:  # the process has just ended
            continue
        if b"worker" in arguments and roots & set(arguments):
            pids.append(int(cmdline.parent.name))
    return pids


def stop_workers_of(root):
    """SIGTERM every worker process of the registry at `root` still running (`worker_pids_of`).

    A worker waits IDLE_EXIT_SECONDS for more jobs before it exits; a test's registry gets no more.
    """
    for pid in worker_pids_of(root):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def finish_at(queue, job, started: float, finished: float, session: str | None = None):
    """Run `job` through `queue` (a core.jobs.JobQueue) and record that it trained from `started` to `finished`:
    estimates read those times."""
    queue.enqueue(job, session=session or f"student-{job.seed}")
    key, _ = queue.claim_next()
    queue.finish(key, "done", None)
    with queue.connect() as connection:
        connection.execute("UPDATE jobs SET started = ?, finished = ? WHERE key = ?", (started, finished, key))
