"""The registry's trash: a deleted model (or imported dataset) waits here, restorable, until it is a week old or
`python -m core doctor --empty-trash` runs.

Layout under the registry's root:

    trash/<key>-<deleted at, UTC, yyyymmddThhmmss>-<id>/            the entry's folder as it was, plus deleted.json
    trash/datasets/<dataset id>-<deleted at>-<id>/                   an imported dataset's folder, plus deleted.json

Moves are `os.replace` within the registry's file system, so a delete or a restore is atomic: the entry is
either served or in the trash, never half of each. The registry calls these functions (`Registry.delete`,
`Registry.restore`); the teacher's gate (core.teacher) guards both on a shared server.
"""

import contextlib
import json
import os
import shutil
import uuid
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from core.catalogue import DATASET_ID_PATTERN, FOLDER_PREFIX
from core.config import validate_key
from core.errors import CoreError, EntryNotFoundError, RegistryError

TRASH_DIR = "trash"
DATASETS_TRASH_DIR = "datasets"  # inside TRASH_DIR
DELETED_FILE = "deleted.json"
KEEP_DAYS = 7  # a deleted model can be restored for this long; older ones go when the trash is next touched
STAMP = "%Y%m%dT%H%M%S"


@dataclass(frozen=True)
class TrashItem:
    """A deleted model waiting in the trash."""

    key: str
    title: str
    deleted_at: datetime
    path: Path

    @property
    def restorable_until(self) -> datetime:
        return self.deleted_at + timedelta(days=KEEP_DAYS)


def trash_dir(root: Path) -> Path:
    return Path(root) / TRASH_DIR


def trashed_keys(root: Path) -> set[str]:
    """The keys of the deleted models in the trash, read from its folders' names (nothing is emptied here)."""
    folder = trash_dir(root)
    return {path.name.partition("-")[0] for path in folder.iterdir() if "-" in path.name} if folder.is_dir() else set()


def move_to_trash(root: Path, entry_dir: Path, key: str, title: str) -> TrashItem:
    """Move a published entry's folder into the trash (atomic), with a note of when and what it was."""
    return _move(trash_dir(root), entry_dir, validate_key(key), title, f"model {key}", root)


def list_trash(root: Path) -> list[TrashItem]:
    """The deleted models still restorable, newest first (items past their week are emptied first)."""
    empty_trash(root, older_than=timedelta(days=KEEP_DAYS))
    return sorted(_items(trash_dir(root), validate_key), key=lambda item: item.deleted_at, reverse=True)


def restore_from_trash(root: Path, key: str, entry_dir: Path) -> TrashItem:
    """Move the newest deleted copy of `key` back to `entry_dir`; refused when a model with that key exists again, or
    when the copy could not be used (it stays where it is)."""
    return _restore_newest(
        list_trash(root), validate_key(key), entry_dir, check=lambda copy: _check_usable(key, copy),
        missing=f"No deleted model with key {key} is in the trash (deleted models are kept for {KEEP_DAYS} days, or "
                "until `python -m core doctor --empty-trash` empties the trash).",
        again=f"A model with key {key} is in the registry again (trained again with the same settings, or the same file "
              "imported again, since it was deleted), so the deleted copy is not restored over it: the registry has "
              "this model (its settings, or its file) already.")


def move_dataset_to_trash(root: Path, dataset_dir: Path, dataset_id: str, title: str) -> TrashItem:
    """Move an imported dataset's folder into the trash (atomic), with a note of when and what it was."""
    return _move(trash_dir(root) / DATASETS_TRASH_DIR, dataset_dir, validate_dataset_id(dataset_id), title,
                 f"dataset {title!r}", root)


def list_dataset_trash(root: Path) -> list[TrashItem]:
    """The deleted imported datasets still restorable, newest first (their `key` is the dataset's id)."""
    empty_trash(root, older_than=timedelta(days=KEEP_DAYS))
    return sorted(_items(trash_dir(root) / DATASETS_TRASH_DIR, validate_dataset_id), key=lambda item: item.deleted_at,
                  reverse=True)


def restore_dataset_from_trash(root: Path, dataset_id: str, dataset_dir: Path) -> TrashItem:
    """Move the newest deleted copy of dataset `dataset_id` back to `dataset_dir`; refused when it was imported again."""
    return _restore_newest(
        list_dataset_trash(root), validate_dataset_id(dataset_id), dataset_dir,
        missing=f"No deleted dataset with id {dataset_id} is in the trash (deleted datasets are kept for {KEEP_DAYS} "
                "days, or until `python -m core doctor --empty-trash` empties the trash).",
        again=f"The same photos were imported again since this dataset was deleted, so it is here already. "
              f"Received: dataset_id={dataset_id!r}")


def forget_deleted_dataset(root: Path, dataset_id: str) -> int:
    """Empty the trash of dataset `dataset_id` once the same photos are imported again (its id is their hash, so a
    deleted copy holds nothing new and could not be restored over them); returns how many copies went."""
    copies = [item for item in _items(trash_dir(root) / DATASETS_TRASH_DIR, validate_dataset_id) if item.key == dataset_id]
    for item in copies:
        shutil.rmtree(item.path, ignore_errors=True)
    return len(copies)


def deleted_dataset_message(root: Path, name: str) -> str | None:
    """What to say of imported dataset `name` (folder:<id>) when it waits in the trash: when it was deleted, until when
    it can be restored, and how; None when it is not there."""
    dataset_id = name.removeprefix(FOLDER_PREFIX)
    deleted = next((item for item in list_dataset_trash(root) if item.key == dataset_id), None)
    if deleted is None:
        return None
    return (f"The dataset “{deleted.title}” was deleted on {deleted.deleted_at:%Y-%m-%d} and waits in the trash until "
            f"{deleted.restorable_until:%Y-%m-%d}: the teacher can restore it on the Models page (or with "
            f"`python -m core datasets restore {name}`). Received: name={name!r}")


def validate_dataset_id(dataset_id: str) -> str:
    """An imported dataset's id: 12 lowercase hexadecimal digits (the folder under registry/datasets/)."""
    if not (isinstance(dataset_id, str) and DATASET_ID_PATTERN.fullmatch(dataset_id)):
        raise CoreError(f"An imported dataset's id is 12 hexadecimal digits. Received: dataset_id={dataset_id!r}")
    return dataset_id


def empty_trash(root: Path, older_than: timedelta | None = None) -> list[TrashItem]:
    """Delete for good every item in the trash (or only those deleted more than `older_than` ago); returns those
    deleted, not those that could not be (a read-only registry: `doctor --empty-trash` said them emptied)."""
    now = datetime.now(timezone.utc)
    everything = _items(trash_dir(root), validate_key) + _items(trash_dir(root) / DATASETS_TRASH_DIR, validate_dataset_id)
    chosen = [item for item in everything if older_than is None or now - item.deleted_at > older_than]
    for item in chosen:
        shutil.rmtree(item.path, ignore_errors=True)
    return [item for item in chosen if not item.path.exists()]


def _move(folder: Path, source: Path, item_id: str, title: str, what: str, root: Path) -> TrashItem:
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc)
    target = folder / f"{item_id}-{now.strftime(STAMP)}-{uuid.uuid4().hex[:6]}"
    try:
        os.replace(source, target)  # atomic: it disappears from the registry at once
        (target / DELETED_FILE).write_text(json.dumps({"key": item_id, "title": title, "deleted_at": now.isoformat()}))
    except OSError as error:
        raise RegistryError(f"Could not move {what} to the trash ({error.strerror or error}). Check that the "
                            f"registry folder {root} is writable.") from error
    return TrashItem(item_id, title, now, target)


def _check_usable(key: str, directory: Path):
    """Refuse to restore a deleted model that could not be used (its card or model file missing or damaged): moved
    back, it only said "No model with key …" or "damaged: delete it", the way it had gone to the trash."""
    from core.card import ModelCard
    from core.registry import CARD_FILE, MODEL_FILE

    missing = [name for name in (CARD_FILE, MODEL_FILE) if not (directory / name).is_file()]
    problem = f"{' and '.join(missing)} missing" if missing else None
    if problem is None:
        try:
            ModelCard.from_dict(json.loads((directory / CARD_FILE).read_text()))
            problem = None if zipfile.is_zipfile(directory / MODEL_FILE) else f"{MODEL_FILE} is not a .keras archive"
        except (OSError, ValueError, CoreError):  # its own message would say "delete the entry"
            problem = f"{CARD_FILE} is damaged"
    if problem:
        raise RegistryError(f"The deleted copy of {key} is damaged ({problem}), so it is not restored: it could not "
                            "be used. It stays in the trash until the trash is emptied; train the model again.")


def _restore_newest(items: list[TrashItem], item_id: str, destination: Path, missing: str, again: str,
                    check=lambda copy: None) -> TrashItem:
    """Move the newest of `items` deleted as `item_id` back to `destination` (which must not exist again), once
    `check(its folder)` has not raised."""
    copies = [item for item in items if item.key == item_id]
    if not copies:
        raise EntryNotFoundError(missing)
    check(copies[0].path)
    with contextlib.suppress(OSError):
        destination.rmdir()  # an empty folder left where the entry was (by hand, or a crash) holds nothing to keep
    if destination.exists():
        raise RegistryError(again)
    try:
        os.replace(copies[0].path, destination)
    except OSError as error:  # its note stays with it: still listed, with its title, and restorable once writable
        raise RegistryError(f"Could not move {copies[0].title!r} back out of the trash ({error.strerror or error}). "
                            f"Check that the folder {destination.parent} is writable, then restore it again.") from error
    (destination / DELETED_FILE).unlink(missing_ok=True)
    return copies[0]


def _items(folder: Path, validate) -> list[TrashItem]:
    items = []
    for path in folder.iterdir() if folder.is_dir() else []:
        try:
            note = json.loads((path / DELETED_FILE).read_text())
            items.append(TrashItem(validate(note["key"]), str(note["title"]), datetime.fromisoformat(note["deleted_at"]),
                                   path))
        except (OSError, ValueError, KeyError, TypeError, CoreError):  # no note (a half-moved folder): read its name
            key, _, rest = path.name.partition("-")
            try:
                deleted_at = datetime.strptime(rest.split("-")[0], STAMP).replace(tzinfo=timezone.utc)
                items.append(TrashItem(validate(key), key, deleted_at, path))
            except (ValueError, CoreError):  # not a trash item (the datasets folder among the models): left alone
                continue
    return items
