"""A worker for the drain through the fault proxy (tests/test_objectstore_faults.py).

    python _fault_worker.py URL PROXY_URL EXPERIMENT WORKER TIMEOUT [THINK]

Opens the database through the proxy (every request, the open-time check included, may meet a fault), drains
the experiment, and prints one JSON line: the jobs it finished, the errors it saw (none expected), the store's
retry counters and its time. Exits 0, or 3 if any call raised.
"""

import json
import sys
import time
from datetime import timedelta

import schedy
from schedy.errors import NoJobError


def main(url, proxy_url, name, worker, timeout, think="0"):
    began = time.monotonic()
    # obstore re-sends a request itself once (a 503, a connection it knows was not used); what it does not
    # re-send (a create that timed out or was reset after it was sent) reaches Schedy.
    retry = {
        "max_retries": 1,
        "backoff": {"init_backoff": timedelta(milliseconds=20), "max_backoff": timedelta(milliseconds=200)},
        "retry_timeout": timedelta(seconds=30),
    }
    db = schedy.SchedyDB(
        url, worker=worker, endpoint=proxy_url, client_options={"timeout": timeout}, retry_config=retry
    )
    opened = time.monotonic() - began
    exp = db.get_experiment(name)
    done, errors = [], []
    while len(errors) < 10:
        try:
            with exp.next_job() as job:
                job.results["worker"] = worker
                job.results["value"] = job.hyperparameters["i"] * 2
                done.append(job.job_id)
                time.sleep(float(think))  # "training": without it one worker in a hot loop wins most races
        except NoJobError:
            break
        except Exception as e:  # noqa: BLE001 - reported to the test, which expects none
            errors.append(f"{type(e).__name__}: {e}")
    stats = dict(getattr(db._store, "stats", {}))
    print(
        json.dumps(
            {
                "worker": worker,
                "done": done,
                "errors": errors,
                "stats": stats,
                "open_seconds": round(opened, 3),
                "seconds": round(time.monotonic() - began, 3),
            }
        )
    )
    return 3 if errors else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:7]))
