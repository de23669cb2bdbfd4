#!/usr/bin/env python
"""Create the Population Based Training experiment, as the PBT tutorial does.

A population of 6 logistic regressions, each trained for at most 4 segments.
The learning rate and the L2 penalty can change during training, so PBT
explores them; the batch size is picked once per member.
"""

import schedy

db = schedy.SchedyDB()
experiment = schedy.PopulationBasedTraining(
    "Numpy PBT",
    schedy.pbt.MAXIMIZE,
    "max_accuracy",
    exploit=schedy.pbt.Truncate(),
    explore={
        "learning_rate": schedy.pbt.Perturb(),
        "l2": schedy.pbt.Perturb(),
    },
    initial_distributions={
        "learning_rate": schedy.random.LogUniform(1e-3, 1),
        "l2": schedy.random.Uniform(1e-4, 1e-2),
        "batch_size": schedy.random.Choice([16, 32, 64]),
    },
    population_size=6,
    max_generations=4,
)
db.add_experiment(experiment)
