"""A worker told to stop (preempted) gives its job back instead of losing it.

Clusters stop workers with a signal first: Slurm sends SIGTERM at a preemption, ``scancel`` or the time
limit (and the signal ``--signal`` names before it), Kubernetes and spot instances SIGTERM. Call
:func:`release_on_signals` once at the start of a worker: the first such signal raises
:class:`schedy.errors.Preempted` in the main thread, and ``with job:`` gives the job back
(:meth:`schedy.Job.release`): it goes to the front of the queue with the results reported so far, for
another worker to take at once. Training code that wants to save a checkpoint in the grace period catches
Preempted, saves, reports the checkpoint in ``job.results`` and raises it again; :func:`stop_requested` says
whether (and by which signal) the worker was told to stop.
"""

import signal

from .errors import Preempted

DEFAULT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

_received: list[str] = []  # the names of the signals received, in order


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
    if len(_received) == 1:  # once: a second signal during the release must not interrupt the release
        raise Preempted(f"the worker was told to stop ({name})")
