"""AppTest: the Convolutions page filters an image, pools it, and walks a real CNN's shapes."""

import inspect
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from apptest import figure_arrays, figures, open_page
from streamlit.testing.v1 import AppTest

from core.config import TrainConfig
from core.datasets import load_dataset
from core.inspection import PRESET_FILTERS, apply_filter, max_pool, strongest_response
from core.models import build_cnn
from core.ui import source_text

PAGE = str(Path(__file__).resolve().parents[2] / "pages/3_Convolutions.py")


def table(at: AppTest):
    return at.dataframe[0].value


def heatmap_title(at: AppTest, index: int) -> str:
    return figures(at)[index]["layout"]["title"]["text"]


def heatmap_values(at: AppTest, index: int) -> np.ndarray:
    """The z array of a heatmap chart."""
    return figure_arrays(figures(at)[index])[0]


def test_default_walkthrough_is_the_classic_network_and_padding_same_changes_it():
    at = open_page(PAGE).run()
    assert not at.exception
    rows = table(at)
    assert "(1600,)" in rows["output shape"].tolist()
    assert rows["parameters"].tolist()[2:] == [320, 0, 18496, 0, 0, 204928, 1290]
    assert any("28 → 26 → 13 → 11 → 5 → 1,600" in block.value for block in at.markdown)
    assert heatmap_title(at, 1).endswith("26 × 26") and heatmap_title(at, 2).endswith("13 × 13")  # filtered and pooled sizes

    at.radio(key="conv_padding").set_value("same").run()
    assert not at.exception
    rows = table(at)
    assert "(3136,)" in rows["output shape"].tolist()  # 28 -> 28 -> 14 -> 14 -> 7: 7 x 7 x 64
    assert "(28, 28, 32)" in rows["output shape"].tolist()
    assert "⌊(28 − 3 + 2·1) / 1⌋ + 1 = 28" in rows["shape arithmetic"].tolist()[2]


def test_too_many_blocks_is_a_clear_message_in_the_pages_words_and_the_lesson_goes_on():
    """It named conv_strides=1 and image_size, controls this page calls Stride and Input size, and the rest of the
    page (the older tutorials' note, the code) disappeared under it (a teaching walk, 2026-12-02)."""
    at = open_page(PAGE).run()
    at.slider(key="conv_blocks").set_value(4).run()
    at.radio(key="conv_kernel_size").set_value(5)
    at.radio(key="conv_strides").set_value(2).run()
    assert not at.exception
    message = at.error[0].value
    assert "nothing left to look at" in message and "28 → 12 → 6 → 1 → 0" in message and "5×5" in message
    assert "stride 1 and 'same' padding or a larger input size (at least 511)" in message  # neither alone fits
    assert "conv_strides" not in message and "image_size" not in message and "Received" not in message
    assert any("From older tutorials" in info.value for info in at.info)  # the rest of the lesson is still there


def test_the_biggest_layers_note_fits_a_convolution_as_well_as_a_dense_layer():
    at = open_page(PAGE).run()
    assert any(caption.value.startswith("Here dense_1 holds 91% of the parameters: a Dense layer after Flatten")
               for caption in at.caption)  # 204,928 of 225,034
    at.radio(key="conv_input_size").set_value(64)
    at.radio(key="conv_channels").set_value(3)
    at.slider(key="conv_blocks").set_value(3)
    at.radio(key="conv_kernel_size").set_value(5)
    at.radio(key="conv_strides").set_value(2)
    at.radio(key="conv_padding").set_value("same").run()
    [note] = [caption.value for caption in at.caption if "of the parameters" in caption.value]
    rows = table(at)
    share = rows["parameters"].max() / rows["parameters"].sum()
    assert note.startswith(f"Here conv_3 holds {share:.0%} of the parameters: a convolution has one small filter")
    assert "Dense layer after Flatten connects" not in note


def test_a_layer_holding_nearly_all_parameters_is_not_said_to_hold_them_all():
    """At 150 px the page said "dense_1 holds 100% of the parameters": it holds 10,616,960 of 10,637,642."""
    from core.shapes import biggest_layer_note

    summary = {"biggest layer": "dense_1", "biggest layer type": "Dense", "flatten length": 82_944,
               "biggest layer parameters": 10_616_960, "parameters": 10_637_642}
    assert biggest_layer_note(summary).startswith("Here dense_1 holds 99.8% of the parameters")
    assert biggest_layer_note({**summary, "parameters": 10_616_960}).startswith("Here dense_1 holds 100% of")
    assert biggest_layer_note({**summary, "parameters": 11_600_000}).startswith("Here dense_1 holds 92% of")


def test_a_colour_shapes_image_is_filtered_as_grayscale():
    at = open_page(PAGE).run()
    at.radio(key="conv_source").set_value("shapes").run()
    assert not at.exception
    image = load_dataset("shapes", color_mode="grayscale").x_test[1, :, :, 0]
    assert np.array_equal(heatmap_values(at, 0), image)
    assert heatmap_values(at, 1).shape == (62, 62) and heatmap_values(at, 2).shape == (31, 31)


def test_a_preset_fills_the_nine_numbers_and_typed_numbers_are_applied():
    at = open_page(PAGE).run()
    at.selectbox(key="conv_filter").set_value("horizontal edges").run()
    assert not at.exception
    assert [at.number_input(key=f"conv_kernel_{row}0").value for row in range(3)] == [-1, 0, 1]

    for row in range(3):
        for column in range(3):
            at.number_input(key=f"conv_kernel_{row}{column}").set_value(1.0 if (row, column) == (1, 1) else 0.0)
    at.run()
    assert not at.exception
    image = load_dataset("fashion_mnist", color_mode="grayscale").x_test[1, :, :, 0]
    assert np.array_equal(heatmap_values(at, 0), image)
    assert np.array_equal(heatmap_values(at, 1), image[1:-1, 1:-1])  # the identity filter only trims the border
    assert np.array_equal(heatmap_values(at, 2), max_pool(image[1:-1, 1:-1], 2))

    at.selectbox(key="conv_filter").set_value("vertical edges").run()
    assert np.array_equal(heatmap_values(at, 1), apply_filter(image, PRESET_FILTERS["vertical edges"]))


def test_one_convolution_step_shows_the_nine_products_their_sum_and_the_pooling_window():
    from core.inspection import convolution_step

    at = open_page(PAGE).run()
    at.selectbox(key="conv_filter").set_value("sobel vertical edges").run()
    at.slider(key="conv_step_row").set_value(10)
    at.slider(key="conv_step_column").set_value(7).run()
    assert not at.exception
    image = load_dataset("fashion_mnist", color_mode="grayscale").x_test[1, :, :, 0]
    kernel = np.array(PRESET_FILTERS["sobel vertical edges"], dtype=float)
    window = image[10:13, 7:10].astype(float)
    products = (window * kernel).ravel()
    step_table = next(block.value for block in at.markdown if block.value.startswith("| pixel × weight | column 7 |"))
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in step_table.splitlines()[2:]]
    assert [row[0] for row in rows] == ["row 10", "row 11", "row 12"]  # each row named by the image row it reads
    assert [cell for row in rows for cell in row[1:]] == [f"{p:g} × {w:g} = {p * w:g}"
                                                          for p, w in zip(window.ravel(), kernel.ravel())]
    filtered = apply_filter(image, kernel)
    assert convolution_step(image, kernel, 10, 7).shown == filtered[10, 7]
    assert any(f"Sum of the 9 products: **{products.sum():g}**, so output pixel (10, 7) = **{filtered[10, 7]}**" in block.value
               for block in at.markdown)
    block = filtered[10:12, 6:8]  # output (10, 7) lies in pooled pixel (5, 3), the block at rows 10-11, columns 6-7
    assert any(f"= **{block.max()}**, pooled pixel (5, 3)" in text.value for text in at.markdown)
    assert max_pool(filtered, 2)[5, 3] == block.max()
    highlights = [figure["layout"]["shapes"][0] for figure in figures(at)[:3]]
    assert (highlights[0]["x0"], highlights[0]["y0"], highlights[0]["x1"]) == (6.5, 9.5, 9.5)  # the 3×3 window


def test_the_shape_table_takes_any_input_size_and_the_course_networks_show_their_real_path():
    from core.course import COURSE_NETWORKS
    from core.models import build_cnn

    at = open_page(PAGE).run()
    at.selectbox(key="conv_network").set_value("horses vs humans").run()
    assert not at.exception
    assert (at.radio(key="conv_input_size").value, at.radio(key="conv_channels").value) == (300, 3)
    network = COURSE_NETWORKS["horses vs humans"]
    model = build_cnn(network.input_shape, network.num_classes, filters=network.filters, hidden_units=network.hidden_units)
    rows = table(at)
    assert rows["parameters"].tolist() == [sum(int(np.prod(w.shape)) for w in layer.weights) for layer in model.layers]
    assert rows["output shape"].tolist()[-3] == f"({np.prod(model.get_layer('flatten').output.shape[1:])},)"
    assert any(f"{model.count_params():,} parameters in total" in block.value for block in at.markdown)

    at.radio(key="conv_input_size").set_value(150)
    at.radio(key="conv_channels").set_value(1).run()
    assert not at.exception
    smaller = build_cnn((150, 150, 1), 2, filters=network.filters, hidden_units=network.hidden_units)
    assert any(f"{smaller.count_params():,} parameters in total" in block.value for block in at.markdown)


def test_the_page_imports_no_tensorflow_yet_shows_build_cnn(registry_root):
    """Opened before the server's preloading has imported TensorFlow, the page does not wait for it (3 s here)."""
    code = (
        "import sys; from apptest import open_page\n"
        f"at = open_page({PAGE!r}).run()\n"
        "assert not at.exception, at.exception\n"
        "assert any('def build_cnn(' in block.value for block in at.code)\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'the page imported TensorFlow'\n"
    )
    folder = Path(__file__).parent
    subprocess.run([sys.executable, "-c", code], check=True, cwd=folder.parents[1], timeout=120,
                   env={**os.environ, "PYTHONPATH": f"{folder}:{folder.parents[1]}"})


def test_source_by_name_is_the_source_inspect_reads_from_the_imported_object():
    assert source_text("core.models:build_cnn") == inspect.getsource(build_cnn)
    assert source_text("core.config:TrainConfig") == inspect.getsource(TrainConfig)  # decorators included
    with pytest.raises(LookupError, match="no_such_function"):
        source_text("core.models:no_such_function")
    with pytest.raises(LookupError, match="package.module:name"):
        source_text("core.no_such_module:build_cnn")


def test_the_worked_step_starts_where_the_filter_responds_most():
    at = open_page(PAGE).run()
    assert not at.exception
    image = load_dataset("fashion_mnist", color_mode="grayscale").x_test[1, :, :, 0]  # the page's first image
    kernel = np.array(PRESET_FILTERS[at.selectbox(key="conv_filter").value], dtype=float)
    sums = np.array([[np.sum(image[y:y + 3, x:x + 3] * kernel) for x in range(26)] for y in range(26)])  # by hand
    row, column = at.slider(key="conv_step_row").value, at.slider(key="conv_step_column").value
    assert sums[row, column] == sums.max() > 255  # the edge itself, not the first of the pixels that clip to 255
    assert any(f"most strongly, is at ({row}, {column})" in caption.value for caption in at.caption)
    white = int(np.sum(np.clip(np.rint(sums), 0, 255) == 255))  # the count the caption states, worked out by hand
    assert white > 1 and any(f"({white:,} pixels of the filtered image clip to the same white 255" in caption.value
                             for caption in at.caption)


def test_the_worked_step_moves_to_the_strongest_response_of_a_new_image_or_filter():
    """"The sliders start there" stayed on the first image's pixel after the image and the filter changed (a teaching
    walk, 2026-12-02); a position the student chose stays until then."""
    at = open_page(PAGE).run()
    at.slider(key="conv_step_row").set_value(3).run()
    assert at.slider(key="conv_step_row").value == 3  # the student's choice is kept while nothing else changes
    at.radio(key="conv_source").set_value("shapes").run()
    at.selectbox(key="conv_filter").set_value("blur").run()
    assert not at.exception
    image = load_dataset("shapes", color_mode="grayscale").x_test[1, :, :, 0]
    strongest = strongest_response(image, PRESET_FILTERS["blur"])
    assert (at.slider(key="conv_step_row").value, at.slider(key="conv_step_column").value) == tuple(strongest)
    assert any(f"most strongly, is at {tuple(strongest)}" in caption.value for caption in at.caption)
    # a blur gives a flat area back, not a sum near 0 (a student saw 186 there): nine weights of 0.111
    assert any("Its weights add up to 0.999, almost 1" in caption.value and "near 0" not in caption.value
               for caption in at.caption)
