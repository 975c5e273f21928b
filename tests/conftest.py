"""Shared fixtures: throwaway registries and small models trained on real Fashion-MNIST slices."""

import dataclasses
import os
import shutil
import socket
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from helpers_jobs import stop_workers_of  # noqa: E402

from core.config import TrainConfig  # noqa: E402

# Tiny but real: 500 Fashion-MNIST training images, evaluated on the full 10,000-image test set.
TINY_DNN = TrainConfig(family="dnn", hidden_units=(32,), train_subset=500, epochs=2, batch_size=32)
TINY_CNN = TrainConfig(family="cnn", filters=(8, 16), hidden_units=(32,), train_subset=500, epochs=2, batch_size=16,
                       learning_rate=0.003)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With $CNNCLASSROOM_NO_SKIPS=1 (CI sets it) a skipped test fails: a missing Chromium or Fashion-MNIST must not
    pass for a green run."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CNNCLASSROOM_NO_SKIPS") == "1" and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome, report.longrepr = "failed", f"skipped where every test must run ($CNNCLASSROOM_NO_SKIPS=1): {reason}"


# The files that take longest, collected first: pytest-xdist (pytest.ini) gives each to a worker of its own at the
# start, and the many short files fill in beside them, instead of one long file running alone at the end.
SLOWEST_FILES = ("test_teaching_claims.py", "browser/test_browser.py", "browser/test_photos_browser.py")


def pytest_collection_modifyitems(items):
    """The slowest files' tests first, in the order of SLOWEST_FILES; the others after them, as collected."""
    def rank(item) -> int:
        path = item.path.as_posix()
        return next((place for place, name in enumerate(SLOWEST_FILES) if path.endswith("/tests/" + name)),
                    len(SLOWEST_FILES))

    items.sort(key=rank)


def pytest_sessionfinish(session):
    """In a pytest-xdist worker: hand the robustness rows recorded here (tests/robustness/support.py) to the main
    process, which prints the table."""
    if hasattr(session.config, "workeroutput"):
        from robustness import support

        session.config.workeroutput["robustness_rows"] = [dataclasses.asdict(row) for row in support.ROWS]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """In the main process of a pytest-xdist run: gather a worker's robustness rows."""
    from robustness import support

    support.ROWS.extend(support.Row(**row) for row in getattr(node, "workeroutput", {}).get("robustness_rows", []))


def pytest_terminal_summary(terminalreporter):
    """The robustness table: what every robustness test tried, how many, what survived, what was lost. Set
    ROBUSTNESS_TABLE=path to also write it as markdown (docs/robustness.md quotes it)."""
    from robustness import support

    if not support.ROWS or hasattr(terminalreporter.config, "workeroutput"):  # a worker's rows: the main process's
        return
    terminalreporter.section("robustness: what was tried, how many, what survived, what was lost")
    terminalreporter.write_line(support.table_markdown())
    lost = sum(row.lost for row in support.ROWS)
    terminalreporter.write_line(f"\n{len(support.ROWS)} rows; lost: {lost or 'nothing'}")
    target = os.environ.get("ROBUSTNESS_TABLE")
    if target:
        with open(target, "w") as handle:
            handle.write(support.table_markdown() + "\n")


def copy_registry(source: Path, target: Path) -> Path:
    """A copy of the registry at `source`, without its lock files, SQLite's side files and the worker's log."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.lock", "*-wal", "*-shm", "worker.log"))
    return target


@pytest.fixture
def registry_root(tmp_path, monkeypatch):
    """An empty registry folder, also set as $CNNCLASSROOM_REGISTRY for code that reads it; its workers stop after."""
    root = tmp_path / "registry"
    monkeypatch.setenv("CNNCLASSROOM_REGISTRY", str(root))
    yield root
    stop_workers_of(root)


@pytest.fixture(scope="session")
def trained_registry_root(tmp_path_factory):
    """A registry holding TINY_DNN and TINY_CNN, trained once per test session."""
    from core.engines import train_and_publish
    from core.registry import Registry

    root = tmp_path_factory.mktemp("trained") / "registry"
    registry = Registry(root)
    for config in (TINY_DNN, TINY_CNN):
        train_and_publish(registry, config)
    yield root
    stop_workers_of(root)


# The transfer experiment from TINY_CNN that test_transfer.py and the Transfer page's test both check (5 epochs: the
# page's least).
TRANSFER_SLICE = dict(dataset="fashion_mnist", train_subset=200, fine_tune_layers=1, epochs=5)


@pytest.fixture(scope="session")
def transfer_registry_root(trained_registry_root, tmp_path_factory):
    """A copy of the trained registry plus the three networks of the transfer experiment on TRANSFER_SLICE, trained once."""
    from core.engines import train_and_publish
    from core.registry import Registry
    from core.transfer import transfer_experiment

    root = tmp_path_factory.mktemp("transfer") / "registry"
    shutil.copytree(trained_registry_root, root, ignore=shutil.ignore_patterns("locks", "*.lock", "*-wal", "*-shm"))
    registry = Registry(root)
    for config in transfer_experiment(TINY_CNN.key, registry=registry, **TRANSFER_SLICE).values():
        train_and_publish(registry, config)
    yield root
    stop_workers_of(root)


@pytest.fixture
def trained_registry(trained_registry_root, monkeypatch):
    """The session's trained registry, set as $CNNCLASSROOM_REGISTRY."""
    from core.registry import Registry

    monkeypatch.setenv("CNNCLASSROOM_REGISTRY", str(trained_registry_root))
    return Registry(trained_registry_root)


@pytest.fixture
def own_trained_registry(trained_registry_root, tmp_path, monkeypatch):
    """A private copy of the session's trained registry, so entries trained here do not leak into other tests."""
    from core.registry import Registry

    root = copy_registry(trained_registry_root, tmp_path / "registry")
    monkeypatch.setenv("CNNCLASSROOM_REGISTRY", str(root))
    yield Registry(root)
    stop_workers_of(root)


@pytest.fixture
def no_proxy(monkeypatch):
    """No proxy in the environment: urllib asks each host directly (core.network skips hosts reached via a proxy)."""
    for variable in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(variable, raising=False)
        monkeypatch.delenv(variable.upper(), raising=False)


@pytest.fixture
def counting_host():
    """A loopback host that answers; yields (its address, a function: how many connections it has received)."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    listener.setblocking(False)
    accepted = []

    def connections() -> int:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except BlockingIOError:
                return len(accepted)

    yield listener.getsockname(), connections
    for connection in accepted:
        connection.close()
    listener.close()


@pytest.fixture
def dropping_hosts():
    """A function that opens a loopback port which, like a host behind a firewall that drops packets, never completes
    a connection (its one place in the queue is taken and never accepted), and returns its address."""
    opened = []

    def open_one() -> tuple[str, int]:
        listener = socket.create_server(("127.0.0.1", 0), backlog=0)
        opened.extend([listener, socket.create_connection(listener.getsockname())])
        return listener.getsockname()

    yield open_one
    for sock in reversed(opened):
        sock.close()


@pytest.fixture
def download_hosts(monkeypatch, no_proxy, counting_host):
    """The catalogue's download hosts answered by a loopback host, as an online machine's would answer. Returns a
    function: how many connections the hosts have received so far."""
    from core import catalogue

    (host, port), connections = counting_host
    urls = {name: f"http://{host}:{port}/{name}" for name in catalogue.DOWNLOAD_URLS}
    monkeypatch.setattr(catalogue, "DOWNLOAD_URLS", urls)
    return connections
