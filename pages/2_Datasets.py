"""Datasets: what the images look like, how many there are per class, and what a picture is to a computer."""

import numpy as np
import streamlit as st

from core import charts, ui
from core.catalogue import FOLDER_PREFIX, dataset_titles, list_datasets
from core.course import data_origin_note
from core.datasets import class_counts, load_dataset, sample_by_class
from core.errors import without_received
from core.guide import balance_note

SPLITS = {"train": "training", "val": "validation", "test": "test"}

ui.page_setup("Datasets")
st.title("Datasets")
st.markdown(
    "A classifier learns from **labelled examples**: many images, each with the name of its class. Before "
    "training anything, look at the data: what the classes are, whether there are as many images of each, "
    "and what an image really is to a computer — a grid of numbers."
)


def datasets_form():
    """The chosen dataset's info."""
    infos = {info.name: info for info in list_datasets(ui.registry().root)}
    titles = dataset_titles(list(infos.values()))
    name = st.selectbox("Dataset", list(infos), key="datasets_name", persist_state="session", bind="query-params",
                        format_func=titles.get)
    return infos[name]


with st.expander("Course datasets: the classic course's photo zips (horses or humans, rock paper scissors, cats vs dogs)"):
    st.caption("Import them once and they appear in the list below (and on **Your own images** and **Train**) as folder "
               "datasets.")
    ui.course_datasets_list()
info = datasets_form()
st.caption(info.description)
if not info.available:
    st.warning(without_received(info.message), icon="📦")  # its paths are the steps; its values are for the log
    st.stop()

with ui.guard():
    dataset = ui.load_dataset(info.name)

cols = st.columns(4)
cols[0].metric("classes", dataset.num_classes)
cols[1].metric("image shape (H × W × C)", " × ".join(map(str, dataset.input_shape)))
cols[2].metric("training / validation images", f"{len(dataset.y_train):,} / {len(dataset.y_val):,}")
cols[3].metric("test images", f"{len(dataset.y_test):,}")
st.caption(f"Source: {dataset.source}. The test split is fixed: every model of this dataset is tested on the same images.")
if info.name.startswith(FOLDER_PREFIX):  # photos of many sizes, shown here at one
    from core.folders import import_report, sizes_text  # here: Fashion-MNIST's first visit needs none of it

    st.caption(f"Its photos are {sizes_text(import_report(ui.registry().root, info.name).image_sizes)}; "
               f"this page shows them at {dataset.input_shape[1]}×{dataset.input_shape[0]}, and a model sees the size "
               "chosen on Your own images or Train.")
if dataset.split_sources:
    st.markdown("Where each split comes from:\n" + "\n".join(f"- **{split}**: {source}"
                                                                for split, source in dataset.split_sources.items()))

st.subheader("Some images of every class")
per_class = st.slider("Samples shown per class", 1, 12, 8, key="datasets_per_class", persist_state="session",
                      bind="query-params")
side = 56 if dataset.input_shape[0] <= 32 else 80
for class_name, images in sample_by_class(dataset, per_class).items():
    label, pictures = st.columns([1, 6])
    label.markdown(f"**{class_name}**")
    if not len(images):
        pictures.caption("No training images of this class.")
        continue
    row = ui.image_row(images)
    pictures.image(row, width=round(row.shape[1] * side / images.shape[2]))

counts = {SPLITS[split]: class_counts(getattr(dataset, f"y_{split}"), dataset.num_classes) for split in SPLITS}
st.plotly_chart(charts.class_counts_figure(counts, dataset.class_names), width="stretch")
st.caption(balance_note(dataset.class_names, counts[SPLITS["train"]], counts[SPLITS["test"]]))

st.subheader("An image is a grid of numbers")
left, middle, right = st.columns([2, 2, 2])
split = left.selectbox("Split", list(SPLITS), index=2, format_func=SPLITS.get, key="datasets_split",
                       persist_state="session", bind="query-params")
images, labels = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
index = int(middle.number_input(f"Image number (0 to {len(labels) - 1})", 0, len(labels) - 1, 0, key="datasets_index",
                                persist_state="session", bind="query-params"))
channels = dataset.input_shape[-1]
channel = right.selectbox("Colour channel", range(channels), format_func=["red", "green", "blue"].__getitem__,
                          key="datasets_channel", persist_state="session", bind="query-params") if channels == 3 else 0
image = images[index]
pixels = image[:, :, channel]
left.image(ui.displayable(image), width=160, caption=f"{dataset.class_names[labels[index]]} (label {labels[index]})")
st.markdown(
    f"This picture is a {pixels.shape[0]} × {pixels.shape[1]} grid of whole numbers from **0 (black)** to "
    "**255 (white)**" + (f", one grid per colour channel (this is the {['red', 'green', 'blue'][channel]} one)"
                         if channels == 3 else "")
    + f". This one ranges from {pixels.min()} to {pixels.max()}."
)


def draw_grid(container, values, title: str, decimals: int, top: float):
    """A small image's pixels as a numbered grid (a picture, drawn at once); a photo's as a heatmap to hover over."""
    if max(values.shape) <= charts.NUMBERED_GRID_SIDE:
        ui.full_size_on_a_phone(container, "pixel_grid").image(  # PNG: sharp numbers
            charts.numbered_grid(values, decimals, top), output_format="PNG",
            caption=f"{title}. Each square is one pixel, its shade and its number; row numbers down the left, column "
                    "numbers along the top. On a phone the grid keeps its size: swipe it sideways.")
    else:
        container.plotly_chart(charts.pixel_figure(values, title, top), width="stretch")


# Only the open tab is drawn (a tab switch reruns the page): drawing all four views made the page's first visit
# 3.0 s instead of 1.8 s (docs/performance.md).
raw_tab, scaled_tab, raw_table_tab, scaled_table_tab = st.tabs(
    ["Pixel values 0..255", "Normalised 0..1", "Table: 0..255", "Table: 0..1"], key="datasets_pixel_view",
    on_change="rerun")
if raw_tab.open:
    draw_grid(raw_tab, pixels, "Pixel values 0..255", 0, 255)
if scaled_tab.open:
    draw_grid(scaled_tab, pixels / 255, "After normalising: value / 255, from 0 to 1", 2, 1)
if raw_table_tab.open:
    raw_table_tab.dataframe(pixels.astype(np.int64))
if scaled_table_tab.open:
    scaled_table_tab.dataframe(np.round(pixels / 255, 3))
st.caption("Same picture, same shades: only the scale of the numbers changed (white is 255 before, 1.00 after).")

st.subheader("Why normalise?")
st.markdown(
    "Networks learn best from small numbers, around 0 to 1: large inputs make large gradients and unstable "
    "training. Dividing by 255 keeps the picture identical (same shades, same proportions) and only changes the "
    "scale. The classic tutorial divides the arrays *before* training (`training_images / 255.0`). Our models "
    "do it **inside** the model with a `Rescaling(1/255)` layer, right after the input, so a saved model takes "
    "raw 0..255 pixels: a photo you upload later needs no outside preprocessing, and nobody can forget it."
)
st.code(
    "from tensorflow import keras\nfrom tensorflow.keras import layers\n\n"
    f"inputs = keras.Input(shape={tuple(map(int, dataset.input_shape))})  # this dataset's images\n"
    "x = layers.Rescaling(1 / 255)(inputs)  # 0..255 -> 0..1, part of the saved model\n"
    "# ... Conv2D / Dense layers ...",
    language="python",
)
st.caption("Older tutorials import it as `tf.keras.layers.experimental.preprocessing.Rescaling`; it is now "
           "`keras.layers.Rescaling`. " + data_origin_note(info.name, dataset.source))
ui.show_code(load_dataset, sample_by_class, class_counts)
