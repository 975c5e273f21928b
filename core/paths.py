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
