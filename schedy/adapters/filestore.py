"""The local-disk log store: one append-only file per experiment.

Layout under the database directory::

    SCHEDY                      marker: {"format": 1}
    experiments/<key>/log.jsonl one commit per line (docs/log-format.md)

Writers hold an exclusive ``flock`` on the log file from the moment they read
the head until their commit is written, so the append loop never has to retry
on this store; the commit is fsynced after the lock is released. POSIX only.

A torn last record (bytes after the last newline) is never read; the first
writer to take the lock settles it before it reads: see :func:`torn_fate`.
"""

import fcntl
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson

from ..core.codec import BadRecord, decode_commit
from ..core.events import FORMAT
from ..errors import CorruptLogError, DatabaseError
from .store import COMPLETE, CUT, LEAVE, Cursor, Destination, Record, Scan, StoredSnapshot, Stray, TornFate

_MARKER = "SCHEDY"
_LOG = "log.jsonl"
# How long a writer that finds the lock taken keeps trying it (reading the log in between) before it sleeps in
# flock. A commit holds the lock for about a hundred microseconds, so this covers the waits of busy workers; a
# longer hold (a bulk add, a repair) costs one such spell, then the writer sleeps until the lock is free.
_SPIN_SECONDS = 0.002
_yield = getattr(os, "sched_yield", lambda: time.sleep(0))


def _exact_mode(fd, mode):
    # os.open and mkdir take the umask's bits away from the mode: file_mode=0o660 would be 0o640 under the
    # usual umask 022. A file or folder Schedy creates gets file_mode (dir_mode) exactly, as documented.
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)


def _create_or_open(path, flags, mode):
    """``os.open(path, flags | O_CREAT, mode)``, giving the file exactly ``mode`` if this call creates it."""
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return os.open(path, flags, mode)  # someone else's file keeps its mode
    _exact_mode(fd, mode)
    return fd


def _mkdir(path, mode, parents=False):
    """Create the folder ``path`` with exactly ``mode`` (folders above it, with ``parents``, as mkdir makes them)."""
    try:
        path.mkdir(mode=mode, parents=parents)
    except FileExistsError:
        return
    os.chmod(path, mode)


class _Handle:
    """An open log file of one process: the fd, and a lock for the threads sharing it."""

    def __init__(self, path, create, mode):
        flags = os.O_RDWR | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        try:
            self.fd = _create_or_open(path, flags, mode) if create else os.open(path, flags)
            self.writable = True
        except PermissionError:
            if create:
                raise
            # A reader with read access only (a shared, group-readable database) can still read.
            self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            self.writable = False
        self.lock = threading.Lock()

    def close(self):
        """Close the file, once: its number may be another file's afterwards."""
        fd, self.fd = getattr(self, "fd", -1), -1  # (no fd if __init__ failed)
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass

    def __del__(self):
        # A store dropped without close() (a SchedyDB that goes out of scope) must not keep its logs open: a
        # long-lived process that opens many would run out of descriptors.
        self.close()


class _Exclusive:
    """The write lock of one open log, as a context manager (a generator-based one cost more than the lock)."""

    __slots__ = ("h", "meanwhile", "settle")

    def __init__(self, h, meanwhile, settle):
        self.h = h
        self.meanwhile = meanwhile
        self.settle = settle

    def __enter__(self) -> None:
        self.h.lock.acquire()
        try:
            if self.meanwhile is None or not self._try_for_a_while():
                fcntl.flock(self.h.fd, fcntl.LOCK_EX)
            if self.settle is not None:
                self.settle(self.h.fd)
        except BaseException:
            # Also when the flock was taken and an interrupt (Ctrl-C) arrived just after: unlocking a lock not
            # held does nothing, and one left held would stop every other writer.
            try:
                fcntl.flock(self.h.fd, fcntl.LOCK_UN)
            finally:
                self.h.lock.release()
            raise

    def _try_for_a_while(self):
        """Try the lock, calling ``meanwhile()`` between tries, for up to _SPIN_SECONDS; return whether it is held.

        Sleeping in flock and being woken costs more than a short hold of the lock, and the commits that other
        writers append meanwhile would all have to be read under the lock: reading them between tries leaves
        the lock's holder only the last one to read. With nothing new to read, the CPU is yielded.
        """
        deadline = None
        while True:
            try:
                fcntl.flock(self.h.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
            now = time.monotonic()
            if deadline is None:
                deadline = now + _SPIN_SECONDS
            elif now > deadline:
                return False
            if not self.meanwhile():
                _yield()

    def __exit__(self, *exc: object) -> None:
        try:
            fcntl.flock(self.h.fd, fcntl.LOCK_UN)
        finally:
            self.h.lock.release()


# COMPLETE, CUT and LEAVE (imported above) are what torn_fate returns; they are the same on every store.


def expected_after(previous):
    """The version a record after the complete line ``previous`` must have (1 after none), or None if it is damaged."""
    if previous is None:
        return 1
    try:
        return decode_commit(previous).version + 1
    except BadRecord:
        return None


def torn_fate(torn, expected):
    """What a writer holding the lock does with the torn last record ``torn`` (the bytes after the last newline).

    ``expected`` is the version due there (:func:`expected_after`), None if the line before is damaged.
    Returns a :class:`~schedy.adapters.store.TornFate`: ``(COMPLETE, version)``, ``(CUT, None)`` or ``(LEAVE, None)``.

    A writer acknowledges a commit only once :meth:`FileLogStore.append` has written its whole line, the final
    newline last (a failed write is cut back before the error is raised), and, for a durable commit, once
    ``fdatasync`` has returned. So bytes that are not a whole commit were never acknowledged, or are what a machine
    crash left of an unsynced one (a claim, or any commit of a ``durable=False`` store, is acknowledged before it
    is synced): either way the commit cannot be read back from them, and they are cut off. But a torn record
    whose CRC checks and that is the commit due there may be an acknowledged commit that lost only its newline,
    and the snapshot written after it (not synced either) can survive a crash that the line's last byte did
    not. Readers may have folded it, and a worker may be running its job. Or its writer died just before the
    newline, and nobody heard of it. Either way completing it (adding the newline) loses nothing and glues
    nothing, where cutting it could lose an acknowledged commit: it is completed. After a damaged line
    (``expected`` None) nothing can be told; the record is left as it is (readers stop at the damage, and
    ``schedy repair`` sets both aside).
    """
    if expected is None:
        return TornFate(LEAVE, None)
    try:
        version = decode_commit(torn).version
    except BadRecord:
        return TornFate(CUT, None)
    return TornFate(COMPLETE, version) if version == expected else TornFate(CUT, None)


def _torn_tail(fd, size):
    """``(start, torn, previous)`` of a log of ``size`` bytes that does not end with a newline.

    ``torn`` is the bytes after the last newline (from byte ``start``), ``previous`` the complete line before them,
    without its newline, or None if ``torn`` starts the file.
    """
    pos, buf = size, b""
    while True:
        last = buf.rfind(b"\n")
        if last >= 0:
            before = buf.rfind(b"\n", 0, last)
            if before >= 0 or pos == 0:
                return pos + last + 1, buf[last + 1 :], buf[before + 1 : last]
        elif pos == 0:
            return 0, buf, None
        step = min(pos, max(1 << 16, len(buf)))
        pos -= step
        buf = _pread(fd, step, pos) + buf


def _pread(fd, n, offset):
    chunks = []
    while n > 0:
        chunk = os.pread(fd, n, offset)
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


_STORES: "weakref.WeakSet[FileLogStore]" = weakref.WeakSet()


def _after_fork_in_child():
    # The child must not keep the parent's open log files: flock belongs to the open file description, so a
    # shared one would not exclude parent and child, and would keep a dead parent's lock held.
    for store in list(_STORES):
        store._forget_handles()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class FileLogStore:
    """Log store on a local directory.

    ``durable=False`` skips fsync (faster, may lose the last commits on power
    loss). New files get ``file_mode`` (default 0o600: the owner only) and new
    directories the same bits plus search (0o700), within the process umask.
    """

    def __init__(self, root, durable=True, snapshot_every=1000, file_mode=0o600):
        if isinstance(file_mode, bool) or not isinstance(file_mode, int) or not 0 <= file_mode <= 0o777:
            raise ValueError(f"file_mode must be permission bits such as 0o600, got {file_mode!r}")
        self.root = Path(root)
        self.durable = durable
        self.file_mode = file_mode
        self.dir_mode = file_mode | (file_mode & 0o444) >> 2
        self.snapshot_every = snapshot_every
        self._dir = self.root / "experiments"
        self._handles = {}
        self._guard = threading.Lock()
        self._open_root()
        _STORES.add(self)

    def _forget_handles(self):
        for h in self._handles.values():
            h.close()
        self._handles = {}
        self._guard = threading.Lock()

    def _open_root(self):
        root = self.root
        if root.exists() and not root.is_dir():
            raise DatabaseError(f"the database path {str(root)!r} is a regular file, not a directory")
        marker = root / _MARKER
        try:
            _mkdir(root, self.dir_mode, parents=True)
            _mkdir(self._dir, self.dir_mode)
            if not marker.exists():
                tmp = root / f".{_MARKER}.{os.getpid()}.tmp"
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, self.file_mode)
                _exact_mode(fd, self.file_mode)
                with open(fd, "wb") as f:
                    f.write(orjson.dumps({"format": FORMAT}))
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, marker)
                _fsync_dir(root)
        except NotADirectoryError:
            raise DatabaseError(f"the database path {str(root)!r} lies under a regular file") from None
        except PermissionError as e:
            raise DatabaseError(f"cannot create the database at {str(root)!r}: {e.strerror}") from None
        try:
            fmt = orjson.loads(marker.read_bytes()).get("format")
        except (orjson.JSONDecodeError, AttributeError, IsADirectoryError):
            raise DatabaseError(f"{str(marker)!r} is not a Schedy database marker") from None
        if not isinstance(fmt, int) or fmt > FORMAT:
            raise DatabaseError(f"the database at {str(root)!r} has format {fmt!r}; this Schedy reads up to {FORMAT}")

    def describe(self, key: str) -> str:
        """Where stream ``key`` lives, for error messages."""
        return str(self._dir / key / _LOG)

    def keys(self) -> list[str]:
        """Keys of every stream in the store (including empty and deleted ones)."""
        try:
            return sorted(e.name for e in os.scandir(self._dir) if (Path(e.path) / _LOG).exists())
        except FileNotFoundError:
            return []

    def _handle(self, key, create):
        with self._guard:
            h = self._handles.get(key)
            if h is not None and create and not h.writable:
                h.close()
                h = None  # reopen for writing: raises PermissionError if this process may only read
            if h is None:
                path = self._dir / key / _LOG
                if create:
                    _mkdir(path.parent, self.dir_mode)
                elif not path.exists():
                    return None
                self._handles[key] = h = _Handle(path, create, self.file_mode)
            return h

    def read(self, key: str, cursor: Cursor) -> tuple[list[bytes], Cursor]:
        """Return the complete records after byte offset ``cursor`` and the offset after them.

        A torn last record (no final newline) is left unread, even when a snapshot of it exists (see
        :meth:`last_record_tail`): the first writer to take the lock settles it (:func:`torn_fate`).
        """
        h = self._handle(key, create=False)
        if h is None:
            return [], cursor
        size = os.fstat(h.fd).st_size
        if size <= cursor:
            return [], cursor
        data = os.pread(h.fd, size - cursor, cursor)
        end = data.rfind(b"\n") + 1
        if end == 0:
            return [], cursor
        return data[: end - 1].split(b"\n"), cursor + end

    def exclusive(self, key: str, meanwhile: Callable[[], bool] | None = None, settle: bool = True) -> _Exclusive:
        """Hold the stream's write lock (against other threads and processes) for the body.

        While another writer holds it (another process, or another database object on the same path),
        ``meanwhile()`` is called between tries for a short while: a writer reads the commits being appended,
        and returns whether it read anything. It runs with this store's thread lock of the stream held, so it
        must not write to the stream; an error it raises propagates, and the lock is not taken.

        Once the lock is held, a torn last record is settled (with ``settle``; ``schedy repair`` settles it
        itself): completed if it is a whole commit, cut off if not (see :func:`torn_fate`). So the body reads
        the log as every later reader will, and never appends after a torn record.
        """
        return _Exclusive(self._handle(key, create=True), meanwhile, self._settle if settle else None)

    def _settle(self, fd, size=None):
        """Complete or cut the torn last record of the log open at ``fd`` (under the lock); return the fate, or None."""
        if size is None:
            size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return None
        start, torn, previous = _torn_tail(fd, size)
        fate, _ = torn_fate(torn, expected_after(previous))
        if fate == COMPLETE:
            _write_all(fd, b"\n")
            # The commit may have been acknowledged and its newline lost once already: make it durable now,
            # rather than with the next durable commit.
            if self.durable:
                _fdatasync(fd)
        elif fate == CUT:
            # Not a whole commit (see torn_fate), so never taken by a reader: cutting it loses nothing readable.
            os.ftruncate(fd, start)
        return fate

    def append(self, key: str, cursor: Cursor, version: int, data: bytes, sync: bool = True) -> Cursor | None:
        """Append ``data`` if the log ends at ``cursor``; return the new cursor, or None if it has grown.

        With ``sync`` (and a durable store) the data is on disk when this returns;
        without, it is once :meth:`sync` (or a later synced append) returns.

        Must be called inside :meth:`exclusive`, which settles a torn last
        record first; one found after ``cursor`` all the same is settled here
        (if it is completed, None is returned: the log has grown). A log that
        still does not end at ``cursor`` (shorter: cut behind this writer's
        back; or torn after a damaged line) raises CorruptLogError, writing
        nothing: appending would glue the line to another or skip versions.
        On any error the file is cut back to ``cursor``, so a failed append
        leaves the log as it was.

        The caller's write is acknowledged only once this returns, that is once
        every byte of ``data``, its final newline last, is written (see
        :func:`torn_fate`).
        """
        h = self._handle(key, create=True)
        size = os.fstat(h.fd).st_size
        if size > cursor:
            if b"\n" in os.pread(h.fd, size - cursor, cursor):
                return None
            fate = self._settle(h.fd, size)
            if fate == COMPLETE:
                return None
            if fate == CUT:
                size = os.fstat(h.fd).st_size
        if size != cursor:
            why = (
                "fewer than this writer had read: it was cut behind its back (by schedy repair, or by hand)"
                if size < cursor
                else "and ends with a torn record after a damaged line (see schedy verify)"
            )
            raise CorruptLogError(
                f"{self.describe(key)} holds {size} bytes, {why}; nothing was written (open the experiment again)"
            )
        try:
            _write_all(h.fd, data)
        except BaseException:
            # The line has no final newline yet, so no reader has taken it: cutting it off is safe.
            os.ftruncate(h.fd, cursor)
            raise
        # From here the line is complete and readers (who take no lock) may already have folded it, so it
        # must stay even if the sync fails: the caller gets the error, the log keeps the commit.
        # Nothing is acknowledged before this point: `data` ends with its newline and every byte of it is written
        # (a torn record left by a writer was never acknowledged, unless it lost only its newline: torn_fate).
        # The sync comes here (sync=True) or, from StreamView.transact, after the lock is released and before the
        # caller hears of a durable commit; a claim and a durable=False store are acknowledged unsynced.
        if sync:
            self.sync(key, created=cursor == 0)
        return cursor + len(data)

    def sync(self, key: str, created: bool = False) -> None:
        """Make every line appended to the stream so far durable (nothing unless the store is durable).

        ``created``: the stream's file is new, so its name must be made durable too.
        """
        if not self.durable:
            return
        h = self._handle(key, create=True)
        _fdatasync(h.fd)
        if created:
            _fsync_dir(self._dir / key)
            _fsync_dir(self._dir)

    def initial_cursor(self) -> Cursor:
        """The cursor of a stream read from its beginning."""
        return 0

    def last_record_tail(self, key: str, cursor: Cursor) -> bytes:
        """The final bytes of the complete record that ends at byte ``cursor`` (for checking a snapshot).

        b"" if no complete line ends there. If the log ends one byte short of ``cursor`` with the end of a line,
        the snapshot's commit lacks its final newline (a torn record, see :func:`torn_fate`): readers do not take
        it, so BadRecord is raised, saying so.
        """
        h = self._handle(key, create=False)
        if h is None or cursor < 19:
            return b""
        data = os.pread(h.fd, 19, cursor - 19)
        if len(data) == 19 and data.endswith(b"\n"):
            return data[:-1]
        if len(data) == 18 and data.endswith(b'"}'):
            raise BadRecord(
                f"its commit is the last line of {self.describe(key)}, which lacks its final newline (a "
                f"torn record): readers do not take it"
            )
        return b""

    def write_snapshot(self, key: str, version: int, data: bytes) -> None:
        """Replace the stream's snapshot with ``data`` (atomically: a reader sees the old one or the new one)."""
        folder = self._dir / key
        tmp = folder / f".snapshot.{os.getpid()}.{threading.get_ident()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), self.file_mode)
        try:
            _exact_mode(fd, self.file_mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            # Not synced: a snapshot is an optimisation, checked against the log (CRC) when it is read, and one
            # that a power failure tore is ignored with a warning. A sync here cost a large experiment's writer
            # tens of milliseconds per snapshot.
        finally:
            os.close(fd)
        os.replace(tmp, folder / "snapshot.json")

    def latest_snapshot(self, key: str) -> bytes | None:
        """The bytes of the stream's snapshot, or None."""
        try:
            return (self._dir / key / "snapshot.json").read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    # -- maintenance (schedy.maintenance: verify and repair) -----------------------------------------------

    def scan(self, key: str) -> Scan | None:
        """Every line of the log, and a torn last record (:meth:`LogStore.scan <schedy.adapters.store.LogStore.scan>`).

        A record's position is the byte offset after its newline; a torn record's, the offset after the newline it
        would have once completed. There are never strays. The file is read without a lock (and opened read-only),
        so a read-only database can be checked.
        """
        path = self._dir / key / _LOG
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        end = data.rfind(b"\n") + 1
        records, offset = [], 0
        for number, line in enumerate(data[: end - 1].split(b"\n") if end else [], 1):
            records.append(Record(offset + len(line) + 1, f"line {number} (byte {offset}) of {path}", line))
            offset += len(line) + 1
        torn = None
        if end < len(data):
            torn = Record(len(data) + 1, f"the torn last record (byte {end}) of {path}", data[end:])
        return Scan(records, torn, [], numbered=False)

    def fate_of_torn(self, torn: Record, previous: Record | None) -> TornFate:
        """What a writer does with the torn record after ``previous``: :func:`torn_fate` (also in :meth:`exclusive`)."""
        return torn_fate(torn.data, expected_after(previous.data if previous is not None else None))

    def snapshot_records(self, key: str) -> list[StoredSnapshot]:
        """The stream's snapshot (none or one on this store), named by its path."""
        path = self._dir / key / "snapshot.json"
        try:
            return [StoredSnapshot(str(path), path.read_bytes())]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def describe_snapshot(self, key: str, name: str) -> str:
        """The snapshot's path (which is its name)."""
        return name

    def repair_lock(self, key: str) -> _Exclusive:
        """The write lock of :meth:`exclusive`, leaving a torn last record as it is (repair settles it itself)."""
        return self.exclusive(key, settle=False)

    def complete_torn(self, key: str, torn: Record) -> None:
        """Add the final newline to the torn last record ``torn`` (from :meth:`scan`), then fsync the log.

        Must be called inside :meth:`repair_lock`. Raises CorruptLogError, changing nothing, if the log no longer
        ends with it (its size changed, or it ends with a newline).
        """
        size = torn.position - 1  # the log's size while the record is torn: its end, before the newline
        h = self._handle(key, create=False)
        if h is None or os.fstat(h.fd).st_size != size or size == 0 or os.pread(h.fd, 1, size - 1) == b"\n":
            raise CorruptLogError(f"{self.describe(key)} changed while it was being repaired; nothing was completed")
        _write_all(h.fd, b"\n")
        os.fsync(h.fd)

    def damaged_destination(self, key: str, stamp: str) -> str:
        """``experiments/<key>/damaged-<stamp>.jsonl``, the file :meth:`set_aside_records` appends to."""
        return str(self._dir / key / f"damaged-{stamp}.jsonl")

    def set_aside_records(
        self, key: str, records: Sequence[Record], torn: Record | None, strays: Sequence[Stray], stamp: str
    ) -> Destination:
        """Move the bytes of the log from the first of ``records`` (else from ``torn``) to its end into
        :meth:`damaged_destination`, then cut the log there.

        Must be called inside :meth:`repair_lock`. The bytes are appended verbatim to that file (created if
        needed), which is fsynced (with its directory) before the log is truncated; then the log is fsynced too.
        Return the file and the byte of it where the bytes start (an earlier repair in the same second may have
        begun it).
        """
        if strays:
            raise ValueError("a log file has no strays")
        first = records[0] if records else torn
        if first is None:
            raise ValueError("nothing to set aside")
        offset = first.position - len(first.data) - 1  # where its line starts
        h = self._handle(key, create=False)
        size = os.fstat(h.fd).st_size
        data = _pread(h.fd, size - offset, offset)
        dest = Path(self.damaged_destination(key, stamp))
        fd = _create_or_open(dest, os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), self.file_mode)
        try:
            position = os.fstat(fd).st_size
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(self._dir / key)
        os.ftruncate(h.fd, offset)
        os.fsync(h.fd)
        return Destination(str(dest), position)

    def set_aside_snapshots(self, key: str, names: Sequence[str], stamp: str) -> list[str]:
        """Rename each snapshot to ``experiments/<key>/damaged-<stamp>.snapshot.json`` (then ``damaged-<stamp>-2...``
        if that name is taken); return the new paths."""
        folder = self._dir / key
        moved = []
        for name in names:
            target, n = f"damaged-{stamp}.snapshot.json", 1
            while (folder / target).exists():
                n += 1
                target = f"damaged-{stamp}-{n}.snapshot.json"
            os.replace(name, folder / target)
            _fsync_dir(folder)
            moved.append(str(folder / target))
        return moved

    def close(self):
        """Close every open file."""
        with self._guard:
            for h in self._handles.values():
                h.close()
            self._handles.clear()


_fdatasync = getattr(os, "fdatasync", os.fsync)


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
