"""Model factories: a DNN, a CNN and a transfer-learning model, each taking raw pixels 0..255.

Also the head and loss for a task, the shape arithmetic of convolution blocks, plain-language
warnings about a configuration (`lint`) or a hand-built model (`lint_model`), and parameter counts.
"""

import contextlib
import functools
import math
import socket

import keras
import numpy as np
from keras import layers

from core.config import REGISTRY_BASE_PREFIX, TrainConfig, validate_key
from core.errors import ConfigError, CoreError
from core.network import check_reachable
from core.paths import keras_home

POOL_SIZE = 2
# Batch norm's test-time statistics average about the last 1 / (1 - momentum) batches. Keras' default, 0.99, needs
# hundreds of batches to forget the initial ones: a few epochs on a small subset then scored near 50% on the test set.
BATCH_NORM_MOMENTUM = 0.9
LARGE_MODEL_PARAMS = 5_000_000
DOWNLOAD_TIMEOUT_SECONDS = 30
CONNECT_TIMEOUT_SECONDS = 5
# Learning rates that usually train well with each optimizer; lint warns when far outside.
USUAL_LEARNING_RATES = {"adam": (1e-4, 1e-2), "rmsprop": (1e-4, 1e-2), "sgd": (1e-3, 1e-1)}
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
IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)
LUMINANCE_WEIGHTS = (0.299, 0.587, 0.114)


class PretrainedWeightsUnavailable(CoreError):
    """ImageNet weights that are neither cached on this machine nor downloadable."""


# ----- Heads and shapes -------------------------------------------------------------------------


def head(num_classes):
    """(units, activation, loss) for the output layer: sigmoid for 2 classes, softmax for more."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ConfigError(
            "A classifier needs at least 2 classes (class folders, or label values). "
            f"Received: num_classes={num_classes!r}"
        )
    if num_classes == 2:
        return 1, "sigmoid", "binary_crossentropy"
    return int(num_classes), "softmax", "sparse_categorical_crossentropy"


def feature_map_sizes(input_shape, num_blocks, kernel_size=3, conv_strides=1, padding="valid"):
    """Height and width after every convolution and pooling: [(28, 28), (26, 26), (13, 13), ...]; 0 means nothing is left."""
    height, width = _image_shape(input_shape)[:2]
    sizes = [(height, width)]
    for _ in range(num_blocks):
        height, width = (_conv_size(side, kernel_size, conv_strides, padding) for side in (height, width))
        sizes.append((height, width))
        height, width = height // POOL_SIZE, width // POOL_SIZE
        sizes.append((height, width))
    return sizes


def _conv_size(side, kernel_size, strides, padding):
    if padding == "same":
        return math.ceil(side / strides)
    return (side - kernel_size) // strides + 1 if side >= kernel_size else 0


def _shrink_problem(input_shape, filters, kernel_size, conv_strides, padding):
    """A sentence explaining where the feature maps vanish, or None when every block fits."""
    sizes = feature_map_sizes(input_shape, len(filters), kernel_size, conv_strides, padding)
    first_empty = next((index for index, size in enumerate(sizes) if min(size) < 1), None)
    if first_empty is None:
        return None
    block = (first_empty + 1) // 2
    usable_blocks = (first_empty - 1) // 2
    path = " -> ".join(_size_text(size) for size in sizes[: first_empty + 1])
    if conv_strides > 1:
        conv_effect = f"with stride {conv_strides} divides the size by {conv_strides}"
    elif padding == "same":
        conv_effect = "keeps the size"
    else:
        conv_effect = f"trims {kernel_size - 1} pixels"
    return (
        f"Convolution block {block} has nothing left to look at: the feature map shrinks {path}. "
        f"Each {kernel_size}x{kernel_size} '{padding}' convolution {conv_effect} and each 2x2 max pooling halves it. "
        f"Use at most {usable_blocks} blocks for this input{_more_room(padding, conv_strides)}, or a larger image_size. "
        f"Received: filters={tuple(filters)}, input_shape={tuple(input_shape)}"
    )


def _more_room(padding, conv_strides):
    """The other settings that would keep the feature maps larger."""
    return (", conv_strides=1" if conv_strides > 1 else "") + (", padding='same'" if padding == "valid" else "")


def _size_text(size):
    height, width = size
    return str(height) if height == width else f"{height}x{width}"


def _image_shape(input_shape):
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if not shape or len(shape) != 3 or not all(isinstance(side, (int, np.integer)) and side > 0 for side in shape):
        raise ConfigError(
            "input_shape must be (height, width, channels), e.g. (28, 28, 1) for grayscale. "
            f"Received: input_shape={input_shape!r}"
        )
    return tuple(int(side) for side in shape)


# ----- Model factories --------------------------------------------------------------------------


def build_model(config: TrainConfig, input_shape, num_classes, base_loader=None):
    """The uncompiled model that `config` describes, for images of `input_shape` and `num_classes` classes."""
    if config.family == "dnn":
        return build_dnn(input_shape, num_classes, config.hidden_units, config.activation, config.dropout_rate)
    if config.family == "cnn":
        return build_cnn(
            input_shape,
            num_classes,
            filters=config.filters,
            kernel_size=config.kernel_size,
            conv_strides=config.conv_strides,
            padding=config.padding,
            batch_norm=config.batch_norm,
            hidden_units=config.hidden_units,
            activation=config.activation,
            dropout_rate=config.dropout_rate,
        )
    return build_transfer(
        input_shape,
        num_classes,
        base_model=config.base_model,
        fine_tune_layers=config.fine_tune_layers,
        hidden_units=config.hidden_units,
        activation=config.activation,
        dropout_rate=config.dropout_rate,
        base_loader=base_loader,
    )


def build_dnn(input_shape, num_classes, hidden_units=(128,), activation="relu", dropout_rate=0.0):
    """Flatten the image and classify it with Dense layers, like the classic Fashion-MNIST DNN."""
    inputs = keras.Input(shape=_image_shape(input_shape), name="image")
    x = layers.Rescaling(1 / 255, name="rescale")(inputs)
    x = layers.Flatten(name="flatten")(x)
    outputs = _classifier(x, num_classes, hidden_units, activation, dropout_rate)
    return keras.Model(inputs, outputs, name="dnn")


def build_cnn(
    input_shape,
    num_classes,
    filters=(32, 64),
    kernel_size=3,
    conv_strides=1,
    padding="valid",
    batch_norm=False,
    hidden_units=(128,),
    activation="relu",
    dropout_rate=0.0,
):
    """Convolution blocks (Conv2D, optional BatchNorm, 2x2 MaxPooling), then Flatten and Dense layers."""
    input_shape = _image_shape(input_shape)
    problem = _shrink_problem(input_shape, filters, kernel_size, conv_strides, padding)
    if problem:
        raise ConfigError(problem)

    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1 / 255, name="rescale")(inputs)
    for block, filters_in_block in enumerate(filters, start=1):
        if batch_norm:
            # The BatchNorm's shift replaces the convolution's bias.
            x = layers.Conv2D(
                filters_in_block, kernel_size, strides=conv_strides, padding=padding, use_bias=False, name=f"conv_{block}"
            )(x)
            x = layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"batch_norm_{block}")(x)
            x = layers.Activation(activation, name=f"{activation}_{block}")(x)
        else:
            x = layers.Conv2D(
                filters_in_block, kernel_size, strides=conv_strides, padding=padding, activation=activation, name=f"conv_{block}"
            )(x)
        x = layers.MaxPooling2D(POOL_SIZE, name=f"pool_{block}")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = _classifier(x, num_classes, hidden_units, activation, dropout_rate)
    return keras.Model(inputs, outputs, name="cnn")


def build_transfer(
    input_shape,
    num_classes,
    base_model="mobilenet_v2",
    fine_tune_layers=0,
    hidden_units=(128,),
    dropout_rate=0.0,
    base_loader=None,
    activation="relu",
    weights="imagenet",
):
    """A pretrained base (ImageNet or a registry CNN), frozen except its top `fine_tune_layers`, with a new head.

    `weights=None` builds a keras.applications base with random weights (no download), for tests and demos.
    """
    input_shape = _image_shape(input_shape)
    inputs = keras.Input(shape=input_shape, name="image")
    if base_model.startswith(REGISTRY_BASE_PREFIX):
        base = _registry_base(base_model[len(REGISTRY_BASE_PREFIX) :], base_loader)
        x = _adapt_image(inputs, input_shape, base.input_shape[1:])
        _freeze_base(base, fine_tune_layers)
        x = base(x, training=False)
        x = layers.Flatten(name="flatten")(x)
    elif base_model in APPLICATIONS:
        image_size = application_image_size(base_model, input_shape)
        base = _application_base(base_model, image_size, weights)
        x = _adapt_image(inputs, input_shape, (*image_size, 3))
        x = _imagenet_preprocessing(x, base_model)
        _freeze_base(base, fine_tune_layers)
        x = base(x, training=False)
        x = layers.GlobalAveragePooling2D(name="pool")(x)
    else:
        raise ConfigError(
            f"base_model must be one of {tuple(APPLICATIONS)} or 'registry:<key>' of a trained CNN. "
            f"Received: base_model={base_model!r}"
        )
    outputs = _classifier(x, num_classes, hidden_units, activation, dropout_rate)
    return keras.Model(inputs, outputs, name="transfer")


def _classifier(x, num_classes, hidden_units, activation, dropout_rate):
    """Dense layers (each followed by Dropout when asked), then the task's head."""
    units, head_activation, _ = head(num_classes)
    for index, hidden in enumerate(hidden_units, start=1):
        x = layers.Dense(hidden, activation=activation, name=f"dense_{index}")(x)
        if dropout_rate > 0:
            x = layers.Dropout(dropout_rate, name=f"dropout_{index}")(x)
    return layers.Dense(units, activation=head_activation, name="head")(x)


def _adapt_image(x, input_shape, base_shape):
    """Convert channels and resize inside the model so the base sees the shape it was built for."""
    height, width, channels = input_shape
    base_height, base_width, base_channels = base_shape
    if channels == 1 and base_channels == 3:
        x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    elif channels == 3 and base_channels == 1:
        # A fixed Dense on the channel axis: gray = 0.299 R + 0.587 G + 0.114 B at every pixel.
        x = layers.Dense(
            1,
            use_bias=False,
            trainable=False,
            kernel_initializer=keras.initializers.Constant(np.reshape(LUMINANCE_WEIGHTS, (3, 1))),
            name="rgb_to_gray",
        )(x)
    elif channels != base_channels:
        raise ConfigError(
            f"The base expects {base_channels}-channel images but these have {channels}. "
            f"Load the dataset with color_mode='rgb' or 'grayscale'. Received: input_shape={input_shape}"
        )
    if (height, width) != (base_height, base_width):
        x = layers.Resizing(base_height, base_width, name="resize")(x)
    return x


def _freeze_base(base, fine_tune_layers):
    """Freeze the base except its top `fine_tune_layers` layers with weights; BatchNorm always stays frozen."""
    if not fine_tune_layers:
        base.trainable = False
        return
    base.trainable = True
    tunable = [layer for layer in base.layers if layer.weights and not isinstance(layer, layers.BatchNormalization)]
    unfrozen = {id(layer) for layer in tunable[-fine_tune_layers:]}
    for layer in base.layers:
        layer.trainable = id(layer) in unfrozen


def _registry_base(key, base_loader):
    """A copy of a registry CNN's layers up to its Flatten (the copy keeps the original model untouched)."""
    validate_key(key)
    if base_loader is None:
        raise ConfigError(
            f"base_model='registry:{key}' needs a base_loader that loads registry models, e.g. "
            f"Registry().load_model. Received: base_loader=None"
        )
    trained = base_loader(key)
    cut = next(
        (
            index
            for index, layer in enumerate(trained.layers)
            if isinstance(layer, (layers.Flatten, layers.GlobalAveragePooling2D, layers.GlobalMaxPooling2D))
        ),
        None,
    )
    if cut is None or not any(isinstance(layer, layers.Conv2D) for layer in trained.layers[:cut]):
        raise ConfigError(
            f"A transfer base must be a CNN (convolution blocks, then Flatten). Registry model {key} has no "
            f"convolutions before its Flatten; pick a CNN from the registry. Received: base_model='registry:{key}'"
        )
    features = keras.Model(trained.inputs, trained.layers[cut - 1].output)
    base_config = {**features.get_config(), "name": f"base_{key}"}
    base = keras.Model.from_config(base_config)
    base.set_weights(features.get_weights())
    return base


# ----- ImageNet bases ---------------------------------------------------------------------------


def application_image_size(base_model, input_shape):
    """The (height, width) the ImageNet base runs at: the input size, enlarged to the base's minimum."""
    height, width = _image_shape(input_shape)[:2]
    if base_model == "mobilenet_v2":
        side = next((size for size in MOBILENET_V2_SIZES if size >= max(height, width)), MOBILENET_V2_SIZES[-1])
        return side, side
    minimum = APPLICATIONS[base_model]["minimum_size"]
    return max(height, minimum), max(width, minimum)


def _application_base(base_model, image_size, weights):
    """MobileNetV2, VGG16 or InceptionV3 without its top; raise PretrainedWeightsUnavailable when offline."""
    if weights == "imagenet":
        weights = pretrained_weights_path(base_model, image_size)
    constructor = {
        "mobilenet_v2": keras.applications.MobileNetV2,
        "vgg16": keras.applications.VGG16,
        "inception_v3": keras.applications.InceptionV3,
    }[base_model]
    return constructor(include_top=False, weights=weights, input_shape=(*image_size, 3))


def _imagenet_preprocessing(x, base_model):
    """The base's own input scaling as plain layers: [-1, 1] for MobileNetV2/InceptionV3, BGR minus mean for VGG16."""
    if base_model != "vgg16":
        return layers.Rescaling(1 / 127.5, offset=-1, name="preprocess")(x)
    # VGG16 ("caffe" mode): swap RGB to BGR and subtract the ImageNet mean, as a fixed Dense on the channel axis.
    swap_channels = np.eye(3)[::-1]
    return layers.Dense(
        3,
        trainable=False,
        kernel_initializer=keras.initializers.Constant(swap_channels),
        bias_initializer=keras.initializers.Constant(-np.array(IMAGENET_MEAN_BGR)),
        name="preprocess",
    )(x)


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
    try:
        check_reachable(url, CONNECT_TIMEOUT_SECONDS)
        cache_dir.mkdir(parents=True, exist_ok=True)  # else get_file falls back to /tmp/.keras, where `cached` is not
        with _socket_timeout(DOWNLOAD_TIMEOUT_SECONDS):
            return keras.utils.get_file(
                file_name, url, cache_subdir="models", cache_dir=str(cache_dir), file_hash=file_hash
            )
    except Exception as error:  # get_file raises a bare Exception for network failures
        raise PretrainedWeightsUnavailable(_weights_message(base_model, file_name, url, cached, error)) from error


def _weights_message(base_model, file_name, url, cached, error):
    title = APPLICATIONS[base_model]["title"]
    return (
        f"The ImageNet weights for {title} are not on this machine and could not be downloaded ({error}). "
        f"Expected the file {file_name} in {cached.parent}/. To fix: run this once on a machine with internet "
        f"access (Keras caches the weights in ~/.keras/models/), or download {url} and copy it into "
        f"{cached.parent}/. Without internet, use a CNN you trained here as the base instead: "
        f"base_model='registry:<key>' (keys are listed by `python -m core list`). Received: base_model={base_model!r}"
    )


@contextlib.contextmanager
def _socket_timeout(seconds):
    """Give urllib's downloads a read timeout so a stalled connection fails instead of hanging."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


# ----- Warnings -----------------------------------------------------------------------------------


def lint(config: TrainConfig, input_shape, num_classes) -> list[str]:
    """Plain-language warnings about `config` for this data, each saying what to change."""
    warnings = []
    if isinstance(num_classes, (int, np.integer)) and num_classes < 2:
        return [f"A classifier needs at least 2 classes, but this data has {num_classes}. Add images of another class."]
    warnings += _learning_rate_warnings(config)
    problem = None
    if config.family == "cnn":
        problem = _shrink_problem(_image_shape(input_shape), config.filters, config.kernel_size, config.conv_strides, config.padding)
        warnings += [problem] if problem else []
        warnings += _cnn_warnings(config)
    if config.family in ("dnn", "cnn") and not problem:
        shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else input_shape
        warnings += _built_model_warnings(config, shape, num_classes)
    if config.family == "transfer":
        warnings += _transfer_warnings(config, input_shape)
    warnings += _training_warnings(config, num_classes)
    return warnings


@functools.lru_cache(maxsize=256)
def _built_model_warnings(config: TrainConfig, input_shape, num_classes) -> tuple[str, ...]:
    """The warnings that need the model built (its size, head and input). Cached: the Train page lints on
    every rerun, and building a Keras model each time costs tens of milliseconds."""
    model = build_model(config, input_shape, num_classes)
    return tuple(_size_warnings(model, config) + lint_model(model, num_classes, head(num_classes)[2], input_shape))


def lint_model(model, num_classes=None, loss=None, input_shape=None) -> list[str]:
    """Plain-language warnings about a model built by hand: its head, its loss and the input it expects."""
    warnings = []
    units, activation = model.output_shape[-1], _output_activation(model)
    loss_name, from_logits = _loss_name(loss)
    if units == 1 and activation == "softmax":
        warnings.append(
            "The last layer is Dense(1, activation='softmax'). Softmax over a single number always outputs 1.0, "
            "so the model cannot learn anything. For two classes use Dense(1, activation='sigmoid') with "
            "loss='binary_crossentropy'; for N classes use Dense(N, activation='softmax')."
        )
    elif activation not in (None, "sigmoid", "softmax") and not from_logits:
        wanted = "sigmoid" if units == 1 else "softmax"
        warnings.append(
            f"The last layer uses activation='{activation}', so its outputs are not probabilities. "
            f"Use activation='{wanted}' on the last layer (or a loss with from_logits=True)."
        )
    if num_classes and num_classes > 2 and units != num_classes:
        warnings.append(
            f"The last layer has {units} units but the data has {num_classes} classes. "
            f"Use Dense({num_classes}, activation='softmax'): one probability per class."
        )
    if num_classes == 2 and units not in (1, 2):
        warnings.append(
            f"The last layer has {units} units but the data has 2 classes. "
            "Use Dense(1, activation='sigmoid') with loss='binary_crossentropy'."
        )
    warnings += _loss_warnings(loss_name, units, num_classes)
    warnings += _input_warnings(model, input_shape)
    return warnings


def _learning_rate_warnings(config):
    low, high = USUAL_LEARNING_RATES[config.optimizer]
    rate, optimizer = config.learning_rate, config.optimizer
    if rate > high * 3:
        return [
            f"learning_rate={rate:g} is far above the usual range for {optimizer} ({low:g} to {high:g}): "
            f"the loss will likely jump around or become NaN. Try learning_rate={_default_rate(optimizer):g}."
        ]
    if rate < low / 10:
        return [
            f"learning_rate={rate:g} is far below the usual range for {optimizer} ({low:g} to {high:g}): "
            f"the model will barely change in a few epochs. Try learning_rate={_default_rate(optimizer):g}."
        ]
    return []


def _default_rate(optimizer):
    return 0.01 if optimizer == "sgd" else 0.001


def _cnn_warnings(config):
    warnings = []
    if config.kernel_size % 2 == 0:
        warnings.append(
            f"kernel_size={config.kernel_size} is even, so the filter has no centre pixel and the feature maps "
            "shift by half a pixel. Use an odd size such as 3 or 5."
        )
    if config.batch_norm and config.batch_size < 8:
        warnings.append(
            f"Batch normalisation estimates statistics from each batch; with batch_size={config.batch_size} they are "
            "very noisy. Use batch_size=32 or switch batch_norm off."
        )
    return warnings


def _size_warnings(model, config):
    warnings = []
    total = model.count_params()
    if total > LARGE_MODEL_PARAMS:
        fix = "add a convolution block or use fewer hidden units" if config.family == "cnn" else "use fewer hidden units, or a CNN"
        warnings.append(
            f"This network has {total / 1e6:.1f} million parameters, so each epoch is slow on a CPU and it can memorise "
            f"a small training set. To shrink it, {fix}."
        )
    smallest = min(config.hidden_units, default=0)
    if config.dropout_rate >= 0.3 and smallest and smallest <= 16:
        warnings.append(
            f"dropout_rate={config.dropout_rate:g} on a Dense layer of only {smallest} units switches off about "
            f"{round(smallest * config.dropout_rate)} of them at every step, which makes such a small net underfit. "
            "Use a lower dropout_rate (0.1-0.2) or more hidden units."
        )
    return warnings


def _transfer_warnings(config, input_shape):
    warnings = []
    if config.fine_tune_layers and config.learning_rate > 1e-3:
        warnings.append(
            f"Fine-tuning pretrained layers with learning_rate={config.learning_rate:g} can wreck the features they "
            "learnt. Use a small rate such as 0.0001 when fine_tune_layers > 0."
        )
    if config.base_model in APPLICATIONS:
        image_size = application_image_size(config.base_model, input_shape)
        height, width, channels = _image_shape(input_shape)
        if image_size[0] * image_size[1] >= 4 * height * width:
            warnings.append(
                f"{APPLICATIONS[config.base_model]['title']} needs larger images, so each {height}x{width} image is "
                f"enlarged to {image_size[0]}x{image_size[1]} inside the model; training is much slower on a CPU. "
                "Use a small train_subset, or a larger image_size if the original images are bigger."
            )
    return warnings


def _training_warnings(config, num_classes):
    warnings = []
    if config.train_subset and config.train_subset < 20 * num_classes:
        warnings.append(
            f"train_subset={config.train_subset} leaves about {config.train_subset // num_classes} images per class, "
            f"too few to learn {num_classes} classes well. Use at least {50 * num_classes} images."
        )
    if config.train_subset and config.batch_size >= config.train_subset:
        warnings.append(
            f"batch_size={config.batch_size} is as large as the whole training subset ({config.train_subset}), so "
            "the weights change only once per epoch. Use a batch_size of 32 or 64."
        )
    if config.early_stopping_patience and config.early_stopping_patience >= config.epochs:
        warnings.append(
            f"early_stopping_patience={config.early_stopping_patience} is not smaller than epochs={config.epochs}, "
            "so early stopping can never trigger. Use more epochs or a smaller patience."
        )
    if config.augmentation.horizontal_flip and config.dataset == "mnist":
        warnings.append(
            "horizontal_flip mirrors digits, and a mirrored 2 or 7 is no longer a digit. "
            "Switch horizontal_flip off for handwriting and text."
        )
    return warnings


def _output_activation(model):
    """The name of the activation that produces the model's output, or None when it cannot be told."""
    last = model.layers[-1]
    if isinstance(last, layers.Softmax):
        return "softmax"
    function = getattr(last, "activation", None)
    if function is None:
        return None
    return keras.activations.serialize(function) if callable(function) else str(function)


def _loss_name(loss):
    """(normalised loss name, from_logits) for a loss given as a string, a Loss object or None."""
    if loss is None:
        return None, False
    if isinstance(loss, str):
        return loss.replace("_", "").lower(), False
    config = loss.get_config() if hasattr(loss, "get_config") else {}
    name = config.get("name") or type(loss).__name__
    return name.replace("_", "").lower(), bool(config.get("from_logits", False))


def _loss_warnings(loss_name, units, num_classes):
    warnings = []
    if loss_name == "binarycrossentropy" and num_classes and num_classes > 2:
        warnings.append(
            f"loss='binary_crossentropy' is for two classes (yes/no), but the data has {num_classes} classes. "
            f"Use loss='sparse_categorical_crossentropy' with Dense({num_classes}, activation='softmax')."
        )
    if loss_name in ("sparsecategoricalcrossentropy", "categoricalcrossentropy") and units == 1:
        warnings.append(
            "A categorical cross-entropy loss with a single output unit always sees probability 1.0 for class 0. "
            "For two classes use loss='binary_crossentropy' with Dense(1, activation='sigmoid')."
        )
    if loss_name == "categoricalcrossentropy":
        warnings.append(
            "loss='categorical_crossentropy' expects one-hot labels, but the labels here are class numbers (0, 1, 2, ...). "
            "Use loss='sparse_categorical_crossentropy'."
        )
    if loss_name in ("mse", "meansquarederror", "mae", "meanabsoluteerror"):
        warnings.append(
            "Mean squared/absolute error is for predicting numbers, not classes. "
            "Use a cross-entropy loss: 'binary_crossentropy' for 2 classes, 'sparse_categorical_crossentropy' for more."
        )
    return warnings


def _input_warnings(model, input_shape):
    warnings = []
    expected = model.input_shape
    if input_shape is not None and isinstance(expected, tuple):
        expected, given = tuple(expected[1:]), tuple(input_shape)
        if len(expected) != len(given) or any(e is not None and e != g for e, g in zip(expected, given)):
            warnings.append(
                f"The model expects images of shape {expected} but the data has shape {given}. Rebuild the model "
                f"with keras.Input(shape={given}), or load the data with image_size and color_mode that match the model."
            )
    has_nested_base = any(isinstance(layer, keras.Model) for layer in model.layers)
    if not has_nested_base and not any(isinstance(layer, (layers.Rescaling, layers.Normalization)) for layer in model.layers):
        warnings.append(
            "The model has no Rescaling layer, so raw pixel values 0..255 reach the first layer and training is "
            "unstable. Add layers.Rescaling(1/255) right after keras.Input."
        )
    return warnings


# ----- Summaries ----------------------------------------------------------------------------------


def summary_rows(model) -> list[dict]:
    """One row per layer, like model.summary(): name, type, output shape per image (no batch axis), parameters."""
    rows = []
    for layer in model.layers:
        trainable_params = _weights_size(layer.trainable_weights)
        rows.append(
            {
                "layer": layer.name,
                "type": type(layer).__name__,
                "output_shape": _output_shape(layer),
                "params": _weights_size(layer.weights),
                "trainable": trainable_params > 0,
                "trainable_params": trainable_params,
            }
        )
    return rows


def count_params(model) -> dict:
    """Total, trainable and non-trainable parameter counts (frozen bases and BatchNorm statistics are non-trainable)."""
    total = _weights_size(model.weights)
    trainable = _weights_size(model.trainable_weights)
    return {"total": total, "trainable": trainable, "non_trainable": total - trainable}


def _weights_size(weights):
    return int(sum(math.prod(weight.shape) for weight in weights))


def _output_shape(layer):
    try:
        return tuple(layer.output.shape[1:])
    except (AttributeError, ValueError):
        return None
