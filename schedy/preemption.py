"""A worker told to stop (preempted) gives its job back instead of losing it.

Clusters stop workers with a signal first: Slurm sends SIGTERM at a preemption, ``scancel`` or the time
limit (and the signal ``--signal`` names before it), Kubernetes and spot instances SIGTERM. Call
:func:`release_on_signals` once at the start of a worker: the first such signal raises
:class:`schedy.errors.Preempted` in the main thread, and ``with job:`` gives the job back
(:meth:`schedy.Job.release`): it goes to the front of the queue with the results reported so far, for
another worker to take at once. Training code that wants to save a checkpoint in the grace period catches
Preempted, saves, reports the checkpoint in ``job.results`` and raises it again; :func:`stop_requested` says
whether (and by which signal) the worker was told to stop. A signal that comes while ``next_job()`` claims a
job, or while ``with job:`` starts, waits until that step has ended; the job is then given back and Preempted
raised (:class:`claiming`).
"""

import signal
import threading
from types import TracebackType
from typing import Any

from .errors import Preempted

DEFAULT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

_received: list[str] = []  # the names of the signals received, in order
_claiming = 0  # how many claims the main thread is inside (see claiming)
_pending = False  # a stop signal held by a claim, not raised yet


def release_on_signals(signals=DEFAULT_SIGNALS):
    """Make each of ``signals`` raise :class:`~schedy.errors.Preempted` in the main thread; return the handlers
    it replaced (signal -> handler). Only the main thread may call it (Python's rule for signal handlers)."""
    previous = {}
    for s in signals:
        previous[s] = signal.signal(s, _preempt)
    return previous


def stop_requested():
    """The name of the first stopping signal this process received (``"SIGTERM"``...), or None."""
    return _received[0] if _received else None


def _preempt(signum, frame):
    global _pending
    name = signal.Signals(signum).name
    _received.append(name)
    if len(_received) > 1:  # once: a second signal during the release must not interrupt the release
        return
    if _claiming:  # a job claimed in the log now would never reach a `with` block: the claim's end raises it
        _pending = True
        return
    raise Preempted(_message(name))


def _message(name):
    return f"the worker was told to stop ({name})"


class claiming:
    """Hold a stop signal that comes while the main thread claims a job until the claim has ended.

    The block sets ``job`` to the job it claimed. If a stop signal came meanwhile, the end of the block gives
    that job back (``job._give_back()``) and raises Preempted, from the claim's error if it raised one (no
    job to hand out, say). Other threads' claims hold nothing: signals reach the main thread only.
    """

    def __init__(self) -> None:
        self.job: Any = None

    def __enter__(self) -> "claiming":
        global _claiming
        self._main = threading.current_thread() is threading.main_thread()
        if self._main:
            _claiming += 1
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        global _claiming, _pending
        try:
            if not (self._main and _pending and _claiming == 1) or isinstance(exc, Preempted):
                return  # no stop held, or an inner claim: the outermost one takes it up
            _pending = False
            if self.job is not None:
                self.job._give_back()
            raise Preempted(_message(_received[0])) from exc
        finally:
            if self._main:
                _claiming -= 1
