"""AppTest: the views issue 15 added — softmax by the numbers and model warnings on Predict and Models, ..."""

import io
from pathlib import Path

import keras
import numpy as np
from conftest import TINY_CNN
from apptest import figure_arrays, figures, open_page
from keras import layers
from PIL import Image

from core.datasets import load_dataset


def jpeg_of_test_item(index: int) -> bytes:
    image = load_dataset("fashion_mnist").x_test[index][..., 0]
    buffer = io.BytesIO()
    Image.fromarray(image).resize((200, 200)).convert("RGB").save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def softmax_over_one_unit(folder: Path) -> Path:
    """The classic rock-paper-scissors mistake: Dense(1, activation='softmax') for three classes."""
    inputs = keras.Input((28, 28, 1))
    x = layers.Flatten()(layers.Conv2D(4, 3, activation="relu")(layers.Rescaling(1 / 255)(inputs)))
    path = folder / "rps.keras"
    keras.Model(inputs, layers.Dense(1, activation="softmax")(x)).save(path)
    return path


def test_predict_shows_softmax_by_the_numbers_for_the_image_just_classified(trained_registry):
    at = open_page("pages/10_Predict.py").run()
    at.selectbox(key="predict_model").set_value(TINY_CNN.key).run()
    at.get("file_uploader")[0].set_value([("shoe.jpg", jpeg_of_test_item(0), "image/jpeg")]).run()
    assert not at.exception
    assert not [warning for warning in at.warning if "⚠" in str(warning.icon)]  # a model trained here: no warnings
    (expander,) = [block for block in at.expander if block.label == "Softmax, by the numbers"]
    table = [block.value for block in expander.markdown if block.value.startswith("| class")][0]
    rows = [line.split("|")[1:-1] for line in table.splitlines()[2:]]
    shown = {row[0].strip().replace("\\", ""): float(row[-1]) for row in rows}
    chart = figures(at)[0]
    bars = dict(zip(chart["data"][0]["y"], figure_arrays(chart, "x")[0]))
    assert set(shown) == set(bars) and len(shown) == 10
    for name, probability in shown.items():
        assert abs(probability - bars[name]) < 1e-4
    assert abs(sum(shown.values()) - 1) < 1e-3
    top = max(shown, key=shown.get)
    assert f"**{top}** ({bars[top]:.1%})" in at.success[0].value


def test_predict_and_models_warn_about_an_imported_softmax_over_one_unit(own_trained_registry, tmp_path):
    entry = own_trained_registry.import_model(softmax_over_one_unit(tmp_path), class_names=["rock", "paper", "scissors"])
    at = open_page("pages/10_Predict.py").run()
    at.selectbox(key="predict_model").set_value(entry.key).run()
    assert not at.exception
    warnings = [warning.value for warning in at.warning]
    assert any("Dense(1, activation='softmax')" in warning for warning in warnings)
    at.get("file_uploader")[0].set_value([("hand.jpg", jpeg_of_test_item(1), "image/jpeg")]).run()
    assert not at.exception
    assert not at.success and not [chart for chart in figures(at) if "probability (0 to 1)" in str(chart["layout"])]
    assert any("raw score, not a probability" in info.value for info in at.info)
    assert any("1.0 for every image" in warning.value for warning in at.warning)
    (scores,) = [chart for chart in figures(at) if "raw output" in str(chart["layout"]["xaxis"])]
    assert list(figure_arrays(scores, "x")[0]) == [1.0]

    models = open_page("pages/11_Models.py").run()
    row = list(models.dataframe[0].value["key"]).index(entry.key)
    models.session_state["models_table"] = {"selection": {"rows": [row], "columns": []}}
    models.run()
    assert not models.exception
    assert models.subheader[0].value == entry.title
    assert [warning.value for warning in models.warning] == list(entry.card.warnings)
