"""Background training: one worker process, shared jobs, live progress, cancel, and a killed worker."""

import dataclasses
import os
import signal
import time

import pytest
from conftest import TINY_DNN
from helpers_jobs import wait_for

from core.jobs import JobRunner
from core.registry import Registry


@pytest.fixture
def runner(registry_root):
    """A job runner on an empty registry; the registry_root fixture stops its workers afterwards."""
    return JobRunner(Registry(registry_root))


def test_two_sessions_asking_for_one_config_share_one_job_with_live_progress(runner):
    config = dataclasses.replace(TINY_DNN, epochs=3, seed=21)
    first = runner.submit(config)
    second = runner.submit(config)
    assert first.state in ("queued", "running") and second.state in ("queued", "running")
    with runner.queue.connect() as connection:
        assert connection.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 1
    seen_epochs = set()

    def finished():
        status = runner.status(config.key)
        seen_epochs.update(epoch["epoch"] for epoch in status.progress)
        return status.state == "done"

    wait_for(finished)
    assert seen_epochs == {1, 2, 3}
    with runner.queue.connect() as connection:
        job = connection.execute("SELECT started, first_batch FROM jobs").fetchone()
    assert job["started"] < job["first_batch"] < time.time()  # what bench/first_batch.py times
    entry = runner.registry.get(config.key)
    assert entry.test_accuracy > 0.3
    assert runner.submit(config).state == "done"  # a trained config is never queued again


def test_cancel_stops_a_running_job_and_publishes_nothing(runner):
    config = dataclasses.replace(TINY_DNN, epochs=200, seed=22)
    runner.submit(config)
    wait_for(lambda: runner.status(config.key).progress)
    runner.cancel(config.key)
    status = wait_for(lambda: (s := runner.status(config.key)).state == "cancelled" and s, timeout=30)
    assert "cancelled" in status.message
    assert not runner.registry.has(config.key)


def test_a_killed_worker_shows_the_job_failed_and_a_retry_trains_it(runner):
    config = dataclasses.replace(TINY_DNN, epochs=200, seed=23)
    runner.submit(config)
    wait_for(lambda: runner.status(config.key).progress)
    with runner.queue.connect() as connection:
        pid = connection.execute("SELECT pid FROM jobs WHERE key = ?", (config.key,)).fetchone()["pid"]
    os.kill(pid, signal.SIGKILL)
    status = wait_for(lambda: (s := runner.status(config.key)).state == "failed" and s, timeout=30)
    assert "stopped unexpectedly" in status.message
    assert not runner.registry.has(config.key)
    quick = dataclasses.replace(config, epochs=1)
    runner.submit(quick)
    wait_for(lambda: runner.status(quick.key).state == "done")
    assert not list(runner.registry.models_dir.glob(".tmp-*"))  # the new worker cleaned the killed run's leftovers


def test_a_burst_of_polls_starts_one_worker_not_a_crowd(runner):
    """Pages poll every second; a worker takes a moment to hold its lock. Twenty calls in that moment: one worker."""
    import subprocess

    pattern = f"core --root {runner.registry.root} worker"
    try:
        for _ in range(20):
            runner.ensure_worker()
        started = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
        assert len(started) == 1, started
        wait_for(runner.worker_alive, timeout=120)
        runner.ensure_worker()
        assert subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split() == started
    finally:
        subprocess.run(["pkill", "-f", pattern], check=False)


def test_a_worker_started_before_any_job_warms_up_then_trains_the_first_one(runner):
    """The Train page starts a worker when it opens: it imports TensorFlow and warms up while the student chooses."""
    runner.ensure_worker()
    log = runner.registry.root / "worker.log"
    wait_for(lambda: log.exists() and "ready: warmed up" in log.read_text())
    config = dataclasses.replace(TINY_DNN, epochs=1, seed=23)
    runner.submit(config)
    wait_for(lambda: runner.status(config.key).state == "done")
    assert "warm-up failed" not in log.read_text()


def test_an_unforeseen_error_in_a_training_asks_the_student_to_retry_and_logs_the_traceback(registry_root, capsys):
    """The worker survives any single job; the page says what to do, the worker's log (its stderr) says what broke."""
    from core.errors import unexpected_training_error
    from core.jobs import JobQueue
    from core.workers import run_job

    class BrokenEngine:  # "where a training runs", failing in a way core did not foresee
        def run(self, config, **callbacks):
            raise RuntimeError("a bug nobody foresaw")

    queue = JobQueue(registry_root)
    queue.enqueue(dataclasses.replace(TINY_DNN, seed=23))
    run_job(BrokenEngine(), queue, *queue.claim_next())
    status = JobRunner(Registry(registry_root)).status(dataclasses.replace(TINY_DNN, seed=23).key)
    assert status.state == "failed" and status.message == unexpected_training_error(RuntimeError())
    assert "RuntimeError: a bug nobody foresaw" in capsys.readouterr().err
