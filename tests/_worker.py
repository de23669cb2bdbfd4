"""A worker process for the multi-process tests: drains an experiment, prints the ids it finished."""

import sys
import time

import schedy
from schedy.errors import NoJobError


def main(db_path, name, worker, think="0"):
    db = schedy.SchedyDB(db_path, worker=worker)
    exp = db.get_experiment(name)
    done = []
    while True:
        try:
            with exp.next_job() as job:
                job.results["worker"] = worker
                job.results["value"] = job.hyperparameters["i"] * 2
                done.append(job.job_id)
                time.sleep(float(think))  # "training": without it one worker in a hot loop can win every race
        except NoJobError:
            break
    print(" ".join(done))


if __name__ == "__main__":
    main(*sys.argv[1:5])
