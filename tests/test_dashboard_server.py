"""The dashboard's web server and the report, over real HTTP on loopback.

A :class:`DashboardServer` is started in this process on a free port of
127.0.0.1 (``port=0``) and asked with http.client, or with a raw socket where
the exact bytes on the wire matter. Databases are built through the public
API; the main routes run on every store of conftest (a local directory, an
in-process memory store, and S3 on the moto server), and another process
appends to the log while the server runs. The server must never write: the
database's every object is compared before and after.
"""

import contextlib
import html.parser
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
from urllib.parse import quote

import obstore
import orjson
import pytest
from conftest import log_commits

import schedy
from schedy.adapters.filestore import FileLogStore
from schedy.core.state import fold
from schedy.dashboard import DashboardServer, page, report_html, views, write_report
from schedy.dashboard import report as report_module
from schedy.dashboard.server import CSP
from schedy.errors import ExperimentNotFoundError

STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "plotly.min.js": "text/javascript; charset=utf-8",
}
REFUSED = ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


# ---------------------------------------------------------------- helpers


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    @property
    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


class Client:
    """Requests to one running server, one connection each (Host: 127.0.0.1:PORT unless told)."""

    def __init__(self, server):
        self.server = server
        self.port = server.server_address[1]

    def request(self, path, method="GET", host=None, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            if host is not False:
                conn.putheader("Host", f"127.0.0.1:{self.port}" if host is None else host)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            r = conn.getresponse()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def get(self, path, **kwargs):
        return self.request(path, **kwargs)

    def api(self, name, since=None, created=None):
        q = "name=" + _quote(name)
        if since is not None:
            q += f"&since={since}&created={created}"
        r = self.get("/api/experiment?" + q)
        assert r.status == 200, r
        assert r.headers["content-type"] == "application/json"
        return r.json

    def raw(self, data, timeout=3):
        """Send ``data`` as is on one connection and return every byte the server sends until it closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            out = b""
            try:
                while chunk := s.recv(1 << 16):
                    out += chunk
            except TimeoutError:
                pass
            return out


def _quote(s):
    return quote(s, safe="")


@contextlib.contextmanager
def serving(store, **kwargs):
    kwargs.setdefault("min_interval", 0.0)
    server = DashboardServer(store, host="127.0.0.1", port=0, **kwargs)
    server.start()
    try:
        yield Client(server)
    finally:
        stop(server)


def stop(server):
    """Shut the server down without waiting for serve_forever's half-second poll: connect until it has stopped."""
    stopping = threading.Thread(target=server.shutdown)
    stopping.start()
    while stopping.is_alive():
        with contextlib.suppress(OSError):
            socket.create_connection(server.server_address[:2], timeout=1).close()
        stopping.join(0.02)
    server.server_close()


def expected(db, name):
    """The views of experiment ``name`` computed here from its log, as JSON would carry them."""
    commits = log_commits(db, name)
    state = fold(commits)
    times = {c.version: c.time for c in commits}

    def time_of(v):
        return times.get(v)

    return state, time_of


def as_json(obj):
    return orjson.loads(orjson.dumps(obj))


def tree(db):
    """Every object of the database's store, by name, with its bytes (directories too, for a local one)."""
    store = db._store
    out = {}
    if isinstance(store, FileLogStore):
        root = str(store.root)
        for dirpath, _dirnames, filenames in os.walk(root):
            rel = os.path.relpath(dirpath, root)
            out[rel + "/"] = None
            for f in filenames:
                with open(os.path.join(dirpath, f), "rb") as fh:
                    out[os.path.join(rel, f)] = fh.read()
    else:
        for batch in obstore.list(store.store):
            for meta in batch:
                out[meta["path"]] = bytes(obstore.get(store.store, meta["path"]).bytes())
    return out


def add_from_another_process(location, name, hp, status="QUEUED", results=None):
    """Append one job to ``name`` from a fresh Python process (the dashboard must notice the commit)."""
    code = (
        "import json, sys, schedy\n"
        "db = schedy.SchedyDB(sys.argv[1])\n"
        "exp = db.get_experiment(sys.argv[2])\n"
        "print(exp.add_job(json.loads(sys.argv[3]), status=sys.argv[4], results=json.loads(sys.argv[5])).job_id)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, location, name, json.dumps(hp), status, json.dumps(results or {})],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def populate(db):
    """A few experiments of every kind; returns them by name."""
    a = db.add_experiment(schedy.ManualSearch("alpha"))
    a.add_job({"lr": 0.1, "opt": "adam"})
    a.add_job({"lr": 0.2}, status="DONE", results={"loss": 0.5, "curve": [1.0, float("nan")]})
    a.add_job({"lr": float("inf")}, status="DONE", results={"loss": 0.25})
    job = a.next_job()
    job.results = {"loss": 0.75}
    job.status = "CRASHED"
    job.put()
    r = db.add_experiment(schedy.RandomSearch("Beta search", {"x": schedy.random.Uniform(0, 1)}, seed=3))
    for _ in range(3):
        with r.next_job() as j:
            j.results["accuracy"] = j.hyperparameters["x"]
    gone = db.add_experiment(schedy.ManualSearch("gone"))
    gone.add_job({"lr": 1})
    gone.delete()
    db.add_experiment(schedy.ManualSearch("empty"))
    return {"alpha": a, "Beta search": r}


def corrupt_crc(path, line_number):
    """Change one hex digit of the CRC of line ``line_number`` (1-based) of a log file."""
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    line = lines[line_number - 1]
    assert line[-18:-10] == b',"crc":"'
    digit = line[-3:-2]
    lines[line_number - 1] = line[:-3] + (b"0" if digit != b"0" else b"1") + line[-2:]
    with open(path, "wb") as f:
        f.write(b"\n".join(lines))


@pytest.fixture
def file_db(tmp_path):
    return schedy.SchedyDB(str(tmp_path / "db"))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One populated local database and its running server, shared by the tests that only read."""
    db = schedy.SchedyDB(str(tmp_path_factory.mktemp("site") / "db"))
    populate(db)
    before = tree(db)
    with serving(db._store, poll_interval=2.5) as client:
        client.db = db
        yield client
    assert tree(db) == before  # whatever the tests asked, nothing was written


# ---------------------------------------------------------------- the page and its files


def test_page_is_html_with_the_csp_header(site):
    c = site
    for path in ("/", "/index.html", "/?name=alpha"):
        r = c.get(path)
        assert r.status == 200, (path, r)
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        assert r.headers["content-security-policy"] == CSP
        assert "script-src 'self'" in CSP and "default-src 'none'" in CSP and "frame-ancestors 'none'" in CSP
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "no-store"
        assert int(r.headers["content-length"]) == len(r.body)
        text = r.body.decode("utf-8")
        assert text.startswith("<!doctype html>")
        assert '<script src="/static/app.js"></script>' in text
        assert '<link rel="stylesheet" href="/static/app.css">' in text
        links = parse(r.body).links
        assert links and all(link.startswith("/static/") or link.startswith("data:") for link in links), links
        config = re.search(r'<script type="application/json" id="schedy-config">(.*?)</script>', text).group(1)
        assert json.loads(config) == {"mode": "live", "poll": 2.5}
        assert "http://" not in text and "https://" not in text  # nothing fetched from elsewhere


@pytest.mark.parametrize("name", sorted(STATIC))
def test_static_files_are_served_with_their_content_type(site, name):
    c = site
    r = c.get(f"/static/{name}")
    assert r.status == 200, r
    assert r.headers["content-type"] == STATIC[name]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.body == page.static_file(name)[0]
    assert int(r.headers["content-length"]) == len(r.body) > 1000
    if name == "plotly.min.js":
        from plotly.offline import get_plotlyjs

        assert r.body == get_plotlyjs().encode("utf-8")


@pytest.mark.parametrize(
    "path",
    [
        "/static/nope.js",
        "/static/index.html",
        "/static/",
        "/static/../server.py",
        "/static/%2e%2e/server.py",
        "/static/app.js/x",
        "/static//etc/passwd",
        "/static/APP.JS",
        "/nope",
        "/api",
        "/api/experiments/alpha",
    ],
)
def test_anything_else_is_404_in_json(site, path):
    c = site
    r = c.get(path)
    assert r.status == 404, r
    assert r.headers["content-type"] == "application/json"
    assert "error" in r.json


# ---------------------------------------------------------------- the API on every store


def test_api_on_every_store(db):
    """Listing, full and delta answers, on a local directory, a memory store and S3."""
    exps = populate(db)
    with serving(db._store) as c:
        r = c.get("/api/experiments")
        assert r.status == 200 and r.headers["content-type"] == "application/json"
        assert r.headers["cache-control"] == "no-store"
        listing = r.json
        # Sorted by name (code point order), the deleted experiment left out.
        assert [s["name"] for s in listing] == ["Beta search", "alpha", "empty"]
        for s in listing:
            state, time_of = expected(db, s["name"])
            assert s == as_json(views.summary(state, time_of))

        # A full answer is both views of the log as it stands.
        for name in ("alpha", "Beta search", "empty"):
            state, time_of = expected(db, name)
            assert c.api(name) == as_json(
                {"summary": views.summary(state, time_of), "jobs": views.job_columns(state, time_of)}
            )
        alpha = c.api("alpha")
        assert alpha["jobs"]["columns"]["id"] == ["1", "2", "3"]
        assert alpha["jobs"]["hp"]["lr"] == [0.1, 0.2, "Infinity"]
        assert alpha["jobs"]["results"]["curve"] == [None, [1.0, "NaN"], None]
        assert alpha["summary"]["best"] == {"job": "3", "value": 0.25}
        assert alpha["summary"]["counts"] == {"QUEUED": 0, "RUNNING": 0, "CRASHED": 1, "PRUNED": 0, "DONE": 2}

        # A delta: only what changed after the version the page has.
        v, created = alpha["jobs"]["version"], alpha["jobs"]["created"]
        same = c.api("alpha", since=v, created=created)
        assert same["jobs"]["since"] == v and same["jobs"]["columns"]["id"] == [] and same["jobs"]["count"] == 3
        exps["alpha"].add_job({"lr": 0.3})
        job = exps["alpha"].get_job("1")
        job.status = "PRUNED"
        job.put()
        delta = c.api("alpha", since=v, created=created)
        assert delta["jobs"]["since"] == v
        assert delta["jobs"]["columns"]["id"] == ["1", "4"]
        assert delta["jobs"]["columns"]["status"] == ["PRUNED", "QUEUED"]
        assert delta["jobs"]["count"] == 4 and delta["jobs"]["version"] == v + 2
        assert delta["summary"]["version"] == v + 2 and delta["summary"]["jobs"] == 4
        state, time_of = expected(db, "alpha")
        assert delta["jobs"] == as_json(views.job_columns(state, time_of, since=v))
        # A version beyond the log (a log cut back, a page of another database): everything again.
        assert c.api("alpha", since=v + 100, created=created)["jobs"]["since"] == 0

        # Unknown and deleted experiments are 404, naming them.
        for name in ("nope", "gone"):
            r = c.get("/api/experiment?name=" + name)
            assert r.status == 404, r
            assert name in r.json["error"]


def test_times_are_right_when_the_experiment_opens_from_a_snapshot(tmp_path):
    """A snapshot keeps no commit times: the commits before it are read for them, the ones after as they come."""
    path = str(tmp_path / "db")
    db = schedy.SchedyDB(path, snapshot_every=3)
    exp = db.add_experiment(schedy.ManualSearch("snap"))
    for i in range(6):
        exp.add_job({"lr": i}, status="DONE", results={"loss": 1.0 / (i + 1)})
    assert os.listdir(os.path.join(path, "experiments", "snap")) != ["log.jsonl"]  # a snapshot is there
    with serving(FileLogStore(path)) as c:
        assert c.api("snap") == as_json(
            {"summary": views.summary(*expected(db, "snap")), "jobs": views.job_columns(*expected(db, "snap"))}
        )
        first = c.api("snap")["jobs"]
        assert None not in first["columns"]["finished_at"] and None not in first["columns"]["added_at"]
        for i in range(4):  # past the next snapshot, read as they come
            exp.add_job({"lr": 10 + i}, status="DONE", results={"loss": 0.01})
        again = c.api("snap")
        assert again == as_json(
            {"summary": views.summary(*expected(db, "snap")), "jobs": views.job_columns(*expected(db, "snap"))}
        )
        assert again["summary"]["updated_at"] == log_commits(db, "snap")[-1].time


def test_a_commit_of_another_process_shows_up_on_the_next_request(shared_db_path):
    db = schedy.SchedyDB(shared_db_path)
    exp = db.add_experiment(schedy.ManualSearch("grow"))
    exp.add_job({"lr": 0.1})
    with serving(db._store) as c:
        before = c.api("grow")
        assert before["jobs"]["count"] == 1
        listing = c.get("/api/experiments").json
        assert [(s["name"], s["jobs"]) for s in listing] == [("grow", 1)]
        job_id = add_from_another_process(shared_db_path, "grow", {"lr": 0.5}, "DONE", {"loss": 0.25})
        assert job_id == "2"
        delta = c.api("grow", since=before["jobs"]["version"], created=before["jobs"]["created"])
        assert delta["jobs"]["columns"]["id"] == ["2"]
        assert delta["jobs"]["results"] == {"loss": [0.25]}
        assert delta["jobs"]["columns"]["finished_at"][0] is not None
        assert delta["summary"]["best"] == {"job": "2", "value": 0.25}
        assert [(s["name"], s["jobs"]) for s in c.get("/api/experiments").json] == [("grow", 2)]
        # A new experiment made elsewhere appears in the listing.
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys, schedy; schedy.SchedyDB(sys.argv[1]).add_experiment(schedy.ManualSearch('another'))",
                shared_db_path,
            ],
            check=True,
            timeout=60,
        )
        assert [s["name"] for s in c.get("/api/experiments").json] == ["another", "grow"]


def test_concurrent_requests_while_the_log_grows_are_each_consistent(file_db):
    exp = file_db.add_experiment(schedy.ManualSearch("busy"))
    exp.add_job({"lr": 0})
    errors, answers = [], []

    def reader(client):
        try:
            for _ in range(15):
                doc = client.api("busy")
                answers.append(doc)
                listing = client.get("/api/experiments").json
                assert listing[0]["name"] == "busy"
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    with serving(file_db._store) as c:
        threads = [threading.Thread(target=reader, args=(c,)) for _ in range(4)]
        for t in threads:
            t.start()
        for i in range(1, 15):
            exp.add_job({"lr": i}, status="DONE", results={"loss": 1 / i})
        for t in threads:
            t.join(60)
        final = c.api("busy")
    assert not errors, errors
    assert final["jobs"]["count"] == 15
    for doc in answers + [final]:
        jobs, summary = doc["jobs"], doc["summary"]
        n = jobs["count"]
        assert jobs["columns"]["id"] == [str(i) for i in range(1, n + 1)]
        assert all(
            len(col) == n for col in [*jobs["columns"].values(), *jobs["hp"].values(), *jobs["results"].values()]
        )
        assert None not in jobs["columns"]["added_at"]  # the times reach as far as the state
        assert jobs["version"] == n + 1
        assert summary["updated_at"] is not None and summary["created_at"] is not None


def test_one_answer_is_of_one_version_of_the_log(file_db, monkeypatch):
    """Fixed bug (minor): the summary and the jobs of one answer can come from two versions of the log.

    Handler._route (schedy/dashboard/server.py) reads the state in
    feeds.get(name), then feed.render("summary") and
    feed.render("job_columns", since=...) each refresh the feed again: a
    commit that lands between them gives a summary of commit v and jobs of
    commit v + 1 (here: a summary counting 1 job beside a table of 2), and
    the since/created check was made against yet another read. Proposed
    fix: refresh once per request and render both views (and check
    created/since) from that one state, e.g. Feed.render(view, state, ...).
    """
    exp = file_db.add_experiment(schedy.ManualSearch("torn"))
    exp.add_job({"lr": 0})
    real = views.summary
    fired = []

    def summary_then_a_commit(state, time_of):
        out = real(state, time_of)
        if state.name == "torn" and not fired:
            fired.append(True)
            exp.add_job({"lr": 1})  # another writer's commit lands while the answer is being made
        return out

    monkeypatch.setattr(views, "summary", summary_then_a_commit)
    with serving(file_db._store) as c:
        doc = c.api("torn")
    assert fired
    assert doc["summary"]["version"] == doc["jobs"]["version"], doc
    assert doc["summary"]["jobs"] == doc["jobs"]["count"]


def test_a_recreated_experiment_is_sent_in_full(file_db):
    exp = file_db.add_experiment(schedy.ManualSearch("again"))
    for i in range(3):
        exp.add_job({"lr": i})
    with serving(file_db._store) as c:
        old = c.api("again")
        exp.delete()
        assert c.get("/api/experiment?name=again").status == 404
        assert [s["name"] for s in c.get("/api/experiments").json] == []
        new = file_db.add_experiment(schedy.ManualSearch("again"))
        new.add_job({"lr": 10})
        # The page still has the old incarnation: it must get everything of the new one, not a delta.
        got = c.api("again", since=old["jobs"]["version"], created=old["jobs"]["created"])
        assert got["jobs"]["created"] != old["jobs"]["created"]
        assert got["jobs"]["since"] == 0
        assert got["jobs"]["columns"]["id"] == ["4"]  # job numbers go on across incarnations
        assert got["jobs"]["hp"] == {"lr": [10]}
        assert got["summary"]["created"] == got["jobs"]["created"] and got["summary"]["jobs"] == 1
        # Even when the old version is below the new one's.
        assert c.api("again", since=2, created=old["jobs"]["created"])["jobs"]["since"] == 0


# ---------------------------------------------------------------- bad requests


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?",
        "?name=",
        "?name=a&name=b",
        "?nom=alpha",
        "?name=alpha&since=abc",
        "?name=alpha&since=-1",
        "?name=alpha&since=1.5",
        "?name=alpha&since=",
        "?name=alpha&since=1&created=x",
        "?name=alpha&created=-3",
    ],
)
def test_bad_queries_are_400_in_json(site, query):
    c = site
    r = c.get("/api/experiment" + query)
    assert r.status == 400, (query, r)
    assert r.headers["content-type"] == "application/json"
    assert r.json["error"]


def test_an_unknown_experiment_is_404_naming_it(site):
    c = site
    r = c.get("/api/experiment?name=nope")
    assert r.status == 404 and r.headers["content-type"] == "application/json"
    assert "'nope'" in r.json["error"]


@pytest.mark.parametrize("name", ["No Such", "Ünïcode/../x", "a" * 300])
def test_an_unknown_experiment_with_an_escaped_key_is_404_naming_it(site, name):
    """The 404 names the experiment the page asked for, not the stream key it maps to ('%4Eo%20%53uch')."""
    c = site
    r = c.get("/api/experiment?name=" + _quote(name))
    assert r.status == 404, r
    assert repr(name) in r.json["error"], r.json["error"]


@pytest.mark.parametrize("method", REFUSED)
def test_other_methods_are_405_and_write_nothing(site, method):
    c = site
    before = tree(c.db)
    for path in ("/", "/api/experiments", "/api/experiment?name=alpha", "/static/app.js", "/nope"):
        r = c.request(path, method=method, body=b'{"name": "x"}', headers={"Content-Type": "application/json"})
        assert r.status == 405, (method, path, r)
        assert r.headers["allow"] == "GET, HEAD"
        assert r.headers["content-type"] == "application/json"
        assert "read only" in r.json["error"]
    assert tree(c.db) == before


def test_a_refused_request_body_is_never_read_as_a_request(site):
    """Fixed bug: the body of a refused request is left on the connection and answered as the next request.

    Handler._refuse (schedy/dashboard/server.py) answers 405 without reading
    the body and keeps the HTTP/1.1 connection open, so the body's bytes are
    parsed as a new request: a POST whose body is "GET /api/experiments ..."
    gets two answers, the second one the listing. Reading and discarding
    Content-Length bytes, or closing the connection after a refusal
    (self.close_connection = True), fixes it.
    """
    c = site
    inner = f"GET /api/experiments HTTP/1.1\r\nHost: 127.0.0.1:{c.port}\r\nConnection: close\r\n\r\n".encode()
    out = c.raw(
        f"POST /api/experiments HTTP/1.1\r\nHost: 127.0.0.1:{c.port}\r\n"
        f"Content-Type: text/plain\r\nContent-Length: {len(inner)}\r\n\r\n".encode()
        + inner
    )
    assert out.startswith(b"HTTP/1.1 405 ")
    assert out.count(b"HTTP/1.1 ") == 1, out.decode("latin-1")
    assert b"alpha" not in out


# ---------------------------------------------------------------- Host header (DNS rebinding)


def test_only_loopback_host_names_are_answered(site):
    c = site
    p = c.port
    for host in (f"localhost:{p}", f"127.0.0.1:{p}", "localhost", f"LOCALHOST:{p}", f"127.0.0.2:{p}"):
        r = c.get("/api/experiments", host=host)
        assert r.status == 200, (host, r)
    for host in (f"evil.example:{p}", "evil.example", f"localhost.evil.example:{p}", f"[::2]:{p}", f"10.0.0.1:{p}", ""):
        for path in ("/api/experiments", "/", "/api/experiment?name=alpha", "/static/app.js"):
            r = c.get(path, host=host)
            assert r.status == 403, (host, path, r)
            assert r.headers["content-type"] == "application/json"
            assert b"alpha" not in r.body
    assert c.get("/api/experiments", host=False).status == 403  # no Host header at all


@pytest.mark.parametrize("host", ["127.evil.example", "127.0.0.1.evil.example", "127.attacker.test"])
def test_a_host_name_starting_with_127_dot_is_not_loopback(site, host):
    """Fixed bug: DNS rebinding through a host name that merely starts with "127.".

    _loopback_host (schedy/dashboard/server.py) accepts any name for which
    name.startswith("127.") holds, so a page served from "127.evil.example"
    (a name an attacker can register and rebind to 127.0.0.1) reads every
    log. Only an IP literal may pass that test: accept "localhost", or a
    name for which ipaddress.ip_address(name).is_loopback is true.
    """
    c = site
    r = c.get("/api/experiments", host=f"{host}:{c.port}")
    assert r.status == 403, r


def test_a_server_bound_elsewhere_does_not_check_the_host(file_db):
    populate(file_db)
    server = DashboardServer(file_db._store, host="0.0.0.0", port=0, min_interval=0)
    server.start()
    try:
        assert not server.loopback
        r = Client(server).get("/api/experiments", host="dashboard.example:80")
        assert r.status == 200
    finally:
        stop(server)


# ---------------------------------------------------------------- HEAD


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/static/app.css",
        "/api/experiments",
        "/api/experiment?name=alpha",
        "/api/experiment?name=nope",
        "/api/experiment",
        "/static/nope",
    ],
)
def test_head_has_the_headers_of_get_and_no_body(site, path):
    c = site
    got = c.get(path)
    head = c.request(path, method="HEAD")
    assert head.status == got.status
    for k in ("content-type", "content-length", "content-security-policy", "cache-control"):
        assert head.headers[k] == got.headers[k], k
    # On the wire: nothing after the headers, although Content-Length says how long GET's body is.
    out = c.raw(f"HEAD {path} HTTP/1.1\r\nHost: localhost:{c.port}\r\nConnection: close\r\n\r\n".encode())
    headers, _, rest = out.partition(b"\r\n\r\n")
    assert headers.startswith(b"HTTP/1.1 %d " % got.status)
    assert rest == b""


# ---------------------------------------------------------------- a damaged log


def damaged_db(tmp_path):
    db = schedy.SchedyDB(str(tmp_path / "db"))
    good = db.add_experiment(schedy.ManualSearch("good"))
    good.add_job({"lr": 0.1})
    bad = db.add_experiment(schedy.ManualSearch("bad"))
    for i in range(3):
        bad.add_job({"lr": i})
    corrupt_crc(os.path.join(db.path, "experiments", "bad", "log.jsonl"), 3)
    return db


def test_a_damaged_log_is_a_500_naming_the_problem_and_others_are_still_served(tmp_path):
    db = damaged_db(tmp_path)
    with serving(db._store) as c:
        for _ in range(2):
            r = c.get("/api/experiment?name=bad")
            assert r.status == 500, r
            assert r.headers["content-type"] == "application/json"
            error = r.json["error"]
            assert "'bad'" in error and "commit 3" in error and "damaged" in error, error
        good = c.api("good")
        assert good["jobs"]["hp"] == {"lr": [0.1]}
        assert c.get("/").status == 200
        # The listing lists the intact experiments, and the damaged one with its error in place of its summary.
        r = c.get("/api/experiments")
        assert r.status == 200, r
        assert [s["name"] for s in r.json] == ["bad", "good"]
        assert r.json[0] == {"name": "bad", "error": error}
        assert r.json[1]["jobs"] == 1 and r.json[1]["counts"]["QUEUED"] == 1
        assert c.api("good")["summary"]["name"] == "good"


def test_a_damaged_log_stays_an_error_on_requests_close_together(tmp_path):
    """Fixed bug: within min_interval of a failed read, a damaged experiment turns into "not found" or vanishes.

    Feed.refresh (schedy/dashboard/feed.py) sets self._checked before reading;
    when the read raises CorruptLogError, the next refresh within
    min_interval returns the stale self.state (None): /api/experiment says
    404 "no experiment in stream 'bad'" and /api/experiments silently leaves
    the experiment out, until min_interval has passed. Proposed fix: keep
    the error (self._error = e) and raise it again within the interval, or
    set self._checked only after a successful read.
    """
    db = damaged_db(tmp_path)
    with serving(db._store, min_interval=30.0) as c:
        for _ in range(3):
            r = c.get("/api/experiment?name=bad")
            assert r.status == 500, r
        for _ in range(2):
            r = c.get("/api/experiments")
            # Never a listing that hides the damaged experiment: it is there, with its error.
            assert r.status == 200, r
            (bad,) = [s for s in r.json if s["name"] == "bad"]
            assert "commit 3" in bad["error"] and "damaged" in bad["error"], bad


# ---------------------------------------------------------------- the server never writes


def test_the_server_never_writes(tmp_path):
    path = str(tmp_path / "db")
    writer = schedy.SchedyDB(path, snapshot_every=4)  # snapshots at commits 4, 8, ...
    populate(writer)
    snap = writer.add_experiment(schedy.ManualSearch("snapped"))
    for i in range(10):
        snap.add_job({"i": i})
    long = schedy.SchedyDB(path).add_experiment(schedy.ManualSearch("long"))  # snapshot_every 1000: no snapshot
    for i in range(40):
        long.add_job({"i": i}, status="DONE", results={"loss": 1 / (i + 1)})
    bad = writer.add_experiment(schedy.ManualSearch("bad"))
    bad.add_job({})
    bad.add_job({})
    corrupt_crc(os.path.join(path, "experiments", "bad", "log.jsonl"), 2)
    assert os.path.exists(os.path.join(path, "experiments", "snapped", "snapshot.json"))
    before = tree(writer)
    # A reader whose snapshot interval says that every log here is due for a snapshot.
    reader = schedy.SchedyDB(path, snapshot_every=2)
    paths = [
        "/",
        "/index.html",
        "/static/app.js",
        "/static/app.css",
        "/static/plotly.min.js",
        "/static/x",
        "/api/experiments",
        "/api/experiment",
        "/api/experiment?name=nope",
        "/api/experiment?name=gone",
        "/api/experiment?name=bad",
        "/api/experiment?name=new%2F..%2Fx",
        "/api/experiment?name=..",
        "/api/experiment?name=alpha&since=x",
    ]
    for name in ("alpha", "Beta search", "empty", "snapped", "long"):
        paths += [
            f"/api/experiment?name={_quote(name)}",
            f"/api/experiment?name={_quote(name)}&since=3&created=1",
            f"/api/experiment?name={_quote(name)}&since=3&created=2",
        ]
    with serving(reader._store, min_interval=0.0) as c:
        for _ in range(2):
            for p in paths:
                for method in ("GET", "HEAD"):
                    assert c.request(p, method=method).status in (200, 400, 404, 500)
                assert c.get(p, host="evil.example").status == 403
                for method in REFUSED:
                    assert c.request(p, method=method, body=b"x=1").status == 405
        assert c.api("long")["jobs"]["count"] == 40
        # Opened from its snapshot, with the times of every commit all the same.
        state, time_of = expected(writer, "snapped")
        assert c.api("snapped") == as_json(
            {"summary": views.summary(state, time_of), "jobs": views.job_columns(state, time_of)}
        )
        assert c.api("snapped")["jobs"]["count"] == 10
    after = tree(writer)
    assert sorted(after) == sorted(before)
    assert after == before


def test_the_server_never_writes_on_s3(s3_endpoint):
    from conftest import new_bucket

    location = f"s3://{new_bucket(s3_endpoint)}/team/db"
    writer = schedy.SchedyDB(location, snapshot_every=4)
    populate(writer)
    exp = writer.add_experiment(schedy.ManualSearch("snapped"))
    for i in range(9):
        exp.add_job({"i": i})
    before = tree(writer)
    assert any("/snapshots/" in k for k in before)
    reader = schedy.SchedyDB(location, snapshot_every=2)
    with serving(reader._store) as c:
        for name in ("alpha", "Beta search", "snapped", "nope", "gone"):
            c.get("/api/experiment?name=" + _quote(name))
            c.get(f"/api/experiment?name={_quote(name)}&since=2&created=1")
            for method in REFUSED:
                assert c.request("/api/experiment?name=" + _quote(name), method=method, body=b"{}").status == 405
        assert [s["name"] for s in c.get("/api/experiments").json] == ["Beta search", "alpha", "empty", "snapped"]
        assert c.api("snapped")["jobs"]["count"] == 9
    assert tree(writer) == before


# ---------------------------------------------------------------- the report


class Scripts(html.parser.HTMLParser):
    """The script elements of a page: their attributes and text."""

    def __init__(self):
        super().__init__()
        self.scripts, self.links, self._open = [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self._open = {"attrs": attrs, "text": ""}
        for k in ("src", "href"):
            if k in attrs:
                self.links.append(attrs[k])

    def handle_data(self, data):
        if self._open is not None:
            self._open["text"] += data

    def handle_endtag(self, tag):
        if tag == "script" and self._open is not None:
            self.scripts.append(self._open)
            self._open = None


def parse(data):
    p = Scripts()
    p.feed(data.decode("utf-8"))
    p.close()
    return p


def embedded(data):
    (doc,) = [s for s in parse(data).scripts if s["attrs"].get("id") == "schedy-data"]
    assert doc["attrs"]["type"] == "application/json"
    return json.loads(doc["text"])


def test_report_is_self_contained_and_carries_the_views(file_db):
    populate(file_db)
    data = report_html(file_db._store, "alpha")
    text = data.decode("utf-8")
    from plotly.offline import get_plotlyjs

    assert get_plotlyjs() in text  # plotly.js inline
    assert page.static_file("app.js")[0].decode("utf-8") in text
    assert f'<meta http-equiv="Content-Security-Policy" content="{page.REPORT_CSP}">' in text
    assert "connect-src" not in page.REPORT_CSP and "default-src 'none'" in page.REPORT_CSP
    parsed = parse(data)
    assert not any(re.match(r"(?i)\s*(https?:)?//", link) for link in parsed.links), parsed.links
    # Apart from plotly.js's own code (links it may draw, never fetched: the CSP has no network source),
    # the file names no address at all.
    assert not re.search(r"https?://", text.replace(get_plotlyjs(), ""))
    assert all("src" not in s["attrs"] for s in parsed.scripts)
    config = [s for s in parsed.scripts if s["attrs"].get("id") == "schedy-config"]
    assert json.loads(config[0]["text"]) == {"mode": "report"}
    state, time_of = expected(file_db, "alpha")
    summary = as_json(views.summary(state, time_of))
    assert embedded(data) == {
        "experiments": [summary],
        "experiment": {
            "summary": summary,
            "jobs": as_json(views.job_columns(state, time_of)),
            "importance": as_json(views.importance(state)),
        },
    }
    assert f"report: commit {state.version}" in text


def harmless(db):
    db.add_experiment(schedy.ManualSearch("harmless")).add_job({"lr": 1}, status="DONE", results={"loss": 1})
    return report_html(db._store, "harmless")


HOSTILE = '</script><script>alert(1)</script><!-- \u2028 & "quoted" <b> {head}{mode}{body}'


def test_a_hostile_name_and_values_do_not_close_the_script_element(file_db):
    exp = file_db.add_experiment(schedy.ManualSearch(HOSTILE))
    exp.add_job(
        {"</script><script>alert(2)</script>": "</SCRIPT ><script>alert(3)</script>"},
        status="DONE",
        results={"loss": 0.5, "note": "<!--<script>"},
    )
    data = report_html(file_db._store, HOSTILE)
    parsed = parse(data)
    # As many "</script" in the file as script elements: no value ends an element early.
    assert data.lower().count(b"</script") == len(parsed.scripts)
    # The same elements as the report of a harmless experiment: plotly.js, the config, the data, app.js.
    assert sorted(str(sc["attrs"].get("id")) for sc in parsed.scripts) == [
        "None",
        "None",
        "schedy-config",
        "schedy-data",
    ]
    assert len(parse(report_html(file_db._store, HOSTILE)).scripts) == len(parse(harmless(file_db)).scripts)
    assert b"<script>alert(" not in data
    got = embedded(data)
    assert got["experiment"]["summary"]["name"] == HOSTILE
    assert got["experiment"]["jobs"]["hp"] == {
        "</script><script>alert(2)</script>": ["</SCRIPT ><script>alert(3)</script>"]
    }
    assert got["experiment"]["jobs"]["results"]["note"] == ["<!--<script>"]


def test_write_report_writes_the_file_atomically(file_db, tmp_path):
    populate(file_db)
    out = tmp_path / "out" / "alpha.html"
    out.parent.mkdir()
    out.write_bytes(b"old report")
    size = write_report(file_db._store, "alpha", str(out))
    assert out.read_bytes() == report_html(file_db._store, "alpha")
    assert size == out.stat().st_size
    assert sorted(os.listdir(out.parent)) == ["alpha.html"]
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_write_report_leaves_no_temporary_file_when_it_fails(file_db, tmp_path, monkeypatch):
    populate(file_db)
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "alpha.html"
    target.write_bytes(b"the previous report")

    # The last step fails: the previous file stays whole, and nothing else is left.
    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report_module.os, "replace", fail)
    with pytest.raises(OSError):
        write_report(file_db._store, "alpha", str(target))
    monkeypatch.undo()
    assert sorted(os.listdir(folder)) == ["alpha.html"]
    assert target.read_bytes() == b"the previous report"
    # The target is a directory: os.replace fails for real.
    (folder / "dir.html").mkdir()
    with pytest.raises(OSError):
        write_report(file_db._store, "alpha", str(folder / "dir.html"))
    assert sorted(os.listdir(folder)) == ["alpha.html", "dir.html"]
    assert os.listdir(folder / "dir.html") == []
    # Writing fails half way.
    real_fdopen = os.fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[:100])
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(report_module.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    with pytest.raises(OSError):
        write_report(file_db._store, "alpha", str(target))
    monkeypatch.undo()
    assert sorted(os.listdir(folder)) == ["alpha.html", "dir.html"]
    # An unknown experiment: nothing is created at all.
    with pytest.raises(ExperimentNotFoundError):
        write_report(file_db._store, "nope", str(folder / "nope.html"))
    with pytest.raises(ExperimentNotFoundError):
        write_report(file_db._store, "gone", str(folder / "gone.html"))
    assert sorted(os.listdir(folder)) == ["alpha.html", "dir.html"]


def test_a_reader_that_resets_its_connection_costs_a_debug_line_not_a_traceback(file_db, capsys, caplog):
    """A tab closed mid-request resets the connection: nothing on the terminal, and the next request is served."""
    import logging
    import struct
    import time

    file_db.add_experiment(schedy.ManualSearch("alpha"))
    caplog.set_level(logging.DEBUG, logger="schedy.dashboard")
    with serving(file_db._store) as c:
        s = socket.create_connection(("127.0.0.1", c.port), timeout=30)
        s.sendall(b"GET /api/experiments HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never finished
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # with SO_LINGER 0: a reset, as a killed browser leaves it
        deadline = time.monotonic() + 60
        while not any("went away" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "the server never noticed the reset"
            time.sleep(0.01)
        r = c.get("/api/experiments")
        assert r.status == 200 and [e["name"] for e in r.json] == ["alpha"]
    assert "Traceback" not in capsys.readouterr().err


# ---------------------------------------------------------------- hyperparameter importance


def test_importance_is_served_for_the_result_asked_and_a_bad_query_is_refused(file_db):
    exp = file_db.add_experiment(schedy.ManualSearch("imp"))
    for i in range(12):
        exp.add_job({"x": i / 10, "y": (i * 7) % 5}, status="DONE", results={"loss": (i / 10) ** 2, "acc": i % 3})
    state, _ = expected(file_db, "imp")
    with serving(file_db._store) as c:
        for score, goal in (("loss", "min"), ("acc", "max")):
            r = c.get(f"/api/importance?name=imp&score={score}&goal={goal}")
            assert r.status == 200, r
            assert r.json == as_json(views.importance(state, result=score, goal=goal))
            assert r.json["score"] == score and {d["name"] for d in r.json["importances"]} == {"x", "y"}
        for query, message in (
            ("name=imp&score=loss&goal=up", "'goal' must be 'min' or 'max'"),
            ("name=imp&goal=min", "exactly one non-empty 'score'"),
            ("name=nope&score=loss&goal=min", "nope"),
        ):
            r = c.get("/api/importance?" + query)
            assert r.status in (400, 404) and message in r.json["error"], (query, r)
