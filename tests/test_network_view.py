"""Inside the network's first view, published with each trained model, holds exactly what the model computes."""

import json
import logging
import os
import time

import numpy as np
import pytest
from conftest import TINY_CNN, TINY_DNN

from core.activations import channel_contrast, layer_activations
from core.datasets import load_dataset
from core.errors import CoreError
from core.network_view import (SAMPLES, VIEW_FILE, NetworkView, compute_first_view, first_layer_of, load_first_view,
                               save_first_view, store_first_view, stored_first_view)
from core.registry import Registry


def assert_same_view(stored, model, data):
    """`stored` holds the model's first layer, its first test image's activations and its last class's contrast."""
    first = first_layer_of(model)
    assert (stored.first_layer.name, stored.first_layer.convolutional) == (first.name, first.convolutional)
    assert stored.first_layer.initial_range == first.initial_range
    np.testing.assert_array_equal(stored.first_layer.weights, first.weights)
    index = int(np.flatnonzero(data.y_test == 0)[0])  # the page's first pick: the first test image of the first class
    assert stored.image_index == index
    computed = layer_activations(model, data.x_test[index])
    assert [(a.name, a.tensor, a.nonlinearity) for a in stored.activations] == [(a.name, a.tensor, a.nonlinearity)
                                                                                 for a in computed]
    for kept, fresh in zip(stored.activations, computed, strict=True):
        np.testing.assert_allclose(kept.values, fresh.values, rtol=1e-5, atol=1e-6)
    maps = [a.name for a in computed if a.values.ndim == 3]
    if not maps:
        assert stored.contrast is None
        return
    last = len(data.class_names) - 1
    contrast = channel_contrast(model, data.x_test, data.y_test, last, maps[0], SAMPLES)
    assert (stored.class_index, stored.contrast_layer) == (last, maps[0])
    np.testing.assert_array_equal(stored.contrast.indices, contrast.indices)
    np.testing.assert_allclose(stored.contrast.class_mean, contrast.class_mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(stored.contrast.other_mean, contrast.other_mean, rtol=1e-5, atol=1e-7)
    assert stored.contrast.other_count == contrast.other_count == SAMPLES * last
    for kept, fresh in zip(stored.contrast.maps, contrast.maps, strict=True):
        np.testing.assert_allclose(kept, fresh, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("config", [TINY_CNN, TINY_DNN], ids=["cnn", "dnn"])
def test_every_trained_model_is_published_with_the_first_view_its_model_computes(trained_registry, config):
    entry = trained_registry.get(config.key)
    stored = stored_first_view(entry.path)
    assert stored is not None, f"{VIEW_FILE} was not published with {config.family}"
    assert stored.first_layer.convolutional == (config.family == "cnn")
    assert_same_view(stored, trained_registry.load_model(config.key), load_dataset("fashion_mnist"))


def test_a_transfer_models_first_view_looks_inside_its_base(transfer_registry_root):
    registry = Registry(transfer_registry_root)
    [transfer] = [card for card in registry.list_entries() if card.family == "transfer"][:1]
    stored = stored_first_view(registry.entry_dir(transfer.key))
    model = registry.load_model(transfer.key)
    assert stored.first_layer.convolutional and stored.first_layer.weights.shape[:2] == (3, 3)
    assert_same_view(stored, model, load_dataset("fashion_mnist", image_size=transfer.config.image_size,
                                                 color_mode=transfer.config.color_mode))


def test_the_view_answers_its_own_requests_and_the_model_every_other(trained_registry):
    """Only a pick the view does not hold loads the model (and, on a fresh server, starts TensorFlow)."""
    loads = []

    def load_model():
        loads.append(1)
        return trained_registry.load_model(TINY_CNN.key)

    data = load_dataset("fashion_mnist")
    view = NetworkView(stored_first_view(trained_registry.entry_dir(TINY_CNN.key)), load_model)
    first = view.stored.image_index
    view.first_layer(), view.activations(first, data.x_test[first])
    view.contrast(data.x_test, data.y_test, 9, "conv_1")  # the last class, the first layer of maps
    assert loads == []
    other = view.activations(7, data.x_test[7])
    assert loads == [1]
    np.testing.assert_allclose(other[0].values, layer_activations(load_model(), data.x_test[7])[0].values, rtol=1e-5)
    view.contrast(data.x_test, data.y_test, 7, "pool_1")
    view.contrast(data.x_test, data.y_test, 7, "pool_1")  # kept: the channel slider reruns no network
    assert len(loads) == 3
    without = NetworkView(None, load_model)
    np.testing.assert_array_equal(without.first_layer().weights, view.first_layer().weights)
    assert len(loads) == 4


def test_a_damaged_or_foreign_view_file_is_refused_never_unpickled(trained_registry, tmp_path, caplog):
    view = stored_first_view(trained_registry.entry_dir(TINY_CNN.key))
    save_first_view(view, tmp_path / VIEW_FILE)
    again = load_first_view(tmp_path / VIEW_FILE)
    assert again.first_layer.name == view.first_layer.name and again.contrast.other_count == view.contrast.other_count
    cut = tmp_path / "cut" / VIEW_FILE
    cut.parent.mkdir()
    cut.write_bytes((tmp_path / VIEW_FILE).read_bytes()[:5000])
    pickled = tmp_path / "pickled" / VIEW_FILE
    pickled.parent.mkdir()
    np.savez(pickled, about=np.array([{"format_version": 1}], dtype=object))
    newer = tmp_path / "newer" / VIEW_FILE
    newer.parent.mkdir()
    np.savez(newer, about=np.array('{"format_version": 99}'))
    flipped = tmp_path / "flipped" / VIEW_FILE  # one byte changed inside a stored array
    flipped.parent.mkdir()
    data = bytearray((tmp_path / VIEW_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped.write_bytes(bytes(data))
    listed = tmp_path / "listed" / VIEW_FILE  # valid JSON, but not the object a view describes itself with
    listed.parent.mkdir()
    np.savez(listed, about=np.array("[1]"))
    other_samples = tmp_path / "other_samples" / VIEW_FILE  # made while the page compared 4 images of each class
    other_samples.parent.mkdir()
    with np.load(tmp_path / VIEW_FILE) as stored:
        arrays = dict(stored)
    about = json.loads(str(arrays["about"]))
    np.savez(other_samples, **arrays | {"about": np.array(json.dumps(about | {"samples": 4}))})
    first_format = tmp_path / "first_format" / VIEW_FILE  # written before the file said how many: it compared 6
    first_format.parent.mkdir()
    np.savez(first_format, **arrays | {"about": np.array(json.dumps({key: value for key, value in about.items()
                                                                      if key != "samples"} | {"format_version": 1}))})
    assert load_first_view(first_format).contrast.other_count == view.contrast.other_count
    for path, said in [(cut, "damaged"), (pickled, "damaged"), (newer, "format version 99"), (flipped, "damaged"),
                       (listed, "damaged"), (other_samples, f"compares 4 images of each class; .* compares {SAMPLES}")]:
        with pytest.raises(CoreError, match=said):
            load_first_view(path)
        with caplog.at_level(logging.WARNING, logger="core.network_view"):
            assert stored_first_view(path.parent) is None  # the page computes it from the model instead
        assert "computes it from the model" in caplog.text


def test_the_preloading_stores_the_view_of_a_model_published_without_one(own_trained_registry):
    """The model the page shows first, published without its view (imported, or trained by an older CNN Classroom),
    gets it when the server's preloading loads it for the page (core.preload), so that the next server draws it
    without TensorFlow; a damaged one is replaced the same way."""
    from core import preload

    folder = own_trained_registry.entry_dir(TINY_CNN.key)
    (folder / VIEW_FILE).unlink()
    caches = preload.ServerCaches(load_dataset, own_trained_registry.load_model, own_trained_registry.load_evaluation)
    assert preload.warm_models(own_trained_registry, caches) == [f"Inside the network's model {TINY_CNN.key}"]
    assert_same_view(stored_first_view(folder), own_trained_registry.load_model(TINY_CNN.key), load_dataset("fashion_mnist"))
    (folder / VIEW_FILE).write_bytes(b"PK\x03\x04 cut short")  # damaged: the page computes, the next preload replaces it
    assert preload.warm_models(own_trained_registry, caches) == [f"Inside the network's model {TINY_CNN.key}"]
    assert_same_view(stored_first_view(folder), own_trained_registry.load_model(TINY_CNN.key), load_dataset("fashion_mnist"))
    model, data = own_trained_registry.load_model(TINY_CNN.key), load_dataset("fashion_mnist")
    assert compute_first_view(model, data.x_test[:0], data.y_test[:0], 10).activations == []  # no test image: none


def test_a_model_whose_first_view_cannot_be_computed_is_logged_not_stored(tmp_path, caplog):
    """A dense layer that does not meet the pixels has no weights to draw as images: the page says so; the preloading
    stores nothing and goes on."""
    from core.backend import keras

    pixels = keras.Input((28, 28, 1))
    model = keras.Model(pixels, keras.layers.Dense(10, activation="softmax")(keras.layers.GlobalAveragePooling2D()(pixels)))
    data = load_dataset("fashion_mnist")
    with caplog.at_level(logging.INFO, logger="core.network_view"):
        assert store_first_view(tmp_path, model, data.x_test[:50], data.y_test[:50], 10) is False
    assert "no Dense layer right after Flatten" in caplog.text and not (tmp_path / VIEW_FILE).exists()


def test_doctor_removes_the_half_written_file_of_a_killed_write_once_a_minute_old(own_trained_registry):
    """A process killed while it replaced view.npz leaves view.npz.<pid>.tmp beside it; one written now may be a write
    still under way, and stays."""
    from core.doctor import check_registry

    folder = own_trained_registry.entry_dir(TINY_CNN.key)
    killed, under_way = folder / f"{VIEW_FILE}.4242.tmp", folder / f"{VIEW_FILE}.4343.tmp"
    for path in (killed, under_way):
        path.write_bytes((folder / VIEW_FILE).read_bytes()[:1000])
    os.utime(killed, (time.time() - 120,) * 2)
    checkup = check_registry(own_trained_registry)
    assert checkup.removed == [f"{TINY_CNN.key}/{killed.name}"] and not checkup.problems
    assert not killed.exists() and under_way.exists() and stored_first_view(folder) is not None
