"""Schedy: coordinate hyperparameter searches through an append-only event log, with no server.

Open a database, add an experiment, and let workers pull jobs::

    import schedy
    db = schedy.SchedyDB("my-experiments")
    exp = schedy.RandomSearch("mnist", {"lr": schedy.random.LogUniform(1e-5, 1e-1)})
    db.add_experiment(exp)
    with exp.next_job() as job:
        job.results["loss"] = train(**job.hyperparameters)
"""

from . import errors, experiments, jobs, pbt, random  # experiments, jobs: the original client's module names
from .adapters.api import (
    ASHA,
    BayesianSearch,
    Experiment,
    Hyperband,
    Job,
    ManualSearch,
    PopulationBasedTraining,
    RandomSearch,
    SchedyDB,
)

__version__ = "0.1.0"

__all__ = [
    "SchedyDB",
    "Experiment",
    "ManualSearch",
    "RandomSearch",
    "PopulationBasedTraining",
    "ASHA",
    "Hyperband",
    "BayesianSearch",
    "Job",
    "errors",
    "experiments",
    "jobs",
    "pbt",
    "random",
    "__version__",
]
