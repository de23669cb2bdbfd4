"""Checking and repairing logs: ``verify`` and ``repair`` (also ``schedy verify`` and ``schedy repair``).

``verify(db, name=None)`` reads every record of every experiment (or of the
one named) and reports every problem it can find, instead of stopping at the
first one as a reader must::

    from schedy.maintenance import verify, repair

    report = verify(db)            # db: a SchedyDB, or its location
    if not report.ok:
        print(report)              # one line per experiment, then its problems

It checks, for each experiment: the CRC and the shape of every record;
that versions run 1, 2, 3... with none missing; that folding the log
succeeds; that no job was claimed by two workers at once; that each snapshot
the readers would use gives the state a replay of the log gives; and it
reports a torn last record (a line without its final newline) as a warning,
saying what writers do with it: complete it, if it is the next commit whole
with a CRC that checks, else cut it off (see docs/repair.md).

``repair(db, name)`` keeps every commit before the first damaged one and
moves the damaged record and everything after it aside (never deletes it):
on the local file store the bytes are appended verbatim to
``experiments/<key>/damaged-<UTC time>.jsonl``, fsynced before the log is cut,
under the log's exclusive lock; on object storage each object is copied to
``experiments/<key>/damaged-<UTC time>/`` and checked before it is deleted.
Snapshots that no longer describe the kept log are moved aside too. A torn
last record that writers would complete is completed instead (its final
newline added), if it folds. See docs/repair.md.

Both work on any :class:`~schedy.adapters.store.LogStore` through its
protocol (``scan``, ``fate_of_torn``, ``snapshot_records``, ``repair_lock``,
``complete_torn``, ``set_aside_records``, ``set_aside_snapshots``...): what
differs between stores (bytes or objects, a lock or none) stays in the stores.
"""

import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

from .adapters.api import SchedyDB
from .adapters.naming import stream_key
from .adapters.store import COMPLETE, LEAVE, LogStore, Record, Scan, Stray
from .core import events as ev
from .core.check import find_backwards_times, find_double_claims
from .core.codec import BadRecord, decode_commit
from .core.snapshot import decode_snapshot
from .core.state import apply
from .errors import CorruptLogError, DatabaseError, ExperimentNotFoundError, UnsupportedFormatError

ERROR, WARNING = "error", "warning"


# -- reports ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One finding of :func:`verify`: an ``error`` (the log breaks an invariant) or a ``warning``."""

    severity: str
    message: str
    commit: int | None = None  # the commit it concerns, when there is one

    def __str__(self):
        return f"{self.severity}: {self.message}"


@dataclass
class ExperimentReport:
    """What :func:`verify` found in one experiment's log."""

    name: str  # the experiment's name as its log gives it (or as the store key spells it, if unreadable)
    key: str  # the store key of its stream
    location: str  # where its log lives
    commits: int  # complete records in the log
    intact: int  # commits 1..intact read, follow each other and fold: what repair keeps (+ a torn commit it completes)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self):
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self):
        return [p for p in self.problems if p.severity == WARNING]

    @property
    def ok(self):
        """True if no invariant is broken (warnings allowed)."""
        return not self.errors

    def summary(self):
        """One line: name, commits, OK or how many problems."""
        commits = f"{self.commits} commit{'' if self.commits == 1 else 's'}"
        if self.ok:
            w = len(self.warnings)
            return f"{self.name}: {commits}, OK" + (f" ({w} warning{'' if w == 1 else 's'})" if w else "")
        e = len(self.errors)
        return f"{self.name}: {commits}, {e} error{'' if e == 1 else 's'}"

    def __str__(self):
        return "\n".join([self.summary(), *(f"  {p}" for p in self.problems)])


@dataclass
class VerifyReport:
    """What :func:`verify` found: one :class:`ExperimentReport` per experiment checked."""

    database: str
    experiments: list[ExperimentReport]

    @property
    def ok(self):
        """True if every experiment checked holds every invariant (warnings allowed)."""
        return all(e.ok for e in self.experiments)

    def __getitem__(self, name):
        """The report of the experiment ``name``."""
        for e in self.experiments:
            if e.name == name:
                return e
        raise KeyError(name)

    def __str__(self):
        lines = [str(e) for e in self.experiments]
        bad = sum(not e.ok for e in self.experiments)
        n = len(self.experiments)
        tail = f"{n} experiment{'' if n == 1 else 's'} checked in {self.database}"
        lines.append(tail + (f": {bad} with errors" if bad else ": all OK"))
        return "\n".join(lines)


@dataclass(frozen=True)
class SetAside:
    """One record :func:`repair` moved out of the log."""

    version: int | None  # the commit the record holds, or None if it cannot be read
    due: int  # the commit that was due where the record stood (the previous one plus 1)
    where: str  # where it was
    size: int  # its bytes (without the newline)

    def __str__(self):
        if self.version is None:
            what = f"an unreadable record where commit {self.due} was due"
        elif self.version != self.due:
            what = f"commit {self.version} (found where commit {self.due} was due)"
        else:
            what = f"commit {self.version}"
        return f"{what}: {self.size} bytes from {self.where}"


@dataclass
class RepairReport:
    """What :func:`repair` did (or, with ``dry_run``, would do) to one experiment."""

    name: str
    key: str
    location: str
    dry_run: bool
    kept: int  # commits 1..kept stay in the log
    set_aside: list[SetAside] = field(default_factory=list)
    torn: int = 0  # bytes of a torn last record set aside
    completed: int | None = None  # the torn last commit completed (its final newline added), if any
    strays: list[str] = field(default_factory=list)  # objects in the log folder that are not commits, set aside
    snapshots: list[str] = field(default_factory=list)  # snapshots set aside
    destination: str | None = None  # where the records went
    destination_offset: int | None = None  # file store: byte of the destination file where they start
    snapshot_destinations: list[str] = field(default_factory=list)
    unrepaired: list[Problem] = field(default_factory=list)  # errors repair does not fix (double claims)

    @property
    def changed(self):
        """True if the repair moves (or, in a dry run, would move) anything."""
        return bool(self.set_aside or self.torn or self.completed or self.strays or self.snapshots)

    def __str__(self):
        lines = [f"experiment {self.name!r} ({self.location}):"]
        if not self.changed:
            lines.append(
                {0: "  nothing to repair: the log is empty", 1: "  nothing to repair: commit 1 is intact"}.get(
                    self.kept, f"  nothing to repair: commits 1-{self.kept} are intact"
                )
            )
        else:
            keep = "would keep" if self.dry_run else "kept"
            kept = {0: "no commit", 1: "commit 1"}.get(self.kept, f"commits 1-{self.kept}")
            lines.append(f"  {keep} {kept}")
            moved = "would set aside" if self.dry_run else "set aside"
            for r in self.set_aside:
                lines.append(f"  {moved} {r}")
            if self.torn:
                lines.append(f"  {moved} a torn last record of {self.torn} bytes")
            if self.completed:
                done, add = ("would complete", "would add") if self.dry_run else ("completed", "added")
                lines.append(
                    f"  {done} commit {self.completed}, a torn last record whose CRC checks: {add} its final newline"
                )
            for s in self.strays:
                lines.append(f"  {moved} {s} (not a commit)")
            if self.destination:
                at = f" (from byte {self.destination_offset})" if self.destination_offset else ""
                lines.append(f"  {'to' if self.dry_run else 'into'} {self.destination}{at}")
            went: list[str | None] = [*self.snapshot_destinations] or [None] * len(self.snapshots)
            for s, d in zip(self.snapshots, went):
                lines.append(f"  {moved} the snapshot {s}" + (f" -> {d}" if d else ""))
        for p in self.unrepaired:
            lines.append(f"  not repaired ({p.severity}): {p.message}")
        return "\n".join(lines)


# -- reading a stream ---------------------------------------------------------------------------------------


@dataclass
class _Analysis:
    report: ExperimentReport
    records: list[Record]
    cut: int | None  # index in records of the first record outside the intact prefix
    cut_commit: int  # the commit number that record stood for
    record_commits: list  # for each record: (the commit number it stood for, the version it claims or None)
    torn: Record | None
    completable: int | None  # the version of a torn last commit that folds and that repair completes
    strays: list[Stray]
    bad_snapshots: list  # (name, why) of snapshots repair must move aside
    newer_format: str | None  # the message of an UnsupportedFormatError met while folding
    shown: dict  # snapshot name -> how reports show it


def open_database(db, **options):
    """A SchedyDB for ``db``: a SchedyDB, or a location opened with ``options``, which must hold a database."""
    if isinstance(db, SchedyDB):
        return db
    location = os.fspath(db)
    if "://" not in location or location.startswith("file://"):
        path = unquote(urlparse(location).path) if location.startswith("file://") else location
        if not os.path.isfile(os.path.join(path, "SCHEDY")):
            raise DatabaseError(f"there is no Schedy database at {path!r}")
    return SchedyDB(location, **options)


def _name_from_key(key):
    if "~" in key:
        return None
    try:
        return unquote(key, errors="strict")
    except UnicodeDecodeError:
        return None


def _ending_at(records, cursor):
    """The index of the record a reader has just read at ``cursor`` (a snapshot at ``cursor`` is of it), or None."""
    for index, r in enumerate(records):
        if r.position == cursor:
            return index
    return None


def _tail_at(records, cursor):
    """The CRC field a reader finds at ``cursor`` when it checks a snapshot (mirrors ``last_record_tail``)."""
    index = _ending_at(records, cursor)
    return b"" if index is None else records[index].data[-18:][-10:-2]


def _first_difference(a, b):
    """A short description of where two experiment states differ."""
    for f in a._fields:
        x, y = getattr(a, f), getattr(b, f)
        if x != y:
            if f == "jobs":
                for job_id in sorted(set(x) | set(y), key=lambda j: (len(str(j)), str(j))):
                    if x.get(job_id) != y.get(job_id):
                        return f"job {job_id!r}"
            return f"field {f!r}"
    return "nothing"


def _analyse(db, key, label=None):
    store: LogStore = db._store
    found: Scan | None = store.scan(key)
    if found is None:
        return None
    records, torn, strays = found.records, found.torn, found.strays
    numbered = found.numbered  # each record is stored under the version due there (an object named after it)
    problems = []
    state, intact, cut, cut_commit = None, 0, None, 1
    good = []  # commits of the intact prefix
    record_commits: list = []
    name = label
    newer = None
    snapshots = store.snapshot_records(key)
    decoded_snapshots: list = []  # (name, (state, cursor, crc) or None, why not)
    shown = {where: store.describe_snapshot(key, where) for where, _ in snapshots}
    for where, data in snapshots:
        try:
            decoded = decode_snapshot(data)
            if type(decoded[0].version) is not int:
                raise BadRecord(f"its version is {decoded[0].version!r}")
            decoded_snapshots.append((where, decoded, None))
        except Exception as e:  # noqa: BLE001 - whatever is wrong with a snapshot, readers ignore it
            decoded_snapshots.append((where, None, str(e) if isinstance(e, BadRecord) else f"{type(e).__name__}: {e}"))
    wanted = {s[0].version for _, s, _ in decoded_snapshots if s is not None}
    states_at = {}
    stream = f"experiment {label!r}" if label is not None else f"stream {key!r}"

    def broken(index, commit):
        nonlocal cut, cut_commit
        if cut is None:
            cut, cut_commit = index, commit

    def fold_one(commit):
        """The state after ``commit``, which joins the intact prefix (raises if the fold refuses it)."""
        nonlocal name
        folded = apply(state, commit, stream)
        good.append(commit)
        if commit.version in wanted:
            states_at[commit.version] = folded
        for e in commit.events:
            if e.get("type") == "ExperimentCreated" and type(e.get("name")) is str:
                name = e["name"] if label is None else name
        return folded

    def fold_error(e, commit):
        """How a failure of the fold at ``commit`` is reported (and a newer format remembered)."""
        nonlocal newer
        msg = (
            str(e)
            if isinstance(e, CorruptLogError)
            else f"commit {commit.version} cannot be folded ({type(e).__name__}: {e})"
        )
        if msg.startswith(stream + ": "):
            msg = msg[len(stream) + 2 :]
        if isinstance(e, UnsupportedFormatError) and newer is None:
            newer = msg
        return msg

    expected = 1
    for index, (pos, where, data) in enumerate(records):
        if numbered and pos != expected:
            if pos > expected:
                missing = f"commit {expected}" if pos == expected + 1 else f"commits {expected}-{pos - 1}"
                problems.append(
                    Problem(ERROR, f"{missing} missing: the log jumps from {expected - 1} to {pos}", expected)
                )
                broken(index, expected)
            expected = pos
        try:
            commit = decode_commit(data)
        except BadRecord as e:
            problems.append(Problem(ERROR, f"commit {expected} is damaged ({e}) at {where}", expected))
            record_commits.append((expected, None))
            broken(index, expected)
            expected += 1
            continue
        record_commits.append((expected, commit.version))
        if commit.version != expected:
            if numbered:
                why = f"the object of commit {expected} holds commit {commit.version}"
            elif commit.version > expected:
                gap = (
                    f"commit {expected} is"
                    if commit.version == expected + 1
                    else f"commits {expected}-{commit.version - 1} are"
                )
                why = f"{gap} missing: {where} holds commit {commit.version}"
            else:
                why = (
                    f"commit {commit.version} appears again (or out of order) at {where}, where commit "
                    f"{expected} was due"
                )
            problems.append(Problem(ERROR, why, expected))
            broken(index, expected)
            if numbered:
                expected += 1  # the object stood where commit `expected` was due
            elif commit.version > expected:
                expected = commit.version + 1  # the missing ones are reported; go on from the one found
            continue
        expected += 1
        if cut is not None:
            continue
        try:
            folded = fold_one(commit)
        except Exception as e:  # noqa: BLE001 - CorruptLogError, or anything else the fold should have turned into one
            problems.append(Problem(ERROR, f"{fold_error(e, commit)} (the fold stops here)", commit.version))
            broken(index, commit.version)
            continue
        state, intact = folded, commit.version
    if cut is not None and len(records) - cut > 1:
        problems.append(
            Problem(
                WARNING,
                f"the fold stops at commit {cut_commit}: the {len(records) - cut} records "
                f"from there on were checked only for damage and order",
            )
        )
    # A torn last record: readers ignore it; a writer, once it holds the lock, completes it, cuts it off or
    # leaves it, as the store says (LogStore.fate_of_torn).
    completable = None
    if torn is not None:
        fate, version = store.fate_of_torn(torn, records[-1] if records else None)
        if fate == COMPLETE and cut is None:
            commit = decode_commit(torn.data)
            try:
                state = fold_one(commit)
            except Exception as e:  # noqa: BLE001 - as in the loop above
                problems.append(
                    Problem(
                        ERROR,
                        f"{fold_error(e, commit)}; it is a torn last record whose CRC "
                        f"checks: the next writer completes it (it cannot tell that it does "
                        f"not fold), and every reader then stops there; repair sets it aside",
                        version,
                    )
                )
            else:
                completable = version
                problems.append(
                    Problem(
                        WARNING,
                        f"commit {version} lacks its final newline (a torn last record of "
                        f"{len(torn.data)} bytes whose CRC checks: a crash lost the newline, "
                        f"or its writer stopped just before it): readers do not take it yet, "
                        f"the next writer (or repair) completes it and keeps it",
                        version,
                    )
                )
        elif fate == COMPLETE:
            problems.append(
                Problem(
                    WARNING,
                    f"commit {version} lacks its final newline (a torn last record of "
                    f"{len(torn.data)} bytes whose CRC checks): the next writer completes it, "
                    f"but it lies after the damage at commit {cut_commit}: repair sets it "
                    f"aside with the records from there on",
                    version,
                )
            )
        elif fate == LEAVE:
            problems.append(
                Problem(
                    WARNING,
                    f"a torn last record of {len(torn.data)} bytes follows the damaged record "
                    f"where commit {record_commits[-1][0]} was due: readers stop at the "
                    f"damage and writers leave it as it is; repair sets it aside with the "
                    f"damaged records",
                )
            )
        else:
            problems.append(
                Problem(
                    WARNING,
                    f"a torn last record of {len(torn.data)} bytes follows commit "
                    f"{len(records)} (not a whole commit: a write that never completed, or "
                    f"what a crash left of an unsynced one): readers ignore it, the next "
                    f"writer cuts it off",
                )
            )
    for where, _ in strays:
        problems.append(Problem(ERROR, f"unexpected object in the log: {where}"))
    try:
        double = find_double_claims(good)
    except Exception as e:  # noqa: BLE001 - the events folded, so this would be a bug of the checker
        problems.append(Problem(ERROR, f"the claims cannot be checked ({type(e).__name__}: {e})"))
        double = []
    for c in double:
        problems.append(
            Problem(
                ERROR,
                f"double claim: commit {c.version} gives job {c.job_id!r} to {c.worker!r} while "
                f"{c.holder!r} still holds it",
                c.version,
            )
        )
    lease = state.lease if state is not None else ev.DEFAULT_LEASE
    backwards = find_backwards_times(good, lease)
    if backwards:
        b, workers = backwards[0], {w for x in backwards for w in (x.worker, x.after_worker)}
        problems.append(
            Problem(
                WARNING,
                f"commit times run backwards by more than the lease ({lease:g} s) "
                f"{len(backwards)} time{'' if len(backwards) == 1 else 's'}, by up to "
                f"{b.seconds:.0f} s (commit {b.version} by {b.worker!r} is stamped before "
                f"commit {b.after} by {b.after_worker!r}): the clocks of "
                f"{', '.join(map(repr, sorted(workers)))} disagree; leases do not depend "
                f"on them, but commit times shown (history, as_of a time) do",
                b.version,
            )
        )
    # Snapshots: a reader uses one when the log still holds, at its cursor, the commit it was taken at (a
    # complete line). One of a torn commit that writers complete is checked as it will be used then.
    bad_snapshots = []
    lines: list[Record] = records
    commits_at: list = record_commits
    if completable is not None and torn is not None:
        lines = records + [torn]
        commits_at = record_commits + [(completable, completable)]
    for where, decoded, why in decoded_snapshots:
        if decoded is None:
            problems.append(Problem(WARNING, f"snapshot {shown[where]} cannot be read ({why}): readers ignore it"))
            bad_snapshots.append((where, why))
            continue
        snap, cursor, crc = decoded
        v = snap.version
        if _tail_at(lines, cursor) != crc.encode("ascii", "replace"):
            problems.append(
                Problem(
                    WARNING,
                    f"snapshot {shown[where]} of commit {v} is stale: the log no longer holds that "
                    f"commit as the snapshot saw it, so readers ignore it",
                    v,
                )
            )
            bad_snapshots.append((where, "stale"))
            continue
        # The commit the record at the cursor stands for: where records are numbered, the version due there
        # (its position); elsewhere, the version it holds (the one due there if it cannot be read).
        index = _ending_at(lines, cursor)
        at = None
        if index is not None:
            due, version = commits_at[index]
            at = due if version is None or numbered else version
        if at != v:
            problems.append(
                Problem(
                    ERROR, f"snapshot {shown[where]} says commit {v} but points at commit {at}: readers would use it", v
                )
            )
            bad_snapshots.append((where, "misplaced"))
        elif v > (completable or intact):
            problems.append(
                Problem(
                    WARNING,
                    f"snapshot {shown[where]} of commit {v} lies after the damage at commit "
                    f"{cut_commit}: readers that open from it do not see the damage",
                    v,
                )
            )
            bad_snapshots.append((where, "after the damage"))
        elif states_at.get(v) != snap:
            diff = _first_difference(snap, states_at[v]) if v in states_at else "everything"
            problems.append(
                Problem(
                    ERROR,
                    f"snapshot {shown[where]} of commit {v} disagrees with the log (replaying "
                    f"commits 1-{v} gives another {diff}): readers would use it",
                    v,
                )
            )
            bad_snapshots.append((where, "disagrees"))
        elif v == completable:
            problems.append(
                Problem(
                    WARNING,
                    f"snapshot {shown[where]} is of commit {v}, which is torn: readers ignore "
                    f"it until a writer completes the commit, then use it (it agrees with "
                    f"the log)",
                    v,
                )
            )
    if name is None:
        name = _name_from_key(key) or key
    report = ExperimentReport(
        name=name, key=key, location=store.describe(key), commits=len(records), intact=intact, problems=problems
    )
    return _Analysis(
        report, records, cut, cut_commit, record_commits, torn, completable, strays, bad_snapshots, newer, shown
    )


# -- verify -------------------------------------------------------------------------------------------------


def verify(db, name=None):
    """Check every experiment of ``db`` (a SchedyDB or a location), or only ``name``; return a :class:`VerifyReport`.

    Never stops at the first problem where it can go on: every record is
    checked, and every problem is listed. Raises ExperimentNotFoundError if
    ``name`` has no log, DatabaseError if a local ``db`` location holds no
    database.
    """
    db = open_database(db)
    if name is not None:
        key = stream_key(name)
        analysis = _analyse(db, key, name)
        if analysis is None:
            raise ExperimentNotFoundError(f"no experiment named {name!r} in {db.path}")
        return VerifyReport(str(db.path), [analysis.report])
    reports = []
    for key in db._store.keys():  # noqa: SIM118 - a store, not a dict
        analysis = _analyse(db, key)
        if analysis is not None:
            reports.append(analysis.report)
    return VerifyReport(str(db.path), reports)


# -- repair -------------------------------------------------------------------------------------------------


def _stamp():
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def repair(db, name, *, dry_run=False):
    """Keep the commits of ``name`` before its first damaged one; move that record and every later one aside.

    Nothing is deleted: on the file store the bytes go, verbatim, to
    ``experiments/<key>/damaged-<UTC time>.jsonl`` (fsynced before the log is
    cut, under the log's exclusive lock); on object storage the objects are
    copied to ``experiments/<key>/damaged-<UTC time>/`` and checked before
    they are deleted. A torn last record is set aside too, and so is every
    snapshot that readers would not use or that disagrees with the kept log,
    except a torn last commit that writers complete (its CRC checks, it is
    the next commit) and that folds: it may be an acknowledged commit that
    lost its newline, so repair completes it too (``completed``).
    Double claims are reported (``unrepaired``) but not touched: the records
    are intact, and cutting them would lose work. With ``dry_run``, nothing
    changes and the report says what would be done. Refuses
    (UnsupportedFormatError) to cut a log written in a newer format: upgrade
    Schedy instead. Return a :class:`RepairReport`.
    """
    db = open_database(db)
    key = stream_key(name)
    store: LogStore = db._store
    if store.scan(key) is None:
        raise ExperimentNotFoundError(f"no experiment named {name!r} in {db.path}")
    # Writers kept out, where the store can (its lock, but not settling a torn record on entry: repair completes
    # a torn last commit only if it folds, and sets other torn bytes aside). A dry run changes nothing: no lock.
    with nullcontext() if dry_run else store.repair_lock(key):
        return _repair(db, key, name, dry_run)


def _repair(db, key, name, dry_run):
    store = db._store
    a = _analyse(db, key, name)
    if a.newer_format is not None:
        raise UnsupportedFormatError(
            f"experiment {name!r}: {a.newer_format}; this log was written by a newer Schedy. "
            f"Upgrade Schedy rather than repair it: nothing was changed"
        )
    report = RepairReport(
        name=name,
        key=key,
        location=a.report.location,
        dry_run=dry_run,
        kept=a.cut_commit - 1 if a.cut is not None else a.completable or a.report.intact,
    )
    if a.cut is not None:
        for (_pos, where, data), (due, version) in zip(a.records[a.cut :], a.record_commits[a.cut :]):
            report.set_aside.append(SetAside(version, due, where, len(data)))
    report.torn = 0 if a.completable or a.torn is None else len(a.torn.data)
    report.completed = a.completable
    report.strays = [s.where for s in a.strays]
    report.snapshots = [a.shown[where] for where, _ in a.bad_snapshots]
    report.unrepaired = [p for p in a.report.errors if p.message.startswith("double claim")]
    if not report.changed:
        return report
    stamp = _stamp()
    records_moved = bool(report.set_aside or report.torn or report.strays)
    if records_moved:
        report.destination = store.damaged_destination(key, stamp)
    if dry_run:
        return report
    if report.completed:
        store.complete_torn(key, a.torn)
    if records_moved:
        moved = a.records[a.cut :] if a.cut is not None else []
        report.destination, report.destination_offset = store.set_aside_records(
            key, moved, a.torn if report.torn else None, a.strays, stamp
        )
    if a.bad_snapshots:
        report.snapshot_destinations = store.set_aside_snapshots(key, [where for where, _ in a.bad_snapshots], stamp)
    return report
