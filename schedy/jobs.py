"""Jobs, under the module name of the original Schedy client (``schedy.jobs``).

``schedy.jobs.Job is schedy.Job``. Its statuses are class attributes, as in the original:
``Job.QUEUED``, ``Job.RUNNING``, ``Job.CRASHED``, ``Job.PRUNED``, ``Job.DONE``.
"""

from .adapters.api import Job

__all__ = ["Job"]
