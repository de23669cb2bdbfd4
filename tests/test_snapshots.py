"""Snapshots (issue 4): an optimisation only. Opening from the newest snapshot plus the commits after it gives
the state a full replay gives; a corrupt, stale or missing snapshot falls back to the log and is reported;
failing to write one never fails a commit."""

import logging
import os
import shutil
import tempfile
import uuid
import zlib

import obstore
import orjson
import pytest
from conftest import log_commits, new_bucket
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import schedy
from schedy.adapters.naming import stream_key
from schedy.adapters.stream import StreamView
from schedy.core import snapshot as snapshots
from schedy.core.codec import Commit, encode_commit
from schedy.core.snapshot import decode_snapshot
from schedy.core.state import apply, fold
from schedy.errors import SchedyError
from schedy.pbt import MINIMIZE, Perturb, Truncate
from schedy.random import Choice, LogUniform, Uniform

KINDS = ["file", "memory", "s3"]


# -- helpers ------------------------------------------------------------------------------------------------


class NoSnapshots:
    """A store seen through a reader that ignores snapshots: opening it is a full replay."""

    def __init__(self, store):
        self._store = store

    def __getattr__(self, name):
        return getattr(self._store, name)

    def latest_snapshot(self, key):
        return None


def full_replay(db, name):
    """The state of ``name`` folded from commit 1, twice over: by a view that sees no snapshot, and by hand."""
    view = StreamView(NoSnapshots(db._store), stream_key(name), name, lambda: "replay")
    state = view.refresh()
    # It hides every snapshot, so it may report one missing.
    assert view.snapshot is None or view.snapshot.startswith("ignored: missing")
    assert state == fold(log_commits(db, name))
    return state


def reopen(location, name, **kw):
    """A fresh database object (as another process would open it) and its view of ``name``, refreshed."""
    db = schedy.SchedyDB(location, **kw)
    view = db._view(name)
    view.refresh()
    return db, view


def snapshot_versions(db, name):
    """Versions of the snapshots stored for ``name`` (every one on object storage, the one file on disk)."""
    store, key = db._store, stream_key(name)
    if hasattr(store, "root"):
        data = store.latest_snapshot(key)
        return [] if data is None else [decode_snapshot(data)[0].version]
    prefix = f"{store.prefix}/experiments/{key}/snapshots/"
    return sorted(int(m["path"].rsplit("/", 1)[1][:-5]) for b in obstore.list(store.store, prefix) for m in b)


@pytest.fixture(params=KINDS)
def location(request, tmp_path):
    if request.param == "file":
        return str(tmp_path / "db")
    if request.param == "memory":
        return f"memory://{uuid.uuid4().hex}/db"
    return f"s3://{new_bucket(request.getfixturevalue('s3_endpoint'))}/team/db"


def ten_commits(location, snapshot_every=4, name="snap"):
    """Commits 1..10 (create, 7 adds, a claim and its report): snapshots at 4 and 8."""
    db = schedy.SchedyDB(location, worker="writer", snapshot_every=snapshot_every)
    exp = schedy.RandomSearch(name, {"x": Uniform(0, 1)}, seed=11)
    db.add_experiment(exp)
    for i in range(7):
        exp.add_job({"x": 0.5 + i / 100}, results={"i": i})
    with exp.next_job() as job:
        job.results["loss"] = 1.5
    assert exp._view.state.version == 10
    return db, exp


# -- (a) the property: opening from a snapshot gives the state of a full replay --------------------------------

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)
statuses = st.sampled_from(["QUEUED", "RUNNING", "DONE", "CRASHED", "PRUNED"])
results = st.dictionaries(st.sampled_from(["loss", "acc", "$d", "n"]), values, max_size=3)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), values, statuses, results),
        st.tuples(st.just("add"), values, statuses, results),
        st.tuples(st.just("next")),
        st.tuples(st.just("next")),
        st.tuples(st.just("next")),
        st.tuples(st.just("put"), st.integers(0, 99), statuses, results, st.booleans()),
        st.tuples(st.just("put_held"), st.integers(0, 99), statuses, results),
        st.tuples(st.just("delete_job"), st.integers(0, 99)),
        st.tuples(st.just("status"), st.sampled_from(["RUNNING", "DONE"])),
        st.tuples(st.just("dists"), st.floats(0.5, 10)),
        st.tuples(st.just("recreate"), st.integers(0, 2**63 - 1), st.integers(0, 3)),  # done when the last is 0
    ),
    min_size=8,
    max_size=40,
)


def run_history(db, ops):
    """Apply ``ops`` through the documented API; refused operations are part of the history too."""
    exp = db.add_experiment(schedy.RandomSearch("h", {"x": Uniform(0, 1)}, seed=1))
    held = []
    for op in ops:
        try:
            kind = op[0]
            if kind == "add":
                exp.add_job({"x": op[1]}, status=op[2], results=op[3])
            elif kind == "next":
                held.append(exp.next_job())
            elif kind == "put":
                jobs = exp.all_jobs()
                if jobs:
                    job = jobs[op[1] % len(jobs)]
                    job.status, job.results = op[2], op[3]
                    job.put(safe=op[4])
            elif kind == "put_held" and held:
                job = held[op[1] % len(held)]
                job.status, job.results = op[2], op[3]
                job.put()
            elif kind == "delete_job":
                jobs = exp.all_jobs()
                if jobs:
                    jobs[op[1] % len(jobs)].delete()
            elif kind == "status":
                exp.status = op[1]
                exp.push_updates()
            elif kind == "dists":
                exp.distributions = {"x": Uniform(0, op[1])}
                exp.push_updates()
            elif kind == "recreate" and op[2] == 0:
                exp.delete()
                exp = db.add_experiment(schedy.RandomSearch("h", {"x": Uniform(0, 1)}, seed=op[1]))
                held = []
        except (SchedyError, ValueError, TypeError):
            pass
    return exp


def check_history(location, k, ops):
    db = schedy.SchedyDB(location, worker="w", snapshot_every=k, durable=False)
    exp = run_history(db, ops)
    replay = full_replay(db, "h")
    assert exp._view.refresh() == replay  # the live writer's state (invariant 4)
    _, view = reopen(location, "h")
    assert view.state == replay
    event(
        f"opened: {view.snapshot}; {min(replay.version // 10 * 10, 30)}+ commits; "
        f"{min(len(replay.jobs), 10) // 5 * 5}+ jobs; created at {'1' if replay.created == 1 else '>1'}"
    )
    # The commits followed by a snapshot: every k, or less often once the experiment has over 16 k jobs.
    due, state = [], None
    for c in log_commits(db, "h"):
        state = apply(state, c)
        if snapshots.due(state, k):
            due.append(c.version)
    if due:
        assert view.snapshot == "used"
        assert snapshot_versions(db, "h")[-1] == due[-1]
    else:
        assert view.snapshot is None and snapshot_versions(db, "h") == []
    # Every snapshot ever written holds the state of the log up to its version, not only the newest.
    commits = log_commits(db, "h")
    store, key = db._store, stream_key("h")
    for v in snapshot_versions(db, "h"):
        data = (
            store.latest_snapshot(key)
            if hasattr(store, "root")
            else bytes(obstore.get(store.store, f"{store.prefix}/experiments/{key}/snapshots/{v:020d}.json").bytes())
        )
        state, cursor, crc = decode_snapshot(data)
        assert state == fold(commits[:v])
        assert fold(commits[v:], state) == replay


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.integers(1, 7), ops=operations)
def test_opening_from_a_snapshot_is_a_full_replay_on_the_memory_store(k, ops):
    check_history(f"memory://{uuid.uuid4().hex}/db", k, ops)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.integers(1, 7), ops=operations)
def test_opening_from_a_snapshot_is_a_full_replay_on_the_file_store(k, ops):
    folder = tempfile.mkdtemp(prefix="schedy-snap-")
    try:
        check_history(os.path.join(folder, "db"), k, ops)
    finally:
        shutil.rmtree(folder)


def test_a_pbt_population_reopens_from_a_snapshot_with_its_lineage(location):
    db = schedy.SchedyDB(location, snapshot_every=5)
    exp = db.add_experiment(
        schedy.PopulationBasedTraining(
            "pbt",
            MINIMIZE,
            "loss",
            Truncate(0.25),
            explore={"lr": Perturb(0.8, 1.2)},
            initial_distributions={"lr": LogUniform(1e-4, 1e-1), "layers": Choice([1, 2])},
            population_size=4,
            max_generations=3,
            seed=2,
        )
    )
    for _ in range(7):
        with exp.next_job() as job:
            job.results["loss"] = job.hyperparameters["lr"]
    crashed = exp.next_job()
    crashed.status = "CRASHED"
    crashed.put()
    replay = full_replay(db, "pbt")
    assert replay.members and any(j.parent for j in replay.jobs.values())
    db2, view = reopen(location, "pbt")
    assert view.snapshot == "used" and view.state == replay
    # The reopened database carries on exactly as the one that never closed.
    with db2.get_experiment("pbt").next_job() as job:
        job.results["loss"] = 0.0
    assert exp._view.refresh() == full_replay(db, "pbt")


# -- (b) snapshots are written every K commits ---------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 4])
def test_a_snapshot_is_written_after_every_commit_whose_version_is_a_multiple_of_k(location, k, monkeypatch):
    db = schedy.SchedyDB(location, snapshot_every=k)
    written = []
    real = db._store.write_snapshot
    monkeypatch.setattr(db._store, "write_snapshot", lambda key, v, data: (written.append(v), real(key, v, data)))
    ten_commits_on(db)
    assert written == list(range(k, 11, k))
    stored = snapshot_versions(db, "snap")
    if location.startswith(("memory://", "s3://")):
        assert stored == list(range(k, 11, k))
    else:
        assert stored == [10 - 10 % k]  # the local store keeps the newest only


def ten_commits_on(db):
    exp = schedy.ManualSearch("snap")
    db.add_experiment(exp)
    for i in range(9):
        exp.add_job({"i": i})
    return exp


def test_the_default_is_a_snapshot_every_1000_commits(tmp_path):
    db = schedy.SchedyDB(str(tmp_path / "db"), durable=False)
    exp = ten_commits_on(db)
    assert db._store.snapshot_every == 1000
    for i in range(989):
        exp.add_job({"i": i})
    assert snapshot_versions(db, "snap") == [] and exp._view.state.version == 999
    exp.add_job({"i": -1})
    assert snapshot_versions(db, "snap") == [1000]
    _, view = reopen(str(tmp_path / "db"), "snap")
    assert view.snapshot == "used" and view.state == full_replay(db, "snap")


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "4"])
def test_snapshot_every_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError):
        schedy.SchedyDB(f"memory://{uuid.uuid4().hex}", snapshot_every=bad)


# -- (c) corrupt, stale and missing snapshots fall back to the log, with a warning --------------------------------


def _newest_snapshot_path(db, name="snap"):
    store, key = db._store, stream_key(name)
    if hasattr(store, "root"):
        return os.path.join(store.root, "experiments", key, "snapshot.json")
    return f"{store.prefix}/experiments/{key}/snapshots/{snapshot_versions(db, name)[-1]:020d}.json"


def _read(db, path):
    if hasattr(db._store, "root"):
        with open(path, "rb") as f:
            return f.read()
    return bytes(obstore.get(db._store.store, path).bytes())


def _write(db, path, data):
    if hasattr(db._store, "root"):
        with open(path, "wb") as f:
            f.write(data)
    else:
        obstore.put(db._store.store, path, data)  # a plain overwrite


def _delete(db, path):
    if hasattr(db._store, "root"):
        os.unlink(path)
    else:
        obstore.delete(db._store.store, path)


def _assert_ignored_and_replayed(location, db, caplog, name="snap"):
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="schedy"):
        _, view = reopen(location, name)
    assert view.snapshot is not None and view.snapshot.startswith("ignored"), view.snapshot
    assert view.state == full_replay(db, name)
    warnings = [r for r in caplog.records if r.name == "schedy" and r.levelno == logging.WARNING]
    assert warnings and "snapshot" in warnings[0].getMessage() and name in warnings[0].getMessage()
    return view


@pytest.mark.parametrize(
    "damage",
    ["garbage", "flipped_byte", "truncated", "empty", "wrong_state", "cursor_not_a_number", "commit_crc_not_a_string"],
)
def test_a_corrupt_snapshot_falls_back_to_the_log(location, damage, caplog):
    db, _ = ten_commits(location)
    path = _newest_snapshot_path(db)
    data = _read(db, path)
    middle = len(data) // 2
    _write(
        db,
        path,
        {
            "garbage": b"\x00\xffnot a snapshot at all",
            "flipped_byte": data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :],
            "truncated": data[:middle],
            "empty": b"",
            # Valid JSON with a correct CRC, but not a state: a snapshot written by some other program.
            "wrong_state": _with_crc(b'{"format":1,"version":8,"cursor":8,"commit_crc":"00000000","jobs":[[1,2]]'),
            # A correct CRC over fields of the wrong type: a snapshot that cannot be used must still be ignored.
            "cursor_not_a_number": _with_field(data, "cursor", "8"),
            "commit_crc_not_a_string": _with_field(data, "commit_crc", 12345678),
        }[damage],
    )
    _assert_ignored_and_replayed(location, db, caplog)


def _with_crc(head):
    return b'%s,"crc":"%08x"}\n' % (head, zlib.crc32(head))


def _with_field(snapshot, field, value):
    body = orjson.loads(snapshot)
    del body["crc"]
    body[field] = value
    return _with_crc(orjson.dumps(body)[:-1])


def _rewrite_commit_8(db):
    """Replace commit 8 (a JobAdded) by a different valid commit 8 of the same length: x 0.56 becomes 0.99."""
    store, key = db._store, stream_key("snap")
    commits = log_commits(db, "snap")
    c8 = commits[7]
    (event,) = c8.events
    assert event["type"] == "JobAdded" and event["hyperparameters"] == {"x": 0.56}
    forged = encode_commit(Commit(8, c8.time, c8.worker, [dict(event, hyperparameters={"x": 0.99})]))
    if hasattr(store, "root"):
        lines = [encode_commit(c) for c in commits]
        assert len(forged) == len(lines[7])
        lines[7] = forged
        with open(os.path.join(store.root, "experiments", key, "log.jsonl"), "wb") as f:
            f.write(b"".join(lines))
    else:
        obstore.put(store.store, f"{store.prefix}/experiments/{key}/log/{8:020d}.json", forged)


def test_a_stale_snapshot_whose_commit_was_rewritten_falls_back_to_the_log(location, caplog):
    db, _ = ten_commits(location)
    _rewrite_commit_8(db)
    view = _assert_ignored_and_replayed(location, db, caplog)
    assert view.state.jobs["7"].hyperparameters == {"x": 0.99}  # the log's commit, not the snapshot's


def _cut_after_commit_6(db):
    """Cut the ten-commit log of "snap" back to its first 6 commits, behind the snapshot's back."""
    store, key = db._store, stream_key("snap")
    if hasattr(store, "root"):
        path = os.path.join(store.root, "experiments", key, "log.jsonl")
        lines = open(path, "rb").read().splitlines(keepends=True)
        with open(path, "wb") as f:
            f.write(b"".join(lines[:6]))
    else:
        for v in range(7, 11):
            obstore.delete(store.store, f"{store.prefix}/experiments/{key}/log/{v:020d}.json")


def test_a_stale_snapshot_past_the_end_of_a_truncated_log_falls_back_to_it(location, caplog):
    db, _ = ten_commits(location)
    _cut_after_commit_6(db)
    view = _assert_ignored_and_replayed(location, db, caplog)
    assert view.state.version == 6


def test_a_stale_snapshot_of_a_log_cut_and_regrown_differently_falls_back_to_it(location, caplog):
    db, _ = ten_commits(location)
    _cut_after_commit_6(db)
    other = schedy.SchedyDB(location, worker="other", snapshot_every=1000)  # writes no snapshot of its own
    exp = other.get_experiment("snap")
    for i in range(4):
        exp.add_job({"x": 0.25}, results={"other": i})
    view = _assert_ignored_and_replayed(location, db, caplog)
    assert view.state.version == 10 and view.state.jobs["7"].hyperparameters == {"x": 0.25}


def test_a_missing_snapshot_falls_back_to_the_log(location):
    db, _ = ten_commits(location)
    for _v in snapshot_versions(db, "snap"):
        _delete(db, _newest_snapshot_path(db))
    assert snapshot_versions(db, "snap") == []
    _, view = reopen(location, "snap", snapshot_every=4)
    assert view.state == full_replay(db, "snap")


def test_a_missing_snapshot_is_reported(location, caplog):
    """Issue 4: "A missing, stale or corrupt snapshot falls back to the log and is reported".

    The log has 10 commits and the reader is configured like the writer (a snapshot every 4 commits), so a
    snapshot at 8 should exist; it was deleted by hand.
    """
    db, _ = ten_commits(location)
    for _v in snapshot_versions(db, "snap"):
        _delete(db, _newest_snapshot_path(db))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="schedy"):
        _, view = reopen(location, "snap", snapshot_every=4)
    assert view.state == full_replay(db, "snap")
    assert view.snapshot is not None and view.snapshot.startswith("ignored"), view.snapshot
    assert any(r.name == "schedy" and "snapshot" in r.getMessage() for r in caplog.records)


def test_an_ignored_snapshot_does_not_stop_the_reader_from_writing(location, caplog):
    db, _ = ten_commits(location)
    _rewrite_commit_8(db)
    db2 = schedy.SchedyDB(location, worker="after", snapshot_every=4)
    with caplog.at_level(logging.WARNING, logger="schedy"):
        exp = db2.get_experiment("snap")
    assert exp._view.snapshot.startswith("ignored")
    for i in range(3):
        exp.add_job({"x": 0.1}, results={"i": i})  # commits 11..13: a fresh snapshot at 12
    assert snapshot_versions(db2, "snap")[-1] == 12
    _, view = reopen(location, "snap")
    assert view.snapshot == "used" and view.state == full_replay(db2, "snap")


# -- (d) failing to write a snapshot never fails the commit ---------------------------------------------------


def test_a_snapshot_that_cannot_be_written_does_not_fail_the_commit(location, caplog, monkeypatch):
    db = schedy.SchedyDB(location, snapshot_every=2)
    exp = schedy.ManualSearch("snap")
    db.add_experiment(exp)
    attempts = []

    def refuse(key, version, data):
        attempts.append(version)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(db._store, "write_snapshot", refuse)
    with caplog.at_level(logging.WARNING, logger="schedy"):
        jobs = [exp.add_job({"i": i}) for i in range(5)]  # commits 2..6
        with exp.next_job() as job:  # commit 7, and its report commit 8
            job.results["ok"] = True
    assert attempts == [2, 4, 6, 8]
    assert [j.job_id for j in jobs] == ["1", "2", "3", "4", "5"]
    assert [c.version for c in log_commits(db, "snap")] == list(range(1, 9))
    warnings = [r.getMessage() for r in caplog.records if r.name == "schedy"]
    assert len(warnings) == 4 and all("snapshot" in w and "No space left" in w for w in warnings)
    assert snapshot_versions(db, "snap") == []
    _, view = reopen(location, "snap")
    assert view.state == full_replay(db, "snap") and view.state.jobs["1"].status == "DONE"
    # Once the store accepts them again, snapshots resume at the next multiple.
    monkeypatch.undo()
    exp.add_job({"i": 9})
    exp.add_job({"i": 10})
    assert snapshot_versions(db, "snap") == [10]
