"""Reachability of download hosts: asked once, reused for a few minutes, refreshed without making a page wait."""

import threading
import time

import pytest

from core import network


@pytest.fixture
def fresh_answers(monkeypatch, no_proxy):
    """No answer kept from other tests, and every answer already stale (REACHABILITY_TTL = 0)."""
    monkeypatch.setattr(network, "_ANSWERS", {})
    monkeypatch.setattr(network, "REACHABILITY_TTL", 0)


@pytest.fixture
def dropping_host(dropping_hosts):
    return dropping_hosts()


def wait_until_asked(address, seconds=30):
    deadline = time.monotonic() + seconds
    while address in network._QUESTIONS:
        assert time.monotonic() < deadline, "the background question never ended"
        time.sleep(0.05)


def test_a_stale_answer_is_used_at_once_while_a_dropping_host_is_asked_again_in_the_background(fresh_answers,
                                                                                                dropping_host):
    url = f"http://{dropping_host[0]}:{dropping_host[1]}/file"
    with pytest.raises(OSError, match="cannot reach 127.0.0.1|no answer from"):
        network.check_reachable(url, timeout=0.2, stale_ok=True)  # a server's first question waits
    with pytest.raises(OSError, match="cannot reach 127.0.0.1|no answer from"):
        network.check_reachable(url, timeout=2, stale_ok=True)  # the stale answer, at once...
    assert dropping_host in network._QUESTIONS  # ...while the host is asked again (2 s before it can time out)
    with pytest.raises(OSError):
        network.check_reachable(url, timeout=2, stale_ok=True)  # one question at a time per host
    assert sum(thread.name == "reachability 127.0.0.1" for thread in threading.enumerate()) == 1
    wait_until_asked(dropping_host)


def test_the_background_question_updates_the_answer_and_a_download_always_asks_anew(fresh_answers, counting_host):
    address, connections = counting_host
    url = f"http://{address[0]}:{address[1]}/file"
    network.check_reachable(url, timeout=5)
    network.check_reachable(url, timeout=5)  # stale (TTL 0): asked again before answering
    assert connections() == 2
    network.check_reachable(url, timeout=5, stale_ok=True)
    wait_until_asked(address)
    assert connections() == 3
    assert network._ANSWERS[address][1] is None  # reachable


def test_hosts_never_asked_are_asked_at_once_and_a_question_being_asked_is_not_asked_twice(fresh_answers,
                                                                                           dropping_hosts):
    """A page's first questions behind a firewall wait one timeout in all, not one per host; a download that needs an
    answer while the same host is being asked waits for that answer instead of a full timeout of its own."""
    urls = [f"http://127.0.0.1:{dropping_hosts()[1]}/file" for _ in range(3)]
    started = time.monotonic()
    network.ask_unanswered(urls, timeout=1.0)
    assert time.monotonic() - started < 1.9  # one after the other: 3 s
    assert len(network._ANSWERS) == 3 and all(problem for _, problem in network._ANSWERS.values())

    started = time.monotonic()
    network.ask_unanswered(urls, timeout=1.0)  # answered before (stale answers are refreshed by the pages' questions)
    assert time.monotonic() - started < 0.5

    late = f"http://127.0.0.1:{dropping_hosts()[1]}/file"
    asking = threading.Thread(target=network.ask_unanswered, args=([late], 1.0))
    asking.start()
    deadline = time.monotonic() + 10
    while not network._QUESTIONS:
        assert time.monotonic() < deadline, "the question never started"
        time.sleep(0.01)
    started = time.monotonic()
    with pytest.raises(OSError, match="cannot reach 127.0.0.1|no answer from"):
        network.check_reachable(late, timeout=5)  # a download's question: the one being asked answers it
    assert time.monotonic() - started < 3
    asking.join()
