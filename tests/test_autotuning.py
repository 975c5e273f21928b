"""tf.data's autotuning is off for every pipeline training reads, and the batches stay Keras's own."""

import dataclasses
import importlib

import keras
import numpy as np
from keras.src.backend.tensorflow.trainer import TFEpochIterator
from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

from core import autotuning, pipelines, training  # noqa: F401 (core.training turns tuning off when imported)
from core.config import Augmentation, TrainConfig


def keras_batches(images, labels, seed):
    """Every (images, labels) batch of one shuffled epoch as Keras makes them of numpy arrays."""
    keras.utils.set_random_seed(seed)
    pipeline = ArrayDataAdapter(images, labels, batch_size=8, shuffle=True).get_tf_dataset()
    return pipeline, [(x.numpy(), y.numpy()) for x, y in pipeline]


def test_keras_batches_of_arrays_are_untuned_and_the_same_batches_as_keras_makes():
    assert not autotuning.keras_arrays_are_tuned()  # core.training turned tuning off when imported
    images = np.random.default_rng(0).random((50, 6, 6, 1), dtype=np.float32)
    labels = np.arange(50) % 3
    untuned, untuned_batches = keras_batches(images, labels, seed=4)
    autotuning.set_keras_arrays_tuned(True)
    try:
        assert autotuning.keras_arrays_are_tuned()
        tuned, tuned_batches = keras_batches(images, labels, seed=4)
    finally:
        autotuning.set_keras_arrays_tuned(False)
    assert not autotuning.keras_arrays_are_tuned()
    assert untuned.options().autotune.enabled is False
    assert tuned.options().autotune.enabled is not False
    assert len(untuned_batches) == len(tuned_batches) == 7
    for (x_untuned, y_untuned), (x_tuned, y_tuned) in zip(untuned_batches, tuned_batches):
        np.testing.assert_array_equal(x_untuned, x_tuned)
        np.testing.assert_array_equal(y_untuned, y_tuned)
    assert not np.array_equal(np.concatenate([y for _, y in untuned_batches]), labels)  # shuffled


def test_a_reloaded_module_still_finds_keras_own_batches():
    """Streamlit's file watcher can reload a module: the reloaded one must still be able to turn tuning back on."""
    reloaded = importlib.reload(autotuning)
    tuned_before = reloaded.keras_arrays_are_tuned()
    try:
        reloaded.set_keras_arrays_tuned(True)
        assert reloaded.keras_arrays_are_tuned()
        pipeline, _ = keras_batches(np.zeros((8, 2), np.float32), np.zeros(8), seed=0)
        assert pipeline.options().autotune.enabled is not False
        reloaded.set_keras_arrays_tuned(False)
        assert not reloaded.keras_arrays_are_tuned()
    finally:
        reloaded.set_keras_arrays_tuned(tuned_before)
    assert not tuned_before  # core.training had turned tuning off before the reload


def test_fit_evaluate_and_predict_iterate_untuned_pipelines(monkeypatch):
    """A real fit with validation, then evaluate and predict: every pipeline Keras iterates is untuned."""
    iterated = []
    keras_init = TFEpochIterator.__init__

    def recording(self, *arguments, **keywords):
        keras_init(self, *arguments, **keywords)
        iterated.append(self._distributed_dataset)

    monkeypatch.setattr(TFEpochIterator, "__init__", recording)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = np.random.default_rng(1).random((40, 4), dtype=np.float32), np.arange(40) % 2
    model.fit(x, y, batch_size=8, epochs=2, validation_data=(x[:16], y[:16]), verbose=0)
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    assert len(iterated) >= 4  # training batches, validation batches, evaluation batches, prediction batches
    assert [pipeline.options().autotune.enabled for pipeline in iterated] == [False] * len(iterated)


def test_the_pipelines_training_builds_are_untuned(tmp_path):
    images = np.lib.format.open_memmap(tmp_path / "images.npy", mode="w+", dtype=np.uint8, shape=(20, 8, 8, 1))
    labels = np.arange(20) % 2
    dataset = dataclasses.make_dataclass("Dataset", ["x_train", "y_train", "x_val", "y_val"])(
        images, labels, images[:6], labels[:6])
    config = TrainConfig(batch_size=4)
    assert pipelines.is_memory_mapped(images)
    assert pipelines.training_data(dataset, config).options().autotune.enabled is False
    assert pipelines.validation_data(dataset, config).options().autotune.enabled is False
    in_memory = dataclasses.replace(dataset, x_train=np.array(images))
    augmented = dataclasses.replace(config, augmentation=Augmentation(horizontal_flip=True))
    assert pipelines.training_data(in_memory, augmented).options().autotune.enabled is False
    assert len(list(pipelines.training_data(dataset, config))) == 5
