"""Bayesian search from the command line: ``schedy add``, ``show``, ``list``, ``export``, ``lineage`` and ``run``.

Commands run as the installed ``schedy`` executable on a real database (the
``cli`` fixture) and what they wrote is checked through the Python API. The
matrix of bad ``add`` arguments runs in-process (click's CliRunner), as in
tests/test_cli_asha.py; the bad definitions the core refuses also run in a
real process, on a database whose files must not change. The worker of
``schedy run`` is a Python script whose loss is a function of the
hyperparameters it was given, so that each job's results can be checked.
"""

import csv
import importlib.util
import io
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import SCHEDY_EXE, log_size

import schedy
from schedy.cli import main
from schedy.core import bayes
from schedy.random import Choice, Constant, LogUniform, Uniform

needs_optuna = pytest.mark.skipif(importlib.util.find_spec("optuna") is None, reason="needs optuna")

LR = '{"low": 0.001, "high": 0.1}'
X = '{"low": -2, "high": 2}'
C = '{"values": ["a", "b"]}'
SPACE = ["x", "uniform", X, "c", "choice", C, "k", "const", "3"]  # a Constant too: set, never searched

# Reports a loss computed from its hyperparameters, and the job it was run for.
WORKER = """
import json, os
hp = json.loads(os.environ["SCHEDY_HYPERPARAMETERS"])
print("--- RESULTS ---")
print(json.dumps({"loss": (hp["x"] - 1) ** 2 + (hp["c"] == "b") + hp["k"], "job": os.environ["SCHEDY_JOB"]}))
"""


def words(output):
    """Each line of ``output`` with its runs of spaces collapsed (rich pads columns)."""
    return [" ".join(line.split()) for line in output.splitlines()]


def files(path):
    """Every file under ``path`` with its content: a command that writes nothing leaves this unchanged."""
    out = {}
    for root, _, names in os.walk(path):
        for name in names:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = f.read()
    return out


def loss(hp):
    return (hp["x"] - 1) ** 2 + (hp["c"] == "b") + hp["k"]


def worker(cli):
    """The command ``schedy run`` runs: WORKER, written next to the database."""
    script = os.path.join(os.path.dirname(cli.db), "worker.py")
    with open(script, "w", encoding="utf-8") as f:
        f.write(WORKER)
    return [sys.executable, script]


# -- add and show -------------------------------------------------------------------------------


def test_add_with_the_defaults_prints_every_sampler_option_and_writes_them(cli):
    r = cli("add", "bo", "bayesian", "lr", "loguniform", LR, "--result", "loss", "--seed", "7")
    assert r.returncode == 0, r.stderr
    lines = words(r.stdout)
    assert lines == [
        "experiment bo",
        "kind bayesian",
        "status RUNNING",
        "seed 7",
        "lease 120 s",
        "objective min",
        "result loss",
        'distributions lr loguniform {"low":0.001,"high":0.1}',
        "sampler tpe",
        "sampler options n_startup_trials 10",
        "n_ei_candidates 24",
        "multivariate true",
        "constant_liar true",
        "max jobs no limit",
        "jobs 0",
    ]
    exp = schedy.SchedyDB(cli.db).get_experiment("bo")
    assert exp == schedy.BayesianSearch("bo", {"lr": LogUniform(0.001, 0.1)}, "loss", seed=7)
    # Read back from the log: every default was written, and shown.
    assert exp.sampler == "tpe" and exp.sampler_options == bayes.SAMPLERS["tpe"] and exp.max_jobs is None
    shown = cli("show", "bo")
    assert shown.returncode == 0, shown.stderr
    assert words(shown.stdout) == lines


def test_add_with_options_then_show_and_the_api_read_the_same_definition(cli):
    r = cli(
        "add",
        "bo",
        "bayesian",
        *SPACE,
        "--result",
        "acc",
        "--objective",
        "max",
        "--sampler-options",
        '{"n_startup_trials": 4, "multivariate": false}',
        "--max-jobs",
        "12",
        "--seed",
        "3",
        "--lease",
        "30",
        "-s",
        "done",
    )
    assert r.returncode == 0, r.stderr
    definition = [
        "experiment bo",
        "kind bayesian",
        "status DONE",
        "seed 3",
        "lease 30 s",
        "objective max",
        "result acc",
        'distributions x uniform {"low":-2,"high":2}',
        'c choice {"values":["a","b"]}',
        'k constant {"value":3}',
        "sampler tpe",
        "sampler options n_startup_trials 4",
        "n_ei_candidates 24",
        "multivariate false",
        "constant_liar true",
        "max jobs 12",
    ]
    assert words(r.stdout) == [*definition, "jobs 0"]
    shown = cli("show", "bo")
    assert shown.returncode == 0, shown.stderr
    assert words(shown.stdout) == [*definition, "jobs 0"]
    exp = schedy.SchedyDB(cli.db).get_experiment("bo")
    assert exp == schedy.BayesianSearch(
        "bo",
        {"x": Uniform(-2, 2), "c": Choice(["a", "b"]), "k": Constant(3)},
        "acc",
        schedy.pbt.MAXIMIZE,
        sampler_options={"n_startup_trials": 4, "multivariate": False},
        status="DONE",
        seed=3,
        max_jobs=12,
        lease=30,
    )
    assert exp.sampler_options == {**bayes.SAMPLERS["tpe"], "n_startup_trials": 4, "multivariate": False}

    r = cli("add", "base", "bayesian", "x", "uniform", X, "--result", "loss", "--sampler", "random")
    assert r.returncode == 0, r.stderr
    assert "sampler random" in words(r.stdout) and "sampler options none" in words(r.stdout)
    exp = schedy.SchedyDB(cli.db).get_experiment("base")
    assert (exp.sampler, exp.sampler_options, exp.objective) == ("random", {}, "min")


BAYES_ARGS = ["bayesian", "x", "uniform", X, "--result", "loss"]
NORMAL = ["bayesian", "x", "normal", '{"mean": 0, "std": 1}', "--result", "loss"]
WEIGHTED = ["bayesian", "c", "choice", '{"values": [1, 2], "weights": [3, 1]}', "--result", "loss"]
UNKNOWN_OPTION = [*BAYES_ARGS, "--sampler-options", '{"gamma": 0.1}']
BAD_JSON = [*BAYES_ARGS, "--sampler-options", "{n_startup_trials: 5}"]


@pytest.mark.parametrize(
    "args, message",
    [
        # The core's checks, with its messages.
        (NORMAL, "hyperparameter 'x' has a Normal distribution, which is unbounded"),
        (WEIGHTED, "hyperparameter 'c' has a weighted Choice"),
        (
            UNKNOWN_OPTION,
            "the tpe sampler takes n_startup_trials, n_ei_candidates, multivariate, constant_liar: unknown 'gamma'",
        ),
        (
            [*BAYES_ARGS, "--sampler", "random", "--sampler-options", '{"n_startup_trials": 5}'],
            "the random sampler takes no options: unknown 'n_startup_trials'",
        ),
        ([*BAYES_ARGS, "--sampler-options", '{"multivariate": 1}'], "sampler option 'multivariate' must be a bool"),
        ([*BAYES_ARGS, "--sampler-options", '{"n_startup_trials": 0}'], "'n_startup_trials' must be at least 1"),
        ([*BAYES_ARGS, "--max-jobs", "0"], "max_jobs must be a positive integer, got 0"),
        (["bayesian", "x", "uniform", X, "--result", ""], "result_name must be a non-empty string, got ''"),
        (["bayesian", "--result", "loss"], "distributions must name at least one hyperparameter to search"),
        (["bayesian", "k", "const", "3", "--result", "loss"], "at least one hyperparameter to search (not a Constant)"),
        # The command line's own: JSON, a missing --result, options of other kinds.
        (BAD_JSON, "--sampler-options: not valid JSON"),
        ([*BAYES_ARGS, "--sampler-options", '[["n_startup_trials", 5]]'], "--sampler-options must be a JSON object"),
        (["bayesian", "x", "uniform", X], "a bayesian experiment needs --result NAME"),
        ([*BAYES_ARGS, "--sampler", "cma"], "'cma' is not one of 'tpe', 'cmaes', 'qmc', 'random'"),
        ([*BAYES_ARGS, "--objective", "median"], "'median' is not one of 'min', 'max'"),
        ([*BAYES_ARGS, "--max-jobs", "1.5"], "'1.5' is not a valid integer"),
        (["bayesian", "x", "uniform"], "the last one is incomplete: 'x uniform'"),
        ([*BAYES_ARGS, "--min-resource", "2"], "--min-resource applies to asha and hyperband experiments only"),
        ([*BAYES_ARGS, "--population-size", "4"], "--population-size applies to pbt experiments only"),
        (["random", "x", "uniform", X, "--sampler", "tpe"], "--sampler applies to bayesian experiments only"),
        (
            ["asha", "x", "uniform", X, "--result", "loss", "--sampler-options", "{}"],
            "--sampler-options applies to bayesian experiments only",
        ),
        (
            ["random", "x", "uniform", X, "--max-jobs", "3"],
            "--max-jobs applies to asha, hyperband and bayesian experiments only",
        ),
        (["manual", "--result", "loss"], "--result applies to pbt, asha, hyperband and bayesian experiments only"),
        (
            ["random", "x", "uniform", X, "--objective", "min"],
            "--objective applies to pbt, asha, hyperband and bayesian experiments only",
        ),
    ],
)
def test_bad_add_arguments_are_usage_errors_that_create_nothing(tmp_path, args, message):
    path = tmp_path / "db"
    result = CliRunner().invoke(main, ["add", "bo", *args, "--db", str(path)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not path.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (NORMAL, "Error: hyperparameter 'x' has a Normal distribution, which is unbounded: a sampler searches"),
        (WEIGHTED, "Error: hyperparameter 'c' has a weighted Choice: a sampler picks values by their scores"),
        (UNKNOWN_OPTION, "Error: the tpe sampler takes n_startup_trials, n_ei_candidates"),
        (BAD_JSON, "Error: --sampler-options: not valid JSON (Expecting property name enclosed in double quotes"),
    ],
    ids=["normal", "weighted-choice", "unknown-option", "bad-json"],
)
def test_a_bad_definition_in_a_real_process_writes_nothing(cli, args, message):
    ok = cli("add", "first", "bayesian", *SPACE, "--result", "loss")
    assert ok.returncode == 0, ok.stderr
    db = schedy.SchedyDB(cli.db)
    before, size = files(cli.db), log_size(db, "first")
    bad = cli("add", "bo", *args)
    assert bad.returncode == 2 and bad.stdout == ""
    assert message in bad.stderr
    assert files(cli.db) == before and log_size(db, "first") == size
    assert [e.name for e in db.get_experiments()] == ["first"]


# -- run ----------------------------------------------------------------------------------------


@needs_optuna
def test_run_drains_a_search_with_max_jobs_and_it_ends_done(cli):
    r = cli(
        "add", "bo", "bayesian", *SPACE, "--result", "loss", "--max-jobs", "6", "--seed", "1",
        "--sampler-options", '{"n_startup_trials": 3}',
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    run = cli("run", "bo", *worker(cli))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert any(line.startswith("job 1: running: ") for line in lines)  # no member, rung nor resource
    assert lines[-1] == (
        "no more jobs (experiment 'bo' is finished: its 6 jobs (max_jobs) are finished): 6 done, 0 failed"
    )

    exp = schedy.SchedyDB(cli.db).get_experiment("bo")
    assert exp.status == "DONE"
    jobs = exp.all_jobs()
    assert [j.job_id for j in jobs] == ["1", "2", "3", "4", "5", "6"] and {j.status for j in jobs} == {"DONE"}
    for job in jobs:  # each job was given its own proposal, in the space, and reported on it
        hp = job.hyperparameters
        assert set(hp) == {"x", "c", "k"} and -2 <= hp["x"] <= 2 and hp["c"] in ("a", "b") and hp["k"] == 3
        assert job.results == {"loss": loss(hp), "job": job.job_id}

    again = cli("run", "bo", *worker(cli))
    assert again.returncode == 0, again.stderr
    last = again.stdout.splitlines()[-1]
    assert last.startswith("no more jobs (experiment 'bo' is DONE") and last.endswith("0 done, 0 failed")
    assert len(exp.all_jobs()) == 6


@needs_optuna
def test_two_workers_share_a_search_and_run_each_job_once(cli):
    r = cli("add", "bo", "bayesian", *SPACE, "--result", "loss", "--max-jobs", "8", "--seed", "2")
    assert r.returncode == 0, r.stderr
    env = dict(os.environ, SCHEDY_DB=cli.db)
    workers = [
        subprocess.Popen(
            [SCHEDY_EXE, "run", "bo", *worker(cli)],
            env=env,
            cwd=os.path.dirname(cli.db),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    exp = schedy.SchedyDB(cli.db).get_experiment("bo")
    jobs = exp.all_jobs()
    assert exp.status == "DONE" and len(jobs) == 8 and {j.status for j in jobs} == {"DONE"}
    # Whichever worker ran it, each job was run once, for itself: claimed once, reported by its own command.
    exported = list(csv.DictReader(io.StringIO(cli("export", "bo").stdout)))
    assert [row["claims"] for row in exported] == ["1"] * 8
    assert all(j.results == {"loss": loss(j.hyperparameters), "job": j.job_id} for j in jobs)
    done = sum(int(out.rsplit(": ", 1)[1].split()[0]) for out, _ in outputs)  # "...: N done, 0 failed"
    assert done == 8


# -- list, show, lineage, export ------------------------------------------------------------------


FIXED = ["job_id", "status", "generation", "parent_id", "member"]
TIMES = ["added_at", "claimed_at", "claimed_by", "finished_at", "claims", "lease_expiries"]


@pytest.fixture
def searched(cli):
    """A Bayesian search ``bo`` of three jobs (two DONE, one QUEUED), pushed, and a manual queue before it."""
    db = schedy.SchedyDB(cli.db)
    db.add_experiment(schedy.ManualSearch("q"))
    r = cli("add", "bo", "bayesian", *SPACE, "--result", "loss", "--seed", "4")
    assert r.returncode == 0, r.stderr
    for x, c, status in ((0.5, "a", "DONE"), (-1.5, "b", "DONE"), (1.0, "a", "QUEUED")):
        hp = {"x": x, "c": c, "k": 3}
        results = ["-r", "loss", str(loss(hp))] if status == "DONE" else []
        r = cli("push", "bo", "-p", "x", str(x), "c", json.dumps(c), "k", "3", *results, "-s", status)
        assert r.returncode == 0, r.stderr
    return db.get_experiment("bo")


def test_list_has_the_kind_and_the_distributions(cli, searched):
    plain = cli("list")
    assert plain.returncode == 0, plain.stderr
    assert sorted(plain.stdout.splitlines()) == ["bo\tRUNNING\tbayesian", "q\tRUNNING\tmanual"]
    table = cli("list", "-t", "-s", "name")
    assert table.returncode == 0, table.stderr
    assert words(table.stdout)[0] == "name status kind x c k"
    assert words(table.stdout)[2:] == [
        'bo RUNNING bayesian uniform {"low":-2,"high":2} choice {"values":["a","b"]} constant {"value":3}',
        "q RUNNING manual",
    ]
    jobs = cli("list", "bo", "-t", "-s", "loss", "-f", "id", "-f", "status", "-f", "x", "-f", "c", "-f", "loss")
    assert jobs.returncode == 0, jobs.stderr
    assert words(jobs.stdout)[0] == "id status x c loss"
    assert words(jobs.stdout)[2:] == ["1 DONE 0.5 a 3.25", "2 DONE -1.5 b 10.25", "3 QUEUED 1 a"]
    assert cli("list", "bo").stdout.splitlines() == ["1\tDONE", "2\tDONE", "3\tQUEUED"]


def test_show_a_job_and_its_lineage(cli, searched):
    shown = cli("show", "bo", "2")
    assert shown.returncode == 0, shown.stderr
    assert words(shown.stdout) == [
        "job 2",
        "experiment bo",
        "status DONE",
        "hyperparameters x -1.5",
        "c b",
        "k 3",
        "results loss 10.25",
    ]
    assert "jobs 3 (1 QUEUED, 2 DONE)" in words(cli("show", "bo").stdout)
    chain = cli("lineage", "bo", "2")
    assert chain.returncode == 0, chain.stderr
    lines = words(chain.stdout)  # no parents: the lineage of a job is the job
    assert lines[2].split() == ["generation", "job", "parent", "member", "status", "x", "c", "k", "loss"]
    assert lines[4:] == ["2 DONE -1.5 b 3 10.25"]


def test_export_has_the_columns_of_a_random_search(cli, searched, tmp_path):
    plain = cli("export", "bo")
    assert plain.returncode == 0, plain.stderr
    rows = list(csv.DictReader(io.StringIO(plain.stdout)))
    assert list(rows[0]) == [*FIXED, *TIMES, "hp.x", "hp.c", "hp.k", "result.loss"]  # no rung nor resource
    assert [(r["job_id"], r["status"], r["hp.x"], r["hp.c"], r["result.loss"]) for r in rows] == [
        ("1", "DONE", "0.5", "a", "3.25"),
        ("2", "DONE", "-1.5", "b", "10.25"),
        ("3", "QUEUED", "1.0", "a", ""),
    ]
    lines = cli("export", "bo", "--format", "jsonl")
    assert lines.returncode == 0, lines.stderr
    objs = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [o["hyperparameters"] for o in objs] == [j.hyperparameters for j in searched.all_jobs()]
    assert list(objs[0])[:5] == FIXED and "rung" not in objs[0]
    empty = cli("add", "empty", "bayesian", "x", "uniform", X, "--result", "loss")
    assert empty.returncode == 0, empty.stderr
    assert cli("export", "empty").stdout == ",".join([*FIXED, *TIMES]) + "\n"


def test_push_refuses_a_job_outside_the_space_and_writes_nothing(cli, searched):
    db = schedy.SchedyDB(cli.db)
    before = log_size(db, "bo")
    r = cli("push", "bo", "-p", "x", "0.5")
    assert r.returncode == 1 and "exactly the hyperparameters of its distributions" in r.stderr
    r = cli("push", "bo", "-p", "x", "0.5", "c", '"a"', "k", "3", "-r", "acc", "1", "-s", "DONE")
    assert r.returncode == 1 and "finished without its result 'loss'" in r.stderr
    assert log_size(db, "bo") == before


# -- help ---------------------------------------------------------------------------------------


def test_help_names_the_kind_its_options_and_every_default_of_the_sampler():
    top = CliRunner().invoke(main, ["--help"], terminal_width=200)
    assert "Create an experiment: manual queue, random search, PBT, ASHA, Hyperband or Bayesian search." in top.output
    add = CliRunner().invoke(main, ["add", "--help"], terminal_width=100)
    text = " ".join(add.output.split())
    for fragment in (
        "manual|random|pbt|asha|hyperband|bayesian",
        "--sampler [tpe|cmaes|qmc|random] bayesian:",
        "--sampler-options JSON bayesian:",
        "bayesian: at most N jobs",
        "bayesian: the result the sampler optimizes",
        "The random sampler takes none.",
    ):
        assert fragment in text, fragment
    for option, default in bayes.SAMPLERS["tpe"].items():  # the help says what the core writes by default
        assert f"{option} {json.dumps(default)} (" in text, option
    for sampler in ("cmaes", "qmc"):
        for option, default in bayes.SAMPLERS[sampler].items():
            if option != "population_size":  # a rule on the space, stated in words
                assert f"{option} {json.dumps(default)}" in text, option
