"""A worker of tests/test_bayes_e2e.py: drains the Bayesian search "bayes" of the database DB.

    python _bayes_worker.py DB WORKER MEET WORKERS

Prints READY, waits for a line on stdin (every worker starts at once), then takes jobs until the search is
finished, reports the loss of each (the Branin function) and prints one JSON line: the jobs it finished. With
its first job it waits until all WORKERS workers hold one (a file each in the directory MEET), so that however
fast the sampler answers, every worker runs a job while the others run theirs.
"""

import json
import math
import sys

from _meeting import meet

import schedy
from schedy.errors import NoJobError


def branin(x1, x2):
    return (
        (x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2
        + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1)
        + 10
    )


def main(db_url, worker, directory, workers):
    exp = schedy.SchedyDB(db_url, worker=worker).get_experiment("bayes")
    print("READY", flush=True)
    sys.stdin.readline()
    done = []
    while True:
        try:
            job = exp.next_job(wait=True)
        except NoJobError:
            break
        if not done:
            meet(directory, worker, workers)
        with job:
            job.results["loss"] = branin(job.hyperparameters["x1"], job.hyperparameters["x2"])
        done.append(job.job_id)
    print(json.dumps({"done": done}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
