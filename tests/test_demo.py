"""`python -m schedy.demo` runs PBT with real worker processes on one database and prints the results."""

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
    return subprocess.run(
        [sys.executable, "-m", "schedy.demo", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd or ROOT,
    )


def read_commits(db_path, name="demo"):
    path = Path(db_path) / "experiments" / stream_key(name) / "log.jsonl"
    return [decode_commit(line) for line in path.read_bytes().splitlines()]


def check_database(db_path, population, generations, workers):
    """The demo's database: a finished PBT run, every segment DONE and claimed once, consistent lineages."""
    exp = schedy.SchedyDB(db_path).get_experiment("demo")
    assert isinstance(exp, schedy.PopulationBasedTraining)
    assert exp.status == schedy.Experiment.DONE
    assert (exp.population_size, exp.max_generations) == (population, generations)
    jobs = exp.all_jobs()
    by_id = {j.job_id: j for j in jobs}
    assert all(j.status == schedy.Job.DONE for j in jobs), [j for j in jobs if j.status != schedy.Job.DONE]
    assert all(set(j.hyperparameters) == {"h0", "h1"} for j in jobs)
    assert all(0 <= j.hyperparameters[h] <= 1.0 for j in jobs for h in ("h0", "h1"))
    assert all(isinstance(j.results["Q"], float) and j.results["Q"] <= 1.2 for j in jobs)
    assert all(Path(j.results["model_path"]).name == f"{j.job_id}.npy" for j in jobs)
    assert all(Path(j.results["model_path"]).exists() for j in jobs)

    # Generations and lineage.
    assert sorted({j.member for j in jobs}) == list(range(population))
    assert sum(j.generation == 0 for j in jobs) == population
    assert len(jobs) <= population * generations
    for j in jobs:
        assert 0 <= j.generation < generations
        if j.generation == 0:
            assert j.parent_id is None
        else:
            parent = by_id[j.parent_id]
            assert j.generation == parent.generation + 1
            assert parent.status == schedy.Job.DONE
        chain = exp.lineage(j.job_id)
        assert [c.generation for c in chain] == list(range(j.generation + 1))
        assert chain[-1].job_id == j.job_id and chain[0].parent_id is None
        assert all(b.parent_id == a.job_id for a, b in zip(chain, chain[1:]))
    last = {}
    for j in jobs:
        last[j.member] = j
    assert all(j.generation == generations - 1 for j in last.values()), "a member stopped early"

    # The log: consecutive commits, each job claimed exactly once, by the demo's workers.
    commits = read_commits(db_path)
    assert [c.version for c in commits] == list(range(1, len(commits) + 1))
    assert find_double_claims(commits) == []
    claims = Counter(e["job"] for c in commits for e in c.events if e["type"] == ev.JOB_CLAIMED)
    assert sorted(claims) == sorted(by_id) and set(claims.values()) == {1}
    claimants = {e["worker"] for c in commits for e in c.events if e["type"] == ev.JOB_CLAIMED}
    assert claimants <= {f"worker-{i}" for i in range(workers)}
    assert commits[-1].events == [{"type": ev.EXPERIMENT_UPDATED, "status": ev.DONE}]
    return exp, jobs


def table(out, title):
    """The rows of the table printed under ``title``: lists of cells."""
    lines = out.split(title, 1)[1].splitlines()[1:]
    assert set(lines[1]) == {"-"}
    rows = []
    for line in lines[2:]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def test_demo_with_small_numbers(tmp_path):
    db = tmp_path / "db"
    proc = run_demo("--workers", "3", "--population", "6", "--generations", "5", "--db", str(db), "--seed", "5")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    exp, jobs = check_database(db, population=6, generations=5, workers=3)
    by_id = {j.job_id: j for j in jobs}

    # The leaderboard: the 5 best members' final segments, best Q first.
    rows = table(out, "Leaderboard")
    assert [int(r[0]) for r in rows] == [1, 2, 3, 4, 5]
    assert all(r[-1].startswith("worker-") for r in rows)
    scores = [float(r[4]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    for _rank, job_id, gen, member, q, h0, h1, _ in rows:
        job = by_id[job_id]
        assert (job.generation, job.member) == (int(gen), int(member)) and job.generation == 4
        assert float(q) == round(job.results["Q"], 5)
        assert (float(h0), float(h1)) == (round(job.hyperparameters["h0"], 3), round(job.hyperparameters["h1"], 3))
    assert len({r[3] for r in rows}) == 5, "one row per member"
    best = max(jobs, key=lambda j: j.results["Q"])
    assert rows[0][1] == best.job_id

    # The best model's hyperparameter schedule is its lineage.
    assert f"exp.lineage({best.job_id!r})" in out
    schedule = table(out, "Hyperparameter schedule")
    assert [r[1] for r in schedule] == [j.job_id for j in exp.lineage(best.job_id)]
    assert [int(r[0]) for r in schedule] == list(range(5))
    assert schedule[0][2] == "-" and [r[2] for r in schedule[1:]] == [r[1] for r in schedule[:-1]]

    # PBT beat the best member of the initial population.
    assert best.results["Q"] > max(j.results["Q"] for j in jobs if j.generation == 0)
    log = db / "experiments" / "demo" / "log.jsonl"
    assert str(log) in out
    assert str(db / "checkpoints") in out


def test_demo_defaults_use_a_fresh_temporary_directory(tmp_path):
    """No arguments: 4 workers, a population of 8, 10 generations, in a new directory under $TMPDIR that is kept."""
    env = dict(os.environ, TMPDIR=str(tmp_path))
    env.pop("SCHEDY_DB", None)
    proc = run_demo(env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (db,) = tmp_path.glob("schedy-demo-*")
    assert f"Database: {db}" in proc.stdout
    assert "Leaderboard" in proc.stdout and "Hyperparameter schedule" in proc.stdout
    exp, jobs = check_database(db, population=8, generations=10, workers=4)
    assert len(table(proc.stdout, "Hyperparameter schedule")) == 10


def test_demo_with_one_worker_is_reproducible_with_a_seed(tmp_path):
    """One worker, one seed: the same decisions, so the same jobs, hyperparameters and scores.

    (With several workers the order of commits varies, and each decision's random draws depend on
    the version of the commit it writes, so only replaying a log is exactly reproducible.)
    """
    runs = []
    for name in ("a", "b"):
        proc = run_demo(
            "--workers",
            "1",
            "--population",
            "4",
            "--generations",
            "3",
            "--db",
            str(tmp_path / name),
            "--seed",
            "11",
            "--pause",
            "0",
        )
        assert proc.returncode == 0, proc.stderr
        exp = schedy.SchedyDB(tmp_path / name).get_experiment("demo")
        runs.append(
            [(j.job_id, j.member, j.generation, j.parent_id, j.hyperparameters, j.results["Q"]) for j in exp.all_jobs()]
        )
    assert runs[0] == runs[1]


def test_demo_refuses_a_database_that_already_holds_the_demo(tmp_path):
    db = tmp_path / "db"
    assert run_demo("--workers", "1", "--population", "2", "--generations", "2", "--db", str(db)).returncode == 0
    before = (db / "experiments" / "demo" / "log.jsonl").read_bytes()
    proc = run_demo("--workers", "1", "--population", "2", "--generations", "2", "--db", str(db))
    assert proc.returncode == 2
    assert "already holds an experiment named 'demo'" in proc.stderr
    assert (db / "experiments" / "demo" / "log.jsonl").read_bytes() == before


def test_demo_rejects_bad_arguments():
    for args in (["--workers", "0"], ["--population", "0"], ["--generations", "0"]):
        proc = run_demo(*args)
        assert proc.returncode == 2
        assert args[0] in proc.stderr
