"""The test suite's S3 server refuses the second create of an object, as S3 does, even when creates race.

Schedy's object store hands out each commit number once through put-if-absent; a test server that let two
racing creates both succeed would lose acknowledged commits and blame Schedy (tests/s3server.py).
"""

import threading

import obstore
from conftest import new_bucket
from obstore.store import S3Store

WRITERS, ROUNDS = 12, 100


def test_racing_creates_of_one_object_have_exactly_one_winner(s3_endpoint):
    store = S3Store(new_bucket(s3_endpoint), endpoint=s3_endpoint, client_options={"allow_http": True})
    lost = []
    for round_ in range(ROUNDS):
        path = f"race/{round_}"
        start, won = threading.Barrier(WRITERS), []

        def create(n, path=path, start=start, won=won):
            start.wait()
            try:
                obstore.put(store, path, f"writer {n}".encode(), mode="create")
                won.append(n)
            except obstore.exceptions.AlreadyExistsError:
                pass
            except obstore.exceptions.PreconditionError:  # how some stores word the refusal
                pass

        threads = [threading.Thread(target=create, args=(n,)) for n in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stored = bytes(obstore.get(store, path).bytes())
        if len(won) != 1 or stored != f"writer {won[0]}".encode():
            lost.append((round_, won, stored))
    assert lost == [], f"creates that the server let through twice, or whose object is not the winner's: {lost}"
