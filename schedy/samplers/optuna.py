"""A :class:`~schedy.core.bayes.SampleRequest` answered by one of Optuna's samplers.

Each answer rebuilds an in-memory Optuna study from the request's trials (nothing of Optuna's is kept between
decisions or written to a log), seeds the sampler with the request's seed, and asks it for one trial. The
same request gives the same answer in any process, with the same versions of Optuna and numpy.
"""

import logging
import warnings

from ..core import bayes
from ..errors import SchedyError

_STATES = {bayes.COMPLETE: "COMPLETE", bayes.RUNNING: "RUNNING", bayes.FAIL: "FAIL", bayes.PRUNED: "PRUNED"}


def _optuna():
    try:
        import optuna
    except ImportError as e:
        raise SchedyError("a Bayesian search needs Optuna: pip install 'schedy[optuna]'") from e
    # Every study made here is a throwaway: its creation is no news to the user (Optuna logs it at INFO).
    logging.getLogger("optuna.storages._in_memory").setLevel(logging.WARNING)
    return optuna


def _sampler(optuna, request):
    if request.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=request.seed, **request.options)
    if request.sampler == "random":
        return optuna.samplers.RandomSampler(seed=request.seed)
    raise SchedyError(f"no Optuna sampler is named {request.sampler!r}")


def suggest(request):
    """The sampler's point for ``request``: hyperparameter name -> float, or the index of a Choice's value.

    Turn it into the job's hyperparameters with ``request.hyperparameters(point)``.
    """
    optuna = _optuna()
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    dists = {
        d.name: FloatDistribution(d.low, d.high, log=d.log)
        if d.kind == "float"
        else CategoricalDistribution(list(range(d.size)))
        for d in request.space
    }
    with warnings.catch_warnings():
        # Options such as TPE's constant_liar are "experimental" to Optuna; the definition chose them knowingly.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(direction=request.direction, sampler=_sampler(optuna, request))
        study.add_trials(
            [
                optuna.trial.create_trial(
                    params=t.params,
                    distributions=dists,
                    value=t.value if t.state == bayes.COMPLETE else None,
                    intermediate_values={0: t.value} if t.state == bayes.PRUNED and t.value is not None else None,
                    state=getattr(optuna.trial.TrialState, _STATES[t.state]),
                )
                for t in request.trials
            ]
        )
        return dict(study.ask(dists).params)
