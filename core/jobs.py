"""Background training: the queue of jobs, in its own SQLite file beside the registry, and what pages ask of it.

The dashboard never trains inside the Streamlit server. `JobRunner.submit(config, session)` queues a job
(or joins the one already queued for the same key) and makes sure the worker pool is running
(`core.workers`); a worker trains wherever the engine says (`core.engines`), writes per-epoch progress
here, and publishes the model into the registry. This module owns the `jobs`, `progress` and `settings`
tables and every query on them.

The queue is fair: jobs are taken round by round across browser sessions (`FAIR_ORDER`), so a student
who queues ten settings does not hold up everyone else; each waiting student is told how many trainings
are ahead and, once a few jobs have finished here, about when theirs starts (`start_estimate`). A teacher
may set a per-job budget (`Budget`: most epochs, most seconds); `core.estimates` says how long each
training takes. (Under 500 lines: the queue's tables, the fair order that reads them and when each
waiting job starts belong together.)
"""

import functools
import heapq
import json
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.config import TrainConfig, validate_key
from core.database import closing, empty_read_only, open_database, opened_or_made_anew, writable
from core.errors import BudgetError, RegistryError
from core.estimates import FinishedJob, expected_seconds_function, finished_jobs
from core.history import History
from core.registry import SERVER_PROBLEM, Registry

JOBS_FILE = "jobs.sqlite"
FINISHED_STATES = ("done", "failed", "cancelled")
ACTIVE_STATES = ("queued", "running")
WORKER_DIED_MESSAGE = "The training process stopped unexpectedly. Press Train to try again."
RECENT_JOBS_FOR_ESTIMATES = 20  # the finished jobs whose durations estimate how long the queue takes

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY, config TEXT NOT NULL, status TEXT NOT NULL, message TEXT, pid INTEGER,
    submitted REAL, started REAL, finished REAL, cancel_requested INTEGER NOT NULL DEFAULT 0,
    session TEXT, placement TEXT, first_batch REAL
);
CREATE TABLE IF NOT EXISTS progress (
    key TEXT NOT NULL, epoch INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (key, epoch)
);
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
COLUMNS_ADDED_SINCE_VERSION_1 = {"session": "TEXT", "placement": "TEXT", "first_batch": "REAL"}  # a jobs.sqlite made before the pool gets them

# Round-robin across sessions: a session's n-th waiting job is in round n, plus one round for every job of that
# session started since the oldest waiting job was submitted (so a session that just had a turn waits for the
# others'). Rounds first, then submission time. Jobs without a session (the CLI) share one.
FAIR_ORDER = """
WITH waiting AS (
    SELECT key, config, submitted, session,
           ROW_NUMBER() OVER (PARTITION BY session ORDER BY submitted) AS turn
    FROM jobs WHERE status = 'queued'),
oldest AS (SELECT MIN(submitted) AS since FROM waiting),
served AS (
    SELECT session, COUNT(*) AS jobs FROM jobs, oldest
    WHERE started IS NOT NULL AND status != 'queued' AND started >= oldest.since GROUP BY session)
SELECT waiting.key, waiting.config, waiting.submitted, waiting.turn + COALESCE(served.jobs, 0) AS round
FROM waiting LEFT JOIN served ON served.session IS waiting.session
ORDER BY round, waiting.submitted
"""


@dataclass(frozen=True)
class Budget:
    """The teacher's limit on each training: at most `max_epochs` epochs and `max_seconds` seconds (None: no limit)."""

    max_epochs: int | None = None
    max_seconds: float | None = None

    def check(self, config: TrainConfig):
        """Raise BudgetError when `config` asks for more epochs than the budget allows."""
        if self.max_epochs is not None and config.epochs > self.max_epochs:
            raise BudgetError(f"Your teacher allows at most {self.max_epochs} epochs per training on this server; "
                              f"these settings ask for {config.epochs}. Lower the number of epochs and press Train again. "
                              f"Received: epochs={config.epochs}")

    def over_time(self, started: float) -> bool:
        return self.max_seconds is not None and time.time() - started > self.max_seconds

    def time_message(self, config: TrainConfig, epochs_done: int) -> str:
        return (f"This training passed the {self.max_seconds:.0f}-second limit your teacher set for each training "
                f"(it had finished {epochs_done} of {config.epochs} epochs), so it was stopped and not saved. "
                f"Try fewer epochs or fewer training images.")


@dataclass(frozen=True)
class QueueState:
    """The queue at one moment, as an estimate needs it."""

    waiting: list  # (key, config) in the fair order
    running: list  # (config, start time)
    recent: list[FinishedJob]  # the last jobs done
    budget: Budget
    capacity: int  # jobs the workers run at once


@dataclass(frozen=True)
class ActiveJob:
    """A queued or running training."""

    key: str
    config: TrainConfig
    state: str  # "queued" | "running"


@dataclass
class JobStatus:
    """Where training of one key stands."""

    key: str
    state: str  # "none" | "queued" | "running" | "done" | "failed" | "cancelled"
    message: str | None = None
    progress: History = field(default_factory=list)
    epochs: int | None = None
    queue_position: int | None = None  # trainings ahead of this one (queued: in the fair order, plus the running ones)
    starts_in_seconds: float | None = None  # queued: about when it starts, once finished jobs give a speed
    placement: str | None = None  # where it runs: "this machine" or a Ray node
    first_epoch_batches: tuple[int, int] | None = None  # (done, per epoch) while the first epoch runs

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES or self.state == "none"

    @property
    def eta_seconds(self) -> float | None:
        return self.progress[-1]["eta_seconds"] if self.progress else None


@functools.lru_cache(maxsize=4096)
def parse_config(text: str) -> TrainConfig:
    """`TrainConfig.from_json`, remembered: every waiting student's page reads the same queued configs each second."""
    return TrainConfig.from_json(text)


class JobQueue:
    """The training queue of one registry: one row per key, and the per-epoch progress of each."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            opened_or_made_anew(self.root / JOBS_FILE, self._open_queue)  # a damaged queue stopped every Train press
        except (OSError, sqlite3.Error) as error:
            raise RegistryError(f"Cannot open the training queue in {self.root}: {error}. Check that the folder is "
                                f"writable, or point $CNNCLASSROOM_REGISTRY at one that is.",
                                student=SERVER_PROBLEM) from error

    def _open_queue(self):
        if not writable(self.root / JOBS_FILE):  # read as it is: an older file's missing columns are not added
            return
        with self.connect() as connection:
            connection.executescript(SCHEMA)
            self._add_missing_columns(connection)

    def connect(self):
        """A connection to jobs.sqlite (WAL, so pages read while a worker writes); a deleted file is recreated."""
        path = self.root / JOBS_FILE
        is_new = not path.exists()
        if is_new and not writable(path):  # a registry this user may only read, never queued in: an empty queue
            return closing(empty_read_only(SCHEMA), path)
        connection = open_database(path)
        if is_new:
            connection.executescript(SCHEMA)
        return closing(connection, path)

    def _add_missing_columns(self, connection):
        present = {row["name"] for row in connection.execute("PRAGMA table_info(jobs)")}
        for name, kind in COLUMNS_ADDED_SINCE_VERSION_1.items():
            if name not in present:
                connection.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")

    def enqueue(self, config: TrainConfig, session: str | None = None) -> None:
        """Queue `config` for `session` unless its key is queued or running already (a dead run's row is replaced)."""
        with self.connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            row = connection.execute("SELECT status, pid FROM jobs WHERE key = ?", (config.key,)).fetchone()
            if row is None or row["status"] not in ACTIVE_STATES or _is_dead(row):
                connection.execute(
                    "INSERT OR REPLACE INTO jobs (key, config, status, submitted, cancel_requested, session) "
                    "VALUES (?,?,?,?,0,?)",
                    (config.key, config.to_json(), "queued", time.time(), session),
                )
                connection.execute("DELETE FROM progress WHERE key = ?", (config.key,))
            connection.execute("COMMIT")

    def job(self, key: str) -> sqlite3.Row | None:
        """The row of `key`'s job, or None."""
        with self.connect() as connection:
            return connection.execute("SELECT * FROM jobs WHERE key = ?", (validate_key(key),)).fetchone()

    def waiting_in_order(self) -> list[tuple[str, TrainConfig]]:
        """Queued jobs in the order workers will take them (FAIR_ORDER): (key, config) pairs."""
        with self.connect() as connection:
            return [(row["key"], parse_config(row["config"])) for row in connection.execute(FAIR_ORDER)]

    def snapshot(self) -> "QueueState":
        """What an estimate reads, through one connection: waiting jobs in order, running ones, recent durations, settings."""
        with self.connect() as connection:
            waiting = [(row["key"], parse_config(row["config"])) for row in connection.execute(FAIR_ORDER)]
            running = [(parse_config(row["config"]), row["started"] or time.time())
                       for row in connection.execute("SELECT config, started FROM jobs WHERE status = 'running'")]
            done = [(row["key"], parse_config(row["config"]), row["started"], row["finished"]) for row in connection.execute(
                "SELECT key, config, started, finished FROM jobs WHERE status = 'done' AND started IS NOT NULL "
                "AND finished IS NOT NULL ORDER BY finished DESC LIMIT ?", (RECENT_JOBS_FOR_ESTIMATES,))]
            now = time.time()  # every training that ran meanwhile, whatever became of it: it shared the machine
            runs = [(row[0], row[1], row[2]) for row in connection.execute(  # (a crashed one without an end: not)
                "SELECT key, started, COALESCE(finished, ?) FROM jobs WHERE started IS NOT NULL "
                "AND (finished IS NOT NULL OR status = 'running') AND COALESCE(finished, ?) > ?",
                (now, now, min((started for _, _, started, _ in done), default=now)))]
            settings = {row["name"]: row["value"] for row in connection.execute("SELECT name, value FROM settings")}
        budget = Budget(**json.loads(settings["budget"])) if "budget" in settings else Budget()
        return QueueState(waiting, running, finished_jobs(done, runs), budget, int(settings.get("capacity", 1)))

    def claim_next(self, may_claim: Callable[[int, float], bool] | None = None) -> tuple[str, TrainConfig] | None:
        """Atomically mark the next queued job in the fair order as running in this process; (key, config), or None.

        `may_claim(running, waited)`, when given, decides from the number of jobs running and the seconds the next
        one has waited whether this worker takes it (the pool's lone worker and the others share out jobs this way:
        `core.workers`).
        """
        with self.connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            row = connection.execute(FAIR_ORDER + " LIMIT 1").fetchone()
            if row is not None and may_claim is not None:
                running = connection.execute("SELECT COUNT(*) FROM jobs WHERE status = 'running'").fetchone()[0]
                row = row if may_claim(running, time.time() - row["submitted"]) else None
            if row is not None:
                connection.execute("UPDATE jobs SET status = 'running', pid = ?, started = ?, placement = NULL WHERE key = ?",
                                    (os.getpid(), time.time(), row["key"]))
            connection.execute("COMMIT")
        return (row["key"], parse_config(row["config"])) if row else None

    def running_elsewhere(self) -> int:
        """How many jobs other processes are training now."""
        with self.connect() as connection:
            return connection.execute("SELECT COUNT(*) FROM jobs WHERE status = 'running' AND pid IS NOT ?",
                                      (os.getpid(),)).fetchone()[0]

    def set_placement(self, key: str, placement: str):
        """Record where a running job trains (a Ray node, say), for the pages and for tests."""
        with self.connect() as connection:
            connection.execute("UPDATE jobs SET placement = ? WHERE key = ?", (placement, validate_key(key)))

    def budget(self) -> Budget:
        """The teacher's per-job budget (no limits until one is set)."""
        with self.connect() as connection:
            row = connection.execute("SELECT value FROM settings WHERE name = 'budget'").fetchone()
        return Budget(**json.loads(row["value"])) if row else Budget()

    def set_budget(self, budget: Budget):
        with self.connect() as connection:
            connection.execute("INSERT OR REPLACE INTO settings VALUES ('budget', ?)",
                               (json.dumps({"max_epochs": budget.max_epochs, "max_seconds": budget.max_seconds}),))

    def capacity(self) -> int:
        """How many jobs the workers run at once, as the pool last recorded it (1 until then)."""
        with self.connect() as connection:
            row = connection.execute("SELECT value FROM settings WHERE name = 'capacity'").fetchone()
        return int(row["value"]) if row else 1

    def set_capacity(self, jobs_at_once: int):
        with self.connect() as connection:
            connection.execute("INSERT OR REPLACE INTO settings VALUES ('capacity', ?)", (str(int(jobs_at_once)),))

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

    def mark_first_batch(self, key: str):
        """Note when the job's first batch finished (the time to first batch that bench/first_batch.py reports)."""
        with self.connect() as connection:
            connection.execute("UPDATE jobs SET first_batch = ? WHERE key = ?", (time.time(), validate_key(key)))

    def record_progress(self, key: str, progress: dict):
        """Store one epoch's metrics for live curves."""
        with self.connect() as connection:
            connection.execute("INSERT OR REPLACE INTO progress VALUES (?,?,?)",
                               (validate_key(key), progress["epoch"], json.dumps(progress)))

    def record_batches(self, key: str, done: int, total: int):
        """Store how far the first epoch has got (row "epoch 0" of the progress table), until that epoch ends."""
        self.record_progress(key, {"epoch": 0, "batch": done, "batches": total})

    def progress(self, key: str) -> History:
        """Per-epoch metrics recorded so far for `key`, in order."""
        with self.connect() as connection:
            rows = connection.execute("SELECT data FROM progress WHERE key = ? AND epoch > 0 ORDER BY epoch",
                                      (validate_key(key),)).fetchall()
        return [json.loads(row["data"]) for row in rows]

    def first_epoch_batches(self, key: str) -> tuple[int, int] | None:
        """(batches done, batches in an epoch) while the first epoch of `key` runs, else None."""
        with self.connect() as connection:
            row = connection.execute("SELECT data FROM progress WHERE key = ? AND epoch = 0", (validate_key(key),)).fetchone()
        data = json.loads(row["data"]) if row else None
        return (data["batch"], data["batches"]) if data and data["batches"] else None

    def active(self) -> list[ActiveJob]:
        """Queued and running jobs, oldest first."""
        with self.connect() as connection:
            rows = connection.execute(
                "SELECT key, config, status FROM jobs WHERE status IN ('queued','running') ORDER BY submitted"
            ).fetchall()
        return [ActiveJob(row["key"], parse_config(row["config"]), row["status"]) for row in rows]

    def fail_orphans(self):
        """Jobs marked running by a process that died are failed, so they can be retried."""
        with self.connect() as connection:
            for row in connection.execute("SELECT key, pid, status FROM jobs WHERE status = 'running'").fetchall():
                if row["pid"] is None or _is_dead(row) or row["pid"] == os.getpid():
                    connection.execute("UPDATE jobs SET status = 'failed', message = ?, finished = ? WHERE key = ?",
                                       (WORKER_DIED_MESSAGE, time.time(), row["key"]))


class JobRunner:
    """What the pages ask of background training: submit, status, cancel, and the workers to run it all."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self.queue = JobQueue(registry.root)

    def submit(self, config: TrainConfig, session: str | None = None) -> JobStatus:
        """Queue `config` for browser `session` unless it is published, queued or running; return where it stands.

        Raises BudgetError when the teacher's budget does not allow it.
        """
        if self.registry.has(config.key):
            return JobStatus(config.key, "done")
        self.queue.budget().check(config)
        self.queue.enqueue(config, session)
        self.ensure_worker()
        return self.status(config.key)

    def status(self, key: str) -> JobStatus:
        """The job of `key`: its state, message, per-epoch progress so far, and its place in the queue."""
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
        ahead, starts_in = None, None
        if state == "queued":
            self.ensure_worker()  # a worker that stopped (or was never started) is replaced
            ahead, starts_in = self.start_estimate(key)
        epochs, progress = parse_config(row["config"]).epochs, self.queue.progress(key)
        batches = self.queue.first_epoch_batches(key) if state == "running" and not progress else None
        return JobStatus(key, state, message, progress, epochs, ahead, starts_in, row["placement"], batches)

    def start_estimate(self, key: str) -> tuple[int, float | None]:
        """(trainings ahead of queued job `key`, seconds until it starts or None while nothing has finished here)."""
        state = self.queue.snapshot()
        keys = [waiting_key for waiting_key, _ in state.waiting]
        position = keys.index(key) if key in keys else 0  # claimed a moment ago: it starts now
        seconds = _estimate(state, self.registry.root, new_jobs=0)
        if seconds is None:
            return position + len(state.running), None
        free_at = _workers_free_at(state, seconds)
        for _, config in state.waiting[:position]:
            heapq.heappush(free_at, heapq.heappop(free_at) + seconds(config))
        return position + len(state.running), free_at[0]

    def ready_in(self, configs: list[TrainConfig]) -> float | None:
        """Seconds until every one of `configs`, submitted now, would be trained: after the jobs running and waiting,
        on the pool's workers (the estimate of `start_estimate`); None until a job of the same family and a similar
        cost (core.estimates.SIMILAR_COST_FACTOR) has finished here for each."""
        state = self.queue.snapshot()
        seconds = _estimate(state, self.registry.root, new_jobs=len(configs))
        if seconds is None:
            return None
        own = [seconds(config, similar_only=True) for config in configs]
        if None in own or _over_budget(state, configs, self.registry.root):  # nothing like it here, or it would be stopped
            return None
        free_at = _workers_free_at(state, seconds)
        for _, config in state.waiting:
            heapq.heappush(free_at, heapq.heappop(free_at) + seconds(config))
        finished = []
        for expected in own:
            finished.append(heapq.heappop(free_at) + expected)
            heapq.heappush(free_at, finished[-1])
        return max(finished, default=0.0)

    def over_budget(self, configs: list[TrainConfig]) -> tuple[float, float] | None:
        """(the expected seconds of the longest of `configs`, the seconds the teacher allows) when the time budget would
        stop it before it finishes, else None (also while nothing similar has finished here to go by)."""
        return _over_budget(self.queue.snapshot(), configs, self.registry.root)

    def cancel(self, key: str):
        """Ask the worker to stop training `key` (it stops within a fraction of a second)."""
        self.queue.cancel(key)

    def active_jobs(self) -> list[ActiveJob]:
        """Queued and running jobs, oldest first."""
        return self.queue.active()

    def budget(self) -> Budget:
        return self.queue.budget()

    def worker_alive(self) -> bool:
        from core.workers import worker_alive

        return worker_alive(self.registry.root)

    def ensure_worker(self):
        """Start worker processes until the pool (`core.workers.pool_plan`) has as many as the queue needs."""
        from core.workers import ensure_workers

        if not writable(self.registry.root / JOBS_FILE):  # a registry this user may only read: no worker could train
            return
        with self.queue.connect() as connection:
            active = connection.execute("SELECT COUNT(*) FROM jobs WHERE status IN ('queued','running')").fetchone()[0]
        ensure_workers(self.registry.root, jobs_waiting=active)


def _estimate(state: QueueState, root, new_jobs: int, capped: bool = True) -> Callable[..., float | None] | None:
    """`core.estimates.expected_seconds_function` on the queue's last jobs, as a function (config, similar_only) ->
    seconds, or None while none has finished. Each job is expected to run beside others (`shared`) when more than one
    would run at once: the queue's and `new_jobs` more, on more than one worker. `capped`: at the teacher's limit."""
    expected = expected_seconds_function(state.recent, state.budget.max_seconds if capped else None, root)
    if expected is None:
        return None
    shared = state.capacity > 1 and len(state.running) + len(state.waiting) + new_jobs > 1
    return lambda config, similar_only=False: expected(config, similar_only, shared)


def _workers_free_at(state: "QueueState", seconds) -> list[float]:
    """A heap of when each of the `capacity` workers that take the waiting jobs is free, in seconds from now: the
    running jobs' remaining time, idle workers at once. The lone worker may run one job more than that at the start
    of a burst and then leaves the queue to the others (core.workers.claim_rule): counting it as one more worker
    promised the 12th of 12 students 9.1 s for 13.6."""
    now = time.time()
    free_at = sorted(max(0.0, seconds(config) - (now - started)) for config, started in state.running)
    free_at = free_at[:max(1, state.capacity)] + [0.0] * max(0, state.capacity - len(free_at))
    heapq.heapify(free_at)
    return free_at


def _over_budget(state: QueueState, configs: list[TrainConfig], root) -> tuple[float, float] | None:
    """`JobRunner.over_budget` on a snapshot of the queue already read."""
    if not (state.budget and state.budget.max_seconds):
        return None
    seconds = _estimate(state, root, new_jobs=len(configs), capped=False)
    longest = max((seconds(config, similar_only=True) or 0.0 for config in configs), default=0.0) if seconds else 0.0
    return (longest, state.budget.max_seconds) if longest > state.budget.max_seconds else None


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
