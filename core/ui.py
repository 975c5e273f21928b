"""Streamlit glue: the one module of core that imports Streamlit (caches, error guard, shared widgets).

It stays in `core/` because the project's top level is fixed (app.py, pages/, core/, ...); nothing else in
`core/` imports it, so `python -m core` and every other module work without Streamlit (a test checks). Under
1,000 lines, because all Streamlit code outside the pages lives here by design: the training panel and live
view, teacher mode, the caches, the photo widgets (uploads copied to disk, progress bars, webcam classes), and the
work that gets the server ready before a student asks (preloading, an early worker, element scripts: core.server).
"""

import collections
import contextlib
import hashlib
import hmac
import inspect
import logging
import os
import re
import secrets
import sys
import threading
import time
import uuid
import weakref
from pathlib import Path

import streamlit as st

from core import server, teacher
from core.address import PickerAddress
from core.catalogue import FOLDER_PREFIX
from core.config import KEY_PATTERN
from core.errors import CoreError, DatasetError, student_message, without_paths
from core.estimates import no_promise_note
from core.guide import (accuracy_text, counted, duration_words, entry_label, few_test_images_note, guessing_note,
                        overfitting_note, progress_fraction, progress_text, queue_text,
                        safe_file_name, title_for, validation_above_training_note)
from core.history import History
from core.jobs import JobRunner
from core.logs import drop_retracing_warnings
from core.paths import UPLOAD_PREFIX, UPLOADS_FOLDER, registry_root
from core.registry import Registry

LESSONS = [
    ("pages/1_Hello_neuron.py", "Hello, neuron", "one Dense unit learns y = 2x − 1"),
    ("pages/2_Datasets.py", "Datasets", "pixels, classes and normalising"),
    ("pages/3_Convolutions.py", "Convolutions and pooling", "3×3 filters, 2×2 max pooling, shape arithmetic"),
    ("pages/4_Augmentation.py", "Augmentation", "rotations, shifts, flips — and overfitting's cure"),
    ("pages/5_Inside_the_network.py", "Inside the network", "learned filters and feature maps"),
    ("pages/6_Your_own_images.py", "Your own images", "upload a zip of class folders and train on it"),
    ("pages/7_Transfer_learning.py", "Transfer learning", "reuse a trained network on little data"),
]
# About how long each lesson takes a student, reading and trying its controls (trainings included), for Home's path.
LESSON_MINUTES = {"pages/1_Hello_neuron.py": 5, "pages/2_Datasets.py": 5, "pages/3_Convolutions.py": 10,
                  "pages/4_Augmentation.py": 10, "pages/5_Inside_the_network.py": 10, "pages/6_Your_own_images.py": 20,
                  "pages/7_Transfer_learning.py": 15, "pages/8_Train.py": 15, "pages/9_Compare.py": 10,
                  "pages/10_Predict.py": 5}
EXPERIMENTS = [
    ("pages/8_Train.py", "Train", "move sliders, retrain, watch the curves"),
    ("pages/9_Compare.py", "Compare", "DNN vs CNN, side by side, with a significance test"),
    ("pages/10_Predict.py", "Predict", "upload a photo and see what a model thinks"),
    ("pages/11_Models.py", "Models", "the registry: browse, download, import, delete"),
]
# The browser tab's icon: the title's emoji, which the browser draws itself. Streamlit reads its emoji table for it
# (0.06-0.17 s, once per server); for an image file it imports numpy and Pillow (0.1-0.2 s of the first page a fresh
# server runs, which the home page otherwise never needs); a Material icon would be fetched from Google's servers.
PAGE_ICON = "🧠"
PERSISTED_WIDGET = re.compile(r"^(train|compare|predict|models|neuron|datasets|conv|augment|inside|own|transfer)_(?!(.*_)?(button|upload)$)")


_page_runs = weakref.WeakSet()  # the threads of pages' script runs (Streamlit starts one per run)


def a_page_is_running() -> bool:
    """Whether a page's script is running in this server (the preloading lets it go first)."""
    return any(thread.is_alive() for thread in list(_page_runs))


def page_setup(title: str, icon: str | None = PAGE_ICON):
    """Common page start: config, navigation and the teacher's sidebar.

    `icon=None` leaves the tab's icon to the end of the page (the home page, see `tab_icon_is_free`).

    A widget keeps its value two ways (a lesson's settings are also in its address, `bind="query-params"`, which a
    reload keeps). Each is created with `persist_state="session"` (a test checks), Streamlit's
    own way to keep a value while its page is left; it alone survives a page left while a live view (a fragment that
    reruns every second) runs, which undoes the other way (Streamlit issue 10805). And each run re-assigns every value
    to itself (Streamlit's documented pattern), which keeps a choice when its options or labels change under it:
    a photo counted in a radio's label, a model another student trained in a picker. Streamlit then logs "created
    with a default value but also had its value set via the Session State API" for each such widget, which here is
    intended, so that one logger is quietened.
    """
    _page_runs.add(threading.current_thread())
    if st.session_state.get("classroom_page") != title:  # come from another page: `kept_photos` uses it up
        st.session_state["classroom_page"], st.session_state[CAME_BACK] = title, True
        st.session_state[PAGE_VISIT] = st.session_state.get(PAGE_VISIT, 0) + 1  # `model_picker` reads its address
    st.set_page_config(page_title=f"{title} · CNN Classroom", page_icon=icon, layout="wide")
    logging.getLogger("streamlit.elements.lib.policies").setLevel(logging.ERROR)
    logging.getLogger("tensorflow").addFilter(drop_retracing_warnings)  # Predict and Inside use model after model
    st.html(server.PAGE_STYLE)
    navigation()
    teacher_sidebar()
    for key in list(st.session_state.keys()):
        if isinstance(key, str) and PERSISTED_WIDGET.match(key):
            with contextlib.suppress(Exception):
                st.session_state[key] = st.session_state[key]


def full_size_on_a_phone(parent, key: str):
    """A container in `parent` whose picture keeps its own size on a narrow screen, scrolled sideways."""
    return parent.container(key=f"{server.FULL_SIZE_ON_A_PHONE}_{key}")


def on_a_phone_only(key: str):
    """A container shown on a narrow screen only (up to 640 px: a phone), for what a phone would otherwise cut."""
    return st.container(key=f"{server.PHONE_ONLY}_{key}")


def on_a_phone() -> bool:
    """Whether the browser says it is a phone ("Mobi" in its user agent), for a chart that a style cannot reshape."""
    return "Mobi" in (st.context.headers.get("User-Agent") or "")


def tab_icon_is_free() -> bool:
    """Whether setting the tab's emoji icon costs nothing now. The first emoji icon a server sets has Streamlit read
    its emoji table: 0.04 s alone, 0.09-0.18 s beside the browser drawing the page, and the run ends after it. So a
    fresh server's very first home page keeps Streamlit's icon (the next page sets ours); the preloading reads the
    table first, 0.3 s later (core.preload.LIGHT_MODULES)."""
    return "streamlit.emojis" in sys.modules


def navigation():
    """The sidebar's page list, in teaching order (Streamlit's own list is off in config.toml)."""
    with st.sidebar:
        st.page_link("app.py", label="Home", icon=":material/home:")
        st.caption("Learn")
        for path, label, _ in LESSONS:
            st.page_link(path, label=label)
        st.caption("Experiment")
        for path, label, _ in EXPERIMENTS:
            st.page_link(path, label=label)
        st.divider()
        run_fixed_script(server.CLOSE_MENU_ON_A_PHONE)


# The tables' counts written 10,000 as elsewhere on the pages (a table shows 10000 otherwise), still sorted as numbers
THOUSANDS_COLUMNS = {name: st.column_config.NumberColumn(format="localized")
                     for name in ("test images", "training images", "parameters")}


@contextlib.contextmanager
def guard():
    """Show a CoreError in a student's words (exact values go to the log) and stop the page; never a traceback."""
    try:
        yield
    except CoreError as error:
        st.error(student_message(error))
        st.stop()


def or_error(function, *arguments, **keywords):
    """`function`'s result, or None after showing its CoreError in a student's words: unlike `guard`, the rest of the
    page goes on (a table the settings cannot make, with the lesson around it)."""
    try:
        return function(*arguments, **keywords)
    except CoreError as error:
        st.error(student_message(error))
        return None


def registry() -> Registry:
    """The registry for this server (one object, shared by all sessions)."""
    return _registry_at(str(registry_root()))


@st.cache_resource
def _registry_at(root: str) -> Registry:
    return Registry(root)


def runner() -> JobRunner:
    return JobRunner(registry())


def session_id() -> str:
    """This browser session's id: the fair queue takes jobs round by round across sessions."""
    if "classroom_session" not in st.session_state:
        st.session_state["classroom_session"] = uuid.uuid4().hex
    return st.session_state["classroom_session"]


# ----- Teacher mode ---------------------------------------------------------------------------------------------

_PROCESS_KEY = secrets.token_bytes(16)  # keys the gate's cache: the passphrase itself is never a cache key


def gate() -> teacher.TeacherGate:
    """The server's teacher gate, from $CNNCLASSROOM_TEACHER_PASSPHRASE or the secret `teacher_passphrase`."""
    passphrase = teacher.configured_passphrase(_secret_passphrase())
    fingerprint = hmac.new(_PROCESS_KEY, (passphrase or "").encode(), hashlib.sha256).hexdigest()
    return _gate_for(fingerprint, passphrase)


@st.cache_resource
def _gate_for(fingerprint: str, _passphrase: str | None) -> teacher.TeacherGate:
    return teacher.TeacherGate.from_passphrase(_passphrase)


def _secret_passphrase() -> str | None:
    with contextlib.suppress(Exception):  # no secrets.toml is the usual case
        return st.secrets.get(teacher.SECRETS_KEY)
    return None


def teacher_pass() -> teacher.TeacherPass | None:
    """What this session holds: the open pass without a passphrase, the pass it unlocked, or None (a student)."""
    current = gate()
    return teacher.OPEN_PASS if current.is_open else st.session_state.get("classroom_teacher_pass")


def is_teacher() -> bool:
    return gate().allows(teacher_pass())


def teacher_sidebar():
    """Where a passphrase is configured: unlock teacher mode in the sidebar, or lock it again."""
    current = gate()
    if current.is_open:
        return
    with st.sidebar.expander("Teacher mode", expanded=False):
        if current.allows(teacher_pass()):
            st.caption("Unlocked: you can delete, import and pin models and set the training budget.")
            if st.button("Lock", key="teacher_lock_button"):
                current.lock_again(st.session_state.pop("classroom_teacher_pass", None))
                st.rerun()
            return
        with st.form("teacher_unlock_form", clear_on_submit=True, border=False):
            attempt = st.text_input("Teacher passphrase", type="password", key="teacher_passphrase")
            if st.form_submit_button("Unlock", key="teacher_unlock_button"):
                try:
                    st.session_state["classroom_teacher_pass"] = current.unlock(attempt, session_id())
                    st.rerun()
                except CoreError as error:
                    st.error(student_message(error))


def training_panel(configs: dict, key: str, button_label: str = "Train", beside_button=None) -> dict | None:
    """The one training block of every page that trains: the entries when all `configs` are published, else None.

    `configs` is {name: TrainConfig}. Until all are published it draws, in this order: live progress and
    curves with a Cancel button while any is queued or running; why the last attempt failed or was cancelled;
    then the button (`{key}_button`) that submits the missing ones. `beside_button()`, when given, draws the
    page's own widgets above the button and returns True to submit without a click (auto-train).
    """
    entries = {name: registry().find(config) for name, config in configs.items()}
    if all(entry is not None for entry in entries.values()):
        return entries
    pending = {name: config for name, config in configs.items() if entries[name] is None}
    statuses = {name: runner().status(config.key) for name, config in pending.items()}
    if any(status.state in ("queued", "running") for status in statuses.values()):
        watch(config.key for config in pending.values())
        live_trainings(pending, cancel_key=f"{key}_cancel_button")
        return None
    for name, status in statuses.items():
        if status.state in ("failed", "cancelled"):
            prefix = f"{name}: " if len(configs) > 1 else ""
            (st.error if status.state == "failed" else st.info)(
                prefix + (student_message(status.message) if status.message else f"training {status.state}."))
    problem = next(filter(None, (untrainable(config) for config in pending.values())), None)
    if problem:  # too few photos, or a class missing from the test photos: said before anything is queued
        st.error(student_message(problem))
        return None
    start_worker_early()
    start_now = beside_button() if beside_button else False
    if st.button(button_label, type="primary", key=f"{key}_button") or start_now:
        with guard():
            for config in pending.values():
                runner().submit(config, session=session_id())
        watch(config.key for config in pending.values())
        st.rerun()
    if over := runner().over_budget(list(pending.values())):
        expected, allowed = over
        st.warning(f"This training would take about {duration_words(expected)}, going by this server's last trainings, "
                   f"and your teacher allows {duration_words(allowed)} per training: it would be stopped before it "
                   "finishes, and not saved. Choose fewer epochs or training images.")
    elif (ready_in := runner().ready_in(list(pending.values()))) is not None:
        st.caption(f"About {duration_words(ready_in)} from the press to {'the models' if len(pending) > 1 else 'a model'}, "
                   "going by this server's last trainings and the ones queued now.")
    else:  # nothing like it has finished here: at least what a press trains
        st.caption(no_promise_note(list(pending.values()), registry().root))
    return None


UNDER_WAY_SHOWN = 12  # a class pressing Train at once: the first submitted, one status read each


def trainings_under_way(shown_keys):
    """The server's queued and running trainings other than `shown_keys`, by title: after a reload (which resets the
    sidebar) a student still sees theirs going on."""
    shown = set(shown_keys)
    jobs = [job for job in runner().active_jobs() if job.key not in shown]
    if not jobs:
        return
    with st.expander(f"Other trainings under way on this server ({len(jobs)})"):
        for job in jobs[:UNDER_WAY_SHOWN]:
            status = runner().status(job.key)
            where = queue_text(status) if status.state == "queued" else (
                progress_text(status, status.epochs or job.config.epochs) if status.state == "running" else status.state)
            st.markdown(f"- {title_for(job.config, registry())}: {where}")
        if len(jobs) > UNDER_WAY_SHOWN:
            st.markdown(f"- and {len(jobs) - UNDER_WAY_SHOWN} more")
        st.caption("Each appears on **Models** (and everywhere models are picked) once trained; choose the same "
                   "settings here to watch its curves.")


def untrainable(config) -> str | None:
    """Why `config` cannot be trained here, or None: its imported dataset cannot be trained and tested fairly
    (core.datasets.check_trainable), or its ImageNet base's weights are neither here nor downloadable now."""
    from core.catalogue import input_shape_for
    from core.datasets import check_trainable
    from core.pretrained import APPLICATIONS, weights_status

    try:
        check_trainable(registry().root, config.dataset, config.validation_fraction)
    except DatasetError as error:
        return str(error)
    if config.family == "transfer" and config.base_model in APPLICATIONS:
        shape = input_shape_for(config.dataset, config.image_size, config.color_mode, registry().root)
        available, why = weights_status(config.base_model, shape)
        if not available:
            return (f"{why} A teacher can add the file by hand (the README says where). Without internet, choose a CNN "
                    "trained here as the base instead (marked “trained here” in the list of bases).")
    return None


def watch(keys):
    """Remember that this session saw these keys train, so their result can say "Trained just now"."""
    st.session_state.setdefault("classroom_watched", set()).update(keys)


def trained_here(key: str) -> bool:
    """True when this session started or watched the training of `key` (see `watch`)."""
    return key in st.session_state.get("classroom_watched", set())


def history_charts(histories: dict[str, History], container=None):
    """The accuracy and loss curves of one or more models, side by side: the one chart pair every page draws."""
    from core import charts

    left, right = (container or st).columns(2)
    left.plotly_chart(charts.history_figure(histories, "accuracy"), width="stretch")
    right.plotly_chart(charts.history_figure(histories, "loss"), width="stretch")
    if note := validation_above_training_note(histories):
        (container or st).caption(note)


def trained_model(entry, container=None, wide: bool = True):
    """The one view of a trained model (Train, Your own images, Models): its test accuracy and on how many images,
    size, training time and epochs; why it stopped early; its curves, with what they show; and, `wide`, its layers."""
    container, card = container or st, entry.card
    tested = card.dataset.test_images
    accuracy = accuracy_text(card.test_accuracy, tested) if card.test_accuracy is not None else "—"
    images = "photos" if str(card.dataset.name).startswith(FOLDER_PREFIX) else "images"
    accuracy_label = f"test accuracy on {tested:,} {images}" if tested else "test accuracy (not tested here)"
    seconds = f"{card.timings.train_seconds:.1f} s" if card.timings.train_seconds is not None else "—"
    if wide:
        columns = container.columns(4)
        columns[0].metric(accuracy_label, accuracy, help="Measured on test images the network never trained on.")
        columns[1].metric("parameters", f"{card.params.total:,}")
        columns[2].metric("training time", seconds)
        columns[3].metric("epochs run", f"{card.epochs_run} / {card.epochs_planned}" if card.epochs_run else "—")
    else:
        container.metric(accuracy_label, accuracy, help="Measured on test images the network never trained on.")
        container.caption(f"{card.params.total:,} parameters ({card.params.trainable:,} trained) · {seconds} · "
                          f"{card.epochs_run or 0} epochs · {card.title}")
    if note := few_test_images_note(tested):
        container.caption(note)
    if card.stopped_reason:
        container.info(f"Stopped early: {card.stopped_reason}.")
    guessing = guessing_note(card)
    if guessing:
        container.warning(guessing)
    if entry.history:
        history_charts({card.title: entry.history}, container=container)
        if not guessing and (warning := overfitting_note(entry.history)):  # it learned nothing to memorise from
            container.warning(warning)
    if wide:
        container.markdown("**The model, layer by layer** (`model.summary()`)")
        container.dataframe(card.layer_rows(), hide_index=True, column_config=THOUSANDS_COLUMNS)
        container.caption(f"Registry key `{entry.key}` · dataset source: {without_paths(card.dataset.source or '—')} · "
                          f"TensorFlow {card.versions.get('tensorflow')}, Keras {card.versions.get('keras')}")


@st.fragment(run_every=1.0)
def live_trainings(configs: dict, cancel_key: str | None = None):
    """Background trainings ({name: TrainConfig}): progress, ETA and live curves, redrawn every second.

    When all have ended the whole page reruns, so it can show the finished models.
    """
    statuses = {name: runner().status(config.key) for name, config in configs.items()}
    if all(status.finished for status in statuses.values()):
        st.rerun()
    for name, status in statuses.items():
        epochs = status.epochs or configs[name].epochs
        text = queue_text(status) if status.state == "queued" else progress_text(status, epochs)
        st.progress(progress_fraction(status, epochs), text=f"{name}: {text}")
    histories = {name: status.progress for name, status in statuses.items() if status.progress}
    if histories:
        history_charts(histories)
    if cancel_key and st.button("Cancel training", key=cancel_key):
        for config in configs.values():
            runner().cancel(config.key)


def budget_form():
    """The teacher's per-job training budget (most epochs, most seconds), saved for every job submitted after."""
    from core.jobs import Budget

    with st.expander("Training budget for each student's job"):
        budget = runner().budget()
        epochs = st.number_input("Most epochs per training (0: no limit)", 0, 500, budget.max_epochs or 0,
                                 key="teacher_budget_epochs")
        seconds = st.number_input("Most seconds per training (0: no limit)", 0, 36_000, int(budget.max_seconds or 0),
                                  step=30, key="teacher_budget_seconds")
        if st.button("Save budget", key="teacher_budget_button"):
            with guard():
                teacher.set_budget(runner().queue, gate(), teacher_pass(), Budget(int(epochs) or None, float(seconds) or None))
            st.success("Saved: it applies to every training that starts from now on.")


@st.cache_resource(max_entries=8, show_spinner="Loading the model (the first time also starts TensorFlow: a few seconds)…")
def load_model(key: str):
    """A registered model, loaded once per server and shared (never fitted)."""
    return registry().load_model(key)


@st.cache_resource(max_entries=16)
def load_evaluation(key: str):
    return registry().load_evaluation(key)


def load_dataset(name: str, train_subset=None, image_size=None, color_mode=None, validation_fraction=0.1):
    """A dataset's arrays, shared by all sessions without copying; one entry however the arguments are spelled
    (Streamlit keys by the arguments as passed: `(name)` and `(name, image_size=None)` were two loads, two copies)."""
    return _dataset(name, train_subset, image_size, color_mode, validation_fraction)


@st.cache_resource(max_entries=6, show_spinner="Loading the images: the first time reads the dataset's files and splits "
                                               "them into training, validation and test images (a few seconds)…")
def _dataset(name: str, train_subset, image_size, color_mode, validation_fraction):
    from core.datasets import load_dataset as load

    return load(name, train_subset=train_subset, image_size=image_size, color_mode=color_mode,
                validation_fraction=validation_fraction, root=registry().root)


def test_images_or_note(config, needed_for: str):
    """The dataset `config` was trained on, for a view of its test images; None, said in an info box beginning with
    `needed_for` ("The gallery shows this model's test images"), when they are not here (the dataset deleted since:
    restorable from the trash, or never imported)."""
    try:  # the test split does not depend on the validation fraction: the arguments core.preload loads it with
        return load_dataset(config.dataset, image_size=config.image_size, color_mode=config.color_mode)
    except DatasetError as error:
        st.info(f"{needed_for}, and they are not here. {student_message(error)}")
        return None


PICKER_CHARACTERS_ON_A_PHONE = 45  # what a picker shows of its choice on a 390-pixel phone


def model_picker(label: str, key: str, cards: list | None = None, index: int = 0, help: str | None = None) -> str | None:
    """A selectbox of registry entries (their cards); returns the chosen key (None when the registry is empty).

    `index` is the model the lesson means (see core.guide), chosen until the student picks another, which the page's
    address then names by its registry key (`?<key>=<registry key>`): a reload keeps it, a teacher's link opens it,
    and the browser's Back and Forward buttons go back and forth between the models picked.
    """
    cards = registry().list_entries() if cards is None else cards
    if not cards:
        st.info("No models in the registry yet. Train one on the **Train** or **Compare** page, "
                "or run `python -m core warmup`.")
        return None
    labels = {card.key: entry_label(card) for card in cards}
    default = cards[min(index, len(cards) - 1)].key
    address, visit = st.query_params.get(key), st.session_state.get(PAGE_VISIT)
    last = st.session_state.get(f"{key}_address", PickerAddress())
    if followed := last.model_to_show(address, visit):
        st.session_state[key], st.session_state[f"{key}_address"] = followed, last.followed(address, visit)
    previous = st.session_state.get(key)
    reset_if_invalid(key, labels.__contains__, default)
    chosen = st.selectbox(label, list(labels), format_func=labels.get, key=key, persist_state="session",
                          index=min(index, len(cards) - 1), help=help)
    if chosen != default:
        st.query_params[key] = chosen
    else:
        st.query_params.pop(key, None)
    st.session_state[f"{key}_address"] = last.after(chosen, default, address, visit)
    if len(labels[chosen]) > PICKER_CHARACTERS_ON_A_PHONE:  # the rest is cut there
        on_a_phone_only(key).caption(labels[chosen])
    if address and followed == address and address not in labels:
        why = "is not one this page shows" if KEY_PATTERN.fullmatch(address) and registry().has(address) else \
            "is not in the registry (deleted, or the link is from another server)"
        st.info(f"The model named in this page's address {why}: showing {labels[chosen]} instead.")
    elif isinstance(previous, str) and previous not in labels and not registry().has(previous):
        st.info(f"The model you had chosen is no longer in the registry (deleted on another page, or by the teacher): "
                f"showing {labels[chosen]} instead.")
    return chosen


def show_code(*functions, label: str = "Show the code"):
    """An expander with the real source of the core functions a page calls (a function, or "module:name")."""
    with st.expander(label):
        for function in functions:
            st.code(source_text(function), language="python")


def source_text(function) -> str:
    """The source of a function or class, or of one named "package.module:name", read from the module's file
    without importing it: a page that only shows Keras code need not wait for TensorFlow's import."""
    if not isinstance(function, str):
        return inspect.getsource(function)
    import ast
    import importlib.util

    module_name, _, name = function.partition(":")
    spec = importlib.util.find_spec(module_name)
    if spec is None or not spec.origin or not name:
        raise LookupError(f"No source for {function!r}: expected 'package.module:name' of an installed module")
    text = Path(spec.origin).read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    for node in ast.parse(text).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
            return "".join(lines[first - 1:node.end_lineno])
    raise LookupError(f"No function or class {name!r} at the top level of {module_name}")


def displayable(image):
    """An (H, W, 1) grayscale array as (H, W), which st.image can show; colour arrays pass through."""
    return image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image


def image_grid(images, captions, width: int = 104):
    """Captioned images `width` pixels wide, side by side in a row that wraps: as many to a row as the window holds
    (3 on a phone). Rows of `st.columns` stacked on a phone, one image under the other: Compare was 11,600 px tall."""
    with st.container(horizontal=True, gap="small"):
        for image, caption in zip(images, captions):
            st.image(displayable(image), caption=caption, width=width)


def image_row(images, gap: int = 4):
    """Images of one size side by side as one picture, `gap` white pixels apart, for `st.image`.

    One picture is one element for the browser to fetch and draw: Datasets' 80 samples as 10 rows opened in a median
    of 1.71 s instead of 2.08 s (docs/performance.md).
    """
    import numpy as np

    pictures = [displayable(image) for image in images]
    white = np.full((pictures[0].shape[0], gap, *pictures[0].shape[2:]), 255, dtype=pictures[0].dtype)
    return np.concatenate([part for picture in pictures for part in (white, picture)][1:], axis=1)


@st.cache_data(max_entries=32,
               show_spinner="Training the neuron (the first time also starts TensorFlow: a few seconds)…")
def fit_neuron(epochs: int, learning_rate: float, seed: int, noise: float):
    """Hello, neuron's fit (core.neuron.fit_line: 500 epochs take about 1 s), shared by the server's sessions."""
    from core.neuron import fit_line

    return fit_line(epochs, learning_rate, seed, noise)


@st.cache_resource(max_entries=4, show_spinner=False)  # a 150-px photo CNN's view and contrasts: ~100 MB
def network_view(key: str):
    """Inside the network's numbers for a registered model (core.network_view): its published first view drawn
    without TensorFlow; any other pick from the model, loaded (and TensorFlow started) only then."""
    from core.network_view import NetworkView, stored_first_view

    return NetworkView(stored_first_view(registry().entry_dir(key)), lambda: load_model(key))  # load_model's spinner


@st.cache_data(max_entries=4, show_spinner="Exporting…")
def exported_bytes(key: str, fmt: str) -> tuple[str, bytes]:
    """(file name, bytes) of an entry exported as keras, savedmodel (zip) or tflite; the file is named by its title."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = registry().export(key, fmt, folder)
        suffix = "_saved_model.zip" if fmt == "savedmodel" else Path(path).suffix
        return safe_file_name(registry().get(key).title, suffix), Path(path).read_bytes()


def delete_and_restore(cards: list):
    """The teacher's delete of models (pick by title, then confirm a list that names them and the transfer models
    that started from them, which stay) and the trash's restore."""
    from core.trash import list_trash

    def started_from(pending):
        built_on = [card.title for card in cards if card.config is not None and card.key not in pending
                    and card.config.registry_base_key in pending]
        return (f"{counted(len(built_on), 'transfer model')} started from {'it' if len(pending) == 1 else 'them'} and "
                "stay (each keeps its own copy of the base):\n\n" + "\n".join(f"- {title}" for title in built_on)
                if built_on else "")

    def delete(keys):
        for key in keys:
            teacher.delete_model(registry(), gate(), teacher_pass(), key)
        for cache in (load_model, network_view):
            cache.clear()

    pinned = registry().pinned_keys()
    _trash_block("model", "models", {card.key: card.title for card in cards if card.key not in pinned}, started_from,
                 delete, lambda key: teacher.restore_model(registry(), gate(), teacher_pass(), key),
                 list_trash(registry().root),
                 left_out=f"{counted(len(pinned), 'pinned model is', 'pinned models are')} not listed: a lesson needs "
                          f"{'it' if len(pinned) == 1 else 'them'} (choose one in the table below, then Unpin)."
                 if pinned else None)


def delete_and_restore_datasets(cards: list):
    """The same for imported datasets: the confirmation names the models trained on them (they stay and predict)."""
    from core.catalogue import dataset_titles, list_datasets
    from core.trash import list_dataset_trash

    imported = [info for info in list_datasets(registry().root, ask_network=False) if info.name.startswith(FOLDER_PREFIX)]

    def trained_on(pending):
        trained = [card.title for card in cards if card.dataset.name in pending]
        verbs = "stays and still predicts" if len(trained) == 1 else "stay and still predict"
        return (f"{counted(len(trained), 'model')} trained on {'it' if len(pending) == 1 else 'them'} {verbs}; Inside "
                "the network and Compare show their test photos again once the dataset is restored:"
                "\n\n" + "\n".join(f"- {title}" for title in trained) if trained else "")

    def delete(names):
        for name in names:
            teacher.delete_dataset(registry(), gate(), teacher_pass(), name)
        _dataset.clear()

    _trash_block("imported dataset", "datasets", dataset_titles(imported), trained_on, delete,
                 lambda dataset_id: teacher.restore_dataset(registry(), gate(), teacher_pass(), dataset_id),
                 list_dataset_trash(registry().root))


def _trash_block(noun: str, key: str, titles: dict, consequences, delete, restore, trashed: list,
                 left_out: str | None = None):
    """Delete (pick by title, confirm a list that names them and `consequences(pending)`), then restore from the
    trash: the block both Models' delete and its datasets' delete draw. Widget keys start with `key`; `left_out`
    says which ones cannot be deleted and why. A refused delete or restore is said, and the page goes on."""
    from core.trash import KEEP_DAYS

    plural = f"{noun}s"
    pending = [name for name in st.session_state.get(f"{key}_pending_delete", []) if name in titles]
    if not pending:  # none left to confirm (pinned or deleted meanwhile): the choice starts again
        st.session_state.pop(f"{key}_pending_delete", None)
    if done := st.session_state.pop(f"{key}_deleted", None):  # set by a delete or a restore below, before its rerun
        st.success(done)
    if refused := st.session_state.pop(f"{key}_refused", None):
        st.error(refused)
    with st.expander(f"Delete {plural}", expanded=bool(pending)):
        if pending:
            also = consequences(pending)
            where = "It goes" if len(pending) == 1 else "They go"
            st.warning(f"Delete {counted(len(pending), noun)}? {where} to the trash and can be restored for {KEEP_DAYS} "
                       "days:\n\n" + "\n".join(f"- {titles[name]}" for name in pending) + (f"\n\n{also}" if also else ""))
            yes, no = st.columns(2)
            if yes.button(f"Yes, delete {len(pending)}", type="primary", key=f"{key}_confirm_delete_button"):
                try:
                    delete(pending)
                    st.session_state[f"{key}_deleted"] = (f"Deleted {counted(len(pending), noun)}: Recently deleted "
                                                          f"{plural}, below, brings any of them back.")
                except CoreError as error:  # said after the rerun, above the block, which stays usable
                    st.session_state[f"{key}_refused"] = student_message(error)
                st.session_state.pop(f"{key}_pending_delete", None)
                st.rerun()
            if no.button("Cancel", key=f"{key}_cancel_delete_button"):
                st.session_state.pop(f"{key}_pending_delete", None)
                st.rerun()
        elif titles:
            chosen = st.multiselect(f"{plural.capitalize()} to delete", list(titles), format_func=titles.get,
                                    key=f"{key}_to_delete", placeholder="Choose by title…")
            if st.button("Delete…", disabled=not chosen, key=f"{key}_delete_button"):
                st.session_state[f"{key}_pending_delete"] = chosen
                st.session_state.pop(f"{key}_to_delete", None)
                st.rerun()
        else:
            st.caption(f"No {plural} to delete.")
        if left_out:
            st.caption(left_out)
    if trashed:
        with st.expander(f"Recently deleted {plural} ({len(trashed)}): restore"):
            for index, item in enumerate(trashed):
                text, button = st.columns([4, 1])
                text.markdown(f"**{item.title}** — deleted {item.deleted_at:%Y-%m-%d %H:%M} UTC, restorable until "
                              f"{item.restorable_until:%Y-%m-%d}")
                if button.button("Restore", key=f"{key}_restore_{index}_button"):
                    try:
                        restore(item.key)
                        st.session_state[f"{key}_deleted"] = f"Restored {item.title}."  # shown once, after the rerun
                    except CoreError as error:
                        st.session_state[f"{key}_refused"] = student_message(error)
                    st.rerun()


@st.cache_data(max_entries=64, show_spinner=False)
def model_warnings(key: str) -> tuple[str, ...]:
    """What core.lint found wrong with a registered model: from its card, or checked on load for an older card."""
    card = registry().get(key).card
    return card.warnings if card.warnings is not None else card.checked_warnings(load_model(key))


def show_model_warnings(key: str):
    """Each of a model's warnings as a yellow box (nothing when the model is fine)."""
    for warning in model_warnings(key):
        st.warning(warning, icon="⚠️")


def reset_if_invalid(key: str, is_valid, default):
    """Forget a remembered widget value that is no longer a valid choice (another model or dataset was picked)."""
    if key in st.session_state and not is_valid(st.session_state[key]):
        st.session_state[key] = default


UPLOAD_CHUNK_BYTES = 2**20
KEPT_PHOTO_BYTES = 8 * 2**20  # a session's photos kept for its return to Predict: at most this much, newest first
CAME_BACK = "classroom_came_back"  # set by `page_setup` when the student comes to a page from another
PAGE_VISIT = "classroom_page_visit"  # counted by `page_setup`: each time the student comes to a page from another


def kept_photos(photos: list, key: str) -> tuple[list, bool]:
    """`photos` (name, bytes, id), kept in the session; when the uploader comes back empty because the student left
    the page and returned (Streamlit empties it), the photos kept from before and True. Removing them from the
    uploader forgets them, as does `forget_kept_photos`."""
    kept_key, showing_key = f"{key}_kept", f"{key}_showing_kept"
    if photos:
        st.session_state.pop(CAME_BACK, None)
        kept, total = [], 0
        for photo in reversed(photos):  # the newest first, within KEPT_PHOTO_BYTES
            total += len(photo[1])
            if total > KEPT_PHOTO_BYTES:
                break
            kept.insert(0, photo)
        st.session_state[kept_key], st.session_state[showing_key] = kept, False
        return photos, False
    came_back = st.session_state.pop(CAME_BACK, False)  # used up here, not on the page's first run (it may be cut short)
    if st.session_state.get(kept_key) and (came_back or st.session_state.get(showing_key)):
        st.session_state[showing_key] = True
        return st.session_state[kept_key], True
    forget_kept_photos(key)  # the student took them out of the uploader
    return [], False


def photos_kept(photos: list, key: str) -> list:
    """`kept_photos`, saying so when they are the ones from before, with a button that clears them."""
    photos, from_before = kept_photos(photos, key)
    if from_before:
        left, right = st.columns([4, 1])
        left.caption(f"Shown again: {counted(len(photos), 'photo')} you gave before leaving this page, classified by "
                     "the model chosen above. Upload others to replace them.")
        if right.button("Clear them", key=f"{key}_clear_button"):
            forget_kept_photos(key)
            st.rerun()
    return photos


def forget_kept_photos(key: str):
    st.session_state.pop(f"{key}_kept", None)
    st.session_state.pop(f"{key}_showing_kept", None)


@contextlib.contextmanager
def saved_upload(upload):
    """An uploaded file copied to the registry's uploads folder a megabyte at a time (never a second copy in memory),
    under its own name (a message names it as the student knows it); yields its path and deletes it afterwards."""
    import shutil
    import uuid

    folder = registry().root / UPLOADS_FOLDER / f"{UPLOAD_PREFIX}{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    name = re.sub(r"[^\w .()+-]", "_", Path(upload.name).name).lstrip(".")[:120] or "upload.zip"
    path = folder / name
    try:
        upload.seek(0)
        with open(path, "wb") as file:
            shutil.copyfileobj(upload, file, UPLOAD_CHUNK_BYTES)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def progress_callback(text: str):
    """A progress bar and the `on_progress(done, total)` that fills it: "text: done of total"."""
    bar = st.progress(0.0, text=f"{text}…")
    shown = [-1]

    def on_progress(done: int, total: int):
        percent = 100 * done // max(total, 1)
        if percent != shown[0]:  # at most a hundred updates, however many photos
            shown[0] = percent
            bar.progress(done / max(total, 1), text=f"{text}: {done:,} of {total:,}")

    return on_progress


def forget_upload(key_prefix: str):
    """Give an uploader a new key, so that Streamlit drops the file it holds in memory (its key is `widget_key`)."""
    st.session_state[f"{key_prefix}_nonce"] = st.session_state.get(f"{key_prefix}_nonce", 0) + 1


def show_pending_error(key: str):
    """Show (once) an error message a previous run left in the session state under `key`."""
    if message := st.session_state.pop(key, None):
        st.error(message)


def widget_key(key_prefix: str) -> str:
    """The current key of an uploader that `forget_upload` resets; it ends in `_upload`, so it is never re-assigned."""
    return f"{key_prefix}_{st.session_state.get(f'{key_prefix}_nonce', 0)}_upload"


def course_datasets_list():
    """The course's photo datasets: imported here as which folder dataset, or how to get them (no TensorFlow, no numpy)."""
    from core.catalogue import course_datasets

    for course in course_datasets(registry().root):
        here = f"imported here as `{course.imported_as}`." if course.imported_as else course.how_to_get
        st.markdown(f"**{course.title}** — {course.description} {'✅ ' if course.imported_as else ''}{here}")


def webcam_classes(key: str):
    """Teachable-Machine style: name 2-5 classes, take webcam photos of each (counted, each can be deleted), and make
    them a folder dataset; returns its import report on the run that makes it, else None. Widget keys start with `key`."""
    from core.webcam import ALBUM_KEEP_DAYS, ALBUM_PARAMETER, DEFAULT_NAMES, WebcamClasses, shot_id

    names_before = (classes := st.session_state.get(f"{key}_webcam_classes")) and classes.names
    if classes is None:  # a reload finds its shots by the address
        classes = st.session_state[f"{key}_webcam_classes"] = WebcamClasses.reopen(registry().root, st.query_params.get(ALBUM_PARAMETER))
    classes.refresh()  # another tab on this album took, deleted or renamed: shown here too
    if classes.names and classes.names != names_before:
        st.session_state[f"{key}_webcam_names"] = ", ".join(classes.names)
    names = st.text_input("Class names, separated by commas (2 to 5)", DEFAULT_NAMES, key=f"{key}_webcam_names",
                          persist_state="session")
    names, slip = classes.rename_or_keep(names)  # a slip while typing ("thumbs up" alone) hid the page's photos
    if slip:
        st.error(student_message(slip))
    if note := classes.set_aside_note():
        st.caption(note)
    if st.session_state.get(f"{key}_webcam_class") in classes.renamed:  # the class being photographed was renamed
        st.session_state[f"{key}_webcam_class"] = classes.renamed[st.session_state[f"{key}_webcam_class"]]
    reset_if_invalid(f"{key}_webcam_class", names.__contains__, names[0])
    chosen = st.radio("Take photos of", names, horizontal=True, key=f"{key}_webcam_class", persist_state="session",
                      format_func=lambda name: f"{name} ({classes.counts()[name]})")
    shot = st.camera_input(f"Each photo you take is added to '{chosen}'", key=widget_key(f"{key}_camera"))
    if shot is not None:
        try:
            classes.add(chosen, shot.getvalue())
        except CoreError as error:
            st.session_state[f"{key}_webcam_error"] = student_message(error)
        forget_upload(f"{key}_camera")  # a fresh camera for the next shot
        st.rerun()
    show_pending_error(f"{key}_webcam_error")
    if classes.token:  # the shots are on disk: the address brings them back after a reload
        st.query_params[ALBUM_PARAMETER] = classes.token
    elif ALBUM_PARAMETER in st.query_params:  # forgotten, or the folder cannot be written
        del st.query_params[ALBUM_PARAMETER]
    for name, photos in classes.shots.items():
        st.markdown(f"**{name}**: {len(photos)} photo(s)")
        columns = st.columns(8)
        copies = collections.Counter()  # the same photo twice in a class (the same frame) gets two buttons
        for index, photo in enumerate(photos):  # each button is the photo's own, wherever another tab moved it
            copies[shot := shot_id(photo)] += 1
            columns[index % 8].image(photo, width=72)
            if columns[index % 8].button("Delete", key=f"{key}_delete_{names.index(name)}_{shot}_{copies[shot]}_button"):
                classes.delete(name, shot)
                st.rerun()
    if classes.token:
        st.caption(f"Your photos are kept on this server for {ALBUM_KEEP_DAYS} days, so that reloading the page does "
                   "not lose them; anyone with this page's address can see them.")
        with st.popover("Forget these photos"):
            if st.button("Yes, delete every photo from this server", key=f"{key}_forget_button"):
                classes.forget()
                st.rerun()
    if problem := classes.problem():
        st.info(problem)
    elif st.button("Make a dataset from these photos", type="primary", key=f"{key}_webcam_dataset_button"):
        with guard():
            return classes.to_dataset(registry().root, on_progress=progress_callback("Checking photos"))
    return None


# After the home page's run: the browser has drawn it 0.1-0.2 s after (bench/server_start.py), element code included.
# A whole second, as before, kept the lessons that need TensorFlow waiting longer when opened within 3 s.
PRELOAD_DELAY_SECONDS = 0.3


def preload_in_background():
    """Once per server, after the home page's run: import, then load, what the heavier pages need (core.preload)."""
    from core import preload
    from core.catalogue import ask_download_hosts, list_datasets

    def preload_pages():
        time.sleep(PRELOAD_DELAY_SECONDS)
        # The download hosts are asked apart (1.5 s each behind a firewall that drops connections), for Datasets and Train
        threading.Thread(target=ask_download_hosts, name="download hosts", daemon=True).start()
        here = [info.name for info in list_datasets(registry().root, ask_network=False) if info.available]
        caches = preload.ServerCaches(load_dataset, load_model, load_evaluation, fit_neuron)
        preload.preload_pages(registry(), caches, here, a_page_is_running)

    server.start_once("preload", preload_pages, allowed=in_a_real_server())


def prepare_predictions(key: str):
    """Once per server and model, in the background: classify a generated photo (predict and Grad-CAM traced)."""
    from core.preload import warm_prediction

    server.start_once(f"prepare predictions {key}", lambda: warm_prediction(load_model(key), registry().get(key).card),
                      allowed=in_a_real_server())


WORKER_CHECK_SECONDS = 60  # how often a session showing a Train button makes sure a worker is up


def start_worker_early():
    """While the student is still choosing, have a worker start (it imports TensorFlow and warms up, core.workers):
    the first Train press then waits for its first batch, not for a process to start. Checked once a minute."""
    if not in_a_real_server() or time.monotonic() - st.session_state.get("classroom_worker_checked", -1e9) < \
            WORKER_CHECK_SECONDS:
        return
    st.session_state["classroom_worker_checked"] = time.monotonic()
    with contextlib.suppress(CoreError):  # a queue that cannot be read: the Train button says why
        runner().ensure_worker()


def skip_streamlit_keras_reset():
    """Have Streamlit run `clean_problem_modules` after each script run instead of its own cleanup.

    Done once, when a page first imports this module; a page test checks that it still works.
    """
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:  # a future Streamlit moved it: pages still work, only slower
        return
    if hasattr(script_runner, "_clean_problem_modules"):
        script_runner._clean_problem_modules = clean_problem_modules


def clean_problem_modules():
    """What Streamlit does after every script run, without `keras.backend.clear_session()`: Keras 3 keeps that state
    per thread and each script runs in a new thread, so it freed nothing, yet emptied TensorFlow's kernel cache and ran
    a full garbage collection, 0.28 s of the server's one core after every page run. Matplotlib's cleanup stays."""
    if "matplotlib.pyplot" in sys.modules:
        with contextlib.suppress(Exception):
            sys.modules["matplotlib.pyplot"].close("all")


def skip_streamlit_run_check():
    """Mark Streamlit's "run this with `streamlit run`" warning as shown, so that no page ever checks for it.

    The check, done for the first element a server process draws, calls `inspect.stack()`, which looks up the
    file of every loaded module: 0.1-0.2 s of the first page a new server shows. Pages always run under
    `streamlit run`, where that warning is never printed. A page test checks that the check is skipped.
    """
    from streamlit import delta_generator

    if hasattr(delta_generator, "_use_warning_has_been_displayed"):  # a future Streamlit may rename it
        delta_generator._use_warning_has_been_displayed = True


def in_a_real_server() -> bool:
    """True under `streamlit run`; False in AppTest or with $CNNCLASSROOM_PRELOAD=0.

    AppTest's runtime is `MagicMock(spec=Runtime)`, which `isinstance` takes for a Runtime: the type is compared.
    """
    from streamlit import runtime

    return os.environ.get(server.PRELOAD_ENV) != "0" and runtime.exists() and type(runtime.get_instance()) is runtime.Runtime


def load_element_scripts_early(*patterns: str):
    """Have the browser load these elements' scripts (core.server.CHART_SCRIPT, …, LESSON_SCRIPTS) all at once as soon
    as this page is drawn, so that a later page's first chart, code block, table, metric or input appears at once.
    Sooner, later, or one after another were each slower (docs/performance.md, round two's thirteenth pass).

    For pages that draw their first chart later (Predict, once a photo is chosen) or lead to one (home). It imports
    the very modules Streamlit's frontend imports for those elements, from the same address, so each runs only once.
    `window.classroomScripts` maps each script to "loading", "loaded" or "failed"; a browser test checks it.
    """
    script = server.element_scripts_html(*patterns)
    if script:
        run_fixed_script(script)


def run_fixed_script(script: str):
    """Have the browser run `script`, fixed text of this module or core.server, never made from what a user gave: the
    one place the app runs its own JavaScript (a test checks that there is one)."""
    st.html(script, unsafe_allow_javascript=True)


# Two of Streamlit's internals made cheaper, once, when a page first imports this module; a page test checks each.
skip_streamlit_keras_reset()
skip_streamlit_run_check()
