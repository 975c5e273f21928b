"""A course-sized photo dataset: how long its import takes, and how much memory a training process needs for it.

Photos are generated like the course's (tests/photos.py: lit, noisy, textured 300x300 PNGs of objects).

1. Import speed: a zip of 1,000 photos of about 150 MB (horses-or-humans' size) through `python -m core datasets
   import` (target: well under a minute on the 2-core machine).
2. Peak memory of a training process on rock-paper-scissors' size: 2,520 training photos and 372 test photos of
   three classes (300x300 JPEGs), at 150x150 (the course's size), trained for one epoch by the page's CNN in a fresh process, as
   the worker does (`python -m core --root R train ...`: the same engine). Beside it, the same training in a
   fresh process given the dataset as arrays in memory (`model.fit(x_train, y_train)`) and evaluated the same way:
   the ratio is what the memory map and tf.data save. (The code before this change also kept a decoded copy and
   copies of each split: 2,475 MB against 1,466 MB for the same photos, measured once with both versions.) The decoded photos are 2,892 x 150 x 150 x 3 bytes = 195 MB as uint8.

    python bench/folder_memory.py            # the figures above
    python bench/folder_memory.py --quick    # 300 photos at 64 px: a smoke run of the same code
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import PROJECT, header, report

sys.path.insert(0, str(PROJECT / "tests"))
from photos import photo_files, photo_zip  # noqa: E402

IMPORT_TARGET_SECONDS = 60
# Each child prints its own peak resident memory (ru_maxrss, in KB) as it exits.
COMMAND_LINE = """
import resource, runpy, sys
sys.argv = ["core", *sys.argv[1:]]
try:
    runpy.run_module("core", run_name="__main__")
finally:
    print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)
"""
IN_MEMORY_TRAINING = """
import resource, sys
import numpy as np
from core.evaluation import evaluate
from core.recipes import SCRATCH, recipe
from core.training import evaluation_batch_size, load_dataset_for, train
config = recipe(SCRATCH, sys.argv[2], int(sys.argv[3]), epochs=1)
dataset = load_dataset_for(config, sys.argv[1])
for split in ("train", "val", "test"):  # the arrays in memory, as load_dataset returned them before
    setattr(dataset, f"x_{split}", np.array(getattr(dataset, f"x_{split}")))
model = train(config, dataset).model
evaluate(model, dataset.x_test, dataset.y_test, dataset.class_names, batch_size=evaluation_batch_size(dataset.input_shape))
print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)
"""


def child_peak_mb(command: list[str]) -> tuple[float, float]:
    """Run `command` in a fresh process; (its peak resident memory in MB, seconds)."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True)
    found = re.search(r"PEAK_KB (\d+)", result.stdout)
    if result.returncode or not found:
        raise RuntimeError(result.stdout[-2000:] + result.stderr[-2000:])
    return int(found.group(1)) / 1024, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    header("folder dataset: import speed and training memory")
    folder = Path(tempfile.mkdtemp(prefix="cnnclassroom-folder-memory-"))
    root = folder / "registry"

    photos = 100 if arguments.quick else 500  # per class, two classes: 1,000 photos
    files = photo_files({"train": photos}, split_folders=False, prefix="horse-or-human/", seed=1)
    archive = photo_zip(folder / "horse-or-human.zip", files)
    size_mb = archive.stat().st_size / 1e6
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "core", "--root", str(root), "datasets", "import", str(archive)], cwd=PROJECT,
                   check=True, capture_output=True)
    seconds = time.perf_counter() - started
    report(f"import of {len(files):,} photos, {size_mb:.0f} MB (python -m core datasets import, process start "
           "included)", f"{seconds:.1f} s", f"well under {IMPORT_TARGET_SECONDS} s", seconds < IMPORT_TARGET_SECONDS)

    train_per_class, test_per_class, side = (100, 20, 64) if arguments.quick else (840, 124, 150)
    files = photo_files({"train": train_per_class, "test": test_per_class}, kinds=("round", "angular", "ring"),
                        prefix="rps/", seed=2, image_format="JPEG")  # noisy PNGs this many would pass the 500 MB zip limit
    archive = photo_zip(folder / "rps.zip", files)
    imported = subprocess.run([sys.executable, "-m", "core", "--root", str(root), "datasets", "import", str(archive)],
                              cwd=PROJECT, check=True, capture_output=True, text=True).stdout
    name = re.search(r"as (folder:[0-9a-f]{12}):", imported).group(1)
    uint8_mb = len(files) * side * side * 3 / 1e6
    print(f"{len(files):,} photos ({3 * train_per_class:,} train, {3 * test_per_class} test) at {side}x{side}x3: "
          f"{uint8_mb:.0f} MB as uint8, {4 * uint8_mb:.0f} MB as float32", flush=True)
    streamed, streamed_seconds = child_peak_mb(
        [sys.executable, "-c", COMMAND_LINE, "--root", str(root), "train", "--dataset", name, "--image-size", str(side),
         "--color-mode", "rgb", "--family", "cnn", "--filters", "16,32,64", "--hidden-units", "128", "--epochs", "1",
         "--batch-size", "32"])
    report("peak memory of the training process (decoding the photos, then one epoch, read from the memory map)",
           f"{streamed:.0f} MB in {streamed_seconds:.0f} s")
    in_memory, in_memory_seconds = child_peak_mb([sys.executable, "-c", IN_MEMORY_TRAINING, str(root), name, str(side)])
    report("the same training given the arrays in memory (model.fit on numpy arrays)", f"{in_memory:.0f} MB in "
           f"{in_memory_seconds:.0f} s")
    report("saving", f"{in_memory - streamed:.0f} MB ({streamed / in_memory:.2f}x the memory)")


if __name__ == "__main__":
    main()
