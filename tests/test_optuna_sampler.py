"""Optuna's samplers answering the core's SampleRequest: valid points, the same answer in any process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("optuna")

from schedy.core import bayes  # noqa: E402
from schedy.core import events as ev  # noqa: E402
from schedy.core.distributions import Uniform  # noqa: E402
from schedy.samplers.optuna import suggest  # noqa: E402

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
from schedy.samplers.optuna import suggest
jobs = [(hp(float(x), lr=float(lr)), ev.DONE, {"loss": float(x) ** 2}) for x, lr in json.loads(sys.argv[1])]
jobs.append((hp(0.25), ev.RUNNING, {}))
req = bayes.request(state_with(jobs), config(sampler=sys.argv[2]), np.random.default_rng(int(sys.argv[3])))
print(json.dumps(req.hyperparameters(suggest(req)), sort_keys=True))
"""


def history(n, seed=0):
    rng = np.random.default_rng(seed)
    return [(round(float(rng.uniform(-5, 5)), 6), round(float(rng.uniform(1e-4, 1)), 6)) for _ in range(n)]


@pytest.mark.parametrize("sampler", ["tpe", "random"])
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
    assert other != answers[0]  # another decision, another seed: another point


@pytest.mark.parametrize("sampler", ["tpe", "random"])
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
