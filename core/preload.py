"""Preloading: what the heavier pages need, loaded by the server in the background before a student asks for it.

A server's first visit of Datasets, Convolutions or Inside the network used to wait 4.5-6.4 s (TensorFlow and Keras
imported, Fashion-MNIST decoded, a model loaded), and Predict's first upload traced the model's predict and Grad-CAM
functions. Once the home page has been drawn, `core.ui.preload_in_background` runs `preload_pages` in a background
thread of the server, once per server process: the light modules and the data first, then TensorFlow, then the
models the pages show first, through the server's shared caches. Every step is one a page would otherwise do itself
on its first visit, so nothing is wasted, and a page that needs a step under way waits for it rather than doing it
twice.

It is low priority by when it runs (after the home page's run, when the student is reading) and by letting a page
that is running go first between its steps and between the modules TensorFlow's import loads (`PageFirst`,
`module_by_module`: `import keras` is one step of 2-8 s), not by the thread's niceness: a niced thread that holds
the import lock of `keras` makes the page that needs it wait for it (priority inversion). Tried with the importing
thread at nice 10 on the shared 2-core machine at load 10 (bench/first_visits.py): Convolutions and Inside the
network took 43.6 s and 67.3 s to open, waiting for the starved thread to finish importing Keras. TensorFlow's
thread pools would also inherit a niced thread's priority for the server's life.

Nothing here imports Streamlit: the server's cached loaders are passed in (`ServerCaches`).
"""

import _imp
import importlib
import importlib._bootstrap
import logging
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# Lightest first: a page opened while TensorFlow is being imported (3 s here) shares the server's one Python
# interpreter with that import, so what the first lessons need without TensorFlow is loaded before it.
LIGHT_MODULES = ("streamlit.emojis",  # for the tab's icon, 0.04 s (ui.tab_icon_is_free)
                 "numpy", "PIL.Image", "pandas", "plotly.graph_objects", "core.datasets", "core.charts", "core.course")
TENSORFLOW_MODULES = ("keras", "core.models", "core.training", "core.inspection", "core.activations",
                      "core.prediction", "core.shapes", "pyarrow")
PAGE_MODULES = LIGHT_MODULES + TENSORFLOW_MODULES
WARM_UP_DATASET = "fashion_mnist"
AUGMENTATION_DATASET = "shapes"  # generated, so always available: the Augmentation page's first image and experiment

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerCaches:
    """The server's shared, cached loaders (core.ui): the preloading calls them as a page would, so the page finds
    the result in the cache (or, asking while a step is under way, waits for that step instead of doing it again)."""

    load_dataset: Callable[..., Any]  # (name, **options) -> the dataset's arrays
    load_model: Callable[[str], Any]  # registry key -> the Keras model
    load_evaluation: Callable[[str], Any]  # registry key -> its test-set evaluation
    fit_neuron: Callable[[int, float, int, float], Any] | None = None  # Hello, neuron's (epochs, rate, seed, noise)


class PageFirst:
    """Lets a page that is running go first: the preloading calls `wait()` between its steps, and before each module
    TensorFlow's import loads (`module_by_module`).

    `page_running()` says whether a page's script is running. If one is, `wait()` returns once none has run for
    `grace_seconds` (the browser is drawing it: 1-1.5 s for Convolutions on a slow hour, with the preloading's work
    beside it on a 2-core machine), or once `limit_seconds` of waiting in all are spent, so that a busy server still
    gets its pages preloaded.
    """

    def __init__(self, page_running=lambda: False, grace_seconds: float = 1.5, limit_seconds: float = 20.0,
                 poll_seconds: float = 0.05):
        self.page_running, self.grace_seconds, self.poll_seconds = page_running, grace_seconds, poll_seconds
        self.limit_seconds, self.waited_seconds = limit_seconds, 0.0

    def wait(self, unless=lambda: False, at_most: float | None = None) -> float:
        """Wait while a page runs and `grace_seconds` after (at once if none runs), or until `unless()` is true, or
        `at_most` seconds; return the seconds waited."""
        if not self.page_running():
            return 0.0
        started, quiet_since = time.monotonic(), None
        limit = self.limit_seconds - self.waited_seconds
        if at_most is not None:
            limit = min(limit, at_most)
        while time.monotonic() - started < limit and not unless():
            if self.page_running():
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= self.grace_seconds:
                break
            time.sleep(self.poll_seconds)
        waited = time.monotonic() - started
        self.waited_seconds += waited
        return waited


def import_page_modules(modules=PAGE_MODULES, page_first: PageFirst | None = None,
                        inside_imports: bool = False) -> list[str]:
    """Import modules the lesson pages use, in order; return the ones that failed (each is logged).

    With `page_first`, a running page goes first before each of them, and with `inside_imports` also before each
    module they import in turn (`module_by_module`): Keras alone is about 1,500 modules and 2-8 s of the interpreter.
    """
    failed = []
    for name in modules:
        if page_first is not None:
            page_first.wait()
        try:
            with module_by_module(page_first if inside_imports else None):
                importlib.import_module(name)
        except Exception as error:  # a missing optional package only costs its page the wait it had before
            logger.info("preload: could not import %s: %s", name, error)
            failed.append(name)
    return failed


IMPORT_WAIT_SECONDS = 3.0  # at most, each time: the import may hold a lock a page needs that Python does not record


@contextmanager
def module_by_module(page_first: PageFirst | None):
    """While this thread imports: before each module it loads, a running page goes first (`page_first.wait`).

    The wait comes in the module's loader, where Python holds the locks of the modules this thread is importing, never
    under its global import lock, which every import in the server takes to find a module. A page that needs one of
    the modules held stops the wait at once (else it would wait for its own run to end); where CPython's record of who
    waits for a module cannot be read (`importlib._bootstrap._blocking_on`), nothing waits. The finder is put first on
    a copy of `sys.meta_path`, so that another thread's search under way goes on through the list it began.
    """
    if page_first is None or _threads_waited_for() is None:
        yield
        return
    finder = _PageFirstFinder(threading.get_ident(), page_first)
    sys.meta_path = [finder, *sys.meta_path]
    try:
        yield
    finally:
        sys.meta_path = [other for other in sys.meta_path if other is not finder]


class _PageFirstFinder:
    """Finds a module as the finders after it do, and gives it a loader that lets a running page go first."""

    def __init__(self, thread_id: int, page_first: PageFirst):
        self.thread_id, self.page_first = thread_id, page_first

    def find_spec(self, name, path, target=None):
        if threading.get_ident() != self.thread_id:
            return None
        for finder in list(sys.meta_path):
            if finder is self:
                continue
            if not hasattr(finder, "find_spec"):  # an old-style finder: Python's own search, unchanged
                return None
            spec = finder.find_spec(name, path, target)
            if spec is None:
                continue
            if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = _PageFirstLoader(spec.loader, self)
            return spec
        return None

    def wait(self):
        if _imp.lock_held():  # a module imported while a module is being found: every import in the server waits
            return

        def a_page_waits_for_this_thread():
            owners = _threads_waited_for()
            return owners is None or self.thread_id in owners

        self.page_first.wait(unless=a_page_waits_for_this_thread, at_most=IMPORT_WAIT_SECONDS)


class _PageFirstLoader:
    """A module's own loader, called once a running page has gone first; the module keeps its own loader."""

    def __init__(self, loader, finder: _PageFirstFinder):
        self.loader, self.finder = loader, finder

    def create_module(self, spec):
        spec.loader = self.loader  # what `module.__loader__` and `module.__spec__.loader` will be
        self.finder.wait()
        create = getattr(self.loader, "create_module", None)
        return None if create is None else create(spec)  # None: Python makes the module

    def exec_module(self, module):
        self.loader.exec_module(module)

    def __getattr__(self, name):
        return getattr(self.loader, name)


def _threads_waited_for() -> set[int] | None:
    """The threads whose imports another thread waits for (the owners of the module locks waited on), from CPython's
    own record; None where it cannot be read."""
    try:
        record = importlib._bootstrap._blocking_on
        # 3.10-3.11: {thread: lock}; 3.12+: a weak-value dictionary of {thread: [locks]}, its entries in `data`
        entries = [entry() for entry in record.data.values()] if hasattr(record, "data") else list(record.values())
        owners = set()
        for entry in entries:
            if entry is not None:  # None: a weak reference whose list is gone
                owners.update(lock.owner for lock in (entry if isinstance(entry, list) else [entry]))
        return owners
    except Exception:
        return None


def inside_default(cards, root=None):
    """The model Inside the network shows first: the most trustworthy CNN (the highest lower end of its accuracy's 95%
    interval: 88% on 16 photos was chosen over 78.7% on 10,000 images, and its channels' differences were noise), else
    the most trustworthy model with a config; one whose test images are on this machine (registry at `root`) before one
    whose dataset was deleted."""
    from core.guide import trust

    cards = [card for card in cards if card.config is not None]
    if not cards:
        return None
    here = {name: _images_here(name, root) for name in {card.config.dataset for card in cards}}
    return max(cards, key=lambda card: (here[card.config.dataset], card.family == "cnn", trust(card)))


def _images_here(name, root) -> bool:
    """True when dataset `name` loads without a download: an imported one still in the registry at `root` (not deleted
    since), or a catalogue one whose files are here (Shapes always). Asks no host."""
    from core.catalogue import FOLDER_PREFIX, MANIFEST_FILE, folder_path, local_source

    if name.startswith(FOLDER_PREFIX):
        return (folder_path(root, name) / MANIFEST_FILE).is_file()
    return local_source(name) is not None


def preload_pages(registry, caches: ServerCaches, available_datasets=(), page_running=lambda: False) -> list[str]:
    """Everything, lightest first: the light modules and the data (Datasets opened early finds them ready and shares
    the interpreter with less), with the test images and evaluation of Inside the network's first model (its first
    view is published with it: core.network_view), then TensorFlow and the modules that use it, Hello, neuron's
    default fit (lesson 1, the home page's first link), then the models, then Augmentation's shapes. Between two
    steps it lets a page that is running go first (`PageFirst`). Returns the steps done.

    Each step stands alone: one that fails (a damaged entry, a missing dataset) leaves its page to say so when it is
    opened.
    """
    page_first = PageFirst(page_running)
    import_page_modules(LIGHT_MODULES, page_first)
    done = warm_data(caches, available_datasets, page_first)
    done += warm_inside_data(registry, caches, page_first)
    import_page_modules(TENSORFLOW_MODULES, page_first, inside_imports=True)
    done += warm_neuron(caches, page_first)
    done += warm_models(registry, caches, page_first)
    return done + _steps({"Augmentation's data": lambda: caches.load_dataset(AUGMENTATION_DATASET)}, page_first)


def warm_data(caches: ServerCaches, available_datasets=(), page_first: PageFirst | None = None) -> list[str]:
    """Fill the server's data cache with what Datasets and Convolutions show first (no TensorFlow needed)."""
    if WARM_UP_DATASET not in available_datasets:
        return []
    return _steps({"Datasets' data": lambda: caches.load_dataset(WARM_UP_DATASET),
                   "Convolutions' data": lambda: caches.load_dataset(WARM_UP_DATASET, color_mode="grayscale")},
                  page_first)


def warm_inside_data(registry, caches: ServerCaches, page_first: PageFirst | None = None) -> list[str]:
    """Load the test images and the evaluation of the model Inside the network shows first (no TensorFlow needed)."""
    inside = inside_default(registry.list_entries(), registry.root)
    if inside is None:
        return []
    config = inside.config
    return _steps({"Inside the network's test images": lambda: (
        caches.load_dataset(config.dataset, image_size=config.image_size, color_mode=config.color_mode),
        caches.load_evaluation(inside.key))}, page_first)


def warm_neuron(caches: ServerCaches, page_first: PageFirst | None = None) -> list[str]:
    """Fit Hello, neuron's default (the classic 500 epochs at learning rate 0.01, seed 0, no noise: about 1 s)."""
    from core.neuron import DEFAULT_EPOCHS, DEFAULT_LEARNING_RATE

    if caches.fit_neuron is None:
        return []
    return _steps({"Hello, neuron's fit": lambda: caches.fit_neuron(DEFAULT_EPOCHS, DEFAULT_LEARNING_RATE, 0, 0.0)},
                  page_first)


def warm_models(registry, caches: ServerCaches, page_first: PageFirst | None = None) -> list[str]:
    """Load the model Inside the network shows first, its data and evaluation, and run its layers once.

    Predict traces its model itself when opened (core.ui.prepare_predictions), while a photo is chosen.
    """
    inside = inside_default(registry.list_entries(), registry.root)
    if inside is None:
        return []
    step = f"Inside the network's model {inside.key}"
    return _steps({step: lambda: _warm_inside(inside, caches, registry.entry_dir(inside.key))}, page_first)


def _steps(steps: dict, page_first: PageFirst | None = None) -> list[str]:
    """Run each step on its own, a running page first; return the names of those that worked (a failure is logged)."""
    done = []
    for name, function in steps.items():
        if page_first is not None:
            page_first.wait()
        try:
            function()
            done.append(name)
        except Exception as error:
            logger.warning("preload: %s failed: %s", name, error)
    return done


def _warm_inside(card, caches: ServerCaches, entry_dir):
    """Load the model, its data and its evaluation, and run its layers once (TensorFlow's first calls are slow); store
    its first view (core.network_view) if it was published without one, so that the next server draws it at once."""
    from core.activations import layer_activations
    from core.network_view import store_first_view

    config = card.config
    model = caches.load_model(card.key)
    data = caches.load_dataset(config.dataset, image_size=config.image_size, color_mode=config.color_mode)
    caches.load_evaluation(card.key)
    layer_activations(model, data.x_test[0])
    store_first_view(entry_dir, model, data.x_test, data.y_test, len(card.class_names))


def warm_prediction(model, card):
    """Classify one generated photo as Predict does, so the first real upload finds the model's functions traced."""
    import io

    import numpy as np
    from PIL import Image

    from core.outputs import output_steps
    from core.prediction import predict_file

    pixels = np.random.default_rng(0).integers(0, 256, size=(96, 128, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    prediction = predict_file(model, card, buffer.getvalue(), "warm-up.png")
    if prediction.model_input is not None:
        output_steps(model, prediction.model_input)  # Predict's "softmax, by the numbers"
