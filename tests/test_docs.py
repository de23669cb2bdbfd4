"""The documentation runs: every ```python and ```console block of README.md and docs/*.md is executed.

Blocks of one file run in document order, in a fresh temporary directory,
with ``SCHEDY_DB`` and ``XDG_DATA_HOME`` pointing into it, so the examples
must be self-contained. Python blocks share one namespace (``__name__`` is
``"__main__"``, as in a script). In a console block, each line starting with
``$ `` is a shell command (a line ending in a backslash continues it) run
with bash in that directory, the installed ``schedy`` first on the PATH; the
lines after it, up to the next command, are its expected output (standard
output and error together, trailing spaces ignored). In expected output,
``...`` matches any text within a line, and a line that is only ``...``
matches any number of lines. A command must exit with status 0 unless its
expected output ends with the line ``[exit status N]``. Snippets that must
not run are fenced as ```bash or ```text. A failure points at the line of
the Markdown file.
"""

import ast
import os
import re
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXPECTED_PAGES = {"getting-started.md", "tutorial-database.md", "tutorial-scheduler.md", "tutorial-random-search.md"}

FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)


def python_blocks(path):
    """Return (index, first line number, code) for each ```python block of ``path``."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for m in FENCE.finditer(text):
        if m.group("info").strip() == "python":
            line = text.count("\n", 0, m.start("body")) + 1
            blocks.append((len(blocks) + 1, line, m.group("body")))
    return blocks


def runnable_blocks(path):
    """Return (kind, first line number, text) for each ```python and ```console block, in order."""
    text = path.read_text(encoding="utf-8")
    return [
        (m.group("info").strip(), text.count("\n", 0, m.start("body")) + 1, m.group("body"))
        for m in FENCE.finditer(text)
        if m.group("info").strip() in ("python", "console")
    ]


def console_steps(body, first_line):
    """Parse a console block into (line number, command, expected output lines)."""
    steps, lines, i = [], body.splitlines(), 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            raise ValueError(f"line {first_line + i}: a console block must start with a `$ ` command line")
        number, command = first_line + i, lines[i][2:]
        while command.endswith("\\") and i + 1 < len(lines):
            i += 1
            command = command + "\n" + lines[i]  # bash joins the lines
        i += 1
        expected = []
        while i < len(lines) and not lines[i].startswith("$ "):
            expected.append(lines[i].rstrip())
            i += 1
        steps.append((number, command, expected))
    return steps


def _line_matches(pattern, line):
    parts = [re.escape(p) for p in pattern.split("...")]
    return re.fullmatch(".*".join(parts), line, re.S) is not None


def output_matches(expected, actual):
    """True if ``actual`` lines match ``expected`` lines (``...`` wildcards, see the module docstring)."""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head == "...":
        return any(output_matches(rest, actual[k:]) for k in range(len(actual) + 1))
    return bool(actual) and _line_matches(head, actual[0]) and output_matches(rest, actual[1:])


def run_console(path, line, body, work, env):
    for number, command, expected in console_steps(body, line):
        status = 0
        if expected and re.fullmatch(r"\[exit status \d+\]", expected[-1]):
            status = int(expected[-1][13:-1])
            expected = expected[:-1]
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
        )
        actual = [x.rstrip() for x in done.stdout.splitlines()]
        while expected and not expected[-1]:
            expected = expected[:-1]
        while actual and not actual[-1]:
            actual = actual[:-1]
        if done.returncode != status or not output_matches(expected, actual):
            pytest.fail(
                f"{rel(path)}: line {number}: `{command}` exited with {done.returncode} (expected {status}); "
                f"output:\n" + "\n".join(actual) + "\n--- expected:\n" + "\n".join(expected),
                pytrace=False,
            )


def rel(path):
    return path.relative_to(ROOT).as_posix()


def test_every_user_documentation_page_exists():
    assert {p.name for p in DOCS} >= EXPECTED_PAGES


@pytest.mark.parametrize("path", DOCS, ids=rel)
def test_python_blocks_are_complete_code(path):
    """No placeholders: each block parses, and none uses `...` (put non-runnable snippets in ```text)."""
    blocks = python_blocks(path)
    if path.name in EXPECTED_PAGES or path.name == "README.md":
        assert blocks, f"{rel(path)} has no ```python block"
    for index, line, code in blocks:
        try:
            tree = ast.parse(code)
        except SyntaxError as e:
            pytest.fail(f"{rel(path)}: python block {index} (line {line}) does not parse: {e}")
        ellipses = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value is Ellipsis]
        assert not ellipses, f"{rel(path)}: python block {index} (line {line}) uses `...` as a placeholder"


@pytest.mark.parametrize("path", DOCS, ids=rel)
def test_examples_run(path, tmp_path, monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("SCHEDY_DB", str(tmp_path / "schedy-db"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    env = dict(os.environ, COLUMNS="100", PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    for var in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(var, None)
    namespace = {"__name__": "__main__"}
    for kind, line, code in runnable_blocks(path):
        if kind == "console":
            run_console(path, line, code, work, env)
            continue
        # Pad with blank lines so that tracebacks name the line of the Markdown file.
        compiled = compile("\n" * (line - 1) + code, str(path), "exec")
        error = None
        try:
            exec(compiled, namespace)
        except Exception:
            error = traceback.format_exc()
        if error is not None:
            pytest.fail(f"{rel(path)}: python block at line {line} raised:\n{error}", pytrace=False)


def test_console_output_matching():
    """The matcher itself: wildcards within a line and across lines, and mismatches."""
    assert output_matches(["a ... c"], ["a b c"]) and not output_matches(["a ... c"], ["a b d"])
    assert output_matches(["x", "...", "z"], ["x", "1", "2", "z"]) and output_matches(["x", "...", "z"], ["x", "z"])
    assert not output_matches(["x"], ["x", "y"]) and not output_matches(["x", "y"], ["x"])
    assert console_steps("$ a \\\n  b\nout\n$ c\n", 10) == [(10, "a \\\n  b", ["out"]), (13, "c", [])]


def test_readme_quickstart_has_exactly_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = [m.group("body").strip() for m in FENCE.finditer(section)]
    assert commands == ["pip install . && python -m schedy.demo", 'pip install -e ".[test]" && python -m pytest']


@pytest.mark.parametrize("path", DOCS, ids=rel)
def test_relative_links_resolve(path):
    text = path.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        assert (path.parent / target).exists(), f"{rel(path)} links to {target}, which does not exist"


def test_the_readme_example_runs_in_four_processes_at_once(tmp_path):
    """Its comment says every worker runs it, in as many processes as you like: 4 start together, twice over."""
    code = python_blocks(ROOT / "README.md")[0][2]
    assert "exist_ok=True" in code and "Every worker runs this loop" in code
    script = tmp_path / "example.py"
    # Every process waits at one barrier (a file the test creates) so that all four open the database at once.
    script.write_text(
        "import os, sys, time\nwhile not os.path.exists(sys.argv[1]):\n    time.sleep(0.01)\n" + code, encoding="utf-8"
    )
    go = tmp_path / "go"
    for _round in range(2):  # the second round finds the experiment there
        procs = [
            subprocess.Popen(
                [sys.executable, str(script), str(go)],
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        go.touch()
        for p in procs:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
        go.unlink()
    import schedy

    jobs = schedy.SchedyDB(str(tmp_path / "my-schedy-db")).get_experiment("mnist").all_jobs()
    assert len(jobs) == 2 * 4 * 10 and all(j.status == "DONE" and "loss" in j.results for j in jobs)
