"""ImageNet weights for the transfer-learning bases: which file each base needs, where Keras caches it, and the download.

Building a base (the keras.applications constructor and its input preprocessing as layers) stays in
core.models with the other factories, so every layer this app builds is in one module. This module only
knows the weight files, and imports Keras only to download one.
"""

import logging
from pathlib import Path

from core.errors import CoreError
from core.network import check_reachable, socket_timeout
from core.paths import keras_home
from core.shapes import validate_input_shape

logger = logging.getLogger(__name__)
DOWNLOAD_TIMEOUT_SECONDS = 30
CONNECT_TIMEOUT_SECONDS = 5

# ImageNet bases from keras.applications. MobileNetV2's weights exist for a few square sizes only.
KERAS_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
MOBILENET_V2_SIZES = (96, 128, 160, 192, 224)
APPLICATIONS = {
    "mobilenet_v2": {"title": "MobileNetV2", "minimum_size": 96, "file_hash": None},
    "vgg16": {
        "title": "VGG16",
        "minimum_size": 32,
        "file_name": "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "file_hash": "6d6bbae143d832006294945121d1f1fc",
    },
    "inception_v3": {
        "title": "InceptionV3",
        "minimum_size": 75,
        "file_name": "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "file_hash": "bcbd6486424b2319ff4ef7d526e38f63",
    },
}


class PretrainedWeightsUnavailable(CoreError):
    """ImageNet weights that are neither cached on this machine nor downloadable.

    Its message ends with the command line's way round and the values; `how_to_get` is the part a page shows (what is
    missing and how to get it), beside the page's own way round."""

    def __init__(self, message: str, how_to_get: str):
        super().__init__(message)
        self.how_to_get = how_to_get


def application_image_size(base_model, input_shape):
    """The (height, width) the ImageNet base runs at: the input size, enlarged to the base's minimum."""
    height, width = validate_input_shape(input_shape)[:2]
    if base_model == "mobilenet_v2":
        side = next((size for size in MOBILENET_V2_SIZES if size >= max(height, width)), MOBILENET_V2_SIZES[-1])
        return side, side
    minimum = APPLICATIONS[base_model]["minimum_size"]
    return max(height, minimum), max(width, minimum)


def weights_file(base_model, image_size):
    """(file name, download URL, file hash) of a base's ImageNet weights without the top, as Keras names them."""
    spec = APPLICATIONS[base_model]
    if base_model == "mobilenet_v2":
        file_name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{image_size[0]}_no_top.h5"
        return file_name, f"{KERAS_WEIGHTS_URL}mobilenet_v2/{file_name}", None
    return spec["file_name"], f"{KERAS_WEIGHTS_URL}{base_model}/{spec['file_name']}", spec["file_hash"]


def pretrained_weights_path(base_model, image_size) -> str:
    """The cached ImageNet weights file, downloading it when online; else PretrainedWeightsUnavailable."""
    file_name, url, file_hash = weights_file(base_model, image_size)
    cache_dir = keras_home()
    cached = cache_dir / "models" / file_name
    if cached.is_file():
        return str(cached)
    from core.backend import keras  # here, not at the top: knowing the file names needs no TensorFlow

    try:
        check_reachable(url, CONNECT_TIMEOUT_SECONDS)
        cache_dir.mkdir(parents=True, exist_ok=True)  # else get_file falls back to /tmp/.keras, where `cached` is not
        with socket_timeout(DOWNLOAD_TIMEOUT_SECONDS):
            return keras.utils.get_file(
                file_name, url, cache_subdir="models", cache_dir=str(cache_dir), file_hash=file_hash
            )
    except Exception as error:  # get_file raises a bare Exception for network failures
        how_to_get = _weights_message(base_model, file_name, url, cached)
        raise PretrainedWeightsUnavailable(
            f"{how_to_get} Without internet, use a CNN you trained here as the base instead: base_model='registry:<key>' "
            f"(keys are listed by `python -m core list`). Received: base_model={base_model!r}, error={error}",
            how_to_get) from error


def cached_weights_path(base_model, input_shape) -> Path:
    """Where Keras keeps a base's ImageNet weights for this input once downloaded (~/.keras/models/<file>)."""
    return keras_home() / "models" / weights_file(base_model, application_image_size(base_model, input_shape))[0]


def weights_status(base_model, input_shape, timeout=1.5) -> tuple[bool, str]:
    """(True, where from) when a base's ImageNet weights are cached or downloadable now, else (False, why and how to
    get them); asks the network at most once every few minutes and never imports TensorFlow."""
    file_name, url, _ = weights_file(base_model, application_image_size(base_model, input_shape))
    cached = cached_weights_path(base_model, input_shape)
    if cached.is_file():
        return True, f"the ImageNet weights are on this machine ({cached})"
    try:
        check_reachable(url, timeout, stale_ok=True)
    except OSError as error:
        logger.info("ImageNet weights of %s not reachable: %s", base_model, error)
        return False, _weights_message(base_model, file_name, url, cached)
    return True, f"the ImageNet weights are downloaded once, when training starts, from {url}"


def _weights_message(base_model, file_name, url, cached):
    """What is missing and how to get it (a page adds its own way round, the command line its own); why the download
    failed ("[Errno -2] Name or service not known") goes to the log and the command line."""
    title = APPLICATIONS[base_model]["title"]
    return (
        f"The ImageNet weights for {title} are not on this machine and could not be downloaded. "
        f"Expected the file {file_name} in {cached.parent}/. To fix: train with this base once on a machine with "
        f"internet access (Keras caches the weights in ~/.keras/models/), or download {url} and copy it into "
        f"{cached.parent}/."
    )
