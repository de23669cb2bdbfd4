"""Strategies for :class:`schedy.PopulationBasedTraining`.

``MINIMIZE`` / ``MAXIMIZE`` set the objective; ``Truncate`` and
``BinaryTournament`` decide when a member exploits (continues from a better
member); ``Perturb``, ``Resample`` and ``AddNoise`` explore the copied
hyperparameters. All are immutable values that compare by value.
"""

from .core.pbt import MAXIMIZE, MINIMIZE, AddNoise, BinaryTournament, Perturb, Resample, Truncate

__all__ = ["MINIMIZE", "MAXIMIZE", "Truncate", "BinaryTournament", "Perturb", "Resample", "AddNoise"]
