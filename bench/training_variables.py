"""The training variables created before `fit` against created while Keras traces the first step, alternated.

Keras (with no distribution strategy) creates the optimizer's and the metrics' variables while it traces the first
training step, and TensorFlow traces a function that created variables a second time. `core.training` creates them
before `fit` (`create_training_variables`), so the step is traced once. For each preset, trainings with the same seed
alternate between the two (ABBA); printed: the seconds until the first batches were done and of the whole training,
the ratios of their sums (target: both <= 1.0), and the test accuracies (the same weights, so they match).

    python bench/training_variables.py                            # fast DNN and quick CNN, 3 pairs each
    python bench/training_variables.py --presets "fast DNN" --pairs 4
    python bench/training_variables.py --quick                    # 1 pair of each on 3,000 images
"""

import argparse
import dataclasses
import statistics

from common import (Training, alternated_trainings, header, load_average, mean_and_spread, report, tensorflow_settings,
                    trained_and_tested)

COMPARED_PRESETS = ("fast DNN", "quick CNN")


def one_training(config, dataset, before_fit: bool) -> Training:
    """core.training.train, timed and tested, with the variables created before `fit` or left to Keras's trace."""
    from core import training

    create = training.create_training_variables
    if not before_fit:
        training.create_training_variables = lambda *arguments: None
    try:
        return trained_and_tested_once(config, dataset)
    finally:
        training.create_training_variables = create


def trained_and_tested_once(config, dataset) -> Training:
    """`trained_and_tested` in a fresh Keras session."""
    import keras

    keras.backend.clear_session()  # each training builds its model in a fresh graph, as a worker's job does
    return trained_and_tested(config, dataset)


def compare(preset: str, pairs: int, quick: bool):
    from core import training
    from core.config import PRESETS

    config = dataclasses.replace(PRESETS[preset], train_subset=3000 if quick else None)
    dataset = training.load_dataset_for(config)
    print(f"\n{preset}: {config.epochs} epochs on {len(dataset.x_train):,} images", flush=True)
    runs = alternated_trainings(
        pairs, lambda seed, before_fit: one_training(dataclasses.replace(config, seed=seed), dataset, before_fit),
        {True: "before fit", False: "in the trace"})
    for name, field in (("seconds to the first batches", "first_batch_seconds"), ("seconds of training", "seconds")):
        ours, keras_own = ([getattr(run, field) for run in runs[kind]] for kind in (True, False))
        ratio = sum(ours) / sum(keras_own)
        report(f"{preset}, {name}: before fit / in the trace (summed)", f"{ratio:.3f}", "<= 1.0", ratio <= 1.0)
        report(f"{preset}, {name} before fit", mean_and_spread(ours))
        report(f"{preset}, {name} in the trace", mean_and_spread(keras_own))
    same = all(ours.accuracy == keras_own.accuracy for ours, keras_own in zip(runs[True], runs[False]))
    report(f"{preset}, test accuracy before fit / in the trace",
           f"{statistics.fmean(run.accuracy for run in runs[True]):.2%} / "
           f"{statistics.fmean(run.accuracy for run in runs[False]):.2%}" + (" (the same)" if same else ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(COMPARED_PRESETS), choices=list(COMPARED_PRESETS))
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 pair of each preset on 3,000 images")
    arguments = parser.parse_args()

    header("training variables created before fit (core.training) against in Keras's first trace, alternated")
    from core import training
    from core.config import PRESETS

    print(tensorflow_settings(), flush=True)
    warm_up = dataclasses.replace(PRESETS["quick CNN"], train_subset=1000)
    trained_and_tested_once(warm_up, training.load_dataset_for(warm_up))  # TensorFlow's first calls
    for preset in arguments.presets:
        compare(preset, 1 if arguments.quick else arguments.pairs, arguments.quick)
    print(f"done  [{load_average()}]")


if __name__ == "__main__":
    main()
