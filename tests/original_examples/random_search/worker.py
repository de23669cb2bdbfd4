#!/usr/bin/env python
"""The random search tutorial's worker: 20 jobs, each with freshly sampled hyperparameters."""

import schedy

db = schedy.SchedyDB()
experiment = db.get_experiment("MinimizeRandom")
for i in range(20):
    try:
        # Pull the next job, and start working on it; the results are pushed to
        # Schedy at the end of the with statement
        with experiment.next_job() as job:
            x = job.hyperparameters["x"]
            y = job.hyperparameters["y"]
            if job.hyperparameters["norm"] == "l2":
                result = x**2 + y**2
            else:
                result = abs(x) + abs(y)
            job.results["result"] = job.hyperparameters["scale"] * result + job.hyperparameters["offset"]
        print("done", job.job_id)
    # A random search never runs out of jobs: NoJobError means that the
    # experiment was marked DONE, so stop
    except schedy.errors.NoJobError as e:
        print(e)
        break
