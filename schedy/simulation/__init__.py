"""Offline simulation of search strategies: the real decisions, simulated workers, a simulated clock.

Schedy's decisions are pure functions of the log, so the code that schedules a
real search can be driven by simulated workers on a discrete-event clock, in
memory, thousands of times faster than training. Use it to choose a strategy
(exploit and explore settings, population size, number of workers) before
spending a GPU-week::

    from schedy.simulation import compare, simulate, toy

    problem = toy()                                  # Figure 2 of the PBT paper
    sim = simulate(problem.strategies()["pbt"], problem, seed=0)
    print(sim.best_score, sim.schedule())
    table = compare(problem.strategies(), problem, seeds=range(20))
    print(table)

See docs/simulation.md.
"""

from .compare import Comparison, RunSummary, compare, permutation_test
from .engine import START, Simulation, simulate, write_log
from .problems import (
    PROBLEMS,
    Durations,
    Failures,
    LearningRateSchedule,
    NoisyCurves,
    Problem,
    Toy,
    lr_schedule,
    noisy_curves,
    toy,
)

__all__ = [
    "simulate",
    "compare",
    "Simulation",
    "Comparison",
    "RunSummary",
    "Problem",
    "Toy",
    "LearningRateSchedule",
    "NoisyCurves",
    "toy",
    "lr_schedule",
    "noisy_curves",
    "Durations",
    "Failures",
    "PROBLEMS",
    "START",
    "permutation_test",
    "write_log",
]
