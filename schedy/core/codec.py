"""Commits to bytes and back: one JSON object per line, guarded by a CRC-32.

A commit line is ``{"v":V,"t":T,"w":W,"e":[...],"crc":"xxxxxxxx"}`` followed by
``\\n``. The CRC is zlib's CRC-32 of every byte of the line before the final
18 bytes (``,"crc":"xxxxxxxx"}``), written as 8 lowercase hex digits. See
docs/log-format.md.
"""

import zlib
from typing import NamedTuple

import orjson

_TAIL = len(b',"crc":"00000000"}')
_TAIL_PREFIX = b',"crc":"'


class Commit(NamedTuple):
    """One atomic entry of an experiment's log."""

    version: int  # 1, 2, 3... consecutive within a stream
    time: float  # seconds since the Unix epoch, as the writer's clock read it
    worker: str  # who wrote it
    events: list  # event dicts, in order


class BadRecord(ValueError):
    """A line that is not a valid commit; ``reason`` says why."""


def encode_commit(commit, token=None):
    """Return the bytes of ``commit`` as one log line, newline included; raise ValueError if it is not a valid commit.

    ``token`` (a string unique to this attempt) makes the bytes of two writers' commits differ even when
    everything else is equal, so a writer can recognise its own commit by reading it back.
    """
    v, t, w, e = commit
    if type(v) is not int or v < 1 or type(t) not in (int, float) or type(w) is not str or type(e) is not list:
        raise ValueError(
            f"not a valid commit: version {v!r}, time {t!r}, worker {w!r}, events of type {type(e).__name__}"
        )
    fields = {"v": v, "t": t, "w": w, "e": e}
    if token is not None:
        fields["k"] = token
    return seal(fields)


def seal(obj):
    """Serialise the dict ``obj`` as one JSON line ending with the CRC field of its bytes, newline included."""
    data = orjson.dumps(obj)
    if len(data) < 1 << 16:
        head = data[:-1]
        return b'%s,"crc":"%08x"}\n' % (head, zlib.crc32(head))
    head = memoryview(data)[:-1]  # a snapshot of megabytes: one copy fewer
    return b"".join((head, b',"crc":"%08x"}\n' % zlib.crc32(head)))


def check_seal(line):
    """Raise BadRecord unless ``line`` (without its newline) ends with the right CRC field."""
    if len(line) <= _TAIL or line[-_TAIL:-10] != _TAIL_PREFIX or line[-2:] != b'"}':
        raise BadRecord("the line does not end with a CRC field")
    if b"%08x" % zlib.crc32(line[:-_TAIL]) != line[-10:-2]:
        raise BadRecord("the CRC does not match the content")


def decode_commit(line):
    """Parse one log line (without its newline) into a :class:`Commit`; raise BadRecord if it is damaged."""
    check_seal(line)
    try:
        d = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise BadRecord(f"the line is not valid JSON: {e}") from None
    v, t, w, events = d.get("v"), d.get("t"), d.get("w"), d.get("e")
    if (
        type(v) is not int
        or v < 1
        or type(t) not in (int, float)
        or type(w) is not str
        or type(events) is not list
        or not all(type(x) is dict and type(x.get("type")) is str for x in events)
    ):
        raise BadRecord("the line is valid JSON but not a commit")
    return Commit(v, t, w, events)
