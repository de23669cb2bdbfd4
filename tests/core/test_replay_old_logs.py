"""Logs written by release 0.1.0 (before generation-fair ranking) open, verify and re-decide exactly as written."""

import shutil
from pathlib import Path

import pytest
from _replay import read_commits, redecide

import schedy
from schedy.core.codec import encode_commit
from schedy.maintenance import verify

OLD = Path(__file__).parent.parent / "data" / "release-0.1.0" / "db"
NAMES = sorted(p.name for p in (OLD / "experiments").iterdir())


def test_the_fixture_has_logs():
    assert NAMES == ["lr-pbt-failures", "tournament", "toy-pbt"]


@pytest.mark.parametrize("name", NAMES)
def test_old_pbt_log_redecides_every_next_job_as_written(name):
    commits = read_commits(OLD / "experiments" / name / "log.jsonl")
    wrong, checked = redecide(commits)
    assert checked > 20
    assert wrong == []


@pytest.mark.parametrize("name", NAMES)
def test_old_pbt_log_opens_verifies_and_reencodes_byte_identically(name, tmp_path):
    shutil.copytree(OLD, tmp_path / "db")
    path = tmp_path / "db" / "experiments" / name / "log.jsonl"
    before = path.read_bytes()
    db = schedy.SchedyDB(str(tmp_path / "db"))
    exp = db.get_experiment(name)
    assert exp.all_jobs()
    report = verify(db, name)
    assert report.ok, report
    assert b"".join(encode_commit(c) for c in read_commits(path)) == before
    assert path.read_bytes() == before  # reading wrote nothing
