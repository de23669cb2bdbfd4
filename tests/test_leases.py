"""One thread per process renews the leases of every job in a `with` block (schedy.adapters.leases).

The thread runs on real time: it beats every quarter of a lease by time.monotonic. Whether a lease has lapsed
is judged by the deciding worker on its own monotonic clock, which these tests fake (tests/fakeclock.py): they
wait, as long as it takes, for the thread to write its heartbeats, and make the lease's time pass only then.
So a slow machine makes them wait longer but cannot make a live job's lease lapse, nor hide a missing renewal.
"""

import os
import signal
import threading
from contextlib import ExitStack

import pytest
from conftest import log_commits
from fakeclock import FakeClock, wait_until

import schedy
from schedy.adapters import leases
from schedy.core import events as ev


def lapsed(db, name):
    return [e for c in log_commits(db, name) for e in c.events if e["type"] == ev.JOB_LEASE_EXPIRED]


def heartbeats(db, name):
    """(commit version, event) of every heartbeat of ``name``'s log."""
    return [(c.version, e) for c in log_commits(db, name) for e in c.events if e["type"] == ev.JOB_HEARTBEAT]


def test_one_thread_keeps_many_jobs_alive_and_lets_go_of_them(tmp_path):
    lease, step = 0.4, 0.3  # the thread beats every 0.1 s of real time; the fake clock moves 3/4 of a lease at a time
    t = FakeClock()
    start = t.now
    db = schedy.SchedyDB(str(tmp_path / "db"), worker="a", clock=t, monotonic=t.watcher())
    exp = db.add_experiment(schedy.ManualSearch("many", lease=lease))
    for i in range(7):
        exp.add_job({"i": i})
    other = schedy.SchedyDB(str(tmp_path / "db"), worker="b", clock=t, monotonic=t.watcher()).get_experiment("many")
    before = {th.ident for th in threading.enumerate()}
    with ExitStack() as stack:
        jobs = [stack.enter_context(exp.next_job()) for _ in range(6)]
        control = exp.next_job()  # claimed without a with-block: nothing renews it
        assert set(leases.keeper._due) >= set(jobs)
        with pytest.raises(schedy.errors.NoJobError):
            other.next_job()  # "b" sees every claim now, and times each lease from here
        for _ in range(3):  # 2.25 leases in all: only renewals keep the jobs
            t.advance(step)
            # Every job renewed after the clock moved (its lease_until is now + lease), however long that takes.
            wait_until(
                lambda: (
                    {e["job"] for _, e in heartbeats(db, "many") if e["lease_until"] == t.now + lease}
                    >= {j.job_id for j in jobs}
                ),
                what="a heartbeat of every job",
            )
            try:
                taken = other.next_job()  # would record the expiry of any lapsed lease
            except schedy.errors.NoJobError:
                taken = None
            # The unrenewed control claim lapses once "b" has watched it for a whole lease, and no other does.
            assert {e["job"] for e in lapsed(db, "many")} == ({control.job_id} if t.now - start >= lease else set())
            assert taken is None or taken.job_id == control.job_id
        started = [th for th in threading.enumerate() if th.ident not in before]
        assert len([th for th in started if th.name == "schedy-leases"]) <= 1  # not one per job
    assert not set(leases.keeper._due) & set(jobs)
    assert [j.status for j in exp.all_jobs() if j.job_id != control.job_id] == ["DONE"] * 6
    assert [e["job"] for e in lapsed(db, "many")] == [control.job_id]
    assert {e["job"] for _, e in heartbeats(db, "many")} == {j.job_id for j in jobs}


def test_a_shortened_lease_sets_the_pace_of_the_next_beats(tmp_path, monkeypatch):
    """The thread reads the lease at every beat: after an operator shortens it, the job is renewed at the new pace.

    The thread here is a LeaseKeeper on a fake clock too, so the pace is checked exactly: the beat after the
    change is due a quarter of the new lease later, and a worker judging by the new lease never sees it lapse.
    """
    t = FakeClock()
    keeper = leases.LeaseKeeper(clock=t)
    monkeypatch.setattr(leases, "keeper", keeper)  # the `with` blocks below register with it

    def beat():
        """Let the fake time reach the job's next beat, wake the thread, and wait for the heartbeat it writes."""
        count = len(heartbeats(db, "shrink"))
        with keeper._cond:
            t.now = keeper._due[job]
            keeper._cond.notify()
        wait_until(lambda: len(heartbeats(db, "shrink")) > count, what="the next heartbeat")
        wait_until(lambda: keeper._due.get(job, 0) > t.now, what="the thread to plan its next beat")

    db = schedy.SchedyDB(str(tmp_path / "db"), worker="a", clock=t, monotonic=t.watcher())
    exp = db.add_experiment(schedy.ManualSearch("shrink", lease=2))
    exp.add_job({"i": 1})
    admin = schedy.SchedyDB(str(tmp_path / "db"), worker="admin", clock=t, monotonic=t.watcher())
    other = schedy.SchedyDB(str(tmp_path / "db"), worker="b", clock=t, monotonic=t.watcher()).get_experiment("shrink")
    with exp.next_job() as job:
        assert keeper._due[job] == t.now + 0.5  # a quarter of the lease
        admin_exp = admin.get_experiment("shrink")
        admin_exp.lease = 0.2
        admin_exp.push_updates()
        beat()  # the beat planned under the old lease; it reads the new one
        assert keeper._due[job] == t.now + 0.05, "the next beat is not a quarter of the new lease away"
        for _ in range(24):  # 1.2 s of fake time, six new leases and more than half the old one
            with pytest.raises(schedy.errors.NoJobError):
                other.next_job()
            beat()
            assert keeper._due[job] == t.now + 0.05
        job.results["loss"] = 1.0
    assert exp.get_job(job.job_id).results == {"loss": 1.0}
    assert exp.get_job(job.job_id).status == "DONE"
    assert not lapsed(db, "shrink")
    assert not keeper._due


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_renews_its_own_jobs(tmp_path):
    """After a fork, the child's jobs are renewed by a thread of its own, and the parent's thread goes on.

    Both processes judge leases on a clock that stands still, so nothing lapses whatever the machine's speed:
    what is checked is that each thread writes heartbeats, which the child waits for as long as it takes.
    """
    still = FakeClock()
    path = str(tmp_path / "db")
    db = schedy.SchedyDB(path, worker="parent", monotonic=still)
    exp = db.add_experiment(schedy.ManualSearch("forked", lease=0.3))
    exp.add_job({"i": 0})
    exp.add_job({"i": 1})
    with exp.next_job() as held:  # the parent's thread runs while it forks
        pid = os.fork()
        if pid == 0:  # pragma: no cover - reports through its exit status
            code = 1
            try:
                signal.alarm(120)  # a child that hangs must not hang the test run
                child_db = schedy.SchedyDB(path, worker="child", monotonic=still)
                child = child_db.get_experiment("forked")
                with child.next_job() as job:
                    claimed = child._view.state.version

                    def beats_since_the_claim():
                        return [(e["job"], e["worker"]) for v, e in heartbeats(child_db, "forked") if v > claimed]

                    wait_until(
                        lambda: (
                            beats_since_the_claim().count((job.job_id, "child")) >= 2
                            and (held.job_id, "parent") in beats_since_the_claim()
                        ),
                        what="both threads to beat",
                    )
                    job.results["ok"] = True
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert [j.status for j in exp.all_jobs()] == ["DONE", "DONE"]
    assert exp.get_job("2").results == {"ok": True}
    assert not lapsed(db, "forked")
