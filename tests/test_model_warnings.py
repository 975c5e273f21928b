"""Model lint on every import and on Predict: warnings kept in the card, outputs read as probabilities only when they are."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import TINY_CNN
from keras import layers

from core import outputs
from core.card import ModelCard
from core.errors import ModelFileError
from core.lint import model_warnings
from core.registry import Registry

PROJECT = Path(__file__).resolve().parents[1]


def classifier(units, activation, input_shape=(28, 28, 1), rescale=True):
    """A small hand-written classifier, as a course notebook would build it."""
    inputs = keras.Input(input_shape)
    x = layers.Rescaling(1 / 255)(inputs) if rescale else inputs
    x = layers.Flatten()(layers.MaxPooling2D(4)(layers.Conv2D(4, 3, activation="relu")(x)))
    return keras.Model(inputs, layers.Dense(units, activation=activation, name="head")(x))


def save(model, folder, name) -> Path:
    path = Path(folder) / name
    model.save(path)
    return path


def test_a_softmax_over_one_unit_is_never_read_as_probabilities():
    model = classifier(1, "softmax")
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28, 1)).astype("float32")
    assert np.all(model.predict(images, verbose=0) == 1.0)  # the course's mistake: always 1.0, whatever the image
    kind = outputs.output_kind(model, 3)
    assert not kind.are_probabilities and "1.0 for every image" in kind.reason
    warnings = model_warnings(model, ["rock", "paper", "scissors"])
    assert any("Dense(1, activation='softmax')" in warning for warning in warnings)
    assert any("1 unit but it has class names for 3 classes" in warning for warning in warnings)


@pytest.mark.parametrize(("units", "activation", "num_classes", "kind", "reason"), [
    (3, "softmax", 3, "softmax", None),
    (1, "sigmoid", 2, "sigmoid", None),
    (3, "sigmoid", 3, "scores", "do not add up to 1"),
    (3, None, 3, "scores", "raw scores (logits)"),
    (3, "relu", 3, "scores", "raw scores (logits)"),
    (1, "sigmoid", 3, "scores", "enough for two classes"),
])
def test_output_kinds(units, activation, num_classes, kind, reason):
    result = outputs.output_kind(classifier(units, activation), num_classes)
    assert result.kind == kind
    assert (result.reason is None) if reason is None else (reason in result.reason)


def test_nan_weights_duplicate_names_and_outside_scaling_are_warned_about():
    model = classifier(3, "softmax", rescale=False)
    assert len(model_warnings(classifier(3, "softmax"), ["a", "b", "c"])) == 0
    kernel, bias = model.get_layer("head").get_weights()
    kernel[0, 0] = np.nan
    model.get_layer("head").set_weights([kernel, bias])
    warnings = model_warnings(model, ["cat", "dog", "cat"])
    assert any("NaN or infinite" in warning and "'head' (1 of" in warning for warning in warnings)
    assert any("'cat' is given to outputs 0, 2" in warning for warning in warnings)
    assert any("no Rescaling layer" in warning and "divided by 255" in warning for warning in warnings)


def test_softmax_and_sigmoid_by_the_numbers_match_keras(trained_registry):
    logits = np.array([2.0, -1.0, 0.5])
    steps = outputs.softmax_steps(logits)
    np.testing.assert_allclose(steps.probabilities, keras.ops.convert_to_numpy(keras.ops.softmax(logits)), rtol=1e-6)
    assert steps.shift == 0 and steps.total == pytest.approx(np.exp(logits).sum())
    large = outputs.softmax_steps(np.array([800.0, 790.0]))  # e^800 overflows: the largest logit is subtracted first
    assert large.shift == 800 and np.isfinite(large.probabilities).all()
    assert outputs.sigmoid_steps(0.0).probability == 0.5
    assert outputs.sigmoid_steps(-1000.0).probability == 0.0

    from core.datasets import load_dataset

    model = trained_registry.load_model(TINY_CNN.key)
    image = load_dataset("fashion_mnist").x_test[3]
    steps = outputs.output_steps(model, image)
    np.testing.assert_allclose(steps.probabilities, outputs.raw_outputs(model, image), rtol=1e-4, atol=1e-6)
    assert outputs.output_steps(classifier(3, None), image) is None  # a linear head has no softmax to explain
    binary = classifier(1, "sigmoid")
    sigmoid = outputs.output_steps(binary, image)
    assert isinstance(sigmoid, outputs.SigmoidSteps)
    assert sigmoid.probability == pytest.approx(outputs.raw_outputs(binary, image)[0], rel=1e-4)
    assert sigmoid.probability == pytest.approx(1 / (1 + sigmoid.exponential))


def test_import_keeps_the_warnings_in_the_card_and_older_cards_are_checked_on_load(tmp_path):
    registry = Registry(tmp_path / "registry")
    path = save(classifier(1, "softmax"), tmp_path, "rps.keras")
    entry = registry.import_model(path, class_names=["rock", "paper", "scissors"])
    assert entry.card.class_names == ["rock", "paper", "scissors"] and len(entry.card.warnings) == 3
    assert ModelCard.from_dict(json.loads(json.dumps(entry.card.to_dict()))) == entry.card

    older = {name: value for name, value in entry.card.to_dict().items() if name != "warnings"} | {"card_version": 2}
    card = ModelCard.from_dict(older)
    assert card.warnings is None
    assert card.checked_warnings(registry.load_model(entry.key)) == entry.card.warnings

    good = registry.import_model(save(classifier(3, "softmax"), tmp_path, "good.keras"), class_names=["a", "b", "c"])
    assert good.card.warnings == ()
    with pytest.raises(ModelFileError, match=r"needs 3 class names.*Received: class_names=\['a', 'b'\]"):
        registry.import_model(save(classifier(3, "softmax"), tmp_path, "other.keras"), class_names=["a", "b"])


def test_the_command_line_import_prints_the_warning(tmp_path):
    path = save(classifier(1, "softmax", input_shape=(150, 150, 3)), tmp_path, "rps.keras")
    environment = {**os.environ, "CNNCLASSROOM_REGISTRY": str(tmp_path / "registry")}
    result = subprocess.run([sys.executable, "-m", "core", "import", str(path), "--class-names", "rock,paper,scissors"],
                            cwd=PROJECT, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith(": Imported rps.keras is in the registry now: its classes named as given. It has no test "
                             "accuracy here.")
    assert "warning: The last layer is Dense(1, activation='softmax'). Softmax over a single number always outputs 1.0" \
        in result.stderr
    assert "warning: Its outputs are not probabilities" in result.stderr
