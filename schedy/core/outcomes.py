"""What a scheduler's proposal step can conclude, as values.

:func:`schedy.core.decide.next_job` asks the experiment's scheduler for a new
job when no queued job waits; the answer is one of these. A
:class:`schedy.errors.NoJobError` carries the outcome that refused a request,
so a worker loop tells "finished" from "wait" without reading the log again.
"""

from dataclasses import dataclass

from . import events as ev


@dataclass(frozen=True)
class Proposal:
    """A new job to add and claim in the same commit: ``fields`` are its ``JobAdded`` fields.

    ``compared`` (PBT) holds the ids of the segments the member was ranked
    against, its own included; it is not written to the log.
    """

    fields: dict
    compared: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finished:
    """The experiment has nothing more to hand out, ever (it is, or now becomes, DONE); ``reason`` says why."""

    reason: str


@dataclass(frozen=True)
class Waiting:
    """Nothing to hand out until running jobs finish: ask again when one of ``jobs`` ends (or its lease lapses).

    ``generation`` is set when a synchronous population waits for every member
    to finish that generation; ``members`` are the members it waits for.
    """

    reason: str
    jobs: tuple[str, ...] = ()
    generation: int | None = None
    members: tuple[int, ...] = ()


@dataclass(frozen=True)
class Empty:
    """Nothing to hand out and nothing running will change that: only jobs added by hand would."""

    reason: str


def budget_spent(state, max_jobs):
    """``Waiting`` or ``Finished`` once ``state`` holds ``max_jobs`` jobs (a job deleted by hand no longer
    counts), or None: no limit, or not reached."""
    if max_jobs is None or len(state.jobs) < max_jobs:
        return None
    busy = tuple(j.job_id for j in state.jobs.values() if j.status in (ev.QUEUED, ev.RUNNING))
    if busy:
        return Waiting(f"its {max_jobs} jobs (max_jobs) are added and {len(busy)} still run", busy)
    return Finished(f"its {max_jobs} jobs (max_jobs) are finished")
