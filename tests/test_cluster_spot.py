"""The spot-instance recipes of docs/clusters.md: the page's ``worker.py`` run under its ``spot_watch.py``, against
an emulated instance metadata service (IMDSv2, an HTTP server on loopback in this process), and its systemd unit.

The worker holds a job until the metadata announces an interruption: the watcher must then make it give the job
back (``JobReleased``, not CRASHED, no lease lapsed) and exit with 138 (128 + SIGUSR1), and another worker must
finish the job. The watcher must ask with a session token (IMDSv2), and a metadata service that fails must not
stop the worker. Nothing waits for a fixed time: the test waits for what the log and the server show.
"""

import configparser
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import recipes
from conftest import log_commits

import schedy
from schedy.core import events as ev
from schedy.core.check import find_double_claims

TOKEN_PATH = "/latest/api/token"
NOTICE_PATH = "/latest/meta-data/spot/instance-action"
TIMEOUT = 300  # seconds: only a safety net for a worker that never does what it should (the watcher looks every 5)

# The test's train.py, imported by the recipe's worker.py. With HOLD set, a worker reports that it holds its first
# job, then trains until it is stopped; a job that comes back, or any job without HOLD, is finished at once.
TRAIN = """\
import os
import time


def train(job):
    if os.environ.get("HOLD") and not job.results.get("holding"):
        job.results["holding"] = True
        job.put()
        while True:
            time.sleep(0.05)
    job.results["loss"] = job.hyperparameters["x"] ** 2
"""


class Metadata(ThreadingHTTPServer):
    """The EC2 instance metadata of a spot instance, as far as the watcher reads it.

    IMDSv2: a PUT to /latest/api/token (with a TTL header) returns a token, and a GET without a valid token is
    refused (401). spot/instance-action answers 404 until ``announce()``, then the notice. ``fail()`` makes the
    token PUT answer 500. ``answers`` lists (method, path, status) of every request, in order.
    """

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.tokens, self.answers = set(), []
        self.failing = self.announced = False
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def fail(self, failing=True):
        with self.lock:
            self.failing = failing

    def announce(self):
        with self.lock:
            self.failing, self.announced = False, True

    def statuses(self, method, path):
        with self.lock:
            return [s for m, p, s in self.answers if (m, p) == (method, path)]


class _Handler(BaseHTTPRequestHandler):
    def do_PUT(self):
        imds = self.server
        with imds.lock:
            if self.path != TOKEN_PATH or "X-aws-ec2-metadata-token-ttl-seconds" not in self.headers:
                return self._reply(400)
            if imds.failing:
                return self._reply(500)
            token = uuid.uuid4().hex
            imds.tokens.add(token)
            return self._reply(200, token)

    def do_GET(self):
        imds = self.server
        with imds.lock:
            if self.path != NOTICE_PATH:
                return self._reply(404)
            if self.headers.get("X-aws-ec2-metadata-token") not in imds.tokens:
                return self._reply(401)
            if not imds.announced:
                return self._reply(404)
            return self._reply(200, json.dumps({"action": "terminate", "time": "2026-12-07T10:22:00Z"}))

    def _reply(self, status, body=""):
        self.server.answers.append((self.command, self.path, status))  # under the server's lock
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def metadata():
    server = Metadata()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def start(workdir, command, name, **env):
    """Start ``command`` in ``workdir``, its output in files named after ``name``."""
    out, err = (open(workdir / f"{name}.{s}", "w") for s in ("out", "err"))
    with out, err:
        return subprocess.Popen(command, cwd=workdir, env=dict(os.environ, **env), stdout=out, stderr=err)


def output(workdir, name):
    return {s: (workdir / f"{name}.{s}").read_text() for s in ("out", "err")}


def wait_for(what, condition, proc, workdir, name):
    """Return once ``condition()`` is true; fail naming ``what`` if the worker exits first, or after TIMEOUT."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{what}: never happened (worker: {proc.poll()}) {output(workdir, name)}")
        time.sleep(0.05)


@pytest.mark.parametrize("failing_first", [False, True], ids=["notice", "errors-then-notice"])
def test_a_spot_interruption_notice_gives_the_job_back_before_the_shutdown(tmp_path, metadata, failing_first):
    recipes.write(tmp_path, "worker.py", "spot_watch.py")
    (tmp_path / "train.py").write_text(TRAIN, encoding="utf-8")
    path = str(tmp_path / "db")
    db = schedy.SchedyDB(path)
    exp = db.add_experiment(schedy.ManualSearch("q", lease=600))  # a lapsed lease cannot stand in for a release
    for x in range(3):
        exp.add_job({"x": x})
    metadata.fail(failing_first)

    env = {"SCHEDY_DB": path, "SPOT_METADATA_URL": metadata.url}
    spot = start(tmp_path, [sys.executable, "spot_watch.py", "worker.py", "q"], "spot", HOLD="1", **env)
    try:
        held = []

        def holding():
            held[:] = [j for j in exp.all_jobs() if j.results.get("holding") and j.status == schedy.Job.RUNNING]
            return held

        wait_for("the worker holds its job", holding, spot, tmp_path, "spot")
        # The watcher has looked, and found no notice (or no answer): the notice comes while the job is held.
        method, url = ("PUT", TOKEN_PATH) if failing_first else ("GET", NOTICE_PATH)
        looked = 500 if failing_first else 404
        wait_for("the watcher looks", lambda: looked in metadata.statuses(method, url), spot, tmp_path, "spot")
        metadata.announce()
        spot.wait(timeout=TIMEOUT)
    finally:
        if spot.poll() is None:
            spot.kill()
            spot.wait()
    said = output(tmp_path, "spot")
    assert spot.returncode == 128 + signal.SIGUSR1, said
    assert "any job it held went back to the queue" in said["out"]
    assert "spot_watch: this instance will terminate" in said["err"]
    assert said["err"].count("spot_watch: no answer from") == (1 if failing_first else 0), said["err"]

    # IMDSv2: every look asked for a token first, and the notice was read with one.
    assert metadata.statuses("PUT", TOKEN_PATH).count(200) >= 1
    assert 401 not in metadata.statuses("GET", NOTICE_PATH) and metadata.statuses("GET", NOTICE_PATH)[-1] == 200

    (job,) = held
    back = exp.get_job(job.job_id)
    assert (back.status, back.results) == (schedy.Job.QUEUED, {"holding": True})
    events = [e for c in log_commits(db, "q") for e in c.events]
    assert [e["job"] for e in events if e["type"] == ev.JOB_RELEASED] == [job.job_id]

    # Another worker takes it at once, before the jobs that never started, and finishes the search.
    other = start(tmp_path, [sys.executable, "worker.py", "q"], "other", **env)
    other.wait(timeout=TIMEOUT)
    assert other.returncode == 0, output(tmp_path, "other")
    jobs = exp.all_jobs()
    assert [(j.status, j.results.get("loss")) for j in jobs] == [
        (schedy.Job.DONE, j.hyperparameters["x"] ** 2) for j in jobs
    ]
    assert exp.get_job(job.job_id).results["holding"] is True
    commits = log_commits(db, "q")
    events = [e for c in commits for e in c.events]
    claims = [e["job"] for e in events if e["type"] == ev.JOB_CLAIMED]
    assert claims == [job.job_id, job.job_id, *sorted({j.job_id for j in jobs} - {job.job_id}, key=int)]
    assert find_double_claims(commits) == []
    assert not any(e["type"] == ev.JOB_LEASE_EXPIRED for e in events)
    assert not any(e.get("status") == ev.CRASHED for e in events)


def test_a_notice_there_before_the_worker_handles_sigusr1_still_stops_it_cleanly(tmp_path, metadata):
    """The watcher signals only once the worker handles SIGUSR1: earlier, the signal would kill it outright."""
    recipes.write(tmp_path, "worker.py", "spot_watch.py")
    (tmp_path / "train.py").write_text(TRAIN, encoding="utf-8")
    path = str(tmp_path / "db")
    exp = schedy.SchedyDB(path).add_experiment(schedy.ManualSearch("q", lease=600))
    exp.add_job({"x": 1})
    metadata.announce()
    env = {"SCHEDY_DB": path, "SPOT_METADATA_URL": metadata.url, "HOLD": "1"}
    spot = start(tmp_path, [sys.executable, "spot_watch.py", "worker.py", "q"], "spot", **env)
    try:
        spot.wait(timeout=TIMEOUT)
    finally:
        if spot.poll() is None:
            spot.kill()
            spot.wait()
    said = output(tmp_path, "spot")
    assert spot.returncode == 128 + signal.SIGUSR1, said  # not -SIGUSR1: killed before it could give a job back
    assert "any job it held went back to the queue" in said["out"]
    # Stopped at once, while it claimed or held its job: whatever it claimed, it gave back.
    assert [j.status for j in exp.all_jobs()] == [schedy.Job.QUEUED]
    events = [e["type"] for c in log_commits(schedy.SchedyDB(path), "q") for e in c.events]
    assert events.count(ev.JOB_CLAIMED) == events.count(ev.JOB_RELEASED)


def test_the_service_runs_the_watcher_and_is_not_restarted_after_giving_its_job_back(tmp_path):
    text = recipes.recipe("schedy-worker.service")
    unit = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",), comment_prefixes=("#",))
    unit.optionxform = str  # systemd's keys are case-sensitive
    unit.read_string(text)
    service = unit["Service"]
    command = shlex.split(service["ExecStart"])
    assert os.path.isabs(command[0]) and command[1:3] == ["spot_watch.py", "worker.py"] and len(command) == 4
    assert os.path.isabs(service["WorkingDirectory"])
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) < 30  # Google Cloud powers off a Spot VM 30 s after its shutdown began
    assert service["Restart"] == "on-failure"
    assert {str(128 + signal.SIGUSR1), str(128 + signal.SIGTERM)} <= set(service["SuccessExitStatus"].split())
    # Not restarted after a stop (it gave its job back on a VM about to go), nor after 0 (no job left).
    assert {str(128 + signal.SIGUSR1), str(128 + signal.SIGTERM)} <= set(service["RestartPreventExitStatus"].split())
    assert "network-online.target" in unit["Unit"]["After"].split()  # stopped before the network at shutdown
    if shutil.which("systemd-analyze") is None:
        return
    # systemd's own parser: an unknown key or a bad value is reported (and ignored) there, not refused.
    (tmp_path / "schedy-worker.service").write_text(text, encoding="utf-8")
    verify = ["systemd-analyze", "verify", str(tmp_path / "schedy-worker.service")]
    checked = subprocess.run(verify, capture_output=True, text=True, timeout=120)
    complaints = [
        line
        for line in (checked.stdout + checked.stderr).splitlines()
        if f"Command {command[0]} is not executable" not in line  # the recipe's path, not made here
    ]
    assert complaints == []
