#!/usr/bin/env python
"""The cost of a Bayesian search's decision and worker cycle as it grows, beside Optuna's own ask on its journal.

    python benchmarks/bayes_decisions.py [--quick] [--json out.json]

At 100, 1,000 and 5,000 finished jobs (100 and 1,000 with --quick) of a search of 2 hyperparameters (TPE,
the default options), median of ``CYCLES`` cycles, each size and system measured in turn:

* **decision**: ``decide.next_job`` in the pure core with Optuna's sampler answering (no store); beside it
  the decision of CMA-ES (every job in a generation of ``population_size``, each one replayed) and of QMC;
* **Schedy cycle**: one durable worker cycle (``with exp.next_job() as job:``, a local database: lock, read,
  decide, fsync), in one process;
* **Optuna ask + tell**: ``study.ask()`` then ``study.tell()`` on Optuna's ``JournalStorage(JournalFileBackend)``
  holding the same number of finished trials, with the same sampler options.

The decision is made while the database's lock is held, so the Schedy cycle is also how long another worker's
report can wait for that lock; the ratio to random search's cycle at the same size is printed too.
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import schedy  # noqa: E402
from schedy.core import bayes, decide  # noqa: E402
from schedy.core import events as ev  # noqa: E402
from schedy.core.codec import Commit  # noqa: E402
from schedy.core.state import apply  # noqa: E402
from schedy.random import Uniform  # noqa: E402
from schedy.samplers import suggest  # noqa: E402

CYCLES = 15
DISTS = {"x1": Uniform(-5.0, 10.0), "x2": Uniform(0.0, 15.0)}


def loss(hp):
    return (hp["x1"] - 2.0) ** 2 + (hp["x2"] - 3.0) ** 2


def filled(path, kind, n, rng):
    """A database at ``path`` whose experiment ``kind`` ("tpe" or "random") holds ``n`` DONE jobs."""
    db = schedy.SchedyDB(path, durable=False)
    if kind == "tpe":
        exp = db.add_experiment(schedy.BayesianSearch("b", DISTS, "loss", seed=1))
    else:
        exp = db.add_experiment(schedy.RandomSearch("b", DISTS, seed=1))
    for _ in range(n):
        hp = {"x1": float(rng.uniform(-5, 10)), "x2": float(rng.uniform(0, 15))}
        exp.add_job(hp, status="DONE", results={"loss": loss(hp)})
    return path


def schedy_cycles(path):
    exp = schedy.SchedyDB(path).get_experiment("b")
    out = []
    for _ in range(CYCLES):
        began = time.perf_counter()
        with exp.next_job() as job:
            job.results["loss"] = loss(job.hyperparameters)
        out.append(time.perf_counter() - began)
    return float(np.median(out))


def sampled_state(sampler, n, rng):
    """The state of a search by ``sampler`` holding ``n`` DONE jobs, built in the core (a CMA-ES job has the
    generation it would have had: ``population_size`` jobs each)."""
    config = bayes.Config(DISTS, "loss", sampler=sampler)
    size = config.sampler_options.get("population_size")
    made = decide.create_experiment(None, name="b", kind=bayes.KIND, params=config.to_log(), status=ev.RUNNING, seed=1)
    state = apply(None, Commit(1, 0.0, "w", made.events))
    for i in range(1, n + 1):
        hp = {"x1": float(rng.uniform(-5, 10)), "x2": float(rng.uniform(0, 15))}
        added = ev.job_added(str(i), hp, ev.DONE, {"loss": loss(hp)}, generation=(i - 1) // size if size else None)
        state = apply(state, Commit(i + 1, 0.0, "w", [added]))
    return state


def decisions(path_or_state):
    if isinstance(path_or_state, str):
        state = schedy.SchedyDB(path_or_state).get_experiment("b")._refresh()
    else:
        state = path_or_state
    out = []
    for v in range(CYCLES):
        began = time.perf_counter()
        decide.next_job(state, name="b", worker="w", version=state.version + 1 + v, now=0.0, sample=suggest)
        out.append(time.perf_counter() - began)
    return float(np.median(out))


def optuna_cycles(directory, n, rng):
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = {"x1": FloatDistribution(-5.0, 10.0), "x2": FloatDistribution(0.0, 15.0)}
    study = optuna.create_study(
        storage=JournalStorage(JournalFileBackend(os.path.join(directory, f"optuna-{n}.log"))),
        sampler=optuna.samplers.TPESampler(seed=1, **bayes.SAMPLERS["tpe"]),
    )
    trials = []
    for _ in range(n):
        hp = {"x1": float(rng.uniform(-5, 10)), "x2": float(rng.uniform(0, 15))}
        trials.append(optuna.trial.create_trial(params=hp, distributions=space, value=loss(hp)))
    study.add_trials(trials)
    out = []
    for _ in range(CYCLES):
        began = time.perf_counter()
        trial = study.ask(space)
        study.tell(trial, loss(trial.params))
        out.append(time.perf_counter() - began)
    return float(np.median(out))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 jobs only")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sizes = (100, 1000) if args.quick else (100, 1000, 5000)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bayes-decisions-") as scratch:
        for n in sizes:
            rng = np.random.default_rng(n)
            tpe = filled(os.path.join(scratch, f"tpe-{n}"), "tpe", n, rng)
            rnd = filled(os.path.join(scratch, f"random-{n}"), "random", n, rng)
            rows[n] = {
                "decision_ms": 1000 * decisions(tpe),
                "cmaes_decision_ms": 1000 * decisions(sampled_state("cmaes", n, rng)),
                "qmc_decision_ms": 1000 * decisions(sampled_state("qmc", n, rng)),
                "schedy_cycle_ms": 1000 * schedy_cycles(tpe),
                "random_cycle_ms": 1000 * schedy_cycles(rnd),
                "optuna_cycle_ms": 1000 * optuna_cycles(scratch, n, rng),
            }
            print(f"{n} jobs: {rows[n]}", file=sys.stderr, flush=True)
    print(
        "| jobs | TPE decision (ms) | CMA-ES decision (ms) | QMC decision (ms) | Schedy TPE cycle (ms) | "
        "Schedy random-search cycle (ms) | Optuna TPE ask + tell (ms) | Schedy / Optuna |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n, r in rows.items():
        ratio = r["schedy_cycle_ms"] / r["optuna_cycle_ms"] if r["optuna_cycle_ms"] else math.nan
        print(
            f"| {n:,} | {r['decision_ms']:.1f} | {r['cmaes_decision_ms']:.1f} | {r['qmc_decision_ms']:.1f} "
            f"| {r['schedy_cycle_ms']:.1f} | {r['random_cycle_ms']:.2f} | "
            f"{r['optuna_cycle_ms']:.1f} | {ratio:.2f} |"
        )
    if args.json:
        versions = {m: __import__(m).__version__ for m in ("numpy", "optuna", "cmaes", "scipy")}
        args.json.write_text(json.dumps({"cycles": CYCLES, "versions": versions, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
