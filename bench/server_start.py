"""Server start → home page rendered in a real browser, and no TensorFlow in the server for it.

Starts `streamlit run app.py` headless on a loopback port with an empty temporary registry, opens the
home page in Debian's Chromium (Playwright) as soon as the server answers, and stops the clock when the
script run has finished and the title is on screen. Target <= 3 s. Then checks /proc/<pid>/maps of the
server: TensorFlow's library must not be loaded. Repeated with a fresh server each time, for two browsers:

- a first visit: a new port and a new browser profile each time, so Chromium downloads and compiles
  Streamlit's frontend (about 2 MB of JavaScript) every time;
- a returning browser: the same port and browser profile throughout (visited once before the timed starts),
  as when a teacher restarts the server for the next lesson. Streamlit serves its frontend as immutable
  files, so the browser reuses its copy.

    python bench/server_start.py            # 5 starts of each kind
    python bench/server_start.py --quick    # 2 starts of each kind
Needs `pip install playwright` and `apt-get install chromium` (see tests/browser/test_browser.py).
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from common import PROJECT, header, load_average, report, temporary_registry

TARGET_SECONDS = 3.0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGUMENTS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                      "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=PROJECT, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
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


def stop_server(process: subprocess.Popen):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def tensorflow_loaded(pid: int) -> bool:
    """True when the process has TensorFlow's shared library mapped."""
    return "libtensorflow" in Path(f"/proc/{pid}/maps").read_text()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    starts = 2 if arguments.quick else arguments.starts
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    temporary_registry("server-start")
    header("server start → home page rendered in Chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGUMENTS)
        first_visits = time_starts(browser, starts, returning=False)
        returning = time_starts(browser, starts, returning=True)
        browser.close()
    for label, (seconds, healthy_seconds, with_tensorflow) in (("first visit", first_visits),
                                                               ("returning browser", returning)):
        report(f"server start → home page rendered, {label} (median, max)",
               f"{statistics.median(seconds):.2f} s, {max(seconds):.2f} s", f"<= {TARGET_SECONDS} s",
               statistics.median(seconds) <= TARGET_SECONDS)
        report(f"server start → health check answers, {label} (median)", f"{statistics.median(healthy_seconds):.2f} s")
    any_tensorflow = any(first_visits[2] + returning[2])
    report("TensorFlow imported by the server for the home page", "yes" if any_tensorflow else "no", "no",
           not any_tensorflow)


def time_starts(browser, starts: int, returning: bool):
    """(seconds to the rendered home page, seconds to the health check, TensorFlow loaded?) for each start."""
    label = "returning browser" if returning else "first visit"
    context = browser.new_context() if returning else None
    port = free_port()
    seconds, healthy_seconds, with_tensorflow = [], [], []
    for attempt in range(-1 if returning else 0, starts):  # a returning browser has seen the page once before
        if not returning:
            port, context = free_port(), browser.new_context()
        page = context.new_page()
        started = time.perf_counter()
        process = start_server(port)
        try:
            wait_healthy(port)
            healthy = time.perf_counter() - started
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=60_000)
            page.get_by_text("CNN Classroom", exact=False).first.wait_for(timeout=60_000)
            page.get_by_text("Model registry").first.wait_for(timeout=60_000)
            rendered = time.perf_counter() - started
            tensorflow = tensorflow_loaded(process.pid)
        finally:
            page.close()
            if not returning:
                context.close()
            stop_server(process)
        if attempt < 0:
            continue
        seconds.append(rendered)
        healthy_seconds.append(healthy)
        with_tensorflow.append(tensorflow)
        print(f"{label}, start {attempt + 1}/{starts}: healthy after {healthy:.2f} s, home page rendered after "
              f"{rendered:.2f} s, TensorFlow loaded in the server: {tensorflow}  [{load_average()}]", flush=True)
    if returning:
        context.close()
    return seconds, healthy_seconds, with_tensorflow


if __name__ == "__main__":
    main()
