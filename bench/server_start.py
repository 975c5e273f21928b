"""Server start → home page rendered in a real browser, as a ratio to a bare one-title Streamlit app.

Most of a server's start is Streamlit's own (Python, `import streamlit`, its frontend downloaded and compiled by the
browser), which this project cannot change and which varies with the machine's load. So each pair starts two fresh
servers the same way, one after the other in alternating order: `streamlit run app.py` (this project, an empty
temporary registry) and `streamlit run app.py` of a bare app that only draws `st.title("CNN Classroom")` (in a
temporary folder with this project's `.streamlit/config.toml`). Each is opened in a new Chromium profile (a first
visit: the frontend is downloaded every time) as soon as it answers its health check, and the clock stops when the
script run has finished, the page's text is on screen and every element is drawn. Targets: median ratio <= 1.10 and no
pair over 1.2. The number of pairs is even, so each order counts as often: whichever app starts second in a pair,
right after the other, starts a little slower (over 47 earlier pairs, 1.116 when this app went second against
1.083 when it went first), and an odd number of pairs gave one order one more vote in the median.
Then checks /proc/<pid>/maps of each of our servers: the home page must not load TensorFlow's library (the pages'
background preloading starts soon after the home page's run, see core/preload.py; the check is made at once).

    python bench/server_start.py            # 8 pairs
    python bench/server_start.py --pairs 12 # an odd number is rounded up to the next even one
    python bench/server_start.py --quick    # 2 pairs
Needs `pip install playwright` and `apt-get install chromium`.
"""

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from browser import HOME_MARKER, free_port, launch_chromium, start_server, stop_server, wait_healthy, wait_until_drawn
from common import PROJECT, header, load_average, report, temporary_registry

MEDIAN_TARGET, PAIR_TARGET = 1.10, 1.2
BARE_APP = 'import streamlit as st\n\nst.title("CNN Classroom")\n'


def bare_app_folder() -> Path:
    """A temporary folder holding the one-title app and a copy of this project's Streamlit configuration."""
    folder = Path(tempfile.mkdtemp(prefix="cnnclassroom-bare-"))
    (folder / "app.py").write_text(BARE_APP)
    shutil.copytree(PROJECT / ".streamlit", folder / ".streamlit")
    return folder


def tensorflow_loaded(pid: int) -> bool:
    """True when the process has TensorFlow's shared library mapped."""
    return "libtensorflow" in Path(f"/proc/{pid}/maps").read_text()


def time_start(browser, folder: Path, marker: str, registry: Path | None = None) -> tuple[float, float, bool]:
    """(seconds to the rendered page, seconds to the health check, TensorFlow loaded?) for a fresh server in `folder`."""
    port = free_port()
    context = browser.new_context()
    page = context.new_page()
    started = time.perf_counter()
    process = start_server(port, registry=registry, cwd=folder)
    try:
        wait_healthy(port)
        healthy = time.perf_counter() - started
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_text(marker).first.wait_for(timeout=60_000)
        wait_until_drawn(page, timeout=60_000)
        rendered = time.perf_counter() - started
        return rendered, healthy, tensorflow_loaded(process.pid)
    finally:
        context.close()
        stop_server(process, registry)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=8, help="an even number (an odd one is rounded up)")
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    pairs = 2 if arguments.quick else max(2, arguments.pairs + arguments.pairs % 2)  # each order as often
    from playwright.sync_api import sync_playwright

    # Python keeps each module it compiles (__pycache__), so a server started the second time loads this project's
    # modules compiled. Where PYTHONDONTWRITEBYTECODE is set (as on the machine this was developed on), every server
    # compiled them again: the servers here may write them, as on a student's or a teacher's machine.
    bytecode_was_off = os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None
    registry = temporary_registry("server-start")
    bare = bare_app_folder()
    header("server start → home page rendered in Chromium: this app / a bare one-title app, alternated")
    print("compiled modules kept: yes" + (" (PYTHONDONTWRITEBYTECODE was set: unset for these servers)" if bytecode_was_off else ""))
    ratios, ours_seconds, bare_seconds, with_tensorflow = [], [], [], []
    try:
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            time_start(browser, bare, "CNN Classroom")  # the first Chromium start and disk reads are nobody's
            for pair in range(pairs):
                order = ("bare", "ours") if pair % 2 == 0 else ("ours", "bare")
                timed = {}
                for which in order:
                    if which == "bare":
                        timed[which] = time_start(browser, bare, "CNN Classroom")
                    else:
                        timed[which] = time_start(browser, PROJECT, HOME_MARKER, registry)
                ours, bare_start = timed["ours"], timed["bare"]
                ratios.append(ours[0] / bare_start[0])
                ours_seconds.append(ours[0])
                bare_seconds.append(bare_start[0])
                with_tensorflow.append(ours[2])
                print(f"pair {pair + 1}/{pairs} ({' then '.join(order)}): this app {ours[0]:.2f} s (healthy {ours[1]:.2f} s), "
                      f"bare app {bare_start[0]:.2f} s (healthy {bare_start[1]:.2f} s), ratio {ratios[-1]:.3f}"
                      f"{', TensorFlow loaded' if ours[2] else ''}  "
                      f"[{load_average()}]", flush=True)
            browser.close()
    finally:
        shutil.rmtree(bare, ignore_errors=True)
    report("server start → home page rendered, this app / a bare app (median ratio)",
           f"{statistics.median(ratios):.3f} ({statistics.median(ours_seconds):.2f} s vs {statistics.median(bare_seconds):.2f} s)",
           f"<= {MEDIAN_TARGET}", statistics.median(ratios) <= MEDIAN_TARGET)
    report("… the highest pair's ratio", f"{max(ratios):.3f} (lowest {min(ratios):.3f})", f"<= {PAIR_TARGET}",
           max(ratios) <= PAIR_TARGET)
    report("TensorFlow loaded by the server for the home page", "yes" if any(with_tensorflow) else "no", "no",
           not any(with_tensorflow))


if __name__ == "__main__":
    main()
