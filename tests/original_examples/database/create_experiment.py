#!/usr/bin/env python
"""Create the experiment of the database tutorial (same as `schedy add MinimizeSimple manual`)."""

import schedy

db = schedy.SchedyDB()
experiment = schedy.ManualSearch("MinimizeSimple")
db.add_experiment(experiment)
print("created", experiment.name)
