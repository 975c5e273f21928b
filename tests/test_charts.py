"""The numbered pixel grid: each square's shade and number come from the array it draws; a chart drawn while
another thread imports pandas; legends; probability bars."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.charts import (GRID_CELL_PIXELS, GRID_INDEX_PIXELS, LEGEND_NAME_CHARACTERS, LEGEND_ROW_PIXELS,
                         NUMBERED_GRID_SIDE, PHONE_CHART_PIXELS, PHONE_COLUMNS, feature_maps_figure, filters_figure,
                         grid_label, grid_panels, history_figure, numbered_grid, probabilities_figure, scores_figure)


def square(picture, row, column):
    """The pixels of one value's square in a numbered grid."""
    top, left = GRID_INDEX_PIXELS + row * GRID_CELL_PIXELS, GRID_INDEX_PIXELS + column * GRID_CELL_PIXELS
    return picture[top:top + GRID_CELL_PIXELS, left:left + GRID_CELL_PIXELS]


def test_each_square_has_its_values_shade_and_its_number_written_in_a_contrasting_colour():
    values = np.random.default_rng(0).integers(0, 256, size=(28, 28)).astype(np.uint8)
    values[0, 0], values[0, 1] = 0, 255
    picture = numbered_grid(values, decimals=0, top=255)
    assert picture.shape == (GRID_INDEX_PIXELS + 28 * GRID_CELL_PIXELS, GRID_INDEX_PIXELS + 28 * GRID_CELL_PIXELS, 3)
    assert picture.dtype == np.uint8
    for row in range(28):
        for column in range(28):
            cell = square(picture, row, column).astype(int)
            assert (cell[1, 1] == values[row, column]).all()  # a corner: the shade, the same in R, G and B
            ink = np.abs(cell[6:-6, 3:-3] - int(values[row, column])).max()
            assert ink > 100, (row, column)  # the number: white on a dark square, black on a light one
    assert (square(picture, 0, 0)[6:-6, 3:-3] > 200).any() and (square(picture, 0, 1)[6:-6, 3:-3] < 55).any()
    margin = GRID_INDEX_PIXELS
    column_numbers, row_numbers = picture[:margin, margin:], picture[margin:, :margin]
    assert (column_numbers < 200).any() and (row_numbers < 200).any()  # 0..27 along the top and down the left


def test_normalised_values_are_shaded_against_their_top_and_written_with_two_decimals():
    values = np.array([[0.0, 0.5], [1 / 255, 1.0]])
    picture = numbered_grid(values, decimals=2, top=1)
    assert [square(picture, 0, 1)[1, 1, 0], square(picture, 1, 1)[1, 1, 0]] == [128, 255]
    assert [grid_label(value, 2) for value in values.ravel()] == ["0", "0.50", "0.00", "1.00"]
    assert grid_label(0, 0) == "0" and grid_label(173, 0) == "173"
    assert not np.array_equal(numbered_grid(values, 2, 1), numbered_grid(values * 0.9, 2, 1))


def test_a_grid_too_large_to_read_is_refused():
    with pytest.raises(ValueError, match="at most 32"):
        numbered_grid(np.zeros((NUMBERED_GRID_SIDE + 1, 4)))


# What a page does while the server's preloading imports pandas in another thread: it builds a chart and Streamlit turns
# it into JSON. Before core.charts imported pandas itself, Plotly met the half-imported module in sys.modules.
CHART_WHILE_PANDAS_IMPORTS = """
import os, sys, threading
import numpy, plotly.graph_objects, plotly.io
assert "pandas" not in sys.modules
threading.Thread(target=lambda: __import__("pandas")).start()
while "pandas" not in sys.modules:
    pass
from core import charts
plotly.io.to_json(charts.heatmap_figure(numpy.arange(784).reshape(28, 28), "a Fashion-MNIST image"))
print("drawn", flush=True)
os._exit(0)
"""


def test_a_chart_drawn_while_another_thread_imports_pandas_waits_for_it_instead_of_failing():
    for _ in range(3):  # the race, before the fix: 5 failures in 5 runs
        result = subprocess.run([sys.executable, "-c", CHART_WHILE_PANDAS_IMPORTS], capture_output=True, text=True,
                                cwd=Path(__file__).parents[1], timeout=120)
        assert result.stdout.strip() == "drawn", result.stderr[-2000:]


def test_history_legends_keep_training_and_validation_in_view():
    """One model: the page names it, the legend says which curve is which; several: long names are cut, not the
    words that tell the curves apart (a preset's title of 90 characters hid them on Train)."""
    history = [{"epoch": 1, "accuracy": 0.86, "val_accuracy": 0.91, "loss": 0.4, "val_loss": 0.3}]
    long_title = "CNN 16-32 / Dense 256 on Fashion-MNIST, 1 epoch · same padding, batch norm, rate (0.01, decaying)"
    assert [trace.name for trace in history_figure({long_title: history}).data] == ["training", "validation"]
    names = [trace.name for trace in history_figure({long_title: history, "DNN 128": history}, "loss").data]
    assert names[2:] == ["DNN 128 · training", "DNN 128 · validation"]
    assert all(len(name) <= LEGEND_NAME_CHARACTERS + len(" · validation") for name in names)
    assert names[0].endswith("… · training") and names[1].endswith("… · validation")
    assert names[0].startswith("CNN 16-32 / Dense 256 on Fashion-MNIST")


def test_probability_bars_never_read_100_percent_for_a_model_that_is_not_certain():
    bars = probabilities_figure(np.array([0.0004, 0.9996], dtype=np.float32), ["cat", "dog"]).data[0]
    assert list(bars.y) == ["dog", "cat"] and list(bars.text) == [">99.9%", "<0.1%"]  # .1% would say 100.0% and 0.0%


def test_learning_curves_keep_their_axis_on_the_epochs_beside_the_fine_tuning_note():
    """Plotly widens an automatic range to fit an annotation: in Compare's half-width chart the fine-tuning note
    pushed the axis out to epoch -16."""
    history = [{"epoch": epoch, "accuracy": 0.5, "val_accuracy": 0.5, "phase": 1 if epoch <= 10 else 2}
               for epoch in range(1, 21)]
    figure = history_figure({"A": history, "B": history})
    assert tuple(figure.layout.xaxis.range) == (0.5, 20.5)
    assert [annotation.xanchor for annotation in figure.layout.annotations] == ["left"]  # the note right of its line
    # The note is short (the right half of a phone's chart is 130 px wide); what happens there is in the legend
    assert [annotation.text for annotation in figure.layout.annotations] == ["fine-tuning starts"]
    assert figure.data[-1].name == "fine-tuning starts: top layers unfrozen, learning rate ÷ 10"
    assert figure.layout.legend.yref == "container"  # under the whole chart: never on the x axis's title


def test_one_epochs_training_and_validation_points_are_told_apart_without_a_line():
    """The quick preset trains one epoch: two lone dots of one colour, once told apart by the dash of a line."""
    from core.guide import validation_above_training_note

    history = [{"epoch": 1, "accuracy": 0.861, "val_accuracy": 0.909, "loss": 0.39, "val_loss": 0.26}]
    training, validation = history_figure({"quick CNN": history}).data
    assert training.marker.symbol == "circle" and validation.marker.symbol == "diamond-open"
    assert training.line.color == validation.line.color  # one model, one colour
    assert "measured once, at the epoch's end" in validation_above_training_note({"quick CNN": history})
    history[0]["val_accuracy"] = 0.85
    assert validation_above_training_note({"quick CNN": history}) is None


def test_feature_maps_and_filters_fit_a_phone_numbers_over_panels_and_the_scale_below():
    """On a phone (358 px) a colour scale beside the panels left them 28 px, "channel 0" titles overlapped, and the
    title ran past the edge. The scale is above the panels now, under the title."""
    maps = np.random.default_rng(0).random((28, 28, 16), dtype=np.float32)
    for figure in (feature_maps_figure(maps, "relu_1", 8), filters_figure(np.ones((3, 3, 1, 16), np.float32))):
        titles = [annotation.text for annotation in figure.layout.annotations]
        assert titles == [str(index) for index in range(len(titles))] and len(titles) in (8, 16)
        colorbar = figure.layout.coloraxis.colorbar
        assert colorbar.orientation == "h" and colorbar.yanchor == "bottom" and colorbar.y == 1  # above the panels
        assert figure.layout.yaxis.constraintoward == "top" and "<br>(each panel" in figure.layout.title.text


def test_a_grid_for_a_phone_has_four_panels_a_row_and_is_as_tall_as_the_phones_width_draws_them():
    """Drawn for a desktop, 8 panels a row came out 38 px wide on a phone, above 300-400 empty pixels: the figure's
    height was the desktop's. For a phone (`narrow`) the mosaic fills its 358 px and the height follows from that."""
    maps = np.random.default_rng(0).random((26, 26, 8), dtype=np.float32)
    desktop, phone = (feature_maps_figure(maps, "conv_1", 8, narrow=narrow) for narrow in (False, True))
    for figure, columns in ((desktop, 8), (phone, PHONE_COLUMNS)):
        mosaic = np.array(figure.data[0].z, dtype=np.float32)
        panels = grid_panels(mosaic, 8, columns, (26, 26))
        assert all(np.array_equal(panel, maps[..., index]) for index, panel in enumerate(panels))  # where it says
        margin = figure.layout.margin
        drawn_width = PHONE_CHART_PIXELS - margin.l - margin.r  # the mosaic's width on the phone
        blank_below = figure.layout.height - margin.t - margin.b - mosaic.shape[0] * drawn_width / mosaic.shape[1]
        assert (abs(blank_below) < 1) == (figure is phone), blank_below  # the desktop's: hundreds of pixels
    assert [annotation.text for annotation in phone.layout.annotations] == [str(index) for index in range(8)]
    assert phone.layout.height > desktop.layout.height  # two rows of panels 2.3 times as wide


def test_a_legend_of_many_rows_gets_room_and_the_chance_line_is_named_there_not_over_a_bar():
    """On a phone each legend entry takes a row: Transfer's seven left its curves a plot 100 px tall; and the label
    "chance (20%)" by its line lay over the first bar."""
    history = [{"epoch": epoch, "accuracy": 0.5, "val_accuracy": 0.5} for epoch in (1, 2)]
    one, three = (history_figure({f"model {index}": history for index in range(count)}) for count in (1, 3))
    assert one.layout.height == 360 and three.layout.height == 360 + 2 * LEGEND_ROW_PIXELS
    scores = scores_figure(["from scratch", "feature extraction"], [0.4, 0.6], "Test accuracy", "accuracy", baseline=0.2)
    assert not scores.layout.annotations and scores.data[0].showlegend is False
    assert scores.data[-1].name == "chance (20%): answering at random"


def test_a_log_loss_axis_labels_every_tick_with_its_value():
    """Plotly labelled a log axis's in-between ticks with their first digit: a loss levelling off at 0.651 sat beside a
    "6" (meaning 0.6) under the "1" and "10" (a phone walk, Hello, neuron with noisy data)."""
    from core.charts import log_ticks, loss_figure, tick_text

    figure = loss_figure([40.0, 5.0, 0.9, 0.651, 0.651])
    assert list(figure.layout.yaxis.ticktext) == ["0.5", "1", "2", "5", "10", "20", "50"]
    assert list(figure.layout.yaxis.tickvals) == [0.5, 1, 2, 5, 10, 20, 50]
    assert [tick_text(tick) for tick in log_ticks(0.64, 0.9)] == ["0.65", "0.7", "0.75", "0.8", "0.85", "0.9"]
    # learning rate 0.001 for 10 epochs: 0.79 to 0.78, between any 1-2-5 ticks; every tick in the axis's range
    narrow = loss_figure([0.79, 0.785, 0.7801])
    assert list(narrow.layout.yaxis.ticktext) == ["0.782", "0.784", "0.786", "0.788", "0.79"]
    for shown, data in ((figure, (0.651, 40.0)), (narrow, (0.7801, 0.79))):  # the data and every tick in view
        low, high = (10 ** end for end in shown.layout.yaxis.range)
        assert low <= min(data) and max(data) <= high
        assert all(low <= tick <= high for tick in shown.layout.yaxis.tickvals)
    assert len(log_ticks(0.65, 0.651)) >= 2 and log_ticks(5.0, 5.0) == [5.0]
    assert len(log_ticks(1e-6, 1e30)) <= 8 and tick_text(1e-6) == "10<sup>−6</sup>" and tick_text(2e8) == "2×10<sup>8</sup>"
    diverged = loss_figure([1.0, 1e12, float("inf"), float("nan")])  # learning rate 0.2: the loss explodes
    assert list(diverged.layout.yaxis.ticktext)[-1] == "10<sup>12</sup>"
