"""Population Based Training run by several worker processes on one database, with no server.

Run it with::

    python -m schedy.demo [--workers 4] [--population 8] [--generations 10] [--db PATH] [--seed N]

The problem is the toy example of the PBT paper (Jaderberg et al., 2017,
section 4.1): maximise Q(theta) = 1.2 - (theta0^2 + theta1^2), where each
member trains theta by gradient ascent on the surrogate
Q^(theta|h) = 1.2 - (h0 theta0^2 + h1 theta1^2), whose hyperparameters
h = (h0, h1) are what PBT tunes. The weights theta are a numpy array: each
segment loads them from ``job.results["model_path"]`` (the checkpoint of the
job it continues from), takes a few steps, saves them to a new file named
after its job id, and reports Q.

The main process creates a database (a fresh temporary directory unless
``--db`` is given) and a :class:`schedy.PopulationBasedTraining` experiment
(``Truncate`` + ``Perturb``), then starts the workers. Each worker opens its
own :class:`schedy.SchedyDB` on the same directory and loops on
``exp.next_job()``: while the next segment depends on segments running
elsewhere, ``next_job()`` raises :class:`schedy.errors.NoJobError` with
``waiting_for`` set, and the worker retries shortly; when every member has
trained its last generation, the experiment marks itself DONE and the
workers stop.

Finally it prints how many segments were trained (population x generations:
each member trains one segment per generation, whether it continues its own
model or a better member's), a leaderboard of the members, the hyperparameter
schedule that produced the best model (``exp.lineage``), and the path of the
log.
"""

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

import schedy
from schedy.adapters.naming import stream_key
from schedy.errors import NoJobError, ResourceExistsError
from schedy.pbt import MAXIMIZE, Perturb, Truncate
from schedy.random import Uniform

EXPERIMENT = "demo"
THETA0 = (0.9, 0.9)  # the paper's starting point
STEP = 0.02  # gradient ascent step size


def quality(theta):
    """The real objective Q(theta), to maximise (at most 1.2, at theta = 0)."""
    return float(1.2 - np.sum(theta**2))


def train_segment(job, checkpoints, steps):
    """One segment: load theta from the parent's checkpoint, ascend the surrogate, save, report Q."""
    start = job.results.get("model_path")  # absent in generation 0
    theta = np.load(start) if start else np.array(THETA0)
    h = np.array([job.hyperparameters["h0"], job.hyperparameters["h1"]])
    for _ in range(steps):
        theta = theta + STEP * (-2 * h * theta)  # the gradient of Q^(theta|h)
    path = Path(checkpoints) / f"{job.job_id}.npy"  # never overwrite: other members may copy the parent
    np.save(path, theta)
    job.results["model_path"] = str(path)
    job.results["Q"] = quality(theta)


def worker(db_path, name, worker_name, checkpoints, steps, pause):
    """The loop every worker runs: train segments until the experiment is DONE."""
    db = schedy.SchedyDB(db_path, worker=worker_name)
    exp = db.get_experiment(name)
    while True:
        try:
            job = exp.next_job()  # claimed for this worker alone
        except NoJobError as e:
            if e.waiting_for is None:  # finished: every member reached max_generations
                return
            time.sleep(0.005)  # the next segment depends on segments running elsewhere: ask again soon
            continue
        with job:  # marked DONE (with its results) at the end of the block, CRASHED if it raises
            train_segment(job, checkpoints, steps)
            time.sleep(pause)  # pretend training takes a while, so that the workers really interleave


def log_path(db, name):
    """Where the file store keeps the log of experiment ``name``."""
    return Path(db.path) / "experiments" / stream_key(name) / "log.jsonl"


def claimants(path):
    """Map each job id to the worker that claimed it, reading the log file line by line."""
    owner = {}
    with open(path, "rb") as f:
        for line in f:
            commit = json.loads(line)
            for event in commit["e"]:
                if event["type"] == "JobClaimed":
                    owner[event["job"]] = event["worker"]
    return owner


def _count(n, word):
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def segment_count(jobs, population, generations, elapsed=None):
    """Lines saying how many segments are DONE, and why that is, or is not, ``population`` x ``generations``.

    With the default ranking (against the same generation) every member trains
    exactly one segment per generation, whether it continues its own model or,
    after an exploit, a better member's: a finished run has population x
    generations segments. Fewer means generations skipped (with
    ``ranking=LATEST``, the rule of release 0.1.0, a member that copies a
    segment of a later generation continues from that generation) or a search
    stopped early. A CRASHED segment is redone by a new segment and not counted.
    """
    by_id = {j.job_id: j for j in jobs}
    done = [j for j in jobs if j.status == schedy.Job.DONE]
    exploits = sum(1 for j in done if j.parent_id in by_id and by_id[j.parent_id].member != j.member)
    expected = population * generations
    when = "" if elapsed is None else f" in {elapsed:.2f} s"
    plan = f"{population} members x {generations} generations"
    trained, reached = Counter(), {}
    for j in done:
        trained[j.member] += 1
        reached[j.member] = max(reached.get(j.member, -1), j.generation)
    skipped = sum(reached[m] + 1 - trained[m] for m in trained)
    unfinished = sum(generations - 1 - g for g in reached.values()) + generations * max(0, population - len(reached))
    crashed = sum(1 for j in jobs if j.status == schedy.Job.CRASHED)
    if len(done) == expected:
        lines = [
            (
                f"{len(done)} segments DONE{when} = {plan}: each member trains one segment per generation, "
                "whether it continues its own model or a better member's"
            )
        ]
    else:
        lines = [f"{len(done)} segments DONE{when}, not {plan} = {expected}:"]
        if skipped:
            lines.append(
                f"  {_count(skipped, 'generation')} skipped by members that copied a member further "
                "ahead and continued from its generation (ranking by latest segment)"
            )
        if unfinished:
            lines.append(
                f"  {_count(unfinished, 'segment')} never trained: the search stopped before every "
                f"member reached generation {generations - 1}"
            )
    if crashed:
        lines.append(f"({_count(crashed, 'CRASHED segment')}, each redone by a new segment, not counted)")
    lines.append(f"{exploits} of them continued a better member's model (exploit, then explore)")
    return lines


def run(db_path, workers, population, generations, steps, seed, pause, top=5, out=sys.stdout):
    """Run the demo; return the process exit code."""
    db = schedy.SchedyDB(db_path)
    exp = schedy.PopulationBasedTraining(
        EXPERIMENT,
        objective=MAXIMIZE,
        result_name="Q",
        exploit=Truncate(0.25),
        explore={"h0": Perturb(0.8, 1.2, high=1.0), "h1": Perturb(0.8, 1.2, high=1.0)},
        initial_distributions={"h0": Uniform(0.0, 1.0), "h1": Uniform(0.0, 1.0)},
        population_size=population,
        max_generations=generations,
        seed=seed,
    )
    try:
        db.add_experiment(exp)
    except ResourceExistsError:
        print(
            f"error: the database {db.path} already holds an experiment named {EXPERIMENT!r}; "
            "use a fresh --db directory",
            file=sys.stderr,
        )
        return 2
    checkpoints = Path(db.path) / "checkpoints"
    checkpoints.mkdir(exist_ok=True)

    print(f"Database: {db.path}", file=out)
    print(
        f"Population Based Training {EXPERIMENT!r} (seed {exp.seed}): {workers} workers, population "
        f"{population}, {generations} generations of {steps} steps",
        file=out,
    )
    print(
        "Toy problem of the PBT paper: maximise Q(theta) = 1.2 - (theta0^2 + theta1^2) by gradient ascent on\n"
        "Q^(theta|h) = 1.2 - (h0*theta0^2 + h1*theta1^2); PBT tunes h = (h0, h1) with Truncate(0.25) + Perturb",
        file=out,
    )
    start = time.monotonic()
    names = [f"worker-{i}" for i in range(workers)]
    procs = [
        multiprocessing.Process(
            target=worker, args=(str(db.path), EXPERIMENT, n, str(checkpoints), steps, pause), name=n
        )
        for n in names
    ]
    for p in procs:
        p.start()
    try:
        while any(p.is_alive() for p in procs):
            if any(p.exitcode not in (None, 0) for p in procs):
                break  # a worker failed: stop the others (its segment would stay RUNNING forever)
            time.sleep(0.01)
    finally:
        if any(p.is_alive() for p in procs):
            # Stop every worker through the log: from now on next_job() raises NoJobError.
            exp.status = schedy.Experiment.DONE
            exp.push_updates()
        for p in procs:
            p.join()
    elapsed = time.monotonic() - start

    failed = [p.name for p in procs if p.exitcode != 0]
    jobs = exp.all_jobs()
    done = [j for j in jobs if j.status == schedy.Job.DONE]
    path = log_path(db, EXPERIMENT)
    owner = claimants(path)

    print("\n" + "\n".join(segment_count(jobs, population, generations, elapsed)), file=out)
    per_worker = Counter(owner[j.job_id] for j in done)
    print("Segments per worker: " + ", ".join(f"{n}: {per_worker[n]}" for n in names), file=out)
    if not done:
        print("error: no segment is DONE", file=sys.stderr)
        return 1

    initial = max(j.results["Q"] for j in done if j.generation == 0)
    final = {}
    for j in done:  # each member's latest finished segment
        final[j.member] = j
    leaders = sorted(final.values(), key=lambda j: -j.results["Q"])[:top]
    print(
        f"Best Q of the initial population (generation 0): {initial:.5f}; after PBT: "
        f"{leaders[0].results['Q']:.5f} (the maximum is 1.2)",
        file=out,
    )

    print("\nLeaderboard (each member's final segment, highest Q first)", file=out)
    header = f"{'rank':>4}  {'job':>4}  {'gen':>3}  {'member':>6}  {'Q':>8}  {'h0':>6}  {'h1':>6}  worker"
    print(header, file=out)
    print("-" * len(header), file=out)
    for rank, j in enumerate(leaders, 1):
        hp = j.hyperparameters
        print(
            f"{rank:>4}  {j.job_id:>4}  {j.generation:>3}  {j.member:>6}  {j.results['Q']:>8.5f}  "
            f"{hp['h0']:>6.3f}  {hp['h1']:>6.3f}  {owner[j.job_id]}",
            file=out,
        )

    best = leaders[0]
    print(
        f"\nHyperparameter schedule of the best model (exp.lineage({best.job_id!r}); a change of member is an exploit)",
        file=out,
    )
    header = f"{'gen':>3}  {'job':>4}  {'parent':>6}  {'member':>6}  {'Q':>8}  {'h0':>6}  {'h1':>6}"
    print(header, file=out)
    print("-" * len(header), file=out)
    for j in exp.lineage(best.job_id):
        hp = j.hyperparameters
        print(
            f"{j.generation:>3}  {j.job_id:>4}  {j.parent_id or '-':>6}  {j.member:>6}  {j.results['Q']:>8.5f}  "
            f"{hp['h0']:>6.3f}  {hp['h1']:>6.3f}",
            file=out,
        )

    print(f"\nCheckpoints (one .npy file per segment): {checkpoints}", file=out)
    print(f"Log file (one JSON commit per line; try: jq -c '.e[]' {path}):\n{path}", file=out)
    if failed:
        print(f"error: worker process(es) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    if exp.status != schedy.Experiment.DONE or len(done) != len(jobs):
        print("error: the search did not finish", file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m schedy.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4, help="number of worker processes (default: 4)")
    parser.add_argument("--population", type=int, default=8, help="number of members (default: 8)")
    parser.add_argument(
        "--generations", type=int, default=10, help="segments per lineage, max_generations (default: 10)"
    )
    parser.add_argument("--steps", type=int, default=4, help="gradient steps per segment (default: 4)")
    parser.add_argument("--db", help="database directory (default: a fresh temporary directory, kept afterwards)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the experiment (default: random)")
    parser.add_argument("--pause", type=float, default=0.01, help="seconds each segment 'trains' (default: 0.01)")
    args = parser.parse_args(argv)
    if min(args.workers, args.population, args.generations, args.steps) < 1 or args.pause < 0:
        parser.error("--workers, --population, --generations and --steps must be at least 1, --pause not negative")
    db_path = os.path.abspath(args.db) if args.db is not None else tempfile.mkdtemp(prefix="schedy-demo-")
    return run(db_path, args.workers, args.population, args.generations, args.steps, args.seed, args.pause)


if __name__ == "__main__":
    sys.exit(main())
