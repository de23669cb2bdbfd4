"""Building large structures (a 100,000-job state, its list of jobs) without the garbage collector's pauses.

The objects built while opening an experiment (parsed JSON, job records) hold
no reference cycles, yet each burst of allocations makes Python's cyclic
collector walk them again and again: it was close to half the time of opening
a large experiment. Inside ``collector_paused()`` the collector does not run;
the first thread to enter pauses it and the last to leave restores it, and a
collector that was already off stays off.
"""

import gc
import threading
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_paused = False  # whether this module turned the collector off (and so must turn it back on)


@contextmanager
def collector_paused():
    global _depth, _paused
    with _lock:
        if _depth == 0 and gc.isenabled():
            gc.disable()
            _paused = True
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _paused:
                _paused = False
                gc.enable()
