"""The batches training reads: arrays in memory as they are; a memory map, or augmented batches, through tf.data.

Every pipeline built here is untuned (core.autotuning): tf.data's tuning thread could hold a finished epoch for seconds.
"""

import mmap

import numpy as np

from core.backend import tf  # first: core.backend says why
from core import autotuning
from core.augment import build_augmenter
from core.config import TrainConfig


def streams_from_disk(dataset, config: TrainConfig) -> bool:
    """Whether training reads batches through tf.data: with augmentation, and always for an imported dataset.

    An imported dataset's arrays are memory maps of its decoded photos; `model.fit` given the arrays would
    copy them whole into TensorFlow, so batches are read from the map instead, a few at a time.
    """
    return config.augmentation.is_active or is_memory_mapped(dataset.x_train)


def training_data(dataset, config: TrainConfig):
    """Plain arrays for data in memory without augmentation (fastest); else a tf.data pipeline of shuffled batches,
    augmented when the config asks."""
    if not streams_from_disk(dataset, config):
        return dataset.x_train
    pipeline = batches(dataset.x_train, dataset.y_train, config.batch_size, shuffle_seed=config.seed)
    if config.augmentation.is_active:
        augmenter = build_augmenter(config.augmentation, seed=config.seed)
        # One batch at a time: the layers draw from one random state, so batches augmented in parallel took their
        # draws in whatever order the threads ran, and one seed trained different models. Prefetch still overlaps
        # the augmentation with training.
        pipeline = pipeline.map(lambda images, labels: (augmenter(tf.cast(images, "float32"), training=True), labels))
    return pipeline.prefetch(tf.data.AUTOTUNE)


def validation_data(dataset, config: TrainConfig):
    """The validation split as arrays, or as batches read from the memory map of an imported dataset."""
    if not is_memory_mapped(dataset.x_val):
        return dataset.x_val, dataset.y_val
    return batches(dataset.x_val, dataset.y_val, config.batch_size).prefetch(tf.data.AUTOTUNE)


def batches(images, labels, batch_size, shuffle_seed=None):
    """A tf.data pipeline of (images, labels) batches read from `images` by index: no copy of the whole array.

    Arrays in memory are sliced by TensorFlow itself; a memory map is read by numpy, one batch of sorted
    indices at a time, so only the pages of that batch are touched. The pipeline is untuned (core.autotuning).
    """
    count, shape = len(images), images.shape[1:]
    if not is_memory_mapped(images):
        pipeline = tf.data.Dataset.from_tensor_slices((images, labels))
        if shuffle_seed is not None:
            pipeline = pipeline.shuffle(count, seed=shuffle_seed, reshuffle_each_iteration=True)
        return autotuning.untuned(pipeline.batch(batch_size))
    labels = np.asarray(labels)

    def read(indices):
        indices = np.sort(indices)
        return np.asarray(images[indices]), labels[indices]

    pipeline = tf.data.Dataset.range(count)
    if shuffle_seed is not None:
        pipeline = pipeline.shuffle(count, seed=shuffle_seed, reshuffle_each_iteration=True)
    pipeline = pipeline.batch(batch_size).map(
        lambda indices: tf.numpy_function(read, [indices], (tf.uint8, tf.int64), stateful=False),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return autotuning.untuned(
        pipeline.map(lambda x, y: (tf.ensure_shape(x, (None, *shape)), tf.ensure_shape(y, (None,)))))


def is_memory_mapped(array) -> bool:
    """Whether `array` (or the array it is a view of) is backed by a file rather than by memory."""
    while isinstance(array, np.ndarray):
        if isinstance(array, np.memmap) and getattr(array, "_mmap", None) is not None:
            return True
        array = array.base
    return isinstance(array, mmap.mmap)
