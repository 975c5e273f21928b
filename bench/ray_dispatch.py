"""Dispatch overhead through Ray: one tiny job, submit → first epoch and submit → published, Ray vs the local pool.

Each engine gets a fresh registry and a warm-up job first (the pool's worker imports TensorFlow; Ray starts and
its worker imports TensorFlow), then `--repeats` tiny jobs one after the other (500 Fashion-MNIST images, a
Dense-32 network, 2 epochs; a new seed each, so each is a new key), polled every 10 ms. The engines alternate
repeat by repeat; the figure is the ratio of the medians, Ray over the pool.

    python bench/ray_dispatch.py             # 5 repeats
    python bench/ray_dispatch.py --quick     # 2 repeats
"""

import argparse
import dataclasses
import os
import statistics
import time

from common import header, report, stop_workers, temporary_registry

POLL_SECONDS = 0.01
ENGINES = {"pool": {}, "ray": {"CNNCLASSROOM_RAY_ADDRESS": "local"}}


def tiny_config(seed: int):
    from core.config import TrainConfig

    return TrainConfig(family="dnn", hidden_units=(32,), train_subset=500, epochs=2, batch_size=32, seed=seed)


def timed_job(runner, config) -> tuple[float, float]:
    """(submit → first epoch recorded, submit → published) in seconds."""
    started = time.perf_counter()
    runner.submit(config, session="bench")
    first_epoch = None
    while True:
        status = runner.status(config.key)
        if first_epoch is None and status.progress:
            first_epoch = time.perf_counter() - started
        if status.state == "done":
            return first_epoch or time.perf_counter() - started, time.perf_counter() - started
        if status.state in ("failed", "cancelled"):
            raise RuntimeError(f"{config.key} {status.state}: {status.message}")
        time.sleep(POLL_SECONDS)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    repeats = 2 if arguments.quick else arguments.repeats
    header("Ray dispatch overhead: one tiny job")
    from core.jobs import JobRunner
    from core.registry import Registry

    runners = {}
    for engine, environment in ENGINES.items():  # one registry each, workers started and warmed up
        os.environ.pop("CNNCLASSROOM_RAY_ADDRESS", None)
        os.environ.update(environment)
        runners[engine] = JobRunner(Registry(temporary_registry(f"dispatch-{engine}")))
        warm_up = timed_job(runners[engine], tiny_config(seed=10_000))
        report(f"{engine} warm-up (worker start, TensorFlow import)", f"{warm_up[1]:.2f} s to published")
    times = {engine: [] for engine in ENGINES}
    try:
        for repeat in range(repeats):
            for engine, environment in ENGINES.items():
                os.environ.pop("CNNCLASSROOM_RAY_ADDRESS", None)
                os.environ.update(environment)  # status() may restart a worker: it must get the same engine
                times[engine].append(timed_job(runners[engine], dataclasses.replace(tiny_config(repeat), seed=repeat)))
    finally:
        for runner in runners.values():
            stop_workers(runner.registry)
    medians = {}
    for engine, pairs in times.items():
        medians[engine] = [statistics.median(pair[index] for pair in pairs) for index in (0, 1)]
        report(f"{engine:>4}", f"submit → first epoch {medians[engine][0]:.2f} s, submit → published {medians[engine][1]:.2f} s "
               f"(medians of {len(pairs)})")
    ratios = [medians["ray"][index] / medians["pool"][index] for index in (0, 1)]
    report("ray / pool", f"first epoch {ratios[0]:.2f}, published {ratios[1]:.2f}; Ray adds "
           f"{medians['ray'][1] - medians['pool'][1]:+.2f} s per job")


if __name__ == "__main__":
    main()
