"""Every log store runs the same conformance suite: one class per store."""

import uuid
from typing import TYPE_CHECKING

import pytest
from conformance import LogStoreConformance
from conftest import AZURITE_ACCOUNT, AZURITE_KEY, AZURITE_URL, create_container, new_bucket
from obstore.store import MemoryStore, from_url

from schedy.adapters.filestore import FileLogStore
from schedy.adapters.objectstore import ObjectLogStore
from schedy.adapters.store import LogStore

if TYPE_CHECKING:

    def _every_store_is_a_log_store(root: str) -> list[LogStore]:
        """Never run: mypy checks that each store's methods match the protocol's (run mypy on this file)."""
        return [FileLogStore(root), ObjectLogStore(MemoryStore())]


class TestFileLogStore(LogStoreConformance):
    def make_store(self, tmp_path):
        return FileLogStore(tmp_path / "db")

    def reopen(self, store):
        return FileLogStore(store.root)

    def subprocess_store_expr(self, store):
        return f"__import__('schedy.adapters.filestore', fromlist=['x']).FileLogStore({str(store.root)!r})"


class TestMemoryLogStore(LogStoreConformance):
    """obstore's in-process MemoryStore; a reopened handle shares the same MemoryStore object."""

    def make_store(self, tmp_path):
        return ObjectLogStore(MemoryStore(), f"db-{uuid.uuid4().hex[:8]}", location="memory store")

    def reopen(self, store):
        return ObjectLogStore(store.store, store.prefix, location=store.location)


class TestS3LogStore(LogStoreConformance):
    """A real S3 API over HTTP (the moto server of conftest), a fresh bucket per test."""

    @pytest.fixture(autouse=True)
    def _s3(self, request):
        self.endpoint = request.getfixturevalue("s3_endpoint")  # also exports AWS_* for subprocesses

    def make_store(self, tmp_path):
        return self.reopen_bucket(new_bucket(self.endpoint))

    def reopen_bucket(self, bucket):
        s3 = from_url(f"s3://{bucket}", endpoint=self.endpoint, client_options={"allow_http": True})
        return ObjectLogStore(s3, "team/db", location=f"s3://{bucket}/team/db")

    def reopen(self, store):
        return self.reopen_bucket(store.location.split("/")[2])

    def subprocess_store_expr(self, store):
        bucket = store.location.split("/")[2]
        return (
            "__import__('schedy.adapters.objectstore', fromlist=['x']).ObjectLogStore("
            f"__import__('obstore.store', fromlist=['x']).from_url({'s3://' + bucket!r}), 'team/db')"
        )


class TestAzureLogStore(LogStoreConformance):
    """Azure Blob Storage over HTTP: the Azurite emulator that .ci/run starts, a fresh container per test."""

    @pytest.fixture(autouse=True)
    def _azurite(self, monkeypatch):
        if not AZURITE_URL:
            pytest.skip("set SCHEDY_TEST_AZURITE_URL to an Azurite blob service (.ci/run does)")
        # The environment names the account, so that a subprocess opens the store from the URL alone.
        monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", AZURITE_ACCOUNT)
        monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", AZURITE_KEY)
        monkeypatch.setenv("AZURE_STORAGE_ENDPOINT", f"{AZURITE_URL}/{AZURITE_ACCOUNT}")
        monkeypatch.setenv("AZURE_ALLOW_HTTP", "true")

    def make_store(self, tmp_path):
        name = f"schedy-{uuid.uuid4().hex[:12]}"
        create_container(name)
        return self.reopen_container(name)

    def reopen_container(self, name):
        return ObjectLogStore(from_url(f"az://{name}"), "team/db", location=f"az://{name}/team/db")

    def reopen(self, store):
        return self.reopen_container(store.location.split("/")[2])

    def subprocess_store_expr(self, store):
        name = store.location.split("/")[2]
        return (
            "__import__('schedy.adapters.objectstore', fromlist=['x']).ObjectLogStore("
            f"__import__('obstore.store', fromlist=['x']).from_url({'az://' + name!r}), 'team/db')"
        )


def test_maintenance_knows_no_store_class():
    """verify and repair go through the LogStore protocol only: no store class is named in schedy.maintenance."""
    import schedy.maintenance

    source = open(schedy.maintenance.__file__, encoding="utf-8").read()
    assert "FileLogStore" not in source and "ObjectLogStore" not in source
    assert "adapters.filestore" not in source and "adapters.objectstore" not in source
