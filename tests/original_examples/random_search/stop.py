#!/usr/bin/env python
"""End the random search: mark the experiment DONE, and print the best job."""

import schedy

db = schedy.SchedyDB()
experiment = db.get_experiment("MinimizeRandom")
experiment.status = schedy.Experiment.DONE
experiment.push_updates()

done = [job for job in experiment.all_jobs() if job.status == schedy.Job.DONE]
best = min(done, key=lambda job: job.results["result"])
print("best of", len(done), "jobs:", best.job_id, best.hyperparameters, best.results)
