"""Names of the original Schedy client that ported code and scripts use, and two smaller items of the issue list.

The original client (github.com/incalia/schedy-client) had the modules
``schedy.experiments`` and ``schedy.jobs``, HTTP errors in ``schedy.errors``,
the distribution name ``const`` and a global option before the command
(``schedy --config FILE add ...``). The end of this file checks that the demo
explains its count of segments and that the README says what the test suite
costs.
"""

import importlib
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

import schedy
from schedy import errors
from schedy.cli import main
from schedy.random import Constant

ROOT = Path(__file__).resolve().parents[1]


def invoke(args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


# -- const ----------------------------------------------------------------------------------------


def test_add_takes_const_with_the_value_itself_as_the_original_did(tmp_path):
    db = tmp_path / "db"
    r = invoke(
        [
            "add",
            "e",
            "random",
            "opt",
            "const",
            '"adam"',
            "lr",
            "constant",
            '{"value": 0.1}',
            "cfg",
            "const",
            '{"value": 3}',
            "--seed",
            "1",
            "--db",
            db,
        ]
    )
    assert r.exit_code == 0, r.output
    exp = schedy.SchedyDB(db).get_experiment("e")
    # const takes the value itself (a dict is a dict value); constant takes {"value": V}.
    assert exp.distributions == {"opt": Constant("adam"), "lr": Constant(0.1), "cfg": Constant({"value": 3})}
    assert exp.next_job().hyperparameters == {"opt": "adam", "lr": 0.1, "cfg": {"value": 3}}
    # Shown under one name, the one schedy add's help documents.
    assert 'opt  constant {"value":"adam"}' in invoke(["show", "e", "--db", db]).output


def test_a_const_value_must_be_json(tmp_path):
    r = invoke(["add", "e", "random", "x", "const", "adam", "--db", tmp_path / "db"])
    assert r.exit_code == 2 and "JSON" in r.output
    assert not (tmp_path / "db").exists()


# -- --db before the command ----------------------------------------------------------------------


@pytest.fixture
def two_databases(tmp_path):
    """Databases a (experiment "in-a") and b (experiment "in-b"), neither the default one."""
    for name in ("a", "b"):
        schedy.SchedyDB(tmp_path / name).add_experiment(schedy.ManualSearch(f"in-{name}"))
    return tmp_path / "a", tmp_path / "b"


def listed(result):
    assert result.exit_code == 0, result.output
    return [line.split("\t")[0] for line in result.output.splitlines()]


def test_db_before_the_command(two_databases, tmp_path):
    a, b = two_databases
    no_env = {"SCHEDY_DB": None, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    assert listed(invoke(["--db", a, "list"], env=no_env)) == ["in-a"]
    # Given before the command, it wins over $SCHEDY_DB; the command's own --db wins over both.
    assert listed(invoke(["--db", a, "list"], env={"SCHEDY_DB": str(b)})) == ["in-a"]
    assert listed(invoke(["--db", a, "list", "--db", b], env={"SCHEDY_DB": str(a)})) == ["in-b"]
    assert listed(invoke(["list"], env={"SCHEDY_DB": str(b)})) == ["in-b"]
    # As the original's `schedy --config FILE add ...`: every command, writing ones too.
    assert invoke(["--db", b, "add", "new", "manual"], env=no_env).exit_code == 0
    assert invoke(["--db", b, "push", "new", "-p", "x", "1"], env=no_env).exit_code == 0
    assert [j.hyperparameters for j in schedy.SchedyDB(b).get_experiment("new").all_jobs()] == [{"x": 1}]
    assert invoke(["--db", b, "verify"], env=no_env).exit_code == 0
    assert "in-a" not in invoke(["--db", b, "history", "new"], env=no_env).output
    assert not (tmp_path / "xdg").exists()  # the default database was never used


def test_db_before_a_command_that_takes_none_is_refused(tmp_path):
    r = invoke(["--db", tmp_path / "db", "simulate", "toy", "--seeds", "1"])
    assert r.exit_code == 2 and "--db before the command does not apply to simulate" in r.output
    assert not (tmp_path / "db").exists()


def test_db_before_the_command_in_the_installed_executable(cli, tmp_path):
    assert cli("--db", tmp_path / "other", "add", "e", "manual").returncode == 0
    r = cli("--db", tmp_path / "other", "list")
    assert r.returncode == 0 and r.stdout.startswith("e\tRUNNING\tmanual"), r.stderr
    default = cli("list")  # $SCHEDY_DB (cli.db) was never created
    assert default.returncode == 1 and "there is no Schedy database" in default.stderr
    assert "--db PATH" in cli("--help").stdout


# -- schedy.experiments and schedy.jobs -----------------------------------------------------------


def test_the_original_module_names_hold_the_same_classes():
    experiments = importlib.import_module("schedy.experiments")
    jobs = importlib.import_module("schedy.jobs")
    for name in ("Experiment", "ManualSearch", "RandomSearch", "PopulationBasedTraining"):
        assert getattr(experiments, name) is getattr(schedy, name)
    assert sorted(experiments.__all__) == ["Experiment", "ManualSearch", "PopulationBasedTraining", "RandomSearch"]
    assert jobs.Job is schedy.Job and experiments.Job is schedy.Job and jobs.__all__ == ["Job"]
    assert (jobs.Job.QUEUED, jobs.Job.RUNNING, jobs.Job.CRASHED, jobs.Job.PRUNED, jobs.Job.DONE) == (
        "QUEUED",
        "RUNNING",
        "CRASHED",
        "PRUNED",
        "DONE",
    )
    assert (experiments.Experiment.RUNNING, experiments.Experiment.DONE) == ("RUNNING", "DONE")
    assert schedy.experiments is experiments and schedy.jobs is jobs


def test_code_written_for_the_original_modules_runs(tmp_path):
    from schedy.experiments import ManualSearch
    from schedy.jobs import Job

    db = schedy.SchedyDB(tmp_path / "db")
    exp = db.add_experiment(ManualSearch("ported"))
    exp.add_job({"lr": 0.1})
    with exp.next_job() as job:
        assert isinstance(job, Job) and job.status == Job.RUNNING
        job.results["loss"] = 0.5
    assert exp.all_jobs()[0].status == Job.DONE


# -- the original's errors ------------------------------------------------------------------------

# The original's schedy/errors.py: each class and its base.
ORIGINAL_HTTP_ERRORS = {
    "HTTPError": "SchedyError",
    "ClientError": "HTTPError",
    "ClientRequestError": "ClientError",
    "AuthenticationError": "ClientRequestError",
    "ReauthenticateError": "ClientRequestError",
    "UnhandledResponseError": "ClientError",
    "ServerError": "HTTPError",
}


def test_the_original_errors_exist_with_their_hierarchy():
    for name, base in ORIGINAL_HTTP_ERRORS.items():
        cls = getattr(errors, name)
        assert cls.__bases__ == (getattr(errors, base),) and issubclass(cls, errors.SchedyError)
        assert "Never raised" in cls.__doc__ or "never raised" in cls.__doc__.lower()
    # The other names of the original's errors.py are the classes Schedy raises.
    for name in ("SchedyError", "ResourceExistsError", "UnsafeUpdateError", "NoJobError"):
        assert issubclass(getattr(errors, name), errors.SchedyError)


def test_the_original_errors_catch_nothing_schedy_raises():
    http = tuple(getattr(errors, name) for name in ORIGINAL_HTTP_ERRORS)
    raised = [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, Exception)
        and cls.__module__ == errors.__name__
        and cls not in http
        and cls is not errors.SchedyError
    ]
    assert errors.NoJobError in raised and errors.StoreError in raised
    for cls in raised:
        assert not issubclass(cls, http), cls
    # And no code of the package raises one of them.
    pattern = re.compile(r"raise\s+(?:errors\.)?(" + "|".join(ORIGINAL_HTTP_ERRORS) + r")\b")
    for path in (ROOT / "schedy").rglob("*.py"):
        assert not pattern.search(path.read_text(encoding="utf-8")), path


def test_ported_error_handling_still_works(tmp_path):
    """A worker loop written for the original client: its HTTP clauses never fire, NoJobError ends it."""
    from schedy.errors import ClientRequestError, HTTPError, NoJobError, ServerError

    exp = schedy.SchedyDB(tmp_path / "db").add_experiment(schedy.ManualSearch("loop"))
    exp.add_job({"x": 1})
    seen = []
    while True:
        try:
            with exp.next_job() as job:
                job.results["y"] = job.hyperparameters["x"] * 2
                seen.append(job.job_id)
        except ServerError:
            pytest.fail("never raised")
        except ClientRequestError:
            pytest.fail("never raised")
        except NoJobError:
            break
    assert seen == ["1"]
    with pytest.raises(NoJobError):
        try:
            exp.next_job()
        except HTTPError:
            pytest.fail("NoJobError is not an HTTPError here")


def test_http_error_keeps_the_original_arguments_and_message():
    e = errors.ServerError("boom\nsecond line\n", 503)
    assert (e.body, e.code) == ("boom\nsecond line\n", 503)
    assert str(e) == "HTTP Error 503:\n> boom\n> second line"
    assert str(errors.HTTPError("", 404)) == "HTTP Error 404:\n> <No server message>"
    assert str(errors.ClientError("x" * 200, 400)).endswith("x" * 147 + "...")
    with pytest.raises(errors.SchedyError):
        raise errors.AuthenticationError("forbidden", 403)


# -- the demo's count of segments -----------------------------------------------------------------


def test_the_demo_says_why_it_trained_that_many_segments(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "schedy.demo",
            "--workers",
            "2",
            "--population",
            "4",
            "--generations",
            "3",
            "--pause",
            "0",
            "--seed",
            "2",
            "--db",
            str(tmp_path / "db"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if "segments DONE" in x)
    assert re.fullmatch(
        r"12 segments DONE in \d+\.\d\d s = 4 members x 3 generations: each member trains one "
        r"segment per generation, whether it continues its own model or a better member's",
        line,
    )
    assert re.search(
        r"^\d+ of them continued a better member's model \(exploit, then explore\)$", proc.stdout, re.MULTILINE
    )


def segment(job_id, member, generation, parent=None, status="DONE"):
    return SimpleNamespace(job_id=job_id, member=member, generation=generation, parent_id=parent, status=status)


def test_the_demo_count_names_what_is_missing():
    """Fewer than population x generations: generations skipped (the latest-segment rule), a stopped run."""
    from schedy.demo import segment_count

    jobs = [
        segment("1", 0, 0),
        segment("2", 1, 0),
        segment("3", 2, 0),
        segment("4", 0, 1, "1"),
        segment("5", 1, 2, "4"),  # member 1 copied member 0's generation 1: it skipped generation 1
        segment("6", 0, 2, "4", status="CRASHED"),
        segment("7", 0, 2, "4"),
    ]
    assert segment_count(jobs, 3, 3) == [
        "6 segments DONE, not 3 members x 3 generations = 9:",
        (
            "  1 generation skipped by members that copied a member further ahead and continued from its generation "
            "(ranking by latest segment)"
        ),
        "  2 segments never trained: the search stopped before every member reached generation 2",
        "(1 CRASHED segment, each redone by a new segment, not counted)",
        "1 of them continued a better member's model (exploit, then explore)",
    ]
    full = [segment(str(m), m, 0) for m in range(2)] + [segment(str(2 + m), m, 1, str(m)) for m in range(2)]
    assert segment_count(full, 2, 2, elapsed=1.5)[0].startswith("4 segments DONE in 1.50 s = 2 members x 2 generations")


# -- the README: what the test suite costs --------------------------------------------------------


def test_the_readme_says_how_long_the_tests_take_and_what_they_install():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    quickstart = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    after_tests = " ".join(quickstart.split("python -m pytest\n```", 1)[1].split())
    assert "about 9 minutes on 2 CPUs" in after_tests and "CI" in after_tests
    assert "apt-get install chromium" in after_tests and "/usr/bin/chromium" in after_tests
    # What tests/browser.py really does.
    sys.path.insert(0, os.fspath(ROOT / "tests"))
    try:
        browser = importlib.import_module("browser")
        slurm = importlib.import_module("slurm")
    finally:
        sys.path.remove(os.fspath(ROOT / "tests"))
    assert browser.CHROMIUM == "/usr/bin/chromium" and "chromium" in browser.APT_INSTALL
    assert browser.APT_UPDATE == ["apt-get", "update"]
    assert "`slurm-wlm` and `munge`" in after_tests and slurm.PACKAGES == ["slurm-wlm", "munge"]
    # The line .ci/run greps and runs is still there, unchanged.
    assert re.search(r'^pip install -e "\.\[test\]" && python -m pytest$', text, re.MULTILINE)


@pytest.mark.parametrize("option", ["config_path", "config_override"])
def test_the_original_clients_config_options_say_what_replaces_them(tmp_path, option):
    with pytest.raises(TypeError, match=rf"{option}: the original client's .*no server.*SCHEDY_DB"):
        schedy.SchedyDB(str(tmp_path / "db"), **{option: "client.json"})
    assert not (tmp_path / "db").exists()
