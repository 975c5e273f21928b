"""Worker processes: `python -m core worker` drains a registry's job queue, one job at a time.

`ensure_worker(root)` starts one unless it is running or still starting, never a crowd. The worker
claims the oldest queued job, has the engine train it (`core.engines`: in this process, or on a Ray
cluster), records progress and how it ended, and exits after a while idle or after
`MAX_JOBS_PER_WORKER` jobs, so its memory never grows without bound.
"""

import fcntl
import subprocess
import sys
import time
from pathlib import Path

from core.errors import CoreError, TrainingCancelled
from core.jobs import JobQueue, pid_alive
from core.paths import PROJECT_ROOT
from core.registry import Registry

WORKER_LOCK_FILE = "worker.lock"
WORKER_LOG_FILE = "worker.log"
WORKER_SPAWN_FILE = "worker.spawn"  # lock + "pid start-time" of the last worker started, until it holds the lock
WORKER_START_GRACE_SECONDS = 60  # a started worker that has not taken the lock yet is waited for, not duplicated
POLL_SECONDS = 0.2
IDLE_EXIT_SECONDS = 900
MAX_JOBS_PER_WORKER = 10
WORKER_NICENESS = 10  # on a busy server students' page runs come first; alone, training still gets every core


def worker_alive(root: Path) -> bool:
    """True when a worker process holds the worker lock of the registry at `root`."""
    with open(Path(root) / WORKER_LOCK_FILE, "a") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock_file, fcntl.LOCK_UN)
        return False


def ensure_worker(root: Path):
    """Start a worker process unless one is running or still starting: never more than one at a time.

    A new worker needs a moment before it holds the worker lock; the spawn file, written under its own
    lock, remembers it, so that polling pages on a busy machine do not start a crowd of workers.
    """
    root = Path(root)
    with open(root / WORKER_SPAWN_FILE, "a+") as spawn_file:
        fcntl.flock(spawn_file, fcntl.LOCK_EX)
        if worker_alive(root) or _recently_started_worker_alive(spawn_file):
            return
        with open(root / WORKER_LOG_FILE, "a") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "core", "--root", str(root), "worker"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=str(PROJECT_ROOT),
            )
        spawn_file.truncate(0)
        spawn_file.write(f"{process.pid} {time.time()}")
        spawn_file.flush()


def run_worker(registry: Registry, idle_exit_seconds: float = IDLE_EXIT_SECONDS, max_jobs: int = MAX_JOBS_PER_WORKER) -> int:
    """Train queued jobs one by one until idle for `idle_exit_seconds`; return how many ran."""
    from core.engines import engine_for

    with open(registry.root / WORKER_LOCK_FILE, "a") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # another worker is running
        queue = JobQueue(registry.root)
        queue.fail_orphans()
        registry.clean_partial()
        engine = engine_for(registry)
        jobs_run, idle_since = 0, time.monotonic()
        while jobs_run < max_jobs and time.monotonic() - idle_since < idle_exit_seconds:
            claimed = queue.claim_next()
            if claimed is None:
                time.sleep(POLL_SECONDS)
                continue
            run_job(engine, queue, *claimed)
            jobs_run, idle_since = jobs_run + 1, time.monotonic()
        return jobs_run


def run_job(engine, queue: JobQueue, key: str, config):
    """Train one claimed job with `engine` and record how it ended; the worker survives any single job."""
    try:
        engine.run(config, on_epoch=lambda progress: queue.record_progress(key, progress.to_dict()),
                   should_stop=lambda: queue.cancel_requested(key))
        state, message = "done", None
    except TrainingCancelled as error:
        state, message = "cancelled", str(error)
    except CoreError as error:
        state, message = "failed", str(error)
    except Exception as error:  # the worker must survive any single job
        state, message = "failed", f"Training failed: {type(error).__name__}: {error}"
    queue.finish(key, state, message)


def _recently_started_worker_alive(spawn_file) -> bool:
    """True when the spawn file names a worker started less than the grace period ago that still runs."""
    spawn_file.seek(0)
    try:
        pid, started = spawn_file.read().split()
        pid, started = int(pid), float(started)
    except ValueError:
        return False
    return time.time() - started < WORKER_START_GRACE_SECONDS and pid_alive(pid)
