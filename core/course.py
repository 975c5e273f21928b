"""The TensorFlow course this app follows: which of its networks each preset reproduces, the networks of its
photo lessons, and the small sums a lesson shows (how many images train, how many steps make an epoch).

Nothing here types a number a page shows: parameter counts come from `core.shapes.config_plan`, image
counts from the dataset catalogue. Imports neither numpy nor TensorFlow.
"""

import dataclasses
import math
from dataclasses import dataclass

from core.catalogue import dataset_info
from core.config import PRESETS, Augmentation, TrainConfig
from core.shapes import config_plan, plan_summary

KERAS_LOADERS = ("fashion_mnist", "mnist", "cifar10")  # catalogue datasets that keras.datasets can download
# The course's ImageDataGenerator for the horses-or-humans and cats-vs-dogs photos
COURSE_AUGMENTATION = Augmentation(rotation_range=40, width_shift_range=0.2, height_shift_range=0.2, shear_range=0.2,
                                   zoom_range=0.2, horizontal_flip=True, fill_mode="nearest")

# Which lesson's network each preset reproduces (checked against the course notebooks).
PRESET_LESSONS = {
    "fast DNN": "Not a course network: the classic DNN's layers, trained with a one-cycle learning rate and batches "
                "of 128 to reach its accuracy in seconds (docs/performance.md).",
    "fast CNN": "Not a course network: half the classic CNN's filters and twice its Dense units, 'same' padding, batch "
                "normalisation and a one-cycle learning rate, for better than the classic accuracy in less time.",
    "quick CNN": "Not a course network: the fast CNN's network trained for a single epoch in smaller batches, for "
                 "nearly its accuracy in a fraction of its time.",
    "classic DNN": "The course's first Fashion-MNIST network (Course 1, weeks 2 and 3): Flatten, Dense(128, relu), "
                   "Dense(10, softmax), Adam, 5 epochs.",
    "classic CNN": "The course's 32-then-64-filter Fashion-MNIST CNN, from the lesson that adds dropout to it (here "
                   "without the dropout, which has no parameters): two 3×3 Conv2D blocks with 2×2 max pooling, Dense 128.",
    "course CNN 64-64": "Course 1, week 3, lab 1 'Improving accuracy using convolutions': two Conv2D(64, 3×3) blocks "
                        "with 2×2 max pooling, Dense 128, Adam, 5 epochs.",
    "course CNN 64-64-64": "The same lab's exercise 3, 'How about adding more convolutions?': a third Conv2D(64) block.",
    "course MNIST CNN 32": "Course 1, week 3 assignment, 'Improve MNIST with convolutions': one Conv2D(32, 3×3) block, "
                           "Dense 128, 10 epochs (choose the MNIST dataset when it is on this machine).",
    "fast preview": "Not a course network: a small CNN on 2,000 images, for a first look in seconds.",
}


# Where the classic code does something this app does differently: what it does, and why we do otherwise.
CLASSIC_CODE_NOTES = {
    "dense before dropout": "The classic code puts `Dense(128)` with **no activation** before `Dropout`: two linear "
                            "layers in a row make one linear map, so that layer adds weights but no power. Here every "
                            "hidden Dense layer has an activation (ReLU by default), then Dropout.",
    "callback": "The classic callback prints a message typed into it (and the lesson keeps Fashion-MNIST in a variable "
                "named `mnist`), so its log says what was typed, not what happened. Here the callback reports the "
                "accuracy it reached and its target, read from the training logs.",
}

DROPOUT = ("During training, every step switches off this fraction of each hidden Dense layer's outputs at random and "
           "scales the others up by 1 / (1 − rate), so their sum stays the same on average; for predictions nothing is "
           "switched off. No unit can rely on one particular other unit, which fights overfitting.")


@dataclass(frozen=True)
class CourseNetwork:
    """A CNN from one of the course's lessons, as core.models.build_cnn builds it."""

    lesson: str
    input_shape: tuple[int, int, int]
    filters: tuple[int, ...]
    hidden_units: tuple[int, ...]
    num_classes: int


# The course's CNNs, each at the input size its lesson uses (checked against the course notebooks).
COURSE_NETWORKS = {
    "Fashion-MNIST CNN 64-64": CourseNetwork("Course 1, week 3, lab 1", (28, 28, 1), (64, 64), (128,), 10),
    "MNIST CNN 32": CourseNetwork("Course 1, week 3 assignment", (28, 28, 1), (32,), (128,), 10),
    "horses vs humans": CourseNetwork("Course 1, week 4", (300, 300, 3), (16, 32, 64, 64, 64), (512,), 2),
    "cats vs dogs": CourseNetwork("Course 2, week 1", (150, 150, 3), (16, 32, 64), (512,), 2),
    "rock, paper, scissors": CourseNetwork("Course 2, week 4", (150, 150, 3), (64, 64, 128, 128), (512,), 3),
}


def training_images(dataset: str, validation_fraction: float = 0.1, train_subset: int | None = None, root=None) -> int:
    """How many images a config trains on: the dataset's training part, less validation, cut to the subset.

    The same sums as core.datasets.load_dataset, from the catalogue alone (no image is read); an imported dataset
    is looked up in the registry at `root`, and its validation photos, when a folder gave them, are not carved.
    """
    train, _ = dataset_info(dataset, root).training_and_validation(validation_fraction)
    return min(train, train_subset) if train_subset else train


def within_the_data(config: TrainConfig, root=None) -> TrainConfig:
    """`config`, with a subset at least as large as its dataset's training images read as all of them: the same images,
    so the same key, and a title that does not name images the dataset does not have (500 of 36 photos)."""
    if config.train_subset and config.train_subset >= training_images(config.dataset, config.validation_fraction, None,
                                                                        root):
        return dataclasses.replace(config, train_subset=None)
    return config


def steps_per_epoch(images: int, batch_size: int) -> int:
    """Weight updates in one epoch: one per batch, the last batch may be smaller: ⌈images ÷ batch size⌉."""
    return math.ceil(images / batch_size)


def config_training_images(config: TrainConfig, root=None) -> int:
    """training_images for the data slice `config` asks for (an imported dataset from the registry at `root`)."""
    return training_images(config.dataset, config.validation_fraction, config.train_subset, root)


def data_origin_note(name: str, source: str | None) -> str:
    """Where a dataset's images came from, as the Datasets page says it: true for each kind of dataset."""
    if name in KERAS_LOADERS:
        return (f"`keras.datasets.{name}.load_data()` downloads these files where the internet is reachable; "
                f"this page read them from {source}.")
    if name == "shapes":
        return "These images are not downloaded from anywhere: they are drawn on this machine, from a fixed seed."
    return f"These are your own images, imported from a zip of class folders ({source})."


def input_size_rows(config: TrainConfig, num_classes: int, sizes, channels: int = 3) -> list[dict]:
    """How `config`'s network grows with the input side: Flatten length, first Dense layer, total, memory."""
    rows = []
    for size in sizes:
        plan = config_plan(dataclasses.replace(config, image_size=size), (size, size, channels), num_classes)
        summary = plan_summary(plan)
        dense = next((row for row in plan if row["type"] == "Dense"), None)
        rows.append({"input": f"{size}×{size}×{channels}", "Flatten length": f"{summary['flatten length']:,}",
                     "first Dense layer's weights": f"{dense['params']:,}", "parameters": f"{summary['parameters']:,}",
                     "weights (MB)": f"{summary['weights bytes'] / 1e6:.1f}",
                     f"feature maps of a batch of {config.batch_size} (MB)":
                         f"{summary['feature map bytes per image'] * config.batch_size / 1e6:.0f}"})
    return rows


def preset_rows(input_shape=(28, 28, 1), num_classes: int = 10) -> list[dict]:
    """Every preset: its lesson and its parameter count for images of `input_shape` and `num_classes` classes."""
    rows = []
    for name, config in PRESETS.items():
        plan = config_plan(config, input_shape, num_classes)
        rows.append({"preset": name, "parameters": plan_summary(plan)["parameters"] if plan else None,
                     "lesson": PRESET_LESSONS[name]})
    return rows
