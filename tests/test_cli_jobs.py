"""``schedy add``, ``rm``, ``show``, ``list`` and ``push``.

Each command runs as the installed ``schedy`` executable on a real database
(the ``cli`` fixture), and the database is checked afterwards through the
Python API. The matrix of bad ``add`` and ``push`` arguments runs in-process
(click's CliRunner) to keep the file fast; the same code path is exercised by
the subprocess tests.
"""

import math
import os

import pytest
from click.testing import CliRunner
from conftest import log_size

import schedy
from schedy.cli import main
from schedy.errors import ExperimentNotFoundError, JobNotFoundError
from schedy.pbt import LATEST, MINIMIZE, PB2, SAME_GENERATION, AddNoise, BinaryTournament, Perturb, Resample, Truncate
from schedy.random import Choice, Constant, LogUniform, Uniform

LR = '{"low": 1e-4, "high": 0.1}'


def words(output):
    """Each line of ``output`` with its runs of spaces collapsed (rich pads columns)."""
    return [" ".join(line.split()) for line in output.splitlines()]


def populated(path):
    """A database with a random search, a manual queue and a PBT experiment with four jobs."""
    db = schedy.SchedyDB(path)
    db.add_experiment(schedy.RandomSearch("mnist", {"lr": LogUniform(1e-4, 0.1), "layers": Choice([2, 3])}, seed=1))
    q = db.add_experiment(schedy.ManualSearch("q", status=schedy.ManualSearch.DONE))
    q.add_job({"x": 3, "lr": 0.1}, results={"loss": 0.5, "x": 9})
    q.add_job({"x": 1, "lr": 0.01}, status="DONE", results={"loss": 0.2})
    q.add_job({"x": 10, "lr": "auto"})
    q.add_job({"x": [1, 2], "lr": 0.3}, results={"loss": math.nan})
    pbt = db.add_experiment(
        schedy.PopulationBasedTraining(
            "pbt", MINIMIZE, "loss", Truncate(0.5), {"lr": Perturb()}, {"lr": Uniform(0, 1)}, population_size=2, seed=3
        )
    )
    for loss in (1.0, 0.1, 2.0):
        with pbt.next_job() as job:
            job.results["loss"] = loss
    return db


# -- add ----------------------------------------------------------------------------------------


def test_add_random_search_prints_it_and_writes_it(cli):
    r = cli(
        "add",
        "mnist",
        "random",
        "lr",
        "loguniform",
        LR,
        "layers",
        "choice",
        '{"values": [2, 3, 4]}',
        "--seed",
        "7",
        "--lease",
        "30",
        "-s",
        "done",
    )
    assert r.returncode == 0, r.stderr
    lines = words(r.stdout)
    assert "kind random" in lines and "status DONE" in lines and "seed 7" in lines and "lease 30 s" in lines
    assert 'distributions lr loguniform {"low":0.0001,"high":0.1}' in lines
    assert 'layers choice {"values":[2,3,4]}' in lines and "jobs 0" in lines
    assert "Created the database" in r.stderr
    exp = schedy.SchedyDB(cli.db).get_experiment("mnist")
    assert exp == schedy.RandomSearch(
        "mnist", {"lr": LogUniform(1e-4, 0.1), "layers": Choice([2, 3, 4])}, status="DONE", seed=7, lease=30
    )

    again = cli("add", "mnist", "manual")
    assert again.returncode == 1 and "already exists" in again.stderr and again.stdout == ""
    assert log_size(schedy.SchedyDB(cli.db), "mnist") == 1
    assert "Created the database" not in again.stderr


def test_add_pbt_builds_the_definition_and_shows_it(cli):
    explore_wd = (
        '[{"resample": {"distribution": {"uniform": {"low": 0, "high": 0.1}}, "probability": 0.5}}, '
        '{"noise": {"scale": 0.01, "low": 0}}]'
    )
    r = cli(
        "add",
        "cifar",
        "pbt",
        "lr",
        "loguniform",
        LR,
        "wd",
        "uniform",
        '{"low": 0, "high": 0.1}',
        "--objective",
        "min",
        "--result",
        "loss",
        "--exploit",
        '{"truncate": 0.25}',
        "--explore",
        "lr",
        '{"perturb": {"minFactor": 0.5, "maxFactor": 2, "high": 0.1}}',
        "--explore",
        "wd",
        explore_wd,
        "--population-size",
        "6",
        "--max-generations",
        "4",
        "--lease",
        "5",
    )
    assert r.returncode == 0, r.stderr
    exp = schedy.SchedyDB(cli.db).get_experiment("cifar")
    assert exp == schedy.PopulationBasedTraining(
        "cifar",
        MINIMIZE,
        "loss",
        Truncate(0.25),
        {"lr": Perturb(0.5, 2, high=0.1), "wd": [Resample(Uniform(0, 0.1), 0.5), AddNoise(0.01, low=0)]},
        {"lr": LogUniform(1e-4, 0.1), "wd": Uniform(0, 0.1)},
        population_size=6,
        max_generations=4,
        seed=exp.seed,
        lease=5,
    )
    lines = words(r.stdout)
    assert f"seed {exp.seed}" in lines  # the seed drawn at random is shown, so the search can be redone
    assert 'exploit {"truncate":0.25}' in lines and "objective min" in lines and "result loss" in lines
    assert 'explore lr {"perturb":{"minFactor":0.5,"maxFactor":2,"high":0.1}}' in lines
    assert 'initial lr loguniform {"low":0.0001,"high":0.1}' in lines
    assert "population size 6" in lines and "max generations 4" in lines
    assert "ranking against the same generation" in lines


def test_add_pbt_with_pb2_synchronous_and_the_old_ranking(cli):
    r = cli(
        "add",
        "bandit",
        "pbt",
        "lr",
        "loguniform",
        LR,
        "--objective",
        "min",
        "--result",
        "loss",
        "--pb2",
        '{"bounds": {"lr": [0.0001, 0.1]}, "logScale": ["lr"], "kappa": 2}',
        "--population-size",
        "4",
        "--synchronous",
    )
    assert r.returncode == 0, r.stderr
    exp = schedy.SchedyDB(cli.db).get_experiment("bandit")
    assert exp.explore == PB2({"lr": (1e-4, 0.1)}, log_scale=("lr",), kappa=2.0) and exp.synchronous
    assert exp.ranking == SAME_GENERATION
    lines = words(r.stdout)
    assert (
        'explore PB2 {"bounds":{"lr":[0.0001,0.1]},"logScale":["lr"],"kappa":2.0,"window":4,"candidates":500}' in lines
    )
    assert "ranking against the same generation, synchronous" in lines
    r = cli(
        "add",
        "old",
        "pbt",
        "lr",
        "loguniform",
        LR,
        "--objective",
        "min",
        "--result",
        "loss",
        "--population-size",
        "4",
        "--ranking",
        "latest",
    )
    assert r.returncode == 0, r.stderr
    assert schedy.SchedyDB(cli.db).get_experiment("old").ranking == LATEST
    assert "ranking against each member's latest segment" in words(r.stdout)


@pytest.mark.parametrize(
    "args, message",
    [
        (["manual", "--synchronous"], "--synchronous applies to pbt experiments only"),
        (["random", "lr", "uniform", LR, "--ranking", "latest"], "--ranking applies to pbt experiments only"),
        (["pbt", "--objective", "min", "--result", "loss", "--ranking", "best"], "'best' is not one of"),
        (
            ["pbt", "--objective", "min", "--result", "loss", "--ranking", "latest", "--synchronous"],
            "ranking='latest' cannot go with synchronous=True",
        ),
        (
            ["pbt", "--objective", "min", "--result", "loss", "--pb2", "{}"],
            "--pb2: PB2 takes bounds, logScale, kappa, window, candidates: missing 'bounds'",
        ),
        (
            ["pbt", "--objective", "min", "--result", "loss", "--pb2", '{"bounds": {"lr": [1, 0]}}'],
            "--pb2: PB2 bounds['lr'] needs low < high",
        ),
        (
            [
                "pbt",
                "--objective",
                "min",
                "--result",
                "loss",
                "--pb2",
                '{"bounds": {"lr": [0, 1]}}',
                "--explore",
                "lr",
                "perturb",
            ],
            "--pb2 and --explore do not go together",
        ),
        (
            [
                "pbt",
                "lr",
                "uniform",
                LR,
                "--objective",
                "min",
                "--result",
                "loss",
                "--population-size",
                "2",
                "--pb2",
                '{"bounds": {"wd": [0, 1]}}',
            ],
            "explore names 'wd', which initial_distributions does not define",
        ),
        (["random", "lr", "gauss", "{}"], "unknown distribution 'gauss' for 'lr'; use one of uniform, loguniform"),
        (["random", "lr", "loguniform", '{"low": 0, "high": 1}'], "bad parameters for 'lr': LogUniform needs 0 < low"),
        (
            ["random", "lr", "uniform", '{"lo": 0, "high": 1}'],
            "bad parameters for 'lr': the uniform distribution takes low, high: unknown 'lo'; missing 'low'",
        ),
        (["random", "lr", "uniform", "{low: 0}"], "the parameters of 'lr': not valid JSON"),
        (["random", "lr", "uniform", "[0, 1]"], "the parameters of 'lr' must be a JSON object"),
        (["random", "lr", "choice", '{"values": [1, 2], "weights": [1]}'], "Choice has 2 values but 1 weights"),
        (
            ["random", "lr", "uniform", LR, "lr", "normal", '{"mean": 0, "std": 1}'],
            "hyperparameter 'lr' is given twice",
        ),
        (["random", "lr", "uniform"], "the last one is incomplete: 'lr uniform'"),
        (["random"], "a random search needs at least one HP DIST PARAMS triplet"),
        (["manual", "lr", "uniform", LR], "a manual experiment takes no distributions"),
        (
            ["random", "lr", "uniform", LR, "--objective", "min"],
            "--objective applies to pbt, asha, hyperband and bayesian experiments only",
        ),
        (["manual", "--lease", "0"], "a lease must be a finite number of seconds, at least 0.1"),
        (["manual", "--seed", "-1"], "an experiment seed must be an integer in [0, 2**63)"),
        (["manual", "-s", "QUEUED"], "unknown experiment status 'QUEUED'; use one of RUNNING, DONE"),
        (["pbt", "--result", "loss"], "a pbt experiment needs --objective min or max"),
        (["pbt", "--objective", "max"], "a pbt experiment needs --result NAME"),
        (
            ["pbt", "--objective", "min", "--result", "loss", "--population-size", "4"],
            "initial_distributions and population_size go together",
        ),
        (["pbt", "--objective", "min", "--result", "loss", "--exploit", "greedy"], "unknown --exploit 'greedy'"),
        (
            ["pbt", "--objective", "min", "--result", "loss", "--exploit", '{"truncate": 0.7}'],
            "--exploit: Truncate needs 0 < proportion <= 0.5",
        ),
        (
            ["pbt", "--objective", "min", "--result", "loss", "--exploit", '{"binaryTournament": 1}'],
            "binaryTournament takes no arguments",
        ),
        (
            ["pbt", "--objective", "min", "--result", "loss", "--explore", "lr", '{"perturb": {"min_factor": 0.5}}'],
            "--explore 'lr': perturb takes minFactor, maxFactor, low, high, discrete: unknown 'min_factor'",
        ),
        (
            ["pbt", "--objective", "min", "--result", "loss", "--explore", "lr", '{"noise": {}}'],
            "--explore 'lr': noise takes scale, low, high: missing 'scale'",
        ),
        (
            [
                "pbt",
                "--objective",
                "min",
                "--result",
                "loss",
                "--explore",
                "lr",
                '{"resample": {"distribution": {"uniform": {"low": 0, "hi": 1}}}}',
            ],
            "--explore 'lr': the uniform distribution takes low, high: unknown 'hi'; missing 'high'",
        ),
        (
            [
                "pbt",
                "--objective",
                "min",
                "--result",
                "loss",
                "--explore",
                "lr",
                "perturb",
                "--explore",
                "lr",
                "perturb",
            ],
            "--explore 'lr' is given twice",
        ),
        (
            ["pbt", "--objective", "min", "--result", "loss", "--explore", "lr", "jitter"],
            "--explore 'lr': not valid JSON",
        ),
        (
            [
                "pbt",
                "lr",
                "uniform",
                LR,
                "--objective",
                "min",
                "--result",
                "loss",
                "--population-size",
                "2",
                "--explore",
                "wd",
                "perturb",
            ],
            "explore names 'wd', which initial_distributions does not define",
        ),
        (
            [
                "pbt",
                "lr",
                "choice",
                '{"values": ["a", "b"]}',
                "--objective",
                "min",
                "--result",
                "loss",
                "--population-size",
                "2",
                "--explore",
                "lr",
                '{"noise": {"scale": 1}}',
            ],
            "explore of 'lr' changes numbers, but its initial distribution",
        ),
    ],
)
def test_bad_add_arguments_are_usage_errors_that_create_nothing(tmp_path, args, message):
    path = tmp_path / "db"
    result = CliRunner().invoke(main, ["add", "x", *args, "--db", str(path)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not path.exists()


def test_add_pbt_shorthands_and_a_population_of_your_own(tmp_path):
    db = str(tmp_path / "db")
    result = CliRunner().invoke(
        main,
        [
            "add",
            "own",
            "pbt",
            "--objective",
            "max",
            "--result",
            "acc",
            "--exploit",
            "tournament",
            "--explore",
            "lr",
            "perturb",
            "--explore",
            "opt",
            '{"resample": {"distribution": {"const": "sgd"}}}',
            "-s",
            "done",
            "--seed",
            "5",
            "--db",
            db,
        ],
    )
    assert result.exit_code == 0, result.output
    assert schedy.SchedyDB(db).get_experiment("own") == schedy.PopulationBasedTraining(
        "own",
        "max",
        "acc",
        BinaryTournament(),
        {"lr": Perturb(), "opt": Resample(Constant("sgd"))},
        status="DONE",
        seed=5,
    )
    lines = words(result.output)
    assert 'exploit {"binaryTournament":{}}' in lines and "max generations no limit" in lines
    assert "population size not set: the jobs pushed form the population" in lines


def test_bad_add_arguments_in_a_real_process(cli):
    bad_name = cli("add", "mnist", "random", "lr", "gauss", "{}")
    assert bad_name.returncode == 2 and "unknown distribution 'gauss' for 'lr'" in bad_name.stderr
    bad_json = cli("add", "mnist", "random", "lr", "uniform", '{"low": 0, "high": }')
    assert bad_json.returncode == 2 and "the parameters of 'lr': not valid JSON" in bad_json.stderr
    assert not os.path.exists(cli.db)


# -- push ---------------------------------------------------------------------------------------


def test_push_adds_the_job_and_prints_it(cli):
    populated(cli.db)
    r = cli("push", "q", "-p", "a", "1", "b", '"x y"', "-p", "c", "[1, 2]", "-r", "loss", "-0.5", "-s", "done")
    assert r.returncode == 0, r.stderr
    lines = words(r.stdout)
    assert "job 5" in lines and "status DONE" in lines and "hyperparameters a 1" in lines
    assert "b x y" in lines and "c [1, 2]" in lines and "results loss -0.5" in lines
    job = schedy.SchedyDB(cli.db).get_experiment("q").get_job("5")
    assert (job.hyperparameters, job.results, job.status) == ({"a": 1, "b": "x y", "c": [1, 2]}, {"loss": -0.5}, "DONE")

    # Long forms, --db before NAME (over a wrong $SCHEDY_DB), --status=, and JSON's NaN.
    r = cli(
        "push",
        "--db",
        cli.db,
        "q",
        "--hyperparameters",
        "a",
        "NaN",
        "--results",
        "note",
        '"tab\\there"',
        "--status=QUEUED",
        env={"SCHEDY_DB": str(os.path.dirname(cli.db))},
    )
    assert r.returncode == 0, r.stderr
    assert "job 6" in words(r.stdout) and 'results note "tab\\there"' in words(r.stdout)
    job = schedy.SchedyDB(cli.db).get_experiment("q").get_job("6")
    assert math.isnan(job.hyperparameters["a"]) and job.results == {"note": "tab\there"} and job.status == "QUEUED"

    # The experiment refuses a job: a random search's job must have all its hyperparameters.
    r = cli("push", "mnist", "-p", "lr", "0.1", "--db", cli.db)
    assert r.returncode == 1 and "missing 'layers'" in r.stderr
    assert schedy.SchedyDB(cli.db).get_experiment("mnist").all_jobs() == []


def test_push_errors_in_a_real_process_write_nothing(cli):
    db = populated(cli.db)
    before = log_size(db, "q")
    bad = cli("push", "q", "-p", "a", "1", "b", "adam")
    assert bad.returncode == 2 and "hyperparameter 'b': not valid JSON" in bad.stderr and "'adam'" in bad.stderr
    missing = cli("push", "nope", "-p", "a", "1")
    assert missing.returncode == 1 and "no experiment named 'nope'" in missing.stderr
    assert log_size(db, "q") == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["q", "-p", "a", "1", "-p", "a", "2"], "hyperparameter 'a' is given twice"),
        (["q", "-r", "loss", "1", "loss", "2"], "result 'loss' is given twice"),
        (["q", "-p", "a", "1", "b"], "hyperparameter 'b' has no value"),
        (["q", "-p", "a", "-r", "loss", "1"], "hyperparameter 'a' has no value"),
        (["q", "-p", "-r", "loss", "1"], "-p is not followed by any name value pair"),
        (["q", "-r", "loss", "{"], "result 'loss': not valid JSON"),
        (["q", "a", "1"], "unexpected 'a': name value pairs follow -p or -r"),
        (["q", "-x", "1"], "unknown option '-x'"),
        (["q", "-s", "FINISHED"], "unknown job status 'FINISHED'; use one of QUEUED, RUNNING, CRASHED, PRUNED, DONE"),
        (["q", "-s", "DONE", "-s", "DONE"], "the status is given twice"),
        (["q", "-s"], "-s needs a status"),
        (["-p", "a", "1"], "NAME comes first"),
    ],
)
def test_bad_push_arguments_are_usage_errors_that_write_nothing(tmp_path, args, message):
    db = populated(str(tmp_path / "db"))
    before = log_size(db, "q")
    result = CliRunner().invoke(main, ["push", *args, "--db", str(db.path)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert log_size(db, "q") == before


def test_push_values_that_look_like_options(tmp_path):
    db = populated(str(tmp_path / "db"))
    result = CliRunner().invoke(
        main, ["push", "q", "-p", "a", "-1e-3", "b", "-Infinity", "-r", "x", "-2", "--db", str(db.path)]
    )
    assert result.exit_code == 0, result.output
    job = db.get_experiment("q").get_job("5")
    assert job.hyperparameters == {"a": -1e-3, "b": -math.inf} and job.results == {"x": -2}


# -- list ---------------------------------------------------------------------------------------


def test_list_experiments(cli):
    populated(cli.db)
    plain = cli("list")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines() == ["mnist\tRUNNING\trandom", "pbt\tRUNNING\tpbt", "q\tDONE\tmanual"]
    table = cli("list", "-t", "-s", "kind", "-d")
    assert table.returncode == 0, table.stderr
    lines = words(table.stdout)
    assert lines[0] == "name status kind lr layers"
    assert lines[2:] == [
        'mnist RUNNING random loguniform {"low":0.0001,"high":0.1} choice {"values":[2,3]}',
        'pbt RUNNING pbt uniform {"low":0,"high":1}',
        "q DONE manual",
    ]


def test_list_jobs_plain_sorted_and_selected(cli):
    populated(cli.db)
    plain = cli("list", "q")
    assert plain.returncode == 0 and plain.stdout.splitlines() == ["1\tQUEUED", "2\tDONE", "3\tQUEUED", "4\tQUEUED"]
    # Missing values and NaN last, in both directions; hyperparameter.x names the x that is ambiguous.
    up = cli("list", "q", "-s", "loss", "-f", "id", "-f", "hyperparameter.x", "-f", "loss", "-f", "lr")
    assert up.returncode == 0, up.stderr
    assert up.stdout.splitlines() == ["2\t1\t0.2\t0.01", "1\t3\t0.5\t0.1", "3\t10\t\tauto", "4\t[1, 2]\tNaN\t0.3"]
    down = cli("list", "q", "-s", "loss", "-d", "-f", "id", "-f", "result.x")
    assert down.stdout.splitlines() == ["1\t9", "2\t", "3\t", "4\t"]
    # Several keys: by status, then by x as numbers (3 before 10), values of other types after them.
    two = cli("list", "q", "-s", "status", "-s", "hyperparameter.x", "-f", "id", "-f", "status")
    assert two.stdout.splitlines() == ["2\tDONE", "1\tQUEUED", "3\tQUEUED", "4\tQUEUED"]
    # Mixed types, decreasing: the string after the numbers, reversed.
    mixed = cli("list", "q", "-s", "lr", "-d", "-f", "id")
    assert mixed.stdout.splitlines() == ["3", "4", "1", "2"]


def test_list_jobs_table_and_paragraphs(cli):
    populated(cli.db)
    table = cli("list", "q", "-t")
    assert table.returncode == 0, table.stderr
    lines = words(table.stdout)
    # x is both a hyperparameter and a result: both columns carry their category.
    assert lines[0] == "id status hyperparameter.x lr loss result.x"
    assert lines[2:] == ["1 QUEUED 3 0.1 0.5 9", "2 DONE 1 0.01 0.2", "3 QUEUED 10 auto", "4 QUEUED [1, 2] 0.3 NaN"]
    pbt = cli(
        "list",
        "pbt",
        "-p",
        "-s",
        "member",
        "-s",
        "generation",
        "-d",
        "-f",
        "id",
        "-f",
        "member",
        "-f",
        "generation",
        "-f",
        "parent",
    )
    assert pbt.returncode == 0, pbt.stderr
    # Member 1 is the better one (0.1 < 1.0): member 0 continued from it as job 3, generation 1, parent 2.
    assert pbt.stdout.split("\n\n") == [
        "id: 2\nmember: 1\ngeneration: 0",
        "id: 3\nmember: 0\ngeneration: 1\nparent: 2",
        "id: 1\nmember: 0\ngeneration: 0\n",
    ]


def test_list_field_errors(cli):
    populated(cli.db)
    ambiguous = cli("list", "q", "-s", "x")
    assert ambiguous.returncode == 2 and ambiguous.stdout == ""
    assert "field 'x' is ambiguous: say hyperparameter.x or result.x" in ambiguous.stderr
    unknown = cli("list", "q", "-f", "id", "-f", "accuracy")
    assert unknown.returncode == 2 and "unknown field 'accuracy'; the fields are id, status" in unknown.stderr
    assert "'-f' / '--field'" in unknown.stderr
    nope = cli("list", "nope", "-t")
    assert nope.returncode == 1 and "no experiment named 'nope'" in nope.stderr


# -- show ---------------------------------------------------------------------------------------


def test_show_experiment_and_job(cli):
    populated(cli.db)
    exp = cli("show", "pbt")
    assert exp.returncode == 0, exp.stderr
    lines = words(exp.stdout)
    assert lines[:5] == ["experiment pbt", "kind pbt", "status RUNNING", "seed 3", "lease 120 s"]
    assert 'exploit {"truncate":0.5}' in lines and 'explore lr {"perturb":{"minFactor":0.8,"maxFactor":1.2}}' in lines
    assert "population size 2" in lines and "max generations no limit" in lines and "jobs 3 (3 DONE)" in lines
    job = cli("show", "pbt", "3")
    assert job.returncode == 0, job.stderr
    lines = words(job.stdout)
    assert lines[:6] == ["job 3", "experiment pbt", "status DONE", "generation 1", "parent 2", "member 0"]
    assert lines[7] == "results loss 2.0"
    q = cli("show", "q")
    assert "jobs 4 (3 QUEUED, 1 DONE)" in words(q.stdout) and "kind manual" in words(q.stdout)


def test_show_unknown_experiment_or_job(cli):
    populated(cli.db)
    job = cli("show", "q", "99")
    assert job.returncode == 1 and "experiment 'q' has no job '99'" in job.stderr and job.stdout == ""
    exp = cli("show", "nope", "--db", cli.db)
    assert exp.returncode == 1 and "no experiment named 'nope'" in exp.stderr


# -- rm -----------------------------------------------------------------------------------------


def test_rm_declined_changes_nothing(cli):
    db = populated(cli.db)
    before = log_size(db, "q")
    job = cli("rm", "q", "2", input="n\n")
    assert job.returncode == 1
    assert "job 2" in words(job.stdout)  # what would be deleted is shown first
    assert "Delete job '2' of experiment 'q'? [y/N]" in job.stdout and "Nothing deleted." in job.stdout
    exp = cli("rm", "q", input="\n")  # the default is no
    assert exp.returncode == 1 and "Delete experiment 'q' and its 4 jobs? [y/N]" in exp.stdout
    assert "Nothing deleted." in exp.stdout
    assert log_size(db, "q") == before and len(db.get_experiment("q").all_jobs()) == 4


def test_rm_confirmed_or_forced(cli):
    db = populated(cli.db)
    job = cli("rm", "q", "2", input="y\n")
    assert job.returncode == 0 and "Deleted job '2' of experiment 'q'." in job.stdout
    with pytest.raises(JobNotFoundError):
        db.get_experiment("q").get_job("2")
    assert [j.job_id for j in db.get_experiment("q").all_jobs()] == ["1", "3", "4"]
    exp = cli("rm", "-f", "q")
    assert exp.returncode == 0 and exp.stdout == "Deleted experiment 'q' and its 3 jobs.\n"
    with pytest.raises(ExperimentNotFoundError):
        db.get_experiment("q")
    assert [e.name for e in db.get_experiments()] == ["mnist", "pbt"]
    gone = cli("rm", "--force", "mnist", "7")
    assert gone.returncode == 1 and "experiment 'mnist' has no job '7'" in gone.stderr


# -- help ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command, fragments",
    [
        (
            "add",
            [
                "manual|random|pbt",
                "HP DIST PARAMS",
                "loguniform",
                '{"values": [...]',
                "--explore HP STRATEGY",
                "--population-size",
                "--seed",
                "--lease",
                "RUNNING|DONE",
                "SCHEDY_DB",
            ],
        ),
        ("rm", ["NAME [JOB]", "[y/N]", "exits with status 1", "--force"]),
        ("show", ["NAME [JOB]", "how many jobs", "SCHEDY_DB"]),
        ("list", ["category.name", "--table", "--paragraphs", "--sort FIELD", "--decreasing", "--field FIELD"]),
        ("push", ["-p, --hyperparameters HP VALUE", "-r, --results", "-s, --status", "is JSON", "--db PATH"]),
    ],
)
def test_help_is_a_reference(command, fragments):
    result = CliRunner().invoke(main, [command, "--help"], terminal_width=100)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for fragment in fragments:
        assert " ".join(fragment.split()) in text, fragment


@pytest.mark.parametrize("spelling", ["keep", '{"keep": {}}'])
def test_add_pbt_with_the_keep_baseline(tmp_path, spelling):
    db = str(tmp_path / "db")
    result = CliRunner().invoke(
        main,
        [
            "add",
            "base",
            "pbt",
            "--objective",
            "min",
            "--result",
            "loss",
            "--exploit",
            spelling,
            "--seed",
            "1",
            "--db",
            db,
        ],
    )
    assert result.exit_code == 0, result.output
    assert schedy.SchedyDB(db).get_experiment("base").exploit == schedy.pbt.Keep()
    assert 'exploit {"keep":{}}' in words(result.output)
    bad = CliRunner().invoke(
        main, ["add", "b2", "pbt", "--objective", "min", "--result", "loss", "--exploit", '{"keep": 1}', "--db", db]
    )
    assert bad.exit_code == 2 and "keep takes no arguments" in bad.output
