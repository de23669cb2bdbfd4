"""The object-store log (issue 4): each known trap of conditional puts, against a real S3 API (moto over HTTP)
and, where it makes sense, obstore's in-process memory store.

Several processes claiming from one experiment on the S3 server are covered by tests/test_processes.py
(4 processes draining 500 queued jobs, and 4 processes x 40 sampled jobs of a RandomSearch, on file and s3)
and by the multi-process conformance test in tests/stores (4 processes x 100 appends on S3).
"""

import logging
import random
import subprocess
import sys
import textwrap
import threading
import uuid
from collections import Counter

import obstore
import pytest
from conftest import log_commits, new_bucket
from obstore.exceptions import AlreadyExistsError, NotSupportedError, PreconditionError
from obstore.store import MemoryStore

import schedy
from schedy.adapters.naming import stream_key
from schedy.adapters.objectstore import ObjectLogStore
from schedy.core import decide
from schedy.core import events as ev
from schedy.core.check import find_double_claims
from schedy.core.codec import Commit, decode_commit, encode_commit
from schedy.core.state import fold
from schedy.errors import CorruptLogError, DatabaseError, NoJobError

STORE_KINDS = ["memory", "s3"]


# -- helpers ------------------------------------------------------------------------------------------------


@pytest.fixture
def s3_url(s3_endpoint):
    return f"s3://{new_bucket(s3_endpoint)}/team/db"


@pytest.fixture(params=STORE_KINDS)
def url(request):
    """A fresh database URL on the memory store and on the S3 server."""
    if request.param == "memory":
        return f"memory://{uuid.uuid4().hex}/db"
    return request.getfixturevalue("s3_url")


@pytest.fixture(params=STORE_KINDS)
def store(request):
    """A fresh ObjectLogStore (no SchedyDB) on the memory store and on the S3 server."""
    if request.param == "memory":
        return ObjectLogStore(MemoryStore(), "db", location="memory store")
    db = schedy.SchedyDB(request.getfixturevalue("s3_url"))
    return db._store


def commit_path(store, key, version):
    """The documented object of commit ``version`` (docs/log-format.md)."""
    return f"{store.prefix}/experiments/{key}/log/{version:020d}.json"


def record(version, text="x", worker="w"):
    return encode_commit(Commit(version, float(version), worker, [{"type": "Test", "text": text}]))


def raw(store, key):
    records, _ = store.read(key, 0)
    return [decode_commit(r) for r in records]


def all_objects(obj_store):
    return {
        m["path"]: bytes(obstore.get(obj_store, m["path"]).bytes()) for batch in obstore.list(obj_store) for m in batch
    }


def claims(commits):
    return Counter(e["job"] for c in commits for e in c.events if e["type"] == ev.JOB_CLAIMED)


def manual_with_jobs(db, name, n):
    exp = schedy.ManualSearch(name)
    db.add_experiment(exp)
    for i in range(n):
        exp.add_job({"i": i})
    return exp


# -- (a) a create whose reply was lost ------------------------------------------------------------------------


def test_a_create_whose_reply_was_lost_is_ours_if_the_bytes_are_ours(store):
    data = record(1, "mine")
    obstore.put(store.store, commit_path(store, "s", 1), data)  # the put landed; its reply never came back
    assert store.append("s", 0, 1, data) == 1  # the retry sees "already exists", reads it back: ours
    assert store.append("s", 0, 1, record(1, "theirs", worker="other")) is None  # someone else's: a lost race
    assert [c.events[0]["text"] for c in raw(store, "s")] == ["mine"]


def test_a_lost_reply_then_already_exists_adds_the_job_once(url, monkeypatch):
    """Through the API: the put lands, then obstore's retry reports AlreadyExists. No second commit, no second job."""
    db = schedy.SchedyDB(url)
    exp = manual_with_jobs(db, "e", 2)
    real_put = obstore.put
    lost = []

    def put(store, path, data, **kw):
        out = real_put(store, path, data, **kw)
        if "/log/" in path and not lost:
            lost.append(path)
            raise AlreadyExistsError(f"Object at location {path} already exists")
        return out

    monkeypatch.setattr(obstore, "put", put)
    job = exp.add_job({"i": 99})
    monkeypatch.undo()
    assert lost, "the fault was not injected"
    commits = log_commits(db, "e")
    assert [c.version for c in commits] == [1, 2, 3, 4]
    assert [j.hyperparameters["i"] for j in schedy.SchedyDB(url).get_experiment("e").all_jobs()] == [0, 1, 99]
    assert job.job_id == exp.all_jobs()[-1].job_id


# -- (b) two writers racing on the same version ---------------------------------------------------------------


def _lose_first_append_to(db_b, other_write):
    """Make db_b's first append wait until ``other_write()`` has appended the same version (a decided race)."""
    store = db_b._store
    real_append = store.append
    attempts = []

    def append(key, cursor, version, data, sync=True):
        if not attempts:
            other_write()
        attempts.append(version)
        return real_append(key, cursor, version, data, sync)

    store.append = append
    return attempts


def test_two_writers_racing_on_one_version_one_wins_the_other_decides_again(url):
    db_a, db_b = schedy.SchedyDB(url, worker="a"), schedy.SchedyDB(url, worker="b")
    exp = schedy.RandomSearch("race", {"x": schedy.random.Uniform(0, 1)}, seed=7)
    db_a.add_experiment(exp)
    exp.add_job({"x": 0.5})  # one queued job: both writers decide to claim it
    exp_a, exp_b = db_a.get_experiment("race"), db_b.get_experiment("race")
    got = {}
    attempts = _lose_first_append_to(db_b, lambda: got.setdefault("a", exp_a.next_job()))
    got["b"] = exp_b.next_job()

    assert attempts == [3, 4], "b must lose version 3 to a, then catch up and write version 4"
    assert got["a"].hyperparameters == {"x": 0.5}  # a won the queued job
    assert got["b"].job_id != got["a"].job_id  # b sampled a new one instead of taking a's
    assert got["b"].status == got["a"].status == schedy.Job.RUNNING
    commits = log_commits(db_a, "race")
    assert [c.version for c in commits] == [1, 2, 3, 4]
    assert find_double_claims(commits) == []
    assert set(claims(commits).values()) == {1}
    fresh = schedy.SchedyDB(url).get_experiment("race")
    owners = {c.worker for c in commits if any(e["type"] == ev.JOB_CLAIMED for e in c.events)}
    assert owners == {"a", "b"}
    assert {j.job_id: j.status for j in fresh.all_jobs()} == {got["a"].job_id: "RUNNING", got["b"].job_id: "RUNNING"}


def test_two_writers_racing_for_the_last_queued_job_of_a_manual_search(url):
    db_a, db_b = schedy.SchedyDB(url, worker="a"), schedy.SchedyDB(url, worker="b")
    manual_with_jobs(db_a, "m", 1)
    exp_a, exp_b = db_a.get_experiment("m"), db_b.get_experiment("m")
    got = {}
    attempts = _lose_first_append_to(db_b, lambda: got.setdefault("a", exp_a.next_job()))
    with pytest.raises(NoJobError):
        exp_b.next_job()  # b lost the race, caught up and found nothing left: it writes nothing
    assert attempts == [3]
    commits = log_commits(db_a, "m")
    assert len(commits) == 3 and claims(commits) == {got["a"].job_id: 1}


def test_two_writers_with_the_same_worker_name_and_clock_reading_cannot_both_win(url):
    """Issue 4: "every commit carries a writer token and a conflict is resolved by reading the object back".

    Two writers (say two processes both started with worker="gpu0") decide from the same state at the same
    clock reading: their commits are byte for byte identical unless each carries its own token, and the
    read-back then takes the other's commit for a lost reply of one's own: both return the same job.
    """
    db_a, db_b = schedy.SchedyDB(url, worker="gpu0"), schedy.SchedyDB(url, worker="gpu0")
    exp = schedy.RandomSearch("same", {"x": schedy.random.Uniform(0, 1)}, seed=3)
    db_a.add_experiment(exp)
    exp_a, exp_b = db_a.get_experiment("same"), db_b.get_experiment("same")
    exp_a._view.clock = exp_b._view.clock = lambda: 1700000000.0
    got = {}
    attempts = _lose_first_append_to(db_b, lambda: got.setdefault("a", exp_a.next_job()))
    got["b"] = exp_b.next_job()
    assert attempts[0] == 2
    assert got["a"].job_id != got["b"].job_id, (
        f"both writers were handed job {got['a'].job_id}: writer b took a's identical commit 2 for its own"
    )


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_threads_on_separate_handles_race_without_double_claims(kind, request):
    url = request.getfixturevalue("s3_url") if kind == "s3" else f"memory://{uuid.uuid4().hex}/db"
    manual_with_jobs(schedy.SchedyDB(url), "t", 30)
    done, errors = [], []

    def work(n):
        try:
            exp = schedy.SchedyDB(url, worker=f"t{n}").get_experiment("t")
            while True:
                try:
                    with exp.next_job() as job:
                        done.append(job.job_id)
                except NoJobError:
                    return
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(done, key=int) == [str(i) for i in range(1, 31)]
    commits = log_commits(schedy.SchedyDB(url), "t")
    assert find_double_claims(commits) == [] and set(claims(commits).values()) == {1}
    assert [c.version for c in commits] == list(range(1, len(commits) + 1))


# -- (d) a writer killed between its put and its return ---------------------------------------------------------

KILLED_AFTER_PUT = textwrap.dedent("""
    import os, sys
    import obstore, schedy
    db = schedy.SchedyDB(sys.argv[1], worker="doomed")
    exp = db.get_experiment("k")
    real_put = obstore.put
    def put(store, path, data, **kw):
        out = real_put(store, path, data, **kw)
        if "/log/" in path:
            os._exit(17)  # the commit object is stored; the writer dies before append returns
        return out
    obstore.put = put
    exp.next_job()
    print("survived")
""")


def test_a_writer_killed_between_its_put_and_its_return(s3_url):
    db = schedy.SchedyDB(s3_url, worker="main")
    manual_with_jobs(db, "k", 5)  # commits 1..6
    proc = subprocess.run([sys.executable, "-c", KILLED_AFTER_PUT, s3_url], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 17 and "survived" not in proc.stdout, proc.stderr

    # Its commit is visible to everyone: job 1 is held by the dead worker.
    other = schedy.SchedyDB(s3_url, worker="survivor")
    exp = other.get_experiment("k")
    assert exp.get_job("1").status == schedy.Job.RUNNING
    commits = log_commits(other, "k")
    assert len(commits) == 7 and commits[-1].worker == "doomed"

    # Another worker continues: it gets every other job, never the dead writer's.
    done = []
    while True:
        try:
            with exp.next_job() as job:
                done.append(job.job_id)
        except NoJobError:
            break
    assert done == ["2", "3", "4", "5"]
    commits = log_commits(other, "k")
    assert [c.version for c in commits] == list(range(1, len(commits) + 1))
    assert find_double_claims(commits) == [] and set(claims(commits).values()) == {1}
    assert schedy.SchedyDB(s3_url).get_experiment("k").get_job("1").status == schedy.Job.RUNNING


# -- (e) a commit object deleted or garbled by hand --------------------------------------------------------------


def _five_commits(url, name="sweep"):
    db = schedy.SchedyDB(url)
    manual_with_jobs(db, name, 4)  # commits 1..5
    return db, db._store, stream_key(name)


def test_a_commit_deleted_by_hand_is_a_clear_error_naming_it(url):
    db, store, key = _five_commits(url)
    obstore.delete(store.store, commit_path(store, key, 3))
    with pytest.raises(CorruptLogError) as info:
        schedy.SchedyDB(url).get_experiment("sweep")
    msg = str(info.value)
    assert "commit 3" in msg and "sweep" in msg and "missing" in msg


def test_a_writer_behind_a_deleted_commit_reports_it_instead_of_filling_the_gap(url):
    db, store, key = _five_commits(url)
    view = schedy.SchedyDB(url)._view("sweep")
    records, _ = store.read(key, 0)
    view.state, view.cursor = fold(decode_commit(r) for r in records[:1]), 1  # a reader that stopped at commit 1
    obstore.delete(store.store, commit_path(store, key, 3))
    with pytest.raises(CorruptLogError, match="commit 3 is missing"):  # it reads commit 2, then sees 4 past the hole
        view.transact(
            lambda s, v, now, lapsed: decide.add_job(
                s, name=s.name, hyperparameters={"i": 9}, status="QUEUED", results={}
            )
        )
    assert commit_path(store, key, 3) not in all_objects(store.store)


def test_a_reader_caught_up_at_a_deleted_commit_does_not_see_the_hole_and_verify_does(url):
    """Readers GET the next commit instead of listing: one stopped at commit 2 hears 404 for commit 3 (documented)."""
    from schedy.maintenance import verify

    db, store, key = _five_commits(url)
    obstore.delete(store.store, commit_path(store, key, 3))
    assert store.read(key, 2) == ([], 2)
    e = verify(db, "sweep").experiments[0]
    assert not e.ok and [p.commit for p in e.errors] == [3] and "missing" in e.errors[0].message


@pytest.mark.parametrize("garble", ["text", "truncated", "another_commit"])
def test_a_commit_garbled_by_hand_is_a_clear_error_naming_it(url, garble):
    db, store, key = _five_commits(url)
    path = commit_path(store, key, 3)
    original = bytes(obstore.get(store.store, path).bytes())
    replacement = {
        "text": b"this is not a commit\n",
        "truncated": original[: len(original) // 2],
        "another_commit": bytes(obstore.get(store.store, commit_path(store, key, 4)).bytes()),
    }[garble]
    obstore.put(store.store, path, replacement)  # a plain overwrite, as a person with bucket access would do
    with pytest.raises(CorruptLogError) as info:
        schedy.SchedyDB(url).get_experiment("sweep")
    msg = str(info.value)
    assert "commit 3" in msg and "sweep" in msg


def test_a_stray_object_in_the_log_folder_is_reported_by_verify_and_readers_never_see_it(url):
    from schedy.maintenance import verify

    db, store, key = _five_commits(url)
    obstore.put(store.store, f"{store.prefix}/experiments/{key}/log/notes.txt", b"hello")
    obstore.put(store.store, f"{store.prefix}/experiments/{key}/log/6.json", record(6))  # not a commit's name
    assert [j.hyperparameters["i"] for j in schedy.SchedyDB(url).get_experiment("sweep").all_jobs()] == [0, 1, 2, 3]
    e = verify(db, "sweep").experiments[0]
    assert sorted(p.message.rsplit("/", 1)[-1] for p in e.errors if "unexpected object" in p.message) == [
        "6.json",
        "notes.txt",
    ]


# -- (f) a store that refuses conditional writes is refused at open ----------------------------------------------


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_store_that_ignores_put_if_absent_is_refused_at_open(kind, request, monkeypatch):
    if kind == "s3":
        s3 = schedy.SchedyDB(request.getfixturevalue("s3_url"))._store.store
        make = lambda: ObjectLogStore(s3, "other/db", location="s3 test bucket")  # noqa: E731
        url = None
    else:
        make = lambda: ObjectLogStore(MemoryStore(), "db")  # noqa: E731
        url = f"memory://{uuid.uuid4().hex}/db"
    real_put = obstore.put

    def put(store, path, data, *, mode=None, **kw):  # a store that overwrites whatever the mode says
        return real_put(store, path, data, **kw)

    monkeypatch.setattr(obstore, "put", put)
    with pytest.raises(DatabaseError, match="conditional writes"):
        make()
    if url:
        with pytest.raises(DatabaseError, match="conditional writes"):
            schedy.SchedyDB(url)


def test_a_store_that_does_not_support_create_is_refused_at_open(monkeypatch):
    real_put = obstore.put

    def put(store, path, data, *, mode=None, **kw):
        if mode == "create":
            raise NotSupportedError("Operation not supported: put mode create")
        return real_put(store, path, data, **kw)

    monkeypatch.setattr(obstore, "put", put)
    with pytest.raises(DatabaseError, match="cannot use"):
        ObjectLogStore(MemoryStore(), "db")


# -- (g) Azure reports a lost create as a precondition failure --------------------------------------------------


@pytest.fixture
def azure_like(monkeypatch):
    """obstore.put reporting every create conflict as PreconditionError, the way Azure does."""
    real_put = obstore.put
    seen = []

    def put(store, path, data, **kw):
        try:
            return real_put(store, path, data, **kw)
        except AlreadyExistsError:
            seen.append(path)
            raise PreconditionError(f"Request precondition failure for path {path}: 412 Precondition Failed") from None

    monkeypatch.setattr(obstore, "put", put)
    return seen


def test_a_precondition_failure_on_create_is_a_lost_race(store, azure_like):
    fresh = ObjectLogStore(store.store, store.prefix, location=store.location)  # the open probe accepts it
    assert fresh.append("s", 0, 1, record(1, "first")) == 1
    assert fresh.append("s", 0, 1, record(1, "second")) is None
    obstore.put(store.store, commit_path(store, "s", 2), record(2, "landed"), mode="create")
    assert fresh.append("s", 1, 2, record(2, "landed")) == 2  # a lost reply, reported the Azure way
    assert [c.events[0]["text"] for c in raw(fresh, "s")] == ["first", "landed"]
    assert len(azure_like) >= 3


def test_a_precondition_failure_makes_the_api_decide_again(url, azure_like):
    db_a, db_b = schedy.SchedyDB(url, worker="a"), schedy.SchedyDB(url, worker="b")
    manual_with_jobs(db_a, "az", 2)
    exp_a, exp_b = db_a.get_experiment("az"), db_b.get_experiment("az")
    got = {}
    attempts = _lose_first_append_to(db_b, lambda: got.setdefault("a", exp_a.next_job()))
    got["b"] = exp_b.next_job()
    assert attempts == [4, 5] and any(p.endswith(f"{4:020d}.json") for p in azure_like)
    assert {got["a"].job_id, got["b"].job_id} == {"1", "2"}
    commits = log_commits(db_a, "az")
    assert find_double_claims(commits) == [] and set(claims(commits).values()) == {1}


# -- (h) listings are not guaranteed to be sorted -------------------------------------------------------------


@pytest.fixture
def shuffled_listings(monkeypatch):
    real_list, real_delim = obstore.list, obstore.list_with_delimiter
    rng = random.Random(4)

    def shuffled(store, prefix=None, **kw):
        metas = [m for batch in real_list(store, prefix, **kw) for m in batch]
        metas.reverse()
        rng.shuffle(metas)
        cut = len(metas) // 2
        return iter([metas[cut:], metas[:cut]])  # several batches, in no order

    def shuffled_delim(store, prefix=None, **kw):
        out = real_delim(store, prefix, **kw)
        out = dict(out, common_prefixes=list(reversed(out["common_prefixes"])), objects=list(reversed(out["objects"])))
        return out

    monkeypatch.setattr(obstore, "list", shuffled)
    monkeypatch.setattr(obstore, "list_with_delimiter", shuffled_delim)


def test_commits_are_read_in_order_from_a_shuffled_listing(store, shuffled_listings):
    cursor = 0
    for v in range(1, 13):
        cursor = store.append("s", cursor, v, record(v, f"r{v}"))
    assert [c.version for c in raw(store, "s")] == list(range(1, 13))
    records, end = store.read("s", 5)
    assert [decode_commit(r).version for r in records] == list(range(6, 13)) and end == 12
    for v in (4, 12, 8):
        store.write_snapshot("s", v, b"snapshot %d\n" % v)
    assert store.latest_snapshot("s") == b"snapshot 12\n"
    for k in ("b", "a", "c"):
        store.append(k, 0, 1, record(1))
    assert store.keys() == ["a", "b", "c", "s"]


def test_the_api_works_over_shuffled_listings(url, shuffled_listings):
    db = schedy.SchedyDB(url, snapshot_every=4)
    exp = manual_with_jobs(db, "shuffled", 10)
    for _ in range(3):
        with exp.next_job():
            pass
    reopened = schedy.SchedyDB(url).get_experiment("shuffled")
    assert [j.job_id for j in reopened.all_jobs()] == [str(i) for i in range(1, 11)]
    assert [j.status for j in reopened.all_jobs()] == ["DONE"] * 3 + ["QUEUED"] * 7
    assert reopened._view.snapshot == "used"


# -- (i) credentials never appear in the log, in error messages or in log lines --------------------------------

SECRETS = ("AKIASECRETSHOULDNOTLEAK", "supersecretvalue")


def _leaks(text):
    return [s for s in SECRETS if s in text]


def test_credentials_never_appear_in_errors_log_lines_or_the_log(s3_endpoint, caplog):
    import traceback

    creds = dict(access_key_id=SECRETS[0], secret_access_key=SECRETS[1], endpoint=s3_endpoint, region="us-east-1")
    caplog.set_level(logging.DEBUG)
    # Wrong bucket: refused at open with a DatabaseError that names the location and no secret.
    with pytest.raises(DatabaseError) as info:
        schedy.SchedyDB(f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/p", **creds)
    assert "no-such-bucket" in str(info.value)
    assert _leaks(str(info.value)) == []
    assert _leaks("".join(traceback.format_exception(info.value))) == []

    # A working database: nothing stored, shown or logged holds a secret.
    bucket = new_bucket(s3_endpoint)
    db = schedy.SchedyDB(f"s3://{bucket}/p", snapshot_every=2, **creds)
    exp = manual_with_jobs(db, "creds", 3)
    with exp.next_job() as job:
        job.results["loss"] = 0.1
    assert _leaks(repr(db) + str(db.path) + repr(db._store.store) + db.worker) == []
    for path, data in all_objects(db._store.store).items():
        assert _leaks(path + data.decode("utf-8", "replace")) == [], path

    # Errors after open: a snapshot that cannot be written is logged (the commit still succeeds)...
    def refuse(*a, **k):
        raise PermissionError(f"cannot write to {db.path}")

    db._store.write_snapshot = refuse
    exp.add_job({"i": 9})
    exp.add_job({"i": 10})
    # ...and an unknown experiment is an error naming it.
    with pytest.raises(schedy.errors.ExperimentNotFoundError) as missing:
        db.get_experiment("nope")
    assert _leaks(str(missing.value)) == []
    assert any("could not write a snapshot" in r.getMessage() for r in caplog.records)
    text = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    assert _leaks(text + caplog.text) == []


def test_credentials_written_into_the_url_are_never_shown(s3_endpoint):
    with pytest.raises(DatabaseError) as info:
        schedy.SchedyDB(
            f"s3://{SECRETS[0]}:{SECRETS[1]}@no-such-bucket-{uuid.uuid4().hex[:8]}/p",
            endpoint=s3_endpoint,
            region="us-east-1",
        )
    assert _leaks(str(info.value)) == []
    db = schedy.SchedyDB(
        f"s3://{SECRETS[0]}:{SECRETS[1]}@{new_bucket(s3_endpoint)}/p", endpoint=s3_endpoint, region="us-east-1"
    )
    assert _leaks(repr(db) + str(db.path)) == []


# -- (j) memory:// databases -----------------------------------------------------------------------------------


def test_memory_databases_with_one_name_share_state_and_other_names_do_not():
    name = uuid.uuid4().hex
    a, b = schedy.SchedyDB(f"memory://{name}"), schedy.SchedyDB(f"memory://{name}")
    other = schedy.SchedyDB(f"memory://{name}-other")
    exp = manual_with_jobs(a, "shared", 2)
    assert [j.job_id for j in b.get_experiment("shared").all_jobs()] == ["1", "2"]
    with b.get_experiment("shared").next_job() as job:
        assert job.job_id == "1"
    assert exp.get_job("1").status == "DONE"
    assert list(other.get_experiments()) == []
    with pytest.raises(schedy.errors.ExperimentNotFoundError):
        other.get_experiment("shared")
    # The path after the name is a database of its own within the same memory store.
    assert list(schedy.SchedyDB(f"memory://{name}/elsewhere").get_experiments()) == []


# -- requests per claim (issue 4: one list or get plus one conditional put when uncontended) ----------------------


def test_an_uncontended_claim_is_one_get_and_one_put(url, monkeypatch):
    db = schedy.SchedyDB(url)
    exp = manual_with_jobs(db, "cheap", 40)
    calls = Counter()
    for fn in ("list", "get", "put", "head", "list_with_delimiter"):
        real = getattr(obstore, fn)
        monkeypatch.setattr(obstore, fn, lambda *a, _real=real, _fn=fn, **k: (calls.update([_fn]), _real(*a, **k))[1])
    exp.next_job()
    assert dict(calls) == {"get": 1, "put": 1}  # the GET of the next commit, answered 404
    # A writer three commits behind GETs those three (1, then 2 at once), then 4 past the end at once: the cost
    # depends on how far behind it is, not on the length of the log. It never lists.
    lagging = schedy.SchedyDB(url).get_experiment("cheap")
    for _ in range(3):
        exp.next_job()
    calls.clear()
    lagging.next_job()
    assert dict(calls) == {"get": 1 + 2 + 4, "put": 1}
    # Having met another writer, it still reads once: with no lock to wait for, it does not catch up twice.
    exp.next_job()
    calls.clear()
    lagging.next_job()
    assert dict(calls) == {"get": 1 + 2, "put": 1}


# -- formats, and clear errors at open --------------------------------------------------------------------------


def test_a_database_marker_from_a_newer_format_is_refused(url):
    """As on local disk (tests/test_filestore.py): a database written by a newer Schedy is refused at open."""
    store = schedy.SchedyDB(url)._store
    obstore.put(store.store, f"{store.prefix}/SCHEDY", b'{"format": 99}')  # the marker a newer release wrote
    with pytest.raises(DatabaseError, match="format 99"):
        schedy.SchedyDB(url)


def test_a_log_from_a_newer_format_is_refused(url):
    from schedy.errors import UnsupportedFormatError

    store = schedy.SchedyDB(url)._store
    event = {
        "type": "ExperimentCreated",
        "format": 2,
        "name": "future",
        "kind": "manual",
        "params": {"scheduler": {"Manual": {}}},
        "status": "RUNNING",
        "seed": 1,
    }
    obstore.put(store.store, commit_path(store, stream_key("future"), 1), encode_commit(Commit(1, 0.0, "w", [event])))
    with pytest.raises(UnsupportedFormatError, match="format 2"):
        schedy.SchedyDB(url).get_experiment("future")


def test_an_endpoint_that_is_not_a_url_is_a_clear_error():
    """A typo in ``endpoint`` must be a Schedy error (or ValueError), not a Rust panic escaping as BaseException."""
    try:
        schedy.SchedyDB(
            "s3://bucket/p", endpoint="not a url", region="us-east-1", access_key_id="k", secret_access_key="s"
        )
    except (DatabaseError, ValueError) as e:
        assert "endpoint" in str(e) or "not a url" in str(e)
    except BaseException as e:  # noqa: BLE001 - pyo3's PanicException derives from BaseException
        pytest.fail(f"a bad endpoint escaped as {type(e).__module__}.{type(e).__name__}: {e}")
    else:
        pytest.fail("a bad endpoint was accepted")


def test_an_unreachable_endpoint_is_a_database_error_without_credentials():
    from datetime import timedelta

    with pytest.raises(DatabaseError) as info:
        schedy.SchedyDB(
            "s3://bucket/p",
            access_key_id=SECRETS[0],
            secret_access_key=SECRETS[1],
            endpoint="http://127.0.0.1:1",
            region="us-east-1",
            retry_config={"max_retries": 0, "retry_timeout": timedelta(seconds=2)},
        )
    assert "s3://bucket/p" in str(info.value) and _leaks(str(info.value)) == []


@pytest.mark.parametrize(
    "location",
    [
        f"s4://{SECRETS[0]}:{SECRETS[1]}@bucket/p",  # a typo in the scheme
        f"file://{SECRETS[0]}:{SECRETS[1]}@host/p",  # file:// with a host
    ],
)
def test_a_refused_url_is_never_echoed_with_its_credentials(location):
    with pytest.raises(ValueError) as info:
        schedy.SchedyDB(location)
    assert _leaks(str(info.value)) == [], str(info.value)


def test_local_directories_keep_the_file_store(tmp_path):
    """obstore's local store does not fsync: a directory or file:// URL must never be routed to it."""
    from schedy.adapters.filestore import FileLogStore

    assert isinstance(schedy.SchedyDB(str(tmp_path / "a"))._store, FileLogStore)
    assert isinstance(schedy.SchedyDB(f"file://{tmp_path / 'b'}")._store, FileLogStore)
    assert isinstance(schedy.SchedyDB(f"memory://{uuid.uuid4().hex}")._store, ObjectLogStore)
