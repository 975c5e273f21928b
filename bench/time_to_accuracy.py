"""Time to accuracy of the fast presets on Fashion-MNIST, over several seeds, beside the classic recipes.

For every preset and seed: the time from `core.training.train(config)` to a trained model (build,
compile, every epoch with its validation), then its accuracy on the 10,000 test images. Targets (issue 17):
"fast CNN" >= 92.0% within 60 s, "quick CNN" >= 90% within 15 s, "fast DNN" >= 88.5% within 10 s, judged on
the mean accuracy over the seeds and the mean time (the slowest seed is printed too).
The baselines are the TensorFlow-course recipes, trained in the same process with seed 0: the classic CNN
(`--baseline-epochs`, 10 by default) and the classic DNN (5 epochs, batch 32), each tested after every epoch
(outside the timed epoch). Each preset is reported beside its baseline as a ratio of seconds to the same test
accuracy: the preset's mean time / the baseline's time until the epoch where it first reached the preset's mean
accuracy (or "not reached" in its epochs).

    python bench/time_to_accuracy.py                  # 3 seeds per preset, plus both baselines
    python bench/time_to_accuracy.py --no-baselines   # the presets only
    python bench/time_to_accuracy.py --onednn 0       # the same with TensorFlow's oneDNN kernels off
    python bench/time_to_accuracy.py --quick          # 1 seed, 1 epoch, no baselines: a smoke check
"""

import argparse
import dataclasses
import os
import statistics
import time

from common import header, load_average, mean_and_spread, report

TARGETS = {"fast CNN": (0.92, 60.0), "quick CNN": (0.90, 15.0), "fast DNN": (0.885, 10.0)}  # (test accuracy, s)
BASELINES = {"CNN": "classic CNN", "DNN": "classic DNN"}  # preset family -> the course's recipe


def tested_every_epoch(config, dataset) -> list[tuple[float, float]]:
    """Build, compile and fit `config` as core.training does, testing after every epoch (outside the epoch's time):
    [(seconds of training so far, test accuracy)] per epoch."""
    import math

    import keras

    from core import training

    rows, clock = [], {"elapsed": 0.0}

    class TestEveryEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            clock["begin"] = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            clock["elapsed"] += time.perf_counter() - clock["begin"]
            tested = self.model.evaluate(dataset.x_test, dataset.y_test, batch_size=1024, verbose=0)[1]
            rows.append((clock["elapsed"], float(tested)))

    keras.utils.set_random_seed(config.seed)
    started = time.perf_counter()
    model = training.build_model(config, dataset.input_shape, dataset.num_classes)
    training.compile_for_task(model, config, dataset.num_classes, math.ceil(len(dataset.x_train) / config.batch_size))
    clock["elapsed"] = time.perf_counter() - started  # building and compiling count, as in timed_training
    model.fit(dataset.x_train, dataset.y_train, batch_size=config.batch_size, epochs=config.epochs,
              validation_data=(dataset.x_val, dataset.y_val), callbacks=[TestEveryEpoch()], verbose=0)
    return rows

def timed_training(config, dataset) -> dict:
    """Train `config` once and evaluate it on the test set; seconds and accuracies."""
    from core import training

    started = time.perf_counter()
    result = training.train(config, dataset)
    trained = time.perf_counter()
    _, accuracy = result.model.evaluate(dataset.x_test, dataset.y_test, batch_size=1024, verbose=0)
    return {"seconds": trained - started, "with_test": time.perf_counter() - started, "accuracy": float(accuracy),
            "val_accuracy": result.history[-1]["val_accuracy"], "epochs": len(result.history), "load": os.getloadavg()[0]}


def settings(config) -> str:
    """The fields where `config` differs from TrainConfig's defaults, e.g. 'batch_size=128, epochs=3'."""
    from core.config import TrainConfig

    defaults = TrainConfig().to_dict()
    return ", ".join(f"{name}={value}" for name, value in config.to_dict().items() if defaults[name] != value)


def describe(run: dict) -> str:
    return (f"{run['seconds']:.1f} s ({run['with_test']:.1f} s with the test evaluation), {run['epochs']} epochs, "
            f"test accuracy {run['accuracy']:.2%} (validation {run['val_accuracy']:.2%}), load {run['load']:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--presets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--no-baselines", action="store_true", help="skip the classic recipes")
    parser.add_argument("--baseline-epochs", type=int, default=10, help="epochs of the classic CNN baseline")
    parser.add_argument("--onednn", choices=["0", "1"], help="set TF_ENABLE_ONEDNN_OPTS before TensorFlow loads")
    parser.add_argument("--quick", action="store_true", help="1 seed, 1 epoch, no baselines: a smoke check")
    arguments = parser.parse_args()
    if arguments.onednn is not None:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = arguments.onednn
    seeds = arguments.seeds[:1] if arguments.quick else arguments.seeds

    from common import tensorflow_settings
    from core import training
    from core.config import PRESETS

    header("time to accuracy on Fashion-MNIST (test set: 10,000 images)")
    print(tensorflow_settings(), flush=True)
    datasets = {}

    def dataset_for(config):
        shape = (config.train_subset, config.validation_fraction)
        if shape not in datasets:
            datasets[shape] = training.load_dataset_for(config)
        return datasets[shape]

    warm_up = dataclasses.replace(PRESETS["fast CNN"], train_subset=1000, epochs=1)
    training.train(warm_up, dataset_for(warm_up))  # TensorFlow's first-use costs are not the preset's

    results = {}
    for name in arguments.presets:
        config = PRESETS[name]
        if arguments.quick:
            config = dataclasses.replace(config, epochs=1)
        print(f"\n{name}: {settings(config)}", flush=True)
        runs = []
        for seed in seeds:
            runs.append(timed_training(dataclasses.replace(config, seed=seed), dataset_for(config)))
            print(f"  seed {seed}: {describe(runs[-1])}", flush=True)
        results[name] = runs

    baselines = {}
    if not (arguments.quick or arguments.no_baselines):
        for family, preset in BASELINES.items():
            changes = {"epochs": arguments.baseline_epochs} if family == "CNN" else {}
            config = dataclasses.replace(PRESETS[preset], **changes)
            baselines[family] = (config, tested_every_epoch(config, dataset_for(config)))
            print(f"\nbaseline {preset} ({settings(config)}): " + ", ".join(
                f"epoch {number}: {accuracy:.2%} after {seconds:.1f} s"
                for number, (seconds, accuracy) in enumerate(baselines[family][1], start=1)), flush=True)

    print()
    for name, runs in results.items():
        accuracy_target, seconds_target = TARGETS[name]
        accuracy = statistics.fmean(run["accuracy"] for run in runs)
        seconds = statistics.fmean(run["seconds"] for run in runs)
        report(f"{name} test accuracy over seeds {seeds}", mean_and_spread(100 * run["accuracy"] for run in runs) + " %",
               f">= {accuracy_target:.1%}", accuracy >= accuracy_target)
        report(f"{name} seconds to a trained model (mean over the seeds)", mean_and_spread(run["seconds"] for run in runs),
               f"<= {seconds_target:.0f} s", seconds <= seconds_target)
        report(f"{name} seconds including the test evaluation", mean_and_spread(run["with_test"] for run in runs))
        baseline = baselines.get("CNN" if "CNN" in name else "DNN")
        if baseline:
            config, rows = baseline
            reached = next(((number, at) for number, (at, tested) in enumerate(rows, start=1) if tested >= accuracy), None)
            if reached:
                text = (f"{seconds / reached[1]:.2f} ({seconds:.1f} s vs {reached[1]:.1f} s: the course's {config.title} "
                        f"reached {accuracy:.2%} at epoch {reached[0]}, same process)")
            else:
                text = (f"below {seconds / rows[-1][0]:.2f} (the course's {config.title} did not reach {accuracy:.2%} in "
                        f"{len(rows)} epochs, {rows[-1][0]:.1f} s; best {max(tested for _, tested in rows):.2%})")
            report(f"{name} seconds to its accuracy / the classic recipe's seconds to the same accuracy", text)
    print(f"done  [{load_average()}]")


if __name__ == "__main__":
    main()
