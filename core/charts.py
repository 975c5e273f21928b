"""Plotly figures for the pages, and the numbered pixel grid (a picture). Every chart has axis titles with units; no
Streamlit here."""

import math

import numpy as np
import pandas  # noqa: F401  (see below)
import PIL.Image  # noqa: F401
import plotly.graph_objects as go

from core.config import FINE_TUNE_RATE_DIVISOR
from core.guide import percent_sure
from core.history import History

# Plotly checks its inputs against pandas and Pillow by looking them up in sys.modules without importing them. A
# module another thread is still importing is already there, half-built: the server's preloading imports both while
# a page may be drawing, and Datasets then failed one time in six ("partially initialized module 'pandas' has no
# attribute 'Series'"). Imported here, every page that draws a chart waits until they are complete.
PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04"]
METRIC_TITLES = {"accuracy": "accuracy (fraction correct)", "loss": "loss (cross-entropy)"}
NOTE_LINE_COLOR = "#4b5563"  # a dotted line that marks a moment or a level: fine-tuning's start, chance
# A legend in rows under the whole chart, below the x axis's title. Placed under the plot area instead (paper
# coordinates, y = -0.25), it sat on that title on a phone: its six rows shrank the plot, and the gap with it.
LEGEND_ROW_PIXELS = 18  # a legend's row on a phone, where each entry takes one: Transfer's 7 left a plot of 100 px
LEGEND_BELOW = {"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom"}


LEGEND_NAME_CHARACTERS = 40  # a longer model name is cut in a legend, so that "· training" / "· validation" show


def history_figure(histories: dict[str, History], metric: str = "accuracy", title: str | None = None) -> go.Figure:
    """Training (solid) and validation (dashed) curves per model: the gap between them is overfitting.

    One model's curves are named "training" and "validation" (the page names the model); with several, each model's
    name comes first, cut to LEGEND_NAME_CHARACTERS: a long one pushed the part that tells the curves apart out of
    the legend."""
    figure = go.Figure()
    for index, (name, history) in enumerate(histories.items()):
        color = PALETTE[index % len(PALETTE)]
        epochs = [row["epoch"] for row in history]
        prefix = "" if len(histories) == 1 else f"{_shortened(name, LEGEND_NAME_CHARACTERS)} · "
        # Filled circles and open diamonds as well as solid and dashed lines: one epoch draws no line at all.
        figure.add_scatter(x=epochs, y=[row[metric] for row in history], name=f"{prefix}training",
                           mode="lines+markers", line={"color": color}, marker={"symbol": "circle", "size": 8})
        figure.add_scatter(x=epochs, y=[row[f"val_{metric}"] for row in history], name=f"{prefix}validation",
                           mode="lines+markers", line={"color": color, "dash": "dash"},
                           marker={"symbol": "diamond-open", "size": 10, "line": {"width": 2}})
    figure.update_layout(
        title=title or f"{metric.capitalize()} per epoch",
        xaxis_title="epoch (full passes over the training images)",
        yaxis_title=METRIC_TITLES.get(metric, metric),
        legend=LEGEND_BELOW,
        margin={"t": 50, "b": 10},
        height=360 + LEGEND_ROW_PIXELS * max(0, 2 * len(histories) - 4),  # a phone's legend: a row each
    )
    last = max((row["epoch"] for history in histories.values() for row in history), default=1)
    # The range is fixed: Plotly widens an automatic one to fit the fine-tuning note, which in a half-width chart
    # (Compare) pushed the axis out to epoch -16.
    figure.update_xaxes(dtick=1 if last <= 20 else None, range=[0.5, last + 0.5])
    starts = sorted({_fine_tuning_start(history) for history in histories.values()} - {None})
    for epoch in starts:  # a short note by the line, cut by nothing on a phone; what happens there, in the legend
        figure.add_vline(x=epoch - 0.5, line_dash="dot", line_color=NOTE_LINE_COLOR,
                         annotation_text="fine-tuning starts", annotation_position="top right")
    if starts:
        _name_note_line(figure, f"fine-tuning starts: top layers unfrozen, learning rate ÷ {FINE_TUNE_RATE_DIVISOR}")
    return figure


def _name_note_line(figure: go.Figure, name: str):
    """A legend entry for the figure's dotted NOTE_LINE_COLOR lines (a line itself has none): what they mark."""
    figure.add_scatter(x=[None], y=[None], mode="lines", line={"dash": "dot", "color": NOTE_LINE_COLOR}, name=name)


def _shortened(text: str, characters: int) -> str:
    """`text`, cut to `characters` with an ellipsis when longer."""
    return text if len(text) <= characters else text[:characters - 1].rstrip() + "…"


def _fine_tuning_start(history: History) -> int | None:
    """The first epoch of the second phase of two-phase fine-tuning, or None for a one-phase history."""
    return next((row["epoch"] for row in history if row.get("phase") == 2), None)


def confusion_figure(confusion: np.ndarray, class_names: list[str], title: str = "Confusion matrix") -> go.Figure:
    """Counts of true class (rows) against predicted class (columns)."""
    figure = go.Figure(
        go.Heatmap(z=confusion, x=class_names, y=class_names, colorscale="Blues", text=confusion, texttemplate="%{text}",
                   colorbar={"title": "images"}, hovertemplate="true %{y}<br>predicted %{x}<br>%{z} images<extra></extra>")
    )
    figure.update_layout(title=title, xaxis_title="predicted class", yaxis_title="true class", height=420,
                         margin={"t": 50, "b": 10}, yaxis={"autorange": "reversed"})
    return figure


def per_class_figure(recalls: dict[str, np.ndarray], class_names: list[str]) -> go.Figure:
    """Per-class accuracy (recall) side by side for several models."""
    figure = go.Figure()
    for index, (name, recall) in enumerate(recalls.items()):
        figure.add_bar(x=class_names, y=np.asarray(recall), name=name, marker_color=PALETTE[index % len(PALETTE)])
    figure.update_layout(title="Accuracy per class", xaxis_title="class", yaxis_title="recall (fraction of the class found)",
                         yaxis_range=[0, 1], barmode="group", height=360, margin={"t": 50, "b": 10},
                         legend=LEGEND_BELOW)
    return figure


def probabilities_figure(probabilities: np.ndarray, class_names: list[str]) -> go.Figure:
    """The model's probability for each class, highest first."""
    order = np.argsort(probabilities)[::-1]
    figure = go.Figure(go.Bar(x=[float(probabilities[i]) for i in order], y=[class_names[i] for i in order],
                              orientation="h", marker_color=["#2563eb"] + ["#94a3b8"] * (len(order) - 1),
                              text=[percent_sure(probabilities[i], decimals=1) for i in order], textposition="auto"))
    figure.update_layout(xaxis_title="probability", xaxis_tickformat=".0%", yaxis_title="class", xaxis_range=[0, 1],
                         yaxis={"autorange": "reversed"}, height=60 + 28 * len(order), margin={"t": 10, "b": 10})
    return figure


def raw_outputs_figure(values: np.ndarray, labels: list[str]) -> go.Figure:
    """A model's raw outputs when they are not probabilities: numbers on a plain axis, never percentages."""
    values = np.asarray(values, dtype=np.float64)
    figure = go.Figure(go.Bar(x=[float(value) for value in values], y=list(labels), orientation="h", marker_color="#94a3b8",
                              text=[f"{value:.4g}" for value in values], textposition="auto"))
    figure.update_layout(xaxis_title="raw output (a score, not a probability)", yaxis_title="output",
                         yaxis={"autorange": "reversed"}, height=60 + 28 * len(values), margin={"t": 10, "b": 10})
    return figure


def line_fit_figure(xs, ys, fitted_xs, fitted_ys, data_name: str = "data (y = 2x - 1)", best_ys=None) -> go.Figure:
    """Data points and the line a single neuron has learned (and, for noisy data, the least-squares line)."""
    figure = go.Figure()
    figure.add_scatter(x=xs, y=ys, mode="markers", name=data_name, marker={"size": 10})
    figure.add_scatter(x=fitted_xs, y=fitted_ys, mode="lines", name="the neuron's line")
    if best_ys is not None:
        figure.add_scatter(x=fitted_xs, y=best_ys, mode="lines", name="least-squares line (the best a line can do)",
                           line={"dash": "dot"})
    figure.update_layout(xaxis_title="x (input)", yaxis_title="y (output)", height=380, margin={"t": 20, "b": 10},
                         legend=LEGEND_BELOW)  # under the chart: on a phone a side legend took 248 of 358 px
    return figure


def loss_figure(losses: list[float], title: str = "Loss per epoch") -> go.Figure:
    """A single loss curve on a log scale, each tick labelled with its whole value (`log_ticks`)."""
    figure = go.Figure(go.Scatter(x=list(range(1, len(losses) + 1)), y=losses, mode="lines"))
    finite = [loss for loss in losses if math.isfinite(loss) and loss > 0]
    figure.update_layout(title=title, xaxis_title="epoch", yaxis_title="loss (mean squared error, log scale)",
                         yaxis_type="log", height=300, margin={"t": 40, "b": 10})
    if finite:
        ticks = log_ticks(min(finite), max(finite))
        low, high = min(*finite, *ticks), max(*finite, *ticks)  # every tick in view: Plotly's range spans the data only
        figure.update_yaxes(tickvals=ticks, ticktext=[tick_text(tick) for tick in ticks],
                            range=[math.log10(low) - 0.02, math.log10(high) + 0.02])
    return figure


def log_ticks(low: float, high: float, most: int = 8) -> list[float]:
    """Tick values for a log axis from `low` to `high` (both above 0): 1, 2 and 5 times each power of ten while they
    are few, else the powers alone (every other one, and so on, past `most`); round values inside a range too narrow
    for those (`even_ticks`). Plotly labels its own in-between ticks with their first digit only: a loss levelling off
    at 0.65 sat beside a "6"."""
    if high / low <= 4:
        return even_ticks(low, high)
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    for steps in ((1, 2, 5), (1,)):
        ticks = [step * 10.0 ** power for power in range(first, last + 1) for step in steps]
        ticks = [tick for tick in ticks if low / 1.5 <= tick <= high * 1.5]
        if len(ticks) <= most:
            return ticks
    stride = math.ceil(len(ticks) / most)
    return ticks[::stride]


def even_ticks(low: float, high: float) -> list[float]:
    """Two to six round values from `low` to `high`, evenly spaced (0.782, 0.784, …): a learning rate of 0.001 moves
    the loss from 0.79 to 0.78, where no power of ten or 2 or 5 times one falls."""
    if high <= low:
        return [low]
    span = high - low
    power = math.floor(math.log10(span / 3))
    step = next(multiple * 10.0 ** power for multiple in (1, 2, 5) if span / (multiple * 10.0 ** power) <= 6)
    return [float(f"{index * step:.12g}") for index in range(math.ceil(low / step), math.floor(high / step) + 1)]


def tick_text(value: float) -> str:
    """A tick's label: 0.5, 20, 0.7804 or 1000 as written; a power of ten (or 2 or 5 times one) beyond 10⁵ or under
    10⁻³ as 10⁻⁵ or 2×10⁸."""
    power = math.floor(math.log10(value) + 1e-9)
    mantissa = value / 10.0 ** power
    if 1e-3 <= value < 1e5 or abs(mantissa - round(mantissa)) > 1e-6:
        return f"{value:.6g}"
    exponent = f"10<sup>{power}</sup>".replace("-", "−")
    return f"{round(mantissa)}×{exponent}" if round(mantissa) != 1 else exponent


def heatmap_figure(values: np.ndarray, title: str, colorscale: str = "gray", zmid=None, highlight=None) -> go.Figure:
    """A 2-D array (an image, a filter, a feature map) as a heatmap, pixels square, row 0 on top; `highlight`
    (row, column, height, width) outlines a block of pixels in red."""
    figure = go.Figure(go.Heatmap(z=values, colorscale=colorscale, zmid=zmid, colorbar={"title": "value"}))
    if highlight is not None:
        row, column, height, width = highlight
        figure.add_shape(type="rect", x0=column - 0.5, x1=column + width - 0.5, y0=row - 0.5, y1=row + height - 0.5,
                         line={"color": "#dc2626", "width": 3})
    figure.update_layout(title=title, xaxis_title="column (pixels)", yaxis_title="row (pixels)", height=320,
                         margin={"t": 40, "b": 10}, xaxis={"constrain": "domain"},  # square pixels: the plot shrinks
                         yaxis={"autorange": "reversed", "scaleanchor": "x", "constrain": "domain"})  # to the image, no
    return figure  # empty rows are added to the axis (a 28-row image had an axis to 30)


# The band above each row of a heatmap grid, for the panels' titles, as a part of a panel's height: 16 px over a
# phone's 38-px panels. A band of 22 px at the desktop's size was 8-10 px on a phone, and the second row's titles
# lay over the first row's panels.
GRID_TITLE_BAND = 0.4


def _grid_geometry(columns: int, panel_shape: tuple[int, int]) -> tuple[int, int, int]:
    """(pixels on screen per panel row, empty mosaic rows above each row of panels, empty columns between panels)."""
    height, width = panel_shape
    row_pixels = 110 if columns >= 6 else 160  # each panel is square, about this tall on a desktop
    return row_pixels, max(1, math.ceil(height * GRID_TITLE_BAND)), max(1, round(width * 0.12))


def grid_position(index: int, columns: int, panel_shape: tuple[int, int]) -> tuple[int, int]:
    """(top row, left column) of panel `index` in a `heatmap_grid_figure` mosaic of `columns` columns."""
    _, band, gap = _grid_geometry(columns, panel_shape)
    row, column = divmod(index, columns)
    return row * (band + panel_shape[0]) + band, column * (panel_shape[1] + gap)


# A chart's width on a 390-pixel phone held upright, Streamlit's margins taken off, and the panels a row there (held
# sideways, the grid keeps this size in a wider chart: smaller than it could be, whole).
PHONE_CHART_PIXELS, PHONE_COLUMNS = 358, 4


def heatmap_grid_figure(panels: list[np.ndarray], titles: list[str], title: str, columns: int = 8,
                        colorscale: str = "viridis", zmid=None, value_title: str = "activation",
                        narrow: bool = False) -> go.Figure:
    """Many small 2-D arrays (filters, feature-map channels) in a grid on one colour scale, row 0 on top, each panel
    titled above it. `narrow`, for a phone: at most PHONE_COLUMNS panels a row and a height that fits the phone's width
    (8 a row at the desktop's height made 38-pixel panels there, above 300-400 empty pixels).

    The panels are tiled into one heatmap, with empty cells between them and a band above each row for the titles:
    one Plotly trace instead of a subplot per panel. Inside the network shows about 50 panels on its first visit, and
    the browser drew them 0.4 s sooner this way (median 1.80 s against 2.27 s, 6 servers each). `grid_panels` takes
    the panels back out.
    """
    columns = max(1, min(columns, PHONE_COLUMNS if narrow else columns, len(panels)))
    rows = max(1, -(-len(panels) // columns))
    height, width = np.asarray(panels[0]).shape[:2] if panels else (1, 1)
    row_pixels, band, gap = _grid_geometry(columns, (height, width))
    mosaic = np.full((rows * (band + height), columns * (width + gap) - gap), np.nan, dtype=np.float32)
    margin = {"t": 120, "b": 10, "l": 10, "r": 10}
    cell_pixels = (PHONE_CHART_PIXELS - margin["l"] - margin["r"]) / mosaic.shape[1] if narrow else row_pixels / height
    annotations = []
    for index, (panel, panel_title) in enumerate(zip(panels, titles)):
        top, left = grid_position(index, columns, (height, width))
        mosaic[top:top + height, left:left + width] = np.asarray(panel, dtype=np.float32)
        annotations.append({"text": panel_title, "x": left + (width - 1) / 2, "y": top - 0.5, "xref": "x", "yref": "y",
                            "xanchor": "center", "yanchor": "bottom", "showarrow": False, "font": {"size": 10}})
    figure = go.Figure(go.Heatmap(z=mosaic, coloraxis="coloraxis", hoverongaps=False,
                                  hovertemplate="value %{z:.3f}<extra></extra>"))
    # The colour scale lies between the title and the panels, the panels at the top of their space, and the title
    # takes two lines: on a phone a scale beside the panels took 90 of 358 px, leaving 28 px a panel, and the title
    # ran past the edge.
    figure.update_layout(
        title=f"{title}<br>(each panel {height} × {width} pixels)",
        annotations=annotations,
        xaxis={"visible": False, "constrain": "domain"},
        yaxis={"visible": False, "autorange": "reversed", "scaleanchor": "x", "constrain": "domain",
               "constraintoward": "top"},
        coloraxis={"colorscale": colorscale, "cmid": zmid, "colorbar": {
            "title": {"text": value_title, "side": "right"}, "orientation": "h", "y": 1, "yanchor": "bottom",
            "ypad": 14, "len": 0.6, "thickness": 12}},
        height=margin["t"] + margin["b"] + round(mosaic.shape[0] * cell_pixels), margin=margin,
        plot_bgcolor="rgba(0,0,0,0)",
    )
    return figure


def grid_panels(mosaic: np.ndarray, count: int, columns: int, panel_shape: tuple[int, int]) -> list[np.ndarray]:
    """The `count` panels of a `heatmap_grid_figure` mosaic, in order (what a test reads back from the figure)."""
    columns = max(1, min(columns, count))
    return [mosaic[top:top + panel_shape[0], left:left + panel_shape[1]]
            for top, left in (grid_position(index, columns, panel_shape) for index in range(count))]


def filters_figure(filters: np.ndarray, count: int | None = None, columns: int = 8,
                   title: str = "Learned first-layer filters", narrow: bool = False) -> go.Figure:
    """First-layer kernels (k, k, in, out) as k × k heatmaps, averaged over input channels; red +, blue −."""
    kernels = np.asarray(filters, dtype=np.float32).mean(axis=2)
    count = kernels.shape[-1] if count is None else min(count, kernels.shape[-1])
    panels = [kernels[..., index] for index in range(count)]
    return heatmap_grid_figure(panels, [str(index) for index in range(count)], title,  # "filter 0" overlapped on a phone
                               columns=columns, colorscale="RdBu_r", zmid=0.0, value_title="weight", narrow=narrow)


def activation_vector_figure(values: np.ndarray, layer_name: str) -> go.Figure:
    """A Dense layer's outputs for one image, one bar per unit."""
    values = np.asarray(values, dtype=np.float32)
    figure = go.Figure(go.Bar(x=list(range(len(values))), y=values, marker_color=PALETTE[0],
                              hovertemplate="unit %{x}<br>value %{y:.3f}<extra></extra>"))
    figure.update_layout(title=f"{layer_name}: all {len(values)} units", xaxis_title="unit", yaxis_title="activation",
                         height=260, margin={"t": 40, "b": 10})
    return figure


def feature_maps_figure(maps: np.ndarray, layer_name: str, count: int, columns: int = 8,
                        narrow: bool = False) -> go.Figure:
    """The first `count` channels of one layer's output (H, W, C), one heatmap each, on a shared scale."""
    count = min(count, maps.shape[-1])
    panels = [maps[..., channel] for channel in range(count)]
    return heatmap_grid_figure(panels, [str(channel) for channel in range(count)],  # "channel 0" overlapped on a phone
                               f"{layer_name}: first {count} of {maps.shape[-1]} channels", columns=columns,
                               narrow=narrow)


def scores_figure(names: list[str], values: list[float], title: str, value_title: str,
                  baseline: float | None = None) -> go.Figure:
    """One bar per model (e.g. test accuracy), with an optional dotted reference line."""
    figure = go.Figure(go.Bar(x=names, y=values, marker_color=PALETTE[: len(names)], showlegend=False,
                              text=[f"{value:.1%}" for value in values], textposition="auto"))
    if baseline is not None:  # named in the legend: a label by the line lay over the first bar on a phone
        figure.add_hline(y=baseline, line_dash="dot", line_color=NOTE_LINE_COLOR)
        _name_note_line(figure, f"chance ({baseline:.0%}): answering at random")
    figure.update_layout(title=title, xaxis_title="model", yaxis_title=value_title, yaxis_range=[0, 1],
                         height=340, margin={"t": 50, "b": 10}, legend=LEGEND_BELOW)
    return figure


def class_counts_figure(counts_by_split: dict[str, np.ndarray], class_names: list[str]) -> go.Figure:
    """Images per class in each split (train, validation, test), side by side; the classes down the side, so their
    names read whole on a phone too (along the bottom a narrow chart turned them and cut their start off)."""
    figure = go.Figure()
    for index, (split, counts) in enumerate(counts_by_split.items()):
        figure.add_bar(y=list(class_names), x=np.asarray(counts), name=split, orientation="h",
                       marker_color=PALETTE[index % len(PALETTE)])
    figure.update_layout(title="Images per class", yaxis_title="class", xaxis_title="images (count)", barmode="group",
                         yaxis={"autorange": "reversed", "automargin": True},
                         height=160 + 12 * len(class_names) * len(counts_by_split),
                         margin={"t": 50, "b": 10}, legend=LEGEND_BELOW)
    return figure


NUMBERED_GRID_SIDE = 32  # the largest grid whose numbers are written on it (a photo's are not readable)
GRID_CELL_PIXELS = 26  # each pixel's square in the numbered grid: "0.47" is 20 pixels wide at 10-point type
GRID_INDEX_PIXELS = 24  # the margin holding the row and column numbers


def numbered_grid(values: np.ndarray, decimals: int = 0, top: float | None = None) -> np.ndarray:
    """A small 2-D array (up to 32 x 32) as a picture: a grey square per value, from black (0) to white (`top`),
    with the value written on it, and row and column numbers along the edges. An RGB array, for `st.image`.

    A picture rather than a Plotly heatmap with text: a browser took about half a second to write 784 numbers in a
    heatmap, on every visit, tab switch and change of image; a picture is drawn at once.
    """
    from PIL import Image, ImageDraw, ImageFont

    values = np.asarray(values, dtype=float)
    rows, columns = values.shape
    if max(rows, columns) > NUMBERED_GRID_SIDE:
        raise ValueError(f"a numbered grid is at most {NUMBERED_GRID_SIDE} values a side, not {values.shape}")
    top = top if top is not None else max(float(values.max()), 1e-9)
    shades = np.clip(np.round(values / top * 255), 0, 255).astype(np.uint8)
    cell, margin = GRID_CELL_PIXELS, GRID_INDEX_PIXELS
    squares = np.repeat(np.repeat(shades, cell, axis=0), cell, axis=1)
    picture = Image.new("RGB", (margin + columns * cell, margin + rows * cell), "white")
    picture.paste(Image.fromarray(squares).convert("RGB"), (margin, margin))
    draw, font = ImageDraw.Draw(picture), ImageFont.load_default(size=10)

    def write(text, centre, colour):
        left, upper, right, lower = draw.textbbox((0, 0), text, font=font)
        draw.text((centre[0] - (left + right) / 2, centre[1] - (upper + lower) / 2), text, fill=colour, font=font)

    for row in range(rows):
        for column in range(columns):
            centre = (margin + (column + 0.5) * cell, margin + (row + 0.5) * cell)
            write(grid_label(values[row, column], decimals), centre, "white" if shades[row, column] < 128 else "black")
    for index in range(max(rows, columns)):
        if index < columns:
            write(str(index), (margin + (index + 0.5) * cell, margin / 2), "#6b7280")
        if index < rows:
            write(str(index), (margin / 2, margin + (index + 0.5) * cell), "#6b7280")
    return np.asarray(picture)


def grid_label(value: float, decimals: int) -> str:
    """The number written on a square of the numbered grid: "0" for zero, else `decimals` decimals."""
    return "0" if value == 0 else f"{value:.{decimals}f}"


def pixel_figure(values: np.ndarray, title: str, top: float | None = None) -> go.Figure:
    """A large 2-D array (a photo's channel) as grey squares, pixels square, row 0 on top; hover shows a value."""
    values = np.asarray(values, dtype=float)
    figure = go.Figure(go.Heatmap(
        z=values, colorscale="gray", zmin=0, zmax=top if top is not None else max(float(values.max()), 1e-9),
        colorbar={"title": "value"}, hovertemplate="row %{y}, column %{x}<br>value %{z}<extra></extra>",
    ))
    figure.update_layout(title=title, xaxis_title="column (pixels)", yaxis_title="row (pixels)", height=760,
                         margin={"t": 40, "b": 10})
    figure.update_xaxes(constrain="domain")
    figure.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain")
    return figure
