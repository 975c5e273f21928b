"""The registry's SQLite files (its index and its training queue), opened the one way every process opens them."""

import contextlib
import fcntl
import logging
import os
import sqlite3
import time
import uuid
from pathlib import Path

DATABASE_WAIT_SECONDS = 30  # how long a connection waits for other processes' locks before "database is locked"
SQLITE_HEADER = b"SQLite format 3\x00"  # the first bytes of every SQLite database file

logger = logging.getLogger(__name__)


def file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at `path`, None when there is none: which file a process opened."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def set_aside_if_damaged(path: Path) -> Path | None:
    """`set_aside` a file at `path` whose first bytes say it is not an SQLite database (overwritten, half copied),
    so that it is made anew; return where it went. Every command and page failed on one, `doctor` included."""
    identity = file_identity(path)
    try:
        with open(path, "rb") as file:
            head = file.read(len(SQLITE_HEADER))
    except OSError:  # missing (made anew anyway) or unreadable (said by the open that follows)
        return None
    if not head or head == SQLITE_HEADER:  # an empty file is a new database to SQLite
        return None
    return set_aside(path, identity, "not an SQLite database")


def set_aside(path: Path, identity, reason) -> Path | None:
    """Move the database at `path` aside as <name>.damaged-<time>-<id> (its -wal and -shm files removed), if it is still
    the file `identity` names (another process may have set it aside and made a new one already); None if not.

    The index is then rebuilt from the entry folders (nothing is lost); the training queue starts empty.
    """
    with open(path.with_name(path.name + ".lock"), "a") as lock:  # one process at a time checks and moves
        fcntl.flock(lock, fcntl.LOCK_EX)
        if file_identity(path) != identity:
            return None
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}")
        os.replace(path, aside)
        for suffix in ("-wal", "-shm"):  # the damaged file's journal: never to be applied to the new one
            with contextlib.suppress(FileNotFoundError):
                os.remove(path.with_name(path.name + suffix))
    logger.warning("%s was damaged (%s): set aside as %s and made anew", path, reason, aside)
    return aside


def open_database(path) -> sqlite3.Connection:
    """A connection to the SQLite file at `path` in WAL mode (pages read while a worker writes), in autocommit, whose
    rows read by column name.

    It waits up to DATABASE_WAIT_SECONDS for other processes' locks. Switching a new file to WAL is retried:
    when several processes open a new file at the same moment (a class pressing Train on a new registry), SQLite
    can refuse the switch at once with "database is locked", without waiting.
    """
    connection = sqlite3.connect(path, timeout=DATABASE_WAIT_SECONDS, isolation_level=None)
    deadline = time.monotonic() + DATABASE_WAIT_SECONDS
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                connection.close()
                raise
            time.sleep(0.02)
    connection.row_factory = sqlite3.Row
    return connection
