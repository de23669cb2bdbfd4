"""Snapshots: the folded state of a stream at one commit, as one checksummed JSON line.

A snapshot is an optimisation only: opening a stream from its newest
snapshot plus the commits after it must give the state folding from commit 1
gives. The line has the same CRC tail as a commit (see
:mod:`schedy.core.codec`); ``cursor`` is the store's position right after the
snapshot's commit and ``commit_crc`` that commit's own CRC, so a reader can
check that the log still holds the commit the snapshot was taken at.
"""

from itertools import repeat
from operator import itemgetter

import orjson
from pyrsistent import pmap, pvector

from .codec import BadRecord, check_seal, seal
from .events import DEFAULT_LEASE, EXPERIMENT_STATUSES, FORMAT, JOB_STATUSES
from .jobtable import JobTable
from .schedulers import scheduler
from .state import ExperimentState, JobState

JOBS_PER_COMMIT = 16
"""A snapshot is taken at most every (number of jobs / JOBS_PER_COMMIT) commits (see :func:`due`)."""


def interval(state, every):
    """Commits between two snapshots of ``state``: ``every``, doubled until it reaches jobs / JOBS_PER_COMMIT.

    Writing a snapshot costs time in proportion to the number of jobs, so a
    fixed interval would make each commit of a large experiment slower; this
    one keeps that cost per commit bounded, and the commits replayed after a
    snapshot below a sixteenth of the jobs (less work than reading the
    snapshot). Powers of two keep it a function of the state alone: every
    writer agrees on which commits are followed by a snapshot.
    """
    n = every
    while n * JOBS_PER_COMMIT < len(state.jobs):
        n *= 2
    return n


def due(state, every):
    """True if a snapshot should follow the commit that made ``state``."""
    return state.version % interval(state, every) == 0


def encode_snapshot(state, cursor, commit_crc, memo=None):
    """Return the bytes (newline included) of a snapshot of ``state``.

    ``memo``: a dict the caller keeps from one snapshot of a stream to the
    next. The jobs of each block of the job table are encoded once and kept
    there, and later snapshots reuse them while the block is unchanged (blocks
    are immutable and shared between versions). The bytes are the same with
    or without it.
    """
    body = {
        "format": FORMAT,
        "version": state.version,
        "cursor": cursor,
        "commit_crc": commit_crc,
        "experiment": [
            state.name,
            state.kind,
            state.params,
            state.status,
            state.seed,
            state.deleted,
            state.next_number,
            state.queue_head,
            state.next_seq,
            state.version,
            state.created,
        ],
        "jobs": _columns(state.jobs, {} if memo is None else memo),
        "queue": [list(entry) for entry in state.queue],
        "members": [[m, list(ids)] for m, ids in sorted(state.members.items())],
        "lease": state.lease,
        "claims": sorted([j, until] for j, until in state.claims.items()),
    }
    return seal(body)


def _columns(table, memo):
    """The jobs as one array per JobState field (far fewer JSON arrays to write and read than one per job).

    Each array is the concatenation of the blocks' parts, in job order; ``memo`` maps ``id(block)`` to
    ``(block, parts)`` and is left holding the blocks of ``table`` only.
    """
    parts, kept = [], {}
    for block in table.blocks():
        hit = memo.get(id(block))
        if hit is None or hit[0] is not block:  # holding the block keeps its id from being reused
            hit = (block, _block_parts(block))
        kept[id(block)] = hit
        parts.append(hit[1])
    memo.clear()
    memo.update(kept)
    return {field: orjson.Fragment(_array(p[i] for p in parts)) for i, field in enumerate(JobState._fields)}


def _array(items):
    """``[a,b,...]`` from the JSON of the items, in one copy (a column of 100,000 jobs is megabytes)."""
    pieces = [b"["]
    for item in items:
        pieces += (item, b",")
    pieces[-1] = b"]" if len(pieces) > 1 else b"[]"
    return b"".join(pieces)


_number = itemgetter(JobState._fields.index("number"))  # at C speed: a block's sort was a third of its encoding


def _block_parts(block):
    """The JSON of each JobState field of a block's jobs, in job order, without the array's brackets."""
    columns = zip(*sorted(block.values(), key=_number))
    return tuple(orjson.dumps(column)[1:-1] for column in columns)


def decode_snapshot(data):
    """Return ``(state, cursor, commit_crc)`` from snapshot bytes; raise BadRecord if they are damaged."""
    line = data.rstrip(b"\n")
    check_seal(line)
    try:
        d = orjson.loads(line)
        if d["format"] > FORMAT:
            raise BadRecord(f"the snapshot has format {d['format']}, newer than this Schedy's {FORMAT}")
        (name, kind, params, status, seed, deleted, next_number, queue_head, next_seq, version, created) = d[
            "experiment"
        ]
        jobs = JobTable.of_jobs(_jobs(d["jobs"]), checked=True)
        state = ExperimentState(
            name=name,
            kind=kind,
            params=params,
            status=status,
            seed=seed,
            deleted=deleted,
            jobs=jobs,
            next_number=next_number,
            queue=pvector(tuple(e) for e in d["queue"]),
            queue_head=queue_head,
            next_seq=next_seq,
            version=version,
            created=created,
            members=pmap({m: pvector(ids) for m, ids in d["members"]}),
            # Snapshots taken before leases existed have neither field: the default lease, no leased claim.
            lease=float(d.get("lease", DEFAULT_LEASE)),
            claims=JobTable.of(d.get("claims", [])),
        )
        if state.version != d["version"]:
            raise BadRecord("the snapshot's version does not match its state")
        cursor, crc = d["cursor"], d["commit_crc"]
        if type(cursor) is not int or cursor < 0 or type(crc) is not str or len(crc) != 8:
            raise BadRecord("the snapshot's cursor or commit CRC is malformed")
        _check_state(state)
        return state, cursor, crc
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, BadRecord):
            raise
        raise BadRecord(f"the snapshot is not a valid state ({type(e).__name__}: {e})") from None


_OPT_INT, _OPT_STR, _OPT_NUM, _OPT_DICT = (
    (int, type(None)),
    (str, type(None)),
    (int, float, type(None)),
    (dict, type(None)),
)
_JOB_TYPES = (
    str,
    int,
    str,
    dict,
    dict,
    _OPT_INT,
    _OPT_STR,
    _OPT_STR,
    int,
    int,
    _OPT_NUM,
    _OPT_INT,
    _OPT_INT,
    _OPT_DICT,
    _OPT_NUM,
)


_JOB_SETS = [frozenset(t) if isinstance(t, tuple) else frozenset((t,)) for t in _JOB_TYPES]


def _jobs(stored):
    """The JobStates of a snapshot's jobs; raise BadRecord unless every field has the type the fold gives it.

    ``stored`` is one array per field (``{"job_id": [...], ...}``), or, as snapshots written before
    that were, one array per job. Checked column by column with C-speed builtins.
    """
    if type(stored) is dict:
        if (
            set(stored) != set(JobState._fields)
            or not all(type(c) is list for c in stored.values())
            or len({len(c) for c in stored.values()}) > 1
        ):
            raise BadRecord("the snapshot's job columns are malformed")
        columns = [stored[f] for f in JobState._fields]
        # Rows as zip builds them, made JobStates at C speed (JobState(*row) costs twice as much at 100,000 jobs).
        jobs = list(map(tuple.__new__, repeat(JobState), zip(*columns)))
    else:
        if type(stored) is not list or not set(map(type, stored)) <= {list}:
            raise BadRecord("the snapshot's jobs are not a list of rows")
        # Rows written before the last fields existed are shorter: JobState fills in the defaults.
        jobs = (
            list(map(JobState._make, stored))
            if set(map(len, stored)) <= {len(JobState._fields)}
            else [JobState(*row) for row in stored]
        )
        columns = list(zip(*jobs)) if jobs else []
    if jobs:
        # A bool is never an int here: type() tells them apart.
        if not all(set(map(type, col)) <= allowed for col, allowed in zip(columns, _JOB_SETS)):
            raise BadRecord("the snapshot holds a job field of the wrong type")
        ids, numbers, statuses = columns[0], columns[1], columns[2]
        if not set(statuses) <= set(JOB_STATUSES):
            raise BadRecord("the snapshot holds an unknown job status")
        if list(map(str, numbers)) != list(ids) or len(set(ids)) != len(ids):
            raise BadRecord("the snapshot's job ids are not their numbers, each once")
    return jobs


def _check_state(state):
    """Raise BadRecord unless every field of a decoded state has the type the fold gives it."""
    ok = (
        type(state.name) is str
        and type(state.params) is dict
        and type(state.seed) is int
        and type(state.deleted) is bool
        and state.status in EXPERIMENT_STATUSES
        and all(
            type(x) is int for x in (state.next_number, state.queue_head, state.next_seq, state.version, state.created)
        )
        # Ranges the fold relies on: an index into the queue, counters that only grow from their start.
        and 0 <= state.queue_head <= len(state.queue)
        and state.next_seq >= 0
        and state.next_number >= 1
        and 1 <= state.created <= state.version
        and all(type(e) is tuple and len(e) == 2 and type(e[0]) is int and type(e[1]) is str for e in state.queue)
        and all(type(m) is int and all(type(j) is str for j in ids) for m, ids in state.members.items())
        and all(type(j) is str and type(t) in (int, float) for j, t in state.claims.items())
    )
    if not ok:
        raise BadRecord("the snapshot holds a field of the wrong type")
    try:
        scheduler(state.kind).check_params(state.params)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise BadRecord(f"the snapshot's experiment definition is invalid ({e})") from None


def commit_crc(line):
    """The CRC field (8 hex digits) of an encoded commit line."""
    return line.rstrip(b"\n")[-10:-2].decode("ascii")
