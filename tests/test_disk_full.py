"""A full disk (a file-size limit) or a read-only database while appending.

What happens (docs/bad-input.md): the failing call raises ``OSError`` (``EFBIG`` "File too large" for a full
disk or file-size limit, ``EACCES`` for permissions): it is not wrapped in a SchedyError. The log is left byte
for byte as it was before the call, and once space (or permission) is back the next append works and the log
verifies clean.

Each scenario runs in a subprocess: ``RLIMIT_FSIZE`` and dropped privileges must not leak into the test run.
Root ignores file permissions, so when the tests run as root the read-only scenarios run as ``nobody``.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

import schedy
from schedy.adapters.naming import stream_key
from schedy.maintenance import verify

NOBODY = 65534


def run_script(code, *args, as_nobody=False):
    """Run ``code`` in a fresh interpreter (``as_nobody``: with root's privileges dropped after the imports)."""
    prologue = textwrap.dedent(
        f"""
        import errno, json, os, resource, signal, sys
        import schedy
        from schedy.errors import SchedyError
        from schedy.maintenance import verify
        if {as_nobody!r}:
            os.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY})
    """
    )
    proc = subprocess.run(
        [sys.executable, "-c", prologue + textwrap.dedent(code), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def make_db(root, jobs=3):
    db = schedy.SchedyDB(str(root))
    exp = db.add_experiment(schedy.ManualSearch("e"))
    for i in range(jobs):
        exp.add_job({"i": i})
    db._store.close()
    return root / "experiments" / stream_key("e") / "log.jsonl"


# -- a full disk: RLIMIT_FSIZE ----------------------------------------------------------------------------

APPEND_UNTIL_FULL = """
    root, log = sys.argv[1], sys.argv[2]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
    exp = schedy.SchedyDB(root).get_experiment("e")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    limit = os.path.getsize(log) + 600
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    out = {"added": 0, "limit": limit}
    for i in range(50):
        before = open(log, "rb").read()
        try:
            exp.add_job({"pad": "x" * 150, "i": i})
        except Exception as e:
            after = open(log, "rb").read()
            out.update(error=type(e).__name__, errno=getattr(e, "errno", None), message=str(e),
                       oserror=isinstance(e, OSError), unchanged=after == before, size_before=len(before),
                       jobs_seen=len(exp.all_jobs()))
            break
        out["added"] += 1
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # space is back
    out["next"] = exp.add_job({"after": "space is back"}).job_id
    out["verify_ok"] = verify(root).ok
    out["jobs"] = len(schedy.SchedyDB(root).get_experiment("e").all_jobs())
    print(json.dumps(out))
"""


def test_a_full_disk_while_appending_is_a_clear_error_and_leaves_the_log_as_it_was(tmp_path):
    log = make_db(tmp_path / "db")
    out = run_script(APPEND_UNTIL_FULL, tmp_path / "db", log)
    assert "error" in out, f"no append failed under the limit: {out}"
    # The error: an OSError with errno EFBIG, not wrapped, not silent.
    assert out["oserror"] and out["errno"] == 27 and "File too large" in out["message"], out
    # The limit fell inside the failing line: part of it was written, then cut off again.
    assert out["size_before"] < out["limit"]
    assert out["unchanged"], "the failing append left bytes in the log"
    assert out["jobs_seen"] == 3 + out["added"], "the failed job is visible"
    assert out["next"] == str(4 + out["added"])  # the next append after space is freed works
    assert out["verify_ok"] and out["jobs"] == 3 + out["added"] + 1
    assert verify(str(tmp_path / "db")).ok
    assert log.read_bytes().endswith(b"\n")


CREATE_ON_A_FULL_DISK = """
    root = sys.argv[1]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    db = schedy.SchedyDB(root)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (10, hard))  # not even one commit fits
    out = {}
    try:
        db.add_experiment(schedy.ManualSearch("new"))
    except OSError as e:
        out["errno"] = e.errno
    out["exists_after_failure"] = [e.name for e in schedy.SchedyDB(root).get_experiments()]
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    db.add_experiment(schedy.ManualSearch("new")).add_job({"i": 1})
    out["verify_ok"] = verify(root).ok
    print(json.dumps(out))
"""


def test_creating_an_experiment_on_a_full_disk_fails_cleanly_and_works_later(tmp_path):
    schedy.SchedyDB(str(tmp_path / "db"))._store.close()
    out = run_script(CREATE_ON_A_FULL_DISK, tmp_path / "db")
    assert out["errno"] == 27 and out["exists_after_failure"] == [] and out["verify_ok"]


# -- read-only databases ------------------------------------------------------------------------------------


@pytest.fixture
def private_dir():
    """A directory for a database that an unprivileged user can reach (tmp_path's parents are root's own)."""
    path = Path(tempfile.mkdtemp(prefix="schedy-ro-"))
    os.chmod(path, 0o711)
    yield path
    for p in [path, *path.rglob("*")]:
        if p.is_dir():
            os.chmod(p, 0o700)
    shutil.rmtree(path)


def as_owner(root):
    """Make ``root`` belong to the user the scripts run as; return whether they must drop root's privileges."""
    if os.geteuid() != 0:
        return False
    for p in [root, *root.rglob("*")]:
        os.chown(p, NOBODY, NOBODY)
    return True


READ_ONLY_LOG = """
    root, log = sys.argv[1], sys.argv[2]
    before = open(log, "rb").read()
    out = {}
    try:
        schedy.SchedyDB(root).get_experiment("e").add_job({"i": "refused"})
    except OSError as e:
        out.update(error=type(e).__name__, errno=e.errno, message=str(e))
    out["unchanged"] = open(log, "rb").read() == before
    out["verify_ok_read_only"] = verify(root).ok  # an auditor with read access can check it
    os.chmod(os.path.dirname(log), 0o700)
    os.chmod(log, 0o600)
    out["next"] = schedy.SchedyDB(root).get_experiment("e").add_job({"i": "allowed"}).job_id
    out["verify_ok"] = verify(root).ok
    print(json.dumps(out))
"""


def test_a_read_only_log_refuses_appends_clearly_and_stays_as_it_was(private_dir):
    log = make_db(private_dir / "db")
    nobody = as_owner(private_dir / "db")
    os.chmod(log, 0o400)
    os.chmod(log.parent, 0o500)
    out = run_script(READ_ONLY_LOG, private_dir / "db", log, as_nobody=nobody)
    assert out["error"] == "PermissionError" and out["errno"] == 13 and str(log) in out["message"], out
    assert out["unchanged"] and out["verify_ok_read_only"]
    assert out["next"] == "4" and out["verify_ok"]


READ_A_READ_ONLY_LOG = """
    root = sys.argv[1]
    out = {}
    try:
        out["jobs"] = [j.hyperparameters["i"] for j in schedy.SchedyDB(root).get_experiment("e").all_jobs()]
    except OSError as e:
        out["error"] = f"{type(e).__name__}: {e}"
    print(json.dumps(out))
"""


def test_a_read_only_log_can_still_be_read(private_dir):
    """A reader with read permission only (an auditor, a group given 0o640 with file_mode) can read: a log it
    cannot open for writing is opened read-only."""
    log = make_db(private_dir / "db")
    nobody = as_owner(private_dir / "db")
    os.chmod(log, 0o400)
    out = run_script(READ_A_READ_ONLY_LOG, private_dir / "db", as_nobody=nobody)
    assert out.get("jobs") == [0, 1, 2], out


READ_ONLY_DIRECTORY = """
    root, log = sys.argv[1], sys.argv[2]
    experiments = os.path.dirname(os.path.dirname(log))
    out = {}
    try:
        schedy.SchedyDB(root).add_experiment(schedy.ManualSearch("new"))
    except OSError as e:
        out.update(error=type(e).__name__, errno=e.errno)
    out["listing"] = sorted(os.listdir(experiments))
    # The existing log is still writable: appending needs no new file.
    out["next"] = schedy.SchedyDB(root).get_experiment("e").add_job({"i": "still works"}).job_id
    os.chmod(experiments, 0o700)
    schedy.SchedyDB(root).add_experiment(schedy.ManualSearch("new"))
    out["verify_ok"] = verify(root).ok
    print(json.dumps(out))
"""


def test_a_read_only_directory_refuses_new_experiments_clearly(private_dir):
    log = make_db(private_dir / "db")
    nobody = as_owner(private_dir / "db")
    os.chmod(private_dir / "db" / "experiments", 0o500)
    out = run_script(READ_ONLY_DIRECTORY, private_dir / "db", log, as_nobody=nobody)
    assert out["error"] == "PermissionError" and out["errno"] == 13
    assert out["listing"] == [stream_key("e")], "a failed creation left something behind"
    assert out["next"] == "4" and out["verify_ok"]
