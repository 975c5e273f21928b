"""The doctor: what `python -m core doctor` heals in a registry by itself, and what it finds for the teacher to fix.

It heals what is derived or left over: the index (rebuilt from the entry folders, set aside first when it is not a
database), the folders of trainings and imports that were killed, the half-written files of killed writes, the webcam
albums unchanged for a week. It reads every entry and imported dataset as the pages would, and names each one that is
damaged with the command that removes it; it deletes nothing a teacher made.
"""

import contextlib
import fcntl
import shutil
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from core.catalogue import datasets_dir, imported_manifests
from core.errors import CoreError
from core.folders import STAGING_LOCK, STAGING_PREFIX
from core.paths import UPLOAD_PREFIX, UPLOADS_FOLDER
from core.registry import EVAL_FILE, MODEL_FILE, Registry
from core.webcam import remove_old_albums


@dataclass
class Checkup:
    """What the doctor did and found."""

    removed: list[str] = field(default_factory=list)  # leftovers of killed trainings, imports and writes
    old_albums: list[str] = field(default_factory=list)  # webcam albums unchanged for a week (core.webcam)
    damaged_index: Path | None = None  # where an index that was not a database went (then rebuilt)
    indexed: list[str] = field(default_factory=list)  # entry folders added to the index
    unindexed: list[str] = field(default_factory=list)  # index rows of folders gone
    problems: list[str] = field(default_factory=list)  # each with what to do about it
    ready: int = 0  # entries that load and have their evaluation


def check_registry(registry: Registry) -> Checkup:
    """Heal `registry` and check every entry and imported dataset in it."""
    checkup = Checkup(damaged_index=registry.damaged_index)
    before = registry.indexed_keys()
    checkup.removed = (registry.clean_partial() + remove_empty_entries(registry) + remove_stale_writes(registry)
                       + remove_dead_imports(registry.root) + remove_stale_uploads(registry.root))
    checkup.old_albums = remove_old_albums(registry.root)
    checkup.problems = registry.heal()
    after = registry.list_entries()
    checkup.indexed = sorted({card.key for card in after} - before)
    checkup.unindexed = sorted(before - {card.key for card in after})
    for card in after:
        problem = entry_problem(registry, card)
        if problem:
            checkup.problems.append(problem)
        else:
            checkup.ready += 1
    checkup.problems += dataset_problems(registry.root)
    return checkup


def entry_problem(registry: Registry, card) -> str | None:
    """What is wrong with a listed entry, with the command that removes it; None when it loads and is evaluated."""
    delete = f"delete it with `python -m core delete {card.key}`"
    try:
        entry = registry.get(card.key)
    except CoreError as error:
        return f"{card.key} {card.title}: {error}"
    if not zipfile.is_zipfile(entry.path / MODEL_FILE):
        return f"{card.key} {card.title}: its model file is damaged (not a .keras archive); {delete}, then train it again."
    if entry.card.test_accuracy is not None and not (entry.path / EVAL_FILE).is_file():
        return (f"{card.key} {card.title}: its test-set evaluation ({EVAL_FILE}) is missing, so `show`, `compare` and "
                f"the pages cannot use it; {delete}, then train it again.")
    if entry.card.test_accuracy is not None:
        try:
            registry.load_evaluation(card.key)
        except CoreError:
            return (f"{card.key} {card.title}: its test-set evaluation ({EVAL_FILE}) is damaged, so `show`, `compare` "
                    f"and the pages cannot use it; {delete}, then train it again.")
    return None


def dataset_problems(root) -> list[str]:
    """Each imported dataset whose manifest cannot be read (it is left out of every list), with how to remove it."""
    return [f"{name}: {error} It is left out of every list until then; `python -m core datasets delete {name}` moves "
            "it to the trash." for name, error in imported_manifests(root).items() if isinstance(error, CoreError)]


def remove_dead_imports(root, quiet_seconds: float = 60) -> list[str]:
    """Remove the staging folders of imports that died (killed, or the machine stopped), which can hold hundreds of
    megabytes: a folder whose lock is free and that has not changed for `quiet_seconds` (an import takes its lock
    just after making it). Returns the names removed."""
    removed = []
    for staging in sorted(datasets_dir(root).glob(f"{STAGING_PREFIX}*")) if datasets_dir(root).is_dir() else []:
        try:
            if time.time() - staging.stat().st_mtime < quiet_seconds:
                continue
            with open(staging / STAGING_LOCK, "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # taken at once: its import has died
                shutil.rmtree(staging)  # while the lock is held
        except OSError:  # its import runs (BlockingIOError), or the folder went meanwhile
            continue
        removed.append(staging.name)
    return removed


def remove_empty_entries(registry: Registry) -> list[str]:
    """Remove empty folders where an entry would be (left by hand or a crash): they only block a restore."""
    removed = []
    for folder in sorted(registry.models_dir.iterdir()):
        if not folder.name.startswith(".") and folder.is_dir():
            with contextlib.suppress(OSError):  # not empty: heal names it
                folder.rmdir()
                removed.append(folder.name)
    return removed


def remove_stale_writes(registry: Registry, quiet_seconds: float = 60) -> list[str]:
    """Remove the half-written files (`*.tmp`) that a process killed while it replaced a file in a published entry
    (an evaluation, Inside the network's view) leaves beside it: those unchanged for `quiet_seconds`."""
    removed = []
    for written in sorted(registry.models_dir.glob("[!.]*/*.tmp")):
        with contextlib.suppress(OSError):
            if time.time() - written.stat().st_mtime >= quiet_seconds:
                written.unlink()
                removed.append(f"{written.parent.name}/{written.name}")
    return removed


def remove_stale_uploads(root, quiet_seconds: float = 3600) -> list[str]:
    """Remove uploads left in the registry's uploads folder by a server stopped mid-import (an hour unchanged)."""
    removed = []
    folder = Path(root) / UPLOADS_FOLDER
    for upload in sorted(folder.glob(f"{UPLOAD_PREFIX}*")) if folder.is_dir() else []:
        with contextlib.suppress(OSError):
            if time.time() - upload.stat().st_mtime >= quiet_seconds:
                shutil.rmtree(upload) if upload.is_dir() else upload.unlink()
                removed.append(f"{UPLOADS_FOLDER}/{upload.name}")
    return removed
