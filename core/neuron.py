"""Hello, neuron: one Dense unit learns the line y = 2x - 1 from six points.

The classic first lesson of the TensorFlow course, with a real Keras model and real SGD.
"""

import math
import numbers
from dataclasses import dataclass

import numpy as np

from core.errors import ConfigError

XS = (-1.0, 0.0, 1.0, 2.0, 3.0, 4.0)
TRUE_WEIGHT = 2.0
TRUE_BIAS = -1.0
QUERY_X = 10.0
MAX_EPOCHS = 5000
MAX_LEARNING_RATE = 1.0


@dataclass(frozen=True)
class LineFit:
    """What one neuron learned: its weight and bias, the loss after every epoch and its guess for x = 10."""

    epochs: int
    learning_rate: float
    seed: int
    weight: float
    bias: float
    losses: list[float]
    prediction: float  # the model's output for QUERY_X

    @property
    def final_loss(self) -> float:
        return self.losses[-1]

    @property
    def diverged(self) -> bool:
        """True when the learning rate was too large: the loss blew up instead of shrinking."""
        finite = all(math.isfinite(value) for value in self.losses) and math.isfinite(self.prediction)
        return not finite or self.final_loss > self.losses[0]


def training_points() -> tuple[np.ndarray, np.ndarray]:
    """The six (x, y) pairs of the lesson, as float32 columns."""
    xs = np.array(XS, dtype="float32").reshape(-1, 1)
    return xs, TRUE_WEIGHT * xs + TRUE_BIAS


def build_neuron(learning_rate: float = 0.01):
    """A single Dense unit, compiled with plain SGD and mean squared error."""
    from tensorflow import keras

    model = keras.Sequential([keras.Input(shape=(1,)), keras.layers.Dense(units=1, name="neuron")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate), loss="mean_squared_error")
    return model


def fit_line(epochs: int = 500, learning_rate: float = 0.01, seed: int = 0) -> LineFit:
    """Train one neuron on the six points for `epochs` full-batch SGD steps.

    Each epoch is one batch of all six points, exactly what `model.fit(xs, ys, epochs=epochs,
    batch_size=6)` does, but through `train_on_batch`, which skips fit's per-epoch setup and
    runs hundreds of epochs in well under a second.
    """
    _check_arguments(epochs, learning_rate, seed)
    epochs, learning_rate, seed = int(epochs), float(learning_rate), int(seed)
    from tensorflow import keras

    keras.utils.set_random_seed(seed)
    xs, ys = training_points()
    model = build_neuron(learning_rate)
    losses = [float(model.train_on_batch(xs, ys)) for _ in range(epochs)]
    kernel, bias = model.get_layer("neuron").get_weights()
    prediction = model.predict(np.array([[QUERY_X]], dtype="float32"), verbose=0)
    return LineFit(epochs, learning_rate, seed, float(kernel[0, 0]), float(bias[0]), losses, float(prediction[0, 0]))


def _check_arguments(epochs, learning_rate, seed):
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or not 1 <= epochs <= MAX_EPOCHS:
        raise ConfigError(f"epochs must be a whole number from 1 to {MAX_EPOCHS}. Received: epochs={epochs!r}")
    is_number = isinstance(learning_rate, numbers.Real) and not isinstance(learning_rate, bool)
    if not is_number or not 0 < learning_rate <= MAX_LEARNING_RATE:
        raise ConfigError(
            f"learning_rate must be a number above 0 and at most {MAX_LEARNING_RATE} (0.01 is the classic choice). "
            f"Received: learning_rate={learning_rate!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ConfigError(f"seed must be a whole number, 0 or more. Received: seed={seed!r}")
