"""Take the README's screenshots from the real registry: `python docs/take_screenshots.py` after `python -m core warmup`.

Starts `streamlit run app.py` on a loopback port with the default registry and saves PNGs in docs/screenshots/.
"""

import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PROJECT), str(PROJECT / "tests" / "browser")]

from playwright.sync_api import sync_playwright  # noqa: E402
from test_browser import CHROMIUM, Watched, start_server, stop_server  # noqa: E402

from core.paths import registry_root  # noqa: E402

OUTPUT = PROJECT / "docs" / "screenshots"


def save(watched: Watched, name: str, height: int = 1400):
    watched.page.set_viewport_size({"width": 1400, "height": height})
    watched.page.wait_for_timeout(500)
    watched.page.screenshot(path=str(OUTPUT / f"{name}.png"))
    print(f"wrote {OUTPUT / name}.png")


def main():
    process, url = start_server(registry_root())
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            watched = Watched(browser)
            watched.open(f"{url}/Train")  # the default sliders are the classic CNN
            save(watched, "train", 1500)
            watched.open(f"{url}/Compare")
            save(watched, "compare", 1700)
            watched.open(url)
            save(watched, "home", 1000)
            browser.close()
    finally:
        stop_server(process)


if __name__ == "__main__":
    main()
