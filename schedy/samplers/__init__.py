"""Samplers that answer the core's :class:`schedy.core.bayes.SampleRequest` (the imperative shell of a Bayesian
search): :func:`schedy.samplers.optuna.suggest` uses Optuna's, an optional dependency (``schedy[optuna]``)."""
