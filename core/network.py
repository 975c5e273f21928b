"""Network reachability: whether a download host answers, asked at most once every few minutes.

Used before every download (catalogue datasets, ImageNet weights) so that an offline classroom gets
a clear message in seconds instead of a download that hangs.
"""

import contextlib
import socket
import threading
import time
import urllib.parse
import urllib.request

REACHABILITY_TTL = 300  # seconds an answer is reused

_ANSWERS = {}  # (host, port) -> (when checked, None when reachable, else why not)
_ASKING_AGAIN = set()  # addresses asked again in the background (stale_ok)
_asking_lock = threading.Lock()


def check_reachable(url, timeout, stale_ok=False):
    """Raise OSError unless the URL's host accepts a connection within `timeout` seconds, DNS included.

    Local URLs (file://) and URLs that urllib sends through a proxy are not checked. An answer is
    reused for REACHABILITY_TTL seconds, so a page that asks on every rerun does not wait each time.
    With `stale_ok` (a page saying what could be downloaded), an older answer is used at once while a background
    thread asks again: behind a firewall that drops connections, only a server's first question waits `timeout`.
    Before a download, ask without it.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or urllib.request.getproxies().get(parts.scheme):
        return
    address = (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    checked, problem = _ANSWERS.get(address, (None, None))
    if checked is None or (not stale_ok and time.monotonic() - checked >= REACHABILITY_TTL):
        problem = _ask(address, timeout)
    elif time.monotonic() - checked >= REACHABILITY_TTL:
        _ask_again_in_background(address, timeout)
    if problem:
        raise OSError(problem)


def _ask(address, timeout):
    """Connect to `address` now and keep the answer (None when reachable, else why not)."""
    problem = _connect(address, timeout)
    _ANSWERS[address] = (time.monotonic(), problem)
    return problem


def _ask_again_in_background(address, timeout):
    """Refresh a stale answer in a daemon thread, one at a time per address."""
    with _asking_lock:
        if address in _ASKING_AGAIN:
            return
        _ASKING_AGAIN.add(address)

    def ask():
        try:
            _ask(address, timeout)
        finally:
            with _asking_lock:
                _ASKING_AGAIN.discard(address)

    threading.Thread(target=ask, name=f"reachability {address[0]}", daemon=True).start()


def _connect(address, timeout):
    """None when `address` accepts a TCP connection within `timeout` seconds, else why not.

    The connection runs in a thread because a slow DNS lookup does not obey the socket's timeout.
    """
    host = address[0]
    outcome = []

    def connect():
        try:
            socket.create_connection(address, timeout=timeout).close()
            outcome.append(None)
        except OSError as error:
            outcome.append(f"cannot reach {host}: {error}")

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout + 1)
    return outcome[0] if outcome else f"no answer from {host} within {timeout} s"


@contextlib.contextmanager
def socket_timeout(seconds):
    """Give urllib's downloads (keras.utils.get_file) a read timeout, so a stalled connection fails instead of hanging."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)
