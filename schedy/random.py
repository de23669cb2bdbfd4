"""Distributions for :class:`schedy.RandomSearch` (and PBT's initial population)."""

from .core.distributions import Choice, Constant, Distribution, LogUniform, Normal, Uniform

__all__ = ["Distribution", "Uniform", "LogUniform", "Normal", "Choice", "Constant"]
