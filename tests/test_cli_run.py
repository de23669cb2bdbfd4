"""``schedy run``: the installed executable pulls jobs and runs tests/_train_script.py for each.

Experiments are made and checked through the Python API; ``schedy run`` runs
in a real subprocess (the ``cli`` fixture, or Popen when a test must act
while it runs). The parsing of results blocks is also tested directly.
"""

import json
import os
import pty
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import SCHEDY_EXE, log_commits, log_size

import schedy
from schedy.cli.run import BlockScanner, ResultsError, expand, parse_block
from schedy.core import events as ev
from schedy.core.check import find_double_claims
from schedy.pbt import MINIMIZE, Perturb, Truncate
from schedy.random import Uniform

PY = sys.executable
SCRIPT = str(Path(__file__).with_name("_train_script.py"))
NOISE = "epoch 1: this line is noise, and so is the next one"


def manual(cli, name, *jobs):
    """A manual experiment in the cli's database, with ``jobs`` (hyperparameter dicts) queued."""
    exp = schedy.SchedyDB(cli.db).add_experiment(schedy.ManualSearch(name))
    for hps in jobs:
        exp.add_job(hps)
    return exp


def statuses(exp):
    return [j.status for j in exp.all_jobs()]


def spawn(cli, *args, **kw):
    """Start ``schedy ARGS...`` like the cli fixture does, without waiting; text pipes for stdout and stderr."""
    env = dict(os.environ, SCHEDY_DB=cli.db, COLUMNS="200", PYTHONIOENCODING="utf-8")
    return subprocess.Popen(
        [SCHEDY_EXE, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=os.path.dirname(cli.db),
        **kw,
    )


class Lines:
    """The lines of a pipe, read by a thread, so a test can wait for one with a deadline."""

    def __init__(self, pipe):
        self.queue, self.seen = queue.Queue(), []
        threading.Thread(target=self._read, args=(pipe,), daemon=True).start()

    def _read(self, pipe):
        for line in pipe:
            self.queue.put(line.rstrip("\n"))
        self.queue.put(None)

    def until(self, predicate, timeout=60):
        """Read up to the first line for which ``predicate`` holds, and return it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no such line within {timeout} s; so far: {self.seen}") from None
            if line is None:
                raise AssertionError(f"the output ended without such a line: {self.seen}")
            self.seen.append(line)
            if predicate(line):
                return line

    def rest(self, timeout=60):
        """Every line read, once the pipe is closed."""
        try:
            self.until(lambda line: False, timeout)
        except AssertionError as e:
            if "ended" not in str(e):
                raise
        return self.seen


# -- end to end -----------------------------------------------------------------------------------------------


def test_runs_every_job_and_merges_the_results(cli):
    exp = manual(cli, "e", {"x": 1.5, "y_z": 3}, {"x": -1, "skip": None})
    carried = exp.add_job({"x": 1}, results={"carried": "from before", "loss": 99})
    result = cli("run", "e", PY, SCRIPT, "train", "%h")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    jobs = exp.all_jobs()
    assert [j.status for j in jobs] == ["DONE"] * 3
    assert [j.results for j in jobs] == [
        {"loss": 0.25 + 4, "note": "a bare string"},
        {"loss": 4, "note": "a bare string"},
        {"carried": "from before", "loss": 0, "note": "a bare string"},  # merged: carried kept, loss overwritten
    ]
    assert carried.job_id == "3"

    lines = result.stdout.splitlines()
    assert re.fullmatch(r"schedy run: experiment 'e', worker \S+:\d+:[0-9a-f]+", lines[0])
    running = lines.index("job 1: running: " + shlex.join([PY, SCRIPT, "train", "--x", "1.5", "--y-z", "3"]))
    done = next(i for i, line in enumerate(lines) if line.startswith("job 1: DONE"))
    assert re.fullmatch(r"job 1: DONE in \d+\.\d s: loss=4\.25, note=a bare string", lines[done])
    assert running < lines.index(NOISE) < done  # the command's output is passed through, in its place
    assert lines.count(NOISE) == 3 and lines.count("--- RESULTS ---") == 3
    assert "job 2: running: " + shlex.join([PY, SCRIPT, "train", "--x", "-1"]) in lines  # null: left out
    assert lines[-1] == "no more jobs (experiment 'e' has no job to hand out: it has no queued job): 3 done, 0 failed"


def test_a_json_object_block_and_the_last_block_counts(cli):
    exp = manual(cli, "j", {"x": 3, "label": "a b"})
    result = cli("run", "j", PY, SCRIPT, "json", "%h")
    assert result.returncode == 0, result.stderr
    assert exp.all_jobs()[0].results == {"loss": 4, "names": ["label", "x"]}


def test_two_workers_share_an_experiment_and_no_job_is_run_twice(cli, tmp_path):
    exp = manual(cli, "shared", *({"x": i} for i in range(12)))
    # --barrier: each worker's first job waits until the other worker runs one too, so both do some work.
    command = ["run", "shared", PY, SCRIPT, "train", "--sleep", "0.05", "--barrier", tmp_path / "barrier", "%h"]
    procs = [spawn(cli, *command) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]

    jobs = exp.all_jobs()
    assert [j.status for j in jobs] == ["DONE"] * 12
    assert [j.results["loss"] for j in jobs] == [(i - 1) ** 2 for i in range(12)]
    commits = log_commits(schedy.SchedyDB(cli.db), "shared")
    assert find_double_claims(commits) == []
    done = Counter(
        e["job"] for c in commits for e in c.events if e["type"] == ev.JOB_UPDATED and e.get("status") == ev.DONE
    )
    assert done == Counter({str(i): 1 for i in range(1, 13)})
    claims = {e["job"]: e["worker"] for c in commits for e in c.events if e["type"] == ev.JOB_CLAIMED}
    assert len(claims) == 12

    # Each worker's output names its worker id and the jobs it ran: those it claimed in the log, and only those.
    ran = []
    for out, _ in outputs:
        worker = re.match(r"schedy run: experiment 'shared', worker (\S+)\n", out).group(1)
        mine = set(re.findall(r"^job (\d+): DONE", out, re.M))
        assert mine and mine == {job for job, w in claims.items() if w == worker}
        ran.append(mine)
    assert len(set(claims.values())) == 2 and ran[0].isdisjoint(ran[1])


def test_a_random_search_runs_as_many_jobs_as_asked(cli):
    exp = schedy.SchedyDB(cli.db).add_experiment(schedy.RandomSearch("rs", {"x": Uniform(0, 2)}, seed=3))
    result = cli("run", "--max-jobs", 3, "rs", PY, SCRIPT, "train", "%h")
    assert result.returncode == 0, result.stderr
    jobs = exp.all_jobs()
    assert [j.status for j in jobs] == ["DONE"] * 3
    assert all(j.results["loss"] == (j.hyperparameters["x"] - 1) ** 2 for j in jobs)
    assert result.stdout.splitlines()[-1] == "stopped after 3 jobs: 3 done, 0 failed"


def test_once_runs_one_job_and_an_empty_queue_is_success(cli):
    exp = manual(cli, "q", {"x": 1}, {"x": 2}, {"x": 3})
    once = cli("run", "--once", "--worker", "slurm-4711", "q", PY, SCRIPT, "train", "%h")
    assert once.returncode == 0, once.stderr
    assert statuses(exp) == ["DONE", "QUEUED", "QUEUED"]
    assert {c.worker for c in exp.history("1")[1:]} == {"slurm-4711"}  # the claim and the report
    assert once.stdout.splitlines()[-1] == "stopped after 1 job: 1 done, 0 failed"
    assert cli("run", "q", PY, SCRIPT, "train", "%h").returncode == 0
    assert statuses(exp) == ["DONE"] * 3
    again = cli("run", "--once", "q", PY, SCRIPT, "train", "%h")
    assert again.returncode == 0 and again.stderr == ""
    assert again.stdout.splitlines()[1:] == [
        "no more jobs (experiment 'q' has no job to hand out: it has no queued job): 0 done, 0 failed"
    ]


# -- placeholders and environment ----------------------------------------------------------------------------


def test_placeholders_and_environment_are_expanded_exactly(cli):
    exp = manual(cli, "place")
    hps = {
        "learning_rate": 0.01,
        "layers": [512, 256],
        "name": "resnet 50",
        "augment": True,
        "dropout": False,
        "skip": None,
        "extra": {"a": 1, "b": "é"},
        "big": 1e20,
    }
    job = exp.add_job(hps, results={"carried": [1, 2]})
    # Options of the command, even --once or --help, are the command's; a relative --db is made absolute.
    result = cli(
        "run",
        "--once",
        "--db",
        "db",
        "place",
        "--",
        PY,
        SCRIPT,
        "echo",
        "--tag",
        "%e/%j/%g/%p/%m/100%%",
        "--once",
        "--help",
        "%h",
    )
    assert result.returncode == 0, result.stderr
    results = exp.get_job(job.job_id).results
    assert results["argv"] == [
        "--tag",
        "place/1////100%",
        "--once",
        "--help",
        "--learning-rate",
        "0.01",
        "--layers",
        "[512,256]",
        "--name",
        "resnet 50",
        "--augment",
        "true",
        "--dropout",
        "false",
        "--extra",
        '{"a":1,"b":"é"}',
        "--big",
        "1e+20",
    ]
    env = results["env"]
    assert json.loads(env.pop("SCHEDY_HYPERPARAMETERS")) == hps
    assert json.loads(env.pop("SCHEDY_RESULTS")) == {"carried": [1, 2]}
    assert env == {
        "SCHEDY_DB": cli.db,
        "SCHEDY_EXPERIMENT": "place",
        "SCHEDY_JOB": "1",
        "SCHEDY_GENERATION": "",
        "SCHEDY_PARENT": "",
        "SCHEDY_MEMBER": "",
        "PYTHONUNBUFFERED": os.environ.get("PYTHONUNBUFFERED", "1"),
    }
    assert results["carried"] == [1, 2]


def test_expand_fills_the_pbt_fields():
    class Exp:
        name = "p"

    job = schedy.Job("7", Exp(), {"lr": 0.5, "n_layers": 2}, generation=2, parent_id="4")
    job.member = 1
    assert expand(["%e-%j-%g-%p-%m", "%%j", "%h", "a%%%j"], job) == [
        "p-7-2-4-1",
        "%j",
        "--lr",
        "0.5",
        "--n-layers",
        "2",
        "a%7",
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["echo", "%x"], "unknown placeholder %x in '%x'"),
        (["echo", "--out=%h"], "%h must be a whole argument (it expands to several), not part of '--out=%h'"),
        (["echo", "50%"], "a lone % at the end in '50%'"),
        (["--once", "echo"], "'--once' is not a command; the options of schedy run go before NAME"),
        (["--"], "missing the command to run (CMD)"),
    ],
)
def test_a_bad_command_is_a_usage_error_before_anything_runs(cli, args, message):
    exp = manual(cli, "u", {"x": 1})
    before = log_size(schedy.SchedyDB(cli.db), "u")
    result = cli("run", "u", *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert log_size(schedy.SchedyDB(cli.db), "u") == before and statuses(exp) == ["QUEUED"]


def test_an_option_of_schedy_run_must_come_before_name(cli):
    manual(cli, "u", {"x": 1})
    result = cli("run", "--no-such-option", "u", "true")
    assert result.returncode == 2 and "No such option '--no-such-option'" in result.stderr


# -- failures -------------------------------------------------------------------------------------------------


def test_an_unknown_experiment_or_database_is_an_error(cli, tmp_path):
    manual(cli, "e")
    result = cli("run", "nope", PY, SCRIPT, "train")
    assert result.returncode == 1 and result.stderr == "Error: no experiment named 'nope'\n"
    missing = cli("run", "e", "true", env={"SCHEDY_DB": str(tmp_path / "nowhere")})
    assert missing.returncode == 1 and "there is no Schedy database at" in missing.stderr
    assert not (tmp_path / "nowhere").exists()


def test_no_results_block_crashes_the_job_and_stops(cli):
    exp = manual(cli, "n", {"x": 1}, {"x": 2})
    result = cli("run", "n", PY, SCRIPT, "none", "%h")
    assert result.returncode == 1
    assert statuses(exp) == ["CRASHED", "QUEUED"]
    assert result.stderr == (
        "Error: job 1: no results block in the command's output (print a line '--- RESULTS ---', "
        "then the results; or pass --allow-empty-results)\n"
    )
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"job 1: CRASHED in \d+\.\d s", lines[-2])
    assert lines[-1] == "stopped after a failure (--ignore-errors goes on): 0 done, 1 failed"


def test_allow_empty_results_keeps_the_results_the_job_started_with(cli):
    exp = manual(cli, "n")
    exp.add_job({"x": 1}, results={"model_path": "/m/0.pt"})
    result = cli("run", "--allow-empty-results", "n", PY, SCRIPT, "none", "%h")
    assert result.returncode == 0, result.stderr
    [job] = exp.all_jobs()
    assert job.status == "DONE" and job.results == {"model_path": "/m/0.pt"}


def test_a_malformed_block_names_the_line(cli):
    exp = manual(cli, "b", {"x": 1})
    result = cli("run", "b", PY, SCRIPT, "bad", "%h")
    assert result.returncode == 1 and statuses(exp) == ["CRASHED"]
    assert exp.all_jobs()[0].results == {}
    # Output lines: "starting ...", the noise, a stray end marker, the start marker, "loss 0.5", then line 6.
    assert result.stderr == (
        "Error: job 1: malformed results block: output line 6: 'accuracy' has no value; "
        "expected 'name value' per line, or one JSON object\n"
    )


def test_a_failing_command_crashes_the_job_and_its_block_is_ignored(cli):
    exp = manual(cli, "f", {"x": 1})
    result = cli("run", "f", PY, SCRIPT, "fail", "%h")
    assert result.returncode == 1
    assert result.stderr == "Error: job 1: the command exited with status 3\n"
    [job] = exp.all_jobs()
    assert job.status == "CRASHED" and job.results == {}


# An original-style training script: "name: value" lines, and no end marker (the block ends at the exit).
ORIGINAL_STYLE = """
import sys
print("epoch 1/1")
print("--- RESULTS ---")
print("loss: 0.25")
print("accuracy:   0.9")
print("model_path: /data/ckpt/a b.pt")
sys.exit(int(sys.argv[1]))
"""


def test_an_original_style_block_without_end_line_is_complete_at_the_exit(cli, tmp_path):
    script = tmp_path / "original.py"
    script.write_text(ORIGINAL_STYLE)
    exp = manual(cli, "o", {"x": 1}, {"x": 2})
    result = cli("run", "o", PY, script, "0")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert statuses(exp) == ["DONE", "DONE"]
    assert [j.results for j in exp.all_jobs()] == [
        {"loss": 0.25, "accuracy": 0.9, "model_path": "/data/ckpt/a b.pt"}
    ] * 2
    assert re.search(
        r"job 1: DONE in \d+\.\d s: loss=0\.25, accuracy=0\.9, model_path=/data/ckpt/a b\.pt", result.stdout
    )


def test_an_unclosed_block_of_a_failing_command_is_ignored_as_a_closed_one_is(cli, tmp_path):
    script = tmp_path / "original.py"
    script.write_text(ORIGINAL_STYLE)
    exp = manual(cli, "o")
    exp.add_job({"x": 1}, results={"model_path": "/data/ckpt/parent.pt"})
    result = cli("run", "o", PY, script, "3")
    assert result.returncode == 1
    # The exit status decides, as with a closed block: CRASHED, and the results it started with are kept.
    assert result.stderr == "Error: job 1: the command exited with status 3\n"
    [job] = exp.all_jobs()
    assert job.status == "CRASHED" and job.results == {"model_path": "/data/ckpt/parent.pt"}


def test_ignore_errors_goes_on_and_still_fails(cli):
    exp = manual(cli, "i", {"mode": "fail"}, {"x": 2}, {"mode": "none"}, {"x": 3})
    result = cli("run", "--ignore-errors", "i", PY, SCRIPT, "train", "%h")
    assert result.returncode == 1
    assert statuses(exp) == ["CRASHED", "DONE", "CRASHED", "DONE"]
    errors = result.stderr.splitlines()
    assert errors[0] == "Error: job 1: the command exited with status 3"
    assert errors[1].startswith("Error: job 3: no results block") and len(errors) == 2
    assert result.stdout.splitlines()[-1].endswith(": 2 done, 2 failed")


def test_a_command_that_cannot_start_crashes_the_job(cli, tmp_path):
    exp = manual(cli, "c", {"x": 1})
    result = cli("run", "c", "schedy-no-such-command", "%j")
    assert result.returncode == 1 and statuses(exp) == ["CRASHED"]
    assert result.stderr == (
        "Error: job 1: cannot start the command 'schedy-no-such-command': No such file or directory\n"
    )
    (tmp_path / "script").write_text("#!/bin/sh\n")  # not executable
    exp.add_job({"x": 2})
    result = cli("run", "c", tmp_path / "script")
    assert result.returncode == 1 and "Error: job 2: cannot start the command" in result.stderr
    assert result.stderr.endswith(": Permission denied\n") and statuses(exp) == ["CRASHED", "CRASHED"]


def test_a_pbt_segment_without_its_score_is_refused_and_crashed(cli):
    db = schedy.SchedyDB(cli.db)
    exp = db.add_experiment(
        schedy.PopulationBasedTraining(
            "score", MINIMIZE, "loss", Truncate(0.5), {"lr": Perturb()}, {"lr": Uniform(0.1, 0.9)}, population_size=2
        )
    )
    result = cli("run", "--allow-empty-results", "score", PY, SCRIPT, "none", "%h")
    assert result.returncode == 1 and statuses(exp) == ["CRASHED"]
    assert result.stderr.startswith("Error: job 1: results refused: ") and "'loss'" in result.stderr


def test_a_lost_job_is_reported_and_its_report_refused(cli, tmp_path):
    exp = manual(cli, "lost", {"x": 3})
    go = tmp_path / "go"
    proc = spawn(cli, "run", "lost", PY, SCRIPT, "train", "--until", go, "%h")
    out = Lines(proc.stdout)
    out.until(lambda line: line == "ready")
    job = exp.get_job("1")  # meanwhile someone decides the job is lost, and marks it so
    job.status = schedy.Job.CRASHED
    job.put(safe=False)
    go.touch()
    assert proc.wait(timeout=60) == 1
    stderr = proc.stderr.read()
    assert (
        "Error: job 1 was lost: it changed in the log while the command ran (its lease lapsed and it was handed "
        "out again, or someone marked it), so this report was refused: "
    ) in stderr
    assert any(re.fullmatch(r"job 1: lost in \d+\.\d s", line) for line in out.rest())
    [job] = exp.all_jobs()
    assert job.status == "CRASHED" and job.results == {}


# -- PBT ------------------------------------------------------------------------------------------------------


def check_pbt(exp):
    """Every segment DONE, started from its parent's checkpoint, and told its own generation, member and parent."""
    jobs = {j.job_id: j for j in exp.all_jobs()}
    assert exp.status == schedy.Experiment.DONE
    for job in jobs.values():
        assert job.status == "DONE"
        parent = jobs.get(job.parent_id)
        assert job.results["loaded"] == (parent.results["model_path"] if parent else None)
        weight = json.loads(Path(parent.results["model_path"]).read_text()) if parent else 0.0
        saved = json.loads(Path(job.results["model_path"]).read_text())
        assert saved == weight + job.hyperparameters["lr"] * (1 - weight)
        assert (job.results["generation"], job.results["member"], job.results["parent"]) == (
            str(job.generation),
            str(job.member),
            job.parent_id or "",
        )
    return jobs


def test_pbt_runs_to_the_end_passing_checkpoints_through_results(cli, tmp_path):
    db = schedy.SchedyDB(cli.db)
    exp = db.add_experiment(
        schedy.PopulationBasedTraining(
            "pbt",
            MINIMIZE,
            "loss",
            Truncate(0.5),
            {"lr": Perturb(0.8, 1.2, high=1.0)},
            {"lr": Uniform(0.1, 0.9)},
            population_size=3,
            max_generations=3,
            seed=1,
        )
    )
    (tmp_path / "ckpt").mkdir()
    result = cli("run", "pbt", PY, SCRIPT, "pbt", "--ckpt", tmp_path / "ckpt", "%h")
    assert result.returncode == 0, result.stderr
    jobs = check_pbt(exp)
    assert max(j.generation for j in jobs.values()) == 2
    later = next(j for j in jobs.values() if j.generation == 1)
    assert (
        f"job {later.job_id}: running (member {later.member}, generation 1, parent {later.parent_id}): "
        in result.stdout
    )
    assert result.stdout.splitlines()[-1].startswith("no more jobs (experiment 'pbt' is finished")


def test_pbt_waits_while_the_only_ready_member_trains_elsewhere(cli, tmp_path):
    db = schedy.SchedyDB(cli.db)
    exp = db.add_experiment(
        schedy.PopulationBasedTraining(
            "wait",
            MINIMIZE,
            "loss",
            Truncate(0.5),
            {"lr": Perturb(0.8, 1.2, high=1.0)},
            {"lr": Uniform(0.1, 0.9)},
            population_size=2,
            max_generations=2,
            seed=2,
        )
    )
    (tmp_path / "ckpt").mkdir()
    held = exp.next_job()  # this test is another worker, training the first segment of one member
    proc = spawn(cli, "run", "wait", PY, SCRIPT, "pbt", "--ckpt", tmp_path / "ckpt", "%h")
    out = Lines(proc.stdout)
    # schedy run trains the other member's first segment, then has to wait: whether that member continues or
    # copies this one depends on this one's score of generation 0.
    line = out.until(lambda line: line.startswith("waiting:"))
    other = 1 - held.member
    assert line == (
        f"waiting: member {other} finished generation 0; whether it continues or copies a better member "
        f"depends on the generation-0 score of member {held.member}, not known yet (job {held.job_id} running)"
    )
    assert proc.poll() is None
    checkpoint = tmp_path / "ckpt" / "held.json"
    checkpoint.write_text(json.dumps(held.hyperparameters["lr"]))  # what the script would have saved
    held.results.update(
        loss=(1 - held.hyperparameters["lr"]) ** 2,
        model_path=str(checkpoint),
        loaded=None,
        generation="0",
        parent="",
        member=str(held.member),
    )
    held.status = schedy.Job.DONE
    held.put()
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    jobs = check_pbt(exp)
    assert any(j.results["loaded"] == str(checkpoint) for j in jobs.values())


# -- signals --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum, group", [(signal.SIGINT, True), (signal.SIGTERM, False), (signal.SIGUSR1, False)])
def test_a_signal_stops_the_command_releases_the_job_and_stops(cli, signum, group):
    exp = manual(cli, "sig", {"x": 1}, {"x": 2})
    proc = spawn(cli, "run", "sig", PY, SCRIPT, "wait", "%h", start_new_session=True)
    out = Lines(proc.stdout)
    out.until(lambda line: line == "ready")
    if group:
        os.killpg(proc.pid, signum)  # as Ctrl-C does: to schedy's whole process group
    else:
        proc.send_signal(signum)
    assert proc.wait(timeout=60) == 128 + signum
    name = signal.Signals(signum).name
    assert out.rest().count(f"got {name}") == 1  # the command got the signal, once
    # Told to stop is not a failure: the job is given back, with the checkpoint the command reported, and is the
    # next one handed out (before job 2, which never started).
    assert statuses(exp) == ["QUEUED", "QUEUED"]
    assert exp.get_job("1").results == {"checkpoint": f"saved-at-{name}"}
    assert exp.next_job().job_id == "1"
    stderr = proc.stderr.read()
    assert f"job 1: {name} received: stopping the command" in stderr
    assert (
        f"job 1: interrupted by {name}: the command exited with status 1; released for another worker, "
        f"with its results checkpoint\n" in stderr
    )
    assert "Error:" not in stderr
    assert out.seen[-1] == f"interrupted by {name}: 0 done, 0 failed, 1 released"


def test_a_second_signal_kills_a_command_that_ignores_the_first(cli):
    exp = manual(cli, "deaf", {"x": 1})
    proc = spawn(cli, "run", "deaf", PY, SCRIPT, "deaf", "%h")
    out, err = Lines(proc.stdout), Lines(proc.stderr)
    out.until(lambda line: line == "ready")
    proc.send_signal(signal.SIGINT)
    err.until(lambda line: "SIGINT received: stopping the command" in line)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert "job 1: interrupted by SIGINT: the command was killed by SIGKILL; released for another worker" in err.rest()
    assert statuses(exp) == ["QUEUED"]


# -- display and help -----------------------------------------------------------------------------------------


def test_on_a_terminal_a_live_display_shows_the_job(cli, tmp_path):
    manual(cli, "tty", {"x": 2})
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE")}
    env.update(SCHEDY_DB=cli.db, TERM="xterm-256color", COLUMNS="200")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [SCHEDY_EXE, "run", "tty", PY, SCRIPT, "train", "--sleep", "0.3", "%h"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=tmp_path,
    )
    os.close(slave)
    screen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every holder of the terminal's other end has closed it
            break
        if not chunk:
            break
        screen += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", screen.decode("utf-8", "replace"))
    assert NOISE in text and "job 1: running: " in text and re.search(r"job 1: DONE in \d+\.\d s: loss=1", text)
    assert "job 1: x=2  [0 done, 0 failed]" in text and "0:00:00" in text  # the live display


def test_help_is_a_reference():
    result = subprocess.run(
        [SCHEDY_EXE, "run", "--help"], capture_output=True, text=True, env=dict(os.environ, COLUMNS="100")
    )
    assert result.returncode == 0
    for text in (
        "NAME [--] CMD [ARGS]...",
        "%e",
        "%j",
        "%g",
        "%p",
        "%m",
        "%%",
        "%h",
        "SCHEDY_DB",
        "SCHEDY_JOB",
        "SCHEDY_HYPERPARAMETERS",
        "SCHEDY_RESULTS",
        "SCHEDY_MEMBER",
        "--- RESULTS ---",
        "--- END RESULTS ---",
        "--once",
        "--max-jobs",
        "--allow-empty-results",
        "--ignore-errors",
        "Exit status",
        "130",
    ):
        assert text in result.stdout, text
    # Preemption beside crashes: the job given back, and the signals that do it.
    ends = " ".join(result.stdout.split("Each job ends:", 1)[1].split("Exit status", 1)[0].split())
    for text in ("DONE", "CRASHED", "released schedy run was told to stop", "front of the queue", "lost"):
        assert text in ends, text
    assert "SIGUSR1" in ends and "--signal=B:USR1" in ends and "138 for SIGUSR1" in result.stdout


# -- results blocks, directly ---------------------------------------------------------------------------------


def last_block(*lines):
    scanner = BlockScanner()
    for line in lines:
        scanner.feed(line)
    return scanner.block()


def results(*lines):
    return parse_block(last_block(*lines))


def test_name_value_lines():
    got = results(
        "--- RESULTS ---",
        "loss 0.25",
        "  layers\t[512, 256]",
        "path /a b/c.pt ",
        "ok true",
        "none null",
        "diverged nan",
        "big -inf",
        "n 3",
        'word "3"',
        "",
        "--- END RESULTS ---",
    )
    nan = got.pop("diverged")
    assert nan != nan
    assert got == {
        "loss": 0.25,
        "layers": [512, 256],
        "path": "/a b/c.pt",
        "ok": True,
        "none": None,
        "big": float("-inf"),
        "n": 3,
        "word": "3",
    }


def test_the_last_block_counts_and_an_empty_block_reports_nothing():
    assert results(
        "--- RESULTS ---", "a 1", "--- END RESULTS ---", "x", "--- RESULTS ---", "b 2", "--- END RESULTS ---"
    ) == {"b": 2}
    assert results(" --- RESULTS --- ", "", "--- END RESULTS ---\r") == {}
    assert last_block("no block", "--- END RESULTS ---") is None
    # A start marker inside an open block starts the block again.
    assert results("--- RESULTS ---", "a 1", "--- RESULTS ---", "b 2", "--- END RESULTS ---") == {"b": 2}


def test_a_json_object_over_several_lines():
    assert results("--- RESULTS ---", "{", ' "loss": NaN,', ' "a": {"b": [1]}', "}", "--- END RESULTS ---")["a"] == {
        "b": [1]
    }


@pytest.mark.parametrize(
    "lines, message",
    [
        (
            ["{", ' "loss": 1', ' "x": 2', "}"],
            "output line 4: Expecting ',' delimiter (column 2) in the JSON object: '\"x\": 2'",
        ),
        (["loss 1", "loss 2"], "output line 3: result 'loss' is given twice"),
        (["layers [1, 2"], "output line 2: the value of 'layers' is not valid JSON: 'layers [1, 2'"),
        (['name "unterminated'], "output line 2: the value of 'name' is not valid JSON"),
        (
            ["{", ' "loss": 1,', ""],
            "output line 3: Expecting property name enclosed in double quotes (column 1) in the "
            "JSON object: '\"loss\": 1,'",
        ),
        (["loss"], "output line 2: 'loss' has no value"),
    ],
)
def test_malformed_blocks_name_the_line(lines, message):
    with pytest.raises(ResultsError) as e:
        results("--- RESULTS ---", *lines, "--- END RESULTS ---")
    assert message in str(e.value)


def test_a_block_without_end_line_runs_to_the_end_of_the_output():
    # The original client's protocol: the end marker is optional, a block left open ends when the command exits.
    assert results("--- RESULTS ---", "loss 0.25", "", "path /a/b.pt") == {"loss": 0.25, "path": "/a/b.pt"}
    assert results("--- RESULTS ---") == {}
    assert results("--- RESULTS ---", "{", ' "loss": 1', "}") == {"loss": 1}
    # An open block after a closed one is the last block: it counts.
    assert results("--- RESULTS ---", "a 1", "--- END RESULTS ---", "--- RESULTS ---", "b 2") == {"b": 2}
    # Lines after an end marker are not results; a block left open takes every line up to the exit.
    assert results("--- RESULTS ---", "a 1", "--- END RESULTS ---", "saving the model... done") == {"a": 1}
    with pytest.raises(ResultsError, match="output line 3: 'done.' has no value"):
        results("--- RESULTS ---", "a 1", "done.")


def test_name_colon_value_lines_name_the_result_without_its_colon():
    assert results(
        "--- RESULTS ---",
        "loss: 0.25",
        "accuracy:\t0.9",
        "model_path: /data/ckpt/7.pt",
        "n 3",
        "note: a: b",
        "--- END RESULTS ---",
    ) == {"loss": 0.25, "accuracy": 0.9, "model_path": "/data/ckpt/7.pt", "n": 3, "note": "a: b"}
    with pytest.raises(ResultsError, match="output line 3: result 'loss' is given twice"):
        results("--- RESULTS ---", "loss 1", "loss: 2")
    with pytest.raises(ResultsError, match="output line 2: ': 5' has no name"):
        results("--- RESULTS ---", ": 5")
    with pytest.raises(ResultsError, match="output line 2: 'loss:' has no value"):
        results("--- RESULTS ---", "loss:")
