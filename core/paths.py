"""Where data and models live on disk."""

import os
from pathlib import Path

REGISTRY_ENV = "CNNCLASSROOM_REGISTRY"
DATA_DIR_ENV = "CNNCLASSROOM_DATA_DIR"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def registry_root() -> Path:
    """The registry folder: $CNNCLASSROOM_REGISTRY, or `registry/` beside `app.py`."""
    return Path(os.environ.get(REGISTRY_ENV) or PROJECT_ROOT / "registry")


def data_dir() -> Path | None:
    """The user's own data folder from $CNNCLASSROOM_DATA_DIR, if set."""
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value) if value else None
