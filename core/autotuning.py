"""tf.data's autotuning turned off for this project's input pipelines: a finished pipeline no longer stalls training.

tf.data tunes a pipeline from a background thread that wakes every 10 ms at first, then ever less often: its period
doubles, so it is about as long as the pipeline has run, up to a minute. When a pipeline is finished (each epoch's
training batches, each validation pass, each `predict`), TensorFlow cancels that thread and waits for it to end. On a
busy machine the thread can miss the cancellation (TensorFlow marks a cancellation done only after it has woken the
waiting threads, and a thread woken in between goes back to sleep) and sleep out its whole period first: training
sat idle, with both cores free, for 9.5 s at the end of some quick-CNN trainings (1 to 2 runs in 5 in the benches;
bench/autotuning.py reproduces it; docs/performance.md). This project's pipelines are simple (slices of arrays in
memory or of a memory map, then a map), and they run as fast untuned, so tuning is off: `untuned()` for the pipelines
`core.pipelines` builds, `set_keras_arrays_tuned(False)` for the batches Keras makes of numpy arrays in `fit`,
`evaluate` and `predict` (the same batches in the same order; only the tuning thread is gone).
"""

from core.backend import tf

try:
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter
except ImportError:  # a Keras that moved its array batches: they stay tuned (and tests/test_autotuning.py errors)
    ArrayDataAdapter = None

_KERAS_BATCHES = getattr(ArrayDataAdapter, "get_tf_dataset", None)
# Keras's own method, even when a reload of this module (Streamlit's file watcher) finds it already replaced.
_KERAS_BATCHES = getattr(_KERAS_BATCHES, "__wrapped__", _KERAS_BATCHES)


def untuned(pipeline: tf.data.Dataset) -> tf.data.Dataset:
    """`pipeline` with tf.data's autotuning thread turned off: `tf.data.AUTOTUNE` then means a fixed number of
    parallel calls, one per core up to 16, and a prefetch buffer that grows on its own."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return pipeline.with_options(options)


def set_keras_arrays_tuned(tuned: bool) -> None:
    """Make the batches Keras reads from numpy arrays tuned, as Keras makes them, or untuned (`core.training` sets
    False when imported; bench/autotuning.py compares the two). Idempotent."""
    if _KERAS_BATCHES is not None:
        ArrayDataAdapter.get_tf_dataset = _KERAS_BATCHES if tuned else _untuned_keras_batches


def keras_arrays_are_tuned() -> bool:
    """Whether the batches Keras reads from numpy arrays are tuned at the moment (Keras's default)."""
    method = getattr(ArrayDataAdapter, "get_tf_dataset", None)
    return _KERAS_BATCHES is None or getattr(method, "__wrapped__", None) is not _KERAS_BATCHES


def _untuned_keras_batches(self) -> tf.data.Dataset:
    """ArrayDataAdapter.get_tf_dataset: Keras's own pipeline, untuned."""
    return untuned(_KERAS_BATCHES(self))


_untuned_keras_batches.__wrapped__ = _KERAS_BATCHES  # how a reloaded module finds Keras's own method
