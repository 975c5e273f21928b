"""AppTest: the Datasets page shows samples, class counts and one image as numbers, raw and normalised."""

import threading
import time
from pathlib import Path

import numpy as np
from apptest import figure_arrays, figure_texts, figures, open_page

from core import charts, ui
from core.catalogue import dataset_info
from core.datasets import load_dataset

PAGE = str(Path(__file__).resolve().parents[2] / "pages/2_Datasets.py")


def open_pixel_view(at, tab: str):
    """Switch the 'grid of numbers' tabs to `tab` (as a click does: the page reruns and draws only that tab)."""
    at.session_state["datasets_pixel_view"] = tab
    return at.run()


def test_fashion_mnist_pixels_are_0_to_255_and_normalised_to_0_to_1(monkeypatch):
    grids = []  # what the page asks charts.numbered_grid to draw (the picture itself is tested in test_charts.py)
    draw = charts.numbered_grid
    monkeypatch.setattr(charts, "numbered_grid", lambda *arguments: grids.append(arguments) or draw(*arguments))
    at = open_page(PAGE).run()
    assert not at.exception
    assert at.selectbox(key="datasets_name").value == "fashion_mnist"
    assert at.metric[0].value == "10"
    expected = load_dataset("fashion_mnist").x_test[0, :, :, 0]
    images = at.get("image")
    assert len(images) == 10 + 1 + 1  # one row of samples per class, the image, then the image as numbers
    assert images[-1].captions[0].startswith("Pixel values 0..255. Each square is one pixel")
    (counts,) = figures(at)  # only the open tab is drawn: no normalised grid, no tables yet
    assert {"training", "validation", "Ankle boot"} <= figure_texts(counts)
    assert not at.dataframe
    (values, decimals, top), = grids
    assert np.array_equal(values, expected) and (decimals, top) == (0, 255)

    open_pixel_view(at, "Normalised 0..1")
    assert not at.exception and at.get("image")[-1].captions[0].startswith("After normalising: value / 255")
    values, decimals, top = grids[-1]
    assert np.allclose(values, expected / 255) and (decimals, top) == (2, 1)
    raw = open_pixel_view(at, "Table: 0..255").dataframe[0].value.to_numpy()
    assert raw.shape == (28, 28) and 0 <= raw.min() and raw.max() <= 255
    assert np.array_equal(raw, expected)
    scaled = open_pixel_view(at, "Table: 0..1").dataframe[0].value.to_numpy()
    assert scaled.max() <= 1 and np.allclose(scaled, np.round(expected / 255, 3))
    assert len(at.dataframe) == 1
    assert "keras.Input(shape=(28, 28, 1))" in at.code[0].value

    at.number_input(key="datasets_index").set_value(7).run()  # the open tab stays open for the next image
    assert not at.exception
    seventh = load_dataset("fashion_mnist").x_test[7, :, :, 0]
    assert np.array_equal(at.dataframe[0].value.to_numpy(), np.round(seventh / 255, 3))


def test_colour_shapes_show_one_channel_and_missing_datasets_say_how_to_get_them():
    at = open_page(PAGE).run()
    at.selectbox(key="datasets_name").set_value("shapes").run()
    assert not at.exception
    assert "keras.Input(shape=(64, 64, 3))" in at.code[0].value  # the normalising code fits the chosen images
    at.selectbox(key="datasets_channel").set_value(1).run()
    green = load_dataset("shapes").x_test[0, :, :, 1]
    heatmap = figures(at)[1]  # 64 x 64: too many numbers to write, a heatmap to hover over instead
    assert np.array_equal(figure_arrays(heatmap)[0], green)
    open_pixel_view(at, "Table: 0..255")
    assert np.array_equal(at.dataframe[0].value.to_numpy(), green)

    at.selectbox(key="datasets_name").set_value("cifar10").run()
    assert not at.exception
    info = dataset_info("cifar10")
    if not info.available:  # offline here: the page explains how to get it instead of failing
        assert at.warning[0].value == info.message.split(" Received:")[0]  # the steps, without the log's values


def test_a_class_samples_are_one_picture_side_by_side_on_white():
    gray = np.random.default_rng(0).integers(0, 200, size=(3, 28, 28, 1), dtype=np.uint8)
    row = ui.image_row(gray, gap=4)
    assert row.shape == (28, 3 * 28 + 2 * 4) and row.dtype == np.uint8
    for index in range(3):
        assert np.array_equal(row[:, index * 32:index * 32 + 28], gray[index, :, :, 0])
    assert (row[:, 28:32] == 255).all() and (row[:, 60:64] == 255).all()
    colour = np.zeros((2, 10, 12, 3), dtype=np.uint8)
    assert ui.image_row(colour, gap=2).shape == (10, 26, 3)
    assert ui.image_row(colour[:1]).shape == (10, 12, 3)


def test_the_preloading_sees_a_page_running_and_its_end():
    """The server's preloading lets a running page go first (core.preload.PageFirst): it must see the run, then its end."""
    seen, watching = [], threading.Event()

    def watch():
        while not watching.is_set():
            seen.append(ui.a_page_is_running())
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    open_page(PAGE).run()
    watching.set()
    watcher.join()
    assert any(seen) and not ui.a_page_is_running()


def test_imported_photos_say_their_own_sizes_and_whether_their_classes_are_balanced(registry_root):
    from photos import photo_files, zip_bytes

    from core.folders import import_zip

    files = photo_files({"train": 20}, kinds=("round",), size=(120, 90), split_folders=False)
    files |= photo_files({"train": 10}, kinds=("angular",), size=(300, 200), split_folders=False, seed=2)
    report = import_zip(zip_bytes(files), registry_root, title="mixed sizes")
    at = open_page(PAGE)
    at.session_state["datasets_name"] = report.name
    at.run()
    assert not at.exception
    captions = " ".join(caption.value for caption in at.caption)
    assert ("Its photos are from 120×90 to 300×200, the middle one 120×90 (width × height, ranked by their number of "
            "pixels); this page shows them at") in captions
    assert "The classes are not balanced: round has" in captions  # 20 against 10, less the test and validation photos
