"""A worker for the crash tests: trains each job for a random time, retries while others hold jobs."""

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
            with exp.next_job() as job:
                print("start", job.job_id, flush=True)
                time.sleep(job.hyperparameters["seconds"] * rng.uniform(0.8, 1.2))
                job.results["by"] = worker
        except NoJobError:
            if all(j.status == schedy.Job.DONE for j in exp.all_jobs()):
                return
            time.sleep(0.05)  # a job is still held, maybe by a worker that died: its lease will lapse


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
