"""Server start → home page rendered in a real browser, and no TensorFlow in the server for it.

Starts `streamlit run app.py` headless on a loopback port with an empty temporary registry, opens the
home page in Debian's Chromium (Playwright) as soon as the server answers, and stops the clock when the
script run has finished and the title is on screen. Target <= 3 s. Then checks /proc/<pid>/maps of the
server: TensorFlow's library must not be loaded. Repeated with a fresh server each time.

    python bench/server_start.py            # 5 starts
    python bench/server_start.py --quick    # 2 starts
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
    seconds, healthy_seconds, with_tensorflow = [], [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGUMENTS)
        for attempt in range(starts):
            port = free_port()
            page = browser.new_page()
            started = time.perf_counter()
            process = start_server(port)
            try:
                wait_healthy(port)
                healthy_seconds.append(time.perf_counter() - started)
                page.goto(f"http://127.0.0.1:{port}/")
                page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=60_000)
                page.get_by_text("CNN Classroom", exact=False).first.wait_for(timeout=60_000)
                page.get_by_text("Model registry").first.wait_for(timeout=60_000)
                seconds.append(time.perf_counter() - started)
                with_tensorflow.append(tensorflow_loaded(process.pid))
            finally:
                page.close()
                stop_server(process)
            print(f"start {attempt + 1}/{starts}: healthy after {healthy_seconds[-1]:.2f} s, home page rendered after "
                  f"{seconds[-1]:.2f} s, TensorFlow loaded in the server: {with_tensorflow[-1]}  [{load_average()}]",
                  flush=True)
        browser.close()
    report("server start → home page rendered (median, max)", f"{statistics.median(seconds):.2f} s, {max(seconds):.2f} s",
           f"<= {TARGET_SECONDS} s", statistics.median(seconds) <= TARGET_SECONDS)
    report("server start → health check answers (median)", f"{statistics.median(healthy_seconds):.2f} s")
    report("TensorFlow imported by the server for the home page", "yes" if any(with_tensorflow) else "no",
           "no", not any(with_tensorflow))


if __name__ == "__main__":
    main()
