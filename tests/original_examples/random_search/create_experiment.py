#!/usr/bin/env python
"""Create the random search of the tutorial, with one hyperparameter per distribution of schedy.random.

x and y are the tutorial's (`schedy add MinimizeRandom random x normal '{"mean": 0, "std": 5}' y normal ...`);
the others show the remaining distributions the original documents.
"""

import schedy

db = schedy.SchedyDB()
distributions = {
    "x": schedy.random.Normal(0, 5),
    "y": schedy.random.Normal(0, 2),
    "scale": schedy.random.LogUniform(0.1, 10),
    "offset": schedy.random.Uniform(-1, 1),
    "norm": schedy.random.Choice(["l2", "l1"], weights=[3, 1]),
    "config": schedy.random.Constant({"log_dir": "/var/log", "schedy_rocks": True}),
}
experiment = schedy.RandomSearch("MinimizeRandom", distributions)
db.add_experiment(experiment)
