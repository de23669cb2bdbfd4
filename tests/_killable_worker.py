"""A worker for the crash tests: says when it starts and ends each job, and stops when no job is left to claim.

A job trains for its ``seconds`` (times a random factor), or until the process is killed if ``seconds`` is
None: the test kills whoever starts such a job, so that some kills land mid-job whatever the machine's speed.
Jobs that dead workers held are left to the test, which takes them back without waiting a real lease.
"""

import random
import sys
import time

import schedy
from schedy.errors import NoJobError


def main(db_path, name, worker, seed):
    rng = random.Random(seed)
    exp = schedy.SchedyDB(db_path, worker=worker).get_experiment(name)
    while True:
        try:
            job = exp.next_job()
        except NoJobError:
            print("idle", flush=True)
            return
        with job:
            print("start", job.job_id, flush=True)
            seconds = job.hyperparameters["seconds"]
            time.sleep(3600 if seconds is None else seconds * rng.uniform(0.8, 1.2))
            job.results["by"] = worker
        print("done", job.job_id, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
