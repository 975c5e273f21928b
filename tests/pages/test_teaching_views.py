"""AppTest: the views issue 15 added — softmax by the numbers and model warnings on Predict and Models, ..."""

import io
from pathlib import Path

import keras
import numpy as np
from conftest import TINY_CNN, TINY_DNN
from apptest import figure_arrays, figures, open_page
from keras import layers
from PIL import Image

from core.config import TrainConfig
from core.guide import percent_sure
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
    xaxis = chart["layout"]["xaxis"]  # the bars' labels are percentages: so is the axis
    assert xaxis["title"]["text"] == "probability" and xaxis["tickformat"] == ".0%"
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
    assert not at.success and not [chart for chart in figures(at) if chart["layout"]["xaxis"]["title"]["text"] == "probability"]
    assert any("raw score, not a probability" in info.value for info in at.info)
    assert any("1.0 for every image" in warning.value for warning in at.warning)
    (scores,) = [chart for chart in figures(at) if "raw output" in str(chart["layout"]["xaxis"])]
    assert list(figure_arrays(scores, "x")[0]) == [1.0]

    models = open_page("pages/11_Models.py").run()
    row = list(models.dataframe[0].value["key"]).index(entry.key)
    assert models.dataframe[0].proto.placeholder == "—"  # its missing test figures read as dashes, not "None"
    models.session_state[models.dataframe[0].key] = {"selection": {"rows": [row], "columns": []}}
    models.run()
    assert not models.exception
    assert models.subheader[0].value == entry.title
    assert [warning.value for warning in models.warning] == list(entry.card.warnings)


TINY_BATCH_NORM_CNN = TrainConfig(family="cnn", filters=(8, 16), padding="same", batch_norm=True, hidden_units=(32,),
                                  train_subset=500, epochs=2, batch_size=32)


def test_inside_the_network_reads_every_family_after_its_nonlinearity(own_trained_registry):
    from core.engines import train_and_publish

    train_and_publish(own_trained_registry, TINY_BATCH_NORM_CNN)
    at = open_page("pages/5_Inside_the_network.py").run()
    at.selectbox(key="inside_model").set_value(TINY_BATCH_NORM_CNN.key)
    at.select_slider(key="inside_channels").set_value(4).run()
    assert not at.exception
    shown = "\n".join(block.value for block in [*at.markdown, *at.caption])
    for name in ("relu_1", "pool_1", "relu_2", "pool_2", "dense_1"):
        assert f"**{name}** · output shape" in shown
    assert "conv_1 (Conv2D) → batch_norm_1 (BatchNormalization) → relu_1 (relu): after relu" in shown
    journey = [chart for chart in figures(at) if "channels<br>(each panel" in str(chart["layout"]["title"])]
    # every map after the nonlinearity is >= 0 (nanmin: the empty cells between a grid's panels)
    assert len(journey) == 4 and all(np.nanmin(array) >= 0 for chart in journey for array in figure_arrays(chart))
    assert "glorot_uniform" in shown and "√(6 / (9 + 72))" in shown  # conv_1: 3×3×1 inputs, 3×3×8 outputs
    assert "first layer is a set of small **filters**" in shown and "A dense network looks at every pixel" not in shown

    at.selectbox(key="inside_model").set_value(TINY_DNN.key).run()
    assert not at.exception
    shown = "\n".join(block.value for block in [*at.markdown, *at.caption, *at.info])
    assert "A dense network has no filters" in shown and "**dense_1** · output shape **32**" in shown
    # the page's introduction describes the network picked, not always a CNN's filters and pooling
    assert "A dense network looks at every pixel" in shown and "Pooling then halves each map" not in shown
    assert "A dense network has no maps" in shown and "height × width × channels" not in shown
    assert "inside_channels" not in {slider.key for slider in at.select_slider}  # it chose nothing for a dense network
    assert "has no feature maps to follow" in shown
    model = own_trained_registry.load_model(TINY_DNN.key)
    data = load_dataset("fashion_mnist")
    image = data.x_test[np.flatnonzero(data.y_test == 0)[0]]  # the default: the first test image of the first class
    (bars,) = [chart for chart in figures(at) if chart["layout"]["title"]["text"].startswith("dense_1: all 32 units")]
    expected = keras.Model(model.input, model.get_layer("dense_1").output)(image[np.newaxis].astype("float32"))
    np.testing.assert_allclose(figure_arrays(bars, "y")[0], np.asarray(expected)[0], rtol=1e-4, atol=1e-5)


def test_compare_trains_seed_repeats_and_shows_a_models_most_confident_mistakes(own_trained_registry):
    from core.engines import train_and_publish
    from core.seeds import seed_variants

    registry = own_trained_registry
    at = open_page("pages/9_Compare.py").run()
    at.multiselect(key="compare_models").set_value([TINY_CNN.key, TINY_DNN.key]).run()
    at.toggle(key="compare_repeats").set_value(True).run()
    assert not at.exception
    assert at.button(key="compare_seeds_button").label == "Train the missing seed runs"
    runs = {config: train_and_publish(registry, config) for base in (TINY_CNN, TINY_DNN) for config in seed_variants(base)}
    at.run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("model")
    for base, letter in ((TINY_CNN, "A"), (TINY_DNN, "B")):
        accuracies = [runs[config].test_accuracy for config in seed_variants(base)]
        row = table.loc[next(name for name in table.index if name.startswith(letter))]
        assert row["seeds"] == "0, 1, 2"
        assert row["test accuracies"] == ", ".join(f"{value:.2%}" for value in accuracies)
        assert row["mean ± spread"] == f"{np.mean(accuracies):.2%} ± {np.std(accuracies, ddof=1):.2%}"
    verdict = next(block.value for block in at.markdown if block.value.startswith("**A vs B** — Over 3 and 3 seeds"))
    assert "training noise" in verdict and "test-set noise" in verdict

    at.selectbox(key="compare_mistakes_model").set_value(at.selectbox(key="compare_mistakes_model").options[1]).run()
    assert not at.exception
    evaluation = registry.load_evaluation(TINY_DNN.key)
    worst = evaluation.confident_mistakes()
    assert any(f"gets **{len(worst):,} of 10,000** test images wrong" in block.value for block in at.markdown)
    gallery = [element for element in at.get("image") if "said" in element.proto.imgs[0].caption]
    captions = [image.caption for element in gallery for image in element.proto.imgs]
    names = evaluation.class_names
    assert captions[0] == (f"true {names[evaluation.y_true[worst[0]]]} · said {names[evaluation.predicted[worst[0]]]} "
                           f"({percent_sure(evaluation.probabilities[worst[0]].max())})")
    assert len(gallery) == 12  # one image element each, in a row that wraps (ui.image_grid)
    confidences = [evaluation.probabilities[i].max() for i in worst[:12]]
    assert len(captions) == 12 and confidences == sorted(confidences, reverse=True)


def kept_photos_script():
    """Predict's photo keeping alone: the session says whether the page was just opened and what the uploader holds."""
    import streamlit as st

    from core import ui

    if st.session_state.pop("opened", False):
        st.session_state["classroom_came_back"] = True  # as `ui.page_setup` sets it when the page is opened
    if st.session_state.pop("cut_short", False):  # a run that stops before the photos (a click during a slow load)
        st.stop()
    photos, again = ui.kept_photos(st.session_state.get("photos", []), "test_photos")
    st.write(f"{[name for name, _, _ in photos]} {again}")


def test_photos_given_to_predict_come_back_after_the_page_is_left_until_removed():
    """Streamlit empties an uploader whose page is left: a student who looked at Models lost their 4 photos (a
    teaching walk, 2026-12-02). They come back once the page is opened again; removing them forgets them."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(kept_photos_script)

    def shown(photos, opened=False):
        at.session_state["photos"], at.session_state["opened"] = photos, opened
        at.run()
        return at.markdown[0].value if at.markdown else None

    megabytes = b"x" * 3 * 2**20
    assert shown([("a.jpg", megabytes, "1"), ("b.jpg", megabytes, "2"), ("c.jpg", megabytes, "3")]) == \
        "['a.jpg', 'b.jpg', 'c.jpg'] False"
    assert shown([], opened=True) == "['b.jpg', 'c.jpg'] True"  # back on the page: the newest within 8 MB
    assert shown([]) == "['b.jpg', 'c.jpg'] True"  # and still, while the student changes the model
    assert shown([("d.jpg", b"d", "4")]) == "['d.jpg'] False"  # new photos replace them
    assert shown([]) == "[] False"  # taken out of the uploader: forgotten
    assert shown([], opened=True) == "[] False"
    shown([("e.jpg", b"e", "5")])
    at.session_state["cut_short"] = True
    shown([], opened=True)  # back on the page, but this first run never reaches the photos
    assert shown([]) == "['e.jpg'] True"  # the next run still brings them back
