"""The model registry: a store of published models, keyed by their configuration, on disk and in a SQLite index.

It finds, publishes, lists, deletes, imports and exports; it never trains (that is `core.jobs` and
`core.engines`). Layout under the root (default `registry/`, or $CNNCLASSROOM_REGISTRY):

    index.sqlite              one row per published entry, for listing and sorting (SQLite, WAL)
    models/<key>/             one published entry: model.keras, card.json, history.json, eval.npz, view.npz (+ pinned)
    models/.tmp-<key>-<id>/   an entry being built; moved into place with os.replace when complete
    locks/<key>.lock          held (flock) by the one process training or publishing <key>
    datasets/<id>/            imported folder datasets
    trash/<key>-<when>-<id>/  deleted entries, restorable for a week (core.trash)
    jobs.sqlite               the training queue, owned by core.jobs

Importing this module does not import TensorFlow; loading or importing a model does. Under 450 lines: the six
verbs of one store, each with the errors it owes a student and the command line.
"""

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import sqlite3
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core import trash
from core.card import ModelCard, imported_card, numbered_title
from core.config import KEY_PATTERN, TrainConfig, validate_key
from core.database import closing, open_database, opened_or_made_anew, writable
from core.errors import CoreError, EntryNotFoundError, ModelFileError, RegistryError
from core.history import History, history_from_json
from core.model_files import (class_names_for, export_target, load_model_file, model_file_key, write_converted,
                              write_keras_export, written_whole)
from core.paths import registry_root

INDEX_FILE = "index.sqlite"
MODELS_DIR = "models"
LOCKS_DIR = "locks"
MODEL_FILE = "model.keras"
CARD_FILE = "card.json"
HISTORY_FILE = "history.json"
EVAL_FILE = "eval.npz"
PINNED_FILE = "pinned"  # present in an entry's folder while a lesson needs it: delete refuses the entry
TEMP_PREFIX = ".tmp-"
EXPORT_FORMATS = ("keras", "savedmodel", "tflite")
# What a page shows for the registry's own failures: the exact error, with the command that mends it, goes to the log
DAMAGED_MODEL = ("This model's files on the server are damaged, so it cannot be used. Pick another model; the teacher "
                 "can delete this one on the Models page, and it can then be trained again.")
GONE_MODEL = "This model is no longer on the server (it may have just been deleted). Pick another one, or train it again."
SERVER_PROBLEM = "The server cannot open its model folder. Tell the teacher: the server's log says what is wrong."

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY, title TEXT, dataset TEXT, family TEXT, test_accuracy REAL, test_loss REAL,
    params INTEGER, train_seconds REAL, epochs_run INTEGER, created TEXT, card TEXT
);
"""


@dataclass
class Entry:
    """A published registry entry: its card and history (the model and evaluation load on demand)."""

    key: str
    path: Path
    card: ModelCard
    history: History

    @property
    def config(self) -> TrainConfig | None:
        """The training config, or None for an imported model."""
        return self.card.config

    @property
    def title(self) -> str:
        return self.card.title

    @property
    def test_accuracy(self) -> float | None:
        return self.card.test_accuracy

    @property
    def class_names(self) -> list[str]:
        return self.card.class_names


class Registry:
    """Published models on disk: find, publish, list, delete, import, export."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else registry_root()
        self.models_dir = self.root / MODELS_DIR
        self.locks_dir = self.root / LOCKS_DIR
        try:
            self.models_dir.mkdir(parents=True, exist_ok=True)
            self.locks_dir.mkdir(parents=True, exist_ok=True)
            # A damaged index is set aside and rebuilt from the entry folders, like a deleted one.
            self.damaged_index = opened_or_made_anew(self.root / INDEX_FILE, self._open_index)
        except (OSError, sqlite3.Error) as error:
            raise RegistryError(
                f"Cannot open the model registry at {self.root}: {error}. "
                f"Check that the folder is writable, or point $CNNCLASSROOM_REGISTRY at one that is.",
                student=SERVER_PROBLEM) from error

    def _open_index(self):
        with self._connect() as connection:  # a new index is filled from the entry folders
            if writable(self.root / INDEX_FILE):  # (one this process may only read is read as it is)
                connection.executescript(SCHEMA)

    # ----- Paths and locks -------------------------------------------------------------------

    def entry_dir(self, key: str) -> Path:
        """The folder of entry `key` (validated before the path is built)."""
        return self.models_dir / validate_key(key)

    def _connect(self) -> sqlite3.Connection:
        """A connection to index.sqlite; a missing index (new, or deleted by hand) is recreated and refilled."""
        index_is_missing = not (self.root / INDEX_FILE).exists()
        connection = open_database(self.root / INDEX_FILE)
        if index_is_missing:
            connection.executescript(SCHEMA)
            self.heal()  # the index exists again, so this connects without coming back here
        return closing(connection, self.root / INDEX_FILE)

    @contextlib.contextmanager
    def key_lock(self, key: str, blocking: bool = True):
        """Hold the training lock of `key`; yields False at once when not blocking and it is taken."""
        lock_path = self.locks_dir / f"{validate_key(key)}.lock"
        with open(lock_path, "a") as lock_file:
            flags = fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB
            try:
                fcntl.flock(lock_file, flags)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    # ----- Reading ---------------------------------------------------------------------------

    def _no_entry(self, key: str) -> EntryNotFoundError:
        """The error for a key with no entry here (deleted, perhaps just now), in a student's words on a page."""
        if key in trash.trashed_keys(self.root):
            return EntryNotFoundError(f"The model {key} was deleted: it waits in the trash of the registry at {self.root}; "
                                      f"`python -m core restore {key}` brings it back.", student=GONE_MODEL)
        return EntryNotFoundError(f"No model with key {key} in the registry at {self.root}. Run `python -m core list` "
                                  "to see the keys that exist.", student=GONE_MODEL)

    def _damaged(self, key: str, error: Exception) -> RegistryError:
        """The error for an entry whose files cannot be read, naming the command that removes it."""
        return RegistryError(f"The entry {key} is damaged ({error}). Delete it with `python -m core delete {key}`.",
                             student=DAMAGED_MODEL)

    def has(self, key: str) -> bool:
        """True when a complete entry for `key` is published."""
        directory = self.entry_dir(key)
        return (directory / CARD_FILE).is_file() and (directory / MODEL_FILE).is_file()

    def get(self, key: str) -> Entry:
        """The published entry `key`, or EntryNotFoundError."""
        directory = self.entry_dir(key)
        if not self.has(key):
            raise self._no_entry(key)
        try:
            card = ModelCard.from_dict(json.loads((directory / CARD_FILE).read_text()))
            history_path = directory / HISTORY_FILE
            history = history_from_json(json.loads(history_path.read_text())) if history_path.exists() else []
        except (OSError, ValueError, RegistryError) as error:
            raise self._damaged(key, error) from error
        return Entry(key, directory, card, history)

    def find(self, config: TrainConfig) -> Entry | None:
        """The entry trained from `config`, or None."""
        return self.get(config.key) if self.has(config.key) else None

    def list_entries(self, dataset: str | None = None, family: str | None = None, order_by: str = "created") -> list[ModelCard]:
        """The cards of published entries (newest first by default), healed against the folders on disk."""
        self.heal()
        columns = {"created", "test_accuracy", "params", "train_seconds", "title", "dataset", "family"}
        if order_by not in columns:
            raise RegistryError(f"Cannot sort by {order_by!r}. Expected one of {sorted(columns)}.")
        query, arguments = "SELECT * FROM entries WHERE 1=1", []
        if dataset:
            query, arguments = query + " AND dataset = ?", arguments + [dataset]
        if family:
            query, arguments = query + " AND family = ?", arguments + [family]
        direction = "ASC" if order_by in ("title", "dataset", "family") else "DESC"
        with self._connect() as connection:
            rows = connection.execute(f"SELECT card FROM ({query}) ORDER BY {order_by} {direction}", arguments).fetchall()
        return [ModelCard.from_dict(json.loads(row["card"])) for row in rows]

    def load_model(self, key: str):
        """The trained Keras model of entry `key`, loaded in safe mode (no custom code runs)."""
        from core.backend import keras

        path = self.entry_dir(key) / MODEL_FILE
        if not path.is_file():
            raise self._no_entry(key)
        try:
            return keras.saving.load_model(path, safe_mode=True)
        except Exception as error:
            raise RegistryError(
                f"The model file of entry {key} cannot be loaded ({type(error).__name__}: {error}). "
                f"Delete the entry with `python -m core delete {key}` and train it again.", student=DAMAGED_MODEL
            ) from error

    def load_evaluation(self, key: str):
        """The stored test-set evaluation of entry `key`."""
        from core.evaluation import Evaluation

        path = self.entry_dir(key) / EVAL_FILE
        if not path.is_file():
            raise EntryNotFoundError(f"Entry {key} has no evaluation file; it may have been imported without a dataset.")
        try:
            return Evaluation.load(path)
        except CoreError as error:  # damaged: no command evaluates a model again, so the way out is a new training
            raise RegistryError(f"{error} Delete the entry with `python -m core delete {key}` and train it again.",
                                student=DAMAGED_MODEL) from error

    # ----- Publishing ------------------------------------------------------------------------

    def publish(self, card: ModelCard, history: History, write_files: Callable[[Path], None]) -> Entry:
        """Write an entry into a temp folder beside its final place, then move it there atomically.

        `write_files(folder)` writes model.keras (and eval.npz, for a trained model) into `folder`. The caller
        holds the key's lock (`key_lock`), so that one key is published by one process at a time.
        """
        key, card = card.key, self.with_base_title(card)
        temp_dir = self.models_dir / f"{TEMP_PREFIX}{key}-{uuid.uuid4().hex[:8]}"
        final_dir = self.entry_dir(key)
        try:
            temp_dir.mkdir()
            write_files(temp_dir)
            _write_json(temp_dir / HISTORY_FILE, history)
            _write_json(temp_dir / CARD_FILE, card.to_dict())  # written last: a folder with a card is complete
            if final_dir.exists():
                shutil.rmtree(final_dir)  # a damaged leftover; we hold the key's lock
            os.replace(temp_dir, final_dir)
        except OSError as error:
            shutil.rmtree(temp_dir, ignore_errors=True)
            raise RegistryError(
                f"Could not save model {key} to {self.models_dir}: {error.strerror or error}. "
                f"Free some disk space or make the registry folder writable, then train or import it again.",
                student="The server could not save the trained model (its disk may be full). Tell the teacher, who "
                        "can free some space; then press Train again.") from error
        self._index(card)
        return self.get(key)

    def base_title(self, config: TrainConfig | None) -> str | None:
        """The title of `config`'s registry base CNN, when it is a transfer model's and the base is here."""
        key = config.registry_base_key if config else None
        return self.get(key).title if key and self.has(key) else None

    def with_base_title(self, card: ModelCard) -> ModelCard:
        """A transfer model's card naming its registry base by the base's title, kept from now on (not its key)."""
        title = None if card.base_title else self.base_title(card.config)
        if title is None:
            return card
        return dataclasses.replace(card, base_title=title, title=card.config.describe(card.dataset.title, title))

    def _index(self, card: ModelCard):
        row = (
            card.key, card.title, card.dataset.name, card.family, card.test_accuracy, card.test_loss, card.params.total,
            card.timings.train_seconds, card.epochs_run, card.created, json.dumps(card.to_dict()),
        )
        with self._connect() as connection:
            connection.execute("INSERT OR REPLACE INTO entries VALUES (?,?,?,?,?,?,?,?,?,?,?)", row)

    # ----- Maintenance -----------------------------------------------------------------------

    def heal(self) -> list[str]:
        """Make the index match the folders: drop rows without a folder, add folders without a row.

        Returns a message for every damaged folder found (they are skipped, not served).
        """
        problems = []
        with self._connect() as connection:
            indexed = {row["key"] for row in connection.execute("SELECT key FROM entries")}
            on_disk = set()
            for directory in self.models_dir.iterdir():
                name = directory.name
                if name.startswith(".") or not directory.is_dir():  # a training under way (.tmp-), or hidden
                    continue
                if not KEY_PATTERN.fullmatch(name):
                    problems.append(f"{directory}: not a registry entry (bad key); ignored. Move it out of {self.models_dir}.")
                    continue
                if not self.has(name):
                    problems.append(f"{directory}: incomplete entry (no card or model file); ignored. Delete it with "
                                    f"`python -m core delete {name}`.")
                    continue
                on_disk.add(name)
            for key in indexed - on_disk:
                connection.execute("DELETE FROM entries WHERE key = ?", (key,))
        for key in sorted(on_disk - indexed):
            try:
                self._index(self.get(key).card)
            except Exception as error:  # a card we cannot read is reported, never served
                problems.append(f"{self.models_dir / key}: damaged card ({error}); ignored.")
        return problems

    def reindex(self) -> list[str]:
        """Rebuild the entries table from the folders (after index.sqlite was deleted, say)."""
        with self._connect() as connection:
            connection.execute("DELETE FROM entries")
        return self.heal()

    def clean_partial(self) -> list[str]:
        """Remove temp folders left by trainings that died; a folder whose trainer is alive is kept."""
        removed = []
        for directory in self.models_dir.glob(f"{TEMP_PREFIX}*"):
            key = directory.name[len(TEMP_PREFIX):].split("-")[0]
            if KEY_PATTERN.fullmatch(key):
                with self.key_lock(key, blocking=False) as acquired:
                    if not acquired:
                        continue  # its trainer is alive
            shutil.rmtree(directory, ignore_errors=True)  # no trainer can hold a lock for a name that is not a key
            removed.append(directory.name)
        return removed

    def pin(self, key: str, pinned: bool = True):
        """Mark entry `key` as needed by a lesson (it cannot be deleted until unpinned), or unmark it."""
        directory = self.entry_dir(key)
        if not self.has(key):
            raise self._no_entry(key)
        if pinned:
            (directory / PINNED_FILE).touch()
        else:
            (directory / PINNED_FILE).unlink(missing_ok=True)

    def is_pinned(self, key: str) -> bool:
        return (self.entry_dir(key) / PINNED_FILE).is_file()

    def pinned_keys(self) -> set[str]:
        """The keys of every pinned entry."""
        return {path.parent.name for path in self.models_dir.glob(f"*/{PINNED_FILE}") if not path.parent.name.startswith(".")}

    def deletable_title(self, key: str) -> str:
        """The title of entry `key` (its key where the card is damaged) when it may be deleted; else the error that
        says why not: no such entry, or pinned."""
        if not self.entry_dir(key).exists():
            raise self._no_entry(key)
        try:  # the card's title even where the model file is gone: the trash lists it by title
            title = ModelCard.from_dict(json.loads((self.entry_dir(key) / CARD_FILE).read_text())).title
        except (OSError, ValueError, CoreError):  # a damaged entry: deleting it is the way out its message names
            title = key
        if self.is_pinned(key):
            raise RegistryError(f"“{title}” ({key}) is pinned for a lesson, so it cannot be deleted. Unpin it first "
                                f"(`python -m core unpin {key}`, or the Models page in teacher mode), then delete it.",
                                student=f"“{title}” is pinned for a lesson, so it cannot be deleted. Unpin it first: "
                                        "choose it in the table, then Unpin.")
        return title

    def delete(self, key: str) -> trash.TrashItem:
        """Move entry `key` to the registry's trash (restorable for a week, core.trash); a pinned entry is refused."""
        title = self.deletable_title(key)
        directory = self.entry_dir(key)
        item = trash.move_to_trash(self.root, directory, key, title)
        with self._connect() as connection:
            connection.execute("DELETE FROM entries WHERE key = ?", (key,))
        return item

    def restore(self, key: str) -> Entry:
        """Bring the newest deleted copy of `key` back from the trash; refused while `key` is being trained again (its
        publishing would replace the restored copy, already gone from the trash)."""
        with self.key_lock(key, blocking=False) as acquired:
            if not acquired:
                raise RegistryError(f"A model with key {key} is being trained or imported again right now; restore "
                                    "the deleted copy once that is done, if it is still wanted.")
            trash.restore_from_trash(self.root, key, self.entry_dir(key))
        self._index(self.get(key).card)
        return self.get(key)

    def indexed_keys(self) -> set[str]:
        """The keys the index lists, as it is (`list_entries` heals it against the folders first)."""
        with self._connect() as connection:
            return {row["key"] for row in connection.execute("SELECT key FROM entries")}

    # ----- Import and export -----------------------------------------------------------------

    def export(self, key: str, fmt: str, destination: str | Path) -> Path:
        """Write entry `key` as a .keras file (with its card and history, `model_files.ENTRY_NOTE`), a SavedModel zip
        or a .tflite file: into folder `destination`, or as `destination` when it is named like such a file."""
        if fmt not in EXPORT_FORMATS:
            raise RegistryError(f"Export format must be one of {EXPORT_FORMATS}. Received: format={fmt!r}")
        source = self.entry_dir(key) / MODEL_FILE
        if not source.is_file():
            raise self._no_entry(key)
        target = export_target(destination, key if fmt != "savedmodel" else f"{key}_saved_model", fmt)
        entry = self.get(key)  # a damaged card is said here, before anything is written
        model = self.load_model(key) if fmt != "keras" else None
        try:
            with written_whole(target) as part:
                if fmt == "keras":
                    write_keras_export(source, part, {"card": entry.card.to_dict(), "history": entry.history})
                else:
                    write_converted(model, fmt, part)
        except zipfile.BadZipFile as error:
            raise self._damaged(key, error) from error
        except FileExistsError as error:
            raise RegistryError(f"{target} appeared while the export was written, and is kept: name another file. "
                                f"Received: destination={str(destination)!r}") from error
        except OSError as error:
            raise RegistryError(f"Could not write {target} ({error.strerror or error}); nothing was left there. Name a "
                                f"folder you can write to, with room for the file. Received: destination="
                                f"{str(destination)!r}") from error
        return target

    def import_model(self, path: str | Path, class_names: list[str] | None = None, title: str | None = None,
                     about: ModelCard | None = None, model=None) -> Entry:
        """Register a .keras file made elsewhere, keyed by its bytes; safe mode refuses files that carry custom code.
        `about`, the card an export of this app carried (core.exchange), gives the class names, title and dataset
        facts that `class_names` and `title` do not; `model`, the file loaded already, saves loading it again."""
        path = Path(path)
        key = model_file_key(path)
        if self.has(key):
            entry = self.get(key)
            if class_names is not None and list(class_names) != list(entry.card.class_names):
                raise ModelFileError(
                    f"{path.name} was imported before as {key} with the class names {list(entry.card.class_names)}; a "
                    f"model's class names are part of its entry and are not changed by importing it again. To use new "
                    f"names, delete it first (`python -m core delete {key}`, or Delete on the Models page), then import "
                    f"it with the new names. Received: class_names={list(class_names)}")
            return entry
        model = load_model_file(path) if model is None else model
        class_names = class_names_for(int(model.output_shape[-1]), class_names or (about and about.class_names))
        title = numbered_title(title or (about and about.title) or f"Imported {path.name}",
                               {card.title for card in self.list_entries()})  # no two models share a title
        card = imported_card(key, model, class_names, title, path.name, about)
        with self.key_lock(key):
            return self.publish(card, [], lambda folder: shutil.copyfile(path, folder / MODEL_FILE))


def _write_json(path: Path, value):
    with open(path, "w") as handle:
        json.dump(value, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
