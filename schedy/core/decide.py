"""Decisions: pure functions from the current state to the events to append.

Every function takes the folded state of one stream (None if it has no
commit) and returns a :class:`Decision`. A decision that must not happen raises
a :mod:`schedy.errors` exception or ValueError; nothing is appended then.
Values arrive already in log form. Randomness comes from :func:`rng_for`, so
the same log and the same command always give the same decision.
"""

from typing import NamedTuple

import numpy as np

from ..errors import ExperimentNotFoundError, JobNotFoundError, NoJobError, ResourceExistsError, UnsafeUpdateError
from . import events as ev
from .pbt import FINISHED
from .schedulers import scheduler
from .state import live, oldest_queued


class Decision(NamedTuple):
    """Events to append as one commit (none: append nothing), then the value to return or the error to raise.

    ``error`` lets a decision record something (for example, that the
    experiment is finished) and still refuse the caller's request.
    """

    events: list
    value: object = None
    error: Exception = None


def rng_for(state, version):
    """The random generator of the decision that will write commit ``version``."""
    return np.random.default_rng([state.seed, version])


def require(state, name, incarnation=None):
    """Raise ExperimentNotFoundError unless the stream holds a live experiment.

    ``incarnation`` (the commit that created the experiment the caller knows)
    keeps an object read before a deletion from writing into a new experiment
    of the same name.
    """
    if not live(state):
        raise ExperimentNotFoundError(f"no experiment named {name!r}")
    if incarnation is not None and state.created != incarnation:
        raise ExperimentNotFoundError(
            f"the experiment {name!r} this object refers to was deleted; a new one of that name exists now "
            f"(get it again with db.get_experiment)"
        )
    return state


def require_job(state, name, job_id, incarnation=None):
    """Return the job ``job_id``; raise JobNotFoundError if it does not exist."""
    if not isinstance(job_id, str):
        raise TypeError(f"a job id is a string such as '1', got {type(job_id).__name__} {job_id!r}")
    require(state, name, incarnation)
    job = state.jobs.get(job_id)
    if job is None:
        raise JobNotFoundError(f"experiment {name!r} has no job {job_id!r} (it was never added or was deleted)")
    return job


def create_experiment(state, name, kind, params, status, seed):
    if live(state):
        raise ResourceExistsError(f"an experiment named {name!r} already exists")
    scheduler(kind).check_params(params)
    ev.check_experiment_status(status)
    return Decision([ev.experiment_created(name, kind, params, status, seed)])


def update_experiment(state, name, status=None, params=None, incarnation=None):
    """Change the status and/or parameters; None leaves a field as it is."""
    require(state, name, incarnation)
    changes = {}
    if status is not None and status != state.status:
        changes["status"] = ev.check_experiment_status(status)
    if params is not None and params != state.params:
        scheduler(state.kind).check_params(params)
        changes["params"] = params
    return Decision([ev.experiment_updated(**changes)] if changes else [])


def delete_experiment(state, name, ensure=True, incarnation=None):
    if not live(state) or incarnation is not None and state.created != incarnation:
        if ensure:
            raise ExperimentNotFoundError(f"no experiment named {name!r} to delete (never created, or already deleted)")
        return Decision([])
    return Decision([ev.experiment_deleted()])


def add_job(state, name, hyperparameters, status, results, incarnation=None):
    require(state, name, incarnation)
    ev.check_job_status(status)
    kind = scheduler(state.kind)
    kind.check_job(state.params, hyperparameters)
    kind.check_update(state, None, status, results)
    job_id = str(state.next_number)
    return Decision([ev.job_added(job_id, hyperparameters, status, results, **kind.on_add(state))], job_id)


def next_job(state, name, worker, version, now, incarnation=None):
    """Claim the oldest queued job, or the scheduler's new one; raise NoJobError if there is none."""
    require(state, name, incarnation)
    if state.status != ev.RUNNING:
        raise NoJobError(f"experiment {name!r} is {state.status}: no more jobs are handed out")
    job_id = oldest_queued(state)
    if job_id is not None:
        return Decision([ev.job_claimed(job_id, worker)], job_id)
    proposal = scheduler(state.kind).propose(state, now, rng_for(state, version))
    if proposal == FINISHED:
        return Decision([ev.experiment_updated(status=ev.DONE)],
                        error=NoJobError(f"experiment {name!r} is finished: every member reached max_generations"))
    if isinstance(proposal, str):
        raise NoJobError(f"experiment {name!r} has no job to hand out: {proposal}")
    job_id = str(state.next_number)
    return Decision([ev.job_added(job_id, status=ev.QUEUED, **proposal), ev.job_claimed(job_id, worker)], job_id)


def _check_version(job, name, expected_version):
    if expected_version == 0:
        raise UnsafeUpdateError(
            f"this copy of job {job.job_id!r} of experiment {name!r} was not read from the log, so a safe write "
            f"cannot tell what it would overwrite; get the job with exp.get_job, or put(safe=False)"
        )
    if expected_version is not None and job.version != expected_version:
        raise UnsafeUpdateError(
            f"job {job.job_id!r} of experiment {name!r} changed in the log (commit {job.version}) since this "
            f"copy read it (commit {expected_version}); get the job again, or put(safe=False) to overwrite"
        )


def claim_job(state, name, job_id, worker, expected_version=None, incarnation=None):
    """Claim a given job for ``worker`` (``Job.try_run``); refuse if someone holds it or it changed."""
    job = require_job(state, name, job_id, incarnation)
    _check_version(job, name, expected_version)
    if job.worker is not None:
        raise UnsafeUpdateError(f"job {job_id!r} of experiment {name!r} is already claimed by {job.worker}")
    return Decision([ev.job_claimed(job_id, worker)], job_id)


def enter_job(state, name, job_id, worker, expected_version=None, incarnation=None):
    """Start work on a job (``with job:``): nothing to write if ``worker`` holds it as this copy knows it, else claim it."""
    job = require_job(state, name, job_id, incarnation)
    if job.worker == worker and job.version == expected_version:
        return Decision([], job_id)
    return claim_job(state, name, job_id, worker, expected_version, incarnation)


def update_job(state, name, job_id, worker, status, hyperparameters, results, expected_version=None,
               incarnation=None):
    """Write a job's status, hyperparameters and results (``Job.put``); only the changed fields are logged."""
    job = require_job(state, name, job_id, incarnation)
    _check_version(job, name, expected_version)
    ev.check_job_status(status)
    scheduler(state.kind).check_update(state, job, status, results)
    events, changes = [], {}
    if status == ev.RUNNING and job.status != ev.RUNNING:
        # Every way into RUNNING is a claim, so the no-double-claim invariant covers puts too.
        events.append(ev.job_claimed(job_id, worker))
    elif status != job.status:
        changes["status"] = status
    if hyperparameters != job.hyperparameters:
        scheduler(state.kind).check_job(state.params, hyperparameters)
        changes["hyperparameters"] = hyperparameters
    if results != job.results:
        changes["results"] = results
    if changes:
        events.append(ev.job_updated(job_id, **changes))
    return Decision(events, job_id)


def delete_job(state, name, job_id, ensure=True, incarnation=None):
    try:
        require_job(state, name, job_id, incarnation)
    except JobNotFoundError:
        if ensure:
            raise
        return Decision([])
    return Decision([ev.job_deleted(job_id)])
