"""Workers killed with SIGKILL mid-job: their jobs come back when the lease lapses, and none is done twice."""

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import schedy
from schedy.core import events as ev
from schedy.core.check import find_double_claims
from schedy.errors import UnsafeUpdateError

from conftest import log_commits

WORKER = Path(__file__).with_name("_crash_worker.py")
LEASE = 0.6
EXPIRED = {}  # seed -> lapsed leases seen, so the last test can check that kills did land mid-job


def spawn(db_path, n, seed):
    return subprocess.Popen([sys.executable, str(WORKER), db_path, "crash", f"w{n}", str(seed)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("seed", range(20))
def test_killed_workers_lose_no_job_and_none_is_done_twice(tmp_path, seed):
    rng = random.Random(seed)
    db_path = str(tmp_path / "db")
    db = schedy.SchedyDB(db_path)
    exp = db.add_experiment(schedy.ManualSearch("crash", lease=LEASE))
    # Some jobs last longer than the lease: only the heartbeat keeps them from being handed out twice.
    for i in range(12):
        exp.add_job({"i": i, "seconds": rng.choice([0.05, 0.2, 0.9])})

    procs = {n: spawn(db_path, n, seed * 100 + n) for n in range(4)}
    killed, next_n = [], 4
    deadline = time.monotonic() + 90
    for _ in range(rng.randint(1, 3)):
        time.sleep(rng.uniform(0.5, 1.5))  # the first workers need about half a second to start
        alive = [n for n, p in procs.items() if p.poll() is None]
        if not alive:
            break
        victim = rng.choice(alive)
        procs[victim].send_signal(signal.SIGKILL)
        killed.append(victim)
        procs[next_n] = spawn(db_path, next_n, seed * 100 + next_n)  # keep the pool at its size
        next_n += 1
    for n, p in procs.items():
        out, err = p.communicate(timeout=max(1, deadline - time.monotonic()))
        if n not in killed:
            assert p.returncode == 0, err[-2000:]

    jobs = schedy.SchedyDB(db_path).get_experiment("crash").all_jobs()
    assert [j.status for j in jobs] == ["DONE"] * 12, "a job was lost"
    commits = log_commits(db, "crash")
    assert find_double_claims(commits) == []
    done = Counter(e["job"] for c in commits for e in c.events if e["type"] == ev.JOB_UPDATED and e.get("status") == ev.DONE)
    assert done == Counter({str(i): 1 for i in range(1, 13)}), "a job was reported DONE twice"
    # Every DONE was written by the worker holding the job at that moment.
    holders = {}
    for c in commits:
        for e in c.events:
            if e["type"] == ev.JOB_CLAIMED:
                holders[e["job"]] = e["worker"]
            elif e["type"] == ev.JOB_LEASE_EXPIRED:
                holders.pop(e["job"], None)
            elif e["type"] == ev.JOB_UPDATED and e.get("status") == ev.DONE:
                assert holders.pop(e["job"]) == c.worker
    expired = [e for c in commits for e in c.events if e["type"] == ev.JOB_LEASE_EXPIRED]
    EXPIRED[seed] = len(expired)
    for e in expired:
        assert e["worker"] in {f"w{n}" for n in killed}, "a live worker's lease lapsed: the heartbeat failed"


def test_a_late_report_from_a_worker_whose_lease_lapsed_is_refused(tmp_path):
    now = [1000.0]
    db = schedy.SchedyDB(str(tmp_path / "db"), worker="slow")
    exp = db.add_experiment(schedy.ManualSearch("late", lease=10))
    exp.add_job({"i": 1})
    other = schedy.SchedyDB(str(tmp_path / "db"), worker="fast").get_experiment("late")
    for view in (exp._view, other._view):
        view.clock = view.monotonic = lambda: now[0]
    slow = exp.next_job()  # claimed without a with-block: nothing renews it
    with pytest.raises(schedy.errors.NoJobError):
        other.next_job()  # held: "fast" sees the claim now, and times its lease from here
    now[0] += 9
    with pytest.raises(schedy.errors.NoJobError):
        other.next_job()  # still held
    now[0] += 2  # the lease lapses
    taken = other.next_job()
    assert taken.job_id == slow.job_id
    slow.results["loss"] = 1.0
    slow.status = "DONE"
    with pytest.raises(UnsafeUpdateError):
        slow.put()
    with taken:
        taken.results["loss"] = 2.0
    assert exp.get_job(slow.job_id).results == {"loss": 2.0}
    kinds = [e["type"] for c in log_commits(db, "late") for e in c.events]
    assert kinds.count(ev.JOB_LEASE_EXPIRED) == 1


def test_a_put_renews_the_lease_and_a_lapsed_pbt_segment_is_redone(tmp_path):
    now = [1000.0]
    db = schedy.SchedyDB(str(tmp_path / "db"), worker="a")
    exp = db.add_experiment(schedy.PopulationBasedTraining(
        "pbt", "min", "loss", schedy.pbt.Truncate(), initial_distributions={"lr": schedy.random.Uniform(0, 1)},
        population_size=1, max_generations=3, lease=10))
    exp._view.clock = exp._view.monotonic = lambda: now[0]
    job = exp.next_job()
    for _ in range(3):
        now[0] += 8
        job.results["step"] = now[0]
        job.put()  # still RUNNING: renews the lease
    assert exp.get_job(job.job_id).status == "RUNNING"
    now[0] += 11  # no renewal: the lease lapses, and PBT redoes the segment from where it started
    retry = exp.next_job()
    assert retry.job_id != job.job_id and retry.generation == 0
    assert retry.hyperparameters == job.hyperparameters and retry.results == {}
    assert exp.get_job(job.job_id).status == "CRASHED"


def test_lease_is_a_setting_of_the_experiment(tmp_path):
    db = schedy.SchedyDB(str(tmp_path / "db"))
    exp = db.add_experiment(schedy.ManualSearch("l", lease=30))
    assert schedy.SchedyDB(str(tmp_path / "db")).get_experiment("l").lease == 30
    exp.lease = 5
    exp.push_updates()
    assert schedy.SchedyDB(str(tmp_path / "db")).get_experiment("l").lease == 5
    assert schedy.ManualSearch("d").lease == ev.DEFAULT_LEASE
    for bad in (0, -1, float("inf"), float("nan"), "10"):
        with pytest.raises((TypeError, ValueError), match="lease"):
            schedy.ManualSearch("x", lease=bad)


def test_the_kills_did_interrupt_jobs():
    """Across the seeded runs above (if they ran in this session), some kills landed mid-job."""
    if len(EXPIRED) < 20:
        pytest.skip("the seeded crash runs did not all run in this session")
    assert sum(1 for n in EXPIRED.values() if n) >= 5, EXPIRED


def test_shortening_the_lease_while_a_job_runs_does_not_lose_it(tmp_path):
    db = schedy.SchedyDB(str(tmp_path / "db"), worker="a")
    exp = db.add_experiment(schedy.ManualSearch("shrink", lease=2))
    exp.add_job({"i": 1})
    admin = schedy.SchedyDB(str(tmp_path / "db"), worker="admin").get_experiment("shrink")
    other = schedy.SchedyDB(str(tmp_path / "db"), worker="b").get_experiment("shrink")
    with exp.next_job() as job:
        admin.lease = 0.2
        admin.push_updates()
        time.sleep(1.2)  # six new leases long: only beats at the new pace keep the job
        with pytest.raises(schedy.errors.NoJobError):
            other.next_job()
        job.results["loss"] = 1.0
    assert exp.get_job(job.job_id).results == {"loss": 1.0}
    assert not [e for c in log_commits(db, "shrink") for e in c.events if e["type"] == ev.JOB_LEASE_EXPIRED]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_reads_an_object_store_log(tmp_path):
    db = schedy.SchedyDB("memory://fork-pool/db")
    exp = db.add_experiment(schedy.ManualSearch("many"))
    for i in range(40):
        exp.add_job({"i": i})
    schedy.SchedyDB("memory://fork-pool/db").get_experiment("many").all_jobs()  # the parent's fetch pool runs
    pid = os.fork()
    if pid == 0:  # pragma: no cover - reports through its exit status
        signal.alarm(20)
        jobs = schedy.SchedyDB("memory://fork-pool/db").get_experiment("many").all_jobs()
        os._exit(0 if len(jobs) == 40 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
