"""Background training: a queue in the registry's SQLite index and one worker process that drains it.

The dashboard never trains inside the Streamlit server. `JobRunner.submit(config)` queues a job (or
joins the one already queued for the same key) and makes sure a worker process is running. The worker
trains one job at a time, writes per-epoch progress to the index, and exits after a while idle or
after `MAX_JOBS_PER_WORKER` jobs, so its memory never grows without bound.
"""

import fcntl
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

from core.config import TrainConfig, validate_key
from core.errors import CoreError, TrainingCancelled
from core.registry import Registry

WORKER_LOCK_FILE = "worker.lock"
WORKER_LOG_FILE = "worker.log"
WORKER_SPAWN_FILE = "worker.spawn"  # lock + "pid start-time" of the last worker started, until it holds the lock
WORKER_START_GRACE_SECONDS = 60  # a started worker that has not taken the lock yet is waited for, not duplicated
POLL_SECONDS = 0.2
IDLE_EXIT_SECONDS = 900
MAX_JOBS_PER_WORKER = 10
WORKER_NICENESS = 10  # on a busy server students' page runs come first; alone, training still gets every core
FINISHED_STATES = ("done", "failed", "cancelled")
AUTO_TRAIN_IMAGE_EPOCHS = 20_000  # training images x epochs below which auto-train is allowed (a few seconds)


@dataclass
class JobStatus:
    """Where training of one key stands."""

    key: str
    state: str  # "none" | "queued" | "running" | "done" | "failed" | "cancelled"
    message: str | None = None
    progress: list[dict] = field(default_factory=list)
    epochs: int | None = None
    queue_position: int | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES or self.state == "none"

    @property
    def eta_seconds(self) -> float | None:
        return self.progress[-1]["eta_seconds"] if self.progress else None


class JobRunner:
    """Queues trainings for a registry and keeps one worker process alive to run them."""

    def __init__(self, registry: Registry):
        self.registry = registry

    def submit(self, config: TrainConfig) -> JobStatus:
        """Queue `config` unless it is trained, queued or running already; return where it stands."""
        key = config.key
        if self.registry.has(key):
            return JobStatus(key, "done")
        with self.registry.connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            row = connection.execute("SELECT status, pid FROM jobs WHERE key = ?", (key,)).fetchone()
            active = row is not None and row["status"] in ("queued", "running") and not self._is_dead(row)
            if not active:
                connection.execute(
                    "INSERT OR REPLACE INTO jobs (key, config, status, submitted, cancel_requested) VALUES (?,?,?,?,0)",
                    (key, config.to_json(), "queued", time.time()),
                )
                connection.execute("DELETE FROM progress WHERE key = ?", (key,))
            connection.execute("COMMIT")
        self.ensure_worker()
        return self.status(key)

    def status(self, key: str) -> JobStatus:
        """The job of `key`: its state, message and per-epoch progress so far."""
        validate_key(key)
        with self.registry.connect() as connection:
            row = connection.execute("SELECT * FROM jobs WHERE key = ?", (key,)).fetchone()
            queued_before = None
            if row is not None and row["status"] == "queued":
                queued_before = connection.execute(
                    "SELECT COUNT(*) FROM jobs WHERE status IN ('queued','running') AND submitted < ?", (row["submitted"],)
                ).fetchone()[0]
        if row is None:
            return JobStatus(key, "done" if self.registry.has(key) else "none")
        state, message = row["status"], row["message"]
        if state in ("queued", "running") and self._is_dead(row):
            state, message = "failed", "The training process stopped unexpectedly. Press Train to try again."
        if state != "done" and self.registry.has(key):  # published, then killed or cancelled: the model is complete
            state, message = "done", None
        if state == "queued" and not self.worker_alive():
            self.ensure_worker()
        epochs = TrainConfig.from_json(row["config"]).epochs
        return JobStatus(key, state, message, self.registry.progress(key), epochs, queued_before)

    def cancel(self, key: str):
        """Ask the worker to stop training `key` (it stops within a fraction of a second)."""
        with self.registry.connect() as connection:
            connection.execute(
                "UPDATE jobs SET cancel_requested = 1, "
                "status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END, "
                "message = CASE WHEN status = 'queued' THEN 'Cancelled before it started.' ELSE message END "
                "WHERE key = ?",
                (validate_key(key),),
            )

    def active_jobs(self) -> list[dict]:
        """Queued and running jobs, oldest first."""
        with self.registry.connect() as connection:
            rows = connection.execute(
                "SELECT key, status, submitted FROM jobs WHERE status IN ('queued','running') ORDER BY submitted"
            ).fetchall()
        return [dict(row) for row in rows]

    def worker_alive(self) -> bool:
        """True when a worker process holds the worker lock."""
        with open(self.registry.root / WORKER_LOCK_FILE, "a") as lock_file:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(lock_file, fcntl.LOCK_UN)
            return False

    def ensure_worker(self):
        """Start a worker process unless one is running or still starting: never more than one at a time.

        A new worker needs a moment before it holds the worker lock; the spawn file, written under its own
        lock, remembers it, so that polling pages on a busy machine do not start a crowd of workers.
        """
        with open(self.registry.root / WORKER_SPAWN_FILE, "a+") as spawn_file:
            fcntl.flock(spawn_file, fcntl.LOCK_EX)
            if self.worker_alive() or _recently_started_worker_alive(spawn_file):
                return
            with open(self.registry.root / WORKER_LOG_FILE, "a") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "core", "--root", str(self.registry.root), "worker"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    cwd=str(_project_root()),
                )
            spawn_file.truncate(0)
            spawn_file.write(f"{process.pid} {time.time()}")
            spawn_file.flush()

    @staticmethod
    def _is_dead(row) -> bool:
        return row["status"] == "running" and row["pid"] is not None and not _pid_alive(row["pid"])


def estimated_images_seen(config: TrainConfig, info=None) -> int:
    """Training images times epochs: the cost that decides whether auto-train may start by itself."""
    images = config.train_subset or (info.training_images if info is not None else 10**9)
    return images * config.epochs


def run_worker(registry: Registry, idle_exit_seconds: float = IDLE_EXIT_SECONDS, max_jobs: int = MAX_JOBS_PER_WORKER) -> int:
    """Train queued jobs one by one until idle for `idle_exit_seconds`; return how many ran."""
    with open(registry.root / WORKER_LOCK_FILE, "a") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # another worker is running
        _fail_orphaned_jobs(registry)
        registry.clean_partial()
        jobs_run, idle_since = 0, time.monotonic()
        while jobs_run < max_jobs and time.monotonic() - idle_since < idle_exit_seconds:
            key = _claim_next_job(registry)
            if key is None:
                time.sleep(POLL_SECONDS)
                continue
            _run_job(registry, key)
            jobs_run, idle_since = jobs_run + 1, time.monotonic()
        return jobs_run


def _claim_next_job(registry: Registry) -> str | None:
    with registry.connect() as connection:
        connection.execute("BEGIN IMMEDIATE")
        row = connection.execute("SELECT key FROM jobs WHERE status = 'queued' ORDER BY submitted LIMIT 1").fetchone()
        if row is not None:
            connection.execute(
                "UPDATE jobs SET status = 'running', pid = ?, started = ? WHERE key = ?", (os.getpid(), time.time(), row["key"])
            )
        connection.execute("COMMIT")
    return row["key"] if row else None


def _run_job(registry: Registry, key: str):
    """Train one claimed job and record how it ended."""
    import keras

    with registry.connect() as connection:
        config = TrainConfig.from_json(connection.execute("SELECT config FROM jobs WHERE key = ?", (key,)).fetchone()["config"])

    def cancel_requested() -> bool:
        with registry.connect() as connection:
            row = connection.execute("SELECT cancel_requested FROM jobs WHERE key = ?", (key,)).fetchone()
        return bool(row and row["cancel_requested"])

    try:
        registry.get_or_train(
            config, on_epoch=lambda progress: registry.record_progress(key, progress.to_dict()), should_stop=cancel_requested
        )
        state, message = "done", None
    except TrainingCancelled as error:
        state, message = "cancelled", str(error)
    except CoreError as error:
        state, message = "failed", str(error)
    except Exception as error:  # the worker must survive any single job
        state, message = "failed", f"Training failed: {type(error).__name__}: {error}"
    finally:
        keras.backend.clear_session()
    with registry.connect() as connection:
        connection.execute("UPDATE jobs SET status = ?, message = ?, finished = ? WHERE key = ?", (state, message, time.time(), key))


def _fail_orphaned_jobs(registry: Registry):
    """Jobs marked running by a worker that died are failed, so they can be retried."""
    with registry.connect() as connection:
        for row in connection.execute("SELECT key, pid FROM jobs WHERE status = 'running'").fetchall():
            if row["pid"] is None or not _pid_alive(row["pid"]) or row["pid"] == os.getpid():
                connection.execute(
                    "UPDATE jobs SET status = 'failed', message = ? WHERE key = ?",
                    ("The training process stopped unexpectedly. Press Train to try again.", row["key"]),
                )


def _recently_started_worker_alive(spawn_file) -> bool:
    """True when the spawn file names a worker started less than the grace period ago that still runs."""
    spawn_file.seek(0)
    try:
        pid, started = spawn_file.read().split()
        pid, started = int(pid), float(started)
    except ValueError:
        return False
    return time.time() - started < WORKER_START_GRACE_SECONDS and _pid_alive(pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return False


def _project_root():
    from core.paths import PROJECT_ROOT

    return PROJECT_ROOT
