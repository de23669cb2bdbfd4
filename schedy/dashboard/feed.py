"""Follow experiments' logs as they grow, for the dashboard and the report (read only).

A :class:`Feed` keeps one experiment's folded state (opened from its
snapshot, as workers open it) and the time of every commit (read from the
log itself, since a snapshot keeps no times), and renders the views of
:mod:`schedy.dashboard.views` once per version.
"""

import threading
import time
from urllib.parse import unquote

import orjson

from ..adapters.naming import stream_key
from ..adapters.stream import StreamView
from ..errors import ExperimentNotFoundError, SchedyError
from . import views

READER = "dashboard"  # never written: a feed only reads


class Feed:
    """One experiment's stream as the dashboard last read it."""

    def __init__(self, store, key, min_interval=0.0, clock=time.monotonic):
        self.store, self.key = store, key
        self.min_interval, self.clock = min_interval, clock
        # Named from its key until its log is read: a damaged log's error then names the experiment, not its key.
        self._view = StreamView(store, key, name_of(key), lambda: READER)
        self._times = []  # the time of commit v is _times[v - 1]
        self._checked = None
        self._lock = threading.Lock()
        self._rendered = {}  # (view, version) -> bytes; only the newest version is kept
        self.state = None

    @property
    def name(self):
        """The experiment's name: as its log says once read, else as its key tells."""
        return self._view.label

    def time_of(self, version):
        """The time stamped on commit ``version``, or None if it is not read yet."""
        return self._times[version - 1] if 0 < version <= len(self._times) else None

    def refresh(self):
        """Read what the log gained since the last read (at most once per ``min_interval``); return the state."""
        with self._lock:
            now = self.clock()
            if self._checked is not None and now - self._checked < self.min_interval:
                return self.state
            opening = self.state is None  # the view may open from a snapshot on any read until it has a state
            # A damaged log raises here, every time it is asked. The commits the view reads give their times.
            state = self._view.refresh(observe=self._note_times)
            if opening and self._view.snapshot == "used":
                # The commits before the snapshot were not read, and a snapshot keeps no time: read them once.
                records, _ = self.store.read(self.key, self.store.initial_cursor())
                head = min(len(records), state.version)
                self._times[:head] = [_time(rec) for rec in records[:head]]
            if state is not None:
                self._view.label = state.name
            self.state, self._checked = state, now
            return state

    def _note_times(self, commits):
        for c in commits:
            if c.version > len(self._times):
                self._times.extend([None] * (c.version - 1 - len(self._times)))
                self._times.append(c.time)

    def render(self, view, state, **kwargs):
        """The JSON bytes of ``views.<view>(state, time_of, **kwargs)``, cached for the newest version."""
        cache_key = (view, state.version, tuple(sorted(kwargs.items())))
        with self._lock:
            data = self._rendered.get(cache_key)
        if data is None:
            data = orjson.dumps(getattr(views, view)(state, self.time_of, **kwargs))
            with self._lock:
                if not self._rendered or max(k[1] for k in self._rendered) <= state.version:
                    self._rendered = {k: v for k, v in self._rendered.items() if k[1] == state.version}
                    self._rendered[cache_key] = data
        return data


def name_of(key):
    """The name a stream key was made from (``naming.stream_key``), or for a long name the start of it and its hash."""
    return unquote(key, errors="replace")


def _time(record):
    try:
        t = orjson.loads(record).get("t")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return t if type(t) in (int, float) else None


class Feeds:
    """The feeds of every experiment in one store, created as experiments appear."""

    def __init__(self, store, min_interval=0.0):
        self.store, self.min_interval = store, min_interval
        self._feeds = {}
        self._lock = threading.Lock()

    def _feed(self, key):
        with self._lock:
            feed = self._feeds.get(key)
            if feed is None:
                feed = self._feeds[key] = Feed(self.store, key, self.min_interval)
            return feed

    def all(self):
        """``[(feed, state, error)]`` for every live experiment, in the order of their names.

        ``error`` is None, or the error that stops its log from being read (a damaged commit, an unreadable
        file; ``state`` is then None): one such log is listed with its error and hides none of the others.
        """
        out = []
        for key in self.store.keys():  # noqa: SIM118 - a store, not a dict
            feed = self._feed(key)
            try:
                state, error = feed.refresh(), None
            except (SchedyError, OSError) as e:
                state, error = None, e
            if error is not None or (state is not None and not state.deleted):
                out.append((feed, state, error))
        return sorted(out, key=lambda entry: entry[0].name)

    def get(self, name):
        """``(feed, state)`` of experiment ``name``, freshly read; raise ExperimentNotFoundError if there is none."""
        feed = self._feed(stream_key(name))
        state = feed.refresh()
        if state is None or state.deleted or state.name != name:
            raise ExperimentNotFoundError(f"no experiment named {name!r}")
        return feed, state
