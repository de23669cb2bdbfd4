"""Behaviour specific to the local file store: torn records, corruption, format, fork."""

import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import orjson
import pytest
from conftest import log_commits

import schedy
from schedy.adapters.naming import stream_key
from schedy.core.check import find_double_claims
from schedy.core.codec import Commit, encode_commit
from schedy.errors import CorruptLogError, NoJobError, UnsupportedFormatError


def log_file(db, name):
    return db.path / "experiments" / stream_key(name) / "log.jsonl"


def make(tmp_path, jobs=3):
    db = schedy.SchedyDB(str(tmp_path / "db"))
    exp = db.add_experiment(schedy.ManualSearch("e"))
    for i in range(jobs):
        exp.add_job({"i": i})
    return db, exp


def test_a_torn_last_record_is_ignored_by_readers_and_repaired_by_the_next_writer(tmp_path):
    db, exp = make(tmp_path)
    path = log_file(db, "e")
    whole = path.read_bytes()
    lines = whole.splitlines(keepends=True)
    last = lines[-1]
    prefix = whole[: len(whole) - len(last)]
    for cut in range(1, len(last)):  # every byte offset inside the last commit
        path.write_bytes(prefix + last[:cut])
        reader = schedy.SchedyDB(str(db.path)).get_experiment("e")
        assert len(reader.all_jobs()) == 2, f"cut at {cut}"
        assert path.read_bytes() == prefix + last[:cut], "a reader changes nothing"
        job = reader.add_job({"i": "new"})  # the writer settles the torn bytes first
        after = path.read_bytes()
        if cut < len(last) - 1:  # not a whole commit: cut off
            assert job.job_id == "3"
            assert after.startswith(prefix) and after[len(prefix) :].count(b"\n") == 1 and after.endswith(b"\n")
            assert b'"i":2' not in after, "the torn bytes were cut off"
            assert len(schedy.SchedyDB(str(db.path)).get_experiment("e").all_jobs()) == 3
        else:  # the whole commit but its newline: completed, and the new commit follows it
            assert job.job_id == "4"
            assert after.startswith(whole) and after[len(whole) :].count(b"\n") == 1 and after.endswith(b"\n")
            assert [j.hyperparameters["i"] for j in schedy.SchedyDB(str(db.path)).get_experiment("e").all_jobs()] == [
                0,
                1,
                2,
                "new",
            ]
    assert path.read_bytes().endswith(b"\n")


def test_a_damaged_commit_in_the_middle_is_a_clear_error(tmp_path):
    db, exp = make(tmp_path)
    path = log_file(db, "e")
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"i":1', b'"i":7')
    path.write_bytes(b"".join(lines))
    with pytest.raises(CorruptLogError, match=r"experiment 'e': commit 3 is damaged"):
        schedy.SchedyDB(str(db.path)).get_experiment("e")


def test_a_missing_commit_is_a_clear_error(tmp_path):
    db, exp = make(tmp_path)
    path = log_file(db, "e")
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2] + lines[3:]))
    with pytest.raises(CorruptLogError, match="expected commit 3, found commit 4"):
        schedy.SchedyDB(str(db.path)).get_experiment("e")


def test_a_log_from_a_newer_format_is_refused(tmp_path):
    db, exp = make(tmp_path, jobs=0)
    path = log_file(db, "e")
    event = {
        "type": "ExperimentCreated",
        "format": 2,
        "name": "future",
        "kind": "manual",
        "params": {"scheduler": {"Manual": {}}},
        "status": "RUNNING",
        "seed": 1,
    }
    (db.path / "experiments" / stream_key("future")).mkdir()
    log_file(db, "future").write_bytes(encode_commit(Commit(1, 0.0, "w", [event])))
    with pytest.raises(UnsupportedFormatError, match="format 2.*upgrade Schedy"):
        db.get_experiment("future")
    assert path.exists()


def test_a_database_marker_from_a_newer_format_is_refused(tmp_path):
    (tmp_path / "SCHEDY").write_bytes(orjson.dumps({"format": 99}))
    with pytest.raises(schedy.errors.DatabaseError, match="format 99"):
        schedy.SchedyDB(str(tmp_path))


def _drain(exp, out, first_done=None):
    ids = []
    while True:
        try:
            with exp.next_job() as job:
                ids.append(job.job_id)
        except NoJobError:
            break
        if first_done is not None and len(ids) == 1:
            first_done.wait(timeout=120)  # every process holds one job before any takes a second
    out.put(ids)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_children_sharing_the_parents_database_object_never_share_a_job(tmp_path):
    """A child inherits the parent's open log file; flock must still exclude parent and children."""
    db, exp = make(tmp_path, jobs=200)
    exp.all_jobs()  # open the log in the parent before forking
    ctx = multiprocessing.get_context("fork")
    out, first_done = ctx.Queue(), ctx.Barrier(4)
    procs = [ctx.Process(target=_drain, args=(exp, out, first_done)) for _ in range(3)]
    for p in procs:
        p.start()
    _drain(exp, out, first_done)
    ids = [i for _ in range(4) for i in out.get(timeout=120)]
    for p in procs:
        p.join(timeout=120)
    assert sorted(ids, key=int) == [str(i) for i in range(1, 201)]
    commits = log_commits(db, "e")
    assert find_double_claims(commits) == []
    assert len({c.worker for c in commits if any(e["type"] == "JobClaimed" for e in c.events)}) == 4


def test_a_failed_sync_keeps_the_complete_line_so_readers_never_diverge(tmp_path, monkeypatch):
    import errno

    from schedy.adapters import filestore

    db, exp = make(tmp_path, jobs=2)
    reader = schedy.SchedyDB(str(db.path)).get_experiment("e")

    def failing_sync(fd):
        reader.all_jobs()  # another process reads (without a lock) between the write and the sync
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(filestore, "_fdatasync", failing_sync)
    first = exp.next_job()  # a claim is not synced (it is with the next durable commit): the failing sync is not hit
    first.status = "DONE"
    with pytest.raises(OSError):
        first.put()  # a report is: the caller hears of the failure
    monkeypatch.undo()
    other = schedy.SchedyDB(str(db.path)).get_experiment("e")
    assert other.get_job(first.job_id).status == "DONE"  # the complete line stays in the log
    second = other.next_job()  # must not take the job whose claim is already in the log
    assert second.job_id == "2"
    assert reader._refresh() == other._view.state == schedy.SchedyDB(str(db.path)).get_experiment("e")._view.state
    assert find_double_claims(log_commits(db, "e")) == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_keep_the_parents_log_open(tmp_path):
    db, exp = make(tmp_path)
    exp.all_jobs()
    store = db._store
    assert store._handles
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        os.write(w, b"%d" % len(store._handles))
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(r, 16) == b"0"
    assert store._handles, "the parent keeps its own handles"


def test_files_are_private_to_their_owner_unless_configured(tmp_path):
    old = os.umask(0o022)
    try:
        db, exp = make(tmp_path, jobs=1)
        log = log_file(db, "e")
        assert oct(log.stat().st_mode & 0o777) == "0o600"
        assert oct(log.parent.stat().st_mode & 0o777) == "0o700"
        assert oct(db.path.stat().st_mode & 0o777) == "0o700"
        assert oct((db.path / "SCHEDY").stat().st_mode & 0o777) == "0o600"
        team = schedy.SchedyDB(str(tmp_path / "team"), file_mode=0o660)
        team.add_experiment(schedy.ManualSearch("shared"))
        assert oct(log_file(team, "shared").stat().st_mode & 0o777) == "0o660"  # exactly, whatever the umask
        assert oct((tmp_path / "team").stat().st_mode & 0o777) == "0o770"
    finally:
        os.umask(old)
    with pytest.raises(ValueError, match="file_mode"):
        schedy.SchedyDB(str(tmp_path / "bad"), file_mode="rw")
    assert not (tmp_path / "bad").exists()


def test_a_worker_cycle_syncs_once_and_every_acknowledged_write_is_synced(tmp_path, monkeypatch):
    """Claims ride on the next durable commit (their worker dies with the machine); reports and definitions sync."""
    from schedy.adapters import filestore

    db, exp = make(tmp_path, jobs=2)
    synced = []
    real = filestore._fdatasync
    monkeypatch.setattr(filestore, "_fdatasync", lambda fd: (synced.append(fd), real(fd)))
    with exp.next_job() as job:
        assert synced == []  # the claim is written, not synced
        job.results["loss"] = 1.0
    assert len(synced) == 1  # the report syncs the claim before it, too
    exp.add_job({"i": 9})
    exp.lease = 60
    exp.push_updates()
    job = exp.get_job("2")
    job.delete()
    assert len(synced) == 4
    relaxed = schedy.SchedyDB(str(db.path), durable=False).get_experiment("e")
    relaxed.add_job({"i": 10})
    assert len(synced) == 4


def _hold_lock_with_a_new_commit(path, said, released, go):
    """In a child process: take the log's lock, append a job under it, say so, keep the lock until ``go``."""
    from schedy.core import decide

    db = schedy.SchedyDB(path)
    view = db.get_experiment("e")._view
    with db._store.exclusive(view.key):
        state = view.refresh()
        version = state.version + 1
        decision = decide.add_job(
            state, name="e", hyperparameters={"i": "child"}, status="QUEUED", results={}, incarnation=state.created
        )
        line = encode_commit(Commit(version, time.time(), "child", decision.events))
        assert db._store.append(view.key, view.cursor, version, line) is not None
        said.put(version)
        go.wait(60)
        released.value = time.monotonic()  # CLOCK_MONOTONIC is system-wide on Linux: the parent can compare


def _set_once(go, calls, wait):
    """From a thread: set ``go`` ``wait`` seconds after the first of ``calls`` is recorded."""

    def later():
        deadline = time.monotonic() + 60
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(wait)
        go.set()

    threading.Thread(target=later, daemon=True).start()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_writer_waiting_for_the_lock_reads_what_the_holder_appended_then_sleeps(tmp_path, monkeypatch):
    """While another process holds the lock, a writer folds the new commits, and stops trying after a moment."""
    from schedy.adapters.stream import StreamView

    db, exp = make(tmp_path)
    exp.all_jobs()
    calls = []
    read_others = StreamView._read_others

    def recorded(view):
        calls.append((time.monotonic(), read_others(view)))
        return calls[-1][1]

    monkeypatch.setattr(StreamView, "_read_others", recorded)
    ctx = multiprocessing.get_context("fork")
    said, released, go = ctx.Queue(), ctx.Value("d", 0.0), ctx.Event()
    child = ctx.Process(target=_hold_lock_with_a_new_commit, args=(str(db.path), said, released, go))
    child.start()
    child_version = said.get(timeout=60)
    _set_once(go, calls, 0.5)  # the child keeps the lock until the parent has waited half a second
    job = exp.add_job({"i": "parent"})
    done = time.monotonic()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert done > released.value > 0, "the parent wrote while the child still held the lock"
    assert calls and calls[0][1] is True, "the first call read the child's commit while the lock was held"
    assert exp._view.state.jobs[job.job_id].added == child_version + 1
    assert [j.hyperparameters["i"] for j in exp.all_jobs()][-2:] == ["child", "parent"]
    # It then slept in flock instead of trying for the half second the child kept the lock.
    assert calls[-1][0] - calls[0][0] < 0.25


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_an_error_while_waiting_for_the_lock_leaves_it_free(tmp_path):
    """``meanwhile`` raising: the error propagates, and neither the file lock nor the store's thread lock stays held."""
    db, exp = make(tmp_path)
    key = exp._view.key
    ctx = multiprocessing.get_context("fork")
    said, released, go = ctx.Queue(), ctx.Value("d", 0.0), ctx.Event()
    child = ctx.Process(target=_hold_lock_with_a_new_commit, args=(str(db.path), said, released, go))
    child.start()
    said.get(timeout=60)

    def fails():
        raise OSError("cannot read")

    with pytest.raises(OSError, match="cannot read"), db._store.exclusive(key, meanwhile=fails):
        pytest.fail("the lock was taken although the child holds it")
    go.set()
    child.join(timeout=60)
    assert child.exitcode == 0
    taken = threading.Event()

    def take():
        with db._store.exclusive(key, meanwhile=lambda: False):
            taken.set()

    t = threading.Thread(target=take, daemon=True)
    t.start()
    t.join(timeout=30)
    assert taken.is_set(), "the failed wait kept the store's lock"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_an_interrupt_just_after_the_lock_is_taken_does_not_keep_it(tmp_path, monkeypatch):
    """Ctrl-C arriving as flock returns: the lock is let go, so the other writers are not stopped for good."""
    import fcntl

    from schedy.adapters import filestore

    db, exp = make(tmp_path)
    key = exp._view.key
    flock = fcntl.flock

    def interrupted(fd, op):
        flock(fd, op)
        if op & fcntl.LOCK_EX:
            raise KeyboardInterrupt

    monkeypatch.setattr(filestore.fcntl, "flock", interrupted)
    with pytest.raises(KeyboardInterrupt), db._store.exclusive(key, meanwhile=lambda: False):
        pytest.fail("entered despite the interrupt")
    monkeypatch.undo()
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_try_lock_once, args=(str(db.path / "experiments" / key / "log.jsonl"), out))
    child.start()
    assert out.get(timeout=60) == "free"
    child.join(timeout=60)


def _try_lock_once(path, out):
    import fcntl

    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        out.put("free")
    except BlockingIOError:
        out.put("held")
    finally:
        os.close(fd)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_writer_waiting_for_the_lock_outlasts_a_damaged_line_the_holder_cuts_off(tmp_path):
    """A damaged line read while waiting is not the writer's error: the read under the lock decides."""
    db, exp = make(tmp_path)
    exp.all_jobs()
    ctx = multiprocessing.get_context("fork")
    said, go = ctx.Queue(), ctx.Event()
    child = ctx.Process(target=_damage_then_cut, args=(str(db.path), said, go))
    child.start()
    said.get(timeout=60)
    _set_once(go, [True], 0.2)  # the repair takes a while
    job = exp.add_job({"i": "after the repair"})
    child.join(timeout=60)
    assert child.exitcode == 0
    assert job.job_id == "4"
    assert [j.hyperparameters["i"] for j in schedy.SchedyDB(str(db.path)).get_experiment("e").all_jobs()] == [
        0,
        1,
        2,
        "after the repair",
    ]


def _damage_then_cut(path, said, go):
    """In a child process: under the lock, append a damaged line (as a hand edit would), then cut it off."""
    db = schedy.SchedyDB(path)
    key = db.get_experiment("e")._view.key
    log = db.path / "experiments" / key / "log.jsonl"
    with db._store.exclusive(key):
        size = log.stat().st_size
        with open(log, "ab") as f:
            f.write(b'{"v":5,"t":1,"w":"x","e":[],"crc":"00000000"}\n')
        said.put(size)
        go.wait(60)
        os.truncate(log, size)


# -- a torn last record: readers never take it; the next writer completes it (a whole commit) or cuts it off ----
#
# A torn record that is a whole commit missing only its newline may have been acknowledged (a claim, or any
# commit with durable=False, is acknowledged before it is synced; a crash can then keep the line but not its
# last byte, and keep the snapshot written after it): writers complete it. No commit can be read back from
# anything else (never acknowledged, or what a crash left of an unsynced commit): writers cut it off. See
# docs/repair.md#a-torn-last-record.


def torn(tmp_path, snapshot_every, cut=1):
    """A log of commits 1 (create "m"), 2 (x=1), 3 (x=2), then ``cut`` bytes cut from its end.

    Return ``(db path, log path, the log before the cut)``. With ``cut=1`` commit 3 lacks only its newline.
    """
    path = str(tmp_path / "db")
    db = schedy.SchedyDB(path, snapshot_every=snapshot_every)
    exp = db.add_experiment(schedy.ManualSearch("m"))
    exp.add_job({"x": 1})
    exp.add_job({"x": 2})
    log = log_file(db, "m")
    whole = log.read_bytes()
    os.truncate(log, len(whole) - cut)
    return path, log, whole


def xs(path):
    """The ``x`` of every job, as a fresh reader (in this process) reads them."""
    return [j.hyperparameters["x"] for j in schedy.SchedyDB(path).get_experiment("m").all_jobs()]


def in_child(code, *args):
    """Run ``code`` in a new Python process (``sys.argv[1:]``: ``args``); return its stdout, or fail with its stderr."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def snapshot_state(path):
    """How a fresh reader opened ``m``: its StreamView's ``snapshot`` and state."""
    view = schedy.SchedyDB(path).get_experiment("m")._view
    return view.snapshot, view.state


def test_the_acknowledged_write_after_a_torn_commit_with_a_snapshot_is_kept(tmp_path, caplog):
    """The reported data loss: commit 3 lost its newline, its snapshot survived, and the next write was lost."""
    from schedy.maintenance import verify

    path, log, whole = torn(tmp_path, snapshot_every=1)
    assert (log.parent / "snapshot.json").exists()
    report = verify(path, "m").experiments[0]
    assert report.ok and "commit 3 lacks its final newline" in report.warnings[0].message
    assert "completes it" in report.warnings[0].message
    with caplog.at_level(logging.WARNING, logger="schedy"):
        how, state = snapshot_state(path)
    assert how.startswith("ignored") and "lacks its final newline" in how, "the snapshot of a torn commit is not used"
    assert state.version == 2 and xs(path) == [1]
    assert log.read_bytes() == whole[:-1], "readers change nothing"

    exp = schedy.SchedyDB(path, snapshot_every=1).get_experiment("m")
    exp.add_job({"x": 3})  # acknowledged
    assert xs(path) == [1, 2, 3]
    after = log.read_bytes()
    assert after.startswith(whole) and after.count(b"\n") == 4 and after.endswith(b"\n"), "completed, then appended"
    assert [c.version for c in log_commits(schedy.SchedyDB(path), "m")] == [1, 2, 3, 4]
    how, state = snapshot_state(path)
    assert how == "used" and state.version == 4
    report = verify(path, "m").experiments[0]
    assert report.ok and not report.problems


def test_a_torn_commit_without_a_snapshot_is_completed_by_the_next_writer(tmp_path):
    path, log, whole = torn(tmp_path, snapshot_every=1000)
    assert not (log.parent / "snapshot.json").exists()
    assert xs(path) == [1]
    schedy.SchedyDB(path).get_experiment("m").add_job({"x": 3})
    assert xs(path) == [1, 2, 3] and log.read_bytes().startswith(whole)


@pytest.mark.parametrize("cut", [2, 19, 100])
@pytest.mark.parametrize("snapshot_every", [1, 1000])
def test_a_torn_record_whose_crc_does_not_check_is_cut_off_by_the_next_writer(tmp_path, cut, snapshot_every):
    """Really partial (or its CRC field cut): never acknowledged, so cut; its snapshot, if any, is ignored."""
    path, log, whole = torn(tmp_path, snapshot_every, cut=cut)
    how, state = snapshot_state(path)
    assert state.version == 2 and (how is None if snapshot_every == 1000 else how.startswith("ignored"))
    schedy.SchedyDB(path, snapshot_every=snapshot_every).get_experiment("m").add_job({"x": 3})
    assert xs(path) == [1, 3]
    lines = log.read_bytes().splitlines(keepends=True)
    assert b"".join(lines[:2]) == whole[: len(b"".join(lines[:2]))] and len(lines) == 3 and b'"x":2' not in lines[2]
    how, state = snapshot_state(path)
    assert state.version == 3 and how == ("used" if snapshot_every == 1 else None)


@pytest.mark.parametrize("cut", [1, 50])
def test_a_torn_commit_after_the_snapshot_of_the_commit_before_it(tmp_path, cut):
    """Readers open from the snapshot of commit 2 and ignore torn commit 3; the writer completes it or cuts it."""
    path, log, whole = torn(tmp_path, snapshot_every=2, cut=cut)  # a snapshot after commit 2, none after 3
    how, state = snapshot_state(path)
    assert how == "used" and state.version == 2
    schedy.SchedyDB(path, snapshot_every=2).get_experiment("m").add_job({"x": 3})
    assert xs(path) == ([1, 2, 3] if cut == 1 else [1, 3])
    how, state = snapshot_state(path)
    assert how == "used" and state.version == (4 if cut == 1 else 3)


WRITER = """
    import sys
    import schedy
    schedy.SchedyDB(sys.argv[1], snapshot_every=1).get_experiment("m").add_job({"x": 3})
"""


@pytest.mark.parametrize("cut", [1, 30])
def test_a_writer_in_another_process_settles_the_torn_record_for_a_reader_already_open(tmp_path, cut):
    path, log, whole = torn(tmp_path, snapshot_every=1, cut=cut)
    reader = schedy.SchedyDB(path).get_experiment("m")  # open in this process, before the writer runs
    assert [j.hyperparameters["x"] for j in reader.all_jobs()] == [1]
    in_child(WRITER, path)
    assert [j.hyperparameters["x"] for j in reader.all_jobs()] == ([1, 2, 3] if cut == 1 else [1, 3])
    assert xs(path) == [j.hyperparameters["x"] for j in reader.all_jobs()]


DIES_WRITING = """
    import os, signal, sys
    import schedy
    from schedy.adapters import filestore

    keep = int(sys.argv[2])  # how many bytes of its line the writer writes before it is killed

    def dies(fd, data):
        os.write(fd, bytes(data)[: len(data) - 1 if keep < 0 else keep])
        os.kill(os.getpid(), signal.SIGKILL)

    exp = schedy.SchedyDB(sys.argv[1]).get_experiment("m")
    filestore._write_all = dies
    exp.add_job({"x": "killed"})
"""


@pytest.mark.parametrize("keep", [-1, 40])
def test_a_writer_killed_mid_append_leaves_a_torn_record_the_next_writer_settles(tmp_path, keep):
    """A real process killed (SIGKILL) with its line written but for the newline (-1), or for 40 bytes only."""
    path = str(tmp_path / "db")
    exp = schedy.SchedyDB(path).add_experiment(schedy.ManualSearch("m"))
    exp.add_job({"x": 1})
    log = log_file(schedy.SchedyDB(path), "m")
    before = log.read_bytes()
    killed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DIES_WRITING), path, str(keep)], capture_output=True, timeout=120
    )
    assert killed.returncode == -signal.SIGKILL
    left = log.read_bytes()
    assert left.startswith(before) and len(left) > len(before) and not left.endswith(b"\n")
    assert xs(path) == [1], "nobody heard of the dead writer's commit: readers do not take it"
    in_child(WRITER, path)
    assert xs(path) == ([1, "killed", 3] if keep < 0 else [1, 3])
    assert find_double_claims(log_commits(schedy.SchedyDB(path), "m")) == []


def test_a_claim_that_lost_its_newline_is_kept_so_its_job_is_not_handed_out_twice(tmp_path):
    """A claim is acknowledged before it is synced: a crash can keep all of it but its newline, and its snapshot."""
    path = str(tmp_path / "db")
    db = schedy.SchedyDB(path, worker="first", snapshot_every=1)
    exp = db.add_experiment(schedy.ManualSearch("m"))
    exp.add_job({"x": 1})
    exp.add_job({"x": 2})
    job = exp.next_job()  # commit 4, acknowledged: this worker runs job 1
    assert job.job_id == "1"
    log = log_file(db, "m")
    os.truncate(log, log.stat().st_size - 1)
    out = in_child(
        """
        import sys
        import schedy
        print(schedy.SchedyDB(sys.argv[1], worker="second").get_experiment("m").next_job().job_id)
    """,
        path,
    )
    assert out.strip() == "2", "the job the first worker is running was handed out again"
    commits = log_commits(schedy.SchedyDB(path), "m")
    assert [c.version for c in commits] == [1, 2, 3, 4, 5] and find_double_claims(commits) == []
    held = {j.job_id: j.status for j in schedy.SchedyDB(path).get_experiment("m").all_jobs()}
    assert held == {"1": "RUNNING", "2": "RUNNING"}


def test_a_decision_that_writes_nothing_sees_the_completed_commit(tmp_path):
    """The torn record is settled as the lock is taken, before the read: next_job finds the job it adds."""
    path = str(tmp_path / "db")
    exp = schedy.SchedyDB(path).add_experiment(schedy.ManualSearch("m"))
    exp.add_job({"x": 1})
    log = log_file(schedy.SchedyDB(path), "m")
    os.truncate(log, log.stat().st_size - 1)
    assert schedy.SchedyDB(path).get_experiment("m").all_jobs() == []  # a reader does not take the torn commit...
    out = in_child(
        """
        import sys
        import schedy
        print(schedy.SchedyDB(sys.argv[1]).get_experiment("m").next_job().hyperparameters["x"])
    """,
        path,
    )
    assert out.strip() == "1"  # ...the next writer does


@pytest.mark.parametrize("durable", [True, False])
def test_a_completed_commit_is_synced_at_once_unless_the_store_is_not_durable(tmp_path, monkeypatch, durable):
    from schedy.adapters import filestore

    path, log, whole = torn(tmp_path, snapshot_every=1000)
    synced = []
    real = filestore._fdatasync
    monkeypatch.setattr(filestore, "_fdatasync", lambda fd: (synced.append(log.read_bytes()), real(fd)))
    exp = schedy.SchedyDB(path, durable=durable).get_experiment("m")
    exp.next_job()  # a claim: not synced by itself
    assert synced == ([whole] if durable else [])  # the completion was, before the claim was written


def test_the_lock_holder_settles_the_torn_record_before_its_body_runs(tmp_path):
    path, log, whole = torn(tmp_path, snapshot_every=1000)
    db = schedy.SchedyDB(path)
    with db._store.exclusive(stream_key("m")):
        assert log.read_bytes() == whole
    os.truncate(log, len(whole) - 1)
    with db._store.exclusive(stream_key("m"), settle=False):  # schedy repair settles it itself
        assert log.read_bytes() == whole[:-1]


def test_a_torn_record_after_a_damaged_line_is_left_for_repair(tmp_path):
    path, log, whole = torn(tmp_path, snapshot_every=1000)
    lines = log.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"x":1', b'"x":7')  # commit 2 damaged, commit 3 torn
    damaged = b"".join(lines)
    log.write_bytes(damaged)
    with pytest.raises(CorruptLogError, match="commit 2 is damaged"):
        schedy.SchedyDB(path).get_experiment("m").add_job({"x": 3})
    assert log.read_bytes() == damaged


def test_a_writer_refuses_a_log_cut_behind_its_back(tmp_path):
    """A view that read commit 3 finds the log cut before it: it must not append (O_APPEND would glue or skip)."""
    path, log, whole = torn(tmp_path, snapshot_every=1000, cut=0)
    exp = schedy.SchedyDB(path).get_experiment("m")
    assert [j.hyperparameters["x"] for j in exp.all_jobs()] == [1, 2]
    cut = whole[: whole.rindex(b"\n", 0, len(whole) - 1) + 1]  # commit 3 removed whole, as a repair would
    log.write_bytes(cut)
    with pytest.raises(CorruptLogError, match="cut behind its back"):
        exp.add_job({"x": 3})
    assert log.read_bytes() == cut
    assert [j.hyperparameters["x"] for j in schedy.SchedyDB(path).get_experiment("m").all_jobs()] == [1]


def test_a_writer_opened_past_a_damaged_line_does_not_append_after_the_torn_record_that_follows_it(tmp_path):
    """Opened from the snapshot of damaged commit 2, a writer reads no damage, but must not glue onto torn commit 3."""
    path, log, whole = torn(tmp_path, snapshot_every=2)  # a snapshot after commit 2
    lines = log.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"x":1', b'"x":7')  # its CRC field unchanged: the snapshot still matches it
    damaged = b"".join(lines)
    log.write_bytes(damaged)
    exp = schedy.SchedyDB(path).get_experiment("m")
    assert exp._view.snapshot == "used"
    with pytest.raises(CorruptLogError, match="torn record after a damaged line"):
        exp.add_job({"x": 3})
    assert log.read_bytes() == damaged


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files through /proc")
def test_a_database_dropped_without_close_closes_its_logs(tmp_path):
    import gc

    make(tmp_path, jobs=1)
    gc.collect()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(50):
        schedy.SchedyDB(str(tmp_path / "db")).get_experiment("e").all_jobs()
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) <= before
