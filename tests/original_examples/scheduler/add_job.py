#!/usr/bin/env python
"""Queue jobs for the workers (each one the same as `schedy push MinimizeManual -p x X y Y`).

A grid of x and y, and one job whose y is not a number: its worker will crash on it.
"""

import schedy

db = schedy.SchedyDB()
experiment = db.get_experiment("MinimizeManual")
for x in range(-5, 6):
    for y in range(-4, 5):
        experiment.add_job(hyperparameters={"x": x, "y": y})
job = experiment.add_job(hyperparameters={"x": 1, "y": "two"})
print("queued", len(list(experiment.all_jobs())), "jobs; the last one,", job.job_id, "will crash")
