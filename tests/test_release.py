"""A worker told to stop gives its job back (``JobReleased``) instead of losing it as CRASHED: the fold, the
decision, the ``with`` block, and a real worker process stopped by SIGTERM."""

import json
import signal
import subprocess
import sys
import textwrap

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
