"""Convolutions and pooling: hand-set 3×3 filters, 2×2 max pooling, and a real CNN's shape arithmetic."""

import streamlit as st

from core import charts, ui
from core.inspection import PRESET_FILTERS, apply_filter, max_pool
from core.models import build_cnn
from core.shapes import conv_output_size, shape_flow, shape_walkthrough

SOURCES = {"fashion_mnist": "a Fashion-MNIST test image", "shapes": "a shapes test image (as grayscale)"}
KERNEL_KEYS = [[f"conv_kernel_{row}{column}" for column in range(3)] for row in range(3)]

ui.page_setup("Convolutions")
st.title("Convolutions and pooling")
st.markdown(
    "A **convolution** slides a small grid of numbers — a 3×3 **filter** — over the image. At every position it "
    "multiplies the nine pixels under the filter by the nine filter numbers and adds them up: one output pixel. "
    "A filter like `[-1 0 1]` in every row answers *how much brighter is the right than the left?*, so it lights "
    "up vertical edges. A CNN does exactly this, except that it **learns** the filter numbers itself. "
    "**Max pooling** then keeps only the largest value of each 2×2 block: the strongest response survives and "
    "the image halves in size, so later layers see more of it at once."
)


def load_preset():
    """Copy the chosen preset's nine numbers into the nine number inputs."""
    kernel = PRESET_FILTERS[st.session_state.conv_filter]
    for row in range(3):
        for column in range(3):
            st.session_state[KERNEL_KEYS[row][column]] = round(float(kernel[row][column]), 3)


def filter_form():
    """The chosen image (H, W) and the nine filter numbers."""
    left, right = st.columns(2)
    source = left.radio("Image", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="conv_source")
    dataset = ui.load_dataset(source, color_mode="grayscale")
    index = int(right.number_input(f"Test image number (0 to {len(dataset.y_test) - 1})", 0, len(dataset.y_test) - 1, 1,
                                   key="conv_index"))
    st.selectbox("Start from a preset filter, then change any number", list(PRESET_FILTERS), key="conv_filter",
                 on_change=load_preset)
    if KERNEL_KEYS[0][0] not in st.session_state:
        load_preset()
    kernel = [[column.number_input(f"row {row + 1}, column {number + 1}", -10.0, 10.0, step=0.1, format="%.3f",
                                   key=KERNEL_KEYS[row][number], label_visibility="collapsed")
               for number, column in enumerate(st.columns(3))] for row in range(3)]
    return dataset.x_test[index, :, :, 0], dataset.class_names[dataset.y_test[index]], kernel


with ui.guard():
    image, class_name, kernel = filter_form()
    filtered = apply_filter(image, kernel)
    pooled = max_pool(filtered, 2)

original_column, filtered_column, pooled_column = st.columns(3)
original_column.plotly_chart(charts.heatmap_figure(image, f"{class_name}: {image.shape[0]} × {image.shape[1]}"), width="stretch")
filtered_column.plotly_chart(charts.heatmap_figure(filtered, f"filtered: {filtered.shape[0]} × {filtered.shape[1]}"),
                             width="stretch")
pooled_column.plotly_chart(charts.heatmap_figure(pooled, f"2×2 max pooled: {pooled.shape[0]} × {pooled.shape[1]}"),
                           width="stretch")
st.markdown(
    f"**Shapes:** {image.shape[0]} × {image.shape[1]} → 3×3 filter without padding → "
    f"**{filtered.shape[0]} × {filtered.shape[1]}** (the filter cannot centre on the outermost pixels, so one is lost on "
    f"each side) → 2×2 max pooling → **{pooled.shape[0]} × {pooled.shape[1]}** (half, rounded down). Results are "
    "clipped to 0..255 so they can be drawn as a picture; negative responses show as black."
)

st.subheader("Shape arithmetic of a real CNN")
st.markdown(
    "The classic Fashion-MNIST CNN stacks two blocks of *Conv2D → MaxPooling2D*, then Flatten and Dense layers. "
    "Each convolution's output side is **out = ⌊(in − k + 2p) / s⌋ + 1** (k: kernel size, p: padding pixels on each "
    "side, s: stride); each 2×2 pooling gives **⌊in / 2⌋**. Change the settings: the table is computed from the "
    "model Keras actually builds."
)


def network_form() -> dict:
    """The CNN settings as keyword arguments of build_cnn."""
    columns = st.columns(4)
    blocks = columns[0].slider("Convolution blocks", 1, 4, 2, key="conv_blocks")
    kernel_size = columns[1].select_slider("Kernel size k", [3, 5], 3, key="conv_kernel_size")
    strides = columns[2].radio("Stride s", [1, 2], horizontal=True, key="conv_strides")
    padding = columns[3].radio("Padding", ["valid", "same"], horizontal=True, key="conv_padding",
                               help="valid: no padding (p = 0). same: pad with zeros so a stride-1 convolution keeps the size.")
    return {"filters": tuple(32 * 2**block for block in range(blocks)), "kernel_size": kernel_size,
            "conv_strides": strides, "padding": padding}


@st.cache_data(max_entries=64, show_spinner="Building the model…")
def walkthrough(settings: dict) -> list[dict]:
    return shape_walkthrough(build_cnn((28, 28, 1), 10, hidden_units=(128,), **settings))


settings = network_form()
with ui.guard():
    rows = walkthrough(settings)
st.markdown(f"**{shape_flow(rows)}** · {sum(row['params'] for row in rows):,} parameters in total")
st.dataframe(
    [{"layer": row["layer"], "type": row["type"], "output shape": str(row["output_shape"]), "parameters": row["params"],
      "shape arithmetic": row["formula"], "parameter arithmetic": row["params_formula"]} for row in rows],
    hide_index=True,
)
st.caption(
    "Most parameters sit in the first Dense layer: it connects every one of the flattened numbers to every unit. "
    "Pooling and 'valid' convolutions shrink the map, and with it that layer. Too many blocks and the map "
    "vanishes — the page then says so instead of building a broken model."
)
st.info(
    "**From older tutorials:** `Conv2D(64, (3, 3), input_shape=(28, 28, 1))` passes the input shape to the first "
    "layer; Keras 3 starts the model with `keras.Input(shape=(28, 28, 1))` instead. The classic lesson image "
    "`scipy.misc.ascent()` was removed from SciPy (now `scipy.datasets.ascent()`, which downloads it), so this page "
    "uses Fashion-MNIST and shapes images that are already on this machine.",
    icon="🕰️",
)
ui.show_code(apply_filter, max_pool, conv_output_size, build_cnn)
