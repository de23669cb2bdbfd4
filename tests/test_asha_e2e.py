"""ASHA and Hyperband with real worker processes sharing one database, checkpoints passed through results.

Four processes run the worker loop of docs/asha.md (tests/_asha_worker.py) at once, on a local directory
and on S3 (the moto server of conftest). Every job must be DONE exactly once, claimed once, and a promoted
job must have continued from its parent's checkpoint for exactly the epochs between the two rungs.
"""

import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import log_commits, new_bucket, run_together

import schedy
from schedy.core import events as ev
from schedy.core.check import find_double_claims

WORKER = Path(__file__).with_name("_asha_worker.py")
PROCESSES, MAX_JOBS = 4, 60


def run_workers(url, tmp_path):
    meet = tmp_path / "meet"
    meet.mkdir()
    return run_together(
        [
            [sys.executable, str(WORKER), url, f"w{n}", str(tmp_path), str(meet), str(PROCESSES)]
            for n in range(PROCESSES)
        ],
        600,
    )


@pytest.mark.parametrize("kind", [schedy.ASHA, schedy.Hyperband])
@pytest.mark.parametrize("store", ["file", "s3"])
def test_four_processes_run_a_search_to_its_end_and_promotions_continue_their_parents(kind, store, tmp_path, request):
    url = str(tmp_path / "db") if store == "file" else f"s3://{new_bucket(request.getfixturevalue('s3_endpoint'))}/db"
    db = schedy.SchedyDB(url)
    exp = db.add_experiment(
        kind("asha", {"lr": schedy.random.LogUniform(1e-3, 0.3)}, "loss", max_resource=9, max_jobs=MAX_JOBS, seed=5)
    )
    reports = run_workers(url, tmp_path)

    reported = [j for r in reports for j in r["done"]]
    assert sorted(reported, key=int) == [str(i) for i in range(1, MAX_JOBS + 1)]  # each job once, all of them
    assert all(r["done"] for r in reports)  # every worker ran jobs at the same time as the others
    commits = log_commits(db, "asha")
    assert find_double_claims(commits) == []
    claims = Counter(e["job"] for c in commits for e in c.events if e["type"] == ev.JOB_CLAIMED)
    assert set(claims.values()) == {1}
    exp = db.get_experiment("asha")
    assert exp.status == "DONE"  # max_jobs reached and every job finished: the search ended by itself
    jobs = {j.job_id: j for j in exp.all_jobs()}
    assert all(j.status == "DONE" for j in jobs.values())
    promoted = [j for j in jobs.values() if j.parent_id is not None]
    assert promoted, "nothing was promoted"
    for j in jobs.values():
        if j.parent_id is None:
            assert j.results["loaded"] is None and j.results["epochs"] == j.resource and j.rung >= 0
        else:
            parent = jobs[j.parent_id]
            assert j.results["loaded"] == parent.results["model_path"]
            assert j.results["epochs"] == j.resource - parent.resource > 0
            assert (j.rung, j.member, j.hyperparameters) == (parent.rung + 1, parent.member, parent.hyperparameters)
    assert max(j.resource for j in jobs.values()) == 9
