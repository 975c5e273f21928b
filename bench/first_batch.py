"""Train pressed → first batch running, once the background worker has run its first job.

The Train page's button calls `JobRunner.submit(config)`; the worker process (core/jobs.py) claims the
job, loads the data, builds and compiles the model and starts epoch 1. This script submits a first job
(the worker starts and imports TensorFlow), waits for it, then submits one-epoch trainings of the
"fast CNN" preset (each a new key) and times, per job:

  submit → claimed          the worker noticing the job
  submit → epoch 1 begins   data loaded, model built and compiled, the first batch fetched (target <= 2 s)

Epoch 1 begins at (moment its progress row appears) - (the epoch's own duration, which the worker
measures from on_epoch_begin). The first batch then runs, including the tracing of the training step;
that part (the training step is traced, then its first call runs a few batches) is timed in this
process for the same network and printed as well.

    python bench/first_batch.py            # 3 timed jobs on all 54,000 training images
    python bench/first_batch.py --quick    # 2 timed jobs on 2,000 images
"""

import argparse
import dataclasses
import statistics
import time

from common import header, load_average, report, stop_workers, temporary_registry

TARGET_SECONDS = 2.0
POLL_SECONDS = 0.01


def wait_for_progress(runner, key, timeout=600):
    """Poll the index until epoch 1's progress row of `key` appears; (the moment it was seen, the row)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        status = runner.status(key)
        if status.progress:
            return time.perf_counter(), status.progress[0]
        if status.state in ("failed", "cancelled"):
            raise RuntimeError(f"job {key} {status.state}: {status.message}")
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"job {key} showed no progress within {timeout} s")


def wait_until_finished(runner, key, timeout=600):
    deadline = time.monotonic() + timeout
    while not runner.status(key).finished and time.monotonic() < deadline:
        time.sleep(0.1)


def first_batch_in_process(config) -> float:
    """Seconds from epoch begin to the end of the first batch (tracing included) for `config`, here."""
    import keras

    from core import training

    marks = {}

    class Probe(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            marks.setdefault("begin", time.perf_counter())

        def on_train_batch_end(self, batch, logs=None):
            marks.setdefault("end", time.perf_counter())
            self.model.stop_training = True

    dataset = training.load_dataset_for(config)
    keras.utils.set_random_seed(0)
    model = training.build_model(config, dataset.input_shape, dataset.num_classes)
    training.compile_for_task(model, config, dataset.num_classes, steps_per_epoch=len(dataset.x_train) // config.batch_size)
    model.fit(dataset.x_train, dataset.y_train, batch_size=config.batch_size, epochs=1, callbacks=[Probe()], verbose=0)
    return marks["end"] - marks["begin"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    jobs = 2 if arguments.quick else arguments.jobs

    root = temporary_registry("first-batch")
    from core.config import PRESETS, TrainConfig
    from core.jobs import JobRunner
    from core.registry import Registry

    header("Train pressed → first batch running (worker already warm)")
    registry = Registry(root)
    runner = JobRunner(registry)
    try:
        first = TrainConfig(family="dnn", hidden_units=(32,), train_subset=500, epochs=1)
        started = time.perf_counter()
        runner.submit(first)
        wait_until_finished(runner, first.key)
        print(f"first job (worker start, TensorFlow import, tiny DNN): {time.perf_counter() - started:.1f} s", flush=True)

        preset = dataclasses.replace(PRESETS["fast CNN"], epochs=1, train_subset=2000 if arguments.quick else None)
        to_claim, to_epoch = [], []
        for index in range(jobs):
            config = dataclasses.replace(preset, seed=100 + index)
            submitted_wall, submitted = time.time(), time.perf_counter()
            runner.submit(config)
            seen, progress = wait_for_progress(runner, config.key)
            with runner.queue.connect() as connection:
                claimed_wall = connection.execute("SELECT started FROM jobs WHERE key = ?", (config.key,)).fetchone()["started"]
            to_claim.append(claimed_wall - submitted_wall)
            to_epoch.append(seen - progress["seconds"] - submitted)
            print(f"job {index + 1}/{jobs}: submit → claimed {to_claim[-1]:.2f} s, → epoch 1 begins {to_epoch[-1]:.2f} s "
                  f"(epoch took {progress['seconds']:.1f} s)  [{load_average()}]", flush=True)
            wait_until_finished(runner, config.key)
    finally:
        stop_workers(registry)

    report("Train pressed → claimed by the worker (median)", f"{statistics.median(to_claim):.2f} s")
    report("Train pressed → epoch 1 begins, first batch fetched (median, max)",
           f"{statistics.median(to_epoch):.2f} s, {max(to_epoch):.2f} s", f"<= {TARGET_SECONDS} s",
           statistics.median(to_epoch) <= TARGET_SECONDS)
    from core.training import steps_per_execution

    first_step = first_batch_in_process(dataclasses.replace(preset, train_subset=2000))
    report(f"first call into TensorFlow (tracing the training step, then its first {steps_per_execution(preset)} "
           "batches), measured in this process", f"{first_step:.2f} s")
    report("Train pressed → first batches done (median + the above)", f"{statistics.median(to_epoch) + first_step:.2f} s")


if __name__ == "__main__":
    main()
