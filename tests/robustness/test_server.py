"""Load and exposure, on a real `streamlit run app.py` server started with the project's config.

Thirty simulated browser sessions (bench/load.py: Streamlit's websocket protocol and HTTP uploads, like
a browser tab) browse Home, Models and Compare and predict on uploaded photos, a damaged one now and
then, while a model trains in the background. The server runs with an audit hook that lists every file
it writes. Then the exposure checks: loopback only, XSRF on, upload limit, cross-site websockets refused,
and nothing in the code that unpickles or evaluates user data.
"""

import importlib.util
import json
import re
import shutil
import socket
import tempfile
import time
import tomllib
from pathlib import Path

import pytest
import requests

from core.config import TrainConfig
from core.imaging import MAX_UPLOAD_BYTES
from core.jobs import JobRunner
from core.registry import Registry
from helpers_jobs import stop_workers, wait_for
from robustness.support import PROJECT, record

SERVER_MAX_UPLOAD_MB = 250  # .streamlit/config.toml: the course's largest zip, rps.zip, is 201 MB
LOAD_SESSIONS = 30
LOAD_SECONDS = 30  # bench/load.py runs the long version (180 s by default)


def load_bench():
    spec = importlib.util.spec_from_file_location("cnnclassroom_bench_load", PROJECT / "bench" / "load.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = load_bench()


@pytest.fixture(scope="module")
def server(trained_registry_root, tmp_path_factory):
    """The app served on a free port from a copy of the trained registry, with its writes audited."""
    folder = tmp_path_factory.mktemp("server")
    root = folder / "registry"
    shutil.copytree(trained_registry_root, root, ignore=shutil.ignore_patterns("*.lock", "*-wal", "*-shm"))
    home = folder / "home"
    home.mkdir()
    audit_log = folder / "writes.log"
    with bench.serve(root, extra_env={"HOME": str(home)}, log_path=folder / "server.log", audit_log=audit_log) as (url, process):
        yield {"url": url, "process": process, "root": root, "home": home, "audit_log": audit_log,
               "port": int(url.rsplit(":", 1)[1])}


def test_thirty_sessions_browse_and_predict_while_a_model_trains(server):
    registry = Registry(server["root"])
    runner = JobRunner(registry)
    config = TrainConfig(family="cnn", filters=(8, 16), hidden_units=(32,), train_subset=1500, epochs=4, seed=901)
    runner.submit(config)  # trains in a worker process while the sessions run
    photos = bench.sample_photos()
    load_started = time.time()
    result = bench.run_load(server["url"], sessions=LOAD_SESSIONS, seconds=LOAD_SECONDS, photos=photos)
    load_ended = time.time()
    print(bench.report(result))
    try:
        status = wait_for(lambda: (s := runner.status(config.key)).state in ("done", "failed") and s, timeout=600,
                          what="the background training")
    finally:
        stop_workers(registry)
    with runner.queue.connect() as connection:
        job = connection.execute("SELECT started, finished FROM jobs WHERE key = ?", (config.key,)).fetchone()
    overlap = max(0.0, min(job["finished"], load_ended) - max(job["started"], load_started))
    print(f"training ran {job['finished'] - job['started']:.0f} s, {overlap:.0f} s of it during the load")

    assert result.failures == [], result.failures[:10]
    assert result.health_failures == 0 and result.health_checks > LOAD_SECONDS
    assert server["process"].poll() is None and requests.get(f"{server['url']}/_stcore/health", timeout=10).text == "ok"
    assert status.state == "done", status
    served = [result.actions_per_session.get(session, 0) for session in range(LOAD_SESSIONS)]
    assert min(served) >= 1, f"a session got no answer: {served}"  # every student was served, none starved
    assert result.latencies.get("predict") and result.latencies.get("predict_damaged")
    after = bench.BrowserSession(server["url"])  # a new student still gets a working page, with the new model in it
    try:
        models_page = after.run_page("Models")
        assert models_page.status == "FINISHED_SUCCESSFULLY" and not models_page.exceptions
    finally:
        after.close()
    assert config.key in {card.key for card in registry.list_entries()}
    everything = result.all_latencies()
    p95, predict_p95 = bench.percentile(everything, 0.95), bench.percentile(result.latencies["predict"], 0.95)
    record("Load", f"{LOAD_SESSIONS} websocket sessions x {LOAD_SECONDS} s (Home, Models, Compare, Predict with uploads, "
           f"damaged photos) while a CNN trained ({overlap:.0f} s overlap)", result.waits,
           f"0 errors; every session served; {result.health_checks} health checks all answered (p95 "
           f"{bench.percentile(result.health_latencies, 0.95):.1f} s); p95 per wait {p95:.1f} s (upload → prediction "
           f"{predict_p95:.1f} s); {result.uploads_resent} uploads resent on a new connection")


def listening_addresses(port: int) -> set[str]:
    """The local addresses of sockets listening on `port`, from /proc/net/tcp and tcp6."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def non_loopback_address() -> str | None:
    """This machine's address on its network, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_the_server_listens_on_loopback_only_by_default(server):
    config = tomllib.loads((PROJECT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1" and config["server"]["enableXsrfProtection"] is True
    assert config["server"]["maxUploadSize"] == SERVER_MAX_UPLOAD_MB  # the zip uploaders' limit; photos have 20 MB each
    assert config["client"]["showErrorDetails"] == "none"
    addresses = listening_addresses(server["port"])
    assert addresses == {"0100007F"}, f"listening on {addresses} (0100007F is 127.0.0.1)"
    outside = non_loopback_address()
    if outside:
        with pytest.raises(OSError):
            socket.create_connection((outside, server["port"]), timeout=3).close()
    print(f"listening on {addresses}; reachable from {outside or 'no other address'}: no")
    record("Exposure", "where the server listens (config.toml, /proc/net/tcp, a connection to the LAN address)",
           2 if outside else 1, "127.0.0.1 only; the LAN address is refused")


def test_uploads_need_the_xsrf_token_and_respect_the_size_limit(server):
    session = bench.BrowserSession(server["url"])
    try:
        session.run_page("")
        small = b"\x89PNG\r\n\x1a\n" + bytes(100)
        urls = session.upload_urls("photo.png")
        no_header = session.put_file(urls.upload_url, "photo.png", small, "image/png", xsrf_header="")
        stranger = requests.Session()  # another site's page: it can send the header but not read our cookie
        no_cookie = session.put_file(urls.upload_url, "photo.png", small, "image/png", http=stranger)
        other = bench.BrowserSession(server["url"])
        wrong_token = session.put_file(urls.upload_url, "photo.png", small, "image/png", xsrf_header=other.xsrf)
        other.close()
        too_big = announced_upload(session, session.upload_urls("big.zip").upload_url, SERVER_MAX_UPLOAD_MB * 2**20 + 1)
        control = session.put_file(urls.upload_url, "photo.png", small, "image/png")
    finally:
        session.close()
    assert [no_header.status_code, no_cookie.status_code, wrong_token.status_code] == [403, 403, 403]
    assert too_big == 413
    assert control.status_code == 204  # the same upload with the token works: the 403s were the XSRF check

    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    websocket_url = server["url"].replace("http://", "ws://") + "/_stcore/stream"
    with pytest.raises(InvalidStatus):  # a page on another site cannot open a session (cross-site websocket hijacking)
        with connect(websocket_url, subprotocols=["streamlit"], additional_headers={"Origin": "http://evil.example"},
                     open_timeout=30):
            pass
    assert requests.get(f"{server['url']}/_stcore/health", timeout=10).text == "ok"
    record("Exposure", "uploads without the XSRF header, without the cookie, with another session's token", 3,
           "403 Forbidden (the same upload with the token: 204)")
    record("Exposure", f"an upload announcing {SERVER_MAX_UPLOAD_MB} MB + 1 byte (the server's cap, for course zips; "
           f"photo uploaders stop at {MAX_UPLOAD_BYTES / 2**20:.0f} MB in the browser, and core refuses larger photos)", 1,
           "413 Payload Too Large, before the body is read")
    record("Exposure", "a websocket from another site's page (Origin: http://evil.example)", 1, "refused")


def announced_upload(session, upload_url: str, size: int):
    """A PUT whose Content-Length announces `size` bytes, of which only the first few are sent: the server must refuse it
    from the header, before reading the body."""
    import http.client
    from urllib.parse import urlsplit

    address = urlsplit(session.base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    cookies = "; ".join(f"{name}={value}" for name, value in session.http.cookies.items())
    connection.putrequest("PUT", upload_url)
    for name, value in (("Content-Type", "multipart/form-data; boundary=cnnclassroom"), ("Content-Length", str(size)),
                        ("X-Xsrftoken", session.xsrf), ("Cookie", cookies)):
        connection.putheader(name, value)
    connection.endheaders()
    try:
        connection.send(b"--cnnclassroom\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.zip\"\r\n\r\nPK")
        response = connection.getresponse()
        return response.status
    finally:
        connection.close()


def test_the_server_wrote_only_into_its_data_folders(server):
    session = bench.BrowserSession(server["url"])  # at least one visit, also when this test runs alone
    try:
        session.predict(*bench.damaged_photo(bench.sample_photos(1)), "image/jpeg")
    finally:
        session.close()
    writes = [line.split(" ", 1) for line in server["audit_log"].read_text().splitlines()]
    assert writes, "the audit hook recorded nothing: it is not working"
    allowed = [Path(server["root"]).resolve(), Path(server["home"]).resolve(), Path(tempfile.gettempdir()).resolve(),
               Path("/dev")]
    outside = sorted({path for _, path in writes
                      if not any(Path(path).resolve() == root or root in Path(path).resolve().parents for root in allowed)})
    assert outside == [], f"the server wrote outside its data folders: {outside}"
    inside_project = sorted({path for _, path in writes if PROJECT in Path(path).resolve().parents})
    assert inside_project == []
    by_root = {str(root): sum(1 for _, path in writes if root in Path(path).resolve().parents) for root in allowed}
    print(f"{len(writes)} writes: {json.dumps(by_root)}")
    connections = sum(event == "sqlite3.connect" for event, _ in writes)
    record("Exposure", "every file the server opened for writing, created, moved or deleted, and every database it "
           f"opened, during the load (audit hook; {connections} of them index connections)", len(writes),
           "all inside the registry, its temp folder or its home; none in the project")


NEVER = {
    r"\bpickle\.loads?\(": "unpickling", r"(?<![\w.])eval\(": "eval", r"(?<![\w.])exec\(": "exec",
    r"allow_pickle\s*=\s*True": "pickled numpy arrays", r"safe_mode\s*=\s*False": "Keras unsafe mode",
    r"enable_unsafe_deserialization": "Keras unsafe mode", r"shell\s*=\s*True": "a shell", r"os\.system\(": "a shell",
    r"yaml\.load\(": "YAML objects", r"marshal\.loads?\(": "marshalled code", r"unsafe_allow_html\s*=\s*True": "raw HTML",
}


def test_the_code_never_unpickles_evaluates_or_shells_out_on_user_data():
    sources = [PROJECT / "app.py", *sorted((PROJECT / "core").glob("*.py")), *sorted((PROJECT / "pages").glob("*.py"))]
    found = [(str(path.relative_to(PROJECT)), number, what) for path in sources
             for number, line in enumerate(path.read_text().splitlines(), 1)
             for pattern, what in NEVER.items() if re.search(pattern, line)]
    assert found == [], found
    scripts = [(str(path.relative_to(PROJECT)), number) for path in sources
               for number, line in enumerate(path.read_text().splitlines(), 1) if "unsafe_allow_javascript=True" in line]
    assert [path for path, _ in scripts] == ["core/ui.py"], scripts  # one place, run_fixed_script: no user data
    record("Exposure", f"{len(NEVER)} dangerous calls searched for in app.py, core/ and pages/ ({len(sources)} files)",
           len(sources), "none: no pickle (CIFAR-10's batches go through an arrays-only unpickler), eval, exec, unsafe "
           "Keras loading, shell or raw HTML; the app's scripts are fixed text run in one place (core/ui.py): one "
           "has the browser load Streamlit's own element scripts early, one closes the page list on a phone")
