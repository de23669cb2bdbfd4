"""Re-deciding a log: every claim a worker's ``next_job`` wrote is decided again from the state before it."""

from schedy.core import decide
from schedy.core import events as ev
from schedy.core.codec import decode_commit
from schedy.core.state import apply


def read_commits(path):
    return [decode_commit(line) for line in path.read_bytes().splitlines()]


def next_job_commits(commits, operator="simulation"):
    """``(state before, commit)`` for each commit a worker's ``next_job`` wrote: a claim (after lease expiries,
    perhaps after the job it adds), or the experiment marking itself DONE."""
    state, out = None, []
    for c in commits:
        kinds = [e["type"] for e in c.events]
        rest = [k for k in kinds if k != ev.JOB_LEASE_EXPIRED]
        by_worker = c.worker != operator
        claim = rest in ([ev.JOB_CLAIMED], [ev.JOB_ADDED, ev.JOB_CLAIMED])
        finished = rest == [ev.EXPERIMENT_UPDATED] and c.events[-1].get("status") == ev.DONE
        if by_worker and (claim or finished):
            out.append((state, c))
        state = apply(state, c, "replay")
    return out


def redecide(commits, operator="simulation"):
    """``(wrong, checked)``: the commits whose ``next_job`` decision, made again on the state before them,
    differs, as ``[(commit, events decided now)]``, and how many were decided again."""
    wrong, checked = [], 0
    for state, c in next_job_commits(commits, operator):
        d = decide.next_job(state, name=state.name, worker=c.worker, version=c.version, now=c.time)
        checked += 1
        if d.events != c.events:
            wrong.append((c, d.events))
    return wrong, checked
