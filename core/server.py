"""The server's own business beside the pages, without Streamlit: work started once per server in a background
thread, the lessons' element scripts that the browser is told to load early (core.ui draws the loader), the
script that closes the page list on a phone, and the page style for small and touch screens.
"""

import functools
import importlib.util
import logging
import threading
from pathlib import Path

PRELOAD_ENV = "CNNCLASSROOM_PRELOAD"  # "0" turns the background preloading and the early worker start off
_background_lock = threading.Lock()
_background_started: set[str] = set()


def start_once(name: str, function, *arguments, allowed: bool = True) -> threading.Thread | None:
    """Run `function` in a daemon thread, once per server process and `name`, when `allowed` (a real server, not
    AppTest: core.ui.in_a_real_server)."""
    if not allowed:
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
CHART_SCRIPT, CODE_SCRIPT, TABLE_SCRIPT = "PlotlyChart.*.js", "StreamlitSyntaxHighlighter.*.js", "DataFrame.*.js"
METRIC_SCRIPT = "Metric.*.js"
LESSON_INPUT_SCRIPTS = ("Selectbox.*.js", "Slider.*.js", "NumberInput.*.js", "Radio.*.js", "Checkbox.*.js",
                        "Button.*.js", "ImageList.*.js")
LESSON_SCRIPTS = (*LESSON_INPUT_SCRIPTS, METRIC_SCRIPT, CHART_SCRIPT, CODE_SCRIPT, TABLE_SCRIPT)  # what the home page loads


@functools.cache
def static_script(pattern: str) -> str | None:
    """The file name of Streamlit's frontend script matching `pattern` (looked up once per server), or None."""
    spec = importlib.util.find_spec("streamlit")  # where Streamlit is installed, without importing it
    if spec is None or not spec.origin:
        return None
    scripts = Path(spec.origin).parent / "static" / "static" / "js"
    return next((found.name for found in sorted(scripts.glob(pattern))), None)


def element_scripts_html(*patterns: str) -> str | None:
    """The script that has the browser load these elements' scripts once the page is drawn (see
    core.ui.load_element_scripts_early); None when this Streamlit names none of them."""
    names = [name for name in map(static_script, patterns) if name]
    if not names:  # a Streamlit that names them otherwise (1.53 did): each element waits for its script as before
        return None
    return f"""<script>
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
</script>"""


# Streamlit closes its own page list on a phone once a page is chosen; ours (page links) stayed open over 300 of the
# 390 px. A tap on a link of the sidebar closes it where it lies over the page (never beside it, on a wider screen).
CLOSE_MENU_ON_A_PHONE = """<script>
(() => {
  if (window.classroomMenuCloses) return;
  window.classroomMenuCloses = true;
  document.addEventListener("click", event => {
    const sidebar = document.querySelector("[data-testid=stSidebar]");
    const main = document.querySelector("[data-testid=stMain]");
    if (!sidebar || !main || !event.target.closest("[data-testid=stSidebar] [data-testid=stPageLink-NavLink]")) return;
    if (sidebar.getBoundingClientRect().right <= main.getBoundingClientRect().left + 1) return;  // beside the page
    setTimeout(() => document.querySelector("[data-testid=stSidebarCollapseButton] button")?.click(), 0);
  }, true);
})();
</script>"""


# Rules for small and touch screens, a style alone (nothing drawn): a link's label wraps onto a second line
# (Streamlit cuts it at one: the home page's lessons lost their times, "… (ab", on a phone and some on a laptop);
# Plotly's toolbar, always shown where there is no mouse to hover, no longer covers charts' titles and values there;
# a table's toolbar, always shown there too, takes its own line above the table instead of floating over what
# is above it (Datasets' "Table: 0..1" tab could not be tapped, Models' Family picker was covered); and on a narrow
# screen a picture in a FULL_SIZE_ON_A_PHONE container keeps its own size and scrolls sideways (Datasets' numbered
# pixels were 5 px tall, shrunk to the phone's width), and only there is a PHONE_ONLY container drawn.
FULL_SIZE_ON_A_PHONE = "full_size_on_a_phone"  # the start of the key of a container whose picture keeps its size
PHONE_ONLY = "on_a_phone_only"  # the start of the key of a container drawn on a narrow screen only
_FULL_SIZE, _ONLY = f"[class*='st-key-{FULL_SIZE_ON_A_PHONE}']", f"[class*='st-key-{PHONE_ONLY}']"
PAGE_STYLE = ("<style>[data-testid='stMain'] [data-testid='stPageLink-NavLink'] span { white-space: normal; }"
              "@media (hover: none) { .modebar-container { display: none; }"
              " [data-testid='stDataFrame'] [data-testid='stElementToolbar'] { position: relative; top: 0;"
              " margin-left: auto; width: fit-content; } }"
              f"@media (max-width: 640px) {{ {_FULL_SIZE} [data-testid='stImageContainer'] {{ overflow-x: auto; }}"
              f" {_FULL_SIZE} img {{ width: max-content !important; max-width: none !important; }} }}"
              f"@media not all and (max-width: 640px) {{ {_ONLY} {{ display: none; }} }}</style>")
