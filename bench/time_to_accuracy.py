"""Time to accuracy of the default presets on Fashion-MNIST, over several seeds, beside the classic recipes.

For every preset and seed: the time from `core.training.train(config)` to a trained model (build,
compile, every epoch with its validation), then its accuracy on the 10,000 test images. Targets: the
"fast CNN" preset reaches >= 91% within 60 s, the "fast DNN" preset >= 88.5% within 10 s, judged on the
mean accuracy over the seeds and the slowest seed's time (time + test evaluation is printed too).
The baselines are the TensorFlow-course recipes, trained in the same process: the classic CNN for
10 epochs and the classic DNN preset (5 epochs, batch 32), seed 0.

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

TARGETS = {"fast CNN": (0.91, 60.0), "fast DNN": (0.885, 10.0)}  # preset: (test accuracy, seconds)
BASELINES = {"classic CNN, 10 epochs": ("classic CNN", {"epochs": 10}), "classic DNN": ("classic DNN", {})}


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
        for label, (preset, changes) in BASELINES.items():
            config = dataclasses.replace(PRESETS[preset], **changes)
            baselines[label] = timed_training(config, dataset_for(config))
            print(f"\nbaseline {label}: {describe(baselines[label])}", flush=True)

    print()
    for name, runs in results.items():
        accuracy_target, seconds_target = TARGETS[name]
        accuracy = statistics.fmean(run["accuracy"] for run in runs)
        slowest = max(run["seconds"] for run in runs)
        report(f"{name} test accuracy over seeds {seeds}", mean_and_spread(100 * run["accuracy"] for run in runs) + " %",
               f">= {accuracy_target:.1%}", accuracy >= accuracy_target)
        report(f"{name} seconds to a trained model", mean_and_spread(run["seconds"] for run in runs),
               f"<= {seconds_target:.0f} s", slowest <= seconds_target)
        report(f"{name} seconds including the test evaluation", mean_and_spread(run["with_test"] for run in runs))
        baseline = baselines.get("classic CNN, 10 epochs" if "CNN" in name else "classic DNN")
        if baseline:
            speedup = baseline["seconds"] / statistics.fmean(run["seconds"] for run in runs)
            report(f"{name} speed-up over the classic recipe", f"{speedup:.1f}x ({baseline['accuracy']:.2%} in "
                   f"{baseline['seconds']:.1f} s, same process)")
    print(f"done  [{load_average()}]")


if __name__ == "__main__":
    main()
