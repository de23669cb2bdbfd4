"""schedy.simulation runs a Bayesian search with the real decisions, Optuna's sampler included."""

import math

import pytest

pytest.importorskip("optuna")

import schedy  # noqa: E402
from schedy.random import Uniform  # noqa: E402
from schedy.simulation import Problem, simulate  # noqa: E402

DISTS = {"x1": Uniform(-5.0, 10.0), "x2": Uniform(0.0, 15.0)}


def branin(hp, state, steps, rng):
    x1, x2 = hp["x1"], hp["x2"]
    b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
    return state, (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


PROBLEM = Problem(branin, segments=1, score="loss", objective=schedy.pbt.MINIMIZE)


def test_a_simulated_search_is_the_same_for_the_same_seed_and_ends_at_max_jobs():
    runs = [
        simulate(schedy.BayesianSearch("b", DISTS, "loss", max_jobs=24, seed=4), PROBLEM, workers=4, seed=1)
        for _ in range(2)
    ]
    a, b = runs
    assert a.state.status == "DONE" and len(a.state.jobs) == 24
    assert [j.hyperparameters for j in a.state.jobs.values()] == [j.hyperparameters for j in b.state.jobs.values()]
    assert a.best_score == b.best_score


def test_the_problem_must_report_the_result_the_search_learns_from():
    with pytest.raises(ValueError, match="ranks by 'loss' but the problem reports 'acc'"):
        simulate(
            schedy.BayesianSearch("b", DISTS, "loss", max_jobs=4),
            Problem(branin, segments=1, score="acc", objective=schedy.pbt.MINIMIZE),
        )
    with pytest.raises(ValueError, match="never ends by itself"):
        simulate(schedy.BayesianSearch("b", DISTS, "loss"), PROBLEM)
