"""ASHA and Hyperband from the command line: ``schedy add``, ``run``, ``list``, ``show``, ``lineage`` and ``export``.

Commands run as the installed ``schedy`` executable on a real database (the
``cli`` fixture) and what they wrote is checked through the Python API. The
matrix of bad ``add`` arguments runs in-process (click's CliRunner), as in
tests/test_cli_jobs.py. The worker of ``schedy run`` is a shell one-liner
whose results are what it was given: its ``%r`` argument and its
environment, and a loss that is its member, so that promotions are known.
"""

import csv
import io
import json
import shlex

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import log_size

import schedy
from schedy.cli import main
from schedy.random import LogUniform, Uniform

LR = '{"low": 0.001, "high": 0.1}'
X = '{"low": 0, "high": 1}'

# Prints what it was given, then reports it. A variable that is not set leaves a result without a value: the job
# CRASHED, with a malformed results block.
REPORT = (
    'echo "given: $1 rung=$SCHEDY_RUNG resource=$SCHEDY_RESOURCE"; echo "--- RESULTS ---"; '
    'echo "loss $SCHEDY_MEMBER"; echo "arg $1"; echo "rung $SCHEDY_RUNG"; echo "resource $SCHEDY_RESOURCE"; '
    'echo "parent \\"$SCHEDY_PARENT\\""; echo "parent_results ${SCHEDY_PARENT_RESULTS:-null}"'
)


def words(output):
    """Each line of ``output`` with its runs of spaces collapsed (rich pads columns)."""
    return [" ".join(line.split()) for line in output.splitlines()]


def run_report(cli, name, *options, env=None):
    """``schedy run [OPTIONS] NAME sh -c REPORT sh %r``; the completed process."""
    return cli("run", *options, name, "sh", "-c", REPORT, "sh", "%r", env=env)


def small_asha(cli, *extra):
    """ASHA ``sha`` on lr, resources 1, 3, 9, 5 jobs at most: rung-0 members 0 to 3, member 0 promoted as job 4."""
    r = cli("add", "sha", "asha", "lr", "loguniform", LR, "--result", "loss", "--max-resource", "9", "--max-jobs", "5")
    assert r.returncode == 0, r.stderr
    r = run_report(cli, "sha", *extra)
    assert r.returncode == 0, r.stderr
    return schedy.SchedyDB(cli.db).get_experiment("sha")


# -- add ----------------------------------------------------------------------------------------


def test_add_asha_prints_the_definition_and_writes_it(cli):
    r = cli(
        "add",
        "sha",
        "asha",
        "lr",
        "loguniform",
        LR,
        "--result",
        "loss",
        "--min-resource",
        "2",
        "--max-resource",
        "50",
        "--reduction-factor",
        "5",
        "--max-jobs",
        "40",
        "--seed",
        "7",
        "--lease",
        "30",
    )
    assert r.returncode == 0, r.stderr
    lines = words(r.stdout)
    assert lines[:5] == ["experiment sha", "kind asha", "status RUNNING", "seed 7", "lease 30 s"]
    assert lines[5:] == [
        "objective min",
        "result loss",
        'distributions lr loguniform {"low":0.001,"high":0.1}',
        "min resource 2",
        "max resource 50",
        "reduction factor 5",
        "rung resources 2, 10, 50",
        "max jobs 40",
        "jobs 0",
    ]
    exp = schedy.SchedyDB(cli.db).get_experiment("sha")
    assert exp == schedy.ASHA(
        "sha",
        {"lr": LogUniform(0.001, 0.1)},
        "loss",
        min_resource=2,
        max_resource=50,
        reduction_factor=5,
        max_jobs=40,
        seed=7,
        lease=30,
    )
    # JSON numbers: an integer stays one, so the resources are integers too.
    assert type(exp.min_resource) is int and type(exp.reduction_factor) is int


def test_add_hyperband_takes_the_api_defaults_and_float_resources(cli):
    r = cli("add", "hb", "hyperband", "x", "uniform", X, "--result", "acc", "--objective", "max", "-s", "done")
    assert r.returncode == 0, r.stderr
    lines = words(r.stdout)
    assert "kind hyperband" in lines and "status DONE" in lines and "objective max" in lines
    assert "rung resources 1, 3, 9, 27, 81" in lines and "brackets 5, starting at 1, 3, 9, 27, 81" in lines
    assert "max jobs no limit" in lines
    db = schedy.SchedyDB(cli.db)
    assert db.get_experiment("hb") == schedy.Hyperband(
        "hb", {"x": Uniform(0, 1)}, "acc", schedy.pbt.MAXIMIZE, status="DONE", seed=db.get_experiment("hb").seed
    )
    r = cli(
        "add", "f", "hyperband", "x", "uniform", X, "--result", "l", "--min-resource", "0.5", "--max-resource", "4.5"
    )
    assert r.returncode == 0, r.stderr
    assert "rung resources 0.5, 1.5, 4.5" in words(r.stdout) and "brackets 3, starting at 0.5, 1.5, 4.5" in words(
        r.stdout
    )


ASHA_ARGS = ["asha", "lr", "loguniform", LR, "--result", "loss"]


@pytest.mark.parametrize(
    "args, message",
    [
        # The core's checks, with its messages.
        ([*ASHA_ARGS, "--reduction-factor", "1"], "reduction_factor must be a number greater than 1, got 1"),
        ([*ASHA_ARGS, "--min-resource", "0"], "min_resource must be a positive number, got 0"),
        ([*ASHA_ARGS, "--min-resource", '"3"'], "min_resource must be a positive number, got '3'"),
        ([*ASHA_ARGS, "--max-resource", "NaN"], "max_resource must be a positive number, got nan"),
        (
            [*ASHA_ARGS, "--min-resource", "10", "--max-resource", "5"],
            "max_resource (5) must be at least min_resource (10)",
        ),
        ([*ASHA_ARGS, "--max-jobs", "0"], "max_jobs must be a positive integer, got 0"),
        (
            [*ASHA_ARGS, "--max-resource", "1e40", "--reduction-factor", "2"],
            "makes 133 rungs with reduction_factor 2; at most 64 are allowed",
        ),
        (["asha", "--result", "loss"], "distributions must name at least one hyperparameter"),
        (["hyperband", "x", "uniform", X, "--result", ""], "result_name must be a non-empty string, got ''"),
        # The command line's own: JSON, a missing --result, options of other kinds.
        ([*ASHA_ARGS, "--min-resource", "one"], "--min-resource: not valid JSON"),
        ([*ASHA_ARGS, "--max-jobs", "1.5"], "'1.5' is not a valid integer"),
        (["asha", "lr", "loguniform", LR], "an asha experiment needs --result NAME"),
        (["hyperband", "lr", "loguniform", LR, "--objective", "max"], "a hyperband experiment needs --result NAME"),
        ([*ASHA_ARGS, "--objective", "median"], "'median' is not one of 'min', 'max'"),
        ([*ASHA_ARGS, "--population-size", "4"], "--population-size applies to pbt experiments only"),
        ([*ASHA_ARGS, "--explore", "lr", "perturb"], "--explore applies to pbt experiments only"),
        (
            ["random", "lr", "loguniform", LR, "--max-jobs", "3"],
            "--max-jobs applies to asha, hyperband and bayesian experiments only",
        ),
        (
            ["pbt", "--objective", "min", "--result", "loss", "--reduction-factor", "2"],
            "--reduction-factor applies to asha and hyperband experiments only",
        ),
        (["manual", "--result", "loss"], "--result applies to pbt, asha, hyperband and bayesian experiments only"),
    ],
)
def test_bad_add_arguments_are_usage_errors_that_create_nothing(tmp_path, args, message):
    path = tmp_path / "db"
    result = CliRunner().invoke(main, ["add", "x", *args, "--db", str(path)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not path.exists()


def test_a_bad_definition_in_a_real_process_writes_nothing(cli):
    ok = cli("add", "first", "manual")
    assert ok.returncode == 0, ok.stderr
    db = schedy.SchedyDB(cli.db)
    before = log_size(db, "first")
    bad = cli("add", "sha", *ASHA_ARGS, "--max-resource", "0.5")
    assert bad.returncode == 2 and bad.stdout == ""
    assert "Error: max_resource (0.5) must be at least min_resource (1)" in bad.stderr
    assert [e.name for e in db.get_experiments()] == ["first"] and log_size(db, "first") == before


# -- run ----------------------------------------------------------------------------------------


def test_run_gives_each_job_its_rung_resource_and_parent(cli):
    exp = small_asha(cli)
    jobs = {j.job_id: j for j in exp.all_jobs()}
    assert [(j.job_id, j.rung, j.resource, j.parent_id, j.member, j.status) for j in jobs.values()] == [
        ("1", 0, 1, None, 0, "DONE"),
        ("2", 0, 1, None, 1, "DONE"),
        ("3", 0, 1, None, 2, "DONE"),
        ("4", 1, 3, "1", 0, "DONE"),  # member 0 has the best loss (0): promoted from job 1
        ("5", 0, 1, None, 3, "DONE"),
    ]
    first, promoted = jobs["1"].results, jobs["4"].results
    # %r, SCHEDY_RUNG and SCHEDY_RESOURCE; at rung 0, no parent and no parent results.
    assert first == {"loss": 0, "arg": 1, "rung": 0, "resource": 1, "parent": "", "parent_results": None}
    # A promotion: its parent's id and the results the parent reported (its checkpoint, in real life).
    assert promoted == {"loss": 0, "arg": 3, "rung": 1, "resource": 3, "parent": "1", "parent_results": first}


def test_run_shows_the_rung_and_resource_of_each_job(cli):
    r = cli("add", "sha", "asha", "lr", "loguniform", LR, "--result", "loss", "--max-resource", "9", "--max-jobs", "4")
    assert r.returncode == 0, r.stderr
    run = run_report(cli, "sha")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "job 1: running (member 0, rung 0, resource 1): " + shlex.join(["sh", "-c", REPORT, "sh", "1"]) in lines
    assert "given: 1 rung=0 resource=1" in lines
    assert (
        "job 4: running (member 0, rung 1, resource 3, parent 1): " + shlex.join(["sh", "-c", REPORT, "sh", "3"])
        in lines
    )
    assert "given: 3 rung=1 resource=3" in lines
    assert (
        lines[-1] == "no more jobs (experiment 'sha' is finished: its 4 jobs (max_jobs) are finished): 4 done, 0 failed"
    )


def test_run_hyperband_with_float_resources(cli):
    r = cli(
        "add",
        "hb",
        "hyperband",
        "x",
        "uniform",
        X,
        "--result",
        "loss",
        "--min-resource",
        "0.5",
        "--max-resource",
        "4.5",
        "--max-jobs",
        "16",
        "--seed",
        "1",
    )
    assert r.returncode == 0, r.stderr
    run = run_report(cli, "hb")
    assert run.returncode == 0, run.stderr
    jobs = schedy.SchedyDB(cli.db).get_experiment("hb").all_jobs()
    assert len(jobs) == 16 and {j.status for j in jobs} == {"DONE"}
    for job in jobs:  # what the command was given is the job's, whatever its bracket
        assert job.results["arg"] == job.results["resource"] == job.resource, job
        assert job.results["rung"] == job.rung and job.results["parent"] == (job.parent_id or ""), job
    # Every bracket started configurations, each at its own resource, and some configuration went up a rung.
    assert {j.resource for j in jobs if j.rung == 0} == {0.5, 1.5, 4.5}
    assert any(j.parent_id is not None for j in jobs)


def test_a_promotion_whose_parent_was_deleted_runs_without_parent_results(cli):
    exp = small_asha(cli, "--max-jobs", "3")
    promotion = exp.next_job()  # job 4, promoted from job 1; put back in the queue, then its parent deleted
    assert (promotion.job_id, promotion.parent_id) == ("4", "1")
    promotion.status = "QUEUED"
    promotion.put()
    exp.get_job("1").delete()
    r = run_report(cli, "sha", "--once")
    assert r.returncode == 0, r.stderr
    results = exp.get_job("4").results
    assert results["parent"] == "1" and results["parent_results"] is None and results["resource"] == 3


def test_other_kinds_get_no_rung_nor_resource(cli):
    schedy.SchedyDB(cli.db).add_experiment(schedy.ManualSearch("q")).add_job({"x": 1})
    # Variables inherited from a schedy run around this one describe another job: they are not passed on.
    env = {"SCHEDY_RUNG": "7", "SCHEDY_RESOURCE": "9", "SCHEDY_PARENT_RESULTS": "{}"}
    script = 'echo "--- RESULTS ---"; echo "arg \\"$1\\""; env | grep -c "^SCHEDY_[RP]" | sed "s/^/named /"'
    r = cli("run", "q", "sh", "-c", script, "sh", "%r", env=env)
    assert r.returncode == 0, r.stderr
    # An empty %r; of the variables named SCHEDY_R... and SCHEDY_P..., only SCHEDY_RESULTS and SCHEDY_PARENT.
    assert schedy.SchedyDB(cli.db).get_experiment("q").get_job("1").results == {"arg": "", "named": 2}


# -- list, show, lineage, export ------------------------------------------------------------------


def test_list_and_show_have_rungs_and_resources(cli):
    small_asha(cli)
    # REPORT's results rung, resource and parent share the names of the job's fields: say schedy.NAME.
    fields = ["id", "status", "schedy.rung", "schedy.resource", "schedy.parent", "member", "result.resource"]
    table = cli("list", "sha", "-t", *(x for f in fields for x in ("-f", f)))
    assert table.returncode == 0, table.stderr
    lines = words(table.stdout)
    assert lines[0] == " ".join(fields) and lines[2:] == [
        "1 DONE 0 1 0 1",
        "2 DONE 0 1 1 1",
        "3 DONE 0 1 2 1",
        "4 DONE 1 3 1 0 3",
        "5 DONE 0 1 3 1",
    ]
    plain = cli("list", "sha", "-s", "schedy.rung", "-d", "-f", "id", "-f", "schedy.resource", "-f", "parent_results")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines()[0].startswith('4\t3\t{"loss": 0, "arg": 1, "rung": 0')
    assert plain.stdout.splitlines()[1:] == ["1\t1\tnull", "2\t1\tnull", "3\t1\tnull", "5\t1\tnull"]
    experiments = cli("list", "-t")
    assert words(experiments.stdout)[2] == 'sha DONE asha loguniform {"low":0.001,"high":0.1}'

    job = cli("show", "sha", "4")
    assert job.returncode == 0, job.stderr
    lines = words(job.stdout)
    assert lines[:7] == ["job 4", "experiment sha", "status DONE", "rung 1", "resource 3", "parent 1", "member 0"]
    shown = cli("show", "sha")
    lines = words(shown.stdout)
    assert "rung resources 1, 3, 9" in lines and "max jobs 5" in lines and "jobs 5 (5 DONE)" in lines

    chain = cli("lineage", "sha", "4")
    assert chain.returncode == 0, chain.stderr
    lines = words(chain.stdout)
    assert lines[2].split() == ["generation", "job", "parent", "member", "status", "lr", "loss"]  # the score only
    assert lines[4].split()[:4] == ["0", "1", "0", "DONE"] and lines[5].split()[:5] == ["1", "4", "1", "0", "DONE"]


def test_the_jobs_table_of_a_search(cli):
    r = cli("add", "sha", "asha", "lr", "loguniform", LR, "--result", "loss", "--max-resource", "3", "--max-jobs", "4")
    assert r.returncode == 0, r.stderr
    run = cli("run", "sha", "sh", "-c", 'echo "--- RESULTS ---"; echo "loss $SCHEDY_MEMBER"')
    assert run.returncode == 0, run.stderr
    table = cli("list", "sha", "-t")
    assert table.returncode == 0, table.stderr
    lines = words(table.stdout)
    assert lines[0] == "id status rung resource parent member lr loss"
    assert [line.split()[:-2] for line in lines[2:]] == [
        ["1", "DONE", "0", "1", "0"],
        ["2", "DONE", "0", "1", "1"],
        ["3", "DONE", "0", "1", "2"],
        ["4", "DONE", "1", "3", "1", "0"],
    ]


FIXED = ["job_id", "status", "generation", "parent_id", "member"]
TIMES = ["added_at", "claimed_at", "claimed_by", "finished_at", "claims", "lease_expiries"]


def test_export_has_rung_and_resource_columns(cli, tmp_path):
    exp = small_asha(cli)
    plain = cli("export", "sha")
    assert plain.returncode == 0, plain.stderr
    rows = list(csv.DictReader(io.StringIO(plain.stdout)))
    assert list(rows[0])[:13] == [*FIXED, "rung", "resource", *TIMES]
    assert [(r["job_id"], r["generation"], r["parent_id"], r["rung"], r["resource"]) for r in rows] == [
        ("1", "0", "", "0", "1"),
        ("2", "0", "", "0", "1"),
        ("3", "0", "", "0", "1"),
        ("4", "1", "1", "1", "3"),
        ("5", "0", "", "0", "1"),
    ]
    lines = cli("export", "sha", "--format", "jsonl")
    objs = [json.loads(line) for line in lines.stdout.splitlines()]
    assert list(objs[3])[:7] == [*FIXED, "rung", "resource"] and (objs[3]["rung"], objs[3]["resource"]) == (1, 3)

    parquet = cli("export", "sha", "--format", "parquet", "-o", tmp_path / "jobs.parquet")
    assert parquet.returncode == 0, parquet.stderr
    back = pd.read_parquet(tmp_path / "jobs.parquet")
    assert str(back["rung"].dtype) == str(back["resource"].dtype) == "Int64"
    assert back["resource"].tolist() == [1, 1, 1, 3, 1]
    frame = exp.to_dataframe()
    assert list(frame.columns)[:13] == [*FIXED, "rung", "resource", *TIMES]
    assert frame["rung"].tolist() == [0, 0, 0, 1, 0] and str(frame["resource"].dtype) == "Int64"


def test_export_columns_of_other_kinds_and_of_an_empty_search(cli):
    db = schedy.SchedyDB(cli.db)
    db.add_experiment(schedy.RandomSearch("rand", {"x": Uniform(0, 1)})).add_job({"x": 0.5})
    r = cli("add", "hb", "hyperband", "x", "uniform", X, "--result", "l", "--min-resource", "0.5")
    assert r.returncode == 0, r.stderr
    other = cli("export", "rand")
    assert other.stdout.splitlines()[0] == ",".join([*FIXED, *TIMES, "hp.x"])
    assert "rung" not in db.get_experiment("rand").to_dataframe().columns
    empty = cli("export", "hb")
    assert empty.stdout == ",".join([*FIXED, "rung", "resource", *TIMES]) + "\n"  # known from the kind, not the rows
    db.get_experiment("hb").add_job({"x": 0.5})
    frame = db.get_experiment("hb").to_dataframe()
    assert frame["resource"].tolist() == [0.5] and str(frame["resource"].dtype) == "float64"


# -- help ---------------------------------------------------------------------------------------


def test_help_names_the_new_kinds_options_placeholder_and_variables():
    add = CliRunner().invoke(main, ["add", "--help"], terminal_width=100)
    text = " ".join(add.output.split())
    for fragment in ("manual|random|pbt|asha|hyperband", "--min-resource", "--max-resource", "--reduction-factor"):
        assert fragment in text, fragment
    assert "--max-jobs N asha, hyperband: hand out at most N jobs" in text
    run = CliRunner().invoke(main, ["run", "--help"], terminal_width=100)
    text = " ".join(run.output.split())
    for fragment in ("%r the resource to train to", "SCHEDY_RUNG", "SCHEDY_RESOURCE", "SCHEDY_PARENT_RESULTS"):
        assert fragment in text, fragment
