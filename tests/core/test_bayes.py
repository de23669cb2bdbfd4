"""The question a Bayesian search asks its sampler, as pure values: the definition, the space, the trials."""

import numpy as np
import pytest

from schedy.core import bayes, decide
from schedy.core import events as ev
from schedy.core.codec import Commit
from schedy.core.distributions import Choice, Constant, LogUniform, Normal, Uniform
from schedy.core.state import apply

DISTS = {"x": Uniform(-5.0, 5.0), "lr": LogUniform(1e-4, 1.0), "act": Choice(["relu", 1, 1.0, True]), "k": Constant(3)}


def config(**kw):
    return bayes.Config(**{"distributions": DISTS, "result_name": "loss", **kw})


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"objective": bayes.MAXIMIZE, "sampler": "random", "max_jobs": 40},
        {"sampler_options": {"n_startup_trials": 4, "constant_liar": False}},
        {"sampler": "cmaes"},
        {"sampler": "cmaes", "sampler_options": {"population_size": 12, "sigma0": 0.3}},
        {"sampler": "qmc", "sampler_options": {"qmc_type": "halton", "scramble": False}},
    ],
)
def test_a_definition_round_trips_through_the_log_with_every_option_written(kw):
    cfg = config(**kw)
    assert bayes.Config.from_log(cfg.to_log()) == cfg
    written = cfg.to_log()["scheduler"]["BayesianSearch"]["samplerOptions"]
    assert set(written) == set(bayes.SAMPLERS[cfg.sampler])  # the defaults are in the log, not in a library
    assert all(written[k] == v for k, v in kw.get("sampler_options", {}).items())


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"distributions": {"x": Normal(0.0, 1.0)}}, "'x' has a Normal distribution, which is unbounded"),
        ({"distributions": {"c": Choice([1, 2], [0.9, 0.1])}}, "'c' has a weighted Choice"),
        ({"distributions": {"x": Uniform(-1e308, 1e308)}}, "wider than a float can hold"),
        ({"distributions": {"k": Constant(1)}}, "at least one hyperparameter to search"),
        ({"sampler": "cma"}, "sampler must be one of 'tpe', 'cmaes', 'qmc', 'random', got 'cma'"),
        (
            {"sampler": "cmaes", "distributions": {"x": Uniform(0, 1), "c": Choice([1, 2])}},
            "the cmaes sampler needs at least 2 Uniform or LogUniform hyperparameters",
        ),
        ({"sampler": "cmaes", "sampler_options": {"population_size": 1}}, "'population_size' must be at least 2"),
        ({"sampler": "cmaes", "sampler_options": {"sigma0": 0}}, "'sigma0' must be above 0 and at most 1"),
        ({"sampler": "cmaes", "sampler_options": {"sigma0": 1.5}}, "'sigma0' must be above 0 and at most 1"),
        ({"sampler": "qmc", "sampler_options": {"qmc_type": "lattice"}}, "'qmc_type' must be one of 'sobol', 'halton'"),
        ({"sampler_options": {"n_startup": 3}}, "the tpe sampler takes n_startup_trials, n_ei_candidates"),
        ({"sampler_options": {"multivariate": 1}}, "sampler option 'multivariate' must be a bool, got 1"),
        ({"sampler_options": {"n_startup_trials": 0}}, "'n_startup_trials' must be at least 1"),
        ({"sampler": "random", "sampler_options": {"seed": 1}}, "the random sampler takes no options"),
        ({"objective": "minimize"}, "objective must be"),
        ({"result_name": ""}, "result_name must be a non-empty string"),
        ({"max_jobs": 0}, "max_jobs must be a positive integer"),
    ],
)
def test_bad_definitions_are_refused_naming_the_problem(kw, message):
    with pytest.raises(ValueError, match=None) as e:
        config(**kw)
    assert message in str(e.value)


def test_a_log_with_unknown_or_missing_keys_is_refused():
    log = config().to_log()
    log["scheduler"]["BayesianSearch"]["samplr"] = "tpe"
    with pytest.raises(ValueError, match="unknown 'samplr'"):
        bayes.Config.from_log(log)
    del log["scheduler"]["BayesianSearch"]["samplr"], log["scheduler"]["BayesianSearch"]["sampler"]
    with pytest.raises(ValueError, match="missing 'sampler'"):
        bayes.Config.from_log(log)


def state_with(jobs):
    """A state holding ``jobs`` (hyperparameters, status, results), added in order to an experiment."""
    params = {"scheduler": {"RandomSearch": {"distributions": {n: d.to_log() for n, d in DISTS.items()}}}}
    created = decide.create_experiment(None, name="e", kind="random", params=params, status=ev.RUNNING, seed=1)
    state = apply(None, Commit(1, 1.0, "w", created.events))
    for v, (hp, status, results) in enumerate(jobs, start=2):
        d = decide.add_job(state, name="e", hyperparameters=hp, status=status, results=results)
        state = apply(state, Commit(v, float(v), "w", d.events))
    return state


def hp(x, lr=0.01, act="relu"):
    return {"x": x, "lr": lr, "act": act, "k": 3}


def test_every_job_is_a_trial_in_the_state_a_sampler_understands():
    state = state_with(
        [
            (hp(1.0), ev.DONE, {"loss": 0.5}),
            (hp(2.0, act=1.0), ev.DONE, {}),  # finished without its score: failed
            (hp(3.0, act=True), ev.CRASHED, {"loss": 0.1}),
            (hp(4.0, act=1), ev.PRUNED, {"loss": 0.9}),
            (hp(-1.0), ev.PRUNED, {}),
            (hp(0.0), ev.RUNNING, {}),
            (hp(0.5), ev.QUEUED, {}),
            (hp(9.0), ev.DONE, {"loss": 0.1}),  # outside the space (added by hand): left out
            (hp(1.0, act="tanh"), ev.DONE, {"loss": 0.1}),  # not one of the choices: left out
            (hp(1.0, lr=True), ev.DONE, {"loss": 0.1}),  # a bool is no float
            (hp(1.5), ev.DONE, {"loss": float("nan")}),  # a NaN score is no score
        ]
    )
    got = bayes.trials(state, config())
    assert [(t.state, t.value) for t in got] == [
        (bayes.COMPLETE, 0.5),
        (bayes.FAIL, None),
        (bayes.FAIL, None),
        (bayes.PRUNED, 0.9),
        (bayes.PRUNED, None),
        (bayes.RUNNING, None),
        (bayes.RUNNING, None),
        (bayes.FAIL, None),
    ]
    # Choice values by index: 1, 1.0 and True stay three values (Optuna's categoricals would merge them).
    assert [t.params["act"] for t in got[:4]] == [0, 2, 3, 1]
    assert got[0].params == {"x": 1.0, "lr": 0.01, "act": 0}


def test_the_request_is_the_same_for_the_same_state_and_generator_and_its_answer_maps_back():
    state = state_with([(hp(1.0), ev.DONE, {"loss": 0.5})])
    cfg = config()
    a = bayes.request(state, cfg, np.random.default_rng(7))
    assert a == bayes.request(state, cfg, np.random.default_rng(7))
    assert a.seed != bayes.request(state, cfg, np.random.default_rng(8)).seed
    assert [d.name for d in a.space] == ["act", "lr", "x"]  # sorted: a sampler's draws follow the order
    assert a.hyperparameters({"act": 3, "lr": 0.5, "x": -2.0}) == {"k": 3, "act": True, "lr": 0.5, "x": -2.0}
    for bad in ({"act": 4, "lr": 0.5, "x": 0.0}, {"act": 0, "lr": 2.0, "x": 0.0}, {"act": 0, "lr": 0.5}):
        with pytest.raises(ValueError, match="the sampler answered"):
            a.hyperparameters(bad)


def test_cmaes_population_defaults_to_hansens_rule_for_the_searched_floats():
    # 4 + floor(3 ln n) for the n Uniform/LogUniform hyperparameters; a Choice and a Constant are not in it
    assert config(sampler="cmaes").sampler_options["population_size"] == 6  # x and lr
    three = {**DISTS, "y": Uniform(0, 1)}
    assert config(sampler="cmaes", distributions=three).sampler_options["population_size"] == 7


def cma_state(steps, size=2):
    """A CMA-ES search's state after ``steps``: ("add", number, generation, x) or ("done", number, loss), one
    commit each, so the order of the steps is the order the jobs finished."""
    cfg = config(
        sampler="cmaes", sampler_options={"population_size": size}, distributions={k: DISTS[k] for k in ("x", "lr")}
    )
    created = decide.create_experiment(None, name="e", kind=bayes.KIND, params=cfg.to_log(), status=ev.RUNNING, seed=1)
    state = apply(None, Commit(1, 1.0, "w", created.events))
    for v, step in enumerate(steps, start=2):
        if step[0] == "add":
            _, n, g, x = step
            e = ev.job_added(str(n), {"x": x, "lr": 0.01}, ev.RUNNING, {}, generation=g)
        else:
            _, n, loss = step
            e = ev.job_updated(
                str(n),
                status=ev.DONE if loss is not None else ev.CRASHED,
                results={"loss": loss} if loss is not None else {},
            )
        state = apply(state, Commit(v, float(v), "w", [e]))
    return state, cfg


def told_xs(state, cfg):
    generation, told = bayes.generations(state, cfg)
    return generation, [[p["x"] for p, _ in g] for g in told]


def test_a_cmaes_generation_is_learnt_from_its_first_jobs_to_finish_and_later_ones_change_nothing():
    steps = [("add", 1, 0, 1.0), ("add", 2, 0, 2.0), ("add", 3, 0, 3.0), ("done", 3, 0.3), ("done", 2, 0.2)]
    state, cfg = cma_state(steps)
    # jobs 3 and 2 finished first: generation 0 is complete with them, in the order they finished
    assert told_xs(state, cfg) == (1, [[3.0, 2.0]])
    state, _ = cma_state([*steps, ("done", 1, 0.1)])
    assert told_xs(state, cfg) == (1, [[3.0, 2.0]])  # job 1 finished after: what was learnt stays


def test_a_cmaes_generation_waits_for_its_population_and_crashes_and_hand_added_jobs_do_not_fill_it():
    steps = [("add", 1, 0, 1.0), ("add", 2, 0, 2.0), ("add", 3, None, 3.0), ("done", 1, 0.1), ("done", 3, 0.3)]
    state, cfg = cma_state([*steps, ("done", 2, None)])  # job 2 crashed, job 3 has no generation
    assert told_xs(state, cfg) == (0, [])
    state, _ = cma_state([*steps, ("add", 4, 0, 4.0), ("done", 4, 0.4), ("add", 5, 1, 5.0), ("done", 5, 0.5)])
    assert told_xs(state, cfg) == (1, [[1.0, 4.0]])  # generation 1 has one of its 2: the next job is of 1 too
    request = bayes.request(state, cfg, np.random.default_rng(0))
    assert (request.generation, request.number) == (1, 6)
    assert request.told == ((({"x": 1.0, "lr": 0.01}, 0.1), ({"x": 4.0, "lr": 0.01}, 0.4)),)
