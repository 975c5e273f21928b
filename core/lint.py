"""Plain-language warnings about a training configuration (`lint`), a model built by hand (`lint_model`), or a
model file made elsewhere (`model_warnings`: run on every import and stored in its card).

Each warning says what is wrong and what to change; none of them stops training or importing.
"""

import functools
import re

import numpy as np

from core.backend import keras  # first: core.backend says why
from keras import layers  # after core.backend
from core.config import FINE_TUNE_RATE_DIVISOR, TrainConfig
from core.models import build_model, head
from core.pretrained import APPLICATIONS, application_image_size
from core.shapes import feature_map_problem, validate_input_shape

LARGE_MODEL_PARAMS = 5_000_000
# Learning rates that usually train well with each optimizer; lint warns when far outside.
USUAL_LEARNING_RATES = {"adam": (1e-4, 1e-2), "rmsprop": (1e-4, 1e-2), "sgd": (1e-3, 1e-1)}


# The settings as the Train page's controls name them: a page shows `in_page_words(warning)`, the command line the
# names its flags and TrainConfig use.
PAGE_WORDS = {"train_subset": "training images", "image_size": "input size", "learning_rate": "learning rate",
              "batch_size": "batch size", "kernel_size": "kernel size", "dropout_rate": "dropout",
              "early_stopping_patience": "patience", "fine_tune_layers": "layers to fine-tune", "epochs": "epochs"}


def in_page_words(warning: str) -> str:
    """A lint warning with the settings named as the Train page's controls are ('Learning rate 0.1', not
    'learning_rate=0.1')."""
    from core.shapes import in_control_words

    warning = in_control_words(warning)  # a network too deep for its images: stride, padding, arrows
    for name, words in PAGE_WORDS.items():
        warning = re.sub(rf"\b{name}(=?)", lambda found, words=words: words + (" " if found.group(1) else ""), warning)
    return warning[:1].upper() + warning[1:]


def preflight(config: TrainConfig, root) -> list[str]:
    """Before a training: raise when `config` cannot be trained here (too few photos for fair splits, a network too
    large), else its warnings; the Train page shows them, `python -m core train` prints them."""
    from core.catalogue import dataset_info, input_shape_for
    from core.datasets import check_trainable
    from core.shapes import check_model_size

    info = dataset_info(config.dataset, root)
    input_shape = input_shape_for(info, config.image_size, config.color_mode)
    check_trainable(root, config.dataset, config.validation_fraction)
    check_model_size(config, input_shape, len(info.class_names))
    return lint(config, input_shape, len(info.class_names))


def lint(config: TrainConfig, input_shape, num_classes) -> list[str]:
    """Plain-language warnings about `config` for this data, each saying what to change."""
    warnings = []
    if isinstance(num_classes, (int, np.integer)) and num_classes < 2:
        return [f"A classifier needs at least 2 classes, but this data has {num_classes}. Add images of another class."]
    warnings += _learning_rate_warnings(config)
    problem = None
    if config.family == "cnn":
        image_shape = validate_input_shape(input_shape)
        problem = feature_map_problem(image_shape, config.filters, config.kernel_size, config.conv_strides, config.padding)
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
    units, activation = model.output_shape[-1], output_activation(model)
    loss_name, from_logits = _loss_name(loss)
    warnings = _head_warnings(units, activation, num_classes, from_logits, "the data has")
    warnings += _loss_warnings(loss_name, units, num_classes)
    warnings += _input_warnings(model, input_shape)
    return warnings


def model_warnings(model, class_names) -> list[str]:
    """What is wrong with a model made elsewhere, for the classes it is said to predict: its head, its weights,
    its class names and the pixels it expects. Run on every import; the card keeps the result."""
    units, activation = int(model.output_shape[-1]), output_activation(model)
    warnings = _head_warnings(units, activation, len(class_names), False, "it has class names for")
    if activation not in ("sigmoid", "softmax") or (activation == "softmax" and units == 1):
        warnings.append("Its outputs are not probabilities, so the Predict page shows them as raw scores, not percentages.")
    warnings += _weight_warnings(model)
    warnings += _class_name_warnings(class_names)
    if not _has_rescaling(model):
        warnings.append(
            "The model has no Rescaling layer, so it expects its pixels scaled outside the model, the way it was trained. "
            "This app gives it raw pixels from 0 to 255; if it was trained on images divided by 255 (as the classic "
            "course does before fit), its predictions here will be wrong. Re-save it with layers.Rescaling(1/255) "
            "right after keras.Input."
        )
    return warnings


def _head_warnings(units, activation, num_classes, from_logits, classes_phrase) -> list[str]:
    """The last layer against the number of classes: softmax over one unit, non-probability outputs, wrong sizes."""
    warnings = []
    if units == 1 and activation == "softmax":
        warnings.append(
            "The last layer is Dense(1, activation='softmax'). Softmax over a single number always outputs 1.0, "
            "so the model cannot learn anything. For two classes use Dense(1, activation='sigmoid') with "
            "loss='binary_crossentropy'; for N classes use Dense(N, activation='softmax')."
        )
    elif activation == "sigmoid" and units > 1:
        warnings.append(
            f"The last layer has {units} sigmoid units: each output is a separate yes/no probability, and together they "
            f"do not add up to 1. For one class per image use Dense({units}, activation='softmax') with "
            "loss='sparse_categorical_crossentropy'."
        )
    elif activation not in (None, "sigmoid", "softmax") and not from_logits:
        wanted = "sigmoid" if units == 1 else "softmax"
        warnings.append(
            f"The last layer uses activation='{activation}', so its outputs are not probabilities. "
            f"Use activation='{wanted}' on the last layer (or a loss with from_logits=True)."
        )
    unit_word = "unit" if units == 1 else "units"
    if num_classes and num_classes > 2 and units != num_classes:
        warnings.append(
            f"The last layer has {units} {unit_word} but {classes_phrase} {num_classes} classes. "
            f"Use Dense({num_classes}, activation='softmax'): one probability per class."
        )
    if num_classes == 2 and units not in (1, 2):
        warnings.append(
            f"The last layer has {units} {unit_word} but {classes_phrase} 2 classes. "
            "Use Dense(1, activation='sigmoid') with loss='binary_crossentropy'."
        )
    return warnings


def _weight_warnings(model) -> list[str]:
    """Layers whose weights hold NaN or infinity: a training that diverged, whose every prediction is NaN."""
    broken = []
    for layer in model.layers:
        values = [np.asarray(weight) for weight in layer.get_weights()]
        bad = sum(int(np.size(value) - np.count_nonzero(np.isfinite(value))) for value in values)
        if bad:
            broken.append(f"'{layer.name}' ({bad:,} of {sum(np.size(value) for value in values):,})")
    if not broken:
        return []
    return [
        f"Weights that are NaN or infinite (not numbers) in {', '.join(broken)}: every prediction of this model is NaN. "
        "Its training diverged; train it again with a smaller learning rate."
    ]


def _class_name_warnings(class_names) -> list[str]:
    """Class names given twice: two outputs would be shown under the same name."""
    positions = {}
    for index, name in enumerate(class_names):
        positions.setdefault(name, []).append(index)
    repeated = {name: indices for name, indices in positions.items() if len(indices) > 1}
    return [
        f"The class name '{name}' is given to outputs {', '.join(map(str, indices))}: their predictions cannot be told "
        "apart. Give each output its own name, in the order the model was trained with."
        for name, indices in repeated.items()
    ]


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
    tuning_rate = config.learning_rate / (FINE_TUNE_RATE_DIVISOR if config.fine_tunes_in_two_phases else 1)
    if config.fine_tune_layers and tuning_rate > 1e-3:
        if config.fine_tunes_in_two_phases:
            where = f"the second phase's learning_rate / {FINE_TUNE_RATE_DIVISOR} = {tuning_rate:g}"
            fix = f"learning_rate={1e-3 * FINE_TUNE_RATE_DIVISOR:g} or less (the second phase then runs at 0.001 or less)"
        else:
            where, fix = f"learning_rate={config.learning_rate:g}", "learning_rate=0.0001"
        warnings.append(
            f"Fine-tuning pretrained layers with {where} can wreck the features they learnt. Use {fix} when "
            "fine_tune_layers > 0."
        )
    if config.base_model in APPLICATIONS:
        image_size = application_image_size(config.base_model, input_shape)
        height, width, channels = validate_input_shape(input_shape)
        if image_size[0] * image_size[1] >= 4 * height * width:
            warnings.append(
                f"{APPLICATIONS[config.base_model]['title']} needs larger images, so each {height}x{width} image is "
                f"enlarged to {image_size[0]}x{image_size[1]} inside the model; training is much slower on a CPU. "
                "Use fewer training images, or a larger image_size if the original images are bigger."
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


def output_activation(model):
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
    if not _has_rescaling(model):
        warnings.append(
            "The model has no Rescaling layer, so raw pixel values 0..255 reach the first layer and training is "
            "unstable. Add layers.Rescaling(1/255) right after keras.Input."
        )
    return warnings


def _has_rescaling(model) -> bool:
    """True when the model scales its own pixels (Rescaling or Normalization), or nests a base that does."""
    has_nested_base = any(isinstance(layer, keras.Model) for layer in model.layers)
    return has_nested_base or any(isinstance(layer, (layers.Rescaling, layers.Normalization)) for layer in model.layers)
