"""Exceptions raised by Schedy.

Every error Schedy raises on purpose derives from :class:`SchedyError`, except
bad arguments, which raise the built-in ``ValueError`` or ``TypeError`` (before
anything is written).

The original Schedy client's HTTP errors (:class:`HTTPError`, :class:`ClientError`,
:class:`ClientRequestError`, :class:`AuthenticationError`, :class:`ReauthenticateError`,
:class:`UnhandledResponseError`, :class:`ServerError`) are defined too, for code ported from it, but
never raised: there is no server.
"""

from .core.outcomes import Empty, Finished, Waiting


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

    def __init__(self, message: str, outcome: Finished | Waiting | Empty | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome

    @property
    def finished(self) -> bool:
        """True if the experiment is DONE: no job will ever be handed out (unless someone sets it RUNNING)."""
        return isinstance(self.outcome, Finished)

    @property
    def waiting_for(self) -> Waiting | None:
        """The ``Waiting`` outcome (running jobs, and the generation a synchronous population waits for), or None."""
        return self.outcome if isinstance(self.outcome, Waiting) else None


class Preempted(BaseException):  # noqa: N818 - what happened, in the user's word
    """Raised in a worker told to stop (preempted, cancelled, interrupted) rather than failed.

    Raised inside ``with job:``, the job is given back unfinished (:meth:`schedy.Job.release`) instead of
    recorded CRASHED, and the exception goes on. A BaseException, as KeyboardInterrupt is, so that training
    code catching Exception does not swallow it.
    """


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
    """An append lost the race for the next commit for minutes (``stream.GIVE_UP_AFTER``); nothing was written."""


class ReadOnlyError(SchedyError):
    """A write through an experiment opened ``as_of`` a past moment: such a view of the log cannot change it."""


# -- The original client's errors ---------------------------------------------------------------
#
# The original Schedy client talked to a server over HTTP, and its errors said how a request failed.
# Schedy has no server, so nothing here ever raises these: they exist so that code ported from the
# original client, which catches them, still imports and runs, and their `except` clauses catch nothing.
# (The original's ResourceExistsError, UnsafeUpdateError and NoJobError are the classes above, which Schedy
# raises; they are not HTTPErrors here, so an `except HTTPError` clause does not catch them.)


class HTTPError(SchedyError):
    """The original client's base class for a failed request to the service. Never raised: there is no server.

    ``body`` is the server's message and ``code`` the HTTP status code, as in the original.
    """

    def __init__(self, body: object = "", code: int | None = None, *args: object) -> None:
        self.body, self.code = body, code
        text = str(body).replace("\r", "").rstrip("\n")
        if not text:
            text = "<No server message>"
        elif len(text) > 150:
            text = text[:147] + "..."
        super().__init__("HTTP Error {}:\n> {}".format(code, text.replace("\n", "\n> ")), *args)


class ClientError(HTTPError):
    """The original client's error caused by the client side. Never raised."""


class ClientRequestError(ClientError):
    """The original client's error caused by the content of a request (HTTP 4xx). Never raised."""


class AuthenticationError(ClientRequestError):
    """The original client's refused authentication (HTTP 403). Never raised: there is no account."""


class ReauthenticateError(ClientRequestError):
    """The original client's expired authentication (HTTP 401). Never raised: there is no account."""


class UnhandledResponseError(ClientError):
    """The original client's unparsable response from the service. Never raised."""


class ServerError(HTTPError):
    """The original client's server-side failure (HTTP 5xx). Never raised: there is no server."""
