"""A student alone presses Train: the pool's lone worker (two shares of threads) against a one-share worker.

The pool has a lone worker with twice a share's TensorFlow threads, for a job that trains alone
(`core.workers.claim_rule`); `CNNCLASSROOM_LONE_WORKER=0` leaves it out, as before 2026-11-30, when every worker
had one share. Both are run here in ABBA order, each on a fresh registry whose first worker was started and
warmed up first (the Train page starts it when it opens), with the "quick CNN" preset:

  alone       one student presses Train: seconds from the press to the model published (polled every 0.2 s)
  joined      a second student presses Train (another seed) `--join-after` seconds later: both waits, and when
              the last of the two is published (the lone worker moves onto one share while the second trains)

    python bench/lone_student.py                 # 2 ABBA pairs of each scenario
    python bench/lone_student.py --pairs 1 --no-joined
    python bench/lone_student.py --quick         # 2,000 images, 1 epoch: a smoke run
"""

import argparse
import dataclasses
import os
import statistics
import time

from common import header, report, stop_workers, temporary_registry

POLL_SECONDS = 0.2


def timed_presses(lone: bool, configs: list, join_after: float) -> dict:
    """Start and warm a worker on a fresh registry, then submit `configs` (the second `join_after` s after the first).

    Returns each job's wait (press → published), the worker's training seconds, its threads, and the accuracy.
    """
    from core.jobs import JobRunner
    from core.registry import Registry
    from core.workers import LONE_WORKER_ENV

    os.environ[LONE_WORKER_ENV] = "1" if lone else "0"
    registry = Registry(temporary_registry("lone"))
    runner = JobRunner(registry)
    try:
        runner.ensure_worker()  # as the Train page does when it opens
        log = registry.root / "worker.log"
        deadline = time.monotonic() + 300
        while "ready" not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
            time.sleep(0.2)
        pressed, waits, first_press = {}, {}, time.perf_counter()
        while len(waits) < len(configs) and time.monotonic() < deadline + 600:
            for index, config in enumerate(configs):
                if config.key not in pressed and time.perf_counter() >= first_press + index * join_after:
                    pressed[config.key] = time.perf_counter()
                    runner.submit(config, session=f"student-{index}")
            time.sleep(POLL_SECONDS)
            for config in filter(lambda config: config.key in pressed, configs):
                status = runner.status(config.key)
                if config.key not in waits and status.state == "done":
                    waits[config.key] = time.perf_counter() - pressed[config.key]
                elif status.state in ("failed", "cancelled"):
                    raise RuntimeError(f"{config.key} {status.state}: {status.message}")
        while any(runner.queue.job(config.key)["finished"] is None for config in configs):  # published, not yet recorded
            time.sleep(POLL_SECONDS)
        rows = {config.key: runner.queue.job(config.key) for config in configs}
        first = configs[0].key
        return {"waits": [waits[config.key] for config in configs], "last": max(waits.values()),
                "training": rows[first]["finished"] - rows[first]["started"],
                "threads": rows[first]["placement"].rsplit(": ", 1)[-1].rstrip(")"),
                "accuracy": registry.get(first).card.test_accuracy}
    finally:
        stop_workers(registry)
        os.environ.pop(LONE_WORKER_ENV, None)


def alternated(pairs: int, run) -> dict[bool, list[dict]]:
    """`run(lone)` in ABBA order over `pairs` pairs: {True: with the lone worker, False: without}."""
    results = {True: [], False: []}
    for pair in range(pairs):
        for lone in ((True, False) if pair % 2 == 0 else (False, True)):
            results[lone].append(run(lone))
            outcome = results[lone][-1]
            report(f"  pair {pair + 1}, {'lone worker' if lone else 'no lone worker (before)':>23}",
                   f"waits {', '.join(f'{wait:.1f}' for wait in outcome['waits'])} s; the first job trained "
                   f"{outcome['training']:.1f} s on {outcome['threads']} thread(s), {outcome['accuracy']:.2%}")
    return results


def ratio(results: dict[bool, list[dict]], figure) -> tuple[str, float]:
    """The medians of `figure(outcome)` with and without the lone worker, as a line and as their ratio."""
    lone = statistics.median(figure(outcome) for outcome in results[True])
    before = statistics.median(figure(outcome) for outcome in results[False])
    return f"{lone:.1f} s against {before:.1f} s = {lone / before:.2f}×", lone / before


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--joined", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--join-after", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    from core.config import PRESETS

    preset = PRESETS["quick CNN"]
    if arguments.quick:
        preset = dataclasses.replace(preset, train_subset=2000, epochs=1)
    header(f"lone student: the quick CNN preset on the pool, with and without its lone worker ({arguments.pairs} ABBA pairs)")
    alone = alternated(arguments.pairs, lambda lone: timed_presses(lone, [preset], arguments.join_after))
    line, alone_ratio = ratio(alone, lambda outcome: outcome["waits"][0])
    report("alone: press → published, lone worker ÷ none (medians)", line, "< 1", alone_ratio < 1)
    if arguments.joined:
        second = dataclasses.replace(preset, seed=preset.seed + 1)
        joined = alternated(arguments.pairs, lambda lone: timed_presses(lone, [preset, second], arguments.join_after))
        later = f"joined {arguments.join_after:.0f} s later"
        report(f"{later}: the first student's wait", ratio(joined, lambda outcome: outcome["waits"][0])[0])
        report(f"{later}: the second student's wait", ratio(joined, lambda outcome: outcome["waits"][1])[0])
        report(f"{later}: both published", ratio(joined, lambda outcome: outcome["last"])[0])


if __name__ == "__main__":
    main()
