"""schedy.maintenance: verify reports every problem of a log, repair keeps the intact prefix and sets the rest aside.

The helpers at the top reach into a store's raw records (lines of the log file, or objects) so that tests can
damage a log the way a disk, a crash or a person would; test_cli.py and test_hostile.py use them too.
"""

import fcntl
import os
import threading
import time
from pathlib import Path

import obstore
import pytest
from conftest import STORES

import schedy
from schedy import maintenance
from schedy.adapters.filestore import FileLogStore
from schedy.adapters.naming import stream_key
from schedy.core.codec import Commit, decode_commit, encode_commit
from schedy.core.snapshot import decode_snapshot, encode_snapshot
from schedy.errors import CorruptLogError, DatabaseError, ExperimentNotFoundError, UnsupportedFormatError
from schedy.maintenance import repair, verify

# -- raw access to a log --------------------------------------------------------------------------------------


@pytest.fixture(params=["file", "memory"])
def location(request, tmp_path):
    """A fresh database location on the stores that cost nothing to set up."""
    return STORES[request.param](request, tmp_path)


@pytest.fixture(params=["file", "memory", "s3"])
def anywhere(request, tmp_path):
    """A fresh database location on every store, S3 (a moto server) included."""
    return STORES[request.param](request, tmp_path)


def on_file(db):
    return isinstance(db._store, FileLogStore)


def log_file(db, name):
    return Path(db.path) / "experiments" / stream_key(name) / "log.jsonl"


def records(db, name):
    """The raw records of ``name``'s log in order: the lines (without newline) or the objects' bytes."""
    found = db._store.scan(stream_key(name))
    return [data for _, _, data in found[0]] if found else []


def _object(db, name, version):
    return db._store.log_path(stream_key(name), version)


def write_log(db, name, recs, versions=None):
    """Replace ``name``'s log by ``recs`` (file: one line each; objects: at ``versions``, default 1, 2, 3...)."""
    if on_file(db):
        path = log_file(db, name)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"".join(r + b"\n" for r in recs))
        return
    store = db._store
    prefix = store.folder_path(stream_key(name), "log")
    for batch in obstore.list(store.store, prefix):
        for meta in batch:
            obstore.delete(store.store, meta["path"])
    for v, r in zip(versions or range(1, len(recs) + 1), recs):
        obstore.put(store.store, _object(db, name, v), r + b"\n")


def delete_commit(db, name, version):
    """Remove commit ``version``: its line from the file, or its object."""
    if on_file(db):
        recs = records(db, name)
        write_log(db, name, recs[: version - 1] + recs[version:])
    else:
        obstore.delete(db._store.store, _object(db, name, version))


def flip(db, name, version):
    """Flip one bit in the middle of commit ``version``."""
    recs = records(db, name)
    r = recs[version - 1]
    recs[version - 1] = r[: len(r) // 2] + bytes([r[len(r) // 2] ^ 0x01]) + r[len(r) // 2 + 1 :]
    if on_file(db):
        write_log(db, name, recs)
    else:
        obstore.put(db._store.store, _object(db, name, version), recs[version - 1] + b"\n")


def append_commit(db, name, commit):
    """Append a hand-built commit to ``name``'s log, as a buggy or malicious writer would."""
    data = encode_commit(commit)
    if on_file(db):
        with open(log_file(db, name), "ab") as f:
            f.write(data)
    else:
        obstore.put(db._store.store, _object(db, name, commit.version), data)


def snapshot(db, name):
    """(where, bytes) of the newest snapshot of ``name``."""
    return db._store.snapshot_records(stream_key(name))[-1]


def write_snapshot(db, where, data):
    if on_file(db):
        Path(where).write_bytes(data)
    else:
        obstore.put(db._store.store, where, data)


def everything(db):
    """Every file or object of the database and its bytes: to prove that something changed nothing."""
    if on_file(db):
        root = Path(db.path)
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    store = db._store
    paths = sorted(m["path"] for batch in obstore.list(store.store, store.prefix or None) for m in batch)
    return {p: bytes(obstore.get(store.store, p).bytes()) for p in paths}


def make(location, name="e", jobs=5, **kw):
    """A database with a manual search ``name`` of ``jobs`` jobs (commit 1 creates it, then one commit per job)."""
    db = schedy.SchedyDB(location, **kw)
    exp = db.add_experiment(schedy.ManualSearch(name))
    for i in range(jobs):
        exp.add_job({"i": i})
    return db, exp


def reopen(db):
    return schedy.SchedyDB(str(db.path) if on_file(db) else db.path)


# -- verify -----------------------------------------------------------------------------------------------


def test_a_clean_database_verifies(location):
    db, exp = make(location, jobs=7, snapshot_every=3)
    rs = db.add_experiment(schedy.RandomSearch("rs", {"x": schedy.random.Uniform(0, 1)}, seed=3))
    for _ in range(3):
        with rs.next_job() as job:
            job.results["y"] = job.hyperparameters["x"] * 2
    gone = db.add_experiment(schedy.ManualSearch("gone"))
    gone.delete()
    report = verify(db)
    assert report.ok, str(report)
    assert sorted(e.name for e in report.experiments) == ["e", "gone", "rs"]
    assert report["e"].commits == report["e"].intact == 8 and report["e"].problems == []
    assert report["rs"].commits == 1 + 3 * 2  # each next_job adds and claims in one commit, then the put
    assert "e: 8 commits, OK" in str(report).splitlines()
    assert str(report).splitlines()[-1].endswith("all OK")
    assert verify(location).ok  # a location works as well as a SchedyDB
    assert verify(db, "e").experiments[0].commits == 8


def test_a_flipped_byte_names_the_experiment_and_the_commit(anywhere):
    db, _ = make(anywhere, jobs=5)
    make(anywhere, name="other", jobs=1)
    flip(db, "e", 3)
    report = verify(db)
    assert not report.ok and report["other"].ok
    e = report["e"]
    assert [p.commit for p in e.errors] == [3]
    assert "commit 3 is damaged" in e.errors[0].message and "CRC" in e.errors[0].message
    assert e.commits == 6 and e.intact == 2
    assert "e: 6 commits, 1 error" in str(report) and "commit 3 is damaged" in str(report)
    with pytest.raises(CorruptLogError, match="experiment 'e': commit 3 is damaged"):
        reopen(db).get_experiment("e")  # what a reader says, for comparison


def test_verify_goes_on_after_the_first_problem(location):
    db, _ = make(location, jobs=6)
    flip(db, "e", 3)
    flip(db, "e", 6)
    e = verify(db, "e").experiments[0]
    assert [p.commit for p in e.errors] == [3, 6]
    assert any("checked only for damage and order" in p.message for p in e.warnings)


def test_a_missing_commit_is_reported(location):
    db, _ = make(location, jobs=5)
    delete_commit(db, "e", 3)
    e = verify(db, "e").experiments[0]
    assert not e.ok and [p.commit for p in e.errors] == [3]
    assert "commit 3" in e.errors[0].message and "missing" in e.errors[0].message
    assert e.intact == 2


def test_a_duplicated_commit_is_reported(tmp_path):
    db, _ = make(str(tmp_path / "db"), jobs=3)
    recs = records(db, "e")
    write_log(db, "e", recs[:3] + [recs[2]] + recs[3:])
    e = verify(db, "e").experiments[0]
    assert [p.commit for p in e.errors] == [4] and "commit 3 appears again" in e.errors[0].message


def test_a_planted_double_claim_is_reported_and_left_alone_by_repair(location):
    db = schedy.SchedyDB(location, worker="alice")
    exp = db.add_experiment(schedy.ManualSearch("e"))
    exp.add_job({"i": 1})
    exp.next_job()  # commit 3: alice claims job 1
    append_commit(db, "e", Commit(4, time.time(), "bob", [{"type": "JobClaimed", "job": "1", "worker": "bob"}]))
    report = verify(db)
    assert not report.ok
    (error,) = report["e"].errors
    assert error.commit == 4 and "double claim" in error.message and "'bob'" in error.message
    assert "'alice'" in error.message and "'1'" in error.message
    before = everything(db)
    fix = repair(db, "e")
    assert not fix.changed and [p.commit for p in fix.unrepaired] == [4]
    assert "not repaired" in str(fix) and "double claim" in str(fix)
    assert everything(db) == before


def test_a_snapshot_that_disagrees_with_its_log_is_an_error_until_repair_sets_it_aside(location):
    db, _ = make(location, jobs=6, snapshot_every=3)
    where, data = snapshot(db, "e")
    state, cursor, crc = decode_snapshot(data)
    assert state.version == 6
    forged = state._replace(jobs=state.jobs.set("2", state.jobs["2"]._replace(hyperparameters={"i": 99})))
    write_snapshot(db, where, encode_snapshot(forged, cursor, crc))
    # Readers trust a snapshot whose commit is still in the log (checking more would cost a replay)...
    assert reopen(db).get_experiment("e").get_job("2").hyperparameters == {"i": 99}
    # ...which is what verify is for.
    e = verify(db, "e").experiments[0]
    (error,) = e.errors
    assert error.commit == 6 and "disagrees with the log" in error.message and "job '2'" in error.message
    fix = repair(db, "e")
    assert fix.kept == 7 and not fix.set_aside and len(fix.snapshots) == 1
    assert verify(db).ok
    assert reopen(db).get_experiment("e").get_job("2").hyperparameters == {"i": 1}


def test_a_stale_snapshot_is_a_warning(location):
    db, _ = make(location, jobs=6, snapshot_every=3)
    recs = records(db, "e")
    c = decode_commit(recs[5])  # commit 6, the one the snapshot was taken at
    other = encode_commit(Commit(6, c.time, "someone else", c.events)).rstrip(b"\n")
    write_log(db, "e", recs[:5] + [other] + recs[6:])
    e = verify(db, "e").experiments[0]
    assert e.ok and len(e.warnings) == 1 and "stale" in e.warnings[0].message
    assert "OK (1 warning)" in e.summary()


def test_an_unreadable_snapshot_is_a_warning(location):
    db, _ = make(location, jobs=3, snapshot_every=3)
    where, data = snapshot(db, "e")
    write_snapshot(db, where, b"\x00garbage")
    e = verify(db, "e").experiments[0]
    assert e.ok and "cannot be read" in e.warnings[0].message


def test_a_torn_last_record_is_a_warning_and_repair_sets_it_aside(tmp_path):
    db, _ = make(str(tmp_path / "db"), jobs=3)
    path = log_file(db, "e")
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"v":5,"t":17')
    e = verify(db, "e").experiments[0]
    assert e.ok and e.commits == 4
    assert len(e.warnings) == 1 and "torn last record of 13 bytes" in e.warnings[0].message
    fix = repair(db, "e")
    assert fix.torn == 13 and fix.kept == 4 and not fix.set_aside
    assert path.read_bytes() == whole
    assert Path(fix.destination).read_bytes() == b'{"v":5,"t":17'
    assert verify(db).ok and not verify(db).experiments[0].warnings


def test_an_event_the_fold_refuses_is_reported_and_cut_by_repair(location):
    db, _ = make(location, jobs=2)
    append_commit(db, "e", Commit(4, 0.0, "w", [{"type": "JobClaimed", "job": "42", "worker": "w"}]))
    append_commit(db, "e", Commit(5, 0.0, "w", [{"type": "JobDeleted", "job": "1"}]))
    e = verify(db, "e").experiments[0]
    assert [p.commit for p in e.errors] == [4] and "malformed JobClaimed" in e.errors[0].message
    fix = repair(db, "e")
    assert fix.kept == 3 and [(r.version, r.due) for r in fix.set_aside] == [(4, 4), (5, 5)]
    assert verify(db).ok


def test_a_stray_object_in_an_object_store_log_is_reported_and_set_aside(tmp_path, request):
    db, _ = make(STORES["memory"](request, tmp_path), jobs=2)
    stray = db._store.folder_path(stream_key("e"), "log") + "/notes.txt"
    obstore.put(db._store.store, stray, b"hello")
    e = verify(db, "e").experiments[0]
    assert not e.ok and "unexpected object" in e.errors[0].message and "notes.txt" in e.errors[0].message
    fix = repair(db, "e")
    assert fix.kept == 3 and len(fix.strays) == 1
    assert verify(db).ok
    kept = [p for p in everything(db) if p.endswith("notes.txt")]
    assert len(kept) == 1 and "/damaged-" in kept[0]


def test_verify_of_an_unknown_experiment_or_database(tmp_path):
    db, _ = make(str(tmp_path / "db"), jobs=0)
    with pytest.raises(ExperimentNotFoundError, match="'nope'"):
        verify(db, "nope")
    with pytest.raises(ExperimentNotFoundError, match="'nope'"):
        repair(db, "nope")
    with pytest.raises(DatabaseError, match="no Schedy database"):
        verify(str(tmp_path / "elsewhere"))
    assert not (tmp_path / "elsewhere").exists()


# -- repair -----------------------------------------------------------------------------------------------


def test_repair_keeps_the_prefix_and_sets_the_rest_aside_byte_for_byte(anywhere):
    db, _ = make(anywhere, jobs=7, snapshot_every=3)
    flip(db, "e", 4)
    original = records(db, "e")
    objects_before = everything(db)
    fix = repair(db, "e")
    assert fix.kept == 3 and not fix.dry_run and fix.changed
    assert [(r.version, r.due) for r in fix.set_aside] == [(None, 4), (5, 5), (6, 6), (7, 7), (8, 8)]
    assert records(db, "e") == original[:3]
    assert len(fix.snapshots) >= 1  # the snapshot at commit 6 lies beyond the kept log
    text = str(fix)
    assert "kept commits 1-3" in text and "an unreadable record where commit 4 was due" in text
    assert fix.destination in text
    if on_file(db):
        assert log_file(db, "e").read_bytes() == b"".join(r + b"\n" for r in original[:3])
        assert Path(fix.destination).name.startswith("damaged-") and fix.destination_offset == 0
        assert Path(fix.destination).read_bytes() == b"".join(r + b"\n" for r in original[3:])
    else:
        after = everything(db)
        moved = sorted(p for p in after if "/damaged-" in p and "/snapshots/" not in p)
        assert [p.rsplit("/", 1)[1] for p in moved] == [f"{v:020d}.json" for v in range(4, 9)]
        originals = [objects_before[_object(db, "e", v)] for v in range(4, 9)]
        assert [after[p] for p in moved] == originals  # byte for byte
    # The experiment opens and works again: the next commit is 4.
    exp = reopen(db).get_experiment("e")
    assert [j.hyperparameters["i"] for j in exp.all_jobs()] == [0, 1]
    exp.add_job({"i": "after repair"})
    assert decode_commit(records(db, "e")[-1]).version == 4
    assert verify(db).ok


def test_dry_run_changes_nothing_and_says_what_repair_would_do(location):
    db, _ = make(location, jobs=5, snapshot_every=2)
    delete_commit(db, "e", 3)
    before = everything(db)
    plan = repair(db, "e", dry_run=True)
    assert everything(db) == before
    assert plan.dry_run and plan.changed and plan.kept == 2 and "would set aside" in str(plan)
    done = repair(db, "e")
    assert [(r.version, r.due) for r in done.set_aside] == [(r.version, r.due) for r in plan.set_aside]
    assert done.kept == plan.kept == 2 and done.snapshots == plan.snapshots
    # In a file, commit 4 stood where commit 3 was due; an object store names each object after its version.
    assert (done.set_aside[0].version, done.set_aside[0].due) == ((4, 3) if on_file(db) else (4, 4))
    assert verify(db).ok


def test_repair_of_a_clean_log_changes_nothing(location):
    db, _ = make(location, jobs=3, snapshot_every=2)
    before = everything(db)
    fix = repair(db, "e")
    assert not fix.changed and fix.kept == 4 and "nothing to repair" in str(fix)
    assert everything(db) == before


def test_repair_of_a_damaged_first_commit_empties_the_log(tmp_path):
    db, _ = make(str(tmp_path / "db"), jobs=2)
    whole = log_file(db, "e").read_bytes()
    flip(db, "e", 1)
    damaged = log_file(db, "e").read_bytes()
    fix = repair(db, "e")
    assert fix.kept == 0 and "kept no commit" in str(fix)
    assert log_file(db, "e").read_bytes() == b"" and Path(fix.destination).read_bytes() == damaged
    assert len(whole) == len(damaged)
    again = reopen(db)
    again.add_experiment(schedy.ManualSearch("e")).add_job({"fresh": True})
    assert verify(again).ok


def test_two_repairs_in_one_second_append_to_the_same_file(tmp_path, monkeypatch):
    monkeypatch.setattr(maintenance, "_stamp", lambda: "20000101T000000Z")
    db, exp = make(str(tmp_path / "db"), jobs=3)
    flip(db, "e", 4)
    first = repair(db, "e")
    lost_once = Path(first.destination).read_bytes()
    reopen(db).get_experiment("e").add_job({"i": "x"})
    flip(db, "e", 4)
    second = repair(db, "e")
    assert second.destination == first.destination and second.destination_offset == len(lost_once)
    assert Path(second.destination).read_bytes().startswith(lost_once)


def test_repair_refuses_a_log_from_a_newer_format(tmp_path):
    db, _ = make(str(tmp_path / "db"), jobs=0)
    event = {
        "type": "ExperimentCreated",
        "format": 2,
        "name": "future",
        "kind": "manual",
        "params": {"scheduler": {"Manual": {}}},
        "status": "RUNNING",
        "seed": 1,
    }
    write_log(db, "future", [encode_commit(Commit(1, 0.0, "w", [event])).rstrip(b"\n")])
    before = everything(db)
    e = verify(db, "future").experiments[0]
    assert not e.ok and "format 2" in e.errors[0].message
    with pytest.raises(UnsupportedFormatError, match="newer Schedy.*nothing was changed"):
        repair(db, "future")
    assert everything(db) == before


def test_repair_reads_the_log_only_once_it_holds_the_exclusive_lock_of_the_file_store(tmp_path, monkeypatch):
    """Repair waits for the lock a writer holds, and then repairs the log as the writer left it.

    No timing: a hook on flock says when repair asks for the log's lock (it cannot get it while this test holds
    it); the writer then rewrites the damaged commit whole. Had repair read the log before it held the lock, it
    would cut the log at the damage it saw, and throw away commits the writer had written.
    """
    db, _ = make(str(tmp_path / "db"), jobs=3)
    original = records(db, "e")
    flip(db, "e", 3)
    inode = log_file(db, "e").stat().st_ino
    asked, real_flock = threading.Event(), fcntl.flock

    def flock(fd, operation):
        if threading.current_thread() is repairer and operation & fcntl.LOCK_EX and os.fstat(fd).st_ino == inode:
            asked.set()
        return real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock)
    out = {}
    repairer = threading.Thread(target=lambda: out.setdefault("fix", repair(db, "e")))
    other = reopen(db)  # its own open file: flock excludes it from db's, even within one process
    with other._store.exclusive(stream_key("e")):
        repairer.start()
        assert asked.wait(60), "repair never asked for the lock of the log"
        write_log(db, "e", original)  # the writer holding the lock mends commit 3 (same file, same inode)
        assert repairer.is_alive() and records(db, "e") == original, "repair went on without the lock"
    repairer.join(60)
    fix = out["fix"]
    assert not fix.changed and fix.kept == 4, str(fix)
    assert records(db, "e") == original and verify(db).ok


def test_the_repaired_damage_file_is_synced_before_the_log_is_cut(tmp_path, monkeypatch):
    if not os.path.exists("/proc/self/fd"):
        pytest.skip("needs /proc to name file descriptors")
    db, _ = make(str(tmp_path / "db"), jobs=3)
    flip(db, "e", 3)
    calls = []
    real_fsync, real_truncate = os.fsync, os.ftruncate
    monkeypatch.setattr(
        os, "fsync", lambda fd: (calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))), real_fsync(fd))[1]
    )
    monkeypatch.setattr(
        os,
        "ftruncate",
        lambda fd, n: (calls.append(("truncate", os.readlink(f"/proc/self/fd/{fd}"))), real_truncate(fd, n))[1],
    )
    fix = repair(db, "e")
    synced = calls.index(("fsync", fix.destination))
    cut = calls.index(("truncate", str(log_file(db, "e"))))
    assert synced < cut


# -- a torn last record (file store): verify says what writers do with it, repair does the same but deletes nothing --
#
# A torn record that is the next commit whole but for its newline (its CRC checks) may be an acknowledged commit
# whose newline a crash lost: writers and repair complete it. Anything else was never acknowledged: writers cut
# it off, repair sets it aside. See docs/repair.md#a-torn-last-record.

# (jobs, snapshot_every, bytes cut from the end of the log): commits 1..jobs+1, the last one torn.
TORN = {
    "whole commit, snapshot of it": (2, 1, 1),
    "whole commit, no snapshot": (2, 1000, 1),
    "whole commit, snapshot of the commit before": (2, 2, 1),
    "partial, snapshot of it": (2, 1, 2),
    "partial, no snapshot": (2, 1000, 60),
    "partial, snapshot of the commit before": (2, 2, 60),
}


def torn_log(tmp_path, jobs, snapshot_every, cut):
    """``make`` then cut ``cut`` bytes off the log; return (db, the log before, the torn bytes left)."""
    db, _ = make(str(tmp_path / "db"), jobs=jobs, snapshot_every=snapshot_every)
    path = log_file(db, "e")
    whole = path.read_bytes()
    last = whole.splitlines(keepends=True)[-1]
    os.truncate(path, len(whole) - cut)
    return db, whole, last[: len(last) - cut]


@pytest.mark.parametrize("case", TORN)
def test_verify_says_what_the_next_writer_does_with_a_torn_record(tmp_path, case):
    jobs, every, cut = TORN[case]
    db, whole, left = torn_log(tmp_path, jobs, every, cut)
    completes = cut == 1
    e = verify(db, "e").experiments[0]
    assert e.ok and e.commits == jobs and e.intact == jobs
    said = [p.message for p in e.warnings]
    if completes:
        assert said[0].startswith(f"commit {jobs + 1} lacks its final newline (a torn last record of {len(left)} bytes")
        assert "readers do not take it yet, the next writer (or repair) completes it and keeps it" in said[0]
    else:
        assert said[0] == (
            f"a torn last record of {len(left)} bytes follows commit {jobs} (not a whole commit: a "
            f"write that never completed, or what a crash left of an unsynced one): readers ignore "
            f"it, the next writer cuts it off"
        )
    if every == 1:  # the snapshot of the torn commit
        assert len(said) == 2 and (
            "which is torn: readers ignore it until a writer completes the commit" in said[1]
            if completes
            else "is stale" in said[1]
        )
    else:  # none, or one of the commit before, which readers use
        assert len(said) == 1
    # What verify said is what a writer does (taking snapshots as often: a stale one would be replaced).
    schedy.SchedyDB(str(db.path), snapshot_every=every).get_experiment("e").add_job({"i": "next"})
    i = [j.hyperparameters["i"] for j in reopen(db).get_experiment("e").all_jobs()]
    assert i == (list(range(jobs)) + ["next"] if completes else list(range(jobs - 1)) + ["next"])
    after = verify(db, "e").experiments[0]
    assert after.ok and not after.problems


@pytest.mark.parametrize("case", TORN)
def test_repair_completes_a_torn_commit_and_sets_any_other_torn_record_aside(tmp_path, case):
    jobs, every, cut = TORN[case]
    db, whole, left = torn_log(tmp_path, jobs, every, cut)
    completes = cut == 1
    before = everything(db)
    plan = repair(db, "e", dry_run=True)
    assert everything(db) == before, "a dry run changes nothing"
    fix = repair(db, "e")
    assert (plan.kept, plan.completed, plan.torn, plan.snapshots) == (fix.kept, fix.completed, fix.torn, fix.snapshots)
    assert fix.changed and not fix.set_aside
    path = log_file(db, "e")
    if completes:
        assert fix.kept == fix.completed == jobs + 1 and fix.torn == 0 and fix.destination is None
        assert not fix.snapshots, "the snapshot of the completed commit is good again"
        assert path.read_bytes() == whole
        assert f"would complete commit {jobs + 1}" in str(plan) and f"completed commit {jobs + 1}" in str(fix)
    else:
        assert fix.kept == jobs and fix.completed is None and fix.torn == len(left)
        assert path.read_bytes() == whole[: len(whole) - cut - len(left)]
        assert Path(fix.destination).read_bytes() == left, "set aside, byte for byte"
        assert len(fix.snapshots) == (every == 1)  # a snapshot of the cut commit is stale
        assert f"set aside a torn last record of {len(left)} bytes" in str(fix)
    after = verify(db, "e").experiments[0]
    assert after.ok and not after.problems
    i = [j.hyperparameters["i"] for j in reopen(db).get_experiment("e").all_jobs()]
    assert i == list(range(jobs if completes else jobs - 1))
    if every == 1 and completes:
        assert reopen(db).get_experiment("e")._view.snapshot == "used"


def test_the_cli_repair_completes_a_torn_commit(tmp_path):
    from click.testing import CliRunner

    from schedy.cli import main

    db, whole, _ = torn_log(tmp_path, 2, 1, 1)
    result = CliRunner().invoke(main, ["repair", "e", "--db", str(db.path), "-y"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "completed commit 3, a torn last record whose CRC checks: added its final newline" in result.output
    assert "The log changed" not in result.output and "e: 3 commits, OK" in result.output
    assert log_file(db, "e").read_bytes() == whole


def _torn_append(db, commit):
    with open(log_file(db, "e"), "ab") as f:
        f.write(encode_commit(commit).rstrip(b"\n"))


def test_a_torn_commit_the_fold_refuses_is_an_error_and_repair_sets_it_aside(tmp_path):
    db, _ = make(str(tmp_path / "db"), jobs=2)
    whole = log_file(db, "e").read_bytes()
    _torn_append(db, Commit(4, 1.0, "w", [{"type": "JobDeleted", "job": "99"}]))  # no Schedy writer wrote this
    (error,) = verify(db, "e").experiments[0].errors
    assert error.commit == 4 and "job '99' does not exist" in error.message
    assert "the next writer completes it" in error.message and "repair sets it aside" in error.message
    plan = repair(db, "e", dry_run=True)
    assert plan.completed is None and plan.torn > 0 and plan.kept == 3
    # As verify said: a writer cannot tell, completes it, and then stops there like every reader.
    with pytest.raises(CorruptLogError, match="commit 4"):
        reopen(db).get_experiment("e").add_job({"i": "next"})
    assert log_file(db, "e").read_bytes().endswith(b"\n")
    fix = repair(db, "e")  # now a complete damaged record
    assert fix.kept == 3 and [r.version for r in fix.set_aside] == [4]
    assert log_file(db, "e").read_bytes() == whole and verify(db).ok


def test_a_torn_commit_in_a_newer_format_is_not_repaired(tmp_path):
    db, _ = make(str(tmp_path / "db"), jobs=0)
    event = {
        "type": "ExperimentCreated",
        "format": 2,
        "name": "future",
        "kind": "manual",
        "params": {"scheduler": {"Manual": {}}},
        "status": "RUNNING",
        "seed": 1,
    }
    write_log(db, "future", [])
    with open(log_file(db, "future"), "wb") as f:
        f.write(encode_commit(Commit(1, 0.0, "w", [event])).rstrip(b"\n"))
    before = everything(db)
    e = verify(db, "future").experiments[0]
    assert not e.ok and "format 2" in e.errors[0].message
    with pytest.raises(UnsupportedFormatError, match="newer Schedy.*nothing was changed"):
        repair(db, "future")
    assert everything(db) == before


def test_a_torn_record_after_a_damaged_line_is_left_by_writers_and_set_aside_by_repair(tmp_path):
    db, _ = make(str(tmp_path / "db"), jobs=3)
    flip(db, "e", 3)  # the line before it damaged
    os.truncate(log_file(db, "e"), log_file(db, "e").stat().st_size - 1)  # commit 4 torn, its CRC checks
    damaged = log_file(db, "e").read_bytes()
    e = verify(db, "e").experiments[0]
    assert "commit 3 is damaged" in e.errors[0].message
    assert any(
        "follows the damaged record where commit 3 was due" in w.message and "writers leave it" in w.message
        for w in e.warnings
    )
    with pytest.raises(CorruptLogError, match="commit 3 is damaged"):
        reopen(db).get_experiment("e").add_job({"i": "next"})
    assert log_file(db, "e").read_bytes() == damaged, "the writer left it as it is"
    fix = repair(db, "e")
    assert fix.kept == 2 and [r.due for r in fix.set_aside] == [3] and fix.torn > 0 and fix.completed is None
    assert Path(fix.destination).read_bytes() == damaged[len(log_file(db, "e").read_bytes()) :]
    assert verify(db).ok


def test_a_torn_commit_after_damage_further_back_is_set_aside_with_it(tmp_path):
    db, _ = make(str(tmp_path / "db"), jobs=3)
    flip(db, "e", 2)
    _torn_append(db, Commit(5, 1.0, "w", []))
    e = verify(db, "e").experiments[0]
    assert any(
        w.message.startswith("commit 5 lacks its final newline") and "after the damage at commit 2" in w.message
        for w in e.warnings
    )
    fix = repair(db, "e")
    assert fix.kept == 1 and [r.due for r in fix.set_aside] == [2, 3, 4] and fix.torn > 0 and fix.completed is None
    assert verify(db).ok
