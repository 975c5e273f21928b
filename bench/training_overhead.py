"""Training overhead: the project's trainer against plain `model.fit`, same arrays, same classic CNN.

The classic CNN (Conv32-Pool-Conv64-Pool-Dense128-Dropout-Dense10, batch 128) is trained for one epoch
at a time, alternating trainer and plain fit in one process (ABBA order), so that a busy machine slows
both alike. Each call is timed from start to trained model: build, compile and one epoch with the same
validation split. The figure is the ratio trainer / plain of the summed wall-clock seconds (target
<= 1.05); the median of the per-pair ratios and the ratio of CPU seconds (less sensitive to other
processes on a shared machine) are printed beside it.

    python bench/training_overhead.py            # 6 pairs on all 54,000 training images
    python bench/training_overhead.py --quick    # 2 pairs on 3,000 images, a smoke check (< 1 minute)
"""

import argparse
import dataclasses
import statistics
import time

from common import header, load_average, report

TARGET_RATIO = 1.05


def plain_fit(dataset, batch_size: int, dropout_rate: float, seed: int) -> tuple[float, float]:
    """(seconds for the whole call, CPU seconds for it) of the classic CNN written in plain Keras."""
    import keras
    from keras import layers

    started, cpu_started = time.perf_counter(), time.process_time()
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input(shape=dataset.input_shape),
        layers.Rescaling(1 / 255),
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(dropout_rate),
        layers.Dense(dataset.num_classes, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(dataset.x_train, dataset.y_train, batch_size=batch_size, epochs=1,
              validation_data=(dataset.x_val, dataset.y_val), verbose=0)
    return time.perf_counter() - started, time.process_time() - cpu_started


def trainer_fit(config, dataset) -> tuple[float, float]:
    """(seconds for the whole call, CPU seconds for it) of core.training.train for the same network."""
    from core import training

    started, cpu_started = time.perf_counter(), time.process_time()
    training.train(config, dataset)
    return time.perf_counter() - started, time.process_time() - cpu_started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=6, help="trainer/plain pairs, one epoch each (default 6)")
    parser.add_argument("--quick", action="store_true", help="2 pairs on 3,000 images: a smoke check")
    arguments = parser.parse_args()
    pairs = 2 if arguments.quick else arguments.pairs

    from common import tensorflow_settings
    from core import training
    from core.config import PRESETS

    header("training overhead: core.training.train vs plain model.fit (classic CNN, batch 128)")
    config = dataclasses.replace(PRESETS["classic CNN"], batch_size=128, dropout_rate=0.2, epochs=1,
                                 train_subset=3000 if arguments.quick else None)
    dataset = training.load_dataset_for(config)
    print(f"{tensorflow_settings()}; {len(dataset.x_train):,} training and {len(dataset.x_val):,} validation images; "
          f"trainer runs {training.steps_per_execution(config)} batches per TensorFlow call", flush=True)
    warm_up = dataclasses.replace(config, train_subset=1000)
    trainer_fit(warm_up, training.load_dataset_for(warm_up))  # TensorFlow's first-use costs go to neither side

    ratios, totals = [], {"trainer": [0.0, 0.0], "plain": [0.0, 0.0]}
    for pair in range(pairs):
        order = ("trainer", "plain") if pair % 2 == 0 else ("plain", "trainer")
        seconds = {}
        for name in order:
            if name == "trainer":
                seconds[name] = trainer_fit(dataclasses.replace(config, seed=pair), dataset)
            else:
                seconds[name] = plain_fit(dataset, config.batch_size, config.dropout_rate, seed=pair)
            totals[name] = [total + value for total, value in zip(totals[name], seconds[name])]
        ratios.append(seconds["trainer"][0] / seconds["plain"][0])
        print(f"pair {pair + 1}/{pairs} ({' then '.join(order)}): trainer {seconds['trainer'][0]:.1f} s "
              f"({seconds['trainer'][1]:.1f} s CPU), plain {seconds['plain'][0]:.1f} s ({seconds['plain'][1]:.1f} s CPU) "
              f"per epoch, ratio {ratios[-1]:.3f}  [{load_average()}]", flush=True)

    ratio = totals["trainer"][0] / totals["plain"][0]
    report("trainer / plain model.fit, wall-clock seconds per epoch (sum over pairs)",
           f"{ratio:.3f} ({totals['trainer'][0] / pairs:.1f} s vs {totals['plain'][0] / pairs:.1f} s per epoch)",
           f"<= {TARGET_RATIO}", ratio <= TARGET_RATIO)
    report("median of the per-pair ratios", f"{statistics.median(ratios):.3f} (pairs: {', '.join(f'{r:.3f}' for r in ratios)})")
    report("trainer / plain model.fit, CPU seconds", f"{totals['trainer'][1] / totals['plain'][1]:.3f}")


if __name__ == "__main__":
    main()
