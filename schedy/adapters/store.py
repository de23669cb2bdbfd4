"""The log store contract: what :class:`~.stream.StreamView` and :mod:`schedy.maintenance` ask of a store.

A log store keeps one append-only log of commits per stream (one experiment's stream, named by a key from
:func:`~schedy.adapters.naming.stream_key`), and at most a few snapshots of it. :class:`LogStore` lists every
method that the append loop and ``schedy verify`` / ``schedy repair`` call, each with one meaning on every
store; :class:`~schedy.adapters.filestore.FileLogStore` (a directory, a file per log, a lock) and
:class:`~schedy.adapters.objectstore.ObjectLogStore` (an object per commit, put-if-absent) implement it, and
``tests/stores/conformance.py`` checks that they do. A new store is a class with these methods plus one class
in ``tests/stores/test_stores.py`` (and a line in ``STORES`` of ``tests/conftest.py`` to run the whole API suite
on it).

**Cursors.** A cursor is an ``int`` whose meaning belongs to the store (a byte offset of the log file, the
version of the last commit read...). Callers never do arithmetic on one: they start from
:meth:`LogStore.initial_cursor`, keep what :meth:`LogStore.read` and :meth:`LogStore.append` return, pass it back,
compare it for equality, and write it into snapshots (hence an ``int``: it must survive JSON).

**Records.** A record is the bytes of one commit's line (:mod:`schedy.core.codec`), without its final newline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, Protocol, runtime_checkable

Cursor = int
"""A position in one stream, opaque to callers (see the module's docstring)."""

# What the next writer does with a torn last record (LogStore.fate_of_torn).
COMPLETE, CUT, LEAVE = "complete", "cut", "leave"


class Record(NamedTuple):
    """One complete record of a log, as :meth:`LogStore.scan` finds it."""

    position: Cursor
    """The cursor of a reader right after this record: what :meth:`LogStore.read` returns once it has read it, and
    what a snapshot taken at its commit holds. A snapshot at cursor ``c`` is of the record whose position is ``c``."""
    where: str
    """Where it is, for people: "line 3 (byte 412) of /db/experiments/e/log.jsonl", "s3://b/p/.../00003.json"."""
    data: bytes
    """Its bytes, without the final newline."""


class Stray(NamedTuple):
    """Something in a log's place that is not a record (readers never see it): verify reports it, repair moves it."""

    where: str
    """Where it is, for people."""
    name: str
    """The store's own name for it, passed back to :meth:`LogStore.set_aside_records`."""


class Scan(NamedTuple):
    """Everything a stream's log holds, as :meth:`LogStore.scan` finds it."""

    records: list[Record]
    """Every complete record, in the log's order (damaged ones too: nothing is decoded)."""
    torn: Record | None
    """A torn last record (bytes after the last newline: an append that never finished), or None. Its position is
    the cursor after it as it would be once completed. Readers never take it; see :meth:`LogStore.fate_of_torn`."""
    strays: list[Stray]
    """Things in the log's place that are not records."""
    numbered: bool
    """True if the store keeps each record under its commit's version (an object named after it), so that a
    record's position is the version due there: a version with no record is missing wherever it lies, and a record
    that holds another commit stands where its position says. False if records are only in order (lines of a file):
    the version due at a record is the one after the record before it."""


class StoredSnapshot(NamedTuple):
    """One snapshot of a stream, as :meth:`LogStore.snapshot_records` finds it."""

    name: str
    """The store's own name for it (a path), passed back to :meth:`LogStore.describe_snapshot` and
    :meth:`LogStore.set_aside_snapshots`."""
    data: bytes


class TornFate(NamedTuple):
    """What the next writer does with a torn last record: :data:`COMPLETE` it (it is commit ``version``), :data:`CUT`
    it off, or :data:`LEAVE` it (after a damaged record; ``version`` is then None, as for CUT)."""

    action: str
    version: int | None


class Destination(NamedTuple):
    """Where :meth:`LogStore.set_aside_records` put what it moved."""

    where: str
    """For people: the file or folder beside the log (:meth:`LogStore.damaged_destination`)."""
    offset: int | None
    """Where in ``where`` the moved bytes start, when it is a file that an earlier repair (with the same stamp)
    may have begun; None where each record keeps an object of its own."""


@runtime_checkable
class LogStore(Protocol):
    """A log store: one append-only log of commits per stream key, and its snapshots.

    The first group of methods is the append loop's (:class:`~schedy.adapters.stream.StreamView`), the second
    ``schedy verify`` and ``schedy repair``'s (:mod:`schedy.maintenance`). Every method means the same on every
    store; what differs between stores (a lock or none, bytes or objects) stays behind them.
    """

    snapshot_every: int
    """Writers snapshot the state at commits that are multiples of this (doubled as the experiment grows:
    :func:`schedy.core.snapshot.interval`). StreamView reads it; a test may change it."""

    # -- the append loop -------------------------------------------------------------------------------------

    def describe(self, key: str) -> str:
        """Where stream ``key``'s log lives, for messages. Also identifies the stream within a process."""
        ...

    def keys(self) -> list[str]:
        """The keys of every stream in the store (empty and deleted experiments included), sorted."""
        ...

    def initial_cursor(self) -> Cursor:
        """The cursor of a reader that has read nothing: :meth:`read` from it returns the whole log."""
        ...

    def read(self, key: str, cursor: Cursor) -> tuple[list[bytes], Cursor]:
        """The complete records after ``cursor``, in order, and the cursor after the last of them.

        ``([], cursor)`` when there is nothing new, or no such stream (reading creates nothing). A torn last
        record is never returned. Takes no lock, changes nothing: a read-only store can be read.
        """
        ...

    def exclusive(self, key: str, meanwhile: Callable[[], bool] | None = None) -> AbstractContextManager[Any]:
        """A context inside which :meth:`append` is called: it holds the stream's write lock, or nothing.

        A store with a lock takes it on entry (against threads and processes), and settles a torn last record
        first, so that the body reads the log as every later reader will. While it waits for another writer, it
        may call ``meanwhile()`` between tries (the caller reads the log meanwhile, and returns whether it read
        anything; it must not write). A store whose writers race with conditional writes instead returns exactly a
        :class:`contextlib.nullcontext` (StreamView tells from it that writers may race, and backs off between
        lost races) and never calls ``meanwhile``.
        """
        ...

    def append(self, key: str, cursor: Cursor, version: int, data: bytes, sync: bool = True) -> Cursor | None:
        """Append record ``data`` (commit ``version``, with its final newline) if the log ends at ``cursor``.

        Return the cursor after it, or None if another writer got there first (the log has grown past
        ``cursor``: read it, decide again); nothing is then written. Called inside :meth:`exclusive`. With
        ``sync``, the record is durable when this returns; without, once :meth:`sync` returns. Raises
        CorruptLogError, writing nothing, if the log cannot be appended to at ``cursor`` (cut behind the
        caller's back).
        """
        ...

    def sync(self, key: str, created: bool = False) -> None:
        """Make every record appended to the stream so far durable (nothing to do on a store where it is already).

        ``created``: the stream's first record was just appended (its name may need syncing too).
        """
        ...

    def last_record_tail(self, key: str, cursor: Cursor) -> bytes:
        """The final 18 bytes of the record that ends at ``cursor``: its CRC field, ``,"crc":"xxxxxxxx"}``.

        b"" if no complete record ends there (or no such stream). Used to check that a snapshot taken at
        ``cursor`` still describes the log. May raise BadRecord saying why the record there is not usable yet.
        """
        ...

    def write_snapshot(self, key: str, version: int, data: bytes) -> None:
        """Store ``data``, a snapshot of the stream taken at commit ``version``, as its newest snapshot.

        Atomic: a reader sees the snapshot whole, or not at all. Not durable by itself (a snapshot is checked
        against the log when it is used).
        """
        ...

    def latest_snapshot(self, key: str) -> bytes | None:
        """The bytes of the stream's newest snapshot, or None if it has none."""
        ...

    # -- verify and repair -----------------------------------------------------------------------------------

    def scan(self, key: str) -> Scan | None:
        """Everything stream ``key``'s log holds (see :class:`Scan`), or None if it has no log.

        Unlike :meth:`read`, it reads past damage, lists what readers never look at (strays), and reports a
        torn last record. Takes no lock and changes nothing.
        """
        ...

    def fate_of_torn(self, torn: Record, previous: Record | None) -> TornFate:
        """What the next writer (entering :meth:`exclusive`) does with ``torn``, the torn last record that
        :meth:`scan` found after the record ``previous`` (None if it is the only one).

        Only called with a torn record :meth:`scan` returned: a store that never has one may raise.
        """
        ...

    def snapshot_records(self, key: str) -> list[StoredSnapshot]:
        """Every snapshot of the stream, oldest first (readers use the newest); none if it has none."""
        ...

    def describe_snapshot(self, key: str, name: str) -> str:
        """Where the snapshot ``name`` (from :meth:`snapshot_records`) lives, for people."""
        ...

    def repair_lock(self, key: str) -> AbstractContextManager[Any]:
        """A context that keeps writers out of the stream while repair reads and changes it.

        On a store with a lock, the lock of :meth:`exclusive`, but settling nothing on entry (repair decides
        about a torn record itself). On a store without one, nothing: the operator stops the writers first.
        """
        ...

    def complete_torn(self, key: str, torn: Record) -> None:
        """Add the final newline to ``torn``, the torn last record :meth:`scan` found, and make it durable.

        Called inside :meth:`repair_lock`. Raises CorruptLogError, changing nothing, if the log no longer ends
        with it. Only called with a torn record :meth:`scan` returned: a store that never has one may raise.
        """
        ...

    def damaged_destination(self, key: str, stamp: str) -> str:
        """Where :meth:`set_aside_records` with this ``stamp`` (a UTC time) puts records, for people.

        Beside the stream's log, named after ``damaged-<stamp>``. Changes nothing (used by dry runs).
        """
        ...

    def set_aside_records(
        self, key: str, records: Sequence[Record], torn: Record | None, strays: Sequence[Stray], stamp: str
    ) -> Destination:
        """Move ``records`` (the log's records from one of them to its end, as :meth:`scan` found them), the torn
        record ``torn`` and ``strays`` out of the log, into :meth:`damaged_destination` ``(key, stamp)``.

        Nothing is deleted before its copy is safe (durable, and checked where the store can). The log then ends
        with the record before the first of ``records`` (or before ``torn``), a run of consecutive commits at
        every moment. Called inside :meth:`repair_lock`. Return where they went.
        """
        ...

    def set_aside_snapshots(self, key: str, names: Sequence[str], stamp: str) -> list[str]:
        """Move the snapshots ``names`` (from :meth:`snapshot_records`) beside the log, named after
        ``damaged-<stamp>``, where readers no longer use them; return where each went, for people, in order."""
        ...
