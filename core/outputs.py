"""What a classifier's last layer outputs: probabilities or not, and softmax or sigmoid worked out by the numbers.

`output_kind` tells whether a model's outputs can be read as one probability per class (a softmax over
as many units as classes, or one sigmoid unit for two classes) and, when not, why, in a student's words.
`output_steps` recomputes the last layer for one image: the scores before the activation (the logits),
their exponentials, the sum and the division, so a page can show where each percentage comes from.
"""

import math
import weakref
from dataclasses import dataclass

import numpy as np

# exp() of a float64 overflows above about 709; Keras subtracts the largest logit first, which changes nothing
MAX_PLAIN_EXPONENT = 50.0


@dataclass(frozen=True)
class OutputKind:
    """How to read a model's outputs: 'softmax' or 'sigmoid' probabilities, or 'scores' that are not probabilities."""

    kind: str
    activation: str | None
    units: int
    reason: str | None = None  # why the outputs are not probabilities

    @property
    def are_probabilities(self) -> bool:
        return self.kind in ("softmax", "sigmoid")


@dataclass(frozen=True)
class SoftmaxSteps:
    """softmax(z)_i = exp(z_i - shift) / sum_j exp(z_j - shift); shift is 0 unless the logits are large."""

    logits: np.ndarray
    shift: float
    exponentials: np.ndarray
    total: float
    probabilities: np.ndarray


@dataclass(frozen=True)
class SigmoidSteps:
    """sigmoid(z) = 1 / (1 + exp(-z)): the probability of the second class."""

    logit: float
    exponential: float  # exp(-z)
    probability: float


def output_kind(model, num_classes: int) -> OutputKind:
    """Whether `model`'s outputs are one probability per class for `num_classes` classes, and if not, why."""
    from core.lint import output_activation

    units, activation = int(model.output_shape[-1]), output_activation(model)
    if activation == "softmax" and units == 1:
        return OutputKind("scores", activation, units,
                          "The last layer is a softmax over a single unit, which outputs 1.0 for every image: it "
                          "cannot tell any classes apart, so its output is not a probability of anything.")
    if activation == "softmax" and units == num_classes:
        return OutputKind("softmax", activation, units)
    if activation == "sigmoid" and units == 1 and num_classes == 2:
        return OutputKind("sigmoid", activation, units)
    if activation == "softmax":
        reason = f"The softmax has {units} units but the model has {num_classes} class names."
    elif activation == "sigmoid" and units == 1:
        reason = (f"One sigmoid unit gives one probability, enough for two classes, but the model has {num_classes} "
                  "class names.")
    elif activation == "sigmoid":
        reason = (f"The last layer has {units} separate sigmoid units: each is its own yes/no score and together they "
                  "do not add up to 1, so they are not one probability per class.")
    else:
        reason = (f"The last layer has no softmax or sigmoid (activation={activation!r}), so its outputs are raw "
                  "scores (logits) that can be any number, not probabilities.")
    return OutputKind("scores", activation, units, reason)


def raw_outputs(model, model_input: np.ndarray) -> np.ndarray:
    """The model's output vector for one (H, W, C) image, exactly as the last layer gives it."""
    # predict_on_batch runs Keras' compiled predict function: 2 ms for the fast CNN, against 17 ms for an eager model(x)
    return np.asarray(model.predict_on_batch(model_input[np.newaxis].astype("float32")), dtype=np.float64)[0]


def output_steps(model, model_input: np.ndarray) -> SoftmaxSteps | SigmoidSteps | None:
    """The last layer's arithmetic for one image; None when it ends in neither softmax nor sigmoid."""
    logits = head_logits(model, model_input)
    if logits is None:
        return None
    from core.lint import output_activation

    if output_activation(model) == "sigmoid" and len(logits) == 1:
        return sigmoid_steps(float(logits[0]))
    return softmax_steps(logits)


def softmax_steps(logits) -> SoftmaxSteps:
    """Exponentiate each logit and divide by the sum; the largest logit is subtracted first only when it is large."""
    logits = np.asarray(logits, dtype=np.float64)
    shift = float(logits.max()) if abs(logits.max()) > MAX_PLAIN_EXPONENT else 0.0
    exponentials = np.exp(logits - shift)
    total = float(exponentials.sum())
    return SoftmaxSteps(logits, shift, exponentials, total, exponentials / total)


def sigmoid_steps(logit: float) -> SigmoidSteps:
    """1 / (1 + exp(-z)), written so that a very negative z does not overflow."""
    exponential = math.exp(-logit) if -logit < 700 else math.inf
    return SigmoidSteps(float(logit), exponential, 1.0 / (1.0 + exponential))


_LOGIT_FUNCTIONS = weakref.WeakKeyDictionary()  # model -> function(image batch) -> logits


def head_logits(model, model_input: np.ndarray) -> np.ndarray | None:
    """The scores the last softmax or sigmoid turns into probabilities, for one image; None for other heads."""
    function = _LOGIT_FUNCTIONS.get(model)
    if function is None:
        function = _LOGIT_FUNCTIONS[model] = _logit_function(model)
    if function is False:
        return None
    return function(model_input[np.newaxis].astype("float32"))[0]


def _logit_function(model):
    """A function from an image batch to the logits: Dense(..., activation=softmax/sigmoid) recomputed without its
    activation, or the input of a final Activation/Softmax layer; False when the model ends otherwise."""
    from core.backend import keras

    from core.lint import output_activation

    if output_activation(model) not in ("softmax", "sigmoid"):
        return False
    last = model.layers[-1]
    before_activation = keras.Model(model.inputs, last.input)
    if isinstance(last, keras.layers.Dense):
        kernel, *bias = (np.asarray(weight, dtype=np.float64) for weight in last.get_weights())
        offset = bias[0] if bias else 0.0
        return lambda batch: np.asarray(before_activation.predict_on_batch(batch), dtype=np.float64) @ kernel + offset
    return lambda batch: np.asarray(before_activation.predict_on_batch(batch), dtype=np.float64)
