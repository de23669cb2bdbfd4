"""A Bayesian search (Optuna's TPE through Schedy) with real worker processes sharing one database.

Four processes drain a search of 40 jobs at once, on a local directory and on S3 (the moto server of
conftest): every job DONE exactly once and claimed once, every proposal recorded in the log and decided again
identically from the log alone, and no two jobs with the same hyperparameters (the running jobs are pending
trials to the sampler, and each decision has its own seed).
"""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import log_commits, new_bucket

pytest.importorskip("optuna")

import schedy  # noqa: E402
from schedy.core import bayes, decide  # noqa: E402
from schedy.core import events as ev  # noqa: E402
from schedy.core.check import find_double_claims  # noqa: E402
from schedy.core.schedulers import BayesScheduler  # noqa: E402
from schedy.core.state import apply  # noqa: E402
from schedy.samplers.optuna import suggest  # noqa: E402

WORKER = Path(__file__).with_name("_bayes_worker.py")
PROCESSES, MAX_JOBS = 4, 40


def run_workers(url):
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), url, f"w{n}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    try:
        for p in procs:
            line = p.stdout.readline()
            assert line == "READY\n", (line, p.stderr.read()[-2000:] if p.poll() is not None else "")
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        finished = [p.communicate(timeout=900) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0] * PROCESSES, [err[-2000:] for _, err in finished]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in finished]


def replayed_proposals(commits):
    """Every job the sampler proposed, decided again from the log before its commit: (recorded, decided)."""
    state, out = None, []
    for c in commits:
        added = [e for e in c.events if e["type"] == ev.JOB_ADDED]
        if added and any(e["type"] == ev.JOB_CLAIMED for e in c.events):
            config = BayesScheduler.config(state.params)
            request = bayes.request(state, config, decide.rng_for(state, c.version))
            out.append((added[0]["hyperparameters"], request.hyperparameters(suggest(request))))
        state = apply(state, c)
    return out


@pytest.mark.parametrize("store", ["file", "s3"])
def test_four_processes_run_a_bayesian_search_to_its_end_and_every_proposal_replays(store, tmp_path, request):
    url = str(tmp_path / "db") if store == "file" else f"s3://{new_bucket(request.getfixturevalue('s3_endpoint'))}/db"
    db = schedy.SchedyDB(url)
    dists = {"x1": schedy.random.Uniform(-5.0, 10.0), "x2": schedy.random.Uniform(0.0, 15.0)}
    db.add_experiment(schedy.BayesianSearch("bayes", dists, "loss", max_jobs=MAX_JOBS, seed=11))
    reports = run_workers(url)

    reported = [j for r in reports for j in r["done"]]
    assert sorted(reported, key=int) == [str(i) for i in range(1, MAX_JOBS + 1)]  # each job once, all of them
    assert sum(bool(r["done"]) for r in reports) >= 2  # the work was shared
    commits = log_commits(db, "bayes")
    assert find_double_claims(commits) == []
    claims = Counter(e["job"] for c in commits for e in c.events if e["type"] == ev.JOB_CLAIMED)
    assert set(claims.values()) == {1}
    exp = db.get_experiment("bayes")
    assert exp.status == "DONE"  # max_jobs reached and every job finished: the search ended by itself
    jobs = exp.all_jobs()
    assert all(j.status == "DONE" for j in jobs)
    points = [(j.hyperparameters["x1"], j.hyperparameters["x2"]) for j in jobs]
    assert len(set(points)) == MAX_JOBS
    proposals = replayed_proposals(commits)
    assert len(proposals) == MAX_JOBS
    assert all(recorded == decided for recorded, decided in proposals)
