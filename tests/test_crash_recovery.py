"""Workers killed with SIGKILL mid-job: a survivor takes their jobs back once it watched their lease lapse.

The kills are real (worker processes, SIGKILL); the lease's time is not. Workers run with a lease far longer
than the test (so that a loaded machine cannot make a live worker's lease lapse), stop when nothing is left to
claim, and leave the jobs of dead workers RUNNING. A survivor opened afterwards on a fake monotonic clock
(tests/fakeclock.py) first sees those claims, then watches them for a lease of fake time, and takes them back.
"""

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import log_commits
from fakeclock import FakeClock

import schedy
from schedy.core import events as ev
from schedy.core.check import find_double_claims
from schedy.core.state import fold
from schedy.errors import NoJobError, UnsafeUpdateError

WORKER = Path(__file__).with_name("_killable_worker.py")
LEASE = 600.0  # seconds: longer than any run of the test may take, so that no live worker's lease can lapse
LIVE_PHASE = 240.0  # seconds the worker processes get to drain the queue (a few on an idle machine)


class Pool:
    """Worker processes of one database; each line a worker prints arrives in ``events`` as (worker number, words)."""

    def __init__(self, db_path, tmp_path, seed):
        self.db_path, self.tmp_path, self.seed = db_path, tmp_path, seed
        self.procs, self.killed, self.events = {}, set(), queue.Queue()

    def spawn(self):
        n = len(self.procs)
        with open(self.tmp_path / f"w{n}.err", "w") as err:  # a file: a pipe nobody reads could fill up and block
            p = subprocess.Popen(
                [sys.executable, str(WORKER), self.db_path, "crash", f"w{n}", str(self.seed * 100 + n)],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        self.procs[n] = p
        threading.Thread(target=self._pump, args=(n, p), daemon=True).start()

    def _pump(self, n, p):
        for line in p.stdout:
            self.events.put((n, line.split()))
        self.events.put((n, None))

    def kill(self, n):
        """SIGKILL worker ``n`` unless it has already exited; return whether it was killed."""
        p = self.procs[n]
        if p.poll() is not None:
            return False
        p.send_signal(signal.SIGKILL)
        self.killed.add(n)
        return True

    def stderr(self, n):
        return (self.tmp_path / f"w{n}.err").read_text()[-2000:]

    def close(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
            p.wait()


def holders(state):
    """job id -> worker, of the jobs claimed in ``state``."""
    return {j: state.jobs[j].worker for j in state.claims}


@pytest.mark.parametrize("seed", range(20))
def test_killed_workers_lose_no_job_and_none_is_done_twice(tmp_path, seed):
    rng = random.Random(seed)
    db_path = str(tmp_path / "db")
    db = schedy.SchedyDB(db_path)
    exp = db.add_experiment(schedy.ManualSearch("crash", lease=LEASE))
    # A job of None seconds lasts until its worker is killed: whoever starts one is killed, so every run
    # interrupts at least one job. Other kills come at random moments (mid-job, mid-commit, between jobs).
    hang = set(rng.sample(range(1, 13), rng.randint(1, 2)))
    for i in range(1, 13):
        exp.add_job({"i": i, "seconds": None if i in hang else rng.choice([0.02, 0.1, 0.3])})
    hang = {str(i) for i in hang}
    random_kills = rng.randint(0, 2)

    pool = Pool(db_path, tmp_path, seed)
    try:
        for _ in range(4):
            pool.spawn()
        running, deadline = set(pool.procs), time.monotonic() + LIVE_PHASE
        while running:
            try:
                n, words = pool.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"the workers did not drain the queue in {LIVE_PHASE:g} s")
            if words is None:
                running.discard(n)
                pool.procs[n].wait()
                continue
            if words[0] != "start":
                continue
            if words[1] in hang:
                victim = n
            elif random_kills and rng.random() < 0.3:
                random_kills -= 1
                time.sleep(rng.uniform(0, 0.3))  # wherever it is by then
                victim = n
            else:
                continue
            if pool.kill(victim):
                pool.spawn()  # keep the pool at its size
                running.add(len(pool.procs) - 1)
        for n, p in pool.procs.items():
            if n not in pool.killed:
                assert p.returncode == 0, pool.stderr(n)
    finally:
        pool.close()

    killed = {f"w{n}" for n in pool.killed}
    # What the dead left behind: their claims, and no other (every live worker finished its jobs before it stopped).
    left = holders(fold(log_commits(db, "crash")))
    assert set(left) >= hang, "a job that never ends was not held by a killed worker"
    assert set(left.values()) <= killed

    # A survivor takes the dead workers' jobs back once it has watched their claims for a lease.
    clock = FakeClock()
    survivor = schedy.SchedyDB(db_path, worker="survivor", monotonic=clock).get_experiment("crash")
    with pytest.raises(NoJobError):
        survivor.next_job()  # it has only just seen the claims
    clock.advance(LEASE - 1)
    with pytest.raises(NoJobError):
        survivor.next_job()
    clock.advance(1)
    recovered = []
    while True:
        try:
            job = survivor.next_job()
        except NoJobError:
            break
        with job:
            job.results["by"] = "survivor"
        recovered.append(job.job_id)
    assert sorted(recovered) == sorted(left)

    jobs = schedy.SchedyDB(db_path).get_experiment("crash").all_jobs()
    assert [j.status for j in jobs] == ["DONE"] * 12, "a job was lost"
    commits = log_commits(db, "crash")
    assert find_double_claims(commits) == []
    done = Counter(
        e["job"] for c in commits for e in c.events if e["type"] == ev.JOB_UPDATED and e.get("status") == ev.DONE
    )
    assert done == Counter({str(i): 1 for i in range(1, 13)}), "a job was reported DONE twice"
    # Every DONE was written by the worker holding the job at that moment.
    claimed_by = {}
    for c in commits:
        for e in c.events:
            if e["type"] == ev.JOB_CLAIMED:
                claimed_by[e["job"]] = e["worker"]
            elif e["type"] == ev.JOB_LEASE_EXPIRED:
                claimed_by.pop(e["job"], None)
            elif e["type"] == ev.JOB_UPDATED and e.get("status") == ev.DONE:
                assert claimed_by.pop(e["job"]) == c.worker
    # Only the dead workers' leases lapsed, each once, recorded by the survivor.
    expired = [
        (c.worker, e["job"], e["worker"]) for c in commits for e in c.events if e["type"] == ev.JOB_LEASE_EXPIRED
    ]
    assert sorted(expired) == sorted(("survivor", j, w) for j, w in left.items())


def test_a_late_report_from_a_worker_whose_lease_lapsed_is_refused(tmp_path):
    clock = FakeClock(1000.0)
    db = schedy.SchedyDB(str(tmp_path / "db"), worker="slow", clock=clock, monotonic=clock.watcher())
    exp = db.add_experiment(schedy.ManualSearch("late", lease=10))
    exp.add_job({"i": 1})
    other = schedy.SchedyDB(str(tmp_path / "db"), worker="fast", clock=clock, monotonic=clock.watcher()).get_experiment(
        "late"
    )
    slow = exp.next_job()  # claimed without a with-block: nothing renews it
    clock.advance(5)
    with pytest.raises(NoJobError):
        other.next_job()  # held: "fast" sees the claim only now, and times its lease from here
    clock.advance(9)  # 14 s after the claim, by the clock that stamped it: "fast" has watched it for 9
    with pytest.raises(NoJobError):
        other.next_job()  # still held
    clock.advance(1)  # the lease lapses
    taken = other.next_job()
    assert taken.job_id == slow.job_id
    slow.results["loss"] = 1.0
    slow.status = "DONE"
    with pytest.raises(UnsafeUpdateError):
        slow.put()
    with taken:
        taken.results["loss"] = 2.0
    assert exp.get_job(slow.job_id).results == {"loss": 2.0}
    kinds = [(c.worker, e["type"]) for c in log_commits(db, "late") for e in c.events]
    assert [k for k in kinds if k[1] == ev.JOB_LEASE_EXPIRED] == [("fast", ev.JOB_LEASE_EXPIRED)]


def test_a_put_renews_the_lease_and_a_lapsed_pbt_segment_is_redone(tmp_path):
    clock = FakeClock(1000.0)
    db = schedy.SchedyDB(str(tmp_path / "db"), worker="a", clock=clock, monotonic=clock)
    exp = db.add_experiment(
        schedy.PopulationBasedTraining(
            "pbt",
            "min",
            "loss",
            schedy.pbt.Truncate(),
            initial_distributions={"lr": schedy.random.Uniform(0, 1)},
            population_size=1,
            max_generations=3,
            lease=10,
        )
    )
    job = exp.next_job()
    for _ in range(3):
        clock.advance(8)
        job.results["step"] = clock.now
        job.put()  # still RUNNING: renews the lease
    assert exp.get_job(job.job_id).status == "RUNNING"
    clock.advance(11)  # no renewal: the lease lapses, and PBT redoes the segment from where it started
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


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_reads_an_object_store_log(tmp_path):
    db = schedy.SchedyDB("memory://fork-pool/db")
    exp = db.add_experiment(schedy.ManualSearch("many"))
    for i in range(40):
        exp.add_job({"i": i})
    schedy.SchedyDB("memory://fork-pool/db").get_experiment("many").all_jobs()  # the parent's fetch pool runs
    pid = os.fork()
    if pid == 0:  # pragma: no cover - reports through its exit status
        signal.alarm(120)  # only so that a child deadlocked by the fork cannot hang the run
        jobs = schedy.SchedyDB("memory://fork-pool/db").get_experiment("many").all_jobs()
        os._exit(0 if len(jobs) == 40 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
