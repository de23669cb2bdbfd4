"""The Ray recipe of docs/clusters.md, run as users run it: ``python ray_search.py`` starts a Ray on this machine,
whose tasks run the page's ``worker.py`` on an ``s3://`` database (the moto server of tests/conftest.py).

A task stopped while it holds a job must give the job back (``JobReleased``, with a lease no test can outlast)
and another task must finish it: every task at once when the driver is stopped (it cancels them with
``ray.cancel``), and one task whose worker process gets SIGTERM. Nothing waits for a fixed time: the test waits
for what the log shows.
"""

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter

import browser
import pytest
import recipes
from conftest import log_commits, new_bucket

import schedy
from schedy.core import events as ev
from schedy.core.check import find_double_claims

TIMEOUT = 300  # seconds: only a safety net for a driver or task that never does what it should
STOPPED = "stopped: the workers were cancelled and gave their jobs back"

# The test's train.py, imported by the recipe's worker.py. A job with "hold" reports that it holds it, with the
# pid of the Ray worker process running it, then trains until it is stopped; a job that comes back, or any other
# job, is finished at once.
TRAIN = """\
import os
import time


def train(job):
    if job.hyperparameters["hold"] and "pid" not in job.results:
        job.results["pid"] = os.getpid()
        job.put()
        while True:
            time.sleep(0.05)
    job.results["loss"] = job.hyperparameters["x"] ** 2
"""

# As a script's background job starts it (`python ray_search.py sweep 8 &`): with SIGINT ignored, which the Ray it
# starts passes on to its worker processes. ray.cancel() must stop the tasks all the same.
SIGINT_IGNORED = ["sh", "-c", 'trap "" INT; exec "$@"', "sh"]


@pytest.fixture
def ray_tmp():
    """A directory for the Ray of one test (its sockets and logs), removed afterwards; skip without Ray."""
    if importlib.util.find_spec("ray") is None:
        browser.unavailable("ray is not installed (pip install -e '.[test]')")
    path = tempfile.mkdtemp(prefix="schedy-ray-")  # not under tmp_path: a Unix socket's path has at most 107 bytes
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def search(ray_tmp, tmp_path, s3_endpoint):
    """The recipe's files and the test's train.py in tmp_path, an experiment on a fresh bucket, and the
    environment of the driver."""
    recipes.write(tmp_path, "worker.py", "ray_search.py")
    (tmp_path / "train.py").write_text(TRAIN, encoding="utf-8")
    url = f"s3://{new_bucket(s3_endpoint)}/db"
    db = schedy.SchedyDB(url)
    exp = db.add_experiment(schedy.ManualSearch("sweep", lease=600))  # only a release can give a job back here
    env = dict(
        os.environ,  # with the AWS_* variables of the S3 server, which Ray's worker processes inherit
        SCHEDY_DB=url,
        RAY_ADDRESS="local",  # a Ray of the driver's own, even if `ray start` runs one on this machine
        RAY_TMPDIR=ray_tmp,
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # it listens on 127.0.0.1 only
        RAY_AUTH_MODE="disabled",  # no token written into ~/.ray
        RAY_USAGE_STATS_ENABLED="0",  # nothing reported to Ray's servers
        RAY_OVERRIDE_RESOURCES='{"CPU": 2}',  # the two tasks run at once, however many CPUs this machine has
    )
    return tmp_path, db, exp, env


class Driver:
    """``python ray_search.py sweep 2`` in its own process group, its output in files named after ``name``."""

    def __init__(self, workdir, env, name, prefix=()):
        self.workdir, self.name = workdir, name
        out, err = (open(workdir / f"{name}.{s}", "w") for s in ("out", "err"))
        with out, err:
            self.proc = subprocess.Popen(
                [*prefix, sys.executable, "ray_search.py", "sweep", "2"],
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    def output(self):
        return {s: (self.workdir / f"{self.name}.{s}").read_text() for s in ("out", "err")}

    def wait_for(self, what, condition):
        """Return ``condition()`` once it is true; fail naming ``what`` if the driver ends first, or after TIMEOUT."""
        deadline = time.monotonic() + TIMEOUT
        while not (found := condition()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{what}: never happened (driver: {self.proc.poll()}) {self.output()}")
            time.sleep(0.1)
        return found

    def wait(self):
        try:
            return self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the driver did not end in {TIMEOUT} s: {self.output()}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        # The driver's group holds the Ray it started; its worker processes, in groups of their own, exit when
        # their raylet is gone. Killed even after the driver ended, for what a failed driver left behind.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def holding(exp, count):
    """The jobs running with the pid of the task that holds them, once there are ``count``; else None."""
    held = [j for j in exp.all_jobs() if j.status == schedy.Job.RUNNING and "pid" in j.results]
    return held if len(held) == count else None


def events_of(commits, kind):
    """(worker, event) for each event of type ``kind`` in ``commits``, in order."""
    return [(c.worker, e) for c in commits for e in c.events if e["type"] == kind]


def check_every_job_done_once(db, exp):
    """Every job DONE exactly once, with its result; each job given back finished by another worker than the one
    that gave it back; no lease lapsed, nothing CRASHED, no claim doubled. Return the log's commits."""
    jobs = exp.all_jobs()
    expected = [(schedy.Job.DONE, j.hyperparameters["x"] ** 2) for j in jobs]
    assert [(j.status, j.results["loss"]) for j in jobs] == expected
    commits = log_commits(db, "sweep")
    done = [(w, e["job"]) for w, e in events_of(commits, ev.JOB_UPDATED) if e.get("status") == ev.DONE]
    assert Counter(job for _, job in done) == {j.job_id: 1 for j in jobs}
    finished_by = {job: w for w, job in done}
    for _, e in events_of(commits, ev.JOB_RELEASED):
        assert finished_by[e["job"]] != e["worker"], f"job {e['job']} was finished by the worker that gave it back"
    assert find_double_claims(commits) == []
    assert events_of(commits, ev.JOB_LEASE_EXPIRED) == []
    assert not any(e.get("status") == ev.CRASHED for _, e in events_of(commits, ev.JOB_UPDATED))
    return commits


def test_a_stopped_driver_cancels_its_tasks_and_each_gives_back_the_job_it_held(search):
    workdir, db, exp, env = search
    for x in range(4):
        exp.add_job({"x": x, "hold": x < 2})  # each of the two tasks takes one of the first two and holds it

    with Driver(workdir, env, "stopped", prefix=SIGINT_IGNORED) as driver:
        held = driver.wait_for("both tasks hold a job", lambda: holding(exp, 2))
        driver.proc.send_signal(signal.SIGTERM)  # as `ray job stop` does
        status = driver.wait()
    said = driver.output()
    assert status == 1, said
    assert STOPPED in said["err"], said
    commits = log_commits(db, "sweep")
    claimed = {e["job"]: e["worker"] for _, e in events_of(commits, ev.JOB_CLAIMED)}
    assert claimed.keys() == {j.job_id for j in held}  # the other jobs were never started
    released = {e["job"]: e["worker"] for _, e in events_of(commits, ev.JOB_RELEASED)}
    assert released == claimed  # each by the task that held it
    for job in held:
        back = exp.get_job(job.job_id)
        assert (back.status, back.results) == (schedy.Job.QUEUED, {"pid": job.results["pid"]})

    # The search started again: its new tasks take the jobs given back first, and finish every job.
    with Driver(workdir, env, "again") as driver:
        status = driver.wait()
    said = driver.output()
    assert status == 0, said
    done = re.findall(r"^worker [01]: (\d+) jobs done$", said["out"], re.M)
    assert len(done) == 2 and sum(map(int, done)) == 4, said
    commits = check_every_job_done_once(db, exp)
    claims = [e["job"] for _, e in events_of(commits, ev.JOB_CLAIMED)]
    assert sorted(claims[2:4]) == sorted(j.job_id for j in held), claims


def test_a_task_whose_worker_process_gets_sigterm_gives_its_job_back_to_another_task(search):
    workdir, db, exp, env = search
    for x in range(4):
        exp.add_job({"x": x, "hold": x == 0})  # one task holds the first job, the other does the rest

    with Driver(workdir, env, "sigterm") as driver:
        (job,) = driver.wait_for("a task holds the first job", lambda: holding(exp, 1))
        os.kill(job.results["pid"], signal.SIGTERM)  # Ray's handler raises SystemExit in the task
        status = driver.wait()
    said = driver.output()
    assert status == 1, said  # one worker did not end normally
    ended = re.findall(r"^worker [01]: (.*)$", said["out"], re.M)
    assert len(ended) == 2 and [e for e in ended if e.endswith("jobs done")] == ["4 jobs done"], said
    commits = check_every_job_done_once(db, exp)
    (released,) = [e for _, e in events_of(commits, ev.JOB_RELEASED)]
    holder = next(e["worker"] for _, e in events_of(commits, ev.JOB_CLAIMED) if e["job"] == job.job_id)
    assert (released["job"], released["worker"]) == (job.job_id, holder)
    assert released["results"] == {"pid": job.results["pid"]}  # given back as it was when stopped
