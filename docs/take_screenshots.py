"""Take the README's screenshots (Home, Train, Compare, Predict) from the real registry: `python docs/take_screenshots.py` after `python -m core warmup`.

Starts `streamlit run app.py` on a loopback port with the default registry and saves PNGs in docs/screenshots/.
"""

import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PROJECT), str(PROJECT / "tests"), str(PROJECT / "tests" / "browser")]  # the browser tests' helpers

from playwright.sync_api import sync_playwright  # noqa: E402
from test_browser import CHROMIUM, Watched, start_server, stop_server  # noqa: E402

from core.paths import registry_root  # noqa: E402

OUTPUT = PROJECT / "docs" / "screenshots"


def save(watched: Watched, name: str, height: int = 1400):
    watched.page.set_viewport_size({"width": 1400, "height": height})
    watched.page.wait_for_function(  # every Plotly chart drawn (they render after the page's run has finished)
        "[...document.querySelectorAll('[data-testid=stPlotlyChart]')].every(chart => chart.querySelector('.main-svg'))",
        timeout=60_000)
    watched.page.wait_for_timeout(1000)
    watched.page.screenshot(path=str(OUTPUT / f"{name}.png"))
    print(f"wrote {OUTPUT / name}.png")


def trouser_photo(path: Path) -> Path:
    """A phone-like photo: dark trousers on a light table (the Predict screenshot classifies it)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (1200, 1600), (235, 230, 225))
    ImageDraw.Draw(image).polygon([(450, 200), (750, 200), (820, 1400), (640, 1400), (600, 600), (560, 1400),
                                   (380, 1400)], fill=(40, 45, 70))
    image.save(path, "JPEG", quality=90)
    return path


def main():
    import tempfile

    process, url = start_server(registry_root())
    try:
        with sync_playwright() as playwright, tempfile.TemporaryDirectory() as folder:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            watched = Watched(browser)
            watched.open(url)
            save(watched, "home", 1100)
            watched.open(f"{url}/Train")  # the default sliders are the classic CNN
            save(watched, "train", 1500)
            watched.open(f"{url}/Compare")
            save(watched, "compare", 1900)
            watched.open(f"{url}/Predict")
            watched.page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
                str(trouser_photo(Path(folder) / "trousers_on_a_table.jpg")))
            watched.page.get_by_text("Where the model looked").wait_for(timeout=120_000)
            watched.wait_idle()
            save(watched, "predict", 1500)
            browser.close()
    finally:
        stop_server(process)


if __name__ == "__main__":
    main()
