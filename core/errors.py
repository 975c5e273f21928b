"""Typed errors. Each message says what happened, what was expected and how to fix it."""

import logging
import re


class CoreError(Exception):
    """Base of every error that core raises on purpose. Pages show `student` when it is given (what a student can
    understand and do), else the message in plain words (`student_message`); the CLI and the log show the message."""

    def __init__(self, message: str = "", student: str | None = None):
        super().__init__(message)
        self.student = student

    def __reduce__(self):  # a Ray or pool worker's error keeps its student sentence when it is sent back
        return type(self), (str(self), self.student)


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


# A page shows a student what happened and what to do; the exact values ("Received: ...", file paths) that help a
# developer stay in the CLI's output and the server's log.
_RECEIVED = re.compile(r"\s*\(?Received: .*\Z", re.DOTALL)
_PATH = re.compile(r"(?<![\w:/.~])(?:~/|/[\w.+-]+/)(?:[\w.+-]+/?)*")


def _folder_words(path: re.Match) -> str:
    """A path in a student's words, keeping the full stop that ends a sentence after it ("… in /root/.keras/.")."""
    return "a folder on the server" + ("." if path.group().endswith(".") else "")


def without_received(text: str) -> str:
    """`text` without its closing "Received: ..." values, for a page that keeps its paths (they are the instructions)."""
    return _RECEIVED.sub("", text)


def student_message(error: Exception | str) -> str:
    """The message of `error` in a student's words: its `student` sentence, else the message without its "Received:
    ..." values and file paths (the exact message goes to the log)."""
    text = str(error)
    logging.getLogger("cnnclassroom").warning("Shown to a student in plain words: %s", text)
    return getattr(error, "student", None) or plain_words(text)


def plain_words(text: str) -> str:
    """`text` without its "Received: ..." values and file paths, logging nothing: for a page's standing notice (the
    weights not on this machine), shown on every run."""
    plain = without_paths(without_received(text)).strip()
    return plain if plain.endswith((".", "!", "?", ")")) or not plain else plain + "."


def without_paths(text: str) -> str:
    """`text` with each file path in words ("a folder on the server"): for a phrase inside a sentence."""
    return _PATH.sub(_folder_words, text)


def unexpected_training_error(error: BaseException) -> str:
    """What a student reads when a training failed for a reason core did not foresee (the traceback goes to the log)."""
    return (f"Training stopped with an unexpected error ({type(error).__name__}). Press Train to try again; if it "
            "happens again, tell the teacher: the server's log has the details.")
