"""The worker pool and the fair queue: atomic claims, one training per key, killed workers, round-robin, estimates, budget."""

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import TINY_CNN, TINY_DNN
from helpers_jobs import finish_at, wait_for

from core.errors import BudgetError
from core.estimates import SHARED_SLOWDOWN, FinishedJob, expected_seconds_function, training_cost
from core.jobs import Budget, JobQueue, JobRunner
from core.registry import Registry
from core.workers import (HEAD_START_SECONDS, LONE_WORKER_ENV, MEMORY_PER_WORKER_BYTES, claim_rule, live_workers,
                          pool_plan, run_worker, share_cores)

GiB = 2**30
CLAIMER = r"""
import sys, time
from core.jobs import JobQueue
queue, claimed = JobQueue(sys.argv[1]), []
while time.time() < float(sys.argv[2]):
    time.sleep(0.001)  # all start claiming at the same instant
while (job := queue.claim_next()) is not None:
    claimed.append(job[0])
print(" ".join(claimed))
"""


def config(seed: int, **changes):
    return dataclasses.replace(TINY_DNN, seed=seed, **changes)


@pytest.fixture
def pool_of_two(registry_root, monkeypatch):
    """A job runner whose pool holds two workers (what this 2-core machine gets by default, fixed for any CI size)."""
    monkeypatch.setenv("CNNCLASSROOM_WORKERS", "2")
    return JobRunner(Registry(registry_root))


def test_the_pool_is_sized_by_cores_and_never_beyond_memory(monkeypatch):
    monkeypatch.delenv("CNNCLASSROOM_WORKERS", raising=False)
    small, large = pool_plan(cores=2, available_memory=24 * GiB), pool_plan(cores=16, available_memory=128 * GiB)
    assert (small.workers, small.threads_per_worker) == (2, 1)
    assert (large.workers, large.threads_per_worker) == (8, 2)  # bigger machines: two threads a worker
    memory_bound = pool_plan(cores=64, available_memory=8 * GiB)
    assert memory_bound.workers == 3 and "memory" in memory_bound.reason  # (8 GiB - 2 for the server) / 2 GiB
    assert pool_plan(cores=2, available_memory=1 * GiB).workers == 1  # always one
    monkeypatch.setenv("CNNCLASSROOM_WORKERS", "40")
    asked = pool_plan(cores=8, available_memory=12 * GiB)
    assert asked.workers == (12 * GiB - 2 * GiB) // MEMORY_PER_WORKER_BYTES and "limited to" in asked.reason
    monkeypatch.setenv("CNNCLASSROOM_WORKERS", "four")
    with pytest.raises(Exception, match="whole number"):
        pool_plan()


def test_a_lone_worker_with_twice_a_share_of_threads_joins_the_pool_where_cores_and_memory_allow(monkeypatch):
    monkeypatch.delenv("CNNCLASSROOM_WORKERS", raising=False)
    small, large = pool_plan(cores=2, available_memory=24 * GiB), pool_plan(cores=16, available_memory=128 * GiB)
    assert (small.lone_threads, small.processes) == (2, 3)  # two one-thread workers and the lone worker
    assert (large.lone_threads, large.processes) == (4, 9)
    assert pool_plan(cores=1, available_memory=24 * GiB).lone_threads == 0  # no more cores to give it
    assert pool_plan(cores=2, available_memory=5 * GiB).lone_threads == 0  # room for the two workers only
    monkeypatch.setenv("CNNCLASSROOM_WORKERS", "1")
    assert pool_plan(cores=8, available_memory=24 * GiB).lone_threads == 0  # the only worker has every core already
    monkeypatch.setenv("CNNCLASSROOM_WORKERS", "2")
    assert pool_plan(cores=2, available_memory=24 * GiB).processes == 3
    monkeypatch.setenv(LONE_WORKER_ENV, "0")
    assert pool_plan(cores=2, available_memory=24 * GiB).processes == 2


def test_the_lone_worker_takes_what_would_train_alone_and_the_others_what_trains_beside(monkeypatch):
    monkeypatch.setenv("CNNCLASSROOM_WORKERS", "2")
    plan = pool_plan(cores=2, available_memory=24 * GiB)
    lone = claim_rule(plan, Path("/nonexistent"), is_lone=True)
    assert lone(running=0, waited=0.0)  # alone: the lone worker's
    assert not lone(running=1, waited=0.0)  # beside another job: one share is enough, the others take it
    assert lone(running=1, waited=HEAD_START_SECONDS)  # ... unless nobody else has taken it yet
    assert not lone(running=2, waited=60.0)  # every share busy: it would only slow them down
    other = claim_rule(plan, Path("/nonexistent"), is_lone=False)  # no lone worker runs there
    assert other(running=1, waited=0.0) and other(running=0, waited=HEAD_START_SECONDS) and other(running=0, waited=0.0)
    monkeypatch.setenv(LONE_WORKER_ENV, "0")
    assert claim_rule(pool_plan(cores=2, available_memory=24 * GiB), Path("/nonexistent"), is_lone=False) is None


def test_a_claim_rule_sees_the_running_jobs_and_how_long_the_next_has_waited(registry_root):
    queue, seen = JobQueue(registry_root), []

    def refuse_and_remember(running, waited):
        seen.append((running, waited))
        return False

    queue.enqueue(config(51), session="anna")
    assert queue.claim_next(refuse_and_remember) is None and queue.job(config(51).key)["status"] == "queued"
    assert queue.claim_next()[0] == config(51).key
    queue.enqueue(config(52), session="ben")
    time.sleep(0.2)
    assert queue.claim_next(refuse_and_remember) is None
    assert queue.claim_next(lambda running, waited: running == 1)[0] == config(52).key
    assert seen[0][0] == 0 and seen[1][0] == 1 and seen[1][1] >= 0.2


def test_workers_claiming_at_the_same_instant_never_take_one_job_twice(registry_root):
    queue = JobQueue(registry_root)
    keys = set()
    for seed in range(40):
        queue.enqueue(config(seed), session=f"student-{seed % 7}")
        keys.add(config(seed).key)
    start_at = f"{time.time() + 3:.3f}"
    claimers = [subprocess.Popen([sys.executable, "-c", CLAIMER, str(registry_root), start_at], stdout=subprocess.PIPE,
                                 text=True, cwd=os.path.dirname(os.path.dirname(__file__))) for _ in range(4)]
    claimed = [key for process in claimers for key in process.communicate(timeout=60)[0].split()]
    assert sorted(claimed) == sorted(keys)  # every job claimed exactly once


def test_the_queue_takes_sessions_round_by_round(registry_root):
    """Anna queues three settings, then Ben two: Anna, Ben, Anna, Ben, Anna — not all of Anna's first."""
    queue = JobQueue(registry_root)
    anna, ben = [config(1), config(2), config(3)], [config(4), config(5)]
    for job in anna:
        queue.enqueue(job, session="anna")
    for job in ben:
        queue.enqueue(job, session="ben")
    order = [queue.claim_next()[0] for _ in range(5)]
    assert order == [anna[0].key, ben[0].key, anna[1].key, ben[1].key, anna[2].key]
    assert queue.claim_next() is None


def test_a_student_with_ten_jobs_queued_first_does_not_hold_up_the_others(registry_root):
    queue = JobQueue(registry_root)
    greedy = [config(100 + seed) for seed in range(10)]
    others = [config(200 + seed) for seed in range(5)]
    for job in greedy:
        queue.enqueue(job, session="greedy")
    for number, job in enumerate(others):
        queue.enqueue(job, session=f"student-{number}")
    first_claims = [queue.claim_next()[0] for _ in range(6)]
    assert first_claims == [greedy[0].key] + [job.key for job in others]  # one turn each, then the greedy one's next
    assert queue.claim_next()[0] == greedy[1].key


def test_a_waiting_student_sees_their_place_and_when_it_starts(registry_root):
    runner = JobRunner(Registry(registry_root))
    queue = runner.queue
    for seed in (1, 2):  # two jobs that took 4 s each: 500 images x 2 epochs -> 4 ms per image-epoch
        queue.enqueue(config(seed), session="earlier")
        key, _ = queue.claim_next()
        queue.finish(key, "done", None)
        with queue.connect() as connection:
            connection.execute("UPDATE jobs SET started = finished - 4 WHERE key = ?", (key,))
    queue.set_capacity(2)
    waiting = [config(10 + seed) for seed in range(3)]
    for number, job in enumerate(waiting):
        queue.enqueue(job, session=f"student-{number}")
    assert runner.start_estimate(waiting[0].key) == (0, 0.0)
    assert runner.start_estimate(waiting[2].key) == (2, pytest.approx(4.0))  # two workers take the first two
    twice_as_long = config(20, epochs=4)
    queue.enqueue(twice_as_long, session="student-9")
    assert runner.start_estimate(twice_as_long.key) == (3, pytest.approx(4.0))
    assert expected_seconds_function([]) is None  # nothing finished yet: no seconds are promised


def test_the_pool_trains_in_parallel_a_share_of_threads_each_and_the_same_key_once(pool_of_two):
    runner = pool_of_two
    shared = config(31, epochs=3)
    for session in ("anna", "ben", "cleo"):
        runner.submit(shared, session=session)
    other = config(32, epochs=3)
    runner.submit(other, session="dan")
    wait_for(lambda: runner.status(shared.key).state == "done" and runner.status(other.key).state == "done")
    with runner.queue.connect() as connection:
        rows = connection.execute("SELECT key, pid, placement FROM jobs").fetchall()
    assert len(rows) == 2  # three sessions asked for one key: one job
    assert len({row["pid"] for row in rows}) == 2  # the two jobs ran in two worker processes
    plan = pool_plan()  # the lone worker took one job and a one-share worker the other (where there is a lone worker)
    threads = sorted(int(row["placement"].rsplit(": ", 1)[1].rstrip(")")) for row in rows)
    assert threads == sorted([plan.threads_per_worker, plan.lone_threads or plan.threads_per_worker]), rows
    assert {card.key for card in runner.registry.list_entries()} == {shared.key, other.key}


def allowed_cores(pid: int) -> set[frozenset[int]]:
    """The CPU affinities of the threads of process `pid` (one set when they all agree)."""
    affinities = set()
    for thread in Path(f"/proc/{pid}/task").iterdir():
        try:
            affinities.add(frozenset(os.sched_getaffinity(int(thread.name))))
        except OSError:  # the thread has just ended
            pass
    return affinities


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="a lone worker wider than a share needs 2 cores")
def test_the_lone_worker_trains_on_every_core_and_on_one_share_while_another_job_trains(pool_of_two):
    runner, every_core = pool_of_two, frozenset(os.sched_getaffinity(0))
    plan = pool_plan()
    if not plan.lone_threads:
        pytest.skip("no lone worker here: the memory holds only the pool's two workers")
    own_share = frozenset(sorted(every_core)[:plan.threads_per_worker])
    alone, beside = config(61, epochs=500), config(62, epochs=500)  # both still training when cancelled
    runner.submit(alone, session="anna")
    first = wait_for(lambda: runner.queue.job(alone.key)["placement"] and runner.queue.job(alone.key), timeout=120)
    assert first["placement"].endswith(f"TensorFlow threads: {plan.lone_threads})")
    wait_for(lambda: allowed_cores(first["pid"]) == {every_core}, timeout=10, what="every core while alone")
    runner.submit(beside, session="ben")
    second = wait_for(lambda: runner.queue.job(beside.key)["placement"] and runner.queue.job(beside.key), timeout=120)
    assert second["pid"] != first["pid"]
    assert second["placement"].endswith(f"TensorFlow threads: {plan.threads_per_worker})")
    wait_for(lambda: allowed_cores(first["pid"]) == {own_share}, timeout=10, what="its share beside another job")
    assert runner.status(alone.key).state == "running"  # moved while it trains
    runner.cancel(beside.key)
    wait_for(lambda: allowed_cores(first["pid"]) == {every_core}, timeout=30, what="every core again once alone")
    runner.cancel(alone.key)
    wait_for(lambda: runner.status(alone.key).finished and runner.status(beside.key).finished, timeout=60)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="moving onto one share needs 2 cores")
def test_sharing_the_cores_stops_with_its_worker_and_gives_every_core_back(registry_root, monkeypatch):
    monkeypatch.setenv("CNNCLASSROOM_WORKERS", "2")
    plan, every_core = pool_plan(), frozenset(os.sched_getaffinity(0))
    if not plan.lone_threads:
        pytest.skip("no lone worker here: the memory holds only the pool's two workers")
    queue = JobQueue(registry_root)
    queue.enqueue(config(71), session="anna")
    start_at = f"{time.time():.3f}"  # another process claims it: a job that trains elsewhere
    subprocess.run([sys.executable, "-c", CLAIMER, str(registry_root), start_at], check=True, timeout=60,
                   cwd=os.path.dirname(os.path.dirname(__file__)))
    stop = threading.Event()
    sharing = threading.Thread(target=share_cores, args=(queue, plan, stop))
    try:
        sharing.start()
        wait_for(lambda: allowed_cores(os.getpid()) == {frozenset(sorted(every_core)[:plan.threads_per_worker])},
                 timeout=10, what="this process on one share while a job trains elsewhere")
    finally:
        stop.set()
        sharing.join(timeout=10)
    assert not sharing.is_alive() and allowed_cores(os.getpid()) == {every_core}


def test_a_killed_pool_worker_fails_its_job_the_other_worker_goes_on_and_a_resubmit_trains_it(pool_of_two):
    runner = pool_of_two
    victim, survivor = config(41, epochs=25), config(42, epochs=25)
    runner.submit(victim, session="anna")
    runner.submit(survivor, session="ben")
    wait_for(lambda: runner.status(victim.key).progress and runner.status(survivor.key).progress)
    os.kill(runner.queue.job(victim.key)["pid"], signal.SIGKILL)
    status = wait_for(lambda: (s := runner.status(victim.key)).state == "failed" and s, timeout=30)
    assert "stopped unexpectedly" in status.message
    assert runner.status(survivor.key).state in ("running", "done")
    runner.submit(victim, session="anna")
    wait_for(lambda: runner.status(victim.key).state == "done" and runner.status(survivor.key).state == "done")
    assert runner.registry.has(victim.key)


def test_a_worker_goes_on_past_its_job_limit_while_students_wait(registry_root):
    """The worker is recycled after MAX_JOBS_PER_WORKER jobs only when nobody waits: no fresh import mid-burst."""
    registry = Registry(registry_root)
    queue = JobQueue(registry_root)
    jobs = [config(50 + seed, epochs=1, train_subset=200) for seed in range(3)]
    for job in jobs:
        queue.enqueue(job, session="class")
    assert run_worker(registry, idle_exit_seconds=0.5, max_jobs=1) == 3
    assert all(registry.has(job.key) for job in jobs)
    assert live_workers(registry_root) == 0


def test_the_teachers_budget_refuses_too_many_epochs_and_stops_a_training_that_runs_too_long(registry_root):
    runner = JobRunner(Registry(registry_root))
    runner.queue.set_budget(Budget(max_epochs=30, max_seconds=3))
    with pytest.raises(BudgetError, match="at most 30 epochs.*ask for 31"):
        runner.submit(config(60, epochs=31), session="anna")
    assert runner.queue.job(config(60, epochs=31).key) is None
    slow = config(61, epochs=30, train_subset=5000)
    runner.submit(slow, session="anna")
    status = wait_for(lambda: (s := runner.status(slow.key)).state == "failed" and s, timeout=120)
    assert "3-second limit your teacher set" in status.message and "of 30 epochs" in status.message
    assert not runner.registry.has(slow.key)


def test_without_cpu_affinity_as_on_macos_the_pool_counts_every_core_and_has_no_lone_worker(monkeypatch):
    monkeypatch.delenv("CNNCLASSROOM_WORKERS", raising=False)
    monkeypatch.delenv(LONE_WORKER_ENV, raising=False)
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.delattr(os, "sched_setaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    plan = pool_plan(available_memory=24 * GiB)
    assert (plan.workers, plan.threads_per_worker, plan.lone_threads) == (4, 1, 0)  # it could not move onto one share


def test_a_promise_goes_by_the_jobs_that_ran_as_it_will_alone_or_beside_others(registry_root):
    """After a class's burst, a student alone was promised 1.55 times what the training took: the burst's jobs had
    shared the cores. A job that overlapped others for most of its run counts as shared."""
    runner = JobRunner(Registry(registry_root))
    queue, now = runner.queue, time.time()
    queue.set_capacity(2)
    finish_at(queue, config(1), now - 100, now - 92)  # two at once, 8 s each
    finish_at(queue, config(2), now - 99, now - 91)
    recent = queue.snapshot().recent
    assert [job.shared for job in recent] == [True, True]
    assert runner.ready_in([config(3)]) == pytest.approx(8.0 / SHARED_SLOWDOWN)  # alone: none ran so, until measured
    assert runner.ready_in([config(3), config(4)]) == pytest.approx(8.0)  # side by side: as the burst's did
    finish_at(queue, config(5), now - 60, now - 55)  # then one alone, 5 s
    assert runner.ready_in([config(3)]) == pytest.approx(5.0)  # alone: by the job that ran alone
    assert runner.ready_in([config(3), config(4)]) == pytest.approx(8.0)
    finish_at(queue, dataclasses.replace(TINY_CNN, seed=7), now - 40, now - 37)  # a CNN alone, 3 s
    seconds = expected_seconds_function(queue.snapshot().recent, None, registry_root)
    cnn = dataclasses.replace(TINY_CNN, seed=8)
    assert seconds(cnn, shared=False) == pytest.approx(3.0)
    assert seconds(cnn, shared=True) == pytest.approx(3.0 * 8 / 5)  # no CNN ran beside others: the DNNs' 8 s ÷ 5 s
    queue.enqueue(config(6), session="ahead")  # one waiting: a press now trains beside it
    assert runner.ready_in([config(3)]) == pytest.approx(8.0)  # on the second worker, beside it: as one of two


def test_a_time_is_promised_only_from_jobs_of_a_like_cost(registry_root):
    """The fast preview at 30 epochs was promised 2 min from the same network at 3 epochs, and took 37 s: a job's
    fixed part (its start, its test, its save) grows with the cost it is scaled by."""
    preview = dataclasses.replace(TINY_CNN, epochs=3, seed=1)
    seconds = expected_seconds_function([FinishedJob(preview, 12.0, shared=False)], None, registry_root)
    assert seconds(dataclasses.replace(preview, epochs=3, seed=2), similar_only=True) == pytest.approx(12.0)
    assert seconds(dataclasses.replace(preview, epochs=9), similar_only=True) == pytest.approx(36.0)  # 3 times
    assert seconds(dataclasses.replace(preview, epochs=30), similar_only=True) is None  # 10 times: no promise
    assert training_cost(dataclasses.replace(preview, epochs=30)) == 10 * training_cost(preview)


def test_the_slowdown_learned_for_jobs_beside_others_is_never_under_one(registry_root):
    """A worker's first job runs alone while the others start and also loads its data: 3.1 s, then 1.6 s for the
    same network in the burst. That made shared jobs look faster than lone ones."""
    cnn = dataclasses.replace(TINY_CNN, seed=1)
    recent = [FinishedJob(config(1), 4.0, shared=False), FinishedJob(config(2), 2.0, shared=True),
              FinishedJob(cnn, 3.0, shared=False)]
    seconds = expected_seconds_function(recent, None, registry_root)
    assert seconds(dataclasses.replace(cnn, seed=2), shared=True) == pytest.approx(3.0)  # not 3.0 × 2 / 4


def test_a_crashed_job_or_a_clock_set_back_does_not_spoil_the_estimates(registry_root):
    """A job failed by fail_orphans had no end: read as running until now, it overlapped every later job, and all
    counted as shared. A job that "ended" before it started made a rate of 0 and a division by zero."""
    runner = JobRunner(Registry(registry_root))
    queue, now = runner.queue, time.time()
    queue.enqueue(config(1), session="crashed")
    key, _ = queue.claim_next()
    with queue.connect() as connection:  # as a worker killed before fail_orphans set an end, in older queues
        connection.execute("UPDATE jobs SET status = 'failed', started = ?, finished = NULL WHERE key = ?",
                           (now - 1000, key))
    finish_at(queue, config(2), now - 50, now - 46)
    finish_at(queue, config(3), now - 40, now - 36)
    finish_at(queue, config(4), now - 30, now - 30)  # no duration at all
    recent = queue.snapshot().recent
    assert [(job.config.seed, job.shared) for job in recent] == [(3, False), (2, False)]
    assert runner.ready_in([config(5)]) == pytest.approx(4.0)
    queue.enqueue(config(6), session="orphan")
    orphan, _ = queue.claim_next()
    with queue.connect() as connection:
        connection.execute("UPDATE jobs SET pid = NULL WHERE key = ?", (orphan,))
    queue.fail_orphans()
    assert queue.job(orphan)["status"] == "failed" and queue.job(orphan)["finished"] == pytest.approx(time.time(), abs=5)


def test_the_lone_workers_extra_job_of_a_burst_is_not_counted_as_one_more_worker(registry_root):
    """At a burst's start the lone worker may run a third job beside the two workers' (core.workers.claim_rule), then
    leaves the queue to them: counted as a third worker, the 12th of 12 students was promised 9.1 s for 13.6."""
    runner = JobRunner(Registry(registry_root))
    queue, now = runner.queue, time.time()
    finish_at(queue, config(1), now - 100, now - 96)  # 4 s alone
    queue.set_capacity(2)
    for seed in (2, 3, 4):  # three running at once: the two workers' and the lone worker's
        queue.enqueue(config(seed), session=f"student-{seed}")
        queue.claim_next()
    waiting = [config(10 + seed) for seed in range(3)]
    for job in waiting:
        queue.enqueue(job, session=f"student-{job.seed}")
    each = 4.0 * SHARED_SLOWDOWN
    ahead, starts_in = runner.start_estimate(waiting[2].key)
    assert ahead == 5 and starts_in == pytest.approx(2 * each, rel=0.05)  # on one of two workers, after one job


def test_a_press_is_told_when_its_models_would_be_ready_by_each_images_multiply_adds(registry_root):
    runner = JobRunner(Registry(registry_root))
    queue = runner.queue
    assert runner.ready_in([config(1)]) is None  # nothing finished here yet: no seconds are promised
    queue.enqueue(config(1), session="earlier")
    key, _ = queue.claim_next()
    queue.finish(key, "done", None)
    with queue.connect() as connection:
        connection.execute("UPDATE jobs SET started = finished - 4 WHERE key = ?", (key,))
    queue.set_capacity(1)
    assert runner.ready_in([config(2)]) == pytest.approx(4.0)  # the same network on the same images: the same 4 s
    assert runner.ready_in([config(2), config(3)]) == pytest.approx(8.0)  # one worker: one after the other
    queue.set_capacity(2)  # two side by side, each beside the other: slower than the one that ran alone
    assert runner.ready_in([config(2), config(3)]) == pytest.approx(4.0 * SHARED_SLOWDOWN)
    wider = config(4, hidden_units=(64,))  # Dense 64 on 784 inputs: about twice Dense 32's multiply-adds per image
    assert training_cost(wider) / training_cost(config(4)) == pytest.approx((784 * 64 + 64 + 650) / (784 * 32 + 32 + 330))
    assert runner.ready_in([wider]) == pytest.approx(4.0 * training_cost(wider) / training_cost(config(4)))
    assert runner.ready_in([config(6, train_subset=20_000)]) is None  # 40 times the cost: too far to promise from
    queue.enqueue(config(5), session="ahead")  # one waiting: it takes a worker first
    queue.set_capacity(1)
    assert runner.ready_in([config(2)]) == pytest.approx(8.0)

