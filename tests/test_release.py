"""A worker told to stop gives its job back (``JobReleased``) instead of losing it as CRASHED: the fold, the
decision, the ``with`` block, and a real worker process stopped by SIGTERM."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import log_commits

import schedy
from schedy.core import decide
from schedy.core import events as ev
from schedy.core.check import find_double_claims
from schedy.core.codec import Commit
from schedy.core.state import apply, oldest_queued
from schedy.errors import Preempted, UnsafeUpdateError


def manual_state(jobs):
    made = decide.create_experiment(
        None, name="q", kind="manual", params={"scheduler": {"Manual": {}}}, status=ev.RUNNING, seed=1
    )
    state = apply(None, Commit(1, 0.0, "w", made.events))
    for v, i in enumerate(range(jobs), start=2):
        d = decide.add_job(state, name="q", hyperparameters={"i": i}, status=ev.QUEUED, results={})
        state = apply(state, Commit(v, 0.0, "w", d.events))
    return state


def commit(state, decision):
    return apply(state, Commit(state.version + 1, 0.0, "w", decision.events))


def test_a_released_job_goes_to_the_front_of_the_queue_with_its_results_and_no_holder():
    state = manual_state(3)
    for taken in range(2):  # w1 takes job 1, w2 job 2 (a consumed slot before the head), then job 1 comes back
        d = decide.next_job(state, name="q", worker=f"w{taken + 1}", version=state.version + 1, now=0.0)
        state = commit(state, d)
    assert oldest_queued(state) == "3"
    d = decide.release_job(state, name="q", job_id="1", worker="w1", results={"ckpt": "a"}, now=1.0)
    assert d.events == [ev.job_released("1", "w1", {"ckpt": "a"})]
    state = commit(state, d)
    job = state.jobs["1"]
    assert (job.status, job.worker, job.lease_until, job.results) == (ev.QUEUED, None, None, {"ckpt": "a"})
    assert "1" not in state.claims
    assert oldest_queued(state) == "1"  # before job 3, which never started
    d = decide.next_job(state, name="q", worker="w3", version=state.version + 1, now=2.0)
    assert d.value == "1"
    # With no consumed slot before the head (job 3 queued first), a release is put before it too.
    state = commit(state, d)
    d = decide.release_job(state, name="q", job_id="2", worker="w2", results={}, now=3.0)
    state = commit(state, d)
    assert oldest_queued(state) == "2"


def test_only_the_holder_of_a_running_job_releases_it():
    state = manual_state(2)
    state = commit(state, decide.next_job(state, name="q", worker="w1", version=state.version + 1, now=0.0))
    for job_id, worker, message in (
        ("1", "w2", "it is RUNNING, held by w1"),
        ("2", "w1", "it is QUEUED"),
    ):
        with pytest.raises(UnsafeUpdateError, match=message):
            decide.release_job(state, name="q", job_id=job_id, worker=worker, results={})


def test_a_claim_after_a_release_is_no_double_claim():
    commits = [
        Commit(1, 0.0, "a", [ev.job_claimed("1", "a")]),
        Commit(2, 0.0, "a", [ev.job_released("1", "a", {})]),
        Commit(3, 0.0, "b", [ev.job_claimed("1", "b")]),
    ]
    assert find_double_claims(commits) == []


@pytest.mark.parametrize("stop", [Preempted("told to stop"), KeyboardInterrupt(), SystemExit(143)])
def test_with_gives_the_job_back_when_the_worker_is_told_to_stop_and_a_failure_still_crashes(tmp_path, stop):
    db = schedy.SchedyDB(str(tmp_path / "db"))
    exp = db.add_experiment(schedy.ManualSearch("q"))
    for i in range(2):
        exp.add_job({"i": i})
    with pytest.raises(type(stop)):
        with exp.next_job() as job:
            job.results["checkpoint"] = "epoch-3"
            raise stop
    again = exp.get_job(job.job_id)
    assert (again.status, again.results) == ("QUEUED", {"checkpoint": "epoch-3"})
    assert exp.next_job().job_id == job.job_id  # at once, before the job that never started
    with pytest.raises(ValueError):
        with exp.next_job() as other:
            raise ValueError("a bug in the training code")
    assert exp.get_job(other.job_id).status == "CRASHED"


WORKER = textwrap.dedent(
    """
    import json, sys, time
    import schedy
    from schedy import preemption
    from schedy.errors import Preempted

    preemption.release_on_signals()
    exp = schedy.SchedyDB(sys.argv[1], worker="preempted").get_experiment("q")
    try:
        with exp.next_job() as job:
            try:
                print(json.dumps({"started": job.job_id}), flush=True)
                while True:  # training, until the cluster says stop
                    time.sleep(0.01)
            except Preempted:
                job.results["checkpoint"] = "saved in the grace period"
                raise
    except Preempted:
        print(json.dumps({"stopped": preemption.stop_requested()}), flush=True)
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_a_worker_process_stopped_by_a_signal_releases_its_job_to_the_next_at_once(tmp_path, signum):
    path = str(tmp_path / "db")
    db = schedy.SchedyDB(path)
    exp = db.add_experiment(schedy.ManualSearch("q"))
    for i in range(3):
        exp.add_job({"i": i})
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        started = json.loads(proc.stdout.readline())["started"]  # waits for the job to be claimed and running
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1]) == {"stopped": signal.Signals(signum).name}
    job = exp.get_job(started)
    assert (job.status, job.results) == ("QUEUED", {"checkpoint": "saved in the grace period"})
    # Another worker gets it at once: no lease had to lapse, and no claim was doubled.
    assert schedy.SchedyDB(path, worker="next").get_experiment("q").next_job().job_id == started
    commits = log_commits(db, "q")
    assert [e["type"] for c in commits for e in c.events].count(ev.JOB_RELEASED) == 1
    assert find_double_claims(commits) == []
    assert not any(e["type"] == ev.JOB_LEASE_EXPIRED for c in commits for e in c.events)


# -- a stop signal while the worker claims its job --------------------------------------------------------------


@pytest.fixture
def stop_signals(monkeypatch):
    """release_on_signals() in this process, as a worker calls it, for one test; the handlers restored after."""
    from schedy import preemption

    monkeypatch.setattr(preemption, "_received", [])
    previous = preemption.release_on_signals((signal.SIGUSR1,))
    yield
    for s, handler in previous.items():
        signal.signal(s, handler)


class SignalAtCall:
    """A clock (wall or monotonic) that sends this process SIGUSR1 on its ``at``-th call once armed; counts calls."""

    def __init__(self, clock, at=None):
        self.clock, self.at, self.calls, self.armed = clock, at, 0, False

    def __call__(self):
        if self.armed:
            self.calls += 1
            if self.calls == self.at:
                os.kill(os.getpid(), signal.SIGUSR1)  # handled at once, inside the claim
        return self.clock()


def claim_with_a_signal(path, which, at):
    """``with exp.next_job() as job:`` on ``path`` by a worker, with SIGUSR1 sent on call ``at`` of clock
    ``which`` between the call and the block's first line (the claim, then the block's start); return (the job
    trained, or what was raised, and the number of calls of that clock)."""
    clocks = {"clock": SignalAtCall(time.time), "monotonic": SignalAtCall(time.monotonic)}
    clocks[which].at = at
    exp = schedy.SchedyDB(path, worker="w", **clocks).get_experiment("q")
    exp.all_jobs()  # the log read before: what the worker had seen when it asked
    clocks[which].armed = True
    try:
        with exp.next_job() as job:
            clocks[which].armed = False
            job.results["loss"] = 0.5
        outcome = job
    except Preempted as e:
        outcome = e
    clocks[which].armed = False
    return outcome, clocks[which].calls


@pytest.mark.parametrize("which", ["clock", "monotonic"])
def test_a_stop_signal_anywhere_in_the_claim_gives_the_claimed_job_back(tmp_path, stop_signals, which):
    """Wherever the signal lands between next_job() and the first line of the `with` block, the job claimed (if
    any) is given back and Preempted raised: never a job RUNNING for a worker that stopped, waiting for its lease
    to lapse."""
    from schedy import preemption

    # How many times the claim and the block's start read that clock: each call is one place the signal may land.
    probe = tmp_path / "probe"
    schedy.SchedyDB(str(probe)).add_experiment(schedy.ManualSearch("q", lease=600)).add_job({"x": 0})
    outcome, calls = claim_with_a_signal(str(probe), which, at=0)
    assert isinstance(outcome, schedy.Job) and outcome.status == schedy.Job.DONE and calls >= 2
    for at in range(1, calls + 1):
        preemption._received.clear()
        path = str(tmp_path / f"at{at}")
        db = schedy.SchedyDB(path)
        db.add_experiment(schedy.ManualSearch("q", lease=600)).add_job({"x": 0})
        outcome, _ = claim_with_a_signal(path, which, at)
        assert isinstance(outcome, Preempted) and "SIGUSR1" in str(outcome), (at, outcome)
        job = db.get_experiment("q").get_job("1")
        assert (job.status, job.results) == (schedy.Job.QUEUED, {}), (at, job)  # given back, or never claimed
        events = [e["type"] for c in log_commits(db, "q") for e in c.events]
        assert events.count(ev.JOB_CLAIMED) == events.count(ev.JOB_RELEASED) <= 1, (at, events)
        assert preemption._claiming == 0 and not preemption._pending


def test_a_stop_signal_as_the_claimed_job_is_made_gives_it_back(tmp_path, stop_signals, monkeypatch):
    """After the last write of the claim, before next_job() returns: the job is given back all the same."""
    from schedy.adapters.api import Job

    made = Job._from_state

    def signalled(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGUSR1)
        return made(*args, **kwargs)

    path = str(tmp_path / "db")
    db = schedy.SchedyDB(path)
    db.add_experiment(schedy.ManualSearch("q", lease=600)).add_job({"x": 0})
    exp = schedy.SchedyDB(path, worker="w").get_experiment("q")
    with monkeypatch.context() as m, pytest.raises(Preempted, match="SIGUSR1"):
        m.setattr(Job, "_from_state", staticmethod(signalled))
        exp.next_job()
    assert db.get_experiment("q").get_job("1").status == schedy.Job.QUEUED


def test_a_stop_signal_during_a_claim_that_finds_no_job_still_stops_the_worker(tmp_path, stop_signals):
    path = str(tmp_path / "db")
    schedy.SchedyDB(path).add_experiment(schedy.ManualSearch("q", lease=600))  # no job to hand out
    outcome, calls = claim_with_a_signal(path, "clock", at=1)
    assert calls >= 1 and isinstance(outcome, Preempted), outcome
    assert isinstance(outcome.__cause__, schedy.errors.NoJobError)
