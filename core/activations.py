"""What each layer of a network passes on for one image, taken after its nonlinearity, and which tensor that is.

A Conv2D with `activation="relu"` applies the ReLU inside the layer, so its output is already "after
ReLU". A Conv2D followed by BatchNormalization and an Activation layer (the batch-norm CNNs) outputs
numbers before both: those maps can be negative, and a page that shows them as "bright where the image
matches" would be wrong. `layer_activations` therefore takes, for every convolution block, the tensor
after its nonlinearity, says in words which tensor it is, and does the same for the hidden Dense layers
of every family and for the small CNN base nested inside a transfer model. `channel_contrast` finds the channel
that sets one class apart from the others.
"""

import weakref
from dataclasses import dataclass

import numpy as np

from core.errors import CoreError

MAX_EXPANDED_BASE_LAYERS = 40  # a registry CNN base is shown layer by layer; an ImageNet base as its final output

_extractors = weakref.WeakKeyDictionary()  # network -> (the layers shown, the model that outputs them); pages rerun often


@dataclass(frozen=True)
class LayerActivation:
    """One layer's output for one image: feature maps (H, W, C) or a Dense layer's units (N,)."""

    name: str
    values: np.ndarray
    tensor: str  # which tensor this is, in words
    nonlinearity: str | None  # the activation these numbers have been through ("relu", "tanh", ...)


def layer_activations(model, image_hwc) -> list[LayerActivation]:
    """Every convolution block's maps after its nonlinearity, every pooling, and every hidden Dense layer, in order."""
    return layer_activations_for_images(model, [image_hwc])[0]


def layer_activations_for_images(model, images) -> list[list[LayerActivation]]:
    """`layer_activations` of several images, in one pass through the network."""
    from core.backend import keras

    from core.inspection import _model_input

    chosen, extractor = _extractor(model)
    if extractor is None:  # no layer between the pixels and the prediction (an imported model): nothing to show
        return [[] for _ in images]
    values = extractor(np.concatenate([_model_input(model, image) for image in images]), training=False)
    values = [np.asarray(value) for value in (values if isinstance(values, (list, tuple)) else [values])]
    per_image = []
    for index in range(len(images)):
        activations = []
        for (layer, tensor, nonlinearity), value in zip(chosen, values):
            if isinstance(layer, keras.Model):  # a nested base: run it on the value that reaches it
                activations += _base_activations(layer, value[index:index + 1])
            else:
                activations.append(LayerActivation(layer.name, value[index], tensor, nonlinearity))
        per_image.append(activations)
    return per_image


@dataclass(frozen=True)
class ChannelContrast:
    """One layer's channels on a few test images of one class against as many of each other class."""

    indices: np.ndarray  # the class's test images shown
    maps: list  # their feature maps (H, W, C), in the same order
    class_mean: np.ndarray  # (C,) each channel's mean activation over the class's images
    other_mean: np.ndarray  # (C,) ... over the other classes' images
    other_count: int  # how many images of the other classes

    @property
    def most_specific(self) -> int:
        """The channel that fires most for this class beyond what it fires for the others."""
        return int(np.argmax(self.class_mean - self.other_mean))


def channel_contrast(model, images, labels, class_index: int, layer_name: str, per_class: int) -> ChannelContrast:
    """`layer_name`'s maps on the first `per_class` test images of `class_index`, and each channel's mean activation
    there against the first `per_class` images of every other class: a channel that fires on everything (a generic
    edge or texture) is not what sets this class apart."""
    from core.inspection import layer_maps_for_images

    indices = np.flatnonzero(labels == class_index)[:per_class]
    others = np.concatenate([np.flatnonzero(labels == other)[:per_class]
                             for other in np.unique(labels) if other != class_index] or [np.array([], dtype=int)])
    maps, class_mean = layer_maps_for_images(model, images[indices], layer_name)
    other_mean = layer_maps_for_images(model, images[others], layer_name)[1] if len(others) else np.zeros_like(class_mean)
    return ChannelContrast(indices, maps, class_mean, other_mean, len(others))


def _extractor(model):
    """The layers `layer_activations` shows and one Keras model that outputs them all (None when it shows none), built
    once per network."""
    from core.backend import keras

    from core.inspection import _output_in

    if model not in _extractors:
        chosen = _choose(model.layers[:-1])  # the last layer is the head: its outputs are the prediction itself
        targets = [_node_input(model, layer) if isinstance(layer, keras.Model) else _output_in(model, layer)
                   for layer, _, _ in chosen]
        _extractors[model] = (chosen, keras.Model(model.input, targets) if targets else None)
    return _extractors[model]


def initial_weight_range(layer) -> tuple[float, int, int] | None:
    """(limit, fan_in, fan_out) of a layer whose kernel started as glorot_uniform: each weight was drawn uniformly
    from -limit to +limit, limit = sqrt(6 / (fan_in + fan_out)); None for another initializer."""
    initializer = type(getattr(layer, "kernel_initializer", None)).__name__
    if initializer != "GlorotUniform":
        return None
    kernel_shape = tuple(layer.kernel.shape)
    receptive_field = int(np.prod(kernel_shape[:-2])) if len(kernel_shape) > 2 else 1
    fan_in, fan_out = kernel_shape[-2] * receptive_field, kernel_shape[-1] * receptive_field
    return float(np.sqrt(6 / (fan_in + fan_out))), fan_in, fan_out


def first_learned_layer(model):
    """The first Conv2D or Dense layer, looking inside a nested base: the layer whose weights meet the pixels."""
    from core.inspection import _all_layers

    return next((layer for layer in _all_layers(model) if type(layer).__name__ in ("Conv2D", "Dense")), None)


def first_dense_weights(model) -> np.ndarray:
    """A dense network's first Dense kernel as one image per unit: (height, width, channels, units)."""
    from core.backend import keras

    dense = next((layer for layer in model.layers if isinstance(layer, keras.layers.Dense)), None)
    height, width, channels = model.input_shape[1:]
    if dense is None or dense.kernel.shape[0] != height * width * channels:
        raise CoreError(f"The model {model.name!r} has no Dense layer right after Flatten, so its first weights are "
                        "not one per pixel. Pick a dense network (DNN).")
    return np.asarray(dense.kernel).reshape(height, width, channels, -1)


def _choose(layers) -> list[tuple]:
    """(layer, which tensor in words, nonlinearity) for the layers whose outputs are shown; a nested base as itself."""
    from core.backend import keras

    chosen, pending, last_nonlinearity = [], [], None
    for layer in layers:
        kind = type(layer).__name__
        activation = _activation_name(layer)
        if isinstance(layer, keras.Model):
            chosen.append((layer, "", None))
        elif isinstance(layer, keras.layers.Conv2D) and activation not in (None, "linear"):
            chosen.append((layer, f"the output of {layer.name} (Conv2D), after the {activation} built into the layer",
                           activation))
            last_nonlinearity = activation
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.BatchNormalization)):
            pending.append(f"{layer.name} ({kind})")  # no nonlinearity yet: these numbers can be negative
        elif isinstance(layer, keras.layers.Activation) and len(layer.output.shape) == 4:
            steps = " → ".join(pending + [f"{layer.name} ({activation})"])
            chosen.append((layer, f"the output of {steps}: after {activation}", activation))
            pending, last_nonlinearity = [], activation
        elif isinstance(layer, keras.layers.MaxPooling2D):
            after = f", still after {last_nonlinearity}" if last_nonlinearity else ""
            chosen.append((layer, f"the output of {layer.name} (MaxPooling2D): the largest value of each "
                                  f"{'×'.join(map(str, layer.pool_size))} block{after}", last_nonlinearity))
        elif isinstance(layer, keras.layers.Dense) and activation not in (None, "linear"):
            chosen.append((layer, f"the output of {layer.name} (Dense), after the {activation} built into the layer",
                           activation))
    return chosen


def _base_activations(base, base_input: np.ndarray) -> list[LayerActivation]:
    """The activations inside a nested CNN base, or its final output alone when it is a large ImageNet network."""
    from core.backend import keras

    chosen = _choose(base.layers)
    if not chosen or len(chosen) > MAX_EXPANDED_BASE_LAYERS or any(isinstance(layer, keras.Model) for layer, _, _ in chosen):
        output = np.asarray(base(base_input, training=False))[0]
        return [LayerActivation(base.name, output, f"the output of the pretrained base {base.name}, its last layer", None)]
    values = keras.Model(base.inputs, [layer.output for layer, _, _ in chosen])(base_input, training=False)
    values = values if isinstance(values, (list, tuple)) else [values]
    return [LayerActivation(layer.name, np.asarray(value)[0], f"inside the pretrained base: {tensor}", nonlinearity)
            for (layer, tensor, nonlinearity), value in zip(chosen, values)]


def _node_input(model, nested):
    """The tensor that `model` feeds into the nested model `nested` (its input in the outer graph)."""
    nodes_of_model = [node for nodes in model._nodes_by_depth.values() for node in nodes]
    calls = [node for node in nested._inbound_nodes if any(node is own for own in nodes_of_model)]
    return (calls or nested._inbound_nodes)[-1].input_tensors[0]


def _activation_name(layer) -> str | None:
    from core.backend import keras

    function = getattr(layer, "activation", None)
    if function is None:
        return None
    return keras.activations.serialize(function) if callable(function) else str(function)
