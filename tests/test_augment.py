"""Augmentation layers, sample previews and the code shown to students."""

import gzip
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow import keras

from core.augment import augment_samples, build_augmenter, keras_code, legacy_code
from core.config import Augmentation
from core.errors import ImageError

FASHION_MNIST_IMAGES = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
CLASSIC = Augmentation(
    rotation_range=20, width_shift_range=0.1, height_shift_range=0.15, shear_range=0.2, zoom_range=0.2, horizontal_flip=True
)


@pytest.fixture(scope="module")
def ankle_boot():
    """The first Fashion-MNIST test image (an ankle boot), (28, 28, 1) uint8."""
    if not FASHION_MNIST_IMAGES.is_file():
        pytest.skip("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist")
    with gzip.open(FASHION_MNIST_IMAGES) as file:
        return np.frombuffer(file.read(16 + 784)[16:], np.uint8).reshape(28, 28, 1).copy()


def configs_by_name(augmenter):
    return {layer.name: layer.get_config() for layer in augmenter.layers}


def test_inactive_augmentation_gives_none_and_unchanged_samples(ankle_boot):
    for augmentation in (Augmentation(), Augmentation(fill_mode="reflect")):
        assert build_augmenter(augmentation, seed=0) is None
    samples = augment_samples(ankle_boot, Augmentation(), count=3, seed=0)
    assert samples.shape == (3, 28, 28, 1) and np.all(samples == ankle_boot)


@pytest.mark.parametrize("fill_mode", ["nearest", "constant", "reflect", "wrap"])
def test_fields_map_to_layers(fill_mode):
    augmenter = build_augmenter(Augmentation(**{**CLASSIC.__dict__, "fill_mode": fill_mode}), seed=0)
    assert isinstance(augmenter, keras.Sequential)
    configs = configs_by_name(augmenter)
    assert list(configs) == ["rotate", "translate", "shear", "zoom", "flip"]
    np.testing.assert_allclose(configs["rotate"]["factor"], (-20 / 360, 20 / 360))
    assert (configs["translate"]["height_factor"], configs["translate"]["width_factor"]) == (0.15, 0.1)
    np.testing.assert_allclose([configs["shear"]["x_factor"], configs["shear"]["y_factor"]], [(-0.2, 0.2), (-0.2, 0.2)])
    assert configs["zoom"]["height_factor"] == configs["zoom"]["width_factor"] == (-0.2, 0.2)
    assert configs["flip"]["mode"] == "horizontal"
    for name in ("rotate", "translate", "shear", "zoom"):
        assert configs[name]["fill_mode"] == fill_mode, name


def test_only_switched_on_transformations_are_built():
    augmenter = build_augmenter(Augmentation(width_shift_range=0.1), seed=0)
    assert [layer.name for layer in augmenter.layers] == ["translate"]
    assert configs_by_name(augmenter)["translate"]["height_factor"] == 0.0


def test_samples_are_deterministic_per_seed(ankle_boot):
    first = augment_samples(ankle_boot, CLASSIC, count=8, seed=1)
    again = augment_samples(ankle_boot, CLASSIC, count=8, seed=1)
    other = augment_samples(ankle_boot, CLASSIC, count=8, seed=2)
    assert first.shape == (8, 28, 28, 1) and first.dtype == np.uint8
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert len({sample.tobytes() for sample in first}) == 8  # every copy is transformed differently


def test_samples_keep_colour_images_and_pixel_range():
    image = np.random.default_rng(0).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    samples = augment_samples(image, CLASSIC, count=4, seed=0)
    assert samples.shape == (4, 32, 40, 3) and samples.dtype == np.uint8


def test_fill_mode_decides_what_fills_the_uncovered_area():
    white = np.full((28, 28, 1), 255, np.uint8)
    shift = dict(width_shift_range=0.5, height_shift_range=0.5)
    nearest = augment_samples(white, Augmentation(**shift, fill_mode="nearest"), count=8, seed=0)
    constant = augment_samples(white, Augmentation(**shift, fill_mode="constant"), count=8, seed=0)
    assert np.all(nearest == 255)  # "nearest" repeats the edge pixel outwards
    assert np.any(constant == 0)  # "constant" fills with black


def test_shear_is_anchored_at_the_top_left_corner():
    white = np.full((28, 28, 1), 255, np.uint8)
    sheared = augment_samples(white, Augmentation(shear_range=0.5, fill_mode="constant"), count=16, seed=0)
    assert np.all(sheared[:, 0, 0] == 255)  # the corner pixel never moves
    assert np.any(sheared[:, -1, -1] == 0)  # the far corner moves by up to half the side


def test_augment_samples_rejects_a_float_image():
    with pytest.raises(ImageError, match=r"uint8 image.*dtype=float32"):
        augment_samples(np.zeros((28, 28, 1), np.float32), CLASSIC, count=2, seed=0)


def test_augmenter_draws_new_transformations_every_batch_in_tf_data(ankle_boot):
    augmenter = build_augmenter(Augmentation(rotation_range=30, zoom_range=0.2), seed=0)
    images = np.repeat(ankle_boot[np.newaxis], 16, axis=0)
    pipeline = (
        tf.data.Dataset.from_tensor_slices(images)
        .batch(8)
        .map(lambda batch: augmenter(tf.cast(batch, "float32"), training=True))
    )
    first_epoch = [batch.numpy() for batch in pipeline]
    second_epoch = [batch.numpy() for batch in pipeline]
    assert not np.array_equal(first_epoch[0], first_epoch[1])
    assert not np.array_equal(first_epoch[0], second_epoch[0])
    assert np.array_equal(augmenter(images[:2].astype("float32"), training=False), images[:2])


def test_the_training_pipeline_augments_the_same_batches_for_the_same_seed():
    """A registry key stands for one model: trained twice with one seed, an augmented config gives the same batches.
    Mapped in parallel, the layers' random state was drawn in whatever order the threads ran (augmented trainings of
    one config scored 46.1% and 50.6%)."""
    from types import SimpleNamespace

    from core.config import TrainConfig
    from core.pipelines import training_data

    rng = np.random.default_rng(0)
    data = SimpleNamespace(x_train=rng.integers(0, 256, (96, 28, 28, 1), dtype=np.uint8), y_train=np.arange(96) % 10)
    config = TrainConfig(family="cnn", batch_size=8, augmentation=Augmentation(rotation_range=30, zoom_range=0.2,
                                                                              horizontal_flip=True))
    runs = [[images.numpy() for images, _ in training_data(data, config)] for _ in range(2)]
    assert all(np.array_equal(first, second) for first, second in zip(*runs))


def test_keras_code_is_runnable_and_matches_the_augmenter():
    augmentation = Augmentation(**{**CLASSIC.__dict__, "fill_mode": "reflect"})
    code = keras_code(augmentation)
    compile(code, "keras_code", "exec")
    assert "layers.RandomRotation(20 / 360, fill_mode=\"reflect\")" in code
    assert "RandomShear(x_factor=0.2, y_factor=0.2" in code
    namespace = {}
    exec(code, namespace)
    shown = [layer.get_config() for layer in namespace["data_augmentation"].layers]
    built = [layer.get_config() for layer in build_augmenter(augmentation, seed=0).layers]
    ignored = {"name", "seed", "trainable", "dtype"}
    assert [{k: v for k, v in c.items() if k not in ignored} for c in shown] == [
        {k: v for k, v in c.items() if k not in ignored} for c in built
    ]


def test_legacy_code_is_runnable_marked_deprecated_and_converts_shear_to_degrees():
    code = legacy_code(CLASSIC)
    compile(code, "legacy_code", "exec")
    assert "DEPRECATED" in code and "preprocessing layers" in code
    namespace = {}
    exec(code, namespace)
    generator = namespace["train_datagen"]
    assert generator.rotation_range == 20 and generator.height_shift_range == 0.15
    assert generator.shear_range == pytest.approx(11.3)  # atan(0.2) in degrees
    assert list(generator.zoom_range) == pytest.approx([0.8, 1.2])
    assert generator.horizontal_flip and generator.fill_mode == "nearest"


def test_code_for_no_augmentation_is_valid_python():
    for code in (keras_code(Augmentation()), legacy_code(Augmentation())):
        compile(code, "code", "exec")
    assert "data_augmentation = None" in keras_code(Augmentation())


def test_preview_is_fast_after_warm_up(ankle_boot):
    augment_samples(ankle_boot, CLASSIC, count=16, seed=0)
    started = time.perf_counter()
    augment_samples(ankle_boot, CLASSIC, count=16, seed=1)
    assert time.perf_counter() - started < 1.0

