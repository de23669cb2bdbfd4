"""Shared fixtures: every API test runs against every log store listed in STORES."""

import pytest

import schedy
from schedy.adapters.naming import stream_key
from schedy.core.codec import decode_commit


def _file_db(tmp_path):
    return str(tmp_path / "db")


# One line per store: a function from a fresh temporary directory to a SchedyDB location.
STORES = {"file": _file_db}


@pytest.fixture(params=sorted(STORES))
def db_path(request, tmp_path):
    """A fresh database location on each store."""
    return STORES[request.param](tmp_path)


@pytest.fixture
def db(db_path):
    return schedy.SchedyDB(db_path)


def log_commits(db, name):
    """Every commit of experiment ``name``, decoded from the store (for the invariant checker)."""
    store, key = db._store, stream_key(name)
    records, _ = store.read(key, store.initial_cursor())
    return [decode_commit(r) for r in records]


def log_size(db, name):
    """Number of complete records of ``name``'s stream, to prove that a refused call wrote nothing."""
    store = db._store
    records, _ = store.read(stream_key(name), store.initial_cursor())
    return len(records)
