"""`python -m schedy.demo` runs real worker processes on one database and prints a leaderboard."""

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import schedy
from schedy.adapters.naming import stream_key
from schedy.core import events as ev
from schedy.core.check import find_double_claims
from schedy.core.codec import decode_commit

ROOT = Path(__file__).resolve().parents[1]


def run_demo(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "schedy.demo", *args], capture_output=True, text=True,
                          timeout=120, env=env, cwd=cwd or ROOT)


def read_commits(db_path, name="demo"):
    path = Path(db_path) / "experiments" / stream_key(name) / "log.jsonl"
    return [decode_commit(line) for line in path.read_bytes().splitlines()]


def check_database(db_path, budget, workers):
    """The demo's database: at least ``budget`` jobs, all DONE, each claimed once, by the demo's workers."""
    exp = schedy.SchedyDB(db_path).get_experiment("demo")
    assert exp.status == schedy.Experiment.DONE
    jobs = exp.all_jobs()
    # Workers stop when the main process marks the experiment DONE; jobs claimed before that
    # still finish, so the count is the budget plus the jobs that were in flight (at least the budget).
    assert len(jobs) >= budget
    assert all(j.status == schedy.Job.DONE for j in jobs), [j for j in jobs if j.status != schedy.Job.DONE]
    assert all(set(j.hyperparameters) == {"x", "y", "optimizer"} for j in jobs)
    assert all(isinstance(j.results["loss"], float) for j in jobs)

    commits = read_commits(db_path)
    assert [c.version for c in commits] == list(range(1, len(commits) + 1))
    assert find_double_claims(commits) == []
    claims = Counter(e["job"] for c in commits for e in c.events if e["type"] == ev.JOB_CLAIMED)
    assert sorted(claims) == sorted(j.job_id for j in jobs) and set(claims.values()) == {1}
    claimants = {e["worker"] for c in commits for e in c.events if e["type"] == ev.JOB_CLAIMED}
    assert claimants <= {f"worker-{i}" for i in range(workers)}
    return jobs


def test_demo_with_small_numbers(tmp_path):
    db = tmp_path / "db"
    proc = run_demo("--workers", "3", "--jobs", "12", "--db", str(db), "--seed", "5")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Leaderboard" in out
    rows = [line for line in out.splitlines() if line.strip()[:1].isdigit() and "worker-" in line]
    assert len(rows) == 5
    assert [int(r.split()[0]) for r in rows] == [1, 2, 3, 4, 5]
    losses = [float(r.split()[2]) for r in rows]
    assert losses == sorted(losses)
    jobs = check_database(db, budget=12, workers=3)
    assert min(losses) == round(min(j.results["loss"] for j in jobs), 3)
    log = db / "experiments" / "demo" / "log.jsonl"
    assert str(log) in out


def test_demo_defaults_use_a_fresh_temporary_directory(tmp_path):
    """No arguments: 4 workers, 40 jobs, a new directory under $TMPDIR that is kept and named in the output."""
    env = dict(os.environ, TMPDIR=str(tmp_path))
    env.pop("SCHEDY_DB", None)
    proc = run_demo(env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (db,) = tmp_path.glob("schedy-demo-*")
    assert f"Database: {db}" in proc.stdout
    assert "Leaderboard" in proc.stdout
    jobs = check_database(db, budget=40, workers=4)
    assert len(jobs) >= 40


def test_demo_refuses_a_database_that_already_holds_the_demo(tmp_path):
    db = tmp_path / "db"
    assert run_demo("--workers", "1", "--jobs", "2", "--db", str(db)).returncode == 0
    before = (db / "experiments" / "demo" / "log.jsonl").read_bytes()
    proc = run_demo("--workers", "1", "--jobs", "2", "--db", str(db))
    assert proc.returncode == 2
    assert "already holds an experiment named 'demo'" in proc.stderr
    assert (db / "experiments" / "demo" / "log.jsonl").read_bytes() == before


def test_demo_rejects_bad_arguments():
    proc = run_demo("--workers", "0")
    assert proc.returncode == 2
    assert "--workers" in proc.stderr
