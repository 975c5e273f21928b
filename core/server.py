"""The Streamlit server's own business, beside the pages: two of Streamlit's internals made cheaper, work started
once per server in a background thread, and the browser told to load the lessons' element scripts early.

Every page imports core.ui, which imports this module: the two changes are made then, once per server process.
Nothing here draws a page.
"""

import contextlib
import functools
import logging
import os
import sys
import threading
from pathlib import Path

import streamlit as st

PRELOAD_ENV = "CNNCLASSROOM_PRELOAD"  # "0" turns the background preloading and the early worker start off
_background_lock = threading.Lock()
_background_started: set[str] = set()


def skip_streamlit_keras_reset():
    """Have Streamlit run `clean_problem_modules` after each script run instead of its own cleanup.

    Done once, when this module is first imported; a page test checks that it still works.
    """
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:  # a future Streamlit moved it: pages still work, only slower
        return
    if hasattr(script_runner, "_clean_problem_modules"):
        script_runner._clean_problem_modules = clean_problem_modules


def clean_problem_modules():
    """What Streamlit does after every script run, without `keras.backend.clear_session()`.

    Streamlit resets Keras after each run. Keras 3 keeps that state per thread and Streamlit runs each
    script in a new thread, so the reset frees nothing here; it does empty TensorFlow's kernel cache and
    run a full garbage collection: 0.28 s of the one core that serves every session, after every page
    run, once any page has imported TensorFlow. Streamlit's other cleanup (closing Matplotlib figures)
    is kept.
    """
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

    return os.environ.get(PRELOAD_ENV) != "0" and runtime.exists() and type(runtime.get_instance()) is runtime.Runtime


def start_once(name: str, function, *arguments) -> threading.Thread | None:
    """Run `function` in a daemon thread, once per server process and `name`; only in a real server (not AppTest)."""
    if not in_a_real_server():
        return None
    with _background_lock:
        if name in _background_started:
            return None
        _background_started.add(name)
    # The server's cached loaders run here without a page: Streamlit warns once per call that there is no page to
    # draw their spinner on, which is what a background thread means.
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)

    def run():
        try:
            function(*arguments)
        except Exception as error:  # background work must never take the server down; the page says what is wrong
            logging.getLogger(__name__).warning("%s failed: %s", name, error)

    thread = threading.Thread(target=run, name=f"cnnclassroom {name}", daemon=True)
    thread.start()
    return thread


# Streamlit's frontend fetches an element's script the first time a page shows such an element. Three are slow to
# start on a small machine: Plotly's (4.7 MB, 1-1.5 s of the browser's time: most of Predict's first upload was
# spent there), the code blocks' highlighter (0.5 s, for "Show the code") and the tables' grid (Convolutions' first
# visit: 1.88 s without it loaded early, 1.50 s with it). The metrics' script brings five more (number formatting);
# the home page showed a metric until its eighth pass, and now loads it for the lessons instead. The lessons' inputs
# and images are small, but a page fetching them while the server imports TensorFlow waited 0.15-0.3 s for each of
# their 25 files (Datasets opened a second after the home page, bench/first_visits.py --dwell 1).
_STATIC_SCRIPTS = Path(st.__file__).parent / "static" / "static" / "js"
CHART_SCRIPT, CODE_SCRIPT, TABLE_SCRIPT = "PlotlyChart.*.js", "StreamlitSyntaxHighlighter.*.js", "DataFrame.*.js"
METRIC_SCRIPT = "Metric.*.js"
LESSON_INPUT_SCRIPTS = ("Selectbox.*.js", "Slider.*.js", "NumberInput.*.js", "Radio.*.js", "Checkbox.*.js",
                        "Button.*.js", "ImageList.*.js")
LESSON_SCRIPTS = (*LESSON_INPUT_SCRIPTS, METRIC_SCRIPT, CHART_SCRIPT, CODE_SCRIPT, TABLE_SCRIPT)  # what the home page loads


@functools.cache
def static_script(pattern: str) -> str | None:
    """The file name of Streamlit's frontend script matching `pattern` (looked up once per server), or None."""
    return next((found.name for found in sorted(_STATIC_SCRIPTS.glob(pattern))), None)


def load_element_scripts_early(*patterns: str):
    """Have the browser load these elements' scripts (CHART_SCRIPT, …, LESSON_SCRIPTS) as soon as this page is
    drawn, all at once, so that a later page's first chart, code block, table, metric or input appears at once.

    Not sooner: Plotly's script holds the browser's main thread for about a second, and loaded as soon as the browser
    was idle it kept one fresh server in two or three from showing the home page for 1.5-2 s more (its text had
    arrived; bench/server_start.py). Not later either: a second after the home page the server is importing
    TensorFlow (core.preload), and scripts fetched then arrived 0.15-0.7 s late: with the loader waiting a second
    more, as it did, Datasets opened a second after the home page took 2.8 s, and 1.6-1.8 s without. Nor one after
    another: the small ones alone took 0.9 s that way, and pushed Plotly's into the student's first click.

    For pages that draw their first chart later (Predict, once a photo is chosen) or lead to one (home). It imports
    the very modules Streamlit's frontend imports for those elements, from the same address, so each runs only once.
    Nothing is drawn; without this the first chart simply waits for its script as before. `window.classroomScripts`
    maps each script to "loading", "loaded" or "failed"; a browser test checks it.
    """
    names = [name for name in map(static_script, patterns) if name]
    if not names:  # a Streamlit that names them otherwise (1.53 did): each element waits for its script as before
        return
    st.html(f"""<script>
(() => {{
  const index = [...document.scripts].find(script => /\\/static\\/js\\/index[^/]*\\.js$/.test(script.src));
  const states = window.classroomScripts = window.classroomScripts || {{}};
  const wanted = {names!r}.filter(name => !(name in states));
  if (!index || !wanted.length) return;
  wanted.forEach(name => {{ states[name] = "loading"; }});
  const load = () => wanted.forEach(name => import(new URL(name, index.src).href).then(
    () => {{ states[name] = "loaded"; }}, () => {{ states[name] = "failed"; }}));
  const drawn = () => document.querySelector("[data-testid=stApp][data-test-script-state=notRunning]")
    && !document.querySelector("[data-testid=stSkeleton]");
  const idle = () => (window.requestIdleCallback || setTimeout)(load);
  const whenDrawn = () => drawn() ? idle() : setTimeout(whenDrawn, 100);
  whenDrawn();
}})();
</script>""", unsafe_allow_javascript=True)


# Two of Streamlit's internals made cheaper, once, when a page first imports core.ui (and so this module); a page test
# checks each.
skip_streamlit_keras_reset()
skip_streamlit_run_check()
