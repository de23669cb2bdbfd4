"""A :class:`~schedy.core.bayes.SampleRequest` answered by CMA-ES (the ``cmaes`` library, which Optuna's
CmaEsSampler also uses), rebuilt from the log at each decision.

The evolution strategy runs in the unit cube of the searched floats, from its centre with step ``sigma0``. It
learns from each complete generation the core lists in ``request.told``, in order (a replay: nothing of the
optimiser is stored, so nothing is ever unpickled from a log), then draws the new job's point with the request's
seed. A Choice has no place in a covariance: its index is drawn uniformly, as Optuna's CmaEsSampler does.
"""

from ..errors import SchedyError
from .unitcube import from_unit, to_unit


def _cmaes():
    try:
        import cmaes
    except ImportError as e:
        raise SchedyError("a Bayesian search with the cmaes sampler needs cmaes: pip install 'schedy[optuna]'") from e
    return cmaes


def suggest(request):
    """The point CMA-ES proposes for ``request`` (see :func:`schedy.samplers.suggest`)."""
    cmaes = _cmaes()
    import numpy as np

    floats = [d for d in request.space if d.kind == "float"]
    sign = 1.0 if request.direction == "minimize" else -1.0  # cmaes minimises
    optimizer = cmaes.CMA(
        mean=np.full(len(floats), 0.5),
        sigma=request.options["sigma0"],
        bounds=np.array([[0.0, 1.0]] * len(floats)),
        seed=request.seed,
        population_size=request.options["population_size"],
    )
    for generation in request.told:
        optimizer.tell([(np.array([to_unit(d, p[d.name]) for d in floats]), sign * v) for p, v in generation])
    x = optimizer.ask()
    point = {d.name: from_unit(d, u) for d, u in zip(floats, x, strict=True)}
    choices = np.random.default_rng(request.seed)
    for d in request.space:
        if d.kind == "index":
            point[d.name] = int(choices.integers(d.size))
    return point
