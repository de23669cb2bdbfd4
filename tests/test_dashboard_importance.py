"""Hyperparameter importance (schedy/dashboard/importance.py): Optuna's fANOVA over an experiment's DONE jobs.

States are read from the log as the dashboard reads them (``fold`` of the experiment's commits); the expected
numbers come from Optuna's own ``get_param_importances`` on a study built here from the same jobs.
"""

import math
import os
import subprocess
import sys

import optuna
import orjson
import pytest
from conftest import log_commits
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.importance import FanovaImportanceEvaluator, get_param_importances

import schedy
from schedy.core.state import fold
from schedy.dashboard import importance as importance_module
from schedy.dashboard.importance import INSTALL, METHOD, importance
from schedy.pbt import MINIMIZE, Perturb, Truncate
from schedy.random import LogUniform, Uniform
from schedy.simulation import Durations, Problem, lr_schedule, simulate


def state_of(db, name):
    return fold(log_commits(db, name))


def random_search(db, name, jobs, score, seed=0, distributions=None):
    """A random search of ``jobs`` jobs, each DONE with the results ``score(hyperparameters)``."""
    exp = db.add_experiment(
        schedy.RandomSearch(name, distributions or {"x": Uniform(-1.0, 1.0), "y": Uniform(-1.0, 1.0)}, seed=seed)
    )
    for _ in range(jobs):
        with exp.next_job() as job:
            job.results.update(score(job.hyperparameters))
    return state_of(db, name)


def optunas_own(trials, distributions, direction="minimize"):
    """Optuna's fANOVA importances of ``trials`` [(params, value)], as get_param_importances gives them."""
    study = optuna.create_study(direction=direction)
    study.add_trials([optuna.trial.create_trial(params=p, distributions=distributions, value=v) for p, v in trials])
    return get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))


def as_dict(result):
    return {d["name"]: d["importance"] for d in result["importances"]}


def done_with(state, name):
    """The DONE jobs of ``state`` whose result ``name`` is a finite number, in the order they were added."""
    return [
        j
        for j in state.jobs.in_order()
        if j.status == "DONE" and type(j.results.get(name)) in (int, float) and math.isfinite(j.results[name])
    ]


def test_x_matters_y_does_not_and_the_numbers_are_optunas(tmp_path):
    db = schedy.SchedyDB(str(tmp_path / "db"))
    state = random_search(db, "rs", 60, lambda hp: {"loss": (hp["x"] - 0.3) ** 2})
    got = importance(state, "loss", "min")
    assert got["method"] == METHOD
    assert (got["trials"], got["of"], got["left_out"]) == (60, 60, [])
    assert [d["name"] for d in got["importances"]] == ["x", "y"]
    found = as_dict(got)
    assert found["x"] > 0.9 and found["y"] < 0.1, found
    assert math.fsum(found.values()) == pytest.approx(1.0)
    # The same study made by hand: floats between the least and greatest value seen, the job's own score.
    jobs = list(state.jobs.in_order())
    xs, ys = [j.hyperparameters["x"] for j in jobs], [j.hyperparameters["y"] for j in jobs]
    dists = {"x": FloatDistribution(min(xs), max(xs)), "y": FloatDistribution(min(ys), max(ys))}
    trials = [({"x": j.hyperparameters["x"], "y": j.hyperparameters["y"]}, j.results["loss"]) for j in jobs]
    assert found == optunas_own(trials, dists)
    assert orjson.loads(orjson.dumps(got)) == got, "the result is JSON as it is"


def test_maximising_the_negated_score_ranks_the_same(tmp_path):
    db = schedy.SchedyDB(str(tmp_path / "db"))

    def score(hp):
        f = 4 * hp["x"] ** 2 + abs(hp["y"])  # x matters more, y somewhat: a ranking with two real places
        return {"loss": f, "reward": -f}

    state = random_search(db, "sym", 50, score, seed=5)
    low, high = importance(state, "loss", "min"), importance(state, "reward", "max")
    assert [d["name"] for d in low["importances"]] == [d["name"] for d in high["importances"]] == ["x", "y"]
    assert as_dict(high) == pytest.approx(as_dict(low), rel=1e-6)
    with pytest.raises(ValueError, match="goal"):
        importance(state, "loss", "minimize")


def test_categorical_values_1_1point0_true_and_a_are_four(tmp_path):
    """1, 1.0 and True are equal in Python but three values to the user; a list is unhashable."""
    db = schedy.SchedyDB(str(tmp_path / "db"))
    exp = db.add_experiment(schedy.ManualSearch("cat"))
    choices = [1, 1.0, True, "a"]
    layers = [[64, 64], [128], {"width": 32}]
    trials = []
    for i in range(40):
        c, shape, noise = choices[i % 4], layers[i % 3], (i * 7 % 11) / 11.0
        loss = 10.0 * (i % 4) + 0.01 * noise  # only the choice (by its index) matters
        exp.add_job({"c": c, "shape": shape, "noise": noise}, status="DONE", results={"loss": loss})
        trials.append(({"c": i % 4, "noise": noise, "shape": i % 3}, loss))
    state = state_of(db, "cat")
    kept = [j.hyperparameters["c"] for j in state.jobs.in_order()][:4]
    assert [(type(v), v) for v in kept] == [(int, 1), (float, 1.0), (bool, True), (str, "a")], "the log keeps them"
    got = importance(state, "loss", "min")
    assert got["trials"] == 40 and got["left_out"] == []
    found = as_dict(got)
    assert got["importances"][0]["name"] == "c" and found["c"] > 0.9, found
    dists = {
        "c": CategoricalDistribution([0, 1, 2, 3]),  # four categories, in the order first seen
        "noise": FloatDistribution(0.0, 10 / 11.0),
        "shape": CategoricalDistribution([0, 1, 2]),
    }
    assert found == optunas_own(trials, dists)


def test_the_space_is_read_from_the_values():
    space, left_out = importance_module._space(
        [
            {"lr": 1e-5, "width": 1, "flag": True, "mixed": 1, "same": "s", "odd": 0.5},
            {"lr": 1e-1, "width": 3.5, "flag": False, "mixed": "1", "same": "s", "odd": {"$f": "NaN"}},
            {"lr": 1e-3, "width": 2, "flag": True, "mixed": 1, "same": "s", "odd": 0.5},
        ]
    )
    kinds = {name: kind for name, (kind, _) in space.items()}
    assert kinds == {
        "flag": ("categorical", 2),  # booleans are not numbers
        "lr": ("float", 1e-5, 1e-1, True),  # positive, spread over more than a factor of 100: log scale
        "mixed": ("categorical", 2),  # 1 and "1" are two values
        "odd": ("categorical", 2),  # NaN is no point of a float range: a value of its own
        "width": ("float", 1.0, 3.5, False),
    }
    assert list(space) == sorted(space)
    assert left_out == [{"name": "same", "reason": "the same value in every job"}]
    assert space["mixed"][1]("1") == 1 and space["width"][1](2) == 2.0 and type(space["width"][1](2)) is float


def test_too_few_scored_jobs_give_the_reason(tmp_path):
    db = schedy.SchedyDB(str(tmp_path / "db"))
    exp = db.add_experiment(schedy.ManualSearch("few"))
    assert importance(state_of(db, "few"), "loss", "min") == {
        "importances": [],
        "reason": "importance needs at least 2 DONE jobs with a number for 'loss', found 0",
    }
    exp.add_job({"x": 1.0}, status="DONE", results={"loss": 1.0})
    exp.add_job({"x": 2.0}, status="DONE", results={"loss": math.nan})  # no number: not a trial
    exp.add_job({"x": 3.0}, status="DONE", results={"loss": True})
    exp.add_job({"x": 4.0}, status="DONE", results={"accuracy": 0.5})
    exp.add_job({"x": 5.0}, status="CRASHED", results={"loss": 0.5})  # not DONE
    exp.add_job({"x": 6.0})
    got = importance(state_of(db, "few"), "loss", "min")
    assert got["importances"] == [] and got["reason"].endswith("found 1"), got


def test_no_varying_hyperparameter_gives_the_reason_and_a_missing_one_is_left_out(tmp_path):
    db = schedy.SchedyDB(str(tmp_path / "db"))
    exp = db.add_experiment(schedy.ManualSearch("flat"))
    for i in range(5):
        exp.add_job({"lr": 0.1, "opt": "sgd"}, status="DONE", results={"loss": float(i)})
    assert importance(state_of(db, "flat"), "loss", "min") == {
        "importances": [],
        "reason": "no hyperparameter varies across the jobs with a score",
        "left_out": [
            {"name": "lr", "reason": "the same value in every job"},
            {"name": "opt", "reason": "the same value in every job"},
        ],
    }
    # A job added without "opt": the hyperparameter is left out, the job is kept.
    exp.add_job({"lr": 0.2}, status="DONE", results={"loss": 9.0})
    got = importance(state_of(db, "flat"), "loss", "min")
    assert got["trials"] == 6
    assert got["importances"] == [{"name": "lr", "importance": 1.0}]
    assert got["left_out"] == [{"name": "opt", "reason": "missing from 1 of the 6 jobs"}]


def test_a_score_that_never_changes_gives_the_reason(tmp_path):
    db = schedy.SchedyDB(str(tmp_path / "db"))
    state = random_search(db, "const", 10, lambda hp: {"loss": 0.5})
    got = importance(state, "loss", "min")
    assert got == {"importances": [], "reason": "every job has the same 'loss': there is no variation to explain"}


@pytest.mark.parametrize("scale", [1e-12, 1e-300, 1e200, 1e307])
def test_tiny_and_huge_scores_rank_as_ordinary_ones(tmp_path, scale):
    """scikit-learn's trees take a node of variance under 2.2e-16 for pure, and 1e200 squared overflows."""
    db = schedy.SchedyDB(str(tmp_path / "db"))

    def score(hp):
        f = (hp["x"] - 0.3) ** 2 + 0.1 * hp["y"] ** 2
        return {"loss": f, "scaled": 3.0 * scale + scale * f}

    state = random_search(db, "scaled", 60, score)
    ordinary, scaled = as_dict(importance(state, "loss", "min")), as_dict(importance(state, "scaled", "min"))
    assert all(math.isfinite(v) for v in scaled.values()), scaled
    assert scaled == pytest.approx(ordinary, abs=0.02)
    assert scaled["x"] > 0.8


def test_a_pbt_is_measured_over_its_segments(tmp_path):
    db = schedy.SchedyDB(str(tmp_path / "db"))
    problem = lr_schedule(population=8, segments=6, steps=100)
    simulate(problem.strategies()["pbt"], problem, seed=1, db=db, name="lr-pbt")
    state = state_of(db, "lr-pbt")
    segments = done_with(state, "loss")
    assert len(segments) > 8, "several segments per member"
    got = importance(state, "loss", "min")
    assert (got["trials"], got["of"]) == (len(segments), len(segments))
    assert got["importances"] == [{"name": "lr", "importance": 1.0}], "one hyperparameter has it all"

    def train(hps, state, steps, rng):  # the loss falls with lr alone; momentum does nothing
        x = (0.0 if state is None else state) + steps * hps["lr"]
        return x, 1.0 / (1.0 + x)

    two = schedy.PopulationBasedTraining(
        "two",
        MINIMIZE,
        "loss",
        Truncate(0.25),
        {"lr": Perturb(0.8, 1.2), "momentum": Perturb(0.8, 1.2)},
        {"lr": LogUniform(0.01, 1.0), "momentum": Uniform(0.5, 0.99)},
        population_size=6,
        max_generations=6,
    )
    problem = Problem(train, steps=1, segments=6, workers=2, durations=Durations(mean=60.0))
    simulate(two, problem, seed=2, db=db, name="two")
    state = state_of(db, "two")
    segments = done_with(state, "loss")
    got = importance(state, "loss", "min")
    assert got["trials"] == len(segments) > 6
    assert sorted(d["name"] for d in got["importances"]) == ["lr", "momentum"]
    lrs = [j.hyperparameters["lr"] for j in segments]
    moms = [j.hyperparameters["momentum"] for j in segments]
    dists = {
        "lr": FloatDistribution(min(lrs), max(lrs), log=max(lrs) / min(lrs) > 100),
        "momentum": FloatDistribution(min(moms), max(moms)),
    }
    trials = [
        ({"lr": j.hyperparameters["lr"], "momentum": j.hyperparameters["momentum"]}, j.results["loss"])
        for j in segments
    ]
    assert as_dict(got) == optunas_own(trials, dists)


def test_past_max_trials_a_seeded_sample_is_used(tmp_path):
    db = schedy.SchedyDB(str(tmp_path / "db"))
    state = random_search(db, "many", 40, lambda hp: {"loss": (hp["x"] - 0.3) ** 2})
    got = importance(state, "loss", "min", max_trials=20)
    assert (got["trials"], got["of"]) == (20, 40)
    assert got == importance(state, "loss", "min", max_trials=20), "the same sample each time"
    assert got != importance(state, "loss", "min"), "not all the jobs"
    assert as_dict(got)["x"] > 0.8
    assert importance(state, "loss", "min", max_trials=40)["trials"] == 40
    with pytest.raises(ValueError, match="max_trials"):
        importance(state, "loss", "min", max_trials=1)


def test_another_process_gives_the_same_numbers(tmp_path):
    """Nothing depends on the process: not string hashing (PYTHONHASHSEED), not the order of a set."""
    db = schedy.SchedyDB(str(tmp_path / "db"))
    exp = db.add_experiment(schedy.ManualSearch("mixed"))
    for i in range(30):
        hp = {"x": i / 29.0, "opt": ["sgd", "adam", "rmsprop"][i % 3], "tags": [str(i % 2)]}
        exp.add_job(hp, status="DONE", results={"loss": (i / 29.0) ** 2 + (i % 3) * 0.2})
    here = importance(state_of(db, "mixed"), "loss", "min")
    code = (
        "import sys, orjson; sys.path.insert(0, sys.argv[2]); import schedy; from conftest import log_commits;"
        "from schedy.core.state import fold; from schedy.dashboard.importance import importance;"
        "print(orjson.dumps(importance(fold(log_commits(schedy.SchedyDB(sys.argv[1]), 'mixed')), 'loss', 'min'))"
        ".decode())"
    )
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    for hash_seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / "db"), tests_dir],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert orjson.loads(out) == here


def test_without_optuna_or_scikit_learn_the_reason_says_what_to_install(tmp_path, monkeypatch):
    db = schedy.SchedyDB(str(tmp_path / "db"))
    state = random_search(db, "rs", 5, lambda hp: {"loss": hp["x"]})

    def no_sklearn(**kwargs):  # what Optuna's evaluator raises when scikit-learn cannot be imported
        raise ImportError("Tried to import 'sklearn' but failed.")

    monkeypatch.setattr(optuna.importance, "FanovaImportanceEvaluator", no_sklearn)
    assert importance(state, "loss", "min") == {
        "importances": [],
        "reason": f"importance needs scikit-learn: {INSTALL}",
    }
    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` now fails
    assert importance(state, "loss", "min") == {
        "importances": [],
        "reason": "importance needs Optuna and scikit-learn: pip install 'schedy[dashboard]'",
    }


def test_optunas_logging_is_quiet_and_its_verbosity_untouched(tmp_path, caplog):
    db = schedy.SchedyDB(str(tmp_path / "db"))
    state = random_search(db, "rs", 10, lambda hp: {"loss": hp["x"]})
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)
    optuna.logging.enable_propagation()
    try:
        with caplog.at_level("INFO"):
            importance(state, "loss", "min")
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
    finally:
        optuna.logging.disable_propagation()
        optuna.logging.set_verbosity(before)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("optuna")] == []
