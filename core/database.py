"""The registry's SQLite files (its index and its training queue), opened the one way every process opens them: in
WAL mode, or read-only where this process may not write the folder."""

import contextlib
import fcntl
import logging
import os
import sqlite3
import time
import uuid
from pathlib import Path

from core.errors import RegistryError

DATABASE_WAIT_SECONDS = 30  # how long a connection waits for other processes' locks before "database is locked"
READ_ONLY_STUDENT = ("The server may only read its model folder, so nothing can be trained, changed or deleted here. "
                     "Tell the teacher.")

logger = logging.getLogger(__name__)


def file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at `path`, None when there is none: which file a process opened."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def opened_or_made_anew(path: Path, open_schema) -> Path | None:
    """Run `open_schema()`, which opens the database at `path`; when the file turns out damaged (not a database, or
    "disk image is malformed": any sqlite3.DatabaseError but an OperationalError such as "locked" or "readonly"),
    `set_aside` it and run `open_schema()` again on a new file. Returns where the damaged file went, or None.
    Every command and page failed on such a file before, `doctor` included."""
    identity = file_identity(path)
    try:
        open_schema()
        return None
    except sqlite3.DatabaseError as error:
        if isinstance(error, sqlite3.OperationalError) or identity is None or not writable(path):
            raise  # (a damaged file in a folder this process may not write stays where it is)
        aside = set_aside(path, identity, error)
    open_schema()
    return aside


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
    rows read by column name; read-only where this process may not write (`_read_only`).

    It waits up to DATABASE_WAIT_SECONDS for other processes' locks. Switching a new file to WAL is retried:
    when several processes open a new file at the same moment (a class pressing Train on a new registry), SQLite
    can refuse the switch at once with "database is locked", without waiting.
    """
    if not writable(path):
        return _read_only(path)
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
        except sqlite3.DatabaseError:  # a damaged file: closed, so that it can be set aside
            connection.close()
            raise
    connection.row_factory = sqlite3.Row
    return connection


def writable(path: Path) -> bool:
    """Whether this process may change the database at `path`: the file (when there is one) and its folder, which
    SQLite writes its journal into."""
    path = Path(path)
    return os.access(path.parent, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection that only reads the database at `path`, in a folder this process may not write (a teacher
    looking at a service account's registry): every reading command works; a write fails with "attempt to write a
    readonly database", which `closing` turns into one clear line.

    SQLite reads a WAL database read-only while its -shm file exists (a connection of its server is open). Without
    one, and without a folder to make it in, it reads the file as immutable: as its last connection left it, all its
    changes written in. A -wal file left with changes in it (a process killed) would be skipped that way: refused."""
    uri = Path(path).resolve().as_uri()
    try:
        connection = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=DATABASE_WAIT_SECONDS, isolation_level=None)
        connection.execute("SELECT 1 FROM sqlite_master LIMIT 1")
    except sqlite3.OperationalError as error:
        if getattr(error, "sqlite_errorname", "") not in ("SQLITE_READONLY_DIRECTORY", "SQLITE_CANTOPEN"):
            raise
        journal = Path(f"{path}-wal")
        if journal.exists() and journal.stat().st_size > 0:
            raise RegistryError(f"Cannot read {path}: its last changes are still in {journal.name}, which only a user "
                                f"who may write {Path(path).parent} can apply. Run any command once as that user.",
                                student=READ_ONLY_STUDENT) from error
        connection = sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None)
    connection.row_factory = sqlite3.Row
    return connection


def empty_read_only(schema: str) -> sqlite3.Connection:
    """An empty database with `schema`, in memory, that refuses every write: what a registry this user may only read
    holds where it has no file (nothing was ever queued there), as `_read_only` would read it."""
    connection = sqlite3.connect(":memory:", isolation_level=None)
    connection.executescript(schema)
    connection.execute("PRAGMA query_only = ON")
    connection.row_factory = sqlite3.Row
    return connection


@contextlib.contextmanager
def closing(connection: sqlite3.Connection, path: Path):
    """`connection`, closed at the end. A write it refused because the database is read-only for this process
    becomes a RegistryError that says so (a page shows its student sentence; a traceback before)."""
    try:
        yield connection
    except sqlite3.OperationalError as error:
        if "readonly" not in str(error) or writable(path):  # (a file deleted while open is "readonly" too)
            raise
        raise RegistryError(f"Cannot change {path}: {error}. Check that the folder {Path(path).parent} is writable "
                            "by this user.", student=READ_ONLY_STUDENT) from error
    finally:
        connection.close()
