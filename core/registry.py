"""The model registry: every trained model, keyed by its configuration, on disk and in a SQLite index.

Layout under the root (default `registry/`, or $CNNCLASSROOM_REGISTRY):

    index.sqlite              entries, jobs and per-epoch progress (SQLite, WAL)
    models/<key>/             one published entry: model.keras, card.json, history.json, eval.npz
    models/.tmp-<key>-<id>/   an entry being built; moved into place with os.replace when complete
    locks/<key>.lock          held (flock) by the one process training <key>
    datasets/<id>/            imported folder datasets

Importing this module does not import TensorFlow; loading or training a model does.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import sqlite3
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from core.archives import check_zip_entries
from core.config import TrainConfig, validate_key
from core.errors import EntryNotFoundError, ModelFileError, RegistryError
from core.paths import registry_root

INDEX_FILE = "index.sqlite"
MODELS_DIR = "models"
LOCKS_DIR = "locks"
MODEL_FILE = "model.keras"
CARD_FILE = "card.json"
HISTORY_FILE = "history.json"
EVAL_FILE = "eval.npz"
TEMP_PREFIX = ".tmp-"
EXPORT_FORMATS = ("keras", "savedmodel", "tflite")
MAX_IMPORT_BYTES = 500 * 1024 * 1024
MAX_COMPRESSION_RATIO = 100  # a .keras entry expanding more than this is a zip bomb (weights barely compress)
RATIO_CHECK_MIN_BYTES = 2**20  # smaller entries cannot do harm

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY, title TEXT, dataset TEXT, family TEXT, test_accuracy REAL, test_loss REAL,
    params INTEGER, train_seconds REAL, epochs_run INTEGER, created TEXT, card TEXT
);
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY, config TEXT NOT NULL, status TEXT NOT NULL, message TEXT, pid INTEGER,
    submitted REAL, started REAL, finished REAL, cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS progress (
    key TEXT NOT NULL, epoch INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (key, epoch)
);
"""


@dataclass
class Entry:
    """A published registry entry: its card and history (the model and evaluation load on demand)."""

    key: str
    path: Path
    card: dict
    history: list[dict]

    @property
    def config(self) -> TrainConfig | None:
        """The training config, or None for an imported model."""
        return TrainConfig.from_dict(self.card["config"]) if self.card.get("config") else None

    @property
    def title(self) -> str:
        return self.card.get("title", self.key)

    @property
    def test_accuracy(self) -> float | None:
        return self.card.get("test", {}).get("accuracy")

    @property
    def class_names(self) -> list[str]:
        return self.card["dataset"]["class_names"]


class Registry:
    """Trains each configuration once and serves it from disk ever after."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else registry_root()
        self.models_dir = self.root / MODELS_DIR
        self.locks_dir = self.root / LOCKS_DIR
        try:
            self.models_dir.mkdir(parents=True, exist_ok=True)
            self.locks_dir.mkdir(parents=True, exist_ok=True)
            with self._connect() as connection:  # a new index is filled from the entry folders
                connection.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as error:
            raise RegistryError(
                f"Cannot open the model registry at {self.root}: {error}. "
                f"Check that the folder is writable, or point $CNNCLASSROOM_REGISTRY at one that is."
            ) from error

    # ----- Paths and locks -------------------------------------------------------------------

    def entry_dir(self, key: str) -> Path:
        """The folder of entry `key` (validated before the path is built)."""
        return self.models_dir / validate_key(key)

    def _connect(self) -> sqlite3.Connection:
        """A connection to index.sqlite; a missing index (new, or deleted by hand) is recreated and refilled."""
        index_is_missing = not (self.root / INDEX_FILE).exists()
        connection = sqlite3.connect(self.root / INDEX_FILE, timeout=30, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA busy_timeout=30000")
        connection.row_factory = sqlite3.Row
        if index_is_missing:
            connection.executescript(SCHEMA)
            self.heal()  # the index exists again, so this connects without coming back here
        return contextlib.closing(connection)

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

    def has(self, key: str) -> bool:
        """True when a complete entry for `key` is published."""
        directory = self.entry_dir(key)
        return (directory / CARD_FILE).is_file() and (directory / MODEL_FILE).is_file()

    def get(self, key: str) -> Entry:
        """The published entry `key`, or EntryNotFoundError."""
        directory = self.entry_dir(key)
        if not self.has(key):
            raise EntryNotFoundError(
                f"No model with key {key} in the registry at {self.root}. "
                f"Run `python -m core list` to see the keys that exist."
            )
        try:
            card = json.loads((directory / CARD_FILE).read_text())
            history_path = directory / HISTORY_FILE
            history = json.loads(history_path.read_text()) if history_path.exists() else []
        except (OSError, ValueError) as error:
            raise RegistryError(f"The entry {key} is damaged ({error}). Delete it with `python -m core delete {key}`.") from error
        return Entry(key, directory, card, history)

    def find(self, config: TrainConfig) -> Entry | None:
        """The entry trained from `config`, or None."""
        return self.get(config.key) if self.has(config.key) else None

    def list_entries(self, dataset: str | None = None, family: str | None = None, order_by: str = "created") -> list[dict]:
        """Index rows (newest first by default), healed against the folders on disk."""
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
            rows = connection.execute(f"{query} ORDER BY {order_by} {direction}", arguments).fetchall()
        return [{name: row[name] for name in row.keys() if name != "card"} for row in rows]

    def load_model(self, key: str):
        """The trained Keras model of entry `key`, loaded in safe mode (no custom code runs)."""
        import keras

        path = self.entry_dir(key) / MODEL_FILE
        if not path.is_file():
            raise EntryNotFoundError(f"No model with key {key} in the registry at {self.root}.")
        try:
            return keras.saving.load_model(path, safe_mode=True)
        except Exception as error:
            raise RegistryError(
                f"The model file of entry {key} cannot be loaded ({type(error).__name__}: {error}). "
                f"Delete the entry with `python -m core delete {key}` and train it again."
            ) from error

    def load_evaluation(self, key: str):
        """The stored test-set evaluation of entry `key`."""
        from core.evaluation import Evaluation

        path = self.entry_dir(key) / EVAL_FILE
        if not path.is_file():
            raise EntryNotFoundError(f"Entry {key} has no evaluation file; it may have been imported without a dataset.")
        return Evaluation.load(path)

    # ----- Training and publishing -----------------------------------------------------------

    def get_or_train(self, config: TrainConfig, on_epoch=None, should_stop=None) -> Entry:
        """Return the entry for `config`, training it first if nobody has; concurrent callers train once."""
        if self.has(config.key):
            return self.get(config.key)
        with self.key_lock(config.key):
            if self.has(config.key):
                return self.get(config.key)
            return self._train_and_publish(config, on_epoch, should_stop)

    def _train_and_publish(self, config: TrainConfig, on_epoch, should_stop) -> Entry:
        from core import training
        from core.evaluation import evaluate
        from core.models import count_params, summary_rows

        dataset = training.load_dataset_for(config)
        result = training.train(config, dataset, on_epoch=on_epoch, should_stop=should_stop, base_loader=self.load_model)
        started = time.perf_counter()
        evaluation = evaluate(result.model, dataset.x_test, dataset.y_test, dataset.class_names)
        card = {
            "key": config.key,
            "title": config.title,
            "status": "ready",
            "imported": False,
            "config": config.canonical().to_dict(),
            "dataset": _dataset_card(dataset),
            "params": count_params(result.model),
            "summary": _summary_for_card(summary_rows(result.model)),
            "timings": {
                "train_seconds": round(result.seconds, 3),
                "eval_seconds": round(time.perf_counter() - started, 3),
                "seconds_per_epoch": round(result.seconds / max(1, len(result.history)), 3),
            },
            "epochs_run": len(result.history),
            "stopped_reason": result.stopped_reason,
            "test": {"accuracy": evaluation.accuracy, "loss": evaluation.loss},
            "versions": _versions(),
            "created": _now(),
        }
        return self._publish(config.key, card, result.history, result.model.save, evaluation.save)

    def _publish(self, key: str, card: dict, history: list, save_model, save_evaluation=None) -> Entry:
        """Write an entry into a temp folder beside its final place, then move it there atomically."""
        temp_dir = self.models_dir / f"{TEMP_PREFIX}{key}-{uuid.uuid4().hex[:8]}"
        final_dir = self.entry_dir(key)
        try:
            temp_dir.mkdir()
            save_model(str(temp_dir / MODEL_FILE))
            if save_evaluation:
                save_evaluation(temp_dir / EVAL_FILE)
            _write_json(temp_dir / HISTORY_FILE, history)
            _write_json(temp_dir / CARD_FILE, card)  # written last: a folder with a card is complete
            if final_dir.exists():
                shutil.rmtree(final_dir)  # a damaged leftover; we hold the key's lock
            os.replace(temp_dir, final_dir)
        except OSError as error:
            shutil.rmtree(temp_dir, ignore_errors=True)
            raise RegistryError(
                f"Could not save model {key} to {self.models_dir}: {error.strerror or error}. "
                f"Free some disk space or make the registry folder writable, then train again."
            ) from error
        self._index(card)
        return self.get(key)

    def _index(self, card: dict):
        config = card.get("config") or {}
        row = (
            card["key"], card.get("title"), card["dataset"].get("name"), config.get("family", "imported"),
            card.get("test", {}).get("accuracy"), card.get("test", {}).get("loss"), card["params"]["total"],
            card.get("timings", {}).get("train_seconds"), card.get("epochs_run"), card.get("created"), json.dumps(card),
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
                if name.startswith(TEMP_PREFIX) or not directory.is_dir():
                    continue
                try:
                    validate_key(name)
                except Exception:
                    problems.append(f"{directory}: not a registry entry (bad key); ignored.")
                    continue
                if not self.has(name):
                    problems.append(f"{directory}: incomplete entry (no card or model file); ignored.")
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
            try:
                lock = self.key_lock(key, blocking=False)
            except Exception:
                shutil.rmtree(directory, ignore_errors=True)
                removed.append(directory.name)
                continue
            with lock as acquired:
                if acquired:
                    shutil.rmtree(directory, ignore_errors=True)
                    removed.append(directory.name)
        return removed

    def delete(self, key: str):
        """Remove entry `key` from disk and index."""
        directory = self.entry_dir(key)
        if not directory.exists():
            raise EntryNotFoundError(f"No model with key {key} in the registry at {self.root}.")
        trash = self.models_dir / f"{TEMP_PREFIX}{key}-deleted-{uuid.uuid4().hex[:8]}"
        os.replace(directory, trash)  # atomic: the entry disappears at once
        shutil.rmtree(trash, ignore_errors=True)
        with self._connect() as connection:
            connection.execute("DELETE FROM entries WHERE key = ?", (key,))
            connection.execute("DELETE FROM progress WHERE key = ?", (key,))
            connection.execute("DELETE FROM jobs WHERE key = ?", (key,))

    # ----- Import and export -----------------------------------------------------------------

    def export(self, key: str, fmt: str, destination: str | Path) -> Path:
        """Write entry `key` as a .keras file, a SavedModel zip or a .tflite file into `destination`."""
        if fmt not in EXPORT_FORMATS:
            raise RegistryError(f"Export format must be one of {EXPORT_FORMATS}. Received: format={fmt!r}")
        source = self.entry_dir(key) / MODEL_FILE
        if not source.is_file():
            raise EntryNotFoundError(f"No model with key {key} in the registry at {self.root}.")
        destination = Path(destination)
        destination.mkdir(parents=True, exist_ok=True)
        if fmt == "keras":
            target = destination / f"{key}.keras"
            shutil.copyfile(source, target)
            return target
        model = self.load_model(key)
        with tempfile.TemporaryDirectory(dir=self.root) as work_dir:
            saved_model_dir = Path(work_dir) / "saved_model"
            model.export(str(saved_model_dir), format="tf_saved_model", verbose=False)
            if fmt == "savedmodel":
                target = destination / f"{key}_saved_model.zip"
                _zip_folder(saved_model_dir, target)
                return target
            import tensorflow as tf

            converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
            target = destination / f"{key}.tflite"
            target.write_bytes(converter.convert())
            return target

    def import_model(self, path: str | Path, class_names: list[str] | None = None, title: str | None = None) -> Entry:
        """Register a .keras file made elsewhere; safe mode refuses files that carry custom code."""
        import keras

        from core.models import count_params, summary_rows

        path = Path(path)
        data = _read_model_file(path)
        key = hashlib.sha256(data).hexdigest()[:16]
        if self.has(key):
            return self.get(key)
        try:
            model = keras.saving.load_model(path, safe_mode=True, compile=False)
        except Exception as error:
            raise ModelFileError(_import_failure_message(path, error)) from error
        _check_image_classifier(path, model)
        input_shape = tuple(model.input_shape[1:])
        units = int(model.output_shape[-1])
        num_classes = 2 if units == 1 else units
        class_names = list(class_names or [f"class {index}" for index in range(num_classes)])
        if len(class_names) != num_classes:
            raise ModelFileError(
                f"The model predicts {num_classes} classes but {len(class_names)} class names were given. "
                f"Received: class_names={class_names}"
            )
        card = {
            "key": key,
            "title": title or f"Imported {path.name}",
            "status": "ready",
            "imported": True,
            "config": None,
            "dataset": {"name": None, "class_names": class_names, "input_shape": list(input_shape), "num_classes": num_classes},
            "params": count_params(model),
            "summary": _summary_for_card(summary_rows(model)),
            "timings": {},
            "epochs_run": None,
            "test": {},
            "versions": _versions(),
            "created": _now(),
            "source_file": path.name,
        }
        with self.key_lock(key):
            return self._publish(key, card, [], lambda target: shutil.copyfile(path, target))

    # ----- Jobs and progress (used by core.jobs and the pages) -------------------------------

    def record_progress(self, key: str, progress: dict):
        """Store one epoch's metrics for live curves."""
        with self._connect() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO progress VALUES (?,?,?)", (validate_key(key), progress["epoch"], json.dumps(progress))
            )

    def progress(self, key: str) -> list[dict]:
        """Per-epoch metrics recorded so far for `key`, in order."""
        with self._connect() as connection:
            rows = connection.execute("SELECT data FROM progress WHERE key = ? ORDER BY epoch", (validate_key(key),)).fetchall()
        return [json.loads(row["data"]) for row in rows]

    def clear_progress(self, key: str):
        with self._connect() as connection:
            connection.execute("DELETE FROM progress WHERE key = ?", (validate_key(key),))

    def connect(self):
        """A connection to the index, for core.jobs."""
        return self._connect()


def _dataset_card(dataset) -> dict:
    return {
        "name": dataset.name,
        "source": dataset.source,
        "fingerprint": dataset.fingerprint,
        "class_names": list(dataset.class_names),
        "num_classes": dataset.num_classes,
        "input_shape": list(dataset.input_shape),
        "sizes": {"train": len(dataset.x_train), "validation": len(dataset.x_val), "test": len(dataset.x_test)},
    }


def _summary_for_card(rows: list[dict]) -> list[dict]:
    """model.summary() rows in JSON form, so pages show them without loading TensorFlow."""
    return [{"layer": r["layer"], "type": r["type"], "output shape": str(tuple(r["output_shape"])),
             "parameters": int(r["params"]), "trainable": bool(r["trainable"])} for r in rows]


def _versions() -> dict:
    import keras
    import tensorflow as tf

    return {"tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version()}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_json(path: Path, value):
    with open(path, "w") as handle:
        json.dump(value, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())


def _zip_folder(folder: Path, target: Path):
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(folder.parent))


def _read_model_file(path: Path) -> bytes:
    """The bytes of a candidate .keras file, refusing the obvious non-starters with a clear message."""
    if path.suffix.lower() in (".h5", ".hdf5"):
        raise ModelFileError(
            f"{path.name} is a legacy HDF5 (.h5) file. Only the Keras 3 `.keras` format is imported, because "
            f"it can be loaded in safe mode. Re-save it with `model.save('model.keras')` and import that."
        )
    if path.suffix.lower() != ".keras":
        raise ModelFileError(f"Only `.keras` model files can be imported. Received: {path.name}")
    if not path.is_file():
        raise ModelFileError(f"No such file: {path}")
    if path.stat().st_size > MAX_IMPORT_BYTES:
        raise ModelFileError(f"{path.name} is larger than {MAX_IMPORT_BYTES // 2**20} MB; that is not a classroom model.")
    data = path.read_bytes()
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{path.name} is not a valid .keras file (a .keras file is a zip archive; this one is not, or it is truncated)."
        )
    _refuse_zip_bomb(path)
    return data


def _refuse_zip_bomb(path: Path):
    """Refuse a .keras archive whose entries would expand far beyond the file itself, before Keras reads them."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ModelFileError(f"{path.name} is not a valid .keras file ({error}). Save the model again.") from error
    # Only the size limits: Keras reads a .keras file by entry name and skips unsafe paths whenever it unpacks one,
    # so extra entries named '../x' or '/x' are harmless (tests/robustness/test_model_files.py imports such a file).
    check_zip_entries(
        entries, ModelFileError, archive_name=path.name, contents="model weights", max_expanded_bytes=MAX_IMPORT_BYTES,
        max_compression_ratio=MAX_COMPRESSION_RATIO, ratio_check_min_bytes=RATIO_CHECK_MIN_BYTES,
    )


def _check_image_classifier(path: Path, model):
    """Refuse models the pages cannot use: one (height, width, 1 or 3) image input and one vector of class scores."""
    input_shape, output_shape = model.input_shape, model.output_shape
    image_input = (
        isinstance(input_shape, tuple) and len(input_shape) == 4 and input_shape[3] in (1, 3)
        and all(isinstance(size, int) and size > 0 for size in input_shape[1:3])
    )
    class_output = isinstance(output_shape, tuple) and len(output_shape) == 2 and isinstance(output_shape[1], int)
    if not (image_input and class_output):
        raise ModelFileError(
            f"{path.name} is not an image classifier this app can use: expected one input of shape (height, width, "
            f"1 or 3 channels) and one output of class scores. Received: input_shape={input_shape}, "
            f"output_shape={output_shape}"
        )


def _import_failure_message(path: Path, error: Exception) -> str:
    text = " ".join(str(error).split())  # Keras' messages span many lines; one line reads better on a page or a CLI
    if "safe_mode" in text or "Lambda" in text or "custom" in text.lower() or "Could not locate" in text:
        return (
            f"{path.name} was refused: it contains custom code (a Lambda layer or custom objects), which could run "
            f"arbitrary Python when loaded. Only models built from standard Keras layers can be imported. "
            f"Details: {text[:300]}"
        )
    return f"{path.name} could not be loaded as a Keras model ({type(error).__name__}: {text[:300]})."
