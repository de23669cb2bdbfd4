"""Readers on object storage GET the next commits instead of listing the log (schedy/adapters/objectstore.py,
``ObjectLogStore.read``): what a read costs, counted in requests and in response bytes, and what it still sees.

The claim cycle of a worker that is caught up must cost the same on a log of 100 commits and on one of 2,000:
counted in the fault proxy (tests/faultproxy.py) between obstore and the server, on moto and, when
SCHEDY_TEST_AZURITE_URL names one, on Azurite (whose listings ignore the start-after offset, so a reader that
lists downloads the whole log at every claim). The long logs are written by real worker cycles on a memory://
database, then every object is copied into the bucket: byte for byte what workers write.
"""

import base64
import hashlib
import hmac
import threading
import urllib.request
import uuid
from collections import Counter
from email.utils import formatdate

import obstore
import pytest
from conftest import (
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    AZURITE_URL,
    create_container,
    new_bucket,
)
from faultproxy import FaultProxy
from longlog import TAIL, build, upload
from obstore.store import MemoryStore

import schedy
from schedy.adapters.objectstore import WINDOW, ObjectLogStore
from schedy.core.codec import Commit, decode_commit, encode_commit
from schedy.errors import CorruptLogError

SHORT, LONG = 100, 2000
CYCLES = 5


def record(version):
    return encode_commit(Commit(version, float(version), "w", [{"type": "Test", "text": "x"}]))


@pytest.fixture
def counted(monkeypatch):
    """Every obstore call of this process, counted by name (from any thread)."""
    calls, guard = Counter(), threading.Lock()
    for fn in ("list", "list_with_delimiter", "get", "put", "head"):
        real = getattr(obstore, fn)

        def wrapper(*a, _real=real, _fn=fn, **k):
            with guard:
                calls[_fn] += 1
            return _real(*a, **k)

        monkeypatch.setattr(obstore, fn, wrapper)
    return calls


def log_of(n):
    """A store holding the stream "s" of commits 1..n."""
    store = ObjectLogStore(MemoryStore(), "db", location="memory store")
    for v in range(1, n + 1):
        assert store.append("s", v - 1, v, record(v)) == v
    return store


def delete(store, version):
    obstore.delete(store.store, store.log_path("s", version))


# -- what a read costs, and that it never lists ---------------------------------------------------------------------


def test_a_long_log_is_read_from_the_start_with_one_get_per_commit_and_at_most_a_window_more(counted):
    store = log_of(300)
    counted.clear()
    records, cursor = store.read("s", 0)
    assert [decode_commit(r).version for r in records] == list(range(1, 301)) and cursor == 300
    assert "list" not in counted and 300 < counted["get"] <= 300 + WINDOW + 1


@pytest.mark.parametrize(
    ("behind", "gets"),
    [
        (0, 1),  # caught up: one GET, answered 404
        (1, 1 + 2),  # the next commit, then the two after it at once (both 404)
        (2, 1 + 2 + 1),  # the missing one closed its window: one GET past it, to see whether the log goes on
        (3, 1 + 2 + 4),
        (7, 1 + 2 + 4 + 8),
    ],
)
def test_a_reader_behind_by_a_few_commits_gets_those_and_one_window_of_misses(counted, behind, gets):
    store = log_of(20)
    counted.clear()
    records, cursor = store.read("s", 20 - behind)
    assert [decode_commit(r).version for r in records] == list(range(21 - behind, 21)) and cursor == 20
    assert dict(counted) == {"get": gets}


def test_a_writer_that_lost_a_race_reads_the_winners_commit_once(counted):
    winner = log_of(4)
    loser = ObjectLogStore(winner.store, winner.prefix, location=winner.location)
    assert winner.append("s", 4, 5, record(5)) == 5
    counted.clear()
    assert loser.append("s", 4, 5, encode_commit(Commit(5, 5.0, "loser", []))) is None
    assert dict(counted) == {"put": 1, "get": 1}  # the refused create, then the winner's bytes read back
    counted.clear()
    records, cursor = loser.read("s", 4)
    assert [decode_commit(r).worker for r in records] == ["w"] and cursor == 5
    assert dict(counted) == {"get": 1}  # only commit 6 (404): commit 5 came with the lost race


# -- holes, and commits written between two GETs ------------------------------------------------------------------


@pytest.mark.parametrize("hole", range(2, 20))
def test_a_hole_is_reported_by_every_reader_that_reads_up_to_it_and_missed_only_by_one_caught_up_before_it(hole):
    store = log_of(20)
    delete(store, hole)
    for cursor in range(hole - 1):
        with pytest.raises(CorruptLogError, match=f"commit {hole} is missing"):
            store.read("s", cursor)
    # The documented limit: a reader that already had commit hole - 1 hears 404 and is "caught up".
    assert store.read("s", hole - 1) == ([], hole - 1)


def test_a_commit_written_between_two_gets_of_a_window_is_not_taken_for_a_hole(monkeypatch):
    store = log_of(10)
    real = store._get_bytes
    hidden = []

    def get_bytes(what, path, attempts=None):
        if path == store.log_path("s", 6) and not hidden:
            hidden.append(path)  # the first GET of commit 6 arrives before it is written; commit 7's after
            return None
        return real(what, path, attempts)

    monkeypatch.setattr(store, "_get_bytes", get_bytes)
    records, cursor = store.read("s", 0)
    assert hidden and [decode_commit(r).version for r in records] == list(range(1, 11)) and cursor == 10


def test_the_end_of_the_log_is_not_a_hole():
    store = log_of(10)
    delete(store, 10)  # the last commit gone: the log is simply shorter (a writer appends commit 10 again)
    records, cursor = store.read("s", 0)
    assert len(records) == 9 and cursor == 9


# -- the claim cycle of a caught-up worker, counted through the fault proxy ------------------------------------------


def is_listing(target):
    query = target.partition("?")[2]
    return "list-type=" in query or "comp=list" in query  # S3's ListObjectsV2, Azure's List Blobs


def claim_cycles(proxy, open_db, location, n):
    """``(method, status)`` of each request and the reply bytes of CYCLES claim cycles of a caught-up worker."""
    db = open_db(location, snapshot_every=n - TAIL)
    exp = db.get_experiment("long")
    assert exp._view.snapshot == "used" and exp._view.state.version == n
    marks = len(proxy.requests), len(proxy.replies)
    for i in range(CYCLES):
        with exp.next_job() as job:
            job.results["loss"] = 1.0
        assert job.job_id == str(n // 2 + i)  # the queued job the log ends with, then sampled ones
    assert exp._view.state.version == n + 2 * CYCLES
    requests, replies = proxy.requests[marks[0] :], proxy.replies[marks[1] :]
    assert len(requests) == len(replies)  # nothing was reset or cut off: every request had its reply
    return [(m, status) for m, _, status, _, _ in replies], sum(h + b for *_, h, b in replies), requests


def delete_container(name):
    """Delete a container of the Azurite server (it is shared, and slows down as it fills)."""
    headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": "2021-08-06"}
    canonical = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
    to_sign = "DELETE\n" + "\n" * 11 + canonical + f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container"
    digest = hmac.new(base64.b64decode(AZURITE_KEY), to_sign.encode(), hashlib.sha256).digest()
    authorization = f"SharedKey {AZURITE_ACCOUNT}:{base64.b64encode(digest).decode()}"
    request = urllib.request.Request(
        f"{AZURITE_URL}/{AZURITE_ACCOUNT}/{name}?restype=container",
        method="DELETE",
        headers={**headers, "Authorization": authorization},
    )
    assert urllib.request.urlopen(request, timeout=30).status == 202


def check_flat(proxy, make_location, open_db, direct_store):
    """Build a short and a long log in two databases, and compare their claim cycles."""
    seen = {}
    for n in (SHORT, LONG):
        location = make_location()
        store = direct_store(location)
        upload(store, build(n))
        listed = [m for batch in obstore.list(store.store, f"{store.prefix}/experiments/long/log/") for m in batch]
        assert len(listed) == n  # the bucket really holds every commit
        seen[n] = claim_cycles(proxy, open_db, location, n)
    (short, short_bytes, requests), (long_, long_bytes, _) = seen[SHORT], seen[LONG]
    assert not [t for _, t, _ in requests if is_listing(t)]
    # Per cycle: the claim GETs the next commit (404) and puts it; the report the same.
    assert short == long_ and len(short) == 4 * CYCLES
    assert [m for m, _ in short] == ["GET", "PUT"] * 2 * CYCLES and {s for m, s in short if m == "GET"} == {404}
    assert abs(long_bytes - short_bytes) <= 0.02 * short_bytes, (short_bytes, long_bytes)
    return short_bytes / CYCLES


def test_a_caught_up_claim_costs_the_same_at_100_and_2000_commits_on_s3(s3_endpoint):
    with FaultProxy(s3_endpoint) as proxy:

        def location():
            return f"s3://{new_bucket(s3_endpoint)}/team/db"

        def open_db(url, **kw):
            return schedy.SchedyDB(url, endpoint=proxy.url, **kw)

        per_cycle = check_flat(proxy, location, open_db, lambda url: schedy.SchedyDB(url)._store)
    assert per_cycle < 4096  # four replies: headers, and a short error document for each 404


@pytest.mark.skipif(not AZURITE_URL, reason="set SCHEDY_TEST_AZURITE_URL to run against Azurite")
def test_a_caught_up_claim_costs_the_same_at_100_and_2000_commits_on_azurite(monkeypatch):
    for var in ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    account = {"account_name": AZURITE_ACCOUNT, "access_key": AZURITE_KEY}
    containers = []
    with FaultProxy(AZURITE_URL) as proxy:

        def location():
            containers.append(f"schedy-{uuid.uuid4().hex[:12]}")
            create_container(containers[-1])
            return f"az://{containers[-1]}/team/db"

        def open_db(url, **kw):
            return schedy.SchedyDB(url, endpoint=f"{proxy.url}/{AZURITE_ACCOUNT}", **account, **kw)

        def direct(url):
            return schedy.SchedyDB(url, endpoint=f"{AZURITE_URL}/{AZURITE_ACCOUNT}", **account)._store

        try:
            per_cycle = check_flat(proxy, location, open_db, direct)
        finally:
            for name in containers:
                delete_container(name)
    assert per_cycle < 4096
