"""A random search run by several worker processes on one database, with no server.

Run it with::

    python -m schedy.demo [--workers 4] [--jobs 40] [--db PATH] [--seed N]

The main process creates a database (a fresh temporary directory unless
``--db`` is given) and a :class:`schedy.RandomSearch` over three
hyperparameters, then starts the workers. Each worker opens its own
:class:`schedy.SchedyDB` on the same directory and loops on
``exp.next_job()``, evaluating a cheap toy objective. When enough jobs are
DONE, the main process marks the experiment DONE: every worker's next
``next_job()`` raises :class:`schedy.errors.NoJobError` and the worker stops.
Jobs that were already running when the experiment was marked DONE still
finish and report, so a few more jobs than the budget may end up DONE.

Finally it prints a leaderboard. The worker of each job is read straight from
the log file, one JSON commit per line, as an auditor would read it.
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

import schedy
from schedy.adapters.naming import stream_key
from schedy.errors import NoJobError, ResourceExistsError
from schedy.random import Choice, Normal, Uniform

EXPERIMENT = "demo"
OPTIMIZER_PENALTY = {"adam": 0.0, "rmsprop": 0.3, "sgd": 1.0}


def objective(x, y, optimizer):
    """The toy "training": a loss to minimise, smallest at x=1, y=-2 with adam."""
    return (x - 1) ** 2 + (y + 2) ** 2 + OPTIMIZER_PENALTY[optimizer]


def worker(db_path, name, worker_name, pause):
    """The loop every worker runs: claim a job, evaluate it, report; stop when the experiment is DONE."""
    db = schedy.SchedyDB(db_path, worker=worker_name)
    exp = db.get_experiment(name)
    while True:
        try:
            job = exp.next_job()  # claimed for this worker alone
        except NoJobError:  # the experiment was marked DONE
            return
        with job:  # marked DONE (with its results) at the end of the block, CRASHED if it raises
            time.sleep(pause)  # pretend to train, so that the workers really interleave
            job.results["loss"] = objective(**job.hyperparameters)


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


def done_count(exp):
    return sum(job.status == schedy.Job.DONE for job in exp.all_jobs())


def run(db_path, workers, budget, seed, pause, out=sys.stdout):
    """Run the demo; return the process exit code."""
    db = schedy.SchedyDB(db_path)
    exp = schedy.RandomSearch(
        EXPERIMENT,
        {
            "x": Uniform(-5, 5),
            "y": Normal(0, 2),
            "optimizer": Choice(["adam", "rmsprop", "sgd"]),
        },
        seed=seed,
    )
    try:
        db.add_experiment(exp)
    except ResourceExistsError:
        print(f"error: the database {db.path} already holds an experiment named {EXPERIMENT!r}; "
              "use a fresh --db directory", file=sys.stderr)
        return 2

    print(f"Database: {db.path}", file=out)
    print(f"Random search {EXPERIMENT!r} (seed {exp.seed}): {workers} workers, budget {budget} jobs", file=out)
    start = time.monotonic()
    names = [f"worker-{i}" for i in range(workers)]
    procs = [multiprocessing.Process(target=worker, args=(str(db.path), EXPERIMENT, n, pause), name=n)
             for n in names]
    for p in procs:
        p.start()
    try:
        while done_count(exp) < budget and any(p.is_alive() for p in procs):
            time.sleep(0.005)
    finally:
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

    print(f"{len(done)} jobs DONE in {elapsed:.2f} s ({len(done) - budget} more than the budget: "
          "jobs claimed before the experiment was marked DONE still finish and report)", file=out)
    per_worker = Counter(owner[j.job_id] for j in done)
    print("Jobs per worker: " + ", ".join(f"{n}: {per_worker[n]}" for n in names), file=out)

    print("\nLeaderboard (lowest loss first)", file=out)
    header = f"{'rank':>4}  {'job':>4}  {'loss':>8}  {'x':>7}  {'y':>7}  {'optimizer':<9}  worker"
    print(header, file=out)
    print("-" * len(header), file=out)
    for rank, job in enumerate(sorted(done, key=lambda j: j.results["loss"])[:5], 1):
        hp = job.hyperparameters
        print(f"{rank:>4}  {job.job_id:>4}  {job.results['loss']:>8.3f}  {hp['x']:>7.3f}  {hp['y']:>7.3f}  "
              f"{hp['optimizer']:<9}  {owner[job.job_id]}", file=out)

    print(f"\nLog file (one JSON commit per line; try: jq -c '.e[]' {path}):\n{path}", file=out)
    if failed:
        print(f"error: worker process(es) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    if len(done) < budget:
        print(f"error: only {len(done)} of {budget} jobs are DONE", file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m schedy.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4, help="number of worker processes (default: 4)")
    parser.add_argument("--jobs", type=int, default=40, help="number of DONE jobs to reach (default: 40)")
    parser.add_argument("--db", help="database directory (default: a fresh temporary directory, kept afterwards)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the random search (default: random)")
    parser.add_argument("--pause", type=float, default=0.02, help="seconds each job 'trains' (default: 0.02)")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.jobs < 1 or args.pause < 0:
        parser.error("--workers and --jobs must be at least 1, --pause not negative")
    db_path = os.path.abspath(args.db) if args.db is not None else tempfile.mkdtemp(prefix="schedy-demo-")
    return run(db_path, args.workers, args.jobs, args.seed, args.pause)


if __name__ == "__main__":
    sys.exit(main())
