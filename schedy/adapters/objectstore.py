"""The log on object storage (S3, GCS, Azure, S3-compatible, in-memory) through obstore.

Layout under the database prefix::

    experiments/<key>/log/<version, 20 digits>.json   one object per commit (the commit's line)
    experiments/<key>/snapshots/<version, 20 digits>.json

Appending commit ``v`` is a put-if-absent of its object, so two writers can
never both write ``v``; the loser reads the new commits and decides again.
There is no lock: :meth:`exclusive` does nothing. The cursor of a stream is
the version of the last commit read. Commits are consecutive (commit ``v + 1``
is written by a writer that has read ``v``), so readers GET the next versions
instead of listing the log (:meth:`ObjectLogStore.read`); only ``schedy
verify`` lists it (:meth:`ObjectLogStore.scan`).

Outcomes the store leaves unknown are resolved, never reported as failures
(see :meth:`ObjectLogStore._create`): a put whose reply was lost (timeout,
connection reset, a 5xx after the request was sent, or "already exists"
because obstore retried a create that had landed) is settled by reading the
object back. Our bytes there: the put is ours. Another writer's: we lost the
race. Nothing there: the put did not happen, and it is sent again, a bounded
number of times with backoff. Reads that fail transiently are retried the
same way. What still fails is a one-line :class:`~schedy.errors.StoreError`
naming the operation and the object, with obstore's exception as its cause.
"""

import itertools
import logging
import os
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import nullcontext

import obstore
import orjson
from obstore.exceptions import (
    AlreadyExistsError,
    GenericError,
    JoinError,
    PreconditionError,
)

from ..core.events import FORMAT
from ..errors import CorruptLogError, DatabaseError, StoreError
from .store import Cursor, Destination, Record, Scan, StoredSnapshot, Stray, TornFate

log = logging.getLogger("schedy")

# Retries on top of obstore's own (which re-send reads, and writes whose request never left, but never a
# create that timed out or was cut off after it was sent). An operation is tried at most ATTEMPTS times, and
# not again once RETRY_FOR seconds have passed since its first try; the pauses between tries start at
# BACKOFF seconds and double up to MAX_BACKOFF, each drawn at random between half and all of that.
ATTEMPTS = 5
RETRY_FOR = 60.0
BACKOFF = 0.05
MAX_BACKOFF = 2.0

# A reader behind the log GETs the next commits in windows of 2, 4, 8... versions at once, up to WINDOW: a long
# log is read in parallel, and reading to its end costs at most one window of GETs answered 404.
WINDOW = 64

_MEMORY: dict = {}  # name -> obstore MemoryStore
_MEMORY_GUARD = threading.Lock()
_WIDTH = 20


def memory_store(name):
    """The in-process store named ``name`` (``memory://name``): every SchedyDB of this process on it shares it."""
    from obstore.store import MemoryStore

    with _MEMORY_GUARD:
        return _MEMORY.setdefault(name, MemoryStore())


_POOL = None


def _pool():
    global _POOL
    with _MEMORY_GUARD:
        if _POOL is None:
            from concurrent.futures import ThreadPoolExecutor

            _POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="schedy-get")
        return _POOL


def _reset_after_fork():
    # A forked child inherits the pool without its threads; it must build its own.
    global _POOL, _MEMORY_GUARD
    _POOL, _MEMORY_GUARD = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _conflict(e):
    # S3 and GCS report a lost create as "already exists"; Azure as a failed precondition.
    return isinstance(e, (AlreadyExistsError, PreconditionError))


def _transient(e):
    """True for the failures worth another try: obstore reports timeouts, connection resets and 5xx answers
    (once its own retries are spent) as GenericError; JoinError is its async runtime failing a task."""
    return isinstance(e, (GenericError, JoinError))


def _fatal(e):
    return isinstance(e, (KeyboardInterrupt, SystemExit, GeneratorExit))


class ObjectLogStore:
    """Log store on an obstore ``store``; ``prefix`` is the database's folder inside it."""

    def __init__(self, store, prefix="", location="object store", snapshot_every=1000, bucket=None):
        self.store = store
        self.prefix = prefix.strip("/")
        self.location = location
        self.snapshot_every = snapshot_every
        self.bucket = bucket  # for messages only: "bucket 'x' does not exist"
        self.attempts, self.retry_for = ATTEMPTS, RETRY_FOR
        self.stats: Counter[str] = Counter()  # retries and resolved outcomes, for tests and benchmarks
        self._stats_guard = threading.Lock()
        self._won = {}  # key -> (version, bytes) of the commit that beat our last append
        self._check_conditional_writes()

    def _path(self, *parts):
        return "/".join(p for p in (self.prefix, *parts) if p)

    def _log(self, key, version=None):
        return self._path("experiments", key, "log", "" if version is None else f"{version:0{_WIDTH}d}.json")

    # -- retries and outcome resolution -------------------------------------------------------------------

    def _count(self, what, n=1):
        with self._stats_guard:
            self.stats[what] += n

    def _again(self, attempt, start, attempts=None):
        """Whether try number ``attempt`` (which failed) may be followed by another; pause first if so."""
        if attempt >= (attempts or self.attempts) or time.monotonic() - start >= self.retry_for:
            return False
        time.sleep(random.uniform(0.5, 1.0) * min(MAX_BACKOFF, BACKOFF * 2 ** (attempt - 1)))
        return True

    def _error(self, what, path, e, attempts=1, note=""):
        """The one-line error for operation ``what`` on ``path`` that failed with ``e`` (to be raised from e)."""
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return StoreError(
            f"{self.location}: could not {what} ({path}){tries}{note}: {type(e).__name__}: {_first_line(e)}"
        )

    def _read(self, what, path, fn, missing_ok=True, attempts=None):
        """``fn()``, tried again on transient failures; FileNotFoundError passes through if ``missing_ok``."""
        start = time.monotonic()
        for attempt in itertools.count(1):
            try:
                return fn()
            except FileNotFoundError as e:
                if missing_ok:
                    raise
                raise self._error(what, path, e, attempt) from e
            except BaseException as e:  # obstore's Rust panics derive from BaseException
                if _fatal(e):
                    raise
                if not _transient(e) or not self._again(attempt, start, attempts):
                    raise self._error(what, path, e, attempt) from e
                self._count("read retries")
                log.info("%s: %s (%s) failed, trying again: %s", self.location, what, path, _first_line(e))

    def _get_bytes(self, what, path, attempts=None):
        """The bytes of ``path``, or None if it does not exist (transient failures are retried)."""
        try:
            return self._read(
                f"read {what}", path, lambda: bytes(obstore.get(self.store, path).bytes()), attempts=attempts
            )
        except FileNotFoundError:
            return None

    def _list(self, what, prefix):
        """Every object's metadata under ``prefix``, in one retried listing (no offset: Azurite ignores it)."""

        def listing():
            return [meta for batch in obstore.list(self.store, prefix) for meta in batch]

        return self._read(f"list {what}", prefix, listing, missing_ok=False)

    def _create(self, what, path, data, readback_attempts=None):
        """Put ``data`` at ``path`` if nothing is there; return ``(ours, bytes now at path)``.

        The outcome rule: a put that succeeds is ours. A put whose outcome is unknown (a transient error: a
        timeout, a reset connection, a 5xx once obstore's retries are spent) or that is refused because the
        object exists (which is also what obstore's own retry of a create that had landed sees) is settled by
        reading the object back: our bytes there, the put is ours (our bytes are unique: a commit carries a
        random token); another writer's, we lost; nothing there, the put did not happen and is sent again,
        at most ``attempts`` times in all. Any other refusal (permissions, a missing bucket...) raises at once.
        If the object cannot be read back (``readback_attempts`` tries), the outcome stays unknown: StoreError.
        """
        start = time.monotonic()
        for attempt in itertools.count(1):
            try:
                obstore.put(self.store, path, data, mode="create")
                return True, data
            except BaseException as e:  # obstore's Rust panics derive from BaseException
                if _fatal(e):
                    raise
                if not (_conflict(e) or _transient(e)):
                    raise self._error(f"write {what}", path, e, attempt) from e
                failure = e
            self._count("already exists" if _conflict(failure) else "unknown write outcomes")
            try:
                existing = self._get_bytes(what, path, readback_attempts)
            except StoreError:
                raise self._error(
                    f"write {what}",
                    path,
                    failure,
                    attempt,
                    note=" (its outcome is unknown: reading it back failed too)",
                ) from failure
            if existing is not None:
                self._count("resolved as ours" if existing == data else "lost races")
                return existing == data, existing
            if not self._again(attempt, start):
                raise self._error(f"write {what}", path, failure, attempt) from failure
            self._count("write retries")
            log.info("%s: %s (%s) did not land, writing it again: %s", self.location, what, path, _first_line(failure))

    # -- opening -------------------------------------------------------------------------------------------

    def _check_conditional_writes(self):
        """Refuse a store that does not honour put-if-absent: it could hand one job to two workers.

        The probe's bytes are unique to this check, so that a lost reply (obstore then retries the create
        and hears "already exists") is told from a second create that the store accepted.
        """
        probe = self._path(".schedy-probe", secrets.token_hex(8))
        token = secrets.token_hex(16)
        first, second = f"schedy probe {token} 1".encode(), f"schedy probe {token} 2".encode()
        try:
            try:
                # Read back once only: a store that fails both the put and the read is unreachable, and obstore
                # has already retried each (with its defaults, a wrong endpoint is reported in seconds, not 30).
                ours, _ = self._create("the conditional-write probe", probe, first, readback_attempts=1)
            except StoreError as e:
                if isinstance(e.__cause__, FileNotFoundError):  # a PUT answered 404: nothing to put objects in
                    raise self._missing_bucket() from e.__cause__
                raise
            if not ours:
                raise DatabaseError(f"cannot use {self.location}: another writer holds the probe object {probe}")
            if self._second_create_accepted(probe, first, second):
                raise DatabaseError(
                    f"{self.location} accepted a second create of the same object: it does not support conditional "
                    "writes, so Schedy cannot guarantee that no job is handed to two workers"
                )
            marker_path = self._path("SCHEDY")
            _, marker = self._create("the database marker", marker_path, b'{"format": %d}' % FORMAT)
            try:
                fmt = orjson.loads(marker).get("format") if marker.startswith(b"{") else None
            except orjson.JSONDecodeError:
                fmt = None
            if not isinstance(fmt, int) or fmt > FORMAT:
                raise DatabaseError(
                    f"the database at {self.location} has format {fmt!r}; this Schedy reads up to {FORMAT}"
                ) from None
        except StoreError as e:
            raise StoreError(f"cannot use {e!s}") from e.__cause__
        finally:
            try:
                obstore.delete(self.store, probe)
            except BaseException as e:  # a leftover probe object is harmless
                if _fatal(e):
                    raise

    def _second_create_accepted(self, probe, first, second):
        """Try to create ``probe`` again: True if the store let it through, False once it is refused."""
        start = time.monotonic()
        for attempt in itertools.count(1):
            try:
                obstore.put(self.store, probe, second, mode="create")
                return True
            except BaseException as e:  # obstore's Rust panics derive from BaseException
                if _fatal(e):
                    raise
                if not (_conflict(e) or _transient(e)):
                    raise self._error("create the conditional-write probe a second time", probe, e, attempt) from e
                failure = e
            existing = self._get_bytes("the conditional-write probe", probe)
            if existing == second:  # our second create landed: obstore retried it, or its reply was lost
                return True
            if existing == first and _conflict(failure):
                return False  # refused, and the first create is intact
            # The outcome is unknown (the request may never have reached the store): ask again.
            if not self._again(attempt, start):
                raise self._error(
                    "create the conditional-write probe a second time", probe, failure, attempt
                ) from failure
            self._count("write retries")

    def _missing_bucket(self):
        what = "container" if self.location.split("://", 1)[0] in ("az", "abfs", "abfss", "azure") else "bucket"
        name = f" {self.bucket!r}" if self.bucket else ""
        return DatabaseError(
            f"cannot use {self.location}: the {what}{name} does not exist (a write in it was answered 404 Not Found)"
        )

    def describe(self, key: str) -> str:
        return f"{self.location} {self._log(key)}"

    def initial_cursor(self) -> Cursor:
        return 0

    def keys(self) -> list[str]:
        prefix = self._path("experiments") + "/"
        listing = self._read(
            "list the experiments", prefix, lambda: obstore.list_with_delimiter(self.store, prefix), missing_ok=False
        )
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in listing["common_prefixes"])

    def _fetch(self, key, versions):
        """The records of commits ``versions`` of ``key``, None for each that does not exist, GET all at once."""

        def one(v):
            data = self._get_bytes(f"commit {v} of {key!r}", self._log(key, v))
            return None if data is None else data.rstrip(b"\n")

        if len(versions) > 1:
            try:
                return list(_pool().map(one, versions))
            except RuntimeError:  # the pool is shut down (the interpreter is exiting): one at a time
                pass
        return [one(v) for v in versions]

    def read(self, key: str, cursor: Cursor) -> tuple[list[bytes], Cursor]:
        """Return the records of the commits after version ``cursor``, and the version of the last one.

        No listing: GET commit ``cursor + 1`` (404: caught up, one request); while every commit asked for is
        there, GET the next 2, 4, 8... up to WINDOW at once. The result is the run of consecutive commits up
        to the first missing one. A read that got a commit by GET also looks one past the first missing one:
        if a later commit is there and the missing one is still absent when asked again (both may have been
        written between our GETs), the log has a hole: CorruptLogError. A reader already caught up when a
        commit is deleted does not see that hole (its next write fills it), and readers never see objects in
        the log folder that are not commits: ``schedy verify`` lists the log and reports both (:meth:`scan`).
        """
        records = []
        won = self._won.pop(key, None)
        if won is not None and won[0] == cursor + 1:
            # The commit that beat our last append was read to compare it with ours: no need to GET it again.
            records.append(won[1].rstrip(b"\n"))
            cursor += 1
        size = 1
        while True:
            found = self._fetch(key, range(cursor + 1, cursor + 1 + size))
            n = next((i for i, data in enumerate(found) if data is None), size)
            records.extend(found[:n])
            cursor += n
            if n == size:
                size = min(2 * size, WINDOW)
                continue
            if size == 1:
                return records, cursor  # the first GET: caught up
            # Commit cursor + 1 is missing. If none after it is there either, this is the end of the log.
            after = found[n + 1 :] or self._fetch(key, [cursor + 2])
            if all(data is None for data in after):
                return records, cursor
            again = self._fetch(key, [cursor + 1])[0]  # asked after a later commit was seen: it must be there
            if again is None:
                later = cursor + 2 + next(i for i, data in enumerate(after) if data is not None)
                raise CorruptLogError(f"{self.describe(key)}: commit {cursor + 1} is missing (commit {later} is there)")
            records.append(again)
            cursor += 1

    def exclusive(self, key: str, meanwhile: Callable[[], bool] | None = None) -> nullcontext[None]:
        """Nothing to hold: writers race with conditional puts (``meanwhile`` is never called)."""
        return nullcontext()

    def append(self, key: str, cursor: Cursor, version: int, data: bytes, sync: bool = True) -> Cursor | None:
        """Put commit ``version`` if absent; return the new cursor, or None if another writer got there first.

        Every acknowledged put is durable on object storage, so ``sync`` changes nothing.
        """
        ours, existing = self._create(f"commit {version} of {key!r}", self._log(key, version), data)
        if not ours:
            self._won[key] = (version, existing)  # read to compare with ours: the next read need not GET it
            return None
        return version

    def sync(self, key: str, created: bool = False) -> None:
        """Nothing to do: every acknowledged put is already durable."""

    def last_record_tail(self, key: str, cursor: Cursor) -> bytes:
        """The final bytes of the record that ends at ``cursor`` (for checking a snapshot)."""
        data = self._get_bytes(f"commit {cursor} of {key!r}", self._log(key, cursor))
        return b"" if data is None else data.rstrip(b"\n")[-18:]

    def write_snapshot(self, key: str, version: int, data: bytes) -> None:
        """Store a snapshot taken at ``version`` (written once; a second writer's copy is identical)."""
        self._create(
            f"the snapshot of {key!r} at commit {version}",
            self._path("experiments", key, "snapshots", f"{version:0{_WIDTH}d}.json"),
            data,
        )

    def latest_snapshot(self, key: str) -> bytes | None:
        """The bytes of the newest snapshot of ``key``, or None."""
        prefix = self._path("experiments", key, "snapshots") + "/"
        paths = sorted(m["path"] for m in self._list(f"the snapshots of {key!r}", prefix))
        if not paths:
            return None
        return self._get_bytes(f"a snapshot of {key!r}", paths[-1])

    # -- maintenance (schedy.maintenance: verify and repair) -----------------------------------------------

    def _get(self, path):
        """The bytes of ``path``; FileNotFoundError if it does not exist."""
        return self._read(f"read {path.rsplit('/', 1)[-1]}", path, lambda: bytes(obstore.get(self.store, path).bytes()))

    def scan(self, key: str) -> Scan | None:
        """Every object of the log folder (:meth:`LogStore.scan <schedy.adapters.store.LogStore.scan>`), listed.

        The records are the objects named after a version, sorted by it (missing versions are simply absent); a
        record's position is its version (the cursor of a reader that has read it), so the scan is ``numbered``.
        Every other object of the log folder is a stray, named by its path. There is never a torn record: an
        object is written whole or not at all.
        """
        prefix = self._log(key)
        named, strays = [], []
        for meta in self._list(f"the log of {key!r}", prefix):
            path = meta["path"]
            name = path.rsplit("/", 1)[-1]
            stem = name[:-5] if name.endswith(".json") else ""
            if stem.isdigit() and path == self._log(key, int(stem)):
                named.append((int(stem), path))
            else:
                strays.append(Stray(f"{self.location} {path}", path))
        if not named and not strays:
            return None
        named.sort()

        def fetch(item):
            try:
                return self._get(item[1]).rstrip(b"\n")
            except FileNotFoundError:
                return None  # deleted since the listing: reported as missing

        found = list(_pool().map(fetch, named)) if len(named) > 1 else [fetch(item) for item in named]
        records = [
            Record(v, f"{self.location} {path}", data) for (v, path), data in zip(named, found) if data is not None
        ]
        return Scan(records, None, strays, numbered=True)

    def fate_of_torn(self, torn: Record, previous: Record | None) -> TornFate:
        """Never called: :meth:`scan` finds no torn record on object storage."""
        raise ValueError(f"{self.location} has no torn records: an object is written whole or not at all")

    def snapshot_records(self, key: str) -> list[StoredSnapshot]:
        """Every snapshot of the stream, oldest first (readers use the newest), named by its path."""
        prefix = self._path("experiments", key, "snapshots") + "/"
        out = []
        for path in sorted(m["path"] for m in self._list(f"the snapshots of {key!r}", prefix)):
            try:
                out.append(StoredSnapshot(path, self._get(path)))
            except FileNotFoundError:
                pass
        return out

    def describe_snapshot(self, key: str, name: str) -> str:
        return f"{self.location} {name}"

    def repair_lock(self, key: str) -> nullcontext[None]:
        """Nothing to hold: there is no lock (the workers are stopped before a repair)."""
        return nullcontext()

    def complete_torn(self, key: str, torn: Record) -> None:
        """Never called: :meth:`scan` finds no torn record on object storage."""
        raise ValueError(f"{self.location} has no torn records: an object is written whole or not at all")

    def damaged_destination(self, key: str, stamp: str) -> str:
        """The folder ``experiments/<key>/damaged-<stamp>/`` (objects keep their names in it)."""
        return f"{self.location} {self.folder_path(key, f'damaged-{stamp}')}/"

    def set_aside_records(
        self, key: str, records: Sequence[Record], torn: Record | None, strays: Sequence[Stray], stamp: str
    ) -> Destination:
        """Move the objects of ``records`` and ``strays`` to :meth:`damaged_destination` (see :meth:`_move`)."""
        if torn is not None:
            raise ValueError(f"{self.location} has no torn records: an object is written whole or not at all")
        paths = [self._log(key, r.position) for r in records] + [s.name for s in strays]
        if paths:
            self._move(key, paths, f"damaged-{stamp}")
        return Destination(self.damaged_destination(key, stamp), None)

    def set_aside_snapshots(self, key: str, names: Sequence[str], stamp: str) -> list[str]:
        """Move the snapshot objects ``names`` to ``experiments/<key>/damaged-<stamp>/snapshots/`` (:meth:`_move`)."""
        return [f"{self.location} {d}" for d in self._move(key, list(names), f"damaged-{stamp}")] if names else []

    def log_path(self, key, version):
        """The path of commit ``version``'s object."""
        return self._log(key, version)

    def folder_path(self, key, folder):
        """The path of the folder ``folder`` beside the stream's log."""
        return self._path("experiments", key, folder)

    def _move(self, key, paths, folder):
        """Copy each object of ``paths`` to ``experiments/<key>/<folder>/``, check each copy, then delete the originals.

        A log object keeps its name (``<folder>/<version>.json``); other objects keep their path relative to
        ``experiments/<key>/`` (``<folder>/snapshots/<version>.json``). Nothing is deleted unless every copy
        reads back identical; the originals are deleted newest first, so the log stays a run of consecutive
        commits while this runs. Return the destination paths, in the order of ``paths``.
        """
        base = self._path("experiments", key) + "/"
        log = self._log(key) + "/"
        moves = []
        for path in paths:
            rel = path[len(log) :] if path.startswith(log) else path.removeprefix(base)
            moves.append((path, self._path("experiments", key, folder, rel)))
        for path, dest in moves:
            data = self._get(path)
            self._create(f"a copy of {path}", dest, data)
            if self._get(dest) != data:  # every copy is read back before anything is deleted
                raise DatabaseError(f"{self.location}: {dest!r} already holds other bytes; nothing was deleted")
        for path, _ in sorted(moves, key=lambda m: m[0], reverse=True):
            # Deleting is idempotent (deleting a missing object succeeds), so a retried delete is harmless.
            self._read(
                f"delete {path.rsplit('/', 1)[-1]}",
                path,
                lambda p=path: obstore.delete(self.store, p),
                missing_ok=False,
            )
        return [dest for _, dest in moves]


def _first_line(e):
    return str(e).splitlines()[0][:300] if str(e) else ""
