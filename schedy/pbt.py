"""Strategies for :class:`schedy.PopulationBasedTraining`.

``MINIMIZE`` / ``MAXIMIZE`` set the objective; ``Truncate`` and
``BinaryTournament`` decide when a member exploits (continues from a better
member), ``Keep`` never does (a baseline); ``Perturb``, ``Resample`` and ``AddNoise`` explore the copied
hyperparameters. All are immutable values that compare by value.
"""

from .core.pbt import MAXIMIZE, MINIMIZE, AddNoise, BinaryTournament, Keep, Perturb, Resample, Truncate

__all__ = ["MINIMIZE", "MAXIMIZE", "Truncate", "BinaryTournament", "Keep", "Perturb", "Resample", "AddNoise"]
