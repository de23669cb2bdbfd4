#!/usr/bin/env python
"""PBT with many workers, synchronous PBT and PB2, measured with schedy.simulation over many seeds.

    python benchmarks/pbt_parallel.py [--quick] [--json out.json] [--plots DIR]

Every figure is the mean best score over seeds of simulated runs of the real
decisions (schedy.simulation.compare), each strategy with the same seeds, so
the same simulated machines and segment durations (common random numbers).
Significance: the two-sided permutation test of schedy.simulation
(10,000 resamples). It prints, and checks against the targets of
docs/simulation.md ("PBT and the number of workers"):

1. The toy problem of the PBT paper, 2 members, 1 and 2 workers, 30 seeds:
   PBT (default: ranked within a generation, asynchronous), synchronous PBT,
   PBT with the rule of release 0.1.0 (ranked by the latest segments),
   explore-only, PB2. Target: the default's mean best Q >= 1.0, ahead of
   explore-only with p < 0.05, with 1 and with 2 workers.
2. lr-schedule, 16 members, 4, 8 and 16 workers, 20 seeds: the same PBT
   variants and explore-only. Target: default / explore-only <= 0.8 at every
   worker count, and the default at 16 workers within 15% of itself at 4.
3. Small populations: PB2 and PBT with 4 members (4 workers) on
   lr-schedule, 30 seeds, and on the toy (2 members, PB2 against PBT, from
   table 1). Target: PB2 better than PBT on lr-schedule, no worse on the toy.

Ray Tune's PBT on the toy (measured on this machine when the work began; it is
not rerun here: 93-173 s per run) reached 0.69-0.83 mean best Q with 2
workers; the table prints it beside the figures.
"""

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from schedy import PopulationBasedTraining  # noqa: E402
from schedy.pbt import LATEST, MAXIMIZE, MINIMIZE, PB2, AddNoise, Keep, Perturb, Truncate  # noqa: E402
from schedy.random import LogUniform  # noqa: E402
from schedy.simulation import compare, lr_schedule, permutation_test, toy  # noqa: E402

RAY_TUNE_TOY_2_WORKERS = (0.69, 0.83)
COLOURS = {
    "pbt": "tab:blue",
    "pbt-sync": "tab:orange",
    "pbt-latest": "tab:grey",
    "pb2": "tab:green",
    "explore-only": "tab:red",
}


def toy_strategies(problem):
    noise = {"h0": AddNoise(problem.noise, low=problem.low), "h1": AddNoise(problem.noise, low=problem.low)}
    bounds = {"h0": (0.0, 1.0), "h1": (0.0, 1.0)}
    return {
        "pbt": PopulationBasedTraining("toy-pbt", MAXIMIZE, "Q", Truncate(0.5), noise),
        "pbt-sync": PopulationBasedTraining("toy-pbt-sync", MAXIMIZE, "Q", Truncate(0.5), noise, synchronous=True),
        "pbt-latest": PopulationBasedTraining("toy-pbt-latest", MAXIMIZE, "Q", Truncate(0.5), noise, ranking=LATEST),
        "pb2": PopulationBasedTraining("toy-pb2", MAXIMIZE, "Q", Truncate(0.5), PB2(bounds)),
        "explore-only": PopulationBasedTraining("toy-explore-only", MAXIMIZE, "Q", Keep(), noise),
    }


def lr_strategies(problem, population, pb2=False, variants=True):
    dist = {"lr": LogUniform(problem.low, problem.high)}
    perturb = {"lr": Perturb(0.8, 1.2)}
    common = dict(population_size=population, max_generations=problem.segments)
    out = {"pbt": PopulationBasedTraining("lr-pbt", MINIMIZE, "loss", Truncate(0.25), perturb, dist, **common)}
    if variants:
        out["pbt-sync"] = PopulationBasedTraining(
            "lr-pbt-sync", MINIMIZE, "loss", Truncate(0.25), perturb, dist, synchronous=True, **common
        )
        out["pbt-latest"] = PopulationBasedTraining(
            "lr-pbt-latest", MINIMIZE, "loss", Truncate(0.25), perturb, dist, ranking=LATEST, **common
        )
    if pb2:
        out["pb2"] = PopulationBasedTraining(
            "lr-pb2",
            MINIMIZE,
            "loss",
            Truncate(0.25),
            PB2({"lr": (problem.low, problem.high)}, log_scale=["lr"]),
            dist,
            **common,
        )
    out["explore-only"] = PopulationBasedTraining("lr-explore-only", MINIMIZE, "loss", Keep(), perturb, dist, **common)
    return out


def measure(strategies, problem, seeds, workers):
    """{label: {"finals": [...], "mean", "std", "segments", "end"}} for one worker count."""
    result = compare(strategies, problem, seeds=range(seeds), workers=workers)
    out = {}
    for label in strategies:
        runs = result.runs[label]
        finals = [r.final for r in runs]
        out[label] = {
            "finals": finals,
            "mean": float(np.mean(finals)),
            "std": float(np.std(finals, ddof=1)),
            "segments": float(np.mean([r.stats["segments"] for r in runs])),
            "end": float(np.mean([r.end for r in runs])),
        }
    return out


def p_value(a, b):
    return permutation_test(a["finals"], b["finals"])


def table(title, rows, columns):
    print(f"\n{title}")
    widths = [max(len(c), *(len(str(r[i])) for r in rows)) for i, c in enumerate(columns)]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    for r in rows:
        print("  ".join(str(x).rjust(w) for x, w in zip(r, widths)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds (a smoke run, not for the docs)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    parser.add_argument("--plots", metavar="DIR", help="write the plots of docs/simulation.md into DIR")
    args = parser.parse_args()
    started = time.perf_counter()
    toy_seeds, lr_seeds, small_seeds = (6, 4, 6) if args.quick else (30, 20, 30)
    report = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "seeds": {"toy": toy_seeds, "lr-schedule": lr_seeds, "small": small_seeds},
    }
    targets = []

    # 1. The toy problem.
    problem = toy()
    toy_results = {w: measure(toy_strategies(problem), problem, toy_seeds, w) for w in (1, 2)}
    rows = []
    for w, res in toy_results.items():
        for label, r in res.items():
            p = "" if label == "explore-only" else f"{p_value(r, res['explore-only']):.4f}"
            rows.append((w, label, f"{r['mean']:.3f}", f"{r['std']:.3f}", p, f"{r['end'] / 60:.0f}"))
        rows.append((w, "Ray Tune PBT (peer)", "0.69-0.83" if w == 2 else "-", "", "", ""))
    table(
        f"1. toy problem, 2 members, 50 segments, {toy_seeds} seeds: mean best Q (higher is better)",
        rows,
        ["workers", "strategy", "mean", "std", "p vs explore-only", "minutes (simulated)"],
    )
    for w, res in toy_results.items():
        d, e = res["pbt"], res["explore-only"]
        p = p_value(d, e)
        targets.append(
            (
                f"toy, {w} worker(s): PBT mean best Q >= 1.0 and ahead of explore-only (p < 0.05)",
                d["mean"] >= 1.0 and d["mean"] > e["mean"] and p < 0.05,
                f"{d['mean']:.3f} vs {e['mean']:.3f}, p = {p:.4f}",
            )
        )

    # 2. lr-schedule, 16 members.
    problem = lr_schedule()
    lr_results = {w: measure(lr_strategies(problem, 16), problem, lr_seeds, w) for w in (4, 8, 16)}
    rows = []
    for w, res in lr_results.items():
        e = res["explore-only"]
        for label, r in res.items():
            ratio = "" if label == "explore-only" else f"{r['mean'] / e['mean']:.2f}"
            p = "" if label == "explore-only" else f"{p_value(r, e):.4f}"
            rows.append(
                (
                    w,
                    label,
                    f"{r['mean']:.5f}",
                    f"{r['std']:.5f}",
                    ratio,
                    p,
                    f"{r['segments']:.0f}",
                    f"{r['end'] / 3600:.2f}",
                )
            )
    table(
        f"2. lr-schedule, 16 members, 320 segments, {lr_seeds} seeds: mean best loss (lower is better)",
        rows,
        ["workers", "strategy", "mean", "std", "/ explore-only", "p", "segments", "hours (simulated)"],
    )
    for w, res in lr_results.items():
        ratio = res["pbt"]["mean"] / res["explore-only"]["mean"]
        targets.append((f"lr-schedule, {w} workers: PBT / explore-only <= 0.8", ratio <= 0.8, f"{ratio:.3f}"))
    drift = lr_results[16]["pbt"]["mean"] / lr_results[4]["pbt"]["mean"]
    targets.append(("lr-schedule: PBT at 16 workers within 15% of PBT at 4", drift <= 1.15, f"{drift:.3f}"))

    # 3. Small populations: PB2 against PBT.
    small = lr_schedule(population=4)
    small_results = measure(lr_strategies(small, 4, pb2=True, variants=False), small, small_seeds, 4)
    rows = [
        (
            label,
            f"{r['mean']:.5f}",
            f"{r['std']:.5f}",
            "" if label == "pbt" else f"{p_value(r, small_results['pbt']):.4f}",
        )
        for label, r in small_results.items()
    ]
    table(
        f"3. lr-schedule, 4 members, 4 workers, 80 segments, {small_seeds} seeds: mean best loss",
        rows,
        ["strategy", "mean", "std", "p vs pbt"],
    )
    pb2, pbt = small_results["pb2"], small_results["pbt"]
    p = p_value(pb2, pbt)
    targets.append(
        (
            "lr-schedule, 4 members: PB2 better than PBT (p < 0.05)",
            pb2["mean"] < pbt["mean"] and p < 0.05,
            f"{pb2['mean']:.5f} vs {pbt['mean']:.5f}, p = {p:.4f}",
        )
    )
    for w, res in toy_results.items():
        pb2, pbt = res["pb2"], res["pbt"]
        p = p_value(pb2, pbt)
        no_worse = pb2["mean"] >= pbt["mean"] or p >= 0.05
        targets.append(
            (
                f"toy, {w} worker(s): PB2 no worse than PBT",
                no_worse,
                f"{pb2['mean']:.3f} vs {pbt['mean']:.3f}, p = {p:.4f}",
            )
        )

    print("\nTargets")
    for name, ok, figure in targets:
        print(f"  [{'met' if ok else 'MISSED'}] {name}: {figure}")
    elapsed = time.perf_counter() - started
    print(f"\n{elapsed:.0f} s on {os.cpu_count()} cores")

    report.update(
        toy={str(w): r for w, r in toy_results.items()},
        lr_schedule={str(w): r for w, r in lr_results.items()},
        small=small_results,
        targets=[{"target": n, "met": ok, "figure": f} for n, ok, f in targets],
        seconds=elapsed,
        ray_tune_toy_2_workers=RAY_TUNE_TOY_2_WORKERS,
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=lambda x: None if math.isnan(x) else x))
    if args.plots:
        plot(toy_results, lr_results, Path(args.plots))
    return 0 if all(ok for _, ok, _ in targets) else 1


def plot(toy_results, lr_results, directory):
    """Mean best score against the number of workers, per strategy (with the standard error)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    directory.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    for ax, results, title, ylabel in (
        (fig.add_subplot(1, 2, 1), toy_results, "toy, 2 members", "mean best Q (higher is better)"),
        (fig.add_subplot(1, 2, 2), lr_results, "lr-schedule, 16 members", "mean best loss (lower is better)"),
    ):
        workers = sorted(results)
        for i, label in enumerate(results[workers[0]]):
            means = [results[w][label]["mean"] for w in workers]
            errs = [results[w][label]["std"] / math.sqrt(len(results[w][label]["finals"])) for w in workers]
            # Shifted a little sideways, so strategies with equal figures (PBT and synchronous PBT with two
            # members) stay visible; one colour per strategy in both panels.
            shifted = [w * 1.03 ** (i - 2) for w in workers]
            ax.errorbar(shifted, means, yerr=errs, marker="o", capsize=3, label=label, color=COLOURS[label])
        if results is toy_results:
            ax.axhspan(
                *RAY_TUNE_TOY_2_WORKERS, xmin=0.55, xmax=1.0, color="grey", alpha=0.2, label="Ray Tune PBT, 2 workers"
            )
        ax.set_xscale("log", base=2)
        ax.set_xticks(workers, [str(w) for w in workers])
        ax.set_xlabel("workers")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.suptitle("mean best score over seeds (bars: standard error), equal budget of segments", fontsize=9)
    fig.tight_layout()
    fig.savefig(directory / "pbt-workers.png", dpi=110)
    print(f"wrote {directory / 'pbt-workers.png'}")


if __name__ == "__main__":
    sys.exit(main())
