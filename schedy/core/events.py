"""The event vocabulary of the log.

An event is a plain dict with a ``"type"`` key, exactly as it is stored in a
commit (see docs/log-format.md). Values inside events are in log form
(:mod:`schedy.core.values`). Constructors here only build dicts; the fold in
:mod:`schedy.core.state` gives them meaning.
"""

FORMAT = 1
"""Version of the log format written by this release; readers refuse larger ones."""

EXPERIMENT_CREATED = "ExperimentCreated"
EXPERIMENT_UPDATED = "ExperimentUpdated"
EXPERIMENT_DELETED = "ExperimentDeleted"
JOB_ADDED = "JobAdded"
JOB_CLAIMED = "JobClaimed"
JOB_UPDATED = "JobUpdated"
JOB_DELETED = "JobDeleted"
JOB_HEARTBEAT = "JobHeartbeat"
JOB_LEASE_EXPIRED = "JobLeaseExpired"
JOB_RELEASED = "JobReleased"

DEFAULT_LEASE = 120.0
"""Seconds a claim lasts unless renewed; a running ``with`` block renews it every quarter of that."""

QUEUED, RUNNING, CRASHED, PRUNED, DONE = "QUEUED", "RUNNING", "CRASHED", "PRUNED", "DONE"
JOB_STATUSES = (QUEUED, RUNNING, CRASHED, PRUNED, DONE)
EXPERIMENT_STATUSES = (RUNNING, DONE)


def check_job_status(status):
    """Return ``status`` if it is a job status, else raise ValueError naming it."""
    if status not in JOB_STATUSES:
        raise ValueError(
            f"unknown job status {status!r}; expected one of {', '.join(JOB_STATUSES)}{_case(status, JOB_STATUSES)}"
        )
    return status


def check_experiment_status(status):
    """Return ``status`` if it is an experiment status, else raise ValueError naming it."""
    if status not in EXPERIMENT_STATUSES:
        raise ValueError(
            f"unknown experiment status {status!r}; expected one of {', '.join(EXPERIMENT_STATUSES)}"
            f"{_case(status, EXPERIMENT_STATUSES)}"
        )
    return status


def _case(status, statuses):
    # In Python a status is a constant (Job.DONE, "DONE"): one spelling, as in the log. The command line,
    # typed by hand, accepts any case.
    if isinstance(status, str) and status.upper() in statuses:
        return f" (in Python, statuses are upper case: {status.upper()!r}; the command line accepts any case)"
    return ""


def experiment_created(name, kind, params, status, seed, lease=DEFAULT_LEASE):
    return {
        "type": EXPERIMENT_CREATED,
        "format": FORMAT,
        "name": name,
        "kind": kind,
        "params": params,
        "status": status,
        "seed": seed,
        "lease": lease,
    }


def check_lease(lease):
    """Return ``lease`` (seconds) if it is a positive finite number, else raise TypeError or ValueError."""
    if isinstance(lease, bool) or not isinstance(lease, (int, float)):
        raise TypeError(f"a lease is a number of seconds, got {type(lease).__name__} {lease!r}")
    if not 0.1 <= lease < float("inf"):
        raise ValueError(f"a lease must be a finite number of seconds, at least 0.1, got {lease!r}")
    return float(lease)


def experiment_updated(**changes):
    return {"type": EXPERIMENT_UPDATED, **changes}


def experiment_deleted():
    return {"type": EXPERIMENT_DELETED}


def job_added(job_id, hyperparameters, status, results, generation=None, parent=None, member=None):
    e = {
        "type": JOB_ADDED,
        "job": job_id,
        "hyperparameters": hyperparameters,
        "status": status,
        "results": results,
        "generation": generation,
        "parent": parent,
    }
    if member is not None:
        e["member"] = member
    return e


def job_claimed(job_id, worker, lease_until=None):
    e = {"type": JOB_CLAIMED, "job": job_id, "worker": worker}
    if lease_until is not None:
        e["lease_until"] = lease_until
    return e


def job_heartbeat(job_id, worker, lease_until):
    return {"type": JOB_HEARTBEAT, "job": job_id, "worker": worker, "lease_until": lease_until}


def job_lease_expired(job_id, worker, status):
    """The claim of ``worker`` on ``job_id`` lapsed; the job becomes ``status`` (QUEUED to hand it out again)."""
    return {"type": JOB_LEASE_EXPIRED, "job": job_id, "worker": worker, "status": status}


def job_updated(job_id, **changes):
    return {"type": JOB_UPDATED, "job": job_id, **changes}


def job_released(job_id, worker, results):
    """``worker`` gives its job back unfinished (it was told to stop): the job goes to the front of the queue."""
    return {"type": JOB_RELEASED, "job": job_id, "worker": worker, "results": results}


def job_deleted(job_id):
    return {"type": JOB_DELETED, "job": job_id}
