"""Worker processes: `python -m core worker` drains a registry's job queue; a pool of them uses the whole machine.

`pool_plan()` sizes the pool: K worker processes, each with TensorFlow limited to its share of the cores,
never more than memory allows (`CNNCLASSROOM_WORKERS` overrides K). `ensure_workers(root, jobs_waiting)`
starts workers until the pool has as many as the queue needs, never a crowd: each worker holds one of the
pool's slot locks, and a worker that is still starting is remembered in the spawn file. A worker claims the next
job in the fair order (`core.jobs.FAIR_ORDER`, atomically), has the engine train it (`core.engines`: in
this process, or as a Ray task), records how it ended, and exits after a while idle. After
`MAX_JOBS_PER_WORKER` jobs, or past `MAX_WORKER_MEMORY_BYTES`, it exits as soon as nothing is waiting, so
its memory never grows without bound and no student waits for a fresh TensorFlow import.

Beside its K workers the pool has a lone worker (slot 0, the first started) where cores and memory allow: it has
twice a share's threads (`PoolPlan.lone_threads`) and takes a job when no other job trains, or when one has waited
while a share is free; the K workers leave a job that would train alone to it for a moment (`claim_rule`). So a
student training alone gets two shares' speed, and a class pressing Train at once trains on the K one-share
workers. A job that arrives while the lone worker trains moves its threads onto one share of the cores until
that job ends (`share_cores`, by CPU affinity): two threads on one core run ~16% slower than one.

With Ray (`CNNCLASSROOM_RAY_ADDRESS`) the pool is one light dispatcher process that runs as many jobs at
once as the cluster has room for, each a Ray task; it never imports TensorFlow.
"""

import fcntl
import os
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from core.config import TrainConfig
from core.engines import ray_address
from core.errors import CoreError, TrainingCancelled, unexpected_training_error
from core.jobs import JobQueue, pid_alive
from core.machine import available_memory_bytes, memory_used_bytes, usable_cores
from core.paths import PROJECT_ROOT
from core.registry import Registry
from core.teacher import PASSPHRASE_ENV

WORKERS_ENV = "CNNCLASSROOM_WORKERS"
THREADS_ENV = "CNNCLASSROOM_WORKER_THREADS"  # set by the pool for each worker it starts
WORKER_LOCK_FILE = "worker.lock"  # slot 0; slot i > 0 is worker-<i>.lock
WORKER_LOG_FILE = "worker.log"
WORKER_SPAWN_FILE = "worker.spawn"  # lock + one "pid start-time" line per worker started that may not hold a slot yet
WORKER_START_GRACE_SECONDS = 60  # a started worker that has not taken a slot yet is waited for, not duplicated
POLL_SECONDS = 0.2
IDLE_EXIT_SECONDS = 900  # the first slot's worker waits this long for the next click; the others leave sooner
EXTRA_WORKER_IDLE_EXIT_SECONDS = 120  # so a burst's extra workers give their memory back soon after it
MAX_JOBS_PER_WORKER = 10
MAX_WORKER_MEMORY_BYTES = 3 * 2**30
WORKER_NICENESS = 10  # on a busy server students' page runs come first; alone, training still gets every core
# Measured with bench/burst.py on 2 cores: small networks (the classroom's) use one core well and a second poorly,
# so two one-thread workers finish a burst sooner than one two-thread worker. Beyond 8 cores two threads per
# worker halve the processes' memory for little speed (not measured here: see README "Serving a school").
THREADS_PER_WORKER_UP_TO_8_CORES = 1
THREADS_PER_WORKER_ABOVE_8_CORES = 2
LONE_THREADS_PER_SHARE = 2  # 2 cores: a lone quick CNN published in 0.8x the time (bench/lone_student.py, burst.py)
LONE_WORKER_ENV = "CNNCLASSROOM_LONE_WORKER"  # "0": no lone worker, every worker has one share (for benches)
HEAD_START_SECONDS = 1.0  # a job that would train alone waits this long for the lone worker before another takes it
SHARE_CHECK_SECONDS = 0.5  # how often the lone worker looks at what the others train
# Measured: a one-thread worker training the fast or the classic CNN on all of Fashion-MNIST peaks at 1.0 GiB
# (VmHWM); the rest is room for bigger networks and transfer bases.
MEMORY_PER_WORKER_BYTES = 2 * 2**30
MEMORY_KEPT_FOR_THE_SERVER_BYTES = 2 * 2**30
MAX_WORKERS = 64


@dataclass(frozen=True)
class PoolPlan:
    """How many worker processes this machine runs, TensorFlow threads each, and why."""

    workers: int  # jobs trained at once, each on threads_per_worker threads
    threads_per_worker: int
    reason: str
    lone_threads: int = 0  # the lone worker's threads, for a job that trains alone (0: no lone worker)

    @property
    def processes(self) -> int:
        """The most worker processes: the K workers, and the lone worker where there is one."""
        return self.workers + (1 if self.lone_threads else 0)


def pool_plan(cores: int | None = None, available_memory: int | None = None) -> PoolPlan:
    """The pool for this machine: one worker per share of the cores, no more than memory allows."""
    if ray_address():
        return PoolPlan(1, 1, "Ray: one dispatcher process sends every job to the cluster")
    cores = cores or usable_cores()
    available_memory = available_memory if available_memory is not None else available_memory_bytes()
    by_memory = max(1, (available_memory - MEMORY_KEPT_FOR_THE_SERVER_BYTES) // MEMORY_PER_WORKER_BYTES)
    requested = os.environ.get(WORKERS_ENV)
    if requested:
        try:
            wanted = max(1, int(requested))
        except ValueError:
            raise CoreError(f"{WORKERS_ENV} must be a whole number of worker processes, e.g. 4. "
                            f"Received: {WORKERS_ENV}={requested!r}") from None
        workers = int(min(wanted, by_memory, MAX_WORKERS))
        threads = max(1, cores // workers)
        reason = f"{WORKERS_ENV}={wanted}" + (f", limited to {workers} by memory" if workers < wanted else "")
        return PoolPlan(workers, threads, reason, _lone_threads(workers, threads, cores, by_memory))
    threads = THREADS_PER_WORKER_UP_TO_8_CORES if cores <= 8 else THREADS_PER_WORKER_ABOVE_8_CORES
    by_cores = max(1, cores // threads)
    workers = int(min(by_cores, by_memory, MAX_WORKERS))
    limit = "cores" if workers == by_cores else "memory" if workers == by_memory else "the maximum"
    return PoolPlan(workers, threads, f"{cores} cores, {available_memory / 2**30:.1f} GiB available; limited by {limit}",
                    _lone_threads(workers, threads, cores, by_memory))


def _lone_threads(workers: int, threads: int, cores: int, by_memory: int) -> int:
    """The lone worker's threads: twice a share, where cores give it more than a share and memory one more process,
    and where it can move onto one share when a burst comes (CPU affinity: Linux, not macOS)."""
    wider = min(cores, threads * LONE_THREADS_PER_SHARE)
    return wider if (wider > threads and workers + 1 <= by_memory and os.environ.get(LONE_WORKER_ENV) != "0"
                     and hasattr(os, "sched_setaffinity")) else 0


def slot_lock_path(root: Path, slot: int) -> Path:
    return Path(root) / (WORKER_LOCK_FILE if slot == 0 else f"worker-{slot}.lock")


def live_workers(root: Path, slots: int | None = None) -> int:
    """How many worker processes hold a slot lock of the registry at `root`."""
    slots = slots if slots is not None else max(MAX_WORKERS, pool_plan().processes)
    count = 0
    for slot in range(slots):
        path = slot_lock_path(root, slot)
        if slot > 0 and not path.exists():
            continue
        if _is_locked(path):
            count += 1
    return count


def worker_alive(root: Path) -> bool:
    """True when at least one worker process runs for the registry at `root`."""
    return live_workers(root) > 0


def ensure_workers(root: Path, jobs_waiting: int = 1):
    """Start workers until the pool holds min(its size, `jobs_waiting`) of them (at least one); never a crowd.

    A new worker needs a moment before it holds its slot; the spawn file, written under its own lock,
    remembers it, so that polling pages on a busy machine do not start more workers than wanted.
    """
    root = Path(root)
    plan = pool_plan()
    wanted = max(1, min(plan.processes, jobs_waiting))
    with open(root / WORKER_SPAWN_FILE, "a+") as spawn_file:
        fcntl.flock(spawn_file, fcntl.LOCK_EX)
        starting = _recently_started_workers(spawn_file)
        running = live_workers(root, max(plan.processes, MAX_WORKERS))
        missing = wanted - running - len(starting)
        if missing <= 0:
            return
        environment = {name: value for name, value in os.environ.items() if name != PASSPHRASE_ENV}  # workers never see it
        environment |= {THREADS_ENV: str(plan.threads_per_worker), "OMP_NUM_THREADS": str(plan.threads_per_worker)}
        with open(root / WORKER_LOG_FILE, "a") as log:
            for _ in range(missing):
                process = subprocess.Popen(
                    [sys.executable, "-m", "core", "--root", str(root), "worker"],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True, cwd=str(PROJECT_ROOT), env=environment,
                )
                starting.append((process.pid, time.time()))
        spawn_file.seek(0)
        spawn_file.truncate(0)
        spawn_file.write("".join(f"{pid} {started}\n" for pid, started in starting))
        spawn_file.flush()


def ensure_worker(root: Path):
    """Make sure at least one worker runs (the pool grows with the queue through `ensure_workers`)."""
    ensure_workers(root, jobs_waiting=1)


def limit_tensorflow_threads(threads: int):
    """Give TensorFlow `threads` threads inside ops and as many between them; call before TensorFlow runs anything."""
    from core.backend import tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already ran something in this process: its thread pools are fixed
        pass


def warm_up(registry: Registry):
    """Pay TensorFlow's first-use costs and read Fashion-MNIST before any job, so a student's first batch runs soon.

    A worker is started when a training page opens (`core.ui.training_panel`), while the student is still
    choosing. Without this, the first job also paid for loading TensorFlow's kernels and Keras's training loop
    (several seconds on 2 cores); the data's raw arrays stay cached in this process for the next jobs.
    """
    from core import training
    from core.catalogue import list_datasets

    started = time.perf_counter()
    try:
        training.warm_up()
        if any(info.name == "fashion_mnist" and info.available for info in list_datasets(registry.root)):
            training.load_dataset_for(TrainConfig())
        print(f"worker {os.getpid()} ready: warmed up in {time.perf_counter() - started:.1f} s", flush=True)
    except Exception as error:  # a warm-up that fails costs the first job its old wait, nothing more
        print(f"worker warm-up failed: {type(error).__name__}: {error}", flush=True)


def run_worker(registry: Registry, idle_exit_seconds: float = IDLE_EXIT_SECONDS, max_jobs: int = MAX_JOBS_PER_WORKER) -> int:
    """Train queued jobs until idle for `idle_exit_seconds` (or recycled when nothing waits); return how many ran."""
    from core.engines import engine_for

    plan = pool_plan()
    for slot in range(max(plan.processes, 1)):
        lock_file = open(slot_lock_path(registry.root, slot), "a")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            lock_file.close()
    else:
        return 0  # the pool is full
    with lock_file:
        queue = JobQueue(registry.root)
        queue.fail_orphans()
        registry.clean_partial()
        engine = engine_for(registry)
        threads = int(os.environ.get(THREADS_ENV) or plan.threads_per_worker)
        is_lone = engine.name == "local" and slot == 0 and plan.lone_threads > 0
        stop_sharing = threading.Event()
        if engine.name == "local":
            if is_lone:
                threads = plan.lone_threads
                threading.Thread(target=share_cores, args=(queue, plan, stop_sharing), daemon=True).start()
            limit_tensorflow_threads(threads)
            queue.set_capacity(plan.workers)
            if not queue.waiting_in_order():  # started ahead of a click (the Train page opened): get ready for it
                warm_up(registry)
        if slot > 0:
            idle_exit_seconds = min(idle_exit_seconds, EXTRA_WORKER_IDLE_EXIT_SECONDS)
        may_claim = claim_rule(plan, registry.root, is_lone) if engine.name == "local" else None
        try:
            return _drain(engine, queue, idle_exit_seconds, max_jobs, may_claim)
        finally:
            stop_sharing.set()


def claim_rule(plan: PoolPlan, root: Path, is_lone: bool) -> Callable[[int, float], bool] | None:
    """`may_claim(running, waited)` for `JobQueue.claim_next`: how the lone worker and the others share out jobs.

    The lone worker takes a job that would train alone, or one that has waited while a share is free (the others
    still starting, say); the others leave a job that would train alone to a running lone worker for a moment.
    """
    if not plan.lone_threads:
        return None
    if is_lone:
        return lambda running, waited: running == 0 or (running < plan.workers and waited >= HEAD_START_SECONDS)
    return lambda running, waited: (running > 0 or waited >= HEAD_START_SECONDS
                                    or not _is_locked(slot_lock_path(root, 0)))


def share_cores(queue: JobQueue, plan: PoolPlan, stop: threading.Event):
    """Keep the lone worker's threads on every core while the others' jobs leave room, else on one share of them.

    Runs in a thread of that worker until `stop` is set: every SHARE_CHECK_SECONDS it counts the jobs other workers
    train and sets the CPU affinity of each of this process's threads (threads started later inherit their starter's).
    """
    every_core = sorted(os.sched_getaffinity(0))
    own_share = set(every_core[:plan.threads_per_worker])
    while not stop.is_set():
        try:
            room = queue.running_elsewhere() * plan.threads_per_worker + plan.lone_threads <= len(every_core)
            set_process_affinity(set(every_core) if room else own_share)
        except Exception as error:  # the queue unreadable for a moment: keep the cores as they are, look again soon
            print(f"worker {os.getpid()}: could not check the other workers' jobs: {error}", flush=True)
        stop.wait(SHARE_CHECK_SECONDS)
    set_process_affinity(set(every_core))


def set_process_affinity(cores: set[int]):
    """Let every thread of this process run on `cores` only (Linux sets affinity per thread)."""
    for thread_id in os.listdir("/proc/self/task"):
        try:
            if os.sched_getaffinity(int(thread_id)) != cores:
                os.sched_setaffinity(int(thread_id), cores)
        except OSError:  # the thread has just ended
            pass


def _drain(engine, queue: JobQueue, idle_exit_seconds: float, max_jobs: int,
           may_claim: Callable[[int, float], bool] | None = None) -> int:
    """The worker loop: claim (when `may_claim` agrees) → engine.run → finish, up to `engine.jobs_at_once()` at a time."""
    jobs_at_once = engine.jobs_at_once()
    if jobs_at_once > 1:
        queue.set_capacity(jobs_at_once)
    executor = ThreadPoolExecutor(jobs_at_once) if jobs_at_once > 1 else None
    running, jobs_run, idle_since = set(), 0, time.monotonic()
    try:
        while time.monotonic() - idle_since < idle_exit_seconds:
            running = {future for future in running if not future.done()}
            if jobs_run >= max_jobs or memory_used_bytes() > MAX_WORKER_MEMORY_BYTES:
                if not running and not queue.waiting_in_order():
                    break  # recycled while nobody waits: the next job gets a fresh process
            if len(running) >= jobs_at_once or (claimed := queue.claim_next(may_claim)) is None:
                if running:
                    idle_since = time.monotonic()
                time.sleep(POLL_SECONDS)
                continue
            if executor is None:
                run_job(engine, queue, *claimed)
            else:
                running.add(executor.submit(run_job, engine, queue, *claimed))
            jobs_run, idle_since = jobs_run + 1, time.monotonic()
    finally:
        if executor is not None:
            executor.shutdown(wait=True)
    return jobs_run


def run_job(engine, queue: JobQueue, key: str, config):
    """Train one claimed job with `engine` and record how it ended; the worker survives any single job.

    Cancel and the teacher's time budget both stop it through `should_stop`; over budget, the job fails
    with a message that says so.
    """
    budget, started, epochs_done = queue.budget(), time.time(), []

    def on_epoch(progress):
        epochs_done.append(progress.epoch)
        queue.record_progress(key, progress.to_dict())

    try:
        engine.run(config, on_epoch=on_epoch, should_stop=lambda: queue.cancel_requested(key) or budget.over_time(started),
                   on_placed=lambda placement: queue.set_placement(key, placement),
                   on_batch=lambda done, total: queue.record_batches(key, done, total),
                   on_first_batch=lambda: queue.mark_first_batch(key))
        state, message = "done", None
    except TrainingCancelled as error:
        over = budget.over_time(started) and not queue.cancel_requested(key)
        state, message = ("failed", budget.time_message(config, len(epochs_done))) if over else ("cancelled", str(error))
    except CoreError as error:  # the page shows the message, or its student sentence; the exact one stays in the log
        print(f"job {key} failed: {error}", flush=True)
        state, message = "failed", error.student or str(error)
    except Exception as error:  # the worker must survive any single job
        traceback.print_exc()
        state, message = "failed", unexpected_training_error(error)
    queue.finish(key, state, message)


def _is_locked(path: Path) -> bool:
    try:
        with open(path, "a") as lock_file:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(lock_file, fcntl.LOCK_UN)
            return False
    except OSError:
        return False


def _recently_started_workers(spawn_file) -> list[tuple[int, float]]:
    """The workers in the spawn file started less than the grace period ago that still run and hold no slot yet."""
    spawn_file.seek(0)
    workers = []
    for line in spawn_file.read().splitlines():
        try:
            pid, started = line.split()
            pid, started = int(pid), float(started)
        except ValueError:
            continue
        if time.time() - started < WORKER_START_GRACE_SECONDS and pid_alive(pid) and not _holds_a_slot(pid):
            workers.append((pid, started))
    return workers


def _holds_a_slot(pid: int) -> bool:
    """True once worker `pid` holds a lock (its slot's: a worker takes no other lock before it), read in /proc/locks."""
    try:
        locks = Path("/proc/locks").read_text()
    except OSError:
        return False
    return any(line.split()[4] == str(pid) for line in locks.splitlines() if len(line.split()) > 4)
