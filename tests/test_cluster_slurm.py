"""The Slurm recipe of docs/clusters.md, run on a one-node Slurm (tests/slurm.py) as users run it.

An array of 4 tasks, each the page's ``worker.sbatch`` running its ``worker.py``, drains a manual queue and
then a PBT on a local-directory database. Every task first holds a job while the others hold theirs (so no
task drains the search before the others start); two tasks keep their job until the cluster stops them: one
with ``scancel --signal=TERM``, one at its time limit. Every job must end DONE exactly once, the stopped
tasks' jobs given back (``JobReleased``, not CRASHED) and finished by the other tasks, with no lease lapsed
and no claim doubled. The time limit is Slurm's own (it checks limits on a timer: up to a minute and a half
for a one-minute limit), so these tests wait for the cluster, never for a fixed time.
"""

import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import browser
import pytest
import recipes
import slurm
from conftest import log_commits

import schedy
from schedy.core import events as ev
from schedy.core.check import find_double_claims
from schedy.pbt import MINIMIZE, Perturb, Truncate
from schedy.random import LogUniform

TASKS = 4

# The test's train.py (the recipe's worker.py imports it). A task's first job waits until every task holds
# one; a task named in HOLD_TASKS then keeps that job, reporting `held_by` so that the test sees it, until a
# signal stops the worker.
TRAIN = """\
import os
import time
from pathlib import Path

MEET = Path(os.environ["MEET_DIR"])
first = []


def train(job):
    task = os.environ["SLURM_ARRAY_TASK_ID"]
    if not first:
        first.append(job.job_id)
        (MEET / task).touch()
        while len(os.listdir(MEET)) < int(os.environ["MEET_TASKS"]):
            time.sleep(0.01)
        if task in os.environ["HOLD_TASKS"].split(","):
            job.results["held_by"] = task
            job.put()
            end = time.monotonic() + 1800  # only if the test never stops it: a stray process ends
            while time.monotonic() < end:
                time.sleep(0.05)
            raise SystemExit(f"task {task} was never stopped")
    job.results["finished_by"] = task
    if "lr" in job.hyperparameters:  # a PBT segment: continue the parent's model, save a new one
        start = job.results.get("model_path")
        value = float(Path(start).read_text()) if start else 1.0
        value *= 1 - job.hyperparameters["lr"]
        path = Path(os.environ["CHECKPOINTS"]) / f"{job.job_id}.txt"
        path.write_text(repr(value))
        job.results["start_path"] = start
        job.results["model_path"] = str(path)
        job.results["loss"] = value
    else:
        job.results["loss"] = (job.hyperparameters["x"] - 3) ** 2
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        browser.unavailable("the one-node Slurm runs its daemons as root")
    try:
        slurm.ensure_installed()
    except browser.Unavailable as e:
        browser.unavailable(str(e))
    c = slurm.Cluster(tmp_path_factory.mktemp("slurm"))
    try:
        try:
            c.start()
        except browser.Unavailable as e:
            browser.unavailable(str(e))
        yield c
    finally:
        c.stop()  # also after a start that failed half-way


def submit(cluster, workdir, experiment, hold, *options):
    """Submit the recipe's array for ``experiment`` from ``workdir``; tasks ``hold`` keep their first job."""
    recipes.write(workdir, "worker.py", "worker.sbatch")
    (workdir / "train.py").write_text(TRAIN, encoding="utf-8")
    for d in ("meet", "checkpoints"):
        (workdir / d).mkdir()
    env = dict(
        cluster.env,
        SCHEDY_DB=str(workdir / "db"),
        MEET_DIR=str(workdir / "meet"),
        MEET_TASKS=str(TASKS),
        HOLD_TASKS=",".join(str(t) for t in hold),
        CHECKPOINTS=str(workdir / "checkpoints"),
        PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],  # `python` is this one
    )
    done = cluster.run("sbatch", "--parsable", *options, "worker.sbatch", experiment, cwd=workdir, env=env)
    return done.stdout.strip().split(";")[0]


def wait_for(what, condition, cluster, workdir, timeout=600):
    """Return once ``condition()`` is true; fail naming ``what``, with the cluster's and tasks' logs, after
    ``timeout`` seconds (a safety net: Slurm decides on timers of its own, up to a minute and a half)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            outputs = "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(workdir.glob("schedy-*.out")))
            pytest.fail(f"{what}: not within {timeout} s\n{outputs}\n{cluster.logs()}")
        time.sleep(0.2)


def holding(exp, tasks):
    """True once a task of ``tasks`` holds a job it reported ``held_by`` on, for each of them."""
    return {j.results.get("held_by") for j in exp.all_jobs() if j.status == schedy.Job.RUNNING} >= set(tasks)


def finished(cluster, array):
    return cluster.run("squeue", "-h", "-j", array).stdout.strip() == ""


def check_the_log(db, name, array, stopped):
    """Every job DONE exactly once, the ``stopped`` tasks' jobs given back and finished by the others."""
    exp = db.get_experiment(name)
    jobs = exp.all_jobs()
    assert [j for j in jobs if j.status != schedy.Job.DONE] == []
    commits = log_commits(db, name)
    events = [e for c in commits for e in c.events]
    assert find_double_claims(commits) == []
    assert not any(e["type"] == ev.JOB_LEASE_EXPIRED for e in events)
    done = Counter(e["job"] for e in events if e["type"] == ev.JOB_UPDATED and e.get("status") == ev.DONE)
    assert sorted(done) == sorted(j.job_id for j in jobs) and set(done.values()) == {1}
    released = {e["job"]: e["worker"] for e in events if e["type"] == ev.JOB_RELEASED}
    assert sorted(released.values()) == sorted(f"slurm-{array}_{t}.0" for t in stopped)
    for job_id, worker in released.items():
        job = exp.get_job(job_id)
        assert worker == f"slurm-{array}_{job.results['held_by']}.0"
        assert job.results["finished_by"] not in {str(t) for t in stopped}, job.results
    return exp, jobs


def task_exit(cluster, array, task):
    """The exit status of task ``task`` of ``array`` (its batch step: srun's, which is the worker's)."""
    return int(cluster.job(f"{array}_{task}")["ExitCode"].split(":")[0])


def test_an_array_drains_a_queue_while_one_task_is_cancelled_and_one_reaches_its_time_limit(cluster, tmp_path):
    db = schedy.SchedyDB(str(tmp_path / "db"))
    exp = db.add_experiment(schedy.ManualSearch("queue", lease=600))  # no lease can lapse on a slow machine
    for x in range(12):
        exp.add_job({"x": x})
    array = submit(cluster, tmp_path, "queue", hold=(0, 1))
    wait_for("tasks 0 and 1 each hold a job", lambda: holding(exp, {"0", "1"}), cluster, tmp_path)

    cluster.run("scancel", "--signal=TERM", f"{array}_0")
    # A time limit a minute or two away: Slurm sends the recipe's --signal=B:USR1@60 at its next check, well
    # before the limit's own SIGTERM, however long the task has run already.
    ran = sum(int(n) * f for n, f in zip(reversed(cluster.job(f"{array}_1")["RunTime"].split(":")), (1, 60, 3600)))
    cluster.run("scontrol", "update", f"JobId={array}_1", f"TimeLimit={ran // 60 + 2}")
    wait_for("the array ends", lambda: finished(cluster, array), cluster, tmp_path)

    exp, jobs = check_the_log(db, "queue", array, stopped=(0, 1))
    assert len(jobs) == 12 and sorted(j.results["loss"] for j in jobs) == sorted((x - 3) ** 2 for x in range(12))
    assert task_exit(cluster, array, 0) == 128 + signal.SIGTERM
    assert task_exit(cluster, array, 1) == 128 + signal.SIGUSR1
    assert [task_exit(cluster, array, t) for t in (2, 3)] == [0, 0]
    out = (tmp_path / f"schedy-{array}_0.out").read_text()
    assert f"slurm-{array}_0.0: the worker was told to stop (SIGTERM); any job it held went back to the queue" in out
    assert "jobs done, none left for this worker" in (tmp_path / f"schedy-{array}_2.out").read_text()


def test_an_array_runs_a_pbt_while_one_task_is_cancelled_and_one_is_killed_at_its_time_limit(cluster, tmp_path):
    db = schedy.SchedyDB(str(tmp_path / "db"))
    db.add_experiment(
        schedy.PopulationBasedTraining(
            "pbt",
            MINIMIZE,
            "loss",
            Truncate(0.25),
            explore={"lr": Perturb(0.8, 1.2, high=0.5)},
            initial_distributions={"lr": LogUniform(0.01, 0.5)},
            population_size=TASKS,
            max_generations=4,
            seed=7,
            lease=600,
        )
    )
    exp = db.get_experiment("pbt")
    # Without the warning signal (SIGURG is ignored by default), the time limit itself stops task 3: SIGTERM,
    # then SIGKILL KillWait seconds later.
    array = submit(cluster, tmp_path, "pbt", (2, 3), "--signal=B:URG@60")
    wait_for("tasks 2 and 3 each hold a segment", lambda: holding(exp, {"2", "3"}), cluster, tmp_path)

    cluster.run("scancel", "--signal=TERM", f"{array}_2")
    cluster.run("scontrol", "update", f"JobId={array}_3", "TimeLimit=1")
    wait_for("the array ends", lambda: finished(cluster, array), cluster, tmp_path)

    exp, jobs = check_the_log(db, "pbt", array, stopped=(2, 3))
    assert exp.status == schedy.Experiment.DONE
    assert cluster.job(f"{array}_3")["JobState"] == "TIMEOUT"
    assert task_exit(cluster, array, 2) == 128 + signal.SIGTERM
    # Each member trained one segment per generation; every segment continued its parent's checkpoint, the
    # two given back included (their results kept the parent's model_path, not the stopped worker's).
    assert len(jobs) == TASKS * 4
    by_id = {j.job_id: j for j in jobs}
    for j in jobs:
        parent = by_id.get(j.parent_id)
        assert j.results["start_path"] == (parent.results["model_path"] if parent else None)
        assert Path(j.results["model_path"]).read_text() == repr(
            (float(Path(j.results["start_path"]).read_text()) if parent else 1.0) * (1 - j.hyperparameters["lr"])
        )
