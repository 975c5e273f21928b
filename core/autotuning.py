"""tf.data's autotuning turned off for this project's input pipelines: a finished pipeline no longer stalls training.

tf.data tunes a pipeline from a background thread that wakes every 10 ms at first, then ever less often, up to every
10 s. When a pipeline is finished (each epoch's training batches, each validation pass, each `predict`), TensorFlow
cancels that thread and waits for it to end. On a busy machine the thread can miss the cancellation (TensorFlow marks
a cancellation done only after it has woken the waiting threads, and a thread woken in between goes back to sleep)
and sleep out its whole period first: training sat idle for up to 10 s, with both cores free, at the end of about one
quick-CNN training in three (bench/autotuning.py reproduces it; docs/performance.md). This project's pipelines are
simple (slices of arrays in memory or of a memory map, then a map), and they run as fast untuned, so tuning is off:
`untuned()` for the pipelines `core.training` builds, `turn_off_for_keras_arrays()` for the batches Keras makes of
numpy arrays in `fit`, `evaluate` and `predict` (the same batches in the same order; only the tuning thread is gone).
"""

import tensorflow as tf

try:
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter
except ImportError:  # a Keras that moved its array batches: they stay tuned (tests/test_autotuning.py says so)
    ArrayDataAdapter = None

_KERAS_BATCHES = ArrayDataAdapter.get_tf_dataset if ArrayDataAdapter else None


def untuned(pipeline: tf.data.Dataset) -> tf.data.Dataset:
    """`pipeline` with tf.data's autotuning thread turned off: `tf.data.AUTOTUNE` then means a fixed number of
    parallel calls, one per core up to 16, and a prefetch buffer that grows on its own."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return pipeline.with_options(options)


def turn_off_for_keras_arrays(off: bool = True) -> None:
    """Make the batches Keras reads from numpy arrays untuned (idempotent); with `off=False`, tuned again, as
    Keras makes them (bench/autotuning.py compares the two)."""
    if ArrayDataAdapter is not None:
        ArrayDataAdapter.get_tf_dataset = _untuned_keras_batches if off else _KERAS_BATCHES


def is_off_for_keras_arrays() -> bool:
    """True once `turn_off_for_keras_arrays()` has run in this process."""
    return ArrayDataAdapter is not None and ArrayDataAdapter.get_tf_dataset is _untuned_keras_batches


def _untuned_keras_batches(self) -> tf.data.Dataset:
    """ArrayDataAdapter.get_tf_dataset: Keras's own pipeline, untuned."""
    return untuned(_KERAS_BATCHES(self))
