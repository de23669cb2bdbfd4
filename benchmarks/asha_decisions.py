"""The cost of a decision of ASHA and Hyperband as the experiment grows, beside random search's.

    python benchmarks/asha_decisions.py [--quick]

Two tables. First, one worker's cycle in the pure core (no store, no I/O): ``decide.next_job`` on the folded
state, then ``update_job`` reporting a random score, each folded as a commit. The experiment grows to 1,000,
10,000 and 100,000 jobs (10,000 with --quick); at each size, the median time of the ``next_job`` decision
over 300 cycles is printed, and its ratio to the same kind's at 1,000 jobs. Random search's decision (a
sample and a claim) is the floor: it does not look at other jobs at all.

Second, measured as the other kinds' growth is (benchmarks/optuna_journal.py): durable worker cycles per
second (``with exp.next_job() as job:``, one fsync per cycle) on a local database of each kind holding
1,000, 10,000 and 100,000 finished jobs, each point in a fresh process on a fresh copy, best of 3 repeats
taken in turn over the sizes and kinds so that the machine's drift moves them alike.
"""

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from schedy.core import decide, halving, values
from schedy.core import events as ev
from schedy.core.codec import Commit
from schedy.core.distributions import LogUniform
from schedy.core.state import apply

DISTS = {"lr": LogUniform(1e-3, 1.0)}


def params(kind):
    if kind == "random":
        return {"scheduler": {"RandomSearch": {"distributions": {n: d.to_log() for n, d in DISTS.items()}}}}
    return halving.Config(kind, DISTS, "loss", max_resource=81).to_log()


def measure(kind, sizes, cycles=300):
    """The median ``next_job`` decision time (seconds) at each size of ``sizes``."""
    state = apply(
        None,
        Commit(
            1,
            1.0,
            "w",
            decide.create_experiment(None, name="e", kind=kind, params=params(kind), status=ev.RUNNING, seed=1).events,
        ),
    )
    rng, version, out = np.random.default_rng(0), 1, {}

    def cycle():
        nonlocal state, version
        began = time.perf_counter()
        d = decide.next_job(state, name="e", worker="w", version=version + 1, now=float(version))
        took = time.perf_counter() - began
        version += 1
        state = apply(state, Commit(version, float(version), "w", d.events))
        job = state.jobs[d.value]
        d = decide.update_job(
            state,
            name="e",
            job_id=job.job_id,
            worker="w",
            status=ev.DONE,
            hyperparameters=job.hyperparameters,
            results={"loss": values.encode(float(rng.random()))},
            now=float(version),
        )
        version += 1
        state = apply(state, Commit(version, float(version), "w", d.events))
        return took

    for n in sizes:
        while state.next_number - 1 < n:
            cycle()
        out[n] = float(np.median([cycle() for _ in range(cycles)]))
    return out


# -- durable cycles on a local database ------------------------------------------------------------------------

NAME = "growth"


def definition(kind):
    import schedy
    from schedy.random import LogUniform as LogUniformApi

    dists = {"lr": LogUniformApi(1e-3, 1.0)}
    if kind == "random":
        return schedy.RandomSearch(NAME, dists, seed=1)
    cls = schedy.ASHA if kind == "asha" else schedy.Hyperband
    return cls(NAME, dists, "loss", max_resource=81, seed=1)


def worker_cycle(exp, rng):
    with exp.next_job() as job:
        job.results["loss"] = float(rng.random())


def build(path, kind, jobs):
    """A database at ``path`` whose experiment of ``kind`` holds ``jobs`` finished jobs (cycles without fsync)."""
    import schedy

    gc.disable()  # a builder only: the collector's passes over a big state would slow a long run
    exp = schedy.SchedyDB(path, durable=False).add_experiment(definition(kind))
    rng = np.random.default_rng(0)
    for _ in range(jobs):
        worker_cycle(exp, rng)
    gc.enable()


def point(path, cycles):
    """Durable cycles per second on the database at ``path`` (run in a fresh process)."""
    import schedy

    exp = schedy.SchedyDB(path).get_experiment(NAME)
    rng = np.random.default_rng(1)
    began = time.perf_counter()
    for _ in range(cycles):
        worker_cycle(exp, rng)
    return cycles / (time.perf_counter() - began)


def durable_growth(sizes, kinds, cycles=1000, repeats=3):
    """``{kind: {size: best cycles/s}}``."""
    with tempfile.TemporaryDirectory(prefix="asha-growth-") as scratch:
        sources = {}
        for kind in kinds:
            for n in sizes:
                sources[kind, n] = os.path.join(scratch, f"{kind}-{n}")
                build(sources[kind, n], kind, n)
        if hasattr(os, "sync"):
            os.sync()  # the builds' dirty pages would slow the fsyncs measured next
        best = {kind: dict.fromkeys(sizes, 0.0) for kind in kinds}
        for _ in range(repeats):
            for n in sizes:
                for kind in kinds:
                    work = os.path.join(scratch, "work")
                    shutil.rmtree(work, ignore_errors=True)
                    shutil.copytree(sources[kind, n], work)
                    if hasattr(os, "sync"):
                        os.sync()
                    out = subprocess.run(
                        [sys.executable, __file__, "--point", work, str(cycles)],
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    best[kind][n] = max(best[kind][n], json.loads(out.stdout)["cycles_per_s"])
        return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="up to 10,000 jobs instead of 100,000")
    parser.add_argument("--point", nargs=2, metavar=("DB", "CYCLES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.point:
        print(json.dumps({"cycles_per_s": point(Path(args.point[0]), int(args.point[1]))}))
        return
    sizes = (1_000, 10_000) if args.quick else (1_000, 10_000, 100_000)
    print("| kind | " + " | ".join(f"{n:,} jobs (ms)" for n in sizes) + f" | {sizes[-1]:,} / 1,000 |")
    print("| --- |" + " --- |" * (len(sizes) + 1))
    for kind in ("random", "asha", "hyperband"):
        t = measure(kind, sizes)
        row = " | ".join(f"{t[n] * 1000:.3f}" for n in sizes)
        print(f"| {kind} | {row} | {t[sizes[-1]] / t[sizes[0]]:.2f} |", flush=True)
    kinds = ("random", "asha", "hyperband")
    best = durable_growth(sizes, kinds)
    print()
    print("| kind | " + " | ".join(f"cycles/s at {n:,} jobs" for n in sizes) + f" | {sizes[-1]:,} / 1,000 |")
    print("| --- |" + " --- |" * (len(sizes) + 1))
    for kind in kinds:
        row = " | ".join(f"{best[kind][n]:,.0f}" for n in sizes)
        print(f"| {kind} | {row} | {best[kind][sizes[-1]] / best[kind][sizes[0]]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
