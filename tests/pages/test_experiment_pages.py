"""AppTest: the home page and the Train, Compare, Predict and Models pages, on real models."""

import io
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import TINY_CNN, TINY_DNN
from helpers_jobs import worker_pids_of
from PIL import Image
from apptest import open_page
from streamlit.testing.v1 import AppTest

from core.jobs import JobQueue

PROJECT = Path(__file__).resolve().parents[2]


def page(path: str) -> AppTest:
    return open_page(path)


def texts(at: AppTest) -> str:
    parts = [element.value for kind in ("markdown", "caption", "success", "info", "warning", "error", "subheader", "title")
             for element in getattr(at, kind)]
    return "\n".join(str(part) for part in parts)


def set_train_widgets(at: AppTest, config):
    """Move the Train page's sidebar widgets to describe `config` (a DNN or CNN on Fashion-MNIST)."""
    at.radio(key="train_family").set_value(config.family)
    at.select_slider(key="train_subset").set_value(config.train_subset or "all")
    at.select_slider(key="train_units").set_value(config.hidden_units[0])
    at.slider(key="train_epochs").set_value(config.epochs)
    at.select_slider(key="train_batch_size").set_value(config.batch_size)
    at.select_slider(key="train_learning_rate").set_value(config.learning_rate)
    at.run()
    if config.family == "cnn":
        at.slider(key="train_conv_blocks").set_value(len(config.filters))
        at.select_slider(key="train_first_filters").set_value(config.filters[0])
    return at.run()


def test_home_page_opens_with_the_path_and_ranks_models_within_each_dataset(trained_registry):
    at = page("app.py").run()
    assert not at.exception
    assert [header.value for header in at.subheader][:2] == ["Your path through the course", "Ready to use"]
    links = at.get("page_link")
    assert "about 5 min" in links[0].proto.label  # lesson 1, with its time
    assert {"Datasets", "Models"} <= {link.proto.page for link in links if " — " in link.proto.label}  # the details
    ready = next(block.value for block in at.markdown if "ready (" in block.value)
    trained = len(trained_registry.list_entries())
    assert f"**{trained} models** ready ({trained} trained here, 0 imported)" in ready
    assert re.search(r"\*\*\d+ of \d+ datasets\*\* on this machine: Fashion-MNIST", ready)
    assert "**0 of 3** course photo datasets imported." in ready
    tables = [block.value for block in at.markdown if "| test accuracy |" in block.value]
    best = max(trained_registry.list_entries(), key=lambda card: card.test_accuracy)
    assert tables[0].startswith("**Fashion-MNIST**")
    assert tables[0].splitlines()[4].startswith(f"| {best.test_accuracy:.2%} of 10,000 test images | {best.title[:9]}")
    assert tables[0].splitlines()[4].endswith(f"\\({best.params.total:,}\\) |")  # two columns: a phone reads them


def test_home_page_asks_no_download_host_and_counts_only_the_datasets_on_this_machine(trained_registry,
                                                                                      download_hosts, tmp_path,
                                                                                      monkeypatch):
    """Online, MNIST and CIFAR-10 could be downloaded, but they are not on this machine: "Ready to use" does not count
    them, and the page does not wait for their hosts (a firewall that drops connections would hold it 1.5 s each)."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no Keras cache: MNIST and CIFAR-10 are not here
    at = page("app.py").run()
    assert not at.exception
    ready = next(block.value for block in at.markdown if "ready (" in block.value)
    line = next(line for line in ready.split("\n\n") if "on this machine" in line)
    assert re.match(r"\*\*2 of \d+ datasets\*\* on this machine: Fashion-MNIST, Shapes\.$", line), line
    assert download_hosts() == 0


def test_the_home_page_has_the_browser_load_the_lessons_element_scripts_once_it_is_drawn(trained_registry):
    """Each script is a file this Streamlit serves (a renamed one would silently not load), asked for by name."""
    from core import server

    names = [server.static_script(pattern) for pattern in server.LESSON_SCRIPTS]
    assert all(names), names
    [loader] = [html.proto.body for html in page("app.py").run().get("html") if "classroomScripts" in html.proto.body]
    assert all(repr(name) in loader or f'"{name}"' in loader for name in names)
    assert "data-test-script-state=notRunning" in loader and "drawn() ? idle()" in loader  # once drawn


def test_home_page_loads_no_heavy_library(tmp_path):
    """The first page a server runs imports none of TensorFlow, pandas, pyarrow, OpenCV or the dataset loaders, and
    never walks the call stack for Streamlit's "use streamlit run" warning (together, seconds of a server's start);
    nor numpy and Pillow, which Streamlit would import for an image as the tab's icon, nor its emoji table, which it
    reads for an emoji icon (ui.tab_icon_is_free)."""
    code = (
        "import sys\n"
        "from streamlit import env_util\n"
        "from streamlit.testing.v1 import AppTest\n"
        "stack_walks = []\n"
        "env_util.is_repl = lambda: stack_walks.append(1) or False\n"
        "heavy = ('tensorflow', 'keras', 'pandas', 'pyarrow', 'cv2', 'numpy', 'PIL', 'core.datasets',\n"
        "         'streamlit.emojis')\n"
        "before = {name for name in heavy if name in sys.modules}\n"
        "at = AppTest.from_file('app.py').run()\n"
        "assert not at.exception, at.exception\n"
        "print(sorted({name for name in heavy if name in sys.modules} - before), len(stack_walks))\n"
    )
    environment = {**os.environ, "CNNCLASSROOM_REGISTRY": str(tmp_path / "registry"), "HOME": str(tmp_path)}
    completed = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, env=environment, capture_output=True,
                               text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip().splitlines()[-1] == "[] 0"


def test_pages_under_apptest_start_nothing_in_the_background(registry_root):
    """Under `streamlit run` the home page starts the preloading and the Train page a worker (the browser tests check
    both); in AppTest neither: its runtime is a `MagicMock(spec=Runtime)`, which isinstance() takes for a real one,
    and every page test then imported TensorFlow in a thread and started a worker process that warmed up beside it."""
    for path in ("app.py", "pages/8_Train.py"):
        assert not page(path).run().exception
    assert not [thread.name for thread in threading.enumerate() if thread.name.startswith("cnnclassroom ")]
    assert worker_pids_of(registry_root) == []


def test_train_page_shows_a_trained_config_instantly_without_training(trained_registry):
    at = page("pages/8_Train.py").run()
    assert not at.exception
    started = time.perf_counter()
    set_train_widgets(at, TINY_CNN)
    assert not at.exception
    assert "Trained before" in texts(at)
    accuracy = trained_registry.get(TINY_CNN.key).test_accuracy
    assert at.metric[0].value == f"{accuracy:.2%}"
    assert any("conv_1" in frame.value.to_string() for frame in at.dataframe)  # model.summary() table
    with JobQueue(trained_registry.root).connect() as connection:
        assert connection.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0  # nothing was trained
    print(f"cache-hit reruns took {time.perf_counter() - started:.2f}s")


def test_train_page_trains_a_new_config_in_the_background(registry_root):
    at = page("pages/8_Train.py").run()
    config = TINY_DNN
    set_train_widgets(at, config)
    at.slider(key="train_epochs").set_value(1).run()
    assert "has not been trained yet" in texts(at)
    at.button(key="train_start_button").click().run()
    assert not at.exception
    deadline = time.monotonic() + 180
    while "Trained just now" not in texts(at) and time.monotonic() < deadline:
        time.sleep(1)
        at.run()
        assert not at.exception
    assert "Trained just now" in texts(at)
    assert float(at.metric[0].value.rstrip("%")) > 20


def test_train_page_presets_set_every_widget(registry_root):
    from core.config import PRESETS
    from core.course import PRESET_LESSONS

    at = page("pages/8_Train.py").run()
    at.slider(key="train_epochs").set_value(17).run()
    for name, preset in PRESETS.items():
        at.selectbox(key="train_preset").set_value(name).run()
        assert not at.exception
        assert at.subheader[0].value == preset.title, name
        assert "has not been trained yet" in texts(at)
        assert PRESET_LESSONS[name] in texts(at)
        code = [block.value for block in at.code]  # "Show the code": the network this preset builds, not another
        assert any(f"def build_{preset.family}(" in block for block in code), name
        assert not any(f"def build_{other}(" in block for block in code for other in {"dnn", "cnn", "transfer"} - {preset.family})
    at.slider(key="train_epochs").set_value(preset.epochs + 1).run()  # a setting moved: the preset's words go
    assert PRESET_LESSONS[name] not in texts(at)
    assert f"Changed since choosing *{name}*: these settings are your own network now." in texts(at)


def test_train_page_lints_before_training(registry_root):
    at = page("pages/8_Train.py").run()
    at.select_slider(key="train_learning_rate").set_value(0.1).run()
    at.selectbox(key="train_optimizer").set_value("adam").run()
    assert any("Learning rate 0.1 is far above" in warning.value for warning in at.warning)  # as its slider says


def test_compare_page_compares_two_models_with_significance(trained_registry):
    at = page("pages/9_Compare.py").run()
    assert not at.exception
    at.multiselect(key="compare_models").set_value([TINY_CNN.key, TINY_DNN.key]).run()
    assert not at.exception
    shown = texts(at)
    assert "McNemar" in shown and "95% CI" in shown
    table = next(block.value for block in at.markdown if "| test accuracy |" in block.value).splitlines()
    assert table[0] == "|  | A | B |"  # a column per model: a row per model was 589 px wide on a phone
    assert table[2].startswith("| model | CNN") and "| DNN" in table[2]
    assert len(at.get("plotly_chart")) >= 4  # curves, per-class accuracy, two confusion matrices
    assert "right" in shown and "wrong" in shown  # the disagreement gallery


def jpeg_of_test_item(index: int, invert: bool) -> bytes:
    from core.datasets import load_dataset

    image = load_dataset("fashion_mnist").x_test[index][..., 0]
    image = 255 - image if invert else image
    buffer = io.BytesIO()
    Image.fromarray(image).resize((400, 400)).convert("RGB").save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def test_predict_page_classifies_good_files_and_explains_bad_ones(trained_registry):
    at = page("pages/10_Predict.py").run()
    at.selectbox(key="predict_model").set_value(TINY_CNN.key).run()
    assert not at.exception
    uploader = at.get("file_uploader")[0]
    files = [("shoe_photo.jpg", jpeg_of_test_item(0, invert=True), "image/jpeg"),
             ("notes.png", b"this is text, not a picture", "image/png"),
             ("empty.png", b"", "image/png")]
    uploader.set_value(files).run()
    assert not at.exception
    assert len(at.error) == 2
    assert all("could not read 'notes.png'" in e.value.lower() or "'empty.png' is empty" in e.value.lower() for e in at.error)
    assert any("%" in success.value for success in at.success)
    assert any(caption.value.startswith("ℹ️ Inverted: dark object on a light background") for caption in at.caption)
    assert "Where the model looked (Grad-CAM" in texts(at)


def test_pages_do_not_reset_keras_after_every_run(trained_registry, monkeypatch):
    """Streamlit would call keras.backend.clear_session() after each run: a full garbage collection (~0.3 s)."""
    import keras

    resets = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *args, **kwargs: resets.append(args))
    at = page("pages/10_Predict.py").run()
    at.selectbox(key="predict_model").set_value(TINY_CNN.key).run()
    at.get("file_uploader")[0].set_value([("shoe.jpg", jpeg_of_test_item(0, invert=True), "image/jpeg")]).run()
    assert not at.exception and at.success
    assert resets == []


def test_models_page_lists_and_filters(trained_registry):
    at = page("pages/11_Models.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert set(table["key"]) == {TINY_DNN.key, TINY_CNN.key}
    from core.guide import no_better_than_guessing  # a phone shows only the first columns: the flag sits there

    cards = {card.key: card for card in trained_registry.list_entries()}
    assert list(table.columns[:3]) == ["test accuracy", "beats guessing", "title"]
    assert {key: bool(flag) for key, flag in zip(table["key"], table["beats guessing"])} == {
        key: not no_better_than_guessing(card) for key, card in cards.items()}
    import json  # the title column is as wide as the longest title (cut to "…30 epochs · b…" at "large"), 400-700 px
    width = json.loads(at.dataframe[0].proto.columns)["title"]["width"]
    assert width == min(700, max(400, 7 * max(len(card.title) for card in cards.values())))
    at.selectbox(key="models_family").set_value("cnn").run()
    assert list(at.dataframe[0].value["key"]) == [TINY_CNN.key]


def test_a_model_no_better_than_guessing_is_named_so_in_every_picker(trained_registry):
    """A phone walk found the 21.67% Shapes model near the top of Predict's picker with no word of it."""
    import dataclasses

    from core.guide import entry_label

    card = trained_registry.get(TINY_CNN.key).card
    coin = dataclasses.replace(card, test_accuracy=0.105)  # ten classes: 10.5% of 10,000 is guessing
    assert entry_label(coin) == f"{card.title} · 10.50% on 10,000 test images, no better than guessing"
    assert not entry_label(card).endswith("guessing")
