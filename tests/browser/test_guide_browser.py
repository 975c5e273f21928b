"""A guided classroom in a real browser: defaults that teach the right lesson, titles people can tell apart, and a
delete that asks first and can be undone. One server and one registry for the module (trained once, real models).
"""

import dataclasses
import re

import pytest
from conftest import TINY_CNN, TINY_DNN, copy_registry
from helpers_jobs import wait_for
from test_browser import CHROMIUM, Watched, control, playwright_api, start_server, stop_server

from core import server
from core.config import PRESETS, Augmentation

pytestmark = pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(), reason="Debian's chromium is missing")

SUBSET = 2000  # the smallest subset of Compare's one-click controls
PAIR = [dataclasses.replace(PRESETS[name], train_subset=SUBSET) for name in ("classic DNN", "classic CNN")]
NEWER_WEAKER_CNN = dataclasses.replace(TINY_CNN, augmentation=Augmentation(rotation_range=30, zoom_range=0.2))
SMALLER_INPUT_DNN = dataclasses.replace(TINY_DNN, image_size=20)


@pytest.fixture(scope="module")
def guide_registry(trained_registry_root, tmp_path_factory):
    """The session's two tiny models, Compare's pair at 2,000 images, then (newest) an augmented CNN that differs from
    TINY_CNN only in augmentation and a DNN that differs from TINY_DNN only in input size."""
    from core.engines import train_and_publish
    from core.registry import Registry

    root = tmp_path_factory.mktemp("guide") / "registry"
    copy_registry(trained_registry_root, root)
    registry = Registry(root)
    for config in [*PAIR, NEWER_WEAKER_CNN, SMALLER_INPUT_DNN]:
        train_and_publish(registry, config)
    assert registry.get(NEWER_WEAKER_CNN.key).test_accuracy < registry.get(PAIR[1].key).test_accuracy
    return registry


@pytest.fixture(scope="module")
def guide_server(guide_registry):
    from helpers_jobs import stop_workers_of

    process, url = start_server(guide_registry.root)
    yield url
    stop_server(process)
    stop_workers_of(guide_registry.root)


@pytest.fixture(scope="module")
def guide_browser():
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                             "--disable-background-networking", "--disable-component-update",
                                             "--disable-sync", "--no-first-run", "--disable-quic"])
        yield browser
        browser.close()


def test_compares_one_click_controls_choose_what_side_by_side_compares(guide_server, guide_browser, guide_registry):
    pair_titles = [guide_registry.get(config.key).title for config in PAIR]
    sessions = []  # kept open to the end: a session closing frees media files another session shows (a Streamlit race)
    for attempt in ("first session", "fresh session"):
        watched = Watched(guide_browser)
        sessions.append(watched)
        watched.open(f"{guide_server}/Compare")
        page = watched.page
        selected = control(page, "stMultiSelect", "Models to compare").inner_text()
        assert pair_titles[0] not in selected, attempt  # "all" images: that pair is not trained, the newest are shown
        control(page, "stSlider", "Training images").get_by_role("slider").press("Home")  # 2,000 images
        watched.page.wait_for_timeout(500)
        watched.wait_idle()
        selected = control(page, "stMultiSelect", "Models to compare").inner_text()
        assert pair_titles[0] in selected and pair_titles[1] in selected, (attempt, selected)
        body = page.inner_text("[data-testid=stMain]")
        assert re.search(r"Model [AB] is more accurate than model [AB]|No clear difference: model [AB] scored higher "
                         r"than model [AB]|got exactly the same|equally accurate", body)
        assert "McNemar's p" in body and "95% CI" in body  # the verdict's terms, explained
        watched.screenshot(f"guide_compare_{attempt.split()[0]}")
        watched.assert_clean()  # every image shown: a stale gallery's 404 after the slider moved is Streamlit's race
    for watched in sessions:
        watched.page.close()


def test_transfer_defaults_to_the_cnn_trained_on_the_most_data_not_the_newest(guide_server, guide_browser, guide_registry):
    newest_cnn = guide_registry.list_entries(family="cnn")[0]
    assert newest_cnn.key == NEWER_WEAKER_CNN.key
    watched = Watched(guide_browser)
    watched.open(f"{guide_server}/Transfer_learning")
    chosen = watched.page.get_by_role("combobox", name="Base CNN").input_value()
    assert guide_registry.get(PAIR[1].key).title in chosen and newest_cnn.title not in chosen
    assert f"learned from {SUBSET:,} Fashion-MNIST images" in watched.page.inner_text("[data-testid=stMain]")
    watched.assert_clean()
    watched.page.close()


def test_models_differing_only_in_augmentation_or_input_size_have_different_titles(guide_server, guide_browser):
    watched = Watched(guide_browser)
    watched.open(f"{guide_server}/Predict")
    page = watched.page
    page.get_by_role("combobox", name="Model").click()
    options = [option.inner_text() for option in page.get_by_role("option").all()]
    page.keyboard.press("Escape")
    titles = [re.sub(r" · [0-9.]+% on [0-9,]+ test images$", "", option) for option in options]
    assert len(titles) == len(set(titles)) == 6, options
    assert any(title.startswith(TINY_CNN.title) and "augmented (rotation 30°, zoom 0.2)" in title for title in titles)
    assert TINY_CNN.title in titles and TINY_DNN.title in titles
    assert any(title.startswith(TINY_DNN.title) and "20×20 px" in title for title in titles)
    assert all(re.search(r"[0-9a-f]{16}", option) is None for option in options)  # keys stay on the Models page
    watched.assert_clean()
    page.close()


def test_delete_asks_naming_the_model_then_restore_brings_it_back(guide_server, guide_browser, guide_registry):
    title = guide_registry.get(SMALLER_INPUT_DNN.key).title
    watched = Watched(guide_browser)
    watched.open(f"{guide_server}/Models")
    page = watched.page
    page.get_by_text("Delete models", exact=True).click()
    page.get_by_role("combobox", name="Models to delete").click()
    page.keyboard.type(title)  # the list draws only the options in view: filter it to the one wanted
    # The list is redrawn as it filters: an option clicked before that ends can be replaced under the click (a busy CI
    # machine once chose nothing that way), so click once every option shown matches.
    page.wait_for_function("""title => [...document.querySelectorAll('[role=option]')].length
        && [...document.querySelectorAll('[role=option]')].every(option => option.innerText.includes(title))""", arg=title)
    page.get_by_role("option").get_by_text(title, exact=True).click()
    page.keyboard.press("Escape")
    watched.wait_idle()
    page.get_by_test_id("stMultiSelect").get_by_text(title, exact=True).wait_for(timeout=10_000)  # chosen
    page.get_by_role("button", name="Delete…").click()
    watched.wait_idle()
    warning = page.get_by_test_id("stAlert").filter(has_text="Delete 1 model?")
    assert title in warning.inner_text() and guide_registry.has(SMALLER_INPUT_DNN.key)  # asked, nothing deleted yet
    watched.screenshot("guide_delete_confirm")
    page.get_by_role("button", name="Yes, delete 1").click()
    watched.wait_idle()
    wait_for(lambda: not guide_registry.has(SMALLER_INPUT_DNN.key), timeout=30, what="the model deleted")
    page.get_by_text(re.compile(r"Recently deleted models \(1\)")).click()
    # The expander opens with an animation: its text is only readable once shown (CI once read it a moment early).
    trash = page.get_by_test_id("stExpander").filter(has_text=re.compile(r"Recently deleted models \(1\)"))
    trash.get_by_text(title, exact=True).wait_for(state="visible", timeout=10_000)
    assert title in trash.inner_text()
    page.get_by_role("button", name="Restore").click()
    playwright_api.expect(page.get_by_text(re.compile(r"Recently deleted"))).to_have_count(0, timeout=30_000)  # emptied
    watched.wait_idle()
    assert guide_registry.has(SMALLER_INPUT_DNN.key)
    watched.assert_clean()
    page.close()


PHONE_USER_AGENT = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/150.0.0.0 "
                    "Mobile Safari/537.36")


def test_on_a_phone_the_lessons_read_whole_and_no_toolbar_covers_a_chart(guide_server, guide_browser):
    """A phone (390 px wide, touch): the home page's lesson links were cut at one line ("… (ab"), Plotly's toolbar,
    shown at all times without a mouse, sat over charts' titles and values, the page list stayed open over the page
    once a page was chosen, a table's toolbar over the tab above it, Inside the network's grids were drawn for a
    desktop, and the Models table showed each title's first six letters."""
    context = guide_browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                        user_agent=PHONE_USER_AGENT)
    page = context.new_page()
    page.goto(f"{guide_server}/")
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=120_000)
    links = page.locator("[data-testid=stMain] [data-testid=stPageLink-NavLink]")
    first = links.first.inner_text()
    assert first.endswith("min)") and "Hello, neuron" in first  # the whole label: its time is there
    overflowing = links.evaluate_all("links => links.filter(link => { const span = link.querySelector('span');"
                                     " return span.scrollWidth > span.clientWidth + 1; }).length")
    assert overflowing == 0
    page.goto(f"{guide_server}/Hello_neuron")
    page.locator("[data-testid=stPlotlyChart]").first.wait_for(timeout=120_000)
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=120_000)
    shown = page.evaluate("[...document.querySelectorAll('.modebar-container')].map(bar => getComputedStyle(bar).display)")
    assert shown and set(shown) == {"none"}
    page.locator("[data-testid=stExpandSidebarButton]").tap()  # the page list, over the page: a page chosen closes it
    sidebar = page.locator("[data-testid=stSidebar]")
    page.wait_for_function("document.querySelector('[data-testid=stSidebar]').getBoundingClientRect().right > 200")
    sidebar.locator("a", has_text="Datasets").tap()
    page.get_by_text("Why normalise?").first.wait_for(timeout=120_000)
    page.wait_for_function("document.querySelector('[data-testid=stSidebar]').getBoundingClientRect().right <= 0",
                           timeout=10_000)  # it stayed open over 300 of the 390 px
    page.goto(f"{guide_server}/Datasets")  # the numbered pixels were shrunk to the screen's width: 5 px tall
    grid = page.locator(f"[class*=st-key-{server.FULL_SIZE_ON_A_PHONE}] img")
    grid.wait_for(timeout=120_000)
    page.wait_for_function("document.querySelector('[class*=st-key-%s] img').complete" % server.FULL_SIZE_ON_A_PHONE)
    width, natural, page_width = grid.evaluate("image => [image.getBoundingClientRect().width, image.naturalWidth, "
                                               "document.querySelector('[data-testid=stMain]').scrollWidth]")
    assert width == natural > 700 and page_width <= 390  # its own size, scrolled sideways by itself, not the page
    # a table's toolbar floated over the tab above it: the tap never reached it
    page.get_by_role("tab", name="Table: 0..255").tap()
    page.locator("[data-testid=stDataFrame]").first.wait_for(timeout=120_000)
    page.get_by_role("tab", name="Table: 0..1").tap(timeout=10_000)
    page.wait_for_function("document.querySelector('[role=tab][aria-selected=true]').innerText.includes('0..1')",
                           timeout=30_000)
    page.goto(f"{guide_server}/Convolutions")  # the filter's nine weights were nine stacked boxes, 650 px of scrolling
    weights = page.get_by_role("spinbutton", name=re.compile(r"^row \d, column \d$"))
    weights.first.wait_for(timeout=120_000)

    def three_by_three():  # read again while the page is still laying out (CI: rows at 820, 848, 904 and 960 px)
        boxes = [weights.nth(index).bounding_box() for index in range(9)]
        rows, columns = {round(box["y"]) for box in boxes}, {round(box["x"]) for box in boxes}
        return boxes if len(rows) == 3 and len(columns) == 3 else None

    boxes = wait_for(three_by_three, timeout=30, what="the filter's nine weights as a 3 × 3 grid")
    assert max(box["x"] + box["width"] for box in boxes) <= 390
    for width, shown in ((390, True), (1280, False)):  # a picker shows a model title's first 45 characters on a phone
        page.set_viewport_size({"width": width, "height": 844})
        page.goto(f"{guide_server}/Inside_the_network")
        picker = page.get_by_role("combobox", name="A trained network (CNN, dense or transfer)")
        picker.wait_for(timeout=120_000)
        whole = page.locator(f"[class*=st-key-{server.PHONE_ONLY}_inside_model]")
        page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=120_000)
        assert whole.is_visible() == shown, width
        if shown:
            assert whole.inner_text().strip() == picker.input_value() and len(picker.input_value()) > 50
    # Inside's grids, 8 panels a row drawn for a desktop, were 38-px panels above 300-400 empty pixels on a phone
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{guide_server}/Inside_the_network")
    page.locator("[data-testid=stPlotlyChart] .hm image").first.wait_for(timeout=120_000)
    chart, grid = page.evaluate("""() => { const chart = document.querySelector('[data-testid=stPlotlyChart]');
        return [chart, chart.querySelector('.hm image')].map(element => element.getBoundingClientRect().toJSON()); }""")
    assert grid["width"] > 300 and chart["bottom"] - grid["bottom"] < 30, (chart, grid)
    page.goto(f"{guide_server}/Models")  # each title was cut to "CNN 32" beside a 200-pixel accuracy bar
    page.locator("[data-testid=stDataFrame] [role=columnheader]").first.wait_for(state="attached", timeout=120_000)
    headers = page.locator("[data-testid=stDataFrame] [role=columnheader]").all_inner_texts()
    assert headers[:2] == ["title", "test accuracy"], headers  # the title first, kept in view while the row is swiped
    context.close()
