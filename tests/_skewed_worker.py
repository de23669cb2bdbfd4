"""A worker whose wall clock is ``skew`` seconds off, for the clock-skew tests (tests/test_clock_skew.py).

    python tests/_skewed_worker.py DB NAME WORKER SKEW MODE [SECONDS]

``time.time`` is replaced before Schedy is imported, so every commit and lease this process writes is
stamped with the skewed clock (``time.monotonic``, which a machine does not share, is left alone).

Modes (each prints one JSON line at the end):

``work``  for SECONDS of its monotonic clock, take jobs (each reported DONE at once) and poll when there
          is none; print the ids it finished and the reports refused.
``die``   claim one job, say so, and exit without reporting it or releasing it (a crash).
``take``  poll until it gets a job; print its id and the monotonic seconds from opening the log to
          getting it.
"""

import json
import sys
import time

SKEW = float(sys.argv[4])
_real_time = time.time
time.time = lambda: _real_time() + SKEW

import schedy  # noqa: E402 - after the clock is skewed
from schedy.errors import NoJobError, UnsafeUpdateError  # noqa: E402

POLL = 0.05  # seconds between asks while no job is free (a worker's poll loop, as `schedy run` has)


def main(db_path, name, worker, _skew, mode, seconds="0"):
    opened = time.monotonic()
    exp = schedy.SchedyDB(db_path, worker=worker).get_experiment(name)
    if mode == "work":
        done, refused = [], 0
        while time.monotonic() - opened < float(seconds):
            try:
                job = exp.next_job()
            except NoJobError:
                time.sleep(POLL)
                continue
            try:
                with job:
                    job.results["by"] = worker
                done.append(job.job_id)
            except UnsafeUpdateError:
                refused += 1
        print(json.dumps({"done": done, "refused": refused}), flush=True)
    elif mode == "die":
        job = exp.next_job()
        print(json.dumps({"claimed": job.job_id}), flush=True)
        import os

        os._exit(0)
    elif mode == "take":
        while True:
            try:
                job = exp.next_job()
                break
            except NoJobError:
                time.sleep(POLL)
        print(json.dumps({"took": job.job_id, "after": time.monotonic() - opened}), flush=True)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
