"""Registry faults: write errors, a deleted index or entry, racing processes, and hostile keys and names.

Everything runs against copies of the session's trained registry (real SQLite, real files), through the
CLI in real processes or through the pages in AppTest. Killing the training worker is in test_worker_kills.py.
"""

import contextlib
import dataclasses
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TINY_CNN, TINY_DNN, copy_registry

from core.config import TrainConfig
from core.catalogue import dataset_info, input_shape_for
from core.datasets import load_dataset
from core.engines import train_and_publish
from core.errors import ConfigError, DatasetError, EntryNotFoundError
from core.jobs import JobQueue, JobRunner
from core.registry import DAMAGED_MODEL, INDEX_FILE, Registry
from helpers_jobs import stop_workers_of, wait_for
from robustness.support import (PROJECT, changed, core_command, quiet, record, snapshot,
                                without_file_permission_override)

sys.path.insert(0, str(PROJECT / "tests" / "pages"))
from apptest import open_page  # noqa: E402

IGNORED = re.compile(r"(\.lock|-wal|-shm|locks/)$")  # lock files and SQLite's side files come and go


def entry_files(root: Path) -> dict:
    """Hashes of every published entry file (the things that must never be corrupted)."""
    return {path: digest for path, digest in snapshot(root / "models").items()}


def file_size_limit(limit_bytes):
    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, resource.RLIM_INFINITY))
    return limit_file_size


def make_read_only(*paths):
    for top in paths:
        for directory, folders, files in os.walk(top):
            for name in files:
                os.chmod(Path(directory) / name, 0o444)
            os.chmod(directory, 0o555)


def make_writable(top):
    for directory, folders, files in os.walk(top):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(Path(directory) / name, 0o644)


NEW_CONFIG = ["train", "--family", "dnn", "--hidden-units", "16", "--train-subset", "300", "--epochs", "1", "--seed"]


def test_disk_full_and_read_only_registries_give_a_clear_error_corrupt_nothing_and_still_read(trained_registry_root, tmp_path):
    full, read_only_models, read_only = (copy_registry(trained_registry_root, tmp_path / name)
                                         for name in ("full", "read_only_models", "read_only"))
    before = {root: entry_files(root) for root in (full, read_only_models, read_only)}
    make_read_only(read_only_models / "models")
    make_read_only(read_only)
    processes = {
        "disk full (files limited to 100 KB: the model cannot be saved)":
            core_command(*NEW_CONFIG, 501, root=full, preexec_fn=file_size_limit(100_000)),
        "read-only models folder": core_command(*NEW_CONFIG, 502, root=read_only_models,
                                                preexec_fn=without_file_permission_override),
        "read-only registry (delete)": core_command("delete", TINY_DNN.key, root=read_only,
                                                    preexec_fn=without_file_permission_override),
        "read-only registry (train)": core_command(*NEW_CONFIG, 503, root=read_only,
                                                   preexec_fn=without_file_permission_override),
    }
    outputs = {kind: process.communicate(timeout=400) for kind, process in processes.items()}
    exported = tmp_path / "exported.keras"
    readers = {arguments[0]: core_command(*arguments, root=read_only, preexec_fn=without_file_permission_override)
               for arguments in (["list"], ["show", TINY_CNN.key], ["compare", TINY_CNN.key, TINY_DNN.key],
                                 ["export", TINY_CNN.key, "--out", exported], ["doctor"])}
    read = {command: process.communicate(timeout=400) for command, process in readers.items()}
    try:
        expected = {
            "disk full (files limited to 100 KB: the model cannot be saved)":
                r"^error: Could not save model [0-9a-f]{16} to .*: File too large\. Free some disk space",
            "read-only models folder": r"^error: Could not save model [0-9a-f]{16} to .*: Permission denied\. .*writable",
            "read-only registry (delete)": r"^error: .*Permission denied.*writable",
            "read-only registry (train)": r"^error: .*Permission denied.*writable",
        }
        for kind, process in processes.items():
            stdout, stderr = outputs[kind]
            lines = quiet(stderr).strip().splitlines()
            assert process.returncode == 1, f"{kind}: exit {process.returncode}\n{stdout}\n{quiet(stderr)}"
            assert len(lines) == 1 and re.search(expected[kind], lines[0]), f"{kind}: {lines}"
        # A registry this user may only read (a teacher looking at a service account's): every reading command works.
        # Each failed with "attempt to write a readonly database" before.
        for command, process in readers.items():
            stdout, stderr = read[command]
            assert process.returncode == 0 and not quiet(stderr).strip(), f"{command}: {quiet(stderr)}"
        assert TINY_DNN.key in read["list"][0] and TINY_CNN.key in read["list"][0]
        assert TINY_CNN.key in read["show"][0] and "McNemar" in read["compare"][0]
        assert exported.stat().st_size > 10_000 and "0 problems" in read["doctor"][0]
    finally:
        make_writable(read_only_models)
        make_writable(read_only)
    for root in (full, read_only_models, read_only):
        assert entry_files(root) == before[root], f"{root.name}: a published entry changed"
        registry = Registry(root)
        assert {card.key for card in registry.list_entries()} == {TINY_DNN.key, TINY_CNN.key}
        assert not list(registry.models_dir.glob(".tmp-*")), f"{root.name}: a partial entry was left behind"
        for key in (TINY_DNN.key, TINY_CNN.key):
            assert registry.load_model(key) is not None and registry.load_evaluation(key).accuracy > 0.3
    for kind in processes:
        record("Registry faults", kind, 1, "one-line error, exit status 1; entries intact; no partial folder")
    record("Registry faults", "a read-only registry: list, show, compare, export, doctor", len(readers),
           "each works, exit status 0 (the registry's files opened read-only)")


READ_ROWS = """
import sys
from core.database import open_database
with open_database(sys.argv[1]) as connection:
    print(*[row["word"] for row in connection.execute("SELECT word FROM words ORDER BY word")])
"""


def test_a_database_in_a_read_only_folder_is_read_with_what_a_writer_has_not_checkpointed_yet(tmp_path):
    """A folder this user may not write: while a server writes the database (its -wal and -shm files there), the
    reader sees its last rows; once no one writes (no -shm, none can be made), the file is read as it is."""
    import sqlite3

    folder = tmp_path / "registry"
    folder.mkdir()
    path = folder / "index.sqlite"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # the new row stays in the -wal file
    writer.execute("CREATE TABLE words (word TEXT)")
    writer.execute("INSERT INTO words VALUES ('committed'), ('in-the-wal')")
    assert (folder / "index.sqlite-wal").stat().st_size > 0

    def read() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", READ_ROWS, str(path)], cwd=PROJECT, capture_output=True,
                              text=True, timeout=60, preexec_fn=without_file_permission_override)

    make_read_only(folder)
    try:
        while_written = read()
        make_writable(folder)
        writer.close()  # the last connection checkpoints and removes the -wal and -shm files
        assert not (folder / "index.sqlite-shm").exists()
        make_read_only(folder)
        at_rest = read()
    finally:
        make_writable(folder)
    for reading in (while_written, at_rest):
        assert reading.returncode == 0 and reading.stdout.split() == ["committed", "in-the-wal"], reading.stderr


def test_changes_a_killed_writer_left_in_the_wal_are_not_silently_skipped(tmp_path):
    """Read as immutable, a database whose -wal file still holds changes (its writer killed, no -shm left) would be
    read without them: refused in one line that says who can apply them."""
    import sqlite3

    written, left = tmp_path / "written", tmp_path / "left"
    written.mkdir()
    left.mkdir()
    writer = sqlite3.connect(written / "index.sqlite", isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE words (word TEXT)")
    writer.execute("INSERT INTO words VALUES ('in-the-wal')")
    for name in ("index.sqlite", "index.sqlite-wal"):  # what a killed writer leaves: no -shm
        shutil.copy(written / name, left / name)
    writer.close()
    make_read_only(left)
    try:
        reading = subprocess.run([sys.executable, "-c", READ_ROWS, str(left / "index.sqlite")], cwd=PROJECT,
                                 capture_output=True, text=True, timeout=60,
                                 preexec_fn=without_file_permission_override)
    finally:
        make_writable(left)
    assert reading.returncode == 1 and "RegistryError" in reading.stderr
    assert "its last changes are still in index.sqlite-wal" in reading.stderr and "Run any command once" in reading.stderr


def test_a_write_refused_in_a_writable_folder_is_not_blamed_on_the_folder(tmp_path):
    """Only a folder this process may not write gets the student's "may only read" sentence; any other refusal (a
    file deleted while open says "readonly" too) stays the error it is."""
    import sqlite3

    from core.database import closing, empty_read_only
    from core.errors import RegistryError

    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        with closing(empty_read_only("CREATE TABLE words (word TEXT);"), tmp_path / "words.sqlite") as connection:
            connection.execute("INSERT INTO words VALUES ('refused')")
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    make_read_only(read_only)
    try:
        if not os.access(read_only, os.W_OK):  # as root, permissions bind only a process without the override
            with pytest.raises(RegistryError, match="is writable by this user"):
                with closing(empty_read_only("CREATE TABLE words (word TEXT);"), read_only / "words.sqlite") as connection:
                    connection.execute("INSERT INTO words VALUES ('refused')")
    finally:
        make_writable(read_only)


PRESS_TRAIN = """
import dataclasses, sys
from conftest import TINY_DNN
from core.errors import CoreError
from core.jobs import JobRunner
from core.registry import Registry
runner = JobRunner(Registry(sys.argv[1]))
print(len(runner.registry.list_entries()), "models")
runner.ensure_worker()  # as a page does when it opens: no worker can train here, and none is started
try:
    runner.submit(dataclasses.replace(TINY_DNN, seed=504), session="student")
except CoreError as error:
    print(type(error).__name__, error.student)
"""


@pytest.mark.parametrize("queue_file", ["a queue file", "no queue file"])
def test_a_train_press_on_a_registry_the_server_may_only_read_says_so_in_a_students_words(trained_registry_root,
                                                                                            tmp_path, queue_file):
    """The pages open a read-only registry now; pressing Train there ended in a traceback ("attempt to write a
    readonly database"). Where nothing was ever queued there is no jobs.sqlite, nor a folder to make one in."""
    root = copy_registry(trained_registry_root, tmp_path / "registry")
    JobQueue(root)  # made, or already there
    if queue_file == "no queue file":
        (root / "jobs.sqlite").unlink()
    make_read_only(root)
    try:
        pressed = subprocess.run([sys.executable, "-c", PRESS_TRAIN, str(root)], cwd=PROJECT / "tests",
                                 capture_output=True, text=True, timeout=120,
                                 env={**os.environ, "PYTHONPATH": str(PROJECT)},
                                 preexec_fn=without_file_permission_override)
    finally:
        make_writable(root)
    assert pressed.returncode == 0, pressed.stderr
    assert pressed.stdout.splitlines() == ["2 models", "RegistryError The server may only read its model folder, so "
                                           "nothing can be trained, changed or deleted here. Tell the teacher."]
    if (root / "jobs.sqlite").exists():
        assert JobQueue(root).job(dataclasses.replace(TINY_DNN, seed=504).key) is None  # nothing was queued
    record("Registry faults", "Train pressed on a registry the server may only read", 1,
           "the student's sentence (the teacher must make the folder writable); nothing queued")


def models_ready(home) -> int:
    """The home page's count of models ready ("**2 models** ready (…)")."""
    return int(re.search(r"\*\*(\d+) models?\*\* ready", texts(home)).group(1))


def texts(at) -> str:
    kinds = ("markdown", "caption", "success", "info", "warning", "error", "subheader", "title")
    return "\n".join(str(element.value) for kind in kinds for element in getattr(at, kind))


def test_a_deleted_index_is_rebuilt_and_a_deleted_entry_heals_while_the_pages_stay_up(trained_registry_root, tmp_path,
                                                                                         monkeypatch):
    root = copy_registry(trained_registry_root, tmp_path / "registry")
    monkeypatch.setenv("CNNCLASSROOM_REGISTRY", str(root))
    home = open_page("app.py").run()
    predict = open_page("pages/10_Predict.py").run()
    predict.selectbox(key="predict_model").set_value(TINY_DNN.key).run()
    models = open_page("pages/11_Models.py").run()
    assert not (home.exception or predict.exception or models.exception) and models_ready(home) == 2

    for suffix in ("", "-wal", "-shm"):  # deleted by hand while the server holds its Registry object
        (root / f"{INDEX_FILE}{suffix}").unlink(missing_ok=True)
    home.run()
    assert not home.exception, home.exception
    assert models_ready(home) == 2  # rebuilt from the entry folders
    assert {card.key for card in Registry(root).list_entries()} == {TINY_DNN.key, TINY_CNN.key}

    shutil.rmtree(root / "models" / TINY_DNN.key)  # an entry folder deleted by hand
    for at in (home, predict, models):
        at.run()
        assert not at.exception, at.exception
    assert models_ready(home) == 1
    assert [card.key for card in Registry(root).list_entries()] == [TINY_CNN.key]
    assert predict.selectbox(key="predict_model").value != TINY_DNN.key or predict.error  # the gone model is not served
    predict.selectbox(key="predict_model").set_value(TINY_CNN.key).run()
    assert not predict.exception
    compare = open_page("pages/9_Compare.py").run()
    assert not compare.exception and "Pick at least two models" in texts(compare)
    listing = core_command("list", "--json", root=root)
    stdout, stderr = listing.communicate(timeout=60)
    assert listing.returncode == 0 and [row["key"] for row in json.loads(stdout)] == [TINY_CNN.key], quiet(stderr)
    with pytest.raises(EntryNotFoundError, match="python -m core list"):
        Registry(root).get(TINY_DNN.key)

    (root / "models" / TINY_CNN.key / "card.json").write_text("{ half a card")  # damaged by hand
    (root / "models" / "0123456789abcdef").mkdir()  # a folder with no model
    (root / "models" / "not-a-key").mkdir()
    for at in (home, models, compare, predict):
        at.run()
        assert not at.exception, at.exception
    assert DAMAGED_MODEL in [error.value for error in predict.error]  # a student's words; the command is in the log
    problems = Registry(root).reindex()  # what `python -m core doctor` reports
    assert len(problems) == 3 and any("damaged card" in problem for problem in problems)
    home.run()
    assert not home.exception and models_ready(home) == 0
    stop_workers_of(root)  # the pages' early worker, idling
    record("Registry faults", "index.sqlite (and -wal, -shm) deleted while the server runs", 1,
           "rebuilt from the entry folders; Home shows both models")
    record("Registry faults", "entry folder deleted by hand; damaged card; stray folders", 4,
           "index heals; Home, Predict, Models and Compare pages do not crash; CLI lists the rest")


RACE_CONFIG = ["--family", "dnn", "--hidden-units", "24", "--train-subset", "100", "--epochs", "1"]
SUBMIT = """
import sys, time
from core.config import TrainConfig
from core.jobs import JobRunner
from core.registry import Registry
config = TrainConfig.from_json(sys.argv[2])
while time.time() < float(sys.argv[3]):  # every process submits at the same instant
    time.sleep(0.001)
print(JobRunner(Registry(sys.argv[1])).submit(config).state, flush=True)
"""


OPEN_AT_ONCE = """
import sys, time
from core.jobs import JobQueue
from core.registry import Registry
while time.time() < float(sys.argv[2]):  # every process opens the new registry at the same instant
    time.sleep(0.001)
with JobQueue(sys.argv[1]).connect() as connection:
    connection.execute("SELECT count(*) FROM jobs").fetchone()
print(len(Registry(sys.argv[1]).list_entries()), flush=True)
"""


def test_twelve_processes_opening_a_new_registry_at_once_all_get_in(tmp_path):
    """A class's sessions opening a registry nobody has used yet: both databases are created and switched to WAL by
    whichever process comes first, and no process is told "database is locked" (SQLite refused the switch at once,
    without waiting, in about one round in three before the switch was retried)."""
    for round_number in range(5):
        root, start_at = tmp_path / f"registry-{round_number}", time.time() + 1.5
        openers = [subprocess.Popen([sys.executable, "-c", OPEN_AT_ONCE, str(root), str(start_at)], cwd=PROJECT,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(12)]
        answers = [process.communicate(timeout=120) for process in openers]
        assert [process.returncode for process in openers] == [0] * 12, [stderr[-400:] for _, stderr in answers if stderr]
        assert [stdout.strip() for stdout, _ in answers] == ["0"] * 12
    record("Registry faults", "12 processes open a new registry at the same instant, 5 rounds", 60,
           "every one gets in: both databases created once, in WAL mode")


def test_four_processes_on_one_key_train_once_and_four_keys_all_complete(registry_root):
    Registry(registry_root)  # created once here, so the racers below race for keys, not for creating the index
    # The CLI: four `python -m core train` of one key at once (the per-key lock decides who trains) ...
    same = [core_command("train", *RACE_CONFIG, "--seed", 600, root=registry_root) for _ in range(4)]
    # ... and, at the same time, the dashboard's path: eight sessions (processes) submit at one instant,
    # four of them the same key; the worker pool trains the queue.
    shared = TrainConfig(family="dnn", hidden_units=(24,), train_subset=100, epochs=1, seed=620)
    configs = [shared] * 4 + [dataclasses.replace(shared, seed=630 + index) for index in range(4)]
    start_at = time.time() + 2
    submitters = [subprocess.Popen([sys.executable, "-c", SUBMIT, str(registry_root), config.to_json(), str(start_at)],
                                   cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                  for config in configs]
    outputs = [process.communicate(timeout=600) for process in same]
    assert all(process.returncode == 0 for process in same), [quiet(stderr)[-800:] for _, stderr in outputs]
    trainers = [stdout for stdout, _ in outputs if "epoch   1/1" in stdout]
    assert len(trainers) == 1, f"{len(trainers)} processes trained the same key"
    assert len({stdout.strip().splitlines()[-1] for stdout, _ in outputs}) == 1  # all four got the same entry
    cli_key = outputs[0][0].strip().splitlines()[-1].split()[0]

    answers = [process.communicate(timeout=120) for process in submitters]
    assert all(process.returncode == 0 for process in submitters), [stderr[-800:] for _, stderr in answers]
    assert all(stdout.strip() in ("queued", "running") for stdout, _ in answers), answers
    registry, keys = Registry(registry_root), {config.key for config in configs}
    with JobQueue(registry_root).connect() as connection:
        rows = connection.execute("SELECT key FROM jobs").fetchall()
    assert sorted(row["key"] for row in rows) == sorted(keys)  # one job per key: the shared key was queued once
    runner = JobRunner(registry)
    try:
        for key in keys:
            wait_for(lambda: runner.status(key).state in ("done", "failed"), timeout=400, what=f"training {key}")
            assert runner.status(key).state == "done", runner.status(key)
    finally:
        with JobQueue(registry_root).connect() as connection:
            pids = {row["pid"] for row in connection.execute("SELECT pid FROM jobs WHERE pid IS NOT NULL")}
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    from core.workers import pool_plan

    assert 1 <= len(pids) <= pool_plan().processes  # the pool's workers (and its lone worker) trained them, each once
    assert {card.key for card in registry.list_entries()} == keys | {cli_key}
    assert not list(registry.models_dir.glob(".tmp-*"))
    record("Registry faults", "4 `python -m core train` of the same key at once", 4, "exactly one trained; all 4 got the entry")
    record("Registry faults", "8 processes submit at once: 4 the same key, 4 different keys", 8,
           f"5 jobs (the shared key once); {len(pids)} pool worker(s); all complete and listed")


HOSTILE_KEYS = ["../../etc/passwd", "/etc/passwd", "0123456789abcdef\n", "0123456789abcdef/..", "0123456789ABCDEF",
                "０１２３４５６７８９ａｂｃｄｅｆ", "0123456789abcde", "0123456789abcdef0", "", "0123456789abcde\x00",
                "..%2f..%2fetc%2fpasswd", " 0123456789abcdef", None, 1234567890123456]
HOSTILE_NAMES = ["../fashion_mnist", "folder:../../etc", "folder:0123456789ab/../..", "folder:/etc/passwd",
                 "FASHION_MNIST", "fashion_mnist\n", "folder:0123456789ab\n", "folder:", "/usr/share/datasets/fashion-mnist",
                 "fashion_mnist/../../x", "", None]


class PathWatcher:
    """A sys.audit hook that records every file-system event naming a hostile string while armed."""

    EVENTS = ("open", "os.mkdir", "os.remove", "os.rename", "os.rmdir", "shutil.rmtree", "os.listdir", "os.scandir",
              "shutil.copyfile", "os.chmod", "os.symlink", "sqlite3.connect")

    def __init__(self):
        self.needles, self.seen = [], []
        sys.addaudithook(self)

    def __call__(self, event, arguments):
        if self.needles and event in self.EVENTS:
            text = " ".join(str(argument) for argument in arguments)
            if any(needle in text for needle in self.needles):
                self.seen.append((event, text))


WATCHER = PathWatcher()


def test_registry_keys_and_dataset_names_are_validated_before_any_path_is_built(trained_registry_root, tmp_path):
    root = copy_registry(trained_registry_root, tmp_path / "registry")
    registry, runner = Registry(root), JobRunner(Registry(root))
    before = snapshot(tmp_path)
    operations = {
        "has": registry.has, "get": registry.get, "entry_dir": registry.entry_dir, "load_model": registry.load_model,
        "load_evaluation": registry.load_evaluation, "delete": registry.delete,
        "export": lambda key: registry.export(key, "keras", tmp_path / "exports"),
        "key_lock": lambda key: registry.key_lock(key).__enter__(), "progress": runner.queue.progress,
        "record_progress": lambda key: runner.queue.record_progress(key, {"epoch": 1}), "job status": runner.status,
        "cancel": runner.cancel,
    }
    tried = 0
    for key in HOSTILE_KEYS:
        WATCHER.needles = [str(key)] if key not in ("", None) else []
        for name, operation in operations.items():
            with pytest.raises(ConfigError, match="16 lowercase hexadecimal digits"):
                operation(key)
            tried += 1
        if isinstance(key, str):  # a transfer config naming a hostile registry entry as its base
            base = TrainConfig(family="transfer", base_model=f"registry:{key}", train_subset=100, epochs=1, dataset="shapes")
            with pytest.raises(ConfigError, match="16 lowercase hexadecimal digits"):
                train_and_publish(registry, base)
            tried += 1
        assert WATCHER.seen == [], f"{key!r} reached the file system: {WATCHER.seen}"
    for key in ("../../etc/passwd", "0123456789abcdef\n"):
        for command in (("show", key), ("delete", key), ("export", key, "--out", str(tmp_path / "exports"))):
            process = core_command(*command, root=root)
            _, stderr = process.communicate(timeout=60)
            assert process.returncode == 1 and f"error: {key!r} is not a model key: a key is 16 hexadecimal digits" in \
                quiet(stderr)
            tried += 1
    names = 0
    for name in HOSTILE_NAMES:
        WATCHER.needles = [str(name)] if name not in ("", None) else []
        for operation in (dataset_info, load_dataset, input_shape_for):
            with pytest.raises(DatasetError, match="dataset name|Unknown dataset"):
                operation(name)
            names += 1
        if isinstance(name, str) and name:
            with pytest.raises(DatasetError):
                train_and_publish(registry, TrainConfig(dataset=name, family="dnn", train_subset=100, epochs=1))
            names += 1
        assert WATCHER.seen == [], f"{name!r} reached the file system: {WATCHER.seen}"
    WATCHER.needles = []
    assert [path for path in changed(before, snapshot(tmp_path)) if not IGNORED.search(path)] == []
    assert {card.key for card in registry.list_entries()} == {TINY_DNN.key, TINY_CNN.key}
    record("Registry faults", f"{len(HOSTILE_KEYS)} hostile keys x {len(operations) + 1} registry/job operations and "
           "CLI show/delete/export", tried, "refused before any file-system call naming them; nothing changed")
    record("Registry faults", f"{len(HOSTILE_NAMES)} hostile dataset names x load/info/shape/train", names,
           "refused before any file-system call naming them")
