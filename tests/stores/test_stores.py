"""Every log store runs the same conformance suite: one class per store."""

from conformance import LogStoreConformance

from schedy.adapters.filestore import FileLogStore


class TestFileLogStore(LogStoreConformance):
    def make_store(self, tmp_path):
        return FileLogStore(tmp_path / "db")

    def reopen(self, store):
        return FileLogStore(store.root)

    def subprocess_store_expr(self, store):
        return f"__import__('schedy.adapters.filestore', fromlist=['x']).FileLogStore({str(store.root)!r})"
