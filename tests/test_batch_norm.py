"""Batch norm on TensorFlow's fused kernel: the same arithmetic as Keras's own layer, and standard model files."""

import json
import zipfile

import numpy as np
import tensorflow as tf
from tensorflow import keras

import core.training
from core import batch_norm
from core.config import PRESETS
from core.models import build_model


def fresh_layer(shape, seed=0):
    """A built BatchNormalization with gamma and beta away from 1 and 0, so that both show in the gradients."""
    layer = keras.layers.BatchNormalization(momentum=0.9)
    layer.build(shape)
    generator = np.random.default_rng(seed)
    layer.gamma.assign(generator.uniform(0.5, 1.5, shape[-1]).astype("float32"))
    layer.beta.assign(generator.normal(size=shape[-1]).astype("float32"))
    return layer


def training_step(call, images, weights):
    """One training call of a fresh layer through `call`: outputs, gradients and the moving statistics after it."""
    layer = fresh_layer(images.shape)
    inputs = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = call(layer, inputs, training=True)
        loss = tf.reduce_sum(outputs * weights)
    gradients = tape.gradient(loss, [inputs, layer.gamma, layer.beta])
    return [outputs, *gradients, layer.moving_mean, layer.moving_variance]


def operation_types(layer, images, in_training: bool) -> set[str]:
    """The kinds of TensorFlow operation a call of `layer` on `images` runs."""
    traced = tf.function(lambda inputs: layer(inputs, training=in_training)).get_concrete_function(tf.constant(images))
    return {operation.type for operation in traced.graph.get_operations()}


def test_importing_training_installs_the_fused_kernel():
    assert core.training.batch_norm.uses_fused_kernel()


def test_the_fused_kernel_can_be_switched_off_and_on_again():
    images = np.random.default_rng(4).normal(size=(4, 5, 5, 3)).astype("float32")
    batch_norm.use_fused_kernel(False)
    try:
        assert not batch_norm.uses_fused_kernel()
        assert "FusedBatchNormV3" not in operation_types(fresh_layer(images.shape), images, in_training=True)
    finally:
        batch_norm.use_fused_kernel()
    assert batch_norm.uses_fused_kernel()
    assert "FusedBatchNormV3" in operation_types(fresh_layer(images.shape), images, in_training=True)


def test_fused_training_step_equals_keras_own_arithmetic():
    generator = np.random.default_rng(1)
    images = (generator.normal(size=(16, 9, 9, 6)) * 3 + 2).astype("float32")  # far from mean 0, variance 1
    weights = tf.constant(generator.normal(size=images.shape).astype("float32"))

    fused = training_step(batch_norm._call, images, weights)
    keras_own = training_step(batch_norm._KERAS_CALL, images, weights)

    names = ["outputs", "input gradient", "gamma gradient", "beta gradient", "moving mean", "moving variance"]
    for name, ours, theirs in zip(names, fused, keras_own):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-4, atol=1e-4, err_msg=name)
    # The moving variance moved from 1 towards the batch's (uncorrected) variance, as Keras's does.
    assert not np.allclose(np.asarray(fused[-1]), 1.0)


def test_only_an_image_batch_in_training_takes_the_fused_kernel():
    images = np.random.default_rng(2).normal(size=(4, 5, 5, 3)).astype("float32")
    assert "FusedBatchNormV3" in operation_types(fresh_layer(images.shape), images, in_training=True)
    assert "FusedBatchNormV3" not in operation_types(fresh_layer(images.shape), images, in_training=False)
    rows = images.reshape(4, -1)
    assert "FusedBatchNormV3" not in operation_types(fresh_layer(rows.shape), rows, in_training=True)


def test_a_batch_norm_model_is_saved_with_keras_standard_layer(tmp_path):
    """A downloaded .keras file must load in plain Keras, without this project's code."""
    config = PRESETS["fast CNN"]
    model = build_model(config, (28, 28, 1), 10)
    path = tmp_path / "model.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        saved = json.loads(archive.read("config.json"))
    layers = [layer for layer in saved["config"]["layers"] if layer["class_name"] == "BatchNormalization"]
    assert len(layers) == len(config.filters)
    assert {(layer["module"], layer["registered_name"]) for layer in layers} == {("keras.layers", None)}


def test_a_batch_norm_cnn_trains_each_block_on_the_fused_kernel():
    config = PRESETS["quick CNN"]
    model = build_model(config, (28, 28, 1), 10)
    images = np.random.default_rng(3).integers(0, 256, size=(8, 28, 28, 1)).astype("float32")
    traced = tf.function(lambda inputs: model(inputs, training=True)).get_concrete_function(tf.constant(images))
    fused = [operation for operation in traced.graph.get_operations() if operation.type == "FusedBatchNormV3"]
    assert len(fused) == len(config.filters)
