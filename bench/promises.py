"""How true a Train button's time promise is, for a class's burst and for a student alone after it.

Before Train is pressed the page promises "About N s from the press to a model" (`JobRunner.ready_in`), going by
the server's last trainings. Here, on a fresh registry with the pool started and warmed up (as the Train page does):

  burst   `--students` small configurations (bench/burst.py's: 2,000 images, 3 epochs, DNNs and CNNs) pressed at
          once, each from its own session; each promise is read just before its press (none while nothing has
          finished here)
  alone   then, once the burst is over, `--alone` students one after the other, each pressing a new seed of the
          burst's CNN (the first has only the burst's jobs to go by)
  again   then the class presses at once again, new seeds of the first burst's configurations: now every promise
          is made, from jobs that ran in a burst and alone

A promise's error is promised ÷ taken (press → published, polled every 0.2 s): 1 is exact. Target for each promise
made: between 0.67 and 1.5, or no promise at all (the page then promises nothing).

    python bench/promises.py                 # 6 students at once, then 3 alone
    python bench/promises.py --students 10 --alone 2
    python bench/promises.py --quick         # 4 students, 1 alone, 500 images
"""

import argparse
import dataclasses
import time

from burst import burst_configs
from common import header, load_average, report, stop_workers, temporary_registry

POLL_SECONDS = 0.2
LOW, HIGH = 0.67, 1.5


def press_and_wait(runner, configs_and_sessions, deadline) -> dict[str, tuple[float | None, float]]:
    """Read each promise, press each at once, wait until all are published: key -> (promised s or None, taken s)."""
    promised, pressed, taken = {}, {}, {}
    for config, session in configs_and_sessions:
        promised[config.key] = runner.ready_in([config])
        pressed[config.key] = time.perf_counter()
        runner.submit(config, session=session)
    while len(taken) < len(pressed):
        if time.monotonic() > deadline:
            raise RuntimeError("the trainings took too long")
        time.sleep(POLL_SECONDS)
        for key in pressed.keys() - taken.keys():
            status = runner.status(key)
            if status.state == "done":
                taken[key] = time.perf_counter() - pressed[key]
            elif status.state in ("failed", "cancelled"):
                raise RuntimeError(f"{key} {status.state}: {status.message}")
    while any(runner.queue.job(key)["finished"] is None for key in pressed):  # published, not yet recorded
        time.sleep(POLL_SECONDS)
    return {key: (promised[key], taken[key]) for key in pressed}


def describe(promised, taken) -> str:
    if promised is None:
        return f"no promise, took {taken:.1f} s"
    return f"promised {promised:.1f} s, took {taken:.1f} s: ×{promised / taken:.2f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=6)
    parser.add_argument("--alone", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    students, alone, subset = (4, 1, 500) if arguments.quick else (arguments.students, arguments.alone, 2000)

    from core.jobs import JobRunner
    from core.registry import Registry

    header(f"time promises: {students} students press Train at once, then {alone} alone, one after the other, then "
           f"the {students} at once again")
    registry = Registry(temporary_registry("promises"))
    runner = JobRunner(registry)
    errors = {"burst": [], "alone": [], "burst again": []}
    try:
        runner.ensure_worker()  # as the Train page does when it opens
        log, deadline = registry.root / "worker.log", time.monotonic() + 1800
        while "ready" not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
            time.sleep(0.2)
        burst = [(config, f"student-{index}") for index, config in enumerate(burst_configs(students, train_subset=subset))]
        results = press_and_wait(runner, burst, deadline)
        for (config, _), (promised, taken) in zip(burst, results.values()):
            print(f"burst, {config.family} seed {config.seed}: {describe(promised, taken)}  [{load_average()}]")
            if promised is not None:
                errors["burst"].append(promised / taken)
        cnn = next(config for config, _ in burst if config.family == "cnn")
        for number in range(alone):
            config = dataclasses.replace(cnn, seed=100 + number)
            ((promised, taken),) = press_and_wait(runner, [(config, "alone")], deadline).values()
            print(f"alone {number + 1}/{alone} ({'after the burst' if number == 0 else 'after one alone'}): "
                  f"{describe(promised, taken)}  [{load_average()}]")
            if promised is not None:
                errors["alone"].append(promised / taken)
        again = [(dataclasses.replace(config, seed=200 + config.seed), session) for config, session in burst]
        results = press_and_wait(runner, again, deadline)
        for (config, _), (promised, taken) in zip(again, results.values()):
            print(f"burst again, {config.family} seed {config.seed}: {describe(promised, taken)}  [{load_average()}]")
            if promised is not None:
                errors["burst again"].append(promised / taken)
    finally:
        stop_workers(registry)
    for scenario, ratios in errors.items():
        within = all(LOW <= ratio <= HIGH for ratio in ratios)
        shown = ", ".join(f"{ratio:.2f}" for ratio in ratios) or "none made"
        report(f"promised ÷ taken, {scenario}", shown, f"each in {LOW}–{HIGH}, or no promise", within)


if __name__ == "__main__":
    main()
