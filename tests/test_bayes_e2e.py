"""A Bayesian search (Optuna's TPE through Schedy) with real worker processes sharing one database.

Four processes drain a search of 40 jobs at once, on a local directory and on S3 (the moto server of
conftest): every job DONE exactly once and claimed once, every proposal recorded in the log and decided again
identically from the log alone, and no two jobs with the same hyperparameters (the running jobs are pending
trials to the sampler, and each decision has its own seed).
"""

import sys
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import log_commits, new_bucket, run_together

pytest.importorskip("optuna")

import schedy  # noqa: E402
from schedy.core import bayes, decide  # noqa: E402
from schedy.core import events as ev  # noqa: E402
from schedy.core.check import find_double_claims  # noqa: E402
from schedy.core.schedulers import BayesScheduler  # noqa: E402
from schedy.core.state import apply  # noqa: E402
from schedy.samplers import suggest  # noqa: E402

WORKER = Path(__file__).with_name("_bayes_worker.py")
PROCESSES, MAX_JOBS = 4, 40


def run_workers(url, meet):
    meet.mkdir()
    return run_together(
        [[sys.executable, str(WORKER), url, f"w{n}", str(meet), str(PROCESSES)] for n in range(PROCESSES)]
    )


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


@pytest.mark.parametrize(("store", "sampler"), [("file", "tpe"), ("s3", "tpe"), ("file", "cmaes"), ("file", "qmc")])
def test_four_processes_run_a_bayesian_search_to_its_end_and_every_proposal_replays(store, sampler, tmp_path, request):
    if sampler != "tpe":
        pytest.importorskip("cmaes" if sampler == "cmaes" else "scipy")
    url = str(tmp_path / "db") if store == "file" else f"s3://{new_bucket(request.getfixturevalue('s3_endpoint'))}/db"
    db = schedy.SchedyDB(url)
    dists = {"x1": schedy.random.Uniform(-5.0, 10.0), "x2": schedy.random.Uniform(0.0, 15.0)}
    db.add_experiment(schedy.BayesianSearch("bayes", dists, "loss", sampler=sampler, max_jobs=MAX_JOBS, seed=11))
    reports = run_workers(url, tmp_path / "meet")

    reported = [j for r in reports for j in r["done"]]
    assert sorted(reported, key=int) == [str(i) for i in range(1, MAX_JOBS + 1)]  # each job once, all of them
    assert all(r["done"] for r in reports)  # every worker ran jobs at the same time as the others
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
    if sampler == "cmaes":
        # Each job's generation is the first not yet complete when it was proposed: never lower than an earlier
        # job's, and every generation before the last has its population of finished jobs.
        generations = [j.generation for j in jobs]
        assert generations == sorted(generations) and generations[-1] >= 3
        size = BayesScheduler.config(log_commits(db, "bayes")[0].events[0]["params"]).sampler_options["population_size"]
        assert all(generations.count(g) >= size for g in range(generations[-1]))
    if sampler == "qmc":
        # Job n holds point n of the experiment's scrambled Sobol sequence, whichever worker asked for it.
        from scipy.stats import qmc

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # 41 points: Sobol is balanced at powers of 2
            sequence = qmc.Sobol(d=2, scramble=True, rng=np.random.default_rng(11)).random(MAX_JOBS + 1)
        expected = [(-5.0 + 15.0 * u1, 15.0 * u2) for u1, u2 in sequence[1:]]
        assert np.allclose(points, expected, rtol=0, atol=1e-12)
