"""Exceptions raised by Schedy.

Every error Schedy raises on purpose derives from :class:`SchedyError`, except
bad arguments, which raise the built-in ``ValueError`` or ``TypeError`` (before
anything is written).
"""

from .core.outcomes import Finished, Waiting


class SchedyError(Exception):
    """Base class of Schedy's own errors."""


class NoJobError(SchedyError):
    """``next_job()`` has nothing to hand out, or the experiment is DONE.

    ``outcome`` is the decision's reason as a value (see
    :mod:`schedy.core.outcomes`): ``finished`` is True when no job will ever
    come (the experiment is DONE); ``waiting_for`` is the
    :class:`~schedy.core.outcomes.Waiting` value when jobs will come once
    running ones finish (ask again later), else None.
    """

    def __init__(self, message, outcome=None):
        super().__init__(message)
        self.outcome = outcome

    @property
    def finished(self):
        """True if the experiment is DONE: no job will ever be handed out (unless someone sets it RUNNING)."""
        return isinstance(self.outcome, Finished)

    @property
    def waiting_for(self):
        """The ``Waiting`` outcome (running jobs, and the generation a synchronous population waits for), or None."""
        return self.outcome if isinstance(self.outcome, Waiting) else None


class ResourceExistsError(SchedyError):
    """An experiment of that name already exists."""


class UnsafeUpdateError(SchedyError):
    """A safe write was refused: the job changed in the log since this object read it."""


class ResourceNotFoundError(SchedyError, LookupError):
    """Base class for an unknown experiment or job."""


class ExperimentNotFoundError(ResourceNotFoundError):
    """No experiment of that name exists (or it was deleted)."""


class JobNotFoundError(ResourceNotFoundError):
    """No job with that id exists in the experiment (or it was deleted)."""


class DatabaseError(SchedyError):
    """The database location cannot be used (for example, it is a regular file)."""


class StoreError(DatabaseError):
    """The object store failed an operation for good: a transient failure that outlasted the retries, or a refusal.

    The message is one line naming the operation and the object; the store's own exception is the
    ``__cause__``. A write whose outcome stayed unknown says so: it may still appear in the log.
    """


class CorruptLogError(SchedyError):
    """A commit in the log is damaged or out of sequence; the message names the experiment and the commit."""


class UnsupportedFormatError(CorruptLogError):
    """The log was written by a newer version of Schedy in a format this version cannot read."""


class ConflictError(SchedyError):
    """An append kept losing the race for the next commit for minutes (see ``stream.GIVE_UP_AFTER``); nothing was written."""


class ReadOnlyError(SchedyError):
    """A write through an experiment opened ``as_of`` a past moment: such a view of the log cannot change it."""
