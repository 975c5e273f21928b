"""Shape arithmetic: how each layer of a real Keras model changes the image's size, with the formula.

The lesson's classic CNN on 28x28 images goes 28 -> 26 -> 13 -> 11 -> 5 -> Flatten 1600 -> 128 -> 10.
`shape_walkthrough(model)` explains every step from the model's own layer settings, so the text always
matches what Keras built. `network_plan` gives the same rows for the network core.models would build,
without building it (a 300x300 input can mean a Dense layer of a hundred million weights, which a page
should describe, not allocate); a test checks it row by row against the built model. `feature_map_sizes`
and `feature_map_problem` do the sums before a model is built, so that a CNN whose feature maps would
vanish is explained instead of built.

This module imports neither Keras nor numpy.
"""

import math
import numbers
import re
from types import SimpleNamespace

from core.config import PADDINGS
from core.errors import ConfigError
from core.guide import percent

POOL_SIZE = 2  # every convolution block of core.models ends in a 2x2 max pooling


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: str = "valid") -> int:
    """The side of a convolution's (or pooling's) output: floor((size - k + 2p) / s) + 1; 0 when nothing fits.

    "valid" adds no padding (p = 0). "same" pads so that the output is ceil(size / s), which for an odd
    kernel is the same formula with p = (k - 1) / 2.
    """
    for name, value in (("size", size), ("kernel_size", kernel_size), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ConfigError(f"{name} must be a whole number of pixels, 1 or more. Received: {name}={value!r}")
    if padding not in PADDINGS:
        raise ConfigError(f"padding must be one of {list(PADDINGS)}. Received: padding={padding!r}")
    if padding == "same":
        return math.ceil(size / stride)
    return (size - kernel_size) // stride + 1 if size >= kernel_size else 0


def validate_input_shape(input_shape) -> tuple[int, int, int]:
    """Return `input_shape` as (height, width, channels) of whole numbers, else raise ConfigError."""
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if not shape or len(shape) != 3 or not all(isinstance(side, numbers.Integral) and side > 0 for side in shape):
        raise ConfigError(
            "input_shape must be (height, width, channels), e.g. (28, 28, 1) for grayscale. "
            f"Received: input_shape={input_shape!r}"
        )
    return tuple(int(side) for side in shape)


def feature_map_sizes(input_shape, num_blocks, kernel_size=3, conv_strides=1, padding="valid"):
    """Height and width after every convolution and pooling: [(28, 28), (26, 26), (13, 13), ...]; 0 means nothing is left."""
    height, width = validate_input_shape(input_shape)[:2]
    sizes = [(height, width)]
    for _ in range(num_blocks):
        # A side that is already 0 stays 0: there is nothing left to convolve (conv_output_size refuses 0).
        height, width = (
            conv_output_size(side, kernel_size, conv_strides, padding) if side else 0 for side in (height, width)
        )
        sizes.append((height, width))
        height, width = height // POOL_SIZE, width // POOL_SIZE
        sizes.append((height, width))
    return sizes


def parameter_count(config, input_shape, num_classes: int) -> int | None:
    """The number of weights the DNN or CNN that `config` describes has for this input, computed without building it.

    None for a transfer model, whose size depends on its base, and for a CNN whose feature maps vanish.
    """
    plan = config_plan(config, input_shape, num_classes)
    return None if plan is None else sum(row["params"] for row in plan)


def config_plan(config, input_shape, num_classes: int) -> list[dict] | None:
    """`network_plan` for a DNN or CNN config; None for transfer, or for a CNN whose feature maps vanish."""
    if config.family == "dnn" or (config.family == "cnn" and not feature_map_problem(
            input_shape, config.filters, config.kernel_size, config.conv_strides, config.padding)):
        return network_plan(input_shape, num_classes, family=config.family, filters=config.filters,
                            kernel_size=config.kernel_size, conv_strides=config.conv_strides, padding=config.padding,
                            batch_norm=config.batch_norm, hidden_units=config.hidden_units,
                            activation=config.activation, dropout_rate=config.dropout_rate)
    return None


def check_model_size(config, input_shape, num_classes: int):
    """Raise ConfigError when the network would be too large to train on a classroom server."""
    from core.config import MAX_PARAMETERS

    count = parameter_count(config, input_shape, num_classes)
    if count is not None and count > MAX_PARAMETERS:
        advice = "more convolution blocks, fewer filters or fewer hidden units" if config.family == "cnn" else (
            "fewer hidden units, a smaller image_size, or a CNN")
        raise ConfigError(
            f"This network would have {count / 1e6:,.1f} million weights; the limit is {MAX_PARAMETERS / 1e6:.0f} million "
            f"(about {16 * count / 2**30:.1f} GiB of memory to train it). Use {advice}. "
            f"Received: family={config.family!r}, filters={config.filters}, hidden_units={config.hidden_units}, "
            f"input_shape={tuple(input_shape)}"
        )


def feature_map_problem(input_shape, filters, kernel_size, conv_strides, padding):
    """A sentence explaining where the feature maps vanish, or None when every block fits."""
    sizes = feature_map_sizes(input_shape, len(filters), kernel_size, conv_strides, padding)
    first_empty = next((index for index, size in enumerate(sizes) if min(size) < 1), None)
    if first_empty is None:
        return None
    block = (first_empty + 1) // 2
    stage = "convolution" if first_empty % 2 else "pooling"  # the sizes: the input, then each convolution and pooling
    usable_blocks = (first_empty - 1) // 2
    path = " -> ".join(_size_text(size) for size in sizes[: first_empty + 1])
    if padding == "same":
        conv_effect = "keeps the size" if conv_strides == 1 else f"with stride {conv_strides} makes each side ⌈side / {conv_strides}⌉"
    elif conv_strides == 1:
        conv_effect = f"trims {kernel_size - 1} pixels"
    else:
        conv_effect = f"with stride {conv_strides} makes each side ⌊(side − {kernel_size}) / {conv_strides}⌋ + 1"
    settings = _more_room(input_shape, len(filters), kernel_size, conv_strides, padding)
    remedies = " or ".join([", ".join(settings[:-1]), settings[-1]] if len(settings) > 1 else settings)
    advice = (f"Use at most {usable_blocks} block{'' if usable_blocks == 1 else 's'} for this input, or {remedies}"
              if usable_blocks else f"Not even one block fits this input: use {remedies}")
    return (
        f"Convolution block {block} has nothing left to look at after its {stage}: the feature map shrinks {path}. "
        f"Each {kernel_size}x{kernel_size} '{padding}' convolution {conv_effect} and each 2x2 max pooling halves it. "
        f"{advice}. "
        f"Received: filters={tuple(filters)}, input_shape={tuple(input_shape)}"
    )


def in_control_words(problem: str) -> str:
    """A feature-map problem with the settings named as the pages' controls name them ("stride 1", "'same' padding",
    "a larger input size", not conv_strides=1 …), without its received values: for a page."""
    for code, words in (("conv_strides=1", "stride 1"), ("padding='same'", "'same' padding"), ("image_size", "input size"),
                        (" -> ", " → ")):
        problem = problem.replace(code, words)
    return re.sub(r"(\d)x(\d)", r"\1×\2", problem.split(" Received: ")[0])


def _more_room(input_shape, blocks: int, kernel_size, conv_strides, padding) -> list[str]:
    """The changes that each, alone, give every block something to look at: stride 1, 'same' padding (or both
    together when neither alone does), and the smallest input size that fits."""
    def fits(shape, strides, pad):
        return min(feature_map_sizes(shape, blocks, kernel_size, strides, pad)[-1]) >= 1

    height, width, channels = validate_input_shape(input_shape)
    settings = [text for text, strides, pad in (("conv_strides=1", 1, padding), ("padding='same'", conv_strides, "same"))
                if (strides, pad) != (conv_strides, padding) and fits(input_shape, strides, pad)]
    if not settings and conv_strides > 1 and padding == "valid" and fits(input_shape, 1, "same"):
        settings.append("conv_strides=1 and padding='same'")
    side = next((side for side in range(max(height, width) + 1, 4097)
                 if fits((side, side, channels), conv_strides, padding)), None)
    return settings + ([f"a larger image_size (at least {side})"] if side else [])


def _size_text(size):
    height, width = size
    return str(height) if height == width else f"{height}x{width}"


def shape_walkthrough(model) -> list[dict]:
    """One row per layer: name, type, output shape, parameters, and the arithmetic behind both."""
    rows = []
    for layer in model.layers:
        input_shape = _shape(getattr(layer, "input", None))
        output_shape = _shape(getattr(layer, "output", None))
        kind = type(layer).__name__
        explain = EXPLAINERS.get(kind, _explain_other)
        formula, params_formula, computed = explain(layer, input_shape or output_shape)
        rows.append({
            "layer": layer.name,
            "type": kind,
            "output_shape": output_shape,
            "params": int(sum(math.prod(weight.shape) for weight in layer.weights)),
            "formula": formula,
            "params_formula": params_formula,
            "computed_shape": computed,
        })
    return rows


def shape_flow(rows: list[dict]) -> str:
    """The side of the feature map through the network, e.g. '28 → 26 → 13 → 11 → 5 → 1,600' (Flatten's length last)."""
    steps = []
    for row in rows:
        shape = row["output_shape"]
        if row["type"] in ("InputLayer", "Conv2D", "MaxPooling2D") and shape:
            steps.append(str(shape[0]) if shape[0] == shape[1] else f"{shape[0]}×{shape[1]}")
        elif row["type"] == "Flatten" and shape:
            steps.append(f"{shape[0]:,}")
    return " → ".join(steps)


def network_plan(input_shape, num_classes: int, family: str = "cnn", filters=(32, 64), kernel_size: int = 3,
                 conv_strides: int = 1, padding: str = "valid", batch_norm: bool = False, hidden_units=(128,),
                 activation: str = "relu", dropout_rate: float = 0.0) -> list[dict]:
    """The rows `shape_walkthrough` gives for core.models' DNN or CNN with these settings, by arithmetic alone."""
    shape = validate_input_shape(input_shape)
    layers = [_planned("image", "InputLayer"), _planned("rescale", "Rescaling", scale=1 / 255)]
    if family == "cnn":
        problem = feature_map_problem(shape, filters, kernel_size, conv_strides, padding)
        if problem:
            raise ConfigError(problem, student=in_control_words(problem))
        for block, count in enumerate(filters, start=1):
            conv = dict(kernel_size=(kernel_size,) * 2, strides=(conv_strides,) * 2, padding=padding, filters=count)
            layers.append(_planned(f"conv_{block}", "Conv2D", use_bias=not batch_norm, **conv))
            if batch_norm:
                layers += [_planned(f"batch_norm_{block}", "BatchNormalization"), _planned(f"{activation}_{block}", "Activation")]
            layers.append(_planned(f"pool_{block}", "MaxPooling2D", pool_size=(POOL_SIZE,) * 2, strides=(POOL_SIZE,) * 2,
                                   padding="valid"))
    layers.append(_planned("flatten", "Flatten"))
    for index, units in enumerate(hidden_units, start=1):
        layers.append(_planned(f"dense_{index}", "Dense", units=units, use_bias=True))
        if dropout_rate > 0:
            layers.append(_planned(f"dropout_{index}", "Dropout"))
    layers.append(_planned("head", "Dense", units=1 if num_classes == 2 else num_classes, use_bias=True))

    rows = []
    for layer in layers:
        formula, params_formula, output_shape = EXPLAINERS[layer.kind](layer, shape)
        rows.append({"layer": layer.name, "type": layer.kind, "output_shape": tuple(output_shape),
                     "params": _planned_params(layer, shape), "formula": formula, "params_formula": params_formula,
                     "computed_shape": output_shape})
        shape = tuple(output_shape)
    return rows


def plan_summary(rows: list[dict]) -> dict:
    """Totals a page shows about a network: parameters, the Flatten length, the biggest layer, and memory.

    Memory is for float32 numbers (4 bytes): the weights, and the feature maps one image produces on its way
    through (training keeps them for the backward pass, for every image of the batch).
    """
    biggest = max(rows, key=lambda row: row["params"])
    flatten = next((row for row in rows if row["type"] == "Flatten"), None)
    total = sum(row["params"] for row in rows)
    values_per_image = sum(math.prod(row["output_shape"]) for row in rows if row["type"] != "InputLayer")
    return {"parameters": total, "flatten length": flatten["output_shape"][0] if flatten else None,
            "biggest layer": biggest["layer"], "biggest layer parameters": biggest["params"],
            "biggest layer type": biggest["type"],
            "weights bytes": 4 * total, "feature map bytes per image": 4 * values_per_image}


def biggest_layer_note(summary: dict) -> str:
    """Why the layer holding most parameters holds them (`plan_summary`'s figures): a Dense layer after Flatten grows
    with the square of the input side; a convolution's weights do not grow with the image at all."""
    fraction = summary["biggest layer parameters"] / summary["parameters"]
    share = percent(fraction, decimals=1 if 0.99 < fraction < 1 else 0)  # 10,616,960 of 10,637,642 is 99.8%, not 100%
    if summary["biggest layer type"] == "Conv2D":
        return (f"Here {summary['biggest layer']} holds {share} of the parameters: a convolution has one small filter "
                "(kernel × kernel × its input channels weights) per output channel, so many filters on many channels "
                "add up; it does not grow with the input side, only its feature map does.")
    return (f"Here {summary['biggest layer']} holds {share} of the parameters: a Dense layer after Flatten connects "
            f"every one of the {summary['flatten length'] or 0:,} flattened numbers to every unit, so it grows with the "
            "square of the input side. Pooling and 'valid' convolutions shrink the map, and with it that layer.")


def multiply_adds(rows: list[dict]) -> int:
    """The multiplications (each with its addition) one image costs on its way through the planned network: a
    convolution's weights once per output position, a dense layer's once. What a training's time grows with."""
    return sum(math.prod(row["output_shape"][:2]) * row["params"] if row["type"] == "Conv2D" else row["params"]
               for row in rows if row["type"] in ("Conv2D", "Dense"))


def _planned(name, kind, **settings):
    return SimpleNamespace(name=name, kind=kind, **settings)


def _planned_params(layer, shape) -> int:
    """The weights of a planned layer: kernels and biases, BatchNorm's four numbers per channel, else none."""
    if layer.kind == "Conv2D":
        return (math.prod(layer.kernel_size) * shape[-1] + layer.use_bias) * layer.filters
    if layer.kind == "Dense":
        return (shape[-1] + layer.use_bias) * layer.units
    if layer.kind == "BatchNormalization":
        return 4 * shape[-1]
    return 0


def _explain_input(layer, shape):
    return f"the image: {_times(shape)}", "0", shape


def _explain_rescaling(layer, shape):
    return f"every pixel × {_number(layer.scale)}: shape unchanged, {_times(shape)}", "0 (fixed, not learned)", shape


def _explain_conv(layer, shape):
    """Conv2D: each side shrinks by the kernel (valid) or stays (same), divided by the stride."""
    kernel_height, kernel_width = layer.kernel_size
    stride_height, stride_width = layer.strides
    height, width, channels = shape
    out_height = conv_output_size(height, kernel_height, stride_height, layer.padding)
    out_width = conv_output_size(width, kernel_width, stride_width, layer.padding)
    side = _side_formula(height, kernel_height, stride_height, layer.padding, out_height)
    if (height, kernel_height, stride_height) != (width, kernel_width, stride_width):
        side = f"height {side}; width {_side_formula(width, kernel_width, stride_width, layer.padding, out_width)}"
    formula = f"{side}, with {layer.filters} filters → {out_height} × {out_width} × {layer.filters}"
    weights = f"{kernel_height} × {kernel_width} × {channels}"
    if layer.use_bias:
        total = (kernel_height * kernel_width * channels + 1) * layer.filters
        params = f"({weights} + 1 bias) × {layer.filters} filters = {total:,}"
    else:
        params = f"{weights} × {layer.filters} filters (no bias) = {kernel_height * kernel_width * channels * layer.filters:,}"
    return formula, params, (out_height, out_width, layer.filters)


def _explain_pool(layer, shape):
    """MaxPooling2D: keep the largest of each pool_size block: 2x2 with stride 2 halves each side, rounding down."""
    pool_height, pool_width = layer.pool_size
    stride_height, stride_width = layer.strides
    height, width, channels = shape
    out_height = conv_output_size(height, pool_height, stride_height, layer.padding)
    out_width = conv_output_size(width, pool_width, stride_width, layer.padding)
    if layer.padding == "valid" and pool_height == stride_height:
        side = f"⌊{height} / {pool_height}⌋ = {out_height}"
    else:
        side = _side_formula(height, pool_height, stride_height, layer.padding, out_height)
    if (height, pool_height, stride_height) != (width, pool_width, stride_width):
        side += f" (height); width → {out_width}"
    formula = f"{side}, channels unchanged → {out_height} × {out_width} × {channels}"
    return formula, "0 (nothing to learn)", (out_height, out_width, channels)


def _explain_flatten(layer, shape):
    size = math.prod(shape)
    return f"{_times(shape)} = {size:,} numbers in one row", "0", (size,)


def _explain_dense(layer, shape):
    inputs = shape[-1]
    weights = inputs * layer.units + (layer.units if layer.use_bias else 0)
    bias = " + 1 bias" if layer.use_bias else ""
    formula = f"{layer.units} units (neurons), each looking at all {inputs:,} inputs"
    return formula, f"({inputs:,}{bias}) × {layer.units} units = {weights:,}", (*shape[:-1], layer.units)


def _explain_batch_norm(layer, shape):
    channels = shape[-1]
    return (f"normalises each of the {channels} channels: shape unchanged",
            f"4 × {channels} = {4 * channels:,} (scale and shift are learned; mean and variance are running statistics)", shape)


def _explain_unchanged(layer, shape):
    return f"shape unchanged, {_times(shape)}", "0", shape


def _explain_other(layer, shape):
    return "", "", None


EXPLAINERS = {
    "InputLayer": _explain_input,
    "Rescaling": _explain_rescaling,
    "Conv2D": _explain_conv,
    "MaxPooling2D": _explain_pool,
    "Flatten": _explain_flatten,
    "Dense": _explain_dense,
    "BatchNormalization": _explain_batch_norm,
    "Activation": _explain_unchanged,
    "Dropout": _explain_unchanged,
}


def _side_formula(size, kernel_size, stride, padding, result):
    """The text of one side's arithmetic, e.g. '⌊(28 − 3 + 2·0) / 1⌋ + 1 = 26'."""
    if padding == "same" and kernel_size % 2 == 0:
        return f"'same' padding: ⌈{size} / {stride}⌉ = {result}"
    pad = (kernel_size - 1) // 2 if padding == "same" else 0
    return f"⌊({size} − {kernel_size} + 2·{pad}) / {stride}⌋ + 1 = {result}"


def _shape(tensor):
    """A tensor's shape per image (no batch axis) as a tuple of ints, or None."""
    try:
        return tuple(int(side) for side in tensor.shape[1:])
    except (AttributeError, TypeError, ValueError):
        return None


def _times(shape):
    return " × ".join(str(side) for side in shape)


def _number(value):
    value = float(value)
    return "1/255" if math.isclose(value, 1 / 255) else f"{value:g}"
