"""The photo side: import speed against Keras, one epoch against plain `model.fit`, and a worker's peak memory.

Photos are generated like the course's (tests/photos.py: lit, noisy, textured 300x300 PNGs of objects).

1. Import: a zip of 1,000 photos (two classes) imported with `core.folders.import_zip` (every photo checked and
   stored; each photo decoded once and also prepared at 150x150 then) and loaded at 150x150 for training
   (`load_dataset(..., image_size=150)`: the uint8 file the worker reads), in this process. Target: >= 150 photos/s on 2 cores. Beside it, a plain Keras pass over the
   same photos extracted to a folder: `keras.utils.image_dataset_from_directory(..., image_size=(150, 150))`
   iterated once (Keras decodes and stretches; the extraction is not timed). Alternated, `--repeats` times.
2. One epoch on the same 1,000 photos at 150 px, the Your-own-images CNN from scratch (`core.recipes`): the
   project's trainer (`core.training.train`, batches read from the memory map through tf.data) against plain
   `model.fit(x, y, batch_size=32, validation_data=...)` on the same photos as numpy arrays, the same model and
   seed, alternated in this process. Target: ratio <= 1.05 (compared on the second epoch's seconds, validation
   included: the first epoch also traces the training step).
3. Peak memory of a worker process training rock-paper-scissors' size (2,520 training photos of three classes, plus
   372 test photos) at 150x150 for one epoch with evaluation (`python -m core train`, the worker's engine),
   reported (no target; the decoded photos are 2,892 x 150 x 150 x 3 bytes = 195 MB).

    python bench/photos.py            # all three
    python bench/photos.py --parts import epoch
    python bench/photos.py --quick    # 200 photos at 64 px: a smoke run of the same code
"""

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from common import PROJECT, header, load_average, report, tensorflow_settings

sys.path.insert(0, str(PROJECT / "tests"))
from folder_memory import COMMAND_LINE, child_peak_mb  # noqa: E402
from photos import photo_files, photo_zip  # noqa: E402

IMPORT_TARGET_PHOTOS_PER_SECOND = 150
EPOCH_TARGET_RATIO = 1.05


def import_part(folder: Path, photos_per_class: int, side: int, repeats: int) -> str:
    """Import + decode vs image_dataset_from_directory over the same photos; returns the last imported dataset name."""
    import keras

    from core.datasets import load_dataset
    from core.folders import import_zip

    files = photo_files({"train": photos_per_class}, split_folders=False, prefix="horse-or-human/", seed=1)
    archive = photo_zip(folder / "horse-or-human.zip", files)
    extracted = folder / "extracted"
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(extracted)
    count = len(files)
    print(f"{count:,} photos, {archive.stat().st_size / 1e6:.0f} MB zip, decoded at {side}x{side}  [{load_average()}]",
          flush=True)
    ours, theirs, name = [], [], None
    for repeat in range(repeats):
        for which in ("ours", "keras") if repeat % 2 == 0 else ("keras", "ours"):
            started = time.perf_counter()
            if which == "ours":
                root = folder / f"registry-{repeat}"
                shown = []
                imported = import_zip(archive, root, on_progress=lambda done, total: shown.append(done))
                name = imported.name
                load_dataset(name, image_size=side, color_mode="rgb", root=root)
                ours.append(time.perf_counter() - started)
            else:
                pipeline = keras.utils.image_dataset_from_directory(extracted / "horse-or-human", image_size=(side, side),
                                                                    batch_size=32, shuffle=False, verbose=False)
                for _ in pipeline:
                    pass
                theirs.append(time.perf_counter() - started)
        print(f"repeat {repeat + 1}/{repeats}: import + decode {ours[-1]:.2f} s ({count / ours[-1]:.0f} photos/s, "
              f"{len(shown)} progress updates), image_dataset_from_directory {theirs[-1]:.2f} s  [{load_average()}]",
              flush=True)
    rate = count / statistics.median(ours)
    report(f"photo zip import: {count:,} photos checked, stored, decoded and resized to {side} px (median)",
           f"{rate:.0f} photos/s ({statistics.median(ours):.2f} s)", f">= {IMPORT_TARGET_PHOTOS_PER_SECOND} photos/s",
           rate >= IMPORT_TARGET_PHOTOS_PER_SECOND)
    report("… ratio to one pass of keras.utils.image_dataset_from_directory over the same photos (median)",
           f"{statistics.median(ours) / statistics.median(theirs):.2f} ({statistics.median(theirs):.2f} s, "
           f"{count / statistics.median(theirs):.0f} photos/s)")
    return name, folder / f"registry-{repeats - 1}"


def epoch_part(root: Path, name: str, side: int, repeats: int):
    """One epoch with the project's trainer vs plain model.fit on the same arrays, alternated."""
    import keras
    import numpy as np

    from core import training
    from core.recipes import SCRATCH, recipe

    config = recipe(SCRATCH, name, side, epochs=2)
    dataset = training.load_dataset_for(config, root)
    x_train, y_train = np.array(dataset.x_train), np.array(dataset.y_train)
    validation = (np.array(dataset.x_val), np.array(dataset.y_val))
    print(f"one epoch on {len(x_train):,} photos at {side} px, {config.title}; {tensorflow_settings()}", flush=True)

    def plain_fit() -> float:
        keras.utils.set_random_seed(config.seed)
        model = training.build_model(config, dataset.input_shape, dataset.num_classes)
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=training.head(dataset.num_classes)[2],
                      metrics=["accuracy"])
        times = []

        class Clock(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                times.append(time.perf_counter())

            def on_epoch_end(self, epoch, logs=None):
                times[-1] = time.perf_counter() - times[-1]

        model.fit(x_train, y_train, batch_size=config.batch_size, epochs=config.epochs, validation_data=validation,
                  callbacks=[Clock()], verbose=0)
        return times[-1]

    def ours() -> float:
        result = training.train(config, dataset)
        return result.history[-1]["seconds"]

    trainer, plain, trainer_cpu, plain_cpu = [], [], [], []
    for repeat in range(repeats):
        for which in ("ours", "plain") if repeat % 2 == 0 else ("plain", "ours"):
            cpu = time.process_time()
            (trainer if which == "ours" else plain).append(ours() if which == "ours" else plain_fit())
            (trainer_cpu if which == "ours" else plain_cpu).append(time.process_time() - cpu)
            keras.backend.clear_session()
        print(f"repeat {repeat + 1}/{repeats}: second epoch: the trainer {trainer[-1]:.2f} s, plain model.fit "
              f"{plain[-1]:.2f} s, ratio {trainer[-1] / plain[-1]:.3f}; CPU seconds of the whole training (2 epochs): "
              f"{trainer_cpu[-1]:.1f} vs {plain_cpu[-1]:.1f}, ratio {trainer_cpu[-1] / plain_cpu[-1]:.3f}  "
              f"[{load_average()}]", flush=True)
    ratio = statistics.median(trainer) / statistics.median(plain)
    report(f"one epoch on {len(x_train):,} photos at {side} px: the trainer / plain model.fit (median, second epoch)",
           f"{ratio:.3f} ({statistics.median(trainer):.2f} s vs {statistics.median(plain):.2f} s; pairs "
           f"{min(t / p for t, p in zip(trainer, plain)):.2f}-{max(t / p for t, p in zip(trainer, plain)):.2f})",
           f"<= {EPOCH_TARGET_RATIO}", ratio <= EPOCH_TARGET_RATIO)
    report("… CPU seconds of this process for the whole training, the trainer / plain model.fit (sum over repeats)",
           f"{sum(trainer_cpu) / sum(plain_cpu):.3f} ({sum(trainer_cpu):.1f} vs {sum(plain_cpu):.1f} s)",
           f"<= {EPOCH_TARGET_RATIO}", sum(trainer_cpu) / sum(plain_cpu) <= EPOCH_TARGET_RATIO)


def memory_part(folder: Path, per_class: tuple[int, int], side: int):
    """Peak memory of `python -m core train` (the worker's engine) on rock-paper-scissors' size."""
    train_per_class, test_per_class = per_class
    files = photo_files({"train": train_per_class, "test": test_per_class}, kinds=("round", "angular", "ring"),
                        prefix="rps/", seed=2, image_format="JPEG")
    archive = photo_zip(folder / "rps.zip", files)
    root = folder / "registry-rps"
    from core.folders import import_zip

    name = import_zip(archive, root).name
    peak, seconds = child_peak_mb(
        [sys.executable, "-c", COMMAND_LINE, "--root", str(root), "train", "--dataset", name, "--image-size", str(side),
         "--color-mode", "rgb", "--family", "cnn", "--filters", "16,32,64", "--hidden-units", "128", "--epochs", "1",
         "--batch-size", "32"])
    report(f"peak memory of a training process, {3 * train_per_class:,} training + {3 * test_per_class} test photos at "
           f"{side} px (decoding, one epoch, evaluation)", f"{peak:.0f} MB in {seconds:.0f} s "
           f"(the decoded photos: {len(files) * side * side * 3 / 1e6:.0f} MB as uint8)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", nargs="+", default=["import", "epoch", "memory"], choices=["import", "epoch", "memory"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    header("the photo side: import, one epoch, memory")
    folder = Path(tempfile.mkdtemp(prefix="cnnclassroom-photos-"))
    photos_per_class, side, repeats = (100, 64, 1) if arguments.quick else (500, 150, arguments.repeats)
    try:
        name, root = import_part(folder, photos_per_class, side, repeats if "import" in arguments.parts else 1)
        if "epoch" in arguments.parts:
            epoch_part(root, name, side, repeats)
        if "memory" in arguments.parts:
            memory_part(folder, (100, 20) if arguments.quick else (840, 124), side)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
