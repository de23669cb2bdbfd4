"""Azure Blob Storage against the Azurite emulator, when one runs: set SCHEDY_TEST_AZURITE_URL
(for example http://127.0.0.1:10000, from ``azurite-blob --blobHost 127.0.0.1 --disableTelemetry``), as
``.ci/run`` does. Skipped otherwise.

Checks the configurations docs/object-storage.md documents for Azure (an endpoint with the account in its
path, use_emulator, the environment with client_options given in code), a missing container, and lost replies
and refused writes through the fault proxy.
"""

import os
import uuid

import pytest
from conftest import AZURITE_ACCOUNT as ACCOUNT
from conftest import AZURITE_KEY as KEY
from conftest import create_container
from faultproxy import CLOSE, DELAY, REFUSE, RESET, UNAVAILABLE, FaultProxy

import schedy
from schedy.errors import DatabaseError

AZURITE = os.environ.get("SCHEDY_TEST_AZURITE_URL")

pytestmark = pytest.mark.skipif(not AZURITE, reason="set SCHEDY_TEST_AZURITE_URL to run against Azurite")


@pytest.fixture
def container(monkeypatch):
    for var in [v for v in os.environ if v.startswith(("AZURE_", "AZURITE_"))]:
        monkeypatch.delenv(var)
    name = f"schedy-{uuid.uuid4().hex[:12]}"
    create_container(name)
    return name


def drain(db, n=3):
    exp = schedy.ManualSearch("e")
    db.add_experiment(exp)
    for i in range(n):
        exp.add_job({"i": i})
    for _ in range(n):
        with exp.next_job() as job:
            job.results["x"] = 1
    return [j.status for j in db.get_experiment("e").all_jobs()]


def test_an_endpoint_with_the_account_in_its_path(container):
    db = schedy.SchedyDB(f"az://{container}/db", endpoint=f"{AZURITE}/{ACCOUNT}", account_name=ACCOUNT, access_key=KEY)
    assert drain(db) == ["DONE"] * 3


def test_use_emulator(container, monkeypatch):
    monkeypatch.setenv("AZURITE_BLOB_STORAGE_URL", AZURITE)
    assert drain(schedy.SchedyDB(f"az://{container}/db", use_emulator=True)) == ["DONE"] * 3


def test_the_environment_with_client_options_in_code(container, monkeypatch):
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", ACCOUNT)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", KEY)
    monkeypatch.setenv("AZURE_STORAGE_ENDPOINT", f"{AZURITE}/{ACCOUNT}")
    monkeypatch.setenv("AZURE_ALLOW_HTTP", "true")
    assert drain(schedy.SchedyDB(f"az://{container}/db", client_options={"timeout": "5s"})) == ["DONE"] * 3


def test_a_missing_container_is_named(container):
    with pytest.raises(DatabaseError, match="the container 'no-such-container' does not exist"):
        schedy.SchedyDB(
            "az://no-such-container/db", endpoint=f"{AZURITE}/{ACCOUNT}", account_name=ACCOUNT, access_key=KEY
        )


@pytest.mark.parametrize("action", [RESET, CLOSE, DELAY, UNAVAILABLE, REFUSE])
def test_faults_on_the_probe_and_on_commits(container, action):
    with FaultProxy(AZURITE, seed=3) as proxy:
        probe = proxy.add(action, method="PUT", path=r"/\.schedy-probe/", times=1, delay=1.5)
        commits = proxy.add(action, method="PUT", path=r"/log/", times=2, delay=1.5)
        db = schedy.SchedyDB(
            f"az://{container}/db",
            endpoint=f"{proxy.url}/{ACCOUNT}",
            account_name=ACCOUNT,
            access_key=KEY,
            client_options={"timeout": "1s"},
            retry_config={"max_retries": 0},
        )
        assert drain(db) == ["DONE"] * 3
        assert probe.fired == 1 and commits.fired == 2
    direct = schedy.SchedyDB(
        f"az://{container}/db", endpoint=f"{AZURITE}/{ACCOUNT}", account_name=ACCOUNT, access_key=KEY
    )
    assert len(direct._store.read("e", 0)[0]) == 1 + 3 + 3 + 3  # created, 3 added, 3 claimed, 3 done: once each
