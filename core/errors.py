"""Typed errors. Each message says what happened, what was expected and how to fix it."""


class CoreError(Exception):
    """Base of every error that core raises on purpose; pages show its message as it is."""


class ConfigError(CoreError):
    """A training configuration that cannot be built or trained."""


class DatasetUnavailableError(CoreError):
    """A catalogue dataset whose files are not on this machine and cannot be downloaded."""


class DatasetError(CoreError):
    """A folder or zip dataset that is malformed, unsafe or too large."""


class ImageError(CoreError):
    """An uploaded image that cannot be used (not an image, truncated, too large...)."""


class RegistryError(CoreError):
    """The registry cannot do what was asked (bad key, unwritable folder...)."""


class EntryNotFoundError(RegistryError):
    """No registry entry has this key."""


class ModelFileError(CoreError):
    """A model file that is refused on import (custom code, not a .keras file, truncated)."""


class TrainingCancelled(CoreError):
    """Training stopped because somebody pressed Cancel."""


class BudgetError(CoreError):
    """A training the teacher's per-job budget does not allow (too many epochs)."""


class PermissionDenied(CoreError):
    """An action only the teacher may take on this server (delete, import, pin, the budget)."""
