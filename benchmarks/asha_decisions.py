"""The cost of a decision of ASHA and Hyperband as the experiment grows, beside random search's.

    python benchmarks/asha_decisions.py [--quick]

One worker's cycle, in the pure core (no store, no I/O): ``decide.next_job`` on the folded state, then
``update_job`` reporting a random score, each folded as a commit. The experiment grows to 1,000, 10,000 and
100,000 jobs (10,000 with --quick); at each size, the median time of the ``next_job`` decision over 300
cycles is printed, and its ratio to the same kind's at 1,000 jobs. Random search's decision (a sample and a
claim) is the floor: it does not look at other jobs at all.
"""

import argparse
import time

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="up to 10,000 jobs instead of 100,000")
    args = parser.parse_args()
    sizes = (1_000, 10_000) if args.quick else (1_000, 10_000, 100_000)
    print("| kind | " + " | ".join(f"{n:,} jobs (ms)" for n in sizes) + f" | {sizes[-1]:,} / 1,000 |")
    print("| --- |" + " --- |" * (len(sizes) + 1))
    for kind in ("random", "asha", "hyperband"):
        t = measure(kind, sizes)
        row = " | ".join(f"{t[n] * 1000:.3f}" for n in sizes)
        print(f"| {kind} | {row} | {t[sizes[-1]] / t[sizes[0]]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
