"""Time that passes only when a test says so, for ``SchedyDB(clock=..., monotonic=...)``; and waiting on events.

A lease lapses once the deciding worker has watched a claim go a whole lease unrenewed on its monotonic clock
(docs/crash-recovery.md, *Clocks*). A test that gives its databases a :class:`FakeClock` makes that happen
with ``clock.advance(lease)``, on a slow machine exactly as on a fast one, instead of sleeping a real lease.

A process keeps one record of what it has seen per log and monotonic clock (two SchedyDB objects given the
same function share it, as two SchedyDB objects of one process do). :meth:`FakeClock.watcher` returns
another function reading the same time, so that a database given it times claims from its own first
sightings, as a separate process would.
"""

import time


class FakeClock:
    """A clock that stands still until :meth:`advance` (whole seconds by default, so sums stay exact)."""

    def __init__(self, start=1_000_000.0):
        self.now = float(start)

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds
        return self.now

    def watcher(self):
        """Another function returning this clock's time: a database given it has its own record of sightings."""
        return lambda: self.now


def wait_until(predicate, timeout=60.0, what="the condition"):
    """Poll ``predicate()`` until it is true; fail after ``timeout`` seconds.

    For things a thread or a process does in its own time (a heartbeat, a line of output): the timeout is
    only there so that a broken build fails instead of hanging, and a slow machine just waits longer.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.005)
