"""Shared helpers for the browser benchmarks: a `streamlit run` server on a loopback port, Debian's Chromium.

Each server gets its own registry (`$CNNCLASSROOM_REGISTRY`) and is stopped by its pid, its worker processes too.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import PROJECT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGUMENTS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                      "--disable-sync", "--no-first-run"]
FINISHED = "[data-testid=stApp][data-test-script-state=notRunning]"
HOME_MARKER = "course photo datasets imported"  # text in the home page's last column, whatever the registry holds
# Every element drawn: Streamlit shows a grey skeleton while an element's script loads, and a Plotly chart's testid
# appears before Plotly has drawn it. Without this a page could count as rendered with its charts still grey.
DRAWN = """() => !document.querySelector('[data-testid=stMain] [data-testid=stSkeleton]')
    && [...document.querySelectorAll('[data-testid=stPlotlyChart]')].every(chart => chart.querySelector('.main-svg'))"""


def wait_until_drawn(page, timeout=120_000):
    """Wait until the script run has finished and every element on the page is drawn (see DRAWN)."""
    page.wait_for_selector(FINISHED, timeout=timeout)
    page.wait_for_function(DRAWN, timeout=timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, app: str = "app.py", registry: Path | None = None, cwd: Path = PROJECT,
                 **extra_environment) -> subprocess.Popen:
    """`streamlit run APP` headless on 127.0.0.1:PORT (returns at once; see `wait_healthy`)."""
    environment = {**os.environ, **extra_environment}
    if registry is not None:
        environment["CNNCLASSROOM_REGISTRY"] = str(registry)
    return subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", app, "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=cwd, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def wait_healthy(port: int, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).read() == b"ok":
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("streamlit did not become healthy")


def stop_server(process: subprocess.Popen, registry: Path | None = None):
    """SIGTERM the server (then kill it), and the worker processes it started for `registry`, by pid."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if registry is not None:
        stop_registry_workers(registry)


def stop_registry_workers(registry: Path):
    """SIGTERM every `python -m core --root REGISTRY worker` process (found in /proc by its command line)."""
    marker = f"--root\0{registry}\0worker"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "cmdline").read_text():
                os.kill(int(entry.name), signal.SIGTERM)
        except (OSError, ProcessLookupError):
            pass


@contextlib.contextmanager
def page_on_a_fresh_server(browser, registry: Path, **extra_environment):
    """A browser page and the port of a new server on `registry`, healthy; both closed (and its workers) after."""
    port = free_port()
    process = start_server(port, registry=registry, **extra_environment)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        wait_healthy(port)
        yield context.new_page(), port
    finally:
        context.close()
        stop_server(process, registry)


def launch_chromium(playwright, extra_arguments=()):
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install chromium")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGUMENTS + list(extra_arguments))


def open_home_page(page, port: int, marker: str = HOME_MARKER):
    """Open the home page and wait until its script run has finished and `marker` is on screen."""
    page.goto(f"http://127.0.0.1:{port}/")
    page.get_by_text(marker).first.wait_for(timeout=120_000)
    wait_until_drawn(page)


def train_tiny_cnn(registry: Path):
    """A small real CNN in `registry` (1,000 Fashion-MNIST images, 1 epoch), trained in a child process."""
    subprocess.run([sys.executable, "-m", "core", "--root", str(registry), "train", "--family", "cnn", "--filters",
                    "16,32", "--train-subset", "1000", "--epochs", "1"], cwd=PROJECT, check=True,
                   stdout=subprocess.DEVNULL)


@contextlib.contextmanager
def folder_with_a_trained_cnn(prefix: str):
    """A scratch folder holding `trained/`, a registry with `train_tiny_cnn`'s model; removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        train_tiny_cnn(folder / "trained")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def copy_of_trained(folder: Path, name: str) -> Path:
    """A copy of `folder/trained` as `folder/name`, without its locks and SQLite side files: a registry for one server."""
    registry = folder / name
    shutil.copytree(folder / "trained", registry, ignore=shutil.ignore_patterns("*.lock", "*-wal", "*-shm"))
    return registry
