"""End to end: real worker processes run Population Based Training on a tiny numpy model.

Each segment reloads its parent's weights from ``results['model_path']``,
trains, and saves a new checkpoint named after its job id (tests/_pbt_worker.py).
The run must be a correct PBT run (each job claimed once, generations and
lineages consistent, every segment continued from its parent's weights,
exploits only from strictly better members) and must improve on the best
member of the initial population.
"""

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from conftest import log_commits

import schedy
from schedy.core import events as ev
from schedy.core.check import find_double_claims
from schedy.pbt import MINIMIZE, Perturb, Truncate
from schedy.random import LogUniform

WORKER = Path(__file__).with_name("_pbt_worker.py")
POPULATION, GENERATIONS, WORKERS = 8, 8, 4


def start_workers(db_path, name, checkpoints, sync, count, pause):
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(db_path), name, f"w{i}", str(checkpoints), str(sync), str(pause)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    # Let every process import numpy and open the database, then start them together.
    deadline = time.monotonic() + 60
    while len(list(sync.glob("ready-*"))) < count:
        assert time.monotonic() < deadline, "the workers did not start"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs if p.poll() is not None]
        time.sleep(0.01)
    (sync / "go").touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * count, [err for _, err in outputs]
    return [out.split() for out, _ in outputs]


def test_worker_processes_run_pbt_and_beat_the_initial_population(db, shared_db_path, tmp_path):
    db_path = shared_db_path
    exp = schedy.PopulationBasedTraining(
        "pbt-e2e",
        MINIMIZE,
        "loss",
        Truncate(0.25),
        explore={"lr": Perturb(0.8, 1.2, high=0.2)},
        initial_distributions={"lr": LogUniform(1e-3, 0.2)},
        population_size=POPULATION,
        max_generations=GENERATIONS,
        seed=20240611,
    )
    db.add_experiment(exp)
    checkpoints, sync = tmp_path / "checkpoints", tmp_path / "sync"
    checkpoints.mkdir()
    sync.mkdir()

    finished = start_workers(db_path, "pbt-e2e", checkpoints, sync, WORKERS, pause=0.01)

    exp = schedy.SchedyDB(db_path).get_experiment("pbt-e2e")
    assert exp.status == schedy.Experiment.DONE
    jobs = exp.all_jobs()
    by_id = {j.job_id: j for j in jobs}
    assert all(j.status == schedy.Job.DONE for j in jobs), [j for j in jobs if j.status != schedy.Job.DONE]

    # Every job was finished by exactly one worker, and the race was a race.
    reported = [job_id for ids in finished for job_id in ids]
    assert sorted(reported) == sorted(by_id)
    assert sum(1 for ids in finished if ids) >= 2, "one worker did everything"

    # The log: consecutive commits, one JobClaimed per job, never two holders, ends DONE.
    commits = log_commits(db, "pbt-e2e")
    assert [c.version for c in commits] == list(range(1, len(commits) + 1))
    assert find_double_claims(commits) == []
    claims = Counter(e["job"] for c in commits for e in c.events if e["type"] == ev.JOB_CLAIMED)
    assert sorted(claims) == sorted(by_id) and set(claims.values()) == {1}
    assert any(e == {"type": ev.EXPERIMENT_UPDATED, "status": ev.DONE} for c in commits for e in c.events)

    # The population: POPULATION members, each ending in the last generation.
    assert sorted({j.member for j in jobs}) == list(range(POPULATION))
    assert sum(j.generation == 0 for j in jobs) == POPULATION
    last = {}
    for j in jobs:
        last[j.member] = j
    assert {j.generation for j in last.values()} == {GENERATIONS - 1}

    exploits = []
    for j in jobs:
        assert 0 <= j.generation < GENERATIONS
        assert Path(j.results["model_path"]) == checkpoints / f"{j.job_id}.npy"
        assert Path(j.results["model_path"]).exists()
        if j.generation == 0:
            assert j.parent_id is None and j.results["start_path"] is None and j.results["start_sum"] == 0.0
            continue
        parent = by_id[j.parent_id]
        assert j.generation == parent.generation + 1
        # The segment started from its parent's checkpoint, which exists and holds the weights it loaded.
        assert j.results["start_path"] == parent.results["model_path"]
        assert Path(parent.results["model_path"]).exists()
        assert j.results["start_sum"] == float(np.load(parent.results["model_path"]).sum())
        if parent.member == j.member:
            assert j.hyperparameters == parent.hyperparameters  # no exploit, no explore
        else:
            exploits.append(j)
            # Truncate: the member copied a strictly better member; explore stayed within the factors and cap.
            previous = max(
                (k for k in jobs if k.member == j.member and int(k.job_id) < int(j.job_id)), key=lambda k: int(k.job_id)
            )
            assert parent.results["loss"] < previous.results["loss"]
            ratio = j.hyperparameters["lr"] / parent.hyperparameters["lr"]
            assert 0.8 <= ratio < 1.2 or j.hyperparameters["lr"] == 0.2
            assert j.hyperparameters["lr"] <= 0.2
    assert exploits, "no member ever exploited a better one"

    # Lineage: the chain from generation 0, each job the parent of the next.
    for j in jobs:
        chain = exp.lineage(j.job_id)
        assert [c.generation for c in chain] == list(range(j.generation + 1))
        assert chain[-1].job_id == j.job_id
        assert all(b.parent_id == a.job_id for a, b in zip(chain, chain[1:]))

    # PBT's best final model beats the best member of the initial population.
    initial_best = min(j.results["loss"] for j in jobs if j.generation == 0)
    final_best = min(j.results["loss"] for j in last.values())
    assert final_best < initial_best
    assert final_best < 0.5 * initial_best
