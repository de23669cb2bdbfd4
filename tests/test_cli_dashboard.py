"""``schedy dashboard`` and ``schedy report``, through the installed executable.

The dashboard runs in a real subprocess on a free port; the test reads the
URL it prints, asks it over HTTP, and stops it with SIGINT as Ctrl-C would.
"""

import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import urllib.error
import urllib.request

import pytest
from conftest import SCHEDY_EXE

import schedy
from schedy.dashboard import report_html

URL_LINE = re.compile(r"^Schedy dashboard of (.+) on (http://127\.0\.0\.1:(\d+)/) \(read only; Ctrl-C to stop\)$")


def spawn(cli, *args):
    """Start ``schedy ARGS...`` as the cli fixture would, without waiting for it."""
    env = dict(os.environ, SCHEDY_DB=cli.db, PYTHONIOENCODING="utf-8")
    return subprocess.Popen(
        [SCHEDY_EXE, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=os.path.dirname(cli.db),
    )


def first_line(pipe, timeout=30):
    """The first line of ``pipe``, or None if none comes within ``timeout`` seconds."""
    got = queue.Queue()
    threading.Thread(target=lambda: got.put(pipe.readline()), daemon=True).start()
    try:
        return got.get(timeout=timeout).rstrip("\n")
    except queue.Empty:
        return None


def tree(root):
    out = {}
    for dirpath, _, filenames in os.walk(root):
        out[os.path.relpath(dirpath, root) + "/"] = None
        for f in filenames:
            with open(os.path.join(dirpath, f), "rb") as fh:
                out[os.path.relpath(os.path.join(dirpath, f), root)] = fh.read()
    return out


def make_db(cli):
    db = schedy.SchedyDB(cli.db)
    exp = db.add_experiment(schedy.ManualSearch("alpha"))
    exp.add_job({"lr": 0.1}, status="DONE", results={"loss": 0.5})
    exp.add_job({"lr": 0.2})
    db.add_experiment(schedy.ManualSearch("beta"))
    return db


def embedded_data(html_text):
    m = re.search(r'<script type="application/json" id="schedy-data">(.*?)</script>', html_text, re.S)
    assert m, "no embedded data"
    return json.loads(m.group(1))


@pytest.mark.parametrize("verbose", [False, True])
def test_dashboard_serves_until_sigint(cli, verbose):
    make_db(cli)
    before = tree(cli.db)
    proc = spawn(cli, "dashboard", "--port", "0", *(["--verbose"] if verbose else []))
    try:
        line = first_line(proc.stdout)
        assert line is not None, "the dashboard printed nothing"
        m = URL_LINE.match(line)
        assert m, line
        assert m.group(1) == cli.db
        url, port = m.group(2), int(m.group(3))
        assert port != 0
        with urllib.request.urlopen(url + "api/experiments", timeout=10) as r:
            assert r.status == 200
            listing = json.loads(r.read())
        assert [(s["name"], s["jobs"]) for s in listing] == [("alpha", 2), ("beta", 0)]
        with urllib.request.urlopen(url + "api/experiment?name=alpha", timeout=10) as r:
            assert json.loads(r.read())["jobs"]["columns"]["id"] == ["1", "2"]
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.headers["Content-Security-Policy"]
            assert b"<!doctype html>" in r.read()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(
                urllib.request.Request(url + "api/experiments", data=b"x", method="POST"), timeout=10
            )
        assert refused.value.code == 405
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Aborted" not in err, err  # all of it: which error, if one comes
    assert out == ""  # nothing after the first line
    if verbose:
        assert "GET /api/experiments" in err and '"POST /api/experiments' in err
    else:
        assert err == ""
    assert tree(cli.db) == before  # it never wrote


def test_dashboard_without_a_database_fails_and_creates_nothing(cli, tmp_path):
    missing = tmp_path / "nothing" / "here"
    r = cli("dashboard", "--db", missing, "--port", "0", timeout=30)
    assert r.returncode == 1
    assert "no Schedy database" in r.stderr and str(missing) in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stdout == ""
    assert not (tmp_path / "nothing").exists()
    # Through $SCHEDY_DB as well (the cli fixture's database does not exist yet).
    r = cli("dashboard", "--port", "0", timeout=30)
    assert r.returncode == 1 and "no Schedy database" in r.stderr
    assert not os.path.exists(cli.db)


def test_dashboard_on_a_port_in_use_fails_clearly(cli):
    make_db(cli)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = cli("dashboard", "--port", port, timeout=30)
    assert r.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr, r.stderr
    assert "in use" in r.stderr.lower()
    assert "Traceback" not in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("args", [["--port", "70000"], ["--poll", "0"]])
def test_dashboard_refuses_bad_options(cli, args):
    make_db(cli)
    r = cli("dashboard", *args, timeout=30)
    assert r.returncode == 2, r.stderr
    assert "Error: Invalid value" in r.stderr and args[0] in r.stderr


def test_report_writes_the_file(cli, tmp_path):
    db = make_db(cli)
    out = tmp_path / "reports" / "alpha report.html"
    out.parent.mkdir()
    r = cli("report", "alpha", "-o", out, timeout=60)
    assert r.returncode == 0, r.stderr
    assert out.exists()
    assert str(out) in r.stderr and "MB" in r.stderr
    assert r.stdout == ""
    text = out.read_text("utf-8")
    assert text.startswith("<!doctype html>")
    assert embedded_data(text) == embedded_data(report_html(db._store, "alpha").decode("utf-8"))
    assert sorted(os.listdir(out.parent)) == ["alpha report.html"]  # no temporary file left


def test_report_of_an_unknown_experiment_fails_and_writes_nothing(cli, tmp_path):
    make_db(cli)
    before = sorted(os.listdir(tmp_path))
    for name, args in [("nope", ["-o", tmp_path / "x.html"]), ("Alpha", []), ("nope", ["-o", "-"])]:
        r = cli("report", name, *args, timeout=60)
        assert r.returncode == 1, (name, args, r.stderr)
        assert repr(name) in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
        assert r.stdout == ""
    assert sorted(os.listdir(tmp_path)) == before


def test_report_without_a_database_fails_and_creates_nothing(cli, tmp_path):
    r = cli("report", "alpha", "--db", tmp_path / "none", "-o", tmp_path / "x.html", timeout=30)
    assert r.returncode == 1 and "no Schedy database" in r.stderr
    assert not (tmp_path / "none").exists() and not (tmp_path / "x.html").exists()


def test_report_to_stdout(cli, tmp_path):
    db = make_db(cli)
    before = sorted(os.listdir(tmp_path))
    r = cli("report", "alpha", "-o", "-", timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("<!doctype html>") and r.stdout.rstrip().endswith("</html>")
    assert embedded_data(r.stdout) == embedded_data(report_html(db._store, "alpha").decode("utf-8"))
    assert r.stderr == ""
    assert sorted(os.listdir(tmp_path)) == before  # no file


@pytest.mark.parametrize(
    "name,file",
    [("alpha", "alpha.html"), ("my exp/1", "my_exp_1.html"), ("..", "experiment.html"), (".hidden", "hidden.html")],
)
def test_report_default_name_is_in_the_current_directory(cli, tmp_path, name, file):
    db = schedy.SchedyDB(cli.db)
    db.add_experiment(schedy.ManualSearch(name)).add_job({"lr": 1})
    work = tmp_path / "work"
    work.mkdir()
    r = cli("report", name, cwd=work, timeout=60)
    assert r.returncode == 0, r.stderr
    assert os.listdir(work) == [file]
    assert embedded_data((work / file).read_text("utf-8"))["experiment"]["summary"]["name"] == name


@pytest.mark.parametrize("command", [["dashboard", "--port", "0"], ["report", "alpha", "-o", "out.html"]])
def test_without_plotly_both_commands_say_which_extra_to_install(cli, tmp_path, command):
    """plotly is an optional extra: without it, a one-line message names it, and nothing is served or written."""
    make_db(cli)
    blocker = tmp_path / "no-plotly" / "plotly"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('plotly is not installed here')\n")
    env = dict(os.environ, SCHEDY_DB=cli.db, PYTHONPATH=str(blocker.parent))
    r = subprocess.run([SCHEDY_EXE, *command], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert r.returncode == 1, r
    assert r.stderr.strip() == "Error: the dashboard needs plotly: pip install 'schedy[dashboard]'"
    assert r.stdout == "" and not (tmp_path / "out.html").exists()
