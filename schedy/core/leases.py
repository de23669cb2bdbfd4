"""When a lease lapses, judged by the deciding worker's own clock.

Writers on different machines stamp commits with clocks that may disagree by
minutes. A claim records ``lease_until`` (its writer's time plus the lease),
but comparing that with another machine's time would let a worker whose clock
runs ahead take every live job, and keep a dead worker's job for as long as
its clock ran ahead. So a worker judges a lease by what it has *seen*: a claim
lapses when this worker has watched it go unrenewed for the length of the
lease, measured on its own monotonic clock. A renewal is anything that
changes the claim's holder, its claim time or its ``lease_until`` (a new
claim, a heartbeat, a holder's put that renews); a note another worker puts
on the job is not one, so notes on a dead worker's job never keep it.

The cost: a worker that has just opened the log has seen every claim only
now, so it waits one lease before it takes back a job whose worker died
before it started.

``lapsed_at`` is the rule for a single clock that every writer shares (the
simulation; replaying logs): a claim lapses once ``now`` passes its
``lease_until``.
"""

from typing import NamedTuple


class Sighting(NamedTuple):
    """A claim as one worker last saw it, and since when (the worker's monotonic clock)."""

    renewal: tuple  # (worker, claim time, lease_until): any renewal changes it
    since: float
    lease: float  # how long it lasts: the experiment's lease when the renewal was first seen


def observe(sightings, state, now, previous_lease=None):
    """Update ``sightings`` (job id -> Sighting) with the claims of ``state`` seen at monotonic time ``now``.

    Return the new sightings (only the jobs claimed now) and the ids of the claims this worker has seen
    unrenewed for their lease or longer, sorted. A renewal is timed by the lease in force when it was first
    seen: a change of the lease applies to renewals written after it, as the holder's heartbeat follows
    it. ``previous_lease`` is the lease as this worker saw it before ``state``: a renewal first seen
    together with a shorter lease may have been written under the longer one, and is timed by that.
    """
    seen, lapsed = {}, []
    if state is None:
        return seen, ()
    lease = state.lease if previous_lease is None else max(state.lease, previous_lease)
    for job_id, until in state.claims.items():
        job = state.jobs[job_id]
        renewal = (job.worker, job.claimed_at, until)
        old = sightings.get(job_id)
        s = old if old is not None and old.renewal == renewal else Sighting(renewal, now, lease)
        seen[job_id] = s
        if now - s.since >= s.lease:
            lapsed.append(job_id)
    return seen, tuple(sorted(lapsed))


def lapsed_at(state, now):
    """The ids of the claims whose ``lease_until`` is before ``now``, sorted (one clock shared by every writer)."""
    claims = state.claims if state is not None else None
    if now is None or not claims or min(claims.values()) >= now:
        return ()
    return tuple(sorted(j for j, until in claims.items() if until < now))
