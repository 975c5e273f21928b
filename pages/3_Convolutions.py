"""Convolutions and pooling: hand-set 3×3 filters, 2×2 max pooling, and a real CNN's shape arithmetic."""

import numpy as np
import streamlit as st

from core import charts, ui
from core.course import COURSE_NETWORKS
from core.inspection import (PRESET_FILTERS, apply_filter, convolution_step, flat_area_note, max_pool, pooling_step,
                             strongest_response)
from core.shapes import biggest_layer_note, conv_output_size, network_plan, plan_summary, shape_flow
from core.tables import markdown_table

CUSTOM = "your own settings"
SIZES = [28, 64, 150, 300]
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
    source = left.radio("Image", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="conv_source",
                        persist_state="session", bind="query-params")
    dataset = ui.load_dataset(source, color_mode="grayscale")
    index = int(right.number_input(f"Test image number (0 to {len(dataset.y_test) - 1})", 0, len(dataset.y_test) - 1, 1,
                                   key="conv_index", persist_state="session", bind="query-params"))
    st.selectbox("Start from a preset filter, then change any number", list(PRESET_FILTERS), key="conv_filter",
                 persist_state="session", bind="query-params", on_change=load_preset)
    if KERNEL_KEYS[0][0] not in st.session_state:
        load_preset()
    st.caption("The filter's nine weights, row by row:")
    kernel = []
    for row in range(3):  # a row that never wraps: on a phone, columns stacked the nine boxes one under another
        row_box = st.container(horizontal=True, wrap=False)
        kernel.append([row_box.number_input(f"row {row + 1}, column {number + 1}", -10.0, 10.0, step=0.1, format="%.3f",
                                            key=KERNEL_KEYS[row][number], persist_state="session",
                                            label_visibility="collapsed") for number in range(3)])
    return dataset.x_test[index, :, :, 0], dataset.class_names[dataset.y_test[index]], kernel


def step_form(filtered, strongest, kernel, inputs) -> tuple[int, int]:
    """The output pixel to work out: its row and column in the filtered image, first where the sum is largest (and
    again whenever the image or the filter, `inputs`, changes)."""
    if st.session_state.get("conv_step_inputs") != inputs:
        st.session_state.update(conv_step_inputs=inputs, conv_step_row=strongest[0], conv_step_column=strongest[1])
    left, right = st.columns(2)
    row = left.slider("Output row", 0, filtered.shape[0] - 1, strongest[0], key="conv_step_row",
                      persist_state="session")
    column = right.slider("Output column", 0, filtered.shape[1] - 1, strongest[1], key="conv_step_column",
                          persist_state="session")
    white = int(np.sum(filtered == 255))
    clipped = (f" ({white:,} pixels of the filtered image clip to the same white 255, so its brightest pixel could be "
               "any of them)" if white > 1 else "")
    st.caption(f"The largest sum, where the filter finds its pattern most strongly, is at {strongest}{clipped}. The "
               f"sliders start there, for each new image or filter. {flat_area_note(kernel)}")
    return row, column


def show_step(step, pool):
    """The nine products and their sum, then the pooling window and its maximum."""
    size = step.kernel.shape[0]
    st.markdown(markdown_table([{"pixel × weight": f"row {step.row + i}"}
                                | {f"column {step.column + j}": f"{step.window[i, j]:g} × {step.kernel[i, j]:g} = "
                                   f"{step.products[i, j]:g}" for j in range(size)} for i in range(size)]))
    st.markdown(f"Sum of the {size * size} products: **{step.total:g}**, so output pixel ({step.row}, {step.column}) "
                f"= **{step.shown}** (rounded, then clipped to 0…255 to draw it: a negative sum becomes 0, black — "
                "like the ReLU after a CNN's convolution, relu(x) = max(0, x)).")
    values = ", ".join(f"{value:g}" for value in pool.window.ravel())
    st.markdown(f"**2×2 max pooling** keeps the largest of the block at rows {2 * pool.row}–{2 * pool.row + 1}, columns "
                f"{2 * pool.column}–{2 * pool.column + 1} of the filtered image: max({values}) = **{pool.maximum}**, "
                f"pooled pixel ({pool.row}, {pool.column}).")


with ui.guard():
    image, class_name, kernel = filter_form()
    filtered = apply_filter(image, kernel)
    pooled = max_pool(filtered, 2)
    st.subheader("One step, by the numbers")
    row, column = step_form(filtered, strongest_response(image, kernel), kernel, (hash(image.tobytes()), str(kernel)))
    step = convolution_step(image, kernel, row, column)
    pool = pooling_step(filtered, min(row // 2, pooled.shape[0] - 1), min(column // 2, pooled.shape[1] - 1))

original_column, filtered_column, pooled_column = st.columns(3)
original_column.plotly_chart(charts.heatmap_figure(image, f"{class_name}: {image.shape[0]} × {image.shape[1]}",
                                                   highlight=(row, column, 3, 3)), width="stretch")
filtered_column.plotly_chart(charts.heatmap_figure(filtered, f"filtered: {filtered.shape[0]} × {filtered.shape[1]}",
                                                   highlight=(2 * pool.row, 2 * pool.column, 2, 2)), width="stretch")
pooled_column.plotly_chart(charts.heatmap_figure(pooled, f"2×2 max pooled: {pooled.shape[0]} × {pooled.shape[1]}",
                                                 highlight=(pool.row, pool.column, 1, 1)), width="stretch")
show_step(step, pool)
st.markdown(
    f"**Sizes:** {image.shape[0]} × {image.shape[1]} → 3×3 filter without padding → "
    f"**{filtered.shape[0]} × {filtered.shape[1]}** (the filter cannot centre on the outermost pixels, so one is lost on "
    f"each side) → 2×2 max pooling → **{pooled.shape[0]} × {pooled.shape[1]}** (half, rounded down)."
)

st.subheader("Shape arithmetic of a real CNN")
st.markdown(
    "A CNN stacks blocks of *Conv2D → MaxPooling2D*, then Flatten and Dense layers. Each convolution's output side is "
    "**out = ⌊(in − k + 2p) / s⌋ + 1** (k: kernel size, p: padding pixels on each side, s: stride); each 2×2 pooling "
    "gives **⌊in / 2⌋**. Pick one of the course's networks or your own settings, and any input size: the table uses "
    "the same arithmetic as Keras (a test checks every row against the model Keras builds)."
)


def use_course_input():
    """Set the input size and channels to the chosen course network's own."""
    network = COURSE_NETWORKS.get(st.session_state.conv_network)
    if network:
        st.session_state.update(conv_input_size=network.input_shape[0], conv_channels=network.input_shape[2])


def network_form() -> dict:
    """The input shape and the CNN settings, as keyword arguments of network_plan."""
    top = st.columns(3)
    name = top[0].selectbox("Network", [CUSTOM, *COURSE_NETWORKS], key="conv_network",
                            persist_state="session", bind="query-params", on_change=use_course_input,
                            format_func=lambda name: name if name == CUSTOM else f"{name} ({COURSE_NETWORKS[name].lesson})")
    size = top[1].radio("Input size (pixels per side)", SIZES, horizontal=True, key="conv_input_size",
                        persist_state="session", bind="query-params")  # no slider:
    # a narrow column's slider drew its value over its end labels
    channels = top[2].radio("Channels", [1, 3], horizontal=True, key="conv_channels", persist_state="session",
                            bind="query-params", format_func={1: "1 (grayscale)", 3: "3 (colour)"}.get)
    if name != CUSTOM:
        network = COURSE_NETWORKS[name]
        return {"input_shape": (size, size, channels), "num_classes": network.num_classes, "filters": network.filters,
                "hidden_units": network.hidden_units}
    columns = st.columns(4)
    blocks = columns[0].slider("Convolution blocks", 1, 4, 2, key="conv_blocks", persist_state="session",
                               bind="query-params")
    kernel_size = columns[1].radio("Kernel size k", [3, 5], horizontal=True, key="conv_kernel_size",
                                   persist_state="session", bind="query-params",
                                   format_func=lambda k: f"{k}×{k}")
    strides = columns[2].radio("Stride s", [1, 2], horizontal=True, key="conv_strides", persist_state="session",
                               bind="query-params")
    padding = columns[3].radio("Padding", ["valid", "same"], horizontal=True, key="conv_padding",
                               persist_state="session", bind="query-params",
                               help="valid: no padding (p = 0). same: pad with zeros so a stride-1 convolution keeps the size.")
    return {"input_shape": (size, size, channels), "num_classes": 10, "filters": tuple(32 * 2**block for block in range(blocks)),
            "kernel_size": kernel_size, "conv_strides": strides, "padding": padding}


settings = network_form()
rows = ui.or_error(network_plan, **settings)  # a network whose map vanishes is said, and the page goes on
if rows:
    summary = plan_summary(rows)
    st.markdown(f"**{shape_flow(rows)}** · {summary['parameters']:,} parameters in total, "
                f"{summary['weights bytes'] / 1e6:.1f} MB of weights (4 bytes each); one image's feature maps take "
                f"{summary['feature map bytes per image'] / 1e6:.2f} MB on its way through")
    st.dataframe(
        [{"layer": row["layer"], "output shape": str(row["output_shape"]), "shape arithmetic": row["formula"],
          "parameters": row["params"], "parameter arithmetic": row["params_formula"], "type": row["type"]}
         for row in rows],  # the arithmetic next to what it explains: on a phone the first three columns show
        hide_index=True, column_config=ui.THOUSANDS_COLUMNS, height="content",
    )
    st.caption(biggest_layer_note(summary) + " Too many blocks and the map vanishes: the page then says so instead of "
               "building a broken model.")
st.info(
    "**From older tutorials:** `Conv2D(64, (3, 3), input_shape=(28, 28, 1))` passes the input shape to the first "
    "layer; Keras 3 starts the model with `keras.Input(shape=(28, 28, 1))` instead. The classic lesson image "
    "`scipy.misc.ascent()` was removed from SciPy (now `scipy.datasets.ascent()`, which downloads it), so this page "
    "uses Fashion-MNIST and shapes images that are already on this machine.",
    icon="🕰️",
)
ui.show_code(apply_filter, convolution_step, max_pool, conv_output_size,
             "core.models:build_cnn")  # by name: this page needs no TensorFlow, so it never waits for its import
