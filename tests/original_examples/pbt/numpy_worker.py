#!/usr/bin/env python
"""A PBT worker, after the original's keras_worker.py, with a logistic regression in numpy.

For every job it receives, it follows the tutorial's three steps:

- reload the model if the job has a ``model_path`` (the weights saved by the
  segment it continues from, whichever member trained it);
- train it a bit more (a few epochs of minibatch gradient descent);
- save it under ``<models-dir>/<job id>.npy``, and record that path in the
  job's results.

Like keras_worker.py it keeps the history of the loss and accuracy in the
results, and reports ``max_accuracy``, the result PBT maximizes. It stops when
the experiment is DONE (every member trained its last generation).
"""

import argparse
import os
import time
import zlib

import numpy as np

import schedy

NUM_FEATURES = 8
EPOCHS = 5


def load_data():
    """A binary classification problem, the same in every worker."""
    rng = np.random.RandomState(0)
    true_w = rng.normal(size=NUM_FEATURES)
    x = rng.normal(size=(2500, NUM_FEATURES))
    y = (x @ true_w + 1.5 * rng.normal(size=2500) > 0).astype(float)
    return (x[:2000], y[:2000]), (x[2000:], y[2000:])


def make_model(job):
    """The weights of the model (the bias last): reloaded if we are resuming from previous work."""
    if "model_path" in job.results:
        weights = np.load(job.results["model_path"])
        job.results["resumed_from"] = job.results["model_path"]
        print("Reloaded weights from " + job.results["model_path"])
    else:
        weights = np.zeros(NUM_FEATURES + 1)
    return weights


def predict(weights, x):
    return 1 / (1 + np.exp(-(x @ weights[:-1] + weights[-1])))


def train(weights, job, x, y):
    """A few epochs of minibatch gradient descent, shuffled the same way for the same job."""
    lr = job.hyperparameters["learning_rate"]
    l2 = job.hyperparameters["l2"]
    batch_size = job.hyperparameters["batch_size"]
    rng = np.random.RandomState(zlib.crc32(job.job_id.encode()))
    weights = weights.copy()
    for _ in range(EPOCHS):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            batch = order[start : start + batch_size]
            error = predict(weights, x[batch]) - y[batch]
            grad_w = x[batch].T @ error / len(batch) + l2 * weights[:-1]
            grad_b = error.mean()
            weights[:-1] -= lr * grad_w
            weights[-1] -= lr * grad_b
    return weights


def evaluate(weights, x, y):
    p = np.clip(predict(weights, x), 1e-7, 1 - 1e-7)
    loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    accuracy = float(np.mean((p > 0.5) == (y > 0.5)))
    return loss, accuracy


def main(args):
    db = schedy.SchedyDB()
    experiment = db.get_experiment(args.experiment)
    os.makedirs(args.models_dir, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = load_data()
    while True:
        try:
            with experiment.next_job() as job:
                # Create, reload and train the model for a few epochs
                weights = make_model(job)
                weights = train(weights, job, x_train, y_train)
                loss, accuracy = evaluate(weights, x_test, y_test)
                # Update the results
                job.results.setdefault("loss", []).append(loss)
                job.results.setdefault("accuracy", []).append(accuracy)
                job.results["min_loss"] = min(job.results["loss"])
                job.results["max_accuracy"] = max(job.results["accuracy"])
                # Do not forget to save the weights, as the next job that will
                # need them will load them
                model_path = os.path.join(args.models_dir, job.job_id + ".npy")
                np.save(model_path, weights)
                job.results["model_path"] = model_path
            print("done", job.job_id)
        except schedy.errors.NoJobError as e:
            # Either the search is over (every member reached max_generations,
            # the experiment is DONE), or every member that can go on is
            # being trained by another worker: then ask again a bit later
            if db.get_experiment(args.experiment).status == schedy.Experiment.DONE:
                print(e)
                break
            time.sleep(0.02)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--experiment", default="Numpy PBT")
    parser.add_argument("--models-dir", default="models", help="Path to the directory in which the models are saved.")
    main(parser.parse_args())
