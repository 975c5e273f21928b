"""orjson or not: the chart-heavy pages run with Plotly's standard `json` engine and with `orjson`, alternated.

Streamlit sends every Plotly chart as `plotly.io.to_json(figure)`, which uses orjson when it is
installed. This decides on evidence whether requirements.txt should list it. Two figures per page
(Compare with three models, Train showing a trained model with its curves): the whole page run
(AppTest, the script a browser triggers), and the time spent inside `plotly.io.to_json` during it.
Engines alternate run by run in one process, so the machine's drift hits both alike.

    pip install orjson                  # only for this measurement
    python bench/chart_json.py          # 15 runs per engine and page
    python bench/chart_json.py --quick  # 3 runs
"""

import argparse
import importlib.util
import statistics
import time

from common import PROJECT, header, report, temporary_registry


def timed_to_json(spent: list[float]):
    """Wrap plotly.io.to_json so that each call's seconds are added to `spent`."""
    import plotly.io

    original = plotly.io.to_json

    def to_json(*arguments, **keywords):
        started = time.perf_counter()
        try:
            return original(*arguments, **keywords)
        finally:
            spent.append(time.perf_counter() - started)

    plotly.io.to_json = to_json  # Streamlit calls it through the module, so it sees this one


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    runs = 3 if arguments.quick else arguments.runs

    if importlib.util.find_spec("orjson") is None:
        raise SystemExit("orjson is not installed: `pip install orjson` for this measurement, then uninstall it.")
    import plotly.io
    from streamlit.testing.v1 import AppTest

    from core.config import TrainConfig
    from core.engines import train_and_publish
    from core.registry import Registry

    header("chart JSON: Plotly's json engine vs orjson on the chart-heavy pages")
    registry = Registry(temporary_registry("chart-json"))
    configs = [TrainConfig(family="dnn", hidden_units=(32,), train_subset=500, epochs=12, batch_size=32),
               TrainConfig(family="cnn", filters=(8, 16), hidden_units=(32,), train_subset=500, epochs=12, batch_size=32),
               TrainConfig(family="dnn", hidden_units=(64,), train_subset=500, epochs=12, batch_size=32)]
    for config in configs:
        train_and_publish(registry, config)

    def compare_page():
        at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=120)
        at.switch_page("pages/9_Compare.py")
        at.session_state["compare_models"] = [config.key for config in configs]
        return at

    def train_page():
        at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=120)
        at.switch_page("pages/8_Train.py")
        for name, value in {"train_family": "dnn", "train_subset": 500, "train_units": 32, "train_epochs": 12}.items():
            at.session_state[name] = value
        return at

    spent: list[float] = []
    timed_to_json(spent)
    for page_name, make_page in (("Compare, 3 models", compare_page), ("Train, a trained model", train_page)):
        make_page().run()  # the first run imports and caches; not counted
        seconds = {"json": [], "orjson": []}
        inside = {"json": [], "orjson": []}
        for _ in range(runs):
            for engine in ("json", "orjson"):
                plotly.io.json.config.default_engine = engine
                at = make_page()
                spent.clear()
                started = time.perf_counter()
                at.run()
                seconds[engine].append(time.perf_counter() - started)
                inside[engine].append(sum(spent))
                assert not at.exception, at.exception
        charts = len(at.get("plotly_chart"))
        for engine in ("json", "orjson"):
            report(f"{page_name} ({charts} charts), page run with {engine}",
                   f"median {statistics.median(seconds[engine]):.3f} s; in to_json {statistics.median(inside[engine]) * 1000:.1f} ms")
        ratio = statistics.median(seconds["orjson"]) / statistics.median(seconds["json"])
        saved = statistics.median(inside["json"]) - statistics.median(inside["orjson"])
        report(f"{page_name}: orjson / json page run", f"{ratio:.3f} (to_json {saved * 1000:+.1f} ms saved per run)")


if __name__ == "__main__":
    main()
