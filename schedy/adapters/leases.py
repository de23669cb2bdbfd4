"""Renewing the leases of the jobs in ``with`` blocks: one daemon thread per process for all of them.

A thread per job cost more than the two commits of a short job (starting and
joining a thread waits on the scheduler twice), so jobs register here instead,
and a single thread renews each one every quarter of its experiment's lease.
"""

import logging
import os
import threading
import time

from ..errors import ExperimentNotFoundError, JobNotFoundError, UnsafeUpdateError

log = logging.getLogger("schedy")
LOST = (UnsafeUpdateError, JobNotFoundError, ExperimentNotFoundError)
IDLE_WAKE = 30.0  # seconds: a quarter of the default lease


class LeaseKeeper:
    """Renews the lease of every registered job until it is released or lost."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._forget()

    def _forget(self):
        # Also run in a forked child: the parent's condition may be held by a thread the fork did not copy,
        # and the parent's thread and jobs are not the child's.
        self._cond = threading.Condition()
        self._due = {}  # job -> clock reading of its next renewal
        self._thread = None
        self._wake_at = float("inf")  # when the thread wakes up next unless notified

    def hold(self, job):
        """Start renewing ``job`` (its ``_renew()`` raises one of LOST when the worker no longer holds it)."""
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="schedy-leases", daemon=True)
                self._thread.start()
            due = self._due[job] = self._clock() + _interval(job)
            if due < self._wake_at:  # waking the thread for nothing costs a worker as much as a commit
                self._cond.notify()

    def release(self, job):
        """Stop renewing ``job``; once this returns, no renewal of it is running or will start."""
        if not hasattr(job, "_lease_lock"):
            return  # never held
        with job._lease_lock, self._cond:
            self._due.pop(job, None)

    def _run(self):
        while True:
            with self._cond:
                now = self._clock()
                due = [j for j, t in self._due.items() if t <= now]
                if not due:
                    # With no job, still wake up now and then: a job held next then needs no notify (a worker
                    # alternates between holding one job and none, thousands of times a second).
                    self._wake_at = min(self._due.values()) if self._due else now + IDLE_WAKE
                    self._cond.wait(self._wake_at - now)
                    continue
                self._wake_at = now
            for job in due:
                self._renew(job)

    def _renew(self, job):
        with job._lease_lock:
            with self._cond:
                if job not in self._due:
                    return  # released while this round was being prepared
            try:
                job._renew()
            except LOST as e:
                job._lease_lost = e
                with self._cond:
                    self._due.pop(job, None)
                log.warning("job %r: lease lost (%s); its final report will be refused", job.job_id, e)
                return
            except Exception as e:  # noqa: BLE001 - a failed renewal is retried at the next beat
                log.warning("job %r: could not renew its lease (%s)", job.job_id, e)
            with self._cond:
                if job in self._due:
                    # After the renewal, which read the log: the lease may have just been changed.
                    self._due[job] = self._clock() + _interval(job)


def _interval(job):
    # Read the lease at every beat: an operator may shorten it while the job runs.
    return min(job.experiment._view.state.lease / 4, threading.TIMEOUT_MAX)


keeper = LeaseKeeper()
os.register_at_fork(after_in_child=keeper._forget)
