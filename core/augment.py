"""Data augmentation with Keras preprocessing layers, and the code that shows students how it is done.

How each Augmentation field maps to a layer (all layers take float pixels 0..255, NHWC):

- rotation_range (degrees) -> RandomRotation(rotation_range / 360): the factor is a fraction of a
  full turn, so 20 / 360 rotates by up to +-20 degrees around the centre, like ImageDataGenerator.
- width/height_shift_range -> RandomTranslation(height_factor, width_factor): shifts by up to that
  fraction of the image height/width, in either direction.
- shear_range -> RandomShear(x_factor=s, y_factor=s): every image gets a horizontal shear and a
  vertical shear, each drawn from [-s, s]. Pixel row y moves sideways by shear_x * y pixels and
  pixel column x moves up or down by shear_y * x pixels, measured from the top-left corner (not the
  centre), so with s=0.2 the bottom edge moves by up to 20% of the height and the right edge by up
  to 20% of the width. ImageDataGenerator's shear_range is different: an angle in degrees, one
  axis, around the centre (see legacy_code).
- zoom_range -> RandomZoom(height_factor=(-z, z), width_factor=(-z, z)): zooms in or out by up to z,
  each axis drawn separately, like ImageDataGenerator's zoom_range=z ([1 - z, 1 + z] per axis).
- horizontal_flip -> RandomFlip("horizontal"): mirrors half of the images left to right.
- fill_mode -> fill_mode of RandomRotation, RandomTranslation, RandomShear and RandomZoom, which all
  accept the same four modes as ImageDataGenerator: "nearest" repeats the edge pixel outwards
  (aaaa|abcd|dddd; it is not nearest-neighbour interpolation, which stays bilinear), "constant"
  fills with 0 (black), "reflect" mirrors the image at its edge (dcba|abcd|dcba), "wrap" tiles it
  (abcd|abcd|abcd). RandomFlip creates no empty area, so it has no fill_mode.
"""

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from core.backend import keras  # first: core.backend says why
from keras import layers  # after core.backend
from core.config import Augmentation, TrainConfig
from core.errors import ImageError
from core.history import History

WITHOUT, WITH = "no augmentation", "with augmentation"

# Each transformation draws from its own seed, so switching one on does not change the others.
SEED_OFFSETS = {"rotate": 0, "translate": 1, "shear": 2, "zoom": 3, "flip": 4}


@dataclass(frozen=True)
class AugmentationResult:
    """The experiment's outcome: test accuracy with and without, each run's last-epoch overfitting gap, and McNemar's
    test of the two on the same test images."""

    accuracy_without: float
    accuracy_with: float
    gap_without: float  # training minus validation accuracy at the last epoch
    gap_with: float
    p_value: float  # McNemar's exact test, augmented against not

    @property
    def helped(self) -> bool:
        """More accurate, beyond what the luck of the test images explains."""
        return self.accuracy_with > self.accuracy_without and self.p_value < 0.05

    @property
    def hurt(self) -> bool:
        return self.accuracy_with < self.accuracy_without and self.p_value < 0.05


def augmentation_experiment(augmentation: Augmentation, dataset: str, train_subset: int, epochs: int) -> dict[str, TrainConfig]:
    """The same small CNN on the same few images, trained without and with `augmentation`."""
    baseline = TrainConfig(family="cnn", filters=(16, 32), hidden_units=(64,), dataset=dataset, train_subset=train_subset,
                           epochs=epochs, batch_size=32)
    return {WITHOUT: baseline, WITH: dataclasses.replace(baseline, augmentation=augmentation)}


def augmentation_result(entries: dict, registry) -> AugmentationResult:
    """What the two trained entries of `augmentation_experiment` (in `registry`) show."""
    from core.evaluation import compare

    without, with_ = entries[WITHOUT], entries[WITH]
    comparison = compare(registry.load_evaluation(with_.key), registry.load_evaluation(without.key))
    return AugmentationResult(without.test_accuracy, with_.test_accuracy, _last_gap(without.history),
                              _last_gap(with_.history), comparison.p_value)


def _last_gap(history: History) -> float:
    return history[-1]["accuracy"] - history[-1]["val_accuracy"]


def build_augmenter(augmentation: Augmentation, seed: int):
    """A Sequential of the random transformations that `augmentation` switches on, or None if none are."""
    if not augmentation.is_active:
        return None
    fill_mode = augmentation.fill_mode
    transformations = []
    if augmentation.rotation_range:
        transformations.append(
            layers.RandomRotation(
                augmentation.rotation_range / 360, fill_mode=fill_mode, seed=seed + SEED_OFFSETS["rotate"], name="rotate"
            )
        )
    if augmentation.width_shift_range or augmentation.height_shift_range:
        transformations.append(
            layers.RandomTranslation(
                height_factor=augmentation.height_shift_range,
                width_factor=augmentation.width_shift_range,
                fill_mode=fill_mode,
                seed=seed + SEED_OFFSETS["translate"],
                name="translate",
            )
        )
    if augmentation.shear_range:
        transformations.append(
            layers.RandomShear(
                x_factor=augmentation.shear_range,
                y_factor=augmentation.shear_range,
                fill_mode=fill_mode,
                seed=seed + SEED_OFFSETS["shear"],
                name="shear",
            )
        )
    if augmentation.zoom_range:
        zoom = (-augmentation.zoom_range, augmentation.zoom_range)
        transformations.append(
            layers.RandomZoom(
                height_factor=zoom, width_factor=zoom, fill_mode=fill_mode, seed=seed + SEED_OFFSETS["zoom"], name="zoom"
            )
        )
    if augmentation.horizontal_flip:
        transformations.append(layers.RandomFlip("horizontal", seed=seed + SEED_OFFSETS["flip"], name="flip"))
    return keras.Sequential(transformations, name="augmentation")


def augment_samples(image_uint8_hwc, augmentation: Augmentation, count: int, seed: int) -> np.ndarray:
    """`count` augmented copies of one image, shape (count, H, W, C) uint8; the same seed gives the same copies."""
    image = np.asarray(image_uint8_hwc)
    if image.ndim != 3 or image.dtype != np.uint8:
        raise ImageError(
            "augment_samples needs one uint8 image of shape (height, width, channels). "
            f"Received: shape={image.shape}, dtype={image.dtype}"
        )
    copies = np.repeat(image[np.newaxis], count, axis=0)
    augmenter = build_augmenter(augmentation, seed)
    if augmenter is None:
        return copies
    augmented = keras.ops.convert_to_numpy(augmenter(copies.astype("float32"), training=True))
    return np.clip(np.rint(augmented), 0, 255).astype(np.uint8)


def keras_code(augmentation: Augmentation) -> str:
    """The modern Keras code for `augmentation`: preprocessing layers, active only during training."""
    header = "from tensorflow import keras\nfrom tensorflow.keras import layers\n\n"
    if not augmentation.is_active:
        return header + "# No augmentation: every epoch shows the model the same images.\ndata_augmentation = None\n"
    fill = f'fill_mode="{augmentation.fill_mode}"'
    lines = []
    if augmentation.rotation_range:
        lines.append(
            f"layers.RandomRotation({_number(augmentation.rotation_range)} / 360, {fill}),"
            f"  # up to +-{_number(augmentation.rotation_range)} degrees"
        )
    if augmentation.width_shift_range or augmentation.height_shift_range:
        lines.append(
            f"layers.RandomTranslation(height_factor={_number(augmentation.height_shift_range)}, "
            f"width_factor={_number(augmentation.width_shift_range)}, {fill}),"
        )
    if augmentation.shear_range:
        shear = _number(augmentation.shear_range)
        lines.append(f"layers.RandomShear(x_factor={shear}, y_factor={shear}, {fill}),")
    if augmentation.zoom_range:
        zoom = _number(augmentation.zoom_range)
        lines.append(f"layers.RandomZoom(height_factor=(-{zoom}, {zoom}), width_factor=(-{zoom}, {zoom}), {fill}),")
    if augmentation.horizontal_flip:
        lines.append('layers.RandomFlip("horizontal"),')
    body = "".join(f"        {line}\n" for line in lines)
    return (
        header
        + "data_augmentation = keras.Sequential(\n    [\n"
        + body
        + '    ],\n    name="augmentation",\n)\n\n'
        + "# Put it first in the model (it only acts during fit), or map it over a tf.data pipeline:\n"
        + "# train_ds = train_ds.map(lambda x, y: (data_augmentation(x, training=True), y))\n"
    )


def legacy_code(augmentation: Augmentation) -> str:
    """The same augmentation with the old ImageDataGenerator, for comparison with older tutorials."""
    arguments = []
    if augmentation.rotation_range:
        arguments.append(f"rotation_range={_number(augmentation.rotation_range)},")
    if augmentation.width_shift_range:
        arguments.append(f"width_shift_range={_number(augmentation.width_shift_range)},")
    if augmentation.height_shift_range:
        arguments.append(f"height_shift_range={_number(augmentation.height_shift_range)},")
    if augmentation.shear_range:
        degrees = math.degrees(math.atan(augmentation.shear_range))
        arguments.append(
            f"shear_range={degrees:.1f},  # degrees here: about RandomShear({_number(augmentation.shear_range)})"
        )
    if augmentation.zoom_range:
        arguments.append(f"zoom_range={_number(augmentation.zoom_range)},")
    if augmentation.horizontal_flip:
        arguments.append("horizontal_flip=True,")
    arguments.append(f'fill_mode="{augmentation.fill_mode}",')
    body = "".join(f"    {argument}\n" for argument in arguments)
    return (
        "# DEPRECATED: ImageDataGenerator is the old way, kept here only to compare with older tutorials.\n"
        "# Keras recommends preprocessing layers instead (RandomRotation, RandomTranslation, RandomShear,\n"
        "# RandomZoom, RandomFlip): they run inside the model or a tf.data pipeline; see keras_code().\n"
        "# Old tutorials also pass rescale=1./255; it is left out because the model's Rescaling layer does it.\n"
        "# ImageDataGenerator's shear_range is an angle in degrees (one axis, around the centre), so\n"
        "# the classic shear_range=0.2 meant 0.2 degrees, almost nothing.\n"
        "from tensorflow.keras.preprocessing.image import ImageDataGenerator\n\n"
        "train_datagen = ImageDataGenerator(\n" + body + ")\n"
    )


def _number(value) -> str:
    """A number as a student would type it: 20 rather than 20.0, 0.1 rather than 0.10000000000000001."""
    return f"{value:g}"
