"""Batch norm on TensorFlow's fused kernel against Keras 3's own op-by-op version: one epoch of a preset, alternated.

`core.training` makes Keras's BatchNormalization train on TensorFlow's fused kernel (`core.batch_norm`). This
bench trains one epoch of a batch-norm preset ("quick CNN" by default: the fast CNN's network, batches of 64) with
the fused kernel and with Keras's own call, alternated in one process (ABBA), and prints the ratio fused / Keras of
the summed wall-clock seconds, the median of the pairs' ratios, the ratio of CPU seconds and both test accuracies.

    python bench/batch_norm.py                 # 3 pairs on all 54,000 training images
    python bench/batch_norm.py --quick         # 1 pair on 3,000 images, a smoke check
"""

import argparse
import dataclasses
import statistics

from common import Training, alternated_trainings, header, report, tensorflow_settings, trained_and_tested


def one_epoch(config, dataset, fused: bool) -> Training:
    """core.training.train for one epoch, timed and tested, with or without the fused kernel."""
    from core import batch_norm

    batch_norm.use_fused_kernel(fused)
    try:
        return trained_and_tested(config, dataset)  # the test predicts, which runs Keras's own code either way
    finally:
        batch_norm.use_fused_kernel()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick CNN")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 pair on 3,000 images")
    arguments = parser.parse_args()

    from core import training
    from core.config import PRESETS

    header("batch norm: TensorFlow's fused kernel / Keras 3's op-by-op layer, one epoch each, alternated")
    print(tensorflow_settings())
    pairs = 1 if arguments.quick else arguments.pairs
    config = dataclasses.replace(PRESETS[arguments.preset], epochs=1, train_subset=3000 if arguments.quick else None)
    dataset = training.load_dataset_for(config)
    print(f"{arguments.preset}, 1 epoch on {len(dataset.x_train):,} images, batches of {config.batch_size}", flush=True)
    warm_up = dataclasses.replace(config, train_subset=1000)
    one_epoch(warm_up, training.load_dataset_for(warm_up), fused=True)  # TensorFlow's first calls, outside the pairs

    runs = alternated_trainings(
        pairs, lambda seed, fused: one_epoch(dataclasses.replace(config, seed=seed), dataset, fused),
        {True: "fused", False: "Keras"})

    fused_seconds, keras_seconds = (sum(run[0] for run in runs[kind]) for kind in (True, False))
    pair_ratios = [ours[0] / theirs[0] for ours, theirs in zip(runs[True], runs[False])]
    cpu_ratio = sum(run[1] for run in runs[True]) / sum(run[1] for run in runs[False])
    report("fused / Keras, wall seconds of the epochs", f"{fused_seconds / keras_seconds:.3f} "
           f"({fused_seconds:.1f} s vs {keras_seconds:.1f} s; median of pairs {statistics.median(pair_ratios):.3f}; "
           f"CPU seconds {cpu_ratio:.3f})")
    fused_accuracy, keras_accuracy = (statistics.fmean(run[2] for run in runs[kind]) for kind in (True, False))
    report("test accuracy, fused / Keras (mean over the pairs' seeds)", f"{fused_accuracy:.2%} / {keras_accuracy:.2%}")


if __name__ == "__main__":
    main()
