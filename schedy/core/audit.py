"""Views of an experiment's history, computed from its commits (pure).

Which commits a moment names (:func:`as_of_point`, :func:`commits_until`),
which commits concern a job (:func:`about_job`), what happened to each job and
when (:func:`job_rows`), and a one-line description of each event for people
(:func:`describe`). Times are the commit times written in the log, in seconds
since the Unix epoch; they are shown in UTC.
"""

import json
import math
from datetime import datetime, timezone
from typing import NamedTuple, Optional

from . import events as ev
from . import values

FINISHED = (ev.DONE, ev.CRASHED, ev.PRUNED)


class AsOf(NamedTuple):
    """A moment of a log: after commit ``version``, or after the last commit stamped at or before ``time``."""

    version: Optional[int] = None
    time: Optional[float] = None

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
                raise ValueError(f"as_of must be a commit version or an ISO 8601 time such as "
                                 f"2026-11-29T18:05:00Z, got {value!r}") from None
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
    raise TypeError(f"as_of must be a commit version (int) or a time (float, datetime or ISO 8601 string), "
                    f"got {type(value).__name__} {value!r}")


def commits_until(commits, point):
    """The commits up to ``point`` (an :class:`AsOf`): a prefix of the log.

    By time, the prefix stops at the first commit stamped after the time, so
    it is always a state the log really went through, even if machines'
    clocks disagreed. Raise ValueError if a version is beyond the log's end.
    """
    commits = list(commits)
    if point.version is not None:
        if point.version > len(commits):
            raise ValueError(f"as_of: the log has {len(commits)} commits, there is no commit {point.version}")
        return commits[:point.version]
    n = 0
    while n < len(commits) and commits[n].time <= point.time:
        n += 1
    return commits[:n]


def incarnation(commits, created):
    """The commits of the incarnation created at commit ``created``: from it up to the next re-creation."""
    out = []
    for c in commits:
        if c.version < created:
            continue
        if c.version > created and any(e["type"] == ev.EXPERIMENT_CREATED for e in c.events):
            break
        out.append(c)
    return out


def about_job(commit, job_id):
    """``commit`` with only its events about job ``job_id``, or None if it has none."""
    mine = [e for e in commit.events if e.get("job") == job_id]
    return commit._replace(events=mine) if mine else None


class JobTimes(NamedTuple):
    """When things happened to one job, from the log (times in seconds since the epoch)."""

    added_at: float
    claimed_at: Optional[float] = None  # the last claim
    claimed_by: Optional[str] = None  # the worker of the last claim
    finished_at: Optional[float] = None  # when it last became DONE, CRASHED or PRUNED
    claims: int = 0
    lease_expiries: int = 0


def job_times(commits):
    """``{job_id: JobTimes}`` for the jobs of the last incarnation in ``commits``."""
    times = {}
    for c in commits:
        for e in c.events:
            kind = e["type"]
            if kind == ev.EXPERIMENT_CREATED:
                times = {}
            elif kind == ev.JOB_ADDED:
                finished = c.time if e["status"] in FINISHED else None
                times[e["job"]] = JobTimes(c.time, finished_at=finished)
            elif kind == ev.JOB_DELETED:
                times.pop(e["job"], None)
            elif e.get("job") in times:
                t = times[e["job"]]
                if kind == ev.JOB_CLAIMED:
                    times[e["job"]] = t._replace(claimed_at=c.time, claimed_by=e["worker"], claims=t.claims + 1,
                                                 finished_at=None)
                elif kind == ev.JOB_UPDATED and "status" in e:
                    times[e["job"]] = t._replace(finished_at=c.time if e["status"] in FINISHED else None)
                elif kind == ev.JOB_LEASE_EXPIRED:
                    times[e["job"]] = t._replace(lease_expiries=t.lease_expiries + 1,
                                                 finished_at=c.time if e["status"] in FINISHED else None)
    return times


def job_rows(state, commits):
    """One dict per job of ``state``, in the order jobs were added, with user values (not log form).

    Keys: job_id, status, generation, parent_id, member, the JobTimes
    fields, hyperparameters and results (dicts).
    """
    times = job_times(commits)
    rows = []
    for job in sorted(state.jobs.values(), key=lambda j: j.number):
        t = times.get(job.job_id) or JobTimes(None)
        rows.append({"job_id": job.job_id, "status": job.status, "generation": job.generation,
                     "parent_id": job.parent, "member": job.member, **t._asdict(),
                     "hyperparameters": values.decode_mapping(job.hyperparameters),
                     "results": values.decode_mapping(job.results)})
    return rows


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
        return (f"experiment {event['name']!r} created: {event['kind']}, status {event['status']}, "
                f"seed {event['seed']}, lease {event.get('lease', ev.DEFAULT_LEASE):g} s")
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
