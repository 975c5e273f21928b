"""Thirty students press Train at once: how long each waits for a result, one worker vs the pool vs a local Ray.

30 distinct small configurations (2,000 Fashion-MNIST training images, 3 epochs; half a Dense-128 DNN and
half a 16-32 CNN; seeds 0-29), each from its own browser session, are submitted at once through
`JobRunner.submit`; then every job's status is polled once a second, as the Train page does. A student's
wait is submit → the poll that first sees the model published. Each engine gets a fresh registry and
runs the same 30 configurations, one after the other in this process:

  single    one worker process (CNNCLASSROOM_WORKERS=1): what the dashboard did before the pool
  pool      the pool sized to this machine (the default)
  pool-no-lone  the same pool without its lone worker (before 2026-11-30: every worker had one share)
  ray       CNNCLASSROOM_RAY_ADDRESS=local: each job a Ray task on a Ray started on this machine (loopback)

With --fairness the pool also runs the burst after one student has queued 10 extra jobs: at most one of
the greedy student's jobs may start before each other student's (their turn comes once per round), where
first-come-first-served would start all 10 first. The growth of the others' median wait is printed too,
in seconds and in jobs' time; being a time, it moves with the machine's load.

    python bench/burst.py                       # single, pool and ray, then the fairness case
    python bench/burst.py --engines single pool --rounds 2 --no-fairness   # alternated twice
    python bench/burst.py --quick               # 6 students, 500 images, 1 epoch: a smoke run
"""

import argparse
import dataclasses
import inspect
import os
import statistics
import time

from common import header, report, stop_workers, temporary_registry

POLL_SECONDS = 1.0  # the Train page's live fragment reruns once a second
ENGINES = {
    "single": {"CNNCLASSROOM_WORKERS": "1"},
    "pool": {},
    "pool-no-lone": {"CNNCLASSROOM_LONE_WORKER": "0"},
    "ray": {"CNNCLASSROOM_RAY_ADDRESS": "local"},
}


def burst_configs(students: int = 30, train_subset: int = 2000, epochs: int = 3, seed_offset: int = 0):
    """`students` distinct small configurations: DNNs and 16-32 CNNs alternately, one seed each."""
    from core.config import TrainConfig

    dnn = TrainConfig(family="dnn", hidden_units=(128,), train_subset=train_subset, epochs=epochs, batch_size=32)
    cnn = TrainConfig(family="cnn", filters=(16, 32), hidden_units=(64,), train_subset=train_subset, epochs=epochs,
                      batch_size=64)
    return [dataclasses.replace(dnn if index % 2 == 0 else cnn, seed=seed_offset + index) for index in range(students)]


def submit(runner, config, session: str):
    """`runner.submit` with the student's session where this version of the runner takes one."""
    if "session" in inspect.signature(runner.submit).parameters:
        return runner.submit(config, session=session)
    return runner.submit(config)


def run_burst(environment: dict, jobs: list[tuple[str, object]], timeout: float = 1800,
              start_times: dict | None = None) -> dict[str, float]:
    """Submit (session, config) pairs at once into a fresh registry; seconds until each key was seen published.

    `start_times`, when given, receives each key's start time (when a worker claimed it), to check the order.
    """
    from core.jobs import JobRunner
    from core.registry import Registry

    saved = {name: os.environ.get(name) for name in ("CNNCLASSROOM_WORKERS", "CNNCLASSROOM_RAY_ADDRESS",
                                                     "CNNCLASSROOM_LONE_WORKER")}
    for name in saved:
        os.environ.pop(name, None)
    os.environ.update(environment)
    registry = Registry(temporary_registry("burst"))
    runner = JobRunner(registry)
    submitted, waits, failures = {}, {}, {}
    try:
        for session, config in jobs:
            submitted[config.key] = time.perf_counter()
            submit(runner, config, session)
        deadline = time.monotonic() + timeout
        while len(waits) + len(failures) < len(submitted) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            for key, started in submitted.items():
                if key in waits or key in failures:
                    continue
                status = runner.status(key)
                if status.state == "done":
                    waits[key] = time.perf_counter() - started
                elif status.state in ("failed", "cancelled"):
                    failures[key] = status.message
        if start_times is not None:
            with runner.queue.connect() as connection:
                start_times.update({row["key"]: row["started"] for row in connection.execute("SELECT key, started FROM jobs")})
    finally:
        stop_workers(registry)
        for name, value in saved.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value
    if failures:
        raise RuntimeError(f"{len(failures)} jobs failed: {list(failures.values())[:3]}")
    return waits


def summary(waits) -> dict[str, float]:
    ordered = sorted(waits)
    return {"first": ordered[0], "median": statistics.median(ordered), "last": ordered[-1]}


def describe(figures: dict[str, float]) -> str:
    return f"first {figures['first']:.1f} s, median {figures['median']:.1f} s, last {figures['last']:.1f} s"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--fairness", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--rounds", type=int, default=1, help="run the engines this many times, alternating")
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    students, subset, epochs = (6, 500, 1) if arguments.quick else (30, 2000, 3)
    header(f"burst: {students} students press Train at once")
    configs = burst_configs(students, subset, epochs)
    jobs = [(f"student-{index}", config) for index, config in enumerate(configs)]
    rounds = []  # each round runs every engine once, alternating, so a change in the machine's load hits all of them
    for number in range(arguments.rounds):
        results = {}
        for engine in (arguments.engines if number % 2 == 0 else reversed(arguments.engines)):  # ABBA over rounds
            results[engine] = summary(run_burst(ENGINES[engine], jobs).values())
            report(f"round {number + 1}: {engine:>12}", describe(results[engine]))
        rounds.append(results)
    if "single" in arguments.engines:
        for engine in arguments.engines:
            if engine == "single":
                continue
            ratios = {name: statistics.median(results[engine][name] / results["single"][name] for results in rounds)
                      for name in ("first", "median", "last")}
            report(f"{engine} / single (median over {len(rounds)} round(s))",
                   ", ".join(f"{name} {ratio:.2f}" for name, ratio in ratios.items()),
                   "median and last < 1", ratios["median"] < 1 and ratios["last"] < 1)
    if {"pool", "pool-no-lone"} <= set(arguments.engines):
        ratios = {name: statistics.median(results["pool"][name] / results["pool-no-lone"][name] for results in rounds)
                  for name in ("first", "median", "last")}
        report(f"pool / pool-no-lone (median over {len(rounds)} round(s)): what the lone worker changes for a burst",
               ", ".join(f"{name} {ratio:.2f}" for name, ratio in ratios.items()))
    results = rounds[-1]
    if arguments.fairness:
        greedy = [("greedy", config) for config in burst_configs(10, subset, epochs, seed_offset=1000)]
        base = results.get("pool") or summary(run_burst(ENGINES["pool"], jobs).values())
        started = {}
        waits = run_burst(ENGINES["pool"], greedy + jobs, start_times=started)
        others = summary([waits[config.key] for _, config in jobs])
        per_job = base["last"] / students  # the pool's seconds per job in the burst (all workers together)
        growth = others["median"] - base["median"]
        report(f"fairness: the other {students} with one student's 10 extra jobs queued first", describe(others))
        report("fairness: growth of the others' median", f"{growth:+.1f} s = {growth / per_job:+.2f} jobs' time "
               f"(first-come-first-served: +10 jobs; a time, so it moves with the machine's load)")
        ahead = [sum(started[extra.key] < started[config.key] for _, extra in greedy) for _, config in jobs]
        report("fairness: the greedy student's jobs started before each other student's", f"at most {max(ahead)}, "
               f"median {statistics.median(ahead):.0f} (first-come-first-served: 10 before every one)",
               "≤ 1 (the fair share: one turn per round)", max(ahead) <= 1)

if __name__ == "__main__":
    main()
