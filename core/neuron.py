"""Hello, neuron: one Dense unit learns the line y = 2x - 1 from six points.

The classic first lesson of the TensorFlow course, with a real Keras model and real SGD. With
`noise=0` the six points lie exactly on y = 2x - 1, so the best line is the rule itself and any miss
at x = 10 is unfinished optimisation; with noise, the least-squares line (computed exactly here)
moves away from the rule, and that part of the miss comes from the data.
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
TRUE_ANSWER = TRUE_WEIGHT * QUERY_X + TRUE_BIAS  # what the rule gives at QUERY_X: 19
DEFAULT_EPOCHS = 500  # the classic lesson's model.fit(xs, ys, epochs=500)
DEFAULT_LEARNING_RATE = 0.01  # and its SGD's learning rate
MAX_EPOCHS = 5000
MAX_LEARNING_RATE = 1.0
MAX_NOISE = 5.0
NOISE_SEED = 2024  # the noisy y values are the same every time, whatever the weights' seed
RULE = f"y = {TRUE_WEIGHT:g}x {'−' if TRUE_BIAS < 0 else '+'} {abs(TRUE_BIAS):g}"  # as the page writes it: y = 2x − 1


@dataclass(frozen=True)
class TryIt:
    """The page's "Try it" suggestions, noise off; tests/test_teaching_claims.py checks that each does what it says."""

    short_epochs: int = 50  # at DEFAULT_LEARNING_RATE: stops well short of TRUE_ANSWER
    long_epochs: int = DEFAULT_EPOCHS  # gets within a few hundredths
    faster_learning_rate: float = 0.1  # converges in far fewer epochs
    too_large_learning_rate: float = 0.2  # the loss explodes


TRY_IT = TryIt()


CONVERGED_GAP = 0.00005  # below this, the page's four decimals show no gap left to train away


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
    noise: float = 0.0  # standard deviation of the noise added to the six y values
    best_weight: float = TRUE_WEIGHT  # the least-squares line through the six points: the best any line can do
    best_bias: float = TRUE_BIAS

    @property
    def final_loss(self) -> float:
        return self.losses[-1]

    @property
    def best_prediction(self) -> float:
        """The least-squares line's value at QUERY_X: where a fully trained neuron would land."""
        return self.best_weight * QUERY_X + self.best_bias

    @property
    def optimisation_gap(self) -> float:
        """How far the neuron is from the best line at QUERY_X: training that has not finished."""
        return self.prediction - self.best_prediction

    @property
    def data_gap(self) -> float:
        """How far the best line is from the rule at QUERY_X: 0 without noise, else the data's doing."""
        return self.best_prediction - (TRUE_WEIGHT * QUERY_X + TRUE_BIAS)

    @property
    def converged(self) -> bool:
        """True when the neuron has reached the least-squares line, as far as four decimals at QUERY_X can tell."""
        return not self.diverged and abs(self.optimisation_gap) < CONVERGED_GAP

    def miss_parts(self) -> tuple[float, float]:
        """(the data's part, the unfinished optimisation's part) of the miss at QUERY_X, to four decimals that add up
        to the miss shown to four: each rounded alone, −3.6405 and −0.0061 made −3.6466 under a miss of −3.6465."""
        miss = round(self.prediction - TRUE_ANSWER, 4)
        data = miss if self.converged else round(self.data_gap, 4)
        return data, round(miss - data, 4) + 0.0  # + 0.0: never −0.0

    def miss_terms(self) -> tuple[float, float, float]:
        """(w − 2)·x, (b + 1) and their sum, the miss at QUERY_X, from w and b as the page shows them (six decimals),
        each to six decimals: exact, so the sum works out from the terms. Rounded to four each, −2.8667 + 0.8763 was
        shown as −1.9905."""
        weight, bias = round(self.weight, 6), round(self.bias, 6)
        weight_term, bias_term = round((weight - TRUE_WEIGHT) * QUERY_X, 6), round(bias - TRUE_BIAS, 6)
        return weight_term, bias_term, round(weight_term + bias_term, 6)

    @property
    def diverged(self) -> bool:
        """True when the learning rate was too large: the loss blew up instead of shrinking."""
        finite = all(math.isfinite(value) for value in self.losses) and math.isfinite(self.prediction)
        return not finite or self.final_loss > self.losses[0]


def training_points(noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The six (x, y) pairs of the lesson as float32 columns; `noise` adds seeded Gaussian noise to y."""
    xs = np.array(XS, dtype="float32").reshape(-1, 1)
    ys = TRUE_WEIGHT * xs + TRUE_BIAS
    if noise:
        ys = ys + noise * np.random.default_rng(NOISE_SEED).standard_normal(ys.shape)
    return xs, ys.astype("float32")


def least_squares_line(xs, ys) -> tuple[float, float]:
    """(weight, bias) of the line with the smallest mean squared error through the points, solved exactly."""
    weight, bias = np.polyfit(np.asarray(xs, dtype=np.float64).ravel(), np.asarray(ys, dtype=np.float64).ravel(), 1)
    return float(weight), float(bias)


def build_neuron(learning_rate: float = DEFAULT_LEARNING_RATE):
    """A single Dense unit, compiled with plain SGD and mean squared error."""
    from core.backend import keras

    model = keras.Sequential([keras.Input(shape=(1,)), keras.layers.Dense(units=1, name="neuron")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate), loss="mean_squared_error")
    return model


def fit_line(epochs: int = DEFAULT_EPOCHS, learning_rate: float = DEFAULT_LEARNING_RATE, seed: int = 0,
             noise: float = 0.0) -> LineFit:
    """Train one neuron on the six points for `epochs` full-batch SGD steps.

    Each epoch is one batch of all six points, exactly what `model.fit(xs, ys, epochs=epochs,
    batch_size=6)` does, but through `train_on_batch`, which skips fit's per-epoch setup.
    """
    _check_arguments(epochs, learning_rate, seed)
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not 0 <= noise <= MAX_NOISE:
        raise ConfigError(f"noise must be a number from 0 to {MAX_NOISE}. Received: noise={noise!r}")
    epochs, learning_rate, seed, noise = int(epochs), float(learning_rate), int(seed), float(noise)
    from core.backend import keras

    keras.utils.set_random_seed(seed)
    xs, ys = training_points(noise)
    model = build_neuron(learning_rate)
    losses = [float(model.train_on_batch(xs, ys)) for _ in range(epochs)]
    kernel, bias = model.get_layer("neuron").get_weights()
    prediction = model.predict(np.array([[QUERY_X]], dtype="float32"), verbose=0)
    best_weight, best_bias = least_squares_line(xs, ys)
    return LineFit(epochs, learning_rate, seed, float(kernel[0, 0]), float(bias[0]), losses, float(prediction[0, 0]),
                   noise, best_weight, best_bias)


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
