"""Invariant checks over any sequence of commits (pure; used by tests and ``schedy verify``)."""

from typing import NamedTuple

from . import events as ev


class DoubleClaim(NamedTuple):
    """A job claimed at ``version`` by ``worker`` while ``holder`` still held it."""

    version: int
    job_id: str
    holder: str
    worker: str


def find_double_claims(commits):
    """Return every claim made while another claim on the same job was unreleased.

    A claim is released by a status change away from RUNNING, by the expiry of
    its lease, by its holder giving the job back (``JobReleased``), by the
    deletion of the job, or by a new incarnation of the experiment.
    """
    holders, found = {}, []
    for c in commits:
        for e in c.events:
            kind = e["type"]
            if kind == ev.JOB_CLAIMED:
                holder = holders.get(e["job"])
                if holder is not None:
                    found.append(DoubleClaim(c.version, e["job"], holder, e["worker"]))
                holders[e["job"]] = e["worker"]
            elif (
                kind == ev.JOB_UPDATED
                and e.get("status", ev.RUNNING) != ev.RUNNING
                or kind in (ev.JOB_DELETED, ev.JOB_LEASE_EXPIRED, ev.JOB_RELEASED)
            ):
                holders.pop(e["job"], None)
            elif kind == ev.EXPERIMENT_CREATED:
                holders.clear()
    return found


class BackwardsTime(NamedTuple):
    """Commit ``version`` by ``worker`` is stamped ``seconds`` before commit ``after`` by ``after_worker``."""

    version: int
    worker: str
    after: int
    after_worker: str
    seconds: float


def find_backwards_times(commits, tolerance):
    """Return the commits stamped more than ``tolerance`` seconds before an earlier commit, worst first.

    Commits are stamped by their writers' clocks; a log whose times run backwards by more than a lease was
    written by machines whose clocks disagree that much. Leases do not rely on those clocks
    (:mod:`schedy.core.leases`), but the times people read do (history, ``as_of`` a time).
    """
    found, latest = [], None  # latest: the commit with the latest time so far
    for c in commits:
        if type(c.time) not in (int, float):
            continue
        if latest is not None and latest.time - c.time > tolerance:
            found.append(BackwardsTime(c.version, c.worker, latest.version, latest.worker, latest.time - c.time))
        if latest is None or c.time > latest.time:
            latest = c
    return sorted(found, key=lambda b: -b.seconds)
