"""Asking for a job until one can be handed out: ``Experiment.next_job(wait=...)`` and ``schedy run``.

A worker may find nothing to do for now: every PBT member is training
elsewhere, a synchronous population waits for its generation to finish, or
the queue is empty while other workers' jobs run (one of them may crash, and
its job come back when its lease lapses). It then asks again, after pauses
that double from ``FIRST_PAUSE`` up to ``LONGEST_PAUSE`` seconds, with jitter
so that many waiting workers do not ask in step. It stops waiting when it
gets a job, when the experiment is finished or nothing could ever come (no
job queued or running, nothing to propose: only jobs added by hand would),
or when its time is up.
"""

import random
import time
from collections.abc import Callable

from ..core.outcomes import Waiting
from ..errors import NoJobError

FIRST_PAUSE = 0.05
LONGEST_PAUSE = 2.0


def reason_to_wait(exp, error):
    """The ``Waiting`` outcome ``error`` carries, or one for the jobs running now; None if waiting is pointless."""
    if error.finished:
        return None
    if error.waiting_for is not None:
        return error.waiting_for
    state = exp._view.state
    running = tuple(sorted(state.claims.keys(), key=lambda j: (len(j), j))) if state is not None else ()
    if running:
        return Waiting("no job is queued, and running jobs may come back if their workers stop", running)
    return None


def next_job(
    exp,
    wait,
    *,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    on_wait: Callable[[Waiting], None] | None = None,
    stop: Callable[[], bool] = lambda: False,
    rng=random,
):
    """``exp.next_job()``, asked again while there is a reason to wait (see the module), for up to ``wait`` s.

    ``wait``: True waits as long as it takes, a number of seconds at most that long. ``on_wait`` is called
    with the reason each time it changes; ``stop()`` (checked at each pause) ends the wait early. Raises the
    last NoJobError when it stops without a job.
    """
    if wait is True:
        deadline = None
    elif isinstance(wait, bool) or not isinstance(wait, (int, float)) or not wait >= 0:
        raise ValueError(f"wait must be True (as long as it takes) or a number of seconds >= 0, got {wait!r}")
    else:
        deadline = monotonic() + wait
    pause, shown = FIRST_PAUSE, None
    while True:
        try:
            return exp.next_job()
        except NoJobError as e:
            why = reason_to_wait(exp, e)
            left = None if deadline is None else deadline - monotonic()
            if why is None or stop() or (left is not None and left <= 0):
                raise
            if on_wait is not None and why != shown:
                on_wait(why)
            shown = why
            step = rng.uniform(pause / 2, pause)
            sleep(step if left is None else min(step, left))
            pause = min(2 * pause, LONGEST_PAUSE)
