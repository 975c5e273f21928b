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
_QUESTIONS = {}  # (host, port) -> an Event set once the question being asked now is answered
_questions_lock = threading.Lock()


def check_reachable(url, timeout, stale_ok=False):
    """Raise OSError unless the URL's host accepts a connection within `timeout` seconds, DNS included.

    Local URLs (file://) and URLs that urllib sends through a proxy are not checked. An answer is
    reused for REACHABILITY_TTL seconds, so a page that asks on every rerun does not wait each time.
    With `stale_ok` (a page saying what could be downloaded), an older answer is used at once while a background
    thread asks again: behind a firewall that drops connections, only a server's first question waits `timeout`.
    Before a download, ask without it. A question already being asked is waited for, not asked twice.
    """
    address = _address(url)
    if address is None:
        return
    checked, problem = _ANSWERS.get(address, (None, None))
    if checked is None or (not stale_ok and time.monotonic() - checked >= REACHABILITY_TTL):
        problem = _ask(address, timeout)
    elif time.monotonic() - checked >= REACHABILITY_TTL:
        _ask_again_in_background(address, timeout)
    if problem:
        raise OSError(problem)


def ask_unanswered(urls, timeout):
    """Ask every host among these URLs that has never been asked, all at once (a thread each), and keep the answers
    for `check_reachable`: behind a firewall that drops connections, a page's first questions then wait `timeout` in
    all, not once per host."""
    unanswered = {address for url in urls if (address := _address(url)) and address not in _ANSWERS}
    threads = [threading.Thread(target=_ask, args=(address, timeout), name="reachability question", daemon=True)
               for address in unanswered]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 2)


def _address(url):
    """(host, port) of an http(s) URL asked directly, else None (a local file, or a URL urllib sends to a proxy)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or urllib.request.getproxies().get(parts.scheme):
        return None
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def _ask(address, timeout):
    """Connect to `address` now and keep the answer (None when reachable, else why not). Where the same question is
    being asked already (a background question, another page), wait for its answer instead."""
    answered, asking = _question(address)
    if asking:
        _answer(address, timeout, answered)
    else:
        answered.wait(timeout + 2)
    return _ANSWERS.get(address, (None, f"no answer from {address[0]} within {timeout} s"))[1]


def _ask_again_in_background(address, timeout):
    """Refresh a stale answer in a daemon thread, unless that host is being asked already."""
    answered, asking = _question(address)
    if asking:
        threading.Thread(target=_answer, args=(address, timeout, answered), name=f"reachability {address[0]}",
                         daemon=True).start()


def _question(address):
    """(the Event set once `address` is answered, True when the caller is to ask) for a question about to be asked."""
    with _questions_lock:
        if address in _QUESTIONS:
            return _QUESTIONS[address], False
        answered = _QUESTIONS[address] = threading.Event()
        return answered, True


def _answer(address, timeout, answered):
    try:
        _ANSWERS[address] = (time.monotonic(), _connect(address, timeout))
    finally:
        with _questions_lock:
            del _QUESTIONS[address]
        answered.set()


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
