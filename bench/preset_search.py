"""Search preset recipes by test accuracy on Fashion-MNIST, over several seeds, training exactly as the app does.

Accuracy does not depend on the machine's load, so recipes are screened by it first (time is checked afterwards as a
ratio to the classic CNN, with `time_to_accuracy.py`). Each candidate is a preset with some fields changed:

    python bench/preset_search.py "quick CNN" hidden_units=256 "quick CNN" batch_size=128,learning_rate=0.01
    python bench/preset_search.py "fast CNN" epochs=4,hidden_units=256 --seeds 0 1 2

prints, per candidate, the mean test accuracy, each seed's, the mean seconds and the load average.
"""

import argparse
import dataclasses
import statistics
import time

from common import header, load_average  # common puts the project on sys.path


def parse_changes(text: str) -> dict:
    """'epochs=4,hidden_units=256-128' -> {'epochs': 4, 'hidden_units': (256, 128)}; numbers become int or float."""
    changes = {}
    for pair in filter(None, text.split(",")):
        name, value = pair.split("=", 1)
        if name in ("hidden_units", "filters"):
            changes[name] = tuple(int(size) for size in value.split("-"))
        elif value in ("True", "False"):
            changes[name] = value == "True"
        else:
            changes[name] = float(value) if "." in value or "e" in value else int(value)
    return changes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("candidates", nargs="+", help='pairs: a preset name, then its changes ("" for none)')
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    arguments = parser.parse_args()
    if len(arguments.candidates) % 2:
        parser.error("give each candidate as a preset name followed by its changes")

    from core import training
    from core.config import PRESETS

    header("preset search: Fashion-MNIST test accuracy over seeds")
    datasets = {}
    for name, text in zip(arguments.candidates[::2], arguments.candidates[1::2]):
        config = dataclasses.replace(PRESETS[name], **parse_changes(text))
        shape = (config.train_subset, config.validation_fraction)
        if shape not in datasets:
            datasets[shape] = training.load_dataset_for(config)
        dataset, accuracies, seconds = datasets[shape], [], []
        for seed in arguments.seeds:
            started = time.perf_counter()
            result = training.train(dataclasses.replace(config, seed=seed), dataset)
            seconds.append(time.perf_counter() - started)
            accuracies.append(float(result.model.evaluate(dataset.x_test, dataset.y_test, batch_size=1024, verbose=0)[1]))
        print(f"{statistics.fmean(accuracies):.2%} (seeds: {', '.join(f'{a:.2%}' for a in accuracies)}), "
              f"{statistics.fmean(seconds):.1f} s mean  {name} {text or '(as is)'}  [{load_average()}]", flush=True)


if __name__ == "__main__":
    main()
