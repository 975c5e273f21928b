"""The registry's trash: a deleted model waits here, restorable, until it is a week old or `python -m core doctor` runs.

Layout under the registry's root:

    trash/<key>-<deleted at, UTC, yyyymmddThhmmss>-<id>/   the entry's folder as it was, plus deleted.json

Moves are `os.replace` within the registry's file system, so a delete or a restore is atomic: the entry is
either served or in the trash, never half of each. The registry calls these functions (`Registry.delete`,
`Registry.restore`); the teacher's gate (core.teacher) guards both on a shared server.
"""

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from core.config import validate_key
from core.errors import CoreError, EntryNotFoundError, RegistryError

TRASH_DIR = "trash"
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


def move_to_trash(root: Path, entry_dir: Path, key: str, title: str) -> TrashItem:
    """Move a published entry's folder into the trash (atomic), with a note of when and what it was."""
    folder = trash_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc)
    target = folder / f"{validate_key(key)}-{now.strftime(STAMP)}-{uuid.uuid4().hex[:6]}"
    try:
        os.replace(entry_dir, target)  # atomic: the entry disappears from the registry at once
        (target / DELETED_FILE).write_text(json.dumps({"key": key, "title": title, "deleted_at": now.isoformat()}))
    except OSError as error:
        raise RegistryError(f"Could not move model {key} to the trash ({error.strerror or error}). Check that the "
                            f"registry folder {root} is writable.") from error
    return TrashItem(key, title, now, target)


def list_trash(root: Path) -> list[TrashItem]:
    """The deleted models still restorable, newest first (items past their week are emptied first)."""
    empty_trash(root, older_than=timedelta(days=KEEP_DAYS))
    return sorted(_items(root), key=lambda item: item.deleted_at, reverse=True)


def restore_from_trash(root: Path, key: str, entry_dir: Path) -> TrashItem:
    """Move the newest deleted copy of `key` back to `entry_dir`; refused when a model with that key exists again."""
    copies = [item for item in list_trash(root) if item.key == validate_key(key)]
    if not copies:
        raise EntryNotFoundError(f"No deleted model with key {key} is in the trash (deleted models are kept for "
                                 f"{KEEP_DAYS} days, or until `python -m core doctor` empties the trash).")
    if entry_dir.exists():
        raise RegistryError(f"A model with key {key} is in the registry again (the same settings were trained since it "
                            f"was deleted), so the deleted copy cannot be restored over it. Delete that one first.")
    item = copies[0]
    (item.path / DELETED_FILE).unlink(missing_ok=True)
    os.replace(item.path, entry_dir)
    return item


def empty_trash(root: Path, older_than: timedelta | None = None) -> list[TrashItem]:
    """Delete for good every item in the trash (or only those deleted more than `older_than` ago); returns them."""
    now = datetime.now(timezone.utc)
    removed = [item for item in _items(root) if older_than is None or now - item.deleted_at > older_than]
    for item in removed:
        shutil.rmtree(item.path, ignore_errors=True)
    return removed


def _items(root: Path) -> list[TrashItem]:
    items = []
    folder = trash_dir(root)
    for path in folder.iterdir() if folder.is_dir() else []:
        try:
            note = json.loads((path / DELETED_FILE).read_text())
            items.append(TrashItem(validate_key(note["key"]), str(note["title"]), datetime.fromisoformat(note["deleted_at"]),
                                   path))
        except (OSError, ValueError, KeyError, TypeError, CoreError):  # no note (a half-moved folder): read its name
            key, _, rest = path.name.partition("-")
            try:
                deleted_at = datetime.strptime(rest.split("-")[0], STAMP).replace(tzinfo=timezone.utc)
                items.append(TrashItem(validate_key(key), key, deleted_at, path))
            except (ValueError, CoreError):  # not a trash item: left alone
                continue
    return items
