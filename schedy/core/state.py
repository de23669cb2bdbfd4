"""Experiment state and the fold that computes it from commits.

``apply(state, commit)`` is the only way state changes. The state of a stream
is ``fold(commits)``; ``None`` stands for a stream with no commit yet. Values
(hyperparameters, results, params) stay in log form and are never mutated.
"""

from typing import NamedTuple

from pyrsistent import pmap, pvector

from ..errors import CorruptLogError, UnsupportedFormatError
from . import events as ev
from .jobtable import JobTable
from .schedulers import scheduler

QUEUE_SLACK = 64  # stale queue entries kept before they are dropped


class JobState(NamedTuple):
    """One job as the log describes it."""

    job_id: str
    number: int  # position in the order jobs were added; ids are str(number)
    status: str
    hyperparameters: dict
    results: dict
    generation: int | None
    parent: str | None
    worker: str | None  # the claimant while the job is claimed, else None
    version: int  # commit that last changed the job; a safe write must name it
    added: int  # commit that added the job
    claimed_at: float | None  # commit time of the current or last claim
    queue_seq: int | None  # identifies the job's current turn in the queue
    member: int | None = None  # PBT: the population member this job is a segment of
    initial_results: dict | None = None  # the results the job was added with (PBT redoes a crash from them)
    lease_until: float | None = None  # while claimed: when the claim lapses unless renewed


class ExperimentState(NamedTuple):
    """One experiment (one stream) as the log describes it at ``version``."""

    name: str
    kind: str
    params: dict
    status: str
    seed: int
    deleted: bool
    jobs: JobTable  # job id -> JobState
    next_number: int  # number of the next job added; never reused, even across deletions
    queue: object  # PVector[(queue_seq, job_id)]; entries go stale instead of being removed
    queue_head: int  # index of the first entry that may still be valid
    next_seq: int
    version: int
    created: int  # commit that created this incarnation of the experiment
    members: object = pmap()  # PBT: PMap[member, PVector[job_id]], each member's segments in order
    lease: float = ev.DEFAULT_LEASE  # seconds a claim lasts unless renewed
    # JobTable[job_id, lease_until] of the jobs claimed now, to find lapsed leases fast (a pmap cost a tenth
    # of a worker's cycle: pyrsistent's PMap is pure Python).
    claims: JobTable = JobTable()


def _quick_replace(cls):
    """Give the NamedTuple ``cls`` a ``_replace`` that does the same at about half the cost.

    The fold makes several changed copies of a state and of a job per event: namedtuple's own ``_replace``
    (through ``_make`` and ``map``) was 5% of a worker's cycle.
    """
    index = {f: i for i, f in enumerate(cls._fields)}
    new = tuple.__new__

    def _replace(self, **changes):
        values = list(self)
        try:
            for name, value in changes.items():
                values[index[name]] = value
        except KeyError:
            raise ValueError(f"Got unexpected field names: {sorted(set(changes) - set(index))!r}") from None
        return new(cls, values)

    _replace.__doc__ = cls._replace.__doc__
    cls._replace = _replace


_quick_replace(JobState)
_quick_replace(ExperimentState)


def _queue_valid(state, entry):
    seq, job_id = entry
    job = state.jobs.get(job_id)
    return job is not None and job.status == ev.QUEUED and job.queue_seq == seq


def oldest_queued(state):
    """Return the id of the job that has waited longest in the queue, or None."""
    q, i = state.queue, state.queue_head
    while i < len(q):
        if _queue_valid(state, q[i]):
            return q[i][1]
        i += 1
    return None


def _enqueue(state, job):
    seq = state.next_seq
    return state._replace(queue=state.queue.append((seq, job.job_id)), next_seq=seq + 1), job._replace(queue_seq=seq)


def _text(e, k, optional=False):
    if not (optional and e.get(k) is None) and type(e.get(k)) is not str:
        raise ValueError(f"field {k!r} must be a string, got {e.get(k)!r}")


def _integer(e, k, optional=False, low=0):
    x = e.get(k)
    if not (optional and x is None) and (type(x) is not int or x < low):
        raise ValueError(f"field {k!r} must be an integer >= {low}, got {x!r}")


def _number(e, k, optional=False):
    x = e.get(k)
    if not (optional and x is None) and type(x) not in (int, float):
        raise ValueError(f"field {k!r} must be a number, got {x!r}")


def _mapping(e, k, optional=False):
    if not (optional and k not in e) and type(e.get(k)) is not dict:
        raise ValueError(f"field {k!r} must be an object, got {e.get(k)!r}")


def _one_of(e, k, allowed, optional=False):
    if not (optional and k not in e) and e.get(k) not in allowed:
        raise ValueError(f"field {k!r} must be one of {', '.join(allowed)}, got {e.get(k)!r}")


def _job_id(e):
    j = e.get("job")
    if type(j) is not str or not j.isdigit() or str(int(j)) != j:
        raise ValueError(f"field 'job' must be a job id such as '1', got {j!r}")


_STR_OR_NONE = (str, type(None))
_NUMBER_OR_NONE = (int, float, type(None))
_ABSENT: dict = {}  # an optional object field that is not there (never mutated)


def _known_job(state, e):
    j = e.get("job")
    return type(j) is str and j in state.jobs  # the table holds job ids as JobAdded checked them


def _added_well_formed(state, e):
    j, g, m = e.get("job"), e.get("generation"), e.get("member")
    return (
        type(j) is str
        and len(j) <= 30
        and j.isascii()
        and j.isdigit()
        and (j[0] != "0" or j == "0")
        and type(e.get("hyperparameters")) is dict
        and type(e.get("results")) is dict
        and e.get("status") in ev.JOB_STATUSES
        and (g is None or type(g) is int and g >= 0)
        and type(e.get("parent")) in _STR_OR_NONE
        and (m is None or type(m) is int and m >= 0)
    )


def _claimed_well_formed(state, e):
    return _known_job(state, e) and type(e.get("worker")) is str and type(e.get("lease_until")) in _NUMBER_OR_NONE


def _updated_well_formed(state, e):
    return (
        _known_job(state, e)
        and e.get("status", ev.QUEUED) in ev.JOB_STATUSES
        and type(e.get("hyperparameters", _ABSENT)) is dict
        and type(e.get("results", _ABSENT)) is dict
    )


# The events of a worker's cycle, checked in one expression each; anything these do not accept (including
# every malformed event) goes through the full check, which names what is wrong.
_WELL_FORMED = {
    ev.JOB_ADDED: _added_well_formed,
    ev.JOB_CLAIMED: _claimed_well_formed,
    ev.JOB_UPDATED: _updated_well_formed,
}


def _check_event(state, e):
    """Raise ValueError unless the fields of event ``e`` have the types the fold relies on."""
    well_formed = _WELL_FORMED.get(e["type"])
    if well_formed is None or not well_formed(state, e):
        _check_event_fully(state, e)


def _check_event_fully(state, e):
    kind = e["type"]
    if kind == ev.EXPERIMENT_CREATED:
        fmt = e.get("format", 1)
        if type(fmt) is not int or fmt < 1:
            raise ValueError(f"field 'format' must be an integer >= 1, got {fmt!r}")
        if fmt > ev.FORMAT:
            return  # refused as a newer format by _created
        _text(e, "name")
        _text(e, "kind")
        _mapping(e, "params")
        scheduler(e["kind"]).check_params(e["params"])
        _one_of(e, "status", ev.EXPERIMENT_STATUSES)
        _integer(e, "seed")
        if e["seed"] >= 2**63:
            raise ValueError(f"field 'seed' must be below 2**63, got {e['seed']!r}")
        _number(e, "lease", optional=True)
    elif kind == ev.EXPERIMENT_UPDATED:
        _one_of(e, "status", ev.EXPERIMENT_STATUSES, optional=True)
        _mapping(e, "params", optional=True)
        if "params" in e:
            scheduler(state.kind).check_params(e["params"])
        _number(e, "lease", optional=True)
    elif kind == ev.EXPERIMENT_DELETED:
        pass
    else:
        _job_id(e)
        if kind == ev.JOB_ADDED:
            _mapping(e, "hyperparameters")
            _mapping(e, "results")
            _one_of(e, "status", ev.JOB_STATUSES)
            _integer(e, "generation", optional=True)
            _text(e, "parent", optional=True)
            _integer(e, "member", optional=True)
        elif kind == ev.JOB_CLAIMED:
            _text(e, "worker")
            _number(e, "lease_until", optional=True)
        elif kind == ev.JOB_UPDATED:
            _one_of(e, "status", ev.JOB_STATUSES, optional=True)
            _mapping(e, "hyperparameters", optional=True)
            _mapping(e, "results", optional=True)
        elif kind == ev.JOB_HEARTBEAT:
            _text(e, "worker")
            _number(e, "lease_until")
        elif kind == ev.JOB_LEASE_EXPIRED:
            _text(e, "worker", optional=True)
            _one_of(e, "status", ev.JOB_STATUSES)
        elif kind == ev.JOB_RELEASED:
            _text(e, "worker")
            _mapping(e, "results")
        if kind != ev.JOB_ADDED and e["job"] not in state.jobs:
            raise ValueError(f"job {e['job']!r} does not exist")


def _created(state, e, c):
    fmt = e.get("format", 1)
    if fmt > ev.FORMAT:
        raise UnsupportedFormatError(
            f"commit {c.version} was written in log format {fmt!r}, but this version of Schedy reads "
            f"formats up to {ev.FORMAT}; upgrade Schedy to read this experiment"
        )
    return ExperimentState(
        name=e["name"],
        kind=e["kind"],
        params=e["params"],
        status=e["status"],
        seed=e["seed"],
        deleted=False,
        jobs=JobTable(),
        next_number=state.next_number if state else 1,
        queue=pvector(),
        queue_head=0,
        next_seq=0,
        version=c.version,
        created=c.version,
        members=pmap(),
        lease=float(e.get("lease", ev.DEFAULT_LEASE)),
        claims=JobTable(),
    )


def _updated(state, e, c):
    changes = {k: e[k] for k in ("status", "params", "lease") if k in e}
    return state._replace(**changes)


def _deleted(state, e, c):
    return state._replace(deleted=True)


def _job_added(state, e, c):
    job_id = e["job"]
    jobs = state.jobs
    if job_id in jobs:
        raise ValueError(f"job {job_id!r} added twice")
    number = int(job_id)
    member = e.get("member")
    queue, seq, next_seq = state.queue, None, state.next_seq
    if e["status"] == ev.QUEUED:
        queue, seq, next_seq = queue.append((next_seq, job_id)), next_seq, next_seq + 1
    job = JobState(
        job_id,
        number,
        e["status"],
        e["hyperparameters"],
        e["results"],
        e.get("generation"),
        e.get("parent"),
        None,
        c.version,
        c.version,
        None,
        seq,
        member,
        e["results"],
    )
    members = state.members
    if member is not None:
        members = members.set(member, members.get(member, pvector()).append(job_id))
    return state._replace(
        jobs=jobs.set(job_id, job),
        next_number=max(state.next_number, number + 1),
        queue=queue,
        next_seq=next_seq,
        members=members,
    )


def _job_claimed(state, e, c):
    job = state.jobs[e["job"]]
    until = e.get("lease_until")
    job = job._replace(
        status=ev.RUNNING, worker=e["worker"], version=c.version, claimed_at=c.time, queue_seq=None, lease_until=until
    )
    claims = state.claims.set(job.job_id, until) if until is not None else state.claims.discard(job.job_id)
    return state._replace(jobs=state.jobs.set(job.job_id, job), claims=claims)


def _job_heartbeat(state, e, c):
    # A renewal does not change the job's version: the holder's safe writes stay valid.
    job = state.jobs[e["job"]]._replace(lease_until=e["lease_until"])
    return state._replace(jobs=state.jobs.set(job.job_id, job), claims=state.claims.set(job.job_id, e["lease_until"]))


def _job_lease_expired(state, e, c):
    job = state.jobs[e["job"]]._replace(status=e["status"], worker=None, lease_until=None, version=c.version)
    if job.status == ev.QUEUED:
        state, job = _enqueue(state, job)
    return state._replace(jobs=state.jobs.set(job.job_id, job), claims=state.claims.discard(job.job_id))


def _job_updated(state, e, c):
    job_id = e["job"]
    job = state.jobs[job_id]
    changes = {k: e[k] for k in ("status", "hyperparameters", "results") if k in e}
    changes["version"] = c.version
    claims, queue, next_seq = state.claims, state.queue, state.next_seq
    status = e.get("status")
    if status is not None:
        if status != ev.RUNNING:
            changes["worker"] = changes["lease_until"] = None
            claims = claims.discard(job_id)
        if status == ev.QUEUED and job.queue_seq is None:
            queue, changes["queue_seq"], next_seq = queue.append((next_seq, job_id)), next_seq, next_seq + 1
        elif status != ev.QUEUED:
            changes["queue_seq"] = None
    return state._replace(
        jobs=state.jobs.set(job_id, job._replace(**changes)), claims=claims, queue=queue, next_seq=next_seq
    )


def _job_released(state, e, c):
    # Back to the front of the queue: the next worker to ask gets it at once, before jobs that never started.
    job = state.jobs[e["job"]]._replace(
        status=ev.QUEUED, worker=None, lease_until=None, results=e["results"], version=c.version
    )
    seq, q, head = state.next_seq, state.queue, state.queue_head
    if head > 0:  # the slot before the head is stale: reuse it
        q, head = q.set(head - 1, (seq, job.job_id)), head - 1
    else:
        q = pvector([(seq, job.job_id)]).extend(q)
    return state._replace(
        jobs=state.jobs.set(job.job_id, job._replace(queue_seq=seq)),
        claims=state.claims.discard(job.job_id),
        queue=q,
        queue_head=head,
        next_seq=seq + 1,
    )


def _job_deleted(state, e, c):
    return state._replace(jobs=state.jobs.remove(e["job"]), claims=state.claims.discard(e["job"]))


_APPLY = {
    ev.EXPERIMENT_CREATED: _created,
    ev.EXPERIMENT_UPDATED: _updated,
    ev.EXPERIMENT_DELETED: _deleted,
    ev.JOB_ADDED: _job_added,
    ev.JOB_CLAIMED: _job_claimed,
    ev.JOB_UPDATED: _job_updated,
    ev.JOB_DELETED: _job_deleted,
    ev.JOB_RELEASED: _job_released,
    ev.JOB_HEARTBEAT: _job_heartbeat,
    ev.JOB_LEASE_EXPIRED: _job_lease_expired,
}


def apply(state, commit, stream="the experiment"):
    """Return the state after ``commit``; raise CorruptLogError if it does not follow ``state``."""
    expected = state.version + 1 if state else 1
    if commit.version != expected:
        raise CorruptLogError(f"{stream}: expected commit {expected}, found commit {commit.version}")
    for e in commit.events:
        kind = e["type"]
        if state is None and kind != ev.EXPERIMENT_CREATED:
            raise CorruptLogError(f"{stream}: commit {commit.version} has a {kind} event before the experiment exists")
        handler = _APPLY.get(kind)
        if handler is None:
            raise CorruptLogError(f"{stream}: commit {commit.version} has an unknown event type {kind!r}")
        try:
            _check_event(state, e)
            state = handler(state, e, commit)
        except UnsupportedFormatError as x:
            raise UnsupportedFormatError(f"{stream}: {x}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as x:
            raise CorruptLogError(
                f"{stream}: commit {commit.version} has a malformed {kind} event ({type(x).__name__}: {x})"
            ) from None
    q, head = state.queue, state.queue_head
    while head < len(q) and not _queue_valid(state, q[head]):
        head += 1
    if head >= QUEUE_SLACK and head * 2 >= len(q):
        # Drop the entries no job can use any more, as a function of the state alone (so a snapshot and a
        # replay agree): a random search enqueues every job it samples, and a long queue costs memory and
        # garbage-collector time at every commit.
        q, head = pvector(q[head:]), 0
    return state._replace(version=commit.version, queue=q, queue_head=head)


def fold(commits, state=None, stream="the experiment"):
    """Apply ``commits`` in order to ``state`` (None: an empty stream)."""
    for c in commits:
        state = apply(state, c, stream)
    return state


def live(state):
    """True if the stream holds an experiment that exists (created and not deleted)."""
    return state is not None and not state.deleted


def lineage(state, job_id):
    """The jobs from generation 0 to ``job_id``, following parent links (it stops at a deleted job)."""
    chain, job = [], state.jobs.get(job_id)
    while job is not None:
        chain.append(job)
        job = state.jobs.get(job.parent) if job.parent is not None else None
    return chain[::-1]
