"""``schedy update``: an experiment's status, a job's status, hyperparameters and results, from a shell.

The end-to-end cases run the installed executable (the ``cli`` fixture); the
matrix of bad arguments and the race with a worker run in-process (click's
CliRunner), each proving through the log that a refused command wrote nothing.
"""

import pytest
from click.testing import CliRunner
from conftest import log_size

import schedy
from schedy.cli import main
from schedy.errors import NoJobError
from schedy.pbt import MINIMIZE, Perturb, Truncate
from schedy.random import Uniform


def words(output):
    return [" ".join(line.split()) for line in output.splitlines()]


def invoke(*args, db):
    return CliRunner().invoke(main, [*map(str, args), "--db", str(db)], catch_exceptions=False)


def crashed_queue(path):
    """A manual queue whose job 1 CRASHED, with results, and whose job 2 is QUEUED."""
    db = schedy.SchedyDB(path)
    exp = db.add_experiment(schedy.ManualSearch("q"))
    exp.add_job({"lr": 0.1, "layers": 2}, status=schedy.Job.CRASHED, results={"epochs": 3})
    exp.add_job({"lr": 0.2, "layers": 2})
    return db, exp


def test_requeue_a_crashed_job_with_corrected_values(cli):
    _, exp = crashed_queue(cli.db)
    r = cli("update", "q", "1", "-s", "queued", "-p", "lr", "0.05", "-r", "note", '"retry"', "epochs", "0")
    assert r.returncode == 0, r.stderr
    lines = words(r.stdout)
    assert "status QUEUED" in lines and "hyperparameters lr 0.05" in lines and "layers 2" in lines
    job = exp.get_job("1")
    assert job.status == schedy.Job.QUEUED
    assert job.hyperparameters == {"lr": 0.05, "layers": 2}  # the others are kept
    assert job.results == {"epochs": 0, "note": "retry"}
    # Queued again, it is handed out like any queued job, after the job queued before it.
    handed_out = []
    for _ in range(2):
        with exp.next_job() as claimed:
            handed_out.append(claimed.job_id)
            claimed.results["loss"] = 0.3
    assert handed_out == ["2", "1"]
    assert exp.get_job("1").status == schedy.Job.DONE


def test_stop_and_restart_a_cli_only_random_search(cli):
    assert cli("add", "r", "random", "x", "uniform", '{"low": 0, "high": 1}', "--seed", "1").returncode == 0
    r = cli("update", "r", "-s", "DONE")
    assert r.returncode == 0, r.stderr
    assert "status DONE" in words(r.stdout)
    exp = schedy.SchedyDB(cli.db).get_experiment("r")
    assert exp.status == schedy.Experiment.DONE
    with pytest.raises(NoJobError) as stopped:
        exp.next_job()
    assert stopped.value.finished
    # A worker started without --max-jobs stops at once, with nothing to do.
    run = cli("run", "r", "echo", "--- RESULTS ---")
    assert run.returncode == 0, run.stderr
    assert "no more jobs" in run.stdout and "0 done, 0 failed" in run.stdout
    assert exp.all_jobs() == []
    again = cli("update", "r", "-s", "running")
    assert again.returncode == 0, again.stderr
    assert schedy.SchedyDB(cli.db).get_experiment("r").next_job().status == schedy.Job.RUNNING


def test_a_crashed_pbt_segment_queued_again_is_handed_out_next(cli):
    db = schedy.SchedyDB(cli.db)
    exp = db.add_experiment(
        schedy.PopulationBasedTraining(
            "p",
            MINIMIZE,
            "loss",
            Truncate(0.5),
            {"lr": Perturb()},
            {"lr": Uniform(0, 1)},
            population_size=2,
            max_generations=2,
            seed=1,
        )
    )
    with pytest.raises(RuntimeError), exp.next_job():
        raise RuntimeError("diverged")
    r = cli("update", "p", "1", "-s", "QUEUED")
    assert r.returncode == 0, r.stderr
    assert exp.next_job().job_id == "1"
    # A segment marked DONE by hand needs its score: refused, and nothing written.
    before = log_size(db, "p")
    refused = cli("update", "p", "1", "-s", "DONE")
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error: ") and "'loss'" in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert log_size(db, "p") == before


def test_the_write_is_safe_a_job_changed_meanwhile_is_not_overwritten(tmp_path, monkeypatch):
    """A worker reports between the command's read and its write: the command fails and the report stays."""
    db, exp = crashed_queue(tmp_path / "db")
    worker = schedy.SchedyDB(tmp_path / "db", worker="w").get_experiment("q")
    read = schedy.Experiment.get_job

    def get_job_then_a_worker_reports(self, job_id):
        job = read(self, job_id)
        if not getattr(self, "_raced", False):
            self._raced = True  # only the first read: the command's own
            other = worker.get_job(job_id)
            other.results["loss"] = 0.1
            other.status = schedy.Job.DONE
            other.put()
        return job

    monkeypatch.setattr(schedy.Experiment, "get_job", get_job_then_a_worker_reports)
    before = log_size(db, "q")
    r = invoke("update", "q", "1", "-s", "QUEUED", db=tmp_path / "db")
    assert r.exit_code == 1
    assert "changed in the log" in r.output and r.output.startswith("Error: ")
    assert log_size(db, "q") == before + 1  # the worker's report, and nothing else
    monkeypatch.undo()
    job = exp.get_job("1")
    assert job.status == schedy.Job.DONE and job.results == {"epochs": 3, "loss": 0.1}


@pytest.mark.parametrize(
    "args, status, message",
    [
        (["q", "9", "-s", "QUEUED"], 1, "Error: experiment 'q' has no job '9'"),
        (["nope", "-s", "DONE"], 1, "Error: no experiment named 'nope'"),
        (["q", "1", "-s", "FINISHED"], 2, "unknown job status 'FINISHED'; use one of QUEUED, RUNNING, CRASHED"),
        (["q", "-s", "QUEUED"], 2, "unknown experiment status 'QUEUED'; use one of RUNNING, DONE"),
        (["q", "1", "-p", "lr", "{0.1"], 2, "hyperparameter 'lr': not valid JSON"),
        (["q", "1", "-r", "loss", "fast"], 2, "result 'loss': not valid JSON"),
        (["q", "1", "-r", "loss"], 2, "result 'loss' has no value"),
        (["q", "1", "-p"], 2, "-p is not followed by any name value pair"),
        (["q", "1", "-s"], 2, "-s needs a status"),
        (["q", "1", "-s", "DONE", "-s", "QUEUED"], 2, "the status is given twice"),
        (["q", "1", "-p", "lr", "1", "lr", "2"], 2, "hyperparameter 'lr' is given twice"),
        (["q", "1", "--force"], 2, "unknown option '--force'"),
        (["q", "1", "2", "-s", "DONE"], 2, "unexpected '2'"),
        (["q", "-r", "loss", "1"], 2, "-p and -r change a job: give its id"),
        (["q"], 2, "nothing to update"),
        (["q", "1"], 2, "nothing to update"),
    ],
)
def test_bad_input_is_one_error_line_and_writes_nothing(tmp_path, args, status, message):
    db, _ = crashed_queue(tmp_path / "db")
    before = log_size(db, "q")
    r = invoke("update", *args, db=tmp_path / "db")
    assert r.exit_code == status, r.output
    errors = [line for line in r.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and message in errors[0], r.output
    assert log_size(db, "q") == before


def test_a_change_refused_by_the_experiment_writes_nothing(tmp_path):
    db = schedy.SchedyDB(tmp_path / "db")
    exp = db.add_experiment(schedy.RandomSearch("r", {"x": Uniform(0, 1)}, seed=1))
    exp.add_job({"x": 0.5})
    before = log_size(db, "r")
    r = invoke("update", "r", "1", "-p", "y", "1", db=tmp_path / "db")  # a random search's jobs have exactly x
    assert r.exit_code == 1 and r.output.startswith("Error: ") and len(r.output.splitlines()) == 1
    assert log_size(db, "r") == before
    assert exp.get_job("1").hyperparameters == {"x": 0.5}


def test_values_already_set_write_nothing(tmp_path):
    db, _ = crashed_queue(tmp_path / "db")
    before = log_size(db, "q")
    r = invoke("update", "q", "1", "-s", "crashed", "-p", "lr", "0.1", db=tmp_path / "db")
    assert r.exit_code == 0 and "already has these values: nothing written" in r.output
    r = invoke("update", "q", "-s", "RUNNING", db=tmp_path / "db")
    assert r.exit_code == 0 and "already RUNNING: nothing written" in r.output
    assert log_size(db, "q") == before


def test_update_takes_db_before_or_after_and_is_listed(tmp_path):
    _, exp = crashed_queue(tmp_path / "db")
    runner = CliRunner()
    r = runner.invoke(main, ["--db", str(tmp_path / "db"), "update", "q", "2", "-s", "PRUNED"], env={"SCHEDY_DB": None})
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["update", "q", "2", "--db", str(tmp_path / "db"), "-r", "why", '"slow"'])
    assert r.exit_code == 0, r.output
    job = exp.get_job("2")
    assert (job.status, job.results) == (schedy.Job.PRUNED, {"why": "slow"})
    assert "update" in runner.invoke(main, ["--help"]).output
