"""Workers whose clocks run 300 s ahead or behind, in other processes, on the file store and on S3.

A lease lapses when the deciding worker has watched it go unrenewed for the lease on its own monotonic clock
(schedy.core.leases), so a skewed worker can neither take live jobs nor keep a dead worker's job.
"""

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import log_commits

import schedy
import schedy.maintenance
from schedy.core import events as ev
from schedy.core.check import find_double_claims

WORKER = os.path.join(os.path.dirname(__file__), "_skewed_worker.py")
SKEW = 300.0


def skewed(db_path, name, worker, skew, mode, seconds=0.0):
    return subprocess.Popen(
        [sys.executable, WORKER, db_path, name, worker, str(skew), mode, str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def result(proc, timeout=120):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the skewed worker did not finish within {timeout} s: {err}")
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def expiries(db, name):
    return [(c.worker, e["job"]) for c in log_commits(db, name) for e in c.events if e["type"] == ev.JOB_LEASE_EXPIRED]


def test_workers_300_s_ahead_and_behind_take_no_live_job_and_lose_none_of_theirs(shared_db_path):
    lease = 4.0
    db = schedy.SchedyDB(shared_db_path, worker="honest")
    exp = db.add_experiment(schedy.ManualSearch("skew", lease=lease))
    for i in range(9):
        exp.add_job({"i": i})
    with exp.next_job() as held:  # renewed every lease / 4 by this process's clock, which is right
        # Both skewed workers work (and commit) for two leases while this job is held: with leases compared
        # across clocks, the one ahead would expire it at its first commit, and the honest heartbeats would
        # expire the jobs of the one behind.
        workers = [
            skewed(shared_db_path, "skew", "ahead", SKEW, "work", 2 * lease),
            skewed(shared_db_path, "skew", "behind", -SKEW, "work", 2 * lease),
        ]
        done = [result(w) for w in workers]
        held.results["loss"] = 0.5
    assert exp.get_job(held.job_id).status == "DONE" and exp.get_job(held.job_id).results == {"loss": 0.5}
    assert [d["refused"] for d in done] == [0, 0]
    finished = sorted(j for d in done for j in d["done"])
    assert finished == sorted(j.job_id for j in exp.all_jobs() if j.job_id != held.job_id)
    assert all(j.status == "DONE" for j in exp.all_jobs())
    assert expiries(db, "skew") == []
    assert find_double_claims(log_commits(db, "skew")) == []


def test_a_dead_worker_ahead_is_taken_back_after_one_lease_by_a_worker_behind(shared_db_path):
    lease = 2.0
    db = schedy.SchedyDB(shared_db_path, worker="op")
    exp = db.add_experiment(schedy.ManualSearch("dead", lease=lease))
    exp.add_job({"i": 0})
    # Its lease_until is 300 s in everyone else's future; the survivor's clock is 300 s behind, 600 s in all.
    assert result(skewed(shared_db_path, "dead", "ahead", SKEW, "die")) == {"claimed": "1"}
    took = result(skewed(shared_db_path, "dead", "behind", -SKEW, "take"))
    assert took["took"] == "1"
    assert took["after"] >= lease  # it first saw the claim when it opened the log: never earlier than a lease
    assert took["after"] < 60  # not the 600 s the stamps would make it wait
    assert expiries(db, "dead") == [("behind", "1")]
    assert find_double_claims(log_commits(db, "dead")) == []


def test_verify_warns_when_commit_times_run_backwards_by_more_than_a_lease(tmp_path):
    path = str(tmp_path / "db")
    exp = schedy.SchedyDB(path, worker="op").add_experiment(schedy.ManualSearch("e", lease=30))
    exp.add_job({"i": 0})
    behind = schedy.SchedyDB(path, worker="late").get_experiment("e")
    behind._view.clock = lambda: time.time() - SKEW
    behind.add_job({"i": 1})
    report = schedy.maintenance.verify(schedy.SchedyDB(path), "e")["e"]
    assert report.ok  # a warning, not a broken invariant
    (warning,) = [p for p in report.warnings if "backwards" in p.message]
    assert "by up to 300 s" in warning.message and "'late'" in warning.message and "lease (30 s)" in warning.message
    exp.add_job({"i": 2})  # within the lease: no warning for that
    ahead = schedy.SchedyDB(path, worker="early").get_experiment("e")
    ahead._view.clock = lambda: time.time() + 10
    ahead.add_job({"i": 3})
    exp.add_job({"i": 4})
    (warning,) = [
        p for p in schedy.maintenance.verify(schedy.SchedyDB(path), "e")["e"].warnings if "backwards" in p.message
    ]
    assert "1 time," in warning.message
