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
    its lease, by the deletion of the job, or by a new incarnation of the
    experiment.
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
            elif (kind == ev.JOB_UPDATED and e.get("status", ev.RUNNING) != ev.RUNNING
                  or kind in (ev.JOB_DELETED, ev.JOB_LEASE_EXPIRED)):
                holders.pop(e["job"], None)
            elif kind == ev.EXPERIMENT_CREATED:
                holders.clear()
    return found
