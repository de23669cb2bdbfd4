#!/usr/bin/env python
"""Create the experiment of the scheduler tutorial (same as `schedy add MinimizeManual manual`)."""

import schedy

db = schedy.SchedyDB()
experiment = schedy.ManualSearch("MinimizeManual")
db.add_experiment(experiment)
