"""The registry's SQLite files (its index and its training queue), opened the one way every process opens them."""

import sqlite3
import time

DATABASE_WAIT_SECONDS = 30  # how long a connection waits for other processes' locks before "database is locked"


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
