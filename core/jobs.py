"""Background training: the queue of jobs, in its own SQLite file beside the registry, and what pages ask of it.

The dashboard never trains inside the Streamlit server. `JobRunner.submit(config)` queues a job (or
joins the one already queued for the same key) and makes sure a worker process is running
(`core.workers`); the worker trains wherever the engine says (`core.engines`), writes per-epoch
progress here, and publishes the model into the registry. This module owns the `jobs` and
`progress` tables and every query on them.
"""

import contextlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.config import TrainConfig, validate_key
from core.errors import RegistryError
from core.registry import Registry

JOBS_FILE = "jobs.sqlite"
FINISHED_STATES = ("done", "failed", "cancelled")
ACTIVE_STATES = ("queued", "running")
AUTO_TRAIN_IMAGE_EPOCHS = 20_000  # training images x epochs below which auto-train is allowed (a few seconds)
WORKER_DIED_MESSAGE = "The training process stopped unexpectedly. Press Train to try again."

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY, config TEXT NOT NULL, status TEXT NOT NULL, message TEXT, pid INTEGER,
    submitted REAL, started REAL, finished REAL, cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS progress (
    key TEXT NOT NULL, epoch INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (key, epoch)
);
"""


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


class JobQueue:
    """The training queue of one registry: one row per key, and the per-epoch progress of each."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with self.connect() as connection:
                connection.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as error:
            raise RegistryError(f"Cannot open the training queue in {self.root}: {error}. Check that the folder is "
                                f"writable, or point $CNNCLASSROOM_REGISTRY at one that is.") from error

    def connect(self):
        """A connection to jobs.sqlite (WAL, so pages read while a worker writes); a deleted file is recreated."""
        path = self.root / JOBS_FILE
        is_new = not path.exists()
        connection = sqlite3.connect(path, timeout=30, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA busy_timeout=30000")
        connection.row_factory = sqlite3.Row
        if is_new:
            connection.executescript(SCHEMA)
        return contextlib.closing(connection)

    def enqueue(self, config: TrainConfig) -> None:
        """Queue `config` unless its key is queued or running already (a dead run's row is replaced)."""
        with self.connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            row = connection.execute("SELECT status, pid FROM jobs WHERE key = ?", (config.key,)).fetchone()
            if row is None or row["status"] not in ACTIVE_STATES or _is_dead(row):
                connection.execute(
                    "INSERT OR REPLACE INTO jobs (key, config, status, submitted, cancel_requested) VALUES (?,?,?,?,0)",
                    (config.key, config.to_json(), "queued", time.time()),
                )
                connection.execute("DELETE FROM progress WHERE key = ?", (config.key,))
            connection.execute("COMMIT")

    def job(self, key: str) -> sqlite3.Row | None:
        """The row of `key`'s job, or None."""
        with self.connect() as connection:
            return connection.execute("SELECT * FROM jobs WHERE key = ?", (validate_key(key),)).fetchone()

    def jobs_ahead(self, submitted: float) -> int:
        """How many queued or running jobs were submitted before `submitted`."""
        with self.connect() as connection:
            return connection.execute("SELECT COUNT(*) FROM jobs WHERE status IN ('queued','running') AND submitted < ?",
                                      (submitted,)).fetchone()[0]

    def claim_next(self) -> tuple[str, TrainConfig] | None:
        """Atomically mark the oldest queued job as running in this process; (key, config), or None when idle."""
        with self.connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            row = connection.execute("SELECT key, config FROM jobs WHERE status = 'queued' ORDER BY submitted LIMIT 1").fetchone()
            if row is not None:
                connection.execute("UPDATE jobs SET status = 'running', pid = ?, started = ? WHERE key = ?",
                                    (os.getpid(), time.time(), row["key"]))
            connection.execute("COMMIT")
        return (row["key"], TrainConfig.from_json(row["config"])) if row else None

    def finish(self, key: str, state: str, message: str | None):
        """Record how a claimed job ended: done, failed or cancelled."""
        with self.connect() as connection:
            connection.execute("UPDATE jobs SET status = ?, message = ?, finished = ? WHERE key = ?",
                               (state, message, time.time(), key))

    def cancel(self, key: str):
        """Ask for `key` to stop: a queued job is cancelled at once, a running one by its worker within a moment."""
        with self.connect() as connection:
            connection.execute(
                "UPDATE jobs SET cancel_requested = 1, "
                "status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END, "
                "message = CASE WHEN status = 'queued' THEN 'Cancelled before it started.' ELSE message END "
                "WHERE key = ?",
                (validate_key(key),),
            )

    def cancel_requested(self, key: str) -> bool:
        with self.connect() as connection:
            row = connection.execute("SELECT cancel_requested FROM jobs WHERE key = ?", (key,)).fetchone()
        return bool(row and row["cancel_requested"])

    def record_progress(self, key: str, progress: dict):
        """Store one epoch's metrics for live curves."""
        with self.connect() as connection:
            connection.execute("INSERT OR REPLACE INTO progress VALUES (?,?,?)",
                               (validate_key(key), progress["epoch"], json.dumps(progress)))

    def progress(self, key: str) -> list[dict]:
        """Per-epoch metrics recorded so far for `key`, in order."""
        with self.connect() as connection:
            rows = connection.execute("SELECT data FROM progress WHERE key = ? ORDER BY epoch", (validate_key(key),)).fetchall()
        return [json.loads(row["data"]) for row in rows]

    def active(self) -> list[dict]:
        """Queued and running jobs, oldest first."""
        with self.connect() as connection:
            rows = connection.execute(
                "SELECT key, status, submitted FROM jobs WHERE status IN ('queued','running') ORDER BY submitted"
            ).fetchall()
        return [dict(row) for row in rows]

    def fail_orphans(self):
        """Jobs marked running by a process that died are failed, so they can be retried."""
        with self.connect() as connection:
            for row in connection.execute("SELECT key, pid, status FROM jobs WHERE status = 'running'").fetchall():
                if row["pid"] is None or _is_dead(row) or row["pid"] == os.getpid():
                    connection.execute("UPDATE jobs SET status = 'failed', message = ? WHERE key = ?",
                                       (WORKER_DIED_MESSAGE, row["key"]))


class JobRunner:
    """What the pages ask of background training: submit, status, cancel, and a worker to run it all."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self.queue = JobQueue(registry.root)

    def submit(self, config: TrainConfig) -> JobStatus:
        """Queue `config` unless it is published, queued or running already; return where it stands."""
        if self.registry.has(config.key):
            return JobStatus(config.key, "done")
        self.queue.enqueue(config)
        self.ensure_worker()
        return self.status(config.key)

    def status(self, key: str) -> JobStatus:
        """The job of `key`: its state, message and per-epoch progress so far."""
        row = self.queue.job(key)
        published = self.registry.has(key)
        if row is None:
            return JobStatus(key, "done" if published else "none")
        state, message = row["status"], row["message"]
        if state in ACTIVE_STATES and _is_dead(row):
            state, message = "failed", WORKER_DIED_MESSAGE
        if published:  # published, then killed or cancelled: the model is complete
            state, message = "done", None
        elif state == "done":  # trained once, deleted since
            state, message = "none", None
        if state == "queued" and not self.worker_alive():
            self.ensure_worker()
        queue_position = self.queue.jobs_ahead(row["submitted"]) if state == "queued" else None
        epochs = TrainConfig.from_json(row["config"]).epochs
        return JobStatus(key, state, message, self.queue.progress(key), epochs, queue_position)

    def cancel(self, key: str):
        """Ask the worker to stop training `key` (it stops within a fraction of a second)."""
        self.queue.cancel(key)

    def active_jobs(self) -> list[dict]:
        """Queued and running jobs, oldest first."""
        return self.queue.active()

    def worker_alive(self) -> bool:
        from core.workers import worker_alive

        return worker_alive(self.registry.root)

    def ensure_worker(self):
        from core.workers import ensure_worker

        ensure_worker(self.registry.root)


def estimated_images_seen(config: TrainConfig, info=None) -> int:
    """Training images times epochs: the cost that decides whether auto-train may start by itself."""
    images = config.train_subset or (info.training_images if info is not None else 10**9)
    return images * config.epochs


def pid_alive(pid: int) -> bool:
    """True while process `pid` runs (a zombie has ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_dead(row) -> bool:
    return row["status"] == "running" and row["pid"] is not None and not pid_alive(row["pid"])


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return False
