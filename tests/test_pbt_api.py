"""PopulationBasedTraining through the documented API, on every store."""

import json
import math
import subprocess
import sys

import pytest
from conftest import log_commits, log_size

import schedy
from schedy.core.check import find_double_claims
from schedy.errors import NoJobError
from schedy.pbt import MAXIMIZE, MINIMIZE, AddNoise, BinaryTournament, Perturb, Resample, Truncate
from schedy.random import Choice, LogUniform, Uniform


def sampled_pbt(name="pbt", **kw):
    args = dict(
        objective=MINIMIZE,
        result_name="loss",
        exploit=Truncate(0.25),
        explore={"lr": Perturb(0.8, 1.2, low=1e-5, high=1.0), "layers": Perturb()},
        initial_distributions={"lr": LogUniform(1e-4, 1e-1), "layers": Choice([1, 2, 4, 8])},
        population_size=4,
        max_generations=3,
        seed=7,
    )
    args.update(kw)
    return schedy.PopulationBasedTraining(name, **args)


def run_to_the_end(exp, loss):
    jobs = 0
    while True:
        try:
            job = exp.next_job()
        except NoJobError:
            return jobs
        with job:
            job.results["loss"] = loss(job)
        jobs += 1


def test_every_parameter_round_trips_through_the_log_in_another_process(db, shared_db_path):
    db_path = shared_db_path
    exp = schedy.PopulationBasedTraining(
        "full",
        MAXIMIZE,
        "acc",
        BinaryTournament(),
        explore={
            "lr": [Resample(LogUniform(1e-4, 1e-1), 0.3), Perturb(0.5, 2.0, low=1e-5, high=1, discrete=True)],
            "wd": AddNoise(0.01, low=0.0),
        },
        initial_distributions={"lr": LogUniform(1e-4, 1e-1), "wd": Uniform(0, 0.1)},
        population_size=6,
        status=schedy.Experiment.RUNNING,
        max_generations=12,
        seed=5,
    )
    db.add_experiment(exp)
    script = (
        "import sys, json, schedy\n"
        "exp = schedy.SchedyDB(sys.argv[1]).get_experiment('full')\n"
        "print(json.dumps([type(exp).__name__, exp._params(), exp.seed, exp.status]))"
    )
    out = subprocess.run([sys.executable, "-c", script, db_path], capture_output=True, text=True, check=True).stdout
    kind, params, seed, status = json.loads(out)
    assert kind == "PopulationBasedTraining" and params == exp._params() and seed == 5 and status == "RUNNING"
    back = schedy.SchedyDB(db_path).get_experiment("full")
    assert back == exp
    assert back.max_generations == 12 and back.population_size == 6 and back.exploit == BinaryTournament()
    assert back.explore["lr"][1] == Perturb(0.5, 2.0, low=1e-5, high=1, discrete=True)
    assert back.explore["wd"] == AddNoise(0.01, low=0.0)


def test_a_sampled_population_runs_to_max_generations_then_the_experiment_is_done(db, db_path):
    exp = db.add_experiment(sampled_pbt())
    n = run_to_the_end(exp, lambda job: abs(math.log10(job.hyperparameters["lr"]) + 2))
    assert schedy.SchedyDB(db_path).get_experiment("pbt").status == schedy.Experiment.DONE
    jobs = exp.all_jobs()
    # Each member trains up to generation 2; one that continues from another's segment may skip a generation.
    assert len(jobs) == n <= 4 * 3
    assert {m: max(j.generation for j in jobs if j.member == m) for m in range(4)} == {m: 2 for m in range(4)}
    assert all(j.status == "DONE" for j in jobs)
    by_id = {j.job_id: j for j in jobs}
    for j in jobs:
        if j.parent_id is None:
            assert j.generation == 0
        else:
            assert j.generation == by_id[j.parent_id].generation + 1
        assert j.generation < 3
    assert sorted(j.member for j in jobs if j.generation == 0) == [0, 1, 2, 3]
    assert find_double_claims(log_commits(db, "pbt")) == []
    with pytest.raises(NoJobError, match="DONE"):
        exp.next_job()


def test_lineage_is_the_chain_from_generation_zero(db):
    exp = db.add_experiment(sampled_pbt(max_generations=4))
    run_to_the_end(exp, lambda job: abs(math.log10(job.hyperparameters["lr"]) + 2))
    last = max(exp.all_jobs(), key=lambda j: (j.generation, int(j.job_id)))
    chain = exp.lineage(last.job_id)
    assert [j.generation for j in chain] == list(range(last.generation + 1))
    assert chain[0].parent_id is None
    assert all(b.parent_id == a.job_id for a, b in zip(chain, chain[1:]))
    assert chain[-1].job_id == last.job_id


def test_results_travel_to_the_next_segment_without_the_score(db):
    exp = db.add_experiment(sampled_pbt(population_size=1, max_generations=2))
    with exp.next_job() as job:
        job.results.update(loss=0.5, model_path=f"ckpt-{job.job_id}.npy")
    nxt = exp.next_job()
    assert nxt.parent_id == job.job_id and nxt.generation == 1
    assert nxt.results == {"model_path": f"ckpt-{job.job_id}.npy"}


def test_a_segment_finishing_without_its_result_is_refused_and_recorded_crashed_at_the_end_of_its_block(db):
    exp = db.add_experiment(sampled_pbt())
    with pytest.raises(ValueError, match=r"job '1' .*without its result 'loss'.*recorded CRASHED"):
        with exp.next_job() as job:
            job.results["accuracy"] = 0.9
    stored = exp.get_job(job.job_id)
    assert stored.status == "CRASHED" and stored.results["accuracy"] == 0.9  # not left RUNNING
    assert "without its result 'loss'" in stored.results["schedy_error"]
    redo = exp.next_job()
    n = log_size(db, "pbt")
    redo.status = "DONE"
    with pytest.raises(ValueError, match="without its result 'loss'"):
        redo.put()  # a put outside a with block is refused and writes nothing: set the score and put again
    assert log_size(db, "pbt") == n
    redo.results["loss"] = 0.1
    redo.put()
    assert exp.get_job(redo.job_id).status == "DONE"
    bad = exp.next_job()
    bad.results["loss"] = "low"
    bad.status = "DONE"
    with pytest.raises(ValueError, match="must be a number"):
        bad.put()


def test_hand_added_population_must_carry_the_explored_hyperparameters(db):
    exp = db.add_experiment(
        schedy.PopulationBasedTraining("hand", MINIMIZE, "loss", Truncate(), explore={"lr": Perturb()})
    )
    with pytest.raises(ValueError, match="missing 'lr'"):
        exp.add_job({"momentum": 0.9})
    with pytest.raises(ValueError, match="needs a number"):
        exp.add_job({"lr": "fast"})
    assert log_size(db, "hand") == 1
    for lr in (0.1, 0.01):
        job = exp.add_job({"lr": lr, "momentum": 0.9})
        assert job.generation == 0 and job.parent_id is None
    with pytest.raises(NoJobError, match="running"):
        first, second = exp.next_job(), exp.next_job()
        exp.next_job()
    assert {first.hyperparameters["lr"], second.hyperparameters["lr"]} == {0.1, 0.01}


def test_pushed_changes_apply_to_later_decisions(db, db_path):
    exp = db.add_experiment(sampled_pbt(population_size=2, max_generations=10))
    run = lambda e, n: [e.next_job() for _ in range(n)]
    for job in run(exp, 2):
        with job:
            job.results["loss"] = 1.0
    admin = schedy.SchedyDB(db_path).get_experiment("pbt")
    admin.max_generations = 2
    admin.push_updates()
    assert run_to_the_end(exp, lambda job: 1.0) == 2
    assert exp.status == "DONE" and exp.max_generations == 2


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda: sampled_pbt(objective="maximize"), "objective"),
        (lambda: sampled_pbt(exploit=Truncate(0.6)), "proportion"),
        (lambda: sampled_pbt(exploit="truncate"), "exploit"),
        (lambda: sampled_pbt(population_size=None), "go together"),
        (lambda: sampled_pbt(explore={"momentum": Perturb()}), "momentum"),
        (lambda: sampled_pbt(max_generations=0), "max_generations"),
        (lambda: sampled_pbt(result_name=""), "result_name"),
        (lambda: Perturb(min_factor=1.3, max_factor=1.2), "min_factor"),
        (lambda: Truncate(0), "proportion"),
        (lambda: Resample(Uniform(0, 1), probability=2), "probability"),
    ],
)
def test_bad_definitions_are_refused_at_construction(make, problem):
    with pytest.raises((ValueError, TypeError), match=problem):
        make()


def test_changing_one_experiments_explore_does_not_change_the_defaults_of_later_ones():
    """Regression: ``explore`` and ``initial_distributions`` once defaulted to one dict shared by every instance."""
    first = schedy.PopulationBasedTraining("a", schedy.pbt.MINIMIZE, "loss", schedy.pbt.Truncate())
    first.explore["lr"] = schedy.pbt.Perturb()
    first.initial_distributions["lr"] = schedy.random.LogUniform(1e-4, 1e-1)
    second = schedy.PopulationBasedTraining("b", schedy.pbt.MINIMIZE, "loss", schedy.pbt.Truncate())
    assert second.explore == {} and second.initial_distributions == {}
    assert first.explore is not second.explore and first.initial_distributions is not second.initial_distributions
