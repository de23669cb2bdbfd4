"""The experiments, under the module name of the original Schedy client (``schedy.experiments``).

The classes are those of the top-level package: ``schedy.experiments.RandomSearch is
schedy.RandomSearch``. Code ported from the original client can keep its imports::

    from schedy.experiments import ManualSearch, RandomSearch
"""

from .adapters.api import (
    Experiment,
    Job,  # noqa: F401 - importable from here too, as in the original module
    ManualSearch,
    PopulationBasedTraining,
    RandomSearch,
)

__all__ = ["Experiment", "ManualSearch", "PopulationBasedTraining", "RandomSearch"]
