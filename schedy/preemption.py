"""A worker told to stop (preempted) gives its job back instead of losing it.

Clusters stop workers with a signal first: Slurm sends SIGTERM at a preemption, ``scancel`` or the time
limit (and the signal ``--signal`` names before it), Kubernetes and spot instances SIGTERM. Call
:func:`release_on_signals` once at the start of a worker: the first such signal raises
:class:`schedy.errors.Preempted` in the main thread, and ``with job:`` gives the job back
(:meth:`schedy.Job.release`): it goes to the front of the queue with the results reported so far, for
another worker to take at once. Training code that wants to save a checkpoint in the grace period catches
Preempted, saves, reports the checkpoint in ``job.results`` and raises it again; :func:`stop_requested` says
whether (and by which signal) the worker was told to stop. A signal that comes while ``next_job()`` claims a
job waits until the claim has ended; that job is then given back and Preempted raised (:class:`claiming`).
"""

import signal
import threading
from types import TracebackType

from .errors import Preempted

DEFAULT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

_received: list[str] = []  # the names of the signals received, in order
_claiming = 0  # how many claims the main thread is inside (see claiming())


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
    name = signal.Signals(signum).name
    _received.append(name)
    # Once: a second signal during the release must not interrupt the release. And not in the middle of a
    # claim, where the job could be claimed in the log yet never reach a `with` block to be given back: the
    # claim's end raises it (claiming()).
    if len(_received) == 1 and not _claiming:
        raise Preempted(_message(name))


def _message(name):
    return f"the worker was told to stop ({name})"


class claiming:
    """Hold a stop signal that comes while the main thread claims a job until the claim has ended.

    ``with claiming() as stop:`` around the claim; then if ``stop.requested``, give back the job claimed and
    raise ``stop.preempted()``. A claim that raised instead (no job to hand out, say) raises Preempted from
    its error at the end of the block. Other threads' claims hold nothing: signals reach the main thread only.
    """

    def __enter__(self) -> "claiming":
        global _claiming
        self._main = threading.current_thread() is threading.main_thread()
        self._before = len(_received)
        if self._main:
            _claiming += 1
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        global _claiming
        if self._main:
            _claiming -= 1
        if exc is not None and self.requested and not isinstance(exc, Preempted):
            raise self.preempted() from exc

    @property
    def requested(self) -> bool:
        """Whether the first stop signal came during the claim (it was held, not raised)."""
        return self._main and self._before == 0 and len(_received) > 0

    def preempted(self) -> Preempted:
        return Preempted(_message(_received[0]))
