"""Where worker processes of a test wait for each other (imported by the worker scripts beside it)."""

import os
import sys
import time
from pathlib import Path


def meet(directory, worker, workers, timeout=300):
    """Leave ``worker``'s mark in ``directory`` and return once ``workers`` workers have left theirs.

    A worker calls it holding its first job: then every worker runs a job while the others run theirs, however
    fast the decisions are (a fast one could otherwise drain a whole search before the others ask).
    """
    Path(directory, worker).touch()
    deadline = time.monotonic() + timeout
    while len(os.listdir(directory)) < int(workers):
        if time.monotonic() > deadline:
            sys.exit(f"{worker}: the other workers never took a job")
        time.sleep(0.01)
