"""First visit of Datasets, Convolutions and Inside the network after a server start, in a real browser.

For each page and repeat: a fresh `streamlit run app.py` (its registry holds one small trained CNN), the home page
opened in Debian's Chromium and rendered, then, after the user has read it for `--dwell` seconds, a click on the
page's link in the sidebar. The clock runs from the click until the page's script run has finished with its last
section on screen and every element drawn (no grey placeholder left, every chart drawn by Plotly). Target: <= 2 s
each. Before the pages preloaded in the background (issue 17) the three took 4.5-6.4 s: TensorFlow and the data were
loaded on first use.

    python bench/first_visits.py                 # 3 servers per page, 3 s on the home page first
    python bench/first_visits.py --dwell 0       # click as soon as the home page is drawn
    python bench/first_visits.py --without       # each server alternated with one that does not preload
    python bench/first_visits.py --quick         # 1 server per page
    python bench/first_visits.py --pages "Hello, neuron" --dwell 8
Needs `pip install playwright` and `apt-get install chromium`.
"""

import argparse
import statistics
import time
from pathlib import Path

from browser import (copy_of_trained, folder_with_a_trained_cnn, launch_chromium, open_home_page,
                     page_on_a_fresh_server, wait_until_drawn)
from common import header, load_average, report

TARGET_SECONDS = 2.0
# page: (the sidebar link's label, a text its last section shows)
PAGES = {
    "Datasets": ("Datasets", "Why normalise?"),
    "Convolutions": ("Convolutions and pooling", "From older tutorials"),
    "Inside the network": ("Inside the network", "3. Why an image is recognised as"),
    "Hello, neuron": ("Hello, neuron", "The code"),  # lesson 1, not a row of issue 17: --pages "Hello, neuron"
}
ISSUE_PAGES = ["Datasets", "Convolutions", "Inside the network"]


def first_visit(browser, registry: Path, label: str, marker: str, dwell: float, preload: bool = True) -> float:
    """Seconds from the click on `label` to its page rendered down to `marker`, on a fresh server."""
    with page_on_a_fresh_server(browser, registry, CNNCLASSROOM_PRELOAD="1" if preload else "0") as (page, port):
        open_home_page(page, port)
        time.sleep(dwell)
        link = page.locator("[data-testid=stSidebar] a", has_text=label).first
        started = time.perf_counter()
        link.click()
        page.get_by_text(marker).first.wait_for(timeout=120_000)
        wait_until_drawn(page)
        return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dwell", type=float, default=3.0, help="seconds on the home page before the click")
    parser.add_argument("--pages", nargs="+", default=ISSUE_PAGES, choices=list(PAGES))
    parser.add_argument("--without", action="store_true",
                        help="alternate each server with one started with CNNCLASSROOM_PRELOAD=0 (no preloading)")
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    repeats = 1 if arguments.quick else arguments.repeats
    from playwright.sync_api import sync_playwright

    header(f"first visit of a page after server start ({arguments.dwell:g} s on the home page first)")
    kinds = [True, False] if arguments.without else [True]
    results = {(name, preload): [] for name in arguments.pages for preload in kinds}
    with folder_with_a_trained_cnn("cnnclassroom-first-visits-") as folder, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for repeat in range(repeats):
            for name in arguments.pages:  # alternated, so a drift of the machine's speed hits every page alike
                for preload in kinds if repeat % 2 == 0 else kinds[::-1]:
                    registry = copy_of_trained(folder, f"registry-{repeat}-{name.replace(' ', '_')}-{preload}")
                    label, marker = PAGES[name]
                    seconds = first_visit(browser, registry, label, marker, arguments.dwell, preload)
                    results[name, preload].append(seconds)
                    print(f"{name}, server {repeat + 1}/{repeats}{'' if preload else ', no preloading'}: click → "
                          f"rendered {seconds:.2f} s  [{load_average()}]", flush=True)
        browser.close()
    for (name, preload), seconds in results.items():
        if preload:
            report(f"first visit of {name} after server start, click → rendered (median, max)",
                   f"{statistics.median(seconds):.2f} s, {max(seconds):.2f} s", f"<= {TARGET_SECONDS:g} s",
                   max(seconds) <= TARGET_SECONDS)
        else:
            report(f"… {name} without preloading (CNNCLASSROOM_PRELOAD=0), alternated (median, max)",
                   f"{statistics.median(seconds):.2f} s, {max(seconds):.2f} s")


if __name__ == "__main__":
    main()
