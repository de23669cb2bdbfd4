"""End to end: synchronous PBT and PB2 with real worker processes on a tiny numpy model.

The workers are those of tests/test_pbt_e2e.py (tests/_pbt_worker.py): each
segment reloads its parent's weights from ``results['model_path']``, trains,
saves a checkpoint named after its job id, and reports ``loss``.
"""

import numpy as np
from conftest import log_commits
from test_pbt_e2e import start_workers

import schedy
from schedy.core import events as ev
from schedy.core.check import find_double_claims
from schedy.core.state import apply
from schedy.pbt import MINIMIZE, PB2, Perturb, Truncate
from schedy.random import LogUniform

POPULATION, GENERATIONS, WORKERS = 6, 5, 4


def run(db, db_path, tmp_path, exp):
    db.add_experiment(exp)
    checkpoints, sync = tmp_path / "checkpoints", tmp_path / "sync"
    checkpoints.mkdir()
    sync.mkdir()
    finished = start_workers(db_path, exp.name, checkpoints, sync, WORKERS, pause=0.01)
    exp = schedy.SchedyDB(db_path).get_experiment(exp.name)
    assert exp.status == schedy.Experiment.DONE
    jobs = {j.job_id: j for j in exp.all_jobs()}
    assert all(j.status == schedy.Job.DONE for j in jobs.values())
    assert sorted(i for ids in finished for i in ids) == sorted(jobs)  # each job finished by one worker
    commits = log_commits(db, exp.name)
    assert find_double_claims(commits) == []
    # One segment per member and generation; each continued from its parent's weights.
    assert sorted((j.member, j.generation) for j in jobs.values()) == sorted(
        (m, g) for m in range(POPULATION) for g in range(GENERATIONS)
    )
    for j in jobs.values():
        if j.parent_id is not None:
            parent = jobs[j.parent_id]
            assert j.generation == parent.generation + 1
            assert j.results["start_path"] == parent.results["model_path"]
            assert j.results["start_sum"] == float(np.load(parent.results["model_path"]).sum())
    initial = min(j.results["loss"] for j in jobs.values() if j.generation == 0)
    final = min(j.results["loss"] for j in jobs.values() if j.generation == GENERATIONS - 1)
    assert final < 0.5 * initial
    return exp, jobs, commits


def test_synchronous_pbt_starts_no_generation_before_the_last_one_is_finished(db, shared_db_path, tmp_path):
    exp = schedy.PopulationBasedTraining(
        "pbt-sync",
        MINIMIZE,
        "loss",
        Truncate(0.25),
        {"lr": Perturb(0.8, 1.2, high=0.2)},
        {"lr": LogUniform(1e-3, 0.2)},
        population_size=POPULATION,
        max_generations=GENERATIONS,
        seed=7,
        synchronous=True,
    )
    _, jobs, commits = run(db, shared_db_path, tmp_path, exp)
    state, checked = None, 0
    for c in commits:
        for e in c.events:
            if e["type"] == ev.JOB_ADDED and e["generation"] > 0:
                g = e["generation"] - 1
                # When a segment of generation g + 1 was added, every member had finished generation g.
                done = {j.member for j in state.jobs.values() if j.status == ev.DONE and j.generation == g}
                assert done == set(range(POPULATION)), (c.version, g, done)
                checked += 1
        state = apply(state, c)
    assert checked == POPULATION * (GENERATIONS - 1)
    exploits = [j for j in jobs.values() if j.parent_id and jobs[j.parent_id].member != j.member]
    assert exploits, "no member ever copied a better one"


def test_pb2_explores_within_its_bounds_from_the_population_gains(db, shared_db_path, tmp_path):
    bandit = PB2({"lr": (1e-3, 0.2)}, log_scale=("lr",))
    exp = schedy.PopulationBasedTraining(
        "pbt-pb2",
        MINIMIZE,
        "loss",
        Truncate(0.25),
        bandit,
        {"lr": LogUniform(1e-3, 0.2)},
        population_size=POPULATION,
        max_generations=GENERATIONS,
        seed=11,
    )
    again = schedy.SchedyDB(shared_db_path)
    _, jobs, commits = run(db, shared_db_path, tmp_path, exp)
    assert again.get_experiment("pbt-pb2").explore == bandit  # the definition round-trips through the log
    exploits = [j for j in jobs.values() if j.parent_id and jobs[j.parent_id].member != j.member]
    assert exploits, "no member ever copied a better one"
    for j in exploits:
        assert 1e-3 <= j.hyperparameters["lr"] <= 0.2
    # PB2 chose values, not copies: the copied learning rate changed in the exploits.
    assert any(j.hyperparameters["lr"] != jobs[j.parent_id].hyperparameters["lr"] for j in exploits)
