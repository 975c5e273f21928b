"""What Inside the network shows of one trained model, and the first view that is published with it.

The page's first view (the first test image of the first class on its way through the layers, and the last class's
channels in the first layer of maps) needs the model's layers, so TensorFlow. On a fresh server TensorFlow's import
takes seconds (5.5 s on the 2-core test machine), and a student who opened the page in that time waited for it. The
process that trains a model therefore computes that first view from the model, with the same functions the page
would call, right after testing it, and publishes it beside the model (`view.npz`: arrays and text, never pickled
objects). `NetworkView` answers each of the page's requests from it when it is the one stored, and from the model
(loaded with TensorFlow only then) for every other pick, and for a model published without a usable view (imported
untested, trained by an older CNN Classroom, or its file damaged or made with other settings). The server's preloading
stores the view of the model the page shows first when it is missing, so the next server draws that one at once.
"""

import io
import json
import logging
import os
import threading
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.activations import (ChannelContrast, LayerActivation, channel_contrast, first_dense_weights,
                              first_learned_layer, initial_weight_range, layer_activations)
from core.errors import CoreError
from core.inspection import first_layer_filters

VIEW_FILE = "view.npz"
VIEW_FORMAT_VERSION = 2  # 2 records SAMPLES: a view made with another count is not used (version 1 compared 6)
SAMPLES = 6  # test images of the chosen class (and of each other class) whose channels are compared
KEPT_CONTRASTS = 6  # per model: moving the channel slider, or going back to a class, reruns no network

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FirstLayer:
    """The layer whose weights meet the pixels: a convolution's filters, or a dense layer's weights as images."""

    name: str
    convolutional: bool
    weights: np.ndarray  # filters (k, k, channels in, filters), or (height, width, channels, units) for a Dense layer
    initial_range: tuple[float, int, int] | None  # (limit, fan_in, fan_out) of a glorot_uniform start, else None


@dataclass(frozen=True)
class FirstView:
    """What the page shows before anything is picked, computed from the model."""

    first_layer: FirstLayer
    image_index: int | None  # the first test image of class 0 (None when the test set has none)
    activations: list[LayerActivation]  # of that image
    class_index: int  # the last class
    contrast: ChannelContrast | None  # that class's channels in the first layer of maps; None without maps

    @property
    def contrast_layer(self) -> str | None:
        """The first layer of maps, whose channels `contrast` compares."""
        return map_layers(self.activations)[0] if self.contrast is not None else None


def map_layers(activations: list[LayerActivation]) -> list[str]:
    """The names of the layers that output maps (height × width × channels), in order."""
    return [activation.name for activation in activations if activation.values.ndim == 3]


def first_image_index(labels: np.ndarray) -> int | None:
    """The page's first test image: the first one of class 0."""
    indices = np.flatnonzero(np.asarray(labels) == 0)
    return int(indices[0]) if len(indices) else None


def first_layer_of(model) -> FirstLayer:
    """The first Conv2D or Dense layer's weights, and the range they were drawn from before training (a model with
    neither is a CoreError, from `first_dense_weights`)."""
    layer = first_learned_layer(model)
    convolutional = type(layer).__name__ == "Conv2D"
    weights = first_layer_filters(model) if convolutional else first_dense_weights(model)
    return FirstLayer(layer.name, convolutional, weights, initial_weight_range(layer))


def compute_first_view(model, x_test, y_test, class_count: int) -> FirstView:
    """The page's first view of `model`, from its test images."""
    index = first_image_index(y_test)
    activations = layer_activations(model, x_test[index]) if index is not None else []
    maps, last_class = map_layers(activations), class_count - 1
    contrast = (channel_contrast(model, x_test, y_test, last_class, maps[0], SAMPLES)
                if maps and np.any(y_test == last_class) else None)
    return FirstView(first_layer_of(model), index, activations, last_class, contrast)


def first_view_bytes(view: FirstView) -> bytes:
    """`view` as the bytes of an .npz file (arrays and JSON text, no pickled objects)."""
    layer, contrast = view.first_layer, view.contrast
    about = {"format_version": VIEW_FORMAT_VERSION, "samples": SAMPLES,
             "first_layer": [layer.name, layer.convolutional, layer.initial_range],
             "image_index": view.image_index, "class_index": view.class_index,
             "activations": [[activation.name, activation.tensor, activation.nonlinearity]
                             for activation in view.activations],
             "contrast": None if contrast is None else [len(contrast.maps), contrast.other_count]}
    arrays = {"about": np.array(json.dumps(about)), "first_weights": layer.weights}
    arrays |= {f"activation_{number}": activation.values for number, activation in enumerate(view.activations)}
    if contrast is not None:
        arrays |= {"contrast_indices": contrast.indices, "class_mean": contrast.class_mean,
                   "other_mean": contrast.other_mean}
        arrays |= {f"contrast_map_{number}": values for number, values in enumerate(contrast.maps)}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def save_first_view(view: FirstView | bytes, path) -> None:
    """Write a view (or its `first_view_bytes`) to `path`, replacing it atomically."""
    path = Path(path)
    temporary_path = path.with_name(path.name + f".{os.getpid()}.tmp")
    try:
        temporary_path.write_bytes(view if isinstance(view, bytes) else first_view_bytes(view))
        os.replace(temporary_path, path)
    finally:
        temporary_path.unlink(missing_ok=True)


def load_first_view(path) -> FirstView:
    """Read a view written by `save_first_view`; a damaged or foreign file is a CoreError (never unpickled)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            about = json.loads(str(stored["about"]))
            if not isinstance(about, dict):
                raise ValueError("its description is not a JSON object")
            version = about.get("format_version")
            if version not in (1, VIEW_FORMAT_VERSION):
                raise CoreError(f"The view file {str(path)!r} has format version {version}; this CNN Classroom reads "
                                f"versions 1 and {VIEW_FORMAT_VERSION}.")
            if (samples := about.get("samples", 6 if version == 1 else None)) != SAMPLES:
                raise CoreError(f"The view file {str(path)!r} compares {samples} images of each class; this CNN "
                                f"Classroom compares {SAMPLES}.")
            name, convolutional, initial_range = about["first_layer"]
            first = FirstLayer(name, convolutional, stored["first_weights"],
                               tuple(initial_range) if initial_range is not None else None)
            activations = [LayerActivation(layer_name, stored[f"activation_{number}"], tensor, nonlinearity)
                           for number, (layer_name, tensor, nonlinearity) in enumerate(about["activations"])]
            contrast = None
            if about["contrast"] is not None:
                count, other_count = about["contrast"]
                maps = [stored[f"contrast_map_{number}"] for number in range(count)]
                contrast = ChannelContrast(stored["contrast_indices"], maps, stored["class_mean"], stored["other_mean"],
                                           other_count)
            return FirstView(first, about["image_index"], activations, about["class_index"], contrast)
    except CoreError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, zipfile.BadZipFile,
            zlib.error) as error:
        raise CoreError(f"Could not read the view file {str(path)!r}: it is damaged or not one that CNN Classroom "
                        f"wrote ({type(error).__name__}: {error}).") from None


def stored_first_view(entry_dir) -> FirstView | None:
    """The first view published in an entry's folder; None when there is none or it cannot be read (logged): the page
    then computes it from the model."""
    path = Path(entry_dir) / VIEW_FILE
    if not path.is_file():
        return None
    try:
        return load_first_view(path)
    except CoreError as error:
        logger.warning("%s The page computes it from the model instead.", error)
        return None


def store_first_view(entry_dir, model, x_test, y_test, class_count: int) -> bool:
    """Compute and write the first view of a model published without a usable one; False when it cannot be computed
    (the page then says why) or the folder is read-only (the page then computes it each time the server starts)."""
    if stored_first_view(entry_dir) is not None:
        return True
    try:
        save_first_view(compute_first_view(model, x_test, y_test, class_count), Path(entry_dir) / VIEW_FILE)
        return True
    except (CoreError, OSError) as error:
        logger.info("the first view of %s was not stored: %s", entry_dir, error)
        return False


class NetworkView:
    """Inside the network's numbers for one model: each request the stored first view holds is answered from it, any
    other from the model, which `load_model` loads (importing TensorFlow) only when one is asked for."""

    def __init__(self, stored: FirstView | None, load_model: Callable[[], object]):
        self.stored, self.load_model = stored, load_model
        self._contrasts, self._lock = OrderedDict(), threading.Lock()

    def first_layer(self) -> FirstLayer:
        """The first learned layer's weights."""
        return self.stored.first_layer if self.stored is not None else first_layer_of(self.load_model())

    def activations(self, image_index: int, image) -> list[LayerActivation]:
        """What each layer passes on for test image `image_index` (`image`), after its nonlinearity."""
        if self.stored is not None and self.stored.image_index == image_index:
            return self.stored.activations
        return layer_activations(self.load_model(), image)

    def contrast(self, x_test, y_test, class_index: int, layer_name: str) -> ChannelContrast:
        """`layer_name`'s channels on `SAMPLES` test images of `class_index` against as many of each other class."""
        stored = self.stored
        if stored is not None and (stored.class_index, stored.contrast_layer) == (class_index, layer_name):
            return stored.contrast
        request = (class_index, layer_name)
        with self._lock:  # held while computing: two sessions asking at once run the network once
            if request in self._contrasts:
                self._contrasts.move_to_end(request)
                return self._contrasts[request]
            contrast = channel_contrast(self.load_model(), x_test, y_test, class_index, layer_name, SAMPLES)
            self._contrasts[request] = contrast
            while len(self._contrasts) > KEPT_CONTRASTS:
                self._contrasts.popitem(last=False)
        return contrast
