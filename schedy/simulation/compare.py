"""Many seeds of several strategies: a table of means, spreads and pairwise significance.

``compare({label: experiment}, problem, seeds=range(20))`` simulates every
strategy with every seed (in parallel processes when there are several
cores) and returns a :class:`Comparison`. The same seed gives each strategy
the same simulated machines and segment durations, so differences come
from the strategies (common random numbers).

``workers=[1, 2, 4]`` adds a dimension: every strategy runs at every worker
count, each combination under its own label (``"pbt @ 4 workers"``), and
:meth:`Comparison.pairs` compares the strategies within each worker count
and each strategy across worker counts.

Significance is a two-sided permutation test on the difference of the
means (:func:`permutation_test`): the runs of the two strategies are pooled
and split at random 10,000 times (a numpy Generator with a fixed seed, so
the figure is reproducible); the p-value is the share of splits whose
difference of means is at least as large as the one observed, counting the
observed split itself.
"""

import math
import os
import warnings
from dataclasses import dataclass

import numpy as np

from ..core import pbt
from .engine import simulate


@dataclass
class RunSummary:
    """One simulated run, reduced to what a comparison needs."""

    label: str
    seed: int
    times: np.ndarray  # simulated seconds since the start, one per report
    best: np.ndarray  # the best score reported so far, after each report
    end: float  # simulated seconds until the last commit
    stats: dict
    schedule: list  # the hyperparameter schedule of the best job (Simulation.schedule())
    strategy: str | None = None  # its key in the experiments given to compare (the label, with one worker count)
    workers: int | None = None  # the simulated workers of the run

    @property
    def final(self):
        return float(self.best[-1]) if len(self.best) else math.nan

    def best_at(self, times):
        """The best score reported by each of ``times`` (NaN before the first report)."""
        i = np.searchsorted(self.times, np.asarray(times, dtype=float), side="right")
        padded = np.concatenate(([math.nan], self.best))
        return padded[i]


def _summary(label, sim, strategy=None):
    times, best = sim.best_over_time()
    return RunSummary(
        label,
        sim.seed,
        times,
        best,
        sim.stats["end"],
        dict(sim.stats),
        sim.schedule(),
        label if strategy is None else strategy,
        sim.workers,
    )


def _label(strategy, workers):
    """The label of ``strategy`` run with ``workers`` workers in a comparison of several worker counts."""
    return f"{strategy} @ {workers} worker{'' if workers == 1 else 's'}"


def permutation_test(a, b, resamples=10_000, seed=0):
    """Two-sided p-value of the difference of the means of samples ``a`` and ``b`` (NaNs dropped).

    Pools the two samples, splits them at random ``resamples`` times with
    ``numpy.random.default_rng(seed)``, and returns ``(1 + k) / (1 + resamples)``
    where ``k`` counts the splits whose absolute difference of means reaches
    the observed one. 1.0 when a sample is empty or every value is equal.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if not len(a) or not len(b):
        return 1.0
    pooled = np.concatenate((a, b))
    observed = abs(a.mean() - b.mean())
    scale = max(1.0, float(np.max(np.abs(pooled))))
    if observed <= 1e-12 * scale:
        return 1.0
    rng = np.random.default_rng(seed)
    perms = rng.permuted(np.broadcast_to(pooled, (resamples, len(pooled))), axis=1)
    diffs = np.abs(perms[:, : len(a)].mean(axis=1) - perms[:, len(a) :].mean(axis=1))
    k = int(np.count_nonzero(diffs >= observed - 1e-12 * scale))
    return (1 + k) / (1 + resamples)


class Comparison:
    """The runs of :func:`compare`: ``runs[label]`` is a list of :class:`RunSummary` (one per seed, in order),
    ``examples[label]`` the full :class:`~schedy.simulation.Simulation` of the first seed (for plots).

    ``labels`` lists the labels in order; ``strategies`` the strategies and ``workers`` the worker counts
    compared (one count unless ``compare`` was given several). With one worker count, the labels are the
    strategies; with several, each strategy at each count has its own label, ``label(strategy, workers)``
    (``"pbt @ 4 workers"``), strategy by strategy, in the order of the counts.
    """

    def __init__(self, problem, labels, seeds, runs, examples, objective, score_name, options, cells=None):
        self.problem, self.labels, self.seeds = problem, labels, seeds
        self.runs, self.examples = runs, examples
        self.objective, self.score_name, self.options = objective, score_name, options
        if cells is None:  # one worker count: each label is a strategy
            cells = {label: (label, runs[label][0].workers if runs[label] else None) for label in labels}
        self.cells = cells  # {label: (strategy, workers)}
        self.strategies = list(dict.fromkeys(strategy for strategy, _ in cells.values()))
        self.workers = list(dict.fromkeys(n for _, n in cells.values()))

    def label(self, strategy, workers=None):
        """The label of ``strategy`` at ``workers`` workers (``workers`` may be left out with one worker count)."""
        if workers is None:
            if len(self.workers) != 1:
                raise ValueError(
                    f"this comparison has several worker counts ({', '.join(map(str, self.workers))}): say which"
                )
            workers = self.workers[0]
        for label, cell in self.cells.items():
            if cell == (strategy, workers):
                return label
        raise KeyError(
            f"no runs of {strategy!r} with {workers} workers in this comparison (strategies: "
            f"{', '.join(self.strategies)}; workers: {', '.join(map(str, self.workers))})"
        )

    @property
    def horizon(self):
        """The common time axis: the simulated end of the longest run, in seconds."""
        return max((r.end for runs in self.runs.values() for r in runs), default=0.0)

    def finals(self, label):
        """The best score of each run of ``label``."""
        return np.array([r.final for r in self.runs[label]])

    def best_at(self, label, t):
        """The best score each run of ``label`` had reported by simulated time ``t``."""
        return np.array([float(r.best_at([t])[0]) for r in self.runs[label]])

    def curves(self, label, times):
        """A (runs × times) array of the best score reported by each time."""
        return np.array([r.best_at(times) for r in self.runs[label]])

    def better(self, a, b):
        return pbt._better(a, b, self.objective)

    def rows(self, fractions=(0.25, 0.5)):
        """One dict per label: ``strategy``, ``workers`` and ``label`` (the strategy itself with one worker count),
        runs, the mean best score at each fraction of the horizon (``"at 0.25"``...), and the final best score
        (mean, std, median, min, max), the mean segments and the mean simulated end (seconds)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a strategy whose runs reported nothing: NaN
            return self._rows(fractions)

    def _rows(self, fractions):
        out = []
        for label in self.labels:
            finals = self.finals(label)
            strategy, workers = self.cells[label]
            row = {"strategy": strategy, "workers": workers, "label": label, "runs": len(finals)}
            for f in fractions:
                row[f"at {f:g}"] = float(np.nanmean(self.best_at(label, f * self.horizon)))
            row.update(
                mean=float(np.nanmean(finals)),
                std=float(np.nanstd(finals, ddof=1)) if len(finals) > 1 else 0.0,
                median=float(np.nanmedian(finals)),
                min=float(np.nanmin(finals)),
                max=float(np.nanmax(finals)),
                segments=float(np.mean([r.stats["segments"] for r in self.runs[label]])),
                end=float(np.mean([r.end for r in self.runs[label]])),
            )
            out.append(row)
        return out

    def _pairs(self):
        """(a, b, strategy, workers) of each pair to compare: see :meth:`pairs`."""
        if len(self.workers) == 1:
            return [(a, b, None, self.workers[0]) for i, a in enumerate(self.labels) for b in self.labels[i + 1 :]]
        out = []
        for n in self.workers:  # the strategies, within each worker count
            out.extend(
                (self.label(a, n), self.label(b, n), None, n)
                for i, a in enumerate(self.strategies)
                for b in self.strategies[i + 1 :]
            )
        first = self.workers[0]
        for strategy in self.strategies:  # each strategy at each other count against itself at the first count
            out.extend((self.label(strategy, n), self.label(strategy, first), strategy, None) for n in self.workers[1:])
        return out

    def pairs(self, at=None):
        """One dict per pair: the difference of the mean final best scores (``a`` minus ``b``), which is better,
        and the permutation test's p-value. ``at`` (a fraction of the horizon) compares the best scores reached
        by that time instead.

        With one worker count, every pair of strategies (``workers`` is that count, ``strategy`` None). With
        several: the strategies pairwise within each worker count (``workers`` is the count, ``strategy``
        None), then each strategy at each other count against itself at the first count given (``a`` the
        other count, ``b`` the first; ``strategy`` is the strategy, ``workers`` None).
        """
        out = []
        for a, b, strategy, workers in self._pairs():
            if at is None:
                xa, xb = self.finals(a), self.finals(b)
            else:
                xa, xb = self.best_at(a, at * self.horizon), self.best_at(b, at * self.horizon)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                ma, mb = float(np.nanmean(xa)), float(np.nanmean(xb))
            better = a if self.better(ma, mb) else b if self.better(mb, ma) else None
            out.append(
                {
                    "a": a,
                    "b": b,
                    "difference": ma - mb,
                    "better": better,
                    "p": permutation_test(xa, xb),
                    "strategy": strategy,
                    "workers": workers,
                }
            )
        return out

    def __str__(self):
        rows = self.rows()
        several = len(self.workers) > 1
        head = (
            f"{self.problem}: {len(self.seeds)} seeds per strategy"
            + (f" and worker count ({', '.join(map(str, self.workers))})" if several else "")
            + f"; best {self.score_name} ({'higher' if self.objective == pbt.MAXIMIZE else 'lower'} is better); "
            f"horizon {self.horizon / 3600:.2f} simulated hours"
        )
        cols = ["strategy", "runs", "at 0.25", "at 0.5", "mean", "std", "median", "segments"]
        if several:
            cols[1:1] = ["workers"]
            cols.append("hours")
        lines = [head, "  ".join(f"{c:>12}" for c in cols)]
        for r in rows:
            r = dict(r, hours=r["end"] / 3600)
            lines.append("  ".join(f"{r[c]:>12}" if isinstance(r[c], str) else f"{r[c]:>12.6g}" for c in cols))
        lines.append("pairwise (final best; permutation test, two-sided):")
        for p in self.pairs():
            lines.append(
                f"  {p['a']} - {p['b']}: {p['difference']:+.6g}, p = {p['p']:.4g}"
                + (f" ({p['better']} better)" if p["better"] else "")
            )
        return "\n".join(lines)

    def plot(self, directory, prefix=None):
        """Write the plots as PNG files into ``directory``; return their paths (needs matplotlib).

        ``<prefix>-best.png`` (best score against time, per strategy), ``<prefix>-population.png`` (the scores
        of the population over time, first seed of each strategy), ``<prefix>-schedule.png`` (the
        hyperparameter schedule of the best member, first seed) and, for the toy problem,
        ``<prefix>-theta.png`` (the paths of θ, as in Figure 2 of the paper). ``prefix`` defaults to the
        problem's name.
        """
        from . import plots

        return plots.write_all(self, directory, prefix or self.problem)


# -- running many seeds ------------------------------------------------------------------------------------

_TASK = None


def _init(experiments, problem, options):
    global _TASK
    _TASK = (experiments, problem, options)


def _run(label, strategy, workers, seed, keep):
    experiments, problem, options = _TASK
    sim = simulate(experiments[strategy], problem, seed=seed, workers=workers, keep_states=keep, **options)
    return _summary(label, sim, strategy), (sim if keep else None)


def available_cores():
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _worker_counts(workers):
    """``workers`` as a list of distinct positive counts; ``[None]`` (the problem's) when None."""
    if workers is None:
        return [None]
    if isinstance(workers, (str, bytes)):
        raise TypeError(f"workers must be a positive integer or a list of them, got {workers!r}")
    counts = [workers] if isinstance(workers, (int, np.integer)) and not isinstance(workers, bool) else workers
    try:
        counts = list(counts)
    except TypeError:
        raise TypeError(f"workers must be a positive integer or a list of them, got {workers!r}") from None
    for n in counts:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"workers must be positive integers, got {n!r} in {workers!r}")
    counts = [int(n) for n in counts]
    if not counts or len(set(counts)) != len(counts):
        raise ValueError(f"workers must be distinct worker counts, at least one, got {workers!r}")
    return counts


def compare(experiments, problem, seeds=range(20), *, workers=None, processes=None, progress=None, **options):
    """Simulate each experiment of ``{strategy: experiment}`` with each seed; return a :class:`Comparison`.

    ``workers`` is a worker count, or a list of them: every strategy then runs
    at every count, as ``"<strategy> @ <n> workers"`` (one count keeps the
    strategies as labels; default: the problem's). ``options`` are passed to
    :func:`~schedy.simulation.simulate` (``budget``, ``durations``,
    ``failures``...; not ``db``). The runs are spread over ``processes``
    processes (default: one per core, at most one per run); each process
    simulates whole runs, so the result does not depend on how many there
    are. ``progress(done, total)`` is called after each run.
    """
    if not isinstance(experiments, dict) or not experiments:
        raise TypeError("compare needs a non-empty dict of {strategy: experiment}")
    if "db" in options or "seed" in options or "keep_states" in options:
        raise TypeError("compare runs many seeds in memory: give seeds=..., and save a run with simulate(..., db=...)")
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct integers, at least one, got {seeds!r}")
    counts = _worker_counts(workers)
    several = len(counts) > 1
    cells = {(_label(strategy, n) if several else strategy): (strategy, n) for strategy in experiments for n in counts}
    labels = list(cells)
    tasks = [(label, strategy, n, seed, seed == seeds[0]) for label, (strategy, n) in cells.items() for seed in seeds]
    n = available_cores() if processes is None else processes
    n = max(1, min(int(n), len(tasks)))
    results = [None] * len(tasks)
    if n == 1:
        _init(experiments, problem, options)
        for i, task in enumerate(tasks):
            results[i] = _run(*task)
            if progress:
                progress(i + 1, len(tasks))
    else:
        import concurrent.futures
        import multiprocessing

        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with concurrent.futures.ProcessPoolExecutor(
            n,
            mp_context=multiprocessing.get_context(method),
            initializer=_init,
            initargs=(experiments, problem, options),
        ) as pool:
            futures = {pool.submit(_run, *task): i for i, task in enumerate(tasks)}
            for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
                results[futures[future]] = future.result()
                if progress:
                    progress(done, len(tasks))
    runs = {label: [] for label in labels}
    examples = {}
    for (label, *_), (summary, sim) in zip(tasks, results):
        runs[label].append(summary)
        if sim is not None:
            examples[label] = sim
    first = examples[labels[0]]
    name = getattr(problem, "name", None) or "problem"
    # The worker count of each label as the runs had it (the problem's when compare was given none).
    cells = {label: (strategy, runs[label][0].workers) for label, (strategy, _) in cells.items()}
    if counts != [None]:
        options = dict(options, workers=counts if several else counts[0])
    return Comparison(name, labels, seeds, runs, examples, first.objective, first.score_name, options, cells)
