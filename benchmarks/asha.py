#!/usr/bin/env python
"""ASHA and Hyperband against random search at equal compute, measured with schedy.simulation over many seeds.

    python benchmarks/asha.py [--quick] [--seeds N] [--trainings N] [--min-resources 3,9] [--json out.json]

Every run is a simulation of the real decisions (schedy.simulation.compare),
with a budget counted in segments: random search trains each configuration
for ``SEGMENTS`` segments; ASHA and Hyperband train a configuration from 1
segment up to ``SEGMENTS`` (reduction factor 3: rungs of 1, 3, 9 and 27
segments), a promotion continuing from its parent's model. Every strategy
reports the same number of segments, ``trainings`` x ``SEGMENTS``, and gets
the same seeds (the same simulated machines and durations). It prints
Markdown tables of:

1. lr-schedule (a constant learning rate per configuration, LogUniform(1e-3,
   1)) and noisy-curves (early scores informative but noisy), 8 workers, 20
   seeds: the final best score (mean and standard deviation), the compute
   each strategy needs to reach random search's final best of the same seed
   (a fraction of the budget, median over seeds, from best_over_time), and a
   one-sided Mann-Whitney U test of its final best against random search's.
   Targets: ASHA reaches random search's final best with at most 1/3 of the
   compute, and ends better with p < 0.05.
2. noisy-curves at other budgets: how the compute ASHA needs changes with
   the budget.
3. ASHA on noisy-curves with 4, 16 and 64 workers: promotions out of each
   rung against floor(DONE / 3), every promotion checked against the rule on
   the state it was decided from (its parent DONE, in the top third of its
   rung), and the share of asks that found no job although the rule could
   have proposed one (it always can without max_jobs: a new configuration).
   Target: that share is 0.
4. Both problems again, with ASHA and Hyperband at larger minimum resources
   (``--min-resources``, default 3 and 9: Ray Tune's ``grace_period``; rungs
   of 3, 9, 27 and of 9, 27 segments), against the same random search runs
   as table 1, with its statistics, and which settings reach random search's
   final best with at most 1/3 of the compute and end better with p < 0.05.

The Mann-Whitney p is exact: the null distribution of the rank sum is
counted over every split of the pooled runs (midranks for ties, so the test
is exact conditionally on them), with numpy; no scipy is needed.
"""

import argparse
import collections
import json
import math
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from schedy import ASHA, Hyperband, RandomSearch  # noqa: E402
from schedy.core import events as ev  # noqa: E402
from schedy.core import values  # noqa: E402
from schedy.core.state import apply  # noqa: E402
from schedy.pbt import MAXIMIZE, MINIMIZE  # noqa: E402
from schedy.random import LogUniform  # noqa: E402
from schedy.simulation import compare, lr_schedule, noisy_curves, simulate  # noqa: E402
from schedy.simulation.compare import available_cores  # noqa: E402

SEGMENTS = 27  # a full training; the last rung of ASHA and Hyperband
ETA = 3
WORKERS = 8
GRACE = (3, 9)  # the larger minimum resources of table 4 (Ray Tune's grace_period)


def ladder(min_resource=1):
    """ASHA's and Hyperband's settings: rungs of ``min_resource`` x 3^k segments, up to ``SEGMENTS``."""
    return dict(min_resource=min_resource, max_resource=SEGMENTS, reduction_factor=ETA)


def rung_resources(min_resource=1):
    """The resources of the rungs: 1, 3, 9, 27 for ``min_resource`` 1; 9, 27 for 9 (the last one is ``SEGMENTS``)."""
    out = [min_resource]
    while out[-1] * ETA <= SEGMENTS:
        out.append(out[-1] * ETA)
    return out[:-1] + [SEGMENTS]


def suffix(min_resource):
    """The label suffix of a minimum resource: none for 1 (tables 1 to 3), ``" r=3"`` for 3."""
    return "" if min_resource == 1 else f" r={min_resource}"


def halving(prefix, dist, min_resources):
    """``{label: experiment}``: ASHA and Hyperband at each minimum resource, on ``dist``."""
    out = {}
    for r in min_resources:
        tag = "" if r == 1 else f"-r{r}"
        out[f"asha{suffix(r)}"] = ASHA(f"{prefix}-asha{tag}", dist, "loss", MINIMIZE, **ladder(r))
        out[f"hyperband{suffix(r)}"] = Hyperband(f"{prefix}-hyperband{tag}", dist, "loss", MINIMIZE, **ladder(r))
    return out


def lr_problem(min_resources=(1,)):
    """lr-schedule with a constant learning rate per configuration, for every strategy."""
    problem = lr_schedule(segments=SEGMENTS)
    dist = {"lr": LogUniform(problem.low, problem.high)}
    return problem, {"random": RandomSearch("lr-random", dist), **halving("lr", dist, min_resources)}


def curves_problem(min_resources=(1,)):
    """noisy-curves; with the default, the problem's own strategies (the same names and settings)."""
    problem = noisy_curves(segments=SEGMENTS)
    dist = problem.distributions()
    return problem, {"random": RandomSearch("curves-random", dist), **halving("curves", dist, min_resources)}


PROBLEMS = {"lr-schedule": lr_problem, "noisy-curves": curves_problem}


# -- statistics ---------------------------------------------------------------------------------------


def midranks(x):
    """Ranks from 1, ties sharing the mean of their ranks."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # 0-based rank of each distinct value's first copy
    return (first + (counts + 1) / 2)[inverse]


def mann_whitney_less(a, b):
    """``(U, p)``: the U statistic of ``a`` and the exact one-sided p-value of "``a`` tends to be smaller than ``b``".

    p is the share of the C(n + m, n) splits of the pooled values whose rank sum for the first n is at most the
    observed one, counted by dynamic programming over doubled midranks (integers), so ties are handled exactly.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n = len(a)
    doubled = np.rint(2 * midranks(np.concatenate((a, b)))).astype(np.int64)
    observed = int(doubled[:n].sum())
    total = int(doubled.sum())
    ways = np.zeros((n + 1, total + 1))  # ways[k, s]: subsets of k values whose doubled ranks sum to s
    ways[0, 0] = 1.0
    for r in doubled:
        ways[1:, r:] = ways[1:, r:] + ways[:-1, : total + 1 - r]  # the right side is computed before assignment
    p = float(ways[n, : observed + 1].sum() / ways[n].sum())  # counts stay below 2**53: exact in float64
    return observed / 2 - n * (n + 1) / 2, p


def compute_to_reach(run, target, budget, objective):
    """The fraction of the budget ``run`` had reported when its best first reached ``target`` (inf if never)."""
    reached = run.best >= target if objective == MAXIMIZE else run.best <= target
    hits = np.flatnonzero(reached)
    return (int(hits[0]) + 1) / budget if len(hits) else math.inf  # one report per segment


# -- the runs -----------------------------------------------------------------------------------------


def measure(name, seeds, trainings, strategies=None, processes=None, min_resources=(1,)):
    """Final bests, compute to reach random search's final best and the tests, per strategy of ``name``.

    ``min_resources``: ASHA and Hyperband at each of these minimum resources (labels ``"asha r=3"``...; plain
    ``"asha"`` for 1), every one against the same random search.
    """
    problem, experiments = PROBLEMS[name](min_resources)
    if strategies is not None:
        experiments = {k: experiments[k] for k in strategies}
    budget = trainings * SEGMENTS
    result = compare(
        experiments,
        problem,
        seeds=range(seeds),
        workers=WORKERS,
        budget=budget,
        segments_per_job=SEGMENTS,
        processes=processes,
    )
    targets = result.finals("random")
    sign = -1.0 if result.objective == MAXIMIZE else 1.0  # the test asks for "better", i.e. smaller after sign
    out = {}
    for label in experiments:
        finals = result.finals(label)
        fractions = [compute_to_reach(r, t, budget, result.objective) for r, t in zip(result.runs[label], targets)]
        u, p = mann_whitney_less(sign * finals, sign * targets) if label != "random" else (math.nan, math.nan)
        out[label] = {
            "finals": finals.tolist(),
            "mean": float(finals.mean()),
            "std": float(finals.std(ddof=1)),
            "fractions": fractions,
            "median_fraction": float(np.median(fractions)),
            "reached": int(np.isfinite(fractions).sum()),
            "U": u,
            "p": p,
            "best_hyperparameters": [r.schedule[-1]["hyperparameters"] for r in result.runs[label]],
            "segments": float(np.mean([r.stats["segments"] for r in result.runs[label]])),
            "hours": float(np.mean([r.end for r in result.runs[label]])) / 3600,
            # configurations tried (jobs that continue no other) in the run of the first seed, the one compare keeps
            "configurations": sum(j.parent is None for j in result.examples[label].state.jobs.values()),
        }
    return {"budget": budget, "seeds": seeds, "strategies": out}


def _score(job, name, sign):
    return sign * values.decode(job.results[name])


def check_promotions(sim):
    """Replay ``sim``'s log: each promotion checked against the state it was decided from; counts per rung.

    Returns ``{"done": {rung: n}, "done_last": {rung: n}, "promoted": {rung: n}, "promotions": n,
    "violations": [...]}``: DONE jobs per rung at the end and when the last job was handed out (jobs that
    finish after it cannot be promoted: the budget is spent), promotions out of each rung, and the promotions
    whose parent was not DONE, not of the same configuration one rung lower, or not in the top
    floor(n / reduction_factor) of the DONE jobs of its rung (n of them, ranked by score).
    """
    sign = -1.0 if sim.objective == MAXIMIZE else 1.0
    state, last, violations, promotions = None, None, [], 0
    for c in sim.commits:
        for e in c.events:
            if e["type"] != ev.JOB_ADDED:
                continue
            last = state
            if e.get("parent") is None:
                continue
            promotions += 1
            parent = state.jobs[e["parent"]]
            rung = [
                j
                for j in state.jobs.values()
                if j.status == ev.DONE and j.generation == parent.generation and sim.score_name in j.results
            ]
            top = sorted(rung, key=lambda j: (_score(j, sim.score_name, sign), j.number))[: len(rung) // ETA]
            if parent.status != ev.DONE or e["member"] != parent.member or e["generation"] != parent.generation + 1:
                violations.append(f"job {e['job_id']}: parent {parent.job_id} is {parent.status}")
            elif parent.job_id not in {j.job_id for j in top}:
                violations.append(f"job {e['job_id']}: parent {parent.job_id} not in the top {len(top)}")
        state = apply(state, c, sim.name)
    jobs = list(sim.state.jobs.values())
    done = collections.Counter(j.generation for j in jobs if j.status == ev.DONE)
    done_last = collections.Counter(j.generation for j in last.jobs.values() if j.status == ev.DONE)
    promoted = collections.Counter(sim.state.jobs[j.parent].generation for j in jobs if j.parent is not None)
    return {
        "done": dict(done),
        "done_last": dict(done_last),
        "promoted": dict(promoted),
        "promotions": promotions,
        "violations": violations,
    }


def _ladder_run(args):
    workers, seed, budget = args
    problem, experiments = curves_problem()
    sim = simulate(experiments["asha"], problem, seed=seed, workers=workers, budget=budget)
    checked = check_promotions(sim)
    return dict(checked, workers=workers, seed=seed, asks=sim.stats["asks"], waited=sim.stats["waited"])


def ladders(counts, seeds, budget, processes):
    """:func:`check_promotions` of ASHA on noisy-curves at each worker count, summed over seeds."""
    tasks = [(w, s, budget) for w in counts for s in range(seeds)]
    if processes > 1:
        import concurrent.futures
        import multiprocessing

        with concurrent.futures.ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork")) as pool:
            runs = list(pool.map(_ladder_run, tasks))
    else:
        runs = [_ladder_run(t) for t in tasks]
    out = {}
    for w in counts:
        mine = [r for r in runs if r["workers"] == w]
        done, done_last, promoted = collections.Counter(), collections.Counter(), collections.Counter()
        for r in mine:
            done.update(r["done"])
            done_last.update(r["done_last"])
            promoted.update(r["promoted"])
        out[w] = {
            "done": dict(done),
            "done_last": dict(done_last),
            "promoted": dict(promoted),
            "promotions": sum(r["promotions"] for r in mine),
            "violations": [v for r in mine for v in r["violations"]],
            "asks": sum(r["asks"] for r in mine),
            "waited": sum(r["waited"] for r in mine),
        }
    return out


def best_constant_rates():
    """lr-schedule without evaluation noise: the best constant learning rate after 1, 3, 9 and 27 segments."""
    grid = np.logspace(-3, 0, 61)  # 20 rates per decade
    problem = lr_schedule(segments=SEGMENTS, eval_noise=0.0)
    rng = np.random.default_rng(0)  # unused without evaluation noise
    out = {}
    for segments in (1, 3, 9, 27):
        losses = [problem.step({"lr": lr}, None, problem.steps * segments, rng)[1] for lr in grid]
        out[segments] = float(grid[int(np.argmin(losses))])
    return out


# -- printing -----------------------------------------------------------------------------------------


def markdown(columns, rows, right=()):
    print("| " + " | ".join(columns) + " |")
    print("| " + " | ".join("---:" if i in right else "---" for i in range(len(columns))) + " |")
    for row in rows:
        print("| " + " | ".join(str(x) for x in row) + " |")
    print()


def fraction(x):
    return "not reached" if not math.isfinite(x) else f"{x:.2f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 seeds and smaller budgets (a smoke run)")
    parser.add_argument("--seeds", type=int, default=20, help="seeds per strategy (default 20)")
    parser.add_argument("--trainings", type=int, default=64, help="the budget in full trainings (default 64)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    parser.add_argument("--processes", type=int, default=None, help="processes (default: one per core)")
    parser.add_argument(
        "--min-resources",
        default=",".join(map(str, GRACE)),
        metavar="R,R",
        help=f"table 4: ASHA and Hyperband at these larger minimum resources, comma-separated (default "
        f"{','.join(map(str, GRACE))}; an empty string skips the table)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    seeds = 4 if args.quick else args.seeds
    trainings = 16 if args.quick else args.trainings
    sweep = [16, 128] if not args.quick else [8]
    processes = args.processes or available_cores()
    budget = trainings * SEGMENTS
    try:
        grace = sorted({int(r) for r in args.min_resources.split(",") if r.strip()} - {1})
    except ValueError:
        grace = [0]
    if any(not 1 < r <= SEGMENTS for r in grace):
        parser.error(f"--min-resources: each must be between 2 and {SEGMENTS}, got {args.min_resources!r}")
    print(
        f"Settings: {seeds} seeds, {WORKERS} simulated workers, budget {budget} segments ({trainings} full "
        f"trainings of {SEGMENTS} segments) for every strategy; ASHA and Hyperband: min_resource 1, max_resource "
        f"{SEGMENTS}, reduction_factor {ETA} (rungs {', '.join(map(str, rung_resources()))}); random search: "
        f"{SEGMENTS} segments per job. "
        f"Segments of 100 s on average (spread 0.25), no failures. {processes} processes, Python "
        f"{platform.python_version()}, numpy {np.__version__}.\n"
    )
    report = {
        "settings": {
            "seeds": seeds,
            "workers": WORKERS,
            "segments": SEGMENTS,
            "eta": ETA,
            "budget": budget,
            "min_resources": [1, *grace],
        }
    }

    # 1. Both problems at the main budget (with the larger minimum resources of table 4: the same random runs).
    main_rows, results = [], {}
    for name in PROBLEMS:
        results[name] = res = measure(name, seeds, trainings, processes=processes, min_resources=(1, *grace))
        for label, r in res["strategies"].items():
            if " r=" in label:
                continue
            main_rows.append(
                (
                    name,
                    label,
                    f"{r['mean']:.4g} ± {r['std']:.2g}",
                    "(itself)" if label == "random" else fraction(r["median_fraction"]),
                    "" if label == "random" else f"{r['reached']}/{seeds}",
                    "" if label == "random" else f"{r['p']:.2g}",
                    f"{r['hours']:.2f}",
                )
            )
    print(f"1. Final best loss (lower is better), {WORKERS} workers, budget {budget} segments, {seeds} seeds\n")
    markdown(
        [
            "problem",
            "strategy",
            "final best, mean ± sd",
            "compute to reach random's final best (median)",
            "seeds that reach it",
            "p (one-sided Mann-Whitney, better than random)",
            "simulated hours",
        ],
        main_rows,
        right={2, 3, 4, 5, 6},
    )
    report["main"] = results
    rates = best_constant_rates()
    chosen = {
        label: float(np.median([h["lr"] for h in r["best_hyperparameters"]]))
        for label, r in results["lr-schedule"]["strategies"].items()
    }
    first = {label: lr for label, lr in chosen.items() if " r=" not in label}
    report["lr"] = {"best_constant": rates, "best_job_median": chosen}
    print(
        "lr-schedule: learning rate of the best job, median over seeds: "
        + ", ".join(f"{label} {lr:.3f}" for label, lr in first.items())
        + "; the best constant rate (no evaluation noise) after "
        + ", ".join(f"{n}" for n in rates)
        + " segments: "
        + ", ".join(f"{lr:.3f}" for lr in rates.values())
        + "\n"
    )

    # 2. noisy-curves at other budgets: ASHA against random search.
    sweep_rows, report["sweep"] = [], {}
    for n in sorted({*sweep, trainings}):
        res = results["noisy-curves"] if n == trainings else measure("noisy-curves", seeds, n, ["random", "asha"])
        report["sweep"][n] = res
        a, r = res["strategies"]["asha"], res["strategies"]["random"]
        sweep_rows.append(
            (
                f"{n} ({n * SEGMENTS})",
                f"{r['mean']:.4g} ± {r['std']:.2g}",
                f"{a['mean']:.4g} ± {a['std']:.2g}",
                fraction(a["median_fraction"]),
                f"{a['reached']}/{seeds}",
                f"{a['p']:.2g}",
            )
        )
    print(f"2. noisy-curves, ASHA against random search at other budgets ({WORKERS} workers, {seeds} seeds)\n")
    markdown(
        [
            "budget: trainings (segments)",
            "random, final best",
            "ASHA, final best",
            "ASHA's compute to reach random's final best (median)",
            "seeds",
            "p",
        ],
        sweep_rows,
        right={1, 2, 3, 4, 5},
    )

    # 3. Promotions and idle asks of ASHA at 4, 16 and 64 workers.
    counts = [4, 16, 64]
    lad = ladders(counts, seeds, budget, processes)
    report["ladders"] = lad
    rungs = range(len(rung_resources()) - 1)
    rows = []
    for w, r in lad.items():
        cells = [
            f"{r['promoted'].get(k, 0)} / {r['done'].get(k, 0) // ETA} ({r['done_last'].get(k, 0) // ETA})"
            for k in rungs
        ]
        rows.append((w, *cells, r["promotions"], len(r["violations"]), f"{r['waited']} / {r['asks']}"))
    print(
        f"3. ASHA on noisy-curves, budget {budget} segments, {seeds} seeds summed: jobs promoted out of each "
        f"rung / floor(DONE at the rung / {ETA}) at the end (in brackets: when the last job was handed out), "
        f"promotions that break the rule, asks that found no job\n"
    )
    markdown(
        [
            "workers",
            *(f"rung {k} → {k + 1}" for k in rungs),
            "promotions",
            "against the rule",
            "asks with no job / asks",
        ],
        rows,
        right=set(range(1, 7)),
    )

    # 4. A larger minimum resource (Ray Tune's grace_period), both problems, against the same random search.
    both = {}  # problem: the settings that reach random's final best with <= 1/3 of the compute and p < 0.05
    if grace:
        rows = []
        for name, res in results.items():
            both[name] = []
            for label, r in res["strategies"].items():
                kind, _, tag = label.partition(" r=")
                r_min = int(tag) if tag else 1
                ok = label != "random" and r["median_fraction"] <= 1 / 3 and r["p"] < 0.05
                if ok:
                    both[name].append(label)
                rows.append(
                    (
                        name,
                        "" if label == "random" else f"{r_min} ({', '.join(map(str, rung_resources(r_min)))})",
                        {"random": "random", "asha": "ASHA", "hyperband": "Hyperband"}[kind],
                        f"{r['mean']:.4g} ± {r['std']:.2g}",
                        "(itself)" if label == "random" else fraction(r["median_fraction"]),
                        "" if label == "random" else f"{r['reached']}/{seeds}",
                        "" if label == "random" else f"{r['p']:.2g}",
                        "" if label == "random" else ("yes" if ok else "no"),
                        r["configurations"],
                        f"{r['hours']:.2f}",
                    )
                )
        print(
            f"4. A larger minimum resource (grace period): ASHA and Hyperband with min_resource 1, "
            f"{', '.join(map(str, grace))}, max_resource {SEGMENTS}, reduction_factor {ETA}, against the same "
            f"random search ({WORKERS} workers, budget {budget} segments, {seeds} seeds)\n"
        )
        markdown(
            [
                "problem",
                "min_resource (rungs)",
                "strategy",
                "final best, mean ± sd",
                "compute to reach random's final best (median)",
                "seeds that reach it",
                "p (one-sided Mann-Whitney, better than random)",
                "≤ 1/3 and p < 0.05",
                "configurations (seed 0)",
                "simulated hours",
            ],
            rows,
            right={3, 4, 5, 6, 8, 9},
        )
        print(
            "lr-schedule: learning rate of the best job, median over seeds: "
            + ", ".join(f"{label} {lr:.3f}" for label, lr in chosen.items())
            + "\n"
        )
        report["grace"] = both

    # The targets.
    asha = results["noisy-curves"]["strategies"]["asha"]
    checks = []
    for name, res in results.items():
        a = res["strategies"]["asha"]
        checks.append(
            (
                f"{name}: ASHA reaches random search's final best with <= 1/3 of the compute (median)",
                a["median_fraction"] <= 1 / 3,
                fraction(a["median_fraction"]),
            )
        )
        checks.append(
            (
                f"{name}: ASHA's final best better than random search's, p < 0.05",
                a["p"] < 0.05,
                f"{a['mean']:.4g} vs {res['strategies']['random']['mean']:.4g}, p = {a['p']:.2g}",
            )
        )
    for name, labels in both.items():
        checks.append(
            (
                f"{name}: a larger min_resource ({', '.join(map(str, grace))}) meets both",
                any(" r=" in label for label in labels),
                ", ".join(labels) or "none",
            )
        )
    waited = sum(r["waited"] for r in lad.values())
    broken = sum(len(r["violations"]) for r in lad.values())
    checks.append(("asks that found no job while one could be proposed: 0", waited == 0, str(waited)))
    checks.append(("promotions against the rule: 0", broken == 0, str(broken)))
    print("Targets:\n")
    markdown(["target", "met", "measured"], [(t, "yes" if ok else "**no**", m) for t, ok, m in checks])
    report["targets"] = [{"target": t, "met": ok, "measured": m} for t, ok, m in checks]
    report["asha_noisy_fractions"] = asha["fractions"]
    elapsed = time.perf_counter() - started
    report["seconds"] = elapsed
    print(f"{elapsed:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
