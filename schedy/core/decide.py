"""Decisions: pure functions from the current state to the events to append.

Every function takes the folded state of one stream (None if it has no
commit), then the request by keyword only (``name=``, ``worker=``, ``now=``...:
ten arguments given by position could land in the wrong place silently), and
returns a :class:`Decision`. A decision that must not happen raises
a :mod:`schedy.errors` exception or ValueError; nothing is appended then.
Values arrive already in log form. Randomness comes from :func:`rng_for`, so
the same log and the same command always give the same decision.
"""

import hashlib
from typing import NamedTuple

import numpy as np
from numpy.random.bit_generator import ISeedSequence

from ..errors import (
    ExperimentNotFoundError,
    JobNotFoundError,
    NoJobError,
    ResourceExistsError,
    SchedyError,
    UnsafeUpdateError,
)
from . import events as ev
from . import leases
from .codec import Commit
from .outcomes import Finished, Proposal, Waiting
from .schedulers import scheduler
from .state import ExperimentState, apply, live, oldest_queued


class Decision(NamedTuple):
    """Events to append as one commit (none: append nothing), then the value to return or the error to raise.

    ``error`` lets a decision record something (for example, that the
    experiment is finished) and still refuse the caller's request.
    ``durable`` is False when losing the commit to a power failure would lose
    nothing: a claim, a renewal, or a job a scheduler proposes. The workers
    such a commit concerns ran on the machine that lost power (a local log
    serves one machine), and the decision is made again the same way from the
    log that survived. A later durable commit makes it durable too.
    """

    events: list
    value: object = None
    error: Exception | None = None
    durable: bool = True


def rng_for(state, version):
    """The random generator of the decision that will write commit ``version``: PCG64 seeded by CommitSeed."""
    return np.random.Generator(np.random.PCG64(CommitSeed(state.seed, version)))


class CommitSeed(ISeedSequence):
    """The seed of one decision: words of BLAKE2b of ``b"<seed>:<version>"``, the size of the state asked for.

    numpy's ``default_rng([seed, version])`` gave the same guarantees but its
    SeedSequence cost a sixth of a random-search worker's cycle. PCG64 takes
    this in place of a SeedSequence (it only calls ``generate_state``, for
    four uint64 words); a bit generator that asks for more than 64 bytes, such
    as MT19937, cannot, and neither can ``Generator.spawn``.
    """

    __slots__ = ("seed", "version")

    def __init__(self, seed, version):
        self.seed, self.version = seed, version

    def generate_state(self, n_words, dtype=np.uint32):
        """``n_words`` words of ``dtype`` (uint32 or uint64), read little-endian from the digest."""
        dtype = np.dtype(dtype)
        if dtype not in (np.uint32, np.uint64) or not 0 < n_words * dtype.itemsize <= 64:
            raise ValueError(f"a commit seed gives 1 to 64 bytes of uint32 or uint64 words, not {n_words} of {dtype}")
        digest = hashlib.blake2b(b"%d:%d" % (self.seed, self.version), digest_size=n_words * dtype.itemsize).digest()
        return np.frombuffer(digest, dtype=dtype.newbyteorder("<")).astype(dtype)


def require(state: ExperimentState | None, name: str, incarnation: int | None = None) -> ExperimentState:
    """Raise ExperimentNotFoundError unless the stream holds a live experiment.

    ``incarnation`` (the commit that created the experiment the caller knows)
    keeps an object read before a deletion from writing into a new experiment
    of the same name.
    """
    if state is None or not live(state):
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


def create_experiment(
    state, *, name, kind, params, status, seed, lease=ev.DEFAULT_LEASE, exist_ok=False, any_seed=False
):
    """Create the experiment; with ``exist_ok``, an experiment of that name with the same definition is kept.

    The definition is the kind, the parameters, the lease and the seed (``any_seed``: the caller chose none,
    so any stored seed matches); the status is not part of it (a finished experiment stays finished).
    Keeping it writes nothing; its value is then "exists".
    A different definition raises ResourceExistsError naming what differs.
    """
    if live(state):
        if exist_ok:
            scheduler(kind).check_params(params)
            differences = _differences(state, kind, params, None if any_seed else seed, ev.check_lease(lease))
            if not differences:
                return Decision([], "exists")
            raise ResourceExistsError(
                f"an experiment named {name!r} already exists with another definition: " + "; ".join(differences)
            )
        raise ResourceExistsError(
            f"an experiment named {name!r} already exists (db.add_experiment(exp, "
            f"exist_ok=True) uses it when the definitions match)"
        )
    scheduler(kind).check_params(params)
    ev.check_experiment_status(status)
    return Decision([ev.experiment_created(name, kind, params, status, seed, ev.check_lease(lease))])


def _differences(state, kind, params, seed, lease):
    """What differs between the stored experiment and a definition, in words (empty if nothing)."""

    def show(v):
        text = repr(v)
        return text if len(text) <= 80 else text[:77] + "..."

    out = []
    if state.kind != kind:
        out.append(f"kind {state.kind!r} stored, {kind!r} given")
    elif state.params != params:
        # Named by their path in the parameters, without the scheduler's wrapper: "distributions.lr.uniform.low".
        stored, given = _flat(_unwrap(state.params)), _flat(_unwrap(params))
        for key in sorted(set(stored) | set(given)):
            if stored.get(key, _ABSENT) != given.get(key, _ABSENT):
                out.append(f"{key}: {show(stored.get(key, _ABSENT))} stored, {show(given.get(key, _ABSENT))} given")
    if state.lease != lease:
        out.append(f"lease: {state.lease:g} s stored, {lease:g} s given")
    if seed is not None and state.seed != seed:
        out.append(f"seed: {state.seed} stored, {seed} given")
    return out


class _Absent:
    def __repr__(self):
        return "(absent)"


_ABSENT = _Absent()


def _unwrap(params):
    inner = params.get("scheduler")
    if isinstance(inner, dict) and len(inner) == 1 and isinstance(next(iter(inner.values())), dict):
        return {**{k: v for k, v in params.items() if k != "scheduler"}, **next(iter(inner.values()))}
    return params


def _flat(params, prefix=""):
    """Nested parameters as ``{"a.b": value}``, so that a difference is named by its path."""
    out = {}
    for k, v in params.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def expire_leases(state, now, lapsed=None):
    """Record the claims whose lease lapsed: the events, and the state after them.

    ``lapsed`` names them (job ids, as :func:`schedy.core.leases.observe` finds them from what the deciding
    worker has seen; ids no longer claimed are skipped); None means every claim whose ``lease_until`` is
    before ``now``, the rule for one clock shared by every writer (:func:`schedy.core.leases.lapsed_at`).
    Whichever worker next writes records them; the job is handed out again (or, with PBT, redone), and the
    old holder's writes are refused from then on, since the job's version changed.
    """
    if lapsed is None:
        lapsed = leases.lapsed_at(state, now)
    else:
        lapsed = [j for j in lapsed if j in state.claims]
    if not lapsed:
        return state, []
    status = scheduler(state.kind).expired_status
    events = [ev.job_lease_expired(j, state.jobs[j].worker, status) for j in lapsed]
    return apply(state, Commit(state.version + 1, now, "", events)), events


def _after_expiries(state, now, lapsed, rest):
    """Expire lapsed leases, then decide ``rest(state)`` on the result, in one commit."""
    state, expired = expire_leases(state, now, lapsed)
    try:
        d = rest(state)
    except SchedyError as e:
        if expired:
            return Decision(expired, error=e, durable=False)  # record the expiries even when the request is refused
        raise
    return Decision(expired + d.events, d.value, d.error, d.durable) if expired else d


def _lease_until(state, now):
    return None if now is None else now + state.lease


def update_experiment(state, *, name, status=None, params=None, incarnation=None, lease=None):
    """Change the status, parameters and/or lease; None leaves a field as it is."""
    require(state, name, incarnation)
    changes = {}
    if lease is not None and ev.check_lease(lease) != state.lease:
        changes["lease"] = float(lease)
    if status is not None and status != state.status:
        changes["status"] = ev.check_experiment_status(status)
    if params is not None and params != state.params:
        scheduler(state.kind).check_params(params)
        changes["params"] = params
    return Decision([ev.experiment_updated(**changes)] if changes else [])


def delete_experiment(state, *, name, ensure=True, incarnation=None):
    if not live(state) or incarnation is not None and state.created != incarnation:
        if ensure:
            raise ExperimentNotFoundError(f"no experiment named {name!r} to delete (never created, or already deleted)")
        return Decision([])
    return Decision([ev.experiment_deleted()])


def add_job(state, *, name, hyperparameters, status, results, incarnation=None):
    require(state, name, incarnation)
    ev.check_job_status(status)
    kind = scheduler(state.kind)
    kind.check_job(state.params, hyperparameters)
    kind.check_update(state, None, status, results)
    job_id = str(state.next_number)
    return Decision([ev.job_added(job_id, hyperparameters, status, results, **kind.on_add(state))], job_id)


def next_job(state, *, name, worker, version, now, incarnation=None, lapsed=None, sample=None):
    """Claim the oldest queued job, or the scheduler's new one; raise NoJobError if there is none.

    ``sample`` answers a Bayesian search's :class:`~schedy.core.bayes.SampleRequest` (the shell's sampler).
    """
    require(state, name, incarnation)
    return _after_expiries(state, now, lapsed, lambda s: _next_job(s, name, worker, version, now, sample))


def _next_job(state, name, worker, version, now, sample=None):
    until = _lease_until(state, now)
    if state.status != ev.RUNNING:
        reason = f"experiment {name!r} is {state.status}: no more jobs are handed out"
        raise NoJobError(reason, Finished(reason) if state.status == ev.DONE else None)
    job_id = oldest_queued(state)
    if job_id is not None:
        return Decision([ev.job_claimed(job_id, worker, until)], job_id, durable=False)
    outcome = scheduler(state.kind).propose(state, now, rng_for(state, version), sample)
    if isinstance(outcome, Finished):
        return Decision(
            [ev.experiment_updated(status=ev.DONE)],
            durable=False,
            error=NoJobError(f"experiment {name!r} is finished: {outcome.reason}", outcome),
        )
    if isinstance(outcome, Waiting):
        raise NoJobError(
            f"experiment {name!r} has no job to hand out yet: {outcome.reason}; ask again when a running job finishes",
            outcome,
        )
    if not isinstance(outcome, Proposal):
        raise NoJobError(f"experiment {name!r} has no job to hand out: {outcome.reason}", outcome)
    job_id = str(state.next_number)
    return Decision(
        [ev.job_added(job_id, status=ev.QUEUED, **outcome.fields), ev.job_claimed(job_id, worker, until)],
        job_id,
        durable=False,
    )


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


def claim_job(state, *, name, job_id, worker, expected_version=None, incarnation=None, now=None, lapsed=None):
    """Claim a given job for ``worker`` (``Job.try_run``); refuse if someone holds it or it changed."""
    require(state, name, incarnation)
    return _after_expiries(state, now, lapsed, lambda s: _claim_job(s, name, job_id, worker, expected_version, now))


def _claim_job(state, name, job_id, worker, expected_version, now):
    job = require_job(state, name, job_id)
    _check_version(job, name, expected_version)
    if job.worker is not None:
        raise UnsafeUpdateError(f"job {job_id!r} of experiment {name!r} is already claimed by {job.worker}")
    return Decision([ev.job_claimed(job_id, worker, _lease_until(state, now))], job_id, durable=False)


def enter_job(state, *, name, job_id, worker, expected_version=None, incarnation=None, now=None, lapsed=None):
    """Start work on a job (``with job:``).

    Nothing is written if ``worker`` holds the job as this copy knows it; otherwise the job is claimed.
    """
    require(state, name, incarnation)

    def rest(s):
        job = require_job(s, name, job_id)
        if job.worker == worker and job.version == expected_version:
            return Decision([], job_id)
        return _claim_job(s, name, job_id, worker, expected_version, now)

    return _after_expiries(state, now, lapsed, rest)


def heartbeat(state, *, name, job_id, worker, now, incarnation=None, claimed_at=None, lapsed=None):
    """Renew ``worker``'s lease on a job it holds; raise UnsafeUpdateError if it no longer holds it.

    ``claimed_at`` (the time of the claim being renewed) tells a claim apart from a later claim of the
    same job by the same worker. The job's version is not checked: the holder's own puts change it.
    """
    require(state, name, incarnation)

    def rest(s):
        job = require_job(s, name, job_id)
        if job.worker != worker or (claimed_at is not None and job.claimed_at != claimed_at):
            raise UnsafeUpdateError(f"job {job_id!r} of experiment {name!r} is no longer held by {worker}")
        return Decision([ev.job_heartbeat(job_id, worker, _lease_until(s, now))], job_id, durable=False)

    return _after_expiries(state, now, lapsed, rest)


def update_job(
    state,
    *,
    name,
    job_id,
    worker,
    status,
    hyperparameters,
    results,
    expected_version=None,
    incarnation=None,
    now=None,
    lapsed=None,
    base=None,
):
    """Write a job's status, hyperparameters and results (``Job.put``); only the changed fields are logged.

    A holder's put that keeps the job RUNNING also renews its lease. ``base`` is the job as the writer's
    copy read it (at ``expected_version``): if the job changed since but ``worker`` still holds the claim it
    held then, the writer's changes are merged into the log's (see :func:`merge_changes`) instead of being
    refused.
    """
    require(state, name, incarnation)
    return _after_expiries(
        state,
        now,
        lapsed,
        lambda s: _update_job(s, name, job_id, worker, status, hyperparameters, results, expected_version, now, base),
    )


def _update_job(state, name, job_id, worker, status, hyperparameters, results, expected_version, now, base=None):
    job = require_job(state, name, job_id)
    if (
        base is not None
        and expected_version
        and job.version != expected_version
        and job.worker == worker
        and base.worker == worker
        and job.claimed_at == base.claimed_at
    ):
        status, hyperparameters, results = merge_changes(name, base, job, status, hyperparameters, results)
        expected_version = None
    _check_version(job, name, expected_version)
    ev.check_job_status(status)
    scheduler(state.kind).check_update(state, job, status, results)
    events, changes = [], {}
    if status == ev.RUNNING and job.status != ev.RUNNING:
        # Every way into RUNNING is a claim, so the no-double-claim invariant covers puts too.
        events.append(ev.job_claimed(job_id, worker, _lease_until(state, now)))
    elif status != job.status:
        changes["status"] = status
    if hyperparameters != job.hyperparameters:
        scheduler(state.kind).check_job(state.params, hyperparameters)
        changes["hyperparameters"] = hyperparameters
    if results != job.results:
        changes["results"] = results
    if changes:
        events.append(ev.job_updated(job_id, **changes))
    if status == ev.RUNNING and job.worker == worker and now is not None and (events or job.lease_until is not None):
        events.append(ev.job_heartbeat(job_id, worker, _lease_until(state, now)))
    return Decision(events, job_id)


def release_job(state, *, name, job_id, worker, results, incarnation=None, now=None, lapsed=None):
    """Give back a job ``worker`` holds, unfinished (it was told to stop: preempted, cancelled, interrupted).

    The job goes to the front of the queue with ``results`` (what it reported so far, a checkpoint among them):
    the next worker to ask gets it at once, with its hyperparameters (and for PBT and ASHA its parent), and no
    lease has to lapse. Refused (UnsafeUpdateError) unless ``worker`` holds the job.
    """
    require(state, name, incarnation)
    return _after_expiries(state, now, lapsed, lambda s: _release_job(s, name, job_id, worker, results))


def _release_job(state, name, job_id, worker, results):
    job = require_job(state, name, job_id)
    if job.status != ev.RUNNING or job.worker != worker:
        held = f"is {job.status}" + (f", held by {job.worker}" if job.worker is not None else "")
        raise UnsafeUpdateError(
            f"job {job_id!r} of experiment {name!r} cannot be released by {worker}: it {held} "
            f"(only the worker holding a RUNNING job gives it back)"
        )
    return Decision([ev.job_released(job_id, worker, results)], job_id)


def merge_changes(name, base, job, status, hyperparameters, results):
    """The holder's write of ``(status, hyperparameters, results)``, made on ``base``, merged into ``job``.

    Each field the holder changed since ``base`` (the status, each hyperparameter and each result, by name)
    is applied to the job as the log has it now; a field the log also changed since ``base`` to another
    value is a conflict: UnsafeUpdateError names every such field, and nothing is written.
    """
    conflicts = []
    if status != base.status and job.status != base.status and job.status != status:
        conflicts.append(f"status ({job.status} in the log, {status} here)")
    elif status == base.status:
        status = job.status
    merged = []
    for field, ours, old, now in (
        ("hyperparameters", hyperparameters, base.hyperparameters, job.hyperparameters),
        ("results", results, base.results, job.results),
    ):
        out = dict(now)
        for key in set(ours) | set(old):
            mine, before = ours.get(key, _ABSENT), old.get(key, _ABSENT)
            if mine == before:
                continue  # not changed here: the log's value stands
            theirs = now.get(key, _ABSENT)
            if theirs != before and theirs != mine:
                conflicts.append(f"{field}[{key!r}]")
            elif mine is _ABSENT:
                out.pop(key, None)
            else:
                out[key] = mine
        merged.append(out)
    if conflicts:
        raise UnsafeUpdateError(
            f"job {job.job_id!r} of experiment {name!r} changed in the log (commit {job.version}) "
            f"since this copy read it, in what this write changes too: {', '.join(conflicts)}; "
            f"get the job again, or put(safe=False) to overwrite"
        )
    return status, merged[0], merged[1]


def delete_job(state, *, name, job_id, ensure=True, incarnation=None):
    try:
        require_job(state, name, job_id, incarnation)
    except JobNotFoundError:
        if ensure:
            raise
        return Decision([])
    return Decision([ev.job_deleted(job_id)])
