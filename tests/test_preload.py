"""Preloading: what the heavier pages need is imported, then loaded into the server's caches."""

from conftest import TINY_CNN

from core import preload
from core.datasets import load_dataset


def test_preloading_loads_the_pages_first_data_and_models_and_traces_predict(trained_registry):
    loaded = []

    def load_data(name, **options):
        loaded.append((name, options))
        return load_dataset(name, **options)

    models = {}

    def load_model(key):
        return models.setdefault(key, trained_registry.load_model(key))

    done = preload.preload_pages(trained_registry, load_data, load_model, trained_registry.load_evaluation,
                                 ["fashion_mnist"])
    assert ("fashion_mnist", {}) in loaded and ("fashion_mnist", {"color_mode": "grayscale"}) in loaded
    cards = trained_registry.list_entries()
    inside = preload.inside_default(cards)
    assert inside.key == TINY_CNN.key  # Inside the network shows a CNN first, and its page picks the same one
    assert done == ["Datasets' data", "Convolutions' data", f"Inside the network's model {inside.key}"]
    preload.warm_prediction(models[inside.key], inside)  # what Predict does in the background when opened
    assert models[inside.key].predict_function is not None  # the first upload finds it traced


def test_a_failing_step_leaves_the_others_to_run(trained_registry):
    def grayscale_broken(name, **options):
        if options.get("color_mode") == "grayscale":
            raise OSError("disk gone")
        return load_dataset(name, **options)

    done = preload.preload_pages(trained_registry, grayscale_broken, trained_registry.load_model,
                                 trained_registry.load_evaluation, ["fashion_mnist"])
    assert done == ["Datasets' data", f"Inside the network's model {TINY_CNN.key}"]


def test_a_missing_module_is_reported_not_raised():
    assert preload.import_page_modules(("json", "no_such_module_here")) == ["no_such_module_here"]
