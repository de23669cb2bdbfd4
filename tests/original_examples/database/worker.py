#!/usr/bin/env python
"""Record jobs that were run by hand: the database tutorial's worker.

It pushes the job tried by hand (x = 1, y = 2, result 5), then tries 20 random
values of x and y and tells Schedy about each of them, as DONE jobs.
"""

import random

import schedy

db = schedy.SchedyDB()
experiment = db.get_experiment("MinimizeSimple")

# The job computed by hand (`schedy push MinimizeSimple -s DONE -p x 1 y 2 -r result 5`).
job = experiment.add_job(
    status=schedy.Job.DONE,
    hyperparameters={
        "x": 1,
        "y": 2,
    },
    results={"result": 5},
)
print("pushed", job.job_id)

for i in range(20):
    # Test the problem for random values of x and y, 20 times
    x = random.uniform(-100, 100)
    y = random.uniform(-100, 100)
    result = x**2 + y**2
    # Tell Schedy about it!
    job = experiment.add_job(status=schedy.Job.DONE, hyperparameters={"x": x, "y": y}, results={"result": result})
    print("pushed", job.job_id)
