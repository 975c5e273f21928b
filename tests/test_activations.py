"""core.activations: every family's layers read after their nonlinearity, each saying which tensor it is."""

import keras
import numpy as np
import pytest
from helpers_fmnist import load_fashion_mnist

from core.activations import first_dense_weights, initial_weight_range, layer_activations
from core.models import build_cnn, build_dnn, build_transfer


@pytest.fixture(scope="module")
def image():
    return load_fashion_mnist("test", 1)[0][0]


def test_batch_norm_blocks_are_shown_after_batch_norm_and_relu_not_straight_out_of_conv(image):
    keras.utils.set_random_seed(0)
    model = build_cnn((28, 28, 1), 10, filters=(8, 16), padding="same", batch_norm=True, hidden_units=(32,))
    activations = layer_activations(model, image)
    assert [a.name for a in activations] == ["relu_1", "pool_1", "relu_2", "pool_2", "dense_1"]
    assert activations[0].tensor == ("the output of conv_1 (Conv2D) → batch_norm_1 (BatchNormalization) → relu_1 (relu): "
                                     "after relu")
    assert "still after relu" in activations[1].tensor
    assert all(a.values.min() >= 0 and a.nonlinearity == "relu" for a in activations)
    straight_out_of_conv = keras.Model(model.input, model.get_layer("conv_1").output)(image[np.newaxis].astype("float32"))
    assert np.asarray(straight_out_of_conv).min() < 0  # what the page used to show: negative, before batch norm and ReLU
    expected = np.maximum(np.asarray(keras.Model(model.input, model.get_layer("batch_norm_1").output)(
        image[np.newaxis].astype("float32")))[0], 0)
    np.testing.assert_allclose(activations[0].values, expected, rtol=1e-5, atol=1e-6)


def test_dense_networks_show_their_hidden_units_after_relu(image):
    model = build_dnn((28, 28, 1), 10, hidden_units=(64, 32), activation="tanh")
    activations = layer_activations(model, image)
    assert [(a.name, a.values.shape, a.nonlinearity) for a in activations] == [("dense_1", (64,), "tanh"),
                                                                               ("dense_2", (32,), "tanh")]
    assert all(np.abs(a.values).max() <= 1 for a in activations)
    assert first_dense_weights(model).shape == (28, 28, 1, 64)
    limit, fan_in, fan_out = initial_weight_range(model.get_layer("dense_1"))
    assert (fan_in, fan_out) == (784, 64) and limit == pytest.approx(np.sqrt(6 / (784 + 64)))


def test_a_transfer_model_shows_the_layers_inside_its_registry_base(image):
    keras.utils.set_random_seed(1)
    trained = build_cnn((28, 28, 1), 10, filters=(4, 8), hidden_units=(16,))
    model = build_transfer((28, 28, 1), 3, base_model="registry:0123456789abcdef", fine_tune_layers=0,
                           hidden_units=(16,), base_loader=lambda key: trained)
    activations = layer_activations(model, image)
    assert [a.name for a in activations] == ["conv_1", "pool_1", "conv_2", "pool_2", "dense_1"]
    assert activations[0].tensor.startswith("inside the pretrained base: the output of conv_1 (Conv2D), after the relu")
    reference = {a.name: a.values for a in layer_activations(trained, image)}
    for activation in activations[:4]:  # the base is a copy of the trained CNN's layers: the same maps
        np.testing.assert_allclose(activation.values, reference[activation.name], rtol=1e-5, atol=1e-6)
    limit, fan_in, fan_out = initial_weight_range(trained.get_layer("conv_1"))
    assert (fan_in, fan_out) == (9, 36)
