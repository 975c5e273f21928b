"""A teacher's way out of every fault, through the real command line: a damaged entry, index or queue, a full disk or
a read-only folder during an export, a restore or an import, a killed import, and names typed wrong. Each ends in one
plain line and a sensible exit status; nothing the teacher had is lost, and no half-written file is left behind.

Copies of the session's trained registry, real files and real processes; as root, read-only folders are made so by
dropping the capabilities that ignore permissions (robustness.support.without_file_permission_override).
"""

import fcntl
import os
import signal
import sqlite3
import time
from pathlib import Path

from conftest import TINY_CNN, TINY_DNN, copy_registry
from photos import photo_files, photo_zip

from core.catalogue import list_datasets
from core.jobs import JobQueue
from core.registry import EVAL_FILE, INDEX_FILE, MODEL_FILE, Registry
from robustness.support import core_command, quiet, record, without_file_permission_override
from robustness.test_registry_faults import file_size_limit, make_read_only, make_writable


def run(*arguments, root, preexec_fn=None) -> tuple[int, str, str]:
    process = core_command(*arguments, root=root, preexec_fn=preexec_fn)
    stdout, stderr = process.communicate(timeout=300)
    return process.returncode, stdout, quiet(stderr).strip()


def one_line(stderr: str, *expected: str) -> bool:
    lines = stderr.splitlines()
    return len(lines) == 1 and lines[0].startswith("error: ") and all(text in lines[0] for text in expected)


def test_a_damaged_entry_is_named_by_doctor_and_can_be_deleted(trained_registry_root, tmp_path):
    """Its message says `python -m core delete KEY`; that command used to fail on the very card it could not read."""
    root = copy_registry(trained_registry_root, tmp_path / "registry")
    (root / "models" / TINY_DNN.key / "card.json").write_text("{not json")
    (root / "models" / TINY_CNN.key / EVAL_FILE).unlink()
    status, stdout, _ = run("doctor", root=root)
    problems = [line for line in stdout.splitlines() if line.startswith("problem: ")]
    assert status == 1 and len(problems) == 2, stdout
    assert all(f"python -m core delete {key}" in stdout for key in (TINY_DNN.key, TINY_CNN.key))
    assert "0 entries ready; 2 problems" in stdout
    status, stdout, stderr = run("delete", TINY_DNN.key, root=root)
    assert status == 0 and f"moved to the trash: {TINY_DNN.key}" in stdout, stderr
    (root / "models" / TINY_CNN.key / MODEL_FILE).write_bytes(b"truncated")
    status, _, stderr = run("export", TINY_CNN.key, "--out", str(tmp_path / "out"), root=root)
    assert status == 1 and one_line(stderr, "is damaged", f"python -m core delete {TINY_CNN.key}"), stderr
    assert not list((tmp_path / "out").iterdir())
    record("Registry faults", "a damaged card, a truncated model file, a missing evaluation: `doctor`, `delete`, "
           "`export`", 3, "doctor names each with the command that removes it (exit status 1); delete works on a "
           "damaged entry; export refuses in one line and writes nothing")


def test_a_damaged_evaluation_a_damaged_copy_in_the_trash_and_a_read_only_trash_each_get_a_true_line(
        trained_registry_root, tmp_path):
    """A teacher's walk of the command line (2026-12-02): doctor passed an overwritten eval.npz ("0 problems") that
    `show` then failed on with numpy's invitation to load pickled data; `restore` of a model deleted for a missing file
    moved it back and said "No model with key …"; `doctor --empty-trash` on a read-only registry said "emptied"."""
    root = copy_registry(trained_registry_root, tmp_path / "registry")
    (root / "models" / TINY_CNN.key / EVAL_FILE).write_bytes(os.urandom(2048))
    status, stdout, _ = run("doctor", root=root)
    assert status == 1 and f"{TINY_CNN.key}" in stdout and f"({EVAL_FILE}) is damaged" in stdout, stdout
    assert f"python -m core delete {TINY_CNN.key}" in stdout and "1 entry ready; 1 problem" in stdout
    status, _, stderr = run("show", TINY_CNN.key, root=root)
    assert status == 1 and one_line(stderr, "is damaged", f"python -m core delete {TINY_CNN.key}"), stderr
    assert "allow_pickle" not in stderr

    title = Registry(root).get(TINY_DNN.key).title
    (root / "models" / TINY_DNN.key / MODEL_FILE).unlink()  # deleted by hand: doctor says delete it, and it is
    status, stdout, _ = run("delete", TINY_DNN.key, root=root)
    assert status == 0 and f"moved to the trash: {TINY_DNN.key}  {title}" in stdout, stdout  # by its title, not its key
    status, _, stderr = run("restore", TINY_DNN.key, root=root)
    assert status == 1 and one_line(stderr, f"The deleted copy of {TINY_DNN.key} is damaged", "not restored"), stderr
    assert not (root / "models" / TINY_DNN.key).exists()  # it stayed in the trash
    status, stdout, _ = run("restore", root=root)
    assert stdout.startswith(f"{TINY_DNN.key}  deleted") and f"  {title}\n" in stdout  # its title, kept in the trash
    assert run("doctor", root=root)[1].count("problem: ") == 1  # the eval.npz only

    make_read_only(root)
    try:
        status, stdout, stderr = run("doctor", "--empty-trash", root=root, preexec_fn=without_file_permission_override)
    finally:
        make_writable(root)
    assert status == 1 and "emptied from the trash" not in stdout and not stderr, stdout + stderr
    assert "problem: 1 item could not be deleted from the trash: check that the registry folder" in stdout
    assert "1 problem" not in stdout and "2 problems" in stdout  # the eval.npz's still said beside it
    status, stdout, _ = run("doctor", "--empty-trash", root=root)
    assert f"emptied from the trash: {TINY_DNN.key}" in stdout and not any((root / "trash").iterdir())
    record("Registry faults", "an overwritten `eval.npz`; `restore` of a copy deleted for its missing model file; "
           "`doctor --empty-trash` on a read-only registry (added 2026-12-02 after a teacher's walk)", 3,
           "doctor names the evaluation with the command that removes it, and `show` says it is damaged (numpy's "
           "\"allow_pickle\" advice before); the damaged copy stays in the trash, said in one line (it was moved back "
           "and called missing) and listed by its title (by its key before); doctor says the trash could not be "
           "emptied, among its problems, exit status 1 (\"emptied\" before)")


def test_an_index_or_queue_that_is_not_a_database_is_set_aside_and_made_anew(trained_registry_root, tmp_path):
    root = copy_registry(trained_registry_root, tmp_path / "registry")
    (root / INDEX_FILE).write_bytes(os.urandom(4096))
    status, stdout, stderr = run("doctor", root=root)
    assert status == 0 and "the index was damaged: set aside as index.sqlite.damaged-" in stdout, stderr
    assert "2 entries ready; 0 problems" in stdout
    assert len(list(root.glob("index.sqlite.damaged-*"))) == 1
    (root / "jobs.sqlite").write_text("garbage, not a queue")
    queue = JobQueue(root)
    queue.enqueue(TINY_DNN)
    assert [key for key, _ in queue.waiting_in_order()] == [TINY_DNN.key]
    with sqlite3.connect(root / INDEX_FILE) as connection:
        assert connection.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 2
    record("Registry faults", "index.sqlite and jobs.sqlite overwritten with bytes that are not a database", 2,
           "set aside as *.damaged-<time>; the index is rebuilt from the entry folders (doctor says so), the queue "
           "starts empty", 0)


def test_doctor_says_what_it_healed_and_leaves_hidden_folders_alone(trained_registry_root, tmp_path):
    root = copy_registry(trained_registry_root, tmp_path / "registry")
    with sqlite3.connect(root / INDEX_FILE) as connection:
        connection.execute("DELETE FROM entries WHERE key = ?", (TINY_DNN.key,))
    moved = tmp_path / "moved-away"
    (root / "models" / TINY_CNN.key).rename(moved)
    Registry(root)  # opened as a page would: nothing healed yet
    (root / "models" / TINY_CNN.key).mkdir()  # an empty folder left where the entry was: it blocked a restore
    (root / "models" / ".ipynb_checkpoints").mkdir()  # a Jupyter classroom's: no entry, no problem
    with sqlite3.connect(root / INDEX_FILE) as connection:
        connection.execute("INSERT INTO entries (key, card) SELECT ?, card FROM entries LIMIT 0", (TINY_CNN.key,))
    status, stdout, stderr = run("doctor", root=root)
    assert status == 0, stdout + stderr
    assert f"added to the index: {TINY_DNN.key}" in stdout
    assert f"removed leftover of an interrupted run: {TINY_CNN.key}" in stdout and not (root / "models" / TINY_CNN.key).exists()
    assert "problem" not in stdout.replace("0 problems", "") and "1 entry ready" in stdout
    moved.rename(root / "models" / TINY_CNN.key)
    status, stdout, _ = run("doctor", root=root)
    assert status == 0 and "2 entries ready" in stdout


def test_an_index_damaged_past_its_header_is_set_aside_and_rebuilt(trained_registry_root, tmp_path):
    """Overwritten from byte 100 on, as a torn write or a copy taken mid-write leaves it: "database disk image is
    malformed" stopped every command, doctor included, with advice about a writable folder."""
    root = copy_registry(trained_registry_root, tmp_path / "registry")
    with open(root / INDEX_FILE, "r+b") as index:
        index.seek(100)
        index.write(os.urandom(8000))
    status, stdout, stderr = run("doctor", root=root)
    assert status == 0 and "set aside as index.sqlite.damaged-" in stdout and "2 entries ready" in stdout, stderr
    status, stdout, _ = run("list", root=root)
    assert status == 0 and TINY_DNN.key in stdout and TINY_CNN.key in stdout


def test_an_export_that_cannot_be_written_says_so_in_one_line_and_leaves_no_half_file(trained_registry_root,
                                                                                      tmp_path):
    root = copy_registry(trained_registry_root, tmp_path / "registry")
    target = tmp_path / "exports" / "model.keras"
    status, _, stderr = run("export", TINY_CNN.key, "--out", str(target), root=root,
                            preexec_fn=file_size_limit(100_000))
    assert status == 1 and one_line(stderr, "Could not write", "File too large", "nothing was left"), stderr
    assert list(target.parent.iterdir()) == []  # no half file under the name, nor a temporary one
    status, stdout, stderr = run("export", TINY_CNN.key, "--out", str(target), root=root)
    assert status == 0 and target.is_file(), stderr  # a retry is not refused by a half file
    umask = os.umask(0o022)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # as any saved file (its temporary file was 0600)
    assert sorted(path.name for path in target.parent.iterdir()) == ["model.keras"]
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    make_read_only(read_only)
    try:
        for destination in (read_only, Path("/proc")):
            for export_format in ("keras", "tflite"):
                status, _, stderr = run("export", TINY_DNN.key, "--format", export_format, "--out", str(destination),
                                        root=root, preexec_fn=without_file_permission_override)
                assert status == 1 and one_line(stderr) and "Traceback" not in stderr, (destination, stderr)
    finally:
        make_writable(read_only)
    assert list(read_only.iterdir()) == []
    record("Registry faults", "`export` onto a full disk (files limited to 100 KB), into a read-only folder and into "
           "/proc, as .keras and .tflite", 5, "one line, exit status 1; no half-written file, so the retry works")


def test_a_restore_that_cannot_move_back_keeps_the_deleted_model_and_its_title(trained_registry_root, tmp_path):
    root = copy_registry(trained_registry_root, tmp_path / "registry")
    assert run("delete", TINY_DNN.key, root=root)[0] == 0
    make_read_only(root / "models")
    try:
        status, _, stderr = run("restore", TINY_DNN.key[:6], root=root, preexec_fn=without_file_permission_override)
    finally:
        make_writable(root / "models")
    assert status == 1 and one_line(stderr, "Could not move", "writable"), stderr
    status, stdout, _ = run("restore", root=root)
    assert status == 0 and TINY_DNN.title in stdout  # still listed with its title
    status, stdout, stderr = run("restore", TINY_DNN.key[:6], root=root)
    assert status == 0 and f"restored {TINY_DNN.key}" in stdout, stderr
    assert Registry(root).load_evaluation(TINY_DNN.key).accuracy > 0.3
    record("Registry faults", "`restore` into a read-only models folder, then again once writable", 2,
           "one line, exit status 1; the deleted model stays in the trash with its title and is restored after")


def course_zip(path: Path, per_class: int) -> Path:
    return photo_zip(path, photo_files({"train": per_class, "validation": 4}, prefix="photos/", size=(160, 120)))


def test_an_import_that_cannot_be_stored_says_so_and_a_killed_one_is_cleaned_up(registry_root, tmp_path):
    small = course_zip(tmp_path / "small.zip", 12)
    registry_root.mkdir()
    (registry_root / "datasets").mkdir()
    make_read_only(registry_root / "datasets")
    try:
        status, _, stderr = run("datasets", "import", str(small), root=registry_root,
                                preexec_fn=without_file_permission_override)
    finally:
        make_writable(registry_root / "datasets")
    assert status == 1 and one_line(stderr, "Could not store the photos", "Nothing was imported"), stderr
    status, _, stderr = run("datasets", "import", str(small), root=registry_root, preexec_fn=file_size_limit(30_000))
    assert status == 1 and one_line(stderr, "Could not store the photos", "File too large"), stderr
    assert list((registry_root / "datasets").iterdir()) == []

    big = course_zip(tmp_path / "big.zip", 150)
    process = core_command("datasets", "import", str(big), root=registry_root)
    deadline = time.monotonic() + 120
    while not list((registry_root / "datasets").glob(".import-*/images")) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    [dead] = list((registry_root / "datasets").glob(".import-*"))
    status, stdout, _ = run("doctor", root=registry_root)
    assert status == 0 and dead.is_dir()  # just killed: a folder unchanged for under a minute may be a new import's
    a_while_ago = time.time() - 120
    os.utime(dead, (a_while_ago, a_while_ago))
    running = registry_root / "datasets" / ".import-running"  # an import under way in another process: kept
    running.mkdir()
    os.utime(running, (a_while_ago, a_while_ago))
    with open(running / ".import.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        status, stdout, stderr = run("doctor", root=registry_root)
    assert status == 0 and f"removed leftover of an interrupted run: {dead.name}" in stdout, stdout + stderr
    assert not dead.exists() and running.is_dir()
    record("Dataset zips", "`datasets import` into a read-only folder and onto a full disk; one killed mid-import",
           3, "one line, exit status 1, nothing left; the killed import's folder (its lock free) removed by doctor, "
           "one still running kept")


def test_an_unreadable_photo_in_a_folder_is_skipped_and_listed(registry_root, tmp_path):
    folder = tmp_path / "photos"
    for path, data in photo_files({"train": 12}, size=(64, 64), split_folders=False).items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    locked = next((folder / "round").iterdir())
    locked.chmod(0)
    status, stdout, stderr = run("datasets", "import", str(folder), root=registry_root,
                                 preexec_fn=without_file_permission_override)
    assert status == 0 and locked.name in stdout and "could not be read (Permission denied)" in stdout, stderr
    [imported] = [info for info in list_datasets(registry_root, ask_network=False) if info.name.startswith("folder:")]
    assert imported.training_images + round(0.2 * 23) == 23  # 23 photos stored: 12 angular and 11 round


def test_names_typed_wrong_change_nothing_and_say_what_to_type(trained_registry_root, tmp_path):
    root = copy_registry(trained_registry_root, tmp_path / "registry")
    status, _, stderr = run("delete", TINY_DNN.key, "0000000000000000", root=root)
    assert status == 1 and one_line(stderr, "No model with key 0000000000000000"), stderr
    assert {card.key for card in Registry(root).list_entries()} == {TINY_DNN.key, TINY_CNN.key}  # neither deleted
    status, stdout, stderr = run("delete", TINY_DNN.key, TINY_DNN.key[:6], root=root)  # one model named twice
    assert status == 0 and stdout.count("moved to the trash") == 1, stderr
    assert run("restore", TINY_DNN.key, root=root)[0] == 0
    status, _, stderr = run("datasets", "delete", "fashion_mnist", root=root)
    assert status == 1 and one_line(stderr, "comes with CNN Classroom", "only imported datasets"), stderr
    status, _, stderr = run("datasets", "delete", "nope", root=root)
    assert status == 1 and one_line(stderr, "No imported dataset is named or titled 'nope'", "python -m core datasets")
    status, stdout, _ = run("list", "--dataset", "FASHION-mnist", root=root)
    assert status == 0 and TINY_DNN.key in stdout and TINY_CNN.key in stdout
    status, stdout, _ = run("list", "--family", "transfer", root=root)
    assert status == 0 and "No model matches --family transfer" in stdout and "empty" not in stdout
    record("Command line", "a mistyped second key to `delete`, a built-in and an unknown dataset to `datasets delete`, "
           "a dataset's title and a family with no model to `list`", 5,
           "nothing deleted; one line naming what to type; `list` takes the title and says no model matches")
