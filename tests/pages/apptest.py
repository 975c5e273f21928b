"""Open one page of the app in AppTest the way a browser does: app.py is the entrypoint."""

import base64
import functools
import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

PROJECT = Path(__file__).resolve().parents[2]

# Each new AppTest has Streamlit read the metadata of every installed package, looking for components
# (0.2 s here). The installed packages do not change during a test run, so they are read once.
try:
    from streamlit.components.v2 import manifest_scanner
except ImportError:  # a Streamlit before components v2 does not scan
    pass
else:
    manifest_scanner.scan_component_manifests = functools.cache(manifest_scanner.scan_component_manifests)


def open_page(page: str | Path, timeout: float = 180) -> AppTest:
    """An AppTest of app.py switched to `page` (e.g. "pages/8_Train.py"); call .run() to render it."""
    relative = Path(page).relative_to(PROJECT) if Path(page).is_absolute() else Path(page)
    at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=timeout)
    if relative != Path("app.py"):
        at.switch_page(str(relative))
    return at


def figures(at: AppTest) -> list[dict]:
    """Every Plotly chart on the page as its figure data (decoded JSON), in page order.

    Tests compare figures as data, never as JSON text: the standard `json` module (a clean virtualenv)
    writes "·" as "\\u00b7", while `orjson`, when installed, writes it as it is.
    """
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def figure_texts(figure: dict) -> set[str]:
    """The words a reader sees on a figure: its title, trace names, axis titles and annotations."""
    layout = figure.get("layout", {})
    texts = {_text(layout.get("title"))}
    texts |= {trace.get("name") for trace in figure.get("data", [])}
    texts |= {_text(value.get("title")) for name, value in layout.items() if name.startswith(("xaxis", "yaxis"))}
    texts |= {annotation.get("text") for annotation in layout.get("annotations", [])}
    texts |= {str(label) for trace in figure.get("data", []) for axis in ("x", "y") for label in _plain(trace.get(axis))}
    return {text for text in texts if text}


def figure_arrays(figure: dict, field: str = "z") -> list[np.ndarray]:
    """One array per trace of a figure's `field` (plotly 7 sends number arrays as base64 {dtype, bdata, shape})."""
    arrays = []
    for trace in figure.get("data", []):
        values = trace.get(field)
        if isinstance(values, dict):
            flat = np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"]))
            values = flat.reshape([int(side) for side in values["shape"].split(",")]) if "shape" in values else flat
        arrays.append(np.asarray(values, dtype=np.float64))
    return arrays


def _text(title) -> str | None:
    return title.get("text") if isinstance(title, dict) else title


def _plain(values) -> list:
    """A trace's category labels (strings); number arrays sent as base64 are skipped."""
    return values if isinstance(values, list) else []
