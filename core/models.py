"""Model factories: a DNN, a CNN and a transfer-learning model, each taking raw pixels 0..255.

Also the head and loss for a task, and the layer summaries and parameter counts the pages show.
Warnings about a configuration are in core.lint, the ImageNet weight files in core.pretrained and
the shape arithmetic of convolution blocks in core.shapes.
"""

import math

import numpy as np

from core.backend import keras  # first: core.backend says why
from keras import layers  # after core.backend
from core.config import REGISTRY_BASE_PREFIX, TrainConfig, validate_key
from core.errors import ConfigError
from core.pretrained import APPLICATIONS, application_image_size, pretrained_weights_path
from core.shapes import POOL_SIZE, check_model_size, feature_map_problem, validate_input_shape

# Batch norm's test-time statistics average about the last 1 / (1 - momentum) batches. Keras' default, 0.99, needs
# hundreds of batches to forget the initial ones: a few epochs on a small subset then scored near 50% on the test set.
BATCH_NORM_MOMENTUM = 0.9
IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)
LUMINANCE_WEIGHTS = (0.299, 0.587, 0.114)


# ----- Heads ------------------------------------------------------------------------------------


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


# ----- Model factories --------------------------------------------------------------------------


def build_model(config: TrainConfig, input_shape, num_classes, base_loader=None):
    """The uncompiled model that `config` describes, for images of `input_shape` and `num_classes` classes."""
    check_model_size(config, input_shape, num_classes)
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
    inputs = keras.Input(shape=validate_input_shape(input_shape), name="image")
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
    input_shape = validate_input_shape(input_shape)
    problem = feature_map_problem(input_shape, filters, kernel_size, conv_strides, padding)
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
    input_shape = validate_input_shape(input_shape)
    inputs = keras.Input(shape=input_shape, name="image")
    if base_model.startswith(REGISTRY_BASE_PREFIX):
        base = _registry_base(base_model[len(REGISTRY_BASE_PREFIX) :], base_loader)
        x = _adapt_image(inputs, input_shape, base.input_shape[1:])
        _freeze_base(base, fine_tune_layers)
        x = base(x, training=False)
        x = layers.Flatten(name="flatten")(x)
    elif base_model in APPLICATIONS:
        image_size = application_image_size(base_model, input_shape)
        base = application_base(base_model, image_size, weights)
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


def set_fine_tuning(model, fine_tune_layers: int):
    """Freeze a transfer model's base except its top `fine_tune_layers` layers (0 freezes it all); compile after."""
    bases = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(bases) != 1:
        raise ConfigError(f"Expected a transfer model with one pretrained base inside. Received: model {model.name!r} "
                          f"with {len(bases)} nested models")
    _freeze_base(bases[0], fine_tune_layers)


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


def application_base(base_model, image_size, weights):
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
