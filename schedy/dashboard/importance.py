"""Which hyperparameters matter: fANOVA importance of an experiment's DONE jobs for one result (pure).

:func:`importance` hands the jobs to Optuna's fANOVA (``optuna.importance.FanovaImportanceEvaluator``, a
random forest of scikit-learn's), through an in-memory Optuna study rebuilt on each call: nothing of Optuna's
is kept or written. Each DONE job whose result is a finite number is one trial; in a PBT experiment each
segment is a job, so the importance is measured across segments. The search space is read from the values
the jobs hold, not from the experiment's definition, since jobs added by hand may have none:

* a hyperparameter whose values are all finite numbers (not booleans) is a float between the least and the
  greatest (on a log scale when all are positive and span more than a factor of 100);
* any other (strings, booleans, lists, dicts, a mix) is categorical over its distinct values, told apart by
  their JSON form, so that 1, 1.0 and True are three values;
* one that has a single value, or that some trials lack, is left out (``left_out`` says which and why).

The same state gives the same numbers (the forest is seeded). Past :data:`MAX_TRIALS` trials (fANOVA's
cost grows faster than their number), a seeded random sample of that many is used, and ``trials`` / ``of``
say so.
"""

import logging
import math

import numpy as np
import orjson

from ..core import events as ev
from ..core import values

# Trials given to fANOVA at most; past that, a seeded sample. Optuna's fANOVA walks its 64 trees in Python, at a
# cost that grows faster than the trials: on 2 cores, 3 hyperparameters took 1 s for 200 trials, 4 s for 500,
# 13 s for 1,000, 50 s for 2,000 and 5 minutes for 5,000.
MAX_TRIALS = 500
SEED = 0  # of the random forest and of the sample
# Scores spread over less than SMALL or more than LARGE (or beyond +-LARGE) are first shifted to start at 0 and
# scaled by a power of two, to spread over 0.5 to 1: scikit-learn's trees take a node whose variance is below
# 2.2e-16 for pure (losses that differ by 1e-9 would all look alike) and the variance of numbers near 1e154
# overflows. fANOVA's fractions would not change if computed exactly; scores in between are given as they are.
SMALL, LARGE = 2.0**-10, 2.0**100
LOG_SPAN = 100.0  # positive values spread over more than this factor are on a log scale
METHOD = "fANOVA (Optuna, scikit-learn random forest)"
INSTALL = "pip install 'schedy[dashboard]'"
_GOALS = {"min": "minimize", "max": "maximize"}


def importance(state, score_name, goal, max_trials=MAX_TRIALS):
    """The importance of each hyperparameter of ``state``'s DONE jobs for the result ``score_name``.

    ``goal`` is ``"min"`` or ``"max"`` (fANOVA's numbers do not depend on it; the study is made with it).
    Returns ``{"method", "trials", "of", "importances": [{"name", "importance"}, ...], "left_out":
    [{"name", "reason"}, ...]}``: importances are fractions adding up to 1, largest first (ties by name),
    ``trials`` the jobs used and ``of`` the jobs with a score: past ``max_trials`` of them, a seeded random
    sample of ``max_trials`` is used (the same for the same jobs).
    When it cannot be computed: ``{"importances": [], "reason": ...}``.
    """
    if goal not in _GOALS:
        raise ValueError(f"goal must be 'min' or 'max', got {goal!r}")
    if type(max_trials) is not int or max_trials < 2:
        raise ValueError(f"max_trials must be an integer of at least 2, got {max_trials!r}")
    scored = []  # (hyperparameters in log form, score)
    for job in state.jobs.in_order():
        if job.status == ev.DONE:
            v = _number(job.results.get(score_name))
            if v is not None:
                scored.append((job.hyperparameters, v))
    total = len(scored)
    if total < 2:
        return _cannot(f"importance needs at least 2 DONE jobs with a number for {score_name!r}, found {total}")
    if total > max_trials:
        keep = np.sort(np.random.default_rng(SEED).choice(total, size=max_trials, replace=False))
        scored = [scored[i] for i in keep]
    n = len(scored)
    space, left_out = _space([hp for hp, _ in scored])
    if not space:
        return _cannot("no hyperparameter varies across the jobs with a score", left_out)
    scores = _rescaled([v for _, v in scored])
    if scores is None:
        return _cannot(f"every job has the same {score_name!r}: there is no variation to explain", left_out)
    optuna = _optuna()
    if optuna is None:
        return _cannot(f"importance needs Optuna and scikit-learn: {INSTALL}", left_out)
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=SEED)
    except ImportError:  # Optuna is there, scikit-learn is not
        return _cannot(f"importance needs scikit-learn: {INSTALL}", left_out)
    dists = {name: _distribution(optuna, kind) for name, (kind, _) in space.items()}
    study = optuna.create_study(direction=_GOALS[goal])
    study.add_trials(
        [
            optuna.trial.create_trial(
                params={name: point(hp[name]) for name, (_, point) in space.items()},
                distributions=dists,
                value=v,
            )
            for (hp, _), v in zip(scored, scores)
        ]
    )
    found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    ranked = sorted(found.items(), key=lambda item: (-item[1], item[0]))
    return {
        "method": METHOD,
        "trials": n,
        "of": total,
        "importances": [{"name": name, "importance": float(x)} for name, x in ranked],
        "left_out": left_out,
    }


def _space(hps):
    """``({name: (kind, log value -> point)}, left_out)`` for the hyperparameters of ``hps``.

    A kind is ``("float", low, high, log)`` or ``("categorical", count)``, whose points are indices.

    Names are sorted, so that the study (and the forest's columns) are the same whatever order the jobs
    gave their hyperparameters in.
    """
    n = len(hps)
    counts = {}
    for hp in hps:
        for name in hp:
            counts[name] = counts.get(name, 0) + 1
    space, left_out = {}, []
    for name in sorted(counts):
        if counts[name] < n:
            left_out.append({"name": name, "reason": f"missing from {n - counts[name]} of the {n} jobs"})
            continue
        logged = [hp[name] for hp in hps]
        numbers = [_number(values.decode(x)) for x in logged]
        if None not in numbers:
            low, high = min(numbers), max(numbers)
            if low == high:
                left_out.append({"name": name, "reason": "the same value in every job"})
                continue
            log = low > 0 and high / low > LOG_SPAN
            space[name] = (("float", low, high, log), lambda x: float(values.decode(x)))
            continue
        keys = {}  # JSON form -> index, in the order first seen
        for x in logged:
            keys.setdefault(_key(x), len(keys))
        if len(keys) == 1:
            left_out.append({"name": name, "reason": "the same value in every job"})
            continue
        space[name] = (("categorical", len(keys)), lambda x, keys=keys: keys[_key(x)])
    return space, left_out


def _rescaled(scores):
    """``scores`` as fANOVA is given them (see SMALL and LARGE), or None if they are all the same."""
    low, high = min(scores), max(scores)
    if low == high:
        return None
    spread = high / 2 - low / 2  # halves: high - low may overflow
    if SMALL <= 2 * spread <= LARGE and max(-low, high) <= LARGE:
        return scores  # as they are: fANOVA's numbers are those of Optuna's own on the same study
    e = math.frexp(spread)[1]  # spread = f * 2**e with 0.5 <= f < 1
    return [math.ldexp(v / 2 - low / 2, -e) for v in scores]


def _distribution(optuna, kind):
    if kind[0] == "float":
        return optuna.distributions.FloatDistribution(kind[1], kind[2], log=kind[3])
    return optuna.distributions.CategoricalDistribution(list(range(kind[1])))


def _key(x):
    """A log-form value's JSON form, keys sorted: one per distinct value (1, 1.0 and true differ)."""
    return orjson.dumps(x, option=orjson.OPT_SORT_KEYS)


def _number(v):
    """``v`` as a finite float if it is a number (not a bool), else None."""
    if type(v) in (int, float) and math.isfinite(v):
        return float(v)
    return None


def _optuna():
    try:
        import optuna
        import optuna.importance
    except ImportError:
        return None
    # Every study made here is a throwaway: its creation is no news to the user (Optuna logs it at INFO).
    logging.getLogger("optuna.storages._in_memory").setLevel(logging.WARNING)
    return optuna


def _cannot(reason, left_out=None):
    out = {"importances": [], "reason": reason}
    if left_out:
        out["left_out"] = left_out
    return out
