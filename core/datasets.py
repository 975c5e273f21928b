"""Datasets: load one by name, with fixed stratified splits, resized and converted as asked.

Images are uint8 NHWC arrays with a channel axis; labels are int64 class indices. Splits use a
constant seed, so the test split of a dataset is the same for every training configuration.
core.catalogue names the datasets; the arrays come from core.dataset_files (the catalogue's original
files), core.shapes_dataset (generated) or core.folder_arrays (imported zips and folders, whose photos
are prepared by imaging.photo_to_input and whose splits follow core.splits). An imported dataset's
arrays are read-only slices of one memory-mapped file; `root` is the registry they were imported into.
"""

import hashlib
from dataclasses import dataclass

import numpy as np

from core.catalogue import (CATALOGUE, CLASS_NAMES, DATA_SEED, FOLDER_PREFIX, TEST_FRACTION, catalogue_source, check_name,
                            folder_source, read_manifest)
from core.config import CHANNELS_BY_COLOR_MODE
from core.dataset_files import catalogue_arrays
from core.errors import DatasetError
from core.folder_arrays import decoded_images
from core.imaging import PREPROCESSING, resize_images
from core.shapes_dataset import generate_shapes
from core.splits import SPLITS, check_enough_images, split_indices, stratified_split

MAX_ARRAY_BYTES = 4 * 2**30


@dataclass
class Dataset:
    """Train, validation and test arrays of one dataset, ready for `model.fit`."""

    name: str
    class_names: list[str]
    source: str
    fingerprint: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    preprocessing: str = PREPROCESSING  # how a photo becomes an input (imaging.METHODS); Predict does the same
    split_sources: dict[str, str] | None = None  # where each split came from, for an imported dataset
    title: str | None = None  # the readable name: the catalogue's title, or an imported folder's own

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def is_binary(self) -> bool:
        return self.num_classes == 2


# ---------------------------------------------------------------------------------------------
# Loading


def load_dataset(name, *, train_subset=None, image_size=None, color_mode=None, validation_fraction=0.1, root=None,
                 on_progress=None) -> Dataset:
    """Load a dataset with fixed, stratified splits, resized and converted as asked.

    An imported dataset (`folder:<id>`) is looked up in the registry at `root`; its photos are decoded the
    first time a shape is asked for, with `on_progress(done, total)` called meanwhile.
    """
    check_name(name)
    _check_options(train_subset, image_size, color_mode, validation_fraction)
    if name.startswith(FOLDER_PREFIX):
        return _folder_dataset(root, name, train_subset, image_size, color_mode, validation_fraction, on_progress)
    if name == "shapes":
        x_rest, y_rest, x_test, y_test = _split_off_test(*generate_shapes())
        class_names, source = CLASS_NAMES[name], catalogue_source(name)[0]
    else:
        (x_rest, y_rest, x_test, y_test), source = catalogue_arrays(name)
        class_names = CLASS_NAMES[name]

    # Validation comes out of the training part; the subset is drawn from what is left.
    val, train = _stratified_split(y_rest, round(validation_fraction * len(y_rest)), DATA_SEED)
    if train_subset is not None and train_subset < len(train):
        train = train[_stratified_split(y_rest[train], train_subset, DATA_SEED)[0]]
    height, width = (image_size, image_size) if image_size else x_rest.shape[1:3]
    channels = CHANNELS_BY_COLOR_MODE.get(color_mode, x_rest.shape[-1])
    _check_array_bytes(name, len(train) + len(val) + len(y_test), height, width, channels)

    x_train, x_val, x_test = (_prepare(x, image_size, color_mode) for x in (x_rest[train], x_rest[val], x_test))
    arrays = [x_train, y_rest[train], x_val, y_rest[val], x_test, np.array(y_test)]
    return Dataset(name, list(class_names), source, _fingerprint(arrays), *arrays, title=CATALOGUE[name][0])


def sample_by_class(dataset: Dataset, per_class: int, split: str = "train") -> dict[str, np.ndarray]:
    """The first `per_class` images of each class in one split, for a lesson's image grid."""
    if split not in ("train", "val", "test"):
        raise DatasetError(f"split must be 'train', 'val' or 'test'. Received: split={split!r}")
    images, labels = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
    return {name: images[np.flatnonzero(labels == index)[:per_class]] for index, name in enumerate(dataset.class_names)}


def class_counts(labels, num_classes) -> np.ndarray:
    """How many labels fall in each class 0..num_classes-1."""
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)


def _check_options(train_subset, image_size, color_mode, validation_fraction):
    def whole(value):
        return isinstance(value, int) and not isinstance(value, bool)

    if train_subset is not None and not (whole(train_subset) and train_subset >= 1):
        raise DatasetError(f"train_subset must be a positive whole number or None. Received: train_subset={train_subset!r}")
    if image_size is not None and not (whole(image_size) and 8 <= image_size <= 512):
        raise DatasetError("image_size must be a whole number from 8 to 512, or None for the native size. "
                           f"Received: image_size={image_size!r}")
    if color_mode not in (None, "grayscale", "rgb"):
        raise DatasetError(f"color_mode must be 'grayscale', 'rgb' or None. Received: color_mode={color_mode!r}")
    number = isinstance(validation_fraction, (int, float)) and not isinstance(validation_fraction, bool)
    if not (number and 0 <= validation_fraction <= 0.5):
        raise DatasetError(f"validation_fraction must be from 0 to 0.5. Received: validation_fraction={validation_fraction!r}")


def _check_array_bytes(name, count, height, width, channels):
    if count * height * width * channels > MAX_ARRAY_BYTES:
        raise DatasetError(f"{count:,} images of {height}x{width}x{channels} need more than {MAX_ARRAY_BYTES / 2**30:.0f} "
                           f"GiB of memory. Choose a smaller image_size or a train_subset. Received: name={name!r}, "
                           f"image_size={height}")


def _split_off_test(images, labels):
    """(x_rest, y_rest, x_test, y_test) with a stratified TEST_FRACTION test split."""
    test, rest = _stratified_split(labels, round(TEST_FRACTION * len(labels)), DATA_SEED)
    return images[rest], labels[rest], images[test], labels[test]


_stratified_split = stratified_split  # one implementation for catalogue and imported datasets (core.splits)


def _prepare(images, image_size, color_mode):
    """Convert to the colour mode and resize to image_size x image_size (a fresh, writable array)."""
    import cv2  # here, not at the top: the home page lists datasets and must not wait for OpenCV

    count, height, width, channels = images.shape
    if color_mode == "grayscale" and channels == 3:
        rows = np.ascontiguousarray(images).reshape(count * height, width, 3)
        images = cv2.cvtColor(rows, cv2.COLOR_RGB2GRAY).reshape(count, height, width, 1) if count else images[..., :1]
    if image_size and (height, width) != (image_size, image_size):
        images = resize_images(images, image_size, image_size)
    if color_mode == "rgb" and channels == 1:
        images = np.repeat(images, 3, axis=-1)
    images = np.ascontiguousarray(images)
    return images if images.flags.writeable else images.copy()  # never hand out a cached array


def _fingerprint(arrays):
    """The first 16 hex digits of the SHA-256 of the arrays, their shapes and dtypes."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()[:16]


def _folder_dataset(root, name, train_subset, image_size, color_mode, validation_fraction, on_progress) -> Dataset:
    """An imported dataset: its splits (core.splits) as slices of one decoded, memory-mapped file (core.folder_arrays)."""
    manifest = read_manifest(root, name)
    channels = CHANNELS_BY_COLOR_MODE.get(color_mode, manifest.image_shape[2])
    height, width = (image_size, image_size) if image_size else manifest.image_shape[:2]
    labels = np.array(manifest.labels, np.int64)
    train, validation, test = split_indices(manifest.splits, labels, validation_fraction)
    shared_test = test is validation  # validation photos and no test folder: they are the test photos too
    order = np.concatenate([train, validation] if shared_test else [train, validation, test])
    _check_array_bytes(name, len(order), height, width, channels)
    images = decoded_images(root, name, height, width, channels, order, on_progress)
    ends = np.cumsum([len(train), len(validation), len(test)])
    x_train, x_val = images[: ends[0]], images[ends[0]: ends[1]]
    x_test = x_val if shared_test else images[ends[1]: ends[2]]
    y_train, y_val, y_test = labels[train], labels[validation], labels[test]
    if train_subset is not None and train_subset < len(train):
        subset = np.sort(stratified_split(y_train, train_subset, DATA_SEED)[0])  # sorted: reads the file in order
        x_train, y_train = x_train[subset], y_train[subset]
    arrays = [x_train, y_train, x_val, y_val, x_test, y_test]
    return Dataset(name, list(manifest.class_names), folder_source(root, name), _fingerprint(arrays), *arrays,
                   split_sources=manifest.split_sources, title=manifest.title)


def check_trainable(root, name, validation_fraction=0.1):
    """Refuse an imported dataset too small to split into training, validation and test photos (others pass).

    Reads only the manifest, so the CLI and the Train page refuse before TensorFlow is loaded or a job queued.
    """
    if not name.startswith(FOLDER_PREFIX):
        return
    manifest = read_manifest(root, name)
    check_enough_images(manifest.splits, manifest.labels, list(manifest.class_names), validation_fraction,
                        manifest.title)


def split_table(root, name, validation_fraction=0.1) -> dict[str, dict[str, int]]:
    """Images per split and class of an imported dataset, carved splits included, without decoding a photo."""
    manifest = read_manifest(root, name)
    labels = np.array(manifest.labels, np.int64)
    indices = split_indices(manifest.splits, labels, validation_fraction)
    return {split: {class_name: int(np.sum(labels[index] == number)) for number, class_name in
                    enumerate(manifest.class_names)} for split, index in zip(SPLITS, indices)}
