"""The samplers answering the core's SampleRequest (Optuna's TPE and random sampler, CMA-ES, a quasi-random
sequence): valid points, the same answer in any process, and each doing its own job."""

import json
import os
import subprocess
import sys
import uuid
import warnings
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("optuna")

from schedy.core import bayes  # noqa: E402
from schedy.core import events as ev  # noqa: E402
from schedy.core.distributions import Uniform  # noqa: E402
from schedy.samplers import suggest  # noqa: E402

CORE_TESTS = str(Path(__file__).parent / "core")
sys.path.insert(0, CORE_TESTS)
from test_bayes import config, hp, state_with  # noqa: E402

ANSWER = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[4])
from test_bayes import config, hp, state_with
from schedy.core import bayes
from schedy.core import events as ev
from schedy.samplers import suggest
jobs = [(hp(float(x), lr=float(lr)), ev.DONE, {"loss": float(x) ** 2}) for x, lr in json.loads(sys.argv[1])]
jobs.append((hp(0.25), ev.RUNNING, {}))
req = bayes.request(state_with(jobs), config(sampler=sys.argv[2]), np.random.default_rng(int(sys.argv[3])))
print(json.dumps(req.hyperparameters(suggest(req)), sort_keys=True))
"""


def history(n, seed=0):
    rng = np.random.default_rng(seed)
    return [(round(float(rng.uniform(-5, 5)), 6), round(float(rng.uniform(1e-4, 1)), 6)) for _ in range(n)]


SAMPLERS = [
    "tpe",
    "random",
    pytest.param("cmaes", marks=pytest.mark.skipif(not find_spec("cmaes"), reason="needs cmaes")),
    pytest.param("qmc", marks=pytest.mark.skipif(not find_spec("scipy"), reason="needs scipy")),
]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_the_same_request_gets_the_same_answer_in_two_processes(sampler):
    points = json.dumps(history(14))  # past TPE's 10 start-up trials: the model decides
    answers = [
        subprocess.run(
            [sys.executable, "-c", ANSWER, points, sampler, "3", CORE_TESTS],
            capture_output=True,
            text=True,
            check=True,
            env=dict(os.environ, PYTHONHASHSEED=str(hash_seed)),
        ).stdout
        for hash_seed in (1, 2)
    ]
    assert answers[0] == answers[1] and answers[0].startswith("{")
    other = subprocess.run(
        [sys.executable, "-c", ANSWER, points, sampler, "4", CORE_TESTS], capture_output=True, text=True, check=True
    ).stdout
    if sampler == "qmc":
        assert other == answers[0]  # the sequence's point for the job's number, whatever the decision's seed
    else:
        assert other != answers[0]  # another decision, another seed: another point


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_answer_is_in_the_space(sampler):
    jobs = [(hp(x, lr=lr), ev.DONE, {"loss": x * x}) for x, lr in history(12)]
    jobs += [(hp(1.0), ev.CRASHED, {}), (hp(2.0), ev.PRUNED, {"loss": 4.0}), (hp(0.0), ev.RUNNING, {})]
    state = state_with(jobs)
    for seed in range(5):
        req = bayes.request(state, config(sampler=sampler), np.random.default_rng(seed))
        got = req.hyperparameters(suggest(req))  # raises if outside the space
        assert got["k"] == 3 and got["act"] in ("relu", 1, 1.0, True)


def test_tpe_past_its_start_up_trials_proposes_where_the_scores_say():
    """30 scored points of loss x**2 on [-5, 5]: minimising, TPE proposes near 0; maximising, near the ends; the
    random sampler anywhere (20 decisions each, every seed fixed: the model reads the trials' scores)."""
    state = state_with([(hp(x, lr=lr), ev.DONE, {"loss": x * x}) for x, lr in history(30, seed=5)])

    def proposals(sampler, objective):
        cfg = config(sampler=sampler, objective=objective, distributions={"x": Uniform(-5.0, 5.0)})
        out = []
        for seed in range(20):
            req = bayes.request(state, cfg, np.random.default_rng(seed))
            out.append(abs(req.hyperparameters(suggest(req))["x"]))
        return out

    assert max(proposals("tpe", bayes.MINIMIZE)) < 1.5  # measured: at most 0.84
    assert min(proposals("tpe", bayes.MAXIMIZE)) > 3.5  # measured: at least 4.6
    assert np.median(proposals("random", bayes.MINIMIZE)) > 1.5  # measured: 2.2


def run_search(sampler, jobs, loss, **kw):
    """Run a search of ``jobs`` jobs one after another on an in-memory database; the experiment."""
    import schedy

    db = schedy.SchedyDB(f"memory://{uuid.uuid4().hex}")
    dists = {"x": Uniform(-5.0, 5.0), "y": Uniform(-5.0, 5.0)}
    exp = db.add_experiment(schedy.BayesianSearch("s", dists, "loss", sampler=sampler, max_jobs=jobs, **kw))
    for _ in range(jobs):
        with exp.next_job() as job:
            job.results["loss"] = loss(job.hyperparameters)
    return exp


def test_cmaes_replayed_from_the_log_adapts_its_step_and_moves_to_the_optimum():
    """A sphere centred away from the middle of the box: rebuilt at every decision, the strategy still moves its
    mean there and shrinks its step (an optimiser re-initialised each time would keep drawing around the centre
    of the box with its first step, 1/6 of the range)."""
    pytest.importorskip("cmaes")
    exp = run_search("cmaes", 120, lambda hp: (hp["x"] - 2.0) ** 2 + (hp["y"] + 3.0) ** 2, seed=4)
    jobs = exp.all_jobs()
    last = max(j.generation for j in jobs)
    assert last >= 15  # 120 jobs, 6 per generation
    first = np.array([[j.hyperparameters["x"], j.hyperparameters["y"]] for j in jobs if j.generation == 0])
    final = np.array([[j.hyperparameters["x"], j.hyperparameters["y"]] for j in jobs if j.generation == last])
    assert final.std(axis=0).max() < first.std(axis=0).min() / 5  # measured: the step shrank 20 times or more
    assert np.allclose(final.mean(axis=0), [2.0, -3.0], atol=0.2)


def test_qmc_jobs_are_the_points_of_the_experiments_sequence_in_job_order():
    pytest.importorskip("scipy")
    from scipy.stats import qmc

    for kind, engine in (("sobol", qmc.Sobol), ("halton", qmc.Halton)):
        exp = run_search("qmc", 16, lambda hp: 0.0, seed=9, sampler_options={"qmc_type": kind})
        got = np.array([[j.hyperparameters["x"], j.hyperparameters["y"]] for j in exp.all_jobs()])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # 17 points: a Sobol sequence is balanced at powers of 2
            units = engine(d=2, scramble=True, rng=np.random.default_rng(9)).random(17)[1:]  # jobs count from 1
        assert np.allclose(got, -5.0 + 10.0 * units, rtol=0, atol=1e-12)
