#!/usr/bin/env python
"""Read the jobs of the database tutorial back, sort them, update them, and tidy up.

Every step uses a call of the original client: `all_jobs`, `get_job`,
`Job.put` (safe, then unsafe), `Job.try_run`, `add_job(**fields)` as in the
original's notebook, `get_experiments` as in `examples/list_experiments.py`,
and `delete`.
"""

import schedy
from schedy.errors import UnsafeUpdateError

db = schedy.SchedyDB()
experiment = db.get_experiment("MinimizeSimple")

# List every job, as the tutorial does.
for job in experiment.all_jobs():
    print("Id:", job.job_id)
    print("Status:", job.status)
    print("Hyperparameters:")
    for name, value in job.hyperparameters.items():
        print(f"- {name}: {value}")
    print("Results:")
    for name, value in job.results.items():
        print(f"- {name}: {value}")
    print()

# From the best to the worst (`schedy list -t MinimizeSimple -s result`).
ranking = sorted(experiment.all_jobs(), key=lambda job: job.results["result"])
best, worst = ranking[0], ranking[-1]
print("best:", best.job_id, best.hyperparameters, best.results)

# Update a job: note that the best one was checked by hand.
job = experiment.get_job(best.job_id)
job.results["checked"] = True
job.put()

# Safe updates: a copy that read the job before someone else updated it
# cannot overwrite their change...
mine = experiment.get_job(worst.job_id)
theirs = experiment.get_job(worst.job_id)
theirs.results["note"] = "outlier"
theirs.put()
mine.results["note"] = "run it again"
try:
    mine.put()
except UnsafeUpdateError as e:
    print("refused:", e)
else:
    raise SystemExit(f"a stale copy of job {worst.job_id} overwrote a newer one")
# ...unless it says so.
mine.put(safe=False)

# Two workers racing for a queued job: the second try_run is refused.
queued = experiment.add_job(hyperparameters={"x": 0, "y": 0})
first = experiment.get_job(queued.job_id)
second = experiment.get_job(queued.job_id)
first.try_run()
try:
    second.try_run()
except UnsafeUpdateError as e:
    print("refused:", e)
else:
    raise SystemExit(f"job {queued.job_id} was claimed twice")
with first:  # already RUNNING for this worker: DONE with its results when the block ends
    first.results["result"] = first.hyperparameters["x"] ** 2 + first.hyperparameters["y"] ** 2

# Results can be lists, as in the original's notebook.
jobs = [
    {
        "hyperparameters": {"x": 3, "y": 4},
        "results": {"result": 25, "partial_sums": [9, 25]},
        "status": schedy.Job.DONE,
    },
    {
        "hyperparameters": {"x": -3, "y": 4},
        "results": {"result": 25, "partial_sums": [9, 25]},
        "status": schedy.Job.DONE,
    },
]
for job in jobs:
    experiment.add_job(**job)

# Remove the second worst job (`schedy rm MinimizeSimple <id>`).
experiment.get_job(ranking[-2].job_id).delete()
print("deleted", ranking[-2].job_id)

# A scratch experiment, removed whole at the end, as the tutorial does.
scratch = schedy.ManualSearch("Scratch")
db.add_experiment(scratch)
scratch.add_job(hyperparameters={"x": 1, "y": 1})
db.get_experiment("Scratch").delete()

# examples/list_experiments.py
for exp in db.get_experiments():
    print(exp)
    for job in exp.all_jobs():
        print(job)
