#!/usr/bin/env python
"""What reading the log costs on object storage: requests and response bytes per claim, GET-next against listing.

    python benchmarks/object_reads.py [--quick] [--cycles 20] [--json out.json]

Readers find new commits by GETting the next versions (``ObjectLogStore.read``:
commit ``cursor + 1``, answered 404 when the reader is caught up). Before, they
listed the log folder after the last commit read; on Azure, obstore sends that
offset as ``startFrom``, which Azurite ignores, so every read listed the whole
log. For each store (a moto S3 server this script starts, and the Azurite that
``SCHEDY_TEST_AZURITE_URL`` names, if set) and each length of log N (100 and
10,000 commits; 100 and 2,000 with ``--quick``), it:

1. writes a random search of exactly N commits by real worker cycles on a
   ``memory://`` database and copies its objects into a fresh bucket
   (container): byte for byte what workers write;
2. opens the experiment with no snapshot (the whole log replayed), once with
   each reader;
3. sends one plain LIST after the last commit, as the old reader did at
   every read (what the store answers to that offset);
4. with the snapshots copied too (the newest 25 commits before the end), runs
   ``--cycles`` claim cycles of a caught-up worker (``with exp.next_job() as
   job:``) after one warm-up cycle, with each reader: the old one first, so
   the new one runs on a log longer by 2 x (cycles + 1) commits.

Every request goes through the fault proxy of the test suite
(``tests/faultproxy.py``, with no fault), which counts requests by kind and
the bytes of every reply (status line, headers and body). The old reader is
the listing code of ``schedy/adapters/objectstore.py`` before the change,
kept verbatim below. Times are through the proxy (a Python process relaying
each request on a new connection): compare them with each other. Nothing is
asserted.
"""

import argparse
import collections
import datetime
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))  # benchmark the checkout this script lives in; tests/faultproxy.py

# machine: benchmarks/machine.py, beside this script; faultproxy: tests/faultproxy.py (standard library only).
import obstore
from faultproxy import FaultProxy  # noqa: E402
from longlog import build, upload
from machine import describe, start_moto, stop_process, version_of

import schedy
from schedy.adapters.objectstore import WINDOW, ObjectLogStore, _pool
from schedy.errors import CorruptLogError

NO_SNAPSHOTS = 10**9  # the snapshot_every of the measuring databases: they write no snapshot, and expect none


class ListingReads(ObjectLogStore):
    """The reader before this change, verbatim: one LIST after the cursor, then one GET per commit listed."""

    def _list(self, what, prefix, offset=None):
        """Every object's metadata under ``prefix`` (after ``offset``), in one retried listing."""

        def listing():
            batches = obstore.list(self.store, prefix, offset=offset) if offset else obstore.list(self.store, prefix)
            return [meta for batch in batches for meta in batch]

        return self._read(f"list {what}", prefix, listing, missing_ok=False)

    def _versions_after(self, key, cursor):
        prefix = self._log(key)
        offset = self._log(key, cursor) if cursor else None
        found = []
        for meta in self._list(f"the log of {key!r}", prefix, offset):
            name = meta["path"].rsplit("/", 1)[-1]
            stem = name[:-5] if name.endswith(".json") else ""
            if not stem.isdigit():
                raise CorruptLogError(f"{self.describe(key)}: unexpected object {meta['path']!r} in the log")
            if int(stem) > cursor:
                found.append(int(stem))
        return sorted(found)  # listings are not guaranteed to be sorted

    def read(self, key, cursor):
        """Return the records of the commits after version ``cursor``, and the version of the last one."""
        records = []
        won = self._won.pop(key, None)
        if won is not None and won[0] == cursor + 1:
            # The commit that beat our last append was read to compare it with ours: no need to GET it again.
            records.append(won[1].rstrip(b"\n"))
            cursor += 1
        versions = self._versions_after(key, cursor)
        for expected, v in enumerate(versions, cursor + 1):
            if v != expected:
                raise CorruptLogError(f"{self.describe(key)}: commit {expected} is missing (the log jumps to {v})")

        def fetch(v):
            data = self._get_bytes(f"commit {v} of {key!r}", self._log(key, v))
            if data is None:
                raise CorruptLogError(f"{self.describe(key)}: commit {v} disappeared while it was read")
            return data.rstrip(b"\n")

        # Fetch many commits at once: one round trip each, one after another, would make a writer that fell
        # behind (or a reader opening a long log) slower than the writers it has to catch up with.
        try:
            fetched = list(_pool().map(fetch, versions)) if len(versions) > 1 else None
        except RuntimeError:  # the pool is shut down (the interpreter is exiting): fetch one at a time
            fetched = None
        records.extend(fetched if fetched is not None else (fetch(v) for v in versions))
        return records, cursor + len(versions)


READERS = {"listing (before)": ListingReads, "GET next (now)": ObjectLogStore}


# ---------------------------------------------------------------------------------------------------------------
# The stores: a moto server started here, and Azurite if the environment names one.


class Moto:
    name = "moto (S3 API)"

    def __init__(self):
        self.proc, self.upstream = start_moto()
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "schedy-bench",
                "AWS_SECRET_ACCESS_KEY": "schedy-bench",
                "AWS_REGION": "us-east-1",
                "AWS_ALLOW_HTTP": "true",
            }
        )
        self.version = f"moto {version_of('moto')}"

    def new_location(self):
        name = f"schedy-reads-{uuid.uuid4().hex[:12]}"
        urllib.request.urlopen(urllib.request.Request(f"{self.upstream}/{name}", method="PUT"), timeout=10)
        return f"s3://{name}/db"

    def open(self, location, proxy=None, **kw):
        return schedy.SchedyDB(location, endpoint=proxy.url if proxy else self.upstream, **kw)

    def forget(self, location):
        pass  # the server stops at the end of the run

    def close(self):
        stop_process(self.proc)


class Azurite:
    """The Azurite of SCHEDY_TEST_AZURITE_URL, with the account and container helper of tests/conftest.py."""

    name = "Azurite (Azure Blob API)"

    def __init__(self):
        import conftest  # reads SCHEDY_TEST_AZURITE_URL

        self.conftest = conftest
        self.upstream = conftest.AZURITE_URL.rstrip("/")
        try:
            urllib.request.urlopen(self.upstream, timeout=10)
        except urllib.error.HTTPError as e:  # any answer will do: it names the server
            self.version = e.headers.get("Server", "Azurite")
        else:
            self.version = "Azurite"
        for var in [v for v in os.environ if v.startswith(("AZURE_", "AZURITE_"))]:
            del os.environ[var]  # the account is given in code below

    def new_location(self):
        name = f"schedy-reads-{uuid.uuid4().hex[:12]}"
        self.conftest.create_container(name)
        return f"az://{name}/db"

    def open(self, location, proxy=None, **kw):
        c = self.conftest
        endpoint = f"{proxy.url if proxy else self.upstream}/{c.AZURITE_ACCOUNT}"
        return schedy.SchedyDB(
            location, endpoint=endpoint, account_name=c.AZURITE_ACCOUNT, access_key=c.AZURITE_KEY, **kw
        )

    def forget(self, location):
        """Delete the container: the server may be shared, and it slows down as it fills."""
        from test_objectstore_reads import delete_container  # tests/, beside conftest

        delete_container(location.split("/")[2])

    def close(self):
        pass


# ---------------------------------------------------------------------------------------------------------------
# Building a log, counting what the proxy relayed.


def kind(method, target, status):
    query = target.partition("?")[2]
    if method == "GET" and ("list-type=" in query or "comp=list" in query):
        return "LIST"
    if method in ("GET", "PUT"):
        if status in (409, 412):
            return f"{method} refused"
        return method if status < 300 else f"{method} {status}"
    return f"{method} {status}"


def tally(replies, per=1):
    """Requests by kind and reply bytes in ``replies`` (of the proxy), divided by ``per``."""
    kinds = collections.Counter(kind(m, t, s) for m, t, s, _, _ in replies)
    total = sum(h + b for *_, h, b in replies)
    return {
        "requests": {k: round(v / per, 2) for k, v in sorted(kinds.items())},
        "request_count": round(len(replies) / per, 2),
        "bytes": round(total / per),
    }


def cycle(exp):
    with exp.next_job() as job:
        job.results["loss"] = job.hyperparameters["lr"]


# ---------------------------------------------------------------------------------------------------------------


def measure(store, n, cycles):
    """Every figure of one store and one length of log ``n`` (see the module's docstring)."""
    t0 = time.perf_counter()
    objects = build(n)
    location = store.new_location()
    try:
        direct = store.open(location)._store
        log_objects = {p: d for p, d in objects.items() if "/log/" in p}
        upload(direct, log_objects)
        row = {
            "commits": n,
            "log_bytes": sum(map(len, log_objects.values())),
            "build_and_upload_s": round(time.perf_counter() - t0, 1),
        }
        with FaultProxy(store.upstream) as proxy:
            row["open_without_snapshot"] = {}
            for label, cls in READERS.items():
                db = store.open(location, proxy, snapshot_every=NO_SNAPSHOTS)
                db._store.__class__ = cls
                mark, t1 = len(proxy.replies), time.perf_counter()
                jobs = db.get_experiment("long").all_jobs()
                seconds = time.perf_counter() - t1
                row["open_without_snapshot"][label] = {
                    **tally(proxy.replies[mark:]),
                    "seconds": round(seconds, 2),
                    "jobs": len(jobs),
                }
            # What the old reader sent at every read: one LIST of the log after its last commit.
            logs = store.open(location, proxy)._store
            mark = len(proxy.replies)
            listed = [
                m for batch in obstore.list(logs.store, logs._log("long"), offset=logs._log("long", n)) for m in batch
            ]
            row["list_after_last_commit"] = {**tally(proxy.replies[mark:]), "objects_listed": len(listed)}
            upload(direct, {p: d for p, d in objects.items() if "/snapshots/" in p})
            row["claim_cycle"] = {}
            for label, cls in READERS.items():
                db = store.open(location, proxy, snapshot_every=NO_SNAPSHOTS)  # opens from the snapshot all the same
                db._store.__class__ = cls
                exp = db.get_experiment("long")
                cycle(exp)  # warm-up
                start_version = exp._view.state.version
                mark, t1 = len(proxy.replies), time.perf_counter()
                for _ in range(cycles):
                    cycle(exp)
                seconds = time.perf_counter() - t1
                row["claim_cycle"][label] = {
                    **tally(proxy.replies[mark:], cycles),
                    "commits_at_start": start_version,
                    "ms": round(1000 * seconds / cycles, 1),
                    "snapshot": exp._view.snapshot,
                }
    finally:
        store.forget(location)
    return row


def ratio(a, b):
    return None if not b else round(a / b, 2)


def summarize(rows):
    short, long_ = rows[0], rows[-1]
    out = {}
    for label in READERS:
        a, b = short["claim_cycle"][label], long_["claim_cycle"][label]
        out[label] = {
            "bytes_long_over_short": ratio(b["bytes"], a["bytes"]),
            "requests_long_over_short": ratio(b["request_count"], a["request_count"]),
        }
    old, new = (long_["claim_cycle"][label] for label in READERS)
    out["bytes_before_over_now_at_longest"] = ratio(old["bytes"], new["bytes"])
    return out


def fmt(requests):
    return " ".join(f"{k}={v:g}" for k, v in requests.items()) or "none"


def table(headers, rows):
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join("  " + line for line in lines)


def report(result):
    m = result["machine"]
    print(
        f"\nSchedy object-store reads, {result['date']} ({'quick' if result['quick'] else 'full'} run, "
        f"{result['run_seconds']} s, {result['cycles']} cycles per reader)"
    )
    print(
        f"  machine: {m['usable_cpus']} usable CPUs of {m['cpu_count']} ({m['cpu']}), {m['memory_gib']} GiB, "
        f"{m['implementation']} {m['python']}; schedy {m['schedy_commit']}, obstore {m['obstore']}"
    )
    for s in result["stores"]:
        print(
            f"\n{s['store']} ({s['server']}); counted in the proxy, bytes = every reply's status line, headers and body"
        )
        rows = []
        for r in s["rows"]:
            for label in READERS:
                c = r["claim_cycle"][label]
                rows.append([r["commits"], label, c["commits_at_start"], fmt(c["requests"]), c["bytes"], c["ms"]])
        print("  claim cycle of a caught-up worker (`with exp.next_job() as job:`), per cycle:")
        print(table(["commits", "reader", "log at start", "requests", "bytes", "ms"], rows))
        rows = [
            [
                r["commits"],
                fmt(r["list_after_last_commit"]["requests"]),
                r["list_after_last_commit"]["bytes"],
                r["list_after_last_commit"]["objects_listed"],
            ]
            for r in s["rows"]
        ]
        print("  one LIST after the last commit (what the old reader sent at every read):")
        print(table(["commits", "requests", "bytes", "objects listed"], rows))
        rows = []
        for r in s["rows"]:
            for label in READERS:
                o = r["open_without_snapshot"][label]
                rows.append([r["commits"], label, fmt(o["requests"]), o["bytes"], o["seconds"]])
        print("  opening without a snapshot (get_experiment + all_jobs, the whole log replayed):")
        print(table(["commits", "reader", "requests", "bytes", "s"], rows))
        for label, v in s["summary"].items():
            if isinstance(v, dict):
                print(
                    f"  {label}: per cycle at {s['rows'][-1]['commits']} / at {s['rows'][0]['commits']} commits: "
                    f"bytes {v['bytes_long_over_short']}x, requests {v['requests_long_over_short']}x"
                )
        print(
            f"  bytes per cycle at {s['rows'][-1]['commits']} commits, before / now: "
            f"{s['summary']['bytes_before_over_now_at_longest']}x"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="logs of 100 and 2,000 commits instead of 100 and 10,000")
    parser.add_argument("--cycles", type=int, default=20, help="measured claim cycles per reader and log (20)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    args = parser.parse_args(argv)
    t_run = time.perf_counter()
    sizes = (100, 2000) if args.quick else (100, 10000)
    stores = [Moto()]
    if os.environ.get("SCHEDY_TEST_AZURITE_URL"):
        stores.append(Azurite())
    else:
        print("SCHEDY_TEST_AZURITE_URL is not set: Azurite is not measured", file=sys.stderr)
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "cycles": args.cycles,
        "window": WINDOW,
        "command": "python benchmarks/object_reads.py" + (" --quick" if args.quick else ""),
        "machine": describe(["obstore", "moto"]),
        "stores": [],
    }
    try:
        for store in stores:
            rows = []
            for n in sizes:
                print(f"... {store.name}, {n} commits", file=sys.stderr, flush=True)
                rows.append(measure(store, n, args.cycles))
            result["stores"].append(
                {"store": store.name, "server": store.version, "rows": rows, "summary": summarize(rows)}
            )
    finally:
        for store in stores:
            store.close()
    result["run_seconds"] = round(time.perf_counter() - t_run, 1)
    report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
