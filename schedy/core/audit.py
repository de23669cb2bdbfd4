"""Views of an experiment's history, computed from its commits (pure).

Which commits a moment names (:func:`commits_until`), which commits belong
to one incarnation (:func:`incarnation`) or concern a job (:func:`about_job`),
and what happened to each job and when (:func:`job_rows`). Times are the
commit times written in the log, in seconds since the Unix epoch. Parsing
moments and describing events for people is :mod:`schedy.audit`'s.
"""

from typing import NamedTuple

from . import events as ev
from . import halving, values

FINISHED = (ev.DONE, ev.CRASHED, ev.PRUNED)


def commits_until(commits, point):
    """The commits up to ``point`` (with a ``version``, or else a ``time``): a prefix of the log.

    By time, the prefix stops at the first commit stamped after the time, so
    it is always a state the log really went through, even if machines'
    clocks disagreed. Raise ValueError if a version is beyond the log's end.
    """
    commits = list(commits)
    if point.version is not None:
        if point.version > len(commits):
            raise ValueError(f"as_of: the log has {len(commits)} commits, there is no commit {point.version}")
        return commits[: point.version]
    n = 0
    while n < len(commits) and commits[n].time <= point.time:
        n += 1
    return commits[:n]


def incarnation(commits, created):
    """The commits of the incarnation created at commit ``created``: from it up to the next re-creation."""
    out = []
    for c in commits:
        if c.version < created:
            continue
        if c.version > created and any(e["type"] == ev.EXPERIMENT_CREATED for e in c.events):
            break
        out.append(c)
    return out


def about_job(commit, job_id):
    """``commit`` with only its events about job ``job_id``, or None if it has none."""
    mine = [e for e in commit.events if e.get("job") == job_id]
    return commit._replace(events=mine) if mine else None


class JobTimes(NamedTuple):
    """When things happened to one job, from the log (times in seconds since the epoch)."""

    added_at: float
    claimed_at: float | None = None  # the last claim
    claimed_by: str | None = None  # the worker of the last claim
    finished_at: float | None = None  # when it last became DONE, CRASHED or PRUNED
    claims: int = 0
    lease_expiries: int = 0


def job_times(commits):
    """``{job_id: JobTimes}`` for the jobs of the last incarnation in ``commits``."""
    times = {}
    for c in commits:
        for e in c.events:
            kind = e["type"]
            if kind == ev.EXPERIMENT_CREATED:
                times = {}
            elif kind == ev.JOB_ADDED:
                finished = c.time if e["status"] in FINISHED else None
                times[e["job"]] = JobTimes(c.time, finished_at=finished)
            elif kind == ev.JOB_DELETED:
                times.pop(e["job"], None)
            elif e.get("job") in times:
                t = times[e["job"]]
                if kind == ev.JOB_CLAIMED:
                    times[e["job"]] = t._replace(
                        claimed_at=c.time, claimed_by=e["worker"], claims=t.claims + 1, finished_at=None
                    )
                elif kind == ev.JOB_UPDATED and "status" in e:
                    times[e["job"]] = t._replace(finished_at=c.time if e["status"] in FINISHED else None)
                elif kind == ev.JOB_RELEASED:
                    times[e["job"]] = t._replace(finished_at=None)
                elif kind == ev.JOB_LEASE_EXPIRED:
                    times[e["job"]] = t._replace(
                        lease_expiries=t.lease_expiries + 1, finished_at=c.time if e["status"] in FINISHED else None
                    )
    return times


def job_rows(state, commits):
    """One dict per job of ``state``, in the order jobs were added, with user values (not log form).

    Keys: job_id, status, generation, parent_id, member, for ASHA and
    Hyperband rung and resource (:func:`rung_and_resource`), the JobTimes
    fields, hyperparameters and results (dicts).
    """
    times = job_times(commits)
    config = halving.Config.from_log(state.params, state.kind) if state.kind in halving.KINDS else None
    rows = []
    for job in sorted(state.jobs.values(), key=lambda j: j.number):
        t = times.get(job.job_id) or JobTimes(None)
        rows.append(
            {
                "job_id": job.job_id,
                "status": job.status,
                "generation": job.generation,
                "parent_id": job.parent,
                "member": job.member,
                **({} if config is None else rung_and_resource(job, config)),
                **t._asdict(),
                "hyperparameters": values.decode_mapping(job.hyperparameters),
                "results": values.decode_mapping(job.results),
            }
        )
    return rows


def rung_and_resource(job, config):
    """``{"rung": ..., "resource": ...}`` of an ASHA or Hyperband job: its rung (its generation) and the resource
    it trains to (None for a job that is no configuration of the search, which a log Schedy wrote never has)."""
    if job.member is None or job.generation is None:
        return {"rung": job.generation, "resource": None}
    return {"rung": job.generation, "resource": config.resource_of(job.member, job.generation)}
