"""Plots of simulations (matplotlib, the ``plots`` extra: ``pip install 'schedy[plots]'``).

Each function draws on a new :class:`matplotlib.figure.Figure` rendered by the
Agg canvas (no pyplot, no global backend change, no display needed), saves it
as PNG when given a path, and returns the figure.

* :func:`plot_best`: the best score reported so far against simulated time,
  per strategy (mean over seeds, with the band between the 25th and 75th
  percentiles).
* :func:`plot_population`: the score of every member of the population over
  time, one panel per strategy (first seed); a triangle marks a segment that
  continued from another member (an exploit).
* :func:`plot_schedule`: the hyperparameters of the best job's lineage over
  time, one panel per strategy (every seed thin, the first seed bold).
* :func:`plot_theta`: for the toy problem, the path of θ of each member, as
  in Figure 2 of the PBT paper.
"""

import math
from pathlib import Path

import numpy as np

from ..core import pbt

HOUR = 3600.0
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
STYLES = ["-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3))]


def _figure(rows=1, cols=1, width=None, height=None):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("schedy.simulation plots need matplotlib: pip install 'schedy[plots]'") from None
    fig = Figure(figsize=(width or 4.2 * cols + 1.0, height or 3.4 * rows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _save(fig, path):
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    return fig


def _log_scale(values):
    v = np.asarray([x for x in values if isinstance(x, (int, float)) and math.isfinite(x)], dtype=float)
    return len(v) > 1 and v.min() > 0 and v.max() / v.min() > 20


def plot_best(comparison, path=None, points=200):
    """Best score so far against simulated time (hours), one line per strategy: mean over seeds, IQR band.

    With several worker counts, one line per strategy and count: a colour per strategy, a line style per count.
    """
    fig, axes = _figure(width=7.5, height=4.2)
    ax = axes[0][0]
    horizon = comparison.horizon
    times = np.linspace(0.0, horizon, points)
    every = []
    cells = getattr(comparison, "cells", {})
    strategies = getattr(comparison, "strategies", [])
    counts = getattr(comparison, "workers", [])
    for i, label in enumerate(comparison.labels):
        style = "-"
        if len(counts) > 1:  # several worker counts: a colour per strategy, a line style per count
            strategy, n = cells[label]
            i = strategies.index(strategy)
            style = STYLES[counts.index(n) % len(STYLES)]
        curves = comparison.curves(label, times)
        every.extend(curves[np.isfinite(curves)].ravel().tolist())
        # From the moment every run has reported (before that, the mean would be over a changing subset).
        shown = np.all(~np.isnan(curves), axis=0)
        safe = np.where(shown, curves, 0.0)
        mean = np.where(shown, safe.mean(axis=0), np.nan)
        low = np.where(shown, np.percentile(safe, 25, axis=0), np.nan)
        high = np.where(shown, np.percentile(safe, 75, axis=0), np.nan)
        color = COLORS[i % len(COLORS)]
        ax.plot(times / HOUR, mean, color=color, label=label, lw=1.8, ls=style)
        ax.fill_between(times / HOUR, low, high, color=color, alpha=0.18, lw=0)
    if comparison.objective == pbt.MINIMIZE and _log_scale(every):
        ax.set_yscale("log")
    ax.set_xlabel("simulated time (hours)")
    better = "higher" if comparison.objective == pbt.MAXIMIZE else "lower"
    ax.set_ylabel(f"best {comparison.score_name} so far ({better} is better)")
    ax.set_title(
        f"{comparison.problem}: mean over {len(comparison.seeds)} seeds, band: 25th-75th percentile", fontsize=10
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    return _save(fig, path)


def _panels(n):
    cols = min(n, 2)
    return math.ceil(n / cols), cols


def plot_population(comparison_or_simulation, path=None):
    """The score of each member over time (first seed of each strategy); triangles mark exploits."""
    sims = _examples(comparison_or_simulation)
    rows, cols = _panels(len(sims))
    fig, axes = _figure(rows, cols)
    every = [s for sim in sims.values() for s in sim.reports["score"].tolist()]
    log = next(iter(sims.values())).objective == pbt.MINIMIZE and _log_scale(every)
    for k, (label, sim) in enumerate(sims.items()):
        ax = axes[k // cols][k % cols]
        r = sim.reports
        jobs = sim.state.jobs
        for i, member in enumerate(np.unique(r["member"])):
            mask = r["member"] == member
            color = COLORS[i % len(COLORS)]
            ax.plot(r["time"][mask] / HOUR, r["score"][mask], color=color, lw=1, alpha=0.8)
            copied = [j for j, n in enumerate(r["job"]) if mask[j] and _exploit(jobs, str(n))]
            if copied:
                ax.plot(r["time"][copied] / HOUR, r["score"][copied], "^", color=color, ms=4)
        if log:
            ax.set_yscale("log")
        ax.set_title(
            f"{label} (seed {sim.seed}): {len(np.unique(r['member']))} {_MEMBERS.get(sim.kind, 'jobs')}",
            fontsize=10,
        )
        ax.set_xlabel("simulated time (hours)")
        ax.set_ylabel(sim.score_name)
        ax.grid(alpha=0.3)
    _hide_unused(axes, len(sims), cols)
    return _save(fig, path)


_MEMBERS = {"pbt": "members", "asha": "configurations", "hyperband": "configurations"}  # what a line is, by kind


def _exploit(jobs, job_id):
    job = jobs.get(job_id)
    if job is None or job.parent is None:
        return False
    parent = jobs.get(job.parent)
    return parent is not None and parent.member != job.member


def plot_schedule(comparison_or_simulation, path=None):
    """The hyperparameters of the best job's lineage over time: every seed thin, the first seed bold."""
    sims = _examples(comparison_or_simulation)
    runs = getattr(comparison_or_simulation, "runs", None)
    rows, cols = _panels(len(sims))
    fig, axes = _figure(rows, cols)
    for k, (label, sim) in enumerate(sims.items()):
        ax = axes[k // cols][k % cols]
        schedules = [r.schedule for r in runs[label]] if runs else [sim.schedule()]
        names = list(dict.fromkeys(n for s in schedules for row in s for n in row["hyperparameters"]))
        every = []
        for i, name in enumerate(names):
            color = COLORS[i % len(COLORS)]
            for j, schedule in enumerate(schedules):
                t, v = _steps(schedule, name)
                every.extend(v)
                ax.plot(
                    t,
                    v,
                    color=color,
                    lw=2.0 if j == 0 else 0.6,
                    alpha=1.0 if j == 0 else 0.35,
                    label=name if j == 0 else None,
                    drawstyle="steps-post",
                )
        if _log_scale(every):
            ax.set_yscale("log")
        ax.set_title(
            f"{label}: schedule of the best model" + (f" ({len(schedules)} seeds)" if runs else ""), fontsize=10
        )
        ax.set_xlabel("simulated time (hours)")
        ax.set_ylabel("hyperparameter")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _hide_unused(axes, len(sims), cols)
    return _save(fig, path)


def _steps(schedule, name):
    t, v = [], []
    for row in schedule:
        x = row["hyperparameters"].get(name)
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            continue
        t.extend([row["start"] / HOUR, row["end"] / HOUR])
        v.extend([x, x])
    return t, v


def plot_theta(comparison_or_simulation, path=None):
    """Toy problem: the path of θ of each member (first seed of each strategy) over the contours of Q."""
    sims = _examples(comparison_or_simulation)
    rows, cols = _panels(len(sims))
    fig, axes = _figure(rows, cols, width=3.6 * min(len(sims), 2) + 0.8, height=3.6 * rows + 0.4)
    grid = np.linspace(-0.05, 1.0, 120)
    x, y = np.meshgrid(grid, grid)
    for k, (label, sim) in enumerate(sims.items()):
        ax = axes[k // cols][k % cols]
        ax.contour(x, y, 1.2 - x**2 - y**2, levels=np.linspace(-0.6, 1.2, 10), colors="lightgrey", linewidths=0.7)
        if sim.states is None:
            raise ValueError("plot_theta needs the model states: simulate(..., keep_states=True)")
        r = sim.reports
        for i, member in enumerate(np.unique(r["member"])):
            idx = np.flatnonzero(r["member"] == member)
            path_ = np.array([sim.states[j] for j in idx])
            color = COLORS[i % len(COLORS)]
            ax.plot(path_[:, 0], path_[:, 1], ".-", color=color, ms=3, lw=0.7, label=f"member {member}")
        ax.plot([0], [0], "k*", ms=8)
        ax.set_xlim(-0.05, 1.0)
        ax.set_ylim(-0.05, 1.0)
        ax.set_aspect("equal")
        ax.set_title(f"{label}: best Q {sim.best_score:.3f}", fontsize=10)
        ax.set_xlabel("θ0")
        ax.set_ylabel("θ1")
        ax.legend(fontsize=7, loc="upper left")
    _hide_unused(axes, len(sims), cols)
    return _save(fig, path)


def _examples(x):
    examples = getattr(x, "examples", None)
    if examples is not None:
        return dict(examples)
    return {x.name: x}


def _hide_unused(axes, n, cols):
    for k in range(n, len(axes) * cols):
        axes[k // cols][k % cols].set_visible(False)


def write_all(comparison, directory, prefix):
    """Write every plot that applies to ``comparison`` into ``directory``; return the paths."""
    directory = Path(directory)
    paths = []
    for suffix, draw in (("best", plot_best), ("population", plot_population), ("schedule", plot_schedule)):
        path = directory / f"{prefix}-{suffix}.png"
        draw(comparison, path)
        paths.append(path)
    sims = comparison.examples.values()
    if comparison.problem == "toy" and all(s.states and np.shape(s.states[0]) == (2,) for s in sims):
        path = directory / f"{prefix}-theta.png"
        plot_theta(comparison, path)
        paths.append(path)
    return paths
