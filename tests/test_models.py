"""Model factories, transfer learning (registry and ImageNet bases), lint warnings and parameter counts."""

import gzip
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from tensorflow import keras
from tensorflow.keras import layers

from core import models, pretrained
from core.config import PRESETS, TrainConfig
from core.errors import ConfigError
from core.lint import lint, lint_model
from core.models import build_cnn, build_dnn, build_model, build_transfer, count_params, head, summary_rows
from core.pretrained import PretrainedWeightsUnavailable
from core.shapes import feature_map_sizes

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
BASE_KEY = "0123456789abcdef"


def fashion_mnist(count, offset=0):
    """The first `offset + count` Fashion-MNIST training images (28, 28, 1) uint8 and labels, read from the Debian files."""
    images_path = FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz"
    if not images_path.is_file():
        pytest.skip("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist")
    total = offset + count
    with gzip.open(images_path) as file:
        images = np.frombuffer(file.read(16 + total * 784)[16:], np.uint8).reshape(total, 28, 28, 1)
    with gzip.open(FASHION_MNIST_DIR / "train-labels-idx1-ubyte.gz") as file:
        labels = np.frombuffer(file.read(8 + total)[8:], np.uint8).astype(np.int64)
    return images[offset:], labels[offset:]


def rows_by_name(model):
    return {row["layer"]: row for row in summary_rows(model)}


@pytest.fixture(scope="module")
def trained_small_cnn():
    """A small CNN (8 and 16 filters) fitted for three epochs on 1024 real Fashion-MNIST images."""
    keras.utils.set_random_seed(0)
    images, labels = fashion_mnist(1024)
    model = build_cnn((28, 28, 1), 10, filters=(8, 16), hidden_units=(32,))
    model.compile(optimizer="adam", loss=head(10)[2], metrics=["accuracy"])
    model.fit(images, labels, epochs=3, batch_size=32, verbose=0)
    return model


# ----- Heads and the classic networks ----------------------------------------------------------


def test_head_matches_the_task():
    assert head(2) == (1, "sigmoid", "binary_crossentropy")
    assert head(10) == (10, "softmax", "sparse_categorical_crossentropy")
    with pytest.raises(ConfigError, match=r"at least 2 classes.*num_classes=1"):
        head(1)


def test_classic_cnn_has_the_course_shapes_and_parameter_counts():
    model = build_model(PRESETS["classic CNN"], (28, 28, 1), 10)
    rows = rows_by_name(model)

    assert [row["layer"] for row in summary_rows(model)][:2] == ["image", "rescale"]
    assert rows["rescale"]["type"] == "Rescaling"
    expected = {
        "conv_1": ((26, 26, 32), 320),
        "pool_1": ((13, 13, 32), 0),
        "conv_2": ((11, 11, 64), 18_496),
        "pool_2": ((5, 5, 64), 0),
        "flatten": ((1600,), 0),
        "dense_1": ((128,), 204_928),
        "head": ((10,), 1_290),
    }
    for name, (shape, params) in expected.items():
        assert (rows[name]["output_shape"], rows[name]["params"]) == (shape, params), name
    assert model.get_layer("head").get_config()["activation"] == "softmax"
    assert count_params(model) == {"total": 225_034, "trainable": 225_034, "non_trainable": 0}
    assert count_params(model)["total"] == model.count_params()
    assert not model.compiled  # training chooses the optimizer and loss


def test_feature_map_sizes_tell_the_shape_story():
    assert feature_map_sizes((28, 28, 1), 2) == [(28, 28), (26, 26), (13, 13), (11, 11), (5, 5)]
    assert feature_map_sizes((28, 28, 1), 2, padding="same") == [(28, 28), (28, 28), (14, 14), (14, 14), (7, 7)]
    assert feature_map_sizes((64, 32, 3), 1, kernel_size=5, conv_strides=2) == [(64, 32), (30, 14), (15, 7)]


def test_classic_dnn_flattens_the_raw_image():
    model = build_model(PRESETS["classic DNN"], (28, 28, 1), 10)
    rows = rows_by_name(model)
    assert rows["flatten"]["output_shape"] == (784,)
    assert rows["dense_1"]["params"] == 784 * 128 + 128
    assert rows["head"]["params"] == 1_290
    assert model.layers[1].name == "rescale"


def test_two_classes_get_one_sigmoid_unit():
    model = build_dnn((32, 32, 3), 2, hidden_units=(16,))
    config = model.get_layer("head").get_config()
    assert (config["units"], config["activation"]) == (1, "sigmoid")


def test_cnn_options_batch_norm_dropout_and_same_padding():
    config = TrainConfig(family="cnn", filters=(8, 16), hidden_units=(32, 16), padding="same", batch_norm=True, dropout_rate=0.25)
    model = build_model(config, (28, 28, 1), 10)
    names = [layer.name for layer in model.layers]
    assert {"batch_norm_1", "relu_1", "batch_norm_2", "dropout_1", "dropout_2"} <= set(names)
    assert rows_by_name(model)["pool_2"]["output_shape"] == (7, 7, 16)
    assert model.get_layer("conv_1").get_config()["use_bias"] is False
    # BatchNorm's moving mean and variance are statistics, not trained weights: 2 per filter.
    assert count_params(model)["non_trainable"] == 2 * (8 + 16)


def test_cnn_that_shrinks_below_one_pixel_is_refused():
    config = TrainConfig(family="cnn", filters=(8, 8, 8, 8, 8))
    with pytest.raises(ConfigError, match=r"Convolution block 4 .*28 -> 26 -> 13 -> 11 -> 5 -> 3 -> 1 -> 0.*at most 3 blocks"):
        build_model(config, (28, 28, 1), 10)


def test_bad_input_shape_is_a_config_error():
    with pytest.raises(ConfigError, match=r"\(height, width, channels\).*input_shape=\(28, 28\)"):
        build_dnn((28, 28), 10)


def test_cnn_learns_from_raw_uint8_pixels(trained_small_cnn):
    images, labels = fashion_mnist(512, offset=1024)
    assert images.dtype == np.uint8
    _, accuracy = trained_small_cnn.evaluate(images, labels, verbose=0)
    assert accuracy > 0.5  # 10 classes: chance is 0.1


# ----- Transfer from a registry CNN ------------------------------------------------------------


def registry_transfer(trained_model, input_shape=(28, 28, 1), num_classes=10, **changes):
    config = TrainConfig(family="transfer", base_model=f"registry:{BASE_KEY}", hidden_units=(16,), **changes)
    loaded_keys = []

    def base_loader(key):
        loaded_keys.append(key)
        return trained_model

    model = build_model(config, input_shape, num_classes, base_loader=base_loader)
    assert loaded_keys == [BASE_KEY]
    return model


def test_frozen_registry_base_trains_only_the_new_head(trained_small_cnn):
    model = registry_transfer(trained_small_cnn)
    base = model.get_layer(f"base_{BASE_KEY}")
    conv_params = 80 + 1_168  # conv_1: 3*3*1*8 + 8, conv_2: 3*3*8*16 + 16
    head_params = (5 * 5 * 16) * 16 + 16 + 16 * 10 + 10
    assert count_params(model) == {"total": conv_params + head_params, "trainable": head_params, "non_trainable": conv_params}
    assert [layer.name for layer in base.layers][-1] == "pool_2"

    # The base is a copy holding the trained weights: same features, and the original stays untouched.
    images, labels = fashion_mnist(64, offset=2048)
    original_features = keras.Model(trained_small_cnn.inputs, trained_small_cnn.get_layer("pool_2").output)
    np.testing.assert_allclose(base.predict(images, verbose=0), original_features.predict(images, verbose=0), atol=1e-5)
    original_weights = [weight.copy() for weight in trained_small_cnn.get_weights()]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(images, labels, epochs=1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(original_weights, trained_small_cnn.get_weights()))
    assert all(layer.trainable for layer in trained_small_cnn.layers)


def test_fine_tune_one_layer_unfreezes_the_last_convolution(trained_small_cnn):
    model = registry_transfer(trained_small_cnn, fine_tune_layers=1)
    base = model.get_layer(f"base_{BASE_KEY}")
    assert base.get_layer("conv_2").trainable and not base.get_layer("conv_1").trainable
    head_params = (5 * 5 * 16) * 16 + 16 + 16 * 10 + 10
    assert count_params(model)["trainable"] == head_params + 1_168
    assert rows_by_name(model)[f"base_{BASE_KEY}"]["trainable_params"] == 1_168


def test_registry_base_adapts_colour_images_of_another_size(trained_small_cnn):
    model = registry_transfer(trained_small_cnn, input_shape=(40, 40, 3), num_classes=2)
    rows = rows_by_name(model)
    assert rows["rgb_to_gray"]["output_shape"] == (40, 40, 1)
    assert rows["resize"]["output_shape"] == (28, 28, 1)
    assert rows["head"]["output_shape"] == (1,)
    images = np.full((2, 40, 40, 3), 200, np.uint8)
    predictions = model.predict(images, verbose=0)
    assert predictions.shape == (2, 1) and np.all((predictions >= 0) & (predictions <= 1))


def test_transfer_model_reloads_in_safe_mode(trained_small_cnn, tmp_path):
    model = registry_transfer(trained_small_cnn, input_shape=(40, 40, 3), fine_tune_layers=1)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", safe_mode=True)
    images = np.random.default_rng(0).integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)
    assert count_params(loaded) == count_params(model)


def test_registry_base_must_be_a_cnn_and_needs_a_loader():
    dnn = build_dnn((28, 28, 1), 10)
    config = TrainConfig(family="transfer", base_model=f"registry:{BASE_KEY}")
    with pytest.raises(ConfigError, match=r"must be a CNN.*registry:0123456789abcdef"):
        build_model(config, (28, 28, 1), 10, base_loader=lambda key: dnn)
    with pytest.raises(ConfigError, match=r"needs a base_loader.*base_loader=None"):
        build_model(config, (28, 28, 1), 10)
    with pytest.raises(ConfigError, match="16 lowercase hexadecimal digits"):
        build_transfer((28, 28, 1), 10, base_model="registry:../../etc", base_loader=lambda key: dnn)


# ----- Transfer from ImageNet bases ------------------------------------------------------------


MOBILENET_96_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5"


def save_mobilenet_weights(path):
    """A MobileNetV2 (96x96, no top) weights file in the legacy .h5 format that Keras downloads."""
    base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(96, 96, 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    base.save(path)  # a .h5 path selects the legacy HDF5 format, like the published weights files
    return base


@pytest.fixture
def empty_keras_home(tmp_path, monkeypatch):
    """A fresh HOME and KERAS_HOME: no cached weights."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / ".keras"))
    (tmp_path / ".keras").mkdir()
    return tmp_path / ".keras"


def test_imagenet_weights_offline_fail_fast_with_instructions(empty_keras_home, monkeypatch):
    """Offline as on the machines this was built on; on one that is online, its resolver is made to answer as an
    offline one does (it skipped there, which CI's no-skips rule turned into a failure)."""
    try:
        socket.create_connection(("storage.googleapis.com", 443), timeout=3).close()
        monkeypatch.setattr(socket, "getaddrinfo", offline_resolver)
    except OSError:
        pass
    started = time.perf_counter()
    with pytest.raises(PretrainedWeightsUnavailable) as raised:
        build_transfer((28, 28, 1), 10, base_model="mobilenet_v2")
    assert time.perf_counter() - started < 15
    message = str(raised.value)
    assert MOBILENET_96_FILE in message
    assert str(empty_keras_home / "models") in message
    assert "~/.keras/models/" in message and "internet" in message
    assert "base_model='registry:<key>'" in message
    assert "Received: base_model='mobilenet_v2', error=" in message  # the command line keeps why the download failed


def offline_resolver(host, *arguments, **options):
    """socket.getaddrinfo on a machine without a network: every name fails to resolve."""
    raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")


def test_refused_download_is_reported(empty_keras_home, monkeypatch):
    monkeypatch.setattr(pretrained, "KERAS_WEIGHTS_URL", "http://127.0.0.1:9/")  # the discard port: refused
    with pytest.raises(PretrainedWeightsUnavailable, match=r"VGG16.*vgg16_weights_tf_dim_ordering_tf_kernels_notop\.h5"):
        build_transfer((28, 28, 3), 10, base_model="vgg16")


def test_stalled_download_times_out(empty_keras_home, monkeypatch):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)  # accepts the connection in the kernel but never answers
    try:
        monkeypatch.setattr(pretrained, "KERAS_WEIGHTS_URL", f"http://127.0.0.1:{server.getsockname()[1]}/")
        monkeypatch.setattr(pretrained, "DOWNLOAD_TIMEOUT_SECONDS", 1)
        started = time.perf_counter()
        with pytest.raises(PretrainedWeightsUnavailable, match="InceptionV3"):
            build_transfer((28, 28, 1), 10, base_model="inception_v3")
        assert time.perf_counter() - started < 10
    finally:
        server.close()


def test_cached_imagenet_weights_are_used_without_download(empty_keras_home, monkeypatch):
    monkeypatch.setattr(pretrained, "KERAS_WEIGHTS_URL", "http://127.0.0.1:9/")  # any download attempt would fail
    saved = save_mobilenet_weights(empty_keras_home / "models" / MOBILENET_96_FILE)

    model = build_transfer((28, 28, 1), 10, base_model="mobilenet_v2", hidden_units=(32,))
    base = model.get_layer(saved.name)
    assert all(np.array_equal(a, b) for a, b in zip(saved.get_weights(), base.get_weights()))
    rows = rows_by_name(model)
    assert rows["gray_to_rgb"]["output_shape"] == (28, 28, 3)
    assert rows["resize"]["output_shape"] == (96, 96, 3)
    assert count_params(model)["trainable"] == 1280 * 32 + 32 + 32 * 10 + 10
    assert model.predict(np.zeros((1, 28, 28, 1), np.uint8), verbose=0).shape == (1, 10)


def test_weights_are_fetched_from_a_reachable_source(empty_keras_home, tmp_path, monkeypatch):
    source = tmp_path / "mirror"
    save_mobilenet_weights(source / "mobilenet_v2" / MOBILENET_96_FILE)
    monkeypatch.setattr(pretrained, "KERAS_WEIGHTS_URL", source.as_uri() + "/")

    model = build_transfer((28, 28, 1), 2, base_model="mobilenet_v2", fine_tune_layers=2, weights="imagenet")
    assert (empty_keras_home / "models" / MOBILENET_96_FILE).is_file()
    assert count_params(model)["trainable"] > 1280 * 128 + 128 + 129  # the top two base layers train too


def test_vgg16_preprocessing_matches_keras():
    images = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)).astype("float32")
    inputs = keras.Input((8, 8, 3))
    preprocess = keras.Model(inputs, models._imagenet_preprocessing(inputs, "vgg16"))
    expected = keras.applications.vgg16.preprocess_input(images.copy())
    np.testing.assert_allclose(preprocess.predict(images, verbose=0), expected, atol=1e-3)


def test_application_image_sizes():
    assert pretrained.application_image_size("mobilenet_v2", (28, 28, 1)) == (96, 96)
    assert pretrained.application_image_size("mobilenet_v2", (150, 100, 3)) == (160, 160)
    assert pretrained.application_image_size("vgg16", (28, 28, 1)) == (32, 32)
    assert pretrained.application_image_size("inception_v3", (299, 299, 3)) == (299, 299)


# ----- Warnings ----------------------------------------------------------------------------------


def hand_built(output_units, output_activation, input_shape=(28, 28, 1), rescale=True):
    """A model as a student might write it by hand."""
    inputs = keras.Input(input_shape)
    x = layers.Rescaling(1 / 255)(inputs) if rescale else inputs
    x = layers.Flatten()(layers.Conv2D(4, 3, activation="relu")(x))
    return keras.Model(inputs, layers.Dense(output_units, activation=output_activation)(x))


@pytest.mark.parametrize("name", list(PRESETS))
def test_classic_configs_have_no_warnings(name):
    assert lint(PRESETS[name], (28, 28, 1), 10) == []


def test_well_built_hand_model_has_no_warnings():
    assert lint_model(hand_built(10, "softmax"), 10, "sparse_categorical_crossentropy", (28, 28, 1)) == []
    assert lint_model(hand_built(1, "sigmoid"), 2, keras.losses.BinaryCrossentropy(), (28, 28, 1)) == []


def test_lint_softmax_with_one_unit():
    (warning,) = lint_model(hand_built(1, "softmax"), 2, "binary_crossentropy")
    assert "Dense(1, activation='softmax')" in warning and "always outputs 1.0" in warning
    assert "Dense(1, activation='sigmoid')" in warning


def test_lint_binary_crossentropy_with_many_classes():
    for loss in ("binary_crossentropy", keras.losses.BinaryCrossentropy()):
        (warning,) = lint_model(hand_built(10, "softmax"), 10, loss)
        assert "two classes" in warning and "10 classes" in warning
        assert "loss='sparse_categorical_crossentropy'" in warning


def test_lint_input_shape_mismatch():
    (warning,) = lint_model(hand_built(10, "softmax"), 10, "sparse_categorical_crossentropy", input_shape=(64, 64, 3))
    assert "(28, 28, 1)" in warning and "(64, 64, 3)" in warning and "keras.Input(shape=(64, 64, 3))" in warning


def test_lint_head_size_differs_from_class_count():
    (warning,) = lint_model(hand_built(5, "softmax"), 10, "sparse_categorical_crossentropy")
    assert "5 units" in warning and "Dense(10, activation='softmax')" in warning


def test_lint_head_without_probabilities():
    (warning,) = lint_model(hand_built(10, "relu"), 10, "sparse_categorical_crossentropy")
    assert "activation='relu'" in warning and "activation='softmax'" in warning
    assert lint_model(hand_built(10, None), 10, keras.losses.SparseCategoricalCrossentropy(from_logits=True)) == []


def test_lint_categorical_crossentropy_needs_one_hot_labels():
    (warning,) = lint_model(hand_built(10, "softmax"), 10, "categorical_crossentropy")
    assert "one-hot" in warning and "sparse_categorical_crossentropy" in warning


def test_lint_regression_loss_for_classes():
    (warning,) = lint_model(hand_built(10, "softmax"), 10, "mse")
    assert "predicting numbers" in warning


def test_lint_missing_rescaling():
    (warning,) = lint_model(hand_built(10, "softmax", rescale=False), 10, "sparse_categorical_crossentropy")
    assert "0..255" in warning and "layers.Rescaling(1/255)" in warning


CONFIG_WARNINGS = {
    "pooling below 1x1": (dict(filters=(8, 8, 8, 8, 8)), "28 -> 26 -> 13 -> 11 -> 5 -> 3 -> 1 -> 0"),
    "adam rate too high": (dict(optimizer="adam", learning_rate=1.0), "far above the usual range for adam"),
    "sgd rate too low": (dict(optimizer="sgd", learning_rate=1e-6), "far below the usual range for sgd"),
    "rmsprop rate too high": (dict(optimizer="rmsprop", learning_rate=0.5), "far above the usual range for rmsprop"),
    "huge network": (dict(family="dnn", hidden_units=(8192,)), "6.5 million parameters"),
    "dropout on a tiny net": (dict(family="dnn", hidden_units=(8,), dropout_rate=0.5), "only 8 units"),
    "even kernel": (dict(kernel_size=4), "kernel_size=4 is even"),
    "batch norm with tiny batches": (dict(batch_norm=True, batch_size=4), "batch_size=4"),
    "too few images per class": (dict(train_subset=50), "about 5 images per class"),
    "batch as large as the data": (dict(train_subset=1000, batch_size=1024), "only once per epoch"),
    "early stopping never triggers": (dict(epochs=3, early_stopping_patience=3), "can never trigger"),
    "flipping digits": (dict(dataset="mnist", augmentation=dict(horizontal_flip=True)), "mirrored 2 or 7"),
    "fine-tuning too fast": (  # two phases: the base's layers train at learning_rate / 10 = 0.002
        dict(family="transfer", base_model="registry:0123456789abcdef", fine_tune_layers=2, learning_rate=0.02),
        "the second phase's learning_rate / 10 = 0.002 can wreck the features",
    ),
    "one-phase fine-tuning too fast": (
        dict(family="transfer", base_model="registry:0123456789abcdef", fine_tune_layers=2, fine_tune_phases=1,
             learning_rate=0.01),
        "learning_rate=0.01 can wreck the features",
    ),
    "enlarged for an ImageNet base": (dict(family="transfer", base_model="inception_v3", learning_rate=0.001), "enlarged to 75x75"),
}


@pytest.mark.parametrize("case", list(CONFIG_WARNINGS))
def test_lint_config_warning(case):
    changes, expected = CONFIG_WARNINGS[case]
    warnings = lint(TrainConfig(**changes), (28, 28, 1), 10)
    assert len(warnings) == 1, warnings
    assert expected in warnings[0]
    assert any(advice in warnings[0] for advice in ("Use ", "Try ", "Add ", "Switch ", "To shrink it"))
