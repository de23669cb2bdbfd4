"""One thread per process renews the leases of every job in a `with` block (schedy.adapters.leases)."""

import os
import threading
import time
from contextlib import ExitStack

import pytest

import schedy
from schedy.adapters import leases
from schedy.core import events as ev

from conftest import log_commits


def lapsed(db, name):
    return [e for c in log_commits(db, name) for e in c.events if e["type"] == ev.JOB_LEASE_EXPIRED]


def test_one_thread_keeps_many_jobs_alive_and_lets_go_of_them(tmp_path):
    db = schedy.SchedyDB(str(tmp_path / "db"), worker="a")
    exp = db.add_experiment(schedy.ManualSearch("many", lease=0.4))
    for i in range(6):
        exp.add_job({"i": i})
    other = schedy.SchedyDB(str(tmp_path / "db"), worker="b").get_experiment("many")
    before = {t.ident for t in threading.enumerate()}
    with ExitStack() as stack:
        jobs = [stack.enter_context(exp.next_job()) for _ in range(6)]
        assert set(leases.keeper._due) >= set(jobs)
        time.sleep(1.2)  # three leases long: only renewals keep the jobs
        with pytest.raises(schedy.errors.NoJobError):
            other.next_job()  # would record the expiry of any lapsed lease
        started = [t for t in threading.enumerate() if t.ident not in before]
        assert len([t for t in started if t.name == "schedy-leases"]) <= 1  # not one per job
    assert not set(leases.keeper._due) & set(jobs)
    assert [j.status for j in exp.all_jobs()] == ["DONE"] * 6
    assert not lapsed(db, "many")
    renewals = [e for c in log_commits(db, "many") for e in c.events if e["type"] == ev.JOB_HEARTBEAT]
    assert {e["job"] for e in renewals} == {j.job_id for j in jobs}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_renews_its_own_jobs(tmp_path):
    db = schedy.SchedyDB(str(tmp_path / "db"))
    exp = db.add_experiment(schedy.ManualSearch("forked", lease=0.3))
    exp.add_job({"i": 0})
    exp.add_job({"i": 1})
    with exp.next_job():  # the parent's thread runs while it forks
        pid = os.fork()
        if pid == 0:  # pragma: no cover - reports through its exit status
            code = 1
            try:
                child = schedy.SchedyDB(str(tmp_path / "db")).get_experiment("forked")
                with child.next_job() as job:
                    time.sleep(1.0)
                    job.results["ok"] = True
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert [j.status for j in exp.all_jobs()] == ["DONE", "DONE"]
    assert exp.get_job("2").results == {"ok": True}
    assert not lapsed(db, "forked")
