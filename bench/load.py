"""Load test: many simulated students browsing results and predicting on a real CNN Classroom server.

Each simulated session speaks Streamlit's own protocol, like a browser tab: a websocket carrying
protobuf messages (BackMsg / ForwardMsg), and file uploads over HTTP with the XSRF cookie and header.
A session opens Home, Models and Compare, and opens Predict, picks a photo and uploads it (now and then a
damaged one, which must come back as a clear error). Each wait is timed as a browser user has it: opening
Predict is one, the upload until the prediction is drawn another. A separate probe asks /_stcore/health
twice a second.

    python bench/load.py                        # 30 sessions for 3 minutes on a server it starts itself
    python bench/load.py --sessions 30 --seconds 300
    python bench/load.py --url http://127.0.0.1:8501   # an already running server
    python bench/load.py --quick                # 5 sessions for 20 seconds: a smoke check

The server it starts serves a temporary copy of $CNNCLASSROOM_REGISTRY (or registry/), which needs at
least one model (`python -m core warmup`). Before the sessions start, one session opens every page once
(as a teacher would before class: TensorFlow, the models and the test set load then); the "fast CNN"
trains on all of Fashion-MNIST in the background during the whole run (--no-train to skip). It prints
one line per kind of wait and the p95; the exit status is 1 if anything failed. tests/robustness/test_server.py runs the same code for 30
sessions x 30 seconds.
"""

import argparse
import contextlib
import dataclasses
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests
from websockets.sync.client import connect

PROJECT = Path(__file__).resolve().parent.parent
XSRF_COOKIE = "_streamlit_xsrf"
ACTION_TIMEOUT = 180  # seconds one page run may take before it counts as a failure
HEALTH_TIMEOUT = 30  # seconds /_stcore/health may take before the server counts as not answering
ACTIONS = {"home": 2, "models": 2, "compare": 1, "predict": 4, "predict_damaged": 1}  # relative weights
THINK_SECONDS = (1.0, 5.0)  # pause between a session's clicks
CHOOSE_FILE_SECONDS = (1.0, 3.0)  # on Predict, picking a photo before it uploads
PAGES = {"home": "", "models": "Models", "compare": "Compare", "predict": "Predict", "predict_damaged": "Predict"}


@dataclass
class PageRun:
    """What one script run sent back: its elements by kind, errors shown, exceptions raised."""

    status: str | None = None
    errors: list[str] = field(default_factory=list)  # st.error bodies
    successes: list[str] = field(default_factory=list)  # st.success bodies
    exceptions: list[str] = field(default_factory=list)  # uncaught exceptions (a crashed page)
    uploader_ids: list[str] = field(default_factory=list)
    element_count: int = 0


@dataclass
class LoadResult:
    """Latencies per action kind, failures, and the health probe's record."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    health_checks: int = 0
    health_failures: int = 0
    uploads_resent: int = 0
    health_latencies: list[float] = field(default_factory=list)
    actions_per_session: dict[int, int] = field(default_factory=dict)
    sessions: int = 0
    seconds: float = 0.0

    @property
    def waits(self) -> int:
        return sum(len(values) for values in self.latencies.values())

    def all_latencies(self) -> list[float]:
        return [value for values in self.latencies.values() for value in values]


def percentile(values, fraction):
    """The value below which `fraction` of `values` lie (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(fraction * len(ordered) + 0.5)) - 1))]


class BrowserSession:
    """One browser tab: a websocket to /_stcore/stream and an HTTP session holding the XSRF cookie."""

    def __init__(self, base_url: str):
        from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: F401  (fails early if streamlit is missing)

        self.base_url = base_url.rstrip("/")
        self.http = requests.Session()
        self.http.get(f"{self.base_url}/_stcore/health", timeout=30).raise_for_status()
        self.xsrf = self.http.cookies.get(XSRF_COOKIE, "")
        websocket_url = self.base_url.replace("http://", "ws://", 1) + "/_stcore/stream"
        self._stack = contextlib.ExitStack()
        self.websocket = self._stack.enter_context(connect(
            websocket_url,
            subprotocols=["streamlit", self.xsrf] if self.xsrf else ["streamlit"],
            additional_headers={"Origin": self.base_url, "Cookie": f"{XSRF_COOKIE}={self.xsrf}"},
            max_size=None,
            open_timeout=60,
        ))
        self.session_id = None
        self.pages = {}  # page name ("" for Home) -> page_script_hash
        self.resent = 0  # uploads sent again after the server had closed the idle connection

    def close(self):
        with contextlib.suppress(Exception):
            self._stack.close()
        self.http.close()

    def run_page(self, page: str, widget_states=()) -> PageRun:
        """Run a page (by its name, "" for Home) with these widget values; wait until the run finishes."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ClientState_pb2 import ClientState
        from streamlit.proto.WidgetStates_pb2 import WidgetStates

        state = ClientState(query_string="", page_name=page, widget_states=WidgetStates(widgets=list(widget_states)))
        if page in self.pages:
            state.page_script_hash = self.pages[page]
        self._send(BackMsg(rerun_script=state))
        return self._read_run()

    def upload(self, name: str, data: bytes, mime: str):
        """Upload one file the way the browser does; returns the widget value that points at it."""
        from streamlit.proto.Common_pb2 import UploadedFileInfo

        urls = self.upload_urls(name)
        reply = self.put_file(urls.upload_url, name, data, mime)
        reply.raise_for_status()
        return UploadedFileInfo(name=name, size=len(data), file_id=urls.file_id, file_urls=urls)

    def put_file(self, upload_url: str, name: str, data: bytes, mime: str, xsrf_header: str | None = None, http=None):
        """PUT a file to an upload URL with this session's XSRF token; xsrf_header overrides it ("" sends none).

        The server closes a kept-alive connection after 5 idle seconds (uvicorn's default); a request sent
        on it just then is reset. A browser then sends it again on a new connection, and so does this, once.
        """
        token = self.xsrf if xsrf_header is None else xsrf_header
        headers = {"X-Xsrftoken": token} if token else {}
        url = f"{self.base_url}{upload_url}" if upload_url.startswith("/") else upload_url
        http = http or self.http
        try:
            return http.put(url, files={"file": (name, data, mime)}, headers=headers, timeout=ACTION_TIMEOUT)
        except requests.ConnectionError:
            self.resent += 1
            return http.put(url, files={"file": (name, data, mime)}, headers=headers, timeout=ACTION_TIMEOUT)

    def upload_urls(self, name: str):
        """Ask the server where to upload a file (the browser does this before every upload)."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.Common_pb2 import FileURLsRequest

        request_id = uuid.uuid4().hex
        self._send(BackMsg(file_urls_request=FileURLsRequest(request_id=request_id, file_names=[name],
                                                             session_id=self.session_id)))
        deadline = time.monotonic() + ACTION_TIMEOUT
        while True:
            message = self._receive(deadline)
            if message.WhichOneof("type") == "file_urls_response" and message.file_urls_response.response_id == request_id:
                break
        response = message.file_urls_response
        if response.error_msg:
            raise RuntimeError(f"upload refused: {response.error_msg}")
        return response.file_urls[0]

    def predict(self, name: str, data: bytes, mime: str) -> PageRun:
        """Open Predict, upload one photo into its uploader, and run the page with it."""
        return self.upload_and_run(self.run_page("Predict"), name, data, mime)

    def upload_and_run(self, page: PageRun, name: str, data: bytes, mime: str) -> PageRun:
        """Upload one photo into the uploader of a page just run (Predict), and run the page with it."""
        from streamlit.proto.Common_pb2 import FileUploaderState
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        if not page.uploader_ids:
            raise RuntimeError(f"the Predict page showed no uploader (errors: {page.errors}, exceptions: {page.exceptions})")
        info = self.upload(name, data, mime)
        state = WidgetState(id=page.uploader_ids[0], file_uploader_state_value=FileUploaderState(uploaded_file_info=[info]))
        return self.run_page("Predict", [state])

    def _send(self, message):
        self.websocket.send(message.SerializeToString())

    def _receive(self, deadline):
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no answer from the server in time")
        message = ForwardMsg()
        message.ParseFromString(self.websocket.recv(timeout=remaining))
        if message.WhichOneof("type") == "new_session":
            self.session_id = message.new_session.initialize.session_id or self.session_id
            self.pages = {page.url_pathname: page.page_script_hash for page in message.new_session.app_pages}
        return message

    def _read_run(self) -> PageRun:
        from streamlit.proto.Alert_pb2 import Alert
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        run, deadline = PageRun(), time.monotonic() + ACTION_TIMEOUT
        while run.status is None:
            message = self._receive(deadline)
            kind = message.WhichOneof("type")
            if kind == "script_finished":
                status = ForwardMsg.ScriptFinishedStatus.Name(message.script_finished)
                if status != "FINISHED_EARLY_FOR_RERUN":
                    run.status = status
            elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                element = message.delta.new_element
                run.element_count += 1
                element_kind = element.WhichOneof("type")
                if element_kind == "exception":
                    run.exceptions.append(f"{element.exception.type}: {element.exception.message}")
                elif element_kind == "alert" and element.alert.format == Alert.ERROR:
                    run.errors.append(element.alert.body)
                elif element_kind == "alert" and element.alert.format == Alert.SUCCESS:
                    run.successes.append(element.alert.body)
                elif element_kind == "file_uploader":
                    run.uploader_ids.append(element.file_uploader.id)
        return run


def sample_photos(count: int = 6) -> list[tuple[str, bytes]]:
    """JPEG photos made from real Fashion-MNIST test images, enlarged like a phone picture would be."""
    from PIL import Image

    sys.path.insert(0, str(PROJECT))
    from core.datasets import load_dataset

    images = load_dataset("fashion_mnist", validation_fraction=0).x_test[:count]
    photos = []
    for index, image in enumerate(images):
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0]).resize((224, 224)).convert("RGB").save(buffer, "JPEG", quality=90)
        photos.append((f"photo_{index}.jpg", buffer.getvalue()))
    return photos


def damaged_photo(photos) -> tuple[str, bytes]:
    """A JPEG cut in half, as a photo that did not finish uploading from a phone."""
    name, data = photos[0]
    return f"damaged_{name}", data[: len(data) // 2]


def run_session(base_url, seconds, photos, result, lock, seed):
    """One simulated student: random actions until the time is up; every failure is recorded."""
    rng = random.Random(seed)
    try:
        session = BrowserSession(base_url)
    except Exception as error:
        with lock:
            result.failures.append(f"session {seed}: could not connect: {type(error).__name__}: {error}")
        return
    deadline = time.monotonic() + seconds
    try:
        session.run_page("")
        while time.monotonic() < deadline:
            action = rng.choices(list(ACTIONS), weights=list(ACTIONS.values()))[0]
            waits = []  # (what the student waited for, seconds)
            try:
                problem = _do(session, action, photos, rng, waits)
            except Exception as error:
                problem = f"{type(error).__name__}: {error}"
            with lock:
                for kind, seconds_waited in waits:
                    result.latencies.setdefault(kind, []).append(seconds_waited)
                result.actions_per_session[seed] = result.actions_per_session.get(seed, 0) + 1
                if problem:
                    result.failures.append(f"session {seed} {action}: {problem}")
            if problem and "Timeout" in problem:
                break
            time.sleep(rng.uniform(*THINK_SECONDS))  # a student looks at the page before clicking again
    finally:
        with lock:
            result.uploads_resent += session.resent
        session.close()


def _do(session: BrowserSession, action: str, photos, rng, waits: list) -> str | None:
    """Perform one action, appending each wait it had to `waits`; return what went wrong, or None.

    A prediction is two waits, as in a browser: the Predict page opening ("open Predict"), then, after
    the student has picked a file, the upload until the prediction is drawn ("predict").
    """
    if action in ("predict", "predict_damaged"):
        name, data = rng.choice(photos) if action == "predict" else damaged_photo(photos)
        page = _timed(waits, "open Predict", session.run_page, "Predict")
        if page.exceptions or page.status != "FINISHED_SUCCESSFULLY":
            return f"the Predict page failed: {page.exceptions or page.status}"
        time.sleep(rng.uniform(*CHOOSE_FILE_SECONDS))
        run = _timed(waits, action, session.upload_and_run, page, name, data, "image/jpeg")
        if action == "predict":
            expected_problem = None if run.successes and not run.errors else f"no prediction shown (errors: {run.errors})"
        else:
            explained = any("truncated or damaged" in error for error in run.errors)
            expected_problem = None if explained else f"the damaged file was not explained (errors: {run.errors})"
    else:
        run = _timed(waits, action, session.run_page, PAGES[action])
        expected_problem = None if run.element_count else "the page drew nothing"
    if run.exceptions:
        return f"page crashed: {run.exceptions}"
    if run.status != "FINISHED_SUCCESSFULLY":
        return f"the run ended with {run.status}"
    return expected_problem


def _timed(waits: list, kind: str, function, *arguments):
    """Call function(*arguments) and append (kind, seconds it took) to waits, also when it raises."""
    started = time.perf_counter()
    try:
        return function(*arguments)
    finally:
        waits.append((kind, time.perf_counter() - started))


def probe_health(base_url, stop: threading.Event, result: LoadResult, lock):
    """Ask /_stcore/health twice a second until stopped."""
    while not stop.wait(0.5):
        started = time.perf_counter()
        try:
            ok = requests.get(f"{base_url}/_stcore/health", timeout=HEALTH_TIMEOUT).text == "ok"
        except requests.RequestException:
            ok = False
        with lock:
            result.health_checks += 1
            result.health_failures += not ok
            result.health_latencies.append(time.perf_counter() - started)


def warm_up(base_url: str, photos):
    """Every page once before class starts, as a teacher trying the app would: the server imports TensorFlow,
    loads the models and the test set once (several seconds), instead of during the first students' clicks."""
    session = BrowserSession(base_url)
    try:
        for page in PAGES.values():
            run = session.predict(*photos[0], "image/jpeg") if page == "Predict" else session.run_page(page)
            if run.exceptions or run.status != "FINISHED_SUCCESSFULLY":
                raise RuntimeError(f"the warm-up run of {page or 'Home'} failed: {run.exceptions or run.errors}")
    finally:
        session.close()


def run_load(base_url: str, sessions: int = 30, seconds: float = 180, photos=None, ramp_seconds: float = 5,
             warm: bool = True) -> LoadResult:
    """Run `sessions` simulated students for `seconds` against a server; return latencies and failures."""
    photos = photos or sample_photos()
    if warm:
        warm_up(base_url, photos)
    result, lock, stop = LoadResult(sessions=sessions), threading.Lock(), threading.Event()
    probe = threading.Thread(target=probe_health, args=(base_url, stop, result, lock), daemon=True)
    probe.start()
    started = time.monotonic()
    threads = []
    for index in range(sessions):
        thread = threading.Thread(target=run_session, args=(base_url, seconds, photos, result, lock, index), daemon=True)
        thread.start()
        threads.append(thread)
        time.sleep(ramp_seconds / max(1, sessions))  # students arrive over a few seconds, not all in one instant
    for thread in threads:
        thread.join(seconds + 2 * ACTION_TIMEOUT)
        if thread.is_alive():
            result.failures.append("a session did not finish in time")
    stop.set()
    probe.join(15)
    result.seconds = time.monotonic() - started
    return result


def report(result: LoadResult) -> str:
    """One line per action kind and the totals, p95 included."""
    lines = [f"{result.sessions} sessions, {result.seconds:.0f} s, {result.waits} waits, {len(result.failures)} failures"]
    for action, values in sorted(result.latencies.items()):
        lines.append(f"  {action:<16} n={len(values):<5} p50={percentile(values, 0.5):6.2f}s  "
                     f"p95={percentile(values, 0.95):6.2f}s  max={max(values):6.2f}s")
    everything = result.all_latencies()
    lines.append(f"  {'all waits':<16} n={len(everything):<5} p50={percentile(everything, 0.5):6.2f}s  "
                 f"p95={percentile(everything, 0.95):6.2f}s")
    lines.append(f"  health probe     {result.health_checks} checks, {result.health_failures} failed, "
                 f"p95={percentile(result.health_latencies, 0.95):.3f}s")
    lines.append(f"  uploads sent again on a new connection (the server had closed the idle one): {result.uploads_resent}")
    lines += [f"  failure: {failure}" for failure in result.failures[:20]]
    return "\n".join(lines)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Runs `streamlit` with a sys.audit hook that logs every file the server opens for writing, creates, moves or
# deletes (argv[1] is the log), so a test can check that it writes only into its data folders.
AUDITED_STREAMLIT = r"""
import os, sys
log = open(sys.argv[1], "a", buffering=1)
CHANGES = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "shutil.rmtree", "os.symlink", "os.chmod", "os.truncate",
           "shutil.copyfile", "shutil.move", "os.link", "sqlite3.connect"}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
def audit(event, arguments):
    if event == "open" and arguments and isinstance(arguments[0], (str, bytes, os.PathLike)):
        mode, flags = arguments[1], arguments[2] if len(arguments) > 2 else 0
        if (isinstance(mode, str) and set(mode) & set("wax+")) or (mode is None and isinstance(flags, int) and flags & WRITE_FLAGS):
            log.write("open " + os.path.abspath(os.fsdecode(arguments[0])) + "\n")
    elif event in CHANGES and arguments and isinstance(arguments[0], (str, bytes, os.PathLike)):
        log.write(event + " " + os.path.abspath(os.fsdecode(arguments[0])) + "\n")
sys.addaudithook(audit)
sys.argv = ["streamlit", *sys.argv[2:]]
from streamlit.web.cli import main
main()
"""


@contextlib.contextmanager
def serve(registry_root=None, port=None, extra_env=None, log_path=None, audit_log=None, options=()):
    """Start `streamlit run app.py` on a free port (config from .streamlit/config.toml); yield (url, process).

    With audit_log, every file the server writes, creates, moves or deletes is listed in that file.
    """
    port = port or free_port()
    env = dict(os.environ, **(extra_env or {}))
    if registry_root is not None:
        env["CNNCLASSROOM_REGISTRY"] = str(registry_root)
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    arguments = ["run", "app.py", "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
                 *options]
    launcher = ["-c", AUDITED_STREAMLIT, str(audit_log)] if audit_log else ["-m", "streamlit"]
    process = subprocess.Popen(
        [sys.executable, *launcher, *arguments],
        cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/_stcore/health", timeout=2).text == "ok":
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start (exit status {process.poll()}); see {log_path}")
            time.sleep(0.3)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if log_path:
            log.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="an already running server (default: start one on a free port)")
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--no-train", action="store_true", help="do not train a model in the background meanwhile")
    parser.add_argument("--quick", action="store_true", help="a smoke check: 5 sessions for 20 seconds")
    parser.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.sessions, arguments.seconds = 5, 20
    sys.path.insert(0, str(PROJECT))
    from common import header, report as report_line, stop_workers  # bench/common.py
    from core.config import PRESETS
    from core.jobs import JobRunner
    from core.registry import Registry

    header(f"load: {arguments.sessions} sessions for {arguments.seconds:.0f} s")
    registry = Registry()
    if not registry.list_entries():
        print(f"The registry at {registry.root} is empty; run `python -m core warmup` first.", file=sys.stderr)
        return 2
    photos = sample_photos()
    with contextlib.ExitStack() as stack:
        if arguments.url:
            url = arguments.url
        else:  # a copy of the registry, so the run adds no model and no job to the real one
            registry = copy_of_registry(registry, Path(stack.enter_context(tempfile.TemporaryDirectory())))
            url = stack.enter_context(serve(registry.root))[0]
        warm_up(url, photos)
        if not arguments.no_train:
            # The "fast CNN" on all 54,000 images with a new seed: a real training that outlasts the run.
            config = dataclasses.replace(PRESETS["fast CNN"], epochs=max(3, int(arguments.seconds // 15)),
                                         seed=random.randrange(10**6))
            JobRunner(registry).submit(config)
            stack.callback(stop_workers, registry)
            print(f"training {config.title} ({config.key}) in the background", flush=True)
        load_started = time.time()
        result = run_load(url, arguments.sessions, arguments.seconds, photos, warm=False)
        if not arguments.no_train:
            print(training_overlap(registry, config.key, load_started, time.time()), flush=True)
    print(report(result))
    p95 = percentile(result.all_latencies(), 0.95)
    report_line("p95 of a wait (a page opening, or an upload until the prediction is drawn)", f"{p95:.2f} s", "≤ 1 s", p95 <= 1)
    report_line("errors (page crashes, unexplained bad files, failed health checks)",
                str(len(result.failures) + result.health_failures), "0", not result.failures and not result.health_failures)
    if arguments.json:
        print(json.dumps({"sessions": result.sessions, "seconds": round(result.seconds, 1), "waits": result.waits,
                          "failures": len(result.failures), "p95_seconds": p95,
                          "health_checks": result.health_checks, "health_failures": result.health_failures}))
    return 1 if result.failures or result.health_failures else 0


def copy_of_registry(registry, folder: Path):
    """The registry's models and index copied into `folder` (locks, journals and jobs left behind)."""
    from core.registry import Registry

    root = folder / "registry"
    import sqlite3

    from core.registry import INDEX_FILE

    with contextlib.closing(sqlite3.connect(registry.root / INDEX_FILE)) as connection:  # the write-ahead log into the file
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copytree(registry.root, root, ignore=shutil.ignore_patterns("*.lock", "*-wal", "*-shm", "worker.*", "jobs.sqlite"))
    return Registry(root)


def training_overlap(registry, key: str, load_started: float, load_ended: float) -> str:
    """How long the background training ran during the load, e.g. 'training ran 90 s of the 90 s load'."""
    from core.jobs import JobQueue

    with JobQueue(registry.root).connect() as connection:
        job = connection.execute("SELECT status, started, finished FROM jobs WHERE key = ?", (key,)).fetchone()
    if job is None or job["started"] is None:
        return "the background training never started"
    ran = min(job["finished"] or load_ended, load_ended) - max(job["started"], load_started)
    return (f"background training ran {max(0.0, ran):.0f} s of the {load_ended - load_started:.0f} s load "
            f"(status at the end: {job['status']})")


if __name__ == "__main__":
    sys.exit(main())
