"""tf.data's autotuning thread and the stall it caused at the end of a pipeline: tuned against untuned, alternated.

`core.training` turns tf.data's autotuning off for its pipelines and for the batches Keras makes of numpy arrays
(`core.autotuning`). Two parts, each alternating Keras's tuned batches and the untuned ones in this process:

1. stall: Keras's batches of a Fashion-MNIST-sized array (850 batches of 64 images of 28 x 28) read for ~11 s (a
   short sleep per batch stands in for the training step) while two other processes keep both cores busy, as
   training does; then the iterator is deleted, as `fit` does after every epoch. Printed: the seconds that deletion
   took and how many deletions took over 1 s. Target: none untuned.
2. training: the quick CNN preset trained (one epoch on all 54,000 images, a validation pass), tuned and untuned
   with the same seed: wall and CPU seconds, test accuracy (the batches are the same, so the accuracies match), and
   the ratio untuned / tuned of the summed seconds. Target: ratio <= 1.0.

    python bench/autotuning.py                  # 6 stall trials each, 3 training pairs
    python bench/autotuning.py --parts stall    # one part
    python bench/autotuning.py --quick          # 2 stall trials each of ~3 s, 1 training pair on 3,000 images
"""

import argparse
import dataclasses
import multiprocessing
import statistics
import time

from common import (Training, alternated_trainings, header, load_average, mean_and_spread, report,
                    tensorflow_settings, trained_and_tested)

STALL_SECONDS = 1.0


def keep_a_core_busy(stop):
    """A child process spinning until `stop` is set."""
    while not stop.is_set():
        sum(range(10_000))


def deletion_seconds(batches_per_trial: int, tuned: bool) -> float:
    """Seconds to delete an iterator over Keras's batches of a Fashion-MNIST-sized array after reading it through."""
    import numpy as np
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

    from core import autotuning

    images = np.zeros((batches_per_trial * 64, 28, 28, 1), dtype="float32")
    labels = np.zeros(len(images), dtype="int64")
    autotuning.set_keras_arrays_tuned(tuned)
    try:
        iterator = iter(ArrayDataAdapter(images, labels, batch_size=64, shuffle=True).get_tf_dataset())
    finally:
        autotuning.set_keras_arrays_tuned(False)
    for _ in iterator:
        time.sleep(0.012)  # a training step's time, roughly the quick CNN's
    started = time.perf_counter()
    del iterator
    return time.perf_counter() - started


def stall_part(trials: int, batches_per_trial: int):
    print(f"\n1. deleting an iterator after {batches_per_trial} batches (~{batches_per_trial * 0.013:.0f} s) "
          "with both cores kept busy", flush=True)
    processes = multiprocessing.get_context("spawn")  # not forked from a process that has TensorFlow's threads
    stop = processes.Event()
    spinners = [processes.Process(target=keep_a_core_busy, args=(stop,), daemon=True) for _ in range(2)]
    for spinner in spinners:
        spinner.start()
    seconds = {True: [], False: []}
    try:
        for trial in range(trials):
            for tuned in ((True, False) if trial % 2 == 0 else (False, True)):
                seconds[tuned].append(deletion_seconds(batches_per_trial, tuned))
                print(f"  trial {trial + 1} {'tuned  ' if tuned else 'untuned'}: deleted in {seconds[tuned][-1]:.3f} s"
                      f"  [{load_average()}]", flush=True)
    finally:
        stop.set()
        for spinner in spinners:
            spinner.join()
    for tuned in (True, False):
        stalls = sum(value > STALL_SECONDS for value in seconds[tuned])
        name = "tuned (Keras's default)" if tuned else "untuned (core.autotuning)"
        report(f"deletions over {STALL_SECONDS:.0f} s, {name}", f"{stalls} of {trials}",
               "" if tuned else "0", None if tuned else stalls == 0)
        report(f"seconds to delete the iterator, {name}", mean_and_spread(seconds[tuned]))


def one_training(config, dataset, tuned: bool) -> Training:
    """core.training.train, timed and tested, with Keras's batches tuned or untuned."""
    from core import autotuning

    autotuning.set_keras_arrays_tuned(tuned)
    try:
        return trained_and_tested(config, dataset)
    finally:
        autotuning.set_keras_arrays_tuned(False)


def training_part(pairs: int, quick: bool):
    from core import training
    from core.config import PRESETS

    config = dataclasses.replace(PRESETS["quick CNN"], train_subset=3000 if quick else None)
    dataset = training.load_dataset_for(config)
    print(f"\n2. quick CNN, 1 epoch on {len(dataset.x_train):,} images, tuned and untuned with the same seed",
          flush=True)
    warm_up = dataclasses.replace(config, train_subset=1000)
    one_training(warm_up, training.load_dataset_for(warm_up), tuned=False)  # TensorFlow's first calls
    runs = alternated_trainings(  # the candidate (True) is untuned
        pairs, lambda seed, untuned: one_training(dataclasses.replace(config, seed=seed), dataset, tuned=not untuned),
        {True: "untuned", False: "tuned"})
    ratio = sum(run[0] for run in runs[True]) / sum(run[0] for run in runs[False])
    report("untuned / tuned, seconds of training (summed)", f"{ratio:.3f}", "<= 1.0", ratio <= 1.0)
    report("untuned / tuned, CPU seconds (summed)",
           f"{sum(run[1] for run in runs[True]) / sum(run[1] for run in runs[False]):.3f}")
    report("seconds untuned", mean_and_spread(run[0] for run in runs[True]))
    report("seconds tuned", mean_and_spread(run[0] for run in runs[False]))
    same = all(a[2] == b[2] for a, b in zip(runs[True], runs[False]))
    report("test accuracy untuned / tuned", f"{statistics.fmean(run[2] for run in runs[True]):.2%} / "
           f"{statistics.fmean(run[2] for run in runs[False]):.2%}" + (" (the same batches)" if same else ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["stall", "training"], choices=["stall", "training"])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 short stall trials, 1 pair on 3,000 images")
    arguments = parser.parse_args()

    header("tf.data autotuning: untuned batches (core.autotuning) against Keras's tuned ones, alternated")
    from core import autotuning, training

    print(tensorflow_settings(), f"training's tuning: {'on' if autotuning.keras_arrays_are_tuned() else 'off'}",
          f"({training.__name__} imported)", flush=True)
    if "stall" in arguments.parts:
        stall_part(2 if arguments.quick else arguments.trials, 230 if arguments.quick else 850)
    if "training" in arguments.parts:
        training_part(1 if arguments.quick else arguments.pairs, arguments.quick)
    print(f"done  [{load_average()}]")


if __name__ == "__main__":
    main()
