"""Where data and models live on disk."""

import os
import tempfile
from pathlib import Path

REGISTRY_ENV = "CNNCLASSROOM_REGISTRY"
DATA_DIR_ENV = "CNNCLASSROOM_DATA_DIR"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
UPLOADS_FOLDER, UPLOAD_PREFIX = "tmp", "upload-"  # inside the registry: uploads on their way into a dataset


def registry_root() -> Path:
    """The registry folder: $CNNCLASSROOM_REGISTRY, or `registry/` beside `app.py`."""
    return Path(os.environ.get(REGISTRY_ENV) or PROJECT_ROOT / "registry")


def check_registry_folder(folder: Path, named_by: str):
    """Refuse, for a command that only reads, a registry folder that does not exist (a typo would show an empty
    registry, as if every model were lost), a file, or a folder of other things (`list` made a photo folder a registry,
    writing its index and folders there). An empty folder (or one with a README) is a registry not used yet."""
    from core.catalogue import DATASETS_FOLDER
    from core.errors import CoreError
    from core.jobs import JOBS_FILE
    from core.registry import INDEX_FILE, LOCKS_DIR, MODELS_DIR
    from core.trash import TRASH_DIR
    from core.workers import WORKER_LOCK_FILE, WORKER_LOG_FILE

    if not folder.is_dir():
        raise CoreError(f"There is no registry at {folder}: " + ("it is a file, not a folder." if folder.exists() else
                        "the folder does not exist.") + f" Check the path given by {named_by} (a command that trains "
                        "or imports creates it).")
    own = (INDEX_FILE, MODELS_DIR, DATASETS_FOLDER, TRASH_DIR, JOBS_FILE, LOCKS_DIR, UPLOADS_FOLDER, WORKER_LOCK_FILE,
           WORKER_LOG_FILE)  # what a registry holds
    others = [path for path in folder.iterdir() if not path.name.startswith(".") and path.stem.lower() != "readme"]
    if others and not any((folder / name).exists() for name in own):  # the project's registry/ has a README.md
        raise CoreError(f"{folder} is not a registry: it holds other files, and none of a registry's ({INDEX_FILE}, "
                        f"{MODELS_DIR}/, {DATASETS_FOLDER}/…). Check the path given by {named_by}.")


def data_dir() -> Path | None:
    """The user's own data folder from $CNNCLASSROOM_DATA_DIR, if set."""
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value) if value else None


def keras_home() -> Path:
    """Where Keras keeps downloads: $KERAS_HOME or ~/.keras, else /tmp/.keras when that is not writable (Keras's rule).

    A home that does not exist yet counts as writable when it can be created: Keras creates it when imported.
    """
    home = Path(os.path.expanduser(os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")))
    if _can_write_in(home):
        return home
    return Path("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()) / ".keras"


def _can_write_in(folder: Path) -> bool:
    """Whether files can be written in `folder`, or in the nearest existing folder above it."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK)
