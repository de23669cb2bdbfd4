#!/usr/bin/env python
"""The scheduler tutorial's worker: pull jobs, compute x^2 + y^2, report.

Start it as many times as you like: Schedy makes sure that no two workers
work on the same job. It stops when no job is left (NoJobError); the
original waited a minute and asked again, forever.
"""

import schedy

db = schedy.SchedyDB()
experiment = db.get_experiment("MinimizeManual")
while True:
    try:
        # Pull the next job, and start working on it
        # The with statement is there so that we always report to Schedy
        # whether the job has crashed or succeeded
        with experiment.next_job() as job:
            x = job.hyperparameters["x"]
            y = job.hyperparameters["y"]
            # An intermediary result, pushed before the end of the with statement
            job.results["x_squared"] = x**2
            job.put()
            result = job.results["x_squared"] + y**2
            job.results["result"] = result
        print("done", job.job_id)
    except schedy.errors.NoJobError as e:
        # No job left for this experiment: stop
        print(e)
        break
    # Catch any other type of exception so that the worker never crashes
    # (the job itself was marked CRASHED)
    except Exception as e:  # noqa: BLE001 - the original's worker catches everything
        print("crashed", job.job_id, e)
