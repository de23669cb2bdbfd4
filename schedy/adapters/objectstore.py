"""The log on object storage (S3, GCS, Azure, S3-compatible, in-memory) through obstore.

Layout under the database prefix::

    experiments/<key>/log/<version, 20 digits>.json   one object per commit (the commit's line)
    experiments/<key>/snapshots/<version, 20 digits>.json

Appending commit ``v`` is a put-if-absent of its object, so two writers can
never both write ``v``; the loser reads the new commits and decides again.
There is no lock: :meth:`exclusive` does nothing. The cursor of a stream is
the version of the last commit read.
"""

import os
import secrets
import threading
from contextlib import nullcontext

import obstore
import orjson
from obstore.exceptions import AlreadyExistsError, PreconditionError

from ..core.events import FORMAT
from ..errors import CorruptLogError, DatabaseError

_MEMORY = {}
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


class ObjectLogStore:
    """Log store on an obstore ``store``; ``prefix`` is the database's folder inside it."""

    def __init__(self, store, prefix="", location="object store", snapshot_every=1000):
        self.store = store
        self.prefix = prefix.strip("/")
        self.location = location
        self.snapshot_every = snapshot_every
        self._won = {}  # key -> (version, bytes) of the commit that beat our last append
        self._check_conditional_writes()

    def _path(self, *parts):
        return "/".join(p for p in (self.prefix, *parts) if p)

    def _log(self, key, version=None):
        return self._path("experiments", key, "log", "" if version is None else f"{version:0{_WIDTH}d}.json")

    def _check_conditional_writes(self):
        """Refuse a store that does not honour put-if-absent: it could hand one job to two workers."""
        probe = self._path(".schedy-probe", secrets.token_hex(8))
        try:
            obstore.put(self.store, probe, b"1", mode="create")
            try:
                obstore.put(self.store, probe, b"2", mode="create")
            except Exception as e:  # noqa: BLE001 - any refusal of the second create is what we want
                if not _conflict(e):
                    raise
            else:
                raise DatabaseError(
                    f"{self.location} accepted a second create of the same object: it does not support conditional "
                    "writes, so Schedy cannot guarantee that no job is handed to two workers"
                )
            try:
                obstore.put(self.store, self._path("SCHEDY"), b'{"format": %d}' % FORMAT, mode="create")
            except Exception as e:  # noqa: BLE001
                if not _conflict(e):
                    raise
                marker = bytes(obstore.get(self.store, self._path("SCHEDY")).bytes())
                fmt = orjson.loads(marker).get("format") if marker.startswith(b"{") else None
                if not isinstance(fmt, int) or fmt > FORMAT:
                    raise DatabaseError(f"the database at {self.location} has format {fmt!r}; this Schedy reads "
                                        f"up to {FORMAT}") from None
        except DatabaseError:
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # noqa: BLE001 - obstore's Rust panics derive from BaseException
            raise DatabaseError(f"cannot use {self.location}: {type(e).__name__}: {_first_line(e)}") from None
        finally:
            try:
                obstore.delete(self.store, probe)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException:  # noqa: BLE001 - a leftover probe object is harmless
                pass

    def describe(self, key):
        return f"{self.location} {self._log(key)}"

    def initial_cursor(self):
        return 0

    def keys(self):
        listing = obstore.list_with_delimiter(self.store, self._path("experiments") + "/")
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in listing["common_prefixes"])

    def _versions_after(self, key, cursor):
        prefix = self._log(key)
        offset = self._log(key, cursor) if cursor else None
        found = []
        for batch in obstore.list(self.store, prefix, offset=offset) if offset else obstore.list(self.store, prefix):
            for meta in batch:
                name = meta["path"].rsplit("/", 1)[-1]
                stem = name[:-5] if name.endswith(".json") else ""
                if not stem.isdigit():
                    raise CorruptLogError(f"{self.describe(key)}: unexpected object {meta['path']!r} in the log")
                if int(stem) > cursor:
                    found.append(int(stem))
        return sorted(found)  # listings are not guaranteed to be sorted

    def read(self, key, cursor):
        """Return the records of the commits after version ``cursor``, and the version of the last one."""
        records = []
        won = self._won.pop(key, None)
        if won is not None and won[0] == cursor + 1:
            # The commit that beat our last append was read to compare it with ours: no need to GET it again.
            records.append(won[1].rstrip(b"\n"))
            cursor += 1
        versions = self._versions_after(key, cursor)
        for expected, v in enumerate(versions, cursor + 1):
            if v != expected:
                raise CorruptLogError(f"{self.describe(key)}: commit {expected} is missing (the log jumps to {v})")

        def fetch(v):
            try:
                return bytes(obstore.get(self.store, self._log(key, v)).bytes()).rstrip(b"\n")
            except FileNotFoundError:
                raise CorruptLogError(f"{self.describe(key)}: commit {v} disappeared while it was read") from None

        # Fetch many commits at once: one round trip each, one after another, would make a writer that fell
        # behind (or a reader opening a long log) slower than the writers it has to catch up with.
        try:
            fetched = list(_pool().map(fetch, versions)) if len(versions) > 1 else None
        except RuntimeError:  # the pool is shut down (the interpreter is exiting): fetch one at a time
            fetched = None
        records.extend(fetched if fetched is not None else (fetch(v) for v in versions))
        return records, cursor + len(versions)

    def exclusive(self, key, meanwhile=None):
        """Nothing to hold: writers race with conditional puts (``meanwhile`` is never called)."""
        return nullcontext()

    def append(self, key, cursor, version, data, sync=True):
        """Put commit ``version`` if absent; return the new cursor, or None if another writer got there first.

        Every acknowledged put is durable on object storage, so ``sync`` changes nothing.
        """
        path = self._log(key, version)
        try:
            obstore.put(self.store, path, data, mode="create")
        except Exception as e:  # noqa: BLE001
            if not _conflict(e):
                raise
            # A create whose reply was lost may have landed and been retried: it is ours if the bytes are ours.
            existing = bytes(obstore.get(self.store, path).bytes())
            if existing != data:
                self._won[key] = (version, existing)
                return None
        return version

    def sync(self, key, created=False):
        """Nothing to do: every acknowledged put is already durable."""

    def last_record_tail(self, key, cursor):
        """The final bytes of the record that ends at ``cursor`` (for checking a snapshot)."""
        try:
            return bytes(obstore.get(self.store, self._log(key, cursor)).bytes()).rstrip(b"\n")[-18:]
        except FileNotFoundError:
            return b""

    def write_snapshot(self, key, version, data):
        """Store a snapshot taken at ``version`` (written once; a second writer's copy is identical)."""
        try:
            obstore.put(self.store, self._path("experiments", key, "snapshots", f"{version:0{_WIDTH}d}.json"), data,
                        mode="create")
        except Exception as e:  # noqa: BLE001
            if not _conflict(e):
                raise

    def latest_snapshot(self, key):
        """The bytes of the newest snapshot of ``key``, or None."""
        prefix = self._path("experiments", key, "snapshots") + "/"
        paths = sorted(m["path"] for batch in obstore.list(self.store, prefix) for m in batch)
        if not paths:
            return None
        try:
            return bytes(obstore.get(self.store, paths[-1]).bytes())
        except FileNotFoundError:
            return None

    # -- maintenance (schedy.maintenance: verify and repair) -----------------------------------------------

    def _get(self, path):
        return bytes(obstore.get(self.store, path).bytes())

    def scan(self, key):
        """Everything stream ``key`` holds, for ``schedy verify``: ``(records, torn, strays)``, or None if it has no log.

        ``records`` lists ``(version, where, bytes)`` for every object of the log folder named after a version,
        sorted by that version (missing versions are simply absent); ``torn`` is always empty on this store;
        ``strays`` lists ``(where, path)`` of the other objects in the log folder, which readers refuse.
        """
        prefix = self._log(key)
        named, strays = [], []
        for batch in obstore.list(self.store, prefix):
            for meta in batch:
                path = meta["path"]
                name = path.rsplit("/", 1)[-1]
                stem = name[:-5] if name.endswith(".json") else ""
                if stem.isdigit() and path == self._log(key, int(stem)):
                    named.append((int(stem), path))
                else:
                    strays.append((f"{self.location} {path}", path))
        if not named and not strays:
            return None
        named.sort()

        def fetch(item):
            try:
                return self._get(item[1]).rstrip(b"\n")
            except FileNotFoundError:
                return None  # deleted since the listing: reported as missing

        found = list(_pool().map(fetch, named)) if len(named) > 1 else [fetch(item) for item in named]
        records = [(v, f"{self.location} {path}", data) for (v, path), data in zip(named, found) if data is not None]
        return records, b"", strays

    def snapshot_records(self, key):
        """``[(where, bytes)]`` of every snapshot of the stream, oldest first (readers use the newest)."""
        prefix = self._path("experiments", key, "snapshots") + "/"
        out = []
        for path in sorted(m["path"] for batch in obstore.list(self.store, prefix) for m in batch):
            try:
                out.append((path, self._get(path)))
            except FileNotFoundError:
                pass
        return out

    def log_path(self, key, version):
        """The path of commit ``version``'s object."""
        return self._log(key, version)

    def folder_path(self, key, folder):
        """The path of the folder ``folder`` beside the stream's log."""
        return self._path("experiments", key, folder)

    def set_aside(self, key, paths, folder):
        """Copy each object of ``paths`` to ``experiments/<key>/<folder>/``, check every copy, then delete the originals.

        A log object keeps its name (``<folder>/<version>.json``); other objects keep their path relative to
        ``experiments/<key>/`` (``<folder>/snapshots/<version>.json``). Nothing is deleted unless every copy
        reads back identical; the originals are deleted newest first, so the log stays a run of consecutive
        commits while this runs. Return the destination paths, in the order of ``paths``.
        """
        base = self._path("experiments", key) + "/"
        log = self._log(key) + "/"
        moves = []
        for path in paths:
            rel = path[len(log):] if path.startswith(log) else path[len(base):] if path.startswith(base) else path
            moves.append((path, self._path("experiments", key, folder, rel)))
        for path, dest in moves:
            data = self._get(path)
            try:
                obstore.put(self.store, dest, data, mode="create")
            except Exception as e:  # noqa: BLE001
                if not _conflict(e):
                    raise
            if self._get(dest) != data:
                raise DatabaseError(f"{self.location}: {dest!r} already holds other bytes; nothing was deleted")
        for path, _ in sorted(moves, key=lambda m: m[0], reverse=True):
            obstore.delete(self.store, path)
        return [dest for _, dest in moves]


def _first_line(e):
    return str(e).splitlines()[0][:300] if str(e) else ""
