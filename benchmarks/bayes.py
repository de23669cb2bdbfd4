#!/usr/bin/env python
"""Bayesian search through Schedy (TPE, CMA-ES, QMC) against random search, and against Optuna's own samplers.

    python benchmarks/bayes.py [--quick] [--seeds N] [--json out.json]

Three problems, each a budget of trials:

* **branin** (2 hyperparameters, minimised, optimum 0.397887), 100 trials;
* **hartmann-6** (6 hyperparameters on [0, 1], minimised, optimum -3.32237), 100 trials;
* **lr-schedule** with a constant learning rate per trial (``LogUniform(0.001, 1)``), each trial 27 segments
  of training, 64 trials.

Per problem, seed and worker count (1 and 4), these strategies run the same number of trials:

* ``random``: Schedy's random search, in ``schedy.simulation`` (real decisions, simulated workers);
* ``tpe``, ``cmaes``, ``qmc``: ``schedy.BayesianSearch`` with that sampler and its default options, in
  ``schedy.simulation``: every proposal is Schedy's decision, the sampler answering the request rebuilt from
  the log (CMA-ES needs two floats or more: not on lr-schedule);
* ``optuna tpe``, ``optuna cmaes``: Optuna's own ``TPESampler`` / ``CmaEsSampler`` with the same options, on
  Optuna's ``JournalStorage`` (a file), driven by ask and tell: with 4 workers, 4 trials are pending at once
  and each is told in the order it was asked.

A trial's score is its final score; "best after n" is the best of the first n trials to finish. Printed, as
Markdown tables: the final best (mean ± sd over seeds); how many trials TPE needed to reach random search's
best after N trials of the same seed (median over seeds of that count divided by N; inf when never reached);
one-sided Mann-Whitney p of TPE's final best against random search's; and the two-sided p of Schedy's TPE
against Optuna's own, and of Schedy's CMA-ES against Optuna's (a large p: no difference the test can see).
Targets: TPE reaches random search's best with at most half the trials, and Schedy's TPE matches Optuna's
within noise, at 1 and 4 workers.
"""

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from asha import mann_whitney_less  # noqa: E402

import schedy  # noqa: E402
from schedy.core import bayes  # noqa: E402
from schedy.random import LogUniform, Uniform  # noqa: E402
from schedy.simulation import Problem, lr_schedule, simulate  # noqa: E402
from schedy.simulation.compare import available_cores  # noqa: E402

WORKERS = (1, 4)
LR_SEGMENTS = 27
STRATEGIES = ("random", "tpe", "optuna tpe", "cmaes", "optuna cmaes", "qmc")
PEERS = (("tpe", "optuna tpe"), ("cmaes", "optuna cmaes"))  # Schedy's sampler, Optuna's own


# -- the problems ---------------------------------------------------------------------------------------------


def branin(hp):
    x1, x2 = hp["x1"], hp["x2"]
    b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
H_A = np.array(
    [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
)
H_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def hartmann6(hp):
    x = np.array([hp[f"x{i}"] for i in range(1, 7)])
    return float(-(H_ALPHA * np.exp(-(H_A * (x - H_P) ** 2).sum(axis=1))).sum())


def function_problem(f):
    """A problem of one segment per trial whose score is ``f(hyperparameters)``."""
    return Problem(lambda hp, state, steps, rng: (state, f(hp)), segments=1, score="loss", objective="min")


def lr_problem():
    return lr_schedule(segments=LR_SEGMENTS)


def runs_on(name, strategy):
    """Whether ``strategy`` applies to problem ``name`` (CMA-ES adapts a covariance: two floats or more)."""
    return "cmaes" not in strategy or len(PROBLEMS[name][1]) >= 2


PROBLEMS = {
    "branin": (lambda: function_problem(branin), {"x1": Uniform(-5.0, 10.0), "x2": Uniform(0.0, 15.0)}, 100),
    "hartmann-6": (lambda: function_problem(hartmann6), {f"x{i}": Uniform(0.0, 1.0) for i in range(1, 7)}, 100),
    "lr-schedule": (lr_problem, {"lr": LogUniform(1e-3, 1.0)}, 64),
}


def lr_trial(problem, hp, rng):
    """One trial of lr-schedule outside Schedy: a model trained from scratch for its segments; its final score."""
    state, score = None, math.nan
    for _ in range(problem.segments):
        state, score = problem.step(hp, state, problem.steps, rng)
    return float(score)


# -- the runs -----------------------------------------------------------------------------------------------------


def schedy_run(name, strategy, workers, seed, trials):
    """The final scores of ``trials`` trials, in the order they finished, with Schedy in simulation."""
    make, dists, _ = PROBLEMS[name]
    problem = make()
    if strategy == "random":
        exp = schedy.RandomSearch(f"{name}-random", dists, seed=seed)
    else:
        exp = schedy.BayesianSearch(f"{name}-{strategy}", dists, "loss", sampler=strategy, seed=seed, max_jobs=trials)
    sim = simulate(exp, problem, workers=workers, budget=trials * problem.segments, seed=seed)
    r = sim.reports
    last = r["segment"] == problem.segments  # a trial's final report
    return r["score"][last][:trials].tolist()


def optuna_run(name, sampler, workers, seed, trials, scratch):
    """The final scores of ``trials`` trials of Optuna's own ``sampler`` on its JournalStorage, ``workers``
    pending, with the options Schedy writes by default."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    make, dists, _ = PROBLEMS[name]
    problem = make()
    path = os.path.join(scratch, f"{name}-{sampler}-{workers}-{seed}.log")
    config = bayes.Config(dists, "loss", sampler=sampler)
    space = {d.name: optuna.distributions.FloatDistribution(d.low, d.high, log=d.log) for d in bayes.space(config)}
    options = config.sampler_options
    if sampler == "tpe":
        chosen = optuna.samplers.TPESampler(seed=seed, **options)
    else:
        with warnings.catch_warnings():  # sigma0 is deprecated since Optuna 4.9, and still its default's meaning
            warnings.simplefilter("ignore", FutureWarning)
            chosen = optuna.samplers.CmaEsSampler(
                seed=seed, popsize=options["population_size"], sigma0=options["sigma0"]
            )
    study = optuna.create_study(storage=JournalStorage(JournalFileBackend(path)), direction="minimize", sampler=chosen)
    rng = np.random.default_rng([seed, 7])
    pending, out = [], []
    while len(out) < trials:
        while len(pending) < workers and len(out) + len(pending) < trials:
            pending.append(study.ask(space))
        trial = pending.pop(0)
        hp = trial.params
        score = lr_trial(problem, hp, rng) if name == "lr-schedule" else problem.step(hp, None, 1, rng)[1]
        study.tell(trial, score)
        out.append(float(score))
    return out


def _run(args):
    name, strategy, workers, seed, trials, scratch = args
    began = time.perf_counter()
    if strategy.startswith("optuna "):
        scores = optuna_run(name, strategy.removeprefix("optuna "), workers, seed, trials, scratch)
    else:
        scores = schedy_run(name, strategy, workers, seed, trials)
    return (name, strategy, workers, seed), scores, time.perf_counter() - began


# -- the statistics -----------------------------------------------------------------------------------------------


def trials_to_reach(scores, target):
    """The number of trials after which the best of ``scores`` is at most ``target`` (inf if never)."""
    best = np.fmin.accumulate(np.asarray(scores, dtype=float))
    hits = np.flatnonzero(best <= target)
    return int(hits[0]) + 1 if len(hits) else math.inf


def two_sided(a, b):
    return min(1.0, 2 * min(mann_whitney_less(a, b)[1], mann_whitney_less(b, a)[1]))


def summarise(runs, seeds):
    out = {}
    for name, (_, _, trials) in PROBLEMS.items():
        for workers in WORKERS:
            cell = {}
            strategies = [s for s in STRATEGIES if runs_on(name, s)]
            finals = {s: np.array([min(runs[(name, s, workers, seed)]) for seed in seeds]) for s in strategies}
            random_best = finals["random"]
            for s in strategies:
                fractions = [
                    trials_to_reach(runs[(name, s, workers, seed)], random_best[i]) / trials
                    for i, seed in enumerate(seeds)
                ]
                cell[s] = {
                    "finals": finals[s].tolist(),
                    "mean": float(finals[s].mean()),
                    "std": float(finals[s].std(ddof=1)) if len(seeds) > 1 else 0.0,
                    "median_fraction": float(np.median(fractions)),
                    "reached": int(np.isfinite(fractions).sum()),
                    "p_better_than_random": None if s == "random" else mann_whitney_less(finals[s], random_best)[1],
                }
            cell["p_schedy_vs_optuna"] = {
                ours: two_sided(finals[ours], finals[peer]) for ours, peer in PEERS if ours in finals
            }
            out[f"{name} @ {workers}"] = {"trials": trials, "workers": workers, "problem": name, **cell}
    return out


def fmt(x):
    return "inf" if x == math.inf else f"{x:.3g}"


def table(summary, seeds):
    lines = [
        f"| problem | workers | trials | strategy | final best, mean ± sd | trials to reach random's best / N "
        f"(median of {len(seeds)} seeds) | seeds that reach it | p (better than random) |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for cell in summary.values():
        for s in STRATEGIES:
            if s not in cell:
                continue
            c = cell[s]
            p = "" if c["p_better_than_random"] is None else f"{c['p_better_than_random']:.2g}"
            lines.append(
                f"| {cell['problem']} | {cell['workers']} | {cell['trials']} | {s} | {c['mean']:.4g} ± {c['std']:.2g} "
                f"| {fmt(c['median_fraction'])} | {c['reached']}/{len(seeds)} | {p} |"
            )
    lines += [
        "",
        "| problem | workers | TPE: ≤ 1/2 of the trials | Schedy's TPE against Optuna's: p (two-sided) "
        "| Schedy's CMA-ES against Optuna's: p (two-sided) |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    for cell in summary.values():
        ok = "yes" if cell["tpe"]["median_fraction"] <= 0.5 else "**no**"
        p = cell["p_schedy_vs_optuna"]
        lines.append(
            f"| {cell['problem']} | {cell['workers']} | {ok} ({fmt(cell['tpe']['median_fraction'])}) | "
            f"{p['tpe']:.2g} | {'' if 'cmaes' not in p else format(p['cmaes'], '.2g')} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds instead of 20")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--json", type=Path, help="write every final score and statistic here")
    parser.add_argument("--processes", type=int, default=None, help="default: one per core")
    args = parser.parse_args()
    seeds = list(range(args.seeds or (3 if args.quick else 20)))
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bayes-bench-") as scratch:
        tasks = [
            (name, s, w, seed, trials, scratch)
            for name, (_, _, trials) in PROBLEMS.items()
            for w in WORKERS
            for seed in seeds
            for s in STRATEGIES
            if runs_on(name, s)
        ]
        runs, seconds = {}, {}
        with Pool(args.processes or available_cores()) as pool:
            for key, scores, took in pool.imap_unordered(_run, tasks):
                runs[key] = scores
                seconds[key] = took
    summary = summarise(runs, seeds)
    print(table(summary, seeds))
    per = {s: sum(t for k, t in seconds.items() if k[1] == s) for s in STRATEGIES}
    print(
        f"\n{len(tasks)} runs in {time.perf_counter() - began:.0f} s; CPU seconds per strategy: "
        + ", ".join(f"{s} {t:.0f}" for s, t in per.items())
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "python": platform.python_version(),
                    "numpy": np.__version__,
                    "optuna": __import__("optuna").__version__,
                    "cmaes": __import__("cmaes").__version__,
                    "scipy": __import__("scipy").__version__,
                    "seeds": seeds,
                    "summary": summary,
                    "seconds": {"|".join(map(str, k)): v for k, v in seconds.items()},
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
