#!/usr/bin/env python
"""Benchmark of the offline simulation (schedy.simulation): simulated segments per second.

    python benchmarks/simulation.py [--quick] [--json out.json] [--profile]

Measures, on one core (one process), in one run:

1. The target configuration: Population Based Training of 20 members on 8
   simulated workers for 100 generations (the learning-rate problem, 2,000
   segments), with the default model of time (segments of 100 simulated
   seconds, a lease renewal every 30 s: about 4 commits per segment). Best of 3
   runs (1 with --quick); the ratio to the 2-second target.
2. The same with sparse renewals (a lease of 1 hour renewed every 15 minutes:
   2 commits per segment), to separate the cost of the decisions from the
   cost of heartbeats.
3. How the rate changes with the population size (8 workers, 100
   generations; 25 with --quick).
4. The wall time of the two proofs of docs/simulation.md: 20 seeds of the
   four toy strategies, and 20 seeds of PBT and random search on the
   learning-rate problem, in one process and spread over every core.

With --profile, the 10 functions with the most cumulative time in the target
configuration (cProfile) are printed. Nothing is asserted; every figure is
measured in this run on this machine.
"""

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # benchmark the checkout this script lives in

import numpy as np  # noqa: E402

import schedy  # noqa: E402
from schedy.pbt import MINIMIZE, Perturb, Truncate  # noqa: E402
from schedy.random import LogUniform  # noqa: E402
from schedy.simulation import compare, lr_schedule, simulate, toy  # noqa: E402
from schedy.simulation.compare import available_cores  # noqa: E402

TARGET = 2.0  # seconds, for 20 members, 8 workers, 100 generations on one core


def definition(population, generations, lease=None):
    return schedy.PopulationBasedTraining(
        "bench",
        MINIMIZE,
        "loss",
        Truncate(0.25),
        {"lr": Perturb(0.8, 1.2)},
        {"lr": LogUniform(1e-3, 1.0)},
        population_size=population,
        max_generations=generations,
        lease=lease,
    )


def timed(population, generations, workers=8, repeat=1, lease=None, heartbeat=None):
    problem = lr_schedule(population=population, segments=generations)
    best, sim = None, None
    for _ in range(repeat):
        start = time.perf_counter()
        sim = simulate(
            definition(population, generations, lease),
            problem,
            workers=workers,
            seed=0,
            budget=population * generations,
            heartbeat=heartbeat,
        )
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    segments, commits = sim.stats["segments"], sim.stats["commits"]
    return {
        "population": population,
        "workers": workers,
        "generations": generations,
        "seconds": best,
        "segments": segments,
        "commits": commits,
        "segments_per_s": segments / best,
        "commits_per_s": commits / best,
        "commits_per_segment": commits / segments,
        "ms_per_segment": 1000 * best / segments,
    }


def proofs(processes):
    out = {}
    for name, problem in (("toy", toy()), ("lr-schedule", lr_schedule())):
        start = time.perf_counter()
        result = compare(problem.strategies(), problem, seeds=range(20), processes=processes)
        elapsed = time.perf_counter() - start
        segments = sum(r.stats["segments"] for runs in result.runs.values() for r in runs)
        out[name] = {
            "runs": sum(len(r) for r in result.runs.values()),
            "segments": segments,
            "seconds": elapsed,
            "segments_per_s": segments / elapsed,
        }
    return out


def machine():
    try:
        commit = (
            subprocess.run(
                ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
            ).stdout.strip()
            or "?"
        )
    except (OSError, subprocess.SubprocessError):
        commit = "?"
    return {
        "cpus": os.cpu_count(),
        "cores_available": available_cores(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "commit": commit,
    }


def table(rows, cols):
    head = "  ".join(f"{c:>{w}}" for c, w, _ in cols)
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append("  ".join(f"{fmt.format(r[c]):>{w}}" for c, w, fmt in cols))
    return "\n".join(lines)


COLS = [
    ("population", 10, "{}"),
    ("workers", 7, "{}"),
    ("generations", 11, "{}"),
    ("segments", 8, "{}"),
    ("commits", 7, "{}"),
    ("seconds", 7, "{:.3f}"),
    ("segments_per_s", 14, "{:,.0f}"),
    ("commits_per_s", 13, "{:,.0f}"),
    ("ms_per_segment", 14, "{:.3f}"),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, shorter population sweep")
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    parser.add_argument("--profile", action="store_true", help="print the hot spots of the target configuration")
    args = parser.parse_args(argv)
    repeat = 1 if args.quick else 3
    report = {"machine": machine()}
    m = report["machine"]
    print(
        f"Machine: {m['cpus']} CPUs ({m['cores_available']} available), Python {m['python']}, numpy {m['numpy']}, "
        f"{m['platform']}, commit {m['commit']}"
    )

    timed(20, 10)  # warm up (imports, caches)
    target = timed(20, 100, repeat=repeat)
    sparse = timed(20, 100, repeat=repeat, lease=3600.0, heartbeat=900.0)
    report["target"], report["sparse_heartbeats"] = target, sparse
    print(f"\n1-2. PBT, 20 members, 8 workers, 100 generations, one process (best of {repeat}); target {TARGET:.0f} s")
    print(table([dict(target, population=20), dict(sparse, population=20)], COLS))
    print(
        f"default time model: {target['seconds']:.3f} s = {target['seconds'] / TARGET:.2f} x the target; "
        f"renewals every 15 min: {sparse['seconds']:.3f} s = {sparse['seconds'] / TARGET:.2f} x the target"
    )

    generations = 25 if args.quick else 100
    sweep = []
    for population in (5, 10, 20, 40, 80):
        sweep.append(timed(population, generations))
    report["population_sweep"] = sweep
    print(f"\n3. Population size (8 workers, {generations} generations, default time model)")
    print(table(sweep, COLS))

    cores = available_cores()
    report["proofs_one_process"] = proofs(1)
    report["proofs_all_cores"] = proofs(cores) if cores > 1 else report["proofs_one_process"]
    print(f"\n4. The proofs of docs/simulation.md, 20 seeds per strategy: one process, then {cores} processes")
    for name in ("toy", "lr-schedule"):
        one, many = report["proofs_one_process"][name], report["proofs_all_cores"][name]
        print(
            f"  {name}: {one['runs']} runs, {one['segments']} segments: {one['seconds']:.2f} s "
            f"({one['segments_per_s']:,.0f} segments/s); {many['seconds']:.2f} s on {cores} processes"
        )

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        timed(20, 100)
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(14)
        print("\nProfile of the target configuration (cumulative time):")
        print("\n".join(line for line in text.getvalue().splitlines() if line.strip())[-2500:])
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
