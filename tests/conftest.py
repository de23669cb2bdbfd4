"""Shared fixtures: every API test runs against every log store listed in STORES.

The S3 store is tested against a real S3 API over HTTP on loopback: a moto
server in its own process, started once per test session (or the one named by
``SCHEDY_TEST_S3_ENDPOINT``). Its address and dummy credentials are exported
as the usual AWS_* variables, so worker subprocesses reach it too.
"""

import base64
import hashlib
import hmac
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from email.utils import formatdate

import pytest

import schedy
from schedy.adapters.naming import stream_key
from schedy.core.codec import decode_commit


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    """The endpoint of a running S3-compatible server on loopback."""
    given = os.environ.get("SCHEDY_TEST_S3_ENDPOINT")
    proc = None
    if given:
        endpoint = given
    else:
        port = _free_port()
        endpoint = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint + "/", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    proc.kill()
                    raise RuntimeError("the local S3 server (moto) did not start")
                time.sleep(0.1)
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "schedy-test", "AWS_SECRET_ACCESS_KEY": "schedy-test",
           "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield endpoint
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    if proc is not None:
        proc.terminate()
        proc.wait(timeout=10)


def new_bucket(endpoint):
    """Create a fresh bucket on the test server and return its name."""
    name = f"schedy-{uuid.uuid4().hex[:12]}"
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{name}", method="PUT"), timeout=10)
    return name


def _file_db(request, tmp_path):
    return str(tmp_path / "db")


def _memory_db(request, tmp_path):
    return f"memory://{uuid.uuid4().hex}/db"


def _s3_db(request, tmp_path):
    endpoint = request.getfixturevalue("s3_endpoint")
    return f"s3://{new_bucket(endpoint)}/team/db"


AZURITE_URL = os.environ.get("SCHEDY_TEST_AZURITE_URL")  # an Azurite blob service (.ci/run starts one)
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="  # Azurite's own


def create_container(name):
    """Create a container on Azurite with a Shared Key request (obstore creates objects, not containers)."""
    headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": "2021-08-06"}
    canonical = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
    to_sign = "PUT\n" + "\n" * 11 + canonical + f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container"
    key = base64.b64decode(AZURITE_KEY)
    signature = base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()
    authorization = f"SharedKey {AZURITE_ACCOUNT}:{signature}"
    request = urllib.request.Request(f"{AZURITE_URL}/{AZURITE_ACCOUNT}/{name}?restype=container", method="PUT",
                                     headers={**headers, "Authorization": authorization, "Content-Length": "0"})
    assert urllib.request.urlopen(request, timeout=10).status == 201


def _azure_db(request, tmp_path):
    if not AZURITE_URL:
        pytest.skip("set SCHEDY_TEST_AZURITE_URL to an Azurite blob service to test az:// (.ci/run does)")
    name = f"schedy-{uuid.uuid4().hex[:12]}"
    create_container(name)
    # The environment, so that worker subprocesses open the same store from the URL alone.
    env = {"AZURE_STORAGE_ACCOUNT_NAME": AZURITE_ACCOUNT, "AZURE_STORAGE_ACCOUNT_KEY": AZURITE_KEY,
           "AZURE_STORAGE_ENDPOINT": f"{AZURITE_URL}/{AZURITE_ACCOUNT}", "AZURE_ALLOW_HTTP": "true"}
    monkeypatch = request.getfixturevalue("monkeypatch")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return f"az://{name}/team/db"


# One line per store: a function from (request, a fresh temporary directory) to a SchedyDB location.
# Azure runs only where SCHEDY_TEST_AZURITE_URL names an Azurite (.ci/run starts one); it skips elsewhere.
STORES = {"file": _file_db, "memory": _memory_db, "s3": _s3_db, "azure": _azure_db}
# Stores that other processes can open (memory:// lives inside one process).
SHARED_STORES = {"file", "s3", "azure"}


@pytest.fixture(params=sorted(STORES))
def db_path(request, tmp_path):
    """A fresh database location on each store."""
    return STORES[request.param](request, tmp_path)


@pytest.fixture
def shared_db_path(request, db_path):
    """Like ``db_path``, but skips stores that other processes cannot open."""
    if request.node.callspec.params["db_path"] not in SHARED_STORES:
        pytest.skip("this store lives inside one process")
    return db_path


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


SCHEDY_EXE = os.path.join(os.path.dirname(sys.executable), "schedy")


@pytest.fixture
def cli(tmp_path):
    """Run the installed ``schedy`` executable in a subprocess on a fresh local database.

    ``cli("list", "-t")`` returns the CompletedProcess (text output, never
    raises on a non-zero exit). ``cli.db`` is the database path, also in
    ``$SCHEDY_DB`` of the child; ``env=`` adds variables, ``input=`` feeds
    stdin, ``cwd=`` sets the directory (default: the test's tmp_path).
    Output is at least 200 columns wide so rich tables are not cut.
    """
    if not os.path.exists(SCHEDY_EXE):
        pytest.fail(f"the schedy executable is not installed next to {sys.executable}: pip install -e .")
    db = str(tmp_path / "db")

    def run(*args, input=None, env=None, cwd=None, timeout=120):
        full = dict(os.environ, SCHEDY_DB=db, COLUMNS="200", PYTHONIOENCODING="utf-8")
        for var in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
            full.pop(var, None)  # rich would treat the pipe as a terminal, or drop colours tests do not expect
        full.update(env or {})
        return subprocess.run([SCHEDY_EXE, *map(str, args)], input=input, env=full, cwd=cwd or tmp_path,
                              capture_output=True, text=True, timeout=timeout)

    run.db = db
    return run


@pytest.fixture
def fault_proxy(s3_endpoint):
    """A fault-injecting proxy (tests/faultproxy.py) in front of the test S3 server; forwards everything until told."""
    from faultproxy import FaultProxy

    with FaultProxy(s3_endpoint, seed=20261129) as proxy:
        yield proxy
