"""Samplers that answer the core's :class:`schedy.core.bayes.SampleRequest` (the imperative shell of a Bayesian
search). Each library is an optional dependency (``schedy[optuna]``), imported at the first request that needs it.
"""

from ..errors import SchedyError


def suggest(request):
    """The point that ``request.sampler`` proposes for ``request``: name -> float, or the index of a Choice's value.

    Turn it into the job's hyperparameters with ``request.hyperparameters(point)``.
    """
    if request.sampler in ("tpe", "random"):
        from . import optuna

        return optuna.suggest(request)
    if request.sampler == "cmaes":
        from . import cmaes

        return cmaes.suggest(request)
    if request.sampler == "qmc":
        from . import qmc

        return qmc.suggest(request)
    raise SchedyError(f"no sampler is named {request.sampler!r}")
