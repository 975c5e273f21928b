"""Photos in a real browser (Debian's Chromium, its fake camera): a course zip of over 120 MB on the page, webcam classes
from capture to prediction, and the drawing pad reaching the model as the 28x28 input the page shows.

One server for the three flows (each starts from its own page); the browser fails a test on a console error, an
exception box or a request that leaves this machine, as in test_browser.py.
"""

import io
import re
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CNN, copy_registry
from photos import photo_files, photo_zip
from test_browser import CHROMIUM, Watched, control, playwright_api, start_server, stop_server

from core.catalogue import CLASS_NAMES, TEST_FRACTION  # noqa: E402
from core.webcam import ALBUM_PARAMETER, min_shots_per_class  # noqa: E402

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt-get install chromium)")
BIG_ZIP_BYTES = 120 * 2**20
TRAIN_PER_CLASS, VALIDATION_PER_CLASS = 100, 20
PHOTO_SIDE = 420  # stored PNGs of about 530 KB: 240 photos make the zip, quick to make and to train on


@pytest.fixture(scope="module")
def photo_server(trained_registry_root, tmp_path_factory):
    """`streamlit run app.py` on a copy of the trained registry (it holds TINY_CNN, a 28x28 grayscale model)."""
    root = tmp_path_factory.mktemp("photos") / "registry"
    copy_registry(trained_registry_root, root)
    process, url = start_server(root)
    yield url, root
    stop_server(process)
    from helpers_jobs import stop_workers_of

    stop_workers_of(root)


@pytest.fixture(scope="module")
def camera_browser():
    """Chromium with a fake camera (its moving test pattern) that needs no permission prompt."""
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic", "--use-fake-device-for-media-stream",
                  "--use-fake-ui-for-media-stream"],
        )
        yield browser
        browser.close()


class CameraPage(Watched):
    """A watched page in a context allowed to use the camera."""

    def __init__(self, browser):
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["camera"])
        self.page = self.context.new_page()
        self.console_errors, self.foreign_requests = [], []
        self.page.on("console", self._check_console)
        self.page.on("request", self._check_host)


CAMERA_READY = """() => { const video = document.querySelector('[data-testid=stCameraInput] video');
    return video !== null && video.readyState >= 2 && video.videoWidth > 0; }"""


BLACK_FRAME = "That photo is all one colour"  # core.webcam: a camera still starting gives black frames


def take_photo(page, shown: str | None = None, attempts=4, timeout=60_000, tab: str | None = None) -> int:
    """Click "Take Photo" once the camera widget's video plays, until `shown` appears (a click while the page swaps in a
    fresh camera after the previous shot captures nothing, or a black frame the page refuses, and a person would click
    again); returns how many shots the page refused as black frames. With `tab`, a button that went away under the
    click (on a busy machine, a late rerun after a model was picked redraws the camera) is clicked again, the camera's
    tab chosen again if it was closed, as a person would."""
    refused = 0
    for attempt in range(attempts):
        if tab is not None and not page.get_by_role("tab", name=tab, selected=True).count():
            page.get_by_role("tab", name=tab).click()
        page.wait_for_function(CAMERA_READY, timeout=timeout)
        try:
            page.get_by_role("button", name="Take Photo").click(timeout=timeout if tab is None else timeout // 4)
        except playwright_api.Error as error:
            if tab is None or attempt == attempts - 1:
                raise
            print(f"Take Photo went away under the click ({str(error).splitlines()[0]}); trying again")
            continue
        if shown is None:
            return refused
        clicked = time.monotonic()
        while time.monotonic() - clicked < 20:
            page.wait_for_timeout(250)
            if page.get_by_text(shown).count():
                return refused
            idle = page.locator("[data-testid=stApp][data-test-script-state=notRunning]").count()
            if idle and time.monotonic() - clicked > 1.5 and page.get_by_text(BLACK_FRAME).count():  # this shot's
                refused += 1
                break
        if attempt == attempts - 1:
            raise AssertionError(f"{shown!r} never appeared after {attempts} shots ({refused} refused as black frames)")
    return refused


def train_and_wait(page, label_start: str, timeout=420_000) -> str:
    """Press the training button whose label starts with `label_start`; return the test-accuracy metric's label."""
    page.get_by_role("button", name=re.compile(f"^{re.escape(label_start)}")).click()
    metric = page.get_by_test_id("stMetric").filter(has_text="test accuracy on").first
    metric.wait_for(timeout=timeout)
    return metric.get_by_test_id("stMetricLabel").inner_text().strip()


def choose_model(watched, option: str):
    """Pick the Predict page's model whose option starts with `option`, and wait until the picker shows it: the
    choice's rerun can start after a first idle moment, and it then redraws the tabs clicked in between."""
    page = watched.page
    page.get_by_role("combobox", name="Model").click()
    page.get_by_role("option", name=option).click()
    playwright_api.expect(page.get_by_role("combobox", name="Model")).to_have_value(
        re.compile(re.escape(option.strip(" ·"))), timeout=60_000)
    watched.wait_idle()


def test_a_course_zip_of_over_120_mb_imports_with_a_progress_bar_and_tests_on_its_validation_photos(
        photo_server, camera_browser, tmp_path):
    url, _ = photo_server
    files = photo_files({"train": TRAIN_PER_CLASS, "validation": VALIDATION_PER_CLASS}, prefix="horse-or-human/",
                        size=(PHOTO_SIDE, PHOTO_SIDE), compress_level=0)
    archive = photo_zip(tmp_path / "horse-or-human.zip", files)
    assert archive.stat().st_size >= BIG_ZIP_BYTES
    total = len(files)
    watched = CameraPage(camera_browser)
    page = watched.page
    watched.open(f"{url}/Your_own_images")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(archive))
    page.get_by_text(re.compile(rf"Checking photos: [\d,]+ of {total}")).wait_for(timeout=300_000)  # the progress bar
    watched.screenshot("photos_big_zip_progress")
    page.get_by_text("the folder horse-or-human/validation/").wait_for(timeout=300_000)
    watched.wait_idle()
    main = page.inner_text("[data-testid=stMain]")
    assert f"angular\t{TRAIN_PER_CLASS}\t{VALIDATION_PER_CLASS}\t{VALIDATION_PER_CLASS}" in main  # the split table
    assert "test: the validation photos" in main
    control(page, "stSlider", "Epochs").get_by_role("slider").press("Home")  # 3 epochs
    watched.wait_idle()
    label = train_and_wait(page, "Train from scratch at 64×64")
    assert label == f"test accuracy on {2 * VALIDATION_PER_CLASS} photos"  # the test figure is on the validation photos
    watched.wait_idle()
    watched.screenshot("photos_big_zip_trained")
    watched.assert_clean()
    watched.context.close()


def test_webcam_classes_capture_train_and_predict(photo_server, camera_browser):
    url, _ = photo_server
    watched = CameraPage(camera_browser)
    page = watched.page
    watched.open(f"{url}/Your_own_images")
    page.get_by_role("tab", name="Webcam").click()
    least = min_shots_per_class(2)  # 10 each: both classes in the validation and the test photos
    refused, started = 0, time.monotonic()
    for name in ("thumbs up", "thumbs down"):
        control(page, "stRadio", "Take photos of").get_by_text(f"{name} (").click()
        watched.wait_idle()
        for count in range(1, least + 1):
            refused += take_photo(page, f"{name}: {count} photo(s)")
            watched.wait_idle()
    print(f"{2 * least} webcam shots kept in {time.monotonic() - started:.0f} s; {refused} black frames refused")
    page.get_by_role("button", name="Delete").first.click()  # one shot of "thumbs up" was bad
    page.get_by_text(f"thumbs up: {least - 1} photo(s)").wait_for(timeout=60_000)
    control(page, "stRadio", "Take photos of").get_by_text("thumbs up (").click()
    watched.wait_idle()
    take_photo(page, f"thumbs up: {least} photo(s)")
    watched.wait_idle()
    assert re.search(rf"[?&]{ALBUM_PARAMETER}=[0-9a-f]{{32}}", page.url), page.url  # the shots are kept on disk
    page.reload()  # a slip of the finger: a new session, which finds the shots by the address
    watched.wait_idle()
    page.get_by_role("tab", name="Webcam").click()
    for name in ("thumbs up", "thumbs down"):
        page.get_by_text(f"{name}: {least} photo(s)").wait_for(timeout=60_000)
    watched.screenshot("photos_webcam_shots")
    page.get_by_role("button", name="Make a dataset from these photos").click()
    page.get_by_text("Imported Webcam: thumbs up vs thumbs down").wait_for(timeout=120_000)
    watched.wait_idle()
    dataset_title = re.search(r"Imported (Webcam: thumbs up vs thumbs down): it is in the dataset pickers",
                              page.inner_text("[data-testid=stMain]")).group(1)  # its title, not its folder:id
    control(page, "stSlider", "Epochs").get_by_role("slider").press("Home")
    watched.wait_idle()
    control(page, "stSlider", "Input size").get_by_role("slider").press("Home")  # 32x32
    watched.wait_idle()
    tested = round(TEST_FRACTION * 2 * least)  # the stratified test photos carved from the 2 x 10 shots: 4
    assert train_and_wait(page, "Train from scratch at 32×32") == f"test accuracy on {tested} photos"
    watched.assert_clean()

    watched.open(f"{url}/Predict")
    choose_model(watched, f"on {dataset_title}")  # titles name a dataset by its title
    page.get_by_role("tab", name="Webcam").click()
    take_photo(page, tab="Webcam")
    page.get_by_text("what the model sees (32×32)").wait_for(timeout=120_000)
    watched.wait_idle()
    main = page.inner_text("[data-testid=stMain]")
    assert "webcam photo" in main and "is the probability of thumbs up" in main.replace("**", "")
    watched.screenshot("photos_webcam_predict")
    watched.assert_clean()
    watched.context.close()


def test_a_drawing_reaches_the_model_as_the_28x28_input_shown(photo_server, camera_browser):
    from PIL import Image

    from core.prediction import class_probabilities
    from core.registry import Registry

    url, root = photo_server
    watched = CameraPage(camera_browser)
    page = watched.page
    watched.open(f"{url}/Predict")
    choose_model(watched, f"{TINY_CNN.title} · ")  # by title (a regex with "/" is no selector)
    page.get_by_text("Or draw a digit or a garment").click()
    canvas = page.locator("canvas").last
    canvas.wait_for(timeout=60_000)
    page.wait_for_timeout(1000)  # Fabric.js attaches its mouse handlers once the canvas is mounted
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 0.15 * box["height"])
    page.mouse.down()
    for step in range(1, 21):  # a vertical stroke, left of centre: a trouser leg, or a "1"
        page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + (0.15 + 0.035 * step) * box["height"])
    page.mouse.up()
    page.get_by_text("Your drawing", exact=True).wait_for(timeout=120_000)
    watched.wait_idle()

    shown = page.get_by_test_id("stImageContainer").filter(has_text="what the model sees (28×28)").locator("img")
    response = page.request.get(shown.get_attribute("src"))
    model_input = np.asarray(Image.open(io.BytesIO(response.body())))
    assert model_input.shape == (28, 28)
    assert model_input[:, :3].max() == 0 and model_input[:3].max() == 0  # light ink on black: inverted
    assert 11 <= int(np.argmax(model_input.mean(axis=0))) <= 16  # the stroke drawn left of centre is centred
    assert (model_input[6:22, 13:15] > 150).all()  # and as tall as MNIST's 20-pixel box

    model = Registry(root).load_model(TINY_CNN.key)
    probabilities, _ = class_probabilities(model, model_input[..., None])
    top = int(np.argmax(probabilities))
    verdict = page.get_by_test_id("stAlertContentSuccess").last.inner_text()
    assert verdict == f"{CLASS_NAMES['fashion_mnist'][top]} ({probabilities[top]:.1%})"  # the model got exactly the input shown
    watched.screenshot("photos_drawing_pad")
    page.get_by_role("button", name="Clear the pad").click()  # on a phone the pad's own tools never show: no hover
    page.get_by_text("Your drawing", exact=True).wait_for(state="detached", timeout=60_000)
    page.locator("canvas").last.wait_for(timeout=60_000)  # a fresh, empty pad in its place
    watched.assert_clean()
    watched.context.close()

