"""Audit for people: the moments they name, and what each event of a log did, in words.

Parsing a moment (``as_of``) and printing times and values need the
calendar, so they live here, outside the pure core; the views themselves
(prefixes, incarnations, job times) are :mod:`schedy.core.audit`'s and are
re-exported here. Times are shown in UTC.
"""

import json
import math
from datetime import datetime, timezone
from typing import NamedTuple

from .core import events as ev
from .core import values
from .core.audit import FINISHED, JobTimes, about_job, commits_until, incarnation, job_rows, job_times


class AsOf(NamedTuple):
    """A moment of a log: after commit ``version``, or after the last commit stamped at or before ``time``."""

    version: int | None = None
    time: float | None = None

    def __str__(self):
        return f"commit {self.version}" if self.version is not None else f"{utc(self.time)}"


def as_of_point(value):
    """Parse a moment: an int is a commit version; a float, datetime or ISO 8601 string is a time.

    A string of digits is a version. A datetime or string without a time zone
    is taken as UTC (logs are written on machines in many time zones).
    Raise TypeError or ValueError naming the value if it is neither.
    """
    if isinstance(value, bool):
        raise TypeError(f"as_of must be a commit version (int) or a time, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit():
            value = int(text)
        else:
            try:
                value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
            except ValueError:
                raise ValueError(
                    f"as_of must be a commit version or an ISO 8601 time such as 2026-11-29T18:05:00Z, got {value!r}"
                ) from None
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"as_of: commit versions start at 1, got {value}")
        return AsOf(version=value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return AsOf(time=value.timestamp())
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"as_of: a time must be finite, got {value!r}")
        return AsOf(time=value)
    raise TypeError(
        f"as_of must be a commit version (int) or a time (float, datetime or ISO 8601 string), "
        f"got {type(value).__name__} {value!r}"
    )


def utc(t):
    """``t`` (seconds since the epoch) as an ISO 8601 UTC time with milliseconds, e.g. 2026-11-29T18:05:00.123Z.

    A time no calendar date can hold (a hand-written log may say anything)
    is shown as the number it is, so that a history can always be printed.
    """
    try:
        return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):
        return f"{t!r} (seconds since the epoch)"


def _escape(ch):
    code = ord(ch)
    if code > 0xFFFF:  # JSON spells it as a surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def show(value):
    """A log-form value as compact text for people: JSON, with NaN and Infinity spelled out.

    Characters that are not printable (line and paragraph separators, C1
    controls...) are escaped too, so the text stays on one line and cannot
    drive a terminal.
    """
    text = json.dumps(values.decode(value), separators=(", ", ": "), ensure_ascii=False, allow_nan=True)
    return text if text.isprintable() else "".join(c if c.isprintable() else _escape(c) for c in text)


def label(text):
    """A name from the log (worker, hyperparameter...) as it is if it is printable, else as a Python literal.

    So a name cannot break a line of output or send control sequences to a terminal.
    """
    return "None" if text is None else text if text.isprintable() else repr(text)


def _mapping(m):
    return ", ".join(f"{label(k)}={show(v)}" for k, v in m.items()) if m else "none"


def describe(event):
    """One line saying what ``event`` did, for people (``schedy history``)."""
    kind, job = event["type"], event.get("job")
    if kind == ev.EXPERIMENT_CREATED:
        return (
            f"experiment {event['name']!r} created: {event['kind']}, status {event['status']}, "
            f"seed {event['seed']}, lease {event.get('lease', ev.DEFAULT_LEASE):g} s"
        )
    if kind == ev.EXPERIMENT_UPDATED:
        changes = [f"status {event['status']}"] if "status" in event else []
        changes += [f"lease {event['lease']:g} s"] if "lease" in event else []
        changes += ["scheduler parameters changed"] if "params" in event else []
        return "experiment updated: " + (", ".join(changes) or "nothing")
    if kind == ev.EXPERIMENT_DELETED:
        return "experiment deleted"
    if kind == ev.JOB_ADDED:
        origin = ""
        if event.get("generation") is not None:
            origin = f", generation {event['generation']}"
            origin += f" from job {event['parent']}" if event.get("parent") is not None else ""
            origin += f", member {event['member']}" if event.get("member") is not None else ""
        results = f"; results {_mapping(event['results'])}" if event["results"] else ""
        return f"job {job} added ({event['status']}{origin}): {_mapping(event['hyperparameters'])}{results}"
    if kind == ev.JOB_CLAIMED:
        until = f" until {utc(event['lease_until'])}" if event.get("lease_until") is not None else ""
        return f"job {job} claimed by {label(event['worker'])}{until}"
    if kind == ev.JOB_HEARTBEAT:
        return f"job {job} lease renewed by {label(event['worker'])} until {utc(event['lease_until'])}"
    if kind == ev.JOB_RELEASED:
        results = f"; results {_mapping(event['results'])}" if event["results"] else ""
        return f"job {job} released by {label(event['worker'])}: back to the front of the queue{results}"
    if kind == ev.JOB_LEASE_EXPIRED:
        return f"job {job}: lease of {label(event.get('worker'))} expired; job {event['status']}"
    if kind == ev.JOB_UPDATED:
        changes = [f"status {event['status']}"] if "status" in event else []
        changes += [f"hyperparameters {_mapping(event['hyperparameters'])}"] if "hyperparameters" in event else []
        changes += [f"results {_mapping(event['results'])}"] if "results" in event else []
        return f"job {job} updated: " + ("; ".join(changes) or "nothing")
    if kind == ev.JOB_DELETED:
        return f"job {job} deleted"
    return f"{kind} event"


__all__ = [
    "AsOf",
    "as_of_point",
    "utc",
    "show",
    "label",
    "describe",  # and, from schedy.core.audit:
    "FINISHED",
    "JobTimes",
    "about_job",
    "commits_until",
    "incarnation",
    "job_rows",
    "job_times",
]
