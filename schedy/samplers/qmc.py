"""A :class:`~schedy.core.bayes.SampleRequest` answered by a quasi-random sequence (``scipy.stats.qmc``, which
Optuna's QMCSampler also uses).

Job number k takes point k of the experiment's sequence (Sobol or Halton, scrambled with the experiment's seed),
so the points cover the space evenly however many workers ask, and a decision needs nothing but the job's number.
"""

import warnings

from ..errors import SchedyError
from .unitcube import from_unit


def _qmc():
    try:
        from scipy.stats import qmc
    except ImportError as e:
        raise SchedyError("a Bayesian search with the qmc sampler needs scipy: pip install 'schedy[optuna]'") from e
    return qmc


def suggest(request):
    """The point the sequence holds for ``request.number`` (see :func:`schedy.samplers.suggest`)."""
    qmc = _qmc()
    import numpy as np

    engine = {"sobol": qmc.Sobol, "halton": qmc.Halton}[request.options["qmc_type"]]
    sequence = engine(
        d=len(request.space), scramble=request.options["scramble"], rng=np.random.default_rng(request.sequence_seed)
    )
    sequence.fast_forward(request.number)
    with warnings.catch_warnings():
        # A Sobol sequence is balanced at powers of 2; one point per job is the point of a search that can stop
        # at any job.
        warnings.simplefilter("ignore", UserWarning)
        u = sequence.random(1)[0]
    return {d.name: from_unit(d, x) for d, x in zip(request.space, u, strict=True)}
