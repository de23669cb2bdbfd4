"""A PBT worker process for tests/test_pbt_e2e.py.

Usage: python _pbt_worker.py DB NAME WORKER CHECKPOINTS SYNC_DIR [PAUSE]

It trains a tiny linear regression by gradient descent, with the learning
rate ``lr`` that PBT explores. Each segment reloads the weights named in
``job.results["model_path"]`` (its parent's checkpoint), takes a few steps,
saves the weights to ``CHECKPOINTS/<job id>.npy`` and reports the mean
squared error as ``loss``. It also reports which file it started from and
the sum of the weights it found there, so the test can check that every
segment really continued from its parent's weights.

The worker touches ``SYNC_DIR/ready-WORKER`` and waits for ``SYNC_DIR/go``
before its first claim, so that all workers start racing together. It loops
on ``next_job()``, retrying on NoJobError while the experiment is RUNNING,
and stops when it is DONE. It prints the ids of the jobs it finished.
"""

import os
import sys
import time
from pathlib import Path

import numpy as np

import schedy
from schedy.errors import NoJobError

STEPS = 10
DEADLINE = 60.0  # seconds: a worker that is still looping by then exits with status 3


def problem():
    """The data: the same in every process (fixed seed). Gradient descent is stable for lr < 0.28."""
    data = np.random.default_rng(0)
    X = data.normal(size=(64, 4)) * np.array([2.0, 1.0, 0.5, 0.25])
    y = X @ np.array([1.0, -2.0, 3.0, -4.0]) + 0.01 * data.normal(size=64)
    return X, y


def train_segment(job, X, y, checkpoints):
    start = job.results.get("model_path")
    if start is None:
        w = np.zeros(X.shape[1])
    else:
        if not os.path.exists(start):
            raise FileNotFoundError(f"job {job.job_id}: the starting checkpoint {start} does not exist")
        w = np.load(start)
    job.results["start_path"] = start
    job.results["start_sum"] = float(w.sum())
    lr = job.hyperparameters["lr"]
    for _ in range(STEPS):
        w = w - lr * 2 * X.T @ (X @ w - y) / len(y)
    path = Path(checkpoints) / f"{job.job_id}.npy"
    if path.exists():
        raise FileExistsError(f"job {job.job_id}: {path} exists already: was the job handed out twice?")
    np.save(path, w)
    job.results["model_path"] = str(path)
    job.results["loss"] = float(np.mean((X @ w - y) ** 2))


def main(db_path, name, worker, checkpoints, sync_dir, pause=0.0):
    deadline = time.monotonic() + DEADLINE
    X, y = problem()
    exp = schedy.SchedyDB(db_path, worker=worker).get_experiment(name)
    sync = Path(sync_dir)
    (sync / f"ready-{worker}").touch()
    while not (sync / "go").exists():
        if time.monotonic() > deadline:
            sys.exit(3)
        time.sleep(0.005)
    done = []
    while True:
        if time.monotonic() > deadline:
            print(" ".join(done))
            sys.exit(3)
        try:
            job = exp.next_job()
        except NoJobError:
            if exp.status == schedy.Experiment.DONE:
                break
            time.sleep(0.005)  # every member is running a segment
            continue
        with job:
            train_segment(job, X, y, checkpoints)
            time.sleep(pause)
        done.append(job.job_id)
    print(" ".join(done))


if __name__ == "__main__":
    main(*sys.argv[1:6], *(float(x) for x in sys.argv[6:7]))
