"""Strategies for :class:`schedy.PopulationBasedTraining`.

``MINIMIZE`` / ``MAXIMIZE`` set the objective; ``Truncate`` and
``BinaryTournament`` decide when a member exploits (continues from a better
member), ``Keep`` never does (a baseline); ``Perturb``, ``Resample`` and
``AddNoise`` explore the copied hyperparameters, or ``PB2`` picks them with a
Gaussian-process bandit. ``SAME_GENERATION`` (the default) and ``LATEST`` are
the ranking rules. All are immutable values that compare by value. ``Exploit``
and ``Explore`` are the types of the two kinds of strategy, for annotations.
"""

from .core.pbt import (
    LATEST,
    MAXIMIZE,
    MINIMIZE,
    PB2,
    SAME_GENERATION,
    AddNoise,
    BinaryTournament,
    Exploit,
    Explore,
    Keep,
    Perturb,
    Resample,
    Truncate,
)

__all__ = [
    "MINIMIZE",
    "MAXIMIZE",
    "SAME_GENERATION",
    "LATEST",
    "Truncate",
    "BinaryTournament",
    "Keep",
    "Perturb",
    "Resample",
    "AddNoise",
    "PB2",
    "Exploit",
    "Explore",
]
