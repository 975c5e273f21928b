"""Your own images' starting point: a pretrained MobileNetV2 for small datasets when its ImageNet weights are here,
from scratch otherwise, saying what the learner is missing.

The weights file is made here in Keras's own format and placed in the Keras cache, as a teacher would copy the real
one; its weights are random (no download), so this checks that a file placed there is found and used
(tests/test_models.py checks that the weights loaded are the file's)."""

import pytest

from core.models import build_model
from core.pretrained import application_image_size, weights_file
from core.recipes import PRETRAINED, PRETRAINED_BASE, SCRATCH, recipe, starting_point


@pytest.fixture
def offline_keras_home(tmp_path, monkeypatch):
    """An empty Keras cache, and no download host: every reachability check fails."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    def unreachable(url, timeout, stale_ok=False):
        raise OSError("cannot reach storage.googleapis.com: offline")

    monkeypatch.setattr("core.pretrained.check_reachable", unreachable)
    return tmp_path / "keras"


def place_weights(keras_home, image_side):
    """Write a MobileNetV2 (no top) weights file under Keras's name for it, in the cache, as `model.save_weights` would."""
    import keras

    size = application_image_size(PRETRAINED_BASE, (image_side, image_side, 3))
    file_name, _, _ = weights_file(PRETRAINED_BASE, size)
    path = keras_home / "models" / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(*size, 3)).save(path)  # legacy .h5
    return path


def test_offline_without_weights_small_datasets_train_from_scratch_and_say_what_is_missing(offline_keras_home):
    start = starting_point(training_images=40, image_size=64)
    assert start.default == SCRATCH and not start.pretrained_available
    assert "MobileNetV2 are not on this server" in start.reason and ".h5" not in start.reason  # a student's words
    assert "random filters" in start.reason and "background" in start.reason
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5" in start.teacher_fix  # the teacher's fix
    assert "Received:" not in start.teacher_fix and "registry:<key>" not in start.teacher_fix  # not the command line's


def test_weights_placed_in_the_keras_cache_make_small_datasets_start_pretrained(offline_keras_home):
    path = place_weights(offline_keras_home, 32)
    start = starting_point(training_images=40, image_size=32)
    assert start.default == PRETRAINED and start.pretrained_available and str(path) in start.reason
    assert starting_point(training_images=5_000, image_size=32).default == SCRATCH  # enough photos to try from scratch
    config = recipe(PRETRAINED, "folder:0123456789ab", 32, epochs=1)
    assert (config.family, config.base_model, config.fine_tune_layers, config.color_mode) == ("transfer", PRETRAINED_BASE,
                                                                                            0, "rgb")
    model = build_model(config, (32, 32, 3), 2)  # offline: only the file placed in the cache can make this work
    trainable = sum(int(weight.numpy().size) for weight in model.trainable_weights)
    assert trainable == 1280 * 64 + 64 + 64 + 1  # only the new head learns: the pretrained base is frozen
    assert model.get_layer("resize").output.shape[1:] == (96, 96, 3)
