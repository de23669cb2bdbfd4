"""The command line: ``schedy verify`` and ``schedy repair`` (click.testing, and once as a real process)."""

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from test_maintenance import everything, flip, location, log_file, make, records  # noqa: F401 (location: fixture)

import schedy
from schedy.cli import main


def run(*args, input=None, env=None):
    return CliRunner().invoke(main, list(args), input=input, env=env, catch_exceptions=False)


def test_help_lists_the_commands():
    result = run("--help")
    assert result.exit_code == 0 and "verify" in result.output and "repair" in result.output
    assert run("--version").output.strip().endswith(schedy.__version__)


def test_verify_a_clean_database(location):
    make(location, jobs=3)
    make(location, name="other", jobs=1)
    result = run("verify", "--db", location)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "e: 4 commits, OK" in lines and "other: 2 commits, OK" in lines
    one = run("verify", "e", "--db", location)
    assert one.exit_code == 0 and "other" not in one.output


def test_verify_names_the_damaged_experiment_and_commit(location):
    db, _ = make(location, jobs=4)
    make(location, name="fine", jobs=1)
    flip(db, "e", 2)
    result = run("verify", "--db", location)
    assert result.exit_code == 1
    assert "e: 5 commits, 1 error" in result.output and "commit 2 is damaged" in result.output
    assert "fine: 2 commits, OK" in result.output
    assert run("verify", "fine", "--db", location).exit_code == 0


def test_the_database_comes_from_schedy_db(tmp_path):
    db, _ = make(str(tmp_path / "db"), jobs=1)
    result = run("verify", env={"SCHEDY_DB": str(db.path)})
    assert result.exit_code == 0 and "e: 2 commits, OK" in result.output
    flip(db, "e", 2)
    assert run("verify", env={"SCHEDY_DB": str(db.path)}).exit_code == 1


def test_a_missing_database_or_experiment_is_an_error_and_creates_nothing(tmp_path):
    result = run("verify", "--db", str(tmp_path / "nowhere"))
    assert result.exit_code == 1 and "no Schedy database" in result.output
    assert not (tmp_path / "nowhere").exists()
    db, _ = make(str(tmp_path / "db"), jobs=1)
    for command in ("verify", "repair"):
        result = run(command, "nope", "--db", str(db.path))
        assert result.exit_code == 1 and "no experiment named 'nope'" in result.output
    assert run("repair", "--db", str(db.path)).exit_code == 2  # EXP is required: a usage error


def test_repair_asks_and_declining_changes_nothing(location):
    db, _ = make(location, jobs=4)
    flip(db, "e", 3)
    before = everything(db)
    result = run("repair", "e", "--db", location, input="n\n")
    assert result.exit_code == 1 and "[y/N]" in result.output and "Nothing changed." in result.output
    assert "would set aside" in result.output
    assert everything(db) == before
    dry = run("repair", "e", "--db", location, "--dry-run")
    assert dry.exit_code == 0 and "[y/N]" not in dry.output and everything(db) == before


@pytest.mark.parametrize("how", [("-y",), ("--yes",), ()])
def test_repair_confirmed_keeps_the_prefix_and_the_experiment_works(location, how):
    db, _ = make(location, jobs=4)
    kept = records(db, "e")[:2]
    flip(db, "e", 3)
    result = run("repair", "e", "--db", location, *how, input=None if how else "y\n")
    assert result.exit_code == 0, result.output
    assert "kept commits 1-2" in result.output and "damaged-" in result.output
    assert "e: 2 commits, OK" in result.output
    assert records(db, "e") == kept
    assert run("verify", "--db", location).exit_code == 0
    again = schedy.SchedyDB(location).get_experiment("e")
    again.add_job({"i": "new"})
    assert run("verify", "--db", location).exit_code == 0


def test_repair_of_a_clean_log(location):
    make(location, jobs=1)
    result = run("repair", "e", "--db", location)
    assert result.exit_code == 0 and "nothing to repair" in result.output and "[y/N]" not in result.output


def test_python_dash_m_schedy_in_a_real_process(tmp_path):
    db, _ = make(str(tmp_path / "db"), jobs=2)
    env = {k: v for k, v in os.environ.items() if k != "SCHEDY_DB"}

    def schedy_cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "schedy", *args], capture_output=True, text=True, env=env, timeout=60
        )

    ok = schedy_cli("verify", "--db", str(db.path))
    assert ok.returncode == 0 and "e: 3 commits, OK" in ok.stdout, ok.stderr
    flip(db, "e", 2)
    bad = schedy_cli("verify", "--db", str(db.path))
    assert bad.returncode == 1 and "commit 2 is damaged" in bad.stdout
    fixed = schedy_cli("repair", "e", "-y", "--db", str(db.path))
    assert fixed.returncode == 0 and "kept commit 1\n" in fixed.stdout, fixed.stdout + fixed.stderr
    assert log_file(db, "e").read_bytes().count(b"\n") == 1


def test_the_installed_executable_verifies_and_repairs(cli):
    db, _ = make(cli.db, jobs=2)
    ok = cli("verify")
    assert ok.returncode == 0 and "e: 3 commits, OK" in ok.stdout, ok.stderr
    flip(db, "e", 2)
    bad = cli("verify", "e")
    assert bad.returncode == 1 and "commit 2 is damaged" in bad.stdout
    declined = cli("repair", "e", input="n\n")
    assert declined.returncode == 1 and "Nothing changed." in declined.stdout
    assert log_file(db, "e").read_bytes().count(b"\n") == 3
    fixed = cli("repair", "e", "-y")
    assert fixed.returncode == 0 and "kept commit 1\n" in fixed.stdout, fixed.stdout + fixed.stderr
    assert cli("verify").returncode == 0
    missing = cli("verify", "nope")
    assert missing.returncode == 1 and "nope" in missing.stderr
