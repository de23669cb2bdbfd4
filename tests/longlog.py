"""A long log made fast, for the tests and benchmarks of what reading it costs: real worker cycles on a
memory:// database, then every object uploaded at once to the store under test."""

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

import obstore

import schedy
from schedy.random import LogUniform

TAIL = 25  # the newest snapshot of a built log is this many commits before its end: opening stays cheap


def build(n):
    """The objects (path below the database prefix -> bytes) of a random search of exactly ``n`` commits.

    Written by real worker cycles on a memory:// database, its newest snapshot TAIL commits before the end.
    """
    name = uuid.uuid4().hex
    db = schedy.SchedyDB(f"memory://{name}/db", snapshot_every=n - TAIL)
    exp = db.add_experiment(schedy.RandomSearch("long", {"lr": LogUniform(1e-5, 1e-1)}, seed=7))
    while exp._view.state.version < n:
        if n - exp._view.state.version >= 2:
            with exp.next_job() as job:
                job.results["loss"] = job.hyperparameters["lr"]
        else:
            exp.add_job({"lr": 0.01})
    source = db._store.store
    paths = [m["path"] for batch in obstore.list(source, "db/experiments/") for m in batch]
    return {p[len("db/") :]: bytes(obstore.get(source, p).bytes()) for p in paths}


def upload(store, objects, concurrency=32):
    """Put every object below ``store``'s prefix, many at once."""

    async def run():
        gate = asyncio.Semaphore(concurrency)

        async def one(path, data):
            async with gate:
                await obstore.put_async(store.store, f"{store.prefix}/{path}", data)

        await asyncio.gather(*(one(p, d) for p, d in objects.items()))

    # In a thread of its own: a test run earlier may have left an event loop running in this one
    # (asyncio.run refuses to start inside a running loop).
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()
