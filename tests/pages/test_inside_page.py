"""AppTest: the Inside-the-network page shows a real CNN's filters and feature maps, layer by layer."""

import re
from pathlib import Path

import numpy as np
from conftest import TINY_CNN
from apptest import figure_arrays, figures, open_page

PAGE = Path(__file__).resolve().parents[2] / "pages/5_Inside_the_network.py"


def heatmaps(figure: dict) -> list[np.ndarray]:
    """The panels of a heatmap grid (core.charts.heatmap_grid_figure): its one mosaic, cut where its titles say."""
    from core.charts import grid_panels

    [mosaic] = figure_arrays(figure)
    titles = figure["layout"]["annotations"]
    columns = sum(1 for title in titles if title["y"] == titles[0]["y"])
    height, width = map(int, re.search(r"each panel (\d+) × (\d+) pixels", str(figure["layout"]["title"])).groups())
    return [panel.astype(np.float32) for panel in grid_panels(mosaic, len(titles), columns, (height, width))]


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
    at.selectbox(key="inside_layer").set_value("pool_1").run()
    at.slider(key="inside_channel").set_value(5).run()  # one change a run, as in a browser
    assert not at.exception
    assert "3. Why an image is recognised as “Sneaker”" in [header.value for header in at.header]  # the chosen class
    samples = heatmaps(figures(at)[-1])
    data = load_dataset("fashion_mnist")
    sneakers = np.flatnonzero(data.y_test == 7)[:6]
    assert len(samples) == 6
    for index, sample in zip(sneakers, samples):
        np.testing.assert_allclose(sample, dict(feature_maps(model, data.x_test[index]))["pool_1"][..., 5], rtol=1e-4, atol=1e-5)
    # The channel named is the one that fires more on sneakers than on the other classes, not merely the strongest one
    others = np.concatenate([np.flatnonzero(data.y_test == other)[:6] for other in range(10) if other != 7])
    mean = lambda indices: np.mean([dict(feature_maps(model, data.x_test[i]))["pool_1"].mean(axis=(0, 1))  # noqa: E731
                                    for i in indices], axis=0)
    sneaker_mean, other_mean = mean(sneakers), mean(others)
    specific = int(np.argmax(sneaker_mean - other_mean))
    means = f"{sneaker_mean[specific]:#.3g} on these 6 Sneaker images against {other_mean[specific]:#.3g} on 54 images"
    clear = sneaker_mean[specific] > 1.25 * other_mean[specific]  # a quarter more: not noise on 6 images (0.0299 against
    said = (f"In pool_1, channel {specific} sets Sneaker apart most: its mean activation is {means}" if clear else  # 0.0295
            f"In pool_1, no channel clearly sets Sneaker apart: the most specific one, channel {specific}, averages {means}")
    assert any(said in caption.value for caption in at.caption), [caption.value for caption in at.caption]
    # Another class (or layer, or model) starts from its own most specific channel: channel 5, kept, was drawn under a
    # caption naming another channel as the one that sets the class apart
    at.selectbox(key="inside_class").set_value("Bag").run()
    named = re.search(r"In pool_1, (channel (\d+) sets Bag apart most|no channel clearly sets Bag apart: the most "
                      r"specific one, channel (\d+))", " ".join(caption.value for caption in at.caption))
    assert named and at.slider(key="inside_channel").value == int(named.group(2) or named.group(3))


def test_heatmap_grid_tiles_every_panel_apart_upright_and_titled_above():
    """The grids Inside the network draws are one mosaic: each panel exactly where `grid_panels` finds it, nothing
    else but empty cells, row 0 on top, pixels square, each title centred just above its panel, one colour scale."""
    from core.charts import grid_panels, grid_position, heatmap_grid_figure

    rng = np.random.default_rng(0)
    panels = [rng.random((11, 11), dtype=np.float32) + index for index in range(13)]
    figure = heatmap_grid_figure(panels, [f"channel {index}" for index in range(13)], "conv_2", columns=8)
    [trace] = figure.data
    mosaic = np.asarray(trace.z, dtype=np.float32)
    for panel, found in zip(panels, grid_panels(mosaic, 13, 8, (11, 11)), strict=True):
        np.testing.assert_array_equal(found, panel)
    assert np.isnan(mosaic).sum() == mosaic.size - 13 * 11 * 11  # gaps and title bands are empty
    assert figure.layout.yaxis.autorange == "reversed" and figure.layout.yaxis.scaleanchor == "x"
    assert trace.coloraxis == "coloraxis" and figure.layout.coloraxis.colorbar.title.text == "activation"
    for index, title in enumerate(figure.layout.annotations):
        top, left = grid_position(index, 8, (11, 11))
        assert title.text == f"channel {index}" and title.yanchor == "bottom" and title.y == top - 0.5
        assert title.x == left + 5 and np.isnan(mosaic[top - 1, left:left + 11]).all()  # an empty band above it
    assert grid_position(8, 8, (11, 11))[0] > grid_position(0, 8, (11, 11))[0] + 11  # the second row is below


def test_a_model_whose_dataset_was_deleted_shows_its_filters_and_where_its_images_wait(own_trained_registry):
    """Its photos in the trash: the filters need none, the maps do; the page says how to bring them back, and opens
    first on a model whose images are here. Compare tests the pair without them and leaves out only its galleries."""
    import dataclasses

    from photos import photo_files, zip_bytes

    from core.engines import train_and_publish
    from core.folders import delete_dataset, import_zip

    report = import_zip(zip_bytes(photo_files({"train": 20}, size=(64, 48), split_folders=False)), own_trained_registry.root,
                        title="my photos")
    photo_cnn = train_and_publish(own_trained_registry, dataclasses.replace(TINY_CNN, dataset=report.name, image_size=32,
                                                                            train_subset=None, epochs=1, batch_size=8))
    photo_dnn = train_and_publish(own_trained_registry, dataclasses.replace(photo_cnn.config, family="dnn", filters=()))
    delete_dataset(own_trained_registry.root, report.name)
    at = open_page(PAGE).run()
    assert not at.exception and at.selectbox(key="inside_model").value == TINY_CNN.key  # its images are here
    at.selectbox(key="inside_model").set_value(photo_cnn.key).run()
    assert not at.exception and not at.error
    assert "filters" in str(figures(at)[0]["layout"]["title"]).lower()  # section 1: the learned filters, drawn
    [note] = [info.value for info in at.info if "Sections 2 and 3" in info.value]
    assert "The dataset “my photos” was deleted on " in note and "restore it on the Models page" in note
    assert str(own_trained_registry.root) not in note  # no server path for a student

    compare = open_page(PAGE.parent / "9_Compare.py").run()
    compare.multiselect(key="compare_models").set_value([photo_cnn.key, photo_dnn.key]).run()
    assert not compare.exception and not compare.error
    assert "McNemar" in " ".join([*(markdown.value for markdown in compare.markdown), *(caption.value for caption in compare.caption)])
    assert [info.value for info in compare.info if "The gallery shows this model's test images" in info.value]


def test_the_first_view_is_drawn_without_tensorflow_and_matches_the_model(own_trained_registry):
    """A student who opens the page while a fresh server still imports TensorFlow (5.5 s here) is not kept waiting:
    the whole first view comes from the file published with the model. Without that file the page needs
    TensorFlow, and draws the same figures from the model."""
    import os
    import subprocess
    import sys

    from core import ui
    from core.network_view import VIEW_FILE

    code = ("import sys; from apptest import figures, open_page\n"
            f"at = open_page({str(PAGE)!r}).run()\n"
            "assert not at.exception and not at.error, at.exception\n"
            "assert any(h.value.startswith('3. Why an image is recognised as') for h in at.header)\n"
            "print(len(figures(at)), 'tensorflow' in sys.modules)\n")
    folder = Path(__file__).parent

    def page_in_a_fresh_process() -> str:
        return subprocess.run([sys.executable, "-c", code], check=True, cwd=folder.parents[1], timeout=300,
                              capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": f"{folder}:{folder.parents[1]}"}).stdout.split()

    assert page_in_a_fresh_process() == ["7", "False"]  # filters, 5 layers, the channel grid: no TensorFlow
    ui.network_view.clear()
    published = figures(open_page(PAGE).run())
    (own_trained_registry.entry_dir(TINY_CNN.key) / VIEW_FILE).unlink()
    assert page_in_a_fresh_process() == ["7", "True"]
    ui.network_view.clear()
    computed = figures(open_page(PAGE).run())
    assert len(published) == len(computed) == 7
    for drawn, from_model in zip(published, computed, strict=True):
        assert drawn["layout"]["title"] == from_model["layout"]["title"]
        for panel, expected in zip(figure_arrays(drawn), figure_arrays(from_model), strict=True):
            np.testing.assert_allclose(panel, expected, rtol=1e-4, atol=1e-5, equal_nan=True)
