"""Shared fixtures: every API test runs against every log store listed in STORES.

The S3 store is tested against a real S3 API over HTTP on loopback: a moto
server in its own process, started once per test session (or the one named by
``SCHEDY_TEST_S3_ENDPOINT``). Its address and dummy credentials are exported
as the usual AWS_* variables, so worker subprocesses reach it too.

The tests run in parallel (pytest-xdist, ``-n auto --dist loadgroup`` in
pyproject.toml): each xdist worker is a process with its own session, so its
own moto server on a port of its own, its own ``tmp_path`` tree and its own
environment. Tests that must not run at the same time as one another are in
one group of ``XDIST_GROUPS`` below, which a single worker runs one test after
the other while the other workers run the rest.
"""

import base64
import fnmatch
import hashlib
import hmac
import json
import os
import re
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

# -- running in parallel ------------------------------------------------------------------------------------

# Tests that must not run at the same time as one another, by group: fnmatch patterns of node ids. One xdist
# worker runs a group, one test after the other, while the other workers run everything else.
XDIST_GROUPS = {
    # Many real worker processes each (2 to 8 per test, racing on one log, killed, or on skewed clocks), and
    # the tests through the fault proxy, whose client timeout is 1 s: on 2 CPUs two of them at once slow each
    # other down towards their timeouts and fairness bounds.
    "processes": [
        "tests/test_processes.py::*",
        "tests/test_crash_recovery.py::*",
        "tests/test_clock_skew.py::*",
        "tests/test_pbt_e2e.py::*",
        "tests/test_pbt_modes_e2e.py::*",
        "tests/test_asha_e2e.py::*",
        "tests/test_bayes_e2e.py::*",
        "tests/test_objectstore_faults.py::*",
        "tests/test_contention.py::test_eight_processes_*",
        "tests/stores/test_stores.py::*::test_processes_appending_concurrently_*",
        "tests/test_docs.py::test_the_readme_example_runs_in_four_processes_at_once",
        "tests/test_simulation.py::test_several_worker_counts_in_parallel_*",
        "tests/test_original_examples.py::*_workers*",
        "tests/test_filestore.py::test_forked_children_*",  # needs 2 of its 4 processes to get jobs
        # Through the fault proxy too; and it calls asyncio.run() (tests/longlog.py), which fails in a process
        # where the browser tests have run (Playwright's sync API keeps an event loop running in the main
        # thread until the session's end): this group is never on the browser tests' worker.
        "tests/test_objectstore_reads.py::*",
    ],
    # One chromium for the whole file (a session fixture) and module fixtures shared by its tests. Being the
    # second largest group, it starts at once on its own worker, before that process has opened many files
    # (its select() fails on a file descriptor above 1023).
    "browser": [
        "tests/test_dashboard_browser.py::*",
        "tests/test_dashboard_bugs.py::*",
        "tests/test_dashboard_population.py::*",
        "tests/test_dashboard_hyperparameters.py::*",
    ],
    # One one-node Slurm for the file's tests (a module fixture); they mostly wait for it.
    "slurm": ["tests/test_cluster_slurm.py::*"],
}


def xdist_group_of(nodeid):
    """The group of XDIST_GROUPS that the test ``nodeid`` belongs to, or None."""
    for group, patterns in XDIST_GROUPS.items():
        if any(fnmatch.fnmatchcase(nodeid, p) for p in patterns):
            return group
    return None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` with the groups of XDIST_GROUPS, read from the node ids by the controller.

    pytest-xdist's own loadgroup learns a test's ``xdist_group`` mark from a suffix that the worker appends
    to its node id, which pytest 9.2 no longer lets it do (pytest-xdist issue 1386): the marks are then
    ignored and every test is scheduled alone. Groups matched here from the node ids work with any pytest,
    and a suffix, where xdist still adds one, is honoured as before. The largest units go first.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            if nodeid.rfind("@") > nodeid.rfind("]"):
                return nodeid.rsplit("@", 1)[1]  # an xdist_group mark
            return xdist_group_of(nodeid) or nodeid

    return GroupScheduling(config, log)


def _whole_suite(config):
    """True when this run is the whole suite: no test named on the command line and none deselected."""
    if config.args_source != pytest.Config.ArgsSource.TESTPATHS:
        return False
    narrowing = ("keyword", "markexpr", "lf", "deselect", "ignore", "ignore_glob", "stepwise", "collectonly")
    return not any(getattr(config.option, name, None) for name in narrowing)


def pytest_configure(config):
    cov = config.pluginmanager.getplugin("_cov")  # pytest-cov, started before this file was imported
    if cov is None or getattr(cov, "_disabled", True):
        return
    if not _whole_suite(config):
        # The coverage floor (pyproject.toml, [tool.coverage.report] fail_under) is for the whole suite: a
        # run of a few tests is never failed for covering little.
        cov.options.cov_fail_under = None
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        # The controller of xdist workers runs no test. Without this, each worker would inherit the variable
        # that starts coverage in every new Python process (coverage's patch = ["subprocess"]) and measure
        # itself twice. pytest-cov starts coverage in each worker, which sets the variable again there for
        # the processes its tests start.
        os.environ.pop("COVERAGE_PROCESS_CONFIG", None)


# -- the S3 server ----------------------------------------------------------------------------------------

_MOTO_LISTENING = re.compile(rb"Running on (http://127\.0\.0\.1:\d+)")


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """The endpoint of a running S3-compatible server on loopback."""
    given = os.environ.get("SCHEDY_TEST_S3_ENDPOINT")
    proc = None
    if given:
        endpoint = given
    else:
        # Port 0: the server binds a free port itself and prints it, so that the servers of parallel test
        # processes can never pick the same one. Its log goes to a file (a pipe nobody reads would fill up).
        # It runs without coverage measurement (COVERAGE_*): it is not Schedy's code, only slower measured.
        log_path = tmp_path_factory.mktemp("moto") / "moto.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                # moto, with its conditional puts made atomic as a real store's are (tests/s3server.py).
                [sys.executable, os.path.join(os.path.dirname(__file__), "s3server.py"), "-H", "127.0.0.1", "-p", "0"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 30
        endpoint = None
        while True:
            if endpoint is None:
                found = _MOTO_LISTENING.search(log_path.read_bytes())
                endpoint = found and found.group(1).decode()
            if endpoint is not None:
                try:
                    urllib.request.urlopen(endpoint + "/", timeout=1)
                    break
                except OSError:
                    pass
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"the local S3 server (moto) did not start:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.1)
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "schedy-test",
        "AWS_SECRET_ACCESS_KEY": "schedy-test",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }
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
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="  # Azurite's own
)


def create_container(name):
    """Create a container on Azurite with a Shared Key request (obstore creates objects, not containers)."""
    headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": "2021-08-06"}
    canonical = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
    to_sign = "PUT\n" + "\n" * 11 + canonical + f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container"
    key = base64.b64decode(AZURITE_KEY)
    signature = base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()
    authorization = f"SharedKey {AZURITE_ACCOUNT}:{signature}"
    request = urllib.request.Request(
        f"{AZURITE_URL}/{AZURITE_ACCOUNT}/{name}?restype=container",
        method="PUT",
        headers={**headers, "Authorization": authorization, "Content-Length": "0"},
    )
    assert urllib.request.urlopen(request, timeout=10).status == 201


def _azure_db(request, tmp_path):
    if not AZURITE_URL:
        pytest.skip("set SCHEDY_TEST_AZURITE_URL to an Azurite blob service to test az:// (.ci/run does)")
    name = f"schedy-{uuid.uuid4().hex[:12]}"
    create_container(name)
    # The environment, so that worker subprocesses open the same store from the URL alone.
    env = {
        "AZURE_STORAGE_ACCOUNT_NAME": AZURITE_ACCOUNT,
        "AZURE_STORAGE_ACCOUNT_KEY": AZURITE_KEY,
        "AZURE_STORAGE_ENDPOINT": f"{AZURITE_URL}/{AZURITE_ACCOUNT}",
        "AZURE_ALLOW_HTTP": "true",
    }
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


def run_together(commands, timeout=900):
    """Start a process for each of ``commands``, each printing READY then waiting for a line on stdin; release
    them all at once and return each one's last line of output, parsed as JSON. Fails naming any that failed."""
    procs = [
        subprocess.Popen(c, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in commands
    ]
    try:
        for p in procs:
            line = p.stdout.readline()
            assert line == "READY\n", (line, p.stderr.read()[-2000:] if p.poll() is not None else "")
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        finished = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0] * len(procs), [err[-2000:] for _, err in finished]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in finished]


# -- the browser ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium():
    """Debian's chromium, launched once for the session (installed with apt-get first if it is missing); one
    for every test file, since Playwright's sync API runs once per process (tests/browser.py)."""
    import browser

    try:
        path = browser.ensure_chromium()
        pw = browser.start_playwright()
    except browser.Unavailable as e:
        browser.unavailable(str(e))
    try:
        b = browser.launch(pw, path)
    except Exception as e:  # the browser is there but does not start: a broken environment, never a skip
        pw.stop()
        pytest.fail(f"{path} is installed but Playwright cannot launch it: {e}", pytrace=False)
    yield b
    b.close()
    pw.stop()


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
        return subprocess.run(
            [SCHEDY_EXE, *map(str, args)],
            input=input,
            env=full,
            cwd=cwd or tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    run.db = db
    return run


@pytest.fixture
def fault_proxy(s3_endpoint):
    """A fault-injecting proxy (tests/faultproxy.py) in front of the test S3 server; forwards everything until told."""
    from faultproxy import FaultProxy

    with FaultProxy(s3_endpoint, seed=20261129) as proxy:
        yield proxy
