"""A page's run behind a firewall that drops connections to the download hosts, as a ratio to the same run online.

The home page, Datasets and Train say which catalogue datasets Keras could download, which means asking the download
hosts (core.network.check_reachable, at most 1.5 s each). Behind a firewall that drops the connection, each question
waits that long. Each page runs in AppTest (the script a browser triggers) against two stand-ins on loopback: hosts
that answer (online), and hosts whose connection queue is full, so that a connection never completes (the firewall).
Printed per page: the run behind the firewall once its answers are older than REACHABILITY_TTL, less the same run
online (target: at most 0.5 s more, so no question was waited for), the ratio of the two, and the server's very first
question behind the firewall (the one wait left, for information; the home page asks nothing).

    python bench/download_hosts.py            # 3 runs of each
    python bench/download_hosts.py --quick    # 1 run of each
"""

import argparse
import os
import socket
import statistics
import time

from common import PROJECT, header, report, temporary_registry

PAGES = {"home page": "app.py", "Datasets": "pages/2_Datasets.py", "Train": "pages/8_Train.py"}
EXTRA_TARGET_SECONDS = 0.5  # a question to a dropping host waits REACHABILITY_TIMEOUT, 1.5 s


def answering_host() -> list[socket.socket]:
    """A listener that accepts connections (the kernel completes them; nobody reads)."""
    return [socket.create_server(("127.0.0.1", 0), backlog=64)]


def dropping_host() -> list[socket.socket]:
    """A listener whose one place in the queue is taken and never accepted: later connections never complete."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    return [listener, socket.create_connection(listener.getsockname())]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    runs = 1 if arguments.quick else arguments.runs
    for variable in ("http_proxy", "https_proxy", "all_proxy"):  # each host is asked directly
        os.environ.pop(variable, None)
        os.environ.pop(variable.upper(), None)
    os.environ["CNNCLASSROOM_REGISTRY"] = str(temporary_registry("download-hosts"))
    from streamlit.testing.v1 import AppTest

    from core import catalogue, network

    host_of = {name: catalogue.download_host(name) for name in catalogue.DOWNLOAD_URLS}
    stand_ins = {"online": {host: answering_host() for host in set(host_of.values())},
                 "firewall": {host: dropping_host() for host in set(host_of.values())}}

    def point_hosts_at(kind: str):
        """Each download host of the catalogue on its own loopback stand-in of that kind."""
        ports = {host: sockets[0].getsockname()[1] for host, sockets in stand_ins[kind].items()}
        catalogue.DOWNLOAD_URLS.update({name: f"http://127.0.0.1:{ports[host]}/{name}"
                                        for name, host in host_of.items()})

    def page_run(path: str) -> float:
        at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=300)
        if path != "app.py":
            at.switch_page(path)
        started = time.perf_counter()
        at.run()
        seconds = time.perf_counter() - started
        assert not at.exception, at.exception
        return seconds

    header("a page's run behind a firewall that drops connections to the download hosts, ÷ online")
    print(f"hosts asked at most {catalogue.REACHABILITY_TIMEOUT} s each; answers reused {network.REACHABILITY_TTL} s")
    for label, path in PAGES.items():
        network.REACHABILITY_TTL = 300
        point_hosts_at("online")
        network._ANSWERS.clear()
        page_run(path)  # imports and data, once
        online_seconds = statistics.median(page_run(path) for _ in range(runs))
        point_hosts_at("firewall")
        network._ANSWERS.clear()
        first_seconds = page_run(path)
        network.REACHABILITY_TTL = 0  # every answer is stale from now on
        stale_seconds = statistics.median(page_run(path) for _ in range(runs))
        extra = stale_seconds - online_seconds
        report(f"{label}: behind the firewall, answers stale, − online",
               f"{extra:+.2f} s ({stale_seconds:.2f} s vs {online_seconds:.2f} s, "
               f"ratio {stale_seconds / online_seconds:.2f}; the server's first question: {first_seconds:.2f} s)",
               f"<= {EXTRA_TARGET_SECONDS} s, no question waited for", extra <= EXTRA_TARGET_SECONDS)
    network.REACHABILITY_TTL = 300


if __name__ == "__main__":
    main()
