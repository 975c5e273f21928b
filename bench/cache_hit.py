"""Cache hit: a configuration that was trained before, requested again.

Two figures. Core lookup: `Registry.find(config)` on the server's long-lived Registry, and
`train_and_publish(Registry(root), config)` from a fresh one (what the CLI does); target <= 0.1 s.
Page: the Train page (AppTest, the same script run a browser triggers) with its widgets moved back
to a trained configuration, timed from the rerun's start to the result drawn; target <= 0.5 s.

    python bench/cache_hit.py            # 20 lookups, 7 page reruns
    python bench/cache_hit.py --quick    # 5 lookups, 3 page reruns
"""

import argparse
import statistics
import time

from common import PROJECT, header, percentile, report, temporary_registry

CORE_TARGET_SECONDS = 0.1
PAGE_TARGET_SECONDS = 0.5


def page_texts(at) -> str:
    return "\n".join(str(element.value) for kind in ("success", "info", "warning", "error", "markdown")
                     for element in getattr(at, kind))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=20)
    parser.add_argument("--reruns", type=int, default=7)
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    lookups, reruns = (5, 3) if arguments.quick else (arguments.lookups, arguments.reruns)

    root = temporary_registry("cache-hit")
    from core.config import TrainConfig
    from core.engines import train_and_publish
    from core.registry import Registry

    header("cache hit: a trained configuration requested again")
    config = TrainConfig(family="dnn", hidden_units=(32,), train_subset=500, epochs=1, batch_size=32)
    registry = Registry(root)
    train_and_publish(registry, config)

    find_seconds, fresh_seconds = [], []
    for _ in range(lookups):
        started = time.perf_counter()
        assert registry.find(config) is not None
        find_seconds.append(time.perf_counter() - started)
        started = time.perf_counter()
        train_and_publish(Registry(root), config)
        fresh_seconds.append(time.perf_counter() - started)
    report("core lookup, Registry.find (median, max)", f"{statistics.median(find_seconds) * 1000:.1f} ms, "
           f"{max(find_seconds) * 1000:.1f} ms", f"<= {CORE_TARGET_SECONDS * 1000:.0f} ms", max(find_seconds) <= CORE_TARGET_SECONDS)
    report("core lookup, fresh Registry(root).get_or_train (median, max)", f"{statistics.median(fresh_seconds) * 1000:.1f} ms, "
           f"{max(fresh_seconds) * 1000:.1f} ms", f"<= {CORE_TARGET_SECONDS * 1000:.0f} ms", max(fresh_seconds) <= CORE_TARGET_SECONDS)

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=300)
    at.switch_page("pages/8_Train.py")
    started = time.perf_counter()
    at.run()
    first_open = time.perf_counter() - started
    at.radio(key="train_family").set_value("dnn")
    at.select_slider(key="train_subset").set_value(500)
    at.select_slider(key="train_units").set_value(32)
    at.slider(key="train_epochs").set_value(1)
    at.run()
    assert "Trained before" in page_texts(at), page_texts(at)[:500]

    page_seconds = []
    for _ in range(reruns):
        at.slider(key="train_epochs").set_value(2).run()  # an untrained setting...
        assert "not been trained yet" in page_texts(at)
        at.slider(key="train_epochs").set_value(1)  # ...and back to the trained one
        started = time.perf_counter()
        at.run()
        page_seconds.append(time.perf_counter() - started)
        assert not at.exception and "Trained before" in page_texts(at)
    print(f"(first open of the Train page in this process, imports included: {first_open:.2f} s)")
    report("Train page, trained config requested again → result drawn (median, p95, max)",
           f"{statistics.median(page_seconds):.3f} s, {percentile(page_seconds, 0.95):.3f} s, {max(page_seconds):.3f} s",
           f"<= {PAGE_TARGET_SECONDS} s", percentile(page_seconds, 0.95) <= PAGE_TARGET_SECONDS)


if __name__ == "__main__":
    main()
