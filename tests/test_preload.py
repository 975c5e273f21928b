"""Preloading: what the heavier pages need is imported, then loaded into the server's caches."""

import importlib.machinery
import os
import sys
import threading
import time

import pytest

from conftest import TINY_CNN

from core import preload
from core.datasets import load_dataset
from core.neuron import fit_line


def test_preloading_loads_the_pages_first_data_and_models_and_traces_predict(trained_registry):
    loaded = []

    def load_data(name, **options):
        loaded.append((name, options))
        return load_dataset(name, **options)

    models = {}

    def load_model(key):
        return models.setdefault(key, trained_registry.load_model(key))

    fits = []

    def fit_neuron(*arguments):
        fits.append(arguments)
        return fit_line(*arguments)

    caches = preload.ServerCaches(load_data, load_model, trained_registry.load_evaluation, fit_neuron)
    done = preload.preload_pages(trained_registry, caches, ["fashion_mnist"])
    assert fits == [(500, 0.01, 0, 0.0)]  # Hello, neuron's sliders as the page opens
    assert ("fashion_mnist", {}) in loaded and ("fashion_mnist", {"color_mode": "grayscale"}) in loaded
    cards = trained_registry.list_entries()
    inside = preload.inside_default(cards)
    assert inside.key == TINY_CNN.key  # Inside the network shows a CNN first, and its page picks the same one
    assert done == ["Datasets' data", "Convolutions' data", "Inside the network's test images", "Hello, neuron's fit",
                    f"Inside the network's model {inside.key}", "Augmentation's data"]
    assert ("shapes", {}) in loaded  # the Augmentation page's first image and experiment
    preload.warm_prediction(models[inside.key], inside)  # what Predict does in the background when opened
    assert models[inside.key].predict_function is not None  # the first upload finds it traced


def test_a_failing_step_leaves_the_others_to_run(trained_registry):
    def grayscale_broken(name, **options):
        if options.get("color_mode") == "grayscale":
            raise OSError("disk gone")
        return load_dataset(name, **options)

    caches = preload.ServerCaches(grayscale_broken, trained_registry.load_model, trained_registry.load_evaluation)
    done = preload.preload_pages(trained_registry, caches, ["fashion_mnist"])
    assert done == ["Datasets' data", "Inside the network's test images", f"Inside the network's model {TINY_CNN.key}",
                    "Augmentation's data"]


def test_a_missing_module_is_reported_not_raised():
    assert preload.import_page_modules(("json", "no_such_module_here")) == ["no_such_module_here"]


def page_run(seconds: float) -> threading.Thread:
    """A thread standing for a page's script run of `seconds`."""
    thread = threading.Thread(target=time.sleep, args=(seconds,))
    thread.start()
    return thread


def test_a_running_page_goes_first_then_the_browser_gets_a_grace():
    page = page_run(0.4)
    page_first = preload.PageFirst(page.is_alive, grace_seconds=0.2, poll_seconds=0.01)
    started = time.monotonic()
    page_first.wait()
    assert not page.is_alive() and time.monotonic() - started >= 0.55  # the run (0.4 s), then the grace (0.2 s)
    started = time.monotonic()
    assert page_first.wait() == 0 and time.monotonic() - started < 0.05  # no page running: no wait at all


def test_a_server_busy_with_pages_still_gets_preloaded_after_the_limit():
    page = page_run(3)
    page_first = preload.PageFirst(page.is_alive, limit_seconds=0.3, poll_seconds=0.01)
    started = time.monotonic()
    page_first.wait()
    page_first.wait()  # the limit is for all the waits together
    assert time.monotonic() - started < 0.6 and page.is_alive()


def test_preloading_waits_for_a_running_page_between_its_steps(trained_registry):
    page = page_run(0.5)
    steps = []

    def load_data(name, **options):
        steps.append((time.monotonic(), page.is_alive()))
        return load_dataset(name, **options)

    caches = preload.ServerCaches(load_data, trained_registry.load_model, trained_registry.load_evaluation)
    done = preload.preload_pages(trained_registry, caches, ["fashion_mnist"], page.is_alive)
    assert done[:2] == ["Datasets' data", "Convolutions' data"]
    assert steps and not any(alive for _, alive in steps)  # no step began while the page ran


RACE = """
import importlib, sys, threading
barrier, errors = threading.Barrier(2), []
def load(name):
    barrier.wait()
    try:
        importlib.import_module(name)
    except BaseException as error:
        errors.append(f"{name}: {type(error).__name__}: {error}")
threads = [threading.Thread(target=load, args=(name,)) for name in sys.argv[1:]]
[thread.start() for thread in threads]
[thread.join() for thread in threads]
print(errors or "both imported")
"""


def test_two_threads_entering_tensorflow_at_once_both_get_it():
    """A fresh server broke every TensorFlow page until a restart, 1 time in 6 (a new user's walk): the preloading
    imported `keras` while Augmentation ran `from tensorflow import keras`, and Python's import locks deadlocked. The
    two modules that entered TensorFlow first by those two ways then (`keras` first, `tensorflow` first: that race
    failed 3 times in 3) now both enter through core.backend."""
    import subprocess
    import sys
    from pathlib import Path

    result = subprocess.run([sys.executable, "-c", RACE, "core.models", "core.pipelines"], capture_output=True,
                            text=True, timeout=300, cwd=Path(__file__).resolve().parents[1],
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.stdout.strip().splitlines()[-1] == "both imported", result.stdout + result.stderr[-2000:]


def package_of_modules(folder, name: str, count: int) -> None:
    """A package `name` in `folder` whose import imports `count` modules of its own, one after another; the first
    sets `preload_test_signal.PAGE` (a page's run starts while the preloading imports the package)."""
    (folder / "preload_test_signal.py").write_text("import threading\nPAGE = threading.Event()\n")
    package = folder / name
    package.mkdir()
    (package / "__init__.py").write_text("".join(f"from . import part{index}\n" for index in range(count)))
    (package / "part0.py").write_text("import preload_test_signal\npreload_test_signal.PAGE.set()\nVALUE = 0\n")
    for index in range(1, count):
        (package / f"part{index}.py").write_text(f"VALUE = {index}\n")


@pytest.fixture
def on_the_path(tmp_path, monkeypatch):
    if preload._threads_waited_for() is None:
        pytest.skip("this Python's record of who waits for a module cannot be read: the preloading waits only "
                    "between modules it imports itself")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [name for name in sys.modules if name.startswith("preload_test_")]:
        del sys.modules[name]


def preloading_in_a_thread(name: str, page_first: preload.PageFirst) -> threading.Thread:
    thread = threading.Thread(target=preload.import_page_modules, args=((name,), page_first),
                              kwargs={"inside_imports": True})
    thread.start()
    return thread


def test_a_page_that_starts_during_an_import_goes_first_before_the_next_module(on_the_path):
    """Keras is one import of about 1,500 modules: a page started during it runs before the next module is loaded."""
    package_of_modules(on_the_path, "preload_test_package", 3)
    import preload_test_signal

    page = preload_test_signal.PAGE
    page_first = preload.PageFirst(page.is_set, grace_seconds=0.2, poll_seconds=0.01)
    preloading = preloading_in_a_thread("preload_test_package", page_first)
    assert page.wait(timeout=10)
    time.sleep(0.3)
    assert "preload_test_package.part1" not in sys.modules  # waiting for the page's run
    started = time.monotonic()
    page.clear()  # the run ends
    preloading.join(timeout=10)
    assert 0.15 < time.monotonic() - started < 5  # then the grace for the browser's drawing (0.2 s)
    package = sys.modules["preload_test_package"]
    assert [part.VALUE for part in (package.part0, package.part1, package.part2)] == [0, 1, 2]
    assert type(package.part1.__loader__) is importlib.machinery.SourceFileLoader  # its own loader, not the wrapper
    assert package.part1.__spec__.loader is package.part1.__loader__
    assert not any(isinstance(finder, preload._PageFirstFinder) for finder in sys.meta_path)


def test_a_page_that_needs_a_module_the_preloading_is_importing_gets_it_at_once(on_the_path):
    """The preloading waits inside an import, holding that module's lock: a page that needs the module must not
    wait for its own run to end (a deadlock until the limit)."""
    package_of_modules(on_the_path, "preload_test_shared", 2)
    import preload_test_signal

    page_first = preload.PageFirst(preload_test_signal.PAGE.is_set, grace_seconds=30, limit_seconds=60,
                                   poll_seconds=0.01)
    preloading = preloading_in_a_thread("preload_test_shared", page_first)
    assert preload_test_signal.PAGE.wait(timeout=10)
    started = time.monotonic()
    import preload_test_shared  # the page's import: waits for the preloading's lock on the package

    # at once: not the grace (30 s), nor the most a wait inside an import may last (3 s)
    assert preload_test_shared.part1.VALUE == 1 and time.monotonic() - started < preload.IMPORT_WAIT_SECONDS / 2
    preloading.join(timeout=10)
    assert not preloading.is_alive()


def test_other_threads_import_as_usual_while_the_preloading_waits_inside_an_import(on_the_path):
    package_of_modules(on_the_path, "preload_test_slow", 2)
    (on_the_path / "preload_test_other.py").write_text("VALUE = 'other'\n")
    import preload_test_signal

    page_first = preload.PageFirst(preload_test_signal.PAGE.is_set, grace_seconds=0.1, limit_seconds=30,
                                   poll_seconds=0.01)
    preloading = preloading_in_a_thread("preload_test_slow", page_first)
    assert preload_test_signal.PAGE.wait(timeout=10)
    started = time.monotonic()
    import preload_test_other  # a page's own import: no wait, its own loader

    assert time.monotonic() - started < 1 and preload_test_other.VALUE == "other"
    assert type(preload_test_other.__loader__) is importlib.machinery.SourceFileLoader
    assert "preload_test_slow.part1" not in sys.modules  # the preloading still lets the page go first
    preload_test_signal.PAGE.clear()
    preloading.join(timeout=10)
    assert "preload_test_slow.part1" in sys.modules


def test_a_module_imported_while_a_module_is_being_found_does_not_wait(on_the_path):
    """Python asks finders under its global import lock, and a finder may import a module: a wait there would hold up
    every import in the server."""
    package_of_modules(on_the_path, "preload_test_outer", 2)
    (on_the_path / "preload_test_outer" / "part1.py").write_text(
        "try:\n    import preload_test_trigger\nexcept ImportError:\n    pass\nVALUE = 1\n")
    (on_the_path / "preload_test_nested.py").write_text("VALUE = 'nested'\n")
    nested_seconds = []

    class ImportingFinder:  # a finder that imports a module of its own when asked for the trigger
        @staticmethod
        def find_spec(name, path, target=None):
            if name == "preload_test_trigger":
                started = time.monotonic()
                import preload_test_nested  # noqa: F401

                nested_seconds.append(time.monotonic() - started)
            return None

    import preload_test_signal

    sys.meta_path.append(ImportingFinder)
    try:
        page_first = preload.PageFirst(preload_test_signal.PAGE.is_set, grace_seconds=0.1, poll_seconds=0.01)
        preloading = preloading_in_a_thread("preload_test_outer", page_first)
        assert preload_test_signal.PAGE.wait(timeout=10)
        preloading.join(timeout=2 * preload.IMPORT_WAIT_SECONDS + 5)
    finally:
        sys.meta_path.remove(ImportingFinder)
        preload_test_signal.PAGE.clear()
    assert nested_seconds and nested_seconds[0] < 1  # it would have waited IMPORT_WAIT_SECONDS (3 s)
    assert sys.modules["preload_test_nested"].VALUE == "nested"
