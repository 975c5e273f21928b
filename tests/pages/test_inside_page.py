"""AppTest: the Inside-the-network page shows a real CNN's filters and feature maps, layer by layer."""

from pathlib import Path

import numpy as np
from conftest import TINY_CNN
from apptest import figure_arrays, figures, open_page

PAGE = Path(__file__).resolve().parents[2] / "pages/5_Inside_the_network.py"


def heatmaps(figure: dict) -> list[np.ndarray]:
    """The z arrays of a plotly figure's heatmaps."""
    return [array.astype(np.float32) for array in figure_arrays(figure)]


def test_without_a_cnn_the_page_says_how_to_train_one(registry_root):
    at = open_page(PAGE).run()
    assert not at.exception
    assert any("python -m core warmup" in info.value for info in at.info)
    assert not at.get("plotly_chart")


def test_filters_and_feature_maps_match_the_model(trained_registry):
    from core.inspection import feature_maps

    at = open_page(PAGE).run()
    assert not at.exception
    assert at.selectbox(key="inside_model").value == TINY_CNN.key  # the only CNN (the DNN is not offered)
    model = trained_registry.load_model(TINY_CNN.key)
    expected = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers if layer.name.startswith(("conv", "pool"))}
    assert expected == {"conv_1": (26, 26, 8), "pool_1": (13, 13, 8), "conv_2": (11, 11, 16), "pool_2": (5, 5, 16)}

    from core.datasets import load_dataset

    labels = load_dataset("fashion_mnist").y_test  # test image 7, picked as the n-th of its class
    at.select_slider(key="inside_channels").set_value(4)
    at.selectbox(key="inside_kind").set_value(int(labels[7]))
    at.number_input(key="inside_number").set_value(int(np.sum(labels[:7] == labels[7])) + 1).run()
    assert not at.exception
    shown = "\n".join(markdown.value for markdown in at.markdown)
    for name, (height, width, channels) in expected.items():
        assert f"**{name}** · output shape **{height} × {width} × {channels}**" in shown
    charts = figures(at)
    filters, journey = heatmaps(charts[0]), charts[1:1 + len(expected)]
    assert len(filters) == 8 and filters[0].shape == (3, 3)  # 8 learned 3x3 kernels of conv_1
    assert [len(heatmaps(chart)) for chart in journey] == [4, 4, 4, 4]

    image = load_dataset("fashion_mnist").x_test[7]
    maps = dict(feature_maps(model, image))
    np.testing.assert_allclose(heatmaps(journey[2])[3], maps["conv_2"][..., 3], rtol=1e-4, atol=1e-5)

    at.selectbox(key="inside_class").set_value("Sneaker")
    at.selectbox(key="inside_layer").set_value("pool_1")
    at.slider(key="inside_channel").set_value(5).run()
    assert not at.exception
    samples = heatmaps(figures(at)[-1])
    data = load_dataset("fashion_mnist")
    sneakers = np.flatnonzero(data.y_test == 7)[:6]
    assert len(samples) == 6
    for index, sample in zip(sneakers, samples):
        np.testing.assert_allclose(sample, dict(feature_maps(model, data.x_test[index]))["pool_1"][..., 5], rtol=1e-4, atol=1e-5)


def test_heatmap_grid_gives_each_panel_its_own_square_upright_cell():
    """The grid Inside the network draws (laid out by hand, not by make_subplots): one cell per panel, inside the
    figure, no two overlapping, each square and row 0 on top, its title above it, all on one colour scale."""
    from core.charts import heatmap_grid_figure

    panels = [np.full((11, 11), index, dtype=np.float32) for index in range(13)]
    figure = heatmap_grid_figure(panels, [f"channel {index}" for index in range(13)], "conv_2", columns=8)
    layout = figure.layout
    cells = []
    for index, trace in enumerate(figure.data):
        x_axis = layout["xaxis" + trace.xaxis[1:]]
        y_axis = layout["yaxis" + trace.yaxis[1:]]
        assert trace.coloraxis == "coloraxis" and float(trace.z[0][0]) == index
        assert y_axis.scaleanchor == trace.xaxis and y_axis.autorange == "reversed"
        assert x_axis.anchor == trace.yaxis and y_axis.anchor == trace.xaxis
        assert 0 <= x_axis.domain[0] < x_axis.domain[1] <= 1 and 0 <= y_axis.domain[0] < y_axis.domain[1] <= 1
        title = layout.annotations[index]
        assert title.text == f"channel {index}" and title.y == y_axis.domain[1]
        assert x_axis.domain[0] < title.x < x_axis.domain[1]
        cells.append((x_axis.domain, y_axis.domain))
    assert len({trace.xaxis for trace in figure.data}) == 13
    row_of = [index // 8 for index in range(13)]
    assert cells[0][1][0] > cells[8][1][1]  # the second row is below the first
    for first in range(13):
        for second in range(first + 1, 13):
            (x1, y1), (x2, y2) = cells[first], cells[second]
            apart = x1[1] <= x2[0] or x2[1] <= x1[0] or y1[1] <= y2[0] or y2[1] <= y1[0]
            assert apart, (first, second)
            if row_of[first] == row_of[second]:
                assert tuple(y1) == tuple(y2)
