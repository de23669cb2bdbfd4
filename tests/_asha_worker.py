"""A worker of tests/test_asha_e2e.py: the worker loop of docs/asha.md, with a tiny numpy model.

    python _asha_worker.py DB WORKER CHECKPOINT_DIR MEET WORKERS

Prints READY, waits for a line on stdin (every worker starts at once), drains the experiment "asha" and
prints one JSON line: the jobs it finished. With its first job it waits until all WORKERS workers hold one
(``_meeting.meet`` in the directory MEET).
"""

import json
import os
import sys

import numpy as np
from _meeting import meet

import schedy
from schedy.errors import NoJobError

rng = np.random.default_rng(0)
x = rng.normal(size=(128, 3))
y = x @ np.array([1.5, -1.0, 0.5]) + 0.05 * rng.normal(size=128)


def main(db_url, worker, checkpoints, directory, workers):
    exp = schedy.SchedyDB(db_url, worker=worker).get_experiment("asha")
    print("READY", flush=True)
    sys.stdin.readline()
    done = []
    while True:
        try:
            job = exp.next_job(wait=True)  # wait while the last jobs run: they may be promoted
        except NoJobError:
            break
        if not done:
            meet(directory, worker, workers)
        with job:
            if job.parent_id is None:
                w, start, source = np.zeros(3), 0, None
            else:
                parent = exp.get_job(job.parent_id)
                source = parent.results["model_path"]
                w, start = np.load(source), parent.resource
            for _ in range(int(job.resource - start)):
                w = w - job.hyperparameters["lr"] * 2 * x.T @ (x @ w - y) / len(y)
            loss = float(np.mean((x @ w - y) ** 2))
            path = os.path.join(checkpoints, f"{job.job_id}.npy")
            np.save(path, w)
            job.results.update(
                loss=loss if np.isfinite(loss) else 1e9,
                model_path=path,
                loaded=source,
                epochs=int(job.resource - start),
            )
        done.append(job.job_id)
    print(json.dumps({"done": done}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
