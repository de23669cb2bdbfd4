"""Real processes race for jobs on one database: each job is done exactly once."""

import subprocess
import sys
from collections import Counter
from pathlib import Path

from conftest import log_commits

import schedy
from schedy.core import events as ev
from schedy.core.check import find_double_claims

WORKER = Path(__file__).with_name("_worker.py")


def test_four_processes_drain_a_queue_of_500_jobs_each_exactly_once(db, shared_db_path):
    db_path = shared_db_path
    exp = schedy.ManualSearch("drain")
    db.add_experiment(exp)
    for i in range(500):
        exp.add_job({"i": i})

    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), db_path, "drain", f"w{n}", "0.005"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    finished = [p.communicate(timeout=900) for p in procs]  # stops a hang only (Azurite is slow under load)
    outputs = [out for out, _ in finished]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err[-2000:] for _, err in finished]

    reported = [job_id for out in outputs for job_id in out.split()]
    assert len(reported) == 500 and len(set(reported)) == 500, "a job was done twice or lost"
    assert sum(1 for out in outputs if out.split()) >= 2, (
        f"the race was not a race: one worker did everything {[len(o.split()) for o in outputs]}"
    )

    jobs = schedy.SchedyDB(db_path).get_experiment("drain").all_jobs()
    assert len(jobs) == 500
    assert all(j.status == schedy.Job.DONE for j in jobs)
    assert all(j.results["value"] == j.hyperparameters["i"] * 2 for j in jobs)

    commits = log_commits(db, "drain")
    assert find_double_claims(commits) == []
    claims = Counter(e["job"] for c in commits for e in c.events if e["type"] == ev.JOB_CLAIMED)
    assert set(claims.values()) == {1}
    assert [c.version for c in commits] == list(range(1, len(commits) + 1))


def test_processes_sampling_random_jobs_never_share_one(db, shared_db_path):
    db_path = shared_db_path
    exp = schedy.RandomSearch("sampled", {"i": schedy.random.Choice(range(1000))})
    db.add_experiment(exp)
    script = (
        "import sys, schedy\n"
        "db = schedy.SchedyDB(sys.argv[1], worker=sys.argv[2])\n"
        "exp = db.get_experiment('sampled')\n"
        "for _ in range(40):\n"
        "    with exp.next_job() as job:\n"
        "        job.results['w'] = sys.argv[2]\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, db_path, f"w{n}"]) for n in range(4)]
    assert [p.wait(timeout=900) for p in procs] == [0, 0, 0, 0]
    jobs = db.get_experiment("sampled").all_jobs()
    assert len(jobs) == 160 and all(j.status == "DONE" for j in jobs)
    commits = log_commits(db, "sampled")
    assert find_double_claims(commits) == []
    finishers = Counter(
        e["job"] for c in commits for e in c.events if e["type"] == ev.JOB_UPDATED and e.get("status") == ev.DONE
    )
    assert len(finishers) == 160 and set(finishers.values()) == {1}
